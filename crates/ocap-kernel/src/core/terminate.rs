//! Vat termination and the bounded cleanup of a terminated vat's c-list.
//!
//! Termination is one unit: the vat is marked terminated, its worker stopped, its vatstore
//! and subscriptions dropped, and every promise it decided rejected with
//! `[KERNEL:VAT_TERMINATED]` (found through the decider index; bug §13.1 not copied). Its
//! c-list is then cleaned a bounded number of entries per crank: exports are orphaned,
//! imports and promise entries released with their counts, so nothing underflows and no
//! live vat's promise is deleted under it (bugs §13.2, §13.3, §13.7 not copied).

use super::{KernelCore, KernelError};
use crate::capdata::CapData;
use crate::refs::{EndpointId, KRef, VatId, ROOT_OBJECT_VREF};
use crate::smallcaps::{self, kernel_error};
use crate::store::VatState;

impl KernelCore {
    pub(crate) fn terminate_in_unit(&mut self, vat: VatId, info: &CapData<KRef>) -> Result<(), KernelError> {
        if !matches!(self.store.vat(vat)?, Some(r) if r.state == VatState::Active) {
            return Ok(());
        }
        let reason = smallcaps::reason_text(info);
        tracing::info!(%vat, "terminating vat: {reason}");
        self.store.set_vat_terminated(vat)?;
        if let Some(mut endpoint) = self.vats.remove(&vat) {
            endpoint.shutdown();
        }
        self.store.remove_subscriptions_of(vat)?;
        self.store.delete_vatstore(vat)?;
        let err = kernel_error("VAT_TERMINATED", &reason);
        for kpid in self.store.promises_decided_by(EndpointId::Vat(vat))? {
            self.resolve_promise(kpid, true, err.clone())?;
        }
        if let Some((root, _)) = self.store.clist_by_eref(EndpointId::Vat(vat), ROOT_OBJECT_VREF)? {
            if self.store.object(root)?.is_some_and(|o| o.pins > 0) {
                self.store.adjust_pins(root, -1)?;
                self.decref(root)?;
            }
        }
        // A subcluster whose last vat is gone is deleted.
        if let Some(sid) = self.store.vat(vat)?.and_then(|r| r.subcluster) {
            if self.store.subcluster_vats(&sid)?.is_empty() {
                self.store.delete_subcluster(&sid)?;
            }
        }
        // Exit info may have exported objects nobody references; cleanup will orphan them.
        for s in &info.slots {
            self.maybe_free.insert(*s);
        }
        Ok(())
    }

    /// Cleans up to `cleanup_budget_entries` c-list entries of a terminated vat; deletes the
    /// vat record once none are left.
    pub(crate) fn cleanup_step(&mut self, vat: VatId) -> Result<(), KernelError> {
        let ep = EndpointId::Vat(vat);
        let budget = self.opts.cleanup_budget_entries.max(1);
        let entries = self.store.clist_entries(ep, budget)?;
        for (kref, eref, _) in &entries {
            if !kref.is_promise() && crate::store::eref_is_export(eref) {
                self.abandon_export(ep, *kref)?;
            } else {
                self.forget_clist_entry(vat, *kref)?;
            }
        }
        if entries.len() < budget {
            for kref in self.store.objects_owned_by(ep)? {
                self.store.set_object_owner(kref, None)?;
                self.maybe_free.insert(kref);
            }
            self.store.delete_vat(vat)?;
        }
        Ok(())
    }
}
