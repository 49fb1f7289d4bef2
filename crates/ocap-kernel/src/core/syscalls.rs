//! Syscall validation and effects (spec kernel-core.md §5.3, with §14's fixes).
//!
//! A `SyscallCtx` lives for one delivery (or one batch of syscalls a vat made outside a
//! delivery). The first illegal syscall marks the whole batch illegal and the mark is
//! sticky: later syscalls are refused and nothing clears it (bug §13.8 not copied).

use super::translate::{illegal, SyscallError};
use super::{KernelCore, KernelError};
use crate::capdata::CapData;
use crate::refs::{EndpointId, KRef, RefType, VatId};
use crate::store::promises::PromiseState;
use crate::store::{GcActionKind, Message, RunQueueItem};
use crate::vat::{SyscallHandler, SyscallResult, VatResolution, VatSyscall};

pub(crate) struct SyscallCtx<'a> {
    pub(crate) core: &'a mut KernelCore,
    pub(crate) vat: VatId,
    pub(crate) illegal: Option<String>,
    pub(crate) internal: Option<KernelError>,
    /// `exit(failure, info)` requested by the vat.
    pub(crate) exit: Option<(bool, CapData<KRef>)>,
    pub(crate) count: usize,
}

impl<'a> SyscallCtx<'a> {
    pub(crate) fn new(core: &'a mut KernelCore, vat: VatId) -> Self {
        SyscallCtx { core, vat, illegal: None, internal: None, exit: None, count: 0 }
    }
}

impl SyscallHandler for SyscallCtx<'_> {
    fn syscall(&mut self, call: VatSyscall) -> SyscallResult {
        if let Some(why) = &self.illegal {
            return SyscallResult::Error(format!("vat {} already made an illegal syscall: {why}", self.vat));
        }
        if self.internal.is_some() {
            return SyscallResult::Error("kernel error".into());
        }
        self.count += 1;
        let name = call.name();
        let outcome = if self.count > self.core.opts.max_syscalls_per_delivery {
            illegal(format!("more than {} syscalls in one delivery", self.core.opts.max_syscalls_per_delivery))
        } else {
            self.dispatch(call)
        };
        match outcome {
            Ok(r) => r,
            Err(SyscallError::Illegal(why)) => {
                let why = format!("{name}: {why}");
                tracing::warn!(vat = %self.vat, "illegal syscall: {why}");
                self.illegal = Some(why.clone());
                SyscallResult::Error(why)
            }
            Err(SyscallError::Internal(e)) => {
                tracing::error!(vat = %self.vat, "kernel error in syscall {name}: {e}");
                let msg = e.to_string();
                self.internal = Some(e);
                SyscallResult::Error(msg)
            }
        }
    }
}

