//! OCAP URLs end to end (remote-comms.md §3.1–3.3, local issue and redeem only), with real
//! JS vats and a real daemon: a vat issues a URL through `ocapURLIssuerService` and a vat of
//! another subcluster redeems it through `ocapURLRedemptionService` and uses the object; the
//! host issues, redeems and revokes URLs with `ocap url` and the control RPC; an issued URL
//! pins its object until it is revoked (our difference from the JS kernel); URLs and the
//! kernel's peer ID survive a daemon restart.
//!
//! Vats: `tests/vats/url-issuer.js`, `tests/vats/url-redeemer.js`.

use serde_json::{json, Value as Json};

mod common;
use common::Home;

/// A host peer ID that is not ours (the JS test relay's, remote-comms.md §1.5).
const OTHER_PEER: &str = "12D3KooWJBDqsyHQF2MWiCdU4kdqx4zTsSTLRdShg7Ui6CRWB4uc";
const ISSUER: &str = "ocapURLIssuerService";
const REDEEMER: &str = "ocapURLRedemptionService";

/// `ocap launch` of a one-vat cluster; its `{subclusterId, rootKref, bootstrapResult}`.
fn launch(home: &Home, name: &str, source: &str, services: &[&str]) -> Json {
    home.launch_one(name, source, services)
}

/// The issuer cluster: its root kref and its bootstrap result `{url, greeter, services}`.
fn launch_issuer(home: &Home) -> (String, Json) {
    let r = launch(home, "issuer", "url-issuer.js", &[ISSUER]);
    (r["rootKref"].as_str().unwrap().to_owned(), r["bootstrapResult"].clone())
}

/// The redeemer cluster: its root kref.
fn launch_redeemer(home: &Home) -> String {
    let r = launch(home, "redeemer", "url-redeemer.js", &[REDEEMER]);
    assert_eq!(r["bootstrapResult"], json!([REDEEMER]), "the vat gets the service it listed: {r}");
    r["rootKref"].as_str().unwrap().to_owned()
}

fn arg(s: &str) -> String {
    common::json_arg(s)
}

fn send(home: &Home, target: &str, method: &str, args: &[&str]) -> Json {
    home.send_ok(target, method, args)
}

/// Runs a command that must fail; its stderr.
fn fails(home: &Home, args: &[&str]) -> String {
    let out = home.run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "ocap {args:?} succeeded: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.stdout.is_empty(), "ocap {args:?} printed a result: {}", String::from_utf8_lossy(&out.stdout));
    stderr
}

fn rpc_ok(home: &Home, method: &str, params: Json) -> Json {
    home.rpc_ok(method, params)
}

/// An RPC call that must fail; its (code, message).
fn rpc_err(home: &Home, method: &str, params: Json) -> (i64, String) {
    let r = home.rpc(method, params.clone());
    let code = r["error"]["code"].as_i64().unwrap_or_else(|| panic!("{method} {params} did not fail: {r}"));
    (code, r["error"]["message"].as_str().unwrap_or_default().to_owned())
}

const INVALID_PARAMS: i64 = -32602;
const NOT_FOUND: i64 = -32001;

/// The host peer ID of an OCAP URL (`ocap:<oid>@<host>[,hints]`), checking its shape.
fn host_of(url: &str) -> String {
    let rest = url.strip_prefix("ocap:z").unwrap_or_else(|| panic!("not an ocap:z… URL: {url}"));
    let (oid, host) = rest.split_once('@').unwrap_or_else(|| panic!("no @ in {url}"));
    assert!(!oid.is_empty() && oid.chars().all(|c| c.is_ascii_alphanumeric()), "oid is not base58: {url}");
    assert!(host.starts_with("12D3KooW") && !host.contains(','), "host is not a bare peer ID: {url}");
    host.to_owned()
}

/// The same URL with another host.
fn with_host(url: &str, host: &str) -> String {
    format!("{}@{host}", url.split_once('@').unwrap().0)
}

/// `getStatus().remoteComms`, through `ocap status --json` and the RPC (they must agree).
fn remote_comms(home: &Home) -> Json {
    let via_cli = home.ok_json(&["status"])["remoteComms"].clone();
    assert_eq!(rpc_ok(home, "getStatus", json!([]))["remoteComms"], via_cli);
    via_cli
}

