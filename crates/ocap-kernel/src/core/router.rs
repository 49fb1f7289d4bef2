//! Routing: where a send goes. A promise target is followed to what it settled to (or the
//! message parks on it); an object target goes to its owner: an endpoint (`delivery.rs`), a
//! kernel service, or nowhere (the message is rejected).
//!
//! Refcounts move with references: a run-queue item holds its target, result and slots
//! (`retain_message`); on delivery those references become c-list entries of the receiver
//! (counted there) and the item's own are released (`release_message`). A message parked on
//! a promise keeps its result and slots but not its target (bugs §13.4 and §13.5 not copied).
//! A send routed in its sender's crank, which no queue item holds, counts only its result
//! (`refcount.rs`, `HeldBy::Sender`).

use super::refcount::HeldBy;
use super::unit::Outcome;
use super::{Effect, KernelCore, KernelError};
use crate::capdata::CapData;
use crate::refs::{EndpointId, KRef, RemoteId};
use crate::smallcaps::{self, kernel_error, Value};
use crate::store::promises::PromiseState;
use crate::store::{Message, RunQueueItem};

/// How many promise-to-promise forwards a send follows before giving up.
const MAX_FORWARDS: usize = 1000;

impl KernelCore {
    /// Puts a send on the run queue, counting the references it holds.
    pub(crate) fn enqueue_send(&mut self, target: KRef, message: Message) -> Result<(), KernelError> {
        self.retain_message(Some(target), &message)?;
        self.store.push_run(&RunQueueItem::Send { target, message })?;
        Ok(())
    }

    /// An endpoint's `send` syscall (`syscalls.rs`): onto the run queue; or, a vat's send to an
    /// object a network peer owns when no work of any kind is waiting, to the peer at once,
    /// inside the sending crank.
    ///
    /// **Why.** A vat that sends many messages to a peer in one delivery (`E(remote).m()` in a
    /// loop) would queue them all, and only when its crank is over would the run loop route
    /// them, one crank each, while the peer waits for the first. Routed during the delivery,
    /// as its syscalls stream in (`ocap-vat`'s `deliver_streaming`), that work is done by the
    /// run loop while the vat still runs, and the frames leave with the crank's commit.
    ///
    /// **Why nothing can tell.** With the run queue empty and no kernel-service reply, GC
    /// action, cleanup or reap waiting, and no crank chosen to go next (`overlap.rs`), the
    /// crank after this one would route this send before any other run-queue item: whatever
    /// this crank queues later goes behind it, and what arrives from outside meanwhile (host
    /// calls, frames) is queued behind it too. Only work this same crank makes at its end and
    /// that outranks the queue (GC actions, a reap, a service reply) would have gone first;
    /// none of it concerns what the send carries, which the peer's c-list now holds.
    /// Routing it now writes the same c-list entries, decider and frame, in this crank's
    /// transaction instead of the next one's: if this crank is rolled back, so is the frame,
    /// and nothing leaves before the commit (output validity, remote-comms.md §5.3). Each
    /// later send of the delivery meets the same test, so sends to the peer keep their order.
    /// What the routing itself queues (a notify of an already settled promise the send
    /// carries, `translate.rs`) is queued now rather than one crank later: ahead of what the
    /// vat queues after this send, which cannot tell (the promise was settled already).
    pub(crate) fn send_from_endpoint(&mut self, target: KRef, message: Message) -> Result<(), KernelError> {
        let Some(peer) = self.peer_to_route_now(target, &message)? else {
            return self.enqueue_send(target, message);
        };
        // No queue item holds it: only the result is counted (`HeldBy::Sender`).
        if let Some(r) = message.result {
            self.incref(r)?;
        }
        if let Some(delivery) = self.prepare_message(peer.into(), target, target, message, HeldBy::Sender)? {
            self.send_to_peer(peer, delivery)?;
        }
        Ok(())
    }

    /// The peer a vat's send to `target` goes to at once (`send_from_endpoint`), if it may.
    fn peer_to_route_now(&self, target: KRef, message: &Message) -> Result<Option<RemoteId>, KernelError> {
        if !matches!(message.sender, Some(EndpointId::Vat(_))) || target.is_promise() || !self.has_peers() {
            return Ok(None);
        }
        let Some(rec) = self.store.object(target)? else { return Ok(None) };
        let peer = match rec.owner {
            Some(EndpointId::Remote(r)) if self.is_peer(r) && !rec.revoked => r,
            _ => return Ok(None),
        };
        Ok(self.nothing_waits()?.then_some(peer))
    }

