//! The generic endpoint path with an endpoint that is not a vat (issue 12, item 2): a scripted
//! remote kernel `r1`, attached with `KernelCore::add_remote`, holds a c-list of rrefs and
//! takes the same deliveries (messages, notifies, GC actions) through the same code as a vat;
//! what it sends arrives as syscalls. Vat-only syscalls from it are illegal. Spec:
//! remote-comms.md §2 (rrefs, `ro-N`/`rp-N` allocated by the kernel) and kernel-core.md §5.3.

mod common;

use common::*;
use ocap_kernel::smallcaps::Value;
use ocap_kernel::testing::{answer, decode_methargs, vat_methargs, vat_value, ScriptedVat};
use ocap_kernel::vat::{VatDelivery, VatResolution, VatSyscall};
use ocap_kernel::{EndpointId, KernelError, RemoteId};

/// A scripted remote: answers `greet(x)` with "hello back", leaves other messages unanswered.
fn remote() -> (ScriptedVat, ocap_kernel::testing::DeliveryLog) {
    ScriptedVat::new(Box::new(|d, sys| {
        if let VatDelivery::Message { methargs, result: Some(result), .. } = d {
            if decode_methargs(methargs).is_some_and(|(m, _)| m == "greet") {
                sys.syscall(VatSyscall::Resolve(vec![VatResolution {
                    vpid: result.clone(),
                    rejected: false,
                    data: vat_value(Value::str("hello back")),
                }]));
            }
        }
        Ok(())
    }))
}

fn resolved(v: &str) -> Option<ocap_kernel::HostResult> {
    Some(Ok(ocap_kernel::smallcaps::kser(&Value::str(v))))
}

#[test]
fn a_remote_endpoint_takes_messages_sends_and_notifies_through_the_generic_path() {
    let mut k = kernel();
    let (_a, a_root) = k.add("a", ScriptedVat::new(answer(|m, _| Ok(Value::str(format!("a got {m}"))))).0);
    let (r, r_log) = remote();
    let rid = k.core.add_remote("peer", Box::new(r)).expect("add remote");
    assert_eq!(rid, RemoteId(1));
    let ep = EndpointId::Remote(rid);

    // The host calls an object the remote exports, passing a's root: the remote gets the
    // message in rref space, with kernel-allocated imports (`ro-1`, `rp-1`).
    let obj = k.core.import_from_remote(rid, "ro+7").expect("import");
    assert_eq!(k.core.store().object(obj).unwrap().unwrap().owner, Some(ep));
    let got = k.call(obj, "greet", vec![Value::presence(a_root, None)]);
    assert_eq!(got, resolved("hello back"));
    let deliveries = r_log.take();
    match &deliveries[0] {
        VatDelivery::Message { target, methargs, result } => {
            assert_eq!(target, "ro+7");
            assert_eq!(methargs.slots, vec!["ro-1".to_string()]);
            assert_eq!(result.as_deref(), Some("rp-1"));
        }
        other => panic!("expected a message, got {other:?}"),
    }
    // Nothing holds the remote's object any more: GC tells the remote, as it would a vat.
    assert!(
        deliveries.contains(&VatDelivery::DropExports(vec!["ro+7".into()])),
        "dropExports reached the remote: {deliveries:?}"
    );
    assert!(deliveries.contains(&VatDelivery::RetireExports(vec!["ro+7".into()])), "{deliveries:?}");
    k.check();

    // The remote sends to a's root (its import `ro-1`) and subscribes to the answer: a
    // delivers, and the remote is notified in its own space (`rp+5`, its export).
    k.core
        .handle_async_syscalls(
            rid,
            vec![
                VatSyscall::Send {
                    target: "ro-1".into(),
                    methargs: vat_methargs("ping", vec![]),
                    result: Some("rp+5".into()),
                },
                VatSyscall::Subscribe("rp+5".into()),
            ],
        )
        .expect("remote syscalls");
    k.run();
    let notified = r_log.take();
    assert_eq!(
        notified,
        vec![VatDelivery::Notify(vec![VatResolution {
            vpid: "rp+5".into(),
            rejected: false,
            data: vat_value(Value::str("a got ping"))
        }])]
    );
    k.check();

    // The remote lets go of a's root: its c-list entry goes.
    k.core
        .handle_async_syscalls(
            rid,
            vec![VatSyscall::DropImports(vec!["ro-1".into()]), VatSyscall::RetireImports(vec!["ro-1".into()])],
        )
        .expect("drop");
    k.run();
    assert_eq!(k.count("SELECT COUNT(*) FROM clist WHERE endpoint = 'r1'"), 0);
    k.check();
}

