//! Deterministic simulation with crashes (issue 11, item 8; TigerBeetle's VOPR in spirit).
//!
//! One seed drives everything: a world of scripted vats in a subcluster, a host that sends,
//! pins, unpins and revokes, a kernel service, short-lived subclusters of faulty vats, and
//! the kernel's crank loop, all interleaved at random. At random points the process
//! "crashes": the `KernelCore` is dropped without committing (as `kill -9` would: whatever
//! was not committed is lost), including between cranks and their group commit
//! (`max_cranks_per_commit` is 1, 2, 7 or 64 per seed), inside a host callback during the
//! post-commit effects, and inside a vat's shutdown in the middle of a termination unit.
//! The store is then reopened from the same file and every vat re-attached as a new
//! incarnation (`resume_vats`).
//!
//! Every scripted vat keeps its state in its vatstore, as liveslots does, so what a vat did
//! is exactly what committed; only promises (which cannot be durable) live in the
//! incarnation's heap. Objects a vat hands out are durable (`o+d…`) and survive restarts.
//!
//! Checked after every crank: the invariant checker. At every idle point: the promises the
//! kernel decides (service calls in flight) are exactly the calls the service has not
//! answered. In every host callback: it runs at most once per send, and only once what it
//! reports is durable (read back through a second, read-only connection). Across crashes: a
//! host `incr` whose send committed is applied exactly once, never twice (acknowledged ≤
//! durable ≤ sent). At the end, once the host stops and every vat settles what it decides:
//! no promise is left unresolved; every callback of the last process ran exactly once;
//! messages from one sender along one reference arrived in the order sent, each exactly once
//! at the target its reference led to (a root, or a promise the decider resolved to a root),
//! and nowhere when it led to data, a rejection, or a promise a restart rejected.
//!
//! Running: `cargo test -p ocap-kernel --test simulation`. Seeds listed in
//! `tests/simulation-regressions.txt` run first, then `OCAP_SIM_RUNS` seeds (default 40)
//! from `OCAP_SIM_SEED_START` (default 1). `OCAP_SIM_SEED=<n>` runs that seed alone;
//! `OCAP_SIM_OPS=<n>` changes the number of host operations per seed (default 160). A
//! failing seed is printed; add it to the regressions file.

mod common;
use common::vdata;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use ocap_kernel::capdata::CapData;
use ocap_kernel::config::{ClusterConfig, VatConfig};
use ocap_kernel::core::HostWaiter;
use ocap_kernel::smallcaps::{self, Value};
use ocap_kernel::store::promises::PromiseState;
use ocap_kernel::store::{Durability, Store};
use ocap_kernel::testing::{decode_methargs, vat_methargs, vat_value, ScriptedVat};
use ocap_kernel::vat::{Endpoint, SyscallHandler, SyscallResult, VatDelivery, VatResolution, VatSyscall};
use ocap_kernel::{
    HostResult, KRef, KernelCore, KernelOptions, KernelService, LaunchedVat, ServiceReply, VatId, VatLauncher,
};

// ---- determinism ---------------------------------------------------------------------------

/// SplitMix64: small, fast, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

/// The payload of a simulated `kill -9`: unwinds out of the kernel, which is then dropped.
struct SimCrash;
/// The payload of a kernel service that panics (the kernel catches it); kept quiet.
struct QuietPanic;

fn quiet_simulated_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let p = info.payload();
            if !p.is::<SimCrash>() && !p.is::<QuietPanic>() {
                default(info);
            }
        }));
    });
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---- vats: state in the vatstore, promises in the incarnation's heap ------------------------

/// What the vats share with the simulation (never their state: that is in the vatstore).
#[derive(Default)]
struct VatShared {
    violations: Vec<String>,
    /// The next vat shutdown (inside a termination unit) crashes the process.
    crash_in_shutdown: bool,
    crashes_in_shutdown: u64,
}

type Shared = Arc<Mutex<VatShared>>;

fn get(sys: &mut dyn SyscallHandler, key: &str) -> Option<String> {
    match sys.syscall(VatSyscall::VatstoreGet(key.into())) {
        SyscallResult::Value(v) => v,
        _ => None,
    }
}

fn set(sys: &mut dyn SyscallHandler, key: &str, value: &str) {
    sys.syscall(VatSyscall::VatstoreSet(key.into(), value.into()));
}

/// Increments a durable counter and returns its new value.
fn bump(sys: &mut dyn SyscallHandler, key: &str) -> u64 {
    let n = get(sys, key).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) + 1;
    set(sys, key, &n.to_string());
    n
}

/// A fresh vpid from the vat's durable counter (as liveslots allocates them), so a vpid is
/// never reused by a later incarnation.
fn fresh_vpid(sys: &mut dyn SyscallHandler) -> String {
    format!("p+{}", bump(sys, "vpid"))
}

fn settle(sys: &mut dyn SyscallHandler, vpid: &str, rejected: bool, data: CapData<String>) {
    sys.syscall(VatSyscall::Resolve(vec![VatResolution { vpid: vpid.into(), rejected, data }]));
}

fn answer_undefined(sys: &mut dyn SyscallHandler, result: &Option<String>) {
    if let Some(r) = result {
        settle(sys, r, false, vdata("#\"#undefined\"", &[]));
    }
}

fn send(sys: &mut dyn SyscallHandler, target: &str, method: &str, args: Vec<Value<String>>, result: String) {
    sys.syscall(VatSyscall::Send { target: target.into(), methargs: vat_methargs(method, args), result: Some(result) });
}

fn arg(args: &[Value<String>], i: usize) -> String {
    match args.get(i) {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

/// A message delivery, split.
struct Msg<'a> {
    target: &'a str,
    method: String,
    args: Vec<Value<String>>,
    methargs: &'a CapData<String>,
    result: &'a Option<String>,
}

/// Splits a message delivery; anything else (GC, notifies, BOYD) is ignored by these vats.
fn message(d: &VatDelivery) -> Option<Msg<'_>> {
    let VatDelivery::Message { target, methargs, result } = d else { return None };
    let (method, args) = decode_methargs(methargs)?;
    Some(Msg { target: target.as_str(), method, args, methargs, result })
}

type Script = Box<dyn FnMut(&VatDelivery, &mut dyn SyscallHandler) -> Result<(), String> + Send>;

