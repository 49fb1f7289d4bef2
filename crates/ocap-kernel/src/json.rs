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

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{json, Value as Json};

use crate::refs::KRef;
use crate::smallcaps::{Value, MAX_DEPTH};

/// Stack kept free before going one level deeper: far more than one level of any walk here
/// uses, even unoptimised.
const RED_ZONE: usize = 128 * 1024;
/// Size of each extra stack segment allocated when a walk runs low.
const STACK_SEGMENT: usize = 2 * 1024 * 1024;

/// Runs `f` with at least `RED_ZONE` bytes of stack, on a new heap-allocated segment if the
/// current stack is short. Every recursive walk over host-side values calls it once per
/// level, which bounds their stack use per segment whatever the depth and the thread.
pub(crate) fn deeper<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(RED_ZONE, STACK_SEGMENT, f)
}

/// JSON text that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JsonTextError {
    #[error("value is too deeply nested (more than {0} levels)")]
    TooDeep(usize),
    #[error(transparent)]
    Syntax(#[from] serde_json::Error),
}

/// How deeply arrays and objects nest in JSON text, counted without parsing or recursion;
/// stops counting (and answers `limit + 1`) once past `limit`. Brackets inside strings do
/// not count. For text that is not JSON the answer is meaningless, and the parse that
/// follows reports the error.
pub fn nesting_depth(text: &[u8], limit: usize) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in text {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    max = depth;
                    if max > limit {
                        return max;
                    }
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Parses JSON text nested at most `MAX_DEPTH` levels, the depth vats exchange (see
/// `smallcaps::MAX_DEPTH`); deeper text is `TooDeep` before any of it is parsed.
pub fn parse(text: &str) -> Result<Json, JsonTextError> {
    parse_slice(text.as_bytes())
}

/// `parse`, from bytes.
pub fn parse_slice(bytes: &[u8]) -> Result<Json, JsonTextError> {
    if nesting_depth(bytes, MAX_DEPTH) > MAX_DEPTH {
        return Err(JsonTextError::TooDeep(MAX_DEPTH));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // The depth is already bounded above; the stack is grown per level by `DeepSeed`.
    de.disable_recursion_limit();
    let value = DeepSeed.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Deserializes a `serde_json::Value`, growing the stack at each level.
struct DeepSeed;

impl<'de> DeserializeSeed<'de> for DeepSeed {
    type Value = Json;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        deeper(|| d.deserialize_any(DeepVisitor))
    }
}

struct DeepVisitor;

impl<'de> Visitor<'de> for DeepVisitor {
    type Value = Json;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Json, E> {
        Ok(serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number))
    }
    fn visit_str<E>(self, s: &str) -> Result<Json, E> {
        Ok(Json::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Json, E> {
        Ok(Json::String(s))
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(DeepSeed)? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(DeepSeed)?;
            // JSON allows a key twice and serde keeps the last; a config or request that
            // says two things must not silently mean one of them (issue 11 item 1).
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
            }
            out.insert(key, value);
        }
        Ok(Json::Object(out))
    }
}

/// A JSON value read with the rules of `parse` (no duplicate keys, stack grown per level),
/// for use through any `Deserializer`, e.g. under `serde_path_to_error` so that an error
/// names where it was (`vats`: duplicate key "alice").
pub struct StrictJson(pub Json);

impl<'de> serde::Deserialize<'de> for StrictJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StrictJson, D::Error> {
        DeepSeed.deserialize(d).map(StrictJson)
    }
}

/// Serializes a `serde_json::Value`, growing the stack at each level.
struct Deep<'a>(&'a Json);

impl Serialize for Deep<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        deeper(|| match self.0 {
            Json::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Deep(item))?;
                }
                seq.end()
            }
            Json::Object(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, &Deep(v))?;
                }
                map.end()
            }
            other => other.serialize(s),
        })
    }
}

/// JSON text on one line, for values of any depth.
pub fn to_string(j: &Json) -> String {
    // Serializing a `Value` into a `Vec` cannot fail (keys are strings), and the output is UTF-8.
    serde_json::to_vec(&Deep(j)).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

/// Indented JSON text, for values of any depth.
pub fn to_string_pretty(j: &Json) -> String {
    serde_json::to_vec_pretty(&Deep(j)).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

/// Drops a JSON value without recursion (the default drop recurses once per level).
pub fn drop_deep(j: Json) {
    let mut pending = vec![j];
    while let Some(v) = pending.pop() {
        match v {
            Json::Array(items) => pending.extend(items),
            Json::Object(m) => pending.extend(m.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

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
