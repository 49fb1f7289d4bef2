//! `ocap bench`: the workloads of benchmarks.md, on real JS vats and the file-backed SQLite
//! store (WAL, synchronous=NORMAL: what is acknowledged survives `kill -9`).
//!
//! Each workload prints one JSON line (`{"workload", "n", "median", "unit", ...}`); a table
//! for people follows unless `--json` is given. The vats are in `crates/ocap-cli/bench/vats`.
//!
//! Every line also says what it was measured on: `commit` (`git rev-parse --short HEAD` when
//! the binary was built, "unknown" without git; uncommitted changes are not flagged), `cores`
//! (the CPUs this process may run on, `std::thread::available_parallelism`, which honours
//! `taskset` and cgroup quotas) and `run_count` (the runs the median is taken over).
//!
//! `fan-out` is the workload for "how it scales with cores": run it as is for the machine's
//! figure and under `taskset -c 0 ocap bench fan-out` for the one-core figure (`cores` then
//! says 1).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use ocap_kernel::config::ClusterConfig;
use ocap_kernel::smallcaps::{kunser, Value};
use ocap_kernel::store::{Durability, Store};
use ocap_kernel::timeline;
use ocap_kernel::{KRef, Kernel, KernelConfig};
use ocap_vat::{JsVatLauncher, LauncherOptions};
use serde_json::json;

use crate::cpu_time::CpuTimes;
use crate::CliError;

pub const WORKLOADS: [&str; 17] = [
    "launch-1",
    "launch-10",
    "launch-100",
    "launch-1000",
    "host-to-vat",
    "vat-to-vat-seq",
    "vat-to-vat-pipelined",
    "durable-counter",
    "restart-10",
    "gc-churn",
    "restart-vat",
    "runaway",
    "remote-seq",
    "remote-pipelined",
    "remote-seq-quic",
    "remote-pipelined-quic",
    "fan-out",
];

/// Workloads run only when named: `launch-1000` takes ~45 s and ~5.3 GB of memory, too much
/// for the default set (which CI runs as a smoke test).
const BY_NAME_ONLY: [&str; 1] = ["launch-1000"];

/// The commit the binary was built from (see `build.rs`).
const COMMIT: &str = match option_env!("OCAP_GIT_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

/// `fan-out`: the peers the fanning vat sends to in each round.
const FAN_OUT_PEERS: usize = 10;

/// The `runaway` workload's per-vat delivery budget (`creationOptions.deliveryBudgetMs`).
const RUNAWAY_BUDGET_MS: u64 = 200;

/// `restart-vat` restarts the vat `n / RESTART_VAT_DIVISOR` times (200 at the default
/// `--n 1000`, 4 in the CI smoke run).
const RESTART_VAT_DIVISOR: usize = 5;

#[derive(Args)]
#[command(after_help = "Each JSON line carries the commit built from, the cores this process may use \
                        (`cores`) and the run count. For the one-core figure of `fan-out` (or any \
                        workload), run it under `taskset -c 0`, e.g. `taskset -c 0 ocap bench \
                        fan-out`.")]
pub struct BenchArgs {
    /// Workloads to run (default: all but `launch-1000`). `fan-out`: one vat sends `ping` to 10 vats at once and
    /// awaits all, `--n` rounds; `launch-1000`: 1,000 idle vats in one subcluster.
    pub workloads: Vec<String>,
    /// Messages per workload (benchmarks.md uses 1000; rounds for `fan-out`).
    #[arg(long, default_value_t = 1000)]
    pub n: usize,
    /// Deliver one crank at a time (no overlapping deliveries to different vats), to compare.
    #[arg(long)]
    pub no_overlap: bool,
    /// Runs per workload; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Record what every run-loop and vat thread did in the last run of each workload: the
    /// spans go to this file (CSV `workload,thread,kind,start_us,end_us`, µs from the start
    /// of the timed window) and a table of each thread's busy % per 25 ms to stderr.
    #[arg(long, value_name = "FILE")]
    pub timeline: Option<PathBuf>,
}

/// One measured figure.
struct Figure {
    workload: String,
    n: usize,
    median: f64,
    unit: &'static str,
    extra: BTreeMap<String, serde_json::Value>,
}

fn bench_vats() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/vats"))
}

