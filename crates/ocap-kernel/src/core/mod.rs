//! `KernelCore`: the single owner of kernel state. It processes work one crank at a time.
//!
//! Everything that changes kernel state goes through `&mut KernelCore`, so the borrow checker
//! enforces "only the run loop writes the store". Host calls (`queue_message`, `revoke`, ...)
//! are their own units of work between cranks; they never write into an open crank.
//! The threaded `crate::Kernel` wraps a `KernelCore` on its own thread and feeds it commands.

mod crank;
mod incarnation;
mod promises;
mod refcount;
mod router;
mod services;
mod subclusters;
mod system;
pub use incarnation::IncarnationReport;
pub use services::Waker;
pub use subclusters::{LaunchRequest, LaunchedVat, SubclusterLaunch, VatCodeLoader, VatLauncher};
pub use system::{SystemBootReport, SystemSubclusterConfig};
mod syscalls;
mod terminate;
mod translate;

pub use services::{KernelService, ServiceReply};

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::mpsc;
use std::sync::Arc;

use crate::capdata::CapData;
use crate::refs::{EndpointId, KRef, VatId, ROOT_OBJECT_VREF};
use crate::smallcaps::{self, Value};
use crate::store::PromiseRecord;
use crate::store::{RunQueueItem, Store, StoreError, VatRecord, VatState};
use crate::vat::Endpoint;

/// Limits and policies. Every bound has its unit in its name.
#[derive(Debug, Clone)]
pub struct KernelOptions {
    /// Deliveries between automatic bring-out-your-dead for a vat that does not set its own.
    pub default_reap_interval_deliveries: u64,
    /// Cranks that may share one SQLite commit when nothing is waiting on them.
    pub max_cranks_per_commit: u32,
    /// C-list entries cleaned per crank for a terminated vat.
    pub cleanup_budget_entries: usize,
    /// Syscalls one delivery may make before the vat is terminated.
    pub max_syscalls_per_delivery: usize,
    /// Run-queue length past which a vat's further sends are refused (illegal syscall).
    pub max_run_queue_items: u64,
    pub max_vatstore_key_bytes: usize,
    pub max_vatstore_value_bytes: usize,
    /// Run the invariant checker (`invariants.rs`) after every crank, for debugging: the
    /// first crank that leaves the store inconsistent is reported (`KernelError::Invariants`,
    /// logged by the run loop) with what is wrong. Slow: it reads the whole store each time.
    pub check_invariants_every_crank: bool,
}

impl Default for KernelOptions {
    fn default() -> Self {
        KernelOptions {
            default_reap_interval_deliveries: 200,
            max_cranks_per_commit: 64,
            cleanup_budget_entries: 64,
            max_syscalls_per_delivery: 100_000,
            max_run_queue_items: 1_000_000,
            max_vatstore_key_bytes: 4 * 1024,
            max_vatstore_value_bytes: 16 * 1024 * 1024,
            check_invariants_every_crank: false,
        }
    }
}

/// Errors returned to the host. A vat's misbehaviour is never one of these: it terminates
/// the vat instead.
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
    #[error("vat {0} does not exist")]
    NoSuchVat(VatId),
    #[error("vat {0} is not running")]
    VatNotRunning(VatId),
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
    #[error("internal kernel error: {0}")]
    Internal(String),
}

/// How a settled promise looks to the host.
pub type HostResult = Result<CapData<KRef>, CapData<KRef>>;

/// Called once, after the commit that settled the promise the host was waiting on.
pub type HostWaiter = Box<dyn FnOnce(HostResult) + Send>;

/// Work that may only happen after the crank that produced it is durable.
pub(crate) enum Effect {
    HostResolved { kpid: KRef, result: HostResult },
    InvokeService { service: KRef, method: String, args: CapData<KRef>, result: Option<KRef> },
}

/// What a vat is set up with when it joins the kernel.
#[derive(Debug, Clone, Default)]
pub struct VatSpec {
    pub name: String,
    pub subcluster: Option<String>,
    /// The vat's config as JSON, stored so the vat can be restarted.
    pub config: String,
    /// `None` uses the kernel default.
    pub reap_interval_deliveries: Option<u64>,
    /// Vatstore contents produced while the worker started (liveslots' startVat).
    pub initial_vatstore: Vec<(String, String)>,
}

/// The kernel state machine's sole owner.
pub struct KernelCore {
    pub(crate) store: Store,
    pub(crate) opts: KernelOptions,
    pub(crate) vats: HashMap<VatId, Box<dyn Endpoint>>,
    pub(crate) services: HashMap<KRef, Arc<dyn KernelService>>,
    pub(crate) system_only: std::collections::HashSet<KRef>,
    /// Live IO channels by subcluster (`crate::io`).
    pub(crate) io: HashMap<String, crate::io::SubclusterIo>,
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
}

