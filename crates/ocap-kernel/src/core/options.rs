//! `KernelOptions`: the kernel's limits and policies. Every bound has its unit in its name.

/// Limits and policies. Every bound has its unit in its name.
#[derive(Debug, Clone)]
pub struct KernelOptions {
    /// Deliveries between automatic bring-out-your-dead for a vat that does not set its own.
    ///
    /// Default 1,000, the `defaultReapInterval` of Agoric's chain configurations. (The JS
    /// kernel reaps only when its host asks, so a vat's dropped imports are never released
    /// otherwise.) A reap is a full collection of the vat's QuickJS heap, so it costs in
    /// proportion to what the vat holds: with 1,000 promises in flight, reaping every 200
    /// deliveries cost `remote-pipelined` about 12 % (BENCHMARKS.md, third session of
    /// 2026-12-01). Stored with each vat when it is created: changing it leaves existing
    /// vats as they were.
    pub default_reap_interval_deliveries: u64,
    /// Cranks that may share one SQLite commit when nothing is waiting on them.
    pub max_cranks_per_commit: u32,
    /// C-list entries cleaned per crank for a terminated endpoint.
    pub cleanup_budget_entries: usize,
    /// Syscalls one delivery may make before the vat is terminated. The kernel counts them,
    /// and hands the same limit to every vat worker it launches (`LaunchRequest`), which stops
    /// a delivery that makes more before buffering them all.
    pub max_syscalls_per_delivery: usize,
    /// Run-queue length past which a vat's further sends are refused (illegal syscall).
    pub max_run_queue_items: u64,
    pub max_vatstore_key_bytes: usize,
    pub max_vatstore_value_bytes: usize,
    /// Run the invariant checker (`store::invariants`) after every crank, for debugging: the
    /// first crank that leaves the store inconsistent is reported (`KernelError::Invariants`,
    /// logged by the run loop) with what is wrong. Slow: it reads the whole store each time.
    pub check_invariants_every_crank: bool,
    /// Run the next delivery, when it goes to another vat and cannot depend on the current
    /// one, at the same time as the current one (`docs/cranks.md`, `core/overlap.rs`). The
    /// order of cranks is the same either way; only the waiting differs.
    pub overlap_deliveries: bool,
    /// The most run-queue `notify` items one delivery may carry. Consecutive notifies to the
    /// same vat at the head of the run queue are delivered together, as one `notify` whose
    /// resolutions are in queue order (liveslots takes a batch like this already: spec
    /// kernel-core.md §4.3), so a vat that many answers come back to pays one delivery and
    /// one crank for them (`docs/cranks.md`, "Notify batches"). The batch is one delivery
    /// for the vat's delivery budget and syscall limit. 1 delivers each item on its own,
    /// as the JS kernel does.
    pub max_notifies_per_delivery: usize,
}

impl Default for KernelOptions {
    fn default() -> Self {
        KernelOptions {
            default_reap_interval_deliveries: 1_000,
            max_cranks_per_commit: 64,
            cleanup_budget_entries: 64,
            max_syscalls_per_delivery: ocap_abi::launch::DEFAULT_MAX_SYSCALLS_PER_DELIVERY,
            max_run_queue_items: 1_000_000,
            max_vatstore_key_bytes: 4 * 1024,
            max_vatstore_value_bytes: 16 * 1024 * 1024,
            check_invariants_every_crank: false,
            overlap_deliveries: true,
            max_notifies_per_delivery: 32,
        }
    }
}