impl SyscallCtx<'_> {
    fn dispatch(&mut self, call: VatSyscall) -> Result<SyscallResult, SyscallError> {
        let vat = self.vat;
        let k = &mut *self.core;
        match call {
            VatSyscall::Send { target, methargs, result } => {
                if !k.store.run_queue_below(k.opts.max_run_queue_items)? {
                    return illegal(format!("run queue is full ({} items)", k.opts.max_run_queue_items));
                }
                let Some(result) = result else {
                    return illegal("send must carry a result promise");
                };
                let target = k.vref_to_kref(vat, &target)?;
                let methargs = k.capdata_to_kernel(vat, &methargs)?;
                let result_vref = KernelCore::parse_vref(&result)?;
                if result_vref.ref_type() != RefType::Promise {
                    return illegal(format!("result {result} is not a promise"));
                }
                let result = k.vref_to_kref(vat, &result)?;
                let p = k.store.promise_status(result)?.ok_or(KernelError::UnknownKref(result))?;
                if p.state != PromiseState::Unresolved || p.decider != Some(EndpointId::Vat(vat)) {
                    return illegal(format!("result {result} is not an unresolved promise decided by {vat}"));
                }
                // While the message is queued the kernel holds the decision (SwingSet's rule);
                // delivery hands it to the receiver. The sender gave it up by sending: it may
                // not resolve the promise any more, and a restart of the sender (which rejects
                // what it decides, `incarnation.rs`) leaves a message still on its way alone,
                // so its receiver, not a dead incarnation, settles it (found by the torture
                // test: a queued IO `read` answered into a promise already rejected).
                k.store.set_decider(result, None)?;
                k.enqueue_send(target, Message { methargs, result: Some(result), sender: Some(vat) })?;
                Ok(SyscallResult::Ok)
            }
            VatSyscall::Subscribe(vpid) => {
                let kpid = self.promise_ref(&vpid)?;
                let k = &mut *self.core;
                let p = k.store.promise_status(kpid)?.ok_or(KernelError::UnknownKref(kpid))?;
                if p.state == PromiseState::Unresolved {
                    k.store.add_subscriber(kpid, vat)?;
                } else {
                    k.incref(kpid)?;
                    k.store.push_run(&RunQueueItem::Notify { endpoint_id: vat, kpid })?;
                }
                Ok(SyscallResult::Ok)
            }
            VatSyscall::Resolve(resolutions) => {
                // Translate the whole batch first: values may name promises resolved in the
                // same batch, which must still map to them (SwingSet's doResolve).
                let mut batch = Vec::with_capacity(resolutions.len());
                for VatResolution { vpid, rejected, data } in resolutions {
                    let kpid = self.promise_ref(&vpid)?;
                    let k = &mut *self.core;
                    let p = k.store.promise_status(kpid)?.ok_or(KernelError::UnknownKref(kpid))?;
                    if p.state != PromiseState::Unresolved || batch.iter().any(|(b, _, _)| *b == kpid) {
                        return illegal(format!("{vpid} ({kpid}) was already resolved"));
                    }
                    if p.decider != Some(EndpointId::Vat(vat)) {
                        return illegal(format!("{vat} is not permitted to resolve {vpid} ({kpid})"));
                    }
                    let data = k.capdata_to_kernel(vat, &data)?;
                    batch.push((kpid, rejected, data));
                }
                let k = &mut *self.core;
                for (kpid, rejected, data) in &batch {
                    k.resolve_promise(*kpid, *rejected, data.clone())?;
                }
                // Liveslots retires a vpid once it has resolved it; so does the kernel.
                for (kpid, _, _) in &batch {
                    k.forget_clist_entry(vat, *kpid)?;
                }
                Ok(SyscallResult::Ok)
            }
            VatSyscall::Exit { failure, info } => {
                let info = k.capdata_to_kernel(vat, &info)?;
                if self.exit.is_none() {
                    self.exit = Some((failure, info));
                }
                Ok(SyscallResult::Ok)
            }
            VatSyscall::DropImports(vrefs) => {
                for vref in vrefs {
                    let kref = self.import_object(&vref)?;
                    let k = &mut *self.core;
                    let ep = EndpointId::Vat(vat);
                    if !k.store.clist_by_kref(ep, kref)?.is_some_and(|e| e.reachable) {
                        return illegal(format!("dropImports of {vref}, which is already dropped"));
                    }
                    k.drop_import_entry(vat, kref)?;
                }
                Ok(SyscallResult::Ok)
            }
            VatSyscall::RetireImports(vrefs) => {
                for vref in vrefs {
                    let kref = self.import_object(&vref)?;
                    let k = &mut *self.core;
                    if k.store.clist_by_kref(EndpointId::Vat(vat), kref)?.is_some_and(|e| e.reachable) {
                        return illegal(format!("retireImports of {vref}, which is still reachable"));
                    }
                    k.forget_clist_entry(vat, kref)?;
                }
                Ok(SyscallResult::Ok)
            }
            VatSyscall::RetireExports(vrefs) => {
                for vref in vrefs {
                    let kref = self.own_export(&vref)?;
                    let k = &mut *self.core;
                    let ep = EndpointId::Vat(vat);
                    if k.store.clist_by_kref(ep, kref)?.is_some_and(|e| e.reachable) {
                        return illegal(format!("retireExports of {vref}, which the kernel still holds"));
                    }
                    let rec = k.store.object(kref)?.ok_or(KernelError::UnknownKref(kref))?;
                    if rec.reachable > 0 {
                        return illegal(format!("retireExports of {vref} ({kref}), which is still reachable"));
                    }
                    // Orphan it; importers that only recognise it are told to retire it, and
                    // the object row goes when the last of them has.
                    k.store.delete_clist(ep, kref)?;
                    k.store.set_object_owner(kref, None)?;
                    for (importer, _) in k.store.importers(kref)? {
                        k.store.add_gc_action(importer, GcActionKind::RetireImport, kref)?;
                    }
                    k.maybe_free.insert(kref);
                }
                Ok(SyscallResult::Ok)
            }
            VatSyscall::AbandonExports(vrefs) => {
                for vref in vrefs {
                    let kref = self.own_export(&vref)?;
                    let k = &mut *self.core;
                    k.store.delete_clist(EndpointId::Vat(vat), kref)?;
                    k.store.set_object_owner(kref, None)?;
                    k.maybe_free.insert(kref);
                }
                Ok(SyscallResult::Ok)
            }
            VatSyscall::VatstoreGet(key) => {
                self.check_key(&key)?;
                Ok(SyscallResult::Value(self.core.store.vatstore_get(vat, &key)?))
            }
            VatSyscall::VatstoreGetNextKey(key) => {
                if key.len() > self.core.opts.max_vatstore_key_bytes {
                    return illegal("vatstore key too long");
                }
                Ok(SyscallResult::Value(self.core.store.vatstore_next_key(vat, &key)?))
            }
            VatSyscall::VatstoreSet(key, value) => {
                self.check_key(&key)?;
                if value.len() > self.core.opts.max_vatstore_value_bytes {
                    return illegal(format!("vatstore value for {key:?} is {} bytes, over the limit", value.len()));
                }
                self.core.store.vatstore_set(vat, &key, &value)?;
                Ok(SyscallResult::Ok)
            }
            VatSyscall::VatstoreDelete(key) => {
                self.check_key(&key)?;
                self.core.store.vatstore_delete(vat, &key)?;
                Ok(SyscallResult::Ok)
            }
        }
    }

    fn check_key(&self, key: &str) -> Result<(), SyscallError> {
        if key.is_empty() {
            return illegal("vatstore key is empty");
        }
        if key.len() > self.core.opts.max_vatstore_key_bytes {
            return illegal(format!("vatstore key is {} bytes, over the limit", key.len()));
        }
        Ok(())
    }

    fn promise_ref(&mut self, vpid: &str) -> Result<KRef, SyscallError> {
        if KernelCore::parse_vref(vpid)?.ref_type() != RefType::Promise {
            return illegal(format!("{vpid} is not a promise"));
        }
        self.core.vref_to_kref(self.vat, vpid)
    }

    /// An object import the vat holds an entry for.
    fn import_object(&mut self, vref: &str) -> Result<KRef, SyscallError> {
        let e = KernelCore::parse_vref(vref)?;
        if e.ref_type() != RefType::Object || e.is_export() {
            return illegal(format!("{vref} is not an object import"));
        }
        match self.core.store.clist_by_eref(EndpointId::Vat(self.vat), vref)? {
            Some((kref, _)) => Ok(kref),
            None => illegal(format!("unknown import {vref}")),
        }
    }

    /// An object export the vat owns.
    fn own_export(&mut self, vref: &str) -> Result<KRef, SyscallError> {
        let e = KernelCore::parse_vref(vref)?;
        if e.ref_type() != RefType::Object || !e.is_export() {
            return illegal(format!("{vref} is not an object export"));
        }
        let Some((kref, _)) = self.core.store.clist_by_eref(EndpointId::Vat(self.vat), vref)? else {
            return illegal(format!("unknown export {vref}"));
        };
        let owner = self.core.store.object(kref)?.and_then(|o| o.owner);
        if owner != Some(EndpointId::Vat(self.vat)) {
            return illegal(format!("{vref} ({kref}) is not owned by {}", self.vat));
        }
        Ok(kref)
    }
}
