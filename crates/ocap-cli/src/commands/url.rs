//! `ocap url issue <kref>`, `ocap url redeem <url>`, `ocap url revoke <url>`, `ocap url list`:
//! OCAP URLs through the daemon (remote-comms.md §3; control methods `issueOcapURL`,
//! `redeemOcapURL`, and our `revokeOcapURL`, `listOcapURLs`). An issued URL keeps its object alive until it is revoked.

use clap::Subcommand;
use serde_json::{json, Value as Json};

use crate::error::CliError;
use crate::home::Home;
use crate::output::print_json;

#[derive(Subcommand)]
pub enum UrlCommand {
    /// Issue an OCAP URL for an object (`ko12`); prints the URL. The object is kept alive
    /// until the URL is revoked.
    Issue {
        /// The object.
        kref: String,
    },
    /// Redeem an OCAP URL; prints the object's kref. A URL another kernel issued is
    /// redeemed over the network (`ocap comms start` first); the host holds that object, as
    /// it holds the objects in a result.
    Redeem {
        /// The URL (`ocap:…@<peer ID>`).
        url: String,
    },
    /// List the unrevoked OCAP URLs this kernel issued, each with its object.
    List,
    /// Revoke an OCAP URL this kernel issued: it can no longer be redeemed, and its object is
    /// released.
    Revoke {
        /// The URL.
        url: String,
    },
}

pub async fn run(cmd: UrlCommand, home: &Home, json: bool) -> Result<(), CliError> {
    let client = super::daemon_client(home, None).await?;
    let answer = match &cmd {
        UrlCommand::Issue { kref } => client.call("issueOcapURL", json!({ "kref": kref })).await?,
        UrlCommand::Redeem { url } => client.call("redeemOcapURL", json!({ "url": url })).await?,
        UrlCommand::Revoke { url } => client.call("revokeOcapURL", json!({ "url": url })).await?,
        UrlCommand::List => client.call("listOcapURLs", json!([])).await?,
    };
    match (answer, json) {
        (Json::String(s), false) => println!("{s}"),
        (Json::Array(urls), false) => {
            for u in urls {
                println!("{}  {}", u["url"].as_str().unwrap_or_default(), u["kref"].as_str().unwrap_or_default());
            }
        }
        (Json::Null, false) => println!("revoked"),
        (answer, _) => print_json(&answer, true),
    }
    Ok(())
}
