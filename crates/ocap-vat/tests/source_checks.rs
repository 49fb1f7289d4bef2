//! SES checks every source it evaluates for html-like comments, `import(`
//! expressions and direct `eval(` (vat-side spec §4.3); our patch to SES
//! (js/patches/ses+2.3.0.patch) finds the patterns' anchors before running
//! them. This probe, run as vat code through `Compartment.prototype.evaluate`,
//! checks on random sources that every source is accepted or rejected as SES's
//! unpatched search does, with the same error code and line number.

use std::path::Path;

use ocap_vat::{bundle_vat_source, VatWorker, WorkerOptions};
use serde_json::{json, Value};

#[test]
fn source_checks_reject_exactly_what_the_unpatched_search_rejects() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vats/source-checks-vat.js");
    let bundle = bundle_vat_source(&source).expect("bundle");
    let worker = VatWorker::spawn(WorkerOptions::new("v1", "source-checks"), Box::new(|_| {})).expect("spawn");
    let reply = worker.init(json!({"bundleSpec": "source-checks-vat.bundle"}), Some(bundle), vec![]).expect("init");
    assert_eq!(reply.error, None);
    for seed in [1, 2, 3] {
        let body = format!("#{}", json!(["compare", [seed, 2000]]));
        let reply = worker
            .deliver(
                json!(["message", "o+0", {"methargs": {"body": body, "slots": []}, "result": format!("p-{seed}")}]),
            )
            .expect("deliver");
        let resolution = &reply.syscalls[0][1][0];
        assert_eq!(resolution[1], json!(false), "rejected: {resolution}");
        let result: Value = serde_json::from_str(&resolution[2]["body"].as_str().unwrap()[1..]).unwrap();
        assert_eq!(result["mismatches"], json!([]), "seed {seed}: {result}");
        for outcome in ["pass", "SES_EVAL_REJECTED", "SES_HTML_COMMENT_REJECTED", "SES_IMPORT_REJECTED"] {
            assert!(result["outcomes"][outcome].as_u64().unwrap_or(0) > 50, "seed {seed}: few {outcome}: {result}");
        }
    }
}
