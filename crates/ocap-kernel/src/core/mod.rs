//! `KernelCore`: the single owner of kernel state. It processes work one crank at a time.
//!
//! Everything that changes kernel state goes through `&mut KernelCore`, so the borrow checker
//! enforces "only the run loop writes the store". Host calls (`queue_message`, `revoke`, ...)
//! are their own units of work between cranks; they never write into an open crank.
//! The threaded `crate::Kernel` wraps a `KernelCore` on its own thread and feeds it commands.
//!
//! The files, in the order a crank touches them (ARCHITECTURE.md has the picture):
//! - `crank.rs`: picks the next unit of work by priority and runs it;
//! - `unit.rs`: the crank protocol: the one place a unit is opened, finished (commit, abort
//!   and terminate, commit and terminate) and rolled back, and `Outcome`;
//! - `router.rs`: where a send goes (object, promise, service, nowhere);
//! - `delivery.rs`: deliveries to endpoints (message, notify, GC actions, reap) and the one
//!   place a delivery's report becomes an `Outcome`; `notify_batch.rs`: which notifies go to
//!   a vat together;
//! - `endpoints.rs`: the attached endpoints (vats and remotes) behind one `Endpoint` interface;
//! - `syscalls.rs`: what an endpoint asks of the kernel, validated (`SyscallError`);
//! - `translate.rs`: c-list translation between krefs and erefs, for any endpoint;
//! - `refcount.rs`, `promises.rs`: reference counts and promise resolution;
//! - `terminate.rs`: endpoint termination and the bounded c-list cleanup;
//! - vat-only parts: `vats.rs` (vat records, vatstore, attach), `incarnation.rs` (a vat's
//!   restart), `subclusters.rs`, `system.rs`; kernel services: `services.rs`, `io/`;
//!   host calls: `host.rs`;
//! - `trace.rs`: `CrankTrace`, what each crank did, for subscribers (only built when someone
//!   listens).

mod crank;
mod delivery;
mod endpoints;
mod error;
mod host;
mod identity;
mod incarnation;
pub mod io;
mod notify_batch;
mod ocap_urls;
mod options;
mod overlap;
mod peers;
mod promises;
mod refcount;
mod router;
mod services;
mod subclusters;
mod syscalls;
mod system;
mod terminate;
mod trace;
mod translate;
mod unit;
mod vats;

pub use error::KernelError;
pub use incarnation::IncarnationReport;
pub use ocap_abi::launch::{LaunchRequest, LaunchedVat, VatCodeLoader, VatLauncher};
pub use options::KernelOptions;
pub(crate) use overlap::Chosen;
pub(crate) use peers::check_peer_id;
pub use peers::{PeerStatus, RedeemReply, RemoteOptions};
pub use services::{KernelService, ServiceInfo, ServiceReply, Waker};
pub use subclusters::SubclusterLaunch;
pub use system::{SystemBootReport, SystemSubclusterConfig};
pub use trace::{CrankTrace, TracedOutcome, TracedSyscall, TracedWork, MAX_TRACED_SYSCALLS, TRACE_CAPACITY};
pub use vats::VatSpec;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::mpsc;
use std::sync::Arc;

use crate::capdata::CapData;
use crate::refs::{EndpointId, KRef};
use crate::smallcaps;
use crate::store::Store;
use crate::vat::Endpoint;

/// How a settled promise looks to the host.
pub type HostResult = Result<CapData<KRef>, CapData<KRef>>;

/// Called once, after the commit that settled the promise the host was waiting on.
pub type HostWaiter = Box<dyn FnOnce(HostResult) + Send>;

/// Work that may only happen after the crank that produced it is durable.
pub(crate) enum Effect {
    HostResolved {
        kpid: KRef,
        result: HostResult,
    },
    InvokeService {
        service: KRef,
        method: String,
        args: CapData<KRef>,
        result: Option<KRef>,
    },
    /// A frame logged for a peer, to hand to the transport (`peers.rs`).
    RemoteSend {
        remote: crate::refs::RemoteId,
        frame: String,
        /// The ack the frame carries.
        ack: u64,
    },
    /// Promise entries a notify to a peer settled, forgotten once the peer acknowledges the
    /// notify's frame `seq` (`peers.rs`, `retire_after_notify`). Registered at the commit:
    /// a unit rolled back after logging the notify hands `seq` out again to another frame,
    /// and must leave no retirement keyed to it behind.
    RetireAfterAck {
        remote: crate::refs::RemoteId,
        seq: u64,
        kps: Vec<KRef>,
    },
}

