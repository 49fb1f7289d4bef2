//! # ocap-vat: the vat worker
//!
//! Each vat runs JavaScript in its own QuickJS runtime (rquickjs), on its own
//! OS thread. Inside the runtime, in order:
//!
//! 1. SES (`ses` from npm): `repairIntrinsics` + `hardenIntrinsics`, with the
//!    `@endo/eventual-send` `HandledPromise` shim installed in between, and
//!    a native `harden` (SES's algorithm over QuickJS's C API, `harden.rs`)
//!    that SES adopts;
//! 2. `@agoric/swingset-liveslots` (the JS kernel's `0.10.3-u21.0.1`);
//! 3. our supervisor (`js/src/supervisor.js`): initVat, deliver, endowments
//!    (all 20 optional globals of spec vat-side §5.3; `fetch` runs its
//!    requests off the vat thread, `net.rs`);
//! 4. the vat's bundle, evaluated in a SES `Compartment`.
//!
//! Items 1–3 are one script (the *prelude*) that `build.rs` bundles with
//! esbuild from the pinned `js/package-lock.json`; it is embedded in the
//! binary and compiled once per process to QuickJS bytecode.
//!
//! [`VatWorker`]'s API is JSON-level: deliveries and syscalls are the JS
//! kernel's `VatDeliveryObject` / `VatSyscallObject` tuples in vat space
//! (vrefs only, never krefs). [`JsVat`] adapts it to the kernel's
//! `ocap_abi::vat::Endpoint` (see `endpoint.rs`).
//!
//! ```no_run
//! use ocap_vat::{VatWorker, WorkerOptions};
//! let worker = VatWorker::spawn(WorkerOptions::new("v1", "alice"), Box::new(|event| {
//!     println!("{event:?}");
//! }))?;
//! let bundle = std::fs::read_to_string("alice.bundle").unwrap();
//! let reply = worker.init(serde_json::json!({"bundleSpec": "alice.bundle"}), Some(bundle), vec![])?;
//! assert!(reply.error.is_none());
//! let reply = worker.deliver(serde_json::json!(
//!     ["message", "o+0", {"methargs": {"body": "#[\"ping\",[]]", "slots": []}, "result": "p-1"}]
//! ))?;
//! // reply.syscalls == [["resolve", [["p-1", false, {"body": "#\"pong\"", "slots": []}]]]]
//! # Ok::<(), ocap_vat::VatWorkerError>(())
//! ```
//!
//! Architecture invariants:
//! - one `Runtime` + one `Context` per vat, never shared, touched only by the
//!   vat's own thread;
//! - the vat never waits for a syscall result (optimistic syscalls), so the
//!   syscalls of a delivery are returned in its reply, in order, except that a
//!   delivery that makes many hands them over in chunks of 64 while it runs
//!   (`VatWorker::deliver_streaming`), for the kernel to apply meanwhile;
//! - vatstore syscalls are served inside the worker; the kernel only sees the
//!   checkpoint (`vatstore_sets` / `vatstore_deletes`) of each delivery;
//! - a stuck or memory-hungry vat is stopped by the interrupt handler or the
//!   memory limit: a call never hangs the caller.

mod bundle;
mod code;
mod endpoint;
mod error;
mod harden;
mod launcher;
mod lazy_module;
mod memory;
mod net;
mod non_thenable;
mod pass_style;
mod plain_data;
mod prelude;
mod smallcaps;
mod source_scan;
mod vatstore;
mod worker;

pub use bundle::{bundle_vat, bundle_vat_source, spec_to_path, vat_aliases, vat_node_modules};
pub use endpoint::{delivery_to_json, parse_syscall, parse_syscalls, JsVat, JsVatError, VatStart};
pub use error::VatWorkerError;
pub use launcher::{JsVatLauncher, LauncherOptions};
pub use memory::runtime_bytes_leaked;
pub use worker::{PendingReply, VatWorker};

/// The 20 optional globals a vat may request in `vatConfig.globals` (spec vat-side §5.3);
/// the kernel's config validation uses the same list.
pub use ocap_abi::config::ALLOWED_GLOBAL_NAMES;

/// The optional globals this worker implements: all of them.
pub const IMPLEMENTED_GLOBAL_NAMES: [&str; 20] = ALLOWED_GLOBAL_NAMES;

