//! Talking to the home's daemon: `Client` makes one connection per call (host-surface.md
//! §8.2); `lifecycle` starts and stops the daemon process (§8.3). Nothing here knows how the
//! daemon works inside: only the socket, the lock file and the `ocap daemon serve` command.

pub mod lifecycle;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{json, Value as Json};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::home::Home;
use crate::rpc::{read_frame, Frame, RpcError, MAX_RESPONSE_BYTES};

/// Pause between polls while waiting for the daemon to come up or go away, and before the
/// one retry of a refused connection.
pub const POLL_INTERVAL_MS: u64 = 100;
/// Time a ping may take.
pub const PING_TIMEOUT_MS: u64 = 2000;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the daemon is not running (no answer on {0})")]
    NotRunning(PathBuf),
    #[error("talking to the daemon: {0}")]
    Io(#[from] std::io::Error),
    #[error("the daemon did not answer within {0} s")]
    Timeout(f64),
    #[error("bad response from the daemon: {0}")]
    BadResponse(String),
    #[error(transparent)]
    Rpc(#[from] RpcError),
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A client of one home's daemon.
#[derive(Debug, Clone)]
pub struct Client {
    pub socket: PathBuf,
    /// Per-call limit; `None` waits as long as the daemon takes.
    pub timeout: Option<Duration>,
}

impl Client {
    pub fn new(home: &Home, timeout: Option<Duration>) -> Client {
        Client { socket: home.socket(), timeout }
    }

    /// Calls `method` and returns its result.
    pub async fn call(&self, method: &str, params: Json) -> Result<Json, ClientError> {
        let fut = self.call_inner(method, params);
        match self.timeout {
            Some(t) => tokio::time::timeout(t, fut).await.map_err(|_| ClientError::Timeout(t.as_secs_f64()))?,
            None => fut.await,
        }
    }

    async fn connect(&self) -> Result<UnixStream, ClientError> {
        let gone = |e: &std::io::Error| {
            matches!(
                e.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
            )
        };
        match UnixStream::connect(&self.socket).await {
            Ok(s) => Ok(s),
            // Retry once: the daemon may be between accepts or just binding (as the JS client).
            Err(e) if gone(&e) => {
                tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
                match UnixStream::connect(&self.socket).await {
                    Ok(s) => Ok(s),
                    Err(e) if gone(&e) => Err(ClientError::NotRunning(self.socket.clone())),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn call_inner(&self, method: &str, params: Json) -> Result<Json, ClientError> {
        let id = format!("ocap-{}-{}", std::process::id(), NEXT_ID.fetch_add(1, Ordering::Relaxed));
        let mut line = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .map_err(|e| ClientError::BadResponse(format!("cannot encode the request: {e}")))?;
        line.push(b'\n');
        let stream = self.connect().await?;
        let (rd, mut wr) = stream.into_split();
        wr.write_all(&line).await?;
        let mut reader = BufReader::new(rd);
        let bytes = match read_frame(&mut reader, MAX_RESPONSE_BYTES).await? {
            Frame::Line(b) => b,
            Frame::Eof => return Err(ClientError::BadResponse("the daemon closed the connection".into())),
            Frame::TooLarge => {
                return Err(ClientError::BadResponse(format!("response larger than {MAX_RESPONSE_BYTES} bytes")))
            }
            Frame::Multiple => return Err(ClientError::BadResponse("more than one response".into())),
        };
        let response: Json =
            serde_json::from_slice(&bytes).map_err(|e| ClientError::BadResponse(format!("not JSON: {e}")))?;
        if let Some(err) = response.get("error") {
            let err: RpcError = serde_json::from_value(err.clone())
                .map_err(|e| ClientError::BadResponse(format!("bad error object: {e}")))?;
            return Err(err.into());
        }
        if response.get("id") != Some(&Json::String(id)) {
            return Err(ClientError::BadResponse("response id does not match".into()));
        }
        response.get("result").cloned().ok_or_else(|| ClientError::BadResponse("no result".into()))
    }

    /// Whether the daemon answers (`ping` does not touch the kernel, so a long crank does not
    /// make a healthy daemon look dead, G12).
    pub async fn ping(&self) -> bool {
        let c = Client { socket: self.socket.clone(), timeout: Some(Duration::from_millis(PING_TIMEOUT_MS)) };
        matches!(c.call("ping", json!([])).await, Ok(Json::String(s)) if s == "pong")
    }
}
