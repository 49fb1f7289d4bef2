//! The daemon: a kernel in a background process per home, controlled over a Unix socket with
//! the JS kernel's kernel-control JSON-RPC (`ocap daemon serve` runs `serve`). The commands
//! that start, stop and call it are `crate::commands::daemon`, through `crate::client`.
//!
//! Fixes the limitations of the JS daemon (host-surface.md §8.7, G12): `executeDBQuery` is
//! read-only; the socket is mode 0600 (and the home 0700, and every file the daemon makes
//! private); one daemon per home is enforced with `flock`, taken before the database is
//! opened; requests are bounded in size and read time; the log is rotated; `stop` returns
//! only once the process has exited.

pub mod comms;
pub mod config;
mod logfile;
pub mod methods;
mod params;
mod query;
mod server;
pub mod state;
mod status;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use clap::Args;
use tokio::net::UnixListener;

use self::config::{ConfigFileError, DaemonConfig, DEFAULT_LOG_FILTER};
use crate::home::Home;
use crate::lock::{DaemonLock, LockError};

/// Time the daemon waits for open connections to finish once the kernel has stopped.
pub const SHUTDOWN_GRACE_SECS: u64 = 5;
/// Tries (25 ms apart) to take the lock at start: a client's `is_held` probe holds it for an
/// instant, a running daemon for good.
const LOCK_TRIES: u32 = 20;

/// Options of the daemon process itself, which `start` passes on to `serve`.
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct ServeArgs {
    /// Run the invariant checker after every crank (slow; for debugging a suspected
    /// inconsistency): the first crank that breaks one is logged with what is wrong.
    #[arg(long)]
    pub check_invariants: bool,
    /// Serve the web control panel on ADDR (default 127.0.0.1:0, a free loopback port); its
    /// URL, with the access token, goes to <home>/panel.json.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = methods::DEFAULT_PANEL_ADDRESS)]
    pub panel: Option<SocketAddr>,
}

impl ServeArgs {
    /// The command-line form, for the spawned `daemon serve`.
    pub fn to_args(self) -> Vec<String> {
        let mut args = Vec::new();
        if self.check_invariants {
            args.push("--check-invariants".to_owned());
        }
        if let Some(addr) = self.panel {
            args.push(format!("--panel={addr}"));
        }
        args
    }
}

/// Why the daemon could not start, or stopped short.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The config's `remoteComms` could not be started.
    #[error("cannot start remote comms: {0}")]
    RemoteComms(String),
    /// `--panel` was given and the web panel could not start (the address is taken, say).
    #[error("cannot start the web panel: {0}")]
    Panel(String),
    #[error(transparent)]
    ConfigFile(#[from] ConfigFileError),
    #[error(transparent)]
    Home(#[from] crate::home::HomeError),
    #[error(transparent)]
    Kernel(#[from] ocap_kernel::KernelError),
    #[error(transparent)]
    Store(#[from] ocap_kernel::store::StoreError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid log filter {filter:?}: {reason}")]
    LogFilter { filter: String, reason: String },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
    let what = what.into();
    move |source| DaemonError::Io { what, source }
}

/// Takes the home's lock, retrying briefly (see `LOCK_TRIES`).
async fn acquire_lock(home: &Home) -> Result<DaemonLock, LockError> {
    let mut tries = 0;
    loop {
        match DaemonLock::try_acquire(&home.lock()) {
            Err(LockError::Held { .. }) if tries + 1 < LOCK_TRIES => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            r => return r,
        }
    }
}

fn init_logging(home: &Home, config: &DaemonConfig) -> Result<(), DaemonError> {
    let filter = match std::env::var("RUST_LOG").ok().filter(|s| !s.is_empty()) {
        Some(f) => f,
        None => config.log_filter.clone().unwrap_or_else(|| DEFAULT_LOG_FILTER.into()),
    };
    let env_filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .map_err(|e| DaemonError::LogFilter { filter: filter.clone(), reason: e.to_string() })?;
    let writer = logfile::RotatingLog::open(home.log(), home.old_log(), logfile::MAX_LOG_BYTES)
        .map_err(io_err(format!("opening {}", home.log().display())))?;
    let _ = tracing_subscriber::fmt().with_env_filter(env_filter).with_writer(writer).with_ansi(false).try_init();
    Ok(())
}

/// Binds the socket, private to the user (mode 0600).
fn bind(home: &Home) -> Result<UnixListener, DaemonError> {
    let socket = home.socket();
    // We hold the lock, so no live daemon owns a socket file left here.
    match std::fs::remove_file(&socket) {
        Ok(()) => tracing::info!("removed a stale socket"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(format!("removing {}", socket.display()))(e)),
    }
    let listener = UnixListener::bind(&socket).map_err(io_err(format!("binding {}", socket.display())))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
        .map_err(io_err(format!("setting the mode of {}", socket.display())))?;
    Ok(listener)
}

/// Removes a file the daemon made for its clients (the socket, `panel.json`), if there.
fn remove_if_there(path: &std::path::Path) -> Result<(), DaemonError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(format!("removing {}", path.display()))(e)),
    }
}

