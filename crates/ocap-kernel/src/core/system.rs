//! System subclusters: declared by unique name when the kernel is made, launched once,
//! restored (not re-bootstrapped) on later boots, and deleted when their declaration goes
//! (host-surface.md §3.4). A changed declaration under the same name is reported (gap G8),
//! and the persisted subcluster keeps running until it is terminated.

use serde::{Deserialize, Serialize};

use super::{KernelCore, KernelError};
use crate::config::ClusterConfig;
use crate::refs::KRef;

/// A system subcluster declaration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemSubclusterConfig {
    pub name: String,
    pub config: ClusterConfig,
}

/// What `prepare_system_subclusters` found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SystemBootReport {
    /// Persisted system subclusters whose declaration is gone: terminated.
    pub removed: Vec<String>,
    /// Declarations that differ from the persisted config: the persisted one keeps running.
    pub changed: Vec<String>,
    /// Persisted and still declared.
    pub restored: Vec<String>,
    /// Declared but not yet launched.
    pub to_launch: Vec<SystemSubclusterConfig>,
}

impl KernelCore {
    /// Reconciles the declarations with the store, before any vat starts.
    pub fn prepare_system_subclusters(
        &mut self,
        configs: &[SystemSubclusterConfig],
    ) -> Result<SystemBootReport, KernelError> {
        let mut names = std::collections::HashSet::new();
        for c in configs {
            if !names.insert(c.name.as_str()) {
                return Err(KernelError::Config(format!("duplicate system subcluster name {:?}", c.name)));
            }
            c.config.validate().map_err(|e| KernelError::Config(format!("system subcluster {:?}: {e}", c.name)))?;
        }
        let mut report = SystemBootReport::default();
        for rec in self.store.subclusters()? {
            let Some(name) = rec.system_name.clone() else { continue };
            match configs.iter().find(|c| c.name == name) {
                None => {
                    tracing::info!("system subcluster {name:?} is no longer declared; deleting {}", rec.id);
                    self.terminate_subcluster(&rec.id)?;
                    report.removed.push(name);
                }
                Some(declared) => {
                    let persisted: Option<ClusterConfig> = serde_json::from_str(&rec.config).ok();
                    if persisted.as_ref() != Some(&declared.config) {
                        tracing::warn!(
                            "system subcluster {name:?} is declared with a config that differs from the one it was \
                             launched with; the persisted subcluster {} keeps running until it is terminated",
                            rec.id
                        );
                        report.changed.push(name.clone());
                    }
                    report.restored.push(name);
                }
            }
        }
        report.to_launch = configs.iter().filter(|c| !report.restored.contains(&c.name)).cloned().collect();
        Ok(report)
    }

    /// The root kref of a system subcluster's bootstrap vat.
    pub fn system_subcluster_root(&self, name: &str) -> Result<KRef, KernelError> {
        let not_found = || KernelError::Config(format!("System subcluster \"{name}\" not found"));
        let rec = self
            .store
            .subclusters()?
            .into_iter()
            .find(|s| s.system_name.as_deref() == Some(name))
            .ok_or_else(not_found)?;
        let config: ClusterConfig = serde_json::from_str(&rec.config)
            .map_err(|e| KernelError::Internal(format!("config of {}: {e}", rec.id)))?;
        let (vat, _) = self
            .store
            .subcluster_vats(&rec.id)?
            .into_iter()
            .find(|(_, n)| *n == config.bootstrap)
            .ok_or_else(not_found)?;
        self.vat_root(vat)
    }
}
