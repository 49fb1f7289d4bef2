//! Wake-from-sleep detection (remote-comms.md §9.4): a wall-clock jump between two ticks of
//! a timer means the process (or the machine) was suspended, and backoffs grown while the
//! network was unreachable no longer say anything about the peers.
//!
//! The wall clock is read, not tokio's: tokio's clock is monotonic, and on Linux the
//! monotonic clock stops while the machine is suspended, so the timer itself never sees
//! the gap.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A source of wall-clock time ([`crate::NetOptions::wall_clock`]): the system clock unless a
/// host or a test supplies its own.
#[derive(Clone)]
pub struct WallClock(Arc<dyn Fn() -> SystemTime + Send + Sync>);

impl WallClock {
    /// [`SystemTime::now`].
    pub fn system() -> Self {
        Self(Arc::new(SystemTime::now))
    }

    /// A clock reading `now` (called from the transport's thread, once per wake-detector tick).
    pub fn new(now: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    /// The current time.
    pub fn now(&self) -> SystemTime {
        (self.0)()
    }
}

impl Default for WallClock {
    fn default() -> Self {
        Self::system()
    }
}

impl std::fmt::Debug for WallClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WallClock")
    }
}

/// Whether the wall clock moved from `last` to `now` by more than one `tick` plus
/// `threshold` (§9.4: 15 s and 30 s in JS). A clock set backwards is no wake.
pub(crate) fn jumped(last: SystemTime, now: SystemTime, tick: Duration, threshold: Duration) -> bool {
    now.duration_since(last).is_ok_and(|gap| gap > tick.saturating_add(threshold))
}

/// Calls `on_wake` whenever the clock jumped between two ticks, until `stopped` holds.
pub(crate) async fn detect(
    clock: WallClock,
    tick: Duration,
    threshold: Duration,
    stopped: impl Fn() -> bool,
    on_wake: impl Fn(),
) {
    // tokio panics on a zero period.
    let tick = tick.max(Duration::from_millis(1));
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = clock.now();
    loop {
        timer.tick().await;
        if stopped() {
            return;
        }
        let now = clock.now();
        if jumped(last, now, tick, threshold) {
            tracing::info!("wake from sleep detected (clock jumped): resetting reconnection backoffs");
            on_wake();
        }
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_jump_beyond_tick_and_threshold_is_a_wake() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let (tick, threshold) = (Duration::from_secs(15), Duration::from_secs(30));
        assert!(!jumped(t0, t0 + Duration::from_secs(15), tick, threshold));
        assert!(!jumped(t0, t0 + Duration::from_secs(45), tick, threshold));
        assert!(jumped(t0, t0 + Duration::from_millis(45_001), tick, threshold));
        assert!(!jumped(t0, t0 - Duration::from_secs(3600), tick, threshold));
    }
}