/// Default memory limit of a vat runtime.
pub const DEFAULT_MEMORY_LIMIT_BYTES: usize = 256 * 1024 * 1024;
/// Default budget of one delivery (or one timer callback), in milliseconds of wall-clock
/// time (issue 11 item 5). Deliveries run one at a time, so this is also how long a vat that
/// loops can hold every other vat up: a few seconds, far more than real deliveries need
/// (a typical one takes well under a millisecond). Past it the interrupt handler stops the
/// JavaScript and the vat is terminated. Raise it per kernel (`LauncherOptions`, the
/// daemon's `deliveryTimeoutMs`) or per vat (`creationOptions.deliveryBudgetMs`).
pub const DEFAULT_DELIVERY_TIMEOUT_MS: u64 = 3_000;
/// Upper bound on the live timers of one vat.
pub const MAX_TIMERS_PER_VAT: usize = 10_000;
/// Upper bound on the fetches one vat may have in flight.
pub const MAX_FETCHES_PER_VAT: usize = 64;

/// How to run one vat.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The kernel's id for the vat, e.g. `v1` (used in messages and logs).
    pub vat_id: String,
    /// The vat's name in its subcluster (diagnostics only).
    pub name: String,
    /// QuickJS heap limit; 0 means no limit.
    pub memory_limit_bytes: usize,
    /// Budget of the interrupt handler for one delivery (or timer turn);
    /// past it the vat is stopped and [`WorkerEvent::Died`] is sent.
    pub delivery_timeout_ms: u64,
    /// Kernel-wide allowlist of optional globals; `None` allows all 20.
    pub allowed_globals: Option<Vec<String>>,
    /// The most syscalls one delivery (or timer or fetch turn) may make; the next one throws
    /// in the vat. A kernel passes its own `KernelOptions::max_syscalls_per_delivery` (the
    /// `LaunchRequest` carries it), so the worker stops buffering where the kernel would
    /// refuse anyway.
    pub max_syscalls_per_delivery: usize,
}

impl WorkerOptions {
    /// Options with the default limits (the syscall limit is the kernel's default).
    pub fn new(vat_id: impl Into<String>, name: impl Into<String>) -> Self {
        WorkerOptions {
            vat_id: vat_id.into(),
            name: name.into(),
            memory_limit_bytes: DEFAULT_MEMORY_LIMIT_BYTES,
            delivery_timeout_ms: DEFAULT_DELIVERY_TIMEOUT_MS,
            allowed_globals: None,
            max_syscalls_per_delivery: ocap_abi::launch::DEFAULT_MAX_SYSCALLS_PER_DELIVERY,
        }
    }
}

/// What one `init` or `deliver` produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryReply {
    /// Every syscall the vat made during this delivery, in order, as the JS
    /// kernel's VatSyscallObject tuples (`["send", vref, {methargs, result}]`,
    /// `["resolve", [...]]`, `["subscribe", vpid]`, `["exit", bool, capdata]`,
    /// `["dropImports", [..]]`, `["retireImports", [..]]`,
    /// `["retireExports", [..]]`, `["abandonExports", [..]]`). Vatstore
    /// syscalls are served inside the worker and are not listed.
    pub syscalls: Vec<serde_json::Value>,
    /// Vatstore keys written since the last checkpoint (sorted by key).
    pub vatstore_sets: Vec<(String, String)>,
    /// Vatstore keys deleted since the last checkpoint (sorted).
    pub vatstore_deletes: Vec<String>,
    /// Liveslots-level delivery error (e.g. `I don't remember allocating
    /// o+10`, an error thrown by `buildRootObject`, `buildRootObject
    /// unresolved`). The kernel should abort the crank and terminate the vat.
    pub error: Option<String>,
}

/// Something the worker reports outside a call's reply. Events are sent from
/// the worker thread; the callback must not call back into the same worker.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerEvent {
    /// Syscalls made outside a delivery (a timer fired, a fetch settled);
    /// the kernel takes them as their own unit of work.
    AsyncSyscalls { syscalls: Vec<serde_json::Value> },
    /// A log record. `tags` are the tags added inside the vat: `["console"]`
    /// for `console.*`, `[]` for `vatPowers.logger`, the subLogger tags
    /// otherwise (e.g. `["test", "alice"]`), `["liveslots"]` for liveslots.
    Log { level: String, tags: Vec<String>, message: String, data: Vec<serde_json::Value> },
    /// The worker died (memory limit, interrupt/timeout, panic): reason.
    Died { reason: String },
}
