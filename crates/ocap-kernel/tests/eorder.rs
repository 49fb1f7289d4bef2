//! E-order, as a property (issue 10, item 4; spec kernel-core.md §12.3–12.4, §4.2):
//! messages from one sender along one reference arrive in the order sent, whether they were
//! parked on an unresolved promise, sent to a result promise before its message was
//! delivered (pipelined), or sent after the promise resolved; and none is lost or doubled.
//!
//! Two senders (A0, A1) ask a decider (B) for promises and send numbered messages along
//! them and along two targets' roots (T0, T1). B resolves its promises, in random order and
//! at random times, to a target, to a later promise of its own (forwarding, never a cycle),
//! to data or to a rejection. The host's ticks drive every vat, and the kernel runs a random
//! number of cranks between them. At the end every message sent along a reference that leads
//! to a target arrived there exactly once, in order per (sender, reference); every message
//! along one that leads to data or a rejection arrived nowhere; and every promise settled.

mod common;
use common::*;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use ocap_kernel::smallcaps::Value;
use ocap_kernel::testing::{decode_methargs, vat_methargs, ScriptedVat};
use ocap_kernel::vat::{SyscallHandler, VatDelivery, VatResolution, VatSyscall};
use ocap_kernel::KRef;
use proptest::prelude::*;

/// One step of a run.
#[derive(Debug, Clone)]
enum Op {
    /// Sender `s` asks B for a new promise (`E(B).makePromise()`), which it can send along.
    MakePromise { s: usize },
    /// Sender `s` sends the next numbered message along one of its references.
    Send { s: usize, along: usize },
    /// B settles one of its unresolved promises.
    Resolve { which: usize, to: To },
    /// The kernel runs up to this many cranks.
    Run(u8),
}

#[derive(Debug, Clone)]
enum To {
    Target(usize),
    /// A promise B decides that was made after the one it settles (so no cycles).
    LaterPromise(usize),
    Data,
    Reject,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..2usize).prop_map(|s| Op::MakePromise { s }),
        10 => (0..2usize, any::<usize>()).prop_map(|(s, along)| Op::Send { s, along }),
        4 => (any::<usize>(), to()).prop_map(|(which, to)| Op::Resolve { which, to }),
        5 => (0..6u8).prop_map(Op::Run),
    ]
}

fn to() -> impl Strategy<Value = To> {
    prop_oneof![
        4 => (0..2usize).prop_map(To::Target),
        3 => any::<usize>().prop_map(To::LaterPromise),
        1 => Just(To::Data),
        1 => Just(To::Reject),
    ]
}

/// A sender's view: the references it can send along, in its own vrefs.
#[derive(Default)]
struct Sender {
    b: String,
    targets: Vec<String>,
    /// Promises from `makePromise` (its own `p+N`), in the order made.
    promises: Vec<String>,
    next_vpid: u64,
    next_seq: u64,
    /// Every message sent: (reference, seq).
    sent: Vec<(String, u64)>,
    todo: VecDeque<Op>,
}

impl Sender {
    fn fresh(&mut self) -> String {
        self.next_vpid += 1;
        format!("p+{}", self.next_vpid)
    }
}

/// B's view: its promises in the order it learned them, and what it settled each to.
#[derive(Default)]
struct Decider {
    targets: Vec<String>,
    promises: Vec<String>,
    /// (sender, n) -> B's index of that sender's n-th promise.
    origin: BTreeMap<(usize, usize), usize>,
    settled: BTreeMap<String, To>,
    todo: VecDeque<Op>,
}

impl Decider {
    fn unresolved(&self) -> Vec<usize> {
        (0..self.promises.len()).filter(|i| !self.settled.contains_key(&self.promises[*i])).collect()
    }
}

#[derive(Default)]
struct World {
    senders: [Sender; 2],
    decider: Decider,
    /// What each target received: (sender, the sender's reference, seq), in order.
    received: [Vec<(usize, String, u64)>; 2],
}

type Shared = Arc<Mutex<World>>;

fn lock(w: &Shared) -> std::sync::MutexGuard<'_, World> {
    w.lock().unwrap_or_else(|e| e.into_inner())
}

fn settle(sys: &mut dyn SyscallHandler, vpid: &str) {
    sys.syscall(VatSyscall::Resolve(vec![VatResolution {
        vpid: vpid.into(),
        rejected: false,
        data: vdata("#\"#undefined\"", &[]),
    }]));
}

