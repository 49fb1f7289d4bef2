//! `ocap run <cluster.json>`: an embedded kernel in the foreground, no daemon.

use std::path::{Path, PathBuf};

use clap::Args;
use ocap_kernel::config::ClusterConfig;
use ocap_kernel::smallcaps::kunser;
use ocap_kernel::store::{Durability, Store};
use ocap_kernel::{Kernel, KernelConfig};
use ocap_vat::{JsVatLauncher, LauncherOptions};

use crate::display::{display, to_json};
use crate::CliError;

#[derive(Args)]
pub struct RunArgs {
    /// The cluster config (JSON). Relative sourceSpec/bundleSpec paths resolve against its directory.
    pub cluster: PathBuf,
    /// Keep state in this SQLite database instead of a fresh temporary one.
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Stream vat logs to stderr, each line tagged with the vat's name and ID.
    #[arg(long)]
    pub log: bool,
}

pub async fn run(args: RunArgs, json: bool) -> Result<(), CliError> {
    init_logging(args.log);
    let text = std::fs::read_to_string(&args.cluster)
        .map_err(|source| CliError::Read { path: args.cluster.display().to_string(), source })?;
    // Absolute, so the paths resolved below are independent of the working directory.
    let base_dir =
        std::path::absolute(args.cluster.parent().unwrap_or(Path::new(""))).ok().filter(|p| !p.as_os_str().is_empty());
    // Relative code and IO paths resolve against the cluster file's directory.
    let mut raw: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Other(format!("{} is not JSON: {e}", args.cluster.display())))?;
    crate::specs::resolve_specs(&mut raw, base_dir.as_deref().unwrap_or(Path::new(".")));
    let config = ClusterConfig::from_value(raw)?;
    let temp = tempfile::tempdir().map_err(|e| CliError::Other(format!("cannot make a temporary directory: {e}")))?;
    let db = args.db.clone().unwrap_or_else(|| temp.path().join("kernel.sqlite"));
    let store = Store::open(&db, Durability::Process)?;
    let services = crate::services::builtin_services(None).map_err(CliError::Other)?;
    let kernel = Kernel::make(store, KernelConfig { services, ..Default::default() }, |sink| {
        Box::new(JsVatLauncher::new(sink, LauncherOptions { base_dir, ..Default::default() }))
    })?;
    let launched = kernel.launch_subcluster(config).await;
    let stopped = kernel.stop().await;
    let launched = launched?;
    stopped?;
    let value = kunser(&launched.bootstrap_result).map_err(|e| CliError::Other(format!("undecodable result: {e}")))?;
    if json {
        let out = serde_json::json!({
            "subclusterId": launched.subcluster_id,
            "rootKref": launched.root_kref.to_string(),
            "bootstrapResult": to_json(&value),
        });
        println!("{}", ocap_kernel::json::to_string(&out));
        ocap_kernel::json::drop_deep(out);
    } else {
        println!("{}", display(&value));
    }
    ocap_kernel::smallcaps::drop_deep(value);
    Ok(())
}

fn init_logging(vat_logs: bool) {
    let filter = if vat_logs { "warn,ocap::vat=info,ocap::service=info" } else { "warn,ocap::vat=off" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .try_init();
}
