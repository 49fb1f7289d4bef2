//! A vat's QuickJS runtime gives back every byte it allocated when its worker stops, however
//! the worker ends: terminated idle, terminated with a timer pending, a failed start, killed
//! by its delivery budget or its memory limit.
//!
//! The count is exact (`ocap_vat::runtime_bytes_leaked`, kept by the vat's allocator after
//! `JS_FreeRuntime`), not a memory figure. The native `harden`'s JS values used to be held by
//! the closure of a JS function, a cycle the collector cannot see that kept every vat's realm
//! and heap alive for good (~0.4 MB for a bare runtime, ~0.9 MB for a started vat, the whole
//! heap for a vat killed at its memory limit).
//!
//! This file is its own test binary, so nothing else changes the process-wide count.

use ocap_vat::{runtime_bytes_leaked, VatWorker, VatWorkerError, WorkerOptions};
use serde_json::json;

mod common;
use common::bundle;

fn message(method: &str, args: serde_json::Value, result: &str) -> serde_json::Value {
    let body = format!("#{}", json!([method, args]));
    json!(["message", "o+0", {"methargs": {"body": body, "slots": []}, "result": result}])
}

fn started(opts: WorkerOptions, bundle_text: &str, config: serde_json::Value) -> VatWorker {
    let worker = VatWorker::spawn(opts, Box::new(|_| {})).unwrap();
    let reply = worker.init(config, Some(bundle_text.to_string()), vec![]).unwrap();
    assert_eq!(reply.error, None);
    worker
}

#[test]
fn every_way_a_worker_ends_frees_its_whole_runtime() {
    let ping = bundle("ping-vat");
    let timer = bundle("timer-vat");
    let throws = bundle("build-throw-vat");
    let config = json!({"bundleSpec": "x.bundle"});
    let mut cases: Vec<&str> = Vec::new();
    let mut check = |case: &'static str| {
        cases.push(case);
        assert_eq!(runtime_bytes_leaked(), 0, "bytes never freed after: {}", cases.join(", "));
    };

    // A runtime with the prelude only (SES, liveslots, the supervisor, native harden).
    VatWorker::spawn(WorkerOptions::new("v1", "bare"), Box::new(|_| {})).unwrap().terminate();
    check("a bare runtime");

    // A started vat that served messages, with every optional global endowed.
    let all_globals = json!({
        "bundleSpec": "x.bundle",
        "globals": ocap_vat::ALLOWED_GLOBAL_NAMES,
        "network": {"allowedHosts": []},
    });
    let w = started(WorkerOptions::new("v2", "busy"), &ping, all_globals);
    for i in 0..20 {
        let reply = w.deliver(message("increment", json!([]), &format!("p-{}", i + 1))).unwrap();
        assert_eq!(reply.error, None);
    }
    w.terminate();
    check("a vat that served messages");

    // A timer still pending when the worker stops.
    let w = started(WorkerOptions::new("v3", "timer"), &timer, config.clone());
    w.deliver(message("delayed", json!(["late", 60_000]), "p-1")).unwrap();
    w.terminate();
    check("a vat with a pending timer");

    // buildRootObject throws: the start fails and the worker is stopped.
    let w = VatWorker::spawn(WorkerOptions::new("v4", "throws"), Box::new(|_| {})).unwrap();
    let reply = w.init(config.clone(), Some(throws), vec![]).unwrap();
    assert!(reply.error.is_some_and(|e| e.contains("from buildRootObject")));
    w.terminate();
    check("a failed start");

    // Killed by its delivery budget in an endless loop.
    let mut opts = WorkerOptions::new("v5", "spinner");
    opts.delivery_timeout_ms = 300;
    let w = started(opts, &ping, config.clone());
    let err = w.deliver(message("spin", json!([]), "p-1")).unwrap_err();
    assert!(matches!(&err, VatWorkerError::Died { reason, .. } if reason.contains("interrupted")), "{err}");
    w.terminate();
    check("a vat interrupted in an endless loop");

    // Killed at its memory limit, its heap full.
    let mut opts = WorkerOptions::new("v6", "hog");
    opts.memory_limit_bytes = 64 * 1024 * 1024;
    let w = started(opts, &ping, config);
    let err = w.deliver(message("hog", json!([]), "p-1")).unwrap_err();
    assert!(matches!(&err, VatWorkerError::Died { reason, .. } if reason.contains("memory limit")), "{err}");
    w.terminate();
    check("a vat killed at its memory limit");
}
