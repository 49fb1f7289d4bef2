//! `ocap launch <cluster.json>`: launch a subcluster in the daemon and print
//! `{subclusterId, rootKref, bootstrapResult}` (the bootstrap result decoded).

use std::path::{Path, PathBuf};

use clap::Args;
use ocap_kernel::config::ClusterConfig;
use serde_json::json;

use super::decode_capdata;
use crate::display::to_json;
use crate::error::CliError;
use crate::home::Home;
use crate::output::{print_json, Spinner};

#[derive(Args)]
pub struct LaunchArgs {
    /// The cluster config (JSON). Relative sourceSpec/bundleSpec paths resolve against its directory.
    pub cluster: PathBuf,
    /// Seconds to wait for the launch (default: no limit).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
}

pub async fn launch(home: &Home, args: LaunchArgs, json: bool) -> Result<(), CliError> {
    let text = std::fs::read_to_string(&args.cluster)
        .map_err(|source| CliError::Read { path: args.cluster.display().to_string(), source })?;
    // Validate here, for a precise message before any daemon is involved.
    let config = ClusterConfig::from_json(&text)?;
    let mut value = serde_json::to_value(&config).map_err(|e| CliError::Other(format!("encoding the config: {e}")))?;
    let file = std::path::absolute(&args.cluster)
        .map_err(|source| CliError::Io { what: format!("resolving {}", args.cluster.display()), source })?;
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    crate::specs::resolve_specs(&mut value, &base);
    let client = super::daemon_client(home, args.timeout).await?;
    let spinner = Spinner::new(format!("Launching {}…", args.cluster.display()));
    let launched = client.call("launchSubcluster", json!({"config": value})).await;
    drop(spinner);
    let launched = launched?;
    let bootstrap = match launched.get("bootstrapResult") {
        Some(j) if !j.is_null() => to_json(&decode_capdata(j)?),
        _ => serde_json::Value::Null,
    };
    let out = json!({
        "subclusterId": launched.get("subclusterId"),
        "rootKref": launched.get("rootKref"),
        "bootstrapResult": bootstrap,
    });
    print_json(&out, json);
    Ok(())
}
