//! Nothing of a subcluster outlives it: after launching and terminating (or failing to
//! launch) every kind of subcluster, with real JS vats, the kernel's tables are back to the
//! size they had before, row for row, and the `kv` keys are the same.
//!
//! Kinds: a plain subcluster; one with an IO channel; one using a host service; failed
//! launches (a bad bundle, with and without an IO channel; `buildRootObject` throwing;
//! `bootstrap` throwing; a second vat failing after the first started); a subcluster launched
//! and terminated by a system vat through the kernel facet; a system subcluster that is
//! launched at boot and removed when its declaration goes.
//!
//! The kernel cleans up asynchronously (a terminated vat's c-list a bounded number of entries
//! per crank; IO channels once it is idle), so each check polls the tables, boundedly, until
//! they match; a mismatch that never clears fails with the tables side by side.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ocap_kernel::config::ClusterConfig;
use ocap_kernel::smallcaps::{kunser, Value};
use ocap_kernel::store::{Durability, Store};
use ocap_kernel::{Kernel, KernelConfig, KernelService, ServiceRegistration, ServiceReply, SystemSubclusterConfig};
use ocap_vat::{JsVatLauncher, LauncherOptions};
use serde_json::json;

/// Every table whose rows belong to subclusters, vats, objects or promises. `counters` is
/// left out: IDs are never reused, so it grows by design.
const TABLES: [&str; 12] = [
    "objects",
    "promises",
    "promise_subscribers",
    "promise_queue",
    "clist",
    "run_queue",
    "gc_actions",
    "reap_queue",
    "vats",
    "vatstore",
    "kernel_services",
    "subclusters",
];

fn vats_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vats")
}

fn vat(name: &str) -> String {
    vats_dir().join(name).to_string_lossy().into_owned()
}

fn echo_vat() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/io-echo/echo.js").to_string_lossy().into_owned()
}

/// A host service that answers `echo(x)` with `x`.
struct Echo;

impl KernelService for Echo {
    fn invoke(&self, method: &str, args: Vec<Value>, reply: ServiceReply) {
        match method {
            "echo" => reply.resolve(args.into_iter().next().unwrap_or(Value::Undefined)),
            other => reply.reject(Value::error(format!("echo has no method {other:?}"))),
        }
    }
}

fn make(db: &Path, system: Vec<SystemSubclusterConfig>) -> Kernel {
    let store = Store::open(db, Durability::Process).unwrap();
    let services = vec![ServiceRegistration { name: "echo".into(), service: Arc::new(Echo), system_only: false }];
    let config = KernelConfig { services, system_subclusters: system, ..Default::default() };
    Kernel::make(store, config, |sink| Box::new(JsVatLauncher::new(sink, LauncherOptions::default()))).unwrap()
}

fn cluster(config: serde_json::Value) -> ClusterConfig {
    ClusterConfig::from_value(config).unwrap()
}

fn admin_system() -> SystemSubclusterConfig {
    SystemSubclusterConfig {
        name: "admin".into(),
        config: cluster(json!({
            "bootstrap": "admin",
            "services": ["kernelFacet"],
            "vats": {"admin": {"sourceSpec": vat("admin.js")}}
        })),
    }
}

/// Row counts of [`TABLES`], plus the `kv` keys.
async fn tables(k: &Kernel) -> BTreeMap<String, String> {
    k.with_store(|s| {
        let counts = s.row_counts()?;
        let mut out = BTreeMap::new();
        for table in TABLES {
            let n = counts.iter().find(|(t, _)| t == table).map(|(_, n)| *n);
            out.insert(table.to_string(), n.unwrap_or_else(|| panic!("no table {table}")).to_string());
        }
        out.insert("kv keys".to_string(), s.kv_keys()?.join(" "));
        Ok(out)
    })
    .await
    .unwrap()
}

/// Waits (boundedly) until the tables are `baseline` again, then checks they are and that
/// the invariants hold.
async fn back_to(k: &Kernel, baseline: &BTreeMap<String, String>, after: &str) {
    let mut now = tables(k).await;
    for _ in 0..500 {
        if &now == baseline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        now = tables(k).await;
    }
    assert_eq!(&now, baseline, "the tables did not return to their size after {after}");
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()), "after {after}");
}

