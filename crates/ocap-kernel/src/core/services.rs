//! Kernel services: host objects addressable by kref (owner `kernel`).
//!
//! A message to a service is decoded inside the crank, but the service is invoked only after
//! that crank commits, and it answers through a `ServiceReply` whose resolution comes back to
//! the run loop as its own unit of work. So a service never runs inside a crank, may take as
//! long as it likes, and may call back into the kernel without deadlocking.

use std::sync::mpsc;
use std::sync::Arc;

use super::{HostResult, KernelCore, KernelError};
use crate::capdata::CapData;
use crate::refs::{EndpointId, KRef};
use crate::smallcaps::{self, kernel_error, Value};
use crate::store::promises::PromiseState;

/// A host object that vats can send messages to.
pub trait KernelService: Send + Sync {
    /// Handles `method(...args)`. Must not block for long: do slow work elsewhere and answer
    /// through `reply` later. Dropping `reply` unanswered rejects the result.
    fn invoke(&self, method: &str, args: Vec<Value>, reply: ServiceReply);
}

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

/// Wakes a sleeping run loop when a reply arrives from another thread.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// The answer channel for one service invocation.
pub struct ServiceReply {
    kpid: Option<KRef>,
    tx: mpsc::Sender<(KRef, HostResult)>,
    waker: Option<Waker>,
    answered: bool,
}

impl ServiceReply {
    pub fn resolve(mut self, value: Value) {
        self.send(Ok(smallcaps::kser(&value)));
    }

    pub fn reject(mut self, reason: Value) {
        self.send(Err(smallcaps::kser(&reason)));
    }

    /// Whether anyone is waiting for the answer (the message had a result promise).
    pub fn wants_answer(&self) -> bool {
        self.kpid.is_some()
    }

    fn send(&mut self, result: HostResult) {
        self.answered = true;
        if let Some(kpid) = self.kpid {
            // The receiver is gone only when the kernel has stopped; nothing to do then.
            let _ = self.tx.send((kpid, result));
            if let Some(w) = &self.waker {
                w();
            }
        }
    }
}

impl Drop for ServiceReply {
    fn drop(&mut self) {
        if !self.answered {
            self.send(Err(kernel_error("DELIVERY_FAILED", "kernel service dropped the call without answering")));
        }
    }
}

impl KernelCore {
    /// Registers a service under a name. The kref is persisted, so the same name gets the
    /// same kref after a restart.
    pub fn register_service(&mut self, name: &str, service: Arc<dyn KernelService>) -> Result<KRef, KernelError> {
        let kref = self.pinned_kernel_object(&format!("service.{name}"))?;
        if self.services.contains_key(&kref) {
            return Err(KernelError::DuplicateService(name.to_owned()));
        }
        self.services.insert(kref, service);
        Ok(kref)
    }

    /// The kernel-owned object recorded under `key` in `kv`, made (owned by the kernel,
    /// pinned, recorded) in a committed unit if there is none: how services and IO channels
    /// keep one kref across restarts.
    pub(crate) fn pinned_kernel_object(&mut self, key: &str) -> Result<KRef, KernelError> {
        if let Some(kref) = self.store.get_kv(key)?.and_then(|s| s.parse::<KRef>().ok()) {
            return Ok(kref);
        }
        let kref = self.unit(|k| {
            let kref = k.store.create_object(EndpointId::Kernel)?;
            k.store.adjust_pins(kref, 1)?;
            k.incref(kref)?;
            k.store.set_kv(key, &kref.to_string())?;
            Ok(kref)
        })?;
        self.commit()?;
        Ok(kref)
    }

    /// Every service ever registered on this store, by name.
    pub fn services_info(&self) -> Result<Vec<ServiceInfo>, KernelError> {
        let mut out = Vec::new();
        for (key, kref) in self.store.kv_with_prefix("service.")? {
            let Ok(kref) = kref.parse::<KRef>() else { continue };
            out.push(ServiceInfo {
                name: key.trim_start_matches("service.").to_owned(),
                kref,
                system_only: self.system_only.contains(&kref),
                registered: self.services.contains_key(&kref),
            });
        }
        Ok(out)
    }

