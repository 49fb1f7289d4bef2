//! `ocap pin <kref>…` and `ocap unpin <kref>…`: the host's holds on objects, through the
//! daemon (our control methods `pinObject` and `unpinObject`).
//!
//! Every object in a result the host receives (`ocap send`, `ocap launch`'s root, a redeemed
//! URL) is pinned once for it, so its kref stays valid however long the host keeps it. A
//! long-running host releases what it no longer needs with `unpin`; an object nobody else
//! holds is then collected (its exporting vat is told to drop it).

use serde_json::json;

use crate::error::CliError;
use crate::home::Home;
use crate::output::print_json;

/// Pins (`pin == true`) or unpins each object in turn; stops at the first failure (the
/// daemon's error names the kref; the ones before it are done).
pub async fn run(home: &Home, krefs: &[String], pin: bool, json: bool) -> Result<(), CliError> {
    let client = super::daemon_client(home, None).await?;
    let (method, done) = if pin { ("pinObject", "pinned") } else { ("unpinObject", "unpinned") };
    for kref in krefs {
        client.call(method, json!({ "kref": kref })).await?;
        if json {
            print_json(&json!({ "kref": kref, "status": done }), true);
        } else {
            println!("{kref} {done}");
        }
    }
    Ok(())
}
