//! The vat worker running real JS vats: SES, liveslots and bundles built
//! from `tests/vats/*.js` with esbuild from the crate's pinned node_modules.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;
use std::time::Duration;

/// Only guards against a hang: the waits it bounds end on an event long before.
const HANG_GUARD: Duration = Duration::from_secs(60);

use ocap_vat::{DeliveryReply, VatWorker, VatWorkerError, WorkerEvent, WorkerOptions};
use serde_json::{json, Value};

mod common;
use common::bundle;

struct TestVat {
    worker: VatWorker,
    events: Receiver<WorkerEvent>,
}

impl TestVat {
    fn spawn(opts: WorkerOptions) -> TestVat {
        let (tx, events) = mpsc::channel();
        let tx = Mutex::new(tx);
        let worker = VatWorker::spawn(
            opts,
            Box::new(move |event| {
                let _ = tx.lock().unwrap().send(event);
            }),
        )
        .expect("spawn");
        TestVat { worker, events }
    }

    /// Spawn and init `name` with `config` merged into `{bundleSpec}`.
    fn start(name: &str, config: Value, vatstore: Vec<(String, String)>) -> (TestVat, DeliveryReply) {
        Self::start_with(WorkerOptions::new("v1", name), name, config, vatstore)
    }

    fn start_with(
        opts: WorkerOptions,
        name: &str,
        mut config: Value,
        vatstore: Vec<(String, String)>,
    ) -> (TestVat, DeliveryReply) {
        let vat = Self::spawn(opts);
        config["bundleSpec"] = json!(format!("{name}.bundle"));
        let reply = vat.worker.init(config, Some(bundle(name)), vatstore).expect("init");
        (vat, reply)
    }

    fn send(&self, method: &str, args: Value, slots: &[&str], result: &str) -> DeliveryReply {
        let body = format!("#{}", json!([method, args]));
        self.worker
            .deliver(json!(["message", "o+0", {"methargs": {"body": body, "slots": slots}, "result": result}]))
            .expect("deliver")
    }

    fn logs(&self) -> Vec<(String, Vec<String>, String, Vec<Value>)> {
        self.events
            .try_iter()
            .filter_map(|e| match e {
                WorkerEvent::Log { level, tags, message, data } => Some((level, tags, message, data)),
                _ => None,
            })
            .collect()
    }

    fn next_event(&self, timeout: Duration, mut pick: impl FnMut(&WorkerEvent) -> bool) -> WorkerEvent {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) if pick(&event) => return event,
                Ok(_) => {}
                Err(e) => panic!("no matching event within {timeout:?}: {e}"),
            }
        }
    }
}

fn resolve_of(reply: &DeliveryReply, vpid: &str) -> (bool, Value) {
    for syscall in &reply.syscalls {
        if syscall[0] == "resolve" {
            for resolution in syscall[1].as_array().unwrap() {
                if resolution[0] == vpid {
                    return (resolution[1].as_bool().unwrap(), resolution[2].clone());
                }
            }
        }
    }
    panic!("no resolve of {vpid} in {:#?}", reply.syscalls);
}

fn apply(store: &mut BTreeMap<String, String>, reply: &DeliveryReply) {
    for (k, v) in &reply.vatstore_sets {
        store.insert(k.clone(), v.clone());
    }
    for k in &reply.vatstore_deletes {
        store.remove(k);
    }
}