impl KernelCore {
    /// Takes ownership of a store. On an existing store, promises a previous process's host
    /// was waiting on are released (nobody is waiting any more).
    pub fn new(store: Store, opts: KernelOptions) -> Result<KernelCore, KernelError> {
        let (service_tx, service_rx) = mpsc::channel();
        let mut core = KernelCore {
            store,
            opts,
            vats: HashMap::new(),
            services: HashMap::new(),
            system_only: Default::default(),
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
        Ok(core)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Number of cranks run so far in this process.
    pub fn crank_count(&self) -> u64 {
        self.crank_count
    }

    /// Runs `f` as one unit of work: all of its writes, or none of them.
    pub(crate) fn unit<T>(
        &mut self,
        f: impl FnOnce(&mut KernelCore) -> Result<T, KernelError>,
    ) -> Result<T, KernelError> {
        self.store.begin_unit()?;
        self.unit_effects_start = self.effects.len();
        match f(self).and_then(|v| {
            self.process_refcounts()?;
            Ok(v)
        }) {
            Ok(v) => {
                self.store.release_unit()?;
                Ok(v)
            }
            Err(e) => {
                self.abandon_unit()?;
                Err(e)
            }
        }
    }

    /// Rolls back the open unit and forgets everything it produced in memory.
    pub(crate) fn abandon_unit(&mut self) -> Result<(), KernelError> {
        self.store.rollback_unit()?;
        self.maybe_free.clear();
        self.effects.truncate(self.unit_effects_start);
        Ok(())
    }

    /// Commits released units and then performs their post-commit effects.
    pub fn commit(&mut self) -> Result<(), KernelError> {
        self.store.commit()?;
        self.cranks_since_commit = 0;
        self.unit_effects_start = 0;
        for effect in std::mem::take(&mut self.effects) {
            match effect {
                Effect::HostResolved { kpid, result } => {
                    if let Some(waiter) = self.host_waiters.remove(&kpid) {
                        waiter(result);
                    }
                }
                Effect::InvokeService { service, method, args, result } => {
                    self.invoke_service(service, method, args, result);
                }
            }
        }
        Ok(())
    }

    // ---- vats ----------------------------------------------------------------------------

    /// Adds a new vat whose worker has already started: allocates its ID, exports its root
    /// object `o+0` (pinned while the vat lives) and records its config and vatstore.
    pub fn add_vat(&mut self, spec: VatSpec, endpoint: Box<dyn Endpoint>) -> Result<(VatId, KRef), KernelError> {
        let vat = self.reserve_vat_id()?;
        self.add_vat_with_id(vat, spec, endpoint)
    }

    /// `add_vat` with an ID from `reserve_vat_id`.
    pub fn add_vat_with_id(
        &mut self,
        vat: VatId,
        spec: VatSpec,
        endpoint: Box<dyn Endpoint>,
    ) -> Result<(VatId, KRef), KernelError> {
        let root = self.unit(|k| {
            k.store.create_vat(&VatRecord {
                id: vat,
                name: spec.name.clone(),
                subcluster: spec.subcluster.clone(),
                config: spec.config.clone(),
                state: VatState::Active,
                reap_interval: spec.reap_interval_deliveries.unwrap_or(k.opts.default_reap_interval_deliveries),
            })?;
            for (key, value) in &spec.initial_vatstore {
                k.store.vatstore_set(vat, key, value)?;
            }
            let root = k.store.create_object(EndpointId::Vat(vat))?;
            k.store.add_clist(EndpointId::Vat(vat), root, ROOT_OBJECT_VREF, true)?;
            k.store.adjust_pins(root, 1)?;
            k.incref(root)?;
            Ok(root)
        })?;
        self.vats.insert(vat, endpoint);
        Ok((vat, root))
    }

    /// Allocates a vat ID for `add_vat_with_id` (for worker set-up that needs the ID before
    /// the vat joins). IDs are never reused, so a failed launch leaves a gap.
    pub fn reserve_vat_id(&mut self) -> Result<VatId, KernelError> {
        self.unit(|k| Ok(VatId(k.store.next_id("vat")?)))
    }

    /// Re-attaches a worker for a persisted vat (after a kernel restart or `restartVat`): the
    /// worker is the vat's new incarnation, so its non-durable exports are abandoned and the
    /// promises it decided are rejected first (`core/incarnation.rs`).
    pub fn attach_vat(&mut self, vat: VatId, endpoint: Box<dyn Endpoint>) -> Result<IncarnationReport, KernelError> {
        match self.store.vat(vat)? {
            Some(rec) if rec.state == VatState::Active => {
                if let Some(mut old) = self.vats.remove(&vat) {
                    old.shutdown();
                }
                let prune_imports = endpoint.records_durable_imports();
                let report = self.unit(|k| {
                    let report = k.begin_incarnation(vat)?;
                    if prune_imports {
                        k.drop_forgotten_imports(vat)?;
                    }
                    Ok(report)
                })?;
                self.vats.insert(vat, endpoint);
                self.commit()?;
                Ok(report)
            }
            Some(_) => Err(KernelError::VatNotRunning(vat)),
            None => Err(KernelError::NoSuchVat(vat)),
        }
    }

    /// Pings a vat's worker (`pingVat`); answers "pong".
    pub fn ping_vat(&mut self, vat: VatId) -> Result<&'static str, KernelError> {
        match self.vats.get_mut(&vat) {
            Some(ep) => {
                ep.ping().map(|_| "pong").map_err(|e| KernelError::Internal(format!("ping of {vat} failed: {e}")))
            }
            None if self.store.vat(vat)?.is_some() => Err(KernelError::VatNotRunning(vat)),
            None => Err(KernelError::NoSuchVat(vat)),
        }
    }

    /// Active vats recorded in the store (whether or not a worker is attached).
    pub fn active_vats(&self) -> Result<Vec<VatRecord>, KernelError> {
        let mut out = Vec::new();
        for id in self.store.vat_ids()? {
            if let Some(rec) = self.store.vat(id)? {
                if rec.state == VatState::Active {
                    out.push(rec);
                }
            }
        }
        Ok(out)
    }

    pub fn is_vat_attached(&self, vat: VatId) -> bool {
        self.vats.contains_key(&vat)
    }

    /// The root kref of a vat.
    pub fn vat_root(&self, vat: VatId) -> Result<KRef, KernelError> {
        self.store
            .clist_by_eref(EndpointId::Vat(vat), ROOT_OBJECT_VREF)?
            .map(|(k, _)| k)
            .ok_or(KernelError::NoSuchVat(vat))
    }

    /// Terminates a vat from the host: rejects what it decides and schedules its cleanup.
    pub fn terminate_vat(&mut self, vat: VatId, reason: &str) -> Result<(), KernelError> {
        match self.store.vat(vat)? {
            Some(rec) if rec.state == VatState::Active => {}
            Some(_) => return Err(KernelError::VatNotRunning(vat)),
            None => return Err(KernelError::NoSuchVat(vat)),
        }
        let info = smallcaps::kser(&Value::error(reason));
        self.unit(|k| k.terminate_in_unit(vat, &info))?;
        self.commit()
    }

    // ---- host calls ------------------------------------------------------------------------

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
            k.enqueue_send(
                target,
                crate::store::Message { methargs: methargs.clone(), result: Some(kpid), sender: None },
            )?;
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
            if rec.pins == 0 {
                return Err(KernelError::Internal(format!("{kref} is not pinned")));
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
                    match self.store.vat(vat)? {
                        Some(r) if r.state == VatState::Active => {}
                        Some(_) => return Err(KernelError::VatNotRunning(vat)),
                        None => return Err(KernelError::NoSuchVat(vat)),
                    }
                }
                v.to_vec()
            }
            None => self.active_vats()?.into_iter().map(|r| r.id).collect(),
        };
        self.unit(|k| {
            for v in targets {
                if matches!(k.store.vat(v)?, Some(r) if r.state == VatState::Active) {
                    k.store.schedule_reap(v)?;
                }
            }
            Ok(())
        })?;
        self.commit()
    }

    /// The state of a promise, if it still exists.
    pub fn promise(&self, kpid: KRef) -> Result<Option<PromiseRecord>, KernelError> {
        Ok(self.store.promise(kpid)?)
    }

    /// Checks every store invariant (see `crate::invariants`).
    pub fn check_invariants(&self) -> Result<(), Vec<String>> {
        crate::invariants::check(&self.store)
    }

    /// Shuts down every worker. The store is left committed.
    pub fn shutdown(&mut self) -> Result<(), KernelError> {
        self.commit()?;
        self.close_all_io();
        for (_, mut ep) in self.vats.drain() {
            ep.shutdown();
        }
        Ok(())
    }

    pub(crate) fn enqueue_send(&mut self, target: KRef, message: crate::store::Message) -> Result<(), KernelError> {
        self.incref(target)?;
        if let Some(r) = message.result {
            self.incref(r)?;
        }
        for s in &message.methargs.slots {
            self.incref(*s)?;
        }
        self.store.push_run(&RunQueueItem::Send { target, message })?;
        Ok(())
    }
}
