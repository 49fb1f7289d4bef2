//! The worker thread: one QuickJS runtime per vat, driven by commands from
//! [`VatWorker`] and by its own timers.
//!
//! Quiescence (the end of a delivery) is "QuickJS's job queue is empty and no
//! `waitUntilQuiescent` waiter is left": [`Runner::drive`] runs jobs until
//! the queue is empty, then resolves the oldest waiter (a macrotask, like
//! Node's `setImmediate`), and repeats. Timers never fire inside a delivery;
//! they fire between commands, as their own turns, and the syscalls they
//! cause are sent as [`WorkerEvent::AsyncSyscalls`].

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rquickjs::{ArrayBuffer, Context, Ctx, Function, Module, Object, Persistent, Runtime, Value};
use serde_json::Value as Json;

use crate::memory::LimitedAllocator;
use crate::net::{self, FetchResponse, FetchSpec};
use crate::vatstore::VatStore;
use crate::{
    bundle, prelude, DeliveryReply, VatWorkerError, WorkerEvent, WorkerOptions, ALLOWED_GLOBAL_NAMES,
    IMPLEMENTED_GLOBAL_NAMES, MAX_FETCHES_PER_VAT, MAX_SYSCALLS_PER_DELIVERY, MAX_TIMERS_PER_VAT,
};

/// Stack of the worker thread, and the part of it QuickJS may use.
const THREAD_STACK_BYTES: usize = 16 * 1024 * 1024;
const JS_STACK_BYTES: usize = 8 * 1024 * 1024;
/// How long the caller waits past the delivery budget before giving up on
/// the worker (the interrupt handler should have stopped it long before).
const CALLER_GRACE_MS: u64 = 10_000;
/// How long a caller polls for the worker's answer before it blocks.
const CALLER_SPIN_US: u64 = 1_000;
/// How long an idle worker polls for its next command before it blocks.
const WORKER_SPIN_US: u64 = 100;

/// Polls `rx` for up to `us` microseconds, yielding the CPU between polls.
fn poll_briefly<T>(rx: &Receiver<T>, us: u64) -> Option<T> {
    let until = Instant::now() + Duration::from_micros(us);
    loop {
        match rx.try_recv() {
            Ok(v) => return Some(v),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) if Instant::now() < until => std::thread::yield_now(),
            Err(mpsc::TryRecvError::Empty) => return None,
        }
    }
}
/// Budget for evaluating the prelude in a new runtime.
const STARTUP_TIMEOUT_MS: u64 = 60_000;

type Reply<T> = SyncSender<Result<T, VatWorkerError>>;

enum Command {
    Init {
        config: Json,
        bundle_text: Option<String>,
        vatstore: Vec<(String, String)>,
        reply: Reply<DeliveryReply>,
    },
    Deliver {
        delivery: Json,
        reply: Reply<DeliveryReply>,
    },
    Ping {
        reply: Reply<()>,
    },
    /// A fetch started by the vat has an outcome (sent by its fetch thread).
    FetchDone {
        id: u64,
        outcome: Result<FetchResponse, String>,
    },
    /// Stop serving (fetch threads hold senders, so the channel alone
    /// never disconnects while a fetch is in flight).
    Shutdown,
}

/// A running vat worker: a thread owning the vat's QuickJS runtime.
///
/// Dropping it (or [`VatWorker::terminate`]) stops the thread, interrupting
/// any JS still running and cancelling the vat's timers.
pub struct VatWorker {
    vat_id: String,
    delivery_timeout_ms: u64,
    commands: Option<Sender<Command>>,
    terminate: Arc<AtomicBool>,
    death: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for VatWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VatWorker").field("vat_id", &self.vat_id).finish_non_exhaustive()
    }
}

