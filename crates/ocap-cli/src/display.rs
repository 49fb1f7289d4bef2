//! Turning kernel values into text for people (`display`) and JSON for scripts (`to_json`).

use ocap_kernel::smallcaps::{js_number_to_string, Value};

pub use ocap_kernel::json::to_json;

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
        other => {
            let j = to_json(other);
            let text = ocap_kernel::json::to_string(&j);
            ocap_kernel::json::drop_deep(j);
            text
        }
    }
}
