//! Turning kernel values into text for people (`display`) and JSON for scripts (`to_json`).

use ocap_kernel::smallcaps::{js_number_to_string, kunser, Value};
use ocap_kernel::{CapData, KRef};
use serde_json::Value as Json;

pub use ocap_kernel::json::to_json;

use crate::error::CliError;

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

/// Decodes CapData received as JSON (`{body, slots}`).
pub fn decode_capdata(j: &Json) -> Result<Value, CliError> {
    let data: CapData<KRef> =
        serde_json::from_value(j.clone()).map_err(|e| CliError::Other(format!("bad CapData from the daemon: {e}")))?;
    kunser(&data).map_err(|e| CliError::Other(format!("undecodable result: {e}")))
}