impl VatWorker {
    /// Start the worker thread, build the runtime and evaluate the prelude
    /// (SES lockdown, liveslots, supervisor). Returns once the vat is ready
    /// for [`VatWorker::init`].
    ///
    /// `events` is called on the worker thread for log records, syscalls made
    /// outside deliveries, and the worker's death. It must not call back
    /// into this worker (that would wait on itself).
    pub fn spawn(opts: WorkerOptions, events: Box<dyn Fn(WorkerEvent) + Send>) -> Result<VatWorker, VatWorkerError> {
        let vat_id = opts.vat_id.clone();
        let delivery_timeout_ms = opts.delivery_timeout_ms;
        let terminate = Arc::new(AtomicBool::new(false));
        let death = Arc::new(Mutex::new(None));
        let (commands_tx, commands_rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let thread = {
            let terminate = terminate.clone();
            let death = death.clone();
            std::thread::Builder::new()
                .name(format!("vat-{}", opts.vat_id))
                .stack_size(THREAD_STACK_BYTES)
                .spawn({
                    let commands_tx = commands_tx.clone();
                    move || worker_thread(opts, events, commands_rx, commands_tx, ready_tx, terminate, death)
                })
                .map_err(|e| VatWorkerError::Spawn { vat_id: vat_id.clone(), reason: e.to_string() })?
        };
        let mut worker = VatWorker {
            vat_id: vat_id.clone(),
            delivery_timeout_ms,
            commands: Some(commands_tx),
            terminate,
            death,
            thread: Some(thread),
        };
        match ready_rx.recv_timeout(Duration::from_millis(STARTUP_TIMEOUT_MS + CALLER_GRACE_MS)) {
            Ok(Ok(())) => Ok(worker),
            Ok(Err(e)) => Err(e),
            Err(RecvTimeoutError::Timeout) => {
                worker.stop();
                Err(VatWorkerError::Timeout { vat_id, timeout_ms: STARTUP_TIMEOUT_MS })
            }
            Err(RecvTimeoutError::Disconnected) => Err(worker.dead_error()),
        }
    }

    /// The kernel's `initVat`: load the vatstore, evaluate the bundle and run
    /// liveslots' `startVat` (`buildRootObject(vatPowers, parameters,
    /// baggage)`).
    ///
    /// `vat_config` is the JS kernel's VatConfig JSON. The bundle is
    /// `bundle_text` when given, else read from `bundleSpec` (a path or a
    /// `file:` URL). Errors before liveslots runs (bad config, unknown
    /// global, bad bundle) are `Err`; errors inside `startVat` are
    /// [`DeliveryReply::error`].
    pub fn init(
        &self,
        vat_config: Json,
        bundle_text: Option<String>,
        vatstore: Vec<(String, String)>,
    ) -> Result<DeliveryReply, VatWorkerError> {
        self.call(|reply| Command::Init { config: vat_config, bundle_text, vatstore, reply })
    }

    /// The kernel's `deliver`: one VatDeliveryObject tuple in vat space, e.g.
    /// `["message", "o+0", {"methargs": {"body": "#[\"ping\",[]]", "slots": []}, "result": "p-1"}]`,
    /// `["notify", [[vpid, rejected, capdata], ...]]`, `["dropExports", [..]]`,
    /// `["retireExports", [..]]`, `["retireImports", [..]]`,
    /// `["bringOutYourDead"]`. Returns once the vat is quiescent.
    pub fn deliver(&self, delivery: Json) -> Result<DeliveryReply, VatWorkerError> {
        self.call(|reply| Command::Deliver { delivery, reply })
    }

    /// Check that the worker thread answers.
    pub fn ping(&self) -> Result<(), VatWorkerError> {
        self.call(|reply| Command::Ping { reply })
    }

    /// The vat id this worker runs.
    pub fn vat_id(&self) -> &str {
        &self.vat_id
    }

    /// Why the worker died, if it did.
    pub fn death_reason(&self) -> Option<String> {
        self.death.lock().ok().and_then(|d| d.clone())
    }

    /// Stop the worker: interrupt any running JS, cancel timers, free the
    /// runtime and join the thread.
    pub fn terminate(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.terminate.store(true, Ordering::SeqCst);
        if let Some(commands) = self.commands.take() {
            let _ = commands.send(Command::Shutdown);
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!(vat_id = %self.vat_id, "vat worker thread panicked");
            }
        }
    }

    fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, VatWorkerError> {
        let commands = self.commands.as_ref().ok_or_else(|| self.dead_error())?;
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        commands.send(make(reply_tx)).map_err(|_| self.dead_error())?;
        let wait_ms = self.delivery_timeout_ms.saturating_add(CALLER_GRACE_MS);
        // Most answers come within a millisecond. Parking the caller and
        // waking it again costs tens of microseconds (a futex round trip
        // plus an idle CPU's wake-up), so poll first, yielding the CPU
        // between polls, and only then block.
        let spin_until = Instant::now() + Duration::from_micros(CALLER_SPIN_US);
        loop {
            match reply_rx.try_recv() {
                Ok(result) => return result,
                Err(mpsc::TryRecvError::Disconnected) => return Err(self.dead_error()),
                Err(mpsc::TryRecvError::Empty) if Instant::now() < spin_until => std::thread::yield_now(),
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
        match reply_rx.recv_timeout(Duration::from_millis(wait_ms)) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => {
                // Backstop: make the interrupt handler stop whatever runs.
                self.terminate.store(true, Ordering::SeqCst);
                Err(VatWorkerError::Timeout { vat_id: self.vat_id.clone(), timeout_ms: wait_ms })
            }
            Err(RecvTimeoutError::Disconnected) => Err(self.dead_error()),
        }
    }

    fn dead_error(&self) -> VatWorkerError {
        let reason = self.death_reason().unwrap_or_else(|| "worker thread exited".to_string());
        VatWorkerError::Died { vat_id: self.vat_id.clone(), reason }
    }
}

impl Drop for VatWorker {
    fn drop(&mut self) {
        self.stop();
    }
}

// ------------------------------------------------------------------ thread

fn worker_thread(
    opts: WorkerOptions,
    events: Box<dyn Fn(WorkerEvent) + Send>,
    commands: Receiver<Command>,
    commands_tx: Sender<Command>,
    ready: SyncSender<Result<(), VatWorkerError>>,
    terminate: Arc<AtomicBool>,
    death: Arc<Mutex<Option<String>>>,
) {
    let vat_id = opts.vat_id.clone();
    let started = Instant::now();
    let events: Rc<dyn Fn(WorkerEvent)> = Rc::from(events as Box<dyn Fn(WorkerEvent)>);
    let mut runner = match Runner::new(opts, events.clone(), commands_tx, terminate) {
        Ok(runner) => runner,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    tracing::debug!(vat_id = %vat_id, elapsed_us = started.elapsed().as_micros() as u64, "vat runtime ready");
    if ready.send(Ok(())).is_err() {
        return;
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner.run(&commands)));
    let reason = match outcome {
        Ok(Some(reason)) => Some(reason),
        Ok(None) => None,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Some(format!("worker panicked: {message}"))
        }
    };
    if let Some(reason) = reason {
        tracing::warn!(vat_id = %vat_id, %reason, "vat worker died");
        if let Ok(mut d) = death.lock() {
            *d = Some(reason.clone());
        }
        events(WorkerEvent::Died { reason });
    }
    // Answer whatever is still queued, so no caller waits for the backstop.
    while let Ok(command) = commands.try_recv() {
        let reason = death.lock().ok().and_then(|d| d.clone()).unwrap_or_else(|| "terminated".into());
        let err = || VatWorkerError::Died { vat_id: vat_id.clone(), reason: reason.clone() };
        match command {
            Command::Init { reply, .. } | Command::Deliver { reply, .. } => drop(reply.send(Err(err()))),
            Command::Ping { reply } => drop(reply.send(Err(err()))),
            Command::FetchDone { .. } | Command::Shutdown => {}
        }
    }
}

