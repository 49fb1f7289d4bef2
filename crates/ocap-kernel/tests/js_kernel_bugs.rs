//! One regression test per JS-kernel bug in kernel-core.md §13 items 1–14: each pins the
//! behaviour §14 asks for instead.

mod common;
use common::*;

use ocap_kernel::smallcaps::Value;
use ocap_kernel::testing::{answer, ScriptedVat};
use ocap_kernel::vat::{VatDelivery, VatSyscall};
use ocap_kernel::KernelOptions;

fn notifies(log: &ocap_kernel::testing::DeliveryLog) -> Vec<(String, bool, String)> {
    log.all()
        .into_iter()
        .flat_map(|d| match d {
            VatDelivery::Notify(rs) => rs.into_iter().map(|r| (r.vpid, r.rejected, r.data.body)).collect(),
            _ => vec![],
        })
        .collect()
}

/// §13.1 and §13.2: a vat awaiting a vat that gets terminated receives a rejection, and the
/// promise it holds is not deleted under it.
#[test]
fn bug_1_2_awaiting_a_terminated_vat_gives_vat_terminated_rejection() {
    let mut k = kernel();
    let (bob, _) = passive();
    let (bob_id, bob_root) = k.add("bob", bob);
    let (alice, a_log, a_plan) = ScriptedVat::planned();
    let (alice_id, alice_root) = k.add("alice", alice);
    a_plan.push(vec![
        send("o-1", "work", &[], "p+1"),
        VatSyscall::Subscribe("p+1".into()),
        resolve("p-1", false, "#null", &[]),
    ]);
    assert_eq!(ok_value(k.call(alice_root, "go", vec![Value::presence(bob_root, None)])), Value::Null);
    k.core.terminate_vat(bob_id, "bob was stopped").unwrap();
    k.run();
    let n = notifies(&a_log);
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].0, "p+1");
    assert!(n[0].1 && n[0].2.contains("[KERNEL:VAT_TERMINATED] bob was stopped"), "{n:?}");
    // Alice can still use what she holds: a send to bob's root, whose vat is gone, is
    // routed and rejected, and is not fatal to alice.
    a_plan.push(vec![
        send("o-1", "again", &[], "p+2"),
        VatSyscall::Subscribe("p+2".into()),
        resolve("p-2", false, "#\"poked\"", &[]),
    ]);
    assert_eq!(ok_value(k.call(alice_root, "poke", vec![])), Value::str("poked"));
    k.run();
    assert!(k.core.is_vat_attached(alice_id), "alice lives on");
    let n = notifies(&a_log);
    assert_eq!(n.len(), 2, "{n:?}");
    assert_eq!(n[1].0, "p+2");
    assert!(n[1].1 && n[1].2.contains("[KERNEL:OBJECT_DELETED]"), "the send to the dead vat's root is rejected: {n:?}");
    k.check();
}

/// §13.3: the host's own message to a vat that is terminated before answering.
#[test]
fn bug_3_host_message_to_vat_terminated_before_answering_is_rejected_without_underflow() {
    let mut k = kernel();
    let (bob, log) = passive();
    let (bob_id, bob_root) = k.add("bob", bob);
    let rx = k.send(bob_root, "slow", vec![]);
    k.run();
    assert_eq!(log.methods(), vec!["slow"]);
    k.core.terminate_vat(bob_id, "gone").unwrap();
    k.run();
    let msg = rejection(rx.try_recv().ok());
    assert!(msg.starts_with("[KERNEL:VAT_TERMINATED]"), "{msg}");
    assert_eq!(k.count("SELECT COUNT(*) FROM vats"), 0, "the vat is fully cleaned up");
    k.check();
}

