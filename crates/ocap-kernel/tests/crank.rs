//! The run loop: priority, atomicity, abort and exit, commit batching, persistence
//! (kernel-core.md §3.2, §3.3, §12.1–12.9).

mod common;
use common::*;

use ocap_kernel::smallcaps::Value;
use ocap_kernel::store::{Durability, Store};
use ocap_kernel::testing::{answer, ScriptedVat};
use ocap_kernel::vat::{VatDelivery, VatSyscall};
use ocap_kernel::KernelOptions;

fn kinds(log: &ocap_kernel::testing::DeliveryLog) -> Vec<&'static str> {
    log.all()
        .iter()
        .map(|d| match d {
            VatDelivery::Message { .. } => "message",
            VatDelivery::Notify(_) => "notify",
            VatDelivery::DropExports(_) => "dropExports",
            VatDelivery::RetireExports(_) => "retireExports",
            VatDelivery::RetireImports(_) => "retireImports",
            VatDelivery::BringOutYourDead => "bringOutYourDead",
        })
        .collect()
}

/// §3.2: GC actions first, then bring-out-your-dead, then the run queue.
#[test]
fn work_is_taken_in_priority_order_gc_then_reap_then_run_queue() {
    let mut k = kernel();
    let (vat, log, plan) = ScriptedVat::planned();
    let (vat_id, root) = k.add("v", vat);
    plan.push(vec![resolve("p-1", false, "#\"$0.Alleged: thing\"", &["o+1"])]);
    let thing = remotable(ok_value(k.call(root, "make", vec![])));
    log.take();
    let _rx = k.send(root, "later", vec![]);
    k.core.reap_vats(Some(&[vat_id])).unwrap();
    k.core.unpin(thing).unwrap(); // makes dropExport + retireExport pending
    k.run();
    assert_eq!(kinds(&log), vec!["dropExports", "retireExports", "bringOutYourDead", "message"]);
    k.check();
}

/// §12.9: `exit(false)` commits the delivery's effects, then terminates.
#[test]
fn exit_false_commits_the_delivery_then_terminates_the_vat() {
    let mut k = kernel();
    let (target, t_log) = passive();
    let (_, t_root) = k.add("target", target);
    let (quitter, _, plan) = ScriptedVat::planned();
    let (q_id, q_root) = k.add("quitter", quitter);
    plan.push(vec![
        send("o-1", "goodbye", &[], "p+1"),
        VatSyscall::VatstoreSet("k".into(), "v".into()),
        VatSyscall::Exit { failure: false, info: vdata("#\"done\"", &[]) },
    ]);
    let pending = k.send(q_root, "quit", vec![Value::presence(t_root, None)]);
    k.run();
    assert_eq!(t_log.methods(), vec!["goodbye"], "the exiting delivery's send was kept");
    assert!(!k.core.is_vat_attached(q_id));
    let msg = rejection(pending.try_recv().ok());
    assert_eq!(msg, "[KERNEL:VAT_TERMINATED] done");
    k.check();
}

