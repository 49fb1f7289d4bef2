//! Two kernels on one machine talking over rust-libp2p (remote-comms.md, issue 13), each a real
//! daemon in its own home with real JS vats, on loopback: a vat in A issues an OCAP URL, a vat
//! in B redeems it and calls the object (results, errors, pipelining, promises as arguments),
//! GC crosses kernels, the host redeems and sends with `ocap url redeem` / `ocap send`, a
//! relay started with `ocap relay` joins kernels that do not listen directly, comms resume
//! after a daemon restart, and `kill -9` of a kernel loses nothing it acknowledged.
//!
//! Vats: `tests/vats/remote-exporter.js` (A), `tests/vats/remote-user.js` (B). Every wait is
//! bounded; nothing asserts on time.

use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

mod common;
use common::Home;

fn launch(home: &Home, name: &str, source: &str, services: &[&str]) -> Json {
    home.launch_one(name, source, services)
}

fn arg(s: &str) -> String {
    common::json_arg(s)
}

fn send(home: &Home, target: &str, method: &str, args: &[&str]) -> Json {
    home.send_ok(target, method, args)
}

fn rpc_ok(home: &Home, method: &str, params: Json) -> Json {
    home.rpc_ok(method, params)
}

/// Starts comms listening on a loopback TCP port; `getStatus().remoteComms`.
fn start_comms(home: &Home, extra: &[&str]) -> Json {
    let mut args = vec!["comms", "start", "--listen", "/ip4/127.0.0.1/tcp/0"];
    args.extend_from_slice(extra);
    home.ok_json(&args)
}

/// A daemon with comms listening, and the exporter cluster launched: (home, status, URL).
fn exporter() -> (Home, Json, String) {
    let a = Home::started_with(None);
    let status = start_comms(&a, &[]);
    assert_eq!(status["state"], "connected", "{status}");
    let r = launch(&a, "exporter", "remote-exporter.js", &["ocapURLIssuerService"]);
    let url = r["bootstrapResult"].as_str().expect("a URL").to_owned();
    (a, status, url)
}

/// A daemon with comms listening that knows where `peer` listens, and the user cluster.
fn user(peer_status: &Json) -> (Home, String) {
    let b = Home::started_with(None);
    start_comms(&b, &[]);
    tell_where(&b, peer_status);
    let r = launch(&b, "user", "remote-user.js", &["ocapURLRedemptionService"]);
    assert_eq!(r["bootstrapResult"], "ready");
    (b, r["rootKref"].as_str().unwrap().to_owned())
}

/// `registerLocationHints` with the peer's listen addresses.
fn tell_where(home: &Home, peer_status: &Json) {
    rpc_ok(
        home,
        "registerLocationHints",
        json!({"peerId": peer_status["peerId"], "hints": peer_status["listenAddresses"]}),
    );
}

/// Polls `f` until it is true, for at most `secs`.
fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what}: not within {secs} s");
}

