//! Shared by the vat crate's integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use ocap_vat::bundle_vat_source;

/// Bundles `tests/vats/<name>.js` once per test process.
pub fn bundle(name: &str) -> String {
    static CACHE: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(name.to_string())
        .or_insert_with(|| {
            let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vats").join(format!("{name}.js"));
            bundle_vat_source(&source).unwrap_or_else(|e| panic!("bundling {name}: {e}"))
        })
        .clone()
}

/// A worker running `tests/vats/<name>.js`, initialised (its bundle built once per process).
pub fn start_vat(name: &str) -> ocap_vat::VatWorker {
    let worker = ocap_vat::VatWorker::spawn(ocap_vat::WorkerOptions::new("v1", name), Box::new(|_| {}))
        .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
    let reply = worker
        .init(serde_json::json!({"bundleSpec": format!("{name}.bundle")}), Some(bundle(name)), vec![])
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    assert_eq!(reply.error, None, "{name} failed to start");
    worker
}

/// Delivers a message whose smallcaps methargs body is `body` to the root object
/// (`o+0`), with result `p-<result>`; returns the resolution's body. Panics if
/// the result is rejected or not resolved in that delivery.
pub fn deliver_body(worker: &ocap_vat::VatWorker, body: &str, result: usize) -> String {
    let reply = worker
        .deliver(serde_json::json!(["message", "o+0", {"methargs": {"body": body, "slots": []}, "result": format!("p-{result}")}]))
        .expect("deliver");
    let Some(resolution) = reply.syscalls.first().map(|s| &s[1][0]) else {
        panic!("no resolve: {reply:?} (methargs {body})")
    };
    assert_eq!(resolution[1], serde_json::json!(false), "rejected: {resolution} (methargs {body})");
    resolution[2]["body"].as_str().expect("body").to_string()
}

/// Calls `method(...args)` on the root object and returns the answer as JSON
/// (the smallcaps body without its `#`; for answers of plain JSON data).
pub fn call(worker: &ocap_vat::VatWorker, method: &str, args: serde_json::Value) -> serde_json::Value {
    // A fresh result promise for each call (per process; liveslots needs only
    // that a vat never sees one twice).
    static NEXT_RESULT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1_000_000);
    let result = NEXT_RESULT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let body = deliver_body(worker, &format!("#{}", serde_json::json!([method, args])), result);
    serde_json::from_str(&body[1..]).expect("answer JSON")
}
