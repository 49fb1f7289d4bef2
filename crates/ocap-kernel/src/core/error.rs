//! `KernelError`: what a host call can fail with. A vat's misbehaviour is never one of these:
//! it terminates the vat instead (`core/syscalls.rs`, `core/unit.rs`).

use crate::refs::{EndpointId, KRef, VatId};
use crate::store::StoreError;

/// Errors returned to the host.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    BadRef(#[from] crate::refs::RefParseError),
    #[error("unknown kref {0}")]
    UnknownKref(KRef),
    #[error("the store is inconsistent after crank {crank}: {}", violations.join("; "))]
    Invariants { crank: u64, violations: Vec<String> },
    #[error("{0} is a promise; {1} needs an object")]
    NotAnObject(KRef, &'static str),
    /// `unpin` of an object the host holds no pin on (an OCAP URL's pin goes only by revoking
    /// the URL).
    #[error("{0} is not pinned by the host")]
    NotPinned(KRef),
    #[error("vat {0} does not exist")]
    NoSuchVat(VatId),
    #[error("vat {0} is not running")]
    VatNotRunning(VatId),
    /// An endpoint that is not a vat (a remote) does not exist or is not active.
    #[error("endpoint {0} does not exist or is not active")]
    NoSuchEndpoint(EndpointId),
    /// A reference an endpoint does not export, or not in its grammar.
    #[error("bad endpoint reference: {0}")]
    BadEndpointRef(String),
    /// An OCAP URL that cannot be issued, redeemed or revoked (remote-comms.md §3), with the
    /// JS kernel's text where it has one.
    #[error("{0}")]
    OcapUrl(String),
    /// The kernel's remote identity could not be made (remote-comms.md §1.2).
    #[error("{0}")]
    Identity(String),
    #[error("kernel service {0:?} is already registered")]
    DuplicateService(String),
    #[error("{0}")]
    Config(String),
    #[error("Failed to launch vat {vat} ({name}): {cause}")]
    LaunchFailed { vat: VatId, name: String, cause: String },
    #[error("{0}")]
    BootstrapFailed(String),
    #[error("{0}")]
    Io(String),
    #[error("subcluster {0} does not exist")]
    NoSuchSubcluster(String),
    #[error("no registered kernel service '{0}'")]
    NoSuchService(String),
    /// A host-supplied value that cannot be sent (for example nested deeper than
    /// `smallcaps::MAX_DEPTH`, which no vat could receive).
    #[error("cannot send the value: {0}")]
    BadValue(#[from] crate::smallcaps::SmallcapsError),
    /// A remote kernel sent something this kernel cannot process (remote-comms.md §4.5).
    #[error("bad message from a peer: {0}")]
    PeerProtocol(String),
    #[error("internal kernel error: {0}")]
    Internal(String),
}