fn peers(home: &Home) -> Vec<Json> {
    home.ok_json(&["peers"])["peers"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_vat_uses_an_object_of_a_vat_in_another_daemon_results_errors_pipelining_promises_3_5_8() {
    let (a, a_status, url) = exporter();
    let (b, user_root) = user(&a_status);
    assert_eq!(send(&b, &user_root, "connect", &[&arg(&url)]), "connected");
    let tour = send(&b, &user_root, "tour", &[]);
    assert_eq!(
        tour,
        json!({
            "first": 1,
            "second": 2,
            "failure": "rejected: counter says no",
            "piped": "pipe says hello to Bob",
            "watched": "watched later",
            "doomed": "rejected: never",
        })
    );
    // Both kernels know each other as a peer, with nothing left unacknowledged.
    eventually(20, "backlogs drain", || peers(&a).iter().chain(peers(&b).iter()).all(|p| p["backlog"] == 0));
    let bp = peers(&b);
    assert_eq!(bp.len(), 1);
    assert_eq!(bp[0]["peerId"], a_status["peerId"]);
    for h in [&a, &b] {
        assert_eq!(rpc_ok(h, "checkInvariants", json!([])), json!({"ok": true}));
    }
}

#[test]
fn the_host_redeems_a_url_of_another_daemon_and_sends_to_it_3_5() {
    let (a, a_status, url) = exporter();
    let b = Home::started_with(None);
    start_comms(&b, &[]);
    tell_where(&b, &a_status);
    let kref = b.ok(&["url", "redeem", &url]).trim().to_owned();
    assert!(kref.starts_with("ko"), "{kref}");
    assert_eq!(send(&b, &kref, "increment", &[]), 1);
    assert_eq!(send(&b, &kref, "increment", &[]), 2);
    // The object is A's: its count moved there.
    let exporter_root = rpc_ok(&a, "getStatus", json!([]))["subclusters"][0]["vats"]["exporter"].clone();
    let root = rpc_ok(&a, "getStatus", json!([]))["vatRoots"][exporter_root.as_str().unwrap()].clone();
    assert_eq!(send(&a, root.as_str().unwrap(), "count", &[]), 2);
    // An error crosses as an error.
    let out = b.run(&["send", &kref, "fail"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("counter says no"), "{out:?}");
}

#[test]
fn garbage_collection_crosses_kernels_the_exporters_object_goes_8_4() {
    let (a, a_status, url) = exporter();
    let (b, user_root) = user(&a_status);
    assert_eq!(send(&b, &user_root, "connect", &[&arg(&url)]), "connected");
    assert_eq!(send(&b, &user_root, "makeChild", &[]), "kept says hello to Carol");
    let objects = |h: &Home| -> i64 {
        let r = rpc_ok(h, "executeDBQuery", json!({"sql": "SELECT COUNT(*) AS n FROM objects"}));
        r[0]["n"].as_str().and_then(|s| s.parse().ok()).or_else(|| r[0]["n"].as_i64()).unwrap()
    };
    let before = objects(&a);
    assert_eq!(send(&b, &user_root, "forgetChild", &[]), "forgotten");
    // B's vat lets go at its next bring-out-your-dead; B tells A; A's vat is told; A deletes.
    eventually(30, "the child is collected in A", || {
        rpc_ok(&b, "reapVats", json!({}));
        rpc_ok(&b, "collectGarbage", json!([]));
        rpc_ok(&a, "reapVats", json!({}));
        rpc_ok(&a, "collectGarbage", json!([]));
        objects(&a) < before
    });
    for h in [&a, &b] {
        assert_eq!(rpc_ok(h, "checkInvariants", json!([])), json!({"ok": true}));
    }
}

/// Launches the exporter in A (whose comms run, `a_status`), and a daemon B with comms
/// (`opts`) whose user vat has connected to A's counter: (B, the user's root).
fn connected_user(a: &Home, a_status: &Json, opts: &str) -> (Home, String) {
    let url = launch(a, "exporter", "remote-exporter.js", &["ocapURLIssuerService"])["bootstrapResult"]
        .as_str()
        .expect("a URL")
        .to_owned();
    let b = Home::started_with(None);
    b.ok_json(&["comms", "start", "--listen", "/ip4/127.0.0.1/tcp/0", "--options", opts]);
    tell_where(&b, a_status);
    let user_root =
        launch(&b, "user", "remote-user.js", &["ocapURLRedemptionService"])["rootKref"].as_str().unwrap().to_owned();
    assert_eq!(send(&b, &user_root, "connect", &[&arg(&url)]), "connected");
    (b, user_root)
}

/// A loopback TCP port free right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn kill_9_of_the_exporter_mid_stream_loses_nothing_acknowledged_and_repeats_nothing_5_2() {
    // Short ack timeouts so retransmission after the restart is quick; long enough (×4) that
    // the restart does not look like a lost peer.
    let opts = r#"{"ackTimeoutMs": 3000}"#;
    let a = Home::started_with(None);
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let a_status = a.ok_json(&["comms", "start", "--listen", &listen, "--options", opts]);
    let (b, user_root) = connected_user(&a, &a_status, opts);
    // B's vat streams increments; A dies with `kill -9` in the middle and comes back.
    const N: u64 = 60;
    let stream = b.spawn(&["--json", "send", &user_root, "stream", &N.to_string()]);
    let exporter_root = |h: &Home| -> String {
        let st = rpc_ok(h, "getStatus", json!([]));
        let vat = st["subclusters"][0]["vats"]["exporter"].as_str().unwrap().to_owned();
        st["vatRoots"][vat.as_str()].as_str().unwrap().to_owned()
    };
    let root = exporter_root(&a);
    eventually(60, "the stream gets going", || send(&a, &root, "count", &[]).as_u64().unwrap_or(0) >= 10);
    let pid = a.pid().expect("A's pid");
    let _ = std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status();
    a.ok(&["daemon", "start"]);
    let back = a.ok_json(&["peers"]);
    assert_eq!((back["state"].as_str(), &back["peerId"]), (Some("connected"), &a_status["peerId"]), "{back}");
    let out = stream.wait_with_output().unwrap();
    assert!(out.status.success(), "the stream failed: {}", String::from_utf8_lossy(&out.stderr));
    let seen: Json = serde_json::from_slice(&out.stdout).unwrap();
    let want: Vec<u64> = (1..=N).collect();
    assert_eq!(seen, json!(want), "every increment once, in order");
    assert_eq!(send(&a, &exporter_root(&a), "count", &[]), N);
}

#[test]
fn kernels_that_do_not_listen_meet_through_a_relay_started_with_ocap_relay_9() {
    let scratch = tempfile::tempdir().unwrap();
    let relay_dir = scratch.path().join("relay");
    let r = Home::new();
    let relay = r.ok_json(&[
        "relay",
        "start",
        "--dir",
        relay_dir.to_str().unwrap(),
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--listen",
        "/ip4/127.0.0.1/tcp/0/ws",
    ]);
    let tcp = relay["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .find(|a| !a.contains("/ws"))
        .expect("a TCP address")
        .to_owned();
    let relay_addr = tcp;
    assert!(relay_addr.contains("/p2p/12D3KooW"), "{relay_addr}");
    let status = r.ok_json(&["relay", "status", "--dir", relay_dir.to_str().unwrap()]);
    assert_eq!(status["peerId"], relay["peerId"]);

    let a = Home::started_with(None);
    a.ok_json(&["comms", "start", "--relay", &relay_addr]);
    let issued = launch(&a, "exporter", "remote-exporter.js", &["ocapURLIssuerService"]);
    let url = issued["bootstrapResult"].as_str().unwrap().to_owned();
    assert!(url.contains(&format!(",{relay_addr}")), "the URL names the relay: {url}");
    let b = Home::started_with(None);
    b.ok_json(&["comms", "start", "--relay", &relay_addr]);
    let kref = b.ok(&["url", "redeem", &url]).trim().to_owned();
    assert_eq!(send(&b, &kref, "increment", &[]), 1);
    let stopped = r.ok_json(&["relay", "stop", "--dir", relay_dir.to_str().unwrap()]);
    assert_eq!(stopped["stopped"], true);
}

/// The recovery phrase of the JS kernel's e2e tests (remote-comms.md §1.3).
const MNEMONIC: &str = "legal winner thank year wave sausage worth useful legal winner thank yellow";

fn comms_with_mnemonic(home: &Home, listen: &str, opts: &str) -> Json {
    use std::io::Write;
    let mut child = home
        .cmd()
        .args(["--json", "comms", "start", "--mnemonic-stdin", "--listen", listen, "--options", opts])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{MNEMONIC}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_peer_purged_and_back_with_the_same_mnemonic_is_a_new_incarnation_and_what_waited_is_rejected_7() {
    let opts = r#"{"ackTimeoutMs": 3000, "reconnectionMaxDelayMs": 500}"#;
    let a = Home::started_with(None);
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let a_status = comms_with_mnemonic(&a, &listen, opts);
    let (b, user_root) = connected_user(&a, &a_status, opts);
    let waiting = b.spawn(&["--json", "send", &user_root, "waitForever"]);
    eventually(30, "the call reaches A", || {
        peers(&b).first().is_some_and(|p| p["backlog"] == 0 && p["sentSeq"].as_u64().unwrap_or(0) >= 2)
    });
    // A loses its state and comes back with the same identity (the recovery path).
    a.ok(&["daemon", "purge", "--force"]);
    a.ok(&["daemon", "start"]);
    let back = comms_with_mnemonic(&a, &listen, opts);
    assert_eq!(back["peerId"], a_status["peerId"], "the same peer ID from the same phrase");
    let out = waiting.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let settled: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(settled, "rejected: [KERNEL:PEER_RESTARTED] Remote peer restarted (incarnation changed)");
}

#[test]
fn a_peer_that_never_comes_back_is_given_up_and_every_waiting_promise_rejected_6() {
    let opts = r#"{"ackTimeoutMs": 1000, "maxRetryAttempts": 3}"#;
    let a = Home::started_with(None);
    let a_status = a.ok_json(&["comms", "start", "--listen", "/ip4/127.0.0.1/tcp/0", "--options", opts]);
    let url = launch(&a, "exporter", "remote-exporter.js", &["ocapURLIssuerService"])["bootstrapResult"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = Home::started_with(None);
    b.ok_json(&["comms", "start", "--listen", "/ip4/127.0.0.1/tcp/0", "--options", opts]);
    tell_where(&b, &a_status);
    let kref = b.ok(&["url", "redeem", &url]).trim().to_owned();
    assert_eq!(send(&b, &kref, "increment", &[]), 1);
    a.ok(&["daemon", "stop"]);
    let out = b.run(&["send", &kref, "increment"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    assert!(err.contains("[KERNEL:CONNECTION_LOST] Remote connection lost"), "{err}");
    let p = &peers(&b)[0];
    // The withdrawn call stays logged as a no-op, for the peer if it ever returns.
    assert_eq!(p["backlog"], 1, "{p}");
    assert!(p["lastError"].as_str().is_some_and(|e| e.contains("Remote connection lost")), "{p}");
    // It does return after all (on its old port): the call its caller was told had failed
    // did not run there, and new calls do.
    a.ok(&["daemon", "start"]);
    assert_eq!(send(&b, &kref, "increment", &[]), 2, "the withdrawn increment never ran");
}

/// §6 and §9.4: the host redeems a URL of a daemon that is gone (nothing listens at its
/// address any more). B's transport finds the port refusing five times in a row and gives
/// up, the redemption fails, and the peer, never reached and holding nothing, is not listed
/// (unlike a peer once reached, above).
#[test]
fn a_url_of_a_daemon_that_is_gone_fails_and_leaves_no_peer_listed_6() {
    let (a, _a_status, url) = exporter();
    a.ok(&["daemon", "stop"]);
    let b = Home::started_with(None);
    let opts = r#"{"reconnectionBaseDelayMs": 20, "reconnectionMaxDelayMs": 200}"#;
    b.ok_json(&["comms", "start", "--listen", "/ip4/127.0.0.1/tcp/0", "--options", opts]);
    let out = b.run(&["url", "redeem", &url]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    assert!(err.contains("Remote connection lost"), "{err}");
    assert_eq!(peers(&b), Vec::<Json>::new());
    assert_eq!(rpc_ok(&b, "checkInvariants", json!([])), json!({"ok": true}));
}

#[test]
fn a_restarted_daemon_listens_where_it_did_so_its_urls_and_peers_still_reach_it_9() {
    // `--listen …/tcp/0` lets the system choose a port once; restarts keep it.
    let (a, a_status, url) = exporter();
    let before = a_status["listenAddresses"].clone();
    let b = Home::started_with(None);
    start_comms(&b, &[]);
    let kref = b.ok(&["url", "redeem", &url]).trim().to_owned();
    assert_eq!(send(&b, &kref, "increment", &[]), 1);
    a.ok(&["daemon", "stop"]);
    a.ok(&["daemon", "start"]);
    let after = a.ok_json(&["peers"]);
    assert_eq!(after["listenAddresses"], before, "the same port after a restart");
    // B reaches it with what it knew (the URL's address), no new hints.
    assert_eq!(send(&b, &kref, "increment", &[]), 2);
}

#[test]
fn bad_peer_ids_and_system_only_objects_are_refused_by_name_10() {
    let a = Home::started_with(None);
    for method in ["closeConnection", "reconnectPeer", "registerLocationHints"] {
        let r = a.rpc(method, json!({"peerId": "x"}));
        assert_eq!(r["error"]["code"], -32602, "{method}: {r}");
        assert!(r["error"]["message"].as_str().unwrap().contains("\"x\" is not a peer ID"), "{method}: {r}");
    }
    // The kernel facet (ko1) is for system subclusters only: no URL may hand it out.
    let out = a.run(&["url", "issue", "ko1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("system-only"), "{out:?}");
}
