//! The realm's `passStyleOf` is native (src/pass_style.rs, set up by
//! js/src/prelude/04-pass-style.js and 05-pass-style.js). These probes, run as
//! vat code, check that vat code gets it and that it answers exactly as
//! `@endo/pass-style`'s JavaScript `passStyleOf` does (vat-side spec §"marshal":
//! the pass styles of liveslots' marshaller).

use serde_json::{json, Value};

mod common;
use common::call;

fn start() -> ocap_vat::VatWorker {
    common::start_vat("pass-style-vat")
}

#[test]
fn vat_code_gets_the_native_pass_style_of_hardened() {
    let worker = start();
    assert_eq!(call(&worker, "whichPassStyleOf", json!([])), json!([true, "passStyleOf", true, false]));
}

/// Random values (plain data with remotables, promises, errors, tagged values, proxies,
/// cycles, symbols, accessors, holes, odd prototypes and unfrozen parts mixed in at any
/// depth): the native answer, or error, is the JavaScript one.
#[test]
fn native_pass_style_of_answers_as_the_javascript_one_on_random_values() {
    let worker = start();
    for seed in [1, 2, 3, 4] {
        let result = call(&worker, "compare", json!([seed, 1500]));
        assert_eq!(result["mismatches"], json!([]), "seed {seed}: {result}");
        let kinds = result["kinds"].as_object().expect("kinds");
        // The generator reaches every outcome the native walk decides, and errors.
        for kind in ["ok:copyArray", "ok:copyRecord", "ok:number", "ok:string", "ok:bigint", "ok:remotable", "error"] {
            assert!(kinds.get(kind).and_then(Value::as_u64).unwrap_or(0) > 0, "seed {seed}: no {kind} in {kinds:?}");
        }
    }
}

#[test]
fn native_pass_style_of_answers_as_the_javascript_one_on_edge_cases() {
    let worker = start();
    let result = call(&worker, "edgeCases", json!([]));
    let all = result.as_array().expect("array");
    assert_eq!(all.len(), 14);
    assert!(all.iter().all(|v| v == &json!(true)), "{result}");
}
