//! Crank traces (`core/trace.rs`): a subscriber sees each crank's work, endpoint, syscalls,
//! outcome and duration; nobody subscribed, nothing is traced; tracing changes nothing.

mod common;
use common::*;

use ocap_kernel::smallcaps::Value;
use ocap_kernel::testing::{answer, ScriptedVat};
use ocap_kernel::vat::VatSyscall;
use ocap_kernel::{CrankTrace, EndpointId, TracedOutcome, TracedWork, MAX_TRACED_SYSCALLS};
use tokio::sync::broadcast::error::TryRecvError;

fn drain(rx: &mut tokio::sync::broadcast::Receiver<CrankTrace>) -> Vec<CrankTrace> {
    let mut out = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(t) => out.push(t),
            Err(TryRecvError::Empty) => return out,
            Err(e) => panic!("trace channel: {e}"),
        }
    }
}

#[test]
fn a_subscriber_sees_the_delivery_its_resolve_and_the_commit() {
    let mut k = kernel();
    let (vat, _log) = ScriptedVat::new(answer(|_, _| Ok(Value::str("pong"))));
    let (vat_id, root) = k.add("pinger", vat);
    let mut rx = k.core.trace_subscribe();
    let before = k.core.crank_count();
    assert_eq!(ok_value(k.call(root, "ping", vec![])), Value::str("pong"));

    let traces = drain(&mut rx);
    assert_eq!(traces.len(), 1, "one crank: {traces:#?}");
    let t = &traces[0];
    assert_eq!(t.crank, before + 1);
    let TracedWork::Send { target, method, result } = &t.work else { panic!("a send: {t:?}") };
    assert_eq!((*target, method.as_deref()), (root, Some("ping")));
    assert!(result.is_some_and(|r| r.is_promise()));
    assert_eq!(t.endpoint, Some(EndpointId::Vat(vat_id)));
    assert_eq!(t.syscalls.len(), 1, "{t:?}");
    assert_eq!(t.syscalls[0].name, "resolve");
    assert!(t.syscalls[0].summary.starts_with("p-") && t.syscalls[0].summary.contains("fulfilled"), "{t:?}");
    assert!(t.syscalls[0].summary.contains("pong"), "{t:?}");
    assert_eq!(t.syscalls[0].error, None);
    assert_eq!(t.syscalls_omitted, 0);
    assert_eq!(t.outcome, TracedOutcome::Commit);

    // As JSON (what the panel streams).
    let json = serde_json::to_value(t).expect("JSON");
    assert_eq!(json["work"]["kind"], "send");
    assert_eq!(json["work"]["method"], "ping");
    assert_eq!(json["endpoint"], vat_id.to_string());
    assert_eq!(json["syscalls"][0]["name"], "resolve");
    assert_eq!(json["outcome"]["kind"], "commit");
    assert!(json["durationUs"].is_u64());
    k.check();
}

#[test]
fn an_illegal_syscall_is_traced_with_the_abort_and_its_reason() {
    let mut k = kernel();
    let (vat, _log, plan) = ScriptedVat::planned();
    let (vat_id, root) = k.add("bad", vat);
    plan.push(vec![VatSyscall::Subscribe("o+99".into())]);
    let mut rx = k.core.trace_subscribe();
    let _pending = k.send(root, "misbehave", vec![]);
    k.run();
    let traces = drain(&mut rx);
    let t = traces.iter().find(|t| matches!(t.work, TracedWork::Send { .. })).expect("the send's crank");
    assert_eq!(t.endpoint, Some(EndpointId::Vat(vat_id)));
    assert_eq!(t.syscalls.len(), 1);
    assert_eq!(t.syscalls[0].name, "subscribe");
    assert!(t.syscalls[0].error.is_some(), "{t:?}");
    match &t.outcome {
        TracedOutcome::Abort { endpoint, reason } => {
            assert_eq!(*endpoint, EndpointId::Vat(vat_id));
            assert!(reason.contains("ILLEGAL_SYSCALL"), "{reason}");
        }
        other => panic!("an abort: {other:?}"),
    }
    k.check();
}

#[test]
fn syscalls_past_the_cap_are_only_counted() {
    let mut k = kernel();
    let (vat, _log, plan) = ScriptedVat::planned();
    let (_, root) = k.add("chatty", vat);
    let n = MAX_TRACED_SYSCALLS + 7;
    plan.push((0..n).map(|i| VatSyscall::VatstoreSet(format!("k{i}"), "v".into())).collect());
    let mut rx = k.core.trace_subscribe();
    let _pending = k.send(root, "chat", vec![]);
    k.run();
    let traces = drain(&mut rx);
    let t = traces.iter().find(|t| matches!(t.work, TracedWork::Send { .. })).expect("the send's crank");
    assert_eq!(t.syscalls.len(), MAX_TRACED_SYSCALLS);
    assert_eq!(t.syscalls_omitted, 7);
    assert_eq!(t.syscalls[0].summary, "k0 (1 bytes)");
    assert_eq!(t.outcome, TracedOutcome::Commit);
}

#[test]
fn without_a_subscriber_nothing_is_sent_and_a_late_one_sees_only_later_cranks() {
    let mut k = kernel();
    let (vat, _log) = ScriptedVat::new(answer(|_, _| Ok(Value::Number(1.0))));
    let (_, root) = k.add("one", vat);
    // A subscriber that went away: the kernel traces nothing while nobody listens.
    drop(k.core.trace_subscribe());
    assert!(k.call(root, "a", vec![]).is_some());
    let mut rx = k.core.trace_subscribe();
    assert!(drain(&mut rx).is_empty());
    assert!(k.call(root, "b", vec![]).is_some());
    let methods: Vec<_> = drain(&mut rx)
        .into_iter()
        .filter_map(|t| match t.work {
            TracedWork::Send { method, .. } => method,
            _ => None,
        })
        .collect();
    assert_eq!(methods, vec!["b".to_owned()]);
}

/// Through the threaded `Kernel`: `trace_subscribe` on the facade.
#[tokio::test(flavor = "multi_thread")]
async fn the_kernel_facade_streams_traces_and_closes_when_it_stops() {
    use ocap_kernel::store::{Durability, Store};
    use ocap_kernel::{Kernel, KernelConfig};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("k.sqlite"), Durability::Process).expect("store");
    let kernel = Kernel::make(store, KernelConfig::default(), |_| Box::new(NoLauncher)).expect("kernel");
    let mut rx = kernel.trace_subscribe();
    kernel.stop().await.expect("stop");
    assert!(matches!(rx.recv().await, Err(tokio::sync::broadcast::error::RecvError::Closed)));
    assert!(matches!(kernel.trace_subscribe().recv().await, Err(tokio::sync::broadcast::error::RecvError::Closed)));
}

/// A launcher for a kernel that launches nothing.
struct NoLauncher;

impl ocap_kernel::VatLauncher for NoLauncher {
    fn launch(&mut self, _request: ocap_kernel::LaunchRequest) -> Result<ocap_kernel::LaunchedVat, String> {
        Err("no vats here".into())
    }
}
