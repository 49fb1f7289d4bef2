//! The kernel facet with real JS vats (host-surface.md §5): a system subcluster's vat calls
//! every facet method, and its error paths, and reports what each answered
//! (`tests/vats/facet-tour.js`); `reset` terminates everything, the calling vat included.

use std::path::{Path, PathBuf};

use ocap_kernel::config::ClusterConfig;
use ocap_kernel::json::{from_json, to_json};
use ocap_kernel::smallcaps::{kunser, Value};
use ocap_kernel::store::{Durability, Store};
use ocap_kernel::{KRef, Kernel, KernelConfig, SystemSubclusterConfig};
use ocap_vat::{JsVatLauncher, LauncherOptions};
use serde_json::{json, Value as Json};

/// Only guards against a hang: the wait it bounds ends on an event long before.
const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(60);

fn vats_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vats")
}

fn make(db: &Path) -> Kernel {
    let tour = ClusterConfig::from_json(
        r#"{"bootstrap":"tour","services":["kernelFacet"],
            "vats":{"tour":{"sourceSpec":"facet-tour.js","parameters":{"name":"tour"}}}}"#,
    )
    .unwrap();
    let store = Store::open(db, Durability::Process).unwrap();
    let config = KernelConfig {
        system_subclusters: vec![SystemSubclusterConfig { name: "tour".into(), config: tour }],
        ..Default::default()
    };
    Kernel::make(store, config, |sink| {
        Box::new(JsVatLauncher::new(sink, LauncherOptions { base_dir: Some(vats_dir()), ..Default::default() }))
    })
    .unwrap()
}

async fn call(k: &Kernel, target: KRef, method: &str, args: Vec<Value>) -> Json {
    match k.queue_message(target, method, args).await.unwrap() {
        Ok(data) => to_json(&kunser(&data).unwrap()),
        Err(data) => panic!("{method} rejected: {:?}", kunser(&data)),
    }
}

