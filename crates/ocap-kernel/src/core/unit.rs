//! The crank protocol: the one place a unit of work is opened, finished and rolled back.
//!
//! A unit is a SQLite savepoint plus what the kernel keeps in memory for it (GC candidates,
//! post-commit effects). Every unit, whether a crank or a host call, goes through
//! `open_unit` and `finish_unit`:
//!
//! - `Outcome::Commit`: end-of-unit GC processing, then the savepoint is released;
//! - `Outcome::CommitThenTerminate`: the same, then the endpoint is terminated in a unit of
//!   its own (a vat's `exit(false)`);
//! - `Outcome::Abort`: everything is rolled back, then the endpoint is terminated (illegal
//!   syscall, delivery error, `exit(true)`), together with the caller's `after_abort` (a
//!   crank rejects the message it was delivering);
//! - an error inside the unit: everything is rolled back and the caller's `on_error` decides
//!   (a crank discards its item, a host call returns the error).
//!
//! Released units are committed together (group commit) by `commit`, which then runs their
//! post-commit effects: nothing a unit produced is shown outside before it is durable.

use super::{Effect, KernelCore, KernelError};
use crate::capdata::CapData;
use crate::refs::{EndpointId, KRef};
use crate::smallcaps;

/// What becomes of a processed unit.
#[derive(Debug)]
pub(crate) enum Outcome {
    Commit,
    /// Roll the unit back, then terminate the endpoint.
    Abort {
        endpoint: EndpointId,
        info: CapData<KRef>,
    },
    /// Keep the unit's effects, then terminate the endpoint.
    CommitThenTerminate {
        endpoint: EndpointId,
        info: CapData<KRef>,
    },
}

/// `[KERNEL:VAT_FATAL:<code>] <detail>`, the reason an endpoint is killed for misbehaving.
pub(crate) fn vat_fatal(code: &str, detail: &str) -> CapData<KRef> {
    smallcaps::kser(&smallcaps::Value::error(format!("[KERNEL:VAT_FATAL:{code}] {detail}")))
}

impl KernelCore {
    /// Opens a unit: a savepoint, and a mark in the effect list.
    pub(crate) fn open_unit(&mut self) -> Result<(), KernelError> {
        self.store.begin_unit()?;
        self.unit_effects_start = self.effects.len();
        Ok(())
    }

    /// Rolls back the open unit and forgets everything it produced in memory.
    fn roll_back_unit(&mut self) -> Result<(), KernelError> {
        self.store.rollback_unit()?;
        self.maybe_free.clear();
        self.effects.truncate(self.unit_effects_start);
        Ok(())
    }

    /// Processes the GC candidates and releases the open unit; rolls it back if that fails.
    fn release_unit(&mut self) -> Result<(), KernelError> {
        if let Err(e) = self.process_refcounts() {
            self.roll_back_unit()?;
            return Err(e);
        }
        self.store.release_unit()?;
        Ok(())
    }

    /// Finishes the open unit according to `outcome` (see the module doc). `after_abort` runs
    /// in the terminating unit after an abort, with the termination info; `on_error` runs
    /// after the rollback of a unit whose body (or end-of-unit GC) failed, and its result is
    /// returned. An error of the terminating unit itself is returned as it is.
    pub(crate) fn finish_unit(
        &mut self,
        outcome: Result<Outcome, KernelError>,
        after_abort: impl FnOnce(&mut KernelCore, EndpointId, &CapData<KRef>) -> Result<(), KernelError>,
        on_error: impl FnOnce(&mut KernelCore, KernelError) -> Result<(), KernelError>,
    ) -> Result<(), KernelError> {
        let released = match outcome {
            Ok(Outcome::Abort { endpoint, info }) => {
                self.roll_back_unit()?;
                let mut after_abort = Some(after_abort);
                return self.terminating_unit(endpoint, &info, &mut |k: &mut KernelCore| match after_abort.take() {
                    Some(f) => f(k, endpoint, &info),
                    None => Ok(()),
                });
            }
            Ok(outcome) => self.release_unit().map(|()| outcome),
            Err(e) => {
                self.roll_back_unit()?;
                Err(e)
            }
        };
        match released {
            Ok(Outcome::CommitThenTerminate { endpoint, info }) => {
                self.terminating_unit(endpoint, &info, &mut |_: &mut KernelCore| Ok(()))
            }
            Ok(_) => Ok(()),
            Err(e) => on_error(self, e),
        }
    }

    /// The unit that terminates an endpoint after another unit's outcome asked for it: `first`
    /// runs, then the termination; all of it or nothing. Not generic, so that `unit` and
    /// `finish_unit` do not instantiate each other without end.
    fn terminating_unit(
        &mut self,
        endpoint: EndpointId,
        info: &CapData<KRef>,
        first: &mut dyn FnMut(&mut KernelCore) -> Result<(), KernelError>,
    ) -> Result<(), KernelError> {
        self.open_unit()?;
        let body = first(self).and_then(|()| self.terminate_in_unit(endpoint, info));
        match body {
            Ok(()) => self.release_unit(),
            Err(e) => {
                self.roll_back_unit()?;
                Err(e)
            }
        }
    }

    /// Runs `f` as one unit of work: all of its writes, or none of them.
    pub(crate) fn unit<T>(
        &mut self,
        f: impl FnOnce(&mut KernelCore) -> Result<T, KernelError>,
    ) -> Result<T, KernelError> {
        self.open_unit()?;
        let mut value = None;
        let outcome = f(self).map(|v| {
            value = Some(v);
            Outcome::Commit
        });
        self.finish_unit(outcome, |_, _, _| Ok(()), |_, e| Err(e))?;
        value.ok_or_else(|| KernelError::Internal("a committed unit left no value".into()))
    }

    /// Commits released units and then performs their post-commit effects.
    pub fn commit(&mut self) -> Result<(), KernelError> {
        self.store.commit()?;
        self.cranks_since_commit = 0;
        self.unit_effects_start = 0;
        for effect in std::mem::take(&mut self.effects) {
            match effect {
                Effect::HostResolved { kpid, result } => {
                    if let Some(waiter) = self.host_waiters.remove(&kpid) {
                        waiter(result);
                    }
                }
                Effect::InvokeService { service, method, args, result } => {
                    self.invoke_service(service, method, args, result);
                }
                Effect::RemoteSend { remote, frame, ack } => self.frame_committed(remote, frame, ack),
                Effect::RetireAfterAck { remote, seq, kps } => self.retire_committed(remote, seq, kps),
            }
        }
        Ok(())
    }

    /// Counts a finished crank and commits when someone waits on its effects or enough
    /// cranks share the open transaction. Frames for peers do not force a commit: they go
    /// out with the next one (at most `max_cranks_per_commit` cranks later, or when the loop
    /// goes idle), so a burst of sends shares one commit.
    pub(crate) fn after_crank(&mut self) -> Result<(), KernelError> {
        self.cranks_since_commit += 1;
        let waited_on =
            self.effects.iter().any(|e| !matches!(e, Effect::RemoteSend { .. } | Effect::RetireAfterAck { .. }));
        if waited_on || self.cranks_since_commit >= self.opts.max_cranks_per_commit {
            self.commit()?;
        }
        Ok(())
    }
}
