//! A vat's new incarnation and the messages it already sent (issue 10 item 3 and the torture
//! test's IO finding; SwingSet's rule that the kernel, not the sender, holds a queued
//! message's result): a restart rejects what the vat decides, but a message it sent before
//! restarting is still on its way, and its receiver, not the dead incarnation, settles it.

mod common;
use common::*;

use ocap_kernel::smallcaps::Value;
use ocap_kernel::testing::{answer, ScriptedVat};
use ocap_kernel::vat::VatDelivery;

#[test]
fn a_message_sent_before_the_sender_restarts_is_answered_by_its_receiver() {
    let mut k = kernel();
    let (b_vat, b_log) = ScriptedVat::new(answer(|_, _| Ok(Value::str("answered"))));
    let (_, b_root) = k.add("b", b_vat);
    let (a_vat, _, plan) = ScriptedVat::planned();
    let (a, a_root) = k.add("a", a_vat);
    // a learns b's root from the host, then sends it `m` with a result it allocates.
    plan.push(vec![]);
    k.call(a_root, "meet", vec![Value::presence(b_root, None)]);
    plan.push(vec![send("o-1", "m", &[], "p+5")]);
    k.core.queue_message(a_root, "go", vec![], None).expect("go");
    k.core.step().expect("deliver go: a sends m");
    let sent = k.count("SELECT COUNT(*) FROM run_queue");
    assert_eq!(sent, 1, "m is queued, not yet delivered");

    // a restarts before m reaches b.
    k.core.attach_vat(a, Box::new(ScriptedVat::passive().0)).expect("new incarnation of a");
    k.run();
    let delivered = b_log.all().into_iter().find_map(|d| match d {
        VatDelivery::Message { result, .. } => Some(result),
        _ => None,
    });
    assert!(matches!(delivered, Some(Some(_))), "b got m with its result: {delivered:?}");
    assert_eq!(
        k.count("SELECT COUNT(*) FROM promises WHERE state = 'rejected'"),
        0,
        "nothing was rejected: the restart did not own m's result"
    );
    assert_eq!(k.count("SELECT COUNT(*) FROM promises WHERE state = 'unresolved'"), 0);
    k.check();
}
