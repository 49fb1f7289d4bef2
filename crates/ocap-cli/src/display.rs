//! Turning kernel values into text for people (`display`) and JSON for scripts (`to_json`).

use ocap_kernel::smallcaps::{js_number_to_string, Value};
use serde_json::{json, Value as Json};

/// A value as JSON: references become `{"kref": ..., "iface": ...}`, errors
/// `{"error": message, "name": ...}`, bigints strings, `undefined` null.
pub fn to_json(v: &Value) -> Json {
    match v {
        Value::Undefined | Value::Null => Json::Null,
        Value::Bool(b) => json!(b),
        Value::Number(n) if n.is_finite() => serde_json::Number::from_f64(*n).map(Json::Number).unwrap_or(Json::Null),
        Value::Number(n) => json!(js_number_to_string_nonfinite(*n)),
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

fn js_number_to_string_nonfinite(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n > 0.0 {
        "Infinity".into()
    } else {
        "-Infinity".into()
    }
}

/// A value for people: strings bare, everything else as compact JSON-like text.
pub fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Undefined => "undefined".into(),
        Value::Number(n) if n.is_finite() => js_number_to_string(*n),
        Value::BigInt(s) => format!("{s}n"),
        Value::Remotable { slot, iface } => format!("<{} {}>", iface.as_deref().unwrap_or("object"), slot),
        Value::Promise { slot } => format!("<promise {slot}>"),
        Value::Error { name, message, .. } => format!("{name}: {message}"),
        other => to_json(other).to_string(),
    }
}
