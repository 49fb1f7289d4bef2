//! Bundle ocap-vat's `ping-vat.js` with the Rust bundler and run it in a real
//! vat worker (SES + liveslots in QuickJS).
//!
//! Packages are resolved from the `node_modules` that ocap-vat's build script
//! installed (`ocap_vat::vat_node_modules()`).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Mutex;

use ocap_bundle::{bundle_vat, BundleError};
use ocap_vat::{VatWorker, WorkerOptions};
use serde_json::{json, Value};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// The packages ocap-vat's build installed (where `sourceSpec` imports resolve).
fn node_modules() -> PathBuf {
    ocap_vat::vat_node_modules().to_path_buf()
}

fn aliases() -> Vec<(String, PathBuf)> {
    ocap_vat::vat_aliases()
}

fn ping_vat() -> PathBuf {
    workspace().join("crates/ocap-vat/tests/vats/ping-vat.js")
}

#[test]
fn ping_vat_bundles_to_the_js_kernel_format() {
    let started = std::time::Instant::now();
    let text = bundle_vat(&ping_vat(), &[node_modules()], &aliases()).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("bundled in {:?}, {} bytes", started.elapsed(), text.len());
    let bundle: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(bundle["moduleFormat"], "iife");
    assert_eq!(bundle["exports"], json!(["buildRootObject"]));
    assert_eq!(bundle["external"], json!([]));
    let code = bundle["code"].as_str().unwrap();
    assert!(code.starts_with("var __vatExports__ = "), "{}", &code[..100.min(code.len())]);
    assert!(!code.contains("import("), "dynamic import text left in bundle");
    assert!(!code.contains("<!--") && !code.contains("-->"), "HTML comment text left in bundle");
    assert!(!code.contains("process.env"), "process.env left in bundle");
    let again = bundle_vat(&ping_vat(), &[node_modules()], &aliases()).unwrap();
    assert!(again == text, "bundling is not deterministic");
    if let Some(out) = std::env::var_os("OCAP_BUNDLE_DUMP") {
        std::fs::write(out, code).unwrap();
    }
}

#[test]
fn bundled_ping_vat_answers_pong_in_a_real_vat() {
    let text = bundle_vat(&ping_vat(), &[node_modules()], &aliases()).unwrap_or_else(|e| panic!("{e}"));
    let (tx, _events) = mpsc::channel();
    let tx = Mutex::new(tx);
    let worker = VatWorker::spawn(
        WorkerOptions::new("v1", "ping-vat"),
        Box::new(move |event| {
            let _ = tx.lock().unwrap().send(event);
        }),
    )
    .expect("spawn");
    let reply = worker
        .init(json!({"bundleSpec": "ping-vat.bundle", "parameters": {"name": "alice"}}), Some(text), vec![])
        .expect("init");
    assert_eq!(reply.error, None);
    let body = format!("#{}", json!(["ping", []]));
    let reply = worker
        .deliver(json!(["message", "o+0", {"methargs": {"body": body, "slots": []}, "result": "p-1"}]))
        .expect("deliver");
    assert_eq!(reply.error, None);
    assert_eq!(reply.syscalls, vec![json!(["resolve", [["p-1", false, {"body": "#\"pong\"", "slots": []}]]])]);

    // E() on a presence goes through the bundled @endo/eventual-send.
    let reply = worker
        .deliver(json!(["message", "o+0", {"methargs": {"body": "#[\"callFoo\",[\"$0.Alleged: other\"]]", "slots": ["o-1"]}, "result": "p-2"}]))
        .expect("deliver callFoo");
    assert_eq!(reply.error, None);
    assert_eq!(reply.syscalls[0][0], "send", "{:?}", reply.syscalls);
    worker.terminate();
}

#[test]
fn errors_name_the_file_and_the_import() {
    let dir = std::env::temp_dir().join(format!("ocap-bundle-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let entry = dir.join("bad.js");
    std::fs::write(&entry, "import { x } from '@nope/missing';\nexport const y = x;\n").unwrap();
    let err = bundle_vat(&entry, &[node_modules()], &[]).unwrap_err();
    match &err {
        BundleError::Unresolved { specifier, importer, .. } => {
            assert_eq!(specifier, "@nope/missing");
            assert!(importer.ends_with("bad.js"), "{err}");
        }
        other => panic!("unexpected error {other}"),
    }

    std::fs::write(&entry, "export const y = ;\n").unwrap();
    let err = bundle_vat(&entry, &[], &[]).unwrap_err();
    assert!(matches!(err, BundleError::Parse { line: 1, .. }), "{err}");

    std::fs::write(&entry, "export const y = (n) => import(n);\n").unwrap();
    let err = bundle_vat(&entry, &[], &[]).unwrap_err();
    assert!(matches!(err, BundleError::DynamicImport { .. }), "{err}");

    let cjs = dir.join("c.js");
    std::fs::write(&cjs, "module.exports = { a: 1 };\n").unwrap();
    std::fs::write(&entry, "import c from './c.js';\nexport const y = c;\n").unwrap();
    let err = bundle_vat(&entry, &[], &[]).unwrap_err();
    assert!(matches!(&err, BundleError::CommonJs { path } if path.ends_with("c.js")), "{err}");

    std::fs::write(
        &entry,
        "// a comment with import('x')\nexport const y = () => import('./c.js');\nexport const env = process.env.NODE_ENV;\n",
    )
    .unwrap();
    let text = bundle_vat(&entry, &[], &[]).unwrap_or_else(|e| panic!("{e}"));
    let bundle: Value = serde_json::from_str(&text).unwrap();
    let code = bundle["code"].as_str().unwrap();
    assert!(code.contains("Promise.resolve({})"), "{code}");
    assert!(code.contains("\"production\""), "{code}");
    assert!(!code.contains("import("), "{code}");
    let mut exports: Vec<String> = serde_json::from_value(bundle["exports"].clone()).unwrap();
    exports.sort();
    assert_eq!(exports, ["env", "y"]);
    let _ = std::fs::remove_dir_all(&dir);
}