#[test]
fn init_writes_the_liveslots_u21_vatstore_layout() {
    let (_vat, reply) = TestVat::start("empty-vat", json!({}), vec![]);
    assert_eq!(reply.error, None);
    assert_eq!(reply.syscalls, Vec::<Value>::new());
    assert!(reply.vatstore_deletes.is_empty());
    let store: BTreeMap<String, String> = reply.vatstore_sets.into_iter().collect();
    // Spec vat-side §8.5, copied from the JS kernel's vatstore.test.ts.
    let expected: BTreeMap<String, String> = [
        ("baggageID", "o+d6/1"),
        ("idCounters", r#"{"exportID":10,"collectionID":4,"promiseID":5}"#),
        ("kindIDID", "1"),
        ("storeKindIDTable", r#"{"scalarMapStore":2,"scalarWeakMapStore":3,"scalarSetStore":4,"scalarWeakSetStore":5,"scalarDurableMapStore":6,"scalarDurableWeakMapStore":7,"scalarDurableSetStore":8,"scalarDurableWeakSetStore":9}"#),
        ("vc.1.|entryCount", "0"),
        ("vc.1.|nextOrdinal", "1"),
        ("vc.1.|schemata", r##"{"body":"#{\"keyShape\":{\"#tag\":\"match:string\",\"payload\":[]},\"label\":\"baggage\"}","slots":[]}"##),
        ("vc.2.|entryCount", "0"),
        ("vc.2.|nextOrdinal", "1"),
        ("vc.2.|schemata", r##"{"body":"#{\"keyShape\":{\"#tag\":\"match:scalar\",\"payload\":\"#undefined\"},\"label\":\"promiseWatcherByKind\"}","slots":[]}"##),
        ("vc.3.|entryCount", "0"),
        ("vc.3.|nextOrdinal", "1"),
        ("vc.3.|schemata", r##"{"body":"#{\"keyShape\":{\"#tag\":\"match:and\",\"payload\":[{\"#tag\":\"match:scalar\",\"payload\":\"#undefined\"},{\"#tag\":\"match:string\",\"payload\":[]}]},\"label\":\"watchedPromises\"}","slots":[]}"##),
        ("vom.rc.o+d6/1", "1"),
        ("vom.rc.o+d6/2", "1"),
        ("vom.rc.o+d6/3", "1"),
        ("watchedPromiseTableID", "o+d6/3"),
        ("watcherTableID", "o+d6/2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(store, expected);
}

#[test]
fn message_to_root_resolves_its_result_with_pong() {
    let (vat, reply) = TestVat::start("ping-vat", json!({"parameters": {"name": "alice"}}), vec![]);
    assert_eq!(reply.error, None);
    let reply = vat.send("ping", json!([]), &[], "p-1");
    assert_eq!(reply.error, None);
    assert_eq!(reply.syscalls, vec![json!(["resolve", [["p-1", false, {"body": "#\"pong\"", "slots": []}]]])]);
}

#[test]
fn eventual_send_to_a_presence_makes_a_send_syscall_and_notify_resolves_it() {
    let (vat, _) = TestVat::start("ping-vat", json!({}), vec![]);
    let reply = vat.send("callFoo", json!(["$0.Alleged: other"]), &["o-1"], "p-1");
    assert_eq!(reply.error, None);
    assert_eq!(
        reply.syscalls,
        vec![
            json!(["send", "o-1", {"methargs": {"body": "#[\"foo\",[1,\"two\"]]", "slots": []}, "result": "p+5"}]),
            json!(["subscribe", "p+5"]),
        ]
    );
    let reply =
        vat.worker.deliver(json!(["notify", [["p+5", false, {"body": "#\"bar\"", "slots": []}]]])).expect("notify");
    assert_eq!(reply.error, None);
    assert_eq!(resolve_of(&reply, "p-1"), (false, json!({"body": "#\"bar\"", "slots": []})));
}

#[test]
fn a_throwing_method_rejects_its_result_without_failing_the_delivery() {
    let (vat, _) = TestVat::start("ping-vat", json!({}), vec![]);
    let reply = vat.send("fail", json!([]), &[], "p-1");
    assert_eq!(reply.error, None);
    let (rejected, data) = resolve_of(&reply, "p-1");
    assert!(rejected);
    assert!(data["body"].as_str().unwrap().contains("deliberate failure"), "{data}");
}

/// An eventual send to a local object whose method throws a value `harden` cannot freeze
/// rejects its result with `harden`'s error after one call, through the fast path of our
/// patch to `@endo/eventual-send` (js/patches/README.md, "One deliberate difference": npm's
/// package calls the method twice); it must never leave the result pending.
#[test]
fn a_send_whose_method_throws_what_harden_cannot_freeze_rejects_after_one_call() {
    let (vat, _) = TestVat::start("ping-vat", json!({}), vec![]);
    let reply = vat.send("sendToUnfreezableThrower", json!([]), &[], "p-1");
    assert_eq!(reply.error, None);
    let (rejected, data) = resolve_of(&reply, "p-1");
    assert!(!rejected, "{data}");
    assert_eq!(data["body"], json!("#\"1 call(s), rejected: cannot freeze this\""));
}

#[test]
fn baggage_counter_survives_reinit_with_the_returned_vatstore() {
    let mut store = BTreeMap::new();
    let (vat, reply) = TestVat::start("ping-vat", json!({}), vec![]);
    apply(&mut store, &reply);
    for (i, result) in ["p-1", "p-2"].into_iter().enumerate() {
        let reply = vat.send("increment", json!([]), &[], result);
        assert_eq!(resolve_of(&reply, result).1["body"], json!(format!("#{}", i + 1)));
        apply(&mut store, &reply);
    }
    assert_eq!(store.get("vc.1.scounter").map(String::as_str), Some(r##"{"body":"#2","slots":[]}"##));
    vat.worker.terminate();

    let (vat, reply) = TestVat::start("ping-vat", json!({}), store.clone().into_iter().collect());
    assert_eq!(reply.error, None);
    let reply = vat.send("increment", json!([]), &[], "p-3");
    assert_eq!(resolve_of(&reply, "p-3").1["body"], json!("#3"));
}

#[test]
fn message_to_an_export_the_vat_never_made_is_a_delivery_error() {
    let (vat, _) = TestVat::start("ping-vat", json!({}), vec![]);
    let reply = vat
        .worker
        .deliver(json!(["message", "o+10", {"methargs": {"body": "#[\"ping\",[]]", "slots": []}, "result": "p-1"}]))
        .expect("deliver");
    let error = reply.error.expect("a delivery error");
    assert!(error.contains("I don't remember allocating"), "{error}");
}

#[test]
fn a_throwing_build_root_object_is_an_init_delivery_error() {
    let (_vat, reply) = TestVat::start("build-throw-vat", json!({}), vec![]);
    assert_eq!(reply.error.as_deref(), Some("from buildRootObject"));
}

#[test]
fn a_bundle_without_build_root_object_is_an_init_delivery_error() {
    let (_vat, reply) = TestVat::start("no-build-vat", json!({}), vec![]);
    assert_eq!(reply.error.as_deref(), Some("vat source bundle lacks buildRootObject() function"));
}

#[test]
fn a_build_root_object_that_never_settles_is_reported_unresolved() {
    let (_vat, reply) = TestVat::start("never-resolves-vat", json!({}), vec![]);
    assert_eq!(reply.error.as_deref(), Some("buildRootObject unresolved"));
}

#[test]
fn date_now_and_math_random_throw_secure_mode_without_endowments() {
    let (vat, _) = TestVat::start("ping-vat", json!({}), vec![]);
    for (method, result) in [("now", "p-1"), ("random", "p-2")] {
        let reply = vat.send(method, json!([]), &[], result);
        let (rejected, data) = resolve_of(&reply, result);
        assert!(rejected, "{method} should throw");
        assert!(data["body"].as_str().unwrap().contains("secure mode"), "{method}: {data}");
    }
}

#[test]
fn endowed_date_math_text_codec_and_base64_work() {
    let globals = json!(["Date", "Math", "TextEncoder", "TextDecoder", "atob", "btoa"]);
    let (vat, reply) = TestVat::start("endowments-vat", json!({"globals": globals}), vec![]);
    assert_eq!(reply.error, None);
    assert_eq!(
        resolve_of(&vat.send("now", json!([]), &[], "p-1"), "p-1"),
        (false, json!({"body": "#true", "slots": []}))
    );
    assert_eq!(
        resolve_of(&vat.send("random", json!([]), &[], "p-2"), "p-2"),
        (false, json!({"body": "#true", "slots": []}))
    );
    let (rejected, data) = resolve_of(&vat.send("encode", json!(["hé€😀"]), &[], "p-3"), "p-3");
    assert!(!rejected, "{data}");
    let decoded: Value = serde_json::from_str(&data["body"].as_str().unwrap()[1..]).unwrap();
    assert_eq!(decoded, json!([[104, 195, 169, 226, 130, 172, 240, 159, 152, 128], "hé€😀"]));
    let (_, data) = resolve_of(&vat.send("base64", json!(["hello"]), &[], "p-4"), "p-4");
    assert_eq!(data["body"], json!("#[\"aGVsbG8=\",\"hello\"]"));
}

#[test]
fn host_apis_are_absent_unless_endowed() {
    let (vat, _) = TestVat::start("ping-vat", json!({}), vec![]);
    let (_, data) = resolve_of(&vat.send("globalsPresent", json!([]), &[], "p-1"), "p-1");
    assert_eq!(data["body"], json!("#[]"));
}

#[test]
fn a_timer_callback_runs_as_a_later_turn_and_its_syscalls_come_as_async_syscalls() {
    let globals = json!(["setTimeout", "clearTimeout", "setInterval", "clearInterval"]);
    let (vat, _) = TestVat::start("endowments-vat", json!({"globals": globals}), vec![]);
    let reply = vat.send("cancelled", json!(["$0.Alleged: other"]), &["o-1"], "p-1");
    assert_eq!(resolve_of(&reply, "p-1").1["body"], json!("#\"object\""));
    let reply = vat.send("later", json!(["$0.Alleged: other", 20]), &["o-1"], "p-2");
    // The delivery ends before the timer fires: only the result is resolved.
    assert_eq!(reply.syscalls, vec![json!(["resolve", [["p-2", false, {"body": "#\"scheduled\"", "slots": []}]]])]);
    let event = vat.next_event(HANG_GUARD, |e| matches!(e, WorkerEvent::AsyncSyscalls { .. }));
    let WorkerEvent::AsyncSyscalls { syscalls } = event else { unreachable!() };
    assert_eq!(syscalls[0][0], "send");
    assert_eq!(syscalls[0][1], "o-1");
    assert_eq!(syscalls[0][2]["methargs"]["body"], json!("#[\"foo\",[\"from a timer\"]]"));
    // ... and the cancelled timer never fired.
    assert!(!syscalls.iter().any(|s| s.to_string().contains("must not happen")));

    let reply = vat.send("startTicking", json!(["$0.Alleged: other"]), &["o-1"], "p-3");
    assert_eq!(reply.error, None);
    let mut ticks = Vec::new();
    while ticks.len() < 3 {
        let event = vat.next_event(HANG_GUARD, |e| matches!(e, WorkerEvent::AsyncSyscalls { .. }));
        let WorkerEvent::AsyncSyscalls { syscalls } = event else { unreachable!() };
        for s in syscalls.iter().filter(|s| s[0] == "send") {
            ticks.push(s[2]["methargs"]["body"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(ticks, vec!["#[\"tick\",[1]]", "#[\"tick\",[2]]", "#[\"tick\",[3]]"]);
    vat.worker.ping().expect("still alive");
}

#[test]
fn console_and_logger_send_log_events_with_their_tags() {
    let (vat, _) = TestVat::start("ping-vat", json!({"parameters": {"name": "alice"}}), vec![]);
    vat.send("hello", json!(["bob"]), &[], "p-1");
    let logs = vat.logs();
    assert!(
        logs.contains(&("log".into(), vec!["console".into()], "buildRootObject \"alice\"".into(), vec![])),
        "{logs:#?}"
    );
    assert!(
        logs.contains(&(
            "log".into(),
            vec!["test".into(), "alice".into()],
            "hello bob".into(),
            vec![json!({"who": "bob"})]
        )),
        "{logs:#?}"
    );
}

#[test]
fn an_infinite_loop_is_interrupted_and_the_worker_dies() {
    let mut opts = WorkerOptions::new("v7", "spinner");
    opts.delivery_timeout_ms = 300;
    let (vat, _) = TestVat::start_with(opts, "ping-vat", json!({}), vec![]);
    let err = vat
        .worker
        .deliver(json!(["message", "o+0", {"methargs": {"body": "#[\"spin\",[]]", "slots": []}, "result": "p-1"}]))
        .unwrap_err();
    assert!(
        matches!(&err, VatWorkerError::Died { vat_id, reason } if vat_id == "v7" && reason.contains("interrupted")),
        "{err}"
    );
    let event = vat.next_event(HANG_GUARD, |e| matches!(e, WorkerEvent::Died { .. }));
    assert!(matches!(event, WorkerEvent::Died { reason } if reason.contains("interrupted")));
    assert!(matches!(vat.worker.ping(), Err(VatWorkerError::Died { .. })));
}

#[test]
fn a_delivery_past_its_syscall_limit_gets_no_more_syscalls() {
    // `callFoo` makes two syscalls (send, subscribe); with a limit of one the second throws
    // in the vat and is not buffered.
    let mut opts = WorkerOptions::new("v9", "limited");
    opts.max_syscalls_per_delivery = 1;
    let (vat, reply) = TestVat::start_with(opts, "ping-vat", json!({}), vec![]);
    assert_eq!(reply.error, None);
    let reply = vat.worker.deliver(json!(["message", "o+0", {
        "methargs": {"body": "#[\"callFoo\",[\"$0.Alleged: other\"]]", "slots": ["o-1"]},
        "result": "p-1",
    }]));
    let text = format!("{reply:?}");
    let reply = reply.expect("deliver");
    assert_eq!(reply.syscalls.len(), 1, "{text}");
    assert_eq!(reply.syscalls[0][0], json!("send"));
}

/// A delivery hands its syscalls over in chunks while it runs
/// (`VatWorker::deliver_streaming`); the reply holds the rest. Together they are every
/// syscall, in order, as `deliver` answers them in one list.
#[test]
fn a_delivery_hands_its_syscalls_over_in_chunks_while_it_runs() {
    let (vat, reply) = TestVat::start("ping-vat", json!({}), vec![]);
    assert_eq!(reply.error, None);
    let send_many = |result: &str| {
        json!(["message", "o+0", {
            "methargs": {"body": "#[\"sendMany\",[\"$0.Alleged: other\",100]]", "slots": ["o-1"]},
            "result": result,
        }])
    };
    let mut chunks: Vec<Vec<Value>> = Vec::new();
    let reply = vat.worker.deliver_streaming(send_many("p-1"), &mut |chunk| chunks.push(chunk)).expect("deliver");
    assert_eq!(reply.error, None);
    // 100 sends, a send and a subscribe each, and the result's resolve: 201 syscalls.
    assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), [64, 64, 64], "handed over in chunks");
    assert_eq!(reply.syscalls.len(), 201 - 3 * 64, "the rest comes with the reply");
    let all: Vec<Value> = chunks.into_iter().flatten().chain(reply.syscalls).collect();
    for (i, pair) in all[..200].chunks(2).enumerate() {
        assert_eq!(pair[0][0], json!("send"), "send {i}: {}", pair[0]);
        assert_eq!(pair[0][2]["methargs"]["body"], json!(format!("#[\"increment\",[{i}]]")), "in order");
        assert_eq!(pair[1][0], json!("subscribe"));
    }
    assert_eq!(all[200][0], json!("resolve"));
    // `deliver` answers the same syscalls in one list.
    let reply = vat.worker.deliver(send_many("p-2")).expect("deliver");
    assert_eq!(reply.syscalls.len(), 201);
    assert_eq!(reply.syscalls[0][2]["methargs"]["body"], json!("#[\"increment\",[0]]"));
    assert_eq!(reply.syscalls[199][0], json!("subscribe"));
}

/// The syscall limit counts every syscall of a delivery, those handed over in chunks as well
/// as those in the reply, and starts again with the next delivery.
#[test]
fn the_syscall_limit_counts_the_chunks_too_and_starts_again_with_each_delivery() {
    let mut opts = WorkerOptions::new("v9", "limited");
    opts.max_syscalls_per_delivery = 100;
    let (vat, reply) = TestVat::start_with(opts, "ping-vat", json!({}), vec![]);
    assert_eq!(reply.error, None);
    let send_many = |n: u32, result: &str| {
        json!(["message", "o+0", {
            "methargs": {"body": format!("#[\"sendMany\",[\"$0.Alleged: other\",{n}]]"), "slots": ["o-1"]},
            "result": result,
        }])
    };
    // 75 sends would make 150 syscalls: the first 100 are made (one chunk of 64 among them),
    // the next ones throw in the vat.
    let reply = vat.worker.deliver(send_many(75, "p-1")).expect("deliver");
    assert_eq!(reply.syscalls.len(), 100, "{:?}", reply.syscalls.last());
    // 40 sends and the result's resolve: 81, all made.
    let reply = vat.worker.deliver(send_many(40, "p-2")).expect("deliver");
    assert_eq!(reply.syscalls.len(), 81);
    assert_eq!(reply.syscalls[80][0], json!("resolve"));
}

#[test]
fn a_vat_over_its_memory_limit_dies() {
    let mut opts = WorkerOptions::new("v8", "hog");
    opts.memory_limit_bytes = 64 * 1024 * 1024;
    let (vat, reply) = TestVat::start_with(opts, "ping-vat", json!({}), vec![]);
    assert_eq!(reply.error, None);
    let err = vat
        .worker
        .deliver(json!(["message", "o+0", {"methargs": {"body": "#[\"hog\",[]]", "slots": []}, "result": "p-1"}]))
        .unwrap_err();
    assert!(matches!(&err, VatWorkerError::Died { reason, .. } if reason.contains("memory limit")), "{err}");
}

#[test]
fn unknown_and_unimplemented_globals_are_init_errors() {
    let vat = TestVat::spawn(WorkerOptions::new("v3", "x"));
    let err = vat
        .worker
        .init(json!({"bundleSpec": "x", "globals": ["process"]}), Some(bundle("empty-vat")), vec![])
        .unwrap_err();
    assert_eq!(err.to_string(), "Vat \"v3\" requested unknown global \"process\"");

    let mut opts = WorkerOptions::new("v4", "x");
    opts.allowed_globals = Some(vec!["Date".into()]);
    let vat = TestVat::spawn(opts);
    let err = vat
        .worker
        .init(json!({"bundleSpec": "x", "globals": ["Math"]}), Some(bundle("empty-vat")), vec![])
        .unwrap_err();
    assert_eq!(err.to_string(), "Vat \"v4\" requested unknown global \"Math\"");

    let vat = TestVat::spawn(WorkerOptions::new("v5", "x"));
    let err = vat
        .worker
        .init(json!({"bundleSpec": "x", "globals": ["fetch"]}), Some(bundle("empty-vat")), vec![])
        .unwrap_err();
    assert_eq!(err.to_string(), "Vat \"v5\" requested \"fetch\" but no network.allowedHosts was specified");
}

#[test]
fn bundle_problems_are_clear_init_errors() {
    let vat = TestVat::spawn(WorkerOptions::new("v1", "x"));
    let err = vat.worker.init(json!({"bundleSpec": "/nonexistent/dir/y.bundle"}), None, vec![]).unwrap_err();
    assert_eq!(err.to_string(), "bundle file /nonexistent/dir/y.bundle not found");
    let err = vat.worker.init(json!({"bundleSpec": "file:///nonexistent/z.bundle"}), None, vec![]).unwrap_err();
    assert_eq!(err.to_string(), "bundle file /nonexistent/z.bundle not found");
    let err = vat
        .worker
        .init(json!({"bundleSpec": "x"}), Some(r#"{"moduleFormat":"nope","code":""}"#.into()), vec![])
        .unwrap_err();
    assert_eq!(err.to_string(), "Unknown bundle format: nope");
    let err =
        vat.worker.init(json!({"bundleSpec": "x"}), Some(r#"{"moduleFormat":"iife"}"#.into()), vec![]).unwrap_err();
    assert_eq!(err.to_string(), "invalid bundle: missing code");
    // None of those loaded user code, so the vat can still be initialised,
    // here from a bundle file on disk.
    let path = std::env::temp_dir().join(format!("ocap-vat-test-{}.bundle", std::process::id()));
    std::fs::write(&path, bundle("empty-vat")).unwrap();
    let reply = vat.worker.init(json!({"bundleSpec": format!("file://{}", path.display())}), None, vec![]).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(reply.error, None);
    let err = vat.worker.init(json!({"bundleSpec": "x"}), Some(bundle("empty-vat")), vec![]).unwrap_err();
    assert!(matches!(err, VatWorkerError::AlreadyInitialized { .. }), "{err}");
}

#[test]
fn deliver_before_init_is_an_error() {
    let vat = TestVat::spawn(WorkerOptions::new("v1", "x"));
    let err = vat.worker.deliver(json!(["bringOutYourDead"])).unwrap_err();
    assert!(matches!(err, VatWorkerError::NotInitialized { .. }), "{err}");
    vat.worker.ping().expect("ping");
}

#[test]
fn bring_out_your_dead_completes() {
    let (vat, _) = TestVat::start("ping-vat", json!({}), vec![]);
    vat.send("callFoo", json!(["$0.Alleged: other"]), &["o-1"], "p-1");
    let reply = vat.worker.deliver(json!(["bringOutYourDead"])).expect("boyd");
    assert_eq!(reply.error, None);
}

/// Regression: QuickJS-ng holds a FinalizationRegistry's unregister token
/// strongly, and liveslots registers every presence with itself as the
/// token, so without the supervisor's `TokenSafeFinalizationRegistry` no
/// presence was ever collected and bringOutYourDead never dropped anything.
#[test]
fn bring_out_your_dead_drops_and_retires_presences_the_vat_no_longer_holds() {
    let (vat, _) = TestVat::start("alice-vat", json!({}), vec![]);
    let reply = vat.send("acquire", json!(["$0.Alleged: bob"]), &["o-1"], "p-1");
    assert_eq!(reply.syscalls[0][0], "send");
    let notify = |vpid: &str, body: &str, slots: &[&str]| {
        let reply =
            vat.worker.deliver(json!(["notify", [[vpid, false, {"body": body, "slots": slots}]]])).expect("notify");
        assert_eq!(reply.error, None);
        reply
    };
    notify("p+5", "#\"$0.Alleged: thing\"", &["o-2"]);
    let reply = notify("p+6", "#\"t1\"", &[]);
    assert_eq!(resolve_of(&reply, "p-1"), (false, json!({"body": "#\"t1\"", "slots": []})));
    // bob (o-1) is no longer used; the thing (o-2) is still held.
    let reply = vat.worker.deliver(json!(["bringOutYourDead"])).expect("boyd");
    assert_eq!(reply.syscalls, vec![json!(["dropImports", ["o-1"]]), json!(["retireImports", ["o-1"]])]);
    vat.send("release", json!([]), &[], "p-2");
    let reply = vat.worker.deliver(json!(["bringOutYourDead"])).expect("boyd");
    assert_eq!(reply.syscalls, vec![json!(["dropImports", ["o-2"]]), json!(["retireImports", ["o-2"]])]);
}
