//! The kernel-to-kernel message envelope (remote-comms.md §4.3–4.4), byte-compatible with the
//! JS kernel's `RemoteHandle`: every message but a standalone ack is
//! `{"seq":S,"ack":A,"method":M,"params":P}` (keys in that order, `ack` only once something was
//! received), a standalone ack is `{"ack":N}`.
//!
//! | method | params |
//! |---|---|
//! | `deliver` | `["message", target, {"methargs":{"body","slots"},"result"}]`, `["notify", [[rpid, rejected, {"body","slots"}]…]]`, `["dropExports", [rref…]]`, `["retireExports", [rref…]]`, `["retireImports", [rref…]]`, `["bringOutYourDead"]` |
//! | `redeemURL` | `[url, replyKey]` |
//! | `redeemURLReply` | `[success, replyKey, rref or error text]` |
//!
//! Refs here are as they travel: in the **receiver's** frame (§2.1). Turning the sender's
//! c-list refs into that frame ([`invert_rref`]) is the caller's job, as is everything about
//! what a message means. Pure: no store, no clock.

use serde_json::{json, Map, Value};

use crate::capdata::CapData;
use crate::vat::{VatDelivery, VatResolution};

/// A frame that is not a well-formed envelope, with what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("message is not JSON: {0}")]
    NotJson(String),
    #[error("message is not a JSON object")]
    NotAnObject,
    /// The JS kernel's text for a bad or missing `seq` (§4.3).
    #[error("invalid message seq")]
    BadSeq,
    #[error("invalid message ack")]
    BadAck,
    #[error("unknown method {0:?}")]
    UnknownMethod(String),
    #[error("bad params for {method}: {why}")]
    BadParams { method: String, why: String },
}

/// What one method call carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `deliver`: a delivery to the receiving kernel, which arrives as the sending kernel's
    /// syscalls. A `Message` always has a result (§4.4: send-only is not supported).
    Deliver(VatDelivery),
    /// `redeemURL`: `[url, replyKey]` (§3.5).
    RedeemUrl { url: String, reply_key: String },
    /// `redeemURLReply`: `[success, replyKey, rref-or-error]` (§3.5).
    RedeemUrlReply { ok: bool, reply_key: String, value: String },
}

impl Body {
    /// The method name on the wire.
    pub fn method(&self) -> &'static str {
        match self {
            Body::Deliver(_) => "deliver",
            Body::RedeemUrl { .. } => "redeemURL",
            Body::RedeemUrlReply { .. } => "redeemURLReply",
        }
    }

    fn params(&self) -> Value {
        match self {
            Body::Deliver(d) => delivery_params(d),
            Body::RedeemUrl { url, reply_key } => json!([url, reply_key]),
            Body::RedeemUrlReply { ok, reply_key, value } => json!([ok, reply_key, value]),
        }
    }
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `{"ack":N}`: everything up to `N` arrived.
    Ack(u64),
    /// A sequenced message, with the cumulative ack it piggybacks.
    Message { seq: u64, ack: Option<u64>, body: Body },
}

/// The JSON text of a sequenced message. `ack` is left out when `None` (nothing received yet).
pub fn encode(seq: u64, ack: Option<u64>, body: &Body) -> String {
    let mut m = Map::new();
    m.insert("seq".into(), seq.into());
    if let Some(a) = ack {
        m.insert("ack".into(), a.into());
    }
    m.insert("method".into(), body.method().into());
    m.insert("params".into(), body.params());
    Value::Object(m).to_string()
}

/// The JSON text of a standalone ack.
pub fn encode_ack(ack: u64) -> String {
    format!("{{\"ack\":{ack}}}")
}

fn capdata_json(d: &CapData<String>) -> Value {
    json!({"body": d.body, "slots": d.slots})
}

