//! The router: sends to objects, promises, services; revocation (kernel-core.md §3.4, §9).

mod common;
use common::*;

use ocap_kernel::smallcaps::Value;
use ocap_kernel::testing::{answer, ScriptedVat};
use ocap_kernel::vat::{VatDelivery, VatSyscall};

#[test]
fn host_message_reaches_vat_and_result_returns_to_host() {
    let mut k = kernel();
    let (vat, log) = ScriptedVat::new(answer(|m, _| Ok(Value::str(format!("{m}:pong")))));
    let (_, root) = k.add("alice", vat);
    assert_eq!(ok_value(k.call(root, "ping", vec![Value::Number(1.0)])), Value::str("ping:pong"));
    assert_eq!(log.methods(), vec!["ping"]);
    match &log.all()[0] {
        VatDelivery::Message { target, methargs, result } => {
            assert_eq!(target, "o+0");
            assert_eq!(methargs.body, r#"#["ping",[1]]"#);
            assert_eq!(result.as_deref(), Some("p-1"));
        }
        d => panic!("unexpected delivery {d:?}"),
    }
    k.check();
}

/// kernel-core.md §9: revocation is checked when a send is routed.
#[test]
fn send_to_revoked_object_is_rejected_with_object_revoked() {
    let mut k = kernel();
    let (vat, log) = ScriptedVat::new(answer(|_, _| Ok(Value::Null)));
    let (_, root) = k.add("alice", vat);
    k.core.revoke(root).unwrap();
    assert!(k.core.is_revoked(root).unwrap());
    let msg = rejection(k.call(root, "ping", vec![]));
    assert!(msg.starts_with("[KERNEL:OBJECT_REVOKED]"), "{msg}");
    assert!(log.is_empty(), "a revoked object's vat sees nothing");
    k.check();
}

#[test]
fn revocation_is_permanent_and_survives_a_restart() {
    let mut k = kernel();
    let (vat, _) = passive();
    let (_, root) = k.add("alice", vat);
    k.core.revoke(root).unwrap();
    let mut k = k.restart();
    assert!(k.core.is_revoked(root).unwrap());
    let msg = rejection(k.call(root, "ping", vec![]));
    assert!(msg.contains("OBJECT_REVOKED"), "{msg}");
    k.check();
}

#[test]
fn revoking_a_promise_or_unknown_kref_is_a_clear_error() {
    let mut k = kernel();
    let err = k.core.revoke("kp1".parse().unwrap()).unwrap_err().to_string();
    assert!(err.contains("kp1") && err.contains("promise"), "{err}");
    let err = k.core.revoke("ko99".parse().unwrap()).unwrap_err().to_string();
    assert!(err.contains("unknown kref ko99"), "{err}");
    k.check();
}

/// §4.2: a message to an unresolved promise is parked, then re-routed in order to the object
/// the fulfilment names.
#[test]
fn messages_parked_on_a_promise_are_rerouted_in_order_on_fulfilment() {
    let mut k = kernel();
    let (exporter, e_log, e_plan) = ScriptedVat::planned();
    let (_, e_root) = k.add("exporter", exporter);
    let (caller, _, c_plan) = ScriptedVat::planned();
    let (_, c_root) = k.add("caller", caller);
    // The caller asks the exporter for a thing and pipelines two messages to the answer.
    c_plan.push(vec![
        send("o-1", "getThing", &[], "p+1"),
        send("p+1", "first", &[], "p+2"),
        send("p+1", "second", &[], "p+3"),
        resolve("p-1", false, "#null", &[]),
    ]);
    e_plan.push(vec![resolve("p-1", false, "#\"$0.Alleged: thing\"", &["o+1"])]);
    assert_eq!(ok_value(k.call(c_root, "go", vec![Value::presence(e_root, None)])), Value::Null);
    let targets: Vec<String> = e_log
        .all()
        .iter()
        .filter_map(|d| match d {
            VatDelivery::Message { target, .. } => Some(target.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(e_log.methods(), vec!["getThing", "first", "second"]);
    assert_eq!(targets, vec!["o+0", "o+1", "o+1"]);
    k.check();
}

#[test]
fn messages_parked_on_a_rejected_promise_have_their_results_rejected() {
    let mut k = kernel();
    let (exporter, e_log, e_plan) = ScriptedVat::planned();
    let (_, e_root) = k.add("exporter", exporter);
    let (caller, c_log, c_plan) = ScriptedVat::planned();
    let (_, c_root) = k.add("caller", caller);
    c_plan.push(vec![
        send("o-1", "getThing", &[], "p+1"),
        send("p+1", "first", &[], "p+2"),
        VatSyscall::Subscribe("p+2".into()),
        resolve("p-1", false, "#null", &[]),
    ]);
    e_plan.push(vec![resolve("p-1", true, r##"#{"#error":"nope","name":"Error"}"##, &[])]);
    k.call(c_root, "go", vec![Value::presence(e_root, None)]);
    assert_eq!(e_log.methods(), vec!["getThing"], "the parked message never reaches a vat");
    let notified = c_log.all().into_iter().find_map(|d| match d {
        VatDelivery::Notify(r) => Some(r),
        _ => None,
    });
    let r = notified.expect("caller notified of p+2");
    assert_eq!(r[0].vpid, "p+2");
    assert!(r[0].rejected && r[0].data.body.contains("nope"), "{r:?}");
    k.check();
}

#[test]
fn message_to_a_promise_fulfilled_to_data_gives_bad_promise_resolution() {
    let mut k = kernel();
    let (exporter, _, e_plan) = ScriptedVat::planned();
    let (_, e_root) = k.add("exporter", exporter);
    let (caller, c_log, c_plan) = ScriptedVat::planned();
    let (_, c_root) = k.add("caller", caller);
    c_plan.push(vec![
        send("o-1", "getNumber", &[], "p+1"),
        send("p+1", "foo", &[], "p+2"),
        VatSyscall::Subscribe("p+2".into()),
        resolve("p-1", false, "#null", &[]),
    ]);
    e_plan.push(vec![resolve("p-1", false, "#42", &[])]);
    k.call(c_root, "go", vec![Value::presence(e_root, None)]);
    let bodies: Vec<String> = c_log
        .all()
        .into_iter()
        .filter_map(|d| match d {
            VatDelivery::Notify(r) => Some(r[0].data.body.clone()),
            _ => None,
        })
        .collect();
    assert!(bodies.iter().any(|b| b.contains("[KERNEL:BAD_PROMISE_RESOLUTION]")), "{bodies:?}");
    k.check();
}

/// §4.1: the decider is handed off at delivery, and only the decider may resolve.
#[test]
fn decider_is_handed_off_at_delivery_and_only_the_decider_may_resolve() {
    let mut k = kernel();
    let (bob, _, b_plan) = ScriptedVat::planned();
    let (bob_id, bob_root) = k.add("bob", bob);
    let (alice, _, a_plan) = ScriptedVat::planned();
    let (alice_id, alice_root) = k.add("alice", alice);
    // Alice sends to Bob with result p+1, then (illegally) tries to resolve it herself later.
    a_plan.push(vec![send("o-1", "work", &[], "p+1"), resolve("p-1", false, "#null", &[])]);
    b_plan.push(vec![]); // Bob receives `work` and does nothing yet.
    k.call(alice_root, "go", vec![Value::presence(bob_root, None)]);
    let kp = k.count("SELECT id FROM promises WHERE decider = 'v1'");
    assert!(kp > 0, "bob decides the result after delivery");
    a_plan.push(vec![resolve("p+1", false, "#1", &[])]);
    let r = k.call(alice_root, "cheat", vec![]);
    assert!(r.is_some_and(|r| r.is_err()), "alice was terminated for resolving bob's promise");
    assert!(!k.core.is_vat_attached(alice_id));
    assert!(k.core.is_vat_attached(bob_id));
    k.check();
}

/// §3.6 and G1: a message to a kernel service invokes it after the crank commits, and the
/// answer comes back through the run loop.
#[test]
fn kernel_service_answers_through_the_run_loop() {
    use ocap_kernel::{KernelService, ServiceReply};
    use std::sync::Arc;
    struct Adder;
    impl KernelService for Adder {
        fn invoke(&self, method: &str, args: Vec<Value>, reply: ServiceReply) {
            match (method, args.as_slice()) {
                ("add", [Value::Number(a), Value::Number(b)]) => reply.resolve(Value::Number(a + b)),
                _ => reply.reject(Value::error(format!("no method {method}"))),
            }
        }
    }
    let mut k = kernel();
    let svc = k.core.register_service("adder", Arc::new(Adder)).unwrap();
    assert_eq!(ok_value(k.call(svc, "add", vec![Value::Number(2.0), Value::Number(3.0)])), Value::Number(5.0));
    assert_eq!(rejection(k.call(svc, "sub", vec![])), "no method sub");
    // The same name gets the same kref after a restart.
    let mut k = k.restart();
    assert_eq!(k.core.service_kref("adder").unwrap(), Some(svc));
    // Not re-registered: a message to it rejects, and the loop goes on (bug §13.13 not copied).
    let msg = rejection(k.call(svc, "add", vec![Value::Number(1.0), Value::Number(1.0)]));
    assert!(msg.contains("DELIVERY_FAILED"), "{msg}");
    let (vat, _) = ScriptedVat::new(answer(|_, _| Ok(Value::Bool(true))));
    let (_, root) = k.add("after", vat);
    assert_eq!(ok_value(k.call(root, "still", vec![])), Value::Bool(true));
    k.check();
}

#[test]
fn a_vat_can_call_a_kernel_service_it_was_given() {
    use ocap_kernel::{KernelService, ServiceReply};
    use std::sync::Arc;
    struct Echo;
    impl KernelService for Echo {
        fn invoke(&self, _method: &str, args: Vec<Value>, reply: ServiceReply) {
            reply.resolve(Value::Array(args));
        }
    }
    let mut k = kernel();
    let svc = k.core.register_service("echo", Arc::new(Echo)).unwrap();
    let (vat, log, plan) = ScriptedVat::planned();
    let (_, root) = k.add("user", vat);
    plan.push(vec![
        send("o-1", "say", &[], "p+1"),
        VatSyscall::Subscribe("p+1".into()),
        resolve("p-1", false, "#null", &[]),
    ]);
    k.call(root, "go", vec![Value::presence(svc, None)]);
    let notify = log.all().into_iter().find_map(|d| match d {
        VatDelivery::Notify(r) => Some(r),
        _ => None,
    });
    let r = notify.expect("the vat is notified of the service's answer");
    assert_eq!((r[0].vpid.as_str(), r[0].rejected, r[0].data.body.as_str()), ("p+1", false, "#[]"));
    k.check();
}

#[test]
fn host_messages_with_unknown_targets_or_slots_are_refused_without_leaking() {
    let mut k = kernel();
    let err = k.core.queue_message("ko42".parse().unwrap(), "x", vec![], None).unwrap_err();
    assert!(err.to_string().contains("ko42"), "{err}");
    let (vat, _) = passive();
    let (_, root) = k.add("a", vat);
    let err = k.core.queue_message(root, "x", vec![Value::presence("ko77".parse().unwrap(), None)], None).unwrap_err();
    assert!(err.to_string().contains("ko77"), "{err}");
    assert_eq!(k.count("SELECT COUNT(*) FROM promises"), 0);
    k.check();
}
