//! Overlapping deliveries (`docs/cranks.md`, issue 15): the next crank's delivery runs while
//! the kernel finishes the current one.
//!
//! **The order, fixed one crank ahead.** When a run-queue crank is about to hand its delivery
//! to a vat A, the next crank is chosen: the run-queue head, if no GC action, cleanup or reap
//! is waiting and its delivery cannot depend on what A's crank does (`independent_vat`). That
//! item is taken next, before anything A's crank puts ahead of the queue (GC actions, cleanup,
//! a reap, a resolved promise's parked messages: they run after it), and no host job runs in
//! between (`run_loop.rs`). The rule is the same with overlap on or off, so the two run the
//! same cranks in the same order (`ocap-cli/tests/overlap.rs` compares them).
//!
//! **The overlap.** With `KernelOptions::overlap_deliveries`, A's delivery is started first
//! (`Endpoint::prefetch`), then the chosen item's delivery is translated inside a savepoint
//! that is rolled back (with the unit's in-memory GC candidates and effects) and started on
//! its vat B too: B runs it while A runs its own (B ≠ A) or right after it (B = A, while the
//! kernel processes A's syscalls). B's crank translates it again for real, after A's crank,
//! and B's endpoint checks that the two are the same delivery (`ocap-vat`'s `JsVat::deliver`).
//!
//! **Why the translation cannot change in between.** The item holds its references, so
//! nothing it names is freed. Its target is an object whose owner only changes when the owner
//! is terminated, and then the item is not delivered anyway. A crank's syscalls change no
//! other vat's c-list (entries change only in that vat's own cranks; GC actions are cranks of
//! their own), and the delivering vat's own syscalls only add its new exports (which the item,
//! queued before, cannot name); liveslots drops and retires imports only in
//! bring-out-your-dead, which is never run ahead. And the item names no promise but a send's
//! own result, whose decider is nobody while it is queued: a promise's state is what a
//! crank's syscalls could change that a translation reads. A vat that dropped an import in an
//! ordinary delivery that a delivery started ahead names would be found out by the check
//! above and terminated.

use super::refcount::HeldBy;
use super::{KernelCore, KernelError};
use crate::refs::{EndpointId, KRef};
use crate::store::RunQueueItem;

/// The run-queue item the next crank takes, chosen one crank ahead.
#[derive(Debug, Clone)]
pub(crate) struct Chosen {
    /// The item's seq.
    pub seq: i64,
    /// For a notify: the items that join it in one delivery (`notify_batch.rs`), by seq and
    /// kpid, fixed with it.
    pub followers: Vec<(i64, KRef)>,
    /// Whether its delivery was started already.
    pub started: bool,
}

impl KernelCore {
    /// Called by a run-queue crank just before it hands its delivery to vat `current`: chooses
    /// the next crank if it can go now, and starts its delivery if overlap is on.
    pub(crate) fn choose_next(&mut self) -> Result<(), KernelError> {
        // Host commands waiting run before the next crank instead (`run_loop.rs`): a stream of
        // cranks each choosing the next must not keep them out.
        if self.commands_waiting {
            return Ok(());
        }
        // Other work waiting (GC actions, cleanup, a reap) goes first, as it always did: a
        // stream of messages must not hold it back. What `step` saw when this crank started
        // still holds: a crank adds such work only once its delivery is done (GC actions at
        // the end of its unit, a reap after the delivery, cleanup after a termination).
        if self.other_work_waiting {
            return Ok(());
        }
        let Some((seq, item)) = self.store.peek_run()? else {
            return Ok(());
        };
        let Some(next) = self.independent_vat(&item)? else {
            return Ok(());
        };
        // A notify's batch (`notify_batch.rs`) is fixed now, with the promises it settles.
        let (followers, kpids) = match &item {
            RunQueueItem::Notify { endpoint_id, kpid } => {
                let followers = self.notify_followers(seq, *endpoint_id, *kpid)?;
                let kpids: Vec<KRef> = std::iter::once(*kpid).chain(followers.iter().map(|(_, kp)| *kp)).collect();
                (followers, kpids)
            }
            RunQueueItem::Send { .. } => (Vec::new(), Vec::new()),
        };
        self.chosen_next = Some(Chosen { seq, followers, started: false });
        if !self.opts.overlap_deliveries {
            return Ok(());
        }
        let maybe_free = self.maybe_free.clone();
        let effects = self.effects.len();
        self.store.begin_speculation()?;
        let prepared = match item {
            RunQueueItem::Send { target, message } => {
                self.prepare_message(next, target, target, message, HeldBy::QueueItem)
            }
            RunQueueItem::Notify { endpoint_id, .. } => {
                self.prepare_notify(endpoint_id, &kpids).map(|p| p.map(|(delivery, _)| delivery))
            }
        };
        self.store.discard_speculation()?;
        self.maybe_free = maybe_free;
        self.effects.truncate(effects);
        match prepared {
            Ok(Some(delivery)) => {
                if let Some(endpoint) = self.endpoints.get_mut(&next) {
                    if endpoint.prefetch(&delivery) {
                        if let Some(chosen) = &mut self.chosen_next {
                            chosen.started = true;
                        }
                    }
                }
            }
            // Nothing to run ahead (the item will be rejected), or a store error that the
            // crank itself will meet and handle.
            Ok(None) => {}
            Err(e) => tracing::debug!("not running {next}'s next delivery ahead: {e}"),
        }
        Ok(())
    }

    /// The vat `item` goes to, if its delivery cannot depend on what the current crank does
    /// (see the module doc): a send to an object a running vat owns, or a notify to a running
    /// vat, naming no promise but a send's own result.
    fn independent_vat(&self, item: &RunQueueItem) -> Result<Option<EndpointId>, KernelError> {
        let next = match item {
            RunQueueItem::Send { target, message } => {
                if target.is_promise() || message.methargs.slots.iter().any(|s| s.is_promise()) {
                    return Ok(None);
                }
                match self.store.object(*target)? {
                    Some(rec) if !rec.revoked => match rec.owner {
                        Some(owner @ EndpointId::Vat(_)) => owner,
                        _ => return Ok(None),
                    },
                    _ => return Ok(None),
                }
            }
            RunQueueItem::Notify { endpoint_id, kpid } => {
                if !matches!(endpoint_id, EndpointId::Vat(_)) {
                    return Ok(None);
                }
                match self.store.promise(*kpid)?.and_then(|p| p.value) {
                    Some(value) if !value.slots.iter().any(|s| s.is_promise()) => *endpoint_id,
                    _ => return Ok(None),
                }
            }
        };
        if !self.endpoints.contains_key(&next) || !self.store.endpoint_is_active(next)? {
            return Ok(None);
        }
        Ok(Some(next))
    }

    /// Whether the next crank is chosen already: nothing may run before it (`run_loop.rs`).
    pub(crate) fn next_is_chosen(&self) -> bool {
        self.chosen_next.is_some()
    }

    /// The run loop holds commands back until the chosen crank has run; while it does, no
    /// crank chooses another (so they are not kept out for long).
    pub(crate) fn set_commands_waiting(&mut self, waiting: bool) {
        self.commands_waiting = waiting;
    }
}