fn delivery_params(d: &VatDelivery) -> Value {
    match d {
        VatDelivery::Message { target, methargs, result } => {
            json!(["message", target, {"methargs": capdata_json(methargs), "result": result}])
        }
        VatDelivery::Notify(rs) => {
            let rs: Vec<Value> = rs.iter().map(|r| json!([r.vpid, r.rejected, capdata_json(&r.data)])).collect();
            json!(["notify", rs])
        }
        VatDelivery::DropExports(refs) => json!(["dropExports", refs]),
        VatDelivery::RetireExports(refs) => json!(["retireExports", refs]),
        VatDelivery::RetireImports(refs) => json!(["retireImports", refs]),
        VatDelivery::BringOutYourDead => json!(["bringOutYourDead"]),
    }
}

/// An rref with its direction flipped (`ro+3` ⇄ `ro-3`): the sender's c-list ref in the
/// receiver's frame (§2.1). Anything that is not `r[op][+-]…` is returned unchanged, so a
/// malformed ref is refused where it is looked up, with its own text.
pub fn invert_rref(rref: &str) -> String {
    let b = rref.as_bytes();
    if b.len() > 3 && b[0] == b'r' && (b[1] == b'o' || b[1] == b'p') && (b[2] == b'+' || b[2] == b'-') {
        let sign = if b[2] == b'+' { '-' } else { '+' };
        format!("{}{}{}", &rref[..2], sign, &rref[3..])
    } else {
        rref.to_owned()
    }
}

/// Decodes a frame. A standalone ack is recognised by an `ack` without a `seq` (§4.3).
pub fn decode(text: &str) -> Result<Frame, EnvelopeError> {
    let v: Value = serde_json::from_str(text).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
    let Value::Object(m) = v else { return Err(EnvelopeError::NotAnObject) };
    let ack = match m.get("ack") {
        None | Some(Value::Null) => None,
        Some(a) => Some(positive_int(a).ok_or(EnvelopeError::BadAck)?),
    };
    let seq = match m.get("seq") {
        None | Some(Value::Null) => {
            return ack.map(Frame::Ack).ok_or(EnvelopeError::BadSeq);
        }
        Some(s) => positive_int(s).ok_or(EnvelopeError::BadSeq)?,
    };
    let method = m.get("method").and_then(Value::as_str).unwrap_or("");
    let params = m.get("params").unwrap_or(&Value::Null);
    let bad = |why: &str| EnvelopeError::BadParams { method: method.to_owned(), why: why.to_owned() };
    let body = match method {
        "deliver" => Body::Deliver(decode_delivery(params).map_err(|why| bad(&why))?),
        "redeemURL" => match params.as_array().map(Vec::as_slice) {
            Some([Value::String(url), Value::String(key)]) => {
                Body::RedeemUrl { url: url.clone(), reply_key: key.clone() }
            }
            _ => return Err(bad("expected [url, replyKey]")),
        },
        "redeemURLReply" => match params.as_array().map(Vec::as_slice) {
            Some([Value::Bool(ok), Value::String(key), Value::String(value)]) => {
                Body::RedeemUrlReply { ok: *ok, reply_key: key.clone(), value: value.clone() }
            }
            _ => return Err(bad("expected [success, replyKey, value]")),
        },
        other => return Err(EnvelopeError::UnknownMethod(other.to_owned())),
    };
    Ok(Frame::Message { seq, ack, body })
}

/// A JS integer ≥ 1 (a JSON number with no fraction; `1.0` is an integer to JS).
fn positive_int(v: &Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return (n >= 1).then_some(n);
    }
    let f = v.as_f64()?;
    (f >= 1.0 && f.fract() == 0.0 && f <= 9_007_199_254_740_991.0).then_some(f as u64)
}

fn string_list(v: &Value, what: &str) -> Result<Vec<String>, String> {
    let a = v.as_array().ok_or_else(|| format!("{what} must be a list of refs"))?;
    a.iter().map(|r| r.as_str().map(str::to_owned).ok_or_else(|| format!("{what} must hold strings"))).collect()
}

