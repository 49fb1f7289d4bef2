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
//! **Peers too.** A notify to another kernel is a frame (`peers.rs`), and the JS kernel's
//! `notify` frame carries a list of resolutions like liveslots' (spec remote-comms.md §4.4:
//! "translate each resolution"), so answers to many messages from a peer leave in a few
//! frames: fewer cranks and frames here, fewer frames to receive and units to run there.
//!
//! **Which items join.** The head item (taken as the crank's work, or chosen one crank ahead
//! by `overlap.rs`) to a vat or a peer, then the items right behind it that notify the same
//! endpoint of promises it was not told of yet in this batch, settled to values that carry
//! no promise (so the batch's translation depends on nothing a crank before it could still
//! change, as `overlap.rs` requires of what it runs ahead), at most
//! `KernelOptions::max_notifies_per_delivery` in all, and values of bounded size (1 MiB of
//! bodies to a vat; to a peer half its frame limit, so the frame fits), the first item's
//! included; a first item whose value carries promises goes alone. The rule is the same
//! whether the batch is formed when its crank starts or one crank ahead, with overlap on or
//! off.

use super::{KernelCore, KernelError};
use crate::refs::{EndpointId, KRef};

/// The most bytes of settled values (their smallcaps bodies, as a frame would carry them) a
/// batch to a vat carries: a batch stays a delivery of ordinary size.
const VAT_BATCH_BYTES: usize = 1024 * 1024;

impl KernelCore {
    /// The run-queue items that join the notify of `kpid` to `ep` (run-queue item `seq`) in
    /// one delivery: their seqs and kpids, in queue order; empty when `ep` is neither a vat
    /// nor a peer, or batches are off.
    pub(crate) fn notify_followers(
        &self,
        seq: i64,
        ep: EndpointId,
        kpid: KRef,
    ) -> Result<Vec<(i64, KRef)>, KernelError> {
        let max = self.opts.max_notifies_per_delivery;
        let budget = match ep {
            EndpointId::Vat(_) => VAT_BATCH_BYTES,
            // One frame carries the batch, well under the frame limit.
            EndpointId::Remote(r) if self.is_peer(r) => self.peer_frame_bytes() / 2,
            _ => 0,
        };
        if max <= 1 || budget == 0 {
            return Ok(Vec::new());
        }
        // Most notifies have nothing behind them to join: the queue is read first, and the
        // values only when there is something to weigh.
        let mut followers = self.store.notifies_after(seq, ep, kpid, max - 1)?;
        if followers.is_empty() {
            return Ok(followers);
        }
        // The first item counts against the budget too (a frame carries all of them), and
        // one whose value carries promises goes alone: the settled ones among them join it
        // (spec §4.3) at a size not known here. A follower ends the batch the same way.
        let mut bytes = 0;
        let mut keep: usize = 0;
        for kp in std::iter::once(kpid).chain(followers.iter().map(|(_, kp)| *kp)) {
            let Some(value) = self.store.promise(kp)?.and_then(|p| p.value) else { break };
            bytes += super::peers::frame_estimate(&value.body, value.slots.len());
            if value.slots.iter().any(|s| s.is_promise()) || bytes > budget {
                break;
            }
            keep += 1;
        }
        // `keep` counts the first item too.
        followers.truncate(keep.saturating_sub(1));
        Ok(followers)
    }

    /// The batch of the notify of `kpid` to `ep` (run-queue item `seq`, already taken off the
    /// queue): that item, then its followers, taken off the queue too. `followers` when they
    /// were fixed one crank ahead (`overlap.rs`), else those behind it now.
    pub(crate) fn take_notify_batch(
        &mut self,
        seq: i64,
        ep: EndpointId,
        kpid: KRef,
        followers: Option<Vec<(i64, KRef)>>,
    ) -> Result<Vec<(i64, KRef)>, KernelError> {
        let followers = match followers {
            Some(f) => f,
            None => self.notify_followers(seq, ep, kpid)?,
        };
        let mut items = Vec::with_capacity(1 + followers.len());
        items.push((seq, kpid));
        for (seq, kp) in followers {
            // Nothing takes run-queue items but the cranks that run them (and, at the head of
            // the queue, `notify_peers_now`), so one fixed a crank ahead is still there.
            if self.store.remove_run(seq)? {
                items.push((seq, kp));
            } else {
                tracing::error!("run-queue notify {seq} chosen ahead is gone");
            }
        }
        Ok(items)
    }
}
