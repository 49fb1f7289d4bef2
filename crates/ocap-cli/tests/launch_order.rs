//! Vats launch in the order the config lists them (host-surface.md §3.1: the JS kernel walks
//! `Object.entries(config.vats)`), so vat IDs and root krefs are the JS kernel's whatever the
//! names: found by running the JS kernel's own test vats, whose clients hard-code `v1`/`ko4`.
//! Every host path keeps the order: `ocap run`, `ocap launch`, raw `launchSubcluster`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value as Json};

fn write_cluster(dir: &Path) -> PathBuf {
    let vat = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vats/named.js");
    let cluster = json!({
        "bootstrap": "zed",
        "vats": {
            "zed": {"sourceSpec": vat, "parameters": {"me": "zed"}},
            "alpha": {"sourceSpec": vat, "parameters": {"me": "alpha"}},
            "mid": {"sourceSpec": vat, "parameters": {"me": "mid"}},
        }
    });
    // Written as text in this order (json! keeps insertion order with preserve_order, but
    // the file is what users write, so spell it out).
    let text = format!(
        r#"{{"bootstrap":"zed","vats":{{"zed":{},"alpha":{},"mid":{}}}}}"#,
        cluster["vats"]["zed"], cluster["vats"]["alpha"], cluster["vats"]["mid"]
    );
    let path = dir.join("cluster.json");
    std::fs::write(&path, text).expect("write cluster");
    path
}

fn ocap(home: &Path, args: &[&str]) -> Json {
    let out = Command::new(env!("CARGO_BIN_EXE_ocap"))
        .arg("--home")
        .arg(home)
        .arg("--json")
        .args(args)
        .env_remove("OCAP_HOME")
        .output()
        .expect("run ocap");
    assert!(out.status.success(), "ocap {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

#[test]
fn vats_get_ids_in_config_order_on_every_path() {
    let tmp = tempfile::Builder::new().prefix("ocap-o").tempdir_in("/tmp").expect("tempdir");
    let home = tmp.path().join("home");
    let cluster = write_cluster(tmp.path());
    let cluster_arg = cluster.display().to_string();

    let run = ocap(&home, &["run", &cluster_arg]);
    assert_eq!(run["bootstrapResult"], "zed", "{run}");

    let launched = ocap(&home, &["launch", &cluster_arg]);
    assert_eq!(launched["bootstrapResult"], "zed", "{launched}");
    let text = std::fs::read_to_string(&cluster).expect("read cluster");
    let config: Json = serde_json::from_str(&text).expect("cluster JSON");
    let raw = ocap(&home, &["daemon", "exec", "launchSubcluster", &json!({"config": config}).to_string()]);
    let status = ocap(&home, &["daemon", "exec", "getStatus"]);
    let _ = Command::new(env!("CARGO_BIN_EXE_ocap")).arg("--home").arg(&home).args(["daemon", "stop"]).output();

    // Both subclusters: the config's first vat is the first ID, and its root the first kref.
    let subclusters = status["subclusters"].as_array().expect("subclusters");
    assert_eq!(subclusters.len(), 2, "{status}");
    for (sc, first) in subclusters.iter().zip(["v1", "v4"]) {
        let vats = sc["vats"].as_object().expect("vats");
        let names: Vec<&String> = vats.keys().collect();
        assert_eq!(names, ["zed", "alpha", "mid"], "{sc}");
        assert_eq!(vats["zed"], first, "{sc}");
    }
    assert_eq!(
        raw["rootKref"],
        launched["rootKref"]
            .as_str()
            .map(|k| {
                // Three vats per launch: the second launch's first root is three krefs on.
                let n: u64 = k.trim_start_matches("ko").parse().expect("kref");
                format!("ko{}", n + 3)
            })
            .expect("root kref"),
        "{raw} vs {launched}"
    );
}