fn decode_capdata(v: &Value, what: &str) -> Result<CapData<String>, String> {
    let body = v.get("body").and_then(Value::as_str).ok_or_else(|| format!("{what}.body must be a string"))?;
    let slots = string_list(v.get("slots").unwrap_or(&Value::Null), &format!("{what}.slots"))?;
    Ok(CapData::new(body, slots))
}

fn decode_delivery(params: &Value) -> Result<VatDelivery, String> {
    let a = params.as_array().ok_or("params must be a list")?;
    let kind = a.first().and_then(Value::as_str).ok_or("params[0] must name the delivery")?;
    let arg = |i: usize| a.get(i).ok_or_else(|| format!("{kind} needs params[{i}]"));
    Ok(match kind {
        "message" => {
            let target = arg(1)?.as_str().ok_or("message target must be a string")?.to_owned();
            let msg = arg(2)?;
            let methargs = decode_capdata(msg.get("methargs").unwrap_or(&Value::Null), "methargs")?;
            // The JS kernel's text (§4.4): send-only is not supported across kernels.
            let result = msg.get("result").and_then(Value::as_str).ok_or("message result must be a string")?;
            VatDelivery::Message { target, methargs, result: Some(result.to_owned()) }
        }
        "notify" => {
            let rs = arg(1)?.as_array().ok_or("notify resolutions must be a list")?;
            let mut out = Vec::with_capacity(rs.len());
            for r in rs {
                match r.as_array().map(Vec::as_slice) {
                    Some([Value::String(vpid), Value::Bool(rejected), data]) => out.push(VatResolution {
                        vpid: vpid.clone(),
                        rejected: *rejected,
                        data: decode_capdata(data, "resolution")?,
                    }),
                    _ => return Err("each resolution must be [rpid, rejected, capdata]".into()),
                }
            }
            VatDelivery::Notify(out)
        }
        "dropExports" => VatDelivery::DropExports(string_list(arg(1)?, "dropExports")?),
        "retireExports" => VatDelivery::RetireExports(string_list(arg(1)?, "retireExports")?),
        "retireImports" => VatDelivery::RetireImports(string_list(arg(1)?, "retireImports")?),
        "bringOutYourDead" => VatDelivery::BringOutYourDead,
        other => return Err(format!("unknown delivery {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples of remote-comms.md §4.4, byte for byte.
    #[test]
    fn encodes_the_spec_examples_byte_for_byte_4_4() {
        let url = "ocap:zQm@12D3KooW".to_string();
        assert_eq!(
            encode(1, None, &Body::RedeemUrl { url: url.clone(), reply_key: "1".into() }),
            r#"{"seq":1,"method":"redeemURL","params":["ocap:zQm@12D3KooW","1"]}"#
        );
        assert_eq!(
            encode(1, Some(1), &Body::RedeemUrlReply { ok: true, reply_key: "1".into(), value: "ro+1".into() }),
            r#"{"seq":1,"ack":1,"method":"redeemURLReply","params":[true,"1","ro+1"]}"#
        );
        let msg = VatDelivery::Message {
            target: "ro-1".into(),
            methargs: CapData::new("#[\"hello\",[\"Alice\"]]", vec![]),
            result: Some("rp+1".into()),
        };
        assert_eq!(
            encode(2, Some(1), &Body::Deliver(msg)),
            r##"{"seq":2,"ack":1,"method":"deliver","params":["message","ro-1",{"methargs":{"body":"#[\"hello\",[\"Alice\"]]","slots":[]},"result":"rp+1"}]}"##
        );
        let notify = VatDelivery::Notify(vec![VatResolution {
            vpid: "rp-1".into(),
            rejected: false,
            data: CapData::new("#\"vat Bob got \\\"hello\\\" from Alice\"", vec![]),
        }]);
        assert_eq!(
            encode(2, Some(2), &Body::Deliver(notify)),
            r##"{"seq":2,"ack":2,"method":"deliver","params":["notify",[["rp-1",false,{"body":"#\"vat Bob got \\\"hello\\\" from Alice\"","slots":[]}]]]}"##
        );
        assert_eq!(encode_ack(2), r#"{"ack":2}"#);
    }

    #[test]
    fn every_body_decodes_to_what_was_encoded() {
        let bodies = vec![
            Body::Deliver(VatDelivery::Message {
                target: "rp+4".into(),
                methargs: CapData::new("#[\"m\",[\"$0.Alleged: x\"]]", vec!["ro-2".into()]),
                result: Some("rp+5".into()),
            }),
            Body::Deliver(VatDelivery::Notify(vec![VatResolution {
                vpid: "rp-1".into(),
                rejected: true,
                data: CapData::new("#{\"#error\":\"no\",\"name\":\"Error\"}", vec![]),
            }])),
            Body::Deliver(VatDelivery::DropExports(vec!["ro-1".into(), "ro-2".into()])),
            Body::Deliver(VatDelivery::RetireExports(vec!["ro-1".into()])),
            Body::Deliver(VatDelivery::RetireImports(vec!["ro+9".into()])),
            Body::Deliver(VatDelivery::BringOutYourDead),
            Body::RedeemUrl { url: "ocap:z@p".into(), reply_key: "7".into() },
            Body::RedeemUrlReply { ok: false, reply_key: "7".into(), value: "ocapURL has been revoked".into() },
        ];
        for (i, body) in bodies.into_iter().enumerate() {
            let seq = i as u64 + 1;
            let ack = (i % 2 == 0).then_some(40);
            assert_eq!(decode(&encode(seq, ack, &body)), Ok(Frame::Message { seq, ack, body }));
        }
        assert_eq!(decode("{\"ack\":12}"), Ok(Frame::Ack(12)));
    }

    /// Malformed input is refused with what was wrong, the JS texts where the JS kernel has them.
    #[test]
    fn malformed_frames_say_what_is_wrong_4_3() {
        let err = |t: &str| decode(t).unwrap_err().to_string();
        assert!(err("not json").starts_with("message is not JSON"));
        assert_eq!(err("[1]"), "message is not a JSON object");
        assert_eq!(err(r#"{"method":"deliver","params":["bringOutYourDead"]}"#), "invalid message seq");
        assert_eq!(err(r#"{"seq":0,"method":"deliver","params":["bringOutYourDead"]}"#), "invalid message seq");
        assert_eq!(err(r#"{"seq":1.5,"method":"deliver","params":["bringOutYourDead"]}"#), "invalid message seq");
        assert_eq!(err(r#"{"seq":"1","method":"deliver","params":["bringOutYourDead"]}"#), "invalid message seq");
        assert_eq!(err(r#"{"seq":1,"ack":-1,"method":"x"}"#), "invalid message ack");
        assert_eq!(err(r#"{"seq":1,"method":"launch","params":[]}"#), "unknown method \"launch\"");
        assert_eq!(
            err(r##"{"seq":1,"method":"deliver","params":["message","ro-1",{"methargs":{"body":"#[]","slots":[]}}]}"##),
            "bad params for deliver: message result must be a string"
        );
        assert_eq!(
            err(r#"{"seq":1,"method":"deliver","params":["dropExports",[1]]}"#),
            "bad params for deliver: dropExports must hold strings"
        );
        assert_eq!(
            err(r#"{"seq":1,"method":"redeemURL","params":["u"]}"#),
            "bad params for redeemURL: expected [url, replyKey]"
        );
        // A JS integer written with a fraction of zero is an integer.
        assert!(matches!(
            decode(r#"{"seq":3.0,"method":"deliver","params":["bringOutYourDead"]}"#),
            Ok(Frame::Message { seq: 3, .. })
        ));
    }

    #[test]
    fn inverting_an_rref_flips_its_direction_only() {
        assert_eq!(invert_rref("ro+3"), "ro-3");
        assert_eq!(invert_rref("rp-12"), "rp+12");
        assert_eq!(invert_rref(&invert_rref("ro+7")), "ro+7");
        for odd in ["o+3", "ro3", "rx+1", "", "ro+"] {
            assert_eq!(invert_rref(odd), odd);
        }
    }
}
