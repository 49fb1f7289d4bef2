//! The kernel (`ocap_kernel::KernelCore`, file-backed store) driving real JS
//! vats through `JsVat`: vats are `tests/vats/*.js`, written the way JS-kernel
//! users write them, bundled with esbuild. Every test ends with the kernel's
//! invariant checker.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use ocap_kernel::smallcaps::{kunser, Value};
use ocap_kernel::store::{Durability, Store};
use ocap_kernel::vat::{Endpoint, SyscallHandler, VatDelivery};
use ocap_kernel::{HostResult, KRef, KernelCore, KernelOptions, VatId, VatSpec};
use ocap_vat::{parse_syscalls, JsVat, WorkerEvent, WorkerOptions};
use serde_json::{json, Value as Json};

mod common;
use common::bundle;

/// A vat endpoint that records what it is delivered (for the GC test).
struct Recording {
    inner: JsVat,
    log: Arc<Mutex<Vec<VatDelivery>>>,
}

impl Endpoint for Recording {
    fn deliver(&mut self, delivery: VatDelivery, syscalls: &mut dyn SyscallHandler) -> Result<(), String> {
        self.log.lock().unwrap().push(delivery.clone());
        self.inner.deliver(delivery, syscalls)
    }
    fn shutdown(&mut self) {
        self.inner.shutdown()
    }
}

struct Launch {
    source: &'static str,
    config: Json,
    opts: WorkerOptions,
}

