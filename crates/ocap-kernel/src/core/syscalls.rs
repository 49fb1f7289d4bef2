//! Syscall validation and effects (spec kernel-core.md §5.3, with §14's fixes), for any
//! endpoint: vats make them during and between deliveries; a remote's inbound messages arrive
//! as the same syscalls. The vatstore calls, `exit` and `abandonExports` are vat-only.
//!
//! A `SyscallCtx` lives for one delivery (or one batch of syscalls an endpoint made outside a
//! delivery). The first illegal syscall marks the whole batch illegal and the mark is
//! sticky: later syscalls are refused and nothing clears it (bug §13.8 not copied).

use super::{KernelCore, KernelError};
use crate::capdata::CapData;
use crate::refs::{EndpointId, KRef, RefType, VatId};
use crate::store::promises::PromiseState;
use crate::store::{GcActionKind, Message, StoreError};
use crate::vat::{SyscallHandler, SyscallResult, VatResolution, VatSyscall};

/// Why a syscall failed: the endpoint's fault (illegal, it will be terminated) or the kernel's.
#[derive(Debug)]
pub(crate) enum SyscallError {
    Illegal(String),
    Internal(KernelError),
}

impl From<KernelError> for SyscallError {
    fn from(e: KernelError) -> Self {
        SyscallError::Internal(e)
    }
}

impl From<StoreError> for SyscallError {
    fn from(e: StoreError) -> Self {
        SyscallError::Internal(e.into())
    }
}

pub(crate) fn illegal<T>(msg: impl Into<String>) -> Result<T, SyscallError> {
    Err(SyscallError::Illegal(msg.into()))
}

/// What a batch of syscalls left behind, for `delivery.rs` to turn into the crank's outcome.
pub(crate) struct SyscallReport {
    /// The first illegal syscall, if any.
    pub(crate) illegal: Option<String>,
    /// A kernel error met while handling one.
    pub(crate) internal: Option<KernelError>,
    /// `exit(failure, info)` requested by a vat.
    pub(crate) exit: Option<(bool, CapData<KRef>)>,
}

pub(crate) struct SyscallCtx<'a> {
    core: &'a mut KernelCore,
    endpoint: EndpointId,
    illegal: Option<String>,
    internal: Option<KernelError>,
    exit: Option<(bool, CapData<KRef>)>,
    count: usize,
}

impl<'a> SyscallCtx<'a> {
    pub(crate) fn new(core: &'a mut KernelCore, endpoint: EndpointId) -> Self {
        SyscallCtx { core, endpoint, illegal: None, internal: None, exit: None, count: 0 }
    }

    pub(crate) fn finish(self) -> SyscallReport {
        SyscallReport { illegal: self.illegal, internal: self.internal, exit: self.exit }
    }

    /// The vat making the syscall, for the vat-only ones.
    fn vat_only(&self, what: &str) -> Result<VatId, SyscallError> {
        match self.endpoint {
            EndpointId::Vat(v) => Ok(v),
            other => illegal(format!("{what} is for vats only, and {other} is not one")),
        }
    }
}

impl SyscallHandler for SyscallCtx<'_> {
    fn syscall(&mut self, call: VatSyscall) -> SyscallResult {
        if let Some(why) = &self.illegal {
            return SyscallResult::Error(format!("{} already made an illegal syscall: {why}", describe(self.endpoint)));
        }
        if self.internal.is_some() {
            return SyscallResult::Error("kernel error".into());
        }
        self.count += 1;
        let name = call.name();
        // Only when someone watches the cranks (`trace.rs`).
        let summary = self.core.trace.is_some().then(|| super::trace::summarize(&call));
        let outcome = if self.count > self.core.opts.max_syscalls_per_delivery {
            illegal(format!("more than {} syscalls in one delivery", self.core.opts.max_syscalls_per_delivery))
        } else {
            self.dispatch(call)
        };
        if let (Some(summary), Some(t)) = (summary, &mut self.core.trace) {
            let error = match &outcome {
                Ok(_) => None,
                Err(SyscallError::Illegal(why)) => Some(why.clone()),
                Err(SyscallError::Internal(e)) => Some(e.to_string()),
            };
            t.syscall(name, summary, error);
        }
        match outcome {
            Ok(r) => r,
            Err(SyscallError::Illegal(why)) => {
                let why = format!("{name}: {why}");
                tracing::warn!(endpoint = %self.endpoint, "illegal syscall: {why}");
                self.illegal = Some(why.clone());
                SyscallResult::Error(why)
            }
            Err(SyscallError::Internal(e)) => {
                tracing::error!(endpoint = %self.endpoint, "kernel error in syscall {name}: {e}");
                let msg = e.to_string();
                self.internal = Some(e);
                SyscallResult::Error(msg)
            }
        }
    }
}

