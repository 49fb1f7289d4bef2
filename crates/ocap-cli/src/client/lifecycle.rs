//! The daemon's life cycle seen from a client (host-surface.md §8.3): start it (spawning
//! `ocap daemon serve`) unless it runs and wait until it answers; stop it and wait until its
//! process has exited.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use super::{Client, POLL_INTERVAL_MS};
use crate::home::Home;
use crate::lock;

/// Exit status of `ocap daemon serve` when another daemon holds the home's lock.
pub const EXIT_ALREADY_RUNNING: u8 = 3;
/// Polls a stop strategy waits for the process to exit before escalating.
pub const STOP_POLLS: u32 = 300;
/// Times `start` spawns a daemon again when its child lost the lock to a probe.
const MAX_SPAWNS: u32 = 3;

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
