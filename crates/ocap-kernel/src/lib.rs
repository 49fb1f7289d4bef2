//! The ocap kernel: references, smallcaps marshalling, the SQLite store, the crank loop,
//! kernel promises, garbage collection across vats, and revocation.
//!
//! Start with `ARCHITECTURE.md` at the repository root for the map.

pub mod capdata;
pub mod config;
pub mod core;
mod facet;
pub mod invariants;
pub mod io;
pub mod json;
pub mod kernel;
pub mod kernel_extra;
pub mod refs;
pub mod smallcaps;
pub mod store;
pub mod testing;
pub mod vat;

pub use crate::core::{
    HostResult, KernelCore, KernelError, KernelOptions, KernelService, LaunchedVat, ServiceReply, SubclusterLaunch,
    VatCodeLoader, VatLauncher, VatSpec,
};
pub use crate::core::{IncarnationReport, LaunchRequest};
pub use crate::core::{SystemBootReport, SystemSubclusterConfig};
pub use crate::kernel::KernelState;
pub use crate::kernel::{
    Kernel, KernelConfig, KernelStatus, LaunchResult, ServiceRegistration, VatEvent, VatEventSink,
};
pub use capdata::CapData;
pub use refs::{ERef, EndpointId, KRef, VatId};
pub use smallcaps::Value;