/// The `objects` row of `kref` in `ocap inspect --json` (after `collectGarbage`, which also
/// commits), if the object exists.
fn object_row(home: &Home, kref: &str) -> Option<Json> {
    assert_eq!(rpc_ok(home, "collectGarbage", json!([])), Json::Null);
    let inspected = home.ok_json(&["inspect", "--limit", "100000"]);
    let rows = inspected["objects"]["rows"].as_array().unwrap();
    assert_eq!(rows.len() as u64, inspected["objects"]["total"].as_u64().unwrap(), "inspect shows every object");
    let row = rows.iter().find(|r| r["kref"] == kref).cloned();
    // The same through executeDBQuery.
    let id = kref.strip_prefix("ko").unwrap();
    let sql = format!("SELECT owner, pins FROM objects WHERE id = {id}");
    let queried = rpc_ok(home, "executeDBQuery", json!({"sql": sql}));
    assert_eq!(queried.as_array().unwrap().len(), usize::from(row.is_some()), "{queried} vs {row:?}");
    row
}

/// The c-list entries naming `kref`, as `endpoint:eref:reachable`.
fn clist_entries(home: &Home, kref: &str) -> Vec<String> {
    let sql = format!("SELECT endpoint, eref, reachable FROM clist WHERE kref = '{kref}' ORDER BY endpoint");
    let rows = rpc_ok(home, "executeDBQuery", json!({"sql": sql}));
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let field = |k: &str| r[k].as_str().unwrap().to_owned();
            format!("{}:{}:{}", field("endpoint"), field("eref"), field("reachable"))
        })
        .collect()
}

fn invariants_hold(home: &Home) {
    assert_eq!(rpc_ok(home, "checkInvariants", json!([])), json!({"ok": true}));
}

/// §3.3: a vat issues a URL for its object through `ocapURLIssuerService`; a vat of another
/// subcluster, handed the URL by the host, redeems it through `ocapURLRedemptionService` and
/// calls the object through the presence it got.
#[test]
fn a_vat_issues_a_url_and_a_vat_of_another_subcluster_redeems_and_uses_it() {
    let home = Home::new();
    let (issuer_root, boot) = launch_issuer(&home);
    assert_eq!(boot["services"], json!([ISSUER]), "{boot}");
    let url = boot["url"].as_str().unwrap_or_else(|| panic!("no URL from the issuer: {boot}")).to_owned();
    let greeter = boot["greeter"]["kref"].as_str().unwrap().to_owned();
    let peer = host_of(&url);
    assert_eq!(remote_comms(&home), json!({"state": "identity-only", "peerId": peer}), "issuing made the identity");

    let redeemer = launch_redeemer(&home);
    assert_eq!(send(&home, &redeemer, "redeemAndGreet", &[&arg(&url), &arg("Alice")]), "hello, Alice");
    // The presence the vat got is the issuer's greeter (the same kernel object), and the host
    // redeems the URL to it too.
    let redeemed = send(&home, &redeemer, "redeem", &[&arg(&url)]);
    assert_eq!(redeemed["kref"], greeter.as_str(), "{redeemed}");
    assert_eq!(home.ok(&["url", "redeem", &url]).trim(), greeter);
    // The redeemer now imports it.
    let entries = clist_entries(&home, &greeter);
    assert!(entries.iter().any(|e| e.starts_with("v2:o-")), "the redeemer imports the greeter: {entries:?}");

    // The service refuses what is not an object (and methods it does not have).
    let r = send(&home, &issuer_root, "issueNonRemotables", &[]);
    for case in ["string", "number", "record", "none", "promise"] {
        let e = r[case].as_str().unwrap();
        assert!(e.starts_with("error: ") && e.contains("Argument must be a remotable"), "{case}: {r}");
    }
    let e = r["otherMethod"].as_str().unwrap();
    assert!(e.starts_with("error: ") && e.contains("frobnicate"), "{r}");

    // Redemption errors reach the vat as rejections with the kernel's texts.
    let cases = [
        (with_host(&url, OTHER_PEER), "ocapURL from a host that's not me"),
        ("ocap:zzz".to_owned(), "bad ocap URL"),
        ("not a url".to_owned(), "unparseable URL"),
        (format!("ocap:z1111111111111111111111111111111111111111111111111@{peer}"), "ocapURL has bad object reference"),
    ];
    for (bad, expected) in cases {
        let e = send(&home, &redeemer, "redeemError", &[&arg(&bad)]);
        let e = e.as_str().unwrap();
        assert!(e.starts_with("error: ") && e.contains(expected), "{bad}: {e}");
    }

    // A URL the host revokes can no longer be redeemed by the vat; the presence the vat
    // already holds keeps working (revoking the URL is not revoking the object).
    assert_eq!(send(&home, &redeemer, "keep", &[&arg(&url)]), "kept");
    assert_eq!(home.ok(&["url", "revoke", &url]).trim(), "revoked");
    let e = send(&home, &redeemer, "redeemError", &[&arg(&url)]);
    assert!(e.as_str().unwrap().contains("ocapURL has been revoked"), "{e}");
    assert_eq!(send(&home, &redeemer, "greetKept", &[&arg("Bob")]), "hello, Bob");
    assert_eq!(rpc_ok(&home, "isRevoked", json!({"kref": greeter})), false);

    // A URL the vat issues for a fresh object works the same way.
    let fresh = send(&home, &issuer_root, "issueFresh", &[&arg("hi")]);
    let fresh = fresh.as_str().unwrap();
    assert_ne!(fresh, url);
    assert_eq!(host_of(fresh), peer, "one identity for every URL");
    assert_eq!(send(&home, &redeemer, "redeemAndGreet", &[&arg(fresh), &arg("Carol")]), "hi, Carol");
    invariants_hold(&home);
}

