//! The daemon's optional config file, `<home>/daemon.json`. Unknown keys are errors.
//!
//! ```json
//! { "logFilter": "info,ocap::vat=debug", "allowedGlobals": ["Date"], "memoryLimitBytes": 67108864,
//!   "deliveryTimeoutMs": 5000, "maxQueryRows": 10000, "maxQueryBytes": 16777216 }
//! ```

use std::path::{Path, PathBuf};

use ocap_kernel::{KernelConfig, SystemSubclusterConfig};
use ocap_vat::LauncherOptions;
use serde::Deserialize;

/// The default tracing filter of the daemon's log: kernel info, vat console output included.
pub const DEFAULT_LOG_FILTER: &str = "info";

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DaemonConfig {
    /// A `tracing` filter (`RUST_LOG` syntax) for `daemon.log`. `RUST_LOG` overrides it.
    #[serde(default)]
    pub log_filter: Option<String>,
    /// Kernel-wide allowlist of the optional globals vats may request (default: all 20).
    #[serde(default)]
    pub allowed_globals: Option<Vec<String>>,
    /// Per-vat heap limit (default: the worker's).
    #[serde(default)]
    pub memory_limit_bytes: Option<usize>,
    /// Per-delivery time budget in milliseconds (default: the worker's, 3 s); a vat's
    /// `creationOptions.deliveryBudgetMs` overrides it for that vat.
    #[serde(default)]
    pub delivery_timeout_ms: Option<u64>,
    /// Largest bundle file a config may name (default 64 MiB).
    #[serde(default)]
    pub max_bundle_bytes: Option<u64>,
    /// Which built-in host services (`crate::services`) vats may be given; default: all.
    #[serde(default)]
    pub services: Option<Vec<String>>,
    /// `executeDBQuery`: rows per answer (default `query::MAX_QUERY_ROWS`).
    #[serde(default)]
    pub max_query_rows: Option<usize>,
    /// `executeDBQuery`: bytes of values per answer, and the longest single value
    /// (default `query::MAX_QUERY_BYTES`).
    #[serde(default)]
    pub max_query_bytes: Option<usize>,
    /// Run the kernel's invariant checker after every crank (slow; for debugging). Also
    /// `ocap daemon start --check-invariants`.
    #[serde(default)]
    pub check_invariants: bool,
    /// System subclusters, `[{"name": ..., "config": ClusterConfig}]`: launched at the
    /// daemon's first start, restored afterwards, deleted when removed from this list. They
    /// may ask for the `kernelFacet` service. Relative paths resolve against the home.
    #[serde(default)]
    pub system_subclusters: Vec<serde_json::Value>,
    /// Start remote comms with the daemon (the `initRemoteComms` options, remote-comms.md
    /// §9.5). Without it, comms started by `initRemoteComms` resume after a restart.
    #[serde(default)]
    pub remote_comms: Option<super::comms::CommsParams>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid daemon config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("invalid daemon config {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl DaemonConfig {
    /// Reads the config; a missing file is the default config.
    pub fn load(path: &Path) -> Result<DaemonConfig, ConfigFileError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DaemonConfig::default()),
            Err(source) => return Err(ConfigFileError::Read { path: path.to_path_buf(), source }),
        };
        // A key given twice anywhere (a system subcluster's vat name, say) is an error, not
        // "the last one wins".
        let de = &mut serde_json::Deserializer::from_str(&text);
        serde_path_to_error::deserialize::<_, ocap_kernel::json::StrictJson>(de).map_err(|e| {
            let at = e.path().to_string();
            ConfigFileError::Invalid { path: path.to_path_buf(), message: format!("at {at}: {}", e.into_inner()) }
        })?;
        serde_json::from_str(&text).map_err(|source| ConfigFileError::Parse { path: path.to_path_buf(), source })
    }

    /// How to make the daemon's kernel: the host services and system subclusters it names.
    pub fn kernel_config(&self, home: &Path) -> Result<KernelConfig, ConfigFileError> {
        let invalid = |message: String| ConfigFileError::Invalid { path: home.join("daemon.json"), message };
        let services = crate::services::builtin_services(self.services.as_deref()).map_err(invalid)?;
        let mut system_subclusters = Vec::new();
        for (i, raw) in self.system_subclusters.iter().enumerate() {
            let mut raw = raw.clone();
            if let Some(config) = raw.get_mut("config") {
                crate::specs::resolve_specs(config, home);
            }
            let sys: SystemSubclusterConfig =
                serde_json::from_value(raw).map_err(|e| invalid(format!("systemSubclusters[{i}]: {e}")))?;
            sys.config.validate().map_err(|e| invalid(format!("systemSubclusters[{i}] ({}): {e}", sys.name)))?;
            system_subclusters.push(sys);
        }
        let options =
            ocap_kernel::KernelOptions { check_invariants_every_crank: self.check_invariants, ..Default::default() };
        Ok(KernelConfig { options, services, system_subclusters })
    }

    /// How to start vats. Relative specs sent over raw RPC resolve against the home (the
    /// CLI makes them absolute before sending).
    pub fn launcher_options(&self, home: &Path) -> LauncherOptions {
        LauncherOptions {
            base_dir: Some(home.to_path_buf()),
            allowed_globals: self.allowed_globals.clone(),
            memory_limit_bytes: self.memory_limit_bytes,
            delivery_timeout_ms: self.delivery_timeout_ms,
            max_bundle_bytes: self.max_bundle_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_is_default_and_unknown_keys_fail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        assert_eq!(DaemonConfig::load(&path).unwrap(), DaemonConfig::default());
        std::fs::write(&path, r#"{"logFilter":"debug","memoryLimitBytes":1000}"#).unwrap();
        let c = DaemonConfig::load(&path).unwrap();
        assert_eq!(c.log_filter.as_deref(), Some("debug"));
        assert_eq!(c.memory_limit_bytes, Some(1000));
        std::fs::write(&path, r#"{"colour":"red"}"#).unwrap();
        let err = DaemonConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
    }
}
