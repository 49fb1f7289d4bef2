//! `Runner`: the QuickJS runtime of one vat, and the loop that serves its thread.
//!
//! The runtime is built here with the vat's limits wired in: the allocator that enforces the
//! memory limit (armed only after the prelude, so a small limit fails the vat, not its
//! start), and the interrupt handler that stops JS past a turn's deadline or on terminate.
//! The loop then takes commands and fires due timers, one turn at a time.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rquickjs::{Context, Module, Object, Persistent, Runtime, Value};

use super::host::make_host;
use super::host_state::HostState;
use super::js_error::describe_error;
use super::spin::{poll_briefly, AdaptiveSpin};
use super::timer_queue::Timers;
use super::{Command, DeliveryEvent, Fatal, STARTUP_TIMEOUT_MS};
use crate::memory::LimitedAllocator;
use crate::vatstore::VatStore;
use crate::{prelude, DeliveryReply, VatWorkerError, WorkerEvent, WorkerOptions};

/// The part of the worker thread's stack QuickJS may use.
const JS_STACK_BYTES: usize = 8 * 1024 * 1024;

/// The runtime of one vat. Field order matters: the persistent handle must
/// be dropped before the context, and the context before the runtime.
pub(super) struct Runner {
    pub(super) supervisor: Persistent<Object<'static>>,
    pub(super) ctx: Context,
    pub(super) rt: Runtime,
    pub(super) state: Rc<HostState>,
    pub(super) deadline: Rc<Cell<Option<Instant>>>,
    pub(super) interrupted: Rc<Cell<bool>>,
    /// Raised by the allocator when the vat asked for more than its limit.
    pub(super) memory_exceeded: Rc<Cell<bool>>,
    pub(super) opts: WorkerOptions,
    pub(super) initialized: bool,
    /// Raised by `VatWorker::stop`: no new turn may start.
    pub(super) terminate: Arc<AtomicBool>,
}

impl Runner {
    pub(super) fn new(
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
            syscall_count: Cell::new(0),
            syscall_stream: RefCell::new(None),
            vatstore: RefCell::new(VatStore::default()),
            timers: RefCell::new(Timers::default()),
            gc_requested: Cell::new(false),
            fetches: RefCell::new(HashMap::new()),
            fetch_threads: Arc::new(AtomicUsize::new(0)),
            commands_tx,
            starting: Cell::new(true),
            harden_kit: RefCell::new(None),
            pass_style_kit: RefCell::new(None),
            max_syscalls_per_delivery: opts.max_syscalls_per_delivery,
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
                drop(state.pass_style_kit.borrow_mut().take());
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
    pub(super) fn run(&mut self, commands: &Receiver<Command>) -> Option<String> {
        let mut spin = AdaptiveSpin::new();
        loop {
            // Terminated: start nothing more (a queued fetch outcome or a
            // due timer must not turn a terminate into a death).
            if self.terminate.load(Ordering::SeqCst) {
                return None;
            }
            let next_timer = self.state.timers.borrow().next_deadline();
            let waiting_since = Instant::now();
            // Never poll past the next timer: it fires on time, and then the wait ends.
            let budget = match next_timer {
                Some(at) => spin.budget().min(at.saturating_duration_since(waiting_since)),
                None => spin.budget(),
            };
            let polled = poll_briefly(commands, budget);
            let command = match (polled, next_timer) {
                (Some(c), _) => c,
                (None, None) => match commands.recv() {
                    Ok(c) => c,
                    Err(_) => return None,
                },
                (None, Some(at)) => match commands.recv_timeout(at.saturating_duration_since(Instant::now())) {
                    Ok(c) => c,
                    Err(RecvTimeoutError::Timeout) => {
                        // A timer, not a command, ended the wait: the pace of commands is
                        // unknown again, so the next wait polls only briefly.
                        spin.reset();
                        if let Err(Fatal(reason)) = self.fire_due_timers() {
                            return Some(reason);
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return None,
                },
            };
            spin.observe(waiting_since.elapsed());
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
                    self.answer(|r| drop(reply.send(r)), result)
                }
                Command::Deliver { delivery, events } => {
                    let result = ocap_abi::timeline::span("delivery", || self.deliver(delivery, &events));
                    self.answer(|r| drop(events.send(DeliveryEvent::Done(r))), result)
                }
                Command::FetchDone { id, outcome } => self.settle_fetch(id, outcome).err(),
                Command::Shutdown => return None,
            };
            if let Some(Fatal(reason)) = fatal {
                return Some(reason);
            }
        }
    }

    /// Sends the caller its answer through `send` (a fatal error as `Died`) and returns the
    /// fatal error, if any, that ends the worker.
    fn answer(
        &self,
        send: impl FnOnce(Result<DeliveryReply, VatWorkerError>),
        result: Result<Result<DeliveryReply, VatWorkerError>, Fatal>,
    ) -> Option<Fatal> {
        match result {
            Ok(r) => {
                send(r);
                None
            }
            Err(Fatal(reason)) => {
                send(Err(VatWorkerError::Died { vat_id: self.opts.vat_id.clone(), reason: reason.clone() }));
                Some(Fatal(reason))
            }
        }
    }

    pub(super) fn vat_id(&self) -> String {
        self.opts.vat_id.clone()
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
        drop(self.state.pass_style_kit.borrow_mut().take());
    }
}