/// State shared between the runner and the host functions it gives to JS.
struct HostState {
    vat_id: String,
    events: Rc<dyn Fn(WorkerEvent)>,
    syscalls: RefCell<Vec<Json>>,
    vatstore: RefCell<VatStore>,
    timers: RefCell<Timers>,
    gc_requested: Cell<bool>,
    /// Abort flags of the fetches in flight, by id.
    fetches: RefCell<HashMap<u64, Arc<AtomicBool>>>,
    /// Live fetch threads (an aborted fetch's thread may outlive its entry
    /// in `fetches`; the limit counts threads).
    fetch_threads: Arc<AtomicUsize>,
    /// Where fetch threads send their outcome.
    commands_tx: Sender<Command>,
    /// While the prelude runs, log records (SES's lockdown chatter about
    /// QuickJS-only intrinsics it removes) go to tracing, not to the kernel.
    starting: Cell<bool>,
    /// What the native `harden` needs (JS values held from Rust). It lives
    /// here, not in the `harden` closure, because a closure owned by a JS
    /// function that holds `Persistent`s is a cycle QuickJS's collector
    /// cannot see: the function, the kit and (through each value's context
    /// reference) the whole realm were never freed, ~400 KB per vat start.
    /// [`Runner`]'s `Drop` takes it before the context goes.
    harden_kit: RefCell<Option<Rc<crate::harden::HardenKit>>>,
}

/// Why a vat cannot go on.
struct Fatal(String);

/// The runtime of one vat. Field order matters: the persistent handle must
/// be dropped before the context, and the context before the runtime.
struct Runner {
    supervisor: Persistent<Object<'static>>,
    ctx: Context,
    rt: Runtime,
    state: Rc<HostState>,
    deadline: Rc<Cell<Option<Instant>>>,
    interrupted: Rc<Cell<bool>>,
    /// Raised by the allocator when the vat asked for more than its limit.
    memory_exceeded: Rc<Cell<bool>>,
    opts: WorkerOptions,
    initialized: bool,
    /// Raised by [`VatWorker::stop`]: no new turn may start.
    terminate: Arc<AtomicBool>,
}