/// The message of a `error: …` entry of the report.
fn error<'a>(report: &'a Json, name: &str) -> &'a str {
    let e = report["errors"][name].as_str().unwrap_or_else(|| panic!("errors.{name}: {report}"));
    e.strip_prefix("error: ").unwrap_or_else(|| panic!("errors.{name} did not fail: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_vat_uses_every_kernel_facet_method() {
    let dir = tempfile::tempdir().unwrap();
    let k = make(&dir.path().join("k.sqlite"));
    let tour_root = k.get_system_subcluster_root("tour").await.unwrap();
    let counter = json!({"bootstrap": "counter", "vats": {"counter": {"sourceSpec": "counter.js"}}});
    let r = call(&k, tour_root, "tour", vec![from_json(&counter).unwrap()]).await;

    assert_eq!(r["ping"], "pong", "{r}");
    // launchSubcluster: the new subcluster, its root (as a kref string and a presence), its
    // bootstrap result as CapData.
    assert_eq!(r["launched"]["subclusterId"], "s2", "{r}");
    let root_kref = r["launched"]["rootKref"].as_str().unwrap().to_owned();
    assert_eq!(r["launched"]["bootstrapResult"], json!({"body": "#\"ready\"", "slots": []}), "{r}");
    assert_eq!(r["viaRoot"], 1, "the root presence works");
    // getStatus, getSubclusters, getSubcluster.
    assert_eq!(r["status"]["vats"], json!(["v1:tour:s1", "v2:counter:s2"]), "{r}");
    assert_eq!(r["status"]["subclusters"], json!(["s1", "s2"]), "{r}");
    assert_eq!(r["subclusters"], json!(["s1", "s2"]), "{r}");
    assert_eq!(r["subcluster"], json!({"id": "s2", "vats": {"counter": "v2"}, "bootstrap": "counter"}), "{r}");
    assert_eq!(r["noSubcluster"], true, "an unknown id answers undefined: {r}");
    // getSystemSubclusterRoot answers a kref string: the host's view of the same root.
    assert_eq!(r["systemRoot"], tour_root.to_string(), "{r}");
    // getPresence turns the kref string into a live reference.
    assert_eq!(r["viaPresence"], 2, "{r}");
    // queueMessage answers CapData; a rejection of the message rejects the call.
    assert_eq!(r["queued"], json!({"body": "#3", "slots": []}), "{r}");
    let rejected = r["queuedRejected"].as_str().unwrap();
    assert!(rejected.starts_with("error: ") && rejected.contains("noSuchMethod"), "{rejected}");
    assert_eq!(r["pingVat"], "pong", "{r}");
    // terminateSubcluster: gone from the facet's view and from the host's.
    assert_eq!(r["terminated"], Json::Null, "{r}");
    assert_eq!(r["afterTermination"], json!(["s1"]), "{r}");
    let status = k.get_status().await.unwrap();
    assert_eq!(status.subclusters.iter().map(|s| s.record.id.as_str()).collect::<Vec<_>>(), vec!["s1"]);
    let gone = k.queue_message(root_kref.parse().unwrap(), "read", vec![]).await.unwrap();
    assert!(gone.is_err(), "the terminated counter's root answered");

    // Every error path rejects with DELIVERY_FAILED and says what was wrong.
    for name in [
        "launch",
        "launchMissing",
        "getSubcluster",
        "systemRoot",
        "presence",
        "presenceArg",
        "pingVat",
        "pingVatArg",
        "queueMessage",
        "queueArgs",
        "terminate",
        "unknown",
    ] {
        let e = error(&r, name);
        assert!(e.starts_with("[KERNEL:DELIVERY_FAILED] "), "{name}: {e}");
    }
    assert!(error(&r, "launch").contains("bootstrap"), "{r}");
    // A launch that fails after its config was accepted keeps its reason.
    assert!(error(&r, "launchMissing").contains("/nonexistent/a.js not found"), "{r}");
    assert!(error(&r, "getSubcluster").contains("id must be a string"), "{r}");
    assert!(error(&r, "systemRoot").contains("nope"), "{r}");
    assert!(error(&r, "presence").contains("ko999"), "{r}");
    assert!(error(&r, "presenceArg").contains("expected a reference or kref string"), "{r}");
    assert!(error(&r, "pingVat").contains("v99"), "{r}");
    assert!(error(&r, "pingVatArg").contains("vatId must be a string"), "{r}");
    assert!(error(&r, "queueMessage").contains("ko999"), "{r}");
    assert!(error(&r, "queueArgs").contains("args must be an array"), "{r}");
    assert!(error(&r, "terminate").contains("s99"), "{r}");
    assert!(error(&r, "unknown").contains("kernelFacet has no method \"frobnicate\""), "{r}");
    // The system vat lives on after all that.
    assert_eq!(call(&k, tour_root, "tour", vec![from_json(&counter).unwrap()]).await["ping"], "pong");
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
    k.stop().await.unwrap();
}

/// `reset` terminates every subcluster, the calling system subcluster included (§5: "This
/// also terminates the calling vat").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_through_the_facet_terminates_everything_including_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let k = make(&dir.path().join("k.sqlite"));
    let tour_root = k.get_system_subcluster_root("tour").await.unwrap();
    let other = ClusterConfig::from_json(r#"{"bootstrap":"c","vats":{"c":{"sourceSpec":"counter.js"}}}"#).unwrap();
    let other = k.launch_subcluster(other).await.unwrap();
    // The system vat never settles its answer: it is rejected when (and only when) the
    // vat is terminated.
    let answer = tokio::time::timeout(HANG_GUARD, k.queue_message(tour_root, "reset", vec![]))
        .await
        .expect("the reset's answer (hang guard)");
    let reason = match answer.unwrap() {
        Ok(v) => panic!("reset fulfilled: {:?}", kunser(&v)),
        Err(e) => format!("{:?}", kunser(&e).unwrap()),
    };
    assert!(reason.contains("[KERNEL:VAT_TERMINATED]"), "{reason}");
    let status = k.get_status().await.unwrap();
    assert!(status.subclusters.is_empty() && status.vats.is_empty(), "{status:?}");
    // Rejected, or refused outright (the object is gone).
    if let Ok(Ok(v)) = k.queue_message(other.root_kref, "read", vec![]).await {
        panic!("the other subcluster's root answered after the reset: {:?}", kunser(&v));
    }
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
    k.stop().await.unwrap();
}