async fn call(k: &Kernel, target: ocap_kernel::KRef, method: &str, args: Vec<Value>) -> Value {
    match k.queue_message(target, method, args).await.unwrap() {
        Ok(v) => kunser(&v).unwrap(),
        Err(v) => panic!("{method} was rejected: {}", v.body),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_subcluster_leaves_the_tables_as_it_found_them() {
    let dir = tempfile::tempdir().unwrap();
    let bad_bundle = dir.path().join("bad.bundle");
    std::fs::write(&bad_bundle, "this is not a bundle").unwrap();
    let bad_bundle = bad_bundle.to_string_lossy().into_owned();
    let sock = dir.path().join("io.sock").to_string_lossy().into_owned();
    let io = json!({"repl": {"type": "socket", "path": sock, "direction": "inout"}});
    let k = make(&dir.path().join("k.sqlite"), vec![]);
    let baseline = tables(&k).await;

    // Twice each: the second round would find a row the first one left.
    for round in 0..2 {
        let plain = cluster(json!({"bootstrap": "a", "vats": {"a": {"sourceSpec": vat("counter.js")}}}));
        let r = k.launch_subcluster(plain).await.unwrap();
        assert_eq!(call(&k, r.root_kref, "increment", vec![]).await, Value::Number(1.0));
        k.terminate_subcluster(&r.subcluster_id).await.unwrap();
        back_to(&k, &baseline, &format!("a plain subcluster (round {round})")).await;

        let with_io = cluster(json!({"bootstrap": "echo", "io": io, "vats": {"echo": {"sourceSpec": echo_vat()}}}));
        let r = k.launch_subcluster(with_io).await.unwrap();
        assert_eq!(kunser(&r.bootstrap_result).unwrap(), Value::str("repl"));
        // No client is connected: a write goes through the channel and is refused.
        let refused = k.queue_message(r.root_kref, "write", vec![Value::str("x")]).await.unwrap();
        assert!(refused.is_err_and(|e| e.body.contains("has no connected client")));
        k.terminate_subcluster(&r.subcluster_id).await.unwrap();
        back_to(&k, &baseline, &format!("a subcluster with an IO channel (round {round})")).await;

        let with_service = cluster(json!({
            "bootstrap": "u", "services": ["echo"], "vats": {"u": {"sourceSpec": vat("service-user.js")}}
        }));
        let r = k.launch_subcluster(with_service).await.unwrap();
        assert_eq!(kunser(&r.bootstrap_result).unwrap(), Value::str("hello"));
        assert_eq!(call(&k, r.root_kref, "again", vec![Value::str("x")]).await, Value::str("x"));
        k.terminate_subcluster(&r.subcluster_id).await.unwrap();
        back_to(&k, &baseline, &format!("a subcluster using a host service (round {round})")).await;

        let failures = [
            ("a bad bundle", json!({"bootstrap": "a", "vats": {"a": {"bundleSpec": bad_bundle}}})),
            (
                "a bad bundle with an IO channel",
                json!({"bootstrap": "a", "io": io, "vats": {"a": {"bundleSpec": bad_bundle}}}),
            ),
            (
                "buildRootObject throwing, with an IO channel",
                json!({"bootstrap": "a", "io": io, "services": ["echo"],
                       "vats": {"a": {"sourceSpec": vat("faulty.js"), "parameters": {"failIn": "build"}}}}),
            ),
            (
                "bootstrap throwing, with an IO channel",
                json!({"bootstrap": "a", "io": io, "services": ["echo"],
                       "vats": {"a": {"sourceSpec": vat("faulty.js"), "parameters": {"failIn": "bootstrap"}}}}),
            ),
            (
                "a second vat failing after the first started",
                json!({"bootstrap": "a", "vats": {
                    "a": {"sourceSpec": vat("counter.js")},
                    "b": {"bundleSpec": bad_bundle}
                }}),
            ),
        ];
        for (what, config) in failures {
            let err = k.launch_subcluster(cluster(config)).await.unwrap_err();
            assert!(err.to_string().to_lowercase().contains("fail"), "{what}: {err}");
            back_to(&k, &baseline, &format!("a failed launch: {what} (round {round})")).await;
        }
    }
    k.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subclusters_launched_and_terminated_through_the_kernel_facet_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let k = make(&dir.path().join("k.sqlite"), vec![admin_system()]);
    let admin = k.get_system_subcluster_root("admin").await.unwrap();
    // The admin subcluster's bootstrap has run once the facet answers through it.
    let baseline_config = Value::Record(BTreeMap::from([
        ("bootstrap".to_string(), Value::str("a")),
        (
            "vats".to_string(),
            Value::Record(BTreeMap::from([(
                "a".to_string(),
                Value::Record(BTreeMap::from([("sourceSpec".to_string(), Value::str(vat("counter.js")))])),
            )])),
        ),
    ]));
    // A first launch and terminate, so that what the admin vat keeps for good (liveslots'
    // own bookkeeping of the facet it uses) is in the baseline.
    let sid = call(&k, admin, "launch", vec![baseline_config.clone()]).await;
    call(&k, admin, "terminate", vec![sid]).await;
    k.reap_vats(None).await.unwrap();
    let mut baseline = tables(&k).await;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = tables(&k).await;
        if now == baseline {
            break;
        }
        baseline = now;
    }
    for round in 0..3 {
        let sid = call(&k, admin, "launch", vec![baseline_config.clone()]).await;
        assert!(matches!(&sid, Value::String(s) if s.starts_with('s')), "{sid:?}");
        call(&k, admin, "terminate", vec![sid]).await;
        // The admin vat drops its import of the terminated root when it brings out its dead.
        k.reap_vats(None).await.unwrap();
        back_to(&k, &baseline, &format!("a launch and terminate through the facet (round {round})")).await;
    }
    k.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_subcluster_that_is_no_longer_declared_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.sqlite");
    let k = make(&db, vec![]);
    let baseline = tables(&k).await;
    k.stop().await.unwrap();
    for round in 0..2 {
        let k = make(&db, vec![admin_system()]);
        assert!(k.get_system_subcluster_root("admin").await.is_ok());
        k.stop().await.unwrap();
        let k = make(&db, vec![]);
        assert_eq!(k.system_report.removed, vec!["admin".to_string()]);
        back_to(&k, &baseline, &format!("an undeclared system subcluster (round {round})")).await;
        k.stop().await.unwrap();
    }
}