    /// Whether the crank after this one would take, first, whatever this crank queues next
    /// (`send_from_endpoint`, `notify_peers_now`): the kernel has peers (only their work is
    /// routed at once), no crank is chosen to go next (`overlap.rs`), no kernel-service reply
    /// waits, and (read last: a statement) no run-queue item, GC action, cleanup or reap does.
    pub(crate) fn nothing_waits(&self) -> Result<bool, KernelError> {
        if !self.has_peers() || self.next_is_chosen() || !self.pending_replies.is_empty() {
            return Ok(false);
        }
        Ok(!self.store.pending_work()?.any())
    }

    /// A vat's `resolve` syscall made when `nothing_waits` (`syscalls.rs`): the notifies it
    /// queued for peers subscribed to those promises are routed at once, inside the resolving
    /// crank, as `send_from_endpoint` routes sends, for the same reasons (an answer to a peer
    /// leaves with the commit of the delivery that made it, not one crank later; in a
    /// sequence of calls from a peer that is one crank fewer per call, and the caller waits
    /// on every one). What the cranks after would have done, in the same order but for the
    /// end-of-crank work that outranks the queue (as for sends): the run queue held nothing
    /// before the syscall, so the notifies to peers at its head are what the resolutions
    /// queued, in their order, and each is taken with the items that join it in one frame
    /// (`notify_batch.rs`, the same rule). It stops at the first item of another kind (a
    /// notify to a vat, a message parked on a resolved promise), which waits for its crank
    /// with everything behind it. The entries the notifies settle are retired once the peer
    /// acknowledges them, registered at the commit (`Effect::RetireAfterAck`): this crank may
    /// still be rolled back after the syscall, and its seqs handed out again.
    pub(crate) fn notify_peers_now(&mut self) -> Result<(), KernelError> {
        while let Some((seq, RunQueueItem::Notify { endpoint_id: EndpointId::Remote(peer), kpid })) =
            self.store.peek_run()?
        {
            if !self.is_peer(peer) {
                break;
            }
            let ep = EndpointId::Remote(peer);
            self.store.remove_run(seq)?;
            let kpids: Vec<KRef> = self.take_notify_batch(seq, ep, kpid, None)?.into_iter().map(|(_, kp)| kp).collect();
            if let Some((delivery, kps)) = self.prepare_notify(ep, &kpids)? {
                self.send_to_peer(peer, delivery)?;
                self.retire_notified(ep, &kps)?;
            }
        }
        Ok(())
    }

    /// Rejects a message's result (if it is still unresolved) with `error`, on the kernel's
    /// authority, and releases the references the queue item held.
    pub(crate) fn splat(&mut self, item_target: KRef, msg: &Message, error: CapData<KRef>) -> Result<(), KernelError> {
        self.splat_held(HeldBy::QueueItem, item_target, msg, error)
    }

    /// `splat`, for a message whose references are held as `held` says.
    pub(crate) fn splat_held(
        &mut self,
        held: HeldBy,
        item_target: KRef,
        msg: &Message,
        error: CapData<KRef>,
    ) -> Result<(), KernelError> {
        if let Some(r) = msg.result {
            if self.store.promise_is_unresolved(r)? {
                self.resolve_promise(r, true, error)?;
            }
        }
        if held == HeldBy::Sender {
            // Not counted in, so not counted out: but what the message alone held (an
            // object the sender exported in it) is held by nobody now, as a queue item's
            // release would find; the end of the unit looks at each (`process_refcounts`).
            self.maybe_free.insert(item_target);
            self.maybe_free.extend(msg.methargs.slots.iter().copied());
        }
        self.release_held(held, item_target, msg, true)
    }

