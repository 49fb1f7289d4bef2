//! Subclusters: launching a group of vats and bootstrapping them, terminating them, and
//! bringing persisted vats back after a restart (host-surface.md §3).
//!
//! The kernel does not know how to start a worker: a `VatLauncher` does (for JS vats,
//! `ocap_vat::JsVatLauncher`; the launcher traits are in `ocap_abi::launch`). A launch that
//! fails part-way is fully rolled back: vats already started are terminated and their state
//! deleted (gap G2 of the JS kernel fixed).

use indexmap::IndexMap;

use super::{HostWaiter, KernelCore, KernelError, VatSpec};
use crate::config::{ClusterConfig, VatConfig};
use crate::refs::{KRef, VatId};
use crate::smallcaps::Value;
use ocap_abi::launch::{LaunchRequest, LaunchedVat, VatLauncher};

/// A subcluster whose vats are running and whose bootstrap message is queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubclusterLaunch {
    pub subcluster_id: String,
    /// The bootstrap vat's root.
    pub root: KRef,
    /// The result promise of `bootstrap(vats, services)`.
    pub bootstrap_result: KRef,
    pub vats: Vec<(String, VatId)>,
}

impl KernelCore {
    /// Launches a subcluster's vats in config order and queues `bootstrap(vats, services)`
    /// to the bootstrap vat's root. The waiter gets the bootstrap result.
    pub fn start_subcluster(
        &mut self,
        config: &ClusterConfig,
        launcher: &mut dyn VatLauncher,
        system_name: Option<&str>,
        waiter: Option<HostWaiter>,
    ) -> Result<SubclusterLaunch, KernelError> {
        config.validate().map_err(|e| KernelError::Config(e.to_string()))?;
        if config.force_reset.is_some() {
            tracing::info!("cluster config key forceReset is accepted and ignored (as in the JS kernel)");
        }
        for (name, vat) in &config.vats {
            if vat.platform_config.is_some() {
                tracing::warn!(
                    "vats.{name}.platformConfig is accepted and ignored: no platform capabilities are provided"
                );
            }
        }
        for (name, io) in config.io.iter().flatten() {
            if io.unit.is_some_and(|u| u != crate::config::IoUnit::Line) {
                tracing::warn!("io.{name}.unit is accepted and ignored: socket channels are framed by line");
            }
        }
        let mut services = IndexMap::new();
        for name in config.services.iter().flatten() {
            // A name that is one of this subcluster's own IO channels is that channel (created
            // below; the IO name wins), as in the JS kernel (host-surface.md §3.1 b). Any other
            // name, another subcluster's channel included, must be a registered service.
            if config.io.as_ref().is_some_and(|io| io.contains_key(name)) {
                continue;
            }
            let kref = self.service_for_launch(name, system_name.is_some())?;
            services.insert(name.clone(), kref);
        }
        let config_json = serde_json::to_string(config).map_err(|e| KernelError::Internal(e.to_string()))?;
        let sid = self.unit(|k| Ok(k.store.create_subcluster(&config_json, system_name)?))?;
        let mut started: Vec<(String, VatId, KRef)> = Vec::new();
        // IO channels exist before any vat starts; an IO name wins over a service name.
        match self.create_io_channels(&sid, config) {
            Ok(channels) => services.extend(channels),
            Err(e) => {
                self.roll_back_launch(&sid, &started)?;
                return Err(e);
            }
        }
        // Start every worker (in parallel where the launcher can), then add them in order.
        let mut requests = Vec::with_capacity(config.vats.len());
        for name in config.vats.keys() {
            let vat_config =
                config.resolved_vat(name).ok_or_else(|| KernelError::Internal(format!("vat {name} vanished")))?;
            requests.push(LaunchRequest {
                vat: self.reserve_vat_id()?,
                name: name.clone(),
                config: vat_config,
                vatstore: vec![],
                max_syscalls_per_delivery: self.opts.max_syscalls_per_delivery,
            });
        }
        let specs: Vec<(VatId, String, VatConfig)> =
            requests.iter().map(|r| (r.vat, r.name.clone(), r.config.clone())).collect();
        let results = launcher.launch_many(requests);
        let mut failure = None;
        let mut launched = Vec::new();
        for ((vat, name, vat_config), result) in specs.into_iter().zip(results) {
            match result {
                Ok(l) if failure.is_none() => launched.push((vat, name, vat_config, l)),
                Ok(mut l) => l.endpoint.shutdown(),
                Err(cause) => {
                    if failure.is_none() {
                        failure = Some(KernelError::LaunchFailed { vat, name, cause });
                    }
                }
            }
        }
        if let Some(e) = failure {
            for (_, _, _, mut l) in launched {
                l.endpoint.shutdown();
            }
            self.roll_back_launch(&sid, &started)?;
            return Err(e);
        }
        for (vat, name, vat_config, l) in launched {
            match self.add_launched(&sid, vat, &name, &vat_config, l) {
                Ok(root) => started.push((name, vat, root)),
                Err(e) => {
                    self.roll_back_launch(&sid, &started)?;
                    return Err(e);
                }
            }
        }
        let roots: std::collections::BTreeMap<String, Value> =
            started.iter().map(|(n, _, root)| (n.clone(), Value::presence(*root, Some("vatRoot")))).collect();
        let services: std::collections::BTreeMap<String, Value> =
            services.into_iter().map(|(n, k)| (n, Value::presence(k, Some("service")))).collect();
        let root = started
            .iter()
            .find(|(n, _, _)| *n == config.bootstrap)
            .map(|(_, _, r)| *r)
            .ok_or_else(|| KernelError::Internal("bootstrap vat not started".into()))?;
        let bootstrap_result =
            match self.queue_message(root, "bootstrap", vec![Value::Record(roots), Value::Record(services)], waiter) {
                Ok(kp) => kp,
                Err(e) => {
                    self.roll_back_launch(&sid, &started)?;
                    return Err(e);
                }
            };
        self.commit()?;
        Ok(SubclusterLaunch {
            subcluster_id: sid,
            root,
            bootstrap_result,
            vats: started.into_iter().map(|(n, v, _)| (n, v)).collect(),
        })
    }

