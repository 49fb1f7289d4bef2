//! Restart semantics, the SwingSet model (issue 10, item 3; kernel-core.md §10.5 for what the
//! JS kernel gets wrong): when a vat starts a new incarnation (`restartVat`, or a kernel
//! restart, which brings every vat back on a new worker), its non-durable exports are
//! abandoned (a send to one is rejected with `[KERNEL:OBJECT_DELETED]`), the vat keeps
//! running with its durable objects and baggage, and every promise it decided and had not
//! settled is rejected with `[KERNEL:VAT_RESTARTED]`. Real JS vats through the host API.

use std::path::Path;

use ocap_kernel::config::ClusterConfig;
use ocap_kernel::smallcaps::{kunser, Value};
use ocap_kernel::{HostResult, KRef, Kernel, KernelConfig, VatId};

mod common;

fn make(db: &Path) -> Kernel {
    common::js_kernel(db, KernelConfig::default(), common::test_vats())
}

fn cluster() -> ClusterConfig {
    ClusterConfig::from_json(
        r#"{"bootstrap":"user","vats":{"user":{"sourceSpec":"user.js"},"keeper":{"sourceSpec":"keeper.js"}}}"#,
    )
    .expect("cluster config")
}

async fn send(k: &Kernel, target: KRef, method: &str) -> HostResult {
    k.queue_message(target, method, vec![]).await.expect("queue message")
}

fn value(r: HostResult) -> Value {
    match r {
        Ok(data) => kunser(&data).expect("decode result"),
        Err(data) => panic!("expected fulfilment, got rejection {:?}", kunser(&data)),
    }
}

fn rejection(r: HostResult) -> String {
    match r {
        Err(data) => match kunser(&data) {
            Ok(Value::Error { message, .. }) => message,
            other => panic!("expected an error, got {other:?}"),
        },
        Ok(data) => panic!("expected a rejection, got {:?}", kunser(&data)),
    }
}

