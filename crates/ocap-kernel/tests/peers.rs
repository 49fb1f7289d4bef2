//! Two kernels as network peers (remote-comms.md §2–§8), with scripted vats and the frames
//! carried by the test: each kernel's transport records what it sends, and the test hands it
//! to the other kernel, as it is or dropped, duplicated and reordered. The libp2p transport
//! and JS vats are exercised by the CLI's tests; this file pins down the protocol: the wire
//! format, receiver-frame refs, results and pipelining, promises as arguments, distributed
//! GC, exactly-once in-order delivery over a lossy link, crashes, give-up and incarnations.

mod common;

use std::collections::VecDeque;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use ocap_kernel::remote::envelope::{self, Body, Frame};
use ocap_kernel::remote::transport::{PeerLinkStatus, RemoteTransport};
use ocap_kernel::smallcaps::Value;
use ocap_kernel::testing::{answer, decode_methargs, DeliveryLog, ScriptedVat};
use ocap_kernel::vat::{VatDelivery, VatResolution, VatSyscall};
use ocap_kernel::{KRef, RemoteOptions};

/// A transport that records the frames a kernel sends (and how often it was told to forget
/// its backoffs).
#[derive(Clone, Default)]
struct Wire(Arc<Mutex<Vec<String>>>, Arc<std::sync::atomic::AtomicUsize>);