impl Runner {
    fn new(
        opts: WorkerOptions,
        events: Rc<dyn Fn(WorkerEvent)>,
        commands_tx: Sender<Command>,
        terminate: Arc<AtomicBool>,
    ) -> Result<Runner, VatWorkerError> {
        let spawn_err = |reason: String| VatWorkerError::Spawn { vat_id: opts.vat_id.clone(), reason };
        let bytecode = prelude::bytecode().map_err(spawn_err)?;
        let memory_exceeded = Rc::new(Cell::new(false));
        // The limit is armed after the prelude, so that a small limit fails the
        // vat, not startup: start unlimited, then swap in the limit below.
        let limit = Rc::new(Cell::new(0usize));
        let allocator = LimitedAllocator::new(limit.clone(), memory_exceeded.clone());
        let rt = Runtime::new_with_alloc(allocator).map_err(|e| spawn_err(format!("creating the runtime: {e}")))?;
        rt.set_max_stack_size(JS_STACK_BYTES);
        let deadline: Rc<Cell<Option<Instant>>> = Rc::new(Cell::new(None));
        let interrupted = Rc::new(Cell::new(false));
        {
            let terminate = terminate.clone();
            let deadline = deadline.clone();
            let interrupted = interrupted.clone();
            rt.set_interrupt_handler(Some(Box::new(move || {
                let stop = terminate.load(Ordering::Relaxed) || deadline.get().is_some_and(|d| Instant::now() >= d);
                if stop {
                    interrupted.set(true);
                }
                stop
            })));
        }
        let ctx = Context::full(&rt).map_err(|e| spawn_err(format!("creating the context: {e}")))?;
        let state = Rc::new(HostState {
            vat_id: opts.vat_id.clone(),
            events,
            syscalls: RefCell::new(Vec::new()),
            vatstore: RefCell::new(VatStore::default()),
            timers: RefCell::new(Timers::default()),
            gc_requested: Cell::new(false),
            fetches: RefCell::new(HashMap::new()),
            fetch_threads: Arc::new(AtomicUsize::new(0)),
            commands_tx,
            starting: Cell::new(true),
            harden_kit: RefCell::new(None),
        });
        deadline.set(Some(Instant::now() + Duration::from_millis(STARTUP_TIMEOUT_MS)));
        let supervisor = ctx
            .with(|ctx| -> Result<Persistent<Object<'static>>, String> {
                let host = make_host(&ctx, state.clone()).map_err(|e| describe_error(&ctx, e))?;
                ctx.globals().set("__ocapHost", host).map_err(|e| describe_error(&ctx, e))?;
                // SAFETY: the bytes are the output of Module::write by this same
                // QuickJS build (prelude::bytecode), and live for 'static as the
                // ROM_DATA flag of Module::load requires.
                let module = unsafe { Module::load(ctx.clone(), bytecode) }.map_err(|e| describe_error(&ctx, e))?;
                let (_module, promise) = module.eval().map_err(|e| describe_error(&ctx, e))?;
                while ctx.execute_pending_job() {}
                if let Err(e) = promise.finish::<Value>() {
                    return Err(describe_error(&ctx, e));
                }
                let globals = ctx.globals();
                let supervisor: Object = globals.get("__ocapSupervisor").map_err(|e| describe_error(&ctx, e))?;
                globals.remove("__ocapSupervisor").map_err(|e| describe_error(&ctx, e))?;
                Ok(Persistent::save(&ctx, supervisor))
            })
            .map_err(|e| {
                // No runner will exist to release what the prelude's harden holds.
                drop(state.harden_kit.borrow_mut().take());
                spawn_err(format!("evaluating the prelude: {e}"))
            })?;
        deadline.set(None);
        state.starting.set(false);
        limit.set(opts.memory_limit_bytes);
        Ok(Runner {
            supervisor,
            ctx,
            rt,
            state,
            deadline,
            interrupted,
            memory_exceeded,
            opts,
            initialized: false,
            terminate,
        })
    }

    /// Serve commands and timers until the channel closes (returns None) or
    /// the vat dies (returns the reason).
    fn run(&mut self, commands: &Receiver<Command>) -> Option<String> {
        loop {
            // Terminated: start nothing more (a queued fetch outcome or a
            // due timer must not turn a terminate into a death).
            if self.terminate.load(Ordering::SeqCst) {
                return None;
            }
            let next_timer = self.state.timers.borrow().next_deadline();
            let polled = poll_briefly(commands, WORKER_SPIN_US);
            let command = match (polled, next_timer) {
                (Some(c), _) => c,
                (None, None) => match commands.recv() {
                    Ok(c) => c,
                    Err(_) => return None,
                },
                (None, Some(at)) => match commands.recv_timeout(at.saturating_duration_since(Instant::now())) {
                    Ok(c) => c,
                    Err(RecvTimeoutError::Timeout) => {
                        if let Err(Fatal(reason)) = self.fire_due_timers() {
                            return Some(reason);
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return None,
                },
            };
            let fatal = match command {
                Command::Ping { reply } => {
                    let _ = reply.send(Ok(()));
                    None
                }
                Command::Init { config, bundle_text, vatstore, reply } => {
                    let result = self.init(config, bundle_text, vatstore);
                    // Start-up leaves much garbage (bundle evaluation, liveslots set-up);
                    // collect it now so an idle vat holds only what it uses.
                    self.rt.run_gc();
                    self.answer(reply, result)
                }
                Command::Deliver { delivery, reply } => {
                    let result = self.deliver(delivery);
                    self.answer(reply, result)
                }
                Command::FetchDone { id, outcome } => self.settle_fetch(id, outcome).err(),
                Command::Shutdown => return None,
            };
            if let Some(Fatal(reason)) = fatal {
                return Some(reason);
            }
        }
    }

    fn answer(
        &self,
        reply: Reply<DeliveryReply>,
        result: Result<Result<DeliveryReply, VatWorkerError>, Fatal>,
    ) -> Option<Fatal> {
        match result {
            Ok(r) => {
                let _ = reply.send(r);
                None
            }
            Err(Fatal(reason)) => {
                let _ =
                    reply.send(Err(VatWorkerError::Died { vat_id: self.opts.vat_id.clone(), reason: reason.clone() }));
                Some(Fatal(reason))
            }
        }
    }

    fn vat_id(&self) -> String {
        self.opts.vat_id.clone()
    }

    /// The outer Result is the vat's life; the inner one the caller's answer.
    fn init(
        &mut self,
        config: Json,
        bundle_text: Option<String>,
        vatstore: Vec<(String, String)>,
    ) -> Result<Result<DeliveryReply, VatWorkerError>, Fatal> {
        let prepared = self.prepare_init(&config, bundle_text);
        let (code, requested) = match prepared {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        self.initialized = true;
        self.state.vatstore.borrow_mut().load(vatstore);
        let config_text = config.to_string();
        let requested_text = Json::from(requested).to_string();
        let vat_id = self.vat_id();
        self.run_delivery(move |_ctx, sup| {
            let f: Function = sup.get("initVat")?;
            f.call::<_, ()>((vat_id, config_text, code, requested_text))
        })
        .map(Ok)
    }

    fn prepare_init(
        &self,
        config: &Json,
        bundle_text: Option<String>,
    ) -> Result<(String, Vec<String>), VatWorkerError> {
        let vat_id = self.vat_id();
        if self.initialized {
            return Err(VatWorkerError::AlreadyInitialized { vat_id });
        }
        let bad = |reason: &str| VatWorkerError::BadConfig { vat_id: vat_id.clone(), reason: reason.to_string() };
        let object = config.as_object().ok_or_else(|| bad("vatConfig must be an object"))?;
        if let Some(p) = object.get("parameters") {
            if !p.is_object() && !p.is_null() {
                return Err(bad("parameters must be an object"));
            }
        }
        let mut requested = Vec::new();
        if let Some(globals) = object.get("globals") {
            let list = globals.as_array().ok_or_else(|| bad("globals must be an array of names"))?;
            for name in list {
                let name = name.as_str().ok_or_else(|| bad("globals must be an array of names"))?;
                let allowed = ALLOWED_GLOBAL_NAMES.contains(&name)
                    && self.opts.allowed_globals.as_ref().is_none_or(|a| a.iter().any(|n| n == name));
                if !allowed {
                    return Err(VatWorkerError::UnknownGlobal { vat_id, name: name.to_string() });
                }
                if name == "fetch" {
                    match object.get("network").and_then(|n| n.get("allowedHosts")) {
                        None => return Err(VatWorkerError::FetchWithoutAllowedHosts { vat_id }),
                        Some(Json::Array(hosts)) if hosts.iter().all(Json::is_string) => {}
                        Some(_) => return Err(bad("network.allowedHosts must be an array of host names")),
                    }
                }
                if !IMPLEMENTED_GLOBAL_NAMES.contains(&name) {
                    return Err(VatWorkerError::UnimplementedGlobal { vat_id, name: name.to_string() });
                }
                if !requested.iter().any(|n| n == name) {
                    requested.push(name.to_string());
                }
            }
        }
        let text = match bundle_text {
            Some(text) => text,
            None => {
                let spec = match object.get("bundleSpec") {
                    Some(Json::String(spec)) => spec,
                    Some(_) => return Err(bad("bundleSpec must be a string")),
                    None => return Err(bad(
                        "for now, only bundleSpec is supported in vatConfig specifications (or pass the bundle text)",
                    )),
                };
                bundle::read_bundle_spec(&vat_id, spec, bundle::DEFAULT_MAX_BUNDLE_BYTES)?
            }
        };
        let code = bundle::parse_bundle(&text)?;
        Ok((code, requested))
    }

    fn deliver(&mut self, delivery: Json) -> Result<Result<DeliveryReply, VatWorkerError>, Fatal> {
        let vat_id = self.vat_id();
        if !self.initialized {
            return Ok(Err(VatWorkerError::NotInitialized { vat_id }));
        }
        if delivery.as_array().and_then(|a| a.first()).and_then(Json::as_str).is_none() {
            return Ok(Err(VatWorkerError::BadDelivery {
                vat_id,
                reason: "expected a JSON array whose first element is the delivery type".into(),
            }));
        }
        let text = delivery.to_string();
        self.run_delivery(move |_ctx, sup| {
            let f: Function = sup.get("deliver")?;
            f.call::<_, ()>((text,))
        })
        .map(Ok)
    }

    /// Start a delivery with `start`, run the vat to quiescence, and collect
    /// what it did.
    fn run_delivery(
        &mut self,
        start: impl for<'js> FnOnce(&Ctx<'js>, &Object<'js>) -> rquickjs::Result<()>,
    ) -> Result<DeliveryReply, Fatal> {
        self.arm_deadline();
        let result = self.run_delivery_inner(start);
        self.deadline.set(None);
        self.check_memory()?;
        let error = result?;
        let syscalls = std::mem::take(&mut *self.state.syscalls.borrow_mut());
        let (vatstore_sets, vatstore_deletes) = self.state.vatstore.borrow_mut().checkpoint();
        self.check_memory()?;
        Ok(DeliveryReply { syscalls, vatstore_sets, vatstore_deletes, error })
    }

    fn run_delivery_inner(
        &mut self,
        start: impl for<'js> FnOnce(&Ctx<'js>, &Object<'js>) -> rquickjs::Result<()>,
    ) -> Result<Option<String>, Fatal> {
        self.call_supervisor(|ctx, sup| start(ctx, sup))?;
        self.drive()?;
        let outcome = self.call_supervisor(|_ctx, sup| {
            let f: Function = sup.get("deliveryOutcome")?;
            f.call::<_, String>(())
        })?;
        let outcome: Json = serde_json::from_str(&outcome).map_err(|e| Fatal(format!("bad delivery outcome: {e}")))?;
        let done = outcome.get("done").and_then(Json::as_bool).unwrap_or(false);
        let error = outcome.get("error").and_then(Json::as_str).map(str::to_string);
        if let Some(message) = &error {
            if is_out_of_memory(message) {
                return Err(Fatal(format!("memory limit of {} bytes exceeded", self.opts.memory_limit_bytes)));
            }
            tracing::debug!(vat_id = %self.opts.vat_id, %message, "delivery error");
        }
        if !done {
            return Ok(Some("delivery did not complete: the vat became quiescent before liveslots finished".into()));
        }
        Ok(error)
    }

    fn arm_deadline(&self) {
        self.interrupted.set(false);
        self.deadline.set(Some(Instant::now() + Duration::from_millis(self.opts.delivery_timeout_ms)));
    }

    /// Call into the supervisor; a JS exception here is a worker failure
    /// (the supervisor catches everything the vat can throw).
    fn call_supervisor<R>(
        &self,
        f: impl for<'js> FnOnce(&Ctx<'js>, &Object<'js>) -> rquickjs::Result<R>,
    ) -> Result<R, Fatal> {
        let result = self.ctx.with(|ctx| {
            let sup = self.supervisor.clone().restore(&ctx).map_err(|e| describe_error(&ctx, e))?;
            f(&ctx, &sup).map_err(|e| describe_error(&ctx, e))
        });
        match result {
            Ok(r) => Ok(r),
            Err(message) => Err(self.fatal_from(message)),
        }
    }

    fn fatal_from(&self, message: String) -> Fatal {
        if self.interrupted.get() {
            Fatal(format!(
                "interrupted: delivery exceeded its budget of {} ms (or the worker was terminated)",
                self.opts.delivery_timeout_ms
            ))
        } else if self.memory_exceeded.get() || is_out_of_memory(&message) {
            Fatal(format!("memory limit of {} bytes exceeded", self.opts.memory_limit_bytes))
        } else {
            Fatal(format!("supervisor error: {message}"))
        }
    }

    /// Run the vat until quiescent: job queue empty and no waiter left.
    fn drive(&self) -> Result<(), Fatal> {
        loop {
            loop {
                match self.rt.execute_pending_job() {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(exception) => {
                        let message = exception.0.with(|ctx| describe_value(&ctx.catch()));
                        if self.interrupted.get() || self.memory_exceeded.get() || is_out_of_memory(&message) {
                            return Err(self.fatal_from(message));
                        }
                        tracing::warn!(vat_id = %self.opts.vat_id, %message, "exception in a vat job");
                    }
                }
                if self.interrupted.get() {
                    return Err(self.fatal_from(String::new()));
                }
            }
            if self.state.gc_requested.replace(false) {
                self.rt.run_gc();
                continue;
            }
            let ran = self.call_supervisor(|_ctx, sup| {
                let f: Function = sup.get("runMacrotask")?;
                f.call::<_, bool>(())
            })?;
            if !ran {
                return Ok(());
            }
        }
    }

    fn check_memory(&self) -> Result<(), Fatal> {
        if self.memory_exceeded.get() {
            return Err(Fatal(format!("memory limit of {} bytes exceeded", self.opts.memory_limit_bytes)));
        }
        Ok(())
    }

    fn fire_due_timers(&mut self) -> Result<(), Fatal> {
        loop {
            let due = self.state.timers.borrow_mut().pop_due(Instant::now());
            let Some(id) = due else { return Ok(()) };
            self.run_turn(|_ctx, sup| {
                let f: Function = sup.get("fireTimer")?;
                f.call::<_, ()>((id as f64,))
            })?;
        }
    }

    /// Settle the JS promise of fetch `id` (unless it was aborted).
    fn settle_fetch(&mut self, id: u64, outcome: Result<FetchResponse, String>) -> Result<(), Fatal> {
        if self.state.fetches.borrow_mut().remove(&id).is_none() {
            return Ok(());
        }
        self.run_turn(move |ctx, sup| {
            let f: Function = sup.get("fetchSettled")?;
            match outcome {
                Ok(response) => {
                    let json = response.outcome_json();
                    let body = ArrayBuffer::new(ctx.clone(), response.body)?;
                    f.call::<_, ()>((id as f64, json, body))
                }
                Err(error) => {
                    let json = serde_json::json!({"ok": false, "error": error}).to_string();
                    f.call::<_, ()>((id as f64, json))
                }
            }
        })
    }

    /// A turn outside any delivery (a timer, a fetch outcome): run `start`,
    /// drive the vat to quiescence, and send its syscalls as
    /// [`WorkerEvent::AsyncSyscalls`].
    fn run_turn(
        &mut self,
        start: impl for<'js> FnOnce(&Ctx<'js>, &Object<'js>) -> rquickjs::Result<()>,
    ) -> Result<(), Fatal> {
        self.arm_deadline();
        let result = self.call_supervisor(|ctx, sup| start(ctx, sup)).and_then(|()| self.drive());
        self.deadline.set(None);
        result?;
        let syscalls = std::mem::take(&mut *self.state.syscalls.borrow_mut());
        self.check_memory()?;
        if !syscalls.is_empty() {
            (self.state.events)(WorkerEvent::AsyncSyscalls { syscalls });
        }
        Ok(())
    }
}

impl Drop for Runner {
    /// Teardown: abort the vat's in-flight fetches (their outcomes are
    /// dropped and bodies being read are abandoned). Timers die with the
    /// runner.
    fn drop(&mut self) {
        for (_, abort) in self.state.fetches.borrow_mut().drain() {
            abort.store(true, Ordering::SeqCst);
        }
        // Release the JS values held from Rust while the runtime is alive, so that
        // freeing the context can collect everything (see `HostState::harden_kit`).
        drop(self.state.harden_kit.borrow_mut().take());
    }
}

fn is_out_of_memory(message: &str) -> bool {
    message.contains("out of memory")
}

fn describe_error(ctx: &Ctx<'_>, error: rquickjs::Error) -> String {
    if error.is_exception() {
        describe_value(&ctx.catch())
    } else {
        error.to_string()
    }
}

fn describe_value(value: &Value<'_>) -> String {
    if let Some(object) = value.as_object() {
        let message: Option<String> = object.get("message").ok();
        let name: Option<String> = object.get("name").ok();
        let stack: Option<String> = object.get("stack").ok();
        match (name, message) {
            (Some(name), Some(message)) => {
                let mut s = format!("{name}: {message}");
                if let Some(stack) = stack {
                    s.push('\n');
                    s.push_str(&stack);
                }
                s
            }
            (None, Some(message)) => message,
            _ => "[object]".into(),
        }
    } else if let Some(s) = value.as_string() {
        s.to_string().unwrap_or_default()
    } else {
        format!("{value:?}")
    }
}

// ------------------------------------------------------------------ host functions

fn throw(ctx: &Ctx<'_>, message: &str) -> rquickjs::Error {
    rquickjs::Exception::throw_message(ctx, message)
}

/// The object the prelude takes as `globalThis.__ocapHost`.
fn make_host<'js>(ctx: &Ctx<'js>, state: Rc<HostState>) -> rquickjs::Result<Object<'js>> {
    let host = Object::new(ctx.clone())?;

    let s = state.clone();
    host.set(
        "syscall",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, json: String| -> rquickjs::Result<()> {
            let vso: Json = serde_json::from_str(&json).map_err(|e| throw(&ctx, &format!("bad syscall JSON: {e}")))?;
            let mut syscalls = s.syscalls.borrow_mut();
            if syscalls.len() >= MAX_SYSCALLS_PER_DELIVERY {
                return Err(throw(
                    &ctx,
                    &format!("vat {} exceeded {MAX_SYSCALLS_PER_DELIVERY} syscalls in one delivery", s.vat_id),
                ));
            }
            syscalls.push(vso);
            Ok(())
        })?,
    )?;

    let s = state.clone();
    host.set(
        "log",
        Function::new(ctx.clone(), move |level: String, tags: String, message: String, data: String| {
            let tags: Vec<String> = serde_json::from_str(&tags).unwrap_or_default();
            let data: Vec<Json> = serde_json::from_str(&data).unwrap_or_default();
            if s.starting.get() {
                tracing::debug!(vat_id = %s.vat_id, %level, ?tags, %message, ?data, "vat prelude log");
                return;
            }
            tracing::trace!(vat_id = %s.vat_id, %level, ?tags, %message, "vat log");
            (s.events)(WorkerEvent::Log { level, tags, message, data });
        })?,
    )?;

    let s = state.clone();
    host.set("vatstoreGet", Function::new(ctx.clone(), move |key: String| s.vatstore.borrow().get(&key))?)?;
    let s = state.clone();
    host.set(
        "vatstoreGetNextKey",
        Function::new(ctx.clone(), move |key: String| s.vatstore.borrow().get_next_key(&key))?,
    )?;
    let s = state.clone();
    host.set(
        "vatstoreSet",
        Function::new(ctx.clone(), move |key: String, value: String| s.vatstore.borrow_mut().set(key, value))?,
    )?;
    let s = state.clone();
    host.set("vatstoreDelete", Function::new(ctx.clone(), move |key: String| s.vatstore.borrow_mut().delete(key))?)?;

    let s = state.clone();
    host.set(
        "timerSet",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, id: f64, ms: f64, repeat: bool| -> rquickjs::Result<()> {
            let mut timers = s.timers.borrow_mut();
            if timers.len() >= MAX_TIMERS_PER_VAT {
                return Err(throw(&ctx, &format!("vat {} has too many timers (limit {MAX_TIMERS_PER_VAT})", s.vat_id)));
            }
            let ms = if ms.is_finite() && ms > 0.0 { ms.min(u32::MAX as f64) as u64 } else { 0 };
            timers.set(id as u64, Duration::from_millis(ms), repeat);
            Ok(())
        })?,
    )?;
    let s = state.clone();
    host.set("timerClear", Function::new(ctx.clone(), move |id: f64| s.timers.borrow_mut().clear(id as u64))?)?;

    let s = state.clone();
    host.set("requestGC", Function::new(ctx.clone(), move || s.gc_requested.set(true))?)?;

    add_web_host_functions(ctx, &host, state.clone())?;

    // The native `harden` (src/harden.rs), built by js/src/prelude/harden.js
    // before SES loads.
    let s = state;
    host.set(
        "makeNativeHarden",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  hardened: Object<'js>,
                  has: Function<'js>,
                  add: Function<'js>,
                  freeze_typed_array: Function<'js>|
                  -> rquickjs::Result<Function<'js>> {
                let kit = crate::harden::HardenKit {
                    hardened: Persistent::save(&ctx, hardened),
                    has: Persistent::save(&ctx, has),
                    add: Persistent::save(&ctx, add),
                    freeze_typed_array: Persistent::save(&ctx, freeze_typed_array),
                };
                s.harden_kit.replace(Some(Rc::new(kit)));
                // The closure holds only the host state, never JS values (see
                // `HostState::harden_kit`).
                let s = s.clone();
                let harden = Function::new(ctx.clone(), move |ctx: Ctx<'js>, root: Value<'js>| {
                    // Cloned out so no borrow is held while harden runs JS (a proxy
                    // trap may harden again).
                    let kit = s.harden_kit.borrow().clone();
                    match kit {
                        Some(kit) => crate::harden::harden(&ctx, &kit, root),
                        None => Err(throw(&ctx, "harden: the vat is being torn down")),
                    }
                })?;
                harden.set_name("harden")?;
                Ok(harden)
            },
        )?,
    )?;
    Ok(host)
}

