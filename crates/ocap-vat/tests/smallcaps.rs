//! Liveslots' marshaller encodes and decodes plain data with the native
//! smallcaps codec (src/smallcaps.rs, through our patch to @endo/marshal).
//! These probes check that it is byte for byte and value for value what
//! @endo/marshal's JavaScript does (vat-side spec §"marshal": smallcaps), on
//! random plain data full of escaping cases: the vat encodes with its own
//! JavaScript marshal, liveslots decodes natively, the vat checks the value
//! against the JavaScript decoding, and liveslots' native encoding of the
//! answer must be the JavaScript's body.

use serde_json::{json, Value};

mod common;
use common::deliver_body as deliver;

fn start() -> ocap_vat::VatWorker {
    common::start_vat("smallcaps-vat")
}

#[test]
fn native_smallcaps_encodes_and_decodes_plain_data_as_the_javascript_does() {
    let worker = start();
    let mut result = 0;
    for seed in [1, 2, 3] {
        result += 1;
        let bodies = deliver(&worker, &format!("#{}", json!(["generate", [seed, 400]])), result);
        let bodies: Vec<String> = serde_json::from_str(&bodies[1..]).expect("generated bodies");
        assert_eq!(bodies.len(), 400);
        for body in bodies {
            // Each body starts with `#`, so smallcaps escaped it with `!`.
            let body = body.strip_prefix('!').expect("escaped body").to_string();
            // `check(value, body)`: the value as its encoding, the body as a string
            // (escaped: it starts with `#`).
            let escaped = serde_json::to_string(&format!("!{body}")).expect("quote");
            let methargs = format!("#[\"check\",[{},{escaped}]]", &body[1..]);
            result += 1;
            let answer = deliver(&worker, &methargs, result);
            assert_eq!(answer, body, "methargs {methargs}");
        }
    }
}

/// Bodies the native decoder must leave to the JavaScript (which accepts or rejects them
/// as it always did): tagged values, errors, unknown constants, reserved characters, big
/// bigints, odd keys.
#[test]
fn native_smallcaps_leaves_what_is_not_plain_data_to_the_javascript() {
    let worker = start();
    let cases: [(&str, Value); 6] = [
        (r##"#{"#tag":"t","payload":1}"##, json!("#{\"#tag\":\"t\",\"payload\":1}")),
        (r##""+123456789012345678901234567890""##, json!("#\"+123456789012345678901234567890\"")),
        (r##"{"!a":1,"b":"!c"}"##, json!("#{\"a\":1,\"b\":\"c\"}")),
        (r##"{"!#x":"-5"}"##, json!("#{\"!#x\":\"-5\"}")),
        (r##"[" ", "#NaN", "+0"]"##, json!("#[\" \",\"#NaN\",\"+0\"]")),
        (r##"{"10":1,"9":2,"a":3}"##, json!("#{\"9\":2,\"10\":1,\"a\":3}")),
    ];
    for (i, (encoding, expected)) in cases.iter().enumerate() {
        let encoding = encoding.strip_prefix('#').unwrap_or(encoding);
        let body = format!("#{encoding}");
        let escaped = serde_json::to_string(&format!("!{body}")).expect("quote");
        let answer = deliver(&worker, &format!("#[\"check\",[{encoding},{escaped}]]"), i + 1);
        assert_eq!(json!(answer), *expected, "case {i}");
    }
}
