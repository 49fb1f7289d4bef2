//! `ocap daemon start|stop|status|purge|exec|serve`: a kernel in a background process per
//! home, controlled over a Unix socket with the JS kernel's kernel-control JSON-RPC.
//!
//! Fixes the limitations of the JS daemon (host-surface.md §8.7, G12): `executeDBQuery` is
//! read-only; the socket is mode 0600 (and the home 0700, and every file the daemon makes
//! private); one daemon per home is enforced with `flock`, taken before the database is
//! opened; requests are bounded in size and read time; the log is rotated; `stop` returns
//! only once the process has exited.

pub mod client;
pub mod config;
pub mod lock;
mod logfile;
mod methods;
mod query;
mod server;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{json, Value as Json};
use tokio::net::UnixListener;

use self::client::{Client, LifecycleError, Started, EXIT_ALREADY_RUNNING, POLL_INTERVAL_MS};
use self::config::{ConfigFileError, DaemonConfig, DEFAULT_LOG_FILTER};
use self::lock::{DaemonLock, LockError};
use crate::error::CliError;
use crate::home::Home;
use crate::output::{print_json, Spinner};

/// Time the daemon waits for open connections to finish once the kernel has stopped.
pub const SHUTDOWN_GRACE_SECS: u64 = 5;
/// Tries (25 ms apart) to take the lock at start: a client's `is_held` probe holds it for an
/// instant, a running daemon for good.
const LOCK_TRIES: u32 = 20;

#[derive(Subcommand)]
pub enum DaemonCommand {
    /// Start the daemon in the background, unless it is running, and wait until it answers.
    Start(StartArgs),
    /// Stop the daemon; returns once its process has exited.
    Stop,
    /// Whether the daemon is running (exit status 1 if not).
    Status,
    /// Stop the daemon and delete its state (database, socket, logs, lock). Keeps daemon.json.
    Purge {
        /// Required: purging deletes every vat and its state.
        #[arg(long)]
        force: bool,
    },
    /// Call a control RPC method and print its result (starts the daemon if needed).
    Exec(ExecArgs),
    /// Run the daemon in the foreground (what `start` spawns); logs go to <home>/daemon.log.
    Serve(ServeArgs),
}

/// Options of the daemon process itself, which `start` passes on to `serve`.
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct ServeArgs {
    /// Run the invariant checker after every crank (slow; for debugging a suspected
    /// inconsistency): the first crank that breaks one is logged with what is wrong.
    #[arg(long)]
    pub check_invariants: bool,
}

impl ServeArgs {
    /// The command-line form, for the spawned `daemon serve`.
    pub fn to_args(self) -> Vec<&'static str> {
        if self.check_invariants {
            vec!["--check-invariants"]
        } else {
            vec![]
        }
    }
}

#[derive(Args)]
pub struct StartArgs {
    /// Seconds to wait for the daemon to answer (restarting many vats can take a while).
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Args)]
pub struct ExecArgs {
    /// The method (default getStatus): one of ping, shutdown, getStatus, launchSubcluster,
    /// terminateSubcluster, queueMessage, pingVat, restartVat, terminateVat, terminateAllVats,
    /// collectGarbage, clearState, reapVats, revoke, isRevoked, executeDBQuery, checkInvariants.
    pub method: Option<String>,
    /// The params, as JSON (default []). For launchSubcluster, relative sourceSpec and
    /// bundleSpec paths in params.config resolve against the current directory.
    pub params: Option<String>,
    /// Seconds to wait for the answer (default: no limit).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
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
    #[error("`ocap daemon purge` deletes every vat and its state; pass --force to do it")]
    PurgeNeedsForce,
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
    let what = what.into();
    move |source| DaemonError::Io { what, source }
}

pub async fn run(command: DaemonCommand, home: &Home, json: bool) -> Result<(), CliError> {
    match command {
        DaemonCommand::Start(args) => start(home, args.timeout, args.serve, json).await,
        DaemonCommand::Stop => stop(home, json).await,
        DaemonCommand::Status => status(home, json).await,
        DaemonCommand::Purge { force } => purge(home, force, json).await,
        DaemonCommand::Exec(args) => exec(home, args, json).await,
        DaemonCommand::Serve(args) => serve(home, args).await.map_err(|e| match e {
            DaemonError::Lock(LockError::Held { pid }) => {
                eprintln!("ocap: {}", LockError::Held { pid });
                CliError::Exit(EXIT_ALREADY_RUNNING)
            }
            e => e.into(),
        }),
    }
}

fn describe(home: &Home, running: bool, pid: Option<u32>) -> Json {
    json!({
        "running": running,
        "pid": pid,
        "home": home.dir.display().to_string(),
        "socket": home.socket().display().to_string(),
        "log": home.log().display().to_string(),
    })
}

/// Starts the daemon if needed (with a spinner), for the commands that talk to it.
pub async fn ensure_running(home: &Home, timeout_secs: u64) -> Result<Started, CliError> {
    start_with(home, timeout_secs, ServeArgs::default()).await
}

async fn start_with(home: &Home, timeout_secs: u64, serve: ServeArgs) -> Result<Started, CliError> {
    home.check_socket_path()?;
    let spinner = Spinner::new("Starting the daemon…");
    let polls = u32::try_from(timeout_secs.saturating_mul(1000) / POLL_INTERVAL_MS).unwrap_or(u32::MAX);
    let started = client::start(home, polls, &serve.to_args()).await.map_err(DaemonError::from);
    drop(spinner);
    Ok(started?)
}

