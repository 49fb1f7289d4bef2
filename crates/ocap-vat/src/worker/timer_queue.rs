//! [`Timers`]: the vat's timer deadlines, a plain data structure with no JS in it.
//!
//! It is apart from `timers.rs` (the host functions and the JS side of a timer) because
//! [`HostState`](super::host_state::HostState) holds it, and the host functions use that
//! state: kept here, it depends on no sibling.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// The vat's timers, ordered by deadline (ties in creation order).
#[derive(Default)]
pub(super) struct Timers {
    queue: BTreeMap<(Instant, u64), u64>,
    entries: HashMap<u64, TimerEntry>,
    seq: u64,
}

struct TimerEntry {
    key: (Instant, u64),
    interval: Option<Duration>,
}

impl Timers {
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn set(&mut self, id: u64, delay: Duration, repeat: bool) {
        self.clear(id);
        self.schedule(id, Instant::now() + delay, repeat.then_some(delay));
    }

    fn schedule(&mut self, id: u64, at: Instant, interval: Option<Duration>) {
        self.seq += 1;
        let key = (at, self.seq);
        self.queue.insert(key, id);
        self.entries.insert(id, TimerEntry { key, interval });
    }

    pub(super) fn clear(&mut self, id: u64) {
        if let Some(entry) = self.entries.remove(&id) {
            self.queue.remove(&entry.key);
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.queue.keys().next().map(|(at, _)| *at)
    }

    /// The next timer due at `now`, rescheduling it if it repeats.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<u64> {
        let (&key, &id) = self.queue.iter().next()?;
        if key.0 > now {
            return None;
        }
        self.queue.remove(&key);
        let entry = self.entries.remove(&id)?;
        if let Some(interval) = entry.interval {
            self.schedule(id, now + interval, Some(interval));
        }
        Some(id)
    }
}