/// A subcluster that does not list the URL services does not get them.
#[test]
fn the_services_go_only_to_subclusters_that_list_them() {
    let home = Home::new();
    let r = launch(&home, "plain", "url-redeemer.js", &[]);
    assert_eq!(r["bootstrapResult"], json!([]), "{r}");
    let r = launch(&home, "both", "url-redeemer.js", &[REDEEMER, ISSUER]);
    assert_eq!(r["bootstrapResult"], json!([ISSUER, REDEEMER]), "{r}");
}

/// §1.2, §3.3 through the CLI and the control RPC: issue, redeem, revoke, the status's
/// identity, and every error.
#[test]
fn the_host_issues_redeems_and_revokes_urls() {
    let home = Home::new();
    let counter = launch(&home, "counter", "counter.js", &[]);
    let root = counter["rootKref"].as_str().unwrap().to_owned();
    assert_eq!(remote_comms(&home), json!({"state": "disconnected"}), "no identity before the first URL");

    let url = home.ok(&["url", "issue", &root]).trim().to_owned();
    let peer = host_of(&url);
    assert_eq!(remote_comms(&home), json!({"state": "identity-only", "peerId": peer}));
    assert_eq!(home.ok(&["url", "redeem", &url]).trim(), root);
    // `--json` prints JSON strings; the RPC answers the same.
    assert_eq!(home.ok_json(&["url", "redeem", &url]), json!(root));
    assert_eq!(rpc_ok(&home, "redeemOcapURL", json!({"url": url})), json!(root));
    // Each issue is a new URL (fresh salt and nonce), for the same object and the same host.
    let second = home.ok_json(&["url", "issue", &root]);
    let second = second.as_str().unwrap().to_owned();
    let third = rpc_ok(&home, "issueOcapURL", json!({"kref": root})).as_str().unwrap().to_owned();
    assert!(url != second && second != third && url != third, "{url} {second} {third}");
    assert_eq!(host_of(&second), peer);
    assert_eq!(host_of(&third), peer);
    for u in [&second, &third] {
        assert_eq!(home.ok(&["url", "redeem", u]).trim(), root);
    }
    // What the URL names really is the object.
    let redeemed = home.ok(&["url", "redeem", &third]).trim().to_owned();
    assert_eq!(send(&home, &redeemed, "increment", &[]), 1);

    // The unrevoked URLs are listed with their object (text and `--json`), so a lost one can
    // still be revoked.
    let mut listed: Vec<String> = home.ok(&["url", "list"]).lines().map(str::to_owned).collect();
    listed.sort();
    let mut expected: Vec<String> = [&url, &second, &third].iter().map(|u| format!("{u}  {root}")).collect();
    expected.sort();
    assert_eq!(listed, expected);
    let as_json = rpc_ok(&home, "listOcapURLs", json!([]));
    assert_eq!(as_json.as_array().map(Vec::len), Some(3), "{as_json}");
    assert!(as_json.as_array().unwrap().iter().all(|u| u["kref"] == json!(root)), "{as_json}");

    // Revoking: that URL is refused by name, the object and the other URLs live on.
    assert_eq!(home.ok(&["url", "revoke", &url]).trim(), "revoked");
    assert_eq!(home.ok(&["url", "list"]).lines().count(), 2, "a revoked URL is no longer listed");
    let e = fails(&home, &["url", "redeem", &url]);
    assert!(e.contains("ocapURL has been revoked"), "{e}");
    assert_eq!(
        rpc_err(&home, "redeemOcapURL", json!({"url": url})),
        (INVALID_PARAMS, "ocapURL has been revoked".into())
    );
    let (code, msg) = rpc_err(&home, "revokeOcapURL", json!({"url": url}));
    assert!(code == INVALID_PARAMS && msg.contains("revoked"), "revoking twice: {code} {msg}");
    assert_eq!(home.ok(&["url", "redeem", &second]).trim(), root);
    assert_eq!(send(&home, &root, "increment", &[]), 2);
    assert_eq!(rpc_ok(&home, "revokeOcapURL", json!({"url": second})), Json::Null);
    assert_eq!(home.ok_json(&["url", "revoke", &third]), Json::Null);
    assert!(fails(&home, &["url", "redeem", &third]).contains("ocapURL has been revoked"));

    // Issuing for what is not a live object.
    let e = fails(&home, &["url", "issue", "kp1"]);
    assert!(e.contains("kp1 is a promise"), "a promise: {e}");
    let (code, msg) = rpc_err(&home, "issueOcapURL", json!({"kref": "kp1"}));
    assert_eq!(code, INVALID_PARAMS, "a promise: {msg}");
    assert!(msg.contains("kp1 is a promise"), "{msg}");
    let e = fails(&home, &["url", "issue", "ko999"]);
    assert!(e.contains("unknown kref ko999"), "an unknown object: {e}");
    let (code, msg) = rpc_err(&home, "issueOcapURL", json!({"kref": "ko999"}));
    assert_eq!(code, NOT_FOUND, "an unknown object: {msg}");
    let (code, msg) = rpc_err(&home, "issueOcapURL", json!({"kref": "nonsense"}));
    assert_eq!(code, INVALID_PARAMS, "a malformed kref: {msg}");
    let (code, _) = rpc_err(&home, "issueOcapURL", json!({"kref": root, "extra": 1}));
    assert_eq!(code, INVALID_PARAMS, "unknown keys are refused");
    let (code, _) = rpc_err(&home, "redeemOcapURL", json!([url]));
    assert_eq!(code, INVALID_PARAMS, "positional params are refused");

    // URLs this kernel cannot redeem, with the JS kernel's texts (§3.2, §3.3).
    let oid = url.split_once('@').unwrap().0.strip_prefix("ocap:").unwrap();
    // A byte changed in the oid: the AES-GCM tag no longer verifies.
    let last = oid.chars().last().unwrap();
    let tampered = format!("ocap:{}{}@{peer}", &oid[..oid.len() - 1], if last == '2' { '3' } else { '2' });
    let cases = [
        (with_host(&second, OTHER_PEER), "ocapURL from a host that's not me"),
        (tampered, "ocapURL has bad object reference"),
        (format!("ocap:zabc@{peer}"), "ocapURL has bad object reference"),
        ("ocap:nothing-here".to_owned(), "bad ocap URL"),
        (format!("ocap:@{peer}"), "bad ocap URL"),
        (format!("ocap://{peer}/ko1"), "bad ocap URL"),
        (format!("https:{oid}@{peer}"), "not an ocap URL"),
        ("garbage".to_owned(), "unparseable URL"),
        (String::new(), "unparseable URL"),
    ];
    for (bad, expected) in &cases {
        // Redeeming says the JS kernel's text first, then (for another kernel's URL without
        // remote comms) what to do.
        let (code, msg) = rpc_err(&home, "redeemOcapURL", json!({"url": bad}));
        assert_eq!(code, INVALID_PARAMS, "redeeming {bad:?}");
        assert!(msg.starts_with(expected), "redeeming {bad:?}: {msg}");
        let (code, msg) = rpc_err(&home, "revokeOcapURL", json!({"url": bad}));
        assert_eq!((code, msg.as_str()), (INVALID_PARAMS, *expected), "revoking {bad:?}");
    }
    let e = fails(&home, &["url", "redeem", &with_host(&second, OTHER_PEER)]);
    assert!(e.contains("ocapURL from a host that's not me"), "{e}");
    let e = fails(&home, &["url", "redeem", "garbage"]);
    assert!(e.contains("unparseable URL"), "{e}");
    // None of that changed the identity.
    assert_eq!(remote_comms(&home), json!({"state": "identity-only", "peerId": peer}));
    invariants_hold(&home);
}

