//! Kernel promise resolution (spec kernel-core.md §4.1, with §12.4's ordering).

use super::{Effect, KernelCore, KernelError};
use crate::capdata::CapData;
use crate::refs::KRef;
use crate::store::promises::PromiseState;
use crate::store::RunQueueItem;

impl KernelCore {
    /// Settles `kpid`. Authority (who may resolve) is checked by the caller. In order:
    /// the value's references are counted; every subscriber gets a notify; the messages
    /// parked on the promise are re-queued at the head of the run queue, still targeting it,
    /// so the router re-routes them through the new state before any later send to it; the
    /// host, if it was waiting, is told after the commit.
    pub(crate) fn resolve_promise(
        &mut self,
        kpid: KRef,
        rejected: bool,
        value: CapData<KRef>,
    ) -> Result<(), KernelError> {
        let p = self.store.promise_status(kpid)?.ok_or(KernelError::UnknownKref(kpid))?;
        if p.state != PromiseState::Unresolved {
            return Err(KernelError::Internal(format!("{kpid} was already resolved")));
        }
        for s in &value.slots {
            if *s != kpid {
                self.incref(*s)?;
            }
        }
        let parked = self.store.take_parked(kpid)?;
        // Also clears the host's watch; its count is released below.
        let subscribers = self.store.settle_promise(kpid, rejected, &value)?;
        for endpoint_id in subscribers {
            self.incref(kpid)?;
            self.store.push_run(&RunQueueItem::Notify { endpoint_id, kpid })?;
        }
        // The parked messages go to the head of the run queue, in their order: anything
        // already queued for this promise was sent after them (E-order, issue 10 item 4).
        let mut requeued = Vec::with_capacity(parked.len());
        for message in parked {
            // The parked message already counts its result and slots; add the target.
            self.incref(kpid)?;
            requeued.push(RunQueueItem::Send { target: kpid, message });
        }
        self.store.push_run_front(&requeued)?;
        if p.host_watch {
            // The host now holds the objects it was given: pin them, so a kref from a result
            // stays usable until the host unpins it.
            for s in &value.slots {
                if !s.is_promise() && self.store.object(*s)?.is_some() {
                    self.store.adjust_pins(*s, 1)?;
                    self.incref(*s)?;
                }
            }
            let result = if rejected { Err(value) } else { Ok(value) };
            self.effects.push(Effect::HostResolved { kpid, result });
            self.decref(kpid)?;
        }
        Ok(())
    }
}
