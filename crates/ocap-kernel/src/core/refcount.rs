//! Reference counting on SwingSet's model, and end-of-unit garbage processing.
//!
//! Objects carry (reachable, recognizable): import c-list entries (reachable only while their
//! flag is set), run-queue and parked-message references, promise-value references and pins.
//! The exporter's own c-list entry is not counted. Promises carry one count: every c-list
//! entry, queue reference, promise-value reference and the host's watch. A promise's
//! reference to itself in its own value is not counted, so self-cycles can be collected.
//! See docs/gc.md for the rules and their reasons.

use super::{KernelCore, KernelError};
use crate::refs::{EndpointId, KRef};
use crate::store::promises::PromiseState;
use crate::store::{GcActionKind, Message};

/// What counts a message's references while it is routed (`delivery.rs`, `prepare_message`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeldBy {
    /// A run-queue item (or a message parked on a promise): its target, result and slots are
    /// counted (`retain_message`) and released once it is delivered or rejected.
    QueueItem,
    /// Only its sender, in the crank that sends it (`router.rs`, `send_from_endpoint`): the
    /// target and slots are kept alive by the sender's c-list until the crank ends (counts
    /// that reach zero are looked at only then, `process_refcounts`), so they are neither
    /// counted in nor out, two updates and two reads each that would cancel. The result is
    /// counted, as for a queue item: the receiver's new c-list entry takes that count over.
    /// A message refused on the way (`splat_held`) puts its target and slots among the GC
    /// candidates, which a queue item's release would have done for what reached zero.
    Sender,
}

impl KernelCore {
    /// One more reference (reachable and recognizable for objects).
    pub(crate) fn incref(&mut self, kref: KRef) -> Result<(), KernelError> {
        match kref {
            KRef::Object(_) => {
                self.store.adjust_object(kref, 1, 1)?;
            }
            KRef::Promise(_) => {
                self.store.adjust_promise(kref, 1)?;
            }
        }
        Ok(())
    }

    /// One reference fewer; a count reaching zero makes the kref a GC candidate.
    pub(crate) fn decref(&mut self, kref: KRef) -> Result<(), KernelError> {
        match kref {
            KRef::Object(_) => {
                if let Some((reachable, _)) = self.store.adjust_object(kref, -1, -1)? {
                    if reachable == 0 {
                        self.maybe_free.insert(kref);
                    }
                }
            }
            KRef::Promise(_) => {
                if self.store.adjust_promise(kref, -1)? == Some(0) {
                    self.maybe_free.insert(kref);
                }
            }
        }
        Ok(())
    }

    /// Releases what holds `msg` on its way (`HeldBy`): all of it for a queue item
    /// (`release_message`), only the result for a send routed in its sender's crank.
    pub(crate) fn release_held(
        &mut self,
        held: HeldBy,
        item_target: KRef,
        msg: &Message,
        release_result: bool,
    ) -> Result<(), KernelError> {
        match (held, msg.result) {
            (HeldBy::QueueItem, _) => self.release_message(Some(item_target), msg, release_result),
            (HeldBy::Sender, Some(r)) if release_result => self.decref(r),
            (HeldBy::Sender, _) => Ok(()),
        }
    }

    /// Counts the references a queued message holds: its target (on the run queue; a message
    /// parked on a promise does not count the promise it waits on), its result and its slots.
    /// Paired with `release_message`.
    pub(crate) fn retain_message(&mut self, target: Option<KRef>, msg: &Message) -> Result<(), KernelError> {
        if let Some(t) = target {
            self.incref(t)?;
        }
        if let Some(r) = msg.result {
            self.incref(r)?;
        }
        for s in &msg.methargs.slots {
            self.incref(*s)?;
        }
        Ok(())
    }

    /// Releases what `retain_message` counted. `release_result` is false when the result's
    /// reference was handed on instead (to the receiver's new c-list entry, `import_result`).
    pub(crate) fn release_message(
        &mut self,
        target: Option<KRef>,
        msg: &Message,
        release_result: bool,
    ) -> Result<(), KernelError> {
        if let Some(t) = target {
            self.decref(t)?;
        }
        if let (Some(r), true) = (msg.result, release_result) {
            self.decref(r)?;
        }
        for s in &msg.methargs.slots {
            self.decref(*s)?;
        }
        Ok(())
    }

    /// Examines every candidate: deletes unreferenced promises (releasing their values),
    /// schedules dropExport/retireExport for unreachable exports, retires or deletes orphans.
    pub(crate) fn process_refcounts(&mut self) -> Result<(), KernelError> {
        while let Some(kref) = self.maybe_free.pop_first() {
            match kref {
                KRef::Promise(_) => self.maybe_free_promise(kref)?,
                KRef::Object(_) => self.maybe_free_object(kref)?,
            }
        }
        Ok(())
    }

    fn maybe_free_promise(&mut self, kpid: KRef) -> Result<(), KernelError> {
        let Some(p) = self.store.promise(kpid)? else {
            return Ok(());
        };
        if p.refcount > 0 {
            return Ok(());
        }
        if p.state == PromiseState::Unresolved {
            // Nobody can resolve or observe it any more: release what its parked messages hold.
            for msg in self.store.take_parked(kpid)? {
                self.release_message(None, &msg, true)?;
            }
            self.store.delete_promise(kpid)?;
        } else {
            if let Some(value) = &p.value {
                for s in &value.slots {
                    if *s != kpid {
                        self.decref(*s)?;
                    }
                }
            }
            self.store.delete_settled_promise(kpid)?;
        }
        Ok(())
    }

    fn maybe_free_object(&mut self, kref: KRef) -> Result<(), KernelError> {
        let Some(rec) = self.store.object(kref)? else {
            return Ok(());
        };
        if rec.reachable > 0 {
            return Ok(());
        }
        match rec.owner {
            Some(ep @ (EndpointId::Vat(_) | EndpointId::Remote(_))) => {
                if !self.store.endpoint_is_active(ep)? {
                    // The terminated endpoint's cleanup orphans it and looks again.
                    return Ok(());
                }
                if let Some(entry) = self.store.clist_by_kref(ep, kref)? {
                    if entry.reachable {
                        self.store.add_gc_action(ep, GcActionKind::DropExport, kref)?;
                    }
                    if rec.recognizable == 0 {
                        self.store.add_gc_action(ep, GcActionKind::RetireExport, kref)?;
                    }
                }
            }
            Some(EndpointId::Kernel) => {}
            None => {
                if rec.recognizable == 0 {
                    self.store.delete_object(kref)?;
                } else {
                    // An orphan nobody can reach can never be reached again: tell the
                    // importers that still recognise it to forget it.
                    for (importer, _) in self.store.importers(kref)? {
                        self.store.add_gc_action(importer, GcActionKind::RetireImport, kref)?;
                    }
                }
            }
        }
        Ok(())
    }
}
