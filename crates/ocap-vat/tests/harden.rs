//! The realm's `harden` is native (src/harden.rs, installed before SES by
//! js/src/prelude/harden.js). These probes, run as vat code, check that it
//! keeps SES's semantics.

use serde_json::{json, Value};

mod common;

fn start() -> ocap_vat::VatWorker {
    common::start_vat("harden-vat")
}

fn call(worker: &ocap_vat::VatWorker, method: &str) -> Value {
    common::call(worker, method, json!([]))
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

/// harden.rs keeps *leaves* out of the WeakSet (a frozen function, promise or short array
/// holding only primitives, with a hardened intrinsic for prototype: harden would change
/// nothing in them). Objects that look like leaves but hold something unhardened, or are not
/// quite frozen, must still be walked and frozen whole.
#[test]
fn harden_walks_objects_that_look_like_leaves_but_are_not() {
    let worker = start();
    assert_eq!(call(&worker, "leafLookalikes"), Value::Array(vec![Value::Bool(true); 10]));
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