impl SyscallCtx<'_> {
    fn dispatch(&mut self, call: VatSyscall) -> Result<SyscallResult, SyscallError> {
        let ep = self.endpoint;
        let k = &mut *self.core;
        match call {
            VatSyscall::Send { target, methargs, result } => {
                if !k.store.run_queue_below(k.opts.max_run_queue_items)? {
                    return illegal(format!("run queue is full ({} items)", k.opts.max_run_queue_items));
                }
                let Some(result) = result else {
                    return illegal("send must carry a result promise");
                };
                let target = k.eref_to_kref(ep, &target)?;
                let methargs = k.capdata_to_kernel(ep, &methargs)?;
                if KernelCore::parse_eref(ep, &result)?.ref_type() != RefType::Promise {
                    return illegal(format!("result {result} is not a promise"));
                }
                // While the message is queued the kernel holds the decision (SwingSet's rule);
                // delivery hands it to the receiver. The sender gave it up by sending: it may
                // not resolve the promise any more, and a restart of the sender (which rejects
                // what it decides, `incarnation.rs`) leaves a message still on its way alone,
                // so its receiver, not a dead incarnation, settles it (found by the torture
                // test: a queued IO `read` answered into a promise already rejected). A result
                // promise new to the kernel (the usual case) is made with no decider at once.
                let (result, new) = k.eref_to_kref_or_new(ep, &result, None)?;
                if !new {
                    let p = k.store.promise_status(result)?.ok_or(KernelError::UnknownKref(result))?;
                    if p.state != PromiseState::Unresolved || p.decider != Some(ep) {
                        return illegal(format!("result {result} is not an unresolved promise decided by {ep}"));
                    }
                    k.store.set_decider(result, None)?;
                }
                k.send_from_endpoint(target, Message { methargs, result: Some(result), sender: Some(ep) })?;
                Ok(SyscallResult::Ok)
            }
            VatSyscall::Subscribe(vpid) => {
                let kpid = self.promise_ref(&vpid)?;
                self.core.subscribe_endpoint(ep, kpid)?;
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
                    if p.decider != Some(ep) {
                        return illegal(format!("{ep} is not permitted to resolve {vpid} ({kpid})"));
                    }
                    let data = k.capdata_to_kernel(ep, &data)?;
                    batch.push((kpid, rejected, data));
                }
                let k = &mut *self.core;
                // A vat's answers to peers leave with this crank when nothing waits
                // (`router.rs`, `notify_peers_now`).
                let notify_now = ep.vat().is_some() && k.nothing_waits()?;
                for (kpid, rejected, data) in &batch {
                    k.resolve_promise(*kpid, *rejected, data.clone())?;
                }
                // Liveslots retires a vpid once it has resolved it; so does the kernel.
                for (kpid, _, _) in &batch {
                    k.forget_clist_entry(ep, *kpid)?;
                }
                if notify_now {
                    k.notify_peers_now()?;
                }
                Ok(SyscallResult::Ok)
            }
            VatSyscall::Exit { failure, info } => {
                self.vat_only("exit")?;
                let k = &mut *self.core;
                let info = k.capdata_to_kernel(ep, &info)?;
                if self.exit.is_none() {
                    self.exit = Some((failure, info));
                }
                Ok(SyscallResult::Ok)
            }
            VatSyscall::DropImports(vrefs) => {
                for vref in vrefs {
                    let kref = self.import_object(&vref)?;
                    let k = &mut *self.core;
                    if !k.store.clist_by_kref(ep, kref)?.is_some_and(|e| e.reachable) {
                        return illegal(format!("dropImports of {vref}, which is already dropped"));
                    }
                    k.drop_import_entry(ep, kref)?;
                }
                Ok(SyscallResult::Ok)
            }
            VatSyscall::RetireImports(vrefs) => {
                for vref in vrefs {
                    let kref = self.import_object(&vref)?;
                    let k = &mut *self.core;
                    if k.store.clist_by_kref(ep, kref)?.is_some_and(|e| e.reachable) {
                        return illegal(format!("retireImports of {vref}, which is still reachable"));
                    }
                    k.forget_clist_entry(ep, kref)?;
                }
                Ok(SyscallResult::Ok)
            }
            VatSyscall::RetireExports(vrefs) => {
                for vref in vrefs {
                    let kref = self.own_export(&vref)?;
                    let k = &mut *self.core;
                    if k.store.clist_by_kref(ep, kref)?.is_some_and(|e| e.reachable) {
                        return illegal(format!("retireExports of {vref}, which the kernel still holds"));
                    }
                    let rec = k.store.object(kref)?.ok_or(KernelError::UnknownKref(kref))?;
                    if rec.reachable > 0 {
                        return illegal(format!("retireExports of {vref} ({kref}), which is still reachable"));
                    }
                    // Orphan it; importers that only recognise it are told to retire it, and
                    // the object row goes when the last of them has.
                    k.abandon_export(ep, kref)?;
                    for (importer, _) in k.store.importers(kref)? {
                        k.store.add_gc_action(importer, GcActionKind::RetireImport, kref)?;
                    }
                }
                Ok(SyscallResult::Ok)
            }
            VatSyscall::AbandonExports(vrefs) => {
                self.vat_only("abandonExports")?;
                for vref in vrefs {
                    let kref = self.own_export(&vref)?;
                    self.core.abandon_export(ep, kref)?;
                }
                Ok(SyscallResult::Ok)
            }
            VatSyscall::VatstoreGet(key) => {
                let vat = self.vat_only("vatstoreGet")?;
                self.check_key(&key)?;
                Ok(SyscallResult::Value(self.core.store.vatstore_get(vat, &key)?))
            }
            VatSyscall::VatstoreGetNextKey(key) => {
                let vat = self.vat_only("vatstoreGetNextKey")?;
                if key.len() > self.core.opts.max_vatstore_key_bytes {
                    return illegal("vatstore key too long");
                }
                Ok(SyscallResult::Value(self.core.store.vatstore_next_key(vat, &key)?))
            }
            VatSyscall::VatstoreSet(key, value) => {
                let vat = self.vat_only("vatstoreSet")?;
                self.check_key(&key)?;
                if value.len() > self.core.opts.max_vatstore_value_bytes {
                    return illegal(format!("vatstore value for {key:?} is {} bytes, over the limit", value.len()));
                }
                self.core.store.vatstore_set(vat, &key, &value)?;
                Ok(SyscallResult::Ok)
            }
            VatSyscall::VatstoreDelete(key) => {
                let vat = self.vat_only("vatstoreDelete")?;
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
        if KernelCore::parse_eref(self.endpoint, vpid)?.ref_type() != RefType::Promise {
            return illegal(format!("{vpid} is not a promise"));
        }
        self.core.eref_to_kref(self.endpoint, vpid)
    }

    /// An object import the vat holds an entry for.
    fn import_object(&mut self, vref: &str) -> Result<KRef, SyscallError> {
        let e = KernelCore::parse_eref(self.endpoint, vref)?;
        if e.ref_type() != RefType::Object || e.is_export() {
            return illegal(format!("{vref} is not an object import"));
        }
        match self.core.store.clist_by_eref(self.endpoint, vref)? {
            Some((kref, _)) => Ok(kref),
            None => illegal(format!("unknown import {vref}")),
        }
    }

    /// An object export the vat owns.
    fn own_export(&mut self, vref: &str) -> Result<KRef, SyscallError> {
        let e = KernelCore::parse_eref(self.endpoint, vref)?;
        if e.ref_type() != RefType::Object || !e.is_export() {
            return illegal(format!("{vref} is not an object export"));
        }
        let Some((kref, _)) = self.core.store.clist_by_eref(self.endpoint, vref)? else {
            return illegal(format!("unknown export {vref}"));
        };
        let owner = self.core.store.object(kref)?.and_then(|o| o.owner);
        if owner != Some(self.endpoint) {
            return illegal(format!("{vref} ({kref}) is not owned by {}", self.endpoint));
        }
        Ok(kref)
    }
}

/// "vat v1" or "remote r1", for messages a person reads.
pub(crate) fn describe(ep: EndpointId) -> String {
    match ep {
        EndpointId::Vat(v) => format!("vat {v}"),
        EndpointId::Remote(r) => format!("remote {r}"),
        EndpointId::Kernel => "the kernel".into(),
    }
}
