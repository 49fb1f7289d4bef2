//! `ocap status`: the daemon's vats, subclusters and services, as tables (or `--json`, the
//! `getStatus` result).

use std::collections::HashMap;

use serde_json::{json, Value as Json};

use crate::error::CliError;
use crate::home::Home;
use crate::output::{print_json, table};

fn s(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => "-".into(),
        other => other.to_string(),
    }
}

fn list<'a>(status: &'a Json, key: &str) -> &'a [Json] {
    status.get(key).and_then(Json::as_array).map(Vec::as_slice).unwrap_or(&[])
}

pub async fn status(home: &Home, json: bool) -> Result<(), CliError> {
    let client = super::daemon_client(home, None).await?;
    let status = client.call("getStatus", json!([])).await?;
    if json {
        print_json(&status, true);
        return Ok(());
    }
    print!("{}", render(&status));
    Ok(())
}

/// The human form of a `getStatus` result.
pub fn render(status: &Json) -> String {
    let mut names: HashMap<String, String> = HashMap::new();
    for sc in list(status, "subclusters") {
        if let Some(vats) = sc.get("vats").and_then(Json::as_object) {
            for (name, id) in vats {
                names.insert(s(id), name.clone());
            }
        }
    }
    let not_running: Vec<String> = list(status, "notRunning").iter().map(s).collect();
    let vats: Vec<Vec<String>> = list(status, "vats")
        .iter()
        .map(|v| {
            let id = s(&v["id"]);
            let state = if not_running.contains(&id) { "not running" } else { "running" };
            let root = status.get("vatRoots").and_then(|r| r.get(&id)).map(s).unwrap_or_else(|| "-".into());
            let name = names.get(&id).cloned().unwrap_or_else(|| "-".into());
            vec![id, name, s(&v["subclusterId"]), root, state.into()]
        })
        .collect();
    let subclusters: Vec<Vec<String>> = list(status, "subclusters")
        .iter()
        .map(|sc| {
            let members = sc
                .get("vats")
                .and_then(Json::as_object)
                .map(|m| m.iter().map(|(n, id)| format!("{n}={}", s(id))).collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            let bootstrap = sc.get("config").map(|c| s(&c["bootstrap"])).unwrap_or_else(|| "-".into());
            let system = sc.get("systemName").map(s).unwrap_or_else(|| "-".into());
            vec![s(&sc["id"]), bootstrap, system, members]
        })
        .collect();
    let services: Vec<Vec<String>> = list(status, "services")
        .iter()
        .map(|sv| {
            let yes = |v: &Json| if v.as_bool() == Some(true) { "yes" } else { "no" }.to_string();
            vec![s(&sv["name"]), s(&sv["kref"]), yes(&sv["systemOnly"]), yes(&sv["registered"])]
        })
        .collect();
    let mut out = String::new();
    out.push_str(&format!("Vats ({})\n", vats.len()));
    out.push_str(&table(&["ID", "NAME", "SUBCLUSTER", "ROOT", "STATE"], &vats));
    out.push_str(&format!("\n\nSubclusters ({})\n", subclusters.len()));
    out.push_str(&table(&["ID", "BOOTSTRAP", "SYSTEM", "VATS"], &subclusters));
    out.push_str(&format!("\n\nServices ({})\n", services.len()));
    out.push_str(&table(&["NAME", "KREF", "SYSTEM ONLY", "REGISTERED"], &services));
    out.push_str(&format!(
        "\n\nRun queue: {}  GC actions: {}  Cranks: {}\n",
        s(&status["runQueueLength"]),
        s(&status["gcActionsPending"]),
        s(&status["crankCount"])
    ));
    for f in list(status, "resumeFailures") {
        out.push_str(&format!("Vat {} did not come back: {}\n", s(&f["vat"]), s(&f["error"])));
    }
    out
}