/// The ids and roots of the two vats.
async fn vats(k: &Kernel) -> ((VatId, KRef), (VatId, KRef)) {
    let all = k.get_vats().await.expect("vats");
    let find = |name: &str| all.iter().find(|v| v.name == name).map(|v| v.id).expect("vat by name");
    let (user, keeper) = (find("user"), find("keeper"));
    let details = k.get_status().await.expect("status");
    let root = |vat: VatId| details.roots.iter().find(|(v, _)| *v == vat).map(|(_, r)| *r).expect("root of vat");
    ((user, root(user)), (keeper, root(keeper)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_vat_abandons_ephemeral_exports_and_keeps_durable_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("k.sqlite");
    let k = make(&db);
    let launched = k.launch_subcluster(cluster()).await.expect("launch");
    assert_eq!(value(Ok(launched.bootstrap_result)), Value::str("ready"));
    let ((_, user), (keeper_id, keeper)) = vats(&k).await;
    assert_eq!(value(send(&k, user, "useCounter").await), Value::Number(1.0));
    assert_eq!(value(send(&k, user, "useEphemeral").await), Value::str("hello from incarnation 1"));

    k.restart_vat(keeper_id).await.expect("restart keeper");

    // The heap exo of the previous incarnation is gone: a clear rejection, not a dead vat.
    let why = rejection(send(&k, user, "useEphemeral").await);
    assert!(why.starts_with("[KERNEL:OBJECT_DELETED]"), "{why}");
    // The vat keeps running, with its durable counter and its baggage.
    assert_eq!(value(send(&k, user, "useCounter").await), Value::Number(2.0));
    assert_eq!(value(send(&k, keeper, "incarnation").await), Value::Number(2.0));
    let status = k.get_vats().await.expect("vats");
    assert!(status.iter().all(|v| v.state == ocap_kernel::store::VatState::Active), "{status:?}");
    // And the same after a kernel restart, which is a new incarnation of every vat: the
    // user vat is restarted too, so it keeps nothing but what it held durably (nothing).
    k.stop().await.expect("stop");
    let k = make(&db);
    assert!(k.resume_failures.is_empty(), "{:?}", k.resume_failures);
    assert_eq!(value(send(&k, keeper, "incarnation").await), Value::Number(3.0));
    let counter = match value(send(&k, keeper, "getCounter").await) {
        Value::Remotable { slot, .. } => slot,
        v => panic!("expected the counter, got {v:?}"),
    };
    assert_eq!(value(send(&k, counter, "increment").await), Value::Number(3.0));
    assert_eq!(k.check_invariants().await.expect("check"), Ok(()));
    k.stop().await.expect("stop");
}

/// Waits until `n` calls to `later()` have reached K (the spawned sends race the test's).
async fn wait_until_pending(k: &Kernel, keeper: KRef, n: u32) {
    while value(send(k, keeper, "pending").await) != Value::Number(f64::from(n)) {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_vat_rejects_the_promises_the_vat_decided() {
    let dir = tempfile::tempdir().expect("tempdir");
    let k = make(&dir.path().join("k.sqlite"));
    k.launch_subcluster(cluster()).await.expect("launch");
    let ((_, user), (keeper_id, keeper)) = vats(&k).await;

    // A host send that K answers only later (K holds the resolver) ...
    let from_host = tokio::spawn({
        let k = k.clone();
        async move { send(&k, keeper, "later").await }
    });
    // ... and a vat's: U waits on a promise K decides.
    let from_vat = tokio::spawn({
        let k = k.clone();
        async move { send(&k, user, "waitForKeeper").await }
    });
    wait_until_pending(&k, keeper, 2).await;
    assert!(!from_host.is_finished() && !from_vat.is_finished());

    k.restart_vat(keeper_id).await.expect("restart keeper");
    for waiting in [from_host, from_vat] {
        // Only a guard against hanging: a promise nobody rejects would never settle.
        let settled = tokio::time::timeout(std::time::Duration::from_secs(120), waiting).await;
        let why = rejection(settled.expect("the restarted vat's promise is rejected").expect("join"));

        assert!(why.starts_with("[KERNEL:VAT_RESTARTED]"), "{why}");
    }
    // K's new incarnation answers new requests as usual.
    let later = tokio::spawn({
        let k = k.clone();
        async move { send(&k, keeper, "later").await }
    });
    wait_until_pending(&k, keeper, 1).await;
    assert_eq!(value(send(&k, keeper, "settleAll").await), Value::str("settled"));
    assert_eq!(value(later.await.expect("join")), Value::Undefined);
    assert_eq!(k.check_invariants().await.expect("check"), Ok(()));
    k.stop().await.expect("stop");
}

/// The imports of a restarted vat: those its durable state holds (baggage, durable objects:
/// liveslots' `vom.rc.` keys) stay usable; those it held in memory only are dropped by the
/// kernel, so their exporters can collect them (found by the torture test: objects grew
/// without bound across daemon restarts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_vat_keeps_the_imports_its_durable_state_holds_and_drops_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let k = make(&dir.path().join("k.sqlite"));
    k.launch_subcluster(cluster()).await.expect("launch");
    let ((user_id, user), (keeper_id, _)) = vats(&k).await;
    assert_eq!(value(send(&k, user, "keepCounter").await), Value::str("kept"));
    let exports = |vat: VatId| {
        let k = k.clone();
        async move {
            k.with_store(move |s| {
                let rows = s.clist_rows(Some(&vat.to_string()), None)?;
                Ok(rows.into_iter().filter(|c| c.eref.starts_with('o')).map(|c| (c.kref, c.eref)).collect::<Vec<_>>())
            })
            .await
            .expect("c-list")
        }
    };
    // The keeper's heap exo, which the user holds in memory only.
    let ephemeral = exports(keeper_id)
        .await
        .into_iter()
        .find(|(_, eref)| eref.starts_with("o+") && eref != "o+0" && !eref.starts_with("o+d"))
        .map(|(kref, _)| kref)
        .expect("the keeper exports its heap exo");
    let imports_before = exports(user_id).await.into_iter().filter(|(_, e)| e.starts_with("o-")).count();
    assert!(imports_before >= 3, "keeper root, counter, heap exo");

    k.restart_vat(user_id).await.expect("restart user");
    k.collect_garbage().await.expect("gc");
    let imports_after: Vec<(String, String)> =
        exports(user_id).await.into_iter().filter(|(_, e)| e.starts_with("o-")).collect();
    assert_eq!(imports_after.len(), 1, "only the counter, held in baggage: {imports_after:?}");
    assert_eq!(value(send(&k, user, "useKeptCounter").await), Value::Number(1.0));
    let gone = k.with_store(move |s| Ok(s.object(ephemeral.parse()?)?.is_none())).await.expect("object lookup");
    assert!(gone, "the heap exo nobody can reach any more was collected");
    assert_eq!(k.check_invariants().await.expect("check"), Ok(()));
    k.stop().await.expect("stop");
}