/// Redeeming does not make the identity (only issuing does, §1.2 "made on first use"): a
/// kernel without one issued nothing, so every URL is another kernel's, and a vat or host
/// redeeming garbage must not fix the kernel's identity before a mnemonic could be given.
#[test]
fn a_redemption_does_not_make_the_identity_an_issue_does() {
    let home = Home::new();
    assert_eq!(remote_comms(&home), json!({"state": "disconnected"}));
    let foreign = format!("ocap:z1111111111111111111111111111111111111111111111111@{OTHER_PEER}");
    let e = fails(&home, &["url", "redeem", &foreign]);
    assert!(e.contains("ocapURL from a host that's not me"), "{e}");
    assert_eq!(remote_comms(&home), json!({"state": "disconnected"}), "a redemption made no identity");
    let (issuer_root, _) = launch_issuer(&home);
    home.ok(&["url", "issue", &issuer_root]);
    let state = remote_comms(&home);
    assert_eq!(state["state"], "identity-only", "{state}");
    let peer = state["peerId"].as_str().unwrap();
    assert!(peer.starts_with("12D3KooW") && peer != OTHER_PEER, "{state}");
}

/// Our difference from the JS kernel (§3.3 "no refcount or pin"): an issued URL keeps its
/// object, which nothing else holds, alive; revoking the URL lets it be collected.
#[test]
fn a_url_keeps_an_object_nobody_else_holds_until_it_is_revoked() {
    let home = Home::new();
    let (issuer_root, _) = launch_issuer(&home);
    // The vat makes a heap object, issues a URL for it and forgets it; the result is only
    // the URL.
    let url = send(&home, &issuer_root, "issueFresh", &[&arg("hey")]).as_str().unwrap().to_owned();
    let kref = home.ok(&["url", "redeem", &url]).trim().to_owned();
    // After the kernel's GC, only the URL's pin holds it, and its exporter still has it.
    let row = object_row(&home, &kref).expect("the URL keeps the object");
    assert_eq!(row["owner"], "v1", "{row}");
    assert_eq!(row["pins"], 1, "{row}");
    let entries = clist_entries(&home, &kref);
    assert_eq!(entries.len(), 1, "only the exporter's entry: {entries:?}");
    assert!(entries[0].starts_with("v1:o+"), "{entries:?}");
    assert!(entries[0].ends_with(":1"), "the exporter was never told to drop it: {entries:?}");
    // Bring-out-your-dead in the vat changes nothing: the kernel still holds it.
    assert_eq!(rpc_ok(&home, "reapVats", json!({})), Json::Null);
    assert!(object_row(&home, &kref).is_some(), "the object survived a reap");
    // And it works (the host's message holds no reference once it is answered).
    assert_eq!(send(&home, &kref, "greet", &[&arg("Dan")]), "hey, Dan");

    // Revoked, and with nothing else holding it, it is collected: the row and the exporter's
    // c-list entry go (the vat was told to drop and retire it).
    assert_eq!(home.ok(&["url", "revoke", &url]).trim(), "revoked");
    assert_eq!(object_row(&home, &kref), None, "the object outlived its revoked URL");
    assert_eq!(clist_entries(&home, &kref), Vec::<String>::new());
    let e = fails(&home, &["send", &kref, "greet", "\"Eve\""]);
    assert!(!e.is_empty());
    invariants_hold(&home);
}

