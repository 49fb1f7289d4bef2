//! The body of a vat's thread: build the runtime, report readiness, serve until told to
//! stop or until the vat dies, then record why it died and answer every command still
//! queued, so that no caller is left waiting for its timeout.

use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::runner::Runner;
use super::{Command, DeliveryEvent};
use crate::{VatWorkerError, WorkerEvent, WorkerOptions};

pub(super) fn worker_thread(
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
            Command::Init { reply, .. } => drop(reply.send(Err(err()))),
            Command::Deliver { events, .. } => drop(events.send(DeliveryEvent::Done(Err(err())))),
            Command::Ping { reply } => drop(reply.send(Err(err()))),
            Command::FetchDone { .. } | Command::Shutdown => {}
        }
    }
}