fn sender_vat(world: Shared, s: usize) -> ScriptedVat {
    ScriptedVat::new(Box::new(move |d, sys| {
        let VatDelivery::Message { methargs, result, .. } = d else { return Ok(()) };
        let (method, _) = decode_methargs(methargs).ok_or("bad methargs")?;
        let mut w = lock(&world);
        let me = &mut w.senders[s];
        match method.as_str() {
            "init" => {
                me.b = methargs.slots[0].clone();
                me.targets = methargs.slots[1..].to_vec();
            }
            "tick" => match me.todo.pop_front() {
                Some(Op::MakePromise { .. }) => {
                    let p = me.fresh();
                    let n = me.promises.len();
                    sys.syscall(VatSyscall::Send {
                        target: me.b.clone(),
                        methargs: vat_methargs("makePromise", vec![Value::str(format!("{s}|{n}"))]),
                        result: Some(p.clone()),
                    });
                    me.promises.push(p);
                }
                Some(Op::Send { along, .. }) => {
                    let refs: Vec<String> = me.targets.iter().chain(&me.promises).cloned().collect();
                    let along = refs[along % refs.len()].clone();
                    me.next_seq += 1;
                    let seq = me.next_seq;
                    let tag = format!("{s}|{along}|{seq}");
                    let result = me.fresh();
                    sys.syscall(VatSyscall::Send {
                        target: along.clone(),
                        methargs: vat_methargs("m", vec![Value::str(tag)]),
                        result: Some(result),
                    });
                    me.sent.push((along, seq));
                }
                _ => return Err("a tick with nothing to do".into()),
            },
            other => return Err(format!("sender got {other}")),
        }
        if let Some(r) = result {
            settle(sys, r);
        }
        Ok(())
    }))
    .0
}

fn decider_vat(world: Shared) -> ScriptedVat {
    ScriptedVat::new(Box::new(move |d, sys| {
        let VatDelivery::Message { methargs, result, .. } = d else { return Ok(()) };
        let (method, args) = decode_methargs(methargs).ok_or("bad methargs")?;
        let mut w = lock(&world);
        let b = &mut w.decider;
        match method.as_str() {
            "init" => b.targets = methargs.slots.clone(),
            // Keeps the result unresolved: B decides it later.
            "makePromise" => {
                let Some(Value::String(tag)) = args.first() else { return Err("no tag".into()) };
                let (s, n) = tag.split_once('|').ok_or("tag")?;
                let key = (s.parse().map_err(|_| "tag")?, n.parse().map_err(|_| "tag")?);
                b.origin.insert(key, b.promises.len());
                b.promises.push(result.clone().ok_or("makePromise without a result")?);
                return Ok(());
            }
            "tick" => {
                let Some(Op::Resolve { which, to }) = b.todo.pop_front() else {
                    return Err("a tick with nothing to do".into());
                };
                let open = b.unresolved();
                if !open.is_empty() {
                    let i = open[which % open.len()];
                    let later: Vec<usize> = open.iter().copied().filter(|j| *j > i).collect();
                    // With no later promise to forward to, forward to a target instead.
                    let to = match to {
                        To::LaterPromise(_) if later.is_empty() => To::Target(0),
                        To::LaterPromise(j) => To::LaterPromise(later[j % later.len()]),
                        other => other,
                    };
                    let (rejected, data) = match &to {
                        To::Target(t) => (false, vdata("#\"$0.Alleged: T\"", &[&b.targets[*t]])),
                        To::LaterPromise(j) => (false, vdata("#\"&0\"", &[&b.promises[*j]])),
                        To::Data => (false, vdata("#42", &[])),
                        To::Reject => (true, vdata("#\"no\"", &[])),
                    };
                    let vpid = b.promises[i].clone();
                    sys.syscall(VatSyscall::Resolve(vec![VatResolution { vpid: vpid.clone(), rejected, data }]));
                    b.settled.insert(vpid, to);
                }
            }
            other => return Err(format!("decider got {other}")),
        }
        if let Some(r) = result {
            settle(sys, r);
        }
        Ok(())
    }))
    .0
}

fn target_vat(world: Shared, t: usize) -> ScriptedVat {
    ScriptedVat::new(Box::new(move |d, sys| {
        let VatDelivery::Message { methargs, result, .. } = d else { return Ok(()) };
        let (_, args) = decode_methargs(methargs).ok_or("bad methargs")?;
        let Some(Value::String(tag)) = args.first() else { return Err("no tag".into()) };
        let parts: Vec<&str> = tag.split('|').collect();
        let (s, along, seq) =
            (parts[0].parse().map_err(|_| "tag")?, parts[1].to_string(), parts[2].parse().map_err(|_| "tag")?);
        lock(&world).received[t].push((s, along, seq));
        if let Some(r) = result {
            settle(sys, r);
        }
        Ok(())
    }))
    .0
}

