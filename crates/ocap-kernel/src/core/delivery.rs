//! Deliveries to endpoints: messages, notifies, GC actions and (vats only) bring-out-your-dead,
//! all through `deliver_to_endpoint`, the one place a delivery's report becomes the crank's
//! `Outcome`. Written for any endpoint (vat or remote): the c-list translation, the decider
//! hand-off and the GC bookkeeping do not depend on the kind.

use super::refcount::HeldBy;
use super::syscalls::{describe, SyscallCtx, SyscallReport};
use super::unit::{vat_fatal, Outcome};
use super::{KernelCore, KernelError};
use crate::capdata::CapData;
use crate::refs::{EndpointId, KRef, VatId};
use crate::smallcaps::kernel_error;
use crate::store::promises::PromiseState;
use crate::store::{GcAction, GcActionKind, Message};
use crate::vat::{VatDelivery, VatResolution, VatSyscall};

impl SyscallReport {
    /// What the crank does after a delivery (or a batch of async syscalls) that made these
    /// syscalls and ended with `delivered`: a kernel error fails the crank; an illegal syscall
    /// or a delivery error aborts it and terminates the endpoint; `exit` terminates it after
    /// (`exit(true)`) or without (`exit(false)`) keeping the crank.
    fn outcome(self, endpoint: EndpointId, delivered: Result<(), String>) -> Result<Outcome, KernelError> {
        if let Some(e) = self.internal {
            return Err(e);
        }
        if let Some(why) = self.illegal {
            return Ok(Outcome::Abort { endpoint, info: vat_fatal("ILLEGAL_SYSCALL", &why) });
        }
        if let Err(e) = delivered {
            tracing::warn!(%endpoint, "delivery error: {e}");
            return Ok(Outcome::Abort { endpoint, info: vat_fatal("INTERNAL_ERROR", &e) });
        }
        Ok(match self.exit {
            Some((true, info)) => Outcome::Abort { endpoint, info },
            Some((false, info)) => Outcome::CommitThenTerminate { endpoint, info },
            None => Outcome::Commit,
        })
    }
}

impl KernelCore {
    /// Whether deliveries to `ep` can happen now: it is active in the store and attached.
    fn can_deliver(&self, ep: EndpointId) -> Result<bool, KernelError> {
        Ok(self.store.endpoint_is_active(ep)? && self.is_attached(ep))
    }

    /// Delivers a message to an object `ep` exports.
    pub(crate) fn deliver_message(
        &mut self,
        ep: EndpointId,
        obj: KRef,
        item_target: KRef,
        msg: Message,
    ) -> Result<Outcome, KernelError> {
        match self.prepare_message(ep, obj, item_target, msg, HeldBy::QueueItem)? {
            Some(delivery) => self.deliver_to_endpoint(ep, delivery, true),
            None => Ok(Outcome::Commit),
        }
    }

    /// Everything of a message's delivery up to handing it to `ep`: the checks (a message
    /// that cannot be delivered is rejected here, and None returned), the decider hand-off,
    /// the translation into `ep`'s space, and the release of what held the message (`held`).
    pub(crate) fn prepare_message(
        &mut self,
        ep: EndpointId,
        obj: KRef,
        item_target: KRef,
        msg: Message,
        held: HeldBy,
    ) -> Result<Option<VatDelivery>, KernelError> {
        let deleted = || kernel_error("OBJECT_DELETED", "Target object has no owner; it may have been deleted");
        if !self.store.endpoint_is_active(ep)? {
            self.splat_held(held, item_target, &msg, deleted())?;
            return Ok(None);
        }
        if !self.is_attached(ep) {
            let err = kernel_error("ENDPOINT_UNREACHABLE", &format!("{} is not running", describe(ep)));
            self.splat_held(held, item_target, &msg, err)?;
            return Ok(None);
        }
        let Some(entry) = self.store.clist_by_kref(ep, obj)? else {
            self.splat_held(held, item_target, &msg, deleted())?;
            return Ok(None);
        };
        if let EndpointId::Remote(r) = ep {
            if self.is_peer(r) && self.peer_backlog_full(r)? {
                let err = self.backlog_full_error();
                self.splat_held(held, item_target, &msg, err)?;
                return Ok(None);
            }
            if let Some(err) = self.too_large_for_peer(ep, &msg.methargs) {
                self.splat_held(held, item_target, &msg, err)?;
                return Ok(None);
            }
        }
        // The decider is handed off at delivery.
        let result = match msg.result {
            Some(r) if self.store.promise_is_unresolved(r)? => {
                self.store.set_decider(r, Some(ep))?;
                Some(r)
            }
            _ => None,
        };
        let methargs = self.capdata_to_endpoint(ep, &msg.methargs)?;
        let (result_eref, result_moved) = match result {
            Some(r) => {
                let (eref, moved) = self.import_result(ep, r)?;
                (Some(eref), moved)
            }
            None => (None, false),
        };
        self.release_held(held, item_target, &msg, !result_moved)?;
        Ok(Some(VatDelivery::Message { target: entry.eref, methargs, result: result_eref }))
    }

