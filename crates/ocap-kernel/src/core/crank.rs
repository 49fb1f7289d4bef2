//! The crank: pick one unit of work in priority order and run it through the crank protocol
//! (`unit.rs`).
//!
//! Priority (spec kernel-core.md §3.2, plus SwingSet's cleanup): kernel-service replies, GC
//! actions, one bounded step of terminated-endpoint cleanup, bring-out-your-dead, the run
//! queue. A crank that fails inside the kernel is rolled back and its item discarded (a
//! send's result is rejected with INTERNAL_ERROR), so no item can wedge the loop by failing
//! forever.

use super::unit::Outcome;
use super::{KernelCore, KernelError, TracedOutcome, TracedWork};
use crate::capdata::CapData;
use crate::refs::{EndpointId, KRef, VatId};
use crate::smallcaps;
use crate::store::{GcAction, Message, PendingWork, RunQueueItem};
use crate::vat::VatSyscall;

#[derive(Debug, Clone)]
pub(crate) enum Work {
    Gc(GcAction),
    Cleanup(EndpointId),
    Reap(VatId),
    /// A run-queue `send` and its seq (the same item is found again by it after a rollback).
    Send(i64, KRef, Message),
    /// Run-queue `notify` items to one endpoint, consecutive in the queue, by seq and kpid:
    /// one, or a batch delivered together (`notify_batch.rs`).
    Notify(EndpointId, Vec<(i64, KRef)>),
}

impl KernelCore {
    /// Runs one unit of work. Returns false when there was nothing to do.
    pub fn step(&mut self) -> Result<bool, KernelError> {
        self.poll_service_replies();
        if let Some((kpid, result)) = self.pending_replies.pop_front() {
            self.trace_begin(|| TracedWork::ServiceReply { kpid });
            let done = self.unit(|k| k.resolve_from_service(kpid, result));
            self.trace_end(Some(TracedOutcome::Commit), &done);
            done?;
            self.after_crank()?;
            return Ok(true);
        }
        // Looking for work is a read: when there is none, the loop goes idle without opening a
        // transaction (and a unit) only to find that out.
        let pending = self.store.pending_work()?;
        if !pending.any() {
            self.commit()?;
            // Idle: messages queued to ended subclusters' channels are settled by now.
            self.destroy_ended_io()?;
            // Committing may have invoked services that answered at once.
            self.poll_service_replies();
            return Ok(!self.pending_replies.is_empty());
        }
        self.open_unit()?;
        self.other_work_waiting = pending.gc || pending.cleanup || pending.reap;
        let work = match self.next_work(pending) {
            Ok(Some(w)) => w,
            taken => {
                // A store error, or `pending_work` saw work that is not there (a store bug):
                // nothing was done; go idle rather than spin.
                let why = match taken {
                    Err(e) => e,
                    _ => KernelError::Internal("pending work vanished before it was taken".into()),
                };
                return self.finish_unit(Err(why), |_, _, _| Ok(()), |_, e| Err(e)).map(|()| false);
            }
        };
        self.crank_count += 1;
        self.crank_is_run = matches!(work, Work::Send(..) | Work::Notify(..));
        self.trace_begin(|| Self::traced_work(&work));
        let outcome = self.process_work(&work);
        self.crank_is_run = false;
        let traced = self.trace.is_some().then(|| TracedOutcome::of(&outcome));
        let finished = self.finish_unit(
            outcome,
            |k, endpoint, info| k.reject_aborted_send(&work, endpoint, info),
            |k, e| {
                tracing::error!("crank {} failed, discarding {:?}: {e}", k.crank_count, work);
                if let Some(t) = &mut k.trace {
                    t.fail(&e);
                }
                k.unit(|k| k.discard_work(&work, &e))
            },
        );
        self.trace_end(traced, &finished);
        finished?;
        self.after_crank()?;
        if self.opts.check_invariants_every_crank {
            if let Err(violations) = crate::store::invariants::check(&self.store) {
                tracing::error!(crank = self.crank_count, "invariants violated: {}", violations.join("; "));
                return Err(KernelError::Invariants { crank: self.crank_count, violations });
            }
        }
        Ok(true)
    }

    /// Steps until there is no work left; returns the number of units run.
    pub fn run_until_idle(&mut self) -> Result<u64, KernelError> {
        let mut n = 0;
        while self.step()? {
            n += 1;
        }
        Ok(n)
    }

    /// Takes the highest-priority item, looking only in the queues `pending` says are
    /// non-empty (nothing else writes the store between that check and this one).
    ///
    /// The item chosen when the previous crank started goes first (`overlap.rs`: the order is
    /// fixed one crank ahead), if it is still queued.
    fn next_work(&mut self, pending: PendingWork) -> Result<Option<Work>, KernelError> {
        self.crank_started = false;
        if let Some(chosen) = self.chosen_next.take() {
            if let Some(item) = self.store.take_run(chosen.seq)? {
                self.crank_started = chosen.started;
                return self.run_work(chosen.seq, item, Some(chosen.followers)).map(Some);
            }
            if chosen.started {
                tracing::error!("the run-queue item {} started ahead is gone; its vat ran it for nothing", chosen.seq);
            }
        }
        if pending.gc {
            if let Some(g) = self.store.take_gc_group()? {
                return Ok(Some(Work::Gc(g)));
            }
        }
        if pending.cleanup {
            if let Some(ep) = self.store.next_terminated_endpoint()? {
                return Ok(Some(Work::Cleanup(ep)));
            }
        }
        if pending.reap {
            if let Some(v) = self.store.pop_reap()? {
                return Ok(Some(Work::Reap(v)));
            }
        }
        if pending.run {
            if let Some((seq, item)) = self.store.pop_run()? {
                return self.run_work(seq, item, None).map(Some);
            }
        }
        Ok(None)
    }