/// The kernel state machine's sole owner.
pub struct KernelCore {
    pub(crate) store: Store,
    pub(crate) opts: KernelOptions,
    /// The endpoints (vats, remotes) whose worker or connection is attached in this process.
    /// An active endpoint in the store without an entry here is unreachable: messages to it
    /// are rejected (`ENDPOINT_UNREACHABLE`).
    pub(crate) endpoints: HashMap<EndpointId, Box<dyn Endpoint>>,
    pub(crate) services: HashMap<KRef, Arc<dyn KernelService>>,
    /// Services registered on a subcluster's first request (`offer_service`), by name.
    pub(crate) offered: HashMap<String, Arc<dyn KernelService>>,
    pub(crate) system_only: HashSet<KRef>,
    /// Live IO channels by subcluster (`io/`).
    pub(crate) io: HashMap<String, io::SubclusterIo>,
    /// Krefs whose counts reached zero in this unit; examined at its end. Cleared on rollback.
    pub(crate) maybe_free: BTreeSet<KRef>,
    /// Post-commit work of released units. The current unit's effects start at `unit_effects_start`.
    pub(crate) effects: Vec<Effect>,
    pub(crate) unit_effects_start: usize,
    pub(crate) host_waiters: HashMap<KRef, HostWaiter>,
    pub(crate) service_tx: mpsc::Sender<(KRef, HostResult)>,
    pub(crate) service_rx: mpsc::Receiver<(KRef, HostResult)>,
    pub(crate) pending_replies: VecDeque<(KRef, HostResult)>,
    pub(crate) waker: Option<Waker>,
    pub(crate) cranks_since_commit: u32,
    pub(crate) crank_count: u64,
    /// Remote comms: the transport, the peers' timers, URL redemptions in flight (`peers.rs`).
    pub(crate) comms: peers::Comms,
    /// Where crank traces go (`trace.rs`); checked once per unit.
    pub(crate) tracer: Option<tokio::sync::broadcast::Sender<CrankTrace>>,
    /// The trace of the unit in progress, when someone listens.
    pub(crate) trace: Option<Box<trace::TraceInProgress>>,
    /// The run-queue item the next crank takes, chosen when the current one started its
    /// delivery (`overlap.rs`).
    pub(crate) chosen_next: Option<Chosen>,
    /// Whether the crank in progress is a run-queue item (only those choose the next one).
    pub(crate) crank_is_run: bool,
    /// Whether the crank in progress had its delivery started ahead (by the crank before).
    pub(crate) crank_started: bool,
    /// Host commands wait for the chosen crank (`run_loop.rs`): choose no further one.
    pub(crate) commands_waiting: bool,
    /// Whether GC actions, cleanup or a reap waited when the crank in progress started
    /// (`step`'s one look at the queues; `overlap.rs` reads it instead of looking again).
    pub(crate) other_work_waiting: bool,
}

impl KernelCore {
    /// Takes ownership of a store. On an existing store, promises a previous process's host
    /// was waiting on are released (nobody is waiting any more).
    pub fn new(store: Store, opts: KernelOptions) -> Result<KernelCore, KernelError> {
        let (service_tx, service_rx) = mpsc::channel();
        let mut core = KernelCore {
            store,
            opts,
            endpoints: HashMap::new(),
            services: HashMap::new(),
            offered: HashMap::new(),
            system_only: HashSet::new(),
            io: HashMap::new(),
            maybe_free: BTreeSet::new(),
            effects: Vec::new(),
            unit_effects_start: 0,
            host_waiters: HashMap::new(),
            service_tx,
            service_rx,
            pending_replies: VecDeque::new(),
            waker: None,
            cranks_since_commit: 0,
            crank_count: 0,
            chosen_next: None,
            crank_is_run: false,
            crank_started: false,
            commands_waiting: false,
            other_work_waiting: false,
            comms: peers::Comms::default(),
            tracer: None,
            trace: None,
        };
        core.unit(|k| {
            for kpid in k.store.host_watched_promises()? {
                k.store.set_host_watch(kpid, false)?;
                k.decref(kpid)?;
            }
            // A kernel service call in flight when the previous process stopped can never be
            // answered: its reply channel died with that process. Reject its promise, or
            // whoever holds it would wait forever (tests/simulation.rs, seed 30).
            let lost = smallcaps::kernel_error("DELIVERY_FAILED", "the kernel restarted before the service answered");
            for kpid in k.store.promises_decided_by(EndpointId::Kernel)? {
                k.resolve_promise(kpid, true, lost.clone())?;
            }
            Ok(())
        })?;
        core.commit()?;
        core.load_peers()?;
        Ok(core)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Number of cranks run so far in this process.
    pub fn crank_count(&self) -> u64 {
        self.crank_count
    }

    /// Sends a `CrankTrace` of every unit of work to `tracer` while it has subscribers (none:
    /// stop tracing). The threaded `Kernel` sets one at start-up (`Kernel::trace_subscribe`).
    pub fn set_tracer(&mut self, tracer: Option<tokio::sync::broadcast::Sender<CrankTrace>>) {
        self.tracer = tracer;
    }

    /// A new subscriber to the crank traces, making the channel (`TRACE_CAPACITY`) on first use.
    pub fn trace_subscribe(&mut self) -> tokio::sync::broadcast::Receiver<CrankTrace> {
        self.tracer.get_or_insert_with(|| tokio::sync::broadcast::channel(TRACE_CAPACITY).0).subscribe()
    }

    /// Starts the trace of a unit of work, if someone listens; `work` is only called then.
    pub(crate) fn trace_begin(&mut self, work: impl FnOnce() -> TracedWork) {
        if trace::listening(&self.tracer) {
            self.trace = Some(trace::TraceInProgress::new(self.crank_count, work()));
        }
    }

    /// Sends the trace of the unit that just finished (if one was started): `outcome` is what
    /// its body asked for, `finished` how finishing it went (an error wins). A subscriber that
    /// lags loses old traces; the send never blocks.
    pub(crate) fn trace_end<T>(&mut self, outcome: Option<TracedOutcome>, finished: &Result<T, KernelError>) {
        let Some(mut t) = self.trace.take() else { return };
        if let Err(e) = finished {
            t.fail(e);
        }
        if let (Some(outcome), Some(tx)) = (outcome, &self.tracer) {
            let _ = tx.send(t.finish(outcome));
        }
    }
}
