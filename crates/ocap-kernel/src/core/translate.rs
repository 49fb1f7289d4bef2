//! Translation between kernel space (krefs) and endpoint space (erefs: a vat's vrefs, a
//! remote's rrefs) through the endpoint's c-list. Written once for every endpoint kind: the
//! kind only decides the eref grammar and the import prefix (`EndpointId::parse_eref`,
//! `EndpointId::import_eref`).
//!
//! Endpoint→kernel: a known eref maps through the c-list; an unknown export (`+`) creates a
//! kernel object owned by the endpoint, or a promise it decides; an unknown import is
//! illegal, and so is using an import the endpoint has dropped. Kernel→endpoint: a kref the
//! endpoint does not know gets a fresh import eref (`o-N`, `p-N`; `ro-N`, `rp-N`), counted;
//! a dropped one has its reachable flag set again.

use super::syscalls::{describe, illegal, SyscallError};
use super::{KernelCore, KernelError};
use crate::capdata::CapData;
use crate::refs::{ERef, EndpointId, KRef, RefType};

impl KernelCore {
    /// Parses an eref from an endpoint, as an illegal-syscall error if malformed.
    pub(crate) fn parse_eref(ep: EndpointId, eref: &str) -> Result<ERef, SyscallError> {
        ep.parse_eref(eref).map_err(|e| SyscallError::Illegal(e.to_string()))
    }

    /// Maps an eref an endpoint used in a syscall to its kref, creating exports as needed.
    pub(crate) fn eref_to_kref(&mut self, ep: EndpointId, eref: &str) -> Result<KRef, SyscallError> {
        self.eref_to_kref_or_new(ep, eref, Some(ep)).map(|(kref, _)| kref)
    }

    /// As `eref_to_kref`, and whether the kref was made now (an export the kernel had not
    /// seen); a promise made now is decided by `new_decider` (the exporting endpoint, or
    /// nobody for a `send`'s result, whose decision the kernel holds while the message is
    /// on its way: `syscalls.rs`). The `send` syscall learns so that it need not read back
    /// and rewrite the promise it has just made.
    pub(crate) fn eref_to_kref_or_new(
        &mut self,
        ep: EndpointId,
        eref: &str,
        new_decider: Option<EndpointId>,
    ) -> Result<(KRef, bool), SyscallError> {
        let parsed = Self::parse_eref(ep, eref)?;
        if let Some((kref, reachable)) = self.store.clist_by_eref(ep, eref)? {
            if !reachable && parsed.ref_type() == RefType::Object {
                if parsed.is_export() {
                    // The endpoint re-exports something the kernel had dropped: reachable again.
                    self.store.set_clist_reachable(ep, kref, true)?;
                } else {
                    return illegal(format!("{} used {eref}, an import it has dropped", describe(ep)));
                }
            }
            return Ok((kref, false));
        }
        if !parsed.is_export() {
            return illegal(format!("{} used unknown import {eref}", describe(ep)));
        }
        let kref = match parsed.ref_type() {
            RefType::Object => self.store.create_object(ep)?,
            RefType::Promise => {
                // Counted once, for the c-list entry added below.
                self.store.create_promise(new_decider, 1, false)?
            }
        };
        self.store.add_clist(ep, kref, eref, true)?;
        Ok((kref, true))
    }

    pub(crate) fn capdata_to_kernel(
        &mut self,
        ep: EndpointId,
        data: &CapData<String>,
    ) -> Result<CapData<KRef>, SyscallError> {
        if !data.body.starts_with('#') {
            return illegal(format!("{} sent a body that is not smallcaps", describe(ep)));
        }
        data.try_map_slots(|s| self.eref_to_kref(ep, s))
    }

    /// Maps a kref into an endpoint's space, importing it if needed, and marks it reachable.
    pub(crate) fn kref_to_eref(&mut self, ep: EndpointId, kref: KRef) -> Result<String, KernelError> {
        if let Some(entry) = self.store.clist_by_kref(ep, kref)? {
            if !entry.reachable && !kref.is_promise() {
                self.store.set_clist_reachable(ep, kref, true)?;
                if !crate::store::eref_is_export(&entry.eref) {
                    self.store.adjust_object(kref, 1, 0)?;
                }
            }
            return Ok(entry.eref);
        }
        let eref = ep.import_eref(self.store.next_import_index(ep, kref.is_promise())?, kref.is_promise());
        self.store.add_clist(ep, kref, &eref, true)?;
        self.incref(kref)?;
        if let EndpointId::Remote(r) = ep {
            if kref.is_promise() && self.is_peer(r) {
                // A peer never subscribes (there is no such message): a promise it is given
                // subscribes it, so its resolution follows (remote-comms.md §8.2; the JS kernel
                // never notifies such promises).
                self.subscribe_endpoint(ep, kref)?;
            }
        }
        Ok(eref)
    }

