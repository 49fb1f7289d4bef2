//! [`VatWorker`]: the caller's side of a vat worker (normally the kernel's run loop).
//!
//! Every call is a [`Command`] posted to the vat's thread and a wait for its answer, bounded
//! by the delivery budget plus a grace period: whatever the vat does, the caller never
//! hangs. Nothing here touches the runtime, which only its own thread may.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use super::spin::poll_briefly;
use super::thread::worker_thread;
use super::{Command, DeliveryEvent, Reply, CALLER_GRACE_MS, STARTUP_TIMEOUT_MS};
use crate::{DeliveryReply, VatWorkerError, WorkerEvent, WorkerOptions};

/// Stack of the worker thread (QuickJS may use part of it: `runner::JS_STACK_BYTES`).
const THREAD_STACK_BYTES: usize = 16 * 1024 * 1024;
/// How long a caller polls for the worker's answer before it blocks.
const CALLER_SPIN_US: u64 = 1_000;

/// A call posted to the worker whose reply has not been taken yet.
struct Pending<T>(Receiver<Result<T, VatWorkerError>>);

/// A delivery started by [`VatWorker::post_deliver`]; [`VatWorker::wait`] takes its reply.
/// Dropping it drops the reply (the delivery still runs to its end in the vat).
pub struct PendingReply(Receiver<DeliveryEvent>);

impl std::fmt::Debug for PendingReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingReply")
    }
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
        let pending = self.post_deliver(delivery)?;
        self.wait(pending)
    }

    /// [`VatWorker::deliver`], handing the delivery's syscalls to `on_syscalls` as the vat
    /// makes them, in chunks, while it runs on (the kernel applies them meanwhile: a
    /// delivery that sends many messages does not leave them all for after its end). The
    /// reply holds the syscalls made after the last chunk; all of them, in order, are the
    /// chunks followed by the reply's. A delivery that fails may have handed some over.
    pub fn deliver_streaming(
        &self,
        delivery: Json,
        on_syscalls: &mut dyn FnMut(Vec<Json>),
    ) -> Result<DeliveryReply, VatWorkerError> {
        let pending = self.post_deliver(delivery)?;
        self.wait_streaming(pending, on_syscalls)
    }

    /// [`VatWorker::deliver`] in two halves: the delivery starts now on the vat's thread,
    /// and [`VatWorker::wait`] takes its reply. Meanwhile the caller may do other work (the
    /// kernel runs another vat's delivery: `docs/cranks.md`, overlapping deliveries).
    /// Commands run in the order they are posted, so a later call waits behind this one.
    pub fn post_deliver(&self, delivery: Json) -> Result<PendingReply, VatWorkerError> {
        let commands = self.commands.as_ref().ok_or_else(|| self.dead_error())?;
        let (events, events_rx) = mpsc::channel();
        commands.send(Command::Deliver { delivery, events }).map_err(|_| self.dead_error())?;
        Ok(PendingReply(events_rx))
    }

    /// The reply of a delivery started by [`VatWorker::post_deliver`], with the same
    /// bound as [`VatWorker::deliver`] (the delivery budget plus a grace period, counted
    /// from now). Its `syscalls` are all the delivery made.
    pub fn wait(&self, pending: PendingReply) -> Result<DeliveryReply, VatWorkerError> {
        let mut early = Vec::new();
        let mut reply = self.wait_streaming(pending, &mut |chunk| early.extend(chunk))?;
        if !early.is_empty() {
            early.append(&mut reply.syscalls);
            reply.syscalls = early;
        }
        Ok(reply)
    }

    /// [`VatWorker::wait`], handing the syscalls over as they come
    /// ([`VatWorker::deliver_streaming`]).
    pub fn wait_streaming(
        &self,
        pending: PendingReply,
        on_syscalls: &mut dyn FnMut(Vec<Json>),
    ) -> Result<DeliveryReply, VatWorkerError> {
        let events = pending.0;
        let wait = Duration::from_millis(self.delivery_timeout_ms.saturating_add(CALLER_GRACE_MS));
        let deadline = Instant::now() + wait;
        // Most answers come within a millisecond: poll first (`spin.rs`). Once a chunk has
        // come, the delivery is a long one: block, and leave the cores to the vat.
        let mut spin = Duration::from_micros(CALLER_SPIN_US);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timed_out(wait));
            }
            let event = match receive(&events, spin, left) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => return Err(self.timed_out(wait)),
                Err(RecvTimeoutError::Disconnected) => return Err(self.dead_error()),
            };
            spin = Duration::ZERO;
            match event {
                DeliveryEvent::Syscalls(chunk) => on_syscalls(chunk),
                DeliveryEvent::Done(result) => return result,
            }
        }
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
        let reply_rx = self.post(make)?.0;
        self.wait_for(reply_rx)
    }

    fn post<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<Pending<T>, VatWorkerError> {
        let commands = self.commands.as_ref().ok_or_else(|| self.dead_error())?;
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        commands.send(make(reply_tx)).map_err(|_| self.dead_error())?;
        Ok(Pending(reply_rx))
    }

    fn wait_for<T>(&self, reply_rx: Receiver<Result<T, VatWorkerError>>) -> Result<T, VatWorkerError> {
        let wait = Duration::from_millis(self.delivery_timeout_ms.saturating_add(CALLER_GRACE_MS));
        // Most answers come within a millisecond: poll first (`spin.rs`).
        match receive(&reply_rx, Duration::from_micros(CALLER_SPIN_US), wait) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(self.timed_out(wait)),
            Err(RecvTimeoutError::Disconnected) => Err(self.dead_error()),
        }
    }

    /// The caller waited `wait` in vain: the backstop makes the interrupt handler stop
    /// whatever runs.
    fn timed_out(&self, wait: Duration) -> VatWorkerError {
        self.terminate.store(true, Ordering::SeqCst);
        let timeout_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        VatWorkerError::Timeout { vat_id: self.vat_id.clone(), timeout_ms }
    }

    fn dead_error(&self) -> VatWorkerError {
        let reason = self.death_reason().unwrap_or_else(|| "worker thread exited".to_string());
        VatWorkerError::Died { vat_id: self.vat_id.clone(), reason }
    }
}

/// The caller's wait for the worker: polls `rx` for `spin` (`spin.rs`), then blocks for up to
/// `left`. A `wait-vat` span of the timeline (`ocap bench --timeline`).
fn receive<T>(rx: &Receiver<T>, spin: Duration, left: Duration) -> Result<T, RecvTimeoutError> {
    ocap_abi::timeline::span("wait-vat", || match poll_briefly(rx, spin) {
        Some(v) => Ok(v),
        None => rx.recv_timeout(left),
    })
}

impl Drop for VatWorker {
    fn drop(&mut self) {
        self.stop();
    }
}