    fn add_launched(
        &mut self,
        sid: &str,
        vat: VatId,
        name: &str,
        config: &VatConfig,
        launched: LaunchedVat,
    ) -> Result<KRef, KernelError> {
        let spec = VatSpec {
            name: name.to_owned(),
            subcluster: Some(sid.to_owned()),
            config: serde_json::to_string(config).map_err(|e| KernelError::Internal(e.to_string()))?,
            reap_interval_deliveries: config.reap_interval(),
            initial_vatstore: launched.vatstore_sets,
        };
        Ok(self.add_vat_with_id(vat, spec, launched.endpoint)?.1)
    }

    /// Undoes a launch that failed part-way: its vats are terminated (their state is cleaned
    /// by the crank loop, which takes cleanup before any delivery), its record and IO
    /// channels deleted.
    fn roll_back_launch(&mut self, sid: &str, started: &[(String, VatId, KRef)]) -> Result<(), KernelError> {
        let info = crate::smallcaps::kser(&Value::error("launch of its subcluster failed"));
        self.unit(|k| {
            for (_, vat, _) in started.iter().rev() {
                k.terminate_in_unit((*vat).into(), &info)?;
            }
            k.store.delete_subcluster(sid)?;
            Ok(())
        })?;
        self.destroy_io_channels(sid)?;
        self.commit()
    }

    /// Terminates every vat of a subcluster, last launched first, and deletes its record.
    pub fn terminate_subcluster(&mut self, sid: &str) -> Result<(), KernelError> {
        if self.store.subcluster(sid)?.is_none() {
            return Err(KernelError::NoSuchSubcluster(sid.to_owned()));
        }
        let vats = self.store.subcluster_vats(sid)?;
        let info = crate::smallcaps::kser(&Value::error(format!("subcluster {sid} was terminated")));
        self.unit(|k| {
            for (vat, _) in vats.iter().rev() {
                k.terminate_in_unit((*vat).into(), &info)?;
            }
            k.store.delete_subcluster(sid)?;
            Ok(())
        })?;
        self.commit()
    }

