//! Notify batches (`docs/cranks.md`, "Notify batches"; `core/notify_batch.rs`): consecutive
//! run-queue notifies to one vat go in one `notify` delivery, in queue order, with the same
//! end state as one delivery each (spec kernel-core.md §3.5 delivers each item on its own;
//! §4.3 is the batch shape liveslots takes).

mod common;
use common::*;

use ocap_kernel::smallcaps::Value;
use ocap_kernel::testing::{answer, ScriptedVat};
use ocap_kernel::vat::{VatDelivery, VatSyscall};
use ocap_kernel::KernelOptions;

/// The resolutions of each notify delivery in `log`, as vpid lists.
fn notifies(log: &ocap_kernel::testing::DeliveryLog) -> Vec<Vec<String>> {
    log.all()
        .iter()
        .filter_map(|d| match d {
            VatDelivery::Notify(rs) => Some(rs.iter().map(|r| r.vpid.clone()).collect()),
            _ => None,
        })
        .collect()
}

/// A's syscalls: `n` pings to its import `o-1`, each result subscribed (`p+10`…), then the
/// answer to the host's `go` (`p-1`).
fn pings(n: usize) -> Vec<VatSyscall> {
    let mut calls = Vec::new();
    for i in 0..n {
        let vpid = format!("p+{}", 10 + i);
        calls.push(VatSyscall::Send {
            target: "o-1".into(),
            methargs: vdata(&format!("#[\"ping\",[{i}]]"), &[]),
            result: Some(vpid.clone()),
        });
        calls.push(VatSyscall::Subscribe(vpid));
    }
    calls.push(resolve("p-1", false, "#null", &[]));
    calls
}

/// Vat A sends `n` messages to vat B in one delivery and subscribes to each result; B
/// answers each at once. Returns A's notify deliveries and the values they carried.
fn pipelined_answers(opts: KernelOptions, n: usize) -> (Vec<Vec<String>>, Vec<String>) {
    let mut k = kernel_with(opts);
    let (a, a_log, a_plan) = ScriptedVat::planned();
    let (_, a_root) = k.add("a", a);
    let (b, _b_log) = ScriptedVat::new(answer(|_, args| Ok(args[0].clone())));
    let (_, b_root) = k.add("b", b);
    a_plan.push(pings(n));
    let done = k.call(a_root, "go", vec![Value::presence(b_root, None)]);
    assert_eq!(ok_value(done), Value::Null);
    k.check();
    assert_eq!(k.count("SELECT COUNT(*) FROM run_queue"), 0);
    let values = a_log
        .all()
        .iter()
        .filter_map(|d| match d {
            VatDelivery::Notify(rs) => Some(rs.iter().map(|r| r.data.body.clone()).collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect();
    (notifies(&a_log), values)
}

#[test]
fn answers_queued_together_reach_the_sender_in_one_notify_each_batch_in_queue_order() {
    let n = 40;
    let (batched, values) = pipelined_answers(KernelOptions::default(), n);
    let (single, single_values) =
        pipelined_answers(KernelOptions { max_notifies_per_delivery: 1, ..Default::default() }, n);
    let expected: Vec<String> = (0..n).map(|i| format!("p+{}", 10 + i)).collect();
    // One at a time: one delivery per run-queue item, as the JS kernel does.
    assert_eq!(single.len(), n);
    assert_eq!(single.concat(), expected);
    // Batched: the same resolutions in the same order, in fewer deliveries of at most 32.
    assert_eq!(batched.concat(), expected);
    assert!(batched.len() < n / 4, "{} deliveries: {batched:?}", batched.len());
    assert!(batched.iter().all(|b| b.len() <= 32), "{batched:?}");
    assert_eq!(values, single_values);
    assert_eq!(values, (0..n).map(|i| format!("#{i}")).collect::<Vec<_>>());
}

/// §4.3 next to a batch: a notify whose value carries a settled promise goes alone, with
/// that promise's resolution (the batch §4.3 asks for), and the notify queued behind it for
/// the same promise finds its entry retired and delivers nothing: one delivery, batched or
/// not, and the store ends the same.
#[test]
fn a_promise_carried_by_an_earlier_resolution_of_the_batch_is_delivered_once() {
    for max in [1, 32] {
        let mut k = kernel_with(KernelOptions { max_notifies_per_delivery: max, ..Default::default() });
        let (a, a_log, a_plan) = ScriptedVat::planned();
        let (_, a_root) = k.add("a", a);
        let (b, _b_log, b_plan) = ScriptedVat::planned();
        let (_, b_root) = k.add("b", b);
        a_plan.push(vec![
            VatSyscall::Send {
                target: "o-1".into(),
                methargs: vdata("#[\"one\",[]]", &[]),
                result: Some("p+10".into()),
            },
            VatSyscall::Subscribe("p+10".into()),
            VatSyscall::Send {
                target: "o-1".into(),
                methargs: vdata("#[\"two\",[]]", &[]),
                result: Some("p+11".into()),
            },
            VatSyscall::Subscribe("p+11".into()),
            resolve("p-1", false, "#null", &[]),
        ]);
        // B answers nothing to `one`; in `two` it settles `one`'s result to a value carrying
        // `two`'s, and `two`'s to 2, in one syscall: A's two notifies are queued together.
        b_plan.push(vec![]);
        b_plan.push(vec![VatSyscall::Resolve(vec![
            ocap_kernel::vat::VatResolution { vpid: "p-1".into(), rejected: false, data: vdata("#\"&0\"", &["p-2"]) },
            ocap_kernel::vat::VatResolution { vpid: "p-2".into(), rejected: false, data: vdata("#2", &[]) },
        ])]);
        let done = k.call(a_root, "go", vec![Value::presence(b_root, None)]);
        assert_eq!(ok_value(done), Value::Null);
        k.check();
        assert_eq!(notifies(&a_log), vec![vec!["p+10".to_string(), "p+11".to_string()]], "max {max}");
        assert_eq!(k.count("SELECT COUNT(*) FROM run_queue"), 0);
        assert_eq!(k.count("SELECT COUNT(*) FROM clist WHERE kref LIKE 'kp%'"), 0, "max {max}");
    }
}

/// A notify to a vat that cannot take it (terminated) is dropped item by item, batched or not,
/// and its references released.
#[test]
fn notifies_queued_for_a_vat_terminated_meanwhile_are_released() {
    let mut k = kernel();
    let (a, a_log, a_plan) = ScriptedVat::planned();
    let (a_id, a_root) = k.add("a", a);
    let (b, _b_log) = ScriptedVat::new(answer(|_, args| Ok(args[0].clone())));
    let (_, b_root) = k.add("b", b);
    a_plan.push(pings(5));
    let _rx = k.send(a_root, "go", vec![Value::presence(b_root, None)]);
    // Run A's delivery and B's five answers, then terminate A before its notifies run.
    for _ in 0..6 {
        assert!(k.core.step().expect("step"));
    }
    assert_eq!(k.count("SELECT COUNT(*) FROM run_queue WHERE item LIKE '%notify%'"), 5);
    k.core.terminate_vat(a_id, "gone").expect("terminate");
    k.run();
    k.check();
    assert!(notifies(&a_log).is_empty());
    assert_eq!(k.count("SELECT COUNT(*) FROM run_queue"), 0);
}
