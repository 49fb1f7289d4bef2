//! The daemon's wire protocol: JSON-RPC 2.0 over a Unix stream socket, one request per
//! connection (host-surface.md §8.2). The client writes one JSON object and a `\n`; the
//! server answers with one JSON object and a `\n`, and closes the connection.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// The largest request the daemon reads, newline excluded. Larger ones get `INVALID_REQUEST`.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// The largest response the client reads (statuses and query results can be big).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// JSON-RPC error codes. The standard ones, then ours (in the server-error range).
pub mod codes {
    /// The request is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a request object, no string `method`, too large, or more than one per connection.
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Params of the wrong shape, an invalid cluster config, a malformed ref, a write in
    /// `executeDBQuery`.
    pub const INVALID_PARAMS: i64 = -32602;
    /// A kernel failure (a launch that failed, a stopped kernel, a store error).
    pub const INTERNAL_ERROR: i64 = -32603;
    /// `queueMessage`: the result promise was rejected. `data` is the rejection's CapData.
    pub const REJECTED: i64 = -32000;
    /// The vat, subcluster, kref or service named does not exist (or is not running).
    pub const NOT_FOUND: i64 = -32001;
    /// The daemon has `MAX_CONNECTIONS` connections open; the client may retry.
    pub const BUSY: i64 = -32002;
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Json>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError { code, message: message.into(), data: None }
    }

    pub fn invalid_params(message: impl Into<String>) -> RpcError {
        RpcError::new(codes::INVALID_PARAMS, format!("Invalid params: {}", message.into()))
    }
}

pub fn success(id: &Json, result: Json) -> Json {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

pub fn failure(id: &Json, error: &RpcError) -> Json {
    json!({"jsonrpc": "2.0", "id": id, "error": error})
}

/// What one read of a connection produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// One line, without its `\n` (or everything up to EOF when no `\n` came).
    Line(Vec<u8>),
    /// More than the limit arrived before a `\n`.
    TooLarge,
    /// Bytes followed the first `\n` in the same read: a second request.
    Multiple,
    /// The peer closed without sending anything.
    Eof,
}

/// Reads one `\n`-terminated frame of at most `limit` bytes.
pub async fn read_frame<R: AsyncBufRead + Unpin>(reader: &mut R, limit: usize) -> std::io::Result<Frame> {
    let mut line = Vec::new();
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if line.is_empty() { Frame::Eof } else { Frame::Line(line) });
        }
        if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            if line.len() + pos > limit {
                return Ok(Frame::TooLarge);
            }
            line.extend_from_slice(&buf[..pos]);
            let trailing = buf.len() > pos + 1;
            reader.consume(pos + 1);
            return Ok(if trailing { Frame::Multiple } else { Frame::Line(line) });
        }
        let n = buf.len();
        if line.len() + n > limit {
            return Ok(Frame::TooLarge);
        }
        line.extend_from_slice(buf);
        reader.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frame(input: &[u8], limit: usize) -> Frame {
        let mut r = tokio::io::BufReader::with_capacity(4, input);
        read_frame(&mut r, limit).await.unwrap_or(Frame::Eof)
    }

    #[tokio::test]
    async fn frames() {
        assert_eq!(frame(b"{\"a\":1}\n", 100).await, Frame::Line(b"{\"a\":1}".to_vec()));
        assert_eq!(frame(b"{\"a\":1}", 100).await, Frame::Line(b"{\"a\":1}".to_vec()));
        assert_eq!(frame(b"", 100).await, Frame::Eof);
        assert_eq!(frame(b"0123456789\n", 5).await, Frame::TooLarge);
        assert_eq!(frame(b"0123456789", 5).await, Frame::TooLarge);
        assert_eq!(frame(b"01234\n", 5).await, Frame::Line(b"01234".to_vec()));
        let mut r = tokio::io::BufReader::new(&b"{}\n{}\n"[..]);
        assert_eq!(read_frame(&mut r, 100).await.unwrap_or(Frame::Eof), Frame::Multiple);
    }

    #[test]
    fn errors_serialize_without_empty_data() {
        let e = RpcError::new(codes::METHOD_NOT_FOUND, "nope");
        assert_eq!(failure(&json!(1), &e), json!({"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"nope"}}));
    }
}
