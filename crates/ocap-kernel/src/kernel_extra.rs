//! Host calls the daemon's control RPC needs beyond the core host API: a consistent status
//! snapshot (vats, subclusters with their members, services, queue lengths),
//! `terminateAllVats` and `collectGarbage` (host-surface.md §1.2, §7.2).
//!
//! Each runs as one job on the run loop, between cranks.

use crate::core::KernelError;
use crate::kernel::Kernel;
use crate::refs::{KRef, VatId};
use crate::store::{SubclusterRecord, VatRecord};

/// Units of cleanup `collect_garbage` runs at most in one call, so a huge backlog cannot
/// hold the run loop for long; the loop finishes the rest when idle.
pub const MAX_GC_UNITS_PER_CALL: u64 = 10_000;

/// A kernel service as the host sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    pub name: String,
    pub kref: KRef,
    /// Only system subclusters may be given it.
    pub system_only: bool,
    /// Registered in this process (a service registered by an earlier process and not
    /// registered again keeps its kref, but calls to it are rejected).
    pub registered: bool,
}

/// A subcluster and its active vats, in launch order, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubclusterDetails {
    pub record: SubclusterRecord,
    pub vats: Vec<(String, VatId)>,
}

/// Everything `getStatus` and `ocap status` show, read in one job (a consistent snapshot).
#[derive(Debug, Clone)]
pub struct StatusDetails {
    /// Active vats, whether or not their worker is attached.
    pub vats: Vec<VatRecord>,
    /// Active vats whose worker is running in this process.
    pub attached: Vec<VatId>,
    /// Each active vat's root object.
    pub roots: Vec<(VatId, KRef)>,
    pub subclusters: Vec<SubclusterDetails>,
    pub services: Vec<ServiceInfo>,
    pub run_queue_length: u64,
    pub gc_actions_pending: u64,
    /// Cranks run since this process started the kernel.
    pub crank_count: u64,
}

impl Kernel {
    /// A snapshot of the kernel's vats, subclusters, services and queues.
    pub async fn status_details(&self) -> Result<StatusDetails, KernelError> {
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
            let mut services = Vec::new();
            {
                let mut stmt = store
                    .connection()
                    .prepare("SELECT key, value FROM kv WHERE key LIKE 'service.%' ORDER BY key")
                    .map_err(|e| KernelError::Internal(format!("listing services: {e}")))?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                    .map_err(|e| KernelError::Internal(format!("listing services: {e}")))?;
                for row in rows {
                    let (key, kref) = row.map_err(|e| KernelError::Internal(format!("listing services: {e}")))?;
                    let Ok(kref) = kref.parse::<KRef>() else { continue };
                    let name = key.trim_start_matches("service.").to_owned();
                    services.push(ServiceInfo {
                        name,
                        kref,
                        system_only: core.system_only.contains(&kref),
                        registered: core.services.contains_key(&kref),
                    });
                }
            }
            Ok(StatusDetails {
                vats,
                attached,
                roots,
                subclusters,
                services,
                run_queue_length: store.run_queue_len()?,
                gc_actions_pending: store.gc_action_count()?,
                crank_count: core.crank_count(),
            })
        })
        .await
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

    /// Finishes the cleanup of terminated vats now (with the GC actions it produces) instead
    /// of leaving it to the idle loop (`collectGarbage`). Returns the units run.
    pub async fn collect_garbage(&self) -> Result<u64, KernelError> {
        self.call(|st| {
            let mut units = 0;
            // While a terminated vat or a GC action remains, `step` picks service answers, GC
            // actions and cleanup before any delivery from the run queue.
            while units < MAX_GC_UNITS_PER_CALL
                && (st.core.store().next_terminated_vat()?.is_some() || st.core.store().gc_action_count()? > 0)
            {
                if !st.core.step()? {
                    break;
                }
                units += 1;
            }
            st.core.commit()?;
            Ok(units)
        })
        .await
    }
}
