//! Notify batches (`docs/cranks.md`, "Notify batches"): consecutive run-queue `notify` items
//! to one vat are delivered as one `notify` carrying all their resolutions, in queue order.
//!
//! **Why.** A vat that sent many messages gets as many answers back, each a `notify` item.
//! Delivered one by one, each pays a crank (a unit, the hand-off to the vat's worker and
//! back, liveslots' per-delivery work) for one resolution: about half of a notify's cost in
//! the vat alone (`vat_bench`: 38 µs per resolution one at a time, 20 µs in batches of 10).
//!
//! **Why it is sound.** Liveslots' `dispatch.notify` takes a batch of resolutions already
//! (the kernel sends one when a value carries other settled promises, spec kernel-core.md
//! §4.3), and retires every vpid in it. Only items that follow each other in the queue are
//! joined, so the order of everything the vat receives is kept; what changes is that the
//! promise reactions of the batch run in one delivery, after all of its resolutions, instead
//! of each after its own (JavaScript orders reactions only within one promise, and vats
//! cannot tell when the kernel queued an answer). A batch is one delivery for the vat's
//! delivery budget and syscall limit, and one crank: if it fails, all of it rolls back.
//!
//! **Which items join.** The head item (taken as the crank's work, or chosen one crank ahead
//! by `overlap.rs`) to a vat, then the items right behind it that notify the same vat of
//! promises it was not told of yet in this batch, settled to values that carry no promise
//! (so the batch's translation depends on nothing a crank before it could still change,
//! as `overlap.rs` requires of what it runs ahead), at most
//! `KernelOptions::max_notifies_per_delivery` in all. The rule is the same whether the batch
//! is formed when its crank starts or one crank ahead, with overlap on or off.

use super::{KernelCore, KernelError};
use crate::refs::{EndpointId, KRef};

impl KernelCore {
    /// The run-queue items that join the notify of `kpid` to `ep` (run-queue item `seq`) in
    /// one delivery: their seqs and kpids, in queue order; empty when `ep` is not a vat or
    /// batches are off.
    pub(crate) fn notify_followers(
        &self,
        seq: i64,
        ep: EndpointId,
        kpid: KRef,
    ) -> Result<Vec<(i64, KRef)>, KernelError> {
        let max = self.opts.max_notifies_per_delivery;
        if ep.vat().is_none() || max <= 1 {
            return Ok(Vec::new());
        }
        let mut followers = self.store.notifies_after(seq, ep, &[kpid], max - 1)?;
        let mut keep = 0;
        for (_, kp) in &followers {
            let settled_without_promises = self
                .store
                .promise(*kp)?
                .and_then(|p| p.value)
                .is_some_and(|value| !value.slots.iter().any(|s| s.is_promise()));
            if !settled_without_promises {
                break;
            }
            keep += 1;
        }
        followers.truncate(keep);
        Ok(followers)
    }
}
