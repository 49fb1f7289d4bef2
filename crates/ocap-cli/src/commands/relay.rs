//! `ocap relay start|stop|status|run`: a circuit-relay-v2 server on rust-libp2p
//! (`ocap_net::RelayServer`, remote-comms.md §1.5 and §9.1) through which kernels that cannot
//! dial each other meet, for tests and deployments.
//!
//! `run` serves in the foreground until SIGTERM or Ctrl-C. `start` runs it in the background
//! and returns once it listens; its state lives in a directory (default `<home>/relay`):
//! `relay.key` (the relay's key seed, made once, private), `relay.json` (`{pid, peerId,
//! addresses}`, written by the running relay), `relay.log`. `stop` ends it and waits for the
//! process to exit; `status` says whether it runs and where.
//!
//! The relay listens on loopback by default (`/ip4/127.0.0.1/tcp/9001/ws` and
//! `/ip4/127.0.0.1/tcp/9002`, the JS relay's ports); `--listen` chooses (`0.0.0.0` to serve
//! a network). Its key is its own, random and kept in `relay.key`, unless `--js-test-identity`
//! asks for the JS kernel's fixed test relay identity (seed `[200, 0…]`, peer ID
//! `12D3KooWJBDqsyHQF2MWiCdU4kdqx4zTsSTLRdShg7Ui6CRWB4uc`), which anyone can impersonate.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use clap::{Args, Subcommand};
use ocap_kernel::remote::identity::{from_hex, random_key_seed, to_hex};
use ocap_net::{RelayOptions, RelayServer, RELAY_SEED};
use serde_json::{json, Value as Json};

use crate::error::CliError;
use crate::home::Home;
use crate::output::print_json;

#[derive(Subcommand)]
pub enum RelayCommand {
    /// Start a relay in the background; prints its peer ID and addresses.
    Start(RelayArgs),
    /// Stop the background relay.
    Stop(DirArg),
    /// Whether the background relay runs, and where.
    Status(DirArg),
    /// Serve a relay in the foreground until SIGTERM or Ctrl-C.
    Run(RelayArgs),
}

#[derive(Args, Clone)]
pub struct DirArg {
    /// The relay's state directory (default `<home>/relay`).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Args, Clone)]
pub struct RelayArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// A listen address (repeatable): `/ip4/…/tcp/N` or `/ip4/…/tcp/N/ws`.
    #[arg(long = "listen")]
    pub listen: Vec<String>,
    /// Use the JS kernel's fixed test relay identity instead of the relay's own key.
    #[arg(long)]
    pub js_test_identity: bool,
    /// How long `start` waits for the relay to listen, in seconds.
    #[arg(long, default_value_t = 20)]
    pub timeout: u64,
}

const DEFAULT_LISTEN: [&str; 2] = ["/ip4/127.0.0.1/tcp/9001/ws", "/ip4/127.0.0.1/tcp/9002"];

fn dir_of(arg: &DirArg, home: &Home) -> PathBuf {
    arg.dir.clone().unwrap_or_else(|| home.dir.join("relay"))
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
    let what = what.into();
    move |source| CliError::Io { what, source }
}

/// The relay's key seed: made once (random) and kept private in `relay.key`.
fn key_seed(dir: &Path, js_test_identity: bool) -> Result<[u8; 32], CliError> {
    if js_test_identity {
        return Ok(RELAY_SEED);
    }
    let path = dir.join("relay.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => from_hex(text.trim()).map_err(|e| CliError::Other(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let seed = random_key_seed();
            write_private(&path, &to_hex(&seed))?;
            Ok(seed)
        }
        Err(e) => Err(io(format!("reading {}", path.display()))(e)),
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(format!("writing {}", tmp.display())))?;
    f.write_all(text.as_bytes()).map_err(io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("writing {}", path.display())))
}

fn ensure_dir(dir: &Path) -> Result<(), CliError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(format!("creating {}", dir.display())))
}

/// `relay.json` if the process it names is alive.
fn running(dir: &Path) -> Option<Json> {
    let text = std::fs::read_to_string(dir.join("relay.json")).ok()?;
    let info: Json = serde_json::from_str(&text).ok()?;
    let pid = info["pid"].as_u64()?;
    let alive =
        rustix::process::Pid::from_raw(pid as i32).is_some_and(|p| rustix::process::test_kill_process(p).is_ok());
    alive.then_some(info)
}