/// The path of the bench vat's bundle while a [`BenchBundle`] lives; `None` (the vats are
/// bundled from source at launch) otherwise, or if writing it failed.
static BENCH_BUNDLE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// The bench vat bundled before anything is timed (bundling is not what the workloads
/// measure; the JS kernel's figures are for pre-built bundles too), in a temporary directory
/// that goes, with [`BENCH_BUNDLE`]'s path to it, when this is dropped.
struct BenchBundle {
    /// Held for its drop, which removes the directory.
    _dir: tempfile::TempDir,
}

impl BenchBundle {
    fn write() -> Result<BenchBundle, CliError> {
        let dir = tempfile::tempdir().map_err(|e| CliError::Other(format!("a directory for the bench bundle: {e}")))?;
        let path = dir.path().join("bench.bundle");
        let written = match ocap_vat::bundle_vat(&bench_vats().join("bench.js")) {
            Ok(text) => std::fs::write(&path, text).is_ok(),
            Err(_) => false,
        };
        *BENCH_BUNDLE.lock().unwrap_or_else(|e| e.into_inner()) = written.then(|| path.to_string_lossy().into_owned());
        Ok(BenchBundle { _dir: dir })
    }
}

impl Drop for BenchBundle {
    fn drop(&mut self) {
        *BENCH_BUNDLE.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// The bench vat's spec: its bundle, or its source when there is none.
fn bench_bundle() -> String {
    let bundle = BENCH_BUNDLE.lock().unwrap_or_else(|e| e.into_inner());
    bundle.clone().unwrap_or_else(|| bench_vats().join("bench.js").to_string_lossy().into_owned())
}

fn cluster(vats: usize) -> ClusterConfig {
    let spec = bench_bundle();
    let key = if spec.ends_with(".bundle") { "bundleSpec" } else { "sourceSpec" };
    let names: Vec<String> = (0..vats).map(|i| format!("\"v{i}\":{{\"{key}\":{spec:?}}}")).collect();
    ClusterConfig::from_json(&format!("{{\"bootstrap\":\"v0\",\"vats\":{{{}}}}}", names.join(",")))
        .expect("bench cluster")
}

/// `--no-overlap`: every kernel this run makes delivers one crank at a time.
static NO_OVERLAP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn make(db: &Path) -> Result<Kernel, CliError> {
    let store = Store::open(db, Durability::Process)?;
    let overlap = !NO_OVERLAP.load(std::sync::atomic::Ordering::Relaxed);
    let config = KernelConfig {
        options: ocap_kernel::KernelOptions { overlap_deliveries: overlap, ..Default::default() },
        ..Default::default()
    };
    Ok(Kernel::make(store, config, |sink| {
        Box::new(JsVatLauncher::new(sink, LauncherOptions { base_dir: Some(bench_vats()), ..Default::default() }))
    })?)
}

async fn call(k: &Kernel, target: KRef, method: &str, args: Vec<Value>) -> Result<Value, CliError> {
    match k.queue_message(target, method, args).await? {
        Ok(v) => kunser(&v).map_err(|e| CliError::Other(e.to_string())),
        Err(v) => Err(CliError::Other(format!("{method} was rejected: {}", v.body))),
    }
}

/// Resident and peak memory of this process, in MiB (Linux).
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kib| kib / 1024.0)
            .unwrap_or(0.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resident memory in MiB after handing freed memory back to the OS, so that a figure
/// taken after many vat starts and stops shows what is still in use, not what glibc's
/// malloc keeps in its arenas for reuse (each vat thread gets its own arena).
fn trimmed_rss_mib() -> f64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: glibc's malloc_trim only releases free memory; it takes no pointers and
        // may be called from any thread at any time.
        unsafe {
            malloc_trim(0);
        }
    }
    memory_mib().0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A kernel with `vats` bench vats launched in a fresh database.
struct Setup {
    kernel: Kernel,
    roots: Vec<KRef>,
    _dir: tempfile::TempDir,
    db: PathBuf,
}

async fn setup(vats: usize) -> Result<Setup, CliError> {
    setup_with(cluster(vats)).await
}

async fn setup_with(config: ClusterConfig) -> Result<Setup, CliError> {
    let dir = tempfile::tempdir().map_err(|e| CliError::Other(e.to_string()))?;
    let db = dir.path().join("bench.sqlite");
    let kernel = make(&db)?;
    let launched = kernel.launch_subcluster(config).await?;
    let roots = kernel
        .with_store(move |s| {
            let mut roots = Vec::new();
            for (vat, _) in s.subcluster_vats(&launched.subcluster_id)? {
                let root = s.vat_root_kref(vat)?;
                roots.push(root.ok_or_else(|| ocap_kernel::KernelError::Internal(format!("{vat} has no root")))?);
            }
            Ok(roots)
        })
        .await?;
    Ok(Setup { kernel, roots, _dir: dir, db })
}

/// Two kernels in this process, each with a bench vat and remote comms over loopback (TCP or
/// QUIC): the vat of the first holds a presence of the second's root, redeemed from an OCAP
/// URL over the network. The transport's per-peer frame-rate limit is lifted: the workloads
/// measure the kernels and the wire, not a policy.
async fn remote_pair(quic: bool) -> Result<(Setup, Setup, KRef), CliError> {
    use crate::daemon::comms::{attach, CommsParams};
    let listen = if quic { "/ip4/127.0.0.1/udp/0/quic-v1" } else { "/ip4/127.0.0.1/tcp/0" };
    let params = CommsParams {
        direct_listen_addresses: Some(vec![listen.to_owned()]),
        max_messages_per_second: Some(1_000_000),
        max_queue: Some(100_000),
        ..Default::default()
    };
    let rpc = |e: crate::rpc::RpcError| CliError::Other(format!("remote comms: {}", e.message));
    let a = setup(1).await?;
    let b = setup(1).await?;
    attach(&a.kernel, &params).await.map_err(rpc)?;
    attach(&b.kernel, &params).await.map_err(rpc)?;
    let b_status = b.kernel.get_status().await?;
    let b_peer = b_status.peer_id.clone().ok_or_else(|| CliError::Other("no peer ID".into()))?;
    a.kernel.register_location_hints(&b_peer, b_status.remote_comms.listen_addresses.clone()).await?;
    let url = b.kernel.issue_ocap_url(b.roots[0]).await?;
    let remote = a.kernel.redeem_ocap_url(&url).await?;
    Ok((a, b, remote))
}

async fn launch(vats: usize) -> Result<(f64, f64, f64), CliError> {
    let (rss_before, _) = memory_mib();
    let t0 = Instant::now();
    let s = setup(vats).await?;
    call(&s.kernel, s.roots[0], "ping", vec![Value::Number(1.0)]).await?;
    let elapsed = ms(t0.elapsed());
    let (rss, _) = memory_mib();
    s.kernel.stop().await?;
    Ok((elapsed, rss, (rss - rss_before).max(0.0) / vats as f64))
}

async fn run_one(name: &str, n: usize) -> Result<Figure, CliError> {
    let mut extra = BTreeMap::new();
    let (median_value, unit, count) = match name {
        "launch-1" | "launch-10" | "launch-100" | "launch-1000" => {
            let vats: usize = name.trim_start_matches("launch-").parse().unwrap_or(1);
            let (elapsed, rss, per_vat) = launch(vats).await?;
            extra.insert("rss_mib".into(), json!(rss));
            extra.insert("rss_per_vat_mib".into(), json!(per_vat));
            extra.insert("peak_rss_mib".into(), json!(memory_mib().1));
            (elapsed, "ms", vats)
        }
        "host-to-vat" => {
            let s = setup(1).await?;
            let mut lat = Vec::with_capacity(n);
            let t0 = Instant::now();
            for i in 0..n {
                let t = Instant::now();
                call(&s.kernel, s.roots[0], "ping", vec![Value::Number(i as f64)]).await?;
                lat.push(t.elapsed().as_secs_f64() * 1e6);
            }
            let rate = n as f64 / t0.elapsed().as_secs_f64();
            lat.sort_by(|a, b| a.total_cmp(b));
            extra.insert("p50_us".into(), json!(percentile(&lat, 0.5)));
            extra.insert("p99_us".into(), json!(percentile(&lat, 0.99)));
            s.kernel.stop().await?;
            (rate, "messages/s", n)
        }
        "vat-to-vat-seq" | "vat-to-vat-pipelined" => {
            let s = setup(2).await?;
            let method = if name.ends_with("seq") { "runSeq" } else { "runPipelined" };
            let (t0, w0) = (Instant::now(), timeline::now_us());
            call(&s.kernel, s.roots[0], method, vec![Value::presence(s.roots[1], None), Value::Number(n as f64)])
                .await?;
            let rate = n as f64 / t0.elapsed().as_secs_f64();
            timeline::record("measured", w0, timeline::now_us());
            s.kernel.stop().await?;
            (rate, if name.ends_with("seq") { "round trips/s" } else { "messages/s" }, n)
        }
        "remote-seq" | "remote-pipelined" | "remote-seq-quic" | "remote-pipelined-quic" => {
            let (a, b, remote) = remote_pair(name.ends_with("quic")).await?;
            let seq = name.starts_with("remote-seq");
            let method = if seq { "runSeq" } else { "runPipelined" };
            // One warm-up round trip (the channel is open after the redemption already).
            call(&a.kernel, a.roots[0], "runSeq", vec![Value::presence(remote, None), Value::Number(1.0)]).await?;
            let (t0, w0) = (Instant::now(), timeline::now_us());
            call(&a.kernel, a.roots[0], method, vec![Value::presence(remote, None), Value::Number(n as f64)]).await?;
            let rate = n as f64 / t0.elapsed().as_secs_f64();
            timeline::record("measured", w0, timeline::now_us());
            a.kernel.stop().await?;
            b.kernel.stop().await?;
            (rate, if seq { "round trips/s" } else { "messages/s" }, n)
        }
        "fan-out" => {
            // Issue 15: one vat (v0) sends `ping` to FAN_OUT_PEERS vats at once and awaits
            // them all (`Promise.all`), `n` rounds. Counted: the `ping` calls the fanning vat
            // sends (FAN_OUT_PEERS per round); each call's answer (a notify back to v0) is part
            // of the call, not a message of its own in this count.
            let s = setup(FAN_OUT_PEERS + 1).await?;
            let peers = s.roots.get(1..).map(|p| p.to_vec()).unwrap_or_default();
            if peers.len() != FAN_OUT_PEERS {
                return Err(CliError::Other(format!("fan-out: {} peers launched, not {FAN_OUT_PEERS}", peers.len())));
            }
            let targets = Value::Array(peers.iter().map(|p| Value::presence(*p, None)).collect());
            // One warm-up round (first messages between these vats).
            call(&s.kernel, s.roots[0], "fanOut", vec![targets.clone(), Value::Number(1.0)]).await?;
            let t0 = Instant::now();
            let sent = call(&s.kernel, s.roots[0], "fanOut", vec![targets, Value::Number(n as f64)]).await?;
            let secs = t0.elapsed().as_secs_f64();
            let messages = n * FAN_OUT_PEERS;
            if !matches!(sent, Value::Number(x) if x == messages as f64) {
                return Err(CliError::Other(format!("fan-out: the vat reports {sent:?} calls, not {messages}")));
            }
            extra.insert("rounds".into(), json!(n));
            extra.insert("messages_per_round".into(), json!(FAN_OUT_PEERS));
            extra.insert(
                "counted".into(),
                json!(format!(
                    "E(peer).ping calls sent by the fanning vat, {FAN_OUT_PEERS} per round; replies not counted \
                     separately"
                )),
            );
            s.kernel.stop().await?;
            (messages as f64 / secs, "messages/s", n)
        }
        "durable-counter" => {
            let s = setup(1).await?;
            let t0 = Instant::now();
            for _ in 0..n {
                call(&s.kernel, s.roots[0], "increment", vec![]).await?;
            }
            let rate = n as f64 / t0.elapsed().as_secs_f64();
            s.kernel.stop().await?;
            (rate, "messages/s", n)
        }
        "restart-10" => {
            let s = setup(10).await?;
            s.kernel.stop().await?;
            let t0 = Instant::now();
            let k = make(&s.db)?;
            call(&k, s.roots[9], "ping", vec![Value::Number(1.0)]).await?;
            let elapsed = ms(t0.elapsed());
            extra.insert("resume_failures".into(), json!(k.resume_failures.len()));
            k.stop().await?;
            (elapsed, "ms", 10)
        }
        "gc-churn" => {
            let s = setup(2).await?;
            let t0 = Instant::now();
            call(
                &s.kernel,
                s.roots[1],
                "fetchAndDrop",
                vec![Value::presence(s.roots[0], None), Value::Number(n as f64)],
            )
            .await?;
            // Bring out the dead twice (importer, then exporter), each followed by a round
            // trip so it has been processed (BOYD goes before the run queue).
            for _ in 0..2 {
                s.kernel.reap_vats(None).await?;
                call(&s.kernel, s.roots[0], "ping", vec![Value::Number(0.0)]).await?;
            }
            let elapsed = ms(t0.elapsed());
            // What is left besides the roots: c-list entries of objects, and objects not the
            // kernel's (-1 if they could not be read).
            let roots: Vec<String> = s.roots.iter().map(|r| r.to_string()).collect();
            let (clist, objects) = s
                .kernel
                .with_store(move |st| {
                    let left = |kref: &str| !roots.iter().any(|r| r == kref);
                    let count = |n: Result<usize, _>| n.map_or(-1, |n| n as i64);
                    let clist = st
                        .clist_rows(None, None)
                        .map(|rows| rows.iter().filter(|c| c.kref.starts_with("ko") && left(&c.kref)).count());
                    let objects = st.object_rows(None).map(|rows| {
                        rows.iter().filter(|o| o.owner.as_deref() != Some("kernel") && left(&o.kref)).count()
                    });
                    Ok((count(clist), count(objects)))
                })
                .await?;
            extra.insert("clist_rows_left".into(), json!(clist));
            extra.insert("object_rows_left".into(), json!(objects));
            s.kernel.stop().await?;
            (elapsed, "ms", n)
        }
        "restart-vat" => {
            // A leak check as much as a timing: each restart stops the vat's worker (thread,
            // QuickJS runtime) and starts a new one on the persisted vatstore. After a
            // warm-up (caches, the prelude bytecode, SQLite's page cache), resident memory
            // should not grow with the number of restarts.
            let restarts = (n / RESTART_VAT_DIVISOR).max(2);
            let warmup = (restarts / 10).max(1);
            let s = setup(1).await?;
            let vat = s
                .kernel
                .get_vats()
                .await?
                .first()
                .map(|v| v.id)
                .ok_or_else(|| CliError::Other("restart-vat: the bench subcluster has no vat".into()))?;
            let restart = |i: usize| {
                let k = s.kernel.clone();
                let root = s.roots[0];
                async move {
                    k.restart_vat(vat).await?;
                    call(&k, root, "ping", vec![Value::Number(i as f64)]).await
                }
            };
            for i in 0..warmup {
                restart(i).await?;
            }
            let (rss_before_raw, _) = memory_mib();
            let rss_before = trimmed_rss_mib();
            let t0 = Instant::now();
            for i in 0..restarts {
                restart(i).await?;
            }
            let elapsed = ms(t0.elapsed());
            let (rss_after_raw, _) = memory_mib();
            let rss_after = trimmed_rss_mib();
            let per_restart_kib = |before: f64, after: f64| (after - before) * 1024.0 / restarts as f64;
            extra.insert("ms_per_restart".into(), json!(elapsed / restarts as f64));
            extra.insert("rss_before_mib".into(), json!(rss_before));
            extra.insert("rss_after_mib".into(), json!(rss_after));
            extra.insert(
                "untrimmed_growth_kib_per_restart".into(),
                json!(per_restart_kib(rss_before_raw, rss_after_raw)),
            );
            s.kernel.stop().await?;
            (per_restart_kib(rss_before, rss_after), "KiB/restart", restarts)
        }
        "runaway" => {
            // Issue 11 item 5: a vat that loops is stopped at its delivery budget, and while
            // it runs no other delivery does. Measured: how long past the budget the looping
            // delivery's result is rejected, and the worst round trip a bystander vat saw
            // while pinged continuously meanwhile.
            let spec = bench_bundle();
            let key = if spec.ends_with(".bundle") { "bundleSpec" } else { "sourceSpec" };
            let config = ClusterConfig::from_value(json!({
                "bootstrap": "bystander",
                "vats": {
                    "bystander": {key: spec},
                    "spinner": {key: spec, "creationOptions": {"deliveryBudgetMs": RUNAWAY_BUDGET_MS}},
                }
            }))
            .map_err(|e| CliError::Other(format!("runaway cluster: {e}")))?;
            let s = setup_with(config).await?;
            let (bystander, spinner) = (s.roots[0], s.roots[1]);
            let k = s.kernel.clone();
            let t0 = Instant::now();
            let spin = tokio::spawn(async move {
                let r = k.queue_message(spinner, "spin", vec![]).await;
                (r, t0.elapsed())
            });
            let mut worst = 0f64;
            let mut pings = 0usize;
            while !spin.is_finished() {
                let t = Instant::now();
                call(&s.kernel, bystander, "ping", vec![Value::Number(pings as f64)]).await?;
                worst = worst.max(ms(t.elapsed()));
                pings += 1;
            }
            let (result, elapsed) = spin.await.map_err(|e| CliError::Other(format!("runaway: {e}")))?;
            if !matches!(result, Ok(Err(_))) {
                return Err(CliError::Other(format!("runaway: the looping delivery was not rejected: {result:?}")));
            }
            let termination = ms(elapsed);
            extra.insert("budget_ms".into(), json!(RUNAWAY_BUDGET_MS));
            extra.insert("termination_ms".into(), json!(termination));
            extra.insert("bystander_worst_ms".into(), json!(worst));
            extra.insert("bystander_pings".into(), json!(pings));
            s.kernel.stop().await?;
            (termination - RUNAWAY_BUDGET_MS as f64, "ms past budget", 1)
        }
        other => return Err(CliError::Other(format!("unknown workload {other:?}; known: {}", WORKLOADS.join(", ")))),
    };
    Ok(Figure { workload: name.to_owned(), n: count, median: median_value, unit, extra })
}

/// `--timeline`: the CSV lines of one run's spans within its timed window (the whole run for
/// workloads that do not mark one), µs from the window's start; its table goes to stderr.
fn timeline_of(workload: &str, spans: &[timeline::Span]) -> String {
    let window = spans.iter().find(|s| s.kind == "measured").map(|s| (s.start_us, s.end_us));
    let (from, to) = window.unwrap_or_else(|| {
        let from = spans.iter().map(|s| s.start_us).min().unwrap_or(0);
        (from, spans.iter().map(|s| s.end_us).max().unwrap_or(from))
    });
    let work: Vec<timeline::Span> = spans.iter().filter(|s| s.kind != "measured").cloned().collect();
    eprintln!("timeline of {workload} ({} ms):", (to - from) / 1000);
    eprint!("{}", timeline::summary(&work, from, to, 25_000));
    let mut csv = String::new();
    for s in work.iter().filter(|s| s.end_us > from && s.start_us < to) {
        let start = s.start_us.saturating_sub(from);
        csv.push_str(&format!("{workload},{},{},{start},{}\n", s.thread, s.kind, s.end_us.saturating_sub(from)));
    }
    csv
}

/// `json` (the global `--json`): only the JSON lines.
pub async fn bench(args: BenchArgs, json: bool) -> Result<(), CliError> {
    // The bundle goes when the command ends (it used to be left in the temporary directory).
    let _bundle = BenchBundle::write()?;
    NO_OVERLAP.store(args.no_overlap, std::sync::atomic::Ordering::Relaxed);
    let names: Vec<String> = if args.workloads.is_empty() {
        WORKLOADS.iter().filter(|w| !BY_NAME_ONLY.contains(w)).map(|s| s.to_string()).collect()
    } else {
        args.workloads.clone()
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let run_count = args.runs.max(1);
    if !json {
        println!("ocap bench: commit {COMMIT}, {cores} cores available to this process, {run_count} run(s) per workload (median reported)");
    }
    let mut figures = Vec::new();
    let mut timeline_csv = String::new();
    for name in &names {
        let mut runs = Vec::new();
        let mut last = None;
        let cpu_before = CpuTimes::now();
        for i in 0..run_count {
            let recording = args.timeline.is_some() && i + 1 == run_count;
            if recording {
                timeline::take();
                timeline::set_enabled(true);
            }
            let f = run_one(name, args.n.max(1)).await;
            if recording {
                timeline::set_enabled(false);
                timeline_csv.push_str(&timeline_of(name, &timeline::take()));
            }
            let f = f?;
            runs.push(f.median);
            last = Some(f);
        }
        let Some(mut f) = last else { continue };
        f.median = median(runs.clone());
        f.extra.insert("runs".into(), json!(runs));
        f.extra.insert("run_count".into(), json!(run_count));
        f.extra.insert("commit".into(), json!(COMMIT));
        f.extra.insert("cores".into(), json!(cores));
        f.extra.insert("overlap".into(), json!(!args.no_overlap));
        // How much of the machine the hypervisor took meanwhile (`cpu_time.rs`).
        if let Some(pct) = cpu_before.zip(CpuTimes::now()).and_then(|(b, a)| a.steal_pct_since(&b)) {
            f.extra.insert("steal_pct".into(), json!(pct));
        }
        // A rate per message over a fixed number per round: the rounds/s of the median.
        if let Some(per_round) = f.extra.get("messages_per_round").and_then(|v| v.as_f64()) {
            f.extra.insert("rounds_per_s".into(), json!(f.median / per_round));
        }
        let mut line = json!({"workload": f.workload, "n": f.n, "median": f.median, "unit": f.unit});
        if let Some(obj) = line.as_object_mut() {
            obj.extend(f.extra.clone());
        }
        println!("{line}");
        figures.push(f);
    }
    if let Some(path) = &args.timeline {
        std::fs::write(path, format!("workload,thread,kind,start_us,end_us\n{timeline_csv}"))
            .map_err(|e| CliError::Other(format!("writing the timeline to {}: {e}", path.display())))?;
    }
    if !json {
        println!();
        println!("{:<22} {:>6} {:>14}  {:<14} details", "workload", "n", "median", "unit");
        for f in &figures {
            let details: Vec<String> = f
                .extra
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "runs" | "run_count" | "commit" | "cores" | "counted"))
                .map(|(k, v)| match v.as_f64() {
                    Some(x) => format!("{k}={x:.1}"),
                    None => format!("{k}={v}"),
                })
                .collect();
            println!("{:<22} {:>6} {:>14.1}  {:<14} {}", f.workload, f.n, f.median, f.unit, details.join(" "));
        }
    }
    Ok(())
}
