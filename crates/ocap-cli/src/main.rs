//! The `ocap` command: run a cluster in the foreground, or drive a per-home daemon over its
//! control socket (`daemon`, `launch`, `send`, `status`), inspect a kernel database, and
//! bundle vat sources.

mod bench;
mod client;
mod commands;
mod cpu_time;
mod daemon;
mod display;
mod error;
mod home;
mod lock;
mod output;
mod panel;
mod rpc;
mod run;
mod services;
mod specs;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use crate::error::CliError;
use crate::home::Home;

#[derive(Parser)]
#[command(name = "ocap", version, about = "An object-capability kernel for JavaScript vats")]
struct Cli {
    /// The daemon's home: socket, database, log, config [default: $OCAP_HOME, else ~/.ocap].
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Print only JSON on stdout, on one line.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a cluster in an embedded kernel: launch it, print the bootstrap result, stop.
    Run(run::RunArgs),
    /// Run the benchmark workloads (benchmarks.md) and print their figures.
    Bench(bench::BenchArgs),
    /// Start, stop, query or purge the home's daemon, or call its control RPC.
    #[command(subcommand)]
    Daemon(commands::daemon::DaemonCommand),
    /// Launch a subcluster in the daemon; prints {subclusterId, rootKref, bootstrapResult}.
    Launch(commands::launch::LaunchArgs),
    /// Send a message to an object in the daemon and print the result.
    Send(commands::send::SendArgs),
    /// The daemon's vats, subclusters and services.
    Status,
    /// Objects, promises, c-lists and queues, from the kernel database.
    Inspect(commands::inspect::InspectArgs),
    /// Check a kernel database for inconsistencies (refcounts, c-lists, promises); exit 1
    /// if any.
    Check(commands::check::CheckArgs),
    /// Bundle vat sources into .bundle files (the JS kernel's format).
    Bundle(commands::bundle::BundleArgs),
    /// Issue, redeem or revoke OCAP URLs in the daemon.
    #[command(subcommand)]
    Url(commands::url::UrlCommand),
    /// Start or stop the daemon's remote comms (libp2p), so kernels on other machines can
    /// reach its objects.
    #[command(subcommand)]
    Comms(commands::comms::CommsCommand),
    /// The daemon's remote-comms state and its peers.
    Peers,
    /// Hold objects for the host (one more pin each). The objects in results are already
    /// pinned once.
    Pin {
        /// Objects (`ko12` …).
        #[arg(required = true)]
        krefs: Vec<String>,
    },
    /// Release the host's hold on objects (one pin each): an object nobody else holds is
    /// collected, and its kref stops working.
    Unpin {
        /// Objects (`ko12` …).
        #[arg(required = true)]
        krefs: Vec<String>,
    },
    /// Open the web control panel: start the daemon with it (or start it in the running
    /// daemon) and print its URL, which carries the access token.
    Panel(commands::panel::PanelArgs),
    /// Run a libp2p circuit relay, through which kernels that cannot dial each other meet.
    #[command(subcommand)]
    Relay(commands::relay::RelayCommand),
}

async fn dispatch(cli: Cli) -> Result<(), CliError> {
    let home = || Home::resolve(cli.home.as_deref());
    match cli.command {
        Command::Run(args) => run::run(args, cli.json).await,
        Command::Bench(args) => bench::bench(args, cli.json).await,
        Command::Daemon(cmd) => commands::daemon::run(cmd, &home()?, cli.json).await,
        Command::Launch(args) => commands::launch::launch(&home()?, args, cli.json).await,
        Command::Send(args) => commands::send::send(&home()?, args, cli.json).await,
        Command::Status => commands::status::status(&home()?, cli.json).await,
        Command::Inspect(args) => commands::inspect::inspect(&home()?, args, cli.json),
        Command::Check(args) => commands::check::check(home, args, cli.json).await,
        Command::Bundle(args) => commands::bundle::bundle(args, cli.json),
        Command::Url(cmd) => commands::url::run(cmd, &home()?, cli.json).await,
        Command::Comms(cmd) => commands::comms::run(cmd, &home()?, cli.json).await,
        Command::Peers => commands::comms::peers(&home()?, cli.json).await,
        Command::Pin { krefs } => commands::pin::run(&home()?, &krefs, true, cli.json).await,
        Command::Unpin { krefs } => commands::pin::run(&home()?, &krefs, false, cli.json).await,
        Command::Panel(args) => commands::panel::panel(&home()?, args, cli.json).await,
        Command::Relay(cmd) => commands::relay::run(cmd, &home()?, cli.json).await,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A client command whose output is cut short (`ocap peers | head -1`) ends quietly, as
    // shell tools do, instead of panicking on the broken pipe. The servers (`daemon serve`,
    // `relay run`) keep Rust's default: a peer closing a socket is an error to handle.
    let serves = matches!(
        &cli.command,
        Command::Daemon(commands::daemon::DaemonCommand::Serve(_))
            | Command::Relay(commands::relay::RelayCommand::Run(_))
    );
    if !serves {
        // SAFETY: at the start of main, before any thread exists; SIG_DFL is a valid disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ocap: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(cli));
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Exit(code)) => ExitCode::from(code),
        Err(e) => {
            eprintln!("ocap: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