/// §12.9: `exit(true)` and an illegal syscall roll back, then terminate. (A delivery error:
/// `a_delivery_error_rolls_back_and_terminates_the_vat`.)
#[test]
fn exit_true_rolls_back_the_delivery_then_terminates_the_vat() {
    for how in ["exit", "illegal"] {
        let mut k = kernel();
        let (target, t_log) = passive();
        let (_, t_root) = k.add("target", target);
        let (vat, _, plan) = ScriptedVat::planned();
        let (v_id, v_root) = k.add("vat", vat);
        plan.push(vec![resolve("p-1", false, "#null", &[]), VatSyscall::VatstoreSet("kept".into(), "1".into())]);
        k.call(v_root, "setup", vec![Value::presence(t_root, None)]);
        let held = k.send(v_root, "hold", vec![]); // decided by the vat, never answered
        plan.push(vec![]);
        let last = match how {
            "exit" => VatSyscall::Exit { failure: true, info: vdata(r##"#{"#error":"fatal","name":"Error"}"##, &[]) },
            _ => VatSyscall::DropImports(vec!["o+0".into()]),
        };
        plan.push(vec![send("o-1", "lost", &[], "p+1"), VatSyscall::VatstoreSet("lost".into(), "1".into()), last]);
        k.run();
        let rx = k.send(v_root, "boom", vec![]);
        k.run();
        assert!(t_log.is_empty(), "{how}: the aborted delivery's send is discarded");
        assert!(!k.core.is_vat_attached(v_id), "{how}");
        let reason = rejection(held.try_recv().ok());
        assert!(reason.starts_with("[KERNEL:VAT_TERMINATED]"), "{how}: {reason}");
        match how {
            "exit" => assert!(reason.ends_with("fatal"), "{reason}"),
            _ => assert!(reason.contains("ILLEGAL_SYSCALL") && reason.contains("dropImports"), "{reason}"),
        }
        drop(rx);
        k.check();
    }
}

#[test]
fn a_delivery_error_rolls_back_and_terminates_the_vat() {
    let mut k = kernel();
    let (target, t_log) = passive();
    let (_, t_root) = k.add("target", target);
    let mut first = true;
    let (vat, _) = ScriptedVat::new(Box::new(move |d, sys| {
        if let VatDelivery::Message { result: Some(r), .. } = d {
            if first {
                first = false;
                sys.syscall(resolve(r, false, "#null", &[]));
                return Ok(());
            }
            sys.syscall(send("o-1", "lost", &[], "p+1"));
            return Err("I don't remember allocating o+10".into());
        }
        Ok(())
    }));
    let (v_id, v_root) = k.add("vat", vat);
    k.call(v_root, "setup", vec![Value::presence(t_root, None)]);
    let msg = rejection(k.call(v_root, "boom", vec![]));
    assert_eq!(
        msg,
        "[KERNEL:OBJECT_DELETED] Target object's vat v2 was terminated: \
         [KERNEL:VAT_FATAL:INTERNAL_ERROR] I don't remember allocating o+10",
        "the sender learns why"
    );
    assert!(t_log.is_empty());
    assert!(!k.core.is_vat_attached(v_id));
    k.check();
}

/// Each vat's vatstore is private and ordered (getNextKey), and is rolled back with an
/// aborted crank.
#[test]
fn vatstore_is_per_vat_ordered_and_transactional() {
    let mut k = kernel();
    let (a, _, a_plan) = ScriptedVat::planned();
    let (a_id, a_root) = k.add("a", a);
    let (b, _, b_plan) = ScriptedVat::planned();
    let (b_id, b_root) = k.add("b", b);
    a_plan.push(vec![
        VatSyscall::VatstoreSet("k2".into(), "two".into()),
        VatSyscall::VatstoreSet("k1".into(), "one".into()),
        VatSyscall::VatstoreSet("k3".into(), "three".into()),
        VatSyscall::VatstoreDelete("k3".into()),
        VatSyscall::VatstoreGet("k1".into()),
        VatSyscall::VatstoreGetNextKey("k1".into()),
        VatSyscall::VatstoreGetNextKey("k2".into()),
        resolve("p-1", false, "#null", &[]),
    ]);
    b_plan.push(vec![VatSyscall::VatstoreSet("k1".into(), "bee".into()), resolve("p-1", false, "#null", &[])]);
    k.call(a_root, "write", vec![]);
    k.call(b_root, "write", vec![]);
    let s = k.core.store();
    assert_eq!(s.vatstore_all(a_id).unwrap(), vec![("k1".into(), "one".into()), ("k2".into(), "two".into())]);
    assert_eq!(s.vatstore_get(b_id, "k1").unwrap().as_deref(), Some("bee"));
    assert_eq!(s.vatstore_next_key(a_id, "").unwrap().as_deref(), Some("k1"));
    assert_eq!(s.vatstore_next_key(a_id, "k1").unwrap().as_deref(), Some("k2"));
    assert_eq!(s.vatstore_next_key(a_id, "k2").unwrap(), None);
    k.check();
}

#[test]
fn vatstore_syscalls_return_values_to_the_vat() {
    let mut k = kernel();
    let (vat, _, plan) = ScriptedVat::planned();
    let results = vat.results.clone();
    let (_, root) = k.add("v", vat);
    plan.push(vec![
        VatSyscall::VatstoreSet("b".into(), "2".into()),
        VatSyscall::VatstoreSet("a".into(), "1".into()),
        VatSyscall::VatstoreGet("a".into()),
        VatSyscall::VatstoreGet("zz".into()),
        VatSyscall::VatstoreGetNextKey("a".into()),
        VatSyscall::VatstoreGetNextKey("b".into()),
    ]);
    k.send(root, "go", vec![]);
    k.run();
    use ocap_kernel::vat::SyscallResult::*;
    let r = results.lock().unwrap().clone();
    assert_eq!(r, vec![Ok, Ok, Value(Some("1".into())), Value(None), Value(Some("b".into())), Value(None)]);
    k.check();
}

/// A vat's reap interval schedules bring-out-your-dead automatically.
#[test]
fn reap_interval_schedules_bring_out_your_dead() {
    let mut k = kernel();
    let (vat, log) = ScriptedVat::new(answer(|_, _| Ok(Value::Null)));
    let spec = ocap_kernel::VatSpec {
        name: "v".into(),
        config: "{}".into(),
        reap_interval_deliveries: Some(3),
        ..Default::default()
    };
    let (_, root) = k.add_spec(spec, vat);
    for _ in 0..7 {
        k.call(root, "tick", vec![]);
    }
    let k2 = kinds(&log);
    assert_eq!(k2.iter().filter(|d| **d == "bringOutYourDead").count(), 2, "{k2:?}");
    assert_eq!(&k2[..4], &["message", "message", "message", "bringOutYourDead"]);
    k.check();
}

/// A terminated vat is cleaned up a bounded number of c-list entries per crank.
#[test]
fn terminated_vat_is_cleaned_up_in_bounded_steps() {
    let mut k = kernel_with(KernelOptions { cleanup_budget_entries: 2, ..Default::default() });
    let (vat, _, plan) = ScriptedVat::planned();
    let (v_id, root) = k.add("v", vat);
    let (others, _) = passive();
    let (_, o_root) = k.add("o", others);
    // Give the vat five imports and a couple of exports.
    plan.push(vec![send("o-1", "x", &["o+1", "o+2"], "p+1"), resolve("p-1", false, "#null", &[])]);
    let args: Vec<Value> = (0..5).map(|_| Value::presence(o_root, None)).collect();
    k.call(root, "take", args);
    let before = k.count("SELECT COUNT(*) FROM clist WHERE endpoint = 'v1'");
    assert!(before >= 4, "{before}");
    k.core.terminate_vat(v_id, "bye").unwrap();
    let mut steps = 0;
    let mut last = before;
    while k.count("SELECT COUNT(*) FROM vats WHERE id = 'v1'") > 0 {
        assert!(k.core.step().unwrap());
        let now = k.count("SELECT COUNT(*) FROM clist WHERE endpoint = 'v1'");
        assert!(last - now <= 2, "at most two entries per step ({last} -> {now})");
        last = now;
        steps += 1;
        assert!(steps < 100);
    }
    assert!(steps >= 2, "cleanup took {steps} steps");
    k.run();
    assert_eq!(k.count("SELECT COUNT(*) FROM clist WHERE endpoint = 'v1'"), 0);
    k.check();
}

/// The run queue is persistent: an item queued before a stop is processed after a restart.
#[test]
fn queued_work_survives_a_restart() {
    let mut k = kernel();
    let (vat, _) = passive();
    let (v_id, root) = k.add("v", vat);
    k.core.queue_message(root, "later", vec![Value::Number(7.0)], None).unwrap();
    k.core.commit().unwrap();
    let mut k = k.restart();
    let (vat, log) = passive();
    k.core.attach_vat(v_id, Box::new(vat)).unwrap();
    k.run();
    assert_eq!(log.methods(), vec!["later"]);
    // The previous host is gone: its watch on the result was released at start-up.
    assert_eq!(k.count("SELECT COUNT(*) FROM promises WHERE host_watch = 1"), 0);
    k.check();
}

/// Commits may be batched, but nothing is acknowledged to the host before it is durable.
#[test]
fn host_is_told_only_after_the_settling_crank_is_committed() {
    let mut k = kernel_with(KernelOptions { max_cranks_per_commit: 1000, ..Default::default() });
    let (vat, _, plan) = ScriptedVat::planned();
    let (v_id, root) = k.add("v", vat);
    let path = k.path.clone();
    plan.push(vec![VatSyscall::VatstoreSet("answered".into(), "yes".into()), resolve("p-1", false, "#1", &[])]);
    let (tx, rx) = std::sync::mpsc::channel();
    k.core
        .queue_message(
            root,
            "go",
            vec![],
            Some(Box::new(move |r| {
                // Read the database from another connection at the moment the host is told.
                let other = Store::open(&path, Durability::Process).unwrap();
                let seen = other.vatstore_get(v_id, "answered").unwrap();
                drop(tx.send((r.is_ok(), seen)));
            })),
        )
        .unwrap();
    let (ok, seen) = loop {
        if let Ok(got) = rx.try_recv() {
            break got;
        }
        assert!(k.core.step().unwrap(), "the kernel went idle without answering");
    };
    assert!(ok);
    assert_eq!(seen.as_deref(), Some("yes"), "the answer was durable when the host heard it");
    k.check();
}

#[test]
fn pinned_objects_are_kept_until_unpinned() {
    let mut k = kernel();
    let (vat, log, plan) = ScriptedVat::planned();
    let (_, root) = k.add("v", vat);
    plan.push(vec![resolve("p-1", false, "#\"$0.Alleged: thing\"", &["o+1"])]);
    let thing = remotable(ok_value(k.call(root, "make", vec![])));
    k.core.pin(thing).unwrap();
    k.core.unpin(thing).unwrap();
    k.run();
    assert!(!kinds(&log).contains(&"dropExports"), "still pinned once (the host result pin)");
    k.core.unpin(thing).unwrap();
    k.run();
    assert!(kinds(&log).contains(&"dropExports"));
    assert!(k.core.unpin(thing).is_err(), "unpinning a collected object is an error");
    k.check();
}