    /// Subscribes `ep` to a promise: it is notified when the promise settles, or now if it has.
    pub(crate) fn subscribe_endpoint(&mut self, ep: EndpointId, kpid: KRef) -> Result<(), KernelError> {
        let p = self.store.promise_status(kpid)?.ok_or(KernelError::UnknownKref(kpid))?;
        if p.state == crate::store::promises::PromiseState::Unresolved {
            self.store.add_subscriber(kpid, ep)?;
        } else {
            self.incref(kpid)?;
            self.store.push_run(&crate::store::RunQueueItem::Notify { endpoint_id: ep, kpid })?;
        }
        Ok(())
    }

    /// Maps a message's result promise into the receiving endpoint. When it does not know it
    /// yet (the usual case), the new c-list entry takes over the reference the queue item
    /// held, instead of counting one more and then releasing the item's: returns true, and
    /// the caller must not release the item's reference. Promise entries have no reachable
    /// flag, so an existing entry is used as it is.
    pub(crate) fn import_result(&mut self, ep: EndpointId, kpid: KRef) -> Result<(String, bool), KernelError> {
        if !kpid.is_promise() {
            // Results are promises (syscalls and host calls make sure); anything else is
            // translated the ordinary way.
            return Ok((self.kref_to_eref(ep, kpid)?, false));
        }
        if let Some(entry) = self.store.clist_by_kref(ep, kpid)? {
            return Ok((entry.eref, false));
        }
        let eref = ep.import_eref(self.store.next_import_index(ep, true)?, true);
        self.store.add_clist(ep, kpid, &eref, true)?;
        Ok((eref, true))
    }

    pub(crate) fn capdata_to_endpoint(
        &mut self,
        ep: EndpointId,
        data: &CapData<KRef>,
    ) -> Result<CapData<String>, KernelError> {
        data.try_map_slots(|k| self.kref_to_eref(ep, *k))
    }

    /// Deletes an endpoint's c-list entry for `kref`, releasing what it counted.
    pub(crate) fn forget_clist_entry(&mut self, ep: EndpointId, kref: KRef) -> Result<(), KernelError> {
        let Some(entry) = self.store.take_clist(ep, kref)? else {
            return Ok(());
        };
        match kref {
            KRef::Promise(_) => self.decref(kref)?,
            KRef::Object(_) => {
                if !crate::store::eref_is_export(&entry.eref) {
                    let d_reach = if entry.reachable { -1 } else { 0 };
                    if let Some((reachable, recognizable)) = self.store.adjust_object(kref, d_reach, -1)? {
                        if reachable == 0 || recognizable == 0 {
                            self.maybe_free.insert(kref);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The endpoint stops holding its import `kref` reachably (it stays recognizable): the
    /// c-list flag is cleared and the object's reachable count released.
    pub(crate) fn drop_import_entry(&mut self, ep: EndpointId, kref: KRef) -> Result<(), KernelError> {
        self.store.set_clist_reachable(ep, kref, false)?;
        if let Some((0, _)) = self.store.adjust_object(kref, -1, 0)? {
            self.maybe_free.insert(kref);
        }
        Ok(())
    }

    /// Orphans an export of `ep`: its c-list entry goes and the object loses its owner, so a
    /// send to it is rejected with `OBJECT_DELETED` and GC deletes it once importers let go
    /// (a terminated endpoint's exports, a restarted vat's non-durable ones, an abandoned or
    /// retired export).
    pub(crate) fn abandon_export(&mut self, ep: EndpointId, kref: KRef) -> Result<(), KernelError> {
        self.store.delete_clist(ep, kref)?;
        if self.store.object(kref)?.is_some_and(|o| o.owner == Some(ep)) {
            self.store.set_object_owner(kref, None)?;
        }
        self.maybe_free.insert(kref);
        Ok(())
    }
}
