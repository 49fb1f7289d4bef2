//! The crank: pick one unit of work in priority order, process it atomically, and decide
//! what happens to it (commit, abort and terminate, or commit and terminate).
//!
//! Priority (spec kernel-core.md §3.2, plus SwingSet's cleanup): kernel-service replies, GC
//! actions, one bounded step of terminated-vat cleanup, bring-out-your-dead, the run queue.
//! A crank that fails inside the kernel is rolled back and its item discarded (a send's
//! result is rejected with INTERNAL_ERROR), so no item can wedge the loop by failing forever.

use super::{KernelCore, KernelError};
use crate::capdata::CapData;
use crate::refs::{KRef, VatId};
use crate::smallcaps;
use crate::store::{GcAction, PendingWork, RunQueueItem};

#[derive(Debug, Clone)]
pub(crate) enum Work {
    Gc(GcAction),
    Cleanup(VatId),
    Reap(VatId),
    Run(RunQueueItem),
}

/// What becomes of a processed crank.
#[derive(Debug)]
pub(crate) enum Outcome {
    Commit,
    /// Roll the crank back, then terminate the vat (illegal syscall, delivery error, `exit(true)`).
    Abort {
        vat: VatId,
        info: CapData<KRef>,
    },
    /// Keep the crank's effects, then terminate the vat (`exit(false)`).
    CommitThenTerminate {
        vat: VatId,
        info: CapData<KRef>,
    },
}

/// `[KERNEL:VAT_FATAL:<code>] <detail>`, the reason a vat is killed for misbehaving.
pub(crate) fn vat_fatal(code: &str, detail: &str) -> CapData<KRef> {
    smallcaps::kser(&smallcaps::Value::error(format!("[KERNEL:VAT_FATAL:{code}] {detail}")))
}