    /// Offers a service that is registered (and gets its kref) only when a subcluster first
    /// asks for it, or at once if an earlier process registered it: built-in services every
    /// kernel has (the OCAP URL services) do not shift the krefs of kernels that never use them.
    ///
    /// A name a host service already took in this process keeps the host's service (offers
    /// are made after the host's registrations).
    pub fn offer_service(&mut self, name: &str, service: Arc<dyn KernelService>) -> Result<(), KernelError> {
        let existing = self.service_kref(name)?;
        if existing.is_some_and(|k| self.services.contains_key(&k)) {
            return Ok(());
        }
        if existing.is_some() {
            self.register_service(name, service)?;
        } else {
            self.offered.insert(name.to_owned(), service);
        }
        Ok(())
    }

    /// Registers a service that only system subclusters may be given (the kernel facet).
    pub fn register_system_service(
        &mut self,
        name: &str,
        service: Arc<dyn KernelService>,
    ) -> Result<KRef, KernelError> {
        let kref = self.register_service(name, service)?;
        self.system_only.insert(kref);
        Ok(kref)
    }

    /// The kref of a service a subcluster asks for. A system-only service is refused to a
    /// non-system subcluster with the same error as a missing one, so its existence is not
    /// revealed.
    pub(crate) fn service_for_launch(&mut self, name: &str, is_system: bool) -> Result<KRef, KernelError> {
        if let Some(service) = self.offered.remove(name) {
            self.register_service(name, service)?;
        }
        match self.service_kref(name)? {
            Some(k) if self.services.contains_key(&k) && (is_system || !self.system_only.contains(&k)) => Ok(k),
            _ => Err(KernelError::NoSuchService(name.to_owned())),
        }
    }

    /// The kref of a registered (or previously registered) service.
    pub fn service_kref(&self, name: &str) -> Result<Option<KRef>, KernelError> {
        Ok(self.store.get_kv(&format!("service.{name}"))?.and_then(|s| s.parse().ok()))
    }

    /// Whether a vat belongs to a system subcluster.
    pub(crate) fn is_system_vat(&self, vat: crate::refs::VatId) -> Result<bool, KernelError> {
        let Some(sid) = self.store.vat(vat)?.and_then(|r| r.subcluster) else { return Ok(false) };
        Ok(self.store.subcluster(&sid)?.is_some_and(|s| s.system_name.is_some()))
    }

    /// Sets the function that wakes the run loop when a service answers from elsewhere.
    pub fn set_waker(&mut self, waker: Waker) {
        self.waker = Some(waker);
    }

    pub(crate) fn invoke_service(&mut self, service: KRef, method: String, args: CapData<KRef>, result: Option<KRef>) {
        let reply =
            ServiceReply { kpid: result, tx: self.service_tx.clone(), waker: self.waker.clone(), answered: false };
        let Some(svc) = self.services.get(&service).cloned() else {
            reply.reject(Value::error(format!("[KERNEL:DELIVERY_FAILED] no registered kernel service for {service}")));
            return;
        };
        let args = match smallcaps::kunser(&args) {
            Ok(Value::Array(a)) => a,
            _ => Vec::new(),
        };
        let call = std::panic::AssertUnwindSafe(|| svc.invoke(&method, args, reply));
        if std::panic::catch_unwind(call).is_err() {
            tracing::error!("kernel service {service} panicked in {method}");
        }
    }

    pub(crate) fn poll_service_replies(&mut self) {
        while let Ok(r) = self.service_rx.try_recv() {
            self.pending_replies.push_back(r);
        }
    }

    /// Resolves a service's result promise, if it is still the kernel's to decide.
    pub(crate) fn resolve_from_service(&mut self, kpid: KRef, result: HostResult) -> Result<(), KernelError> {
        let Some(p) = self.store.promise(kpid)? else {
            return Ok(());
        };
        if p.state != PromiseState::Unresolved || p.decider != Some(EndpointId::Kernel) {
            tracing::debug!("ignoring service answer for {kpid}: no longer the kernel's to decide");
            return Ok(());
        }
        let (rejected, mut value) = match result {
            Ok(v) => (false, v),
            Err(v) => (true, v),
        };
        for s in &value.slots {
            if self.require_exists(*s).is_err() {
                value = kernel_error("DELIVERY_FAILED", &format!("service answered with unknown reference {s}"));
                return self.resolve_promise(kpid, true, value);
            }
        }
        self.resolve_promise(kpid, rejected, value)
    }
}
