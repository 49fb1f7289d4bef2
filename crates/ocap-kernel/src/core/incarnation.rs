//! A vat's new incarnation: what the kernel does when a vat starts again from its vatstore
//! (`restartVat`, or any kernel or daemon start, which brings every vat back on a new
//! worker). SwingSet's upgrade rules (issue 10, item 3; kernel-core.md §10.5 lists what the
//! JS kernel gets wrong):
//!
//! - **Non-durable exports are abandoned.** The new incarnation cannot know an ephemeral
//!   export (`o+N`, heap objects) or a virtual one (`o+vK/I`, whose kind is not durable) of
//!   the previous one: liveslots only rebuilds durable kinds (`o+dK/I`) from the vatstore,
//!   and the root object (`o+0`) is made again by `buildRootObject`. Each abandoned export
//!   loses its c-list entry and its owner, exactly as a terminated vat's exports do, so a
//!   send to it is rejected with `[KERNEL:OBJECT_DELETED]` and its importers can still drop
//!   it. Before this, the vat was killed by the first such message (liveslots: "I don't
//!   remember allocating o+11").
//! - **Promises the vat decided are rejected** with `[KERNEL:VAT_RESTARTED]`, so nothing waits
//!   forever on an answer the old incarnation held (liveslots 0.10.3's `stopVat` is a no-op,
//!   and a killed worker could not run it anyway: this is the kernel's job).
//! - **Every promise c-list entry is dropped**, with its subscriptions: promises cannot be
//!   stored in durable state, so the new incarnation knows none of the old vpids.
//!
//! Imports (`o-N`) are kept while durable state may hold them. For a vat that records which
//! imports its durable state holds (`Endpoint::records_durable_imports`: liveslots'
//! `vom.rc.`/`vom.ir.` vatstore keys), the others are dropped once the new worker has started
//! (`drop_forgotten_imports`): held in memory by the previous incarnation only, they are
//! unreachable for the new one, which would never drop them (the torture test saw objects
//! grow without bound across daemon restarts). An import only a weak key still names is
//! dropped but stays recognizable.

use super::{KernelCore, KernelError};
use crate::refs::{EndpointId, VatId, ROOT_OBJECT_VREF};
use crate::smallcaps::kernel_error;
use crate::store::eref_is_export;

/// What starting a new incarnation changed, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IncarnationReport {
    /// Non-durable exports abandoned.
    pub abandoned_exports: usize,
    /// Unsettled promises the vat decided, now rejected.
    pub rejected_promises: usize,
}

/// Whether an export survives into a new incarnation: the root object and durable objects.
fn export_survives_restart(vref: &str) -> bool {
    vref == ROOT_OBJECT_VREF || vref.starts_with("o+d")
}

/// What a liveslots vatstore says of an import after a restart.
fn durable_hold(store: &crate::store::Store, vat: VatId, vref: &str) -> Result<(bool, bool), KernelError> {
    let reachable = store.vatstore_get(vat, &format!("vom.rc.{vref}"))?.is_some_and(|n| n != "0");
    let prefix = format!("vom.ir.{vref}|");
    let recognizable = store.vatstore_next_key(vat, &prefix)?.is_some_and(|k| k.starts_with(&prefix))
        || store.vatstore_get(vat, &prefix)?.is_some();
    Ok((reachable, recognizable))
}

impl KernelCore {
    /// Drops the imports of `vat`'s previous incarnation that its durable state does not hold
    /// (see the module doc), inside the open unit. Returns how many it dropped.
    pub(crate) fn drop_forgotten_imports(&mut self, vat: VatId) -> Result<usize, KernelError> {
        let ep = EndpointId::Vat(vat);
        let mut dropped = 0;
        for (kref, eref, reachable) in self.store.clist_entries(ep, usize::MAX)? {
            if kref.is_promise() || eref_is_export(&eref) {
                continue;
            }
            match durable_hold(&self.store, vat, &eref)? {
                (true, _) => {}
                (false, true) => {
                    if reachable {
                        self.drop_import_entry(ep, kref)?;
                        dropped += 1;
                    }
                }
                (false, false) => {
                    self.forget_clist_entry(ep, kref)?;
                    dropped += 1;
                }
            }
        }
        if dropped > 0 {
            tracing::info!(%vat, dropped, "dropped imports the vat's new incarnation cannot reach");
        }
        Ok(dropped)
    }

    /// Applies the rules above to `vat` inside the open unit. Called before a new worker is
    /// attached to a persisted vat.
    pub(crate) fn begin_incarnation(&mut self, vat: VatId) -> Result<IncarnationReport, KernelError> {
        let ep = EndpointId::Vat(vat);
        let mut report = IncarnationReport::default();
        self.store.remove_subscriptions_of(ep)?;
        let reason = kernel_error(
            "VAT_RESTARTED",
            &format!("vat {vat} restarted before settling this promise; its previous incarnation's promises are gone"),
        );
        for kpid in self.store.promises_decided_by(ep)? {
            self.resolve_promise(kpid, true, reason.clone())?;
            report.rejected_promises += 1;
        }
        for (kref, eref, _) in self.store.clist_entries(ep, usize::MAX)? {
            if kref.is_promise() {
                self.forget_clist_entry(ep, kref)?;
            } else if eref_is_export(&eref) && !export_survives_restart(&eref) {
                self.abandon_export(ep, kref)?;
                report.abandoned_exports += 1;
            }
        }
        if report != IncarnationReport::default() {
            tracing::info!(
                %vat,
                abandoned_exports = report.abandoned_exports,
                rejected_promises = report.rejected_promises,
                "vat starts a new incarnation"
            );
        }
        Ok(report)
    }
}