/// The counter: `incr(id)` applies each id once; its count and the ids it applied are durable.
fn counter_vat(shared: Shared) -> Script {
    Box::new(move |d, sys| {
        let Some(Msg { method, args, result, .. }) = message(d) else { return Ok(()) };
        if method == "incr" {
            let id = arg(&args, 0);
            if get(sys, &format!("done.{id}")).is_some() {
                lock(&shared).violations.push(format!("the counter applied incr {id} twice"));
            }
            let n = bump(sys, "count");
            set(sys, &format!("done.{id}"), &n.to_string());
            if let Some(r) = result {
                settle(sys, r, false, vat_value(Value::str(n.to_string())));
            }
        } else {
            answer_undefined(sys, result);
        }
        Ok(())
    })
}

/// A sender: on the host's ticks, asks B for promises and sends numbered messages along the
/// targets' roots and those promises, and calls the service.
fn sender_vat(s: usize) -> Script {
    let mut promises: Vec<String> = Vec::new();
    Box::new(move |d, sys| {
        let Some(Msg { method, args, methargs, result, .. }) = message(d) else { return Ok(()) };
        match method.as_str() {
            "init" => {
                for (i, key) in ["b", "t0", "t1", "svc"].iter().enumerate() {
                    set(sys, key, methargs.slots.get(i).ok_or("init needs four references")?);
                }
            }
            "makePromise" => {
                let b = get(sys, "b").ok_or("no b")?;
                let p = fresh_vpid(sys);
                send(sys, &b, "makePromise", vec![Value::str(format!("{s}|{p}"))], p.clone());
                promises.push(p);
            }
            "send" => {
                let idx: usize = arg(&args, 0).parse().unwrap_or(0);
                let mut refs = vec![get(sys, "t0").ok_or("no t0")?, get(sys, "t1").ok_or("no t1")?];
                refs.extend(promises.iter().cloned());
                let along = refs[idx % refs.len()].clone();
                let seq = bump(sys, "seq");
                set(sys, &format!("sent.{seq}"), &along);
                let r = fresh_vpid(sys);
                send(sys, &along, "m", vec![Value::str(format!("{s}|{along}|{seq}"))], r);
            }
            "svc" => {
                let svc = get(sys, "svc").ok_or("no svc")?;
                let r = fresh_vpid(sys);
                send(sys, &svc, &arg(&args, 0), vec![], r.clone());
                // Sometimes the answer is passed on at once, so a target waits on it too.
                if arg(&args, 1) == "pass" {
                    let t = get(sys, "t0").ok_or("no t0")?;
                    let r2 = fresh_vpid(sys);
                    send(sys, &t, "keep", vec![Value::Promise { slot: r }], r2);
                }
            }
            _ => {}
        }
        answer_undefined(sys, result);
        Ok(())
    })
}

/// B decides the senders' promises, later, to a target's root, to data or to a rejection,
/// and records durably what it resolved each to.
fn decider_vat() -> Script {
    let mut deciding: Vec<String> = Vec::new();
    Box::new(move |d, sys| {
        let Some(Msg { method, args, methargs, result, .. }) = message(d) else { return Ok(()) };
        let resolve_to = |sys: &mut dyn SyscallHandler, vpid: &str, to: &str| -> Result<(), String> {
            match to {
                "t0" | "t1" => {
                    let t = get(sys, to).ok_or("no target")?;
                    settle(sys, vpid, false, vdata("#\"$0.Alleged: T\"", &[&t]));
                }
                "data" => settle(sys, vpid, false, vdata("#42", &[])),
                _ => settle(sys, vpid, true, vdata("#\"no\"", &[])),
            }
            set(sys, &format!("res.{vpid}"), to);
            Ok(())
        };
        match method.as_str() {
            "init" => {
                set(sys, "t0", methargs.slots.first().ok_or("init needs t0")?);
                set(sys, "t1", methargs.slots.get(1).ok_or("init needs t1")?);
            }
            "makePromise" => {
                // Left unresolved: B settles it on a later tick. A result already settled
                // (its sender restarted first) arrives as no result at all.
                if let Some(r) = result {
                    set(sys, &format!("orig.{}", arg(&args, 0)), r);
                    deciding.push(r.clone());
                }
                return Ok(());
            }
            "tick" if !deciding.is_empty() => {
                let which: usize = arg(&args, 0).parse().unwrap_or(0);
                let vpid = deciding.remove(which % deciding.len());
                resolve_to(sys, &vpid, &arg(&args, 1))?;
            }
            "settleAll" => {
                for vpid in std::mem::take(&mut deciding) {
                    resolve_to(sys, &vpid, "t1")?;
                }
            }
            _ => {}
        }
        answer_undefined(sys, result);
        Ok(())
    })
}

/// A target: records every `m(tag)` it receives, in order, durably.
fn target_vat() -> Script {
    Box::new(move |d, sys| {
        let Some(Msg { method, args, methargs, result, .. }) = message(d) else { return Ok(()) };
        if method == "m" {
            let n = bump(sys, "n");
            set(sys, &format!("recv.{n}"), &arg(&args, 0));
        }
        if method == "keep" {
            // Awaits a promise it was given (liveslots subscribes to every imported promise).
            for slot in methargs.slots.iter().filter(|s| s.starts_with('p')) {
                sys.syscall(VatSyscall::Subscribe(slot.clone()));
            }
        }
        answer_undefined(sys, result);
        Ok(())
    })
}

/// The exporter: `make()` answers a new durable object; `ping` on one answers its number.
fn exporter_vat() -> Script {
    Box::new(move |d, sys| {
        let Some(Msg { target, method, result, .. }) = message(d) else { return Ok(()) };
        let Some(r) = result else { return Ok(()) };
        match (target, method.as_str()) {
            ("o+0", "make") => {
                let n = bump(sys, "n");
                settle(sys, r, false, vdata("#\"$0.Alleged: thing\"", &[&format!("o+d10/{n}")]));
            }
            (t, "ping") if t.starts_with("o+d10/") => {
                settle(sys, r, false, vat_value(Value::str(t.trim_start_matches("o+d10/"))));
            }
            _ => answer_undefined(sys, result),
        }
        Ok(())
    })
}

