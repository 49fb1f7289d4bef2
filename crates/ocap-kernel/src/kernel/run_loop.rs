//! The run loop: the thread that owns the `KernelCore` and runs, in turn, the jobs posted to
//! it (host calls, workers' events, the kernel facet's calls) and cranks. Jobs run between
//! cranks, never inside one.
//!
//! Everything outside the loop reaches it through a `LoopHandle`: post a job, wake it, stop
//! it. Nothing outside the loop steps the crank loop: a host call that needs work done (such
//! as `collectGarbage`) registers a waiter the loop answers when the work is done.

use std::collections::VecDeque;
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::core::{KernelCore, KernelError, VatLauncher};

/// A job for the run loop.
pub(crate) type Job = Box<dyn FnOnce(&mut LoopState) + Send>;

pub(crate) enum Command {
    Run(Job),
    Wake,
    Stop(oneshot::Sender<Result<(), KernelError>>),
}

/// What the loop owns.
pub(crate) struct LoopState {
    pub(crate) core: KernelCore,
    pub(crate) launcher: Box<dyn VatLauncher + Send>,
    /// `collectGarbage` callers, with the crank count when they asked; answered with the
    /// cranks run meanwhile once no cleanup or GC work is left, or with the error that stopped
    /// the loop from doing it.
    pub(crate) gc_waiters: Vec<(u64, oneshot::Sender<Result<u64, KernelError>>)>,
    /// Set to stop the remote-comms ticker thread (`comms.rs`).
    pub(crate) ticker_stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// The run loop's address. Cheap to clone; usable from any thread (`mpsc::Sender` is `Sync`).
#[derive(Clone)]
pub(crate) struct LoopHandle {
    tx: mpsc::Sender<Command>,
}

impl LoopHandle {
    pub(crate) fn new(tx: mpsc::Sender<Command>) -> Self {
        LoopHandle { tx }
    }

    /// Posts a job; false if the loop has stopped.
    pub(crate) fn post(&self, job: impl FnOnce(&mut LoopState) + Send + 'static) -> bool {
        self.tx.send(Command::Run(Box::new(job))).is_ok()
    }

    /// Wakes an idle loop (a kernel service answered from another thread).
    pub(crate) fn wake(&self) {
        let _ = self.tx.send(Command::Wake);
    }

    /// Asks the loop to stop after the current crank; false if it has stopped already.
    pub(crate) fn stop(&self, reply: oneshot::Sender<Result<(), KernelError>>) -> bool {
        self.tx.send(Command::Stop(reply)).is_ok()
    }
}

impl LoopState {
    /// Answers the `collectGarbage` waiters if no cleanup or GC work is left, after a commit.
    fn answer_gc_waiters(&mut self) {
        if self.gc_waiters.is_empty() || !matches!(self.core.has_gc_work(), Ok(false)) {
            return;
        }
        if let Err(e) = self.core.commit() {
            tracing::error!("run loop: {e}");
            return;
        }
        let now = self.core.crank_count();
        for (since, tx) in self.gc_waiters.drain(..) {
            let _ = tx.send(Ok(now.saturating_sub(since)));
        }
    }

    /// Fails the `collectGarbage` waiters: a crank failed and the loop is going idle, so the
    /// work they wait for may never be done.
    fn fail_gc_waiters(&mut self, e: &KernelError) {
        for (_, tx) in self.gc_waiters.drain(..) {
            let _ = tx.send(Err(KernelError::Internal(format!("garbage collection stopped: {e}"))));
        }
    }

    /// Runs one command; false when the loop must end.
    fn handle(&mut self, command: Result<Command, ()>) -> bool {
        match command {
            Ok(Command::Run(job)) => {
                ocap_abi::timeline::span("job", || job(self));
                true
            }
            Ok(Command::Wake) => true,
            Ok(Command::Stop(reply)) => {
                if let Some(stop) = self.ticker_stop.take() {
                    stop.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                let _ = reply.send(self.core.shutdown());
                false
            }
            Err(()) => {
                let _ = self.core.shutdown();
                false
            }
        }
    }
}

pub(crate) fn run_loop(mut st: LoopState, rx: mpsc::Receiver<Command>) {
    // Commands that arrived between a crank and the one it chose to go next.
    let mut deferred: VecDeque<Command> = VecDeque::new();
    loop {
        if st.core.next_is_chosen() {
            // Not between a crank and the one it chose (`core/overlap.rs`): its delivery may
            // be running already. Commands wait, and that crank chooses no successor, so they
            // run right after it.
            loop {
                match rx.try_recv() {
                    Ok(command) => deferred.push_back(command),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        st.handle(Err(()));
                        return;
                    }
                }
            }
            st.core.set_commands_waiting(!deferred.is_empty());
        } else {
            // Host commands first, between cranks: those that waited, then those that have
            // arrived by now. Commands that arrive while these run wait for the next turn,
            // a crank or two later (the next crank may choose a successor before it sees
            // them): a caller that posts a new call as soon as each is answered (on one core
            // it runs between the answer and the loop's next look) would otherwise keep
            // every crank out.
            st.core.set_commands_waiting(false);
            let mut disconnected = false;
            loop {
                match rx.try_recv() {
                    Ok(command) => deferred.push_back(command),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                }
            }
            while let Some(command) = deferred.pop_front() {
                if !st.handle(Ok(command)) {
                    return;
                }
            }
            if disconnected {
                st.handle(Err(()));
                return;
            }
        }
        let stepped = ocap_abi::timeline::span("step", || st.core.step());
        st.answer_gc_waiters();
        match stepped {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                tracing::error!("run loop: {e}");
                st.fail_gc_waiters(&e);
            }
        }
        if st.core.next_is_chosen() || !deferred.is_empty() {
            continue;
        }
        // Idle: sleep until a command arrives.
        if !st.handle(rx.recv().map_err(|_| ())) {
            return;
        }
    }
}
