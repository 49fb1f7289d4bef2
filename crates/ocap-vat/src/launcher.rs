//! `JsVatLauncher`: starts JS vats for the kernel (`ocap_abi::launch::VatLauncher`).
//!
//! It resolves a vat's code through its `CodeCache` (`code.rs`: a `bundleSpec` path or `file:` URL, or a `sourceSpec` JS file
//! bundled on the fly by [`crate::bundle_vat`], against the vat's own `node_modules` and then the
//! packages embedded in the binary, never the build directory), starts a `JsVat` on the
//! persisted vatstore, and routes the worker's events: asynchronous syscalls and death go to
//! the kernel's run loop through the `VatEventSink`; log records go to `tracing`, tagged with
//! the vat ID and name.

use std::path::PathBuf;
use std::sync::Arc;

use ocap_abi::launch::{LaunchRequest, LaunchedVat, VatCodeLoader, VatEvent, VatEventSink, VatLauncher};
use ocap_abi::refs::VatId;

use crate::code::CodeCache;
use crate::endpoint::{parse_syscalls, JsVat};
use crate::{WorkerEvent, WorkerOptions};

/// Limits and locations for the vats a launcher starts.
#[derive(Debug, Clone, Default)]
pub struct LauncherOptions {
    /// Relative `sourceSpec` and `bundleSpec` paths resolve against this directory.
    pub base_dir: Option<PathBuf>,
    /// Kernel-wide allowlist of optional globals; `None` allows all 20.
    pub allowed_globals: Option<Vec<String>>,
    /// Per-vat heap limit; `None` uses the worker default.
    pub memory_limit_bytes: Option<usize>,
    /// Per-delivery time budget; `None` uses the worker default.
    pub delivery_timeout_ms: Option<u64>,
    /// Largest bundle file read; `None` uses `DEFAULT_MAX_BUNDLE_BYTES` (64 MiB).
    pub max_bundle_bytes: Option<u64>,
}

/// Starts JS vats.
pub struct JsVatLauncher {
    sink: VatEventSink,
    opts: LauncherOptions,
    /// Vat code, read and bundled safely and cached (`code.rs`); shared with the kernel as
    /// its `VatCodeLoader`.
    code: Arc<CodeCache>,
}

impl JsVatLauncher {
    pub fn new(sink: VatEventSink, opts: LauncherOptions) -> JsVatLauncher {
        let max = opts.max_bundle_bytes.unwrap_or(crate::bundle::DEFAULT_MAX_BUNDLE_BYTES);
        let code = Arc::new(CodeCache::new(opts.base_dir.clone(), max));
        JsVatLauncher { sink, opts, code }
    }
}

/// Everything needed to start one worker, prepared on the caller's thread.
struct Prepared {
    vat: VatId,
    options: WorkerOptions,
    vat_config: serde_json::Value,
    bundle_text: Option<String>,
    vatstore: Vec<(String, String)>,
    events: Box<dyn Fn(WorkerEvent) + Send>,
}

impl JsVatLauncher {
    fn prepare(&mut self, request: LaunchRequest) -> Result<Prepared, String> {
        let LaunchRequest { vat, name: vat_name, mut config, vatstore, max_syscalls_per_delivery } = request;
        let code = self.code.code_for(&config)?;
        config.bundle_spec = Some(code.bundle_spec);
        config.source_spec = None;
        let bundle_text = Some(String::clone(&code.text));
        let vat_config = serde_json::to_value(&config).map_err(|e| e.to_string())?;
        let mut options = WorkerOptions::new(vat.to_string(), vat_name.as_str());
        options.allowed_globals = self.opts.allowed_globals.clone();
        // The kernel's limit: the worker stops a delivery where the kernel would refuse it.
        options.max_syscalls_per_delivery = max_syscalls_per_delivery;
        if let Some(m) = self.opts.memory_limit_bytes {
            options.memory_limit_bytes = m;
        }
        if let Some(t) = self.opts.delivery_timeout_ms {
            options.delivery_timeout_ms = t;
        }
        // The vat's own budget, up or down from the kernel's (`creationOptions.deliveryBudgetMs`).
        if let Some(t) = config.delivery_budget_ms() {
            options.delivery_timeout_ms = t;
        }
        let sink = self.sink.clone();
        let events = Box::new(move |event: WorkerEvent| match event {
            WorkerEvent::AsyncSyscalls { syscalls } => sink(vat, VatEvent::AsyncSyscalls(parse_syscalls(&syscalls))),
            WorkerEvent::Died { reason } => sink(vat, VatEvent::Died(reason)),
            WorkerEvent::Log { level, tags, message, data } => {
                let data = if data.is_empty() { String::new() } else { serde_json::Value::Array(data).to_string() };
                let tags = tags.join(",");
                match level.as_str() {
                    "error" => {
                        tracing::error!(target: "ocap::vat", tags, "[{vat_name} {vat}] {message} {data}")
                    }
                    "warn" => {
                        tracing::warn!(target: "ocap::vat", tags, "[{vat_name} {vat}] {message} {data}")
                    }
                    "debug" => {
                        tracing::debug!(target: "ocap::vat", tags, "[{vat_name} {vat}] {message} {data}")
                    }
                    _ => tracing::info!(target: "ocap::vat", tags, "[{vat_name} {vat}] {message} {data}"),
                }
            }
        });
        Ok(Prepared { vat, options, vat_config, bundle_text, vatstore, events })
    }

