//! Plain JSON views of passable values, for hosts, the CLI and the control RPC, and the
//! reading and printing of JSON text that may nest as deep as a vat's values do.
//!
//! `to_json` is lossy by design (it is for people and scripts): references become
//! `{"kref": "ko5", "iface": ...}`, errors `{"error": message, "name": ...}`, bigints their
//! decimal digits as a string, NaN and ±Infinity the strings `"NaN"`, `"Infinity"`,
//! `"-Infinity"`, `-0` is `0` (as `JSON.stringify` prints it), `undefined` null. A number
//! that is an integer within ±2^53 (where every integer is exactly a JS number) is a JSON
//! integer (`4`, never `4.0`); any other number is printed in the shortest form that reads
//! back as the same number. `from_json` reads plain JSON data, and turns `{"kref": "koN"}`
//! (and only that exact shape) back into a reference.
//!
//! Depth: vats exchange values nested thousands of levels deep, and serde_json stops at
//! 128. `parse` reads JSON text up to `smallcaps::MAX_DEPTH` levels (a clear error beyond),
//! and every walk here (`parse`, `to_json`, `from_json`, `to_string`, `drop_deep`) grows the
//! stack as it descends, so a deep value is safe on any thread, a 2 MiB one included.

use serde_json::{json, Value as Json};

use crate::json_text::deeper;
pub use crate::json_text::{
    drop_deep, nesting_depth, parse, parse_slice, to_string, to_string_pretty, JsonTextError, StrictJson,
};
use crate::refs::KRef;
use crate::smallcaps::Value;

/// A JS number as JSON; see the module doc.
pub fn number_to_json(n: f64) -> Json {
    /// 2^53: up to here every integer is exactly representable, so `n` is the integer.
    const MAX_SAFE: f64 = 9_007_199_254_740_992.0;
    if n.is_finite() && n.fract() == 0.0 && n.abs() <= MAX_SAFE {
        // Exact: |n| ≤ 2^53 fits i64; -0.0 becomes 0.
        return Json::Number((n as i64).into());
    }
    match serde_json::Number::from_f64(n) {
        Some(num) => Json::Number(num),
        None if n.is_nan() => json!("NaN"),
        None => json!(if n > 0.0 { "Infinity" } else { "-Infinity" }),
    }
}

pub fn to_json(v: &Value) -> Json {
    deeper(|| match v {
        Value::Undefined | Value::Null => Json::Null,
        Value::Bool(b) => json!(b),
        Value::Number(n) => number_to_json(*n),
        Value::BigInt(s) => json!(s),
        Value::String(s) => json!(s),
        Value::Symbol(s) => json!(format!("Symbol({s})")),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Record(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        Value::Tagged { tag, payload } => json!({"tag": tag, "payload": to_json(payload)}),
        Value::Error { name, message, .. } => json!({"error": message, "name": name}),
        Value::Remotable { slot, iface } => json!({"kref": slot.to_string(), "iface": iface}),
        Value::Promise { slot } => json!({"kref": slot.to_string()}),
    })
}

/// Reads plain JSON as a value; `{"kref": "koN"}` / `{"kref": "kpN"}` become references.
pub fn from_json(j: &Json) -> Result<Value, crate::refs::RefParseError> {
    deeper(|| {
        Ok(match j {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            Json::String(s) => Value::String(s.clone()),
            Json::Array(items) => Value::Array(items.iter().map(from_json).collect::<Result<_, _>>()?),
            Json::Object(m) => {
                if let (1, Some(Json::String(k))) = (m.len(), m.get("kref")) {
                    let kref: KRef = k.parse()?;
                    return Ok(Value::presence(kref, None));
                }
                Value::Record(m.iter().map(|(k, v)| Ok((k.clone(), from_json(v)?))).collect::<Result<_, _>>()?)
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json_text::MAX_DEPTH;

    #[test]
    fn plain_data_round_trips_and_krefs_become_presences() {
        let j = json!({"a": [1, "two", null, true], "r": {"kref": "ko5"}});
        let v = from_json(&j).unwrap();
        match &v {
            Value::Record(m) => assert_eq!(m["r"], Value::presence(KRef::Object(5), None)),
            _ => panic!(),
        }
        assert_eq!(to_json(&v), json!({"a": [1, "two", null, true], "r": {"kref": "ko5", "iface": null}}));
        assert!(from_json(&json!({"kref": "nope"})).is_err());
    }

    /// Integers print as integers, other numbers in their shortest round-trip form.
    #[test]
    fn numbers_print_as_js_prints_them() {
        let cases: [(f64, &str); 12] = [
            (4.0, "4"),
            (0.0, "0"),
            (-0.0, "0"),
            (-7.0, "-7"),
            (2.5, "2.5"),
            (0.1, "0.1"),
            (9_007_199_254_740_992.0, "9007199254740992"),
            (-9_007_199_254_740_992.0, "-9007199254740992"),
            (1e21, "1e+21"),
            (f64::NAN, "\"NaN\""),
            (f64::INFINITY, "\"Infinity\""),
            (f64::NEG_INFINITY, "\"-Infinity\""),
        ];
        for (n, text) in cases {
            assert_eq!(to_string(&number_to_json(n)), text, "{n}");
        }
        let big = to_string(&number_to_json(2f64.powi(60)));
        assert_eq!(big.parse::<f64>().unwrap(), 2f64.powi(60), "beyond 2^53 a number keeps its value: {big}");
    }

    fn nested(n: usize) -> String {
        format!("{}0{}", "[".repeat(n), "]".repeat(n))
    }

    /// Deep JSON text parses up to the limit, on a thread with a small stack, and is refused
    /// beyond it; brackets in strings do not count.
    #[test]
    fn deep_text_parses_up_to_the_limit_on_a_small_stack() {
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let j = parse(&nested(MAX_DEPTH)).unwrap();
                let v = from_json(&j).unwrap();
                let back = to_json(&v);
                assert_eq!(to_string(&back), nested(MAX_DEPTH));
                drop_deep(back);
                assert_eq!(to_string(&j), nested(MAX_DEPTH));
                assert!(to_string_pretty(&j).starts_with("[\n  [\n"));
                drop_deep(j);
                crate::smallcaps::drop_deep(v);
                assert!(matches!(parse(&nested(MAX_DEPTH + 1)), Err(JsonTextError::TooDeep(MAX_DEPTH))));
                assert_eq!(nesting_depth(br#"["[[[\"[", {"a": "}}"}]"#, 10), 2);
                assert!(parse("[1,").is_err());
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