    pub(crate) fn route_send(&mut self, item_target: KRef, msg: Message) -> Result<Outcome, KernelError> {
        let mut target = item_target;
        for _ in 0..MAX_FORWARDS {
            if !target.is_promise() {
                return self.send_to_object(target, item_target, msg);
            }
            let p = self.store.promise(target)?.ok_or(KernelError::UnknownKref(target))?;
            match p.state {
                PromiseState::Unresolved => {
                    // Pipelining across kernels: a message to a promise a peer decides goes to
                    // the peer, which holds it where the answer will be (the JS kernel parks it
                    // here, §8.1, costing a round trip). Not past messages already parked on
                    // it (E-order): then it parks too, and all go on at the resolution.
                    if let Some(EndpointId::Remote(r)) = p.decider {
                        if self.is_peer(r)
                            && !self.store.has_parked(target)?
                            && self.store.clist_by_kref(r.into(), target)?.is_some()
                        {
                            return self.deliver_message(r.into(), target, item_target, msg);
                        }
                    }
                    self.store.park_message(target, &msg)?;
                    self.decref(item_target)?;
                    return Ok(Outcome::Commit);
                }
                PromiseState::Rejected => {
                    let value = p.value.unwrap_or_else(|| kernel_error("INTERNAL_ERROR", "rejected without a value"));
                    self.splat(item_target, &msg, value)?;
                    return Ok(Outcome::Commit);
                }
                PromiseState::Fulfilled => match p.value.as_ref().and_then(smallcaps::single_ref) {
                    Some(next) => target = next,
                    None => {
                        let err = kernel_error(
                            "BAD_PROMISE_RESOLUTION",
                            &format!("message sent to {item_target}, which was fulfilled to data"),
                        );
                        self.splat(item_target, &msg, err)?;
                        return Ok(Outcome::Commit);
                    }
                },
            }
        }
        let err = kernel_error("BAD_PROMISE_RESOLUTION", &format!("promise chain from {item_target} is too long"));
        self.splat(item_target, &msg, err)?;
        Ok(Outcome::Commit)
    }

    fn send_to_object(&mut self, obj: KRef, item_target: KRef, msg: Message) -> Result<Outcome, KernelError> {
        let deleted = || kernel_error("OBJECT_DELETED", "Target object has no owner; it may have been deleted");
        let Some(rec) = self.store.object(obj)? else {
            self.splat(item_target, &msg, deleted())?;
            return Ok(Outcome::Commit);
        };
        if rec.revoked {
            self.splat(item_target, &msg, kernel_error("OBJECT_REVOKED", "Target object has been revoked"))?;
            return Ok(Outcome::Commit);
        }
        match rec.owner {
            None => {
                self.splat(item_target, &msg, deleted())?;
                Ok(Outcome::Commit)
            }
            Some(EndpointId::Kernel) => {
                self.send_to_service(obj, item_target, msg)?;
                Ok(Outcome::Commit)
            }
            Some(ep) => self.deliver_message(ep, obj, item_target, msg),
        }
    }

    fn send_to_service(&mut self, service: KRef, item_target: KRef, msg: Message) -> Result<(), KernelError> {
        if self.system_only.contains(&service) {
            let allowed = match msg.sender {
                None => true,
                Some(EndpointId::Vat(vat)) => self.is_system_vat(vat)?,
                Some(_) => false,
            };
            if !allowed {
                // The same answer as for a service that does not exist (host-surface §4.5).
                let err = kernel_error("DELIVERY_FAILED", &format!("no registered kernel service for {service}"));
                return self.splat(item_target, &msg, err);
            }
        }
        let (method, args) = match smallcaps::kunser(&msg.methargs) {
            Ok(Value::Array(mut parts)) if parts.len() == 2 => match (parts.pop(), parts.pop()) {
                (Some(Value::Array(args)), Some(Value::String(method))) => (method, args),
                _ => return self.splat(item_target, &msg, kernel_error("DELIVERY_FAILED", "malformed method call")),
            },
            _ => return self.splat(item_target, &msg, kernel_error("DELIVERY_FAILED", "malformed method call")),
        };
        let result = match msg.result {
            Some(r) if self.store.promise_is_unresolved(r)? => {
                self.store.set_decider(r, Some(EndpointId::Kernel))?;
                Some(r)
            }
            _ => None,
        };
        let args = smallcaps::kser(&Value::Array(args));
        self.effects.push(Effect::InvokeService { service, method, args, result });
        self.release_message(Some(item_target), &msg, true)
    }
}