/// Two URLs for one object: each is a pin; the object goes only when both are revoked.
#[test]
fn each_url_is_a_pin_of_its_own() {
    let home = Home::new();
    let (issuer_root, _) = launch_issuer(&home);
    let first = send(&home, &issuer_root, "issueFresh", &[&arg("yo")]).as_str().unwrap().to_owned();
    let kref = home.ok(&["url", "redeem", &first]).trim().to_owned();
    let second = home.ok(&["url", "issue", &kref]).trim().to_owned();
    assert_eq!(object_row(&home, &kref).expect("pinned")["pins"], 2);
    home.ok(&["url", "revoke", &first]);
    assert_eq!(object_row(&home, &kref).expect("the second URL keeps it")["pins"], 1);
    assert_eq!(home.ok(&["url", "redeem", &second]).trim(), kref);
    assert_eq!(send(&home, &kref, "greet", &[&arg("Fay")]), "yo, Fay");
    home.ok(&["url", "revoke", &second]);
    assert_eq!(object_row(&home, &kref), None);
    invariants_hold(&home);
}

/// The URL outlives the vat incarnation that exported its object: a heap object is orphaned
/// when its vat restarts (the new incarnation does not have it), and when its subcluster is
/// terminated; either way it stays (and stays redeemable) until the URL is revoked.
#[test]
fn a_url_keeps_an_orphaned_object_until_it_is_revoked() {
    let home = Home::new();
    let issuer = launch(&home, "issuer", "url-issuer.js", &[ISSUER]);
    let sid = issuer["subclusterId"].as_str().unwrap().to_owned();
    let root = issuer["rootKref"].as_str().unwrap().to_owned();
    let before_restart = send(&home, &root, "issueFresh", &[&arg("old")]).as_str().unwrap().to_owned();
    let old = home.ok(&["url", "redeem", &before_restart]).trim().to_owned();
    assert_eq!(rpc_ok(&home, "restartVat", json!({"id": "v1"})), Json::Null);
    let after_restart = send(&home, &root, "issueFresh", &[&arg("new")]).as_str().unwrap().to_owned();
    let new = home.ok(&["url", "redeem", &after_restart]).trim().to_owned();
    assert_eq!(send(&home, &new, "greet", &[&arg("Ida")]), "new, Ida");
    assert_eq!(rpc_ok(&home, "terminateSubcluster", json!({"id": sid})), Json::Null);

    for (url, kref) in [(&before_restart, &old), (&after_restart, &new)] {
        let row = object_row(&home, kref).expect("the URL keeps the object after its exporter is gone");
        assert_eq!(row["owner"], "-", "orphaned: {row}");
        assert_eq!(row["pins"], 1, "{row}");
        assert_eq!(home.ok(&["url", "redeem", url]).trim(), kref.as_str());
        // Messages to it are rejected (its exporter is gone), not lost.
        let e = fails(&home, &["send", kref, "greet", "\"Gus\""]);
        assert!(e.contains("OBJECT_DELETED"), "{e}");
    }
    invariants_hold(&home);

    for (url, kref) in [(&before_restart, &old), (&after_restart, &new)] {
        home.ok(&["url", "revoke", url]);
        assert_eq!(object_row(&home, kref), None, "the orphan outlived its revoked URL");
        assert!(fails(&home, &["url", "redeem", url]).contains("ocapURL has been revoked"));
    }
    invariants_hold(&home);
}

