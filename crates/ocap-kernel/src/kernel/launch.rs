//! The launch part of the `Kernel` facade: launching and terminating subclusters, restarting
//! and terminating vats, and reading vat code off the run loop before it is needed.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::run_loop::LoopState;
use super::{stopped, Kernel, LaunchResult};
use crate::config::{ClusterConfig, VatConfig};
use crate::core::{HostResult, HostWaiter, KernelError, SubclusterLaunch, VatCodeLoader};
use crate::refs::{KRef, VatId};

/// The subcluster ID and root of a launch, for a bootstrap waiter that must be made before
/// `start_subcluster` returns them (the waiter runs later, after the bootstrap settles).
#[derive(Clone, Default)]
pub(crate) struct BootstrapSlot(Arc<Mutex<Option<(String, KRef)>>>);

impl BootstrapSlot {
    /// A waiter for `start_subcluster` that calls `f` with the launch's (subcluster, root),
    /// once `fill` has recorded them, and the bootstrap result.
    pub(crate) fn waiter(
        f: impl FnOnce(Option<(String, KRef)>, HostResult) + Send + 'static,
    ) -> (BootstrapSlot, HostWaiter) {
        let slot = BootstrapSlot::default();
        let read = slot.clone();
        let waiter: HostWaiter = Box::new(move |r| {
            let launched = read.0.lock().ok().and_then(|g| g.clone());
            f(launched, r)
        });
        (slot, waiter)
    }

    pub(crate) fn fill(&self, launch: &SubclusterLaunch) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some((launch.subcluster_id.clone(), launch.root));
        }
    }
}

/// Runs `loader.preload(vats)` on a thread of its own and waits for it without blocking the
/// caller's executor (any executor: a plain thread and a oneshot, not `spawn_blocking`).
async fn preload_off_loop(loader: &Option<Arc<dyn VatCodeLoader>>, vats: Vec<VatConfig>) {
    let Some(loader) = loader.clone() else { return };
    let (tx, rx) = oneshot::channel();
    let spawned = std::thread::Builder::new().name("ocap-code-loader".into()).spawn(move || {
        loader.preload(&vats);
        let _ = tx.send(());
    });
    if spawned.is_ok() {
        let _ = rx.await;
    }
}

impl Kernel {
    /// Launches a subcluster and waits for its bootstrap result. A failed launch, or a
    /// bootstrap that rejects, leaves nothing behind.
    pub async fn launch_subcluster(&self, config: ClusterConfig) -> Result<LaunchResult, KernelError> {
        let vats: Vec<_> = config.vats.keys().filter_map(|name| config.resolved_vat(name)).collect();
        preload_off_loop(&self.code_loader, vats).await;
        let (otx, orx) = oneshot::channel();
        let launch = self
            .call(move |st| {
                let LoopState { core, launcher, .. } = st;
                core.start_subcluster(&config, launcher.as_mut(), None, Some(Box::new(move |r| drop(otx.send(r)))))
            })
            .await?;
        match orx.await.map_err(|_| stopped())? {
            Ok(value) => Ok(LaunchResult {
                subcluster_id: launch.subcluster_id,
                root_kref: launch.root,
                bootstrap_result: value,
            }),
            Err(reason) => {
                let sid = launch.subcluster_id.clone();
                // Already gone if its last vat died during bootstrap.
                let _ = self.call(move |st| st.core.terminate_subcluster(&sid)).await;
                Err(KernelError::BootstrapFailed(crate::smallcaps::reason_text(&reason)))
            }
        }
    }

    pub async fn terminate_subcluster(&self, id: &str) -> Result<(), KernelError> {
        let id = id.to_owned();
        self.call(move |st| st.core.terminate_subcluster(&id)).await
    }

    pub async fn terminate_vat(&self, vat: VatId, reason: &str) -> Result<(), KernelError> {
        let reason = reason.to_owned();
        self.call(move |st| st.core.terminate_vat(vat, &reason)).await
    }

    /// A new worker for the vat from its persisted state; `bootstrap` is not re-run.
    pub async fn restart_vat(&self, vat: VatId) -> Result<(), KernelError> {
        if self.code_loader.is_some() {
            let config = self
                .call(move |st| Ok(st.core.store().vat(vat)?.and_then(|r| serde_json::from_str(&r.config).ok())))
                .await?;
            preload_off_loop(&self.code_loader, config.into_iter().collect()).await;
        }
        self.call(move |st| {
            let LoopState { core, launcher, .. } = st;
            core.restart_vat(vat, launcher.as_mut())
        })
        .await
    }

    /// The root kref of a system subcluster's bootstrap vat.
    pub async fn get_system_subcluster_root(&self, name: &str) -> Result<KRef, KernelError> {
        let name = name.to_owned();
        self.call(move |st| st.core.system_subcluster_root(&name)).await
    }
}