/// The daemon itself: lock, log, kernel, socket, serve until asked to stop, then stop the
/// kernel, finish open connections, remove the socket and release the lock. `panel` starts
/// the web panel (`crate::panel`), at start with `--panel` or later with `startPanel`.
pub async fn serve(home: &Home, args: ServeArgs, panel: Option<state::PanelStarter>) -> Result<(), DaemonError> {
    // Everything the daemon creates (database, log, socket) is private to the user.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    home.ensure()?;
    home.check_socket_path()?;
    // The lock comes first: a second daemon never opens the database (G12).
    let mut lock = acquire_lock(home).await?;
    lock.write_pid()?;
    let mut config = DaemonConfig::load(&home.config())?;
    config.check_invariants |= args.check_invariants;
    init_logging(home, &config)?;
    tracing::info!(pid = std::process::id(), home = %home.dir.display(), "daemon starting");
    let (h, c) = (home.clone(), config.clone());
    let kernel = tokio::task::spawn_blocking(move || state::open_kernel(&h, &c))
        .await
        .map_err(|e| DaemonError::Io { what: "starting the kernel".into(), source: std::io::Error::other(e) })??;
    let listener = match bind(home) {
        Ok(l) => l,
        Err(e) => {
            let _ = kernel.stop().await;
            return Err(e);
        }
    };
    // Remote comms: as the config says, or as they ran before the daemon stopped.
    let from_config = config.remote_comms.is_some();
    if let Some(params) = config.remote_comms.clone().or_else(|| comms::saved(home)) {
        if let Err(e) = comms::start(home, &kernel, params).await {
            if from_config {
                let _ = kernel.stop().await;
                return Err(DaemonError::RemoteComms(e.message));
            }
            tracing::error!("remote comms did not resume: {}", e.message);
        }
    }
    // A panel.json left by a daemon that died names a panel that is gone (we hold the lock).
    if let Err(e) = remove_if_there(&home.panel()) {
        let _ = kernel.stop().await;
        return Err(e);
    }
    let state = state::DaemonState::new(home.clone(), config, kernel, panel);
    spawn_signal_handlers(state.clone())?;
    if let Some(addr) = args.panel {
        if let Err(e) = state.start_panel(addr).await {
            let _ = state.kernel().await.stop().await;
            let _ = std::fs::remove_file(home.socket());
            return Err(DaemonError::Panel(e.message));
        }
    }
    tracing::info!(socket = %home.socket().display(), "daemon started");
    let mut open = server::accept_loop(state.clone(), listener).await;
    let _ = std::fs::remove_file(home.socket());
    if let Err(e) = remove_if_there(&home.panel()) {
        tracing::error!("{e}");
    }
    if let Err(e) = state.kernel().await.stop().await {
        tracing::error!("stopping the kernel: {e}");
    }
    // Calls waiting on the kernel have failed with "the kernel has stopped"; let them answer.
    let grace = tokio::time::timeout(Duration::from_secs(SHUTDOWN_GRACE_SECS), async {
        while open.join_next().await.is_some() {}
    });
    if grace.await.is_err() {
        open.abort_all();
    }
    tracing::info!("daemon stopped");
    drop(lock);
    Ok(())
}

/// SIGTERM and SIGINT stop the daemon gracefully; SIGHUP is logged and ignored.
fn spawn_signal_handlers(state: std::sync::Arc<state::DaemonState>) -> Result<(), DaemonError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(io_err("installing the SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(io_err("installing the SIGINT handler"))?;
    let mut hup = signal(SignalKind::hangup()).map_err(io_err("installing the SIGHUP handler"))?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => state.request_shutdown("SIGTERM"),
                _ = int.recv() => state.request_shutdown("SIGINT"),
                _ = hup.recv() => tracing::info!("ignoring SIGHUP"),
            }
        }
    });
    Ok(())
}
