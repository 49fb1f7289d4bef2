//! Where a run's time goes, thread by thread: spans of work (a step of a kernel's run loop, a
//! host job, a vat's delivery, a run loop's wait for a vat's reply), recorded only while
//! enabled (`ocap bench --timeline FILE`).
//!
//! A profiler says which code is hot; it does not say which thread waited for which, and in
//! two kernels sharing two cores that is most of the story (BENCHMARKS.md, "Where a
//! `remote-pipelined` run goes"). Three sessions built such a timeline from temporary timers;
//! this is it, kept. Disabled, a span costs one relaxed atomic load.
//!
//! Times are microseconds since the first use of the timeline in the process.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

static ENABLED: AtomicBool = AtomicBool::new(false);
static SPANS: Mutex<Vec<Span>> = Mutex::new(Vec::new());

/// One span of work on one thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The thread's name and id, as `ocap-run-loop#ThreadId(4)`.
    pub thread: String,
    /// What it did: `step`, `job`, `wait-vat`, `delivery`, or `measured` (the window a
    /// benchmark timed).
    pub kind: &'static str,
    /// µs since the timeline's epoch.
    pub start_us: u64,
    pub end_us: u64,
}

/// µs since the timeline's epoch (its first use in the process).
pub fn now_us() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Starts (or stops) recording, process-wide.
pub fn set_enabled(on: bool) {
    now_us();
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether spans are being recorded.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Runs `f`, recording it as a span of `kind` on this thread when the timeline is enabled.
pub fn span<T>(kind: &'static str, f: impl FnOnce() -> T) -> T {
    if !enabled() {
        return f();
    }
    let start = now_us();
    let out = f();
    record(kind, start, now_us());
    out
}

/// Records a span of `kind` on this thread from `start_us` to `end_us` (when enabled).
pub fn record(kind: &'static str, start_us: u64, end_us: u64) {
    if !enabled() {
        return;
    }
    let t = std::thread::current();
    let thread = format!("{}#{:?}", t.name().unwrap_or("unnamed"), t.id());
    if let Ok(mut spans) = SPANS.lock() {
        spans.push(Span { thread, kind, start_us, end_us });
    }
}

/// Takes every span recorded so far.
pub fn take() -> Vec<Span> {
    SPANS.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default()
}

/// A table of how busy each thread was with each kind of span, in percent of each `bin_us`
/// from `from_us` to `to_us`: one row per bin, one column per thread (threads in the order
/// they first worked), then each thread's total per kind in ms.
pub fn summary(spans: &[Span], from_us: u64, to_us: u64, bin_us: u64) -> String {
    let bin_us = bin_us.max(1);
    let mut threads: Vec<&str> = Vec::new();
    let mut sorted: Vec<&Span> = spans.iter().filter(|s| s.end_us > from_us && s.start_us < to_us).collect();
    sorted.sort_by_key(|s| s.start_us);
    for s in &sorted {
        if !threads.contains(&s.thread.as_str()) {
            threads.push(&s.thread);
        }
    }
    let mut kinds: Vec<&'static str> = sorted.iter().map(|s| s.kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let overlap = |s: &Span, lo: u64, hi: u64| s.end_us.min(hi).saturating_sub(s.start_us.max(lo));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "columns: {}",
        threads.iter().enumerate().map(|(i, t)| format!("[{i}] {t}")).collect::<Vec<_>>().join("  ")
    );
    let _ = writeln!(out, "busy % per {} ms bin, by kind ({})", bin_us / 1000, kinds.join(", "));
    let mut lo = from_us;
    while lo < to_us {
        let hi = lo.saturating_add(bin_us).min(to_us);
        let mut row = format!("{:>6} ms", (lo - from_us) / 1000);
        for t in &threads {
            let cells: Vec<String> = kinds
                .iter()
                .filter_map(|k| {
                    let busy: u64 =
                        sorted.iter().filter(|s| s.thread == *t && s.kind == *k).map(|s| overlap(s, lo, hi)).sum();
                    (busy > 0).then(|| format!("{}:{:>3}", &k[..1], busy * 100 / (hi - lo).max(1)))
                })
                .collect();
            let _ = write!(row, " | {:<18}", cells.join(" "));
        }
        let _ = writeln!(out, "{row}");
        lo = hi;
    }
    for (i, t) in threads.iter().enumerate() {
        let totals: Vec<String> = kinds
            .iter()
            .filter_map(|k| {
                let busy: u64 =
                    sorted.iter().filter(|s| s.thread == *t && s.kind == *k).map(|s| overlap(s, from_us, to_us)).sum();
                (busy > 0).then(|| format!("{k} {:.1} ms", busy as f64 / 1000.0))
            })
            .collect();
        let _ = writeln!(out, "[{i}] {t}: {}", totals.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(thread: &str, kind: &'static str, start_us: u64, end_us: u64) -> Span {
        Span { thread: thread.into(), kind, start_us, end_us }
    }

    #[test]
    fn the_summary_gives_each_threads_share_of_each_bin_and_its_totals() {
        let spans = vec![
            span("a", "step", 0, 500),
            span("a", "wait-vat", 500, 1_000),
            span("b", "delivery", 250, 1_750),
            span("c", "step", 5_000, 6_000),
        ];
        let table = summary(&spans, 0, 2_000, 1_000);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].contains("[0] a") && lines[0].contains("[1] b"), "{table}");
        assert!(!table.contains("[2] c"), "a thread outside the window is left out: {table}");
        assert!(lines[2].contains("s: 50 w: 50") && lines[2].contains("d: 75"), "{table}");
        assert!(lines[3].contains("d: 75"), "{table}");
        assert!(table.contains("[0] a: step 0.5 ms, wait-vat 0.5 ms"), "{table}");
        assert!(table.contains("[1] b: delivery 1.5 ms"), "{table}");
    }

    #[test]
    fn spans_are_recorded_only_while_enabled() {
        set_enabled(false);
        assert_eq!(super::span("step", || 7), 7);
        set_enabled(true);
        super::span("job", || ());
        set_enabled(false);
        let spans = take();
        assert_eq!(spans.iter().filter(|s| s.kind == "job").count(), 1);
        assert!(spans.iter().all(|s| s.kind != "step"));
        assert!(spans.iter().all(|s| s.end_us >= s.start_us));
    }
}
