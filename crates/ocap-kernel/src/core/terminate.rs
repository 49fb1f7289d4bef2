//! Endpoint termination and the bounded cleanup of a terminated endpoint's c-list, for vats
//! and remotes alike (the vat-only part, `end_vat_in_unit`, is in `vats.rs`).
//!
//! Termination is one unit: the endpoint is marked terminated, its worker or connection
//! stopped, its subscriptions dropped, and every promise it decided rejected with
//! `[KERNEL:VAT_TERMINATED]` (found through the decider index; bug §13.1 not copied). Its
//! c-list is then cleaned a bounded number of entries per crank: exports are orphaned,
//! imports and promise entries released with their counts, so nothing underflows and no
//! live endpoint's promise is deleted under it (bugs §13.2, §13.3, §13.7 not copied).

use super::{KernelCore, KernelError};
use crate::capdata::CapData;
use crate::refs::{EndpointId, KRef};
use crate::smallcaps::{self, kernel_error};

impl KernelCore {
    pub(crate) fn terminate_in_unit(&mut self, ep: EndpointId, info: &CapData<KRef>) -> Result<(), KernelError> {
        if ep == EndpointId::Kernel || !self.store.endpoint_is_active(ep)? {
            return Ok(());
        }
        let reason = smallcaps::reason_text(info);
        tracing::info!(endpoint = %ep, "terminating: {reason}");
        self.store.set_endpoint_terminated(ep)?;
        if let Some(mut endpoint) = self.endpoints.remove(&ep) {
            endpoint.shutdown();
        }
        self.store.remove_subscriptions_of(ep)?;
        let err = kernel_error("VAT_TERMINATED", &reason);
        for kpid in self.store.promises_decided_by(ep)? {
            self.resolve_promise(kpid, true, err.clone())?;
        }
        if let EndpointId::Vat(vat) = ep {
            self.end_vat_in_unit(vat)?;
        }
        // Exit info may have exported objects nobody references; cleanup will orphan them.
        for s in &info.slots {
            self.maybe_free.insert(*s);
        }
        Ok(())
    }

    /// Cleans up to `cleanup_budget_entries` c-list entries of a terminated endpoint; deletes
    /// its record once none are left.
    pub(crate) fn cleanup_step(&mut self, ep: EndpointId) -> Result<(), KernelError> {
        let budget = self.opts.cleanup_budget_entries.max(1);
        let entries = self.store.clist_entries(ep, budget)?;
        for (kref, eref, _) in &entries {
            if !kref.is_promise() && crate::store::eref_is_export(eref) {
                self.abandon_export(ep, *kref)?;
            } else {
                self.forget_clist_entry(ep, *kref)?;
            }
        }
        if entries.len() < budget {
            for kref in self.store.objects_owned_by(ep)? {
                self.store.set_object_owner(kref, None)?;
                self.maybe_free.insert(kref);
            }
            self.store.delete_endpoint(ep)?;
        }
        Ok(())
    }
}