    /// The work of run-queue item `seq`, taken off the queue. A notify takes the items that
    /// join it (`notify_batch.rs`) off the queue too: `followers` when they were fixed one
    /// crank ahead, else those behind it now.
    fn run_work(
        &mut self,
        seq: i64,
        item: RunQueueItem,
        followers: Option<Vec<(i64, KRef)>>,
    ) -> Result<Work, KernelError> {
        match item {
            RunQueueItem::Send { target, message } => Ok(Work::Send(seq, target, message)),
            RunQueueItem::Notify { endpoint_id, kpid } => {
                Ok(Work::Notify(endpoint_id, self.take_notify_batch(seq, endpoint_id, kpid, followers)?))
            }
        }
    }

    /// A unit of work as its trace shows it.
    fn traced_work(work: &Work) -> TracedWork {
        match work {
            Work::Gc(action) => TracedWork::gc(action.kind, action.endpoint, &action.krefs),
            Work::Cleanup(ep) => TracedWork::Cleanup { endpoint: *ep },
            Work::Reap(vat) => TracedWork::Reap { vat: *vat },
            Work::Send(_, target, message) => TracedWork::send(*target, message),
            Work::Notify(endpoint, items) => TracedWork::Notify {
                endpoint: *endpoint,
                kpid: items[0].1,
                batched: items[1..].iter().map(|(_, kp)| *kp).collect(),
            },
        }
    }

    fn process_work(&mut self, work: &Work) -> Result<Outcome, KernelError> {
        match work {
            Work::Gc(action) => self.deliver_gc(action),
            Work::Cleanup(ep) => {
                self.cleanup_step(*ep)?;
                Ok(Outcome::Commit)
            }
            Work::Reap(vat) => self.deliver_reap(*vat),
            Work::Send(_, target, message) => self.route_send(*target, message.clone()),
            Work::Notify(endpoint, items) => {
                let kpids: Vec<KRef> = items.iter().map(|(_, kp)| *kp).collect();
                self.deliver_notify(*endpoint, &kpids)
            }
        }
    }

    /// After an aborted crank: the rollback put the send it was delivering back in the queue
    /// (under its seq). Its target is gone with the endpoint (OBJECT_DELETED, as in the JS
    /// kernel), and the sender also learns why the endpoint died.
    fn reject_aborted_send(
        &mut self,
        work: &Work,
        endpoint: EndpointId,
        info: &CapData<KRef>,
    ) -> Result<(), KernelError> {
        if let Work::Send(seq, ..) = work {
            if let Some(RunQueueItem::Send { target, message }) = self.store.take_run(*seq)? {
                let why = smallcaps::reason_text(info);
                let detail = format!("Target object's vat {endpoint} was terminated: {why}");
                self.splat(target, &message, smallcaps::kernel_error("OBJECT_DELETED", &detail))?;
            }
        }
        Ok(())
    }

    /// Takes a failed crank's item off its queue for good.
    fn discard_work(&mut self, work: &Work, why: &KernelError) -> Result<(), KernelError> {
        match work {
            Work::Gc(_) => {
                self.store.take_gc_group()?;
            }
            Work::Reap(_) => {
                self.store.pop_reap()?;
            }
            Work::Cleanup(ep) => {
                tracing::error!("giving up cleanup of terminated endpoint {ep}: {why}");
                self.store.delete_endpoint(*ep)?;
            }
            Work::Send(seq, ..) => {
                if let Some(RunQueueItem::Send { target, message }) = self.store.take_run(*seq)? {
                    let err = smallcaps::kernel_error("INTERNAL_ERROR", &why.to_string());
                    self.splat(target, &message, err)?;
                }
            }
            Work::Notify(_, items) => {
                for (seq, _) in items {
                    if let Some(RunQueueItem::Notify { kpid, .. }) = self.store.take_run(*seq)? {
                        self.decref(kpid)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs syscalls an endpoint made outside any delivery as their own unit of work: a vat's
    /// timer fired or its fetch answered; a remote's message arrived. An illegal one
    /// terminates the endpoint. Syscalls from an endpoint that is not attached are dropped.
    pub fn handle_async_syscalls(
        &mut self,
        endpoint: impl Into<EndpointId>,
        calls: Vec<VatSyscall>,
    ) -> Result<(), KernelError> {
        let endpoint = endpoint.into();
        if !self.is_attached(endpoint) {
            tracing::debug!(%endpoint, "dropping {} syscalls from an endpoint that is not running", calls.len());
            return Ok(());
        }
        self.open_unit()?;
        self.trace_begin(|| TracedWork::AsyncSyscalls { endpoint, count: calls.len() });
        let outcome = self.run_syscalls(endpoint, calls);
        let traced = self.trace.is_some().then(|| TracedOutcome::of(&outcome));
        let finished = self.finish_unit(outcome, |_, _, _| Ok(()), |_, e| Err(e));
        self.trace_end(traced, &finished);
        finished?;
        self.after_crank()
    }
}