async fn start(home: &Home, timeout_secs: u64, serve: ServeArgs, json: bool) -> Result<(), CliError> {
    let started = start_with(home, timeout_secs, serve).await?;
    let (pid, now) = match started {
        Started::Already(pid) => (pid, false),
        Started::Now(pid) => (pid, true),
    };
    if !now && serve.check_invariants {
        eprintln!("ocap: the daemon was already running, without --check-invariants; stop it and start it again");
    }
    if json {
        let mut out = describe(home, true, pid);
        out["started"] = json!(now);
        print_json(&out, true);
    } else {
        let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
        let what = if now { "Daemon started" } else { "Daemon already running" };
        println!("{what}{pid}. Socket: {}", home.socket().display());
    }
    Ok(())
}

async fn stop(home: &Home, json: bool) -> Result<(), CliError> {
    let spinner = Spinner::new("Stopping the daemon…");
    let stopped = client::stop(home).await.map_err(DaemonError::from);
    drop(spinner);
    let stopped = stopped?;
    if json {
        print_json(&json!({"stopped": stopped.is_some(), "pid": stopped}), true);
    } else {
        match stopped {
            Some(pid) => println!("Daemon stopped (pid {pid})."),
            None => println!("Daemon is not running."),
        }
    }
    Ok(())
}

async fn status(home: &Home, json: bool) -> Result<(), CliError> {
    let running = Client::new(home, None).ping().await;
    let held = lock::is_held(&home.lock()).map_err(DaemonError::from)?;
    let pid = if held { lock::read_pid(&home.lock()) } else { None };
    if json {
        let mut out = describe(home, running, pid);
        out["locked"] = json!(held);
        print_json(&out, true);
    } else if running {
        let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
        println!("Daemon is running{pid}. Socket: {}", home.socket().display());
    } else if held {
        let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
        println!("A daemon process{pid} holds the lock but does not answer: starting, stopping or stuck.");
    } else {
        println!("Daemon is not running.");
    }
    if running {
        Ok(())
    } else {
        Err(CliError::Exit(1))
    }
}

async fn purge(home: &Home, force: bool, json: bool) -> Result<(), CliError> {
    if !force {
        return Err(DaemonError::PurgeNeedsForce.into());
    }
    let stopped = client::stop(home).await.map_err(DaemonError::from)?;
    let mut removed = Vec::new();
    if home.dir.is_dir() {
        // Hold the lock while deleting, so no daemon starts on a half-deleted state.
        let held = DaemonLock::try_acquire(&home.lock()).map_err(DaemonError::from)?;
        let mut files = home.db_files();
        files.extend([home.socket(), home.log(), home.old_log()]);
        for f in files {
            match std::fs::remove_file(&f) {
                Ok(()) => removed.push(f.display().to_string()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(format!("removing {}", f.display()))(e).into()),
            }
        }
        held.unlink().map_err(DaemonError::from)?;
    }
    if json {
        print_json(&json!({"stopped": stopped, "removed": removed}), true);
    } else {
        if let Some(pid) = stopped {
            println!("Daemon stopped (pid {pid}).");
        }
        println!("Purged the daemon's state in {}.", home.dir.display());
    }
    Ok(())
}

async fn exec(home: &Home, args: ExecArgs, json: bool) -> Result<(), CliError> {
    let method = args.method.unwrap_or_else(|| "getStatus".into());
    let mut params: Json = match &args.params {
        Some(text) => serde_json::from_str(text).map_err(|e| CliError::Usage(format!("params are not JSON: {e}")))?,
        None => json!([]),
    };
    if method == "launchSubcluster" {
        if let Some(config) = params.get_mut("config") {
            let cwd =
                std::env::current_dir().map_err(|source| CliError::Io { what: "current directory".into(), source })?;
            crate::commands::resolve_specs(config, &cwd);
        }
    }
    ensure_running(home, StartArgs::default_timeout()).await?;
    let client = Client::new(home, args.timeout.map(Duration::from_secs));
    let spinner = Spinner::new(format!("{method}…"));
    let result = client.call(&method, params).await;
    drop(spinner);
    print_json(&result?, json);
    Ok(())
}

impl StartArgs {
    pub fn default_timeout() -> u64 {
        120
    }
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

/// The daemon itself: lock, log, kernel, socket, serve until asked to stop, then stop the
/// kernel, finish open connections, remove the socket and release the lock.
pub async fn serve(home: &Home, args: ServeArgs) -> Result<(), DaemonError> {
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
    let kernel = tokio::task::spawn_blocking(move || server::open_kernel(&h, &c))
        .await
        .map_err(|e| DaemonError::Io { what: "starting the kernel".into(), source: std::io::Error::other(e) })??;
    let listener = match bind(home) {
        Ok(l) => l,
        Err(e) => {
            let _ = kernel.stop().await;
            return Err(e);
        }
    };
    let state = server::DaemonState::new(home.clone(), config, kernel);
    spawn_signal_handlers(state.clone())?;
    tracing::info!(socket = %home.socket().display(), "daemon started");
    let mut open = server::accept_loop(state.clone(), listener).await;
    let _ = std::fs::remove_file(home.socket());
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
fn spawn_signal_handlers(state: std::sync::Arc<server::DaemonState>) -> Result<(), DaemonError> {
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
