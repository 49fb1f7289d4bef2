//! `ocap inspect`: the kernel's objects, promises, c-lists and queues, read straight from the
//! database (read-only; works whether or not the daemon is running, and on `ocap run --db`
//! databases).

use std::path::PathBuf;

use clap::Args;
use ocap_kernel::smallcaps::kunser;
use ocap_kernel::store::{Store, StoreError};
use ocap_kernel::{CapData, KRef};
use serde_json::{json, Map, Value as Json};

use crate::error::CliError;
use crate::home::Home;
use crate::output::{print_json, table, truncate};

/// Widest a value cell gets in the human tables.
const MAX_CELL_CHARS: usize = 60;

#[derive(Args)]
pub struct InspectArgs {
    /// The database (default: the home's kernel.sqlite).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Only this endpoint's c-list (`v1`, `kernel`).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Rows shown per section.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

/// One section of the report: `key` in the JSON, `title` over the table, `total` rows in
/// the table, of which `rows` are shown, as cells under `columns` (the JSON keys and the
/// table's headers).
struct Section {
    key: &'static str,
    title: &'static str,
    total: u64,
    columns: &'static [&'static str],
    rows: Vec<Vec<Json>>,
}

/// The sections, read through the store's inspection views (`ocap_kernel::store::inspect`).
fn sections(store: &Store, endpoint: Option<&str>, limit: u32) -> Result<Vec<Section>, StoreError> {
    let counts = store.row_counts()?;
    let total = |table: &str| counts.iter().find(|(t, _)| t == table).map_or(0, |(_, n)| *n);
    let limit = Some(limit);
    let or_dash = |s: &Option<String>| json!(s.as_deref().unwrap_or("-"));
    let objects = store.object_rows(limit)?.into_iter().map(|o| {
        let revoked = u8::from(o.revoked);
        vec![json!(o.kref), or_dash(&o.owner), json!(o.reachable), json!(o.recognizable), json!(revoked), json!(o.pins)]
    });
    let promises = store.promise_rows(limit)?.into_iter().map(|p| {
        vec![
            json!(p.kpid),
            json!(p.state),
            or_dash(&p.decider),
            json!(p.refcount),
            json!(u8::from(p.host_watch)),
            json!(p.subscribers.join(",")),
            json!(p.queued),
            json!(p.value),
        ]
    });
    let clist = store
        .clist_rows(endpoint, limit)?
        .into_iter()
        .map(|c| vec![json!(c.endpoint), json!(c.kref), json!(c.eref), json!(u8::from(c.reachable))]);
    let run_queue = store.run_queue_rows(limit)?.into_iter().map(|r| vec![json!(r.seq), json!(r.item)]);
    let gc_actions =
        store.gc_action_rows(limit)?.into_iter().map(|g| vec![json!(g.endpoint), json!(g.kind.name()), json!(g.kref)]);
    Ok(vec![
        Section {
            key: "objects",
            title: "Objects",
            total: total("objects"),
            columns: &["kref", "owner", "reachable", "recognizable", "revoked", "pins"],
            rows: objects.collect(),
        },
        Section {
            key: "promises",
            title: "Promises",
            total: total("promises"),
            columns: &["kpid", "state", "decider", "refcount", "hostWatch", "subscribers", "queued", "value"],
            rows: promises.collect(),
        },
        Section {
            key: "clist",
            title: "C-lists",
            total: total("clist"),
            columns: &["endpoint", "kref", "eref", "reachable"],
            rows: clist.collect(),
        },
        Section {
            key: "runQueue",
            title: "Run queue",
            total: total("run_queue"),
            columns: &["seq", "item"],
            rows: run_queue.collect(),
        },
        Section {
            key: "gcActions",
            title: "GC actions",
            total: total("gc_actions"),
            columns: &["endpoint", "kind", "kref"],
            rows: gc_actions.collect(),
        },
    ])
}

fn db_err(e: StoreError) -> CliError {
    CliError::Other(format!("reading the database: {e}"))
}

/// A run-queue item in a line: `send ko3.bump(…) → kp7`, `notify v2 kp4`.
fn describe_item(item: &str) -> String {
    let Ok(j) = serde_json::from_str::<Json>(item) else { return item.to_owned() };
    match j.get("type").and_then(Json::as_str) {
        Some("send") => {
            let target = j.get("target").and_then(Json::as_str).unwrap_or("?");
            let msg = j.get("message");
            let method = msg
                .and_then(|m| m.get("methargs"))
                .and_then(|ma| serde_json::from_value::<CapData<KRef>>(ma.clone()).ok())
                .and_then(|cd| kunser(&cd).ok())
                .and_then(|v| match v {
                    ocap_kernel::Value::Array(items) => items.first().and_then(|m| m.as_str().map(str::to_owned)),
                    _ => None,
                })
                .unwrap_or_else(|| "?".into());
            let result = msg.and_then(|m| m.get("result")).and_then(Json::as_str).map(|r| format!(" → {r}"));
            format!("send {target}.{method}(…){}", result.unwrap_or_default())
        }
        Some("notify") => format!(
            "notify {} {}",
            j.get("endpointId").and_then(Json::as_str).unwrap_or("?"),
            j.get("kpid").and_then(Json::as_str).unwrap_or("?")
        ),
        _ => truncate(item, MAX_CELL_CHARS),
    }
}

pub fn inspect(home: &Home, args: InspectArgs, json: bool) -> Result<(), CliError> {
    let db = args.db.clone().unwrap_or_else(|| home.db());
    if !db.is_file() {
        return Err(CliError::Usage(format!("no database at {} (has the daemon run?)", db.display())));
    }
    let store = Store::open_read_only(&db).map_err(db_err)?;
    let mut out = Map::new();
    let mut text = String::new();
    for section in sections(&store, args.endpoint.as_deref(), args.limit).map_err(db_err)? {
        let (columns, total) = (section.columns, section.total);
        let records: Vec<Json> = section
            .rows
            .into_iter()
            .map(|cells| Json::Object(columns.iter().map(|c| c.to_string()).zip(cells).collect()))
            .collect();
        let human: Vec<Vec<String>> = records
            .iter()
            .map(|r| {
                columns
                    .iter()
                    .map(|c| match (&r[c], *c) {
                        (Json::String(s), "item") => describe_item(s),
                        (Json::String(s), _) => truncate(s, MAX_CELL_CHARS),
                        (Json::Null, _) => "-".into(),
                        (v, _) => v.to_string(),
                    })
                    .collect()
            })
            .collect();
        let shown = records.len();
        text.push_str(&format!("{} ({shown} of {total})\n{}\n\n", section.title, table(columns, &human)));
        out.insert(section.key.into(), json!({"total": total, "rows": records}));
    }
    if json {
        print_json(&Json::Object(out), true);
    } else {
        print!("{}", text.trim_end());
        println!();
    }
    Ok(())
}