    /// Terminates every subcluster, then every vat left outside one (`reset`, for the host and
    /// the kernel facet alike). IO channels go with their subclusters.
    pub fn reset(&mut self) -> Result<(), KernelError> {
        for s in self.store.subclusters()? {
            self.terminate_subcluster(&s.id)?;
        }
        for v in self.active_vats()? {
            self.terminate_vat(v.id, "kernel reset")?;
        }
        Ok(())
    }

    /// Starts a new worker for an existing vat from its persisted config and vatstore
    /// (`restartVat`). `bootstrap` is not re-run.
    pub fn restart_vat(&mut self, vat: VatId, launcher: &mut dyn VatLauncher) -> Result<(), KernelError> {
        let mut failures = self.restart_vats(&[vat], launcher)?;
        match failures.pop() {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    /// Brings back every persisted vat that has no worker, in parallel where the launcher
    /// can. A vat that fails to come back is reported and left unattached (messages to it
    /// are rejected); the others still start (gap G9).
    pub fn resume_vats(&mut self, launcher: &mut dyn VatLauncher) -> Result<Vec<(VatId, KernelError)>, KernelError> {
        let missing: Vec<VatId> =
            self.active_vats()?.into_iter().map(|r| r.id).filter(|v| !self.is_vat_attached(*v)).collect();
        self.restart_vats(&missing, launcher)
    }

    fn restart_vats(
        &mut self,
        vats: &[VatId],
        launcher: &mut dyn VatLauncher,
    ) -> Result<Vec<(VatId, KernelError)>, KernelError> {
        let mut failures = Vec::new();
        let mut requests = Vec::new();
        for &vat in vats {
            let rec = self.store.vat(vat)?.ok_or(KernelError::NoSuchVat(vat))?;
            if rec.state != crate::store::VatState::Active {
                failures.push((vat, KernelError::VatNotRunning(vat)));
                continue;
            }
            let config: VatConfig = match serde_json::from_str(&rec.config) {
                Ok(c) => c,
                Err(e) => {
                    failures.push((vat, KernelError::Internal(format!("config of {vat}: {e}"))));
                    continue;
                }
            };
            if let Some(mut old) = self.endpoints.remove(&vat.into()) {
                old.shutdown();
            }
            // The worker about to start is a new incarnation (`core/incarnation.rs`).
            self.unit(|k| k.begin_incarnation(vat))?;
            requests.push(LaunchRequest {
                vat,
                name: rec.name,
                config,
                vatstore: self.store.vatstore_all(vat)?,
                max_syscalls_per_delivery: self.opts.max_syscalls_per_delivery,
            });
        }
        let names: Vec<(VatId, String)> = requests.iter().map(|r| (r.vat, r.name.clone())).collect();
        let results = launcher.launch_many(requests);
        for ((vat, name), result) in names.into_iter().zip(results) {
            match result {
                Ok(launched) => {
                    let prune_imports = launched.endpoint.records_durable_imports();
                    self.unit(|k| {
                        for (key, value) in &launched.vatstore_sets {
                            k.store.vatstore_set(vat, key, value)?;
                        }
                        for key in &launched.vatstore_deletes {
                            k.store.vatstore_delete(vat, key)?;
                        }
                        // With its vatstore as the new incarnation left it (`incarnation.rs`).
                        if prune_imports {
                            k.drop_forgotten_imports(vat)?;
                        }
                        Ok(())
                    })?;
                    self.endpoints.insert(vat.into(), launched.endpoint);
                }
                Err(cause) => {
                    let e = KernelError::LaunchFailed { vat, name, cause };
                    tracing::error!(%vat, "vat failed to come back: {e}");
                    failures.push((vat, e));
                }
            }
        }
        self.commit()?;
        Ok(failures)
    }
}