/// A kernel on a file-backed store plus the plumbing a host would own:
/// worker events are collected on a channel and async syscalls are handed to
/// `handle_async_syscalls`.
struct Harness {
    core: KernelCore,
    events_tx: Sender<(VatId, WorkerEvent)>,
    events_rx: Receiver<(VatId, WorkerEvent)>,
    launches: HashMap<VatId, Launch>,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kernel.sqlite"), Durability::Process).unwrap();
        let core = KernelCore::new(store, KernelOptions::default()).unwrap();
        let (events_tx, events_rx) = mpsc::channel();
        Harness { core, events_tx, events_rx, launches: HashMap::new(), _dir: dir }
    }

    fn start_worker(
        &self,
        vat: VatId,
        launch: &Launch,
        vatstore: Vec<(String, String)>,
    ) -> (JsVat, ocap_vat::VatStart) {
        let tx = self.events_tx.clone();
        let mut opts = launch.opts.clone();
        opts.vat_id = vat.to_string();
        JsVat::start(
            opts,
            &launch.config,
            Some(bundle(launch.source)),
            vatstore,
            Box::new(move |e| {
                let _ = tx.send((vat, e));
            }),
        )
        .unwrap_or_else(|e| panic!("starting {}: {e}", launch.source))
    }

    /// Starts `tests/vats/<source>.js` as a new vat.
    fn launch(
        &mut self,
        name: &str,
        source: &'static str,
        parameters: Json,
        opts: impl FnOnce(&mut WorkerOptions),
    ) -> (VatId, KRef) {
        self.launch_with(name, source, parameters, opts, |v| Box::new(v))
    }

    fn launch_with(
        &mut self,
        name: &str,
        source: &'static str,
        parameters: Json,
        opts: impl FnOnce(&mut WorkerOptions),
        wrap: impl FnOnce(JsVat) -> Box<dyn Endpoint>,
    ) -> (VatId, KRef) {
        let globals: &[&str] = if source == "timer-vat" { &["setTimeout", "clearTimeout"] } else { &[] };
        let expected = self.core.reserve_vat_id().unwrap();
        let mut worker_opts = WorkerOptions::new(expected.to_string(), name);
        opts(&mut worker_opts);
        let launch = Launch {
            source,
            config: json!({
                "bundleSpec": format!("{source}.bundle"),
                "parameters": parameters,
                "globals": globals,
            }),
            opts: worker_opts,
        };
        let (jsvat, start) = self.start_worker(expected, &launch, vec![]);
        assert!(start.syscalls.is_empty(), "{:?}", start.syscalls);
        assert!(start.vatstore_deletes.is_empty());
        let (vat, root) = self
            .core
            .add_vat_with_id(
                expected,
                VatSpec {
                    name: name.into(),
                    config: launch.config.to_string(),
                    initial_vatstore: start.vatstore_sets,
                    ..VatSpec::default()
                },
                wrap(jsvat),
            )
            .unwrap();
        assert_eq!(vat, expected);
        self.launches.insert(vat, launch);
        (vat, root)
    }

    /// Restarts a vat on a new worker from the vatstore in the kernel's store.
    fn restart(&mut self, vat: VatId) {
        let vatstore = self.core.store().vatstore_all(vat).unwrap();
        let launch = &self.launches[&vat];
        let (jsvat, start) = self.start_worker(vat, launch, vatstore);
        self.core.attach_vat(vat, Box::new(jsvat)).unwrap();
        let calls = start.into_syscalls();
        if !calls.is_empty() {
            self.core.handle_async_syscalls(vat, calls).unwrap();
        }
        self.run();
    }

    /// Runs the kernel until nothing is left, including syscalls vats made
    /// outside deliveries.
    fn run(&mut self) {
        loop {
            self.core.run_until_idle().unwrap();
            let mut any = false;
            while let Ok(event) = self.events_rx.try_recv() {
                any |= self.handle_event(event);
            }
            if !any {
                return;
            }
        }
    }

    /// Hands a worker event to the kernel; true if it made work.
    fn handle_event(&mut self, (vat, event): (VatId, WorkerEvent)) -> bool {
        match event {
            WorkerEvent::AsyncSyscalls { syscalls } => {
                self.core.handle_async_syscalls(vat, parse_syscalls(&syscalls)).unwrap();
                true
            }
            _ => false,
        }
    }

    fn queue(&mut self, target: KRef, method: &str, args: Vec<Value>) -> Receiver<HostResult> {
        let (tx, rx) = mpsc::channel();
        self.core
            .queue_message(
                target,
                method,
                args,
                Some(Box::new(move |r| {
                    let _ = tx.send(r);
                })),
            )
            .unwrap();
        rx
    }

    /// `target.method(...args)` from the host; runs until idle; the result.
    fn call(&mut self, target: KRef, method: &str, args: Vec<Value>) -> HostResult {
        let rx = self.queue(target, method, args);
        self.run();
        rx.try_recv().unwrap_or_else(|_| panic!("{method}: result not settled when the kernel went idle"))
    }

    /// Like `call`, for results that vats settle later, from timers: waits
    /// for worker events while the kernel is idle.
    fn call_waiting(&mut self, target: KRef, method: &str, args: Vec<Value>) -> HostResult {
        let rx = self.queue(target, method, args);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            self.run();
            if let Ok(r) = rx.try_recv() {
                return r;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.events_rx.recv_timeout(left) {
                Ok(event) => {
                    self.handle_event(event);
                }
                Err(_) => panic!("{method}: no result within 10 s"),
            }
        }
    }

    fn ok(&mut self, target: KRef, method: &str, args: Vec<Value>) -> Value {
        match self.call(target, method, args) {
            Ok(data) => kunser(&data).unwrap(),
            Err(data) => panic!("{method} rejected: {:?}", kunser(&data)),
        }
    }

    fn rejected(&mut self, target: KRef, method: &str, args: Vec<Value>) -> String {
        match self.call(target, method, args) {
            Ok(data) => panic!("{method} fulfilled: {:?}", kunser(&data)),
            Err(data) => match kunser(&data).unwrap() {
                Value::Error { message, .. } => message,
                other => panic!("{method} rejected with a non-error {other:?}"),
            },
        }
    }

    fn is_active(&self, vat: VatId) -> bool {
        self.core.active_vats().unwrap().iter().any(|r| r.id == vat)
    }

    fn check(&self) {
        assert_eq!(self.core.check_invariants(), Ok(()));
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.core.shutdown();
    }
}

fn s(v: &str) -> Value {
    Value::str(v)
}

fn n(v: f64) -> Value {
    Value::Number(v)
}

fn arr(items: Vec<Value>) -> Value {
    Value::Array(items)
}

