//! The endpoints the kernel delivers to, behind one interface (`crate::vat::Endpoint`): vats
//! (`vats.rs` adds the vat-only parts: records, vatstore, subclusters, incarnations) and
//! remote kernels (`rN`, remote-comms.md §2: one c-list of rrefs per peer).
//!
//! Everything generic lives in the files that use it: translation (`translate.rs`),
//! deliveries (`delivery.rs`), syscalls (`syscalls.rs`), GC (`refcount.rs`), termination and
//! cleanup (`terminate.rs`), the invariant checker (`store/invariants.rs`). This file holds
//! the registry: which endpoints are attached in this process, and the host calls that add
//! and remove the endpoints that are not vats.

use super::syscalls::SyscallError;
use super::{KernelCore, KernelError};
use crate::refs::{EndpointId, KRef, RemoteId};
use crate::smallcaps::{self, Value};
use crate::store::RemoteRecord;
use crate::vat::Endpoint;

impl KernelCore {
    /// Whether the endpoint has a worker or connection attached in this process.
    pub fn is_attached(&self, ep: EndpointId) -> bool {
        match ep {
            // A peer always takes deliveries: they wait in its pending log for the network.
            EndpointId::Remote(r) if self.is_peer(r) => true,
            _ => self.endpoints.contains_key(&ep),
        }
    }

    /// Adds a remote kernel as a new endpoint `rN`, with an empty c-list. What the remote
    /// sends arrives as syscalls (`handle_async_syscalls`); what is delivered to it reaches
    /// `endpoint` in rref space (the remote-comms layer puts it on the wire).
    pub fn add_remote(&mut self, name: &str, endpoint: Box<dyn Endpoint>) -> Result<RemoteId, KernelError> {
        let name = name.to_owned();
        let id = self.unit(|k| Ok(k.store.create_remote(&name)?))?;
        self.commit()?;
        self.endpoints.insert(id.into(), endpoint);
        Ok(id)
    }

    /// Attaches a new connection to a persisted remote endpoint (after a restart): its c-list
    /// and the promises it decides are kept.
    pub fn attach_remote(&mut self, id: RemoteId, endpoint: Box<dyn Endpoint>) -> Result<(), KernelError> {
        if !self.store.endpoint_is_active(id.into())? {
            return Err(KernelError::NoSuchEndpoint(id.into()));
        }
        if let Some(mut old) = self.endpoints.insert(id.into(), endpoint) {
            old.shutdown();
        }
        Ok(())
    }

    /// The kref of an object or promise a remote exports (`ro+N`, `rp+N`, in this kernel's
    /// c-list for it), made if the kernel has not seen it: how a reference learned from the
    /// peer outside a message (an OCAP URL's answer) enters the kernel. The object is owned,
    /// the promise decided, by the remote. Committed before it returns.
    ///
    /// Errors: `NoSuchEndpoint`; `BadEndpointRef` for anything but a well-formed export rref.
    pub fn import_from_remote(&mut self, id: RemoteId, rref: &str) -> Result<KRef, KernelError> {
        let ep = EndpointId::Remote(id);
        if !self.store.endpoint_is_active(ep)? {
            return Err(KernelError::NoSuchEndpoint(ep));
        }
        if !ep.parse_eref(rref).is_ok_and(|e| e.is_export()) {
            return Err(KernelError::BadEndpointRef(format!("{rref} is not an rref {ep} exports")));
        }
        let rref = rref.to_owned();
        let kref = self.unit(|k| match k.eref_to_kref(ep, &rref) {
            Ok(kref) => Ok(kref),
            Err(SyscallError::Illegal(why)) => Err(KernelError::BadEndpointRef(why)),
            Err(SyscallError::Internal(e)) => Err(e),
        })?;
        self.commit()?;
        Ok(kref)
    }

    /// Every remote endpoint in the store.
    pub fn remotes(&self) -> Result<Vec<RemoteRecord>, KernelError> {
        Ok(self.store.remotes()?)
    }

    /// Terminates a remote endpoint (the peer is gone for good): the promises it decides are
    /// rejected with `[KERNEL:VAT_TERMINATED] <reason>`, its exports are orphaned and its
    /// c-list cleaned in bounded steps, as for a vat.
    pub fn terminate_remote(&mut self, id: RemoteId, reason: &str) -> Result<(), KernelError> {
        if !self.store.endpoint_is_active(id.into())? {
            return Err(KernelError::NoSuchEndpoint(id.into()));
        }
        let info = smallcaps::kser(&Value::error(reason));
        self.unit(|k| k.terminate_in_unit(id.into(), &info))?;
        self.commit()
    }
}
