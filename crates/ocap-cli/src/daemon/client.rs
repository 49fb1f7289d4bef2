//! The daemon client: one connection per call (host-surface.md §8.2), and the start, stop
//! and wait logic of the daemon's life cycle (§8.3).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{json, Value as Json};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::lock;
use crate::home::Home;
use crate::rpc::{read_frame, Frame, RpcError, MAX_RESPONSE_BYTES};

/// Exit status of `ocap daemon serve` when another daemon holds the home's lock.
pub const EXIT_ALREADY_RUNNING: u8 = 3;
/// Pause between polls while waiting for the daemon to come up or go away.
pub const POLL_INTERVAL_MS: u64 = 100;
/// Polls a stop strategy waits for the process to exit before escalating.
pub const STOP_POLLS: u32 = 300;
/// Time a ping may take.
pub const PING_TIMEOUT_MS: u64 = 2000;
/// Times `start` spawns a daemon again when its child lost the lock to a probe.
const MAX_SPAWNS: u32 = 3;

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

/// How `start` went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// It was already running.
    Already(Option<u32>),
    /// This call started it.
    Now(Option<u32>),
}

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error(transparent)]
    Home(#[from] crate::home::HomeError),
    #[error("cannot start the daemon: {0}")]
    Spawn(std::io::Error),
    #[error("the daemon exited during start-up ({status}); see {log}{tail}")]
    Exited { status: String, log: String, tail: String },
    #[error("the daemon did not answer within {0} s; see {1}")]
    StartTimeout(u64, String),
    #[error("a daemon process{} holds the lock but does not answer on its socket; stop it with `ocap daemon stop`", .0.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Unresponsive(Option<u32>),
    #[error("the daemon (pid {0}) did not stop")]
    DidNotStop(u32),
    #[error("{0}")]
    Other(String),
}

/// The last lines of the log, to show why a daemon died.
fn log_tail(home: &Home) -> String {
    let Ok(text) = std::fs::read_to_string(home.log()) else { return String::new() };
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(10)..].join("\n  ");
    if tail.is_empty() {
        String::new()
    } else {
        format!(":\n  {tail}")
    }
}

fn spawn(home: &Home, serve_args: &[&str]) -> Result<Child, LifecycleError> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(LifecycleError::Spawn)?;
    // Early failures (before logging is set up) and panics land in the log too.
    let log = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(home.log())
    }
    .map_err(LifecycleError::Spawn)?;
    Command::new(exe)
        .arg("--home")
        .arg(&home.dir)
        .args(["daemon", "serve"])
        .args(serve_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        // Its own process group: a Ctrl-C meant for the CLI does not reach the daemon.
        .process_group(0)
        .spawn()
        .map_err(LifecycleError::Spawn)
}

async fn sleep_poll() {
    tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
}

/// Starts the home's daemon unless it is running, and waits until it answers. Concurrent
/// calls end with one daemon: each spawned process races for the lock, the losers exit with
/// `EXIT_ALREADY_RUNNING`, and every caller waits for the winner.
pub async fn start(home: &Home, polls: u32, serve_args: &[&str]) -> Result<Started, LifecycleError> {
    let client = Client::new(home, None);
    if client.ping().await {
        return Ok(Started::Already(lock::read_pid(&home.lock())));
    }
    home.ensure()?;
    let mut child = if lock::is_held(&home.lock())? { None } else { Some(spawn(home, serve_args)?) };
    let mut spawned: Vec<u32> = child.iter().map(Child::id).collect();
    for _ in 0..polls {
        if client.ping().await {
            let pid = lock::read_pid(&home.lock());
            let ours = pid.is_some_and(|p| spawned.contains(&p));
            return Ok(if ours { Started::Now(pid) } else { Started::Already(pid) });
        }
        if let Some(c) = child.as_mut() {
            if let Some(status) = c.try_wait().map_err(LifecycleError::Spawn)? {
                if status.code() != Some(i32::from(EXIT_ALREADY_RUNNING)) {
                    return Err(LifecycleError::Exited {
                        status: status.to_string(),
                        log: home.log().display().to_string(),
                        tail: log_tail(home),
                    });
                }
                // Another process had the lock; wait for its daemon.
                child = None;
            }
        } else if spawned.len() < MAX_SPAWNS as usize && !lock::is_held(&home.lock())? && !client.ping().await {
            // Whoever had the lock is gone without a daemon (it lost a race or died): try again.
            let c = spawn(home, serve_args)?;
            spawned.push(c.id());
            child = Some(c);
        }
        sleep_poll().await;
    }
    if lock::is_held(&home.lock())? && child.is_none() {
        return Err(LifecycleError::Unresponsive(lock::read_pid(&home.lock())));
    }
    Err(LifecycleError::StartTimeout(u64::from(polls) * POLL_INTERVAL_MS / 1000, home.log().display().to_string()))
}

/// Whether the daemon process has exited: nobody holds the lock, and its PID (if known) is
/// gone.
fn exited(lock_path: &Path, pid: Option<u32>) -> Result<bool, LifecycleError> {
    Ok(!lock::is_held(lock_path)? && pid.is_none_or(|p| !lock::process_alive(p)))
}

async fn wait_exit(lock_path: &Path, pid: Option<u32>, polls: u32) -> Result<bool, LifecycleError> {
    for _ in 0..polls {
        if exited(lock_path, pid)? {
            return Ok(true);
        }
        sleep_poll().await;
    }
    exited(lock_path, pid)
}

/// Stops the daemon and returns once its process has exited (the JS CLI returned when the
/// socket went quiet, G12). Asks over the socket first, then SIGTERM, then SIGKILL.
/// Returns the PID stopped, or `None` if none was running.
pub async fn stop(home: &Home) -> Result<Option<u32>, LifecycleError> {
    let lock_path = home.lock();
    if !lock::is_held(&lock_path)? {
        remove_stale_socket(home)?;
        return Ok(None);
    }
    let pid = lock::read_pid(&lock_path);
    let client = Client { socket: home.socket(), timeout: Some(Duration::from_secs(10)) };
    if client.call("shutdown", json!([])).await.is_ok() && wait_exit(&lock_path, pid, STOP_POLLS).await? {
        return Ok(pid);
    }
    let Some(pid) = pid else {
        return Err(LifecycleError::Other("the daemon holds its lock but its PID is unknown".into()));
    };
    for sig in [rustix::process::Signal::TERM, rustix::process::Signal::KILL] {
        if lock::is_held(&lock_path)? {
            tracing::warn!("sending {sig:?} to the daemon (pid {pid})");
            let _ = lock::signal(pid, sig);
        }
        if wait_exit(&lock_path, Some(pid), STOP_POLLS / 3).await? {
            remove_stale_socket(home)?;
            return Ok(Some(pid));
        }
    }
    Err(LifecycleError::DidNotStop(pid))
}

/// Removes a socket left by a daemon that died, if no daemon is running.
fn remove_stale_socket(home: &Home) -> Result<(), LifecycleError> {
    if std::fs::symlink_metadata(home.socket()).is_err() {
        return Ok(());
    }
    match lock::DaemonLock::try_acquire(&home.lock()) {
        Ok(_held) => match std::fs::remove_file(home.socket()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(LifecycleError::Other(format!("removing {}: {e}", home.socket().display()))),
        },
        // Someone is starting a daemon: the socket is theirs.
        Err(lock::LockError::Held { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
