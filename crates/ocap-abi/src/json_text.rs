//! JSON text that may nest as deep as a vat's values do: reading it with a depth limit
//! (`parse`, `StrictJson`), printing it (`to_string`) and dropping it (`drop_deep`) without
//! running out of stack. The configs here (`config`) and, in the kernel, both `smallcaps`
//! (which reads and writes bodies) and `json` (plain JSON views of values) stand on this; it
//! depends on none of them.
//!
//! Depth: vats exchange values nested thousands of levels deep, and serde_json stops at
//! 128. `parse` reads JSON text up to `MAX_DEPTH` levels (a clear error beyond), and every
//! walk here grows the stack as it descends, so a deep value is safe on any thread.

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value as Json;

/// How deeply values may nest (arrays, records, tagged forms), on both sides of the vat
/// boundary; the kernel's `smallcaps::MAX_DEPTH` is this.
pub const MAX_DEPTH: usize = 3000;

/// Stack kept free before going one level deeper: far more than one level of any walk here
/// uses, even unoptimised.
const RED_ZONE: usize = 128 * 1024;
/// Size of each extra stack segment allocated when a walk runs low.
const STACK_SEGMENT: usize = 2 * 1024 * 1024;

/// Runs `f` with at least `RED_ZONE` bytes of stack, on a new heap-allocated segment if the
/// current stack is short. Every recursive walk over host-side values calls it once per
/// level, which bounds their stack use per segment whatever the depth and the thread.
///
/// Public because the kernel's own walks (`smallcaps`, `json`) use it too: one red zone and
/// one segment size for every walk over deep values, on either side of the boundary.
pub fn deeper<R>(f: impl FnOnce() -> R) -> R {
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
/// the kernel's `smallcaps::MAX_DEPTH`); deeper text is `TooDeep` before any of it is parsed.
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