impl Wire {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl RemoteTransport for Wire {
    fn send(&self, _peer_id: &str, frame: String) {
        self.0.lock().unwrap().push(frame);
    }
    fn register_location_hints(&self, _peer_id: &str, _hints: &[String]) {}
    fn close_connection(&self, _peer_id: &str) {}
    fn reconnect_peer(&self, _peer_id: &str, _hints: &[String]) {}
    fn listen_addresses(&self) -> Vec<String> {
        Vec::new()
    }
    fn peers(&self) -> Vec<PeerLinkStatus> {
        Vec::new()
    }
    fn stop(&self) {}
    fn reset_all_backoffs(&self) {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

struct Node {
    k: TestKernel,
    peer: String,
    wire: Wire,
    /// Every frame this node sent, for the wire-format checks.
    sent: Vec<String>,
}

fn options() -> RemoteOptions {
    RemoteOptions {
        ack_timeout: Duration::from_secs(1),
        max_retries: 3,
        delayed_ack: Duration::from_millis(1),
        ..RemoteOptions::default()
    }
}

fn node() -> Node {
    node_with(options())
}

fn node_with(opts: RemoteOptions) -> Node {
    let mut k = kernel();
    let peer = k.core.provide_identity(None).expect("identity").peer_id;
    let wire = Wire::default();
    k.core.attach_transport(Arc::new(wire.clone()), opts).expect("attach");
    Node { k, peer, wire, sent: Vec::new() }
}

/// What the network does to a batch of frames.
type Net<'a> = &'a mut dyn FnMut(Vec<String>) -> Vec<String>;

fn perfect(frames: Vec<String>) -> Vec<String> {
    frames
}

/// One round: both kernels run, their frames cross (through `net`). Returns whether any frame
/// was sent.
fn round(a: &mut Node, b: &mut Node, net: Net) -> bool {
    a.k.run();
    b.k.run();
    let fa = a.wire.take();
    let fb = b.wire.take();
    let any = !fa.is_empty() || !fb.is_empty();
    a.sent.extend(fa.iter().cloned());
    b.sent.extend(fb.iter().cloned());
    for f in net(fa) {
        b.k.core.receive_from_peer(&a.peer, &f).expect("b receives");
    }
    for f in net(fb) {
        a.k.core.receive_from_peer(&b.peer, &f).expect("a receives");
    }
    any
}

/// Runs rounds until nothing more is sent, delayed acks included.
fn settle(a: &mut Node, b: &mut Node) {
    for _ in 0..1000 {
        if round(a, b, &mut perfect) {
            continue;
        }
        let later = Instant::now() + Duration::from_millis(20);
        a.k.core.remote_tick(later).expect("tick");
        b.k.core.remote_tick(later).expect("tick");
        if !round(a, b, &mut perfect) {
            return;
        }
    }
    panic!("the kernels never went quiet");
}

/// A counter vat: `increment()` answers the new count, `make()` a new object `o+N`,
/// `hello(name)` a greeting.
fn counter() -> (ScriptedVat, DeliveryLog) {
    let mut count = 0;
    let mut made = 0;
    ScriptedVat::new(answer(move |method, args| match method {
        "increment" => {
            count += 1;
            Ok(Value::Number(count as f64))
        }
        "make" => {
            made += 1;
            Ok(Value::Remotable { slot: format!("o+{made}"), iface: Some("Alleged: made".into()) })
        }
        "hello" => Ok(Value::str(format!(
            "hello, {}",
            match args.first() {
                Some(Value::String(s)) => s.as_str(),
                _ => "stranger",
            }
        ))),
        "big" => Ok(Value::str("y".repeat(1024 * 1024 + 10))),
        other => Err(Value::error(format!("no method {other}"))),
    }))
}

/// A's kref for an object of B, through an OCAP URL B issued and A redeemed over the wire.
fn redeem(a: &mut Node, b: &mut Node, obj: KRef) -> KRef {
    let url = b.k.core.issue_ocap_url(obj).expect("issue");
    let (tx, rx) = mpsc::channel();
    a.k.core.redeem_ocap_url_with(&url, true, Box::new(move |r| drop(tx.send(r))));
    settle(a, b);
    rx.try_recv().expect("redemption answered").expect("redeemed")
}

/// Two peers where B runs a counter vat named `name` and A holds its root, redeemed from an
/// OCAP URL over the wire.
struct Pair {
    a: Node,
    b: Node,
    log: DeliveryLog,
    vat_id: ocap_kernel::VatId,
    remote: KRef,
}

fn pair(name: &str) -> Pair {
    let (mut a, mut b) = (node(), node());
    let (vat, log) = counter();
    let (vat_id, root) = b.k.add(name, vat);
    let remote = redeem(&mut a, &mut b, root);
    Pair { a, b, log, vat_id, remote }
}

/// Two kernels, with `vat` in B (as `name`) and A's kref for its root, redeemed over the wire.
fn peers_with(name: &str, vat: ScriptedVat) -> (Node, Node, KRef) {
    let (mut a, mut b) = (node(), node());
    let (_, root) = b.k.add(name, vat);
    let remote = redeem(&mut a, &mut b, root);
    (a, b, remote)
}

/// As `pair`, with the JS kernel's 10 s ack timer (so that whatever is resent sooner is
/// resent by something else), and its options.
fn pair_with_the_js_ack_timer() -> (RemoteOptions, Pair) {
    let opts = RemoteOptions { ack_timeout: Duration::from_secs(10), ..options() };
    let (mut a, mut b) = (node_with(opts.clone()), node_with(opts.clone()));
    let (vat, log) = counter();
    let (vat_id, root) = b.k.add("counter", vat);
    let remote = redeem(&mut a, &mut b, root);
    log.take();
    (opts, Pair { a, b, log, vat_id, remote })
}

fn host_call(
    a: &mut Node,
    b: &mut Node,
    target: KRef,
    method: &str,
    args: Vec<Value>,
) -> Option<ocap_kernel::HostResult> {
    let rx = a.k.send(target, method, args);
    settle(a, b);
    rx.try_recv().ok()
}

fn frames(sent: &[String]) -> Vec<Frame> {
    sent.iter().map(|f| envelope::decode(f).expect("our frames decode")).collect()
}

#[test]
fn a_call_to_an_object_in_another_kernel_is_answered_and_the_wire_is_the_js_kernels_4_4() {
    let Pair { mut a, mut b, log, remote, .. } = pair("counter");
    assert_eq!(ok_value(host_call(&mut a, &mut b, remote, "increment", vec![])), Value::Number(1.0));
    assert_eq!(ok_value(host_call(&mut a, &mut b, remote, "increment", vec![])), Value::Number(2.0));
    assert_eq!(log.methods(), ["increment", "increment"]);

    // The frames, as the JS kernel writes them (§4.4's example): A asks, B answers `ro+1` in
    // A's frame, A's message targets `ro-1` (B's export, in B's frame) with result `rp+1`.
    assert!(a.sent[0].starts_with(r#"{"seq":1,"method":"redeemURL","params":["ocap:"#), "{}", a.sent[0]);
    assert!(b.sent[0].starts_with(r#"{"seq":1,"ack":1,"method":"redeemURLReply","params":[true,""#), "{}", b.sent[0]);
    assert!(b.sent[0].ends_with(r#"","ro+1"]}"#), "{}", b.sent[0]);
    let msg = a.sent.iter().find(|f| f.contains("\"message\"")).expect("a message frame");
    assert_eq!(
        msg,
        r##"{"seq":2,"ack":1,"method":"deliver","params":["message","ro-1",{"methargs":{"body":"#[\"increment\",[]]","slots":[]},"result":"rp+1"}]}"##
    );
    let notify = b.sent.iter().find(|f| f.contains("\"notify\"")).expect("a notify frame");
    assert!(notify.contains(r##"["notify",[["rp-1",false,{"body":"#1","slots":[]}]]]"##), "{notify}");
    // Acks flow: nothing is left pending on either side.
    for n in [&a, &b] {
        for p in n.k.core.peer_statuses().unwrap() {
            assert_eq!(p.backlog, 0, "{p:?}");
        }
    }
    a.k.check();
    b.k.check();
}

#[test]
fn results_pipeline_to_the_kernel_that_decides_them_8_1() {
    let Pair { mut a, mut b, log, remote, .. } = pair("maker");
    // `make()` then `hello()` on its answer, before the answer is back.
    let made = a.k.send(remote, "make", vec![]);
    a.k.run();
    let first = a.wire.take();
    a.sent.extend(first.iter().cloned());
    for f in &first {
        b.k.core.receive_from_peer(&a.peer, f).unwrap();
    }
    let made_kp = {
        // The host sends to the promise the kernel made for `make()`'s result: find it as the
        // one promise A's c-list for B holds.
        let rows =
            a.k.core
                .store()
                .connection()
                .prepare("SELECT kref FROM clist WHERE endpoint LIKE 'r%' AND kref LIKE 'kp%'")
                .unwrap()
                .query_map([], |r| r.get::<_, String>(0))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        rows[0].parse::<KRef>().unwrap()
    };
    let hello = a.k.send(made_kp, "hello", vec![Value::str("pipeline")]);
    a.k.run();
    let second = a.wire.take();
    a.sent.extend(second.iter().cloned());
    // The second message went out at once, to the promise (`rp+…` in B's frame: B's own), not
    // parked in A until the first answer came back.
    let Some(Frame::Message { body: Body::Deliver(VatDelivery::Message { target, .. }), .. }) =
        frames(&second).into_iter().next()
    else {
        panic!("the pipelined message was not sent: {second:?}");
    };
    assert!(target.starts_with("rp+"), "{target}");
    for f in &second {
        b.k.core.receive_from_peer(&a.peer, f).unwrap();
    }
    settle(&mut a, &mut b);
    assert!(matches!(made.try_recv(), Ok(Ok(_))));
    assert_eq!(ok_value(hello.try_recv().ok()), Value::str("hello, pipeline"));
    assert_eq!(log.methods(), ["make", "hello"]);
    a.k.check();
    b.k.check();
}

/// A vat that, on `watch(p)`, subscribes to `p` and answers "watching"; its deliveries are
/// logged, so the notify shows.
fn watcher() -> (ScriptedVat, DeliveryLog) {
    ScriptedVat::new(Box::new(|d, sys| {
        if let VatDelivery::Message { methargs, result: Some(result), .. } = d {
            if let Some(vpid) = methargs.slots.first() {
                sys.syscall(VatSyscall::Subscribe(vpid.clone()));
            }
            sys.syscall(VatSyscall::Resolve(vec![VatResolution {
                vpid: result.clone(),
                rejected: false,
                data: vdata("#\"watching\"", &[]),
            }]));
        }
        Ok(())
    }))
}

#[test]
fn a_promise_passed_as_an_argument_is_settled_in_the_other_kernel_8_2() {
    let (vat, wlog) = watcher();
    let (mut a, mut b, remote) = peers_with("watcher", vat);
    // In A, a vat holding the watcher sends it a promise of its own (`watch(p)`), and
    // settles it later.
    let (alice, _alog, plan) = ScriptedVat::planned();
    let (_, alice_root) = a.k.add("alice", alice);
    plan.push(vec![VatSyscall::Send {
        target: "o-1".into(),
        methargs: vdata("#[\"watch\",[\"&0\"]]", &["p+10"]),
        result: Some("p+11".into()),
    }]);
    let _ = a.k.send(alice_root, "go", vec![Value::presence(remote, None)]);
    settle(&mut a, &mut b);
    assert_eq!(wlog.methods(), ["watch"]);
    // Now alice resolves her promise: B's watcher hears of it.
    plan.push(vec![resolve("p+10", false, "#\"done\"", &[])]);
    let _ = a.k.send(alice_root, "finish", vec![]);
    settle(&mut a, &mut b);
    let notified = wlog.all().into_iter().any(|d| match d {
        VatDelivery::Notify(rs) => rs.iter().any(|r| r.data.body == "#\"done\"" && !r.rejected),
        _ => false,
    });
    assert!(notified, "the watcher was never told: {:?}", wlog.all());
    a.k.check();
    b.k.check();
}

#[test]
fn dropping_a_remote_object_collects_it_in_both_kernels_8_4() {
    let Pair { mut a, mut b, log, remote, .. } = pair("maker");
    let made = match ok_value(host_call(&mut a, &mut b, remote, "make", vec![])) {
        Value::Remotable { slot, .. } => slot,
        v => panic!("{v:?}"),
    };
    // B's kref for the made object: the one its vat exports as o+1.
    let b_obj: KRef = b
        .k
        .core
        .store()
        .connection()
        .query_row("SELECT kref FROM clist WHERE endpoint LIKE 'v%' AND eref = 'o+1'", [], |r| r.get::<_, String>(0))
        .unwrap()
        .parse()
        .unwrap();
    assert!(b.k.core.store().object(b_obj).unwrap().is_some());
    log.take();
    // The host lets go of it in A: A drops and retires its import; B's vat is told.
    a.k.core.unpin(made).expect("unpin");
    settle(&mut a, &mut b);
    assert!(a.k.core.store().object(made).unwrap().is_none(), "A's object row is gone");
    assert!(b.k.core.store().object(b_obj).unwrap().is_none(), "B's object row is gone");
    let gc: Vec<VatDelivery> = log.take();
    assert!(gc.contains(&VatDelivery::DropExports(vec!["o+1".into()])), "{gc:?}");
    // The GC frames carry refs in the receiver's frame: A dropped B's export, `ro-2` to B.
    let drop_frame = a.sent.iter().find(|f| f.contains("dropExports")).expect("a dropExports frame");
    assert!(drop_frame.contains(r#"["dropExports",["ro-2"]]"#), "{drop_frame}");
    a.k.check();
    b.k.check();
}

#[test]
fn gc_refs_in_the_js_kernels_sender_frame_are_accepted_8_4() {
    // The JS kernel sends GC refs in its own frame (§15.2): B must take `ro+2` for its `ro-2`.
    let Pair { mut a, mut b, log, remote, .. } = pair("maker");
    let _ = ok_value(host_call(&mut a, &mut b, remote, "make", vec![]));
    log.take();
    let seq = b.k.core.store().peers().unwrap()[0].highest_received_seq + 1;
    let js = format!(r#"{{"seq":{seq},"method":"deliver","params":["dropExports",["ro+2"]]}}"#);
    b.k.core.receive_from_peer(&a.peer, &js).unwrap();
    let js = format!(r#"{{"seq":{},"method":"deliver","params":["retireExports",["ro+2"]]}}"#, seq + 1);
    b.k.core.receive_from_peer(&a.peer, &js).unwrap();
    b.k.run();
    assert!(log.take().contains(&VatDelivery::DropExports(vec!["o+1".into()])));
    assert!(b.k.core.peer_statuses().unwrap()[0].last_error.is_none());
    b.k.check();
}

#[test]
fn a_notify_naming_no_rref_is_refused_with_a_short_error_and_nothing_kept_4_4() {
    // A notify names a promise by its rref (§4.4). A peer that names something else, as
    // large as a frame allows, gets its frame refused with an error that names it briefly;
    // the kernel keeps nothing of it and goes on.
    let Pair { a, mut b, .. } = pair("maker");
    let seq = b.k.core.store().peers().unwrap()[0].highest_received_seq + 1;
    let junk = "x".repeat(100_000);
    let js = format!(
        r##"{{"seq":{seq},"method":"deliver","params":["notify",[["{junk}",false,{{"body":"#1","slots":[]}}]]]}}"##
    );
    b.k.core.receive_from_peer(&a.peer, &js).unwrap();
    let status = b.k.core.peer_statuses().unwrap()[0].clone();
    let error = status.last_error.expect("the frame was refused");
    assert!(error.contains("malformed promise reference"), "{error}");
    assert!(error.len() < 300, "the error names the reference, it does not copy it: {} bytes", error.len());
    assert_eq!(b.k.core.store().peers().unwrap()[0].highest_received_seq, seq, "taken all the same (exactly once)");
    // The kernel goes on, its store consistent. (A's own next frame would repeat the seq
    // this test's frame took, so it is not sent here.)
    b.k.run();
    b.k.check();
    a.k.check();
}

/// A network that drops, duplicates and reorders frames, from a seed.
struct Lossy {
    state: u64,
}

impl Lossy {
    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn carry(&mut self, frames: Vec<String>) -> Vec<String> {
        let mut out: VecDeque<String> = VecDeque::new();
        for f in frames {
            match self.next() % 10 {
                0 | 1 => {} // dropped
                2 => {
                    out.push_back(f.clone()); // duplicated
                    out.push_back(f);
                }
                3 => out.push_front(f), // overtakes the ones before it
                _ => out.push_back(f),
            }
        }
        out.into()
    }
}

#[test]
fn delivery_is_exactly_once_and_in_order_over_a_link_that_drops_duplicates_and_reorders_5() {
    for seed in 1..=8u64 {
        let opts = RemoteOptions { max_retries: 1000, ..options() };
        let (mut a, mut b) = (node_with(opts.clone()), node_with(opts));
        let (vat, log) = counter();
        let (_, root) = b.k.add("counter", vat);
        let remote = redeem(&mut a, &mut b, root);
        log.take();
        const N: usize = 40;
        let results: Vec<_> = (0..N).map(|i| a.k.send(remote, "hello", vec![Value::str(i.to_string())])).collect();
        let mut net = Lossy { state: seed };
        let mut clock = Instant::now();
        let mut rounds = 0;
        while log.len() < N
            || a.k.core.peer_statuses().unwrap()[0].backlog > 0
            || b.k.core.peer_statuses().unwrap()[0].backlog > 0
        {
            rounds += 1;
            assert!(rounds < 5000, "seed {seed}: no progress after {rounds} rounds ({} delivered)", log.len());
            if !round(&mut a, &mut b, &mut |f| net.carry(f)) {
                // Quiet: let the timers fire (acks, retransmissions).
                clock += Duration::from_secs(2);
                a.k.core.remote_tick(clock).unwrap();
                b.k.core.remote_tick(clock).unwrap();
            }
        }
        // Each message once, in send order.
        let seen: Vec<String> = log
            .all()
            .iter()
            .filter_map(|d| match d {
                VatDelivery::Message { methargs, .. } => match decode_methargs(methargs) {
                    Some((_, args)) => match args.first() {
                        Some(Value::String(s)) => Some(s.clone()),
                        _ => None,
                    },
                    None => None,
                },
                _ => None,
            })
            .collect();
        let want: Vec<String> = (0..N).map(|i| i.to_string()).collect();
        assert_eq!(seen, want, "seed {seed}");
        for (i, r) in results.iter().enumerate() {
            assert_eq!(ok_value(r.try_recv().ok()), Value::str(format!("hello, {i}")), "seed {seed}");
        }
        a.k.check();
        b.k.check();
    }
}

#[test]
fn answers_reach_the_host_once_each_and_in_order_over_a_lossy_link_5() {
    let opts = RemoteOptions { max_retries: 1000, ..options() };
    let (mut a, mut b) = (node_with(opts.clone()), node_with(opts));
    let (vat, _log) = counter();
    let (_, root) = b.k.add("counter", vat);
    let remote = redeem(&mut a, &mut b, root);
    let results: Vec<_> = (0..30).map(|_| a.k.send(remote, "increment", vec![])).collect();
    let mut net = Lossy { state: 99 };
    let mut clock = Instant::now();
    let mut got = vec![None; results.len()];
    for _ in 0..5000 {
        if !round(&mut a, &mut b, &mut |f| net.carry(f)) {
            clock += Duration::from_secs(2);
            a.k.core.remote_tick(clock).unwrap();
            b.k.core.remote_tick(clock).unwrap();
        }
        for (i, r) in results.iter().enumerate() {
            if let Ok(v) = r.try_recv() {
                assert!(got[i].is_none(), "answer {i} came twice");
                got[i] = Some(ok_value(Some(v)));
            }
        }
        if got.iter().all(Option::is_some) {
            break;
        }
    }
    let got: Vec<Value> = got.into_iter().map(|v| v.expect("every answer came")).collect();
    let want: Vec<Value> = (1..=30).map(|n| Value::Number(n as f64)).collect();
    assert_eq!(got, want);
}

#[test]
fn a_kernel_killed_after_sending_resends_what_was_not_acked_and_the_peer_takes_it_once_5_2() {
    let Pair { mut a, mut b, log, remote, .. } = pair("counter");
    log.take();
    let _ = a.k.send(remote, "increment", vec![]);
    a.k.run();
    // The frame was logged and sent; B got it and processed it, but A dies before the ack.
    let sent = a.wire.take();
    assert_eq!(sent.len(), 1);
    for f in &sent {
        b.k.core.receive_from_peer(&a.peer, f).unwrap();
    }
    b.k.run();
    let Node { k, peer, .. } = a;
    let mut k = k.crash();
    let wire = Wire::default();
    k.core.attach_transport(Arc::new(wire.clone()), options()).unwrap();
    // On attach, the pending frame goes out again; B drops the duplicate but acks it.
    let resent = wire.take();
    assert_eq!(resent, sent, "the same frame, byte for byte");
    let mut a = Node { k, peer, wire, sent: Vec::new() };
    for f in &resent {
        b.k.core.receive_from_peer(&a.peer, f).unwrap();
    }
    settle(&mut a, &mut b);
    assert_eq!(log.methods(), ["increment"], "delivered once");
    assert_eq!(a.k.core.peer_statuses().unwrap()[0].backlog, 0);
    // B answered into the promise the dead process made: it settles in the new one.
    let p = a.k.core.store().peers().unwrap();
    assert_eq!(p[0].highest_received_seq, b.k.core.store().peers().unwrap()[0].next_send_seq);
    a.k.check();
    b.k.check();
}

#[test]
fn a_peer_that_never_answers_is_given_up_and_what_waits_on_it_is_rejected_6() {
    let Pair { mut a, mut b, log, remote, .. } = pair("counter");
    let rx = a.k.send(remote, "increment", vec![]);
    a.k.run();
    let first = a.wire.take();
    assert_eq!(first.len(), 1);
    // B is gone: nothing arrives. Each ack timeout resends; after max_retries, give-up.
    let mut clock = Instant::now();
    for i in 0..options().max_retries {
        clock += options().ack_timeout + Duration::from_millis(1);
        a.k.core.remote_tick(clock).unwrap();
        assert_eq!(a.wire.take(), first, "retransmission {i} resends the same frame");
    }
    clock += options().ack_timeout + Duration::from_millis(1);
    a.k.core.remote_tick(clock).unwrap();
    a.k.run();
    let why = rejection(rx.try_recv().ok());
    assert!(why.starts_with("[KERNEL:CONNECTION_LOST] Remote connection lost: "), "{why}");
    assert!(why.contains(&b.peer));
    // Kept (unlike a peer never reached): it was heard from, and holds references.
    assert_eq!(a.k.core.peer_statuses().unwrap().len(), 1);
    let status = &a.k.core.peer_statuses().unwrap()[0];
    assert!(status.last_error.as_deref().is_some_and(|e| e.contains("Remote connection lost")));
    // The withdrawn message stays in the log as a no-op under its seq: no gap, and it will
    // not run now that its caller was told it failed.
    assert_eq!(status.backlog, 1);
    let log_frames = a.k.core.store().pending_frames(a.k.core.store().peers().unwrap()[0].remote).unwrap();
    assert_eq!(log_frames[0].1, r#"{"seq":2,"ack":1,"method":"deliver","params":["bringOutYourDead"]}"#);
    a.k.check();
    // B is back. A new call goes out; the retransmission carries the no-op first.
    let again = a.k.send(remote, "increment", vec![]);
    a.k.run();
    clock += options().ack_timeout + Duration::from_millis(1);
    a.k.core.remote_tick(clock).unwrap();
    settle(&mut a, &mut b);
    assert_eq!(log.methods(), ["increment"], "the withdrawn call never ran");
    assert_eq!(ok_value(again.try_recv().ok()), Value::Number(1.0));
    a.k.check();
    b.k.check();
}

/// Starts A redeeming a URL B issued for `obj`; the reply lands in the returned receiver. The
/// redeemURL frame is sent (and taken off A's wire): whether it reaches B is the test's call.
fn start_redeem(a: &mut Node, b: &mut Node, obj: KRef) -> mpsc::Receiver<Result<KRef, String>> {
    let url = b.k.core.issue_ocap_url(obj).expect("issue");
    let (tx, rx) = mpsc::channel();
    a.k.core.redeem_ocap_url_with(&url, true, Box::new(move |r| drop(tx.send(r))));
    a.k.run();
    let sent = a.wire.take();
    assert!(sent.len() == 1 && sent[0].contains("\"redeemURL\""), "{sent:?}");
    rx
}

/// Runs A's ack timer past `max_retries` retransmissions: the give-up.
fn tick_until_give_up(a: &mut Node) {
    let mut clock = Instant::now();
    for _ in 0..=options().max_retries {
        clock += options().ack_timeout + Duration::from_millis(1);
        a.k.core.remote_tick(clock).unwrap();
    }
    a.k.run();
    a.wire.take();
}

/// §6, and what this kernel adds: a peer a URL was redeemed from that never answers (nothing
/// listens at its addresses) is given up on, the redemption rejected, and then, never heard
/// from and holding nothing, it is forgotten: no longer listed, no rows left. Both ways to a
/// give-up: the ack timer, and the transport's. If it shows up after all, it is a new peer.
#[test]
fn a_peer_never_reached_is_forgotten_after_the_give_up_6() {
    let (mut a, mut b) = (node(), node());
    let (vat, _log) = counter();
    let (_, root) = b.k.add("counter", vat);

    let rx = start_redeem(&mut a, &mut b, root);
    assert_eq!(a.k.core.peer_statuses().unwrap().len(), 1, "listed while it is tried");
    tick_until_give_up(&mut a);
    let why = rx.try_recv().expect("answered").expect_err("rejected");
    assert!(why.starts_with(&format!("Remote connection lost: {}", b.peer)), "{why}");
    assert_eq!(a.k.core.peer_statuses().unwrap(), vec![]);
    assert_eq!(a.k.core.store().peers().unwrap(), vec![]);
    assert_eq!(a.k.core.store().remotes().unwrap(), vec![]);
    a.k.check();

    // The transport gives up first (its dials refused five times in a row, say).
    let rx = start_redeem(&mut a, &mut b, root);
    a.k.core.transport_gave_up(&b.peer).unwrap();
    a.k.run();
    let why = rx.try_recv().expect("answered").expect_err("rejected");
    assert!(why.starts_with("Remote connection lost"), "{why}");
    assert_eq!(a.k.core.peer_statuses().unwrap(), vec![]);
    assert_eq!(a.k.core.store().remotes().unwrap(), vec![]);
    // Late news about the forgotten peer is ignored.
    a.k.core.transport_gave_up(&b.peer).unwrap();
    a.k.check();

    // B is there after all: a new endpoint, seqs from 1, and it works.
    let remote = redeem(&mut a, &mut b, root);
    assert_eq!(ok_value(host_call(&mut a, &mut b, remote, "increment", vec![])), Value::Number(1.0));
    let peers = a.k.core.store().peers().unwrap();
    assert_eq!(peers.len(), 1);
    assert_eq!(b.k.core.store().peers().unwrap()[0].highest_received_seq, peers[0].next_send_seq);
    a.k.check();
    b.k.check();
}

/// A peer that was heard from is kept after a give-up, even one that holds nothing: a
/// handshake alone (its incarnation known) means it may have our frames, and may come back
/// with its state.
#[test]
fn a_peer_heard_from_is_kept_after_the_give_up_6() {
    let (mut a, mut b) = (node(), node());
    let (vat, _log) = counter();
    let (_, root) = b.k.add("counter", vat);
    let b_incarnation = b.k.core.identity().unwrap().unwrap().incarnation_id;
    assert!(!a.k.core.peer_incarnation(&b.peer, &b_incarnation).unwrap());
    let rx = start_redeem(&mut a, &mut b, root);
    tick_until_give_up(&mut a);
    assert!(rx.try_recv().expect("answered").is_err());
    let status = a.k.core.peer_statuses().unwrap();
    assert_eq!(status.len(), 1, "kept");
    assert_eq!(status[0].peer_id, b.peer);
    assert_eq!(status[0].backlog, 1, "the withdrawn redemption, as a no-op");
    a.k.check();
}

#[test]
fn a_gap_in_the_seqs_is_held_back_until_the_sender_has_shown_it_is_on_purpose_5_3() {
    // The JS kernel leaves gaps after a give-up (§6); a frame that overtook another looks the
    // same. Held back at first (and acked as far as it goes), taken once the gap has lasted
    // longer than the sender's retransmission would.
    let Pair { a, mut b, log, remote: _remote, .. } = pair("counter");
    log.take();
    let next = b.k.core.store().peers().unwrap()[0].highest_received_seq + 2;
    let js = format!(
        r##"{{"seq":{next},"method":"deliver","params":["message","ro-1",{{"methargs":{{"body":"#[\"increment\",[]]","slots":[]}},"result":"rp+9"}}]}}"##
    );
    b.k.core.receive_from_peer(&a.peer, &js).unwrap();
    b.k.run();
    assert!(log.is_empty(), "held back at first");
    std::thread::sleep(options().ack_timeout * 3 / 2);
    // A frame sent later is not proof enough (the missing ones may still come after a
    // long outage) ...
    let later = js.replace(&format!(r#""seq":{next}"#), &format!(r#""seq":{}"#, next + 1)).replace("rp+9", "rp+10");
    b.k.core.receive_from_peer(&a.peer, &later).unwrap();
    b.k.run();
    assert!(log.is_empty(), "still held");
    // ... the sender's retransmission of its log without them is.
    b.k.core.receive_from_peer(&a.peer, &js).unwrap();
    b.k.run();
    assert_eq!(log.methods(), ["increment", "increment"]);
    // A copy that comes later is a duplicate.
    b.k.core.receive_from_peer(&a.peer, &js).unwrap();
    b.k.run();
    assert_eq!(log.methods(), ["increment", "increment"], "each taken once");
    assert_eq!(b.k.core.store().peers().unwrap()[0].highest_received_seq, next + 1);
    b.k.check();
}

/// The `hello` arguments B's vat received, in order.
fn hellos(log: &DeliveryLog) -> Vec<String> {
    log.all()
        .iter()
        .filter_map(|d| match d {
            VatDelivery::Message { methargs, .. } => match decode_methargs(methargs)?.1.first() {
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn a_frame_that_overtook_another_waits_for_it_and_neither_is_sent_again_5_3() {
    // Frames can overtake each other across the two channels of a simultaneous dial. The
    // one that came early is kept and taken right after the one it overtook: no frame is
    // lost, so none has to be resent.
    let Pair { mut a, mut b, log, remote, .. } = pair("counter");
    log.take();
    let results: Vec<_> = (0..3).map(|i| a.k.send(remote, "hello", vec![Value::str(i.to_string())])).collect();
    a.k.run();
    let sent = a.wire.take();
    assert_eq!(sent.len(), 3, "one frame per message");
    for i in [1, 0, 2] {
        b.k.core.receive_from_peer(&a.peer, &sent[i]).unwrap();
    }
    b.k.run();
    assert_eq!(hellos(&log), ["0", "1", "2"], "in send order, each once");
    settle(&mut a, &mut b);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(ok_value(r.try_recv().ok()), Value::str(format!("hello, {i}")));
    }
    for f in &sent {
        assert!(!a.sent.contains(f), "a frame was sent again: {f}");
    }
    assert_eq!(a.k.core.peer_statuses().unwrap()[0].backlog, 0);
    a.k.check();
    b.k.check();
}

#[test]
fn a_lost_frame_is_resent_on_the_receivers_repeated_ack_even_when_the_resend_is_lost_too_5_3() {
    // The 10 s stall of `remote-pipelined`: a frame B never got, B's first standalone ack
    // acknowledging something new (so it did not look like a loss), and a retransmission
    // that, once spent for that ack value, was never made again before the ack timeout. B
    // now repeats its ack while it misses a frame and A resends on each repeat, so the frame
    // arrives though its first two copies are lost. A's ack timer never runs here.
    let (opts, Pair { mut a, mut b, log, remote, .. }) = pair_with_the_js_ack_timer();
    let results: Vec<_> = (0..5).map(|i| a.k.send(remote, "hello", vec![Value::str(i.to_string())])).collect();
    a.k.run();
    let first = a.wire.take();
    assert_eq!(first.len(), 5);
    let lost = first[1].clone();
    let mut copies_lost = 0;
    let mut to_b: Vec<String> = first;
    for round in 0..50 {
        assert!(round < 49, "the lost frame never came: {:?}", hellos(&log));
        for f in to_b.drain(..) {
            if f == lost && copies_lost < 2 {
                copies_lost += 1;
                continue;
            }
            b.k.core.receive_from_peer(&a.peer, &f).unwrap();
        }
        b.k.run();
        if hellos(&log).len() == 5 {
            break;
        }
        // B's next ack, when it is due (the gap's nudge), and A's answer to it.
        std::thread::sleep(opts.gap_nudge());
        b.k.core.remote_tick(Instant::now()).unwrap();
        for f in b.wire.take() {
            a.k.core.receive_from_peer(&b.peer, &f).unwrap();
        }
        a.k.run();
        to_b = a.wire.take();
    }
    assert_eq!(copies_lost, 2, "the first copy and the first resend were lost");
    assert_eq!(hellos(&log), ["0", "1", "2", "3", "4"], "in send order, each once");
    settle(&mut a, &mut b);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(ok_value(r.try_recv().ok()), Value::str(format!("hello, {i}")));
    }
    a.k.check();
    b.k.check();
}

#[test]
fn frames_lost_with_a_channel_go_again_when_a_new_channel_comes_not_at_the_ack_timer_9_4() {
    // A channel died with A's frame in it (the peer was killed and came back with its
    // state, or the link broke). The handshake of the next channel shows the incarnation A
    // knows: A resends what is pending a moment later, without waiting for its 10 s ack
    // timer. Such resends are not retries (reconnecting often does not give up on the peer).
    let (opts, Pair { mut a, mut b, log, remote, .. }) = pair_with_the_js_ack_timer();
    let result = a.k.send(remote, "increment", vec![]);
    a.k.run();
    let lost = a.wire.take();
    assert_eq!(lost.len(), 1, "the frame that went with the channel");
    // The first handshake A sees records B's incarnation; each later one is a new channel.
    assert!(!a.k.core.peer_incarnation(&b.peer, "incarnation-b").unwrap());
    for reconnection in 0..opts.max_retries + 2 {
        assert!(!a.k.core.peer_incarnation(&b.peer, "incarnation-b").unwrap(), "the same incarnation");
        a.k.core.remote_tick(Instant::now() + opts.gap_nudge()).unwrap();
        assert_eq!(a.wire.take(), lost, "reconnection {reconnection}: sent again, well before the ack timer");
    }
    for f in &lost {
        b.k.core.receive_from_peer(&a.peer, f).unwrap();
    }
    settle(&mut a, &mut b);
    assert_eq!(ok_value(result.try_recv().ok()), Value::Number(1.0), "never given up, answered once");
    assert_eq!(log.methods(), ["increment"]);
    a.k.check();
    b.k.check();
}

#[test]
fn an_ack_for_part_of_the_log_does_not_cancel_the_resend_for_a_new_channel_9_4() {
    // Two frames left on a channel that died; the peer got the first only. Its ack for it
    // comes after the next channel's handshake: the second still goes again a moment later.
    let (opts, Pair { mut a, mut b, log, remote, .. }) = pair_with_the_js_ack_timer();
    let first = a.k.send(remote, "increment", vec![]);
    let second = a.k.send(remote, "increment", vec![]);
    a.k.run();
    let sent = a.wire.take();
    assert_eq!(sent.len(), 2);
    b.k.core.receive_from_peer(&a.peer, &sent[0]).unwrap();
    b.k.run();
    assert!(!a.k.core.peer_incarnation(&b.peer, "incarnation-b").unwrap());
    assert!(!a.k.core.peer_incarnation(&b.peer, "incarnation-b").unwrap());
    b.k.core.remote_tick(Instant::now() + Duration::from_secs(1)).unwrap();
    for f in b.wire.take() {
        a.k.core.receive_from_peer(&b.peer, &f).unwrap();
    }
    a.k.run();
    a.k.core.remote_tick(Instant::now() + opts.gap_nudge()).unwrap();
    let resent = a.wire.take();
    assert!(resent.contains(&sent[1]), "the second frame went again: {resent:?}");
    assert!(!resent.contains(&sent[0]), "the first was acknowledged");
    for f in &resent {
        b.k.core.receive_from_peer(&a.peer, f).unwrap();
    }
    settle(&mut a, &mut b);
    assert_eq!(ok_value(first.try_recv().ok()), Value::Number(1.0));
    assert_eq!(ok_value(second.try_recv().ok()), Value::Number(2.0));
    assert_eq!(log.methods(), ["increment", "increment"]);
    a.k.check();
    b.k.check();
}

#[test]
fn reconnecting_does_not_keep_a_peer_that_never_acks_from_being_given_up_6() {
    // Early resends after new channels do not put the ack timer off: a peer whose channels
    // keep coming back but which never acknowledges is given up on after `max_retries`.
    let (opts, Pair { mut a, b, remote, .. }) = pair_with_the_js_ack_timer();
    let result = a.k.send(remote, "increment", vec![]);
    a.k.run();
    a.wire.take();
    assert!(!a.k.core.peer_incarnation(&b.peer, "incarnation-b").unwrap());
    // Each round: a new channel and its early resend a second in, then the ack timer half a
    // second past its deadline (a resend that put the timer off would leave it not yet due).
    let mut clock = Instant::now();
    for round in 0..=opts.max_retries {
        assert!(result.try_recv().is_err(), "round {round}: not given up yet");
        assert!(!a.k.core.peer_incarnation(&b.peer, "incarnation-b").unwrap());
        clock += Duration::from_secs(1);
        a.k.core.remote_tick(clock).unwrap();
        assert_eq!(a.wire.take().len(), 1, "round {round}: resent on the new channel");
        clock += opts.ack_timeout - Duration::from_millis(500);
        a.k.core.remote_tick(clock).unwrap();
        a.wire.take();
    }
    let why = rejection(result.try_recv().ok());
    assert!(why.contains("CONNECTION_LOST"), "{why}");
    a.k.check();
}

#[test]
fn an_ack_that_overtook_a_call_on_the_promise_it_retires_does_not_retire_it_early_8_1() {
    // As `a_call_pipelined_on_a_result_just_answered_still_reaches_the_answer_8_1`, but A's
    // later frames (whose acks cover B's answer) overtake its pipelined call on another
    // channel: B holds them and must not forget the promise before the call comes.
    let Pair { mut a, mut b, log, remote, .. } = pair("maker");
    let (made, notify, made_kp) = make_answered_not_yet_told(&mut a, &mut b, remote);
    let hello = a.k.send(made_kp, "hello", vec![Value::str("late")]);
    a.k.run();
    let call = a.wire.take();
    assert_eq!(call.len(), 1);
    for f in notify {
        a.k.core.receive_from_peer(&b.peer, &f).unwrap();
    }
    a.k.run();
    let count = a.k.send(remote, "increment", vec![]);
    a.k.run();
    a.k.core.remote_tick(Instant::now() + Duration::from_secs(1)).unwrap();
    let overtaking = a.wire.take();
    assert!(overtaking.iter().any(|f| f.contains("increment")), "{overtaking:?}");
    for f in overtaking.iter().chain(&call) {
        b.k.core.receive_from_peer(&a.peer, f).unwrap();
    }
    settle(&mut a, &mut b);
    assert!(matches!(made.try_recv(), Ok(Ok(_))));
    assert_eq!(ok_value(hello.try_recv().ok()), Value::str("hello, late"));
    assert_eq!(ok_value(count.try_recv().ok()), Value::Number(1.0));
    assert_eq!(log.methods(), ["make", "hello", "increment"]);
    assert!(b.k.core.peer_statuses().unwrap()[0].last_error.is_none());
    a.k.check();
    b.k.check();
}

#[test]
fn a_backlog_past_the_limit_rejects_new_messages_with_the_js_text_5_1() {
    let opts = RemoteOptions { max_pending: 3, ..options() };
    let (mut a, mut b) = (node_with(opts.clone()), node_with(opts));
    let (vat, _log) = counter();
    let (_, root) = b.k.add("counter", vat);
    let remote = redeem(&mut a, &mut b, root);
    let rxs: Vec<_> = (0..5).map(|_| a.k.send(remote, "increment", vec![])).collect();
    a.k.run();
    assert_eq!(a.wire.take().len(), 3, "three frames went out");
    let refused: Vec<String> = rxs[3..].iter().map(|rx| rejection(rx.try_recv().ok())).collect();
    for why in refused {
        assert_eq!(why, "[KERNEL:DELIVERY_FAILED] Message rejected: pending queue at capacity (3)");
    }
    assert_eq!(a.k.core.peer_statuses().unwrap()[0].backlog, 3);
}

#[test]
fn a_peer_back_with_fresh_state_is_noticed_and_what_waited_on_it_is_rejected_7() {
    let (mut a, mut b) = (node(), node());
    let (vat, _log) = counter();
    let (_, root) = b.k.add("counter", vat);
    let b_incarnation = b.k.core.identity().unwrap().unwrap().incarnation_id;
    assert!(!a.k.core.peer_incarnation(&b.peer, &b_incarnation).unwrap(), "first contact");
    let remote = redeem(&mut a, &mut b, root);
    assert!(!a.k.core.peer_incarnation(&b.peer, &b_incarnation).unwrap(), "same incarnation");
    let rx = a.k.send(remote, "increment", vec![]);
    a.k.run();
    a.wire.take();
    // B comes back with the same peer ID and a new incarnation (its state is gone).
    assert!(a.k.core.peer_incarnation(&b.peer, "0f0e0d0c-0000-4000-8000-000000000000").unwrap());
    a.k.run();
    assert_eq!(rejection(rx.try_recv().ok()), "[KERNEL:PEER_RESTARTED] Remote peer restarted (incarnation changed)");
    // What B exported is gone for A: a send to it is rejected at once.
    let again = a.k.send(remote, "increment", vec![]);
    a.k.run();
    let why = rejection(again.try_recv().ok());
    assert!(why.starts_with("[KERNEL:OBJECT_DELETED]"), "{why}");
    let p = &a.k.core.store().peers().unwrap()[0];
    assert_eq!((p.next_send_seq, p.highest_received_seq), (0, 0), "seqs start again");
    assert_eq!(a.k.core.peer_statuses().unwrap()[0].backlog, 0);
    a.k.check();
}

#[test]
fn a_frame_that_cannot_be_processed_is_acked_recorded_and_its_sender_told_14() {
    let Pair { a, mut b, log: _, remote: _remote, .. } = pair("counter");
    let seq = b.k.core.store().peers().unwrap()[0].highest_received_seq + 1;
    // A message to an object B never exported to A.
    let bad = format!(
        r##"{{"seq":{seq},"method":"deliver","params":["message","ro-99",{{"methargs":{{"body":"#[\"x\",[]]","slots":[]}},"result":"rp+50"}}]}}"##
    );
    b.k.core.receive_from_peer(&a.peer, &bad).unwrap();
    let status = &b.k.core.peer_statuses().unwrap()[0];
    assert!(status.last_error.as_deref().is_some_and(|e| e.contains("ro-99")), "{status:?}");
    assert_eq!(b.k.core.store().peers().unwrap()[0].highest_received_seq, seq, "acked, not retried forever");
    // The sender hears why its message was refused (after the commit): a notify rejecting
    // `rp-50` in its frame.
    b.k.run();
    let out = b.wire.take();
    let told = out.iter().any(|f| f.contains(r#"["notify",[["rp-50",true,"#) && f.contains("DELIVERY_FAILED"));
    assert!(told, "{out:?}");
    // Garbage and unknown methods are refused without harm.
    for junk in ["", "{", r#"{"seq":"x"}"#, r#"{"seq":77,"method":"launchVat","params":[]}"#] {
        b.k.core.receive_from_peer(&a.peer, junk).unwrap();
    }
    b.k.check();
    assert_eq!(b.k.core.store().remotes().unwrap().len(), 1);
}

#[test]
fn urls_name_the_relays_and_a_redeemer_learns_them_3_4() {
    let (mut a, mut b) = (node(), node());
    let relay = "/ip4/127.0.0.1/tcp/9001/ws/p2p/12D3KooWJBDqsyHQF2MWiCdU4kdqx4zTsSTLRdShg7Ui6CRWB4uc".to_string();
    b.k.core.set_bootstrap_relays(std::slice::from_ref(&relay), 20).unwrap();
    let (vat, _log) = counter();
    let (_, root) = b.k.add("counter", vat);
    let url = b.k.core.issue_ocap_url(root).unwrap();
    assert!(url.ends_with(&format!("@{},{relay}", b.peer)), "{url}");
    let (tx, rx) = mpsc::channel();
    a.k.core.redeem_ocap_url_with(&url, true, Box::new(move |r| drop(tx.send(r))));
    settle(&mut a, &mut b);
    assert!(rx.try_recv().unwrap().is_ok());
    let pool = a.k.core.known_relays().unwrap();
    assert_eq!(pool.len(), 1);
    assert_eq!((pool[0].addr.as_str(), pool[0].is_bootstrap), (relay.as_str(), false));
    assert_eq!(a.k.core.store().peers().unwrap()[0].hints, vec![relay]);
}

#[test]
fn the_other_kernels_own_errors_arrive_as_they_were_made_4_4() {
    // B's kernel, not its vat, refuses a call: the vat is gone. A's caller gets B's
    // `[KERNEL:…]` error, carried across as the smallcaps error it is.
    let Pair { mut a, mut b, log: _, vat_id, remote, .. } = pair("counter");
    b.k.core.terminate_vat(vat_id, "retired").unwrap();
    b.k.run();
    let why = rejection(host_call(&mut a, &mut b, remote, "increment", vec![]));
    assert!(why.starts_with("[KERNEL:OBJECT_DELETED]"), "{why}");
    // And a vat's own error arrives as the vat made it.
    let (vat, _log) = counter();
    let (_, root) = b.k.add("counter2", vat);
    let remote = redeem(&mut a, &mut b, root);
    assert_eq!(rejection(host_call(&mut a, &mut b, remote, "nope", vec![])), "no method nope");
    a.k.check();
    b.k.check();
}

/// A calls `make()` on B's `remote`; B answers, and its notify frames are returned, not yet
/// given to A. Also returns A's result and A's kpid for the answer.
fn make_answered_not_yet_told(
    a: &mut Node,
    b: &mut Node,
    remote: KRef,
) -> (mpsc::Receiver<ocap_kernel::HostResult>, Vec<String>, KRef) {
    let made = a.k.send(remote, "make", vec![]);
    a.k.run();
    for f in a.wire.take() {
        b.k.core.receive_from_peer(&a.peer, &f).unwrap();
    }
    b.k.run();
    let notify = b.wire.take();
    assert!(notify.iter().any(|f| f.contains("\"notify\"")), "B answered: {notify:?}");
    let made_kp: KRef = a
        .k
        .core
        .store()
        .connection()
        .query_row("SELECT kref FROM clist WHERE endpoint LIKE 'r%' AND kref LIKE 'kp%'", [], |r| r.get::<_, String>(0))
        .unwrap()
        .parse()
        .unwrap();
    (made, notify, made_kp)
}

#[test]
fn a_call_pipelined_on_a_result_just_answered_still_reaches_the_answer_8_1() {
    // The race the kernels must survive: B answers `make()` and notifies A, while A's
    // `hello()`, pipelined on that answer, is already on its way. B must still know the
    // promise when `hello` arrives (it forgets it only once A has seen the notify).
    let Pair { mut a, mut b, log, remote, .. } = pair("maker");
    let (made, notify, made_kp) = make_answered_not_yet_told(&mut a, &mut b, remote);
    // A has not seen the answer yet: its `hello` goes to the promise, at B.
    let hello = a.k.send(made_kp, "hello", vec![Value::str("late")]);
    a.k.run();
    for f in a.wire.take() {
        b.k.core.receive_from_peer(&a.peer, &f).unwrap();
    }
    // Only now does A get B's answer.
    for f in notify {
        a.k.core.receive_from_peer(&b.peer, &f).unwrap();
    }
    settle(&mut a, &mut b);
    assert!(matches!(made.try_recv(), Ok(Ok(_))));
    assert_eq!(ok_value(hello.try_recv().ok()), Value::str("hello, late"));
    assert_eq!(log.methods(), ["make", "hello"]);
    assert!(b.k.core.peer_statuses().unwrap()[0].last_error.is_none());
    // Once A has acknowledged the answer, B no longer keeps the promise's entry.
    let promises_for_a = b.k.count("SELECT COUNT(*) FROM clist WHERE endpoint LIKE 'r%' AND kref LIKE 'kp%'");
    assert_eq!(promises_for_a, 0);
    a.k.check();
    b.k.check();
}

#[test]
fn a_kernel_back_after_more_than_an_hour_resets_the_transports_backoffs_9_4() {
    let mut a = node();
    // Stopping comms records when they were last active; coming back at once resets nothing.
    a.k.core.detach_transport();
    let recorded: f64 = a.k.core.store().get_kv("lastActiveTime").unwrap().expect("recorded").parse().unwrap();
    assert!(recorded > 0.0);
    let wire = Wire::default();
    a.k.core.attach_transport(Arc::new(wire.clone()), options()).unwrap();
    assert_eq!(wire.1.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Two hours "asleep": the next start tells the transport to forget its backoffs.
    a.k.core.detach_transport();
    a.k.core.store().set_kv("lastActiveTime", &format!("{}", recorded - 7_200_000.0)).unwrap();
    let wire = Wire::default();
    a.k.core.attach_transport(Arc::new(wire.clone()), options()).unwrap();
    assert_eq!(wire.1.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn a_message_too_large_for_a_frame_is_refused_at_once_naming_the_limit_4_1() {
    let Pair { mut a, mut b, log, remote, .. } = pair("counter");
    log.take();
    let big = "x".repeat(1024 * 1024 + 10);
    let why = rejection(host_call(&mut a, &mut b, remote, "hello", vec![Value::str(big)]));
    assert!(why.starts_with("[KERNEL:DELIVERY_FAILED] the message is about"), "{why}");
    assert!(why.contains("1048576-byte limit"), "{why}");
    assert!(log.is_empty(), "nothing reached the other kernel");
    // An answer too large for a frame reaches the caller as a rejection saying so.
    let why = rejection(host_call(&mut a, &mut b, remote, "big", vec![]));
    assert!(why.starts_with("[KERNEL:DELIVERY_FAILED] the resolution is about"), "{why}");
    // The peer is fine: the next call goes through.
    assert_eq!(ok_value(host_call(&mut a, &mut b, remote, "increment", vec![])), Value::Number(1.0));
    assert!(a.k.core.peer_statuses().unwrap()[0].last_error.is_none());
    a.k.check();
}

#[test]
fn location_hints_are_checked_and_bounded_9_2() {
    let (mut a, b) = (node(), node());
    let hint = |port: u32| format!("/ip4/127.0.0.1/tcp/{port}/p2p/{}", b.peer);
    let r = a.k.core.peer_remote(&b.peer, &[hint(1)]).expect("a good hint");
    for bad in ["notamultiaddr", "/ip4/127.0.0.1/tcp/1", "/ip4/1.2.3.4/tcp/1/p2p/nope"] {
        let e = a.k.core.peer_remote(&b.peer, &[bad.to_owned()]).expect_err("refused").to_string();
        assert!(e.contains("bad location hint") && e.contains(bad), "{e}");
    }
    let many: Vec<String> = (0..33).map(hint).collect();
    let e = a.k.core.peer_remote(&b.peer, &many).expect_err("too many").to_string();
    assert!(e.contains("at most 32"), "{e}");
    // Each call adds; the most recent 16 are kept.
    for chunk in (2..40).collect::<Vec<u32>>().chunks(8) {
        let hs: Vec<String> = chunk.iter().map(|p| hint(*p)).collect();
        assert_eq!(a.k.core.peer_remote(&b.peer, &hs).unwrap(), r);
    }
    let kept = a.k.core.store().peer(r).unwrap().unwrap().hints;
    assert_eq!(kept.len(), 16);
    assert_eq!(kept.last(), Some(&hint(39)));
}

/// Notify batches to a peer (`core/notify_batch.rs`): answers queued together leave in one
/// `notify` frame carrying a list of resolutions, as the JS kernel's `deliver` frame allows
/// (§4.4), and reach the host in order; a batch stays under half the frame limit.
fn notify_frames(b: &Node) -> Vec<usize> {
    frames(&b.sent)
        .into_iter()
        .filter_map(|f| match f {
            Frame::Message { body: Body::Deliver(VatDelivery::Notify(rs)), .. } => Some(rs.len()),
            _ => None,
        })
        .collect()
}

#[test]
fn answers_queued_together_leave_in_one_notify_frame_in_order_4_4() {
    let Pair { mut a, mut b, remote, .. } = pair("counter");
    let answers: Vec<_> = (0..10).map(|_| a.k.send(remote, "increment", vec![])).collect();
    settle(&mut a, &mut b);
    let got: Vec<Value> = answers.iter().map(|rx| ok_value(rx.try_recv().ok())).collect();
    assert_eq!(got, (1..=10).map(|n| Value::Number(n as f64)).collect::<Vec<_>>());
    assert_eq!(notify_frames(&b), vec![10]);
    a.k.check();
    b.k.check();
}

#[test]
fn a_notify_batch_to_a_peer_stays_under_half_the_frame_limit_4_1() {
    let opts = RemoteOptions { max_frame_bytes: 4096, ..options() };
    let (mut a, mut b) = (node_with(opts.clone()), node_with(opts));
    let (vat, _log) = counter();
    let (_, root) = b.k.add("counter", vat);
    let remote = redeem(&mut a, &mut b, root);
    let name = "n".repeat(300);
    let answers: Vec<_> = (0..10).map(|_| a.k.send(remote, "hello", vec![Value::str(name.clone())])).collect();
    settle(&mut a, &mut b);
    for rx in &answers {
        assert_eq!(ok_value(rx.try_recv().ok()), Value::str(format!("hello, {name}")));
    }
    // Each answer is 576 bytes as a frame estimates it (300 + 10 of body, 10 for its
    // quotes' escapes, 256 for the rest): three fit in 2,048, the first one's included.
    assert_eq!(notify_frames(&b), vec![3, 3, 3, 1]);
    assert!(b.sent.iter().filter(|f| f.contains("\"notify\"")).all(|f| f.len() <= 2048));
}

/// §5.1: a frame leaves only once the unit that logged it is committed. A frame from the
/// peer that arrives between the crank that logged one and its commit (here an ack, while
/// none of ours waited for one) makes the kernel look at its log and resend what is pending:
/// it must not send what a crash could still take back.
#[test]
fn a_frame_leaves_only_after_the_commit_of_the_crank_that_logged_it_5_1() {
    let Pair { mut a, b, remote, .. } = pair("counter");
    a.wire.take();
    let _answer = a.k.send(remote, "increment", vec![]);
    // The crank that routes the message to B logs its frame; the unit is released, and the
    // commit waits for the next group commit.
    assert!(a.k.core.step().expect("step"));
    let durable = |seq: u64| -> i64 {
        let conn = rusqlite::Connection::open(&a.k.path).expect("open the store");
        conn.query_row("SELECT COUNT(*) FROM remote_pending WHERE seq = ?1", [seq as i64], |r| r.get(0))
            .expect("read the log")
    };
    a.k.core.receive_from_peer(&b.peer, &envelope::encode_ack(1)).expect("receive");
    let mut messages = 0;
    for frame in a.wire.take() {
        if let Frame::Message { seq, body: Body::Deliver(VatDelivery::Message { .. }), .. } =
            envelope::decode(&frame).expect("our frames decode")
        {
            messages += 1;
            assert_eq!(durable(seq), 1, "frame {seq} was sent before it was committed");
        }
    }
    assert!(messages > 0, "the message was sent (the ack made the kernel resend its log)");
}

/// A vat in A that, told `go`, calls `increment` on the object passed as the first argument
/// `n` times (subscribed to each result, as liveslots is); when `local` is given, it first
/// sends `hello` to that vref (one of its own imports of a local object); `fail` makes its
/// delivery fail after the sends. Other messages it only takes (and so imports their slots).
fn caller(n: usize, local: Option<String>, fail: bool) -> (ScriptedVat, DeliveryLog) {
    let mut next = 100;
    let mut vpid = move || {
        next += 1;
        format!("p+{next}")
    };
    ScriptedVat::new(Box::new(move |d, sys| {
        if let VatDelivery::Message { methargs, .. } = d {
            if decode_methargs(methargs).map(|(m, _)| m).as_deref() != Some("go") {
                return Ok(());
            }
            if let Some(local) = &local {
                sys.syscall(common::send(local, "hello", &[], &vpid()));
            }
            let target = methargs.slots.first().ok_or("no target passed")?.clone();
            for _ in 0..n {
                let result = vpid();
                sys.syscall(common::send(&target, "increment", &[], &result));
                sys.syscall(VatSyscall::Subscribe(result));
            }
            if fail {
                return Err("the caller fails after sending".into());
            }
        }
        Ok(())
    }))
}

/// A pair whose A runs a `caller` (of `n` calls, failing or not), told `go` with B's object
/// and not run yet; with the caller's log. B's log and A's wire are emptied.
fn caller_told_to_go(n: usize, fail: bool) -> (Pair, DeliveryLog) {
    let mut p = pair("counter");
    p.log.take();
    let (vat, alog) = caller(n, None, fail);
    let (_, a_root) = p.a.k.add("caller", vat);
    p.a.wire.take();
    p.a.k.core.queue_message(a_root, "go", vec![Value::presence(p.remote, None)], None).expect("queue");
    (p, alog)
}

/// Message frames in `sent`: the methods, in seq order.
fn message_methods(sent: &[String]) -> Vec<String> {
    frames(sent)
        .into_iter()
        .filter_map(|f| match f {
            Frame::Message { body: Body::Deliver(VatDelivery::Message { methargs, .. }), .. } => {
                decode_methargs(&methargs).map(|(m, _)| m)
            }
            _ => None,
        })
        .collect()
}

/// `core/router.rs`, `send_from_endpoint`: with nothing queued, a vat's sends to an object of a
/// peer are routed in the crank that made them, and leave, in order, with its commit.
#[test]
fn a_vats_sends_to_a_peer_leave_with_the_crank_that_made_them_in_order() {
    let (Pair { mut a, mut b, log, .. }, alog) = caller_told_to_go(3, false);
    // One crank: the caller's delivery. Its three sends are frames already.
    assert!(a.k.core.step().expect("step"));
    a.k.core.commit().expect("commit");
    assert_eq!(message_methods(&a.wire.take()), ["increment", "increment", "increment"]);
    // Nothing is left to route.
    assert!(!a.k.core.step().expect("step"));
    assert_eq!(a.k.count("SELECT COUNT(*) FROM run_queue"), 0);
    // The frames were logged like any other (sent again by `settle`'s round: B drops the
    // copies) and are answered once each, in order.
    a.k.core.remote_tick(Instant::now() + Duration::from_secs(2)).expect("tick");
    settle(&mut a, &mut b);
    assert_eq!(log.methods(), ["increment", "increment", "increment"]);
    let answers: Vec<String> = alog
        .all()
        .into_iter()
        .filter_map(|d| match d {
            VatDelivery::Notify(rs) => Some(rs.into_iter().map(|r| r.data.body).collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(answers, ["#1", "#2", "#3"]);
    a.k.check();
    b.k.check();
}

/// With something queued ahead (here the caller's own earlier send to a local vat), its sends
/// to the peer wait in the queue behind it, as before.
#[test]
fn a_vats_sends_to_a_peer_queue_behind_what_was_queued_before_them() {
    let Pair { mut a, mut b, remote, log, .. } = pair("counter");
    log.take();
    let (greeter, glog) = counter();
    let (_, greeter_root) = a.k.add("greeter", greeter);
    // The caller imports the greeter first (as o-1), then is told to go with the remote.
    let (vat, _) = caller(2, Some("o-1".into()), false);
    let (_, a_root) = a.k.add("caller", vat);
    a.k.core.queue_message(a_root, "meet", vec![Value::presence(greeter_root, None)], None).expect("queue");
    a.k.run();
    glog.take();
    log.take();
    a.wire.take();
    a.k.core.queue_message(a_root, "go", vec![Value::presence(remote, None)], None).expect("queue");
    assert!(a.k.core.step().expect("step"));
    a.k.core.commit().expect("commit");
    assert!(message_methods(&a.wire.take()).is_empty(), "nothing may pass the queued hello");
    assert_eq!(a.k.count("SELECT COUNT(*) FROM run_queue"), 3);
    settle(&mut a, &mut b);
    assert_eq!(glog.methods(), ["hello"]);
    assert_eq!(log.methods(), ["increment", "increment"]);
    a.k.check();
    b.k.check();
}

/// A crank that fails takes its sends to the peer back with it: nothing leaves.
#[test]
fn a_failed_crank_sends_nothing_to_the_peer() {
    let (Pair { mut a, mut b, log, .. }, _) = caller_told_to_go(2, true);
    a.k.run();
    assert!(message_methods(&a.wire.take()).is_empty());
    settle(&mut a, &mut b);
    assert!(log.methods().is_empty(), "B was called: {:?}", log.methods());
    a.k.check();
    b.k.check();
}

/// Notify frames in `sent`, in seq order: each resolution's rejected flag and body.
fn notified(sent: &[String]) -> Vec<(bool, String)> {
    frames(sent)
        .into_iter()
        .filter_map(|f| match f {
            Frame::Message { body: Body::Deliver(VatDelivery::Notify(rs)), .. } => {
                Some(rs.into_iter().map(|r| (r.rejected, r.data.body)).collect::<Vec<_>>())
            }
            _ => None,
        })
        .flatten()
        .collect()
}

/// A's calls to B's root, `n` host sends routed by A; their frames handed to B (received, not
/// yet run). The receivers of their results.
fn calls_received_by_b(
    a: &mut Node,
    b: &mut Node,
    remote: KRef,
    n: usize,
) -> Vec<mpsc::Receiver<ocap_kernel::HostResult>> {
    let rxs: Vec<_> = (0..n).map(|_| a.k.send(remote, "increment", vec![])).collect();
    a.k.run();
    let sent = a.wire.take();
    assert_eq!(message_methods(&sent).len(), n);
    for f in &sent {
        b.k.core.receive_from_peer(&a.peer, f).expect("receive");
    }
    b.wire.take();
    rxs
}

/// `core/router.rs`, `notify_peers_now`: with nothing queued, a vat's answer to a peer's call
/// is routed in the crank that resolved it, and leaves with its commit.
#[test]
fn a_vats_answer_to_a_peer_leaves_with_the_crank_that_resolved_it() {
    let mut p = pair("counter");
    p.log.take();
    let rxs = calls_received_by_b(&mut p.a, &mut p.b, p.remote, 1);
    // One crank on B: the delivery of the call. Its answer is a frame already.
    assert!(p.b.k.core.step().expect("step"));
    p.b.k.core.commit().expect("commit");
    let sent = p.b.wire.take();
    assert_eq!(notified(&sent), [(false, "#1".to_string())]);
    assert!(!p.b.k.core.step().expect("step"), "no notify crank is left");
    assert_eq!(p.b.k.count("SELECT COUNT(*) FROM run_queue"), 0);
    for f in &sent {
        p.a.k.core.receive_from_peer(&p.b.peer, f).expect("receive");
    }
    settle(&mut p.a, &mut p.b);
    assert_eq!(ok_value(rxs[0].try_recv().ok()), Value::Number(1.0));
    assert_eq!(p.log.methods(), ["increment"]);
    p.a.k.check();
    p.b.k.check();
}

/// With a second call queued behind the first, the first answer waits in the queue behind it,
/// as before; both answers reach A, in order.
#[test]
fn a_vats_answer_to_a_peer_queues_behind_what_was_queued_before_it() {
    let mut p = pair("counter");
    let rxs = calls_received_by_b(&mut p.a, &mut p.b, p.remote, 2);
    assert!(p.b.k.core.step().expect("step"));
    p.b.k.core.commit().expect("commit");
    assert!(notified(&p.b.wire.take()).is_empty(), "the answer may not pass the queued call");
    assert_eq!(p.b.k.count("SELECT COUNT(*) FROM run_queue"), 2, "the second call and the first answer");
    settle(&mut p.a, &mut p.b);
    let answers: Vec<Value> = rxs.iter().map(|rx| ok_value(rx.try_recv().ok())).collect();
    assert_eq!(answers, [Value::Number(1.0), Value::Number(2.0)]);
    p.a.k.check();
    p.b.k.check();
}

/// A vat that answers and then fails: its crank is rolled back with the answer, which never
/// leaves; A learns of the failure from the kernel instead.
#[test]
fn a_failed_crank_sends_no_answer_to_the_peer() {
    let (mut a, mut b, remote) = peers_with("fails", answers_then_fails());
    let rxs = calls_received_by_b(&mut a, &mut b, remote, 1);
    assert!(b.k.core.step().expect("step"));
    b.k.core.commit().expect("commit");
    let sent = b.wire.take();
    let answers = notified(&sent);
    assert!(answers.iter().all(|(_, body)| body != "#7"), "the rolled-back answer left: {answers:?}");
    for f in &sent {
        a.k.core.receive_from_peer(&b.peer, f).expect("receive");
    }
    settle(&mut a, &mut b);
    let why = rejection(rxs[0].try_recv().ok());
    assert!(!why.is_empty() && !why.contains("#7"), "{why}");
    a.k.check();
    b.k.check();
}

/// A vat that answers a message and lets go of the object it carried at once (`dropImports`,
/// then `retireImports`).
fn dropper() -> (ScriptedVat, DeliveryLog) {
    ScriptedVat::new(Box::new(|d, sys| {
        if let VatDelivery::Message { methargs, result: Some(result), .. } = d {
            sys.syscall(resolve(result, false, "#\"dropped\"", &[]));
            if let Some(obj) = methargs.slots.first() {
                sys.syscall(VatSyscall::DropImports(vec![obj.clone()]));
                sys.syscall(VatSyscall::RetireImports(vec![obj.clone()]));
            }
        }
        Ok(())
    }))
}

/// `core/refcount.rs`, `HeldBy::Sender`: a send routed in its sender's crank counts only its
/// result; the object it carries is exported to the peer with the counts of any other
/// export, and when the peer lets go of it the sender's kernel collects it and tells the
/// vat (remote-comms.md §8.4).
#[test]
fn an_object_sent_to_a_peer_in_the_sending_crank_is_collected_when_the_peer_drops_it() {
    let (vat, dlog) = dropper();
    let (mut a, mut b, remote) = peers_with("dropper", vat);
    let alog = alice_told_to_go(&mut a, remote, vec![common::send("o-1", "hold", &["o+5"], "p+11")]);
    // One crank: alice's delivery, with the send routed in it.
    assert!(a.k.core.step().expect("step"));
    a.k.core.commit().expect("commit");
    assert_eq!(message_methods(&a.wire.take()), ["hold"]);
    a.k.check();
    let thing: KRef = a
        .k
        .core
        .store()
        .connection()
        .query_row("SELECT kref FROM clist WHERE endpoint LIKE 'v%' AND eref = 'o+5'", [], |r| r.get::<_, String>(0))
        .expect("alice's export")
        .parse()
        .expect("kref");
    a.k.core.remote_tick(Instant::now() + Duration::from_secs(2)).expect("tick");
    settle(&mut a, &mut b);
    assert_eq!(dlog.methods(), ["hold"]);
    assert!(a.k.core.store().object(thing).unwrap().is_none(), "A's object row is gone");
    let gc: Vec<VatDelivery> = alog
        .all()
        .into_iter()
        .filter(|d| matches!(d, VatDelivery::DropExports(_) | VatDelivery::RetireExports(_)))
        .collect();
    assert_eq!(
        gc,
        [VatDelivery::DropExports(vec!["o+5".into()]), VatDelivery::RetireExports(vec!["o+5".into()])],
        "alice is told"
    );
    a.k.check();
    b.k.check();
}

/// A send routed in its sender's crank and refused there (too large for a frame) leaves the
/// object it carried as a queued send refused later would: nobody holds it, so the vat that
/// exported it is told to drop and retire it (§8.4), and its result is rejected.
#[test]
fn an_object_in_a_refused_send_routed_in_the_sending_crank_goes_back_to_its_exporter() {
    let Pair { mut a, mut b, remote, .. } = pair("counter");
    let big = "x".repeat(1024 * 1024 + 10);
    let send = VatSyscall::Send {
        target: "o-1".into(),
        methargs: vdata(&format!("#[\"hello\",[\"$0.Alleged: thing\",\"{big}\"]]"), &["o+7"]),
        result: Some("p+11".into()),
    };
    let alog = alice_told_to_go(&mut a, remote, vec![send, VatSyscall::Subscribe("p+11".into())]);
    settle(&mut a, &mut b);
    let seen: Vec<VatDelivery> = alog
        .all()
        .into_iter()
        .filter(|d| matches!(d, VatDelivery::DropExports(_) | VatDelivery::RetireExports(_) | VatDelivery::Notify(_)))
        .collect();
    assert!(
        seen.iter().any(|d| matches!(d, VatDelivery::Notify(rs) if rs.iter().any(|r| r.vpid == "p+11" && r.rejected))),
        "the result is rejected: {seen:?}"
    );
    assert!(seen.contains(&VatDelivery::DropExports(vec!["o+7".into()])), "{seen:?}");
    assert!(seen.contains(&VatDelivery::RetireExports(vec!["o+7".into()])), "{seen:?}");
    a.k.check();
    b.k.check();
}

/// A vat answers a peer's call, which routes the answer at once (`notify_peers_now`), and
/// then fails: the crank is rolled back, seq and all, and the kernel rejects the call
/// instead. The retirement the rolled-back answer had arranged (forget the promise once the
/// peer acks that seq) goes with it: the seq is handed out again, here to the GC frame for
/// the object the call carried, and A's ack of that frame must not make B forget the promise
/// before A is told of the rejection (found by review).
#[test]
fn an_answer_rolled_back_with_its_crank_leaves_no_retirement_behind() {
    let (mut a, mut b, remote) = peers_with("fails", answers_then_fails());
    let (thing, _) = passive();
    let (_, thing_root) = a.k.add("thing", thing);
    let rx = calls_carrying(&mut a, &mut b, remote, Value::presence(thing_root, None));
    // B's failing crank, then its cranks one by one until the GC frame for A's object has
    // left, with the seq the rolled-back answer had.
    let mut sent = Vec::new();
    for _ in 0..10 {
        assert!(b.k.core.step().expect("step"));
        b.k.core.commit().expect("commit");
        sent.extend(b.wire.take());
        if sent.iter().any(|f| f.contains("\"dropExports\"")) {
            break;
        }
    }
    assert!(notified(&sent).is_empty(), "no answer yet: {sent:?}");
    // A takes it and acks it (a standalone ack) before B's rejection of the call is routed.
    for f in &sent {
        a.k.core.receive_from_peer(&b.peer, f).expect("receive");
    }
    a.k.core.remote_tick(Instant::now() + Duration::from_secs(1)).expect("tick");
    for f in &a.wire.take() {
        b.k.core.receive_from_peer(&a.peer, f).expect("receive");
    }
    settle(&mut a, &mut b);
    let why = rejection(rx.try_recv().ok());
    assert!(why.contains("the vat fails after answering"), "{why}");
    a.k.check();
    b.k.check();
}

/// A host call from A to `remote` carrying `arg`, routed by A, its frame received by B (not
/// yet run); the receiver of its result.
fn calls_carrying(a: &mut Node, b: &mut Node, remote: KRef, arg: Value) -> mpsc::Receiver<ocap_kernel::HostResult> {
    let rx = a.k.send(remote, "hold", vec![arg]);
    a.k.run();
    for f in &a.wire.take() {
        b.k.core.receive_from_peer(&a.peer, f).expect("receive");
    }
    b.wire.take();
    rx
}

/// In A, a vat `alice` whose one delivery (`go`, queued here with `remote`, her `o-1`) makes
/// `calls`. Her delivery log.
fn alice_told_to_go(a: &mut Node, remote: KRef, calls: Vec<VatSyscall>) -> DeliveryLog {
    let (alice, alog, plan) = ScriptedVat::planned();
    let (_, alice_root) = a.k.add("alice", alice);
    plan.push(calls);
    let _ = a.k.send(alice_root, "go", vec![Value::presence(remote, None)]);
    alog
}

/// A vat that answers a message `#7` and then fails the delivery.
fn answers_then_fails() -> ScriptedVat {
    ScriptedVat::new(Box::new(|d, sys| {
        if let VatDelivery::Message { result: Some(result), .. } = d {
            sys.syscall(common::resolve(result, false, "#7", &[]));
            return Err("the vat fails after answering".into());
        }
        Ok(())
    }))
    .0
}