fn presence(kref: KRef) -> Value {
    Value::presence(kref, Some("root"))
}

fn record(value: &Value) -> &std::collections::BTreeMap<String, Value> {
    match value {
        Value::Record(r) => r,
        other => panic!("not a record: {other:?}"),
    }
}

fn slot_of(value: &Value) -> KRef {
    match value {
        Value::Remotable { slot, .. } | Value::Promise { slot } => *slot,
        other => panic!("not a reference: {other:?}"),
    }
}

fn alice_and_bob(h: &mut Harness) -> (KRef, KRef) {
    let (_, alice) = h.launch("alice", "alice-vat", json!({"name": "alice"}), |_| {});
    let (_, bob) = h.launch("bob", "bob-vat", json!({"name": "bob"}), |_| {});
    (alice, bob)
}

// ------------------------------------------------------------------ tests

#[test]
fn message_round_trip() {
    let mut h = Harness::new();
    let (_, bob) = h.launch("bob", "bob-vat", json!({"name": "bob"}), |_| {});
    assert_eq!(h.ok(bob, "ping", vec![]), s("pong"));
    assert_eq!(h.ok(bob, "hello", vec![s("host")]), s("hello host from bob"));
    h.check();
}

#[test]
fn vat_to_vat_calls_with_e() {
    let mut h = Harness::new();
    let (alice, bob) = alice_and_bob(&mut h);
    let vats = Value::Record([("bob".to_string(), presence(bob))].into_iter().collect());
    assert_eq!(h.ok(alice, "bootstrap", vec![vats]), s("alice bootstrapped: hello alice from bob"));
    assert_eq!(h.ok(alice, "greet", vec![presence(bob)]), s("hello alice from bob"));
    h.check();
}

#[test]
fn promise_pipelining() {
    let mut h = Harness::new();
    let (alice, bob) = alice_and_bob(&mut h);
    // In a vat: E(E(bob).getY()).z(), returned as is and awaited.
    assert_eq!(h.ok(alice, "pipeline", vec![presence(bob)]), s("z from bob"));
    assert_eq!(h.ok(alice, "pipelineAwait", vec![presence(bob)]), s("alice got z from bob"));
    // From the host: z() queued on the unresolved result promise of getY().
    let y = h.core.queue_message(bob, "getY", vec![], None).unwrap();
    assert_eq!(h.ok(y, "z", vec![]), s("z from bob"));
    h.check();
}

#[test]
fn chains_of_promises() {
    let mut h = Harness::new();
    let (alice, bob) = alice_and_bob(&mut h);
    let (_, carol) = h.launch("carol", "bob-vat", json!({"name": "carol"}), |_| {});
    // alice's result <- bob.relay(carol)'s result <- carol.answer()'s result.
    assert_eq!(h.ok(alice, "chain", vec![presence(bob), presence(carol)]), n(42.0));
    h.check();
}

#[test]
fn promises_as_arguments_and_results() {
    let mut h = Harness::new();
    let (alice, bob) = alice_and_bob(&mut h);
    assert_eq!(h.ok(alice, "passPromise", vec![presence(bob)]), n(42.0));
    assert_eq!(h.ok(alice, "later", vec![presence(bob)]), arr(vec![n(1.0), s("settled")]));
    // To the host: data containing a promise bob decides, settled later.
    let data = h.ok(bob, "dataWithPromise", vec![]);
    let fields = record(&data);
    assert_eq!(fields["n"], n(1.0));
    let kp = slot_of(&fields["p"]);
    assert!(kp.is_promise());
    let p = h.core.promise(kp).unwrap().expect("the promise still exists");
    assert_eq!(p.state, ocap_kernel::store::PromiseState::Unresolved);
    assert_eq!(h.ok(bob, "settle", vec![s("done")]), n(1.0));
    h.check();
}

