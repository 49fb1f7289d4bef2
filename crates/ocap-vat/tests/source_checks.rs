//! SES checks every source it evaluates for html-like comments, `import(`
//! expressions and direct `eval(` (vat-side spec §4.3); our patch to SES
//! (js/patches/ses+2.3.0.patch) finds the patterns' anchors before running
//! them. This probe, run as vat code through `Compartment.prototype.evaluate`,
//! checks on random sources that every source is accepted or rejected as SES's
//! unpatched search does, with the same error code and line number.

use serde_json::json;

mod common;

#[test]
fn source_checks_reject_exactly_what_the_unpatched_search_rejects() {
    let worker = common::start_vat("source-checks-vat");
    for seed in [1, 2, 3] {
        let result = common::call(&worker, "compare", json!([seed, 2000]));
        assert_eq!(result["mismatches"], json!([]), "seed {seed}: {result}");
        for outcome in ["pass", "SES_EVAL_REJECTED", "SES_HTML_COMMENT_REJECTED", "SES_IMPORT_REJECTED"] {
            assert!(result["outcomes"][outcome].as_u64().unwrap_or(0) > 50, "seed {seed}: few {outcome}: {result}");
        }
    }
}