    /// Delivers to an attached endpoint and turns what happened into the crank's outcome.
    /// `counts_for_reap`: a vat's delivery counts against its reap interval.
    pub(crate) fn deliver_to_endpoint(
        &mut self,
        ep: EndpointId,
        delivery: VatDelivery,
        counts_for_reap: bool,
    ) -> Result<Outcome, KernelError> {
        if let Some(t) = &mut self.trace {
            t.endpoint = Some(ep);
        }
        if let EndpointId::Remote(r) = ep {
            if self.is_peer(r) {
                return self.send_to_peer(r, delivery);
            }
        }
        if self.crank_is_run && ep.vat().is_some() {
            // This delivery starts first (unless the crank before started it), then the next
            // crank is chosen, and its delivery may start too, behind this one if it goes to
            // the same vat (`overlap.rs`).
            if self.opts.overlap_deliveries && !self.crank_started {
                if let Some(endpoint) = self.endpoints.get_mut(&ep) {
                    endpoint.prefetch(&delivery);
                }
            }
            self.choose_next()?;
        }
        let Some(mut endpoint) = self.endpoints.remove(&ep) else {
            return Err(match ep {
                EndpointId::Vat(vat) => KernelError::VatNotRunning(vat),
                other => KernelError::NoSuchEndpoint(other),
            });
        };
        let (delivered, report) = {
            let mut ctx = SyscallCtx::new(self, ep);
            // A panicking endpoint is a broken endpoint, not a broken kernel.
            let call = std::panic::AssertUnwindSafe(|| endpoint.deliver(delivery, &mut ctx));
            let delivered =
                std::panic::catch_unwind(call).unwrap_or_else(|_| Err(format!("{} worker panicked", describe(ep))));
            (delivered, ctx.finish())
        };
        self.endpoints.insert(ep, endpoint);
        let outcome = report.outcome(ep, delivered)?;
        // A vat's delivery counts against its reap interval, unless it is rolled back.
        if let Some(vat) = ep.vat().filter(|_| counts_for_reap && !matches!(outcome, Outcome::Abort { .. })) {
            if self.store.tick_reap(vat)? {
                self.store.schedule_reap(vat)?;
            }
        }
        Ok(outcome)
    }

    /// Runs syscalls an endpoint made outside a delivery, inside the open unit, and returns the
    /// outcome as for a delivery that succeeded.
    pub(crate) fn run_syscalls(&mut self, ep: EndpointId, calls: Vec<VatSyscall>) -> Result<Outcome, KernelError> {
        let report = {
            let mut ctx = SyscallCtx::new(self, ep);
            for call in calls {
                if let crate::vat::SyscallResult::Error(_) = crate::vat::SyscallHandler::syscall(&mut ctx, call) {
                    break;
                }
            }
            ctx.finish()
        };
        report.outcome(ep, Ok(()))
    }

    /// Delivers the notifies of `kpids` (run-queue items, in queue order: one, or a batch,
    /// `notify_batch.rs`) to `ep` in one `notify`.
    pub(crate) fn deliver_notify(&mut self, ep: EndpointId, kpids: &[KRef]) -> Result<Outcome, KernelError> {
        let Some((delivery, kps)) = self.prepare_notify(ep, kpids)? else {
            return Ok(Outcome::Commit);
        };
        let outcome = self.deliver_to_endpoint(ep, delivery, true)?;
        if !matches!(outcome, Outcome::Abort { .. }) {
            self.retire_notified(ep, &kps)?;
        }
        Ok(outcome)
    }

    /// After a notify of `kps` was handed to `ep`: liveslots retires every vpid of a notify
    /// batch; so does the kernel (for a peer, once it has seen the notify: `peers.rs`,
    /// `retire_after_notify`).
    pub(crate) fn retire_notified(&mut self, ep: EndpointId, kps: &[KRef]) -> Result<(), KernelError> {
        if !self.retire_after_notify(ep, kps) {
            for &kp in kps {
                self.forget_clist_entry(ep, kp)?;
            }
        }
        Ok(())
    }

