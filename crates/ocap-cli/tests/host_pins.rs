//! The host's holds on objects, through a real daemon and real JS vats. Every object in a
//! result the host receives is pinned once for it (so the kref it printed keeps working);
//! a long-running host releases them with `ocap unpin` (control method `unpinObject`, ours;
//! the JS kernel has `pinObject`/`unpinObject` as kernel functions only, kernel-core.md
//! §"Reference counting"), and an object nobody else holds is then collected: its row and
//! its exporter's c-list entry go. `ocap pin` adds a hold.
//!
//! Vat: `tests/vats/holder.js` (`makeThing()` returns a fresh heap object it keeps no
//! reference to).

use serde_json::{json, Value as Json};

mod common;
use common::Home;

const INVALID_PARAMS: i64 = -32602;
const NOT_FOUND: i64 = -32001;

/// `{owner, pins}` of an object's row after the kernel's GC (as `executeDBQuery` gives them: strings), or
/// `None` once it is gone.
fn object_row(home: &Home, kref: &str) -> Option<Json> {
    assert_eq!(home.rpc_ok("collectGarbage", json!([])), Json::Null);
    let id = kref.strip_prefix("ko").expect("an object kref");
    let rows =
        home.rpc_ok("executeDBQuery", json!({"sql": format!("SELECT owner, pins FROM objects WHERE id = {id}")}));
    rows.as_array().expect("rows").first().cloned()
}

fn clist_entries(home: &Home, kref: &str) -> usize {
    let sql = format!("SELECT endpoint FROM clist WHERE kref = '{kref}'");
    home.rpc_ok("executeDBQuery", json!({"sql": sql})).as_array().expect("rows").len()
}

/// An RPC call that must fail; its (code, message).
fn rpc_err(home: &Home, method: &str, params: Json) -> (i64, String) {
    let r = home.rpc(method, params.clone());
    let code = r["error"]["code"].as_i64().unwrap_or_else(|| panic!("{method} {params} did not fail: {r}"));
    (code, r["error"]["message"].as_str().unwrap_or_default().to_owned())
}

/// `makeThing()` through `ocap send --raw`: the new object's kref (the result's one slot).
fn make_thing(home: &Home, root: &str) -> String {
    let capdata = home.ok_json(&["send", root, "makeThing", "--raw"]);
    let slots = capdata["slots"].as_array().expect("slots");
    assert_eq!(slots.len(), 1, "{capdata}");
    slots[0].as_str().expect("kref").to_owned()
}

#[test]
fn a_result_object_is_held_for_the_host_until_it_unpins_it() {
    let home = Home::new();
    let root = home.launch_one("holder", "holder.js", &[])["rootKref"].as_str().expect("root").to_owned();
    let thing = make_thing(&home, &root);

    // Held for the host: one pin, the exporter keeps it, and it answers.
    let row = object_row(&home, &thing).expect("the host's pin keeps the object");
    assert_eq!(row["pins"], "1", "{row}");
    assert_eq!(clist_entries(&home, &thing), 1, "the exporter's entry");
    assert_eq!(home.send_ok(&thing, "label", &[]), json!("thing 1"));

    // A second hold, released: still there.
    assert_eq!(home.ok(&["pin", &thing]).trim(), format!("{thing} pinned"));
    assert_eq!(object_row(&home, &thing).expect("pinned twice")["pins"], "2");
    assert_eq!(home.ok(&["unpin", &thing]).trim(), format!("{thing} unpinned"));
    assert_eq!(object_row(&home, &thing).expect("still pinned once")["pins"], "1");

    // The last hold released: nobody holds it, so it is collected; its kref no longer works.
    let out = home.ok_json(&["unpin", &thing]);
    assert_eq!(out, json!({"kref": thing, "status": "unpinned"}));
    assert_eq!(object_row(&home, &thing), None, "the object outlived the host's last pin");
    assert_eq!(clist_entries(&home, &thing), 0, "the exporter was told to drop and retire it");
    let failed = home.run(&["send", &thing, "label"]);
    assert!(!failed.status.success(), "a collected object still answered");

    // Others are untouched: the root still works and makes more.
    let second = make_thing(&home, &root);
    assert_ne!(second, thing);
    assert_eq!(home.send_ok(&second, "label", &[]), json!("thing 2"));
    assert_eq!(home.rpc_ok("checkInvariants", json!([])), json!({"ok": true}));
}

#[test]
fn bad_unpins_are_refused_and_change_nothing() {
    let home = Home::new();
    let root = home.launch_one("holder", "holder.js", &[])["rootKref"].as_str().expect("root").to_owned();
    let thing = make_thing(&home, &root);
    home.ok(&["unpin", &thing]);

    // Not pinned any more, unknown, a promise, not a kref: each named, nothing changed.
    let (code, message) = rpc_err(&home, "unpinObject", json!({"kref": thing}));
    assert!(code == INVALID_PARAMS || code == NOT_FOUND, "{code} {message}");
    assert!(message.contains(&thing), "{message}");
    let (code, message) = rpc_err(&home, "unpinObject", json!({"kref": "ko999999"}));
    assert_eq!(code, NOT_FOUND, "{message}");
    assert!(message.contains("ko999999"), "{message}");
    let (code, message) = rpc_err(&home, "unpinObject", json!({"kref": "kp1"}));
    assert_eq!(code, INVALID_PARAMS, "{message}");
    assert!(message.contains("kp1") && message.contains("promise"), "{message}");
    let (code, _) = rpc_err(&home, "unpinObject", json!({"kref": "hello"}));
    assert_eq!(code, INVALID_PARAMS);
    let (code, _) = rpc_err(&home, "unpinObject", json!({}));
    assert_eq!(code, INVALID_PARAMS);

    // The CLI says which kref failed and exits non-zero.
    let out = home.run(&["unpin", "ko999999"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ko999999"), "{out:?}");

    // A root the host still holds is unaffected by all of it.
    assert_eq!(home.send_ok(&root, "ping", &[]), json!("pong"));
    assert_eq!(home.rpc_ok("checkInvariants", json!([])), json!({"ok": true}));
}
