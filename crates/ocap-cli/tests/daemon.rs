//! End-to-end tests of the daemon, spawning the real binary. Each test has its own home, and
//! a guard that stops its daemon when the test ends, also when it fails.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use serde_json::{json, Value as Json};

mod common;
use common::Home;

/// Polls (100 ms apart) while waiting for a process to go away.
const MAX_POLLS: u32 = 100;

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo/cluster.json")
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next()), Some("Z" | "X")),
        Err(_) => false,
    }
}

#[test]
fn launch_send_status_restart_and_purge() {
    let home = Home::new();
    let started = home.ok_json(&["daemon", "start"]);
    assert_eq!(started["running"], true);
    assert_eq!(started["started"], true);
    let pid = home.pid().expect("the lock file holds the daemon's pid");
    assert_eq!(started["pid"], pid);

    let launched = home.ok_json(&["launch", demo().to_str().unwrap()]);
    assert_eq!(launched["subclusterId"], "s1");
    assert!(launched["rootKref"].as_str().unwrap().starts_with("ko"));
    assert!(launched["bootstrapResult"].as_str().unwrap().contains("counter is at 3"), "{launched}");

    let status = home.ok_json(&["status"]);
    assert_eq!(status["vats"].as_array().unwrap().len(), 3, "{status}");
    assert_eq!(status["subclusters"][0]["vats"]["counter"], "v3");
    assert_eq!(status["remoteComms"]["state"], "disconnected");
    let counter = status["vatRoots"]["v3"].as_str().unwrap().to_owned();
    let table = home.ok(&["status"]);
    assert!(table.contains("counter") && table.contains("alice=v1"), "{table}");

    assert_eq!(home.ok(&["send", &counter, "increment"]).trim(), "4");
    let presence = home.ok_json(&["send", &counter, "getCounter"]);
    assert_eq!(presence["iface"], "Alleged: counter");
    let inner = presence["kref"].as_str().unwrap().to_owned();
    assert_eq!(home.ok(&["send", &inner, "incrementBy", "10"]).trim(), "14");

    let rejected = home.run(&["send", &counter, "noSuchMethod"]);
    assert!(!rejected.status.success());
    let err = String::from_utf8_lossy(&rejected.stderr);
    assert!(err.contains("noSuchMethod"), "{err}");
    assert!(rejected.stdout.is_empty());

    let pong = home.ok_json(&["daemon", "exec", "pingVat", r#"{"id":"v1"}"#]);
    assert_eq!(pong, "pong");

    assert!(home.ok(&["daemon", "stop"]).contains("Daemon stopped"));
    // `stop` returned: the process is gone and the lock free.
    assert!(!alive(pid), "daemon {pid} still alive after stop");
    assert!(!home.run(&["daemon", "status"]).status.success());
    assert!(!home.path().join("daemon.sock").exists());

    // Started again, it brings the state back: the same vats, the counter where it was.
    let again = home.ok_json(&["daemon", "start"]);
    assert_eq!(again["started"], true);
    assert_ne!(home.pid(), Some(pid));
    let status = home.ok_json(&["status"]);
    assert_eq!(status["vats"].as_array().unwrap().len(), 3, "{status}");
    assert_eq!(status["vatRoots"]["v3"], counter.as_str());
    assert_eq!(home.ok(&["send", &counter, "increment"]).trim(), "15");

    let inspected = home.ok_json(&["inspect"]);
    assert!(inspected["objects"]["total"].as_i64().unwrap() >= 5, "{inspected}");
    assert!(inspected["clist"]["rows"].as_array().unwrap().iter().any(|r| r["eref"] == "o+0"));

    let refused = home.run(&["daemon", "purge"]);
    assert!(!refused.status.success());
    assert!(home.path().join("kernel.sqlite").exists());

    let purged = home.ok_json(&["daemon", "purge", "--force"]);
    assert!(purged["stopped"].is_u64(), "{purged}");
    for f in ["kernel.sqlite", "daemon.sock", "daemon.log", "daemon.lock"] {
        assert!(!home.path().join(f).exists(), "{f} survived the purge");
    }
    assert!(home.daemon_processes().is_empty());
}

#[test]
fn concurrent_starts_leave_exactly_one_daemon() {
    let home = Home::new();
    let racers: Vec<_> = (0..4)
        .map(|_| {
            home.cmd()
                .args(["--json", "daemon", "start"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let mut pids = Vec::new();
    let mut fresh = 0;
    for r in racers {
        let out = r.wait_with_output().expect("wait");
        assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
        let j: Json = serde_json::from_slice(&out.stdout).expect("JSON");
        pids.push(j["pid"].as_u64().expect("pid"));
        if j["started"] == true {
            fresh += 1;
        }
    }
    assert!(pids.iter().all(|p| *p == pids[0]), "different daemons: {pids:?}");
    assert_eq!(fresh, 1, "{fresh} callers claim to have started the daemon");
    // Losers exit once they see the lock taken; wait (bounded) for them to be gone.
    let mut polls = 0;
    while home.daemon_processes().len() > 1 && polls < MAX_POLLS {
        std::thread::sleep(std::time::Duration::from_millis(100));
        polls += 1;
    }
    assert_eq!(home.daemon_processes(), vec![pids[0] as u32]);
}

#[test]
fn bad_requests_get_errors_and_the_daemon_stays_up() {
    let home = Home::new();
    home.ok(&["daemon", "start"]);
    let mode = std::fs::metadata(home.path().join("daemon.sock")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {:o}", mode & 0o777);
    assert_eq!(std::fs::metadata(home.path()).unwrap().permissions().mode() & 0o777, 0o700);

    let r = home.raw(b"{this is not json\n");
    assert_eq!(r["error"]["code"], -32700, "{r}");
    assert_eq!(r["id"], Json::Null);

    let mut big = vec![b' '; 2 * 1024 * 1024];
    big.push(b'\n');
    let r = home.raw(&big);
    assert_eq!(r["error"]["code"], -32600, "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("larger than"), "{r}");

    let r = home.rpc("noSuchMethod", json!([]));
    assert_eq!(r["error"]["code"], -32601, "{r}");
    assert_eq!(r["id"], 7);

    let r = home.rpc("pingVat", json!({"id": 5}));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = home.rpc("pingVat", json!({"id": "v1", "extra": true}));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = home.rpc("launchSubcluster", json!({"config": {"bootstrap": "a", "vats": {}}}));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = home.rpc("queueMessage", json!(["not-a-kref", "m", []]));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = home.rpc("queueMessage", json!(["ko999", "m", []]));
    assert_eq!(r["error"]["code"], -32001, "{r}");
    let r = home.rpc("getStatus", json!([1]));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = home.raw(b"{\"jsonrpc\":\"2.0\",\"id\":1}\n");
    assert_eq!(r["error"]["code"], -32600, "{r}");
    let r = home.raw(b"[]\n");
    assert_eq!(r["error"]["code"], -32600, "{r}");
    let r = home.raw(b"{\"id\":1,\"method\":\"ping\"}\n{\"id\":2,\"method\":\"ping\"}\n");
    assert_eq!(r["error"]["code"], -32600, "{r}");

    // executeDBQuery reads, and refuses to write.
    let r = home.rpc("executeDBQuery", json!({"sql": "SELECT key FROM kv WHERE key LIKE 'service.%'"}));
    assert_eq!(
        r["result"],
        json!([{"key": "service.clock"}, {"key": "service.kernelFacet"}, {"key": "service.log"}]),
        "{r}"
    );
    for sql in ["DELETE FROM kv", "UPDATE objects SET pins = 0", "CREATE TABLE t(x)"] {
        let r = home.rpc("executeDBQuery", json!({"sql": sql}));
        assert_eq!(r["error"]["code"], -32602, "{sql}: {r}");
    }
    let r = home.rpc("executeDBQuery", json!({"sql": "SELECT count(*) AS n FROM kv WHERE key LIKE 'service.%'"}));
    assert_eq!(r["result"], json!([{"n": "3"}]), "{r}");

    // A notification (no id) runs but gets no reply.
    let mut s = UnixStream::connect(home.path().join("daemon.sock")).unwrap();
    s.write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"ping\"}\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "");

    // A connection that says nothing and goes away does no harm either.
    drop(UnixStream::connect(home.path().join("daemon.sock")).unwrap());

    assert_eq!(home.rpc("ping", json!([]))["result"], "pong");
    let status = home.ok_json(&["daemon", "status"]);
    assert_eq!(status["running"], true);
    assert_eq!(home.daemon_processes().len(), 1);
}

#[test]
fn clear_state_terminate_and_exec() {
    let home = Home::new();
    home.ok_json(&["launch", demo().to_str().unwrap()]);
    let status = home.ok_json(&["daemon", "exec", "getStatus"]);
    assert_eq!(status["vats"].as_array().unwrap().len(), 3);

    let r = home.ok_json(&["daemon", "exec", "terminateVat", r#"{"id":"v2"}"#]);
    assert_eq!(r, Json::Null);
    assert_eq!(home.ok_json(&["daemon", "exec", "collectGarbage"]), Json::Null);
    // The terminated vat is cleaned up: no record, no c-list entries left.
    for sql in
        ["SELECT count(*) AS n FROM vats WHERE id = 'v2'", "SELECT count(*) AS n FROM clist WHERE endpoint = 'v2'"]
    {
        assert_eq!(home.rpc("executeDBQuery", json!({"sql": sql}))["result"], json!([{"n": "0"}]), "{sql}");
    }
    assert_eq!(home.rpc("checkInvariants", json!([]))["result"], json!({"ok": true}));
    let status = home.ok_json(&["status"]);
    let ids: Vec<&str> = status["vats"].as_array().unwrap().iter().filter_map(|v| v["id"].as_str()).collect();
    assert_eq!(ids, vec!["v1", "v3"]);
    let ko = status["vatRoots"]["v3"].as_str().unwrap().to_owned();
    home.ok_json(&["daemon", "exec", "revoke", &json!({"kref": ko}).to_string()]);
    assert_eq!(home.ok_json(&["daemon", "exec", "isRevoked", &json!({"kref": ko}).to_string()]), true);
    let revoked = home.run(&["send", &ko, "increment"]);
    assert!(!revoked.status.success());
    assert!(String::from_utf8_lossy(&revoked.stderr).contains("REVOKED"));

    home.ok_json(&["daemon", "exec", "clearState"]);
    let status = home.ok_json(&["status"]);
    assert!(status["vats"].as_array().unwrap().is_empty(), "{status}");
    assert!(status["subclusters"].as_array().unwrap().is_empty(), "{status}");
    // A fresh kernel: the next launch is s1 again.
    let launched = home.ok_json(&["launch", demo().to_str().unwrap()]);
    assert_eq!(launched["subclusterId"], "s1");
    home.ok_json(&["daemon", "exec", "terminateAllVats"]);
    assert!(home.ok_json(&["status"])["vats"].as_array().unwrap().is_empty());
}

/// `restartVat`, `reapVats` and `terminateSubcluster` over the RPC, each with its effect.
#[test]
fn restart_vat_reap_vats_and_terminate_subcluster_over_rpc() {
    let home = Home::new();
    home.ok_json(&["launch", demo().to_str().unwrap()]);
    let status = home.ok_json(&["status"]);
    let counter = status["vatRoots"]["v3"].as_str().unwrap().to_owned();
    assert_eq!(home.ok(&["send", &counter, "increment"]).trim(), "4");
    // The counter's inner object is a heap exo of this incarnation.
    let inner = home.ok_json(&["send", &counter, "getCounter"])["kref"].as_str().unwrap().to_owned();
    assert_eq!(home.ok(&["send", &inner, "read"]).trim(), "4");

    // restartVat: a new incarnation from the persisted state. The count (in baggage) goes
    // on; the previous incarnation's heap export is gone.
    assert_eq!(home.rpc("restartVat", json!({"id": "v3"}))["result"], Json::Null);
    assert_eq!(home.ok(&["send", &counter, "increment"]).trim(), "5");
    assert_eq!(home.rpc("pingVat", json!({"id": "v3"}))["result"], "pong");
    let r = home.rpc("queueMessage", json!([inner, "read", []]));
    assert!(r["error"]["message"].as_str().is_some_and(|m| m.contains("OBJECT_DELETED")), "{r}");
    let r = home.rpc("restartVat", json!({"id": "v99"}));
    assert_eq!(r["error"]["code"], -32001, "{r}");

    // reapVats: one vat, then all; the vats go on.
    assert_eq!(home.rpc("reapVats", json!({"ids": ["v3"]}))["result"], Json::Null);
    assert_eq!(home.rpc("reapVats", json!({}))["result"], Json::Null);
    assert_eq!(home.ok(&["send", &counter, "increment"]).trim(), "6");
    assert_eq!(home.rpc("checkInvariants", json!([]))["result"], json!({"ok": true}));

    // terminateSubcluster: its vats go, and its roots stop answering.
    assert_eq!(home.rpc("terminateSubcluster", json!({"id": "s1"}))["result"], Json::Null);
    let status = home.ok_json(&["status"]);
    assert!(status["vats"].as_array().unwrap().is_empty(), "{status}");
    assert!(status["subclusters"].as_array().unwrap().is_empty(), "{status}");
    let r = home.rpc("queueMessage", json!([counter, "increment", []]));
    assert!(r.get("error").is_some(), "{r}");
    let r = home.rpc("terminateSubcluster", json!({"id": "s1"}));
    assert_eq!(r["error"]["code"], -32001, "{r}");
    assert_eq!(home.rpc("checkInvariants", json!([]))["result"], json!({"ok": true}));
}

#[test]
fn a_bad_config_file_fails_the_start_with_its_reason() {
    let home = Home::new();
    std::fs::create_dir_all(home.path()).unwrap();
    std::fs::write(home.path().join("daemon.json"), r#"{"colour": "red"}"#).unwrap();
    let out = home.run(&["daemon", "start"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exited during start-up") && err.contains("colour"), "{err}");
    assert!(home.daemon_processes().is_empty());
}

/// Issue 11 items 1 and 3: RPC params and the daemon's config say one thing each (a key
/// given twice is an error), every answer is bounded and says when it was cut, empty SQL is
/// bad params, unknown vat IDs are errors everywhere, and positional params are refused
/// where the method takes named ones.
#[test]
fn ambiguous_or_unbounded_requests_are_refused_or_bounded() {
    let home = Home::new();
    home.ok(&["daemon", "start"]);
    let r =
        home.raw(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"pingVat\",\"params\":{\"id\":\"v1\",\"id\":\"v2\"}}\n");
    assert_eq!(r["error"]["code"], -32700, "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains(r#"duplicate key "id""#), "{r}");
    // A 113-byte query that used to grow the daemon to 1.5 GB: cut at the row limit.
    let sql = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n) SELECT i, randomblob(100) AS b FROM n";
    let r = home.rpc("executeDBQuery", json!({"sql": sql}));
    assert_eq!(r["result"]["truncated"], true, "{}", r["error"]);
    assert_eq!(r["result"]["rows"].as_array().unwrap().len(), 10_000);
    let r = home.rpc("executeDBQuery", json!({"sql": "SELECT zeroblob(1000000000)"}));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    for sql in ["", "  "] {
        let r = home.rpc("executeDBQuery", json!({"sql": sql}));
        assert_eq!(r["error"]["code"], -32602, "{sql:?}: {r}");
    }
    let r = home.rpc("reapVats", json!({"ids": ["v99"]}));
    assert_eq!(r["error"]["code"], -32001, "{r}");
    let r = home.rpc("pingVat", json!(["v1"]));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("named params"), "{r}");
    home.ok(&["daemon", "stop"]);

    // The daemon's own config file: the same rule, and the start fails saying where.
    std::fs::write(
        home.path().join("daemon.json"),
        r#"{"systemSubclusters":[{"name":"s","config":{"bootstrap":"a","vats":{"a":{"sourceSpec":"a.js"},"a":{"sourceSpec":"b.js"}}}}]}"#,
    )
    .unwrap();
    let out = home.run(&["daemon", "start"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(r#"duplicate key "a""#) && err.contains("systemSubclusters[0].config.vats"), "{err}");
}

/// Issue 11 item 1: a home others can write is refused, as ssh refuses such a `~/.ssh`,
/// with the command that fixes it; fixed, it works.
#[test]
fn a_home_writable_by_others_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    std::fs::create_dir_all(home.path()).unwrap();
    for mode in [0o770, 0o707, 0o777] {
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        let out = home.run(&["daemon", "start"]);
        assert!(!out.status.success(), "mode {mode:o} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("chmod go-w {}", home.path().display())), "{err}");
        assert!(home.daemon_processes().is_empty());
    }
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o750)).unwrap();
    home.ok(&["daemon", "start"]);
    assert_eq!(home.rpc("ping", json!([]))["result"], "pong");
}

#[test]
fn stop_and_status_without_a_daemon() {
    let home = Home::new();
    assert!(home.ok(&["daemon", "stop"]).contains("not running"));
    let out = home.run(&["--json", "daemon", "status"]);
    assert!(!out.status.success());
    let j: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["running"], false);
}

#[test]
fn bundle_writes_js_kernel_bundles() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("v.js"),
        "export function buildRootObject() { return { hi() { return 'hi'; } }; }\n",
    )
    .unwrap();
    let home = Home::new();
    let out = home.ok_json(&["bundle", dir.path().to_str().unwrap()]);
    assert_eq!(out.as_array().unwrap().len(), 1, "{out}");
    let bundle: Json = serde_json::from_str(&std::fs::read_to_string(dir.path().join("v.bundle")).unwrap()).unwrap();
    assert_eq!(bundle["moduleFormat"], "iife");
    assert!(bundle["code"].as_str().unwrap().contains("buildRootObject"));
}

/// The daemon's config file declares system subclusters (which get the kernel facet) and
/// the host services vats may use; a system subcluster survives a daemon restart.
#[test]
fn the_config_file_declares_system_subclusters_and_host_services() {
    let home = Home::new();
    std::fs::create_dir_all(home.path()).unwrap();
    let counter = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vats/counter.js");
    let config = serde_json::json!({
        "services": ["log"],
        "systemSubclusters": [{
            "name": "counters",
            "config": {"bootstrap": "c", "services": ["kernelFacet", "log"], "vats": {"c": {"sourceSpec": counter}}}
        }]
    });
    std::fs::write(home.path().join("daemon.json"), config.to_string()).unwrap();
    home.ok(&["daemon", "start"]);
    let status = home.ok_json(&["daemon", "exec", "getStatus"]);
    assert_eq!(status["subclusters"].as_array().map(Vec::len), Some(1), "{status}");
    home.ok(&["daemon", "stop"]);
    home.ok(&["daemon", "start"]);
    let status = home.ok_json(&["daemon", "exec", "getStatus"]);
    assert_eq!(status["subclusters"].as_array().map(Vec::len), Some(1), "restored, not relaunched: {status}");
    // `clock` is not offered by this daemon.
    let cluster = home.path().join("c.json");
    std::fs::write(
        &cluster,
        format!(r#"{{"bootstrap":"a","services":["clock"],"vats":{{"a":{{"sourceSpec":{:?}}}}}}}"#, counter),
    )
    .unwrap();
    let out = home.run(&["launch", cluster.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no registered kernel service 'clock'"));
    home.ok(&["daemon", "stop"]);
}

#[test]
fn an_unknown_host_service_in_the_config_file_fails_the_start() {
    let home = Home::new();
    std::fs::create_dir_all(home.path()).unwrap();
    std::fs::write(home.path().join("daemon.json"), r#"{"services": ["teleport"]}"#).unwrap();
    let out = home.run(&["daemon", "start"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("teleport"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(home.daemon_processes().is_empty());
}