/// §1.1: the identity and the issued URLs are persistent: after the daemon is stopped, the
/// next command (which starts it again) redeems the same URL to the same object, with the
/// same peer ID; a vat still redeems and uses it; a revoked URL stays revoked.
#[test]
fn urls_and_the_peer_id_survive_a_daemon_restart() {
    let home = Home::new();
    let (issuer_root, boot) = launch_issuer(&home);
    let url = boot["url"].as_str().unwrap().to_owned();
    let greeter = boot["greeter"]["kref"].as_str().unwrap().to_owned();
    let redeemer = launch_redeemer(&home);
    let peer = host_of(&url);
    let counter = launch(&home, "counter", "counter.js", &[]);
    let counter = counter["rootKref"].as_str().unwrap().to_owned();
    let host_url = home.ok(&["url", "issue", &counter]).trim().to_owned();
    let revoked = home.ok(&["url", "issue", &counter]).trim().to_owned();
    home.ok(&["url", "revoke", &revoked]);
    // Pinned by the URL and by the host (which got it in the bootstrap result).
    let pinned = object_row(&home, &greeter).expect("the greeter");
    assert_eq!(pinned["pins"], 2, "{pinned}");
    let pid = home.pid().unwrap();

    assert!(home.ok(&["daemon", "stop"]).contains("Daemon stopped"));
    assert!(!home.run(&["daemon", "status"]).status.success(), "the daemon is stopped");
    // `ocap url redeem` starts it again.
    assert_eq!(home.ok(&["url", "redeem", &url]).trim(), greeter);
    assert_ne!(home.pid(), Some(pid), "a new daemon");
    assert_eq!(remote_comms(&home), json!({"state": "identity-only", "peerId": peer}), "the same identity");
    assert_eq!(home.ok(&["url", "redeem", &host_url]).trim(), counter);
    assert!(fails(&home, &["url", "redeem", &revoked]).contains("ocapURL has been revoked"));
    // The durable greeter is still there and answers through a fresh redemption.
    assert_eq!(send(&home, &redeemer, "redeemAndGreet", &[&arg(&url), &arg("Hal")]), "hello, Hal");
    // New URLs name the same host, and the object's pin held across the restart.
    let fresh = send(&home, &issuer_root, "issueFresh", &[&arg("again")]).as_str().unwrap().to_owned();
    assert_eq!(host_of(&fresh), peer);
    assert_eq!(object_row(&home, &greeter).expect("pinned")["pins"], 2);
    invariants_hold(&home);

    // Stopped once more, the status alone (no URL call) already shows the identity.
    home.ok(&["daemon", "stop"]);
    assert_eq!(remote_comms(&home), json!({"state": "identity-only", "peerId": peer}));
}

