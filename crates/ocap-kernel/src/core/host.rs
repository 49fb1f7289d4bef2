//! Host calls on the core: each is one unit of work between cranks (queue a message, revoke,
//! pin, schedule reaps), committed before it returns. Host calls never step the crank loop:
//! they queue work and the loop does it in priority order.

use super::{HostWaiter, KernelCore, KernelError};
use crate::refs::{KRef, VatId};
use crate::smallcaps::{self, Value};
use crate::store::{Message, PromiseRecord};

impl KernelCore {
    /// Queues `target.method(...args)` from the host and returns the result promise. The
    /// waiter, if any, is called after the commit that settles it.
    pub fn queue_message(
        &mut self,
        target: KRef,
        method: &str,
        args: Vec<Value>,
        waiter: Option<HostWaiter>,
    ) -> Result<KRef, KernelError> {
        // Encoded before anything is queued: a value no vat could receive is refused here.
        let call = Value::Array(vec![Value::str(method), Value::Array(args)]);
        let methargs = smallcaps::encode(&call);
        smallcaps::drop_deep(call);
        let methargs = methargs?;
        let kpid = self.unit(|k| {
            k.require_exists(target)?;
            for slot in &methargs.slots {
                k.require_exists(*slot)?;
            }
            // Watched by the host, which is its one reference.
            let kpid = k.store.create_promise(None, 1, true)?;
            k.enqueue_send(target, Message { methargs: methargs.clone(), result: Some(kpid), sender: None })?;
            Ok(kpid)
        })?;
        if let Some(w) = waiter {
            self.host_waiters.insert(kpid, w);
        }
        Ok(kpid)
    }

    pub(crate) fn require_exists(&self, kref: KRef) -> Result<(), KernelError> {
        let exists = match kref {
            KRef::Object(_) => self.store.object(kref)?.is_some(),
            KRef::Promise(_) => self.store.promise(kref)?.is_some(),
        };
        if exists {
            Ok(())
        } else {
            Err(KernelError::UnknownKref(kref))
        }
    }

    /// Revokes an object, permanently: later sends to it are rejected with
    /// `[KERNEL:OBJECT_REVOKED]`.
    pub fn revoke(&mut self, kref: KRef) -> Result<(), KernelError> {
        if kref.is_promise() {
            return Err(KernelError::NotAnObject(kref, "revoke"));
        }
        self.unit(|k| {
            k.require_exists(kref)?;
            k.store.set_object_revoked(kref)?;
            Ok(())
        })?;
        self.commit()
    }

    pub fn is_revoked(&self, kref: KRef) -> Result<bool, KernelError> {
        if kref.is_promise() {
            return Err(KernelError::NotAnObject(kref, "isRevoked"));
        }
        Ok(self.store.object(kref)?.ok_or(KernelError::UnknownKref(kref))?.revoked)
    }

    /// Holds an object reachable on the host's behalf (counted per call).
    pub fn pin(&mut self, kref: KRef) -> Result<(), KernelError> {
        if kref.is_promise() {
            return Err(KernelError::NotAnObject(kref, "pin"));
        }
        self.unit(|k| {
            k.require_exists(kref)?;
            k.store.adjust_pins(kref, 1)?;
            k.incref(kref)
        })?;
        self.commit()
    }

    /// Releases one pin; an object with no pins and no other references is collected.
    pub fn unpin(&mut self, kref: KRef) -> Result<(), KernelError> {
        if kref.is_promise() {
            return Err(KernelError::NotAnObject(kref, "unpin"));
        }
        self.unit(|k| {
            let rec = k.store.object(kref)?.ok_or(KernelError::UnknownKref(kref))?;
            // Pins held by unrevoked OCAP URLs are released only by revoking them.
            if rec.pins <= k.store.live_url_count(kref)? {
                return Err(KernelError::NotPinned(kref));
            }
            k.store.adjust_pins(kref, -1)?;
            k.decref(kref)
        })?;
        self.commit()
    }

    /// Schedules bring-out-your-dead for the given vats (all active vats if `None`).
    ///
    /// Errors: a named vat that does not exist (`NoSuchVat`) or is not running
    /// (`VatNotRunning`); nothing is scheduled then.
    pub fn reap_vats(&mut self, which: Option<&[VatId]>) -> Result<(), KernelError> {
        let targets: Vec<VatId> = match which {
            Some(v) => {
                for &vat in v {
                    self.require_active_vat(vat)?;
                }
                v.to_vec()
            }
            None => self.active_vats()?.into_iter().map(|r| r.id).collect(),
        };
        self.unit(|k| {
            for v in targets {
                if k.store.endpoint_is_active(v.into())? {
                    k.store.schedule_reap(v)?;
                }
            }
            Ok(())
        })?;
        self.commit()
    }

    /// Whether cleanup or GC work is waiting (terminated endpoints not yet cleaned, pending
    /// GC actions): what `collectGarbage` waits for the loop to finish.
    pub fn has_gc_work(&self) -> Result<bool, KernelError> {
        Ok(self.store.next_terminated_endpoint()?.is_some() || self.store.gc_action_count()? > 0)
    }

    /// The state of a promise, if it still exists.
    pub fn promise(&self, kpid: KRef) -> Result<Option<PromiseRecord>, KernelError> {
        Ok(self.store.promise(kpid)?)
    }

    /// Checks every store invariant (see `crate::store::invariants`).
    pub fn check_invariants(&self) -> Result<(), Vec<String>> {
        crate::store::invariants::check(&self.store)
    }

    /// Shuts down every worker and connection. The store is left committed.
    pub fn shutdown(&mut self) -> Result<(), KernelError> {
        self.commit()?;
        self.close_all_io();
        // Frames not yet acked stay in the pending logs and go out again after a restart.
        if let Some(t) = self.detach_transport() {
            t.stop();
        }
        for (_, mut ep) in self.endpoints.drain() {
            ep.shutdown();
        }
        Ok(())
    }
}
