//! Routing and delivery: sends, notifies, GC actions and bring-out-your-dead.
//!
//! Refcounts move with references: a run-queue item holds its target, result and slots; on
//! delivery those references become c-list entries of the receiver (counted there) and the
//! item's own are released. A message parked on a promise keeps its result and slots but
//! not its target (bugs §13.4 and §13.5 not copied).

use super::crank::{vat_fatal, Outcome};
use super::syscalls::SyscallCtx;
use super::{Effect, KernelCore, KernelError};
use crate::capdata::CapData;
use crate::refs::{EndpointId, KRef, VatId};
use crate::smallcaps::{self, kernel_error, Value};
use crate::store::promises::PromiseState;
use crate::store::{GcAction, GcActionKind, Message};
use crate::vat::{VatDelivery, VatResolution};

/// How many promise-to-promise forwards a send follows before giving up.
const MAX_FORWARDS: usize = 1000;

impl KernelCore {
    fn vat_is_active(&self, vat: VatId) -> Result<bool, KernelError> {
        Ok(self.store.vat_is_active(vat)?)
    }

    /// Rejects a message's result (if it is still unresolved) with `error`, on the kernel's
    /// authority, and releases the references the queue item held.
    pub(crate) fn splat(&mut self, item_target: KRef, msg: &Message, error: CapData<KRef>) -> Result<(), KernelError> {
        if let Some(r) = msg.result {
            if self.store.promise_is_unresolved(r)? {
                self.resolve_promise(r, true, error)?;
            }
            self.decref(r)?;
        }
        self.decref(item_target)?;
        for s in &msg.methargs.slots {
            self.decref(*s)?;
        }
        Ok(())
    }

    pub(crate) fn route_send(&mut self, item_target: KRef, msg: Message) -> Result<Outcome, KernelError> {
        let mut target = item_target;
        for _ in 0..MAX_FORWARDS {
            if !target.is_promise() {
                return self.send_to_object(target, item_target, msg);
            }
            let p = self.store.promise(target)?.ok_or(KernelError::UnknownKref(target))?;
            match p.state {
                PromiseState::Unresolved => {
                    self.store.park_message(target, &msg)?;
                    self.decref(item_target)?;
                    return Ok(Outcome::Commit);
                }
                PromiseState::Rejected => {
                    let value = p.value.unwrap_or_else(|| kernel_error("INTERNAL_ERROR", "rejected without a value"));
                    self.splat(item_target, &msg, value)?;
                    return Ok(Outcome::Commit);
                }
                PromiseState::Fulfilled => match p.value.as_ref().and_then(smallcaps::single_ref) {
                    Some(next) => target = next,
                    None => {
                        let err = kernel_error(
                            "BAD_PROMISE_RESOLUTION",
                            &format!("message sent to {item_target}, which was fulfilled to data"),
                        );
                        self.splat(item_target, &msg, err)?;
                        return Ok(Outcome::Commit);
                    }
                },
            }
        }
        let err = kernel_error("BAD_PROMISE_RESOLUTION", &format!("promise chain from {item_target} is too long"));
        self.splat(item_target, &msg, err)?;
        Ok(Outcome::Commit)
    }