pub async fn run(cmd: RelayCommand, home: &Home, json_out: bool) -> Result<(), CliError> {
    match cmd {
        RelayCommand::Run(args) => serve(args, home).await,
        RelayCommand::Start(args) => start(args, home, json_out).await,
        RelayCommand::Stop(arg) => stop(&dir_of(&arg, home), json_out).await,
        RelayCommand::Status(arg) => {
            let dir = dir_of(&arg, home);
            match running(&dir) {
                Some(info) => print_info(&info, json_out),
                None if json_out => print_json(&json!({"running": false}), true),
                None => println!("no relay running ({})", dir.display()),
            }
            Ok(())
        }
    }
}

fn print_info(info: &Json, json_out: bool) {
    if json_out {
        print_json(info, true);
        return;
    }
    println!("relay {} (pid {})", info["peerId"].as_str().unwrap_or("?"), info["pid"]);
    for a in info["addresses"].as_array().into_iter().flatten() {
        println!("  {}", a.as_str().unwrap_or_default());
    }
}

/// The foreground relay: listens, records `relay.json`, serves until a signal.
async fn serve(args: RelayArgs, home: &Home) -> Result<(), CliError> {
    let dir = dir_of(&args.dir, home);
    ensure_dir(&dir)?;
    let listen =
        if args.listen.is_empty() { DEFAULT_LISTEN.iter().map(|s| s.to_string()).collect() } else { args.listen };
    let seed = key_seed(&dir, args.js_test_identity)?;
    let server = RelayServer::start(RelayOptions { key_seed: seed, listen_addresses: listen })
        .map_err(|e| CliError::Other(format!("cannot start the relay: {e}")))?;
    // The bound addresses (port 0 resolved) come once the listeners are up.
    let mut addresses = Vec::new();
    for _ in 0..100 {
        addresses = server.listen_addresses();
        if !addresses.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let info = json!({"pid": std::process::id(), "peerId": server.peer_id(), "addresses": addresses});
    write_private(&dir.join("relay.json"), &info.to_string())?;
    println!("{info}");
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(io("installing the SIGTERM handler"))?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    server.stop();
    let _ = std::fs::remove_file(dir.join("relay.json"));
    Ok(())
}

async fn start(args: RelayArgs, home: &Home, json_out: bool) -> Result<(), CliError> {
    let dir = dir_of(&args.dir, home);
    if let Some(info) = running(&dir) {
        print_info(&info, json_out);
        return Ok(());
    }
    ensure_dir(&dir)?;
    let _ = std::fs::remove_file(dir.join("relay.json"));
    let log = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(dir.join("relay.log"))
    }
    .map_err(io("opening relay.log"))?;
    let exe = std::env::current_exe().map_err(io("finding the ocap binary"))?;
    let mut cmd = Command::new(exe);
    cmd.args(["relay", "run", "--dir"]).arg(&dir);
    for l in &args.listen {
        cmd.args(["--listen", l]);
    }
    if args.js_test_identity {
        cmd.arg("--js-test-identity");
    }
    use std::os::unix::process::CommandExt;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .process_group(0)
        .spawn()
        .map_err(io("starting the relay"))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
    while tokio::time::Instant::now() < deadline {
        if let Some(info) = running(&dir) {
            print_info(&info, json_out);
            return Ok(());
        }
        if let Some(status) = child.try_wait().map_err(io("waiting for the relay"))? {
            let log = std::fs::read_to_string(dir.join("relay.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            return Err(CliError::Other(format!(
                "the relay exited ({status}):\n  {}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n  ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(CliError::Other(format!(
        "the relay did not start within {} s (see {})",
        args.timeout,
        dir.join("relay.log").display()
    )))
}

async fn stop(dir: &Path, json_out: bool) -> Result<(), CliError> {
    let Some(info) = running(dir) else {
        if json_out {
            print_json(&json!({"stopped": false}), true);
        } else {
            println!("no relay running");
        }
        return Ok(());
    };
    let pid = info["pid"].as_u64().and_then(|p| rustix::process::Pid::from_raw(p as i32));
    if let Some(pid) = pid {
        rustix::process::kill_process(pid, rustix::process::Signal::TERM)
            .map_err(|e| CliError::Other(format!("cannot stop the relay: {e}")))?;
        for _ in 0..200 {
            if rustix::process::test_kill_process(pid).is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    if json_out {
        print_json(&json!({"stopped": true}), true);
    } else {
        println!("relay stopped");
    }
    Ok(())
}
