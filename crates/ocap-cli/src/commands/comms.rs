//! `ocap comms start|stop` and `ocap peers`: remote comms of the home's daemon (control methods
//! `initRemoteComms`, `stopRemoteComms`, `getStatus().remoteComms`; remote-comms.md §10).
//! Comms started here resume when the daemon restarts, until `ocap comms stop`.

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value as Json};

use crate::error::CliError;
use crate::home::Home;
use crate::output::print_json;

#[derive(Subcommand)]
pub enum CommsCommand {
    /// Start remote comms (or restart them with new options); prints the peer ID and the
    /// addresses other kernels can reach this one at.
    Start(StartArgs),
    /// Stop remote comms; they no longer start with the daemon.
    Stop,
}

#[derive(Args)]
pub struct StartArgs {
    /// A direct listen address (repeatable): `/ip4/127.0.0.1/tcp/0`,
    /// `/ip4/127.0.0.1/udp/0/quic-v1`, `/ip4/127.0.0.1/tcp/0/ws`.
    #[arg(long = "listen")]
    pub listen: Vec<String>,
    /// A relay (repeatable), `…/p2p/<relay peer ID>`, as `ocap relay start` prints it.
    #[arg(long = "relay")]
    pub relays: Vec<String>,
    /// Restore the kernel's identity from a BIP39 recovery phrase read from standard input
    /// (only when the kernel has none yet). Never on the command line, where `ps` shows it.
    #[arg(long)]
    pub mnemonic_stdin: bool,
    /// Further `initRemoteComms` options as a JSON object (`{"ackTimeoutMs": 2000}`). Each
    /// start replaces the previous options entirely (give `--listen` again).
    #[arg(long)]
    pub options: Option<String>,
}

pub async fn run(cmd: CommsCommand, home: &Home, json_out: bool) -> Result<(), CliError> {
    let client = super::daemon_client(home, None).await?;
    match cmd {
        CommsCommand::Stop => {
            client.call("stopRemoteComms", json!([])).await?;
            if json_out {
                print_json(&Json::Null, true);
            } else {
                println!("remote comms stopped");
            }
            return Ok(());
        }
        CommsCommand::Start(args) => {
            let mut params = match &args.options {
                Some(text) => match serde_json::from_str::<Json>(text) {
                    Ok(Json::Object(m)) => m,
                    Ok(_) => return Err(CliError::Other("--options must be a JSON object".into())),
                    Err(e) => return Err(CliError::Other(format!("--options is not JSON: {e}"))),
                },
                None => Map::new(),
            };
            if !args.listen.is_empty() {
                params.insert("directListenAddresses".into(), json!(args.listen));
            }
            if !args.relays.is_empty() {
                params.insert("relays".into(), json!(args.relays));
            }
            if args.mnemonic_stdin {
                let mut phrase = String::new();
                std::io::stdin()
                    .read_line(&mut phrase)
                    .map_err(|source| CliError::Io { what: "reading the recovery phrase".into(), source })?;
                params.insert("mnemonic".into(), json!(phrase.trim()));
            }
            client.call("initRemoteComms", Json::Object(params)).await?;
        }
    }
    let status = client.call("getStatus", json!([])).await?;
    let rc = &status["remoteComms"];
    if json_out {
        print_json(rc, true);
    } else {
        print_state(rc);
        for a in rc["listenAddresses"].as_array().into_iter().flatten() {
            println!("  {}", a.as_str().unwrap_or_default());
        }
    }
    Ok(())
}

/// `connected 12D3KooW…`, or the state alone.
fn print_state(rc: &Json) {
    let state = rc["state"].as_str().unwrap_or("?");
    match rc["peerId"].as_str() {
        Some(peer) => println!("{state} {peer}"),
        None => println!("{state}"),
    }
}

/// `ocap peers`: this kernel's remote-comms state and every peer it knows.
pub async fn peers(home: &Home, json_out: bool) -> Result<(), CliError> {
    let client = super::daemon_client(home, None).await?;
    let status = client.call("getStatus", json!([])).await?;
    let rc = &status["remoteComms"];
    if json_out {
        print_json(rc, true);
        return Ok(());
    }
    print_state(rc);
    for a in rc["listenAddresses"].as_array().into_iter().flatten() {
        println!("  listening on {}", a.as_str().unwrap_or_default());
    }
    let peers = rc["peers"].as_array().cloned().unwrap_or_default();
    if peers.is_empty() {
        println!("no peers");
        return Ok(());
    }
    println!("{:<6} {:<54} {:<13} {:>7} {:>6} {:>6}  last error", "remote", "peer", "state", "backlog", "sent", "recv");
    for p in peers {
        println!(
            "{:<6} {:<54} {:<13} {:>7} {:>6} {:>6}  {}",
            p["remoteId"].as_str().unwrap_or("?"),
            p["peerId"].as_str().unwrap_or("?"),
            p["state"].as_str().unwrap_or("?"),
            p["backlog"].to_string(),
            p["sentSeq"].to_string(),
            p["receivedSeq"].to_string(),
            // One line per peer: an error spanning lines is joined.
            p["lastError"].as_str().map_or("-".to_owned(), |e| e.split_whitespace().collect::<Vec<_>>().join(" ")),
        );
    }
    Ok(())
}
