//! Waiting for the other side of the thread boundary without paying a wake-up each time.
//!
//! A thread blocked on a channel is woken with a futex call, and on an idle core (a virtual
//! one especially) it runs again tens of microseconds later. In a steady exchange (a vat
//! answering one message after another) that latency lands on every hop, so both sides
//! first poll for a while, yielding the CPU between polls, and only then block.
//!
//! How long to poll is a bet on when the next message comes. The caller's side (the run
//! loop waiting for a delivery's reply) polls a fixed millisecond. A worker waiting for its
//! next command bets on the last gap it saw ([`AdaptiveSpin`]): a vat that receives a message
//! every few hundred microseconds polls past that gap and is never put to sleep, while one
//! that receives a message now and then polls only briefly and then sleeps, so idle vats do
//! not burn a core.

use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// Polls `rx` for up to `budget`, yielding the CPU between polls. `None` when nothing came
/// (or the sender is gone: the blocking receive that follows reports that).
pub(super) fn poll_briefly<T>(rx: &Receiver<T>, budget: Duration) -> Option<T> {
    let until = Instant::now() + budget;
    loop {
        match rx.try_recv() {
            Ok(v) => return Some(v),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) if Instant::now() < until => std::thread::yield_now(),
            Err(mpsc::TryRecvError::Empty) => return None,
        }
    }
}

/// The worker's polling budget, from the last wait it saw.
///
/// After a wait of `w` up to [`AdaptiveSpin::MAX`], the next poll lasts `1.5 × w` (at least
/// [`AdaptiveSpin::MIN`], at most `MAX`): long enough to catch a message that comes at the
/// same pace. After a longer wait it is `MIN` again. A worker never polls past its next
/// timer's deadline. Measured (BENCHMARKS.md, third session of 2026-12-01): a 1 ms poll
/// against the fixed 100 µs it replaced, all else equal, took `remote-seq` up about 30 %
/// and `vat-to-vat-pipelined` about 20 %; this one does as well without keeping every idle
/// vat polling for a millisecond after each message.
#[derive(Debug, Clone, Copy)]
pub(super) struct AdaptiveSpin {
    budget: Duration,
}

impl AdaptiveSpin {
    /// The shortest poll: what a worker does after a long idle time.
    pub(super) const MIN: Duration = Duration::from_micros(100);
    /// The longest poll, and the longest gap worth betting on.
    pub(super) const MAX: Duration = Duration::from_micros(2_000);

    pub(super) fn new() -> Self {
        AdaptiveSpin { budget: Self::MIN }
    }

    /// How long to poll before blocking.
    pub(super) fn budget(&self) -> Duration {
        self.budget
    }

    /// Forgets the pace: the next poll is the shortest (after a wait that something other than
    /// a command ended, such as a timer).
    pub(super) fn reset(&mut self) {
        self.budget = Self::MIN;
    }

    /// Records how long the last wait for a command lasted (polling and blocked).
    pub(super) fn observe(&mut self, waited: Duration) {
        self.budget = if waited <= Self::MAX { (waited * 3 / 2).clamp(Self::MIN, Self::MAX) } else { Self::MIN };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_follows_the_pace_of_messages_and_falls_back_after_a_long_idle() {
        let mut s = AdaptiveSpin::new();
        assert_eq!(s.budget(), AdaptiveSpin::MIN);
        s.observe(Duration::from_micros(600));
        assert_eq!(s.budget(), Duration::from_micros(900));
        s.observe(Duration::from_micros(10));
        assert_eq!(s.budget(), AdaptiveSpin::MIN, "never below the minimum");
        s.observe(Duration::from_micros(1_900));
        assert_eq!(s.budget(), AdaptiveSpin::MAX, "never above the maximum");
        s.observe(Duration::from_millis(50));
        assert_eq!(s.budget(), AdaptiveSpin::MIN, "an idle vat stops betting");
        s.observe(Duration::from_micros(800));
        s.reset();
        assert_eq!(s.budget(), AdaptiveSpin::MIN, "a reset forgets the pace");
    }

    #[test]
    fn polling_returns_what_was_sent_and_gives_up_after_its_budget() {
        let (tx, rx) = mpsc::channel();
        tx.send(7).unwrap();
        assert_eq!(poll_briefly(&rx, Duration::ZERO), Some(7));
        assert_eq!(poll_briefly(&rx, Duration::from_micros(50)), None::<i32>);
        drop(tx);
        assert_eq!(poll_briefly(&rx, Duration::from_millis(10)), None::<i32>, "a gone sender ends the poll");
    }
}
