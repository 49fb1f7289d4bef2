//! Syscall validation (kernel-core.md §5.3): every illegal syscall terminates the vat with a
//! reason naming what was wrong, and the kernel goes on.

mod common;
use common::*;

use ocap_kernel::smallcaps::Value;
use ocap_kernel::testing::{answer, ScriptedVat};
use ocap_kernel::vat::{VatDelivery, VatResolution, VatSyscall};

fn run_illegal(call: VatSyscall) -> String {
    let mut k = kernel();
    let (other, _, o_plan) = ScriptedVat::planned();
    let (_, o_root) = k.add("other", other);
    let (vat, _, plan) = ScriptedVat::planned();
    let (v_id, root) = k.add("vat", vat);
    // Setup: the vat imports o-1 (other's root) and exports p+1 to other, which decides p-… .
    plan.push(vec![
        send("o-1", "hello", &[], "p+1"),
        VatSyscall::VatstoreSet("x".into(), "y".into()),
        resolve("p-1", false, "#null", &[]),
    ]);
    o_plan.push(vec![]);
    k.call(root, "setup", vec![Value::presence(o_root, None)]);
    let held = k.send(root, "hold", vec![]);
    plan.push(vec![]);
    k.run();
    plan.push(vec![call]);
    let bad = k.send(root, "bad", vec![]);
    k.run();
    assert!(!k.core.is_vat_attached(v_id), "the vat is terminated");
    let bad = rejection(bad.try_recv().ok());
    assert!(bad.contains("[KERNEL:VAT_FATAL:ILLEGAL_SYSCALL]"), "the delivery's own result: {bad}");
    // The kernel goes on.
    let (fine, _) = ScriptedVat::new(answer(|_, _| Ok(Value::Null)));
    let (_, f_root) = k.add("fine", fine);
    assert_eq!(ok_value(k.call(f_root, "ok", vec![])), Value::Null);
    k.check();
    rejection(held.try_recv().ok())
}

#[test]
fn each_illegal_syscall_terminates_the_vat_with_a_clear_reason() {
    let cases: Vec<(VatSyscall, &str)> = vec![
        (
            VatSyscall::Send { target: "o-1".into(), methargs: vdata("#[\"m\",[]]", &[]), result: None },
            "must carry a result",
        ),
        (send("o-42", "m", &[], "p+5"), "unknown import o-42"),
        (send("x+1", "m", &[], "p+5"), "invalid vref"),
        (send("o-1", "m", &["o-77"], "p+5"), "unknown import o-77"),
        (send("o-1", "m", &[], "o+5"), "is not a promise"),
        (
            VatSyscall::Send { target: "o-1".into(), methargs: vdata("[\"m\",[]]", &[]), result: Some("p+5".into()) },
            "not smallcaps",
        ),
        (VatSyscall::Subscribe("o-1".into()), "is not a promise"),
        (VatSyscall::Subscribe("p-99".into()), "unknown import p-99"),
        (resolve("p-99", false, "#1", &[]), "unknown import p-99"),
        (
            VatSyscall::Resolve(vec![VatResolution { vpid: "p+1".into(), rejected: false, data: vdata("#1", &[]) }]),
            "not permitted to resolve",
        ),
        (VatSyscall::DropImports(vec!["o+0".into()]), "not an object import"),
        (VatSyscall::DropImports(vec!["p-1".into()]), "not an object import"),
        (VatSyscall::DropImports(vec!["o-9".into()]), "unknown import o-9"),
        (VatSyscall::RetireImports(vec!["o-1".into()]), "still reachable"),
        (VatSyscall::RetireExports(vec!["o+0".into()]), "the kernel still holds"),
        (VatSyscall::RetireExports(vec!["o-1".into()]), "not an object export"),
        (VatSyscall::AbandonExports(vec!["o+99".into()]), "unknown export o+99"),
        (VatSyscall::VatstoreSet(String::new(), "v".into()), "key is empty"),
        (VatSyscall::VatstoreGet("k".repeat(10_000)), "over the limit"),
    ];
    for (call, expected) in cases {
        let what = format!("{call:?}");
        let reason = run_illegal(call);
        assert!(reason.contains("[KERNEL:VAT_FATAL:ILLEGAL_SYSCALL]"), "{what}: {reason}");
        assert!(reason.contains(expected), "{what}: expected {expected:?} in {reason}");
    }
}