#[test]
fn vat_only_syscalls_from_a_remote_are_illegal_and_terminate_it_like_a_vat() {
    let mut k = kernel();
    let (r, _log) = remote();
    let rid = k.core.add_remote("peer", Box::new(r)).expect("add remote");
    // A message the remote never answers: its result is decided by r1 once delivered.
    let obj = k.core.import_from_remote(rid, "ro+1").expect("import");
    let pending = k.send(obj, "wait", vec![]);
    k.run();
    assert!(pending.try_recv().is_err(), "unanswered while r1 lives");

    k.core.handle_async_syscalls(rid, vec![VatSyscall::VatstoreGet("k".into())]).expect("syscalls");
    k.run();
    let Ok(Err(reason)) = pending.try_recv() else { panic!("the result was not rejected") };
    let text = ocap_kernel::smallcaps::reason_text(&reason);
    assert!(
        text.starts_with(
            "[KERNEL:VAT_TERMINATED] [KERNEL:VAT_FATAL:ILLEGAL_SYSCALL] vatstoreGet: vatstoreGet is for vats only"
        ),
        "{text}"
    );
    // Terminated and cleaned like a vat: no c-list, no row, no objects left.
    assert!(!k.core.is_attached(EndpointId::Remote(rid)));
    assert_eq!(k.count("SELECT COUNT(*) FROM remotes"), 0);
    assert_eq!(k.count("SELECT COUNT(*) FROM clist"), 0);
    assert_eq!(k.count("SELECT COUNT(*) FROM objects"), 0);
    assert!(matches!(k.core.import_from_remote(rid, "ro+2"), Err(KernelError::NoSuchEndpoint(_))));
    k.check();
}

#[test]
fn a_remote_cannot_use_vat_refs_or_imports_it_was_never_given() {
    let mut k = kernel();
    let (r, _log) = remote();
    let rid = k.core.add_remote("peer", Box::new(r)).expect("add remote");
    assert!(matches!(k.core.import_from_remote(rid, "o+1"), Err(KernelError::BadEndpointRef(_))));
    assert!(matches!(k.core.import_from_remote(rid, "ro-1"), Err(KernelError::BadEndpointRef(_))));
    // A send to an import it does not hold is illegal: the remote is terminated.
    k.core
        .handle_async_syscalls(
            rid,
            vec![VatSyscall::Send {
                target: "ro-9".into(),
                methargs: vat_methargs("x", vec![]),
                result: Some("rp+1".into()),
            }],
        )
        .expect("syscalls");
    k.run();
    assert!(!k.core.is_attached(EndpointId::Remote(rid)));
    k.check();
}

#[test]
fn remote_endpoints_survive_a_restart_and_can_be_attached_again() {
    let mut k = kernel();
    let (r, _log) = remote();
    let rid = k.core.add_remote("peer", Box::new(r)).expect("add remote");
    let obj = k.core.import_from_remote(rid, "ro+3").expect("import");
    k.core.pin(obj).expect("pin");
    let mut k = k.restart();
    assert!(!k.core.is_attached(EndpointId::Remote(rid)), "nothing is attached after a restart");
    let reached = k.call(obj, "greet", vec![]);
    let Some(Err(reason)) = reached else { panic!("expected a rejection, got {reached:?}") };
    assert!(ocap_kernel::smallcaps::reason_text(&reason).contains("ENDPOINT_UNREACHABLE"));
    let (r, _log) = remote();
    k.core.attach_remote(rid, Box::new(r)).expect("attach");
    assert_eq!(k.call(obj, "greet", vec![]), resolved("hello back"));
    assert_eq!(k.core.remotes().unwrap().len(), 1);
    k.check();
}
