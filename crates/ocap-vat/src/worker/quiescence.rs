//! Turns and quiescence. A turn starts something in the supervisor (a delivery, a timer
//! callback, a fetch outcome) under the turn's deadline, then runs the vat until it is
//! quiescent: QuickJS's job queue empty and no `waitUntilQuiescent` waiter left
//! (`Runner::drive`). A delivery's syscalls and vatstore checkpoint go back in its reply;
//! the syscalls of any other turn go out as [`WorkerEvent::AsyncSyscalls`]. The turns that are
//! not deliveries (due timers, fetch outcomes) are started here too, with the JS calls
//! `timers.rs` and `fetch.rs` make, so those files never name the `Runner`.
//!
//! A JS exception that escapes the supervisor, an interrupt and an exhausted memory limit
//! are [`Fatal`]: the supervisor catches everything the vat itself can throw.

use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use rquickjs::{Ctx, Function, Object};
use serde_json::Value as Json;

use super::js_error::{describe_error, describe_value, is_out_of_memory};
use super::runner::Runner;
use super::{fetch, timers, DeliveryEvent, Fatal};
use crate::net::FetchResponse;
use crate::{DeliveryReply, VatWorkerError, WorkerEvent};

impl Runner {
    /// Runs `delivery`; syscalls go to `events` in chunks of `SYSCALL_CHUNK` as the vat makes
    /// them (the rest with the reply, which the caller sends).
    pub(super) fn deliver(
        &mut self,
        delivery: Json,
        events: &Sender<DeliveryEvent>,
    ) -> Result<Result<DeliveryReply, VatWorkerError>, Fatal> {
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
        *self.state.syscall_stream.borrow_mut() = Some(events.clone());
        let result = self.run_delivery(move |_ctx, sup| {
            let f: Function = sup.get("deliver")?;
            f.call::<_, ()>((text,))
        });
        self.state.syscall_stream.borrow_mut().take();
        result.map(Ok)
    }

    /// Start a delivery with `start`, run the vat to quiescence, and collect
    /// what it did.
    pub(super) fn run_delivery(
        &mut self,
        start: impl for<'js> FnOnce(&Ctx<'js>, &Object<'js>) -> rquickjs::Result<()>,
    ) -> Result<DeliveryReply, Fatal> {
        self.arm_deadline();
        let result = self.run_delivery_inner(start);
        self.deadline.set(None);
        self.check_memory()?;
        let error = result?;
        let syscalls = self.state.take_syscalls();
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

    /// A turn outside any delivery (a timer, a fetch outcome): run `start`,
    /// drive the vat to quiescence, and send its syscalls as
    /// [`WorkerEvent::AsyncSyscalls`].
    pub(super) fn run_turn(
        &mut self,
        start: impl for<'js> FnOnce(&Ctx<'js>, &Object<'js>) -> rquickjs::Result<()>,
    ) -> Result<(), Fatal> {
        self.arm_deadline();
        let result = self.call_supervisor(|ctx, sup| start(ctx, sup)).and_then(|()| self.drive());
        self.deadline.set(None);
        result?;
        let syscalls = self.state.take_syscalls();
        self.check_memory()?;
        if !syscalls.is_empty() {
            (self.state.events)(WorkerEvent::AsyncSyscalls { syscalls });
        }
        Ok(())
    }

    /// Runs the callbacks of every timer now due, each as its own turn.
    pub(super) fn fire_due_timers(&mut self) -> Result<(), Fatal> {
        loop {
            let due = self.state.timers.borrow_mut().pop_due(Instant::now());
            let Some(id) = due else { return Ok(()) };
            self.run_turn(|_ctx, sup| timers::fire(sup, id))?;
        }
    }

    /// Settle the JS promise of fetch `id` as its own turn (unless it was aborted: an aborted
    /// fetch's outcome is dropped).
    pub(super) fn settle_fetch(&mut self, id: u64, outcome: Result<FetchResponse, String>) -> Result<(), Fatal> {
        if self.state.fetches.borrow_mut().remove(&id).is_none() {
            return Ok(());
        }
        self.run_turn(move |ctx, sup| fetch::settle(ctx, sup, id, outcome))
    }
}