    fn send_to_object(&mut self, obj: KRef, item_target: KRef, msg: Message) -> Result<Outcome, KernelError> {
        let deleted = || kernel_error("OBJECT_DELETED", "Target object has no owner; it may have been deleted");
        let Some(rec) = self.store.object(obj)? else {
            self.splat(item_target, &msg, deleted())?;
            return Ok(Outcome::Commit);
        };
        if rec.revoked {
            self.splat(item_target, &msg, kernel_error("OBJECT_REVOKED", "Target object has been revoked"))?;
            return Ok(Outcome::Commit);
        }
        match rec.owner {
            None => {
                self.splat(item_target, &msg, deleted())?;
                Ok(Outcome::Commit)
            }
            Some(EndpointId::Kernel) => {
                self.send_to_service(obj, item_target, msg)?;
                Ok(Outcome::Commit)
            }
            Some(EndpointId::Vat(vat)) => {
                if !self.vat_is_active(vat)? {
                    self.splat(item_target, &msg, deleted())?;
                    return Ok(Outcome::Commit);
                }
                if !self.is_vat_attached(vat) {
                    let err = kernel_error("ENDPOINT_UNREACHABLE", &format!("vat {vat} is not running"));
                    self.splat(item_target, &msg, err)?;
                    return Ok(Outcome::Commit);
                }
                let Some(entry) = self.store.clist_by_kref(EndpointId::Vat(vat), obj)? else {
                    self.splat(item_target, &msg, deleted())?;
                    return Ok(Outcome::Commit);
                };
                // The decider is handed off at delivery.
                let result = match msg.result {
                    Some(r) if self.store.promise_is_unresolved(r)? => {
                        self.store.set_decider(r, Some(EndpointId::Vat(vat)))?;
                        Some(r)
                    }
                    _ => None,
                };
                let methargs = self.capdata_to_vat(vat, &msg.methargs)?;
                let (result_vref, result_moved) = match result {
                    Some(r) => {
                        let (vref, moved) = self.import_result(vat, r)?;
                        (Some(vref), moved)
                    }
                    None => (None, false),
                };
                self.release_item_but(item_target, &msg, result_moved)?;
                self.deliver_to_vat(
                    vat,
                    VatDelivery::Message { target: entry.eref, methargs, result: result_vref },
                    true,
                )
            }
        }
    }

    fn release_item(&mut self, item_target: KRef, msg: &Message) -> Result<(), KernelError> {
        self.release_item_but(item_target, msg, false)
    }

    /// `release_item`, except the result's reference when `result_moved`: it was handed to
    /// the receiver's new c-list entry instead (`import_result`).
    fn release_item_but(&mut self, item_target: KRef, msg: &Message, result_moved: bool) -> Result<(), KernelError> {
        self.decref(item_target)?;
        if let Some(r) = msg.result {
            if !result_moved {
                self.decref(r)?;
            }
        }
        for s in &msg.methargs.slots {
            self.decref(*s)?;
        }
        Ok(())
    }

    fn send_to_service(&mut self, service: KRef, item_target: KRef, msg: Message) -> Result<(), KernelError> {
        if self.system_only.contains(&service) {
            let allowed = match msg.sender {
                None => true,
                Some(vat) => self.is_system_vat(vat)?,
            };
            if !allowed {
                // The same answer as for a service that does not exist (host-surface §4.5).
                let err = kernel_error("DELIVERY_FAILED", &format!("no registered kernel service for {service}"));
                return self.splat(item_target, &msg, err);
            }
        }
        let (method, args) = match smallcaps::kunser(&msg.methargs) {
            Ok(Value::Array(mut parts)) if parts.len() == 2 => match (parts.pop(), parts.pop()) {
                (Some(Value::Array(args)), Some(Value::String(method))) => (method, args),
                _ => return self.splat(item_target, &msg, kernel_error("DELIVERY_FAILED", "malformed method call")),
            },
            _ => return self.splat(item_target, &msg, kernel_error("DELIVERY_FAILED", "malformed method call")),
        };
        let result = match msg.result {
            Some(r) if self.store.promise_is_unresolved(r)? => {
                self.store.set_decider(r, Some(EndpointId::Kernel))?;
                Some(r)
            }
            _ => None,
        };
        let args = smallcaps::kser(&Value::Array(args));
        self.effects.push(Effect::InvokeService { service, method, args, result });
        self.release_item(item_target, &msg)
    }