/// Copy the bytes of an ArrayBuffer argument.
fn buffer_bytes(ctx: &Ctx<'_>, value: &Value<'_>, what: &str) -> rquickjs::Result<Vec<u8>> {
    let buffer = ArrayBuffer::from_value(value.clone())
        .ok_or_else(|| throw(ctx, &format!("{what}: expected an ArrayBuffer")))?;
    // SAFETY: the slice is copied at once, before any JS can run and detach
    // or resize the buffer.
    let bytes = unsafe { buffer.as_bytes() }.ok_or_else(|| throw(ctx, &format!("{what}: detached ArrayBuffer")))?;
    Ok(bytes.to_vec())
}

/// Host functions behind `crypto`, `SubtleCrypto.digest`, `fetch` and the
/// body text codec (js/src/web/*.js).
fn add_web_host_functions<'js>(ctx: &Ctx<'js>, host: &Object<'js>, state: Rc<HostState>) -> rquickjs::Result<()> {
    host.set(
        "randomBytes",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, n: f64| -> rquickjs::Result<ArrayBuffer<'js>> {
            if !(0.0..=65536.0).contains(&n) {
                return Err(throw(&ctx, "randomBytes: at most 65536 bytes"));
            }
            let mut bytes = vec![0u8; n as usize];
            getrandom::fill(&mut bytes).map_err(|e| throw(&ctx, &format!("no randomness from the OS: {e}")))?;
            ArrayBuffer::new(ctx, bytes)
        })?,
    )?;
    host.set(
        "digest",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, algorithm: String, data: Value<'js>| -> rquickjs::Result<ArrayBuffer<'js>> {
                use sha2::Digest;
                let bytes = buffer_bytes(&ctx, &data, "digest")?;
                let hash: Vec<u8> = match algorithm.as_str() {
                    "SHA-1" => sha1::Sha1::digest(&bytes).to_vec(),
                    "SHA-256" => sha2::Sha256::digest(&bytes).to_vec(),
                    "SHA-384" => sha2::Sha384::digest(&bytes).to_vec(),
                    "SHA-512" => sha2::Sha512::digest(&bytes).to_vec(),
                    other => return Err(throw(&ctx, &format!("Unrecognized digest algorithm: {other}"))),
                };
                ArrayBuffer::new(ctx, hash)
            },
        )?,
    )?;
    host.set(
        "utf8Encode",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, text: String| ArrayBuffer::new(ctx, text.into_bytes()))?,
    )?;
    host.set(
        "utf8Decode",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, data: Value<'js>| -> rquickjs::Result<String> {
            let bytes = buffer_bytes(&ctx, &data, "utf8Decode")?;
            Ok(String::from_utf8_lossy(bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes)).into_owned())
        })?,
    )?;

    let s = state.clone();
    host.set(
        "fetchStart",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, id: f64, spec: String, body: Value<'js>| -> rquickjs::Result<()> {
                let spec: FetchSpec =
                    serde_json::from_str(&spec).map_err(|e| throw(&ctx, &format!("bad fetch request: {e}")))?;
                let body = if body.is_undefined() { None } else { Some(buffer_bytes(&ctx, &body, "fetch body")?) };
                if s.fetch_threads.load(Ordering::SeqCst) >= MAX_FETCHES_PER_VAT {
                    return Err(throw(
                        &ctx,
                        &format!("vat {} has too many fetches in flight (limit {MAX_FETCHES_PER_VAT})", s.vat_id),
                    ));
                }
                let id = id as u64;
                let abort = Arc::new(AtomicBool::new(false));
                let tx = s.commands_tx.clone();
                net::spawn_fetch(spec, body, abort.clone(), s.fetch_threads.clone(), move |outcome| {
                    let _ = tx.send(Command::FetchDone { id, outcome });
                })
                .map_err(|e| throw(&ctx, &format!("cannot start a fetch thread: {e}")))?;
                s.fetches.borrow_mut().insert(id, abort);
                Ok(())
            },
        )?,
    )?;
    let s = state;
    host.set(
        "fetchAbort",
        Function::new(ctx.clone(), move |id: f64| {
            if let Some(abort) = s.fetches.borrow_mut().remove(&(id as u64)) {
                abort.store(true, Ordering::SeqCst);
            }
        })?,
    )?;
    Ok(())
}