impl KernelCore {
    /// Runs one unit of work. Returns false when there was nothing to do.
    pub fn step(&mut self) -> Result<bool, KernelError> {
        self.poll_service_replies();
        if let Some((kpid, result)) = self.pending_replies.pop_front() {
            self.unit(|k| k.resolve_from_service(kpid, result))?;
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
        self.store.begin_unit()?;
        self.unit_effects_start = self.effects.len();
        let work = match self.next_work(pending) {
            Ok(Some(w)) => w,
            Ok(None) => {
                // `pending_work` saw work that is not there: a store bug. Go idle rather than spin.
                self.store.release_unit()?;
                self.commit()?;
                return Err(KernelError::Internal("pending work vanished before it was taken".into()));
            }
            Err(e) => {
                self.abandon_unit()?;
                return Err(e);
            }
        };
        self.crank_count += 1;
        let outcome = self.process_work(&work).and_then(|o| {
            if !matches!(o, Outcome::Abort { .. }) {
                self.process_refcounts()?;
            }
            Ok(o)
        });
        match outcome {
            Ok(Outcome::Commit) => self.store.release_unit()?,
            Ok(Outcome::CommitThenTerminate { vat, info }) => {
                self.store.release_unit()?;
                self.unit(|k| k.terminate_in_unit(vat, &info))?;
            }
            Ok(Outcome::Abort { vat, info }) => {
                self.abandon_unit()?;
                self.unit(|k| {
                    // The rollback put the aborted send back at the head of the queue. Its
                    // target is gone with the vat (OBJECT_DELETED, as in the JS kernel), and
                    // the sender also learns why the vat died.
                    if let Work::Run(RunQueueItem::Send { .. }) = &work {
                        if let Some(RunQueueItem::Send { target, message }) = k.store.pop_run()? {
                            let why = smallcaps::reason_text(&info);
                            let detail = format!("Target object's vat {vat} was terminated: {why}");
                            k.splat(target, &message, smallcaps::kernel_error("OBJECT_DELETED", &detail))?;
                        }
                    }
                    k.terminate_in_unit(vat, &info)
                })?;
            }
            Err(e) => {
                tracing::error!("crank {} failed, discarding {:?}: {e}", self.crank_count, work);
                self.abandon_unit()?;
                self.unit(|k| k.discard_work(&work, &e))?;
            }
        }
        self.after_crank()?;
        if self.opts.check_invariants_every_crank {
            if let Err(violations) = crate::invariants::check(&self.store) {
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

    fn after_crank(&mut self) -> Result<(), KernelError> {
        self.cranks_since_commit += 1;
        if !self.effects.is_empty() || self.cranks_since_commit >= self.opts.max_cranks_per_commit {
            self.commit()?;
        }
        Ok(())
    }

    /// Takes the highest-priority item, looking only in the queues `pending` says are
    /// non-empty (nothing else writes the store between that check and this one).
    fn next_work(&mut self, pending: PendingWork) -> Result<Option<Work>, KernelError> {
        if pending.gc {
            if let Some(g) = self.store.take_gc_group()? {
                return Ok(Some(Work::Gc(g)));
            }
        }
        if pending.cleanup {
            if let Some(v) = self.store.next_terminated_vat()? {
                return Ok(Some(Work::Cleanup(v)));
            }
        }
        if pending.reap {
            if let Some(v) = self.store.pop_reap()? {
                return Ok(Some(Work::Reap(v)));
            }
        }
        if pending.run {
            return Ok(self.store.pop_run()?.map(Work::Run));
        }
        Ok(None)
    }

    fn process_work(&mut self, work: &Work) -> Result<Outcome, KernelError> {
        match work {
            Work::Gc(action) => self.deliver_gc(action),
            Work::Cleanup(vat) => {
                self.cleanup_step(*vat)?;
                Ok(Outcome::Commit)
            }
            Work::Reap(vat) => self.deliver_reap(*vat),
            Work::Run(RunQueueItem::Send { target, message }) => self.route_send(*target, message.clone()),
            Work::Run(RunQueueItem::Notify { endpoint_id, kpid }) => self.deliver_notify(*endpoint_id, *kpid),
        }
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
            Work::Cleanup(vat) => {
                tracing::error!("giving up cleanup of terminated vat {vat}: {why}");
                self.store.delete_vat(*vat)?;
            }
            Work::Run(_) => match self.store.pop_run()? {
                Some(RunQueueItem::Send { target, message }) => {
                    let err = smallcaps::kernel_error("INTERNAL_ERROR", &why.to_string());
                    self.splat(target, &message, err)?;
                }
                Some(RunQueueItem::Notify { kpid, .. }) => self.decref(kpid)?,
                None => {}
            },
        }
        Ok(())
    }

    /// Runs the syscalls a vat made outside any delivery (a timer fired, a fetch answered)
    /// as their own unit of work. An illegal one terminates the vat.
    pub fn handle_async_syscalls(&mut self, vat: VatId, calls: Vec<crate::vat::VatSyscall>) -> Result<(), KernelError> {
        if !self.is_vat_attached(vat) {
            tracing::debug!(%vat, "dropping {} syscalls from a vat that is not running", calls.len());
            return Ok(());
        }
        self.store.begin_unit()?;
        self.unit_effects_start = self.effects.len();
        let (illegal, internal, exit) = {
            let mut ctx = super::syscalls::SyscallCtx::new(self, vat);
            for call in calls {
                if let crate::vat::SyscallResult::Error(_) = crate::vat::SyscallHandler::syscall(&mut ctx, call) {
                    break;
                }
            }
            (ctx.illegal, ctx.internal, ctx.exit)
        };
        let outcome = match (internal, illegal, exit) {
            (Some(e), _, _) => Err(e),
            (None, Some(why), _) => Ok(Outcome::Abort { vat, info: vat_fatal("ILLEGAL_SYSCALL", &why) }),
            (None, None, Some((true, info))) => Ok(Outcome::Abort { vat, info }),
            (None, None, Some((false, info))) => Ok(Outcome::CommitThenTerminate { vat, info }),
            (None, None, None) => Ok(Outcome::Commit),
        };
        match outcome {
            Ok(Outcome::Commit) => {
                self.process_refcounts()?;
                self.store.release_unit()?;
            }
            Ok(Outcome::CommitThenTerminate { vat, info }) => {
                self.process_refcounts()?;
                self.store.release_unit()?;
                self.unit(|k| k.terminate_in_unit(vat, &info))?;
            }
            Ok(Outcome::Abort { vat, info }) => {
                self.abandon_unit()?;
                self.unit(|k| k.terminate_in_unit(vat, &info))?;
            }
            Err(e) => {
                self.abandon_unit()?;
                return Err(e);
            }
        }
        self.after_crank()
    }
}
