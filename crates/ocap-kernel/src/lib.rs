//! The ocap kernel: references, smallcaps marshalling, the SQLite store, the crank loop,
//! kernel promises, garbage collection across vats, and revocation.
//!
//! Start with `ARCHITECTURE.md` at the repository root for the map.

pub mod core;
pub mod json;
pub mod kernel;
pub mod remote;
pub mod smallcaps;
pub mod store;
pub mod testing;

// The vat/kernel boundary lives in `ocap-abi` (so the vat side need not depend on the
// kernel); its modules keep their paths here (`crate::refs`, `ocap_kernel::config`, …).
pub use ocap_abi::{capdata, config, json_text, refs, timeline, vat};

pub use crate::core::io;
pub use crate::core::{CrankTrace, TracedOutcome, TracedSyscall, TracedWork, MAX_TRACED_SYSCALLS, TRACE_CAPACITY};
pub use crate::core::{
    HostResult, KernelCore, KernelError, KernelOptions, KernelService, LaunchedVat, ServiceInfo, ServiceReply,
    SubclusterLaunch, VatCodeLoader, VatLauncher, VatSpec,
};
pub use crate::core::{IncarnationReport, LaunchRequest};
pub use crate::core::{PeerStatus, RedeemReply, RemoteOptions};
pub use crate::core::{SystemBootReport, SystemSubclusterConfig};
pub use crate::kernel::KernelState;
pub use crate::kernel::{
    Kernel, KernelConfig, KernelStatus, LaunchResult, RemoteCommsStatus, ServiceRegistration, SubclusterDetails,
    VatEvent, VatEventSink,
};
pub use crate::store::invariants;
pub use capdata::CapData;
pub use refs::{ERef, EndpointId, KRef, RemoteId, VatId};
pub use smallcaps::Value;