#[test]
fn resolving_twice_in_one_batch_is_illegal() {
    let reason = run_illegal(VatSyscall::Resolve(vec![
        VatResolution { vpid: "p+3".into(), rejected: false, data: vdata("#1", &[]) },
        VatResolution { vpid: "p+3".into(), rejected: false, data: vdata("#2", &[]) },
    ]));
    assert!(reason.contains("already resolved"), "{reason}");
}

#[test]
fn using_a_dropped_import_is_illegal() {
    let mut k = kernel();
    let (other, _) = passive();
    let (_, o_root) = k.add("other", other);
    let (vat, _, plan) = ScriptedVat::planned();
    let (v_id, root) = k.add("vat", vat);
    plan.push(vec![resolve("p-1", false, "#null", &[])]);
    assert_eq!(ok_value(k.call(root, "setup", vec![Value::presence(o_root, None)])), Value::Null);
    plan.push(vec![VatSyscall::DropImports(vec!["o-1".into()]), send("o-1", "m", &[], "p+1")]);
    let bad = k.send(root, "bad", vec![]);
    k.run();
    assert!(!k.core.is_vat_attached(v_id));
    let reason = rejection(bad.try_recv().ok());
    assert!(reason.contains("[KERNEL:VAT_FATAL:ILLEGAL_SYSCALL]") && reason.contains("o-1"), "{reason}");
    k.check();
}

/// §12.15: subscribing to a settled promise produces a notify; §4.3: a notify batch carries
/// every transitively settled promise in the value.
#[test]
fn subscribe_to_settled_promise_notifies_with_transitive_batch() {
    let mut k = kernel();
    let (res, _, r_plan) = ScriptedVat::planned();
    let (_, r_root) = k.add("resolver", res);
    let (sub, s_log, s_plan) = ScriptedVat::planned();
    let (_, s_root) = k.add("subscriber", sub);
    // The resolver is asked for a value and answers with a structure holding two promises
    // it resolves in the same batch (p+2 -> p+3 -> 3), one of them cyclic.
    s_plan.push(vec![send("o-1", "get", &[], "p+1"), resolve("p-1", false, "#null", &[])]);
    r_plan.push(vec![VatSyscall::Resolve(vec![
        VatResolution { vpid: "p+2".into(), rejected: false, data: vdata(r#"#["&0","&1"]"#, &["p+3", "p+2"]) },
        VatResolution { vpid: "p+3".into(), rejected: false, data: vdata("#3", &[]) },
        VatResolution { vpid: "p-1".into(), rejected: false, data: vdata(r#"#{"a":"&0"}"#, &["p+2"]) },
    ])]);
    k.call(s_root, "go", vec![Value::presence(r_root, None)]);
    // Subscribing after settlement still notifies.
    s_plan.push(vec![VatSyscall::Subscribe("p+1".into()), resolve("p-2", false, "#null", &[])]);
    k.call(s_root, "subscribeNow", vec![]);
    let batch = s_log
        .all()
        .into_iter()
        .find_map(|d| match d {
            VatDelivery::Notify(r) => Some(r),
            _ => None,
        })
        .expect("notified");
    let vpids: Vec<&str> = batch.iter().map(|r| r.vpid.as_str()).collect();
    assert_eq!(vpids.len(), 3, "{batch:?}");
    assert_eq!(vpids[0], "p+1");
    assert!(batch.iter().any(|r| r.data.body == "#3"));
    // Every vpid in the batch is retired afterwards.
    assert_eq!(k.count("SELECT COUNT(*) FROM clist WHERE endpoint = 'v2' AND kref LIKE 'kp%'"), 0);
    k.run();
    k.check();
    // With every holder gone, the promises (cycle included) are collected.
    assert_eq!(k.count("SELECT COUNT(*) FROM promises"), 0, "settled promises nobody holds are deleted");
}