    /// A notify's delivery up to handing it to `ep`: the resolutions in `ep`'s space and the
    /// promises in them; None if `ep` cannot take any (each queue item's reference is released
    /// either way).
    ///
    /// For each of `kpids` in order (the run-queue items of one delivery): that promise plus
    /// every settled promise reachable through its value (spec §4.3). A kpid `ep` has no
    /// c-list entry for, or that an earlier one of the batch already carried, adds nothing:
    /// delivered one by one, its notify would have found the entry gone.
    pub(crate) fn prepare_notify(
        &mut self,
        ep: EndpointId,
        kpids: &[KRef],
    ) -> Result<Option<(VatDelivery, Vec<KRef>)>, KernelError> {
        let deliverable = self.can_deliver(ep)?;
        // (promise, rejected, value, its eref when already read).
        let mut batch: Vec<(KRef, bool, CapData<KRef>, Option<String>)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut delivered = Vec::with_capacity(kpids.len());
        for &kpid in kpids {
            let entry = if deliverable && !seen.contains(&kpid) { self.store.clist_by_kref(ep, kpid)? } else { None };
            let Some(entry) = entry else {
                self.decref(kpid)?;
                continue;
            };
            delivered.push(kpid);
            seen.insert(kpid);
            let mut queue = vec![kpid];
            while let Some(kp) = queue.pop() {
                let p = self.store.promise(kp)?.ok_or(KernelError::UnknownKref(kp))?;
                let Some(value) = p.value else {
                    if kp == kpid {
                        return Err(KernelError::Internal(format!("notify for unresolved {kpid}")));
                    }
                    continue;
                };
                for s in &value.slots {
                    if s.is_promise() && seen.insert(*s) {
                        queue.push(*s);
                    }
                }
                // The notified promise's entry was just read; a promise entry has no
                // reachable flag to restore, so `kref_to_eref` would only read it again.
                let eref = (kp == kpid).then(|| entry.eref.clone());
                batch.push((kp, p.state == PromiseState::Rejected, value, eref));
            }
        }
        if batch.is_empty() {
            return Ok(None);
        }
        let mut resolutions = Vec::with_capacity(batch.len());
        for (kp, rejected, value, eref) in &batch {
            let vpid = match eref {
                Some(eref) => eref.clone(),
                None => self.kref_to_eref(ep, *kp)?,
            };
            let data = self.capdata_to_endpoint(ep, value)?;
            resolutions.push(VatResolution { vpid, rejected: *rejected, data });
        }
        self.fit_for_peer(ep, &mut resolutions);
        for kpid in delivered {
            self.decref(kpid)?;
        }
        let kps: Vec<KRef> = batch.iter().map(|(kp, ..)| *kp).collect();
        Ok(Some((VatDelivery::Notify(resolutions), kps)))
    }

    pub(crate) fn deliver_gc(&mut self, action: &GcAction) -> Result<Outcome, KernelError> {
        let ep = action.endpoint;
        if ep == EndpointId::Kernel || !self.can_deliver(ep)? {
            return Ok(Outcome::Commit);
        }
        let mut erefs = Vec::new();
        for &kref in &action.krefs {
            let Some(entry) = self.store.clist_by_kref(ep, kref)? else {
                continue;
            };
            let rec = self.store.object(kref)?;
            let valid = match action.kind {
                GcActionKind::DropExport => {
                    matches!(&rec, Some(o) if o.reachable == 0 && o.owner == Some(ep)) && entry.reachable
                }
                GcActionKind::RetireExport => {
                    matches!(&rec, Some(o) if o.reachable == 0 && o.recognizable == 0 && o.owner == Some(ep))
                }
                GcActionKind::RetireImport => !crate::store::eref_is_export(&entry.eref),
            };
            if !valid {
                continue;
            }
            // The kernel side of each action (SwingSet's model; bugs §13.6 and §13.7 not copied).
            match action.kind {
                GcActionKind::DropExport => self.store.set_clist_reachable(ep, kref, false)?,
                GcActionKind::RetireExport => {
                    self.store.delete_clist(ep, kref)?;
                    self.store.delete_object(kref)?;
                }
                GcActionKind::RetireImport => self.forget_clist_entry(ep, kref)?,
            }
            erefs.push(entry.eref);
        }
        if erefs.is_empty() {
            return Ok(Outcome::Commit);
        }
        let delivery = match action.kind {
            GcActionKind::DropExport => VatDelivery::DropExports(erefs),
            GcActionKind::RetireExport => VatDelivery::RetireExports(erefs),
            GcActionKind::RetireImport => VatDelivery::RetireImports(erefs),
        };
        self.deliver_to_endpoint(ep, delivery, false)
    }

    /// Bring-out-your-dead, a vat-only delivery (liveslots' GC of its own heap).
    pub(crate) fn deliver_reap(&mut self, vat: VatId) -> Result<Outcome, KernelError> {
        if !self.can_deliver(vat.into())? {
            return Ok(Outcome::Commit);
        }
        self.deliver_to_endpoint(vat.into(), VatDelivery::BringOutYourDead, false)
    }
}
