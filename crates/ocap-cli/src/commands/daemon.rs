//! `ocap daemon start|stop|status|purge|exec|serve`: the commands that manage the home's
//! daemon and call its control RPC. They talk to it through `crate::client`; only `serve`
//! runs the daemon itself (`crate::daemon`), in this process.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{json, Value as Json};

use crate::client::lifecycle::{self, Started, EXIT_ALREADY_RUNNING};
use crate::client::{Client, POLL_INTERVAL_MS};
use crate::daemon::ServeArgs;
use crate::error::CliError;
use crate::home::Home;
use crate::lock::{self, DaemonLock, LockError};
use crate::output::{print_json, Spinner};

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
    /// collectGarbage, clearState, reapVats, revoke, isRevoked, executeDBQuery, checkInvariants,
    /// startPanel.
    pub method: Option<String>,
    /// The params, as JSON (default []). For launchSubcluster, relative sourceSpec and
    /// bundleSpec paths in params.config resolve against the current directory.
    pub params: Option<String>,
    /// Seconds to wait for the answer (default: no limit).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
}

/// Runs one `ocap daemon` subcommand. `serve` exits with `EXIT_ALREADY_RUNNING` when another
/// daemon holds the home's lock, which `start` (`client::lifecycle`) expects of a loser.
pub async fn run(command: DaemonCommand, home: &Home, json: bool) -> Result<(), CliError> {
    match command {
        DaemonCommand::Start(args) => start(home, args.timeout, args.serve, json).await,
        DaemonCommand::Stop => stop(home, json).await,
        DaemonCommand::Status => status(home, json).await,
        DaemonCommand::Purge { force } => purge(home, force, json).await,
        DaemonCommand::Exec(args) => exec(home, args, json).await,
        DaemonCommand::Serve(args) => {
            crate::daemon::serve(home, args, Some(crate::panel::starter())).await.map_err(|e| match e {
                crate::daemon::DaemonError::Lock(LockError::Held { pid }) => {
                    eprintln!("ocap: {}", LockError::Held { pid });
                    CliError::Exit(EXIT_ALREADY_RUNNING)
                }
                e => e.into(),
            })
        }
    }
}

/// The `--json` answer of `start` and `status`: where the daemon's files are.
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
    let args = serve.to_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = lifecycle::start(home, polls, &args).await;
    drop(spinner);
    Ok(started?)
}

/// Starts the daemon with the web panel if it is not running, else asks it to start its
/// panel (`startPanel`: it answers with the running one's URL if it has one); the panel's URL,
/// with the token.
pub async fn start_panel(home: &Home, timeout_secs: u64, serve: ServeArgs) -> Result<(Started, String), CliError> {
    let started = start_with(home, timeout_secs, serve).await?;
    let params = match serve.panel {
        Some(addr) => json!({"address": addr.to_string()}),
        None => json!({}),
    };
    let answer = Client::new(home, Some(Duration::from_secs(timeout_secs))).call("startPanel", params).await?;
    let url = answer
        .get("url")
        .and_then(Json::as_str)
        .ok_or_else(|| CliError::Other(format!("startPanel answered without a url: {answer}")))?;
    Ok((started, url.to_owned()))
}

async fn start(home: &Home, timeout_secs: u64, serve: ServeArgs, json: bool) -> Result<(), CliError> {
    let (started, panel) = match serve.panel {
        Some(_) => start_panel(home, timeout_secs, serve).await.map(|(s, url)| (s, Some(url)))?,
        None => (start_with(home, timeout_secs, serve).await?, None),
    };
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
        if let Some(url) = &panel {
            out["panel"] = json!(url);
        }
        print_json(&out, true);
    } else {
        let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
        let what = if now { "Daemon started" } else { "Daemon already running" };
        println!("{what}{pid}. Socket: {}", home.socket().display());
        if let Some(url) = &panel {
            println!("Panel: {url}");
        }
    }
    Ok(())
}

async fn stop(home: &Home, json: bool) -> Result<(), CliError> {
    let spinner = Spinner::new("Stopping the daemon…");
    let stopped = lifecycle::stop(home).await;
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
    let held = lock::is_held(&home.lock())?;
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
        return Err(CliError::Usage(
            "`ocap daemon purge` deletes every vat and its state; pass --force to do it".into(),
        ));
    }
    let stopped = lifecycle::stop(home).await?;
    let mut removed = Vec::new();
    if home.dir.is_dir() {
        // Hold the lock while deleting, so no daemon starts on a half-deleted state.
        let held = DaemonLock::try_acquire(&home.lock())?;
        let mut files = home.db_files();
        // Remote comms started by `initRemoteComms` do not outlive the state they served.
        files.extend([home.socket(), home.log(), home.old_log(), home.remote_comms(), home.panel()]);
        for f in files {
            match std::fs::remove_file(&f) {
                Ok(()) => removed.push(f.display().to_string()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(CliError::Io { what: format!("removing {}", f.display()), source }),
            }
        }
        held.unlink()?;
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
            crate::specs::resolve_specs(config, &cwd);
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