#[test]
fn promises_resolved_to_data_containing_promises_including_cycles() {
    let mut h = Harness::new();
    let (alice, bob) = alice_and_bob(&mut h);
    assert_eq!(h.ok(alice, "walkCycle", vec![presence(bob)]), arr(vec![s("a"), s("b"), s("a"), s("b")]));
    // The host gets data holding the first promise of the cycle.
    let data = h.ok(bob, "makeCycle", vec![]);
    let first = slot_of(&record(&data)["first"]);
    assert!(first.is_promise());
    // Reference counting cannot collect a cycle: the two settled promises of
    // each cycle (alice's walk and the host's call) keep each other alive.
    // Everything else is gone, and what is left is exactly those pairs.
    let ids: Vec<u64> = {
        let conn = h.core.store().connection();
        let mut st = conn.prepare("SELECT id FROM promises ORDER BY id").unwrap();
        st.query_map([], |r| r.get::<_, i64>(0)).unwrap().map(|id| id.unwrap() as u64).collect()
    };
    assert_eq!(ids.len(), 4, "two 2-cycles are left: {ids:?}");
    for id in ids {
        let kp = KRef::Promise(id);
        let p = h.core.promise(kp).unwrap().unwrap();
        assert_eq!(p.state, ocap_kernel::store::PromiseState::Fulfilled);
        assert_eq!(p.refcount, 1, "{kp} is held by its partner only");
        let value = kunser(p.value.as_ref().unwrap()).unwrap();
        let partner = slot_of(&record(&value)["next"]);
        let pv = h.core.promise(partner).unwrap().expect("partner exists");
        let pv = kunser(pv.value.as_ref().unwrap()).unwrap();
        assert_eq!(slot_of(&record(&pv)["next"]), kp, "{kp} <-> {partner}");
    }
    h.check();
}

#[test]
fn a_throwing_method_rejects_its_result() {
    let mut h = Harness::new();
    let (alice, bob) = alice_and_bob(&mut h);
    let message = h.rejected(bob, "fail", vec![]);
    assert!(message.contains("deliberate failure"), "{message}");
    assert_eq!(h.ok(alice, "catchFail", vec![presence(bob)]), s("caught: deliberate failure"));
    // The vat lives on.
    assert_eq!(h.ok(bob, "ping", vec![]), s("pong"));
    h.check();
}

#[test]
fn baggage_counter_survives_a_vat_restart() {
    let mut h = Harness::new();
    let (bob_id, bob) = h.launch("bob", "bob-vat", json!({"name": "bob"}), |_| {});
    assert_eq!(h.ok(bob, "bootstrap", vec![]), s("bootstrapped"));
    assert_eq!(h.ok(bob, "increment", vec![]), n(1.0));
    assert_eq!(h.ok(bob, "increment", vec![]), n(2.0));
    h.check();

    h.restart(bob_id);
    assert_eq!(h.ok(bob, "increment", vec![]), n(3.0));
    let stats = h.ok(bob, "stats", vec![]);
    let stats = record(&stats);
    assert_eq!(stats["counter"], n(3.0));
    assert_eq!(stats["bootstraps"], n(1.0), "bootstrap is not re-run");
    assert_eq!(stats["builds"], n(2.0), "buildRootObject ran on each start");
    h.check();

    // And once more, to make sure the second incarnation's writes landed.
    h.restart(bob_id);
    assert_eq!(h.ok(bob, "increment", vec![]), n(4.0));
    h.check();
}

/// Restart semantics (issue 10 item 3, SwingSet's upgrade rules; kernel-core.md §10.5 is
/// what the JS kernel does instead): a heap export of the previous incarnation is abandoned,
/// so a send to it is rejected, and the vat lives on.
#[test]
fn a_heap_exo_exported_before_a_restart_is_deleted_after_it() {
    let mut h = Harness::new();
    let (_, alice) = h.launch("alice", "alice-vat", json!({}), |_| {});
    let (bob_id, bob) = h.launch("bob", "bob-vat", json!({}), |_| {});
    let thing = slot_of(&h.ok(bob, "makeThing", vec![s("x")]));
    h.core.pin(thing).unwrap();
    assert_eq!(h.ok(thing, "getLabel", vec![]), s("x"));
    h.restart(bob_id);
    let message = h.rejected(thing, "getLabel", vec![]);
    assert!(message.contains("[KERNEL:OBJECT_DELETED]"), "{message}");
    // The vat was not killed: its root answers, and so does the other vat.
    assert!(h.is_active(bob_id));
    assert_eq!(h.ok(bob, "ping", vec![]), s("pong"));
    assert_eq!(h.ok(alice, "ping", vec![]), s("pong"));
    // The abandoned object is orphaned; once the host lets go of it (the pin above and the
    // one a host result carries), it is collected.
    let rec = h.core.store().object(thing).unwrap().expect("still held by the host");
    assert_eq!(rec.owner, None);
    h.core.unpin(thing).unwrap();
    h.core.unpin(thing).unwrap();
    h.run();
    let rec = h.core.store().object(thing).unwrap();
    assert!(rec.is_none(), "{rec:?}");
    h.check();
}

