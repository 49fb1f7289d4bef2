//! Starting vats: the traits a launcher implements for the kernel (`VatLauncher`,
//! `VatCodeLoader`), what the kernel asks it (`LaunchRequest`) and gets back (`LaunchedVat`),
//! and how a started worker reports to the kernel outside any delivery (`VatEvent`,
//! `VatEventSink`).
//!
//! The kernel does not know how to start a worker: a `VatLauncher` does (for JS vats,
//! `ocap_vat::JsVatLauncher`). These types are here, not in the kernel, so a launcher needs
//! only this crate.

use std::sync::Arc;

use crate::config::VatConfig;
use crate::refs::VatId;
use crate::vat::{Endpoint, VatSyscall};

/// The default of the most syscalls one delivery may make: the kernel's
/// `KernelOptions::max_syscalls_per_delivery` and the vat worker's `WorkerOptions` both start
/// from it, so the number is written once.
pub const DEFAULT_MAX_SYSCALLS_PER_DELIVERY: usize = 100_000;

/// A worker started for a vat, and what its start-up wrote to the vatstore.
pub struct LaunchedVat {
    pub endpoint: Box<dyn Endpoint>,
    pub vatstore_sets: Vec<(String, String)>,
    pub vatstore_deletes: Vec<String>,
}

/// One vat to start: its ID, name, effective config and persisted vatstore.
pub struct LaunchRequest {
    pub vat: VatId,
    pub name: String,
    pub config: VatConfig,
    pub vatstore: Vec<(String, String)>,
    /// The kernel's `KernelOptions::max_syscalls_per_delivery`: the worker stops a delivery
    /// that makes more (the kernel would refuse them anyway; the worker must not buffer an
    /// unbounded number first).
    pub max_syscalls_per_delivery: usize,
}

/// Work a launcher can do for a launch before it reaches the run loop: reading and bundling
/// vat code can be slow (a large bundle, a slow disk, swc on a big source), and while the run
/// loop waits, every vat waits (issue 11 item 1: nothing a config names is read on the run
/// loop). `Kernel` calls `preload` on a thread of its own; the launch then finds the code
/// ready. Errors are not returned here: the launch meets them again, cheaply, and reports them
/// against the vat that caused them.
pub trait VatCodeLoader: Send + Sync {
    fn preload(&self, vats: &[VatConfig]);
}

/// Starts vat workers, one `LaunchRequest` per vat.
pub trait VatLauncher {
    /// The launcher's code loader, if it has one (see `VatCodeLoader`).
    fn code_loader(&self) -> Option<Arc<dyn VatCodeLoader>> {
        None
    }

    /// Starts several vats; a launcher may start them in parallel. The answers are in the
    /// order of the requests.
    fn launch_many(&mut self, requests: Vec<LaunchRequest>) -> Vec<Result<LaunchedVat, String>> {
        requests.into_iter().map(|r| self.launch(r)).collect()
    }

    /// Starts one vat.
    fn launch(&mut self, request: LaunchRequest) -> Result<LaunchedVat, String>;
}

/// Something a vat worker reports outside a delivery.
#[derive(Debug)]
pub enum VatEvent {
    /// Syscalls made outside any delivery (a timer fired); run as their own unit.
    AsyncSyscalls(Vec<VatSyscall>),
    /// The worker died (memory limit, runaway loop): the vat is terminated.
    Died(String),
}

/// Where workers post their events; cheap to clone, usable from any thread.
pub type VatEventSink = Arc<dyn Fn(VatId, VatEvent) + Send + Sync>;
