//! The vat worker: one OS thread per vat owning the vat's QuickJS runtime, driven by
//! commands from [`VatWorker`] and by its own timers.
//!
//! Quiescence (the end of a delivery) is "QuickJS's job queue is empty and no
//! `waitUntilQuiescent` waiter is left": `Runner::drive` runs jobs until the queue is empty,
//! then resolves the oldest waiter (a macrotask, like Node's `setImmediate`), and repeats.
//! Timers never fire inside a delivery; they fire between commands, as their own turns, and
//! the syscalls they cause are sent as [`WorkerEvent::AsyncSyscalls`](crate::WorkerEvent).
//!
//! The two sides of the thread boundary are kept apart, because they obey different rules:
//! the caller's side may be any thread and must never hang; everything else runs only on the
//! vat's own thread, where the runtime lives (`Rc`, no locks).
//!
//! - `handle`: [`VatWorker`], the caller's side (spawn, `init`/`deliver`/`ping`, terminate);
//! - `thread`: the thread's body (start, run, record a death, answer what is left);
//! - `runner`: the runtime and its command loop;
//! - `init`: `initVat` (the vat config's checks, the bundle);
//! - `quiescence`: deliveries and other turns, run until the vat is quiescent;
//! - `host`: the host object the prelude receives (syscalls, logs, vatstore, GC, harden);
//! - `host_state`: the state the runner and the host functions share;
//! - `timers`, `web`, `fetch`: the host side of the timer, crypto/text and `fetch` endowments;
//! - `timer_queue`: the vat's timer deadlines;
//! - `spin`: polling before blocking, on both sides of the boundary (fixed for the caller,
//!   adaptive for the worker);
//! - `js_error`: QuickJS errors both ways (describing a caught one, throwing one).
//!
//! The modules depend on each other in one direction only (`tests/import_circles.rs` in
//! ocap-kernel checks it): `handle` → `thread` → `runner` → `host` → `timers`, `fetch`,
//! `web` → `host_state` → `timer_queue`; `spin` is used by both sides and uses nothing;
//! `init` and `quiescence` add methods to `Runner` from above it. What the host functions and the runner both need lives at the bottom, and
//! the host functions never name the `Runner`: the turns they start (a due timer, a fetch
//! outcome) are run from `quiescence`.

mod fetch;
mod handle;
mod host;
mod host_state;
mod init;
mod js_error;
mod quiescence;
mod runner;
mod spin;
mod thread;
mod timer_queue;
mod timers;
mod web;

use std::sync::mpsc::{Sender, SyncSender};

use serde_json::Value as Json;

use crate::net::FetchResponse;
use crate::{DeliveryReply, VatWorkerError};

pub use handle::{PendingReply, VatWorker};

/// Budget for evaluating the prelude in a new runtime.
const STARTUP_TIMEOUT_MS: u64 = 60_000;
/// How long the caller waits past the delivery budget before giving up on the worker (the
/// interrupt handler should have stopped it long before).
const CALLER_GRACE_MS: u64 = 10_000;

/// Where the worker thread sends a command's answer.
type Reply<T> = SyncSender<Result<T, VatWorkerError>>;

/// The most syscalls a delivery holds back before it hands them to its caller (as
/// [`DeliveryEvent::Syscalls`]), while the vat runs on. The kernel applies them meanwhile on
/// its own thread, so a delivery that sends a thousand messages (two syscalls each) does not
/// leave them all for after its end. A delivery that makes fewer hands them over only with
/// its reply, as before.
const SYSCALL_CHUNK: usize = 64;

/// What a delivery sends its caller: its syscalls so far, in chunks, then its reply (which
/// holds the syscalls made after the last chunk).
enum DeliveryEvent {
    Syscalls(Vec<Json>),
    Done(Result<DeliveryReply, VatWorkerError>),
}

/// What the worker thread is asked to do: calls from [`VatWorker`], and fetch outcomes from
/// the vat's fetch threads (a fetch's outcome must run on the vat thread, as its own turn).
enum Command {
    Init {
        config: Json,
        bundle_text: Option<String>,
        vatstore: Vec<(String, String)>,
        reply: Reply<DeliveryReply>,
    },
    Deliver {
        delivery: Json,
        events: Sender<DeliveryEvent>,
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

/// Why a vat cannot go on.
struct Fatal(String);