#[test]
fn exo_classes_with_interface_guards_and_scalar_stores() {
    let mut h = Harness::new();
    let (alice, bob) = alice_and_bob(&mut h);
    let result = h.ok(alice, "counters", vec![presence(bob)]);
    let Value::Array(items) = result else { panic!("{result:?}") };
    assert_eq!(items[0], n(16.0));
    assert_eq!(items[1], n(16.0));
    let err = items[2].as_str().unwrap();
    assert!(err.contains("incr") && err.contains("number"), "{err}");
    // From the host, a guard violation rejects the result.
    let counter = slot_of(&h.ok(bob, "makeCounter", vec![n(1.0)]));
    h.core.pin(counter).unwrap();
    assert_eq!(h.ok(counter, "incr", vec![]), n(2.0));
    let message = h.rejected(counter, "incr", vec![s("nope")]);
    assert!(message.contains("Must be a number"), "{message}");
    h.core.unpin(counter).unwrap();

    assert_eq!(h.ok(bob, "register", vec![s("k1"), n(10.0)]), n(1.0));
    assert_eq!(h.ok(bob, "register", vec![s("k2"), n(20.0)]), n(2.0));
    assert_eq!(h.ok(bob, "lookup", vec![s("k2")]), n(20.0));
    assert_eq!(h.ok(bob, "keys", vec![]), arr(vec![s("k1"), s("k2")]));
    let message = h.rejected(bob, "register", vec![s("k1"), n(0.0)]);
    assert!(message.contains("already registered"), "{message}");
    let message = h.rejected(bob, "lookup", vec![s("k3")]);
    assert!(message.contains("not found"), "{message}");
    h.run();
    h.check();
}

