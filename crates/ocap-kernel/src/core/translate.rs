//! Translation between kernel space (krefs) and vat space (vrefs) through the c-lists.
//!
//! Vat→kernel: a known vref maps through the c-list; an unknown export (`o+`, `p+`) creates a
//! kernel object owned by the vat, or a promise it decides; an unknown import is illegal, and
//! so is using an import the vat has dropped. Kernel→vat: a kref the vat does not know gets a
//! fresh import vref (`o-N`, `p-N`), counted; a dropped one has its reachable flag set again.

use super::{KernelCore, KernelError};
use crate::capdata::CapData;
use crate::refs::{ERef, EndpointId, KRef, RefType, VatId};
use crate::store::StoreError;

/// Why a syscall failed: the vat's fault (illegal, it will be terminated) or the kernel's.
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

impl KernelCore {
    /// Parses a vref from a vat, as an illegal-syscall error if malformed.
    pub(crate) fn parse_vref(vref: &str) -> Result<ERef, SyscallError> {
        ERef::parse_vref(vref).map_err(|e| SyscallError::Illegal(e.to_string()))
    }

    /// Maps a vref a vat used in a syscall to its kref, creating exports as needed.
    pub(crate) fn vref_to_kref(&mut self, vat: VatId, vref: &str) -> Result<KRef, SyscallError> {
        let eref = Self::parse_vref(vref)?;
        let ep = EndpointId::Vat(vat);
        if let Some((kref, reachable)) = self.store.clist_by_eref(ep, vref)? {
            if !reachable && eref.ref_type() == RefType::Object {
                if eref.is_export() {
                    // The vat re-exports something the kernel had dropped: reachable again.
                    self.store.set_clist_reachable(ep, kref, true)?;
                } else {
                    return illegal(format!("vat {vat} used {vref}, an import it has dropped"));
                }
            }
            return Ok(kref);
        }
        if !eref.is_export() {
            return illegal(format!("vat {vat} used unknown import {vref}"));
        }
        let kref = match eref.ref_type() {
            RefType::Object => self.store.create_object(ep)?,
            RefType::Promise => {
                // Counted once, for the c-list entry added below.
                self.store.create_promise(Some(ep), 1, false)?
            }
        };
        self.store.add_clist(ep, kref, vref, true)?;
        Ok(kref)
    }

    pub(crate) fn capdata_to_kernel(
        &mut self,
        vat: VatId,
        data: &CapData<String>,
    ) -> Result<CapData<KRef>, SyscallError> {
        if !data.body.starts_with('#') {
            return illegal(format!("vat {vat} sent a body that is not smallcaps"));
        }
        data.try_map_slots(|s| self.vref_to_kref(vat, s))
    }

    /// Maps a kref into a vat's space, importing it if needed, and marks it reachable.
    pub(crate) fn kref_to_vref(&mut self, vat: VatId, kref: KRef) -> Result<String, KernelError> {
        let ep = EndpointId::Vat(vat);
        if let Some(entry) = self.store.clist_by_kref(ep, kref)? {
            if !entry.reachable && !kref.is_promise() {
                self.store.set_clist_reachable(ep, kref, true)?;
                if !crate::store::eref_is_export(&entry.eref) {
                    self.store.adjust_object(kref, 1, 0)?;
                }
            }
            return Ok(entry.eref);
        }
        let n = self.store.next_import_index(vat, kref.is_promise())?;
        let vref = if kref.is_promise() { format!("p-{n}") } else { format!("o-{n}") };
        self.store.add_clist(ep, kref, &vref, true)?;
        self.incref(kref)?;
        Ok(vref)
    }

    /// Maps a message's result promise into the receiving vat. When the vat does not know it
    /// yet (the usual case), the new c-list entry takes over the reference the queue item
    /// held, instead of counting one more and then releasing the item's: returns true, and
    /// the caller must not release the item's reference. Promise entries have no reachable
    /// flag, so an existing entry is used as it is.
    pub(crate) fn import_result(&mut self, vat: VatId, kpid: KRef) -> Result<(String, bool), KernelError> {
        if !kpid.is_promise() {
            // Results are promises (syscalls and host calls make sure); anything else is
            // translated the ordinary way.
            return Ok((self.kref_to_vref(vat, kpid)?, false));
        }
        let ep = EndpointId::Vat(vat);
        if let Some(entry) = self.store.clist_by_kref(ep, kpid)? {
            return Ok((entry.eref, false));
        }
        let n = self.store.next_import_index(vat, true)?;
        let vref = format!("p-{n}");
        self.store.add_clist(ep, kpid, &vref, true)?;
        Ok((vref, true))
    }

    pub(crate) fn capdata_to_vat(&mut self, vat: VatId, data: &CapData<KRef>) -> Result<CapData<String>, KernelError> {
        data.try_map_slots(|k| self.kref_to_vref(vat, *k))
    }

    /// Deletes a vat's c-list entry for `kref`, releasing what it counted.
    pub(crate) fn forget_clist_entry(&mut self, vat: VatId, kref: KRef) -> Result<(), KernelError> {
        let ep = EndpointId::Vat(vat);
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

    /// The vat stops holding its import `kref` reachably (it stays recognizable): the
    /// c-list flag is cleared and the object's reachable count released.
    pub(crate) fn drop_import_entry(&mut self, vat: VatId, kref: KRef) -> Result<(), KernelError> {
        self.store.set_clist_reachable(EndpointId::Vat(vat), kref, false)?;
        if let Some((0, _)) = self.store.adjust_object(kref, -1, 0)? {
            self.maybe_free.insert(kref);
        }
        Ok(())
    }

    /// Orphans an export of `ep`: its c-list entry goes and the object loses its owner, so a
    /// send to it is rejected with `OBJECT_DELETED` and GC deletes it once importers let go
    /// (a terminated vat's exports, a restarted vat's non-durable ones).
    pub(crate) fn abandon_export(&mut self, ep: EndpointId, kref: KRef) -> Result<(), KernelError> {
        self.store.delete_clist(ep, kref)?;
        if self.store.object(kref)?.is_some_and(|o| o.owner == Some(ep)) {
            self.store.set_object_owner(kref, None)?;
        }
        self.maybe_free.insert(kref);
        Ok(())
    }
}