/// §13.4: a send to an already-resolved promise releases the promise, not the object.
#[test]
fn bug_4_send_to_a_resolved_promise_counts_the_promise_not_the_object() {
    let mut k = kernel();
    let (exp, e_log, e_plan) = ScriptedVat::planned();
    let (_, e_root) = k.add("exporter", exp);
    let (holder, _, h_plan) = ScriptedVat::planned();
    let (_, h_root) = k.add("holder", holder);
    let (alice, _, a_plan) = ScriptedVat::planned();
    let (_, a_root) = k.add("alice", alice);
    // Alice asks the exporter for a thing (result p+1) and hands that promise to the holder.
    a_plan.push(vec![
        send("o-1", "getThing", &[], "p+1"),
        VatSyscall::Send {
            target: "o-2".into(),
            methargs: vdata(r#"#["hold",["&0"]]"#, &["p+1"]),
            result: Some("p+2".into()),
        },
        resolve("p-1", false, "#null", &[]),
    ]);
    e_plan.push(vec![resolve("p-1", false, "#\"$0.Alleged: thing\"", &["o+1"])]);
    h_plan.push(vec![resolve("p-2", false, "#null", &[])]);
    k.call(a_root, "go", vec![Value::presence(e_root, None), Value::presence(h_root, None)]);
    // The holder now sends to the (resolved) promise it holds as p-1.
    h_plan.push(vec![send("p-1", "use", &[], "p+1"), resolve("p-3", false, "#null", &[])]);
    k.call(h_root, "poke", vec![]);
    assert_eq!(e_log.methods(), vec!["getThing", "use"]);
    k.check();
}

/// §13.5: a message parked on a promise leaks no refcount.
#[test]
fn bug_5_parked_message_leaks_no_refcount() {
    let mut k = kernel();
    let (exp, e_log, e_plan) = ScriptedVat::planned();
    let (_, e_root) = k.add("exporter", exp);
    let (alice, _, a_plan) = ScriptedVat::planned();
    let (_, a_root) = k.add("alice", alice);
    a_plan.push(vec![
        send("o-1", "getThing", &[], "p+1"),
        // Pipelined, carrying an object of Alice's as an argument.
        send("p+1", "take", &["o+5"], "p+2"),
        resolve("p-1", false, "#null", &[]),
    ]);
    e_plan.push(vec![resolve("p-1", false, "#\"$0.Alleged: thing\"", &["o+1"])]);
    e_plan.push(vec![resolve("p-2", false, "#null", &[])]);
    k.call(a_root, "go", vec![Value::presence(e_root, None)]);
    assert_eq!(e_log.methods(), vec!["getThing", "take"]);
    k.check(); // refcounts equal what the c-lists and queues imply
}

/// §13.6: the kernel clears the export flag on dropExports, so the exporter's later
/// retireExports (liveslots makes it when it collects a dropped export that an importer
/// still recognises, e.g. as a weak key) is legal, and the importer is told to retire it.
#[test]
fn bug_6_retire_exports_after_drop_exports_is_legal() {
    let mut k = kernel();
    let (exp, e_log, e_plan) = ScriptedVat::planned();
    let (e_id, e_root) = k.add("exporter", exp);
    let (imp, i_log, i_plan) = ScriptedVat::planned();
    let (i_id, i_root) = k.add("importer", imp);
    e_plan.push(vec![resolve("p-1", false, "#\"$0.Alleged: thing\"", &["o+1"])]);
    let thing = remotable(ok_value(k.call(e_root, "make", vec![])));
    i_plan.push(vec![resolve("p-1", false, "#null", &[])]);
    k.call(i_root, "hold", vec![Value::presence(thing, None)]);
    k.core.unpin(thing).unwrap();
    // The importer drops it but still recognises it.
    i_plan.push(vec![VatSyscall::DropImports(vec!["o-1".into()])]);
    k.core.reap_vats(Some(&[i_id])).unwrap();
    k.run();
    assert!(e_log.all().contains(&VatDelivery::DropExports(vec!["o+1".into()])));
    assert!(!e_log.all().iter().any(|d| matches!(d, VatDelivery::RetireExports(_))));
    // Now the exporter retires it, as liveslots does at its next bring-out-your-dead.
    e_plan.push(vec![VatSyscall::RetireExports(vec!["o+1".into()])]);
    k.core.reap_vats(Some(&[e_id])).unwrap();
    k.run();
    assert!(k.core.is_vat_attached(e_id), "a legal retireExports does not kill the vat");
    assert!(i_log.all().contains(&VatDelivery::RetireImports(vec!["o-1".into()])));
    assert_eq!(k.count(&format!("SELECT COUNT(*) FROM objects WHERE id = {}", thing.id())), 0);
    assert_eq!(k.count(&format!("SELECT COUNT(*) FROM clist WHERE kref = '{thing}'")), 0);
    k.check();
}

/// §13.7: after retireExports is delivered the object is gone: no zombie remains to
/// underflow when the owner is later terminated.
#[test]
fn bug_7_no_zombie_object_after_gc_and_owner_termination_is_clean() {
    let mut k = kernel();
    let (exp, e_log, e_plan) = ScriptedVat::planned();
    let (e_id, e_root) = k.add("exporter", exp);
    e_plan.push(vec![resolve("p-1", false, "#\"$0.Alleged: thing\"", &["o+1"])]);
    let thing = remotable(ok_value(k.call(e_root, "make", vec![])));
    k.core.unpin(thing).unwrap();
    k.run();
    let log = e_log.all();
    assert!(log.contains(&VatDelivery::DropExports(vec!["o+1".into()])));
    assert!(log.contains(&VatDelivery::RetireExports(vec!["o+1".into()])));
    assert_eq!(k.count(&format!("SELECT COUNT(*) FROM objects WHERE id = {}", thing.id())), 0);
    assert_eq!(k.count(&format!("SELECT COUNT(*) FROM clist WHERE kref = '{thing}'")), 0);
    k.core.terminate_vat(e_id, "done").unwrap();
    k.run();
    k.check();
}

/// §13.8: an illegal syscall followed by a legal one still aborts and terminates.
#[test]
fn bug_8_illegal_syscall_mark_is_sticky() {
    let mut k = kernel();
    let (target, t_log) = passive();
    let (_, t_root) = k.add("target", target);
    let (bad, _, plan) = ScriptedVat::planned();
    let (bad_id, bad_root) = k.add("bad", bad);
    plan.push(vec![
        send("o-1", "before", &[], "p+1"),
        send("o-99", "unknown", &[], "p+2"), // illegal: an import it does not hold
        send("o-1", "after", &[], "p+3"),    // legal, but must not clear the mark
        resolve("p-1", false, "#null", &[]),
    ]);
    let msg = rejection(k.call(bad_root, "go", vec![Value::presence(t_root, None)]));
    assert!(
        msg.starts_with("[KERNEL:OBJECT_DELETED]") && msg.contains("ILLEGAL_SYSCALL") && msg.contains("o-99"),
        "{msg}"
    );
    assert!(!k.core.is_vat_attached(bad_id));
    assert!(t_log.is_empty(), "the aborted crank's sends are discarded");
    k.check();
}

/// §13.9: abandonExports orphans the object; a later send to it is rejected and the loop
/// goes on.
#[test]
fn bug_9_abandon_exports_then_send_rejects_and_loop_continues() {
    let mut k = kernel();
    let (exp, _, e_plan) = ScriptedVat::planned();
    let (e_id, e_root) = k.add("exporter", exp);
    e_plan.push(vec![resolve("p-1", false, "#\"$0.Alleged: thing\"", &["o+1"])]);
    let thing = remotable(ok_value(k.call(e_root, "make", vec![])));
    e_plan.push(vec![VatSyscall::AbandonExports(vec!["o+1".into()]), resolve("p-2", false, "#null", &[])]);
    k.call(e_root, "abandon", vec![]);
    let msg = rejection(k.call(thing, "foo", vec![]));
    assert!(msg.starts_with("[KERNEL:OBJECT_DELETED]"), "{msg}");
    assert!(k.core.is_vat_attached(e_id));
    e_plan.push(vec![resolve("p-3", false, "#1", &[])]);
    assert_eq!(ok_value(k.call(e_root, "still", vec![])), Value::Number(1.0));
    k.core.unpin(thing).unwrap();
    k.run();
    assert_eq!(k.count(&format!("SELECT COUNT(*) FROM objects WHERE id = {}", thing.id())), 0);
    k.check();
}

/// §13.10: crank isolation. A vat's asynchronous syscalls are their own unit: they are not
/// folded into (nor rolled back with) another vat's crank.
#[test]
fn bug_10_async_syscalls_are_their_own_unit_and_survive_another_vats_abort() {
    let mut k = kernel();
    let (target, t_log) = passive();
    let (_, t_root) = k.add("target", target);
    let (timer, _, plan) = ScriptedVat::planned();
    let (timer_id, timer_root) = k.add("timer", timer);
    plan.push(vec![resolve("p-1", false, "#null", &[])]);
    k.call(timer_root, "hold", vec![Value::presence(t_root, None)]);
    // A "timer fires" in the timer vat: its syscalls arrive outside any delivery.
    k.core.handle_async_syscalls(timer_id, vec![send("o-1", "tick", &[], "p+9")]).unwrap();
    // Another vat aborts in the meantime.
    let (bad, _, bad_plan) = ScriptedVat::planned();
    let (_, bad_root) = k.add("bad", bad);
    bad_plan.push(vec![VatSyscall::Exit { failure: true, info: vdata("#\"boom\"", &[]) }]);
    k.call(bad_root, "go", vec![]);
    k.run();
    assert_eq!(t_log.methods(), vec!["tick"]);
    k.check();
}

/// §13.11: resolved promise IDs are retired, so a vat may reuse a vpid for a new promise.
#[test]
fn bug_11_resolved_vpids_are_retired_and_may_be_reused() {
    let mut k = kernel();
    let (vat, _, plan) = ScriptedVat::planned();
    let (vat_id, root) = k.add("v", vat);
    let (other, o_log, o_plan) = ScriptedVat::planned();
    let (_, o_root) = k.add("other", other);
    // Export p+7 to the other vat and resolve it.
    plan.push(vec![
        VatSyscall::Send {
            target: "o-1".into(),
            methargs: vdata(r#"#["take",["&0"]]"#, &["p+7"]),
            result: Some("p+8".into()),
        },
        resolve("p+7", false, "#1", &[]),
        resolve("p-1", false, "#null", &[]),
    ]);
    o_plan.push(vec![]);
    k.call(root, "first", vec![Value::presence(o_root, None)]);
    assert_eq!(k.count("SELECT COUNT(*) FROM clist WHERE endpoint = 'v1' AND eref = 'p+7'"), 0);
    // Reuse p+7 for a fresh promise: legal, a new kernel promise.
    plan.push(vec![
        VatSyscall::Send {
            target: "o-1".into(),
            methargs: vdata(r#"#["take",["&0"]]"#, &["p+7"]),
            result: Some("p+9".into()),
        },
        resolve("p+7", false, "#2", &[]),
        resolve("p-2", false, "#null", &[]),
    ]);
    o_plan.push(vec![]);
    k.call(root, "second", vec![]);
    assert!(k.core.is_vat_attached(vat_id), "re-resolving a reused vpid is not an error");
    assert_eq!(o_log.methods(), vec!["take", "take"]);
    k.check();
}

/// §13.12: with two importers, the exporter gets dropExports only after the second drops.
#[test]
fn bug_12_second_importer_drop_sends_drop_exports_only_after_both() {
    let mut k = kernel();
    let (exp, e_log, e_plan) = ScriptedVat::planned();
    let (_, e_root) = k.add("exporter", exp);
    let (a, _, a_plan) = ScriptedVat::planned();
    let (a_id, a_root) = k.add("a", a);
    let (b, _, b_plan) = ScriptedVat::planned();
    let (b_id, b_root) = k.add("b", b);
    e_plan.push(vec![resolve("p-1", false, "#\"$0.Alleged: thing\"", &["o+1"])]);
    let thing = remotable(ok_value(k.call(e_root, "make", vec![])));
    a_plan.push(vec![resolve("p-1", false, "#null", &[])]);
    b_plan.push(vec![resolve("p-1", false, "#null", &[])]);
    k.call(a_root, "hold", vec![Value::presence(thing, None)]);
    k.call(b_root, "hold", vec![Value::presence(thing, None)]);
    k.core.unpin(thing).unwrap();
    k.run();
    a_plan.push(vec![VatSyscall::DropImports(vec!["o-1".into()])]);
    k.core.reap_vats(Some(&[a_id])).unwrap();
    k.run();
    assert!(!e_log.all().iter().any(|d| matches!(d, VatDelivery::DropExports(_))), "b still holds it");
    b_plan.push(vec![VatSyscall::DropImports(vec!["o-1".into()])]);
    k.core.reap_vats(Some(&[b_id])).unwrap();
    k.run();
    assert!(e_log.all().contains(&VatDelivery::DropExports(vec!["o+1".into()])));
    assert!(k.core.is_vat_attached(b_id), "the second drop does not underflow");
    a_plan.push(vec![VatSyscall::RetireImports(vec!["o-1".into()])]);
    b_plan.push(vec![VatSyscall::RetireImports(vec!["o-1".into()])]);
    k.core.reap_vats(Some(&[a_id, b_id])).unwrap();
    k.run();
    assert!(e_log.all().contains(&VatDelivery::RetireExports(vec!["o+1".into()])));
    assert_eq!(k.count(&format!("SELECT COUNT(*) FROM clist WHERE kref = '{thing}'")), 0);
    assert_eq!(k.count(&format!("SELECT COUNT(*) FROM objects WHERE id = {}", thing.id())), 0);
    k.check();
}

/// §13.13: notify, GC and BOYD work for a vat that has gone away do not stop the kernel.
/// All three are pending for the subscriber when it is terminated; none reaches it, the
/// kernel goes on, and nothing is left queued.
#[test]
fn bug_13_work_for_a_terminated_vat_is_dropped_not_fatal() {
    let mut k = kernel();
    let (exp, _, e_plan) = ScriptedVat::planned();
    let (e_id, e_root) = k.add("exporter", exp);
    let (sub, s_log, s_plan) = ScriptedVat::planned();
    let (s_id, s_root) = k.add("subscriber", sub);
    // The subscriber awaits the exporter (its p+1 is the exporter's p-1), and gives the host
    // an object it exports.
    s_plan.push(vec![
        send("o-1", "work", &[], "p+1"),
        VatSyscall::Subscribe("p+1".into()),
        resolve("p-1", false, "#null", &[]),
    ]);
    assert_eq!(ok_value(k.call(s_root, "go", vec![Value::presence(e_root, None)])), Value::Null);
    s_plan.push(vec![resolve("p-2", false, "#\"$0.Alleged: thing\"", &["o+1"])]);
    let thing = remotable(ok_value(k.call(s_root, "make", vec![])));
    // The exporter answers the work (a notify for the subscriber) and its own message.
    e_plan.push(vec![resolve("p-1", false, "#1", &[]), resolve("p-2", false, "#\"finished\"", &[])]);
    let rx = k.send(e_root, "finish", vec![]);
    assert!(k.core.step().unwrap(), "the finish delivery");
    assert_eq!(k.count("SELECT COUNT(*) FROM run_queue"), 1, "the notify for the subscriber is queued");
    // The host lets go of the thing: GC actions for its exporter, the subscriber.
    k.core.unpin(thing).unwrap();
    assert!(k.count(&format!("SELECT COUNT(*) FROM gc_actions WHERE endpoint = '{s_id}'")) > 0);
    k.core.reap_vats(Some(&[s_id])).unwrap();
    assert_eq!(k.count(&format!("SELECT COUNT(*) FROM reap_queue WHERE vat = '{s_id}'")), 1);
    let delivered = s_log.len();
    k.core.terminate_vat(s_id, "bye").unwrap();
    k.run();
    assert_eq!(s_log.len(), delivered, "nothing reached the terminated vat: {:?}", &s_log.all()[delivered..]);
    assert_eq!(ok_value(rx.try_recv().ok()), Value::str("finished"));
    assert!(k.core.is_vat_attached(e_id));
    e_plan.push(vec![resolve("p-3", false, "#\"still here\"", &[])]);
    assert_eq!(ok_value(k.call(e_root, "again", vec![])), Value::str("still here"));
    for table in ["run_queue", "gc_actions", "reap_queue"] {
        assert_eq!(k.count(&format!("SELECT COUNT(*) FROM {table}")), 0, "{table} is empty");
    }
    k.check();
}

/// §13.14: a failure while processing an item neither loses unrelated work nor stops the
/// loop: a panicking vat is terminated and the next message is processed.
#[test]
fn bug_14_a_failing_crank_does_not_stop_the_loop() {
    let mut k = kernel_with(KernelOptions::default());
    let (panicky, _) = ScriptedVat::new(Box::new(|_, _| panic!("worker crashed")));
    let (p_id, p_root) = k.add("panicky", panicky);
    let (good, _) = ScriptedVat::new(answer(|_, _| Ok(Value::str("ok"))));
    let (_, g_root) = k.add("good", good);
    let r1 = k.send(p_root, "boom", vec![]);
    let r2 = k.send(g_root, "fine", vec![]);
    k.run();
    let msg = rejection(r1.try_recv().ok());
    assert!(msg.contains("INTERNAL_ERROR") && msg.contains("panicked"), "{msg}");
    assert_eq!(ok_value(r2.try_recv().ok()), Value::str("ok"));
    assert!(!k.core.is_vat_attached(p_id));
    k.check();
}
