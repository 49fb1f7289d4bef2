//! `ocap panel`: the one command that opens the web control panel (`crate::panel`). It
//! starts the daemon with the panel, or asks a running daemon to start its panel
//! (`startPanel`), and prints the URL with the access token: whoever has the URL can
//! control the kernel, so it goes to stdout only, never to a log.

use std::net::SocketAddr;

use clap::Args;
use serde_json::json;

use super::daemon::{start_panel, StartArgs};
use crate::client::lifecycle::Started;
use crate::daemon::methods::DEFAULT_PANEL_ADDRESS;
use crate::daemon::ServeArgs;
use crate::error::CliError;
use crate::home::Home;
use crate::output::print_json;

#[derive(Args)]
pub struct PanelArgs {
    /// Where the panel listens [default: 127.0.0.1:0, a free loopback port]. Used only if the
    /// panel is not running yet.
    #[arg(long, value_name = "ADDR")]
    pub address: Option<SocketAddr>,
}

pub async fn panel(home: &Home, args: PanelArgs, json: bool) -> Result<(), CliError> {
    let addr = match args.address {
        Some(a) => a,
        None => {
            DEFAULT_PANEL_ADDRESS.parse().map_err(|e| CliError::Other(format!("the default panel address: {e}")))?
        }
    };
    let serve = ServeArgs { panel: Some(addr), ..ServeArgs::default() };
    let (started, url) = start_panel(home, StartArgs::default_timeout(), serve).await?;
    if json {
        print_json(&json!({"url": url, "daemonStarted": matches!(started, Started::Now(_))}), true);
    } else {
        println!("{url}");
    }
    Ok(())
}
