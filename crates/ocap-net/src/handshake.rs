//! The connection handshake (remote-comms.md §4.2), the first frame exchange on every new
//! channel: the dialer writes `{"method":"handshake","params":{"incarnationId":"<id>"}}`,
//! the listener answers `{"method":"handshakeAck","params":{"incarnationId":"<id>"}}`.
//! Both texts are produced byte for byte as the JS kernel's `JSON.stringify` does.

use std::time::Duration;

use futures::{AsyncRead, AsyncWrite};

use crate::framing::{read_frame, write_frame};

/// The handshake frame the dialer writes.
pub(crate) fn handshake_frame(incarnation_id: &str) -> String {
    frame("handshake", incarnation_id)
}

/// The answer the listener writes.
pub(crate) fn handshake_ack_frame(incarnation_id: &str) -> String {
    frame("handshakeAck", incarnation_id)
}

fn frame(method: &str, incarnation_id: &str) -> String {
    // serde_json escapes the id as JSON.stringify does for any string a UUID can be.
    let id = serde_json::Value::String(incarnation_id.to_owned()).to_string();
    format!(r#"{{"method":"{method}","params":{{"incarnationId":{id}}}}}"#)
}

/// If `text` is a frame of `method` with a string `params.incarnationId`, that id.
pub(crate) fn parse(text: &str, method: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    if value.get("method")?.as_str()? != method {
        return None;
    }
    Some(value.get("params")?.get("incarnationId")?.as_str()?.to_owned())
}

/// Whether a frame that arrived after registration is a stray handshake (§4.2), to be
/// ignored rather than delivered. Cheap for ordinary kernel frames.
pub(crate) fn is_stray_handshake(text: &str) -> bool {
    text.len() < 4096
        && text.contains("\"handshake")
        && serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v.get("method").and_then(|m| m.as_str()).map(str::to_owned))
            .is_some_and(|m| m == "handshake" || m == "handshakeAck")
}

/// Reads one frame as text within `timeout`.
async fn read_text<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
    timeout: Duration,
    what: &str,
) -> Result<String, String> {
    match tokio::time::timeout(timeout, read_frame(r, max)).await {
        Err(_) => Err(format!("timed out after {} ms waiting for {what}", timeout.as_millis())),
        Ok(Err(e)) => Err(format!("reading {what}: {e}")),
        Ok(Ok(None)) => Err(format!("stream closed before {what}")),
        Ok(Ok(Some(bytes))) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

async fn write_text<W: AsyncWrite + Unpin>(w: &mut W, text: &str, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, write_frame(w, text.as_bytes())).await {
        Err(_) => Err(format!("handshake write timed out after {} ms", timeout.as_millis())),
        Ok(Err(e)) => Err(format!("handshake write failed: {e}")),
        Ok(Ok(())) => Ok(()),
    }
}

/// Timeouts and sizes a handshake runs under.
#[derive(Clone, Copy)]
pub(crate) struct HandshakeLimits {
    pub max_message_size: usize,
    pub handshake_timeout: Duration,
    pub write_timeout: Duration,
}

/// The dialer's side: writes the handshake, reads the ack. Returns the peer's incarnation id.
pub(crate) async fn outbound<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    incarnation_id: &str,
    limits: HandshakeLimits,
) -> Result<String, String> {
    write_text(stream, &handshake_frame(incarnation_id), limits.write_timeout).await?;
    let text = read_text(stream, limits.max_message_size, limits.handshake_timeout, "handshakeAck").await?;
    parse(&text, "handshakeAck").ok_or_else(|| format!("Expected handshakeAck, got: {}", clip(&text)))
}

/// The listener's side: reads the handshake, writes the ack. Returns the peer's incarnation id.
pub(crate) async fn inbound<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    incarnation_id: &str,
    limits: HandshakeLimits,
) -> Result<String, String> {
    let text = read_text(stream, limits.max_message_size, limits.handshake_timeout, "handshake").await?;
    let remote = parse(&text, "handshake").ok_or_else(|| format!("Expected handshake, got: {}", clip(&text)))?;
    write_text(stream, &handshake_ack_frame(incarnation_id), limits.write_timeout).await?;
    Ok(remote)
}

fn clip(text: &str) -> String {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_byte_exact() {
        assert_eq!(handshake_frame("0b7c-1"), r#"{"method":"handshake","params":{"incarnationId":"0b7c-1"}}"#);
        assert_eq!(handshake_ack_frame("x"), r#"{"method":"handshakeAck","params":{"incarnationId":"x"}}"#);
        assert_eq!(parse(&handshake_frame("a\"b"), "handshake").as_deref(), Some("a\"b"));
        assert_eq!(parse(&handshake_frame("a"), "handshakeAck"), None);
        assert_eq!(parse(r#"{"method":"handshake","params":{"incarnationId":3}}"#, "handshake"), None);
        assert!(is_stray_handshake(&handshake_frame("a")));
        assert!(!is_stray_handshake(r#"{"method":"deliver","params":["handshake"]}"#));
    }
}