/// A vat that misbehaves on request: delivery errors, illegal syscalls, exits, and results
/// it holds until it dies.
fn faulty_vat() -> Script {
    let mut held: Vec<String> = Vec::new();
    Box::new(move |d, sys| {
        let Some(Msg { method, result, .. }) = message(d) else { return Ok(()) };
        match method.as_str() {
            "hold" => {
                if let Some(r) = result {
                    held.push(r.clone());
                }
                return Ok(());
            }
            "err" => return Err("scripted delivery error".into()),
            "illegal" => {
                let r = fresh_vpid(sys);
                send(sys, "o-9999", "m", vec![], r);
            }
            "exitFail" => {
                sys.syscall(VatSyscall::Exit { failure: true, info: vdata("#\"failed on purpose\"", &[]) });
            }
            "exitOk" => {
                answer_undefined(sys, result);
                sys.syscall(VatSyscall::Exit { failure: false, info: vdata("#\"done\"", &[]) });
                return Ok(());
            }
            _ => {}
        }
        answer_undefined(sys, result);
        Ok(())
    })
}

/// A scripted vat whose shutdown can crash the process (inside a termination unit).
struct SimVat {
    inner: ScriptedVat,
    shared: Shared,
}

impl Endpoint for SimVat {
    fn deliver(&mut self, delivery: VatDelivery, syscalls: &mut dyn SyscallHandler) -> Result<(), String> {
        self.inner.deliver(delivery, syscalls)
    }
    fn shutdown(&mut self) {
        let crash = std::mem::take(&mut lock(&self.shared).crash_in_shutdown);
        if crash {
            lock(&self.shared).crashes_in_shutdown += 1;
            std::panic::panic_any(SimCrash);
        }
    }
}

/// Starts a fresh incarnation of a scripted vat by its `sourceSpec`, whenever asked.
struct Launcher {
    shared: Shared,
}

impl VatLauncher for Launcher {
    fn launch(&mut self, request: ocap_kernel::LaunchRequest) -> Result<LaunchedVat, String> {
        let config: &VatConfig = &request.config;
        let script = match config.source_spec.as_deref().unwrap_or("") {
            "counter" => counter_vat(self.shared.clone()),
            "sender0" => sender_vat(0),
            "sender1" => sender_vat(1),
            "decider" => decider_vat(),
            "target" => target_vat(),
            "exporter" => exporter_vat(),
            "faulty" => faulty_vat(),
            other => return Err(format!("no scripted vat {other:?}")),
        };
        let (inner, _log) = ScriptedVat::new(script);
        Ok(LaunchedVat {
            endpoint: Box::new(SimVat { inner, shared: self.shared.clone() }),
            vatstore_sets: vec![],
            vatstore_deletes: vec![],
        })
    }
}

const MAIN: &str = r#"{"bootstrap":"counter","services":["svc"],"vats":{
  "counter":{"sourceSpec":"counter"},"a0":{"sourceSpec":"sender0"},"a1":{"sourceSpec":"sender1"},
  "b":{"sourceSpec":"decider"},"t0":{"sourceSpec":"target"},"t1":{"sourceSpec":"target"},
  "x":{"sourceSpec":"exporter"}}}"#;
const FAULTY: &str = r#"{"bootstrap":"f","vats":{"f":{"sourceSpec":"faulty"}}}"#;

// ---- the kernel service ----------------------------------------------------------------------

/// Answers at once, fails, drops the call, panics, or keeps the reply for a later host step.
#[derive(Default)]
struct Svc {
    later: Mutex<Vec<ServiceReply>>,
}

impl KernelService for Svc {
    fn invoke(&self, method: &str, _args: Vec<Value>, reply: ServiceReply) {
        match method {
            "ok" => reply.resolve(Value::str("ok")),
            "fail" => reply.reject(Value::error("the service failed on purpose")),
            "drop" => drop(reply),
            "panic" => std::panic::panic_any(QuietPanic),
            _ => lock(&self.later).push(reply),
        }
    }
}

const SVC_METHODS: [&str; 5] = ["ok", "fail", "drop", "panic", "later"];

// ---- the host --------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Incr,
    Tick,
    Svc,
    Make,
    Ping { obj: KRef, revoked_at_send: bool },
    Faulty(&'static str),
    Bootstrap,
}

struct SendRec {
    kind: Kind,
    kpid: Option<KRef>,
    /// The process (between crashes) that sent it; its callback dies with that process.
    epoch: u32,
    calls: u32,
}

struct HostObj {
    kref: KRef,
    pins: u32,
    revoked: bool,
}

#[derive(Default)]
struct Host {
    next_id: u64,
    sends: BTreeMap<u64, SendRec>,
    /// incr id -> the count the callback reported.
    acked: BTreeMap<u64, u64>,
    /// incr ids whose send was durable when the process died: they must be applied.
    must_apply: BTreeSet<u64>,
    objects: Vec<HostObj>,
    /// Every object the host revoked (it may since have let go of it).
    revoked: BTreeSet<KRef>,
    crash_in_waiter: bool,
    crashes_in_waiter: u64,
    violations: Vec<String>,
}

fn describe(r: &HostResult) -> String {
    let (tag, data) = match r {
        Ok(d) => ("fulfilled", d),
        Err(d) => ("rejected", d),
    };
    match smallcaps::kunser(data) {
        Ok(Value::Error { message, .. }) => format!("{tag}: {message}"),
        Ok(Value::String(s)) => format!("{tag}: {s}"),
        _ => format!("{tag}: {}", data.body),
    }
}

// ---- the simulation --------------------------------------------------------------------------

struct Refs {
    main: String,
    vats: BTreeMap<String, VatId>,
    roots: BTreeMap<String, KRef>,
    svc: KRef,
}

struct Sim {
    seed: u64,
    rng: Rng,
    opts: KernelOptions,
    path: PathBuf,
    _dir: tempfile::TempDir,
    core: Option<KernelCore>,
    /// A second, read-only connection: it sees only what is committed.
    reader: Arc<Mutex<Store>>,
    launcher: Launcher,
    shared: Shared,
    host: Arc<Mutex<Host>>,
    svc: Arc<Svc>,
    epoch: u32,
    refs: Refs,
    crashes: u32,
    cranks: u64,
    trace: Vec<String>,
    /// What the run exercised, summed over seeds and printed at the end.
    stats: BTreeMap<&'static str, u64>,
}

