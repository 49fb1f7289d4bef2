//! The machine's CPU time as the kernel counts it (`/proc/stat`, Linux), so that `ocap bench`
//! can say beside each figure how much of the machine's time was stolen from it: on a
//! virtual machine, time its virtual CPUs were ready to run while the host ran something
//! else. Latency-bound workloads (`remote-seq`) lose far more than that share, since every
//! hand-off between threads may wait for the host; a figure taken while the steal was high
//! is not comparable with one taken while it was near zero (BENCHMARKS.md).

/// Cumulative CPU time of all CPUs, in the kernel's ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CpuTimes {
    /// Every state summed (user, nice, system, idle, iowait, irq, softirq, steal).
    total: u64,
    /// Time stolen by the hypervisor.
    steal: u64,
}

impl CpuTimes {
    /// The counters now; `None` where `/proc/stat` cannot be read or parsed.
    pub(crate) fn now() -> Option<CpuTimes> {
        parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// The share of the machine's time stolen between `earlier` and `self`, in percent;
    /// `None` if no time passed.
    pub(crate) fn steal_pct_since(&self, earlier: &CpuTimes) -> Option<f64> {
        // Linux's idle and iowait counters can step back a little (per-CPU accounting): the
        // total is then short, never negative, and the share is capped at 100.
        let total = self.total.checked_sub(earlier.total).filter(|t| *t > 0)?;
        let steal = self.steal.saturating_sub(earlier.steal);
        Some((100.0 * steal as f64 / total as f64).min(100.0))
    }
}

/// Reads the `cpu` line (all CPUs): `cpu user nice system idle iowait irq softirq steal
/// [guest guest_nice]`. Guest time is already counted in user time, so it is left out.
fn parse(stat: &str) -> Option<CpuTimes> {
    let line = stat.lines().find(|l| l.split_whitespace().next() == Some("cpu"))?;
    let fields: Vec<u64> = line.split_whitespace().skip(1).map(|f| f.parse().ok()).collect::<Option<_>>()?;
    let first_eight = fields.get(..8)?;
    Some(CpuTimes { total: first_eight.iter().sum(), steal: first_eight[7] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_all_cpus_line_gives_total_and_steal() {
        let stat = "cpu  100 5 50 800 10 1 4 30 7 0\ncpu0 50 2 25 400 5 0 2 15 3 0\nintr 1 2 3\n";
        assert_eq!(parse(stat), Some(CpuTimes { total: 1000, steal: 30 }));
        let later = CpuTimes { total: 1200, steal: 80 };
        assert_eq!(later.steal_pct_since(&CpuTimes { total: 1000, steal: 30 }), Some(25.0));
        assert_eq!(later.steal_pct_since(&later), None, "no time passed");
        let odd = CpuTimes { total: 1010, steal: 80 };
        assert_eq!(odd.steal_pct_since(&CpuTimes { total: 1000, steal: 30 }), Some(100.0), "capped");
    }

    #[test]
    fn a_line_it_cannot_read_gives_nothing() {
        assert_eq!(parse("cpu0 1 2 3\n"), None, "no all-CPUs line");
        assert_eq!(parse("cpu 1 2 3 4\n"), None, "an old kernel without steal");
        assert_eq!(parse("cpu 1 2 x 4 5 6 7 8\n"), None);
    }

    #[test]
    fn this_machine_has_counters_that_move() {
        let Some(before) = CpuTimes::now() else {
            eprintln!("skipped: no /proc/stat here");
            return;
        };
        // Busy for a moment, so that at least this thread's time is counted.
        let mut after = before;
        let mut spins = 0u64;
        while after.total <= before.total && spins < 50_000_000 {
            spins += 1;
            if spins.is_multiple_of(100_000) {
                after = CpuTimes::now().expect("read again");
            }
        }
        let Some(pct) = after.steal_pct_since(&before) else {
            eprintln!("skipped: /proc/stat here does not count this process's time");
            return;
        };
        assert!((0.0..=100.0).contains(&pct), "{pct}");
    }
}