#[test]
fn dropped_presence_is_collected_across_vats() {
    let mut h = Harness::new();
    let (_, alice) = h.launch("alice", "alice-vat", json!({}), |_| {});
    let log = Arc::new(Mutex::new(Vec::new()));
    let bob_log = log.clone();
    let (bob_id, bob) =
        h.launch_with("bob", "bob-vat", json!({}), |_| {}, move |v| Box::new(Recording { inner: v, log: bob_log }));
    assert_eq!(h.ok(alice, "acquire", vec![presence(bob)]), s("t1"));
    h.check();
    let ep = format!("{bob_id}");
    let thing: String = h
        .core
        .store()
        .connection()
        .query_row("SELECT kref FROM clist WHERE endpoint = ?1 AND eref = 'o+10'", [&ep], |r| r.get(0))
        .expect("bob exported the thing as o+10");
    let rows = |h: &Harness| -> i64 {
        h.core
            .store()
            .connection()
            .query_row("SELECT COUNT(*) FROM clist WHERE kref = ?1", [&thing], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(rows(&h), 2, "exported by bob, imported by alice");
    let kref: KRef = thing.parse().expect("a kref");
    let before = h.core.store().object(kref).expect("object query").expect("the object exists");
    assert_eq!(before.owner.map(|o| o.to_string()), Some(ep.clone()), "{before:?}");
    assert_eq!(before.reachable, 1, "alice's import: {before:?}");
    log.lock().unwrap().clear();

    assert_eq!(h.ok(alice, "release", vec![]), s("released"));
    h.core.reap_vats(None).unwrap();
    h.run();

    let deliveries = log.lock().unwrap().clone();
    assert!(deliveries.contains(&VatDelivery::DropExports(vec!["o+10".into()])), "{deliveries:?}");
    assert!(deliveries.contains(&VatDelivery::RetireExports(vec!["o+10".into()])), "{deliveries:?}");
    assert_eq!(rows(&h), 0);
    let row = h.core.store().object(kref).expect("object query");
    assert!(row.is_none(), "the object row of {kref} is gone: {row:?}");
    // Both vats still work.
    assert_eq!(h.ok(alice, "ping", vec![]), s("pong"));
    assert_eq!(h.ok(bob, "ping", vec![]), s("pong"));
    h.check();
}

#[test]
fn infinite_loop_and_memory_hog_vats_are_terminated() {
    let mut h = Harness::new();
    let (_, alice) = h.launch("alice", "alice-vat", json!({}), |_| {});
    let (spin_id, spinner) = h.launch("spinner", "ping-vat", json!({}), |o| {
        o.delivery_timeout_ms = 1_000;
    });
    let (hog_id, hog) = h.launch("hog", "ping-vat", json!({}), |o| {
        o.memory_limit_bytes = 64 * 1024 * 1024;
    });

    // The delivery aborts, the vat is terminated, and the retried message
    // finds no owner.
    let message = h.rejected(spinner, "spin", vec![]);
    assert!(message.contains("[KERNEL:OBJECT_DELETED]") && message.contains("interrupt"), "{message}");
    assert!(!h.is_active(spin_id));
    assert_eq!(h.ok(alice, "ping", vec![]), s("pong"));

    let message = h.rejected(hog, "hog", vec![]);
    assert!(message.contains("[KERNEL:OBJECT_DELETED]") && message.contains("memory"), "{message}");
    assert!(!h.is_active(hog_id));
    assert_eq!(h.ok(alice, "ping", vec![]), s("pong"));
    h.check();
}

/// The syscalls a delivery hands over while it runs (`VatWorker::deliver_streaming`: 200 here,
/// three chunks before the vat spins) are applied inside its crank, so a delivery that then
/// fails takes them back with it: none of its 100 messages is delivered.
#[test]
fn messages_a_failed_delivery_sent_before_it_failed_are_never_delivered() {
    let mut h = Harness::new();
    let (_, counter) = h.launch("counter", "ping-vat", json!({}), |_| {});
    let (spin_id, spinner) = h.launch("spinner", "ping-vat", json!({}), |o| {
        o.delivery_timeout_ms = 1_000;
    });
    let message = h.rejected(spinner, "sendManyThenSpin", vec![presence(counter), n(100.0)]);
    assert!(message.contains("interrupt"), "{message}");
    assert!(!h.is_active(spin_id));
    assert_eq!(h.ok(counter, "increment", vec![]), n(1.0), "no increment of the failed delivery arrived");
    // The same sends from a delivery that ends well all arrive.
    let (_, sender) = h.launch("sender", "ping-vat", json!({}), |_| {});
    assert_eq!(h.ok(sender, "sendMany", vec![presence(counter), n(100.0)]), n(100.0));
    assert_eq!(h.ok(counter, "increment", vec![]), n(102.0));
    h.check();
}

#[test]
fn syscalls_made_from_timers_reach_the_kernel_as_async_syscalls() {
    let mut h = Harness::new();
    let (_, bob) = h.launch("bob", "bob-vat", json!({"name": "bob"}), |_| {});
    let (_, timer) = h.launch("timer", "timer-vat", json!({}), |_| {});
    let r = h.call_waiting(timer, "delayed", vec![s("late"), n(20.0)]);
    assert_eq!(kunser(&r.unwrap()).unwrap(), s("late"));
    let r = h.call_waiting(timer, "askLater", vec![presence(bob), n(20.0)]);
    assert_eq!(kunser(&r.unwrap()).unwrap(), s("hello a timer from bob"));
    h.check();
}

#[test]
fn a_malformed_syscall_terminates_the_vat_with_the_reason() {
    let mut h = Harness::new();
    let (_, alice) = h.launch("alice", "alice-vat", json!({}), |_| {});
    let (bob_id, bob) = h.launch("bob", "bob-vat", json!({}), |_| {});
    // A result bob decides and has not settled yet.
    let pending = h.queue(bob, "later", vec![]);
    h.run();
    assert!(pending.try_recv().is_err());
    h.core.handle_async_syscalls(bob_id, parse_syscalls(&[json!(["frobnicate", "o+0"])])).unwrap();
    h.run();
    assert!(!h.is_active(bob_id));
    let Err(data) = pending.try_recv().expect("settled") else { panic!("fulfilled") };
    let Value::Error { message, .. } = kunser(&data).unwrap() else { panic!("not an error") };
    assert!(message.contains("[KERNEL:VAT_TERMINATED]"), "{message}");
    assert!(message.contains("ILLEGAL_SYSCALL"), "{message}");
    assert!(
        message.contains(r#"malformed syscall: unknown syscall \"frobnicate\""#)
            || message.contains(r#"malformed syscall: unknown syscall "frobnicate""#),
        "{message}"
    );
    assert_eq!(h.ok(alice, "ping", vec![]), s("pong"));
    h.check();
}

/// The `add` messages `log` holds, as (target, has a result).
fn adds(log: &Mutex<Vec<VatDelivery>>) -> Vec<(String, bool)> {
    log.lock()
        .unwrap()
        .iter()
        .filter_map(|d| match d {
            VatDelivery::Message { target, methargs, result } if methargs.body.starts_with("#[\"add\"") => {
                Some((target.clone(), result.is_some()))
            }
            _ => None,
        })
        .collect()
}

/// `E.sendOnly(x).m()` (spec vat-side §7.5 lists `E.sendOnly` among what
/// vats use) reaches its target like any other message. Kernel-core spec
/// §"Invariants" 12: "A send syscall must carry a result vpid. A missing or
/// null result is illegal", so a send-only message carries one too (our
/// liveslots patch, `js/patches/`); nobody in the sender listens to it.
/// These messages used to vanish silently: liveslots' `queueMessage` threw
/// on the missing result promise and `HandledPromise.applyMethodSendOnly`
/// swallowed the error.
#[test]
fn send_only_messages_are_delivered_in_order() {
    let mut h = Harness::new();
    let (alice_id, alice) = h.launch("alice", "alice-vat", json!({}), |_| {});
    let log = Arc::new(Mutex::new(Vec::new()));
    let bob_log = log.clone();
    let (_, bob) =
        h.launch_with("bob", "bob-vat", json!({}), |_| {}, move |v| Box::new(Recording { inner: v, log: bob_log }));
    assert_eq!(h.ok(alice, "sendOnlyThenAdd", vec![presence(bob)]), n(3.0));
    assert_eq!(adds(&log), vec![("o+0".to_string(), true); 3], "bob got three adds, each with a result");
    assert_eq!(h.ok(bob, "add", vec![]), n(4.0));
    assert!(h.is_active(alice_id));
    // The send-only results were settled and retired like any other.
    h.check();
    let unresolved: i64 = h
        .core
        .store()
        .connection()
        .query_row("SELECT COUNT(*) FROM promises WHERE state = 'unresolved'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(unresolved, 0);
}

/// The same through a promise: send-only messages pipelined to the
/// unresolved result of another message are delivered once it resolves.
#[test]
fn send_only_messages_to_a_promise_are_delivered() {
    let mut h = Harness::new();
    let (_, alice) = h.launch("alice", "alice-vat", json!({}), |_| {});
    let log = Arc::new(Mutex::new(Vec::new()));
    let bob_log = log.clone();
    let (_, bob) =
        h.launch_with("bob", "bob-vat", json!({}), |_| {}, move |v| Box::new(Recording { inner: v, log: bob_log }));
    assert_eq!(h.ok(alice, "sendOnlyToAPromiseThenAdd", vec![presence(bob)]), n(3.0));
    assert_eq!(adds(&log).len(), 3);
    h.check();
}
