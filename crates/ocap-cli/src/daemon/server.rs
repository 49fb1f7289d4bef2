//! The daemon's socket server: accepts connections, reads one bounded request from each,
//! answers it, and never lets a request take the daemon down (bad input gets an error
//! response; a panicking handler gets `INTERNAL_ERROR`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value as Json};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::methods;
use super::state::DaemonState;
use crate::rpc::{codes, failure, read_frame, success, Frame, RpcError, MAX_REQUEST_BYTES};

/// Connections served at once. Each is its own task, so an idle or slow client holds one
/// slot and delays nobody else; past the cap a new connection is answered at once with
/// `codes::BUSY` and closed, rather than left waiting for a slot (issue 11 item 2: 64 idle
/// connections used to stall every other client for 30 s).
pub const MAX_CONNECTIONS: usize = 512;
/// Time a client has to send its request once connected.
pub const REQUEST_READ_TIMEOUT_SECS: u64 = 30;
/// After refusing an oversized request, input read and discarded so the client (still
/// writing) can read the refusal, and for how long.
pub const DRAIN_LIMIT_BYTES: u64 = 64 * 1024 * 1024;
pub const DRAIN_TIMEOUT_SECS: u64 = 5;

/// Accepts connections until shutdown is requested; returns the connections still open.
pub async fn accept_loop(state: Arc<DaemonState>, listener: UnixListener) -> JoinSet<()> {
    let mut shutdown = state.shutdown_receiver();
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tasks.spawn(refuse_busy(stream));
            continue;
        };
        let st = state.clone();
        tasks.spawn(async move {
            handle_connection(st, stream).await;
            drop(permit);
        });
    }
    tasks
}

/// Answers a connection over `MAX_CONNECTIONS` with `codes::BUSY`, without reading it.
async fn refuse_busy(stream: UnixStream) {
    tracing::warn!("refused a connection: {MAX_CONNECTIONS} connections are open (MAX_CONNECTIONS)");
    let (_rd, mut wr) = stream.into_split();
    let e = RpcError::new(
        codes::BUSY,
        format!("the daemon is busy: {MAX_CONNECTIONS} connections are open (MAX_CONNECTIONS); try again"),
    );
    if let Ok(mut out) = serde_json::to_vec(&failure(&Json::Null, &e)) {
        out.push(b'\n');
        let _ = tokio::time::timeout(Duration::from_secs(DRAIN_TIMEOUT_SECS), wr.write_all(&out)).await;
    }
    let _ = wr.shutdown().await;
}

enum After {
    Nothing,
    Drain,
    Shutdown,
}

async fn handle_connection(state: Arc<DaemonState>, stream: UnixStream) {
    let (rd, mut wr) = stream.into_split();
    let mut reader = BufReader::new(rd);
    let read = read_frame(&mut reader, MAX_REQUEST_BYTES);
    let frame = match tokio::time::timeout(Duration::from_secs(REQUEST_READ_TIMEOUT_SECS), read).await {
        Ok(Ok(frame)) => frame,
        Ok(Err(e)) => {
            tracing::debug!("reading a request: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!("closing a connection that sent no request in {REQUEST_READ_TIMEOUT_SECS} s");
            return;
        }
    };
    let (reply, after) = match frame {
        Frame::Eof => return,
        Frame::TooLarge => {
            tracing::warn!("refused a request larger than {MAX_REQUEST_BYTES} bytes");
            let e = RpcError::new(
                codes::INVALID_REQUEST,
                format!("Invalid request: larger than {MAX_REQUEST_BYTES} bytes (MAX_REQUEST_BYTES)"),
            );
            (Some(failure(&Json::Null, &e)), After::Drain)
        }
        Frame::Multiple => {
            let e = RpcError::new(codes::INVALID_REQUEST, "Only one request per connection is allowed");
            (Some(failure(&Json::Null, &e)), After::Drain)
        }
        Frame::Line(bytes) => handle_request(&state, &bytes).await,
    };
    if let Some(reply) = reply {
        match serde_json::to_vec(&reply) {
            Ok(mut out) => {
                out.push(b'\n');
                if let Err(e) = wr.write_all(&out).await {
                    tracing::debug!("writing a response: {e}");
                }
            }
            Err(e) => tracing::error!("encoding a response: {e}"),
        }
    }
    let _ = wr.shutdown().await;
    match after {
        After::Nothing => {}
        After::Drain => {
            let mut rest = reader.take(DRAIN_LIMIT_BYTES);
            let mut sink = tokio::io::sink();
            let drain = tokio::io::copy(&mut rest, &mut sink);
            let _ = tokio::time::timeout(Duration::from_secs(DRAIN_TIMEOUT_SECS), drain).await;
        }
        After::Shutdown => state.request_shutdown("shutdown request"),
    }
}

fn invalid_request(id: &Json, message: &str) -> (Option<Json>, After) {
    (Some(failure(id, &RpcError::new(codes::INVALID_REQUEST, format!("Invalid request: {message}")))), After::Nothing)
}

async fn handle_request(state: &Arc<DaemonState>, bytes: &[u8]) -> (Option<Json>, After) {
    // Arguments may nest as deep as a vat can receive (smallcaps::MAX_DEPTH), not only 128.
    let request: Json = match ocap_kernel::json::parse_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            let e = RpcError::new(codes::PARSE_ERROR, format!("Parse error: {e}"));
            return (Some(failure(&Json::Null, &e)), After::Nothing);
        }
    };
    let Json::Object(mut request) = request else {
        return invalid_request(&Json::Null, "not a JSON-RPC request object (batches are not supported)");
    };
    let id = request.remove("id");
    let reply_id = match &id {
        None => Json::Null,
        Some(v @ (Json::String(_) | Json::Number(_) | Json::Null)) => v.clone(),
        Some(_) => return invalid_request(&Json::Null, "id must be a string, a number or null"),
    };
    let Some(Json::String(method)) = request.remove("method") else {
        return invalid_request(&reply_id, "missing method");
    };
    let params = request.remove("params").unwrap_or_else(|| json!([]));
    tracing::debug!(%method, "request");
    // In its own task, so a panic in a handler is an error response and not a dead daemon.
    let st = state.clone();
    let m = method.clone();
    let result = match tokio::spawn(async move { methods::call(&st, &m, params).await }).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(%method, "handler failed: {e}");
            Err(RpcError::new(codes::INTERNAL_ERROR, format!("internal error in {method}: {e}")))
        }
    };
    if let Err(e) = &result {
        tracing::info!(%method, code = e.code, "request failed: {}", e.message);
    }
    let after = if method == "shutdown" && result.is_ok() { After::Shutdown } else { After::Nothing };
    if id.is_none() {
        // A notification: done, but no reply.
        return (None, after);
    }
    let reply = match result {
        Ok(v) => success(&reply_id, v),
        Err(e) => failure(&reply_id, &e),
    };
    (Some(reply), after)
}