fn open_core(path: &std::path::Path, opts: &KernelOptions) -> KernelCore {
    let store = Store::open(path, Durability::Process).expect("open store");
    KernelCore::new(store, opts.clone()).expect("kernel")
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = Rng(seed);
        let batch = rng.pick(&[1u32, 2, 7, 64]);
        let opts = KernelOptions {
            max_cranks_per_commit: batch,
            cleanup_budget_entries: rng.pick(&[1usize, 3, 64]),
            default_reap_interval_deliveries: rng.pick(&[5u64, 200]),
            ..Default::default()
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kernel.sqlite");
        let mut core = open_core(&path, &opts);
        let reader = Arc::new(Mutex::new(Store::open_read_only(&path).expect("reader")));
        let svc = Arc::new(Svc::default());
        let svc_kref = core.register_service("svc", svc.clone()).expect("register service");
        let shared: Shared = Arc::default();
        let mut launcher = Launcher { shared: shared.clone() };
        let config = ClusterConfig::from_json(MAIN).expect("config");
        let launch = core.start_subcluster(&config, &mut launcher, None, None).expect("launch main");
        let vats: BTreeMap<String, VatId> = launch.vats.iter().cloned().collect();
        let roots = vats.iter().map(|(n, v)| (n.clone(), core.vat_root(*v).expect("root"))).collect();
        let refs = Refs { main: launch.subcluster_id, vats, roots, svc: svc_kref };
        let mut sim = Sim {
            seed,
            rng,
            opts,
            path,
            _dir: dir,
            core: Some(core),
            reader,
            launcher,
            shared,
            host: Arc::default(),
            svc,
            epoch: 0,
            refs,
            crashes: 0,
            cranks: 0,
            trace: Vec::new(),
            stats: BTreeMap::new(),
        };
        let p = |k: KRef| Value::presence(k, None);
        let (b, t0, t1, svc) = (sim.root("b"), sim.root("t0"), sim.root("t1"), sim.refs.svc);
        for a in ["a0", "a1"] {
            let target = sim.root(a);
            sim.core().queue_message(target, "init", vec![p(b), p(t0), p(t1), p(svc)], None).expect("init");
        }
        sim.core().queue_message(b, "init", vec![p(t0), p(t1)], None).expect("init b");
        sim.core().run_until_idle().expect("setup");
        sim.check("after setup");
        sim
    }

    fn core(&mut self) -> &mut KernelCore {
        self.core.as_mut().expect("a running kernel")
    }

    fn root(&self, name: &str) -> KRef {
        self.refs.roots[name]
    }

    fn vat(&self, name: &str) -> VatId {
        self.refs.vats[name]
    }

    fn fail(&self, what: &str) -> ! {
        let tail: Vec<&String> = self.trace.iter().rev().take(25).rev().collect();
        panic!(
            "simulation seed {} (OCAP_SIM_SEED={}): {what}\n  batch {} cranks/commit, {} crashes, {} cranks\n  last ops:\n    {}",
            self.seed,
            self.seed,
            self.opts.max_cranks_per_commit,
            self.crashes,
            self.cranks,
            tail.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n    ")
        );
    }

    /// Runs a host operation; a simulated crash inside it kills the process and restarts.
    /// `None` when it crashed.
    fn guarded<T>(&mut self, f: impl FnOnce(&mut Sim) -> T) -> Option<T> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self))) {
            Ok(v) => Some(v),
            Err(p) if p.is::<SimCrash>() => {
                self.trace.push("  (crashed inside that operation)".into());
                self.crash_and_restart();
                None
            }
            Err(p) => std::panic::resume_unwind(p),
        }
    }

    /// The invariant checker plus what the vats and callbacks noticed.
    fn check(&self, when: &str) {
        let core = self.core.as_ref().expect("a running kernel");
        if let Err(errs) = core.check_invariants() {
            self.fail(&format!("invariants violated {when}:\n  {}", errs.join("\n  ")));
        }
        let v = std::mem::take(&mut lock(&self.shared).violations);
        if !v.is_empty() {
            self.fail(&format!("{when}: {}", v.join("; ")));
        }
        let v = std::mem::take(&mut lock(&self.host).violations);
        if !v.is_empty() {
            self.fail(&format!("{when}: {}", v.join("; ")));
        }
    }

    fn count(&self, sql: &str) -> i64 {
        let core = self.core.as_ref().expect("a running kernel");
        core.store().connection().query_row(sql, [], |r| r.get(0)).expect("count query")
    }

    /// At an idle point, every promise the kernel decides is a service call not yet answered
    /// (a call's promise may be gone, collected): none may be left that nobody will answer.
    fn check_idle(&self) {
        let decided = self.count("SELECT COUNT(*) FROM promises WHERE state = 'unresolved' AND decider = 'kernel'");
        let open = lock(&self.svc.later).iter().filter(|r| r.wants_answer()).count() as i64;
        if decided > open {
            self.fail(&format!(
                "idle with {decided} unresolved promises decided by the kernel but {open} service calls unanswered"
            ));
        }
    }

    /// Runs up to `n` cranks, checking invariants after each.
    fn run(&mut self, n: usize) {
        for _ in 0..n {
            match self.guarded(|s| s.core().step()) {
                None => return,
                Some(Ok(true)) => {
                    self.cranks += 1;
                    self.check(&format!("after crank {}", self.cranks));
                }
                Some(Ok(false)) => {
                    self.check_idle();
                    return;
                }
                Some(Err(e)) => self.fail(&format!("step failed: {e}")),
            }
        }
    }

    fn waiter(&self, id: u64) -> HostWaiter {
        let host = self.host.clone();
        let reader = self.reader.clone();
        let counter = self.vat("counter");
        Box::new(move |r: HostResult| {
            let mut h = lock(&host);
            if std::mem::take(&mut h.crash_in_waiter) {
                h.crashes_in_waiter += 1;
                drop(h);
                std::panic::panic_any(SimCrash);
            }
            let Some(rec) = h.sends.get_mut(&id) else {
                h.violations.push(format!("callback for unknown send {id}"));
                return;
            };
            rec.calls += 1;
            let (calls, kind, kpid) = (rec.calls, rec.kind.clone(), rec.kpid);
            if calls > 1 {
                h.violations.push(format!("callback of send {id} ({kind:?}) called {calls} times"));
            }
            let reader = lock(&reader);
            // Called only after the commit that settled it: the committed store agrees.
            if let Some(kpid) = kpid {
                match reader.promise(kpid) {
                    Ok(Some(p)) if p.state == PromiseState::Unresolved => {
                        h.violations.push(format!("send {id}: callback before {kpid} was settled durably"))
                    }
                    Err(e) => h.violations.push(format!("reader: {e}")),
                    _ => {}
                }
            }
            match kind {
                Kind::Incr => match (&r, smallcaps::kunser(r.as_ref().unwrap_or_else(|e| e))) {
                    (Ok(_), Ok(Value::String(n))) => {
                        let durable = reader.vatstore_get(counter, &format!("done.{id}")).ok().flatten();
                        if durable.as_deref() != Some(n.as_str()) {
                            h.violations
                                .push(format!("incr {id} acknowledged as {n} but the committed store has {durable:?}"));
                        }
                        h.acked.insert(id, n.parse().unwrap_or(0));
                    }
                    _ => h.violations.push(format!("incr {id} settled as {}", describe(&r))),
                },
                Kind::Make => match &r {
                    Ok(data) if data.slots.len() == 1 => {
                        h.objects.push(HostObj { kref: data.slots[0], pins: 1, revoked: false })
                    }
                    _ => h.violations.push(format!("make {id} settled as {}", describe(&r))),
                },
                Kind::Ping { obj, revoked_at_send } => {
                    let revoked_now = h.revoked.contains(&obj);
                    let d = describe(&r);
                    let ok = if revoked_at_send {
                        d.contains("OBJECT_REVOKED")
                    } else if !revoked_now {
                        r.is_ok()
                    } else {
                        r.is_ok() || d.contains("OBJECT_REVOKED")
                    };
                    if !ok {
                        h.violations.push(format!("ping {id} of {obj} (revoked at send: {revoked_at_send}): {d}"));
                    }
                }
                Kind::Faulty(m @ ("err" | "illegal" | "exitFail")) if r.is_ok() => {
                    h.violations.push(format!("faulty {m} ({id}) was fulfilled"));
                }
                Kind::Tick if r.is_err() => {
                    // Ticks to live vats of the main subcluster always answer.
                    h.violations.push(format!("send {id} ({kind:?}) settled as {}", describe(&r)));
                }
                _ => {}
            }
        })
    }

    /// A host send with a callback.
    fn host_send(&mut self, target: KRef, method: &str, args: Vec<Value>, kind: Kind) {
        let id = {
            let mut h = lock(&self.host);
            h.next_id += 1;
            h.next_id
        };
        let args = if kind == Kind::Incr { vec![Value::str(id.to_string())] } else { args };
        lock(&self.host).sends.insert(id, SendRec { kind: kind.clone(), kpid: None, epoch: self.epoch, calls: 0 });
        let waiter = self.waiter(id);
        // queue_message does not commit, so it cannot crash.
        match self.core().queue_message(target, method, args, Some(waiter)) {
            Ok(kpid) => {
                if let Some(rec) = lock(&self.host).sends.get_mut(&id) {
                    rec.kpid = Some(kpid);
                }
                self.trace.push(format!("send {id} {method} to {target} ({kind:?}) -> {kpid}"));
            }
            Err(e) => {
                lock(&self.host).sends.remove(&id);
                self.trace.push(format!("send {method} to {target} refused: {e}"));
            }
        }
    }

    /// Kills the process (whatever is not committed is lost) and starts it again on the same
    /// database: the service registered again, every vat re-attached as a new incarnation.
    fn crash_and_restart(&mut self) {
        self.crashes += 1;
        let counter = self.vat("counter");
        {
            // What the dying process's store holds: incr sends it committed must not be lost.
            let reader = lock(&self.reader);
            let mut h = lock(&self.host);
            let mut durable = Vec::new();
            for (id, rec) in &h.sends {
                if rec.epoch != self.epoch || rec.kind != Kind::Incr || h.acked.contains_key(id) {
                    continue;
                }
                let queued = rec.kpid.is_some_and(|k| matches!(reader.promise(k), Ok(Some(_))));
                let done = matches!(reader.vatstore_get(counter, &format!("done.{id}")), Ok(Some(_)));
                if queued || done {
                    durable.push(*id);
                }
            }
            h.must_apply.extend(durable);
            h.crash_in_waiter = false;
        }
        lock(&self.shared).crash_in_shutdown = false;
        // kill -9: no commit, no shutdown; SQLite rolls back the open transaction.
        drop(self.core.take());
        lock(&self.svc.later).clear();
        self.epoch += 1;
        self.trace.push(format!("restart #{}", self.crashes));
        let mut core = open_core(&self.path, &self.opts);
        core.register_service("svc", self.svc.clone()).expect("register service again");
        let failures = core.resume_vats(&mut self.launcher).expect("resume vats");
        assert!(failures.is_empty(), "seed {}: vats failed to resume: {failures:?}", self.seed);
        self.core = Some(core);
        self.check("after a restart");
        // Everything acknowledged is durable.
        let h = lock(&self.host);
        let store = self.core.as_ref().expect("core").store();
        for (id, n) in &h.acked {
            let v = store.vatstore_get(counter, &format!("done.{id}")).expect("vatstore");
            if v != Some(n.to_string()) {
                self.fail(&format!("incr {id} was acknowledged as {n} but after a restart the store has {v:?}"));
            }
        }
    }

    fn faulty_roots(&mut self) -> Vec<(String, KRef)> {
        let main = self.refs.main.clone();
        let core = self.core();
        let mut out = Vec::new();
        for sc in core.store().subclusters().expect("subclusters") {
            if sc.id == main {
                continue;
            }
            for (vat, _) in core.store().subcluster_vats(&sc.id).expect("vats") {
                if let Ok(root) = core.vat_root(vat) {
                    out.push((sc.id.clone(), root));
                }
            }
        }
        out
    }

    /// One random host operation.
    fn op(&mut self) {
        const WEIGHTS: [(u8, usize); 18] = [
            (0, 8),   // incr
            (1, 5),   // a sender asks B for a promise
            (2, 10),  // a sender sends along a reference
            (3, 2),   // a sender calls the service
            (4, 4),   // B settles one of its promises
            (5, 2),   // the host calls the service
            (6, 2),   // the service answers a call it kept
            (7, 1),   // make an object
            (8, 3),   // ping an object
            (9, 1),   // revoke an object
            (10, 2),  // pin or unpin
            (11, 1),  // launch a faulty subcluster
            (12, 3),  // send to a faulty vat
            (13, 1),  // terminate a faulty subcluster
            (14, 1),  // reap
            (15, 12), // run some cranks
            (16, 2),  // crash now
            (17, 1),  // arm a crash inside a callback or a vat shutdown
        ];
        let total: usize = WEIGHTS.iter().map(|w| w.1).sum();
        let mut roll = self.rng.below(total);
        let mut which = 0;
        for (op, w) in WEIGHTS {
            if roll < w {
                which = op;
                break;
            }
            roll -= w;
        }
        match which {
            0 => self.host_send(self.root("counter"), "incr", vec![], Kind::Incr),
            1..=3 => {
                let name = self.rng.pick(&["a0", "a1"]);
                let a = self.root(name);
                let (method, arg) = match which {
                    1 => ("makePromise", String::new()),
                    2 => ("send", self.rng.below(1000).to_string()),
                    _ => ("svc", self.rng.pick(&SVC_METHODS).to_string()),
                };
                let pass = if self.rng.below(2) == 0 { "pass" } else { "" };
                self.host_send(a, method, vec![Value::str(arg), Value::str(pass)], Kind::Tick);
            }
            4 => {
                let which = self.rng.below(1000).to_string();
                let to = self.rng.pick(&["t0", "t0", "t1", "t1", "data", "reject"]);
                self.host_send(self.root("b"), "tick", vec![Value::str(which), Value::str(to)], Kind::Tick);
            }
            5 => {
                let m = self.rng.pick(&SVC_METHODS);
                self.host_send(self.refs.svc, m, vec![], Kind::Svc);
            }
            6 => {
                let mut later = lock(&self.svc.later);
                if !later.is_empty() {
                    let i = self.rng.below(later.len());
                    let reply = later.remove(i);
                    if self.rng.below(3) == 0 {
                        reply.reject(Value::error("answered later, with a failure"));
                    } else {
                        reply.resolve(Value::str("answered later"));
                    }
                }
            }
            7 => self.host_send(self.root("x"), "make", vec![], Kind::Make),
            8..=10 => {
                let objs: Vec<(KRef, bool)> = lock(&self.host).objects.iter().map(|o| (o.kref, o.revoked)).collect();
                if objs.is_empty() {
                    return;
                }
                let (obj, revoked) = objs[self.rng.below(objs.len())];
                match which {
                    8 => self.host_send(obj, "ping", vec![], Kind::Ping { obj, revoked_at_send: revoked }),
                    9 => {
                        self.trace.push(format!("revoke {obj}"));
                        // It commits before any effect can crash: a crash still revoked it.
                        if let Some(Err(e)) = self.guarded(|s| s.core().revoke(obj)) {
                            self.fail(&format!("revoke {obj}: {e}"));
                        }
                        let mut h = lock(&self.host);
                        h.revoked.insert(obj);
                        if let Some(o) = h.objects.iter_mut().find(|o| o.kref == obj) {
                            o.revoked = true;
                        }
                    }
                    _ => {
                        let pin = self.rng.below(2) == 0;
                        self.trace.push(format!("{} {obj}", if pin { "pin" } else { "unpin" }));
                        let r = self.guarded(|s| if pin { s.core().pin(obj) } else { s.core().unpin(obj) });
                        if let Some(Err(e)) = r {
                            self.fail(&format!("pin/unpin {obj}: {e}"));
                        }
                        let mut h = lock(&self.host);
                        if let Some(o) = h.objects.iter_mut().find(|o| o.kref == obj) {
                            if pin {
                                o.pins += 1;
                            } else {
                                o.pins -= 1;
                            }
                        }
                        h.objects.retain(|o| o.pins > 0);
                    }
                }
            }
            11 => {
                if self.faulty_roots().len() >= 2 {
                    return;
                }
                let id = {
                    let mut h = lock(&self.host);
                    h.next_id += 1;
                    let id = h.next_id;
                    h.sends.insert(id, SendRec { kind: Kind::Bootstrap, kpid: None, epoch: self.epoch, calls: 0 });
                    id
                };
                let waiter = self.waiter(id);
                let config = ClusterConfig::from_json(FAULTY).expect("config");
                self.trace.push("launch a faulty subcluster".into());
                let r = self.guarded(|s| {
                    let Sim { core, launcher, .. } = s;
                    core.as_mut().expect("core").start_subcluster(&config, launcher, None, Some(waiter))
                });
                match r {
                    Some(Ok(l)) => {
                        if let Some(rec) = lock(&self.host).sends.get_mut(&id) {
                            rec.kpid = Some(l.bootstrap_result);
                        }
                    }
                    Some(Err(e)) => self.fail(&format!("launch: {e}")),
                    None => {}
                }
            }
            12 => {
                let roots = self.faulty_roots();
                if roots.is_empty() {
                    return;
                }
                let (_, root) = roots[self.rng.below(roots.len())];
                let m = self.rng.pick(&["ok", "ok", "hold", "hold", "err", "illegal", "exitFail", "exitOk"]);
                self.host_send(root, m, vec![], Kind::Faulty(m));
            }
            13 => {
                let roots = self.faulty_roots();
                if roots.is_empty() {
                    return;
                }
                let (sid, _) = roots[self.rng.below(roots.len())].clone();
                self.trace.push(format!("terminate subcluster {sid}"));
                if let Some(Err(e)) = self.guarded(|s| s.core().terminate_subcluster(&sid)) {
                    self.fail(&format!("terminate {sid}: {e}"));
                }
            }
            14 => {
                self.trace.push("reap".into());
                if let Some(Err(e)) = self.guarded(|s| s.core().reap_vats(None)) {
                    self.fail(&format!("reap: {e}"));
                }
            }
            15 => {
                let n = 1 + self.rng.below(12);
                self.trace.push(format!("run {n}"));
                self.run(n);
            }
            16 => {
                self.trace.push("crash".into());
                self.crash_and_restart();
            }
            _ => {
                if self.rng.below(2) == 0 {
                    self.trace.push("arm a crash in the next host callback".into());
                    lock(&self.host).crash_in_waiter = true;
                } else {
                    self.trace.push("arm a crash in the next vat shutdown".into());
                    lock(&self.shared).crash_in_shutdown = true;
                }
            }
        }
        self.check("after a host operation");
    }

    /// Runs until idle, answering kept service calls and asking B to settle what it holds,
    /// until nothing is left to settle.
    fn drain(&mut self) {
        for round in 0..1000 {
            self.run(usize::MAX);
            let later: Vec<ServiceReply> = std::mem::take(&mut *lock(&self.svc.later));
            let b = format!("{}", self.vat("b"));
            let b_decides =
                self.count(&format!("SELECT COUNT(*) FROM promises WHERE state = 'unresolved' AND decider = '{b}'"));
            if later.is_empty() && b_decides == 0 {
                return;
            }
            for reply in later {
                reply.resolve(Value::str("answered at the end"));
            }
            if b_decides > 0 {
                self.trace.push(format!("drain round {round}: settleAll"));
                self.host_send(self.root("b"), "settleAll", vec![], Kind::Tick);
            }
        }
        self.fail("the kernel never settled");
    }

    /// The end of a run: settle everything, then check what must hold.
    fn finish(&mut self) {
        lock(&self.host).crash_in_waiter = false;
        lock(&self.shared).crash_in_shutdown = false;
        for (sid, _) in self.faulty_roots() {
            if let Err(e) = self.core().terminate_subcluster(&sid) {
                self.fail(&format!("terminate {sid}: {e}"));
            }
        }
        self.drain();
        self.check("after draining");

        // Every result settles.
        let left = {
            let core = self.core.as_ref().expect("core");
            let mut stmt = core
                .store()
                .connection()
                .prepare("SELECT id, decider FROM promises WHERE state = 'unresolved'")
                .expect("query");
            stmt.query_map([], |r| {
                Ok(format!("kp{} decided by {:?}", r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
            })
            .expect("query")
            .collect::<Result<Vec<_>, _>>()
            .expect("rows")
        };
        if !left.is_empty() {
            self.fail(&format!("unresolved promises left once everything settled: {}", left.join(", ")));
        }
        if self.count("SELECT COUNT(*) FROM run_queue") != 0 {
            self.fail("run queue not empty when idle");
        }
        self.check_callbacks();
        self.check_counter();
        self.check_eorder();
        self.collect_stats();

        // Tear down: the host lets go, the world ends, nothing is left in any c-list.
        let objs: Vec<(KRef, u32)> = lock(&self.host).objects.iter().map(|o| (o.kref, o.pins)).collect();
        for (obj, pins) in objs {
            for _ in 0..pins {
                if let Err(e) = self.core().unpin(obj) {
                    self.fail(&format!("final unpin of {obj}: {e}"));
                }
            }
        }
        lock(&self.host).objects.clear();
        let main = self.refs.main.clone();
        if let Err(e) = self.core().terminate_subcluster(&main) {
            self.fail(&format!("terminate main: {e}"));
        }
        self.drain();
        self.check("after the teardown");
        if self.count("SELECT COUNT(*) FROM clist") != 0 || self.count("SELECT COUNT(*) FROM vats") != 0 {
            self.fail("c-lists or vats left after every vat ended");
        }
    }

    fn stat(&mut self, what: &'static str, n: u64) {
        *self.stats.entry(what).or_default() += n;
    }

    /// What this seed exercised.
    fn collect_stats(&mut self) {
        let (h_waiter, acked, must, sends, called) = {
            let h = lock(&self.host);
            let called = h.sends.values().filter(|r| r.calls == 1).count() as u64;
            (h.crashes_in_waiter, h.acked.len() as u64, h.must_apply.len() as u64, h.sends.len() as u64, called)
        };
        let in_shutdown = lock(&self.shared).crashes_in_shutdown;
        self.stat("crashes", self.crashes as u64);
        self.stat("crashes inside a host callback", h_waiter);
        self.stat("crashes inside a termination", in_shutdown);
        self.stat("cranks", self.cranks);
        self.stat("host sends", sends);
        self.stat("host callbacks", called);
        self.stat("incrs acknowledged", acked);
        self.stat("incrs committed but unacknowledged at a crash", must);
        let vats_ever = self.count("SELECT value - 1 FROM counters WHERE name = 'vat'") as u64;
        self.stat("vats launched", vats_ever);
        let revoked = self.count("SELECT COUNT(*) FROM objects WHERE revoked = 1") as u64;
        self.stat("objects revoked (still present)", revoked);
    }

    fn check_callbacks(&self) {
        let h = lock(&self.host);
        for (id, rec) in &h.sends {
            if rec.calls > 1 || (rec.epoch == self.epoch && rec.calls != 1) {
                self.fail(&format!(
                    "send {id} ({:?}, {:?}) of process {} (now {}): callback called {} times",
                    rec.kind, rec.kpid, rec.epoch, self.epoch, rec.calls
                ));
            }
        }
    }

    fn vatstore(&self, vat: VatId) -> BTreeMap<String, String> {
        self.core.as_ref().expect("core").store().vatstore_all(vat).expect("vatstore").into_iter().collect()
    }

    /// Acknowledged ≤ durable ≤ sent; nothing committed lost, nothing applied twice, and the
    /// host's sends applied in the order sent.
    fn check_counter(&self) {
        let vs = self.vatstore(self.vat("counter"));
        let count: u64 = vs.get("count").and_then(|v| v.parse().ok()).unwrap_or(0);
        let done: BTreeMap<u64, u64> =
            vs.iter().filter_map(|(k, v)| Some((k.strip_prefix("done.")?.parse().ok()?, v.parse().ok()?))).collect();
        let h = lock(&self.host);
        let sent = h.sends.iter().filter(|(_, r)| r.kind == Kind::Incr).count() as u64;
        if done.len() as u64 != count {
            self.fail(&format!("counter is {count} but {} incrs are recorded", done.len()));
        }
        if !(h.acked.len() as u64 <= count && count <= sent) {
            self.fail(&format!("acknowledged {} ≤ durable {count} ≤ sent {sent} does not hold", h.acked.len()));
        }
        for (id, n) in &h.acked {
            if done.get(id) != Some(n) {
                self.fail(&format!("incr {id} acknowledged as {n}, store has {:?}", done.get(id)));
            }
        }
        for id in done.keys() {
            if !matches!(h.sends.get(id), Some(r) if r.kind == Kind::Incr) {
                self.fail(&format!("incr {id} applied but never sent"));
            }
        }
        for id in &h.must_apply {
            if !done.contains_key(id) {
                self.fail(&format!("incr {id} was committed before a crash but never applied"));
            }
        }
        let mut last = 0;
        for (id, n) in &done {
            if *n <= last {
                self.fail(&format!("host sends applied out of order: incr {id} got {n} after {last}"));
            }
            last = *n;
        }
        // Sends of the last process are all applied (the counter never dies).
        for (id, rec) in &h.sends {
            if rec.kind == Kind::Incr && rec.epoch == self.epoch && !done.contains_key(id) {
                self.fail(&format!("incr {id} of the last process was never applied"));
            }
        }
    }

    /// Per-reference delivery order, and every message at the one place its reference led.
    fn check_eorder(&mut self) {
        let b = self.vatstore(self.vat("b"));
        let mut received: Vec<Vec<(usize, String, u64)>> = Vec::new();
        for t in ["t0", "t1"] {
            let vs = self.vatstore(self.vat(t));
            let mut log: Vec<(u64, String)> =
                vs.iter().filter_map(|(k, v)| Some((k.strip_prefix("recv.")?.parse().ok()?, v.clone()))).collect();
            log.sort();
            let mut got = Vec::new();
            for (_, tag) in log {
                let parts: Vec<&str> = tag.split('|').collect();
                got.push((parts[0].parse().expect("sender"), parts[1].to_string(), parts[2].parse().expect("seq")));
            }
            received.push(got);
        }
        for (t, got) in received.iter().enumerate() {
            let mut last: BTreeMap<(usize, &str), u64> = BTreeMap::new();
            for (s, along, seq) in got {
                if let Some(prev) = last.insert((*s, along), *seq) {
                    if prev >= *seq {
                        self.fail(&format!("E-order broken at t{t}: sender a{s} along {along}: {seq} after {prev}"));
                    }
                }
            }
        }
        for s in 0..2 {
            let vs = self.vatstore(self.vat(&format!("a{s}")));
            let roots = [vs.get("t0").cloned(), vs.get("t1").cloned()];
            for (k, along) in &vs {
                let Some(seq) = k.strip_prefix("sent.").and_then(|n| n.parse::<u64>().ok()) else { continue };
                let dest = if roots[0].as_ref() == Some(along) {
                    Some(0)
                } else if roots[1].as_ref() == Some(along) {
                    Some(1)
                } else {
                    let settled = b.get(&format!("orig.{s}|{along}")).and_then(|bp| b.get(&format!("res.{bp}")));
                    match settled.map(String::as_str) {
                        Some("t0") => Some(0),
                        Some("t1") => Some(1),
                        _ => None,
                    }
                };
                let hits: Vec<usize> = (0..2)
                    .flat_map(|t| {
                        received[t].iter().filter(|(rs, ra, rq)| *rs == s && ra == along && *rq == seq).map(move |_| t)
                    })
                    .collect();
                let ok = match dest {
                    Some(t) => hits == vec![t],
                    None => hits.is_empty(),
                };
                let via_promise = !roots.contains(&Some(along.clone()));
                let what = match (via_promise, dest) {
                    (false, _) => "messages along a root",
                    (true, Some(_)) => "messages along a promise, delivered",
                    (true, None) => "messages along a promise, delivered nowhere",
                };
                *self.stats.entry(what).or_default() += 1;
                if !ok {
                    self.fail(&format!(
                        "message {seq} from a{s} along {along} should reach {dest:?} once, reached {hits:?}"
                    ));
                }
            }
        }
    }
}

fn run_seed(seed: u64, ops: usize) -> BTreeMap<&'static str, u64> {
    let mut sim = Sim::new(seed);
    for _ in 0..ops {
        sim.op();
    }
    sim.finish();
    std::mem::take(&mut sim.stats)
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Seeds that once failed: `tests/simulation-regressions.txt`, one per line, `#` comments.
fn regression_seeds() -> Vec<u64> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/simulation-regressions.txt");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().filter_map(|l| l.split('#').next()?.trim().parse().ok()).collect()
}