/// `clearState` starts a fresh kernel: a URL issued before it must not redeem to whatever
/// object now has its old kref (the first object of the fresh kernel gets the same kref).
#[test]
fn a_url_from_before_clear_state_does_not_name_the_new_kernels_object() {
    let home = Home::new();
    let root = launch(&home, "counter", "counter.js", &[])["rootKref"].as_str().unwrap().to_owned();
    let url = home.ok(&["url", "issue", &root]).trim().to_owned();
    assert_eq!(rpc_ok(&home, "clearState", json!([])), Json::Null);
    let again = launch(&home, "counter", "counter.js", &[])["rootKref"].as_str().unwrap().to_owned();
    assert_eq!(again, root, "the fresh kernel reuses the kref");
    let (code, msg) = rpc_err(&home, "redeemOcapURL", json!({"url": url}));
    assert_eq!(code, INVALID_PARAMS, "{msg}");
    assert!(
        msg == "ocapURL has bad object reference" || msg == "ocapURL from a host that's not me",
        "the old URL: {msg}"
    );
}

/// `clearState` is the JS kernel's `reset()` (host-surface.md, control methods), which resets
/// the store "keeping the identity keys" (remote-comms.md §1.4: `keySeed`, `peerId` and
/// `ocapURLKey` survive a reset).
#[test]
fn clear_state_keeps_the_peer_id() {
    let home = Home::new();
    let root = launch(&home, "counter", "counter.js", &[])["rootKref"].as_str().unwrap().to_owned();
    let peer = host_of(home.ok(&["url", "issue", &root]).trim());
    assert_eq!(rpc_ok(&home, "clearState", json!([])), Json::Null);
    assert_eq!(remote_comms(&home), json!({"state": "identity-only", "peerId": peer}), "identity lost by clearState");
}
