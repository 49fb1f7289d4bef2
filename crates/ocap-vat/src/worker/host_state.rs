//! [`HostState`]: what the runner and the host functions it gives to JS share.
//!
//! It is a module of its own, below both sides, so that the host functions (`host.rs`,
//! `timers.rs`, `fetch.rs`) and the runner that builds them (`runner.rs`) can name it without
//! naming each other: it depends on no sibling but the timer queue it holds.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::mpsc::Sender;
use std::sync::Arc;

use serde_json::Value as Json;

use super::timer_queue::Timers;
use super::{Command, DeliveryEvent};
use crate::vatstore::VatStore;
use crate::WorkerEvent;

/// State shared between the runner and the host functions it gives to JS.
pub(super) struct HostState {
    pub(super) vat_id: String,
    pub(super) events: Rc<dyn Fn(WorkerEvent)>,
    /// The syscalls of the running delivery (or turn) not yet handed over.
    pub(super) syscalls: RefCell<Vec<Json>>,
    /// How many syscalls the running delivery (or turn) has made, handed over or not.
    pub(super) syscall_count: Cell<usize>,
    /// Where the running delivery hands its syscalls over in chunks (`SYSCALL_CHUNK`); none
    /// outside deliveries (a timer's or a fetch's turn sends them all at its end).
    pub(super) syscall_stream: RefCell<Option<Sender<DeliveryEvent>>>,
    /// The most syscalls one delivery (or turn) may make (`syscall_count`, handed over or
    /// not): the kernel's `KernelOptions::max_syscalls_per_delivery`, passed in
    /// `WorkerOptions`. Past it the syscall throws in the vat, so a runaway vat cannot fill
    /// the worker's memory (or the kernel's crank) first.
    pub(super) max_syscalls_per_delivery: usize,
    pub(super) vatstore: RefCell<VatStore>,
    pub(super) timers: RefCell<Timers>,
    pub(super) gc_requested: Cell<bool>,
    /// Abort flags of the fetches in flight, by id.
    pub(super) fetches: RefCell<HashMap<u64, Arc<AtomicBool>>>,
    /// Live fetch threads (an aborted fetch's thread may outlive its entry
    /// in `fetches`; the limit counts threads).
    pub(super) fetch_threads: Arc<AtomicUsize>,
    /// Where fetch threads send their outcome.
    pub(super) commands_tx: Sender<Command>,
    /// While the prelude runs, log records (SES's lockdown chatter about
    /// QuickJS-only intrinsics it removes) go to tracing, not to the kernel.
    pub(super) starting: Cell<bool>,
    /// What the native `harden` needs (JS values held from Rust). It lives
    /// here, not in the `harden` closure, because a closure owned by a JS
    /// function that holds `Persistent`s is a cycle QuickJS's collector
    /// cannot see: the function, the kit and (through each value's context
    /// reference) the whole realm were never freed, ~400 KB per vat start.
    /// `Runner`'s `Drop` takes it before the context goes.
    pub(super) harden_kit: RefCell<Option<Rc<crate::harden::HardenKit>>>,
    /// What the native `passStyleOf` needs (src/pass_style.rs): held here for the
    /// same reason as `harden_kit`, and taken in the same places.
    pub(super) pass_style_kit: RefCell<Option<Rc<crate::pass_style::PassStyleKit>>>,
}

impl HostState {
    /// The syscalls not handed over yet, at the end of a delivery or turn; the count starts
    /// again for the next one.
    pub(super) fn take_syscalls(&self) -> Vec<Json> {
        self.syscall_count.set(0);
        std::mem::take(&mut *self.syscalls.borrow_mut())
    }
}