#[test]
fn simulation_with_crashes_keeps_every_promise() {
    quiet_simulated_panics();
    let ops = env_u64("OCAP_SIM_OPS").unwrap_or(160) as usize;
    let seeds: Vec<u64> = match env_u64("OCAP_SIM_SEED") {
        Some(s) => vec![s],
        None => {
            let start = env_u64("OCAP_SIM_SEED_START").unwrap_or(1);
            let runs = env_u64("OCAP_SIM_RUNS").unwrap_or(40);
            regression_seeds().into_iter().chain(start..start + runs).collect()
        }
    };
    let mut stats: BTreeMap<&'static str, u64> = BTreeMap::new();
    for seed in &seeds {
        match std::panic::catch_unwind(|| run_seed(*seed, ops)) {
            Ok(s) => {
                for (k, v) in s {
                    *stats.entry(k).or_default() += v;
                }
            }
            Err(p) => {
                eprintln!("simulation failed: rerun with OCAP_SIM_SEED={seed}");
                std::panic::resume_unwind(p);
            }
        }
    }
    eprintln!("simulation: {} seeds", seeds.len());
    for (k, v) in stats {
        eprintln!("  {k}: {v}");
    }
}

/// Seed 30, reduced. A vat calls a kernel service and passes the answer promise on to
/// another vat; the process dies after the commit that invoked the service and before the
/// answer came back. The restarted kernel must not leave that promise decided by a service
/// call that no longer exists: nobody could ever settle it, and its subscribers would wait
/// forever.
#[test]
fn a_service_call_lost_in_a_crash_is_rejected_at_restart() {
    let mut k = common::kernel();
    let svc = Arc::new(Svc::default());
    let svc_kref = k.core.register_service("svc", svc.clone()).expect("service");
    let caller = ScriptedVat::new(Box::new(|d, sys| {
        let Some(Msg { methargs, .. }) = message(d) else { return Ok(()) };
        let (svc, t) = (methargs.slots[0].clone(), methargs.slots[1].clone());
        send(sys, &svc, "later", vec![], "p+1".into());
        send(sys, &t, "keep", vec![Value::Promise { slot: "p+1".into() }], "p+2".into());
        Ok(())
    }))
    .0;
    let (a, a_root) = k.add("a", caller);
    let (t, t_root) = k.add("t", ScriptedVat::new(target_vat()).0);
    k.core
        .queue_message(a_root, "go", vec![Value::presence(svc_kref, None), Value::presence(t_root, None)], None)
        .expect("go");
    k.core.step().expect("deliver go to a");
    k.core.step().expect("route the call to the service");
    assert_eq!(lock(&svc.later).len(), 1, "the service was invoked, so its crank committed");
    // kill -9 before `keep` reaches t: the service's reply channel dies with the process.
    let mut k = k.crash();
    lock(&svc.later).clear();
    k.core.register_service("svc", svc.clone()).expect("service again");
    k.core.attach_vat(a, Box::new(ScriptedVat::passive().0)).expect("attach a");
    let (t_vat, t_log) = ScriptedVat::passive();
    k.core.attach_vat(t, Box::new(t_vat)).expect("attach t");
    k.run();
    k.check();
    let keep = t_log.all().into_iter().find_map(|d| match d {
        VatDelivery::Message { methargs, .. } => methargs.slots.first().cloned(),
        _ => None,
    });
    assert!(keep.is_some(), "t got keep(answer) after the restart");
    // (`keep`'s own result is t's to decide now, and this passive t never does.)
    assert_eq!(
        k.count("SELECT COUNT(*) FROM promises WHERE state = 'unresolved' AND decider = 'kernel'"),
        0,
        "the lost call's promise is rejected, not left to the kernel forever"
    );
}