// ------------------------------------------------------------------ timers

/// The vat's timers, ordered by deadline (ties in creation order).
#[derive(Default)]
struct Timers {
    queue: BTreeMap<(Instant, u64), u64>,
    entries: HashMap<u64, TimerEntry>,
    seq: u64,
}

struct TimerEntry {
    key: (Instant, u64),
    interval: Option<Duration>,
}

impl Timers {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn set(&mut self, id: u64, delay: Duration, repeat: bool) {
        self.clear(id);
        self.schedule(id, Instant::now() + delay, repeat.then_some(delay));
    }

    fn schedule(&mut self, id: u64, at: Instant, interval: Option<Duration>) {
        self.seq += 1;
        let key = (at, self.seq);
        self.queue.insert(key, id);
        self.entries.insert(id, TimerEntry { key, interval });
    }

    fn clear(&mut self, id: u64) {
        if let Some(entry) = self.entries.remove(&id) {
            self.queue.remove(&entry.key);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.queue.keys().next().map(|(at, _)| *at)
    }

    /// The next timer due at `now`, rescheduling it if it repeats.
    fn pop_due(&mut self, now: Instant) -> Option<u64> {
        let (&key, &id) = self.queue.iter().next()?;
        if key.0 > now {
            return None;
        }
        self.queue.remove(&key);
        let entry = self.entries.remove(&id)?;
        if let Some(interval) = entry.interval {
            self.schedule(id, now + interval, Some(interval));
        }
        Some(id)
    }
}