/// Where a sender's reference leads once everything settled: `Some(target)` or `None` for
/// data and rejections.
fn destination(w: &World, s: usize, along: &str) -> Option<usize> {
    let me = &w.senders[s];
    if let Some(t) = me.targets.iter().position(|r| r == along) {
        return Some(t);
    }
    let n = me.promises.iter().position(|p| p == along).expect("known promise");
    let mut i = w.decider.origin[&(s, n)];
    loop {
        match w.decider.settled.get(&w.decider.promises[i]).expect("everything settled") {
            To::Target(t) => return Some(*t),
            To::LaterPromise(j) => i = *j,
            To::Data | To::Reject => return None,
        }
    }
}

fn run_case(ops: Vec<Op>) {
    let world: Shared = Arc::default();
    let mut k = kernel();
    let (_, a0) = k.add("A0", sender_vat(world.clone(), 0));
    let (_, a1) = k.add("A1", sender_vat(world.clone(), 1));
    let (_, b) = k.add("B", decider_vat(world.clone()));
    let (_, t0) = k.add("T0", target_vat(world.clone(), 0));
    let (_, t1) = k.add("T1", target_vat(world.clone(), 1));
    let roots = |krefs: &[KRef]| krefs.iter().map(|r| Value::presence(*r, None)).collect::<Vec<_>>();
    for a in [a0, a1] {
        k.core.queue_message(a, "init", roots(&[b, t0, t1]), None).expect("init sender");
    }
    k.core.queue_message(b, "init", roots(&[t0, t1]), None).expect("init decider");
    k.run();

    let tick = |k: &mut TestKernel, root: KRef| {
        k.core.queue_message(root, "tick", vec![], None).expect("tick");
    };

    for op in ops {
        match op {
            Op::MakePromise { s } | Op::Send { s, .. } => {
                lock(&world).senders[s].todo.push_back(op.clone());
                tick(&mut k, [a0, a1][s]);
            }
            Op::Resolve { .. } => {
                lock(&world).decider.todo.push_back(op);
                tick(&mut k, b);
            }
            Op::Run(n) => {
                for _ in 0..n {
                    k.core.step().expect("crank");
                }
            }
        }
    }
    // Settle everything that is left, then drain.
    loop {
        k.run();
        let open = lock(&world).decider.unresolved().len();
        if open == 0 {
            break;
        }
        for _ in 0..open {
            lock(&world).decider.todo.push_back(Op::Resolve { which: 0, to: To::Target(1) });
            tick(&mut k, b);
        }
    }
    k.check();
    assert_eq!(k.count("SELECT COUNT(*) FROM promises WHERE state = 'unresolved'"), 0, "every promise settles");
    assert_eq!(k.count("SELECT COUNT(*) FROM run_queue"), 0);

    let w = lock(&world);
    for t in 0..2 {
        let mut last: BTreeMap<(usize, String), u64> = BTreeMap::new();
        for (s, along, seq) in &w.received[t] {
            let prev = last.insert((*s, along.clone()), *seq);
            if let Some(prev) = prev {
                assert!(
                    prev < *seq,
                    "E-order broken at T{t}: sender {s} along {along} delivered {seq} after {prev}; \
                     T{t} saw {:?}",
                    w.received[t]
                );
            }
        }
    }
    for s in 0..2 {
        for (along, seq) in &w.senders[s].sent {
            let dest = destination(&w, s, along);
            let hits: usize = (0..2)
                .map(|t| w.received[t].iter().filter(|(rs, ra, rq)| *rs == s && ra == along && rq == seq).count())
                .sum();
            match dest {
                Some(t) => {
                    let at_t = w.received[t].iter().filter(|(rs, ra, rq)| *rs == s && ra == along && rq == seq).count();
                    assert_eq!((at_t, hits), (1, 1), "message {seq} from {s} along {along} must reach T{t} once");
                }
                None => assert_eq!(hits, 0, "message {seq} along {along} led to data or a rejection"),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn messages_along_one_reference_keep_their_order(ops in prop::collection::vec(op(), 1..80)) {
        run_case(ops);
    }
}

/// The case, fixed: A sends 0–4 to a promise B does not yet know of, the promise
/// resolves while 5–9 are queued, then 10–14 follow. T must see 0..15 in order (the JS
/// kernel, and ocap before this fix, gave `[5,6,7,8,9,0,1,2,3,4,10,…]`).
#[test]
fn parked_messages_are_not_overtaken_by_queued_ones() {
    let sends = |ops: &mut Vec<Op>| ops.extend((0..5).map(|_| Op::Send { s: 0, along: 2 }));
    let mut ops = vec![Op::MakePromise { s: 0 }];
    sends(&mut ops); // 0-4: parked on the promise B has not settled
    ops.push(Op::Run(20));
    sends(&mut ops); // 5-9: in the run queue when B settles it
    ops.push(Op::Resolve { which: 0, to: To::Target(0) });
    ops.push(Op::Run(40));
    sends(&mut ops); // 10-14: after
    run_case(ops);
}
