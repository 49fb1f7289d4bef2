//! The administration part of the `Kernel` facade (host-surface.md §1.2, §7.2): status,
//! pins, revocation, reaping, `terminateAllVats`, `collectGarbage`, reset, store reads and
//! the invariant checker. Each call runs as one job on the run loop, between cranks.

use tokio::sync::oneshot;

use super::{stopped, Kernel, KernelStatus};
use crate::core::KernelError;
use crate::refs::{KRef, VatId};
use crate::store::{Store, SubclusterRecord, VatRecord};

pub use crate::core::ServiceInfo;

/// A subcluster and its active vats, in launch order, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubclusterDetails {
    pub record: SubclusterRecord,
    pub vats: Vec<(String, VatId)>,
}

impl Kernel {
    /// A snapshot of the kernel's vats, subclusters, services and queues.
    pub async fn get_status(&self) -> Result<KernelStatus, KernelError> {
        self.call(|st| {
            let core = &st.core;
            let store = core.store();
            let vats = core.active_vats()?;
            let attached = vats.iter().map(|v| v.id).filter(|v| core.is_vat_attached(*v)).collect();
            let roots = vats.iter().filter_map(|v| core.vat_root(v.id).ok().map(|root| (v.id, root))).collect();
            let mut subclusters = Vec::new();
            for record in store.subclusters()? {
                let mut vats = store.subcluster_vats(&record.id)?;
                vats.sort_by_key(|(v, _)| *v);
                let vats = vats.into_iter().map(|(v, name)| (name, v)).collect();
                subclusters.push(SubclusterDetails { record, vats });
            }
            Ok(KernelStatus {
                vats,
                attached,
                roots,
                subclusters,
                services: core.services_info()?,
                run_queue_length: store.run_queue_len()?,
                gc_actions_pending: store.gc_action_count()?,
                crank_count: core.crank_count(),
                peer_id: core.peer_id()?,
                remote_comms: super::comms::remote_comms_status(core)?,
            })
        })
        .await
    }

    /// Every subcluster record.
    pub async fn get_subclusters(&self) -> Result<Vec<SubclusterRecord>, KernelError> {
        self.call(|st| Ok(st.core.store().subclusters()?)).await
    }

    /// One subcluster record, if it exists.
    pub async fn get_subcluster(&self, id: &str) -> Result<Option<SubclusterRecord>, KernelError> {
        let id = id.to_owned();
        self.call(move |st| Ok(st.core.store().subcluster(&id)?)).await
    }

    /// The active vats, with their subclusters.
    pub async fn get_vats(&self) -> Result<Vec<VatRecord>, KernelError> {
        self.call(|st| st.core.active_vats()).await
    }

    pub async fn ping_vat(&self, vat: VatId) -> Result<&'static str, KernelError> {
        self.call(move |st| st.core.ping_vat(vat)).await
    }

    pub async fn revoke(&self, kref: KRef) -> Result<(), KernelError> {
        self.call(move |st| st.core.revoke(kref)).await
    }

    pub async fn is_revoked(&self, kref: KRef) -> Result<bool, KernelError> {
        self.call(move |st| st.core.is_revoked(kref)).await
    }

    /// Holds an object reachable on the host's behalf (counted per call). Objects in results
    /// the host receives are pinned once for it; `unpin` them when done.
    pub async fn pin(&self, kref: KRef) -> Result<(), KernelError> {
        self.call(move |st| st.core.pin(kref)).await
    }

    /// Releases one pin; an object with no pins and no other references is collected. Also how
    /// to release a vat root's pin once the vat is gone (`unpin_vat_root` needs the vat).
    /// Errors: `NotAnObject`, `UnknownKref`, `NotPinned`.
    pub async fn unpin(&self, kref: KRef) -> Result<(), KernelError> {
        self.call(move |st| st.core.unpin(kref)).await
    }

    pub async fn pin_vat_root(&self, vat: VatId) -> Result<KRef, KernelError> {
        self.call(move |st| {
            let root = st.core.vat_root(vat)?;
            st.core.pin(root)?;
            Ok(root)
        })
        .await
    }

    pub async fn unpin_vat_root(&self, vat: VatId) -> Result<(), KernelError> {
        self.call(move |st| {
            let root = st.core.vat_root(vat)?;
            st.core.unpin(root)
        })
        .await
    }

    /// Schedules bring-out-your-dead for the given vats (all if `None`).
    pub async fn reap_vats(&self, vats: Option<Vec<VatId>>) -> Result<(), KernelError> {
        self.call(move |st| st.core.reap_vats(vats.as_deref())).await
    }

    /// Runs `f` with read access to the store between cranks (inspection, queries).
    pub async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, KernelError> + Send + 'static,
    ) -> Result<T, KernelError> {
        self.call(move |st| f(st.core.store())).await
    }

    /// Terminates every subcluster and every vat left outside one (and so every IO channel);
    /// the kernel keeps running, empty. Identity and service registrations are kept.
    pub async fn reset(&self) -> Result<(), KernelError> {
        self.call(|st| st.core.reset()).await
    }

    /// Terminates every active vat, last created first (`terminateAllVats`), then collects
    /// garbage. Returns the vats terminated.
    pub async fn terminate_all_vats(&self, reason: &str) -> Result<Vec<VatId>, KernelError> {
        let reason = reason.to_owned();
        let terminated = self
            .call(move |st| {
                let mut ids: Vec<VatId> = st.core.active_vats()?.into_iter().map(|v| v.id).collect();
                ids.sort();
                let mut done = Vec::new();
                for vat in ids.into_iter().rev() {
                    match st.core.terminate_vat(vat, &reason) {
                        Ok(()) => done.push(vat),
                        // Terminated meanwhile (its subcluster went with an earlier one).
                        Err(KernelError::VatNotRunning(_)) | Err(KernelError::NoSuchVat(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(done)
            })
            .await?;
        self.collect_garbage().await?;
        Ok(terminated)
    }

    /// Waits until the cleanup of terminated vats and the GC actions it produces are done
    /// (`collectGarbage`), committed. The run loop does the work, ahead of any delivery
    /// (cleanup and GC come first in the crank order), and keeps answering other calls
    /// meanwhile. Returns the cranks run while waiting.
    pub async fn collect_garbage(&self) -> Result<u64, KernelError> {
        let (tx, rx) = oneshot::channel();
        self.call(move |st| {
            st.gc_waiters.push((st.core.crank_count(), tx));
            Ok(())
        })
        .await?;
        rx.await.map_err(|_| stopped())?
    }

    /// Issues an OCAP URL for an object; the object is pinned until the URL is revoked
    /// (`KernelCore::issue_ocap_url`).
    pub async fn issue_ocap_url(&self, kref: KRef) -> Result<String, KernelError> {
        self.call(move |st| st.core.issue_ocap_url(kref)).await
    }

    /// Every unrevoked OCAP URL this kernel issued, with its object.
    pub async fn live_ocap_urls(&self) -> Result<Vec<(String, KRef)>, KernelError> {
        self.call(|st| st.core.live_ocap_urls()).await
    }

    /// Revokes an OCAP URL this kernel issued, releasing its object.
    pub async fn revoke_ocap_url(&self, url: &str) -> Result<(), KernelError> {
        let url = url.to_owned();
        self.call(move |st| st.core.revoke_ocap_url(&url)).await
    }

    /// Checks every store invariant (between cranks).
    pub async fn check_invariants(&self) -> Result<Result<(), Vec<String>>, KernelError> {
        self.call(|st| Ok(st.core.check_invariants())).await
    }
}
