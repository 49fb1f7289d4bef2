//! The commands that are not `run` or `bench`: `daemon …` (managing the daemon), the friendly
//! ones that talk to it (`launch`, `send`, `status`), and those that read a database or files
//! (`inspect`, `check`, `bundle`). Below, what the daemon's clients among them share.

pub mod bundle;
pub mod check;
pub mod comms;
pub mod daemon;
pub mod inspect;
pub mod launch;
pub mod panel;
pub mod pin;
pub mod relay;
pub mod send;
pub mod status;
pub mod url;

use std::time::Duration;

use ocap_kernel::smallcaps::{kunser, Value};
use ocap_kernel::{CapData, KRef};
use serde_json::Value as Json;

use self::daemon::{ensure_running, StartArgs};
use crate::client::Client;
use crate::error::CliError;
use crate::home::Home;

/// A client of the home's daemon, starting the daemon if it is not running (as the JS CLI's
/// `exec` and `queueMessage` do).
pub async fn daemon_client(home: &Home, timeout_secs: Option<u64>) -> Result<Client, CliError> {
    ensure_running(home, StartArgs::default_timeout()).await?;
    Ok(Client::new(home, timeout_secs.map(Duration::from_secs)))
}

/// Decodes CapData the daemon answered with, as JSON (`{body, slots}`).
pub fn decode_capdata(j: &Json) -> Result<Value, CliError> {
    let data: CapData<KRef> =
        serde_json::from_value(j.clone()).map_err(|e| CliError::Other(format!("bad CapData from the daemon: {e}")))?;
    kunser(&data).map_err(|e| CliError::Other(format!("undecodable result: {e}")))
}
