//! Plain JSON views of passable values, for hosts, the CLI and the control RPC.
//!
//! `to_json` is lossy by design (it is for people and scripts): references become
//! `{"kref": "ko5", "iface": ...}`, errors `{"error": message, "name": ...}`, bigints and
//! non-finite numbers strings, `undefined` null. `from_json` reads plain JSON data, and
//! turns `{"kref": "koN"}` (and only that exact shape) back into a reference.

use serde_json::{json, Value as Json};

use crate::refs::KRef;
use crate::smallcaps::Value;

pub fn to_json(v: &Value) -> Json {
    match v {
        Value::Undefined | Value::Null => Json::Null,
        Value::Bool(b) => json!(b),
        Value::Number(n) => match serde_json::Number::from_f64(*n) {
            Some(num) => Json::Number(num),
            None if n.is_nan() => json!("NaN"),
            None => json!(if *n > 0.0 { "Infinity" } else { "-Infinity" }),
        },
        Value::BigInt(s) => json!(s),
        Value::String(s) => json!(s),
        Value::Symbol(s) => json!(format!("Symbol({s})")),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Record(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        Value::Tagged { tag, payload } => json!({"tag": tag, "payload": to_json(payload)}),
        Value::Error { name, message, .. } => json!({"error": message, "name": name}),
        Value::Remotable { slot, iface } => json!({"kref": slot.to_string(), "iface": iface}),
        Value::Promise { slot } => json!({"kref": slot.to_string()}),
    }
}

/// Reads plain JSON as a value; `{"kref": "koN"}` / `{"kref": "kpN"}` become references.
pub fn from_json(j: &Json) -> Result<Value, crate::refs::RefParseError> {
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
        assert_eq!(to_json(&v), json!({"a": [1.0, "two", null, true], "r": {"kref": "ko5", "iface": null}}));
        assert!(from_json(&json!({"kref": "nope"})).is_err());
    }
}
