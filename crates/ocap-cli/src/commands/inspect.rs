//! `ocap inspect`: the kernel's objects, promises, c-lists and queues, read straight from the
//! database (read-only; works whether or not the daemon is running, and on `ocap run --db`
//! databases).

use std::path::PathBuf;

use clap::Args;
use ocap_kernel::smallcaps::kunser;
use ocap_kernel::{CapData, KRef};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
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

struct Section {
    key: &'static str,
    title: &'static str,
    count_sql: &'static str,
    sql: String,
}

fn sections(endpoint: Option<&str>) -> Vec<Section> {
    let clist_where = if endpoint.is_some() { "WHERE endpoint = ?2" } else { "" };
    vec![
        Section {
            key: "objects",
            title: "Objects",
            count_sql: "SELECT count(*) FROM objects",
            sql: "SELECT 'ko' || id AS kref, coalesce(owner, '-') AS owner, reachable, recognizable, revoked, pins \
                  FROM objects ORDER BY id LIMIT ?1"
                .into(),
        },
        Section {
            key: "promises",
            title: "Promises",
            count_sql: "SELECT count(*) FROM promises",
            sql: "SELECT 'kp' || p.id AS kpid, p.state, coalesce(p.decider, '-') AS decider, p.refcount, \
                  p.host_watch AS hostWatch, \
                  coalesce((SELECT group_concat(vat, ',') FROM promise_subscribers s WHERE s.kpid = p.id), '') \
                    AS subscribers, \
                  (SELECT count(*) FROM promise_queue q WHERE q.kpid = p.id) AS queued, p.value \
                  FROM promises p ORDER BY p.id LIMIT ?1"
                .into(),
        },
        Section {
            key: "clist",
            title: "C-lists",
            count_sql: "SELECT count(*) FROM clist",
            sql: format!(
                "SELECT endpoint, kref, eref, reachable FROM clist {clist_where} \
                 ORDER BY endpoint, length(kref), kref LIMIT ?1"
            ),
        },
        Section {
            key: "runQueue",
            title: "Run queue",
            count_sql: "SELECT count(*) FROM run_queue",
            sql: "SELECT seq, item FROM run_queue ORDER BY seq LIMIT ?1".into(),
        },
        Section {
            key: "gcActions",
            title: "GC actions",
            count_sql: "SELECT count(*) FROM gc_actions",
            sql: "SELECT endpoint, CASE kind WHEN 0 THEN 'dropExport' WHEN 1 THEN 'retireExport' \
                  ELSE 'retireImport' END AS kind, kref FROM gc_actions ORDER BY endpoint, kref LIMIT ?1"
                .into(),
        },
    ]
}

fn cell(v: ValueRef<'_>) -> Json {
    match v {
        ValueRef::Null => Json::Null,
        ValueRef::Integer(n) => json!(n),
        ValueRef::Real(x) => json!(x),
        ValueRef::Text(t) => Json::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Json::String(b.iter().map(|x| format!("{x:02x}")).collect()),
    }
}

fn db_err(e: rusqlite::Error) -> CliError {
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
    let conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(db_err)?;
    conn.pragma_update(None, "query_only", true).map_err(db_err)?;
    let mut out = Map::new();
    let mut text = String::new();
    for section in sections(args.endpoint.as_deref()) {
        let total: i64 = conn.query_row(section.count_sql, [], |r| r.get(0)).map_err(db_err)?;
        let mut stmt = conn.prepare(&section.sql).map_err(db_err)?;
        let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let mut rows = match &args.endpoint {
            Some(ep) if section.key == "clist" => stmt.query(rusqlite::params![args.limit, ep]),
            _ => stmt.query(rusqlite::params![args.limit]),
        }
        .map_err(db_err)?;
        let mut records = Vec::new();
        while let Some(row) = rows.next().map_err(db_err)? {
            let mut rec = Map::new();
            for (i, c) in columns.iter().enumerate() {
                rec.insert(c.clone(), cell(row.get_ref(i).map_err(db_err)?));
            }
            records.push(Json::Object(rec));
        }
        let human: Vec<Vec<String>> = records
            .iter()
            .map(|r| {
                columns
                    .iter()
                    .map(|c| match (&r[c], c.as_str()) {
                        (Json::String(s), "item") => describe_item(s),
                        (Json::String(s), _) => truncate(s, MAX_CELL_CHARS),
                        (Json::Null, _) => "-".into(),
                        (v, _) => v.to_string(),
                    })
                    .collect()
            })
            .collect();
        let shown = records.len();
        let headers: Vec<&str> = columns.iter().map(String::as_str).collect();
        text.push_str(&format!("{} ({shown} of {total})\n{}\n\n", section.title, table(&headers, &human)));
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