    fn start(sink: &VatEventSink, p: Prepared) -> Result<LaunchedVat, String> {
        let vat = p.vat;
        let (endpoint, start) =
            JsVat::start(p.options, &p.vat_config, p.bundle_text, p.vatstore, p.events).map_err(|e| e.to_string())?;
        if !start.syscalls.is_empty() {
            // A restarted vat's buildRootObject may message what it kept in baggage: those
            // syscalls run as the vat's own work right after it is attached.
            sink(vat, VatEvent::AsyncSyscalls(start.syscalls));
        }
        Ok(LaunchedVat {
            endpoint: Box::new(endpoint),
            vatstore_sets: start.vatstore_sets,
            vatstore_deletes: start.vatstore_deletes,
        })
    }
}

impl VatLauncher for JsVatLauncher {
    fn code_loader(&self) -> Option<Arc<dyn VatCodeLoader>> {
        Some(self.code.clone())
    }

    fn launch(&mut self, request: LaunchRequest) -> Result<LaunchedVat, String> {
        let p = self.prepare(request)?;
        Self::start(&self.sink, p)
    }

    /// Starts the workers on as many threads as the machine has cores: a worker's start is
    /// CPU-bound (evaluating the bundle, liveslots' startVat), and workers share nothing.
    fn launch_many(&mut self, requests: Vec<LaunchRequest>) -> Vec<Result<LaunchedVat, String>> {
        let prepared: Vec<Result<Prepared, String>> = requests.into_iter().map(|r| self.prepare(r)).collect();
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).max(1);
        let sink = &self.sink;
        let slots: Vec<std::sync::Mutex<Option<Result<Prepared, String>>>> =
            prepared.into_iter().map(|p| std::sync::Mutex::new(Some(p))).collect();
        let results: Vec<std::sync::Mutex<Option<Result<LaunchedVat, String>>>> =
            (0..slots.len()).map(|_| std::sync::Mutex::new(None)).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..threads.min(slots.len()) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= slots.len() {
                        break;
                    }
                    let Some(p) = slots[i].lock().ok().and_then(|mut g| g.take()) else { continue };
                    let r = p.and_then(|p| Self::start(sink, p));
                    if let Ok(mut g) = results[i].lock() {
                        *g = Some(r);
                    }
                });
            }
        });
        results
            .into_iter()
            .map(|m| m.into_inner().ok().flatten().unwrap_or_else(|| Err("vat start was lost".into())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use ocap_abi::config::VatConfig;

    use super::*;

    /// The worker's syscall limit is the one the kernel puts in the request, not a copy.
    #[test]
    fn a_worker_gets_the_syscall_limit_of_its_launch_request() {
        let sink: VatEventSink = Arc::new(|_, _| {});
        let base_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vats");
        let mut launcher =
            JsVatLauncher::new(sink, LauncherOptions { base_dir: Some(base_dir), ..LauncherOptions::default() });
        let config = VatConfig { source_spec: Some("empty-vat.js".into()), ..VatConfig::default() };
        let request = LaunchRequest {
            vat: VatId(1),
            name: "empty".into(),
            config,
            vatstore: vec![],
            max_syscalls_per_delivery: 7,
        };
        let prepared = launcher.prepare(request).unwrap_or_else(|e| panic!("preparing empty-vat.js: {e}"));
        assert_eq!(prepared.options.max_syscalls_per_delivery, 7);
        assert_eq!(prepared.options.vat_id, "v1");
        assert_eq!(prepared.options.name, "empty");
    }
}
