//! The realm's `harden` is native (src/harden.rs, installed before SES by
//! js/src/prelude/harden.js). These probes, run as vat code, check that it
//! keeps SES's semantics.

use std::path::Path;

use ocap_vat::{bundle_vat_source, VatWorker, WorkerOptions};
use serde_json::{json, Value};

fn start() -> VatWorker {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vats/harden-vat.js");
    let bundle = bundle_vat_source(&source).expect("bundle");
    let worker = VatWorker::spawn(WorkerOptions::new("v1", "harden"), Box::new(|_| {})).expect("spawn");
    let reply = worker.init(json!({"bundleSpec": "harden-vat.bundle"}), Some(bundle), vec![]).expect("init");
    assert_eq!(reply.error, None);
    worker
}

fn call(worker: &VatWorker, method: &str) -> Value {
    let body = format!("#{}", json!([method, []]));
    let reply = worker
        .deliver(json!(["message", "o+0", {"methargs": {"body": body, "slots": []}, "result": "p-1"}]))
        .expect("deliver");
    let resolution = &reply.syscalls[0][1][0];
    assert_eq!(resolution[1], json!(false), "{method} rejected: {resolution}");
    serde_json::from_str(&resolution[2]["body"].as_str().unwrap()[1..]).unwrap()
}

#[test]
fn harden_freezes_the_whole_graph_prototypes_accessors_symbols_and_hidden_properties() {
    let worker = start();
    assert_eq!(call(&worker, "deep"), Value::Array(vec![Value::Bool(true); 13]));
    assert_eq!(call(&worker, "primitives"), json!([1, "s", null, true, true, true]));
    assert_eq!(call(&worker, "mutateAfterHarden"), json!(["TypeError", 1]));
}

/// harden.rs answers "hardened?" without the WeakSet for extensible objects and for the
/// realm's prototypes; a frozen object that was never hardened must still be walked, and
/// graphs past the small-graph scan (shared nodes, cycles) frozen whole.
#[test]
fn harden_walks_frozen_but_unhardened_objects_and_large_or_cyclic_graphs() {
    let worker = start();
    assert_eq!(call(&worker, "frozenButNotHardened"), json!([false, true, true]));
    assert_eq!(call(&worker, "largeGraphs"), json!([true, true, true]));
}

#[test]
fn harden_treats_typed_arrays_as_ses_does() {
    let worker = start();
    assert_eq!(call(&worker, "typedArray"), json!([7, "x", "TypeError", "TypeError", false]));
}

#[test]
fn harden_goes_through_proxy_traps_and_fails_when_a_proxy_refuses() {
    let worker = start();
    assert_eq!(call(&worker, "proxies"), json!([true, true, true, true, true, "TypeError"]));
}