    /// Delivers to an attached vat and turns what happened into the crank's outcome.
    pub(crate) fn deliver_to_vat(
        &mut self,
        vat: VatId,
        delivery: VatDelivery,
        counts_for_reap: bool,
    ) -> Result<Outcome, KernelError> {
        let Some(mut endpoint) = self.vats.remove(&vat) else {
            return Err(KernelError::VatNotRunning(vat));
        };
        let (result, illegal, internal, exit) = {
            let mut ctx = SyscallCtx::new(self, vat);
            // A panicking endpoint is a broken vat, not a broken kernel.
            let call = std::panic::AssertUnwindSafe(|| endpoint.deliver(delivery, &mut ctx));
            let result = std::panic::catch_unwind(call).unwrap_or_else(|_| Err(format!("vat {vat} worker panicked")));
            (result, ctx.illegal, ctx.internal, ctx.exit)
        };
        self.vats.insert(vat, endpoint);
        if let Some(e) = internal {
            return Err(e);
        }
        if let Some(why) = illegal {
            return Ok(Outcome::Abort { vat, info: vat_fatal("ILLEGAL_SYSCALL", &why) });
        }
        if let Err(e) = result {
            tracing::warn!(%vat, "delivery error: {e}");
            return Ok(Outcome::Abort { vat, info: vat_fatal("INTERNAL_ERROR", &e) });
        }
        if counts_for_reap && self.store.tick_reap(vat)? {
            self.store.schedule_reap(vat)?;
        }
        Ok(match exit {
            Some((true, info)) => Outcome::Abort { vat, info },
            Some((false, info)) => Outcome::CommitThenTerminate { vat, info },
            None => Outcome::Commit,
        })
    }

    pub(crate) fn deliver_notify(&mut self, vat: VatId, kpid: KRef) -> Result<Outcome, KernelError> {
        let ep = EndpointId::Vat(vat);
        let entry = if self.vat_is_active(vat)? && self.is_vat_attached(vat) {
            self.store.clist_by_kref(ep, kpid)?
        } else {
            None
        };
        let Some(entry) = entry else {
            self.decref(kpid)?;
            return Ok(Outcome::Commit);
        };
        // kpid plus every settled promise reachable through the values (spec §4.3).
        let mut batch: Vec<(KRef, bool, CapData<KRef>)> = Vec::new();
        let mut queue = vec![kpid];
        let mut seen = std::collections::HashSet::from([kpid]);
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
            batch.push((kp, p.state == PromiseState::Rejected, value));
        }
        let mut resolutions = Vec::with_capacity(batch.len());
        for (kp, rejected, value) in &batch {
            // The notified promise's entry was just read; a promise entry has no reachable
            // flag to restore, so `kref_to_vref` would only read it again.
            let vpid = if *kp == kpid { entry.eref.clone() } else { self.kref_to_vref(vat, *kp)? };
            let data = self.capdata_to_vat(vat, value)?;
            resolutions.push(VatResolution { vpid, rejected: *rejected, data });
        }
        self.decref(kpid)?;
        let outcome = self.deliver_to_vat(vat, VatDelivery::Notify(resolutions), true)?;
        if !matches!(outcome, Outcome::Abort { .. }) {
            // Liveslots retires every vpid of a notify batch; so does the kernel.
            for (kp, _, _) in &batch {
                self.forget_clist_entry(vat, *kp)?;
            }
        }
        Ok(outcome)
    }

    pub(crate) fn deliver_gc(&mut self, action: &GcAction) -> Result<Outcome, KernelError> {
        let EndpointId::Vat(vat) = action.endpoint else {
            return Ok(Outcome::Commit);
        };
        if !self.vat_is_active(vat)? || !self.is_vat_attached(vat) {
            return Ok(Outcome::Commit);
        }
        let ep = action.endpoint;
        let mut vrefs = Vec::new();
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
                GcActionKind::RetireImport => self.forget_clist_entry(vat, kref)?,
            }
            vrefs.push(entry.eref);
        }
        if vrefs.is_empty() {
            return Ok(Outcome::Commit);
        }
        let delivery = match action.kind {
            GcActionKind::DropExport => VatDelivery::DropExports(vrefs),
            GcActionKind::RetireExport => VatDelivery::RetireExports(vrefs),
            GcActionKind::RetireImport => VatDelivery::RetireImports(vrefs),
        };
        self.deliver_to_vat(vat, delivery, false)
    }

    pub(crate) fn deliver_reap(&mut self, vat: VatId) -> Result<Outcome, KernelError> {
        if !self.vat_is_active(vat)? || !self.is_vat_attached(vat) {
            return Ok(Outcome::Commit);
        }
        self.deliver_to_vat(vat, VatDelivery::BringOutYourDead, false)
    }
}
