//! Every test vat of the workspace, bundled by this crate and by the
//! esbuild path (`ocap_vat::bundle_vat_source`), behaves the same in a real
//! vat worker: same init outcome, vatstore and syscalls, and the same
//! answers to a few deliveries.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};

use ocap_bundle::bundle_vat;
use ocap_vat::{bundle_vat_source, DeliveryReply, VatWorker, WorkerOptions};
use serde_json::{json, Value};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// The packages ocap-vat's build installed (where `sourceSpec` imports resolve).
fn node_modules() -> PathBuf {
    ocap_vat::vat_node_modules().to_path_buf()
}

/// Per delivery (init first): error, syscalls, vatstore writes.
type Outcome = (Option<String>, Vec<Value>, Vec<(String, String)>);

fn run(bundle: String, deliveries: &[Value]) -> Vec<Outcome> {
    let (tx, _events) = mpsc::channel();
    let tx = Mutex::new(tx);
    let worker = VatWorker::spawn(
        WorkerOptions::new("v1", "t"),
        Box::new(move |event| {
            let _ = tx.lock().unwrap().send(event);
        }),
    )
    .expect("spawn");
    let summary = |r: DeliveryReply| (r.error, r.syscalls, r.vatstore_sets);
    let mut out = vec![];
    match worker.init(json!({"bundleSpec": "t.bundle", "parameters": {"name": "t"}}), Some(bundle), vec![]) {
        Ok(reply) => out.push(summary(reply)),
        Err(e) => {
            out.push((Some(format!("init failed: {e}")), vec![], vec![]));
            return out;
        }
    }
    for d in deliveries {
        match worker.deliver(d.clone()) {
            Ok(reply) => out.push(summary(reply)),
            Err(e) => out.push((Some(format!("deliver failed: {e}")), vec![], vec![])),
        }
    }
    worker.terminate();
    out
}

fn message(method: &str, args: Value, result: &str) -> Value {
    let body = format!("#{}", json!([method, args]));
    json!(["message", "o+0", {"methargs": {"body": body, "slots": []}, "result": result}])
}

#[test]
fn every_test_vat_behaves_as_with_esbuild() {
    let aliases = ocap_vat::vat_aliases();
    let mut sources: Vec<PathBuf> = ["crates/ocap-vat/tests/vats", "crates/ocap-cli/tests/vats"]
        .iter()
        .flat_map(|d| std::fs::read_dir(workspace().join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "js"))
        .collect();
    sources.sort();
    let deliveries = [
        message("ping", json!([]), "p-1"),
        message("hello", json!(["bob"]), "p-2"),
        message("increment", json!([]), "p-3"),
    ];
    let mut failures = vec![];
    for source in &sources {
        let ours = match bundle_vat(source, &[node_modules()], &aliases) {
            Ok(text) => text,
            Err(e) => {
                failures.push(format!("{}: {e}", source.display()));
                continue;
            }
        };
        let theirs = bundle_vat_source(source).unwrap();
        let a = run(ours, &deliveries);
        let b = run(theirs, &deliveries);
        eprintln!("{}: init error {:?}", source.file_name().unwrap().to_string_lossy(), a[0].0);
        if a != b {
            failures.push(format!("{}:\n ours    {a:?}\n esbuild {b:?}", source.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn exo_patterns_store_errors_and_local_modules_behave_as_with_esbuild() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vats/exo-vat.js");
    let ours = bundle_vat(&source, &[node_modules()], &[]).unwrap_or_else(|e| panic!("{e}"));
    let exports: Value = serde_json::from_str::<Value>(&ours).unwrap()["exports"].clone();
    let mut exports: Vec<String> = serde_json::from_value(exports).unwrap();
    exports.sort();
    assert_eq!(exports, ["buildRootObject", "makeCounter"]);
    let theirs = bundle_vat_source(&source).unwrap();
    let deliveries = [
        message("ping", json!([]), "p-1"),
        message("put", json!(["a", 1]), "p-2"),
        message("put", json!(["a", 2]), "p-3"),
        message("incr", json!([]), "p-4"),
        message("badIncr", json!([]), "p-5"),
        message("mode", json!([]), "p-6"),
        message("check", json!([false]), "p-7"),
        message("check", json!([true]), "p-8"),
        message("later", json!(["v"]), "p-9"),
    ];
    let a = run(ours, &deliveries);
    let b = run(theirs, &deliveries);
    for (i, r) in a.iter().enumerate() {
        eprintln!("{i}: {:?} {:?}", r.0, r.1);
    }
    assert_eq!(a[0].0, None);
    assert_eq!(a[1].1, vec![json!(["resolve", [["p-1", false, {"body": "#\"pong\"", "slots": []}]]])]);
    assert_eq!(a[6].1, vec![json!(["resolve", [["p-6", false, {"body": "#\"production\"", "slots": []}]]])]);
    assert_eq!(a, b);
}
