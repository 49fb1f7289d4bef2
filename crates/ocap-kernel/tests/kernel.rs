//! The threaded, host-facing `Kernel` with scripted vats: launch, messages, services that
//! call back into the kernel, vat events, stop and make again (host-surface.md §1).

mod common;
use common::vdata;

use std::sync::{Arc, Mutex, OnceLock};

use ocap_kernel::config::{ClusterConfig, VatConfig};
use ocap_kernel::smallcaps::{kunser, Value};
use ocap_kernel::store::{Durability, Store};
use ocap_kernel::testing::{answer, ScriptedVat};
use ocap_kernel::vat::{VatDelivery, VatSyscall};
use ocap_kernel::{
    Kernel, KernelConfig, KernelService, LaunchedVat, ServiceRegistration, ServiceReply, VatEvent, VatEventSink, VatId,
    VatLauncher,
};

type Sinks = Arc<Mutex<Vec<(VatId, VatEventSink)>>>;
/// Each message a "plain" vat is delivered, as (vat, method).
type Delivered = tokio::sync::mpsc::UnboundedReceiver<(VatId, String)>;

/// Only guards against a hang: every wait below ends on an event long before.
const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(60);

/// Launches scripted vats; `sourceSpec` picks the behaviour.
struct Launcher {
    sink: VatEventSink,
    sinks: Sinks,
    delivered: tokio::sync::mpsc::UnboundedSender<(VatId, String)>,
}

impl VatLauncher for Launcher {
    fn launch(&mut self, request: ocap_kernel::LaunchRequest) -> Result<LaunchedVat, String> {
        let (vat, config): (VatId, &VatConfig) = (request.vat, &request.config);
        self.sinks.lock().unwrap().push((vat, self.sink.clone()));
        let spec = config.source_spec.clone().unwrap_or_default();
        let endpoint: Box<dyn ocap_kernel::vat::Endpoint> = match spec.as_str() {
            "throwing-bootstrap" => Box::new(ScriptedVat::new(answer(|_, _| Err(Value::error("from bootstrap")))).0),
            "caller" => {
                // bootstrap(vats, services): call services.helper.help() and answer with its result later.
                Box::new(
                    ScriptedVat::new(Box::new(|d, sys| {
                        if let VatDelivery::Message { result: Some(r), methargs, .. } = d {
                            if methargs.body.contains("bootstrap") {
                                sys.syscall(VatSyscall::Send {
                                    target: methargs.slots.last().cloned().unwrap_or_default(),
                                    methargs: vdata(r#"#["help",[]]"#, &[]),
                                    result: Some("p+50".into()),
                                });
                                sys.syscall(common::resolve(r, false, "#\"started\"", &[]));
                            }
                        }
                        Ok(())
                    }))
                    .0,
                )
            }
            _ => {
                let delivered = self.delivered.clone();
                Box::new(
                    ScriptedVat::new(answer(move |m, _| {
                        let _ = delivered.send((vat, m.to_string()));
                        Ok(Value::str(format!("{m} done")))
                    }))
                    .0,
                )
            }
        };
        Ok(LaunchedVat { endpoint, vatstore_sets: vec![], vatstore_deletes: vec![] })
    }
}

fn make(path: &std::path::Path, services: Vec<ServiceRegistration>) -> (Kernel, Sinks, Delivered) {
    let sinks = Arc::new(Mutex::new(Vec::new()));
    let s2 = sinks.clone();
    let (delivered, rx) = tokio::sync::mpsc::unbounded_channel();
    let store = Store::open(path, Durability::Process).unwrap();
    let k = Kernel::make(store, KernelConfig { services, ..Default::default() }, move |sink| {
        Box::new(Launcher { sink, sinks: s2, delivered })
    })
    .unwrap();
    (k, sinks, rx)
}

/// The next message a plain vat was delivered.
async fn next_delivery(rx: &mut Delivered) -> (VatId, String) {
    tokio::time::timeout(HANG_GUARD, rx.recv()).await.expect("a delivery (hang guard)").expect("the launcher is alive")
}

fn cluster(json: &str) -> ClusterConfig {
    ClusterConfig::from_json(json).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_send_stop_and_make_again_on_the_same_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.sqlite");
    let (k, _, _) = make(&db, vec![]);
    let r =
        k.launch_subcluster(cluster(r#"{"bootstrap":"main","vats":{"main":{"sourceSpec":"plain"}}}"#)).await.unwrap();
    assert_eq!(r.subcluster_id, "s1");
    assert_eq!(kunser(&r.bootstrap_result).unwrap(), Value::str("bootstrap done"));
    let answer = k.queue_message(r.root_kref, "work", vec![]).await.unwrap().unwrap();
    assert_eq!(kunser(&answer).unwrap(), Value::str("work done"));
    let status = k.get_status().await.unwrap();
    assert_eq!(status.vats.len(), 1);
    assert_eq!(status.subclusters.len(), 1);
    k.stop().await.unwrap();
    assert!(k.get_status().await.is_err(), "a stopped kernel refuses calls");

    let (k, _, _) = make(&db, vec![]);
    assert!(k.resume_failures.is_empty());
    let answer = k.queue_message(r.root_kref, "again", vec![]).await.unwrap().unwrap();
    assert_eq!(kunser(&answer).unwrap(), Value::str("again done"));
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
    k.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_that_throws_fails_the_launch_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (k, _, _) = make(&dir.path().join("k.sqlite"), vec![]);
    let err = k
        .launch_subcluster(cluster(r#"{"bootstrap":"b","vats":{"b":{"sourceSpec":"throwing-bootstrap"}}}"#))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "from bootstrap");
    let status = k.get_status().await.unwrap();
    assert!(status.vats.is_empty() && status.subclusters.is_empty());
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
    k.stop().await.unwrap();
}

/// A host service called from a vat calls back into the kernel (queue_message to another
/// vat) without deadlock: services run outside cranks and answer through the run loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_can_call_back_into_the_kernel_without_deadlock() {
    struct Helper {
        kernel: Arc<OnceLock<(Kernel, ocap_kernel::KRef)>>,
        rt: tokio::runtime::Handle,
        seen: tokio::sync::mpsc::UnboundedSender<String>,
    }
    impl KernelService for Helper {
        fn invoke(&self, method: &str, _args: Vec<Value>, reply: ServiceReply) {
            let kernel = self.kernel.clone();
            let seen = self.seen.clone();
            let _ = seen.send(method.to_string());
            self.rt.spawn(async move {
                let (k, other) = kernel.get().cloned().expect("kernel set");
                let r = k.queue_message(other, "fromService", vec![]).await;
                let answer = match r {
                    Ok(Ok(data)) => match kunser(&data) {
                        Ok(Value::String(s)) => s,
                        other => format!("not a string: {other:?}"),
                    },
                    other => format!("failed: {other:?}"),
                };
                let _ = seen.send(answer);
                reply.resolve(Value::str("helped"));
            });
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let cell = Arc::new(OnceLock::new());
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let helper = Helper { kernel: cell.clone(), rt: tokio::runtime::Handle::current(), seen: seen_tx };
    let (k, _, _) = make(
        &dir.path().join("k.sqlite"),
        vec![ServiceRegistration { name: "helper".into(), service: Arc::new(helper), system_only: false }],
    );
    let other = k.launch_subcluster(cluster(r#"{"bootstrap":"o","vats":{"o":{"sourceSpec":"plain"}}}"#)).await.unwrap();
    cell.set((k.clone(), other.root_kref)).ok();
    let r = k
        .launch_subcluster(cluster(r#"{"bootstrap":"c","services":["helper"],"vats":{"c":{"sourceSpec":"caller"}}}"#))
        .await
        .unwrap();
    assert_eq!(kunser(&r.bootstrap_result).unwrap(), Value::str("started"));
    for expected in ["help", "fromService done"] {
        let got = tokio::time::timeout(HANG_GUARD, seen.recv()).await.expect("hang guard").unwrap();
        assert_eq!(got, expected);
    }
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
    k.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vat_events_run_as_their_own_work_and_a_dead_worker_terminates_its_vat() {
    let dir = tempfile::tempdir().unwrap();
    let (k, sinks, mut delivered) = make(&dir.path().join("k.sqlite"), vec![]);
    let a = k.launch_subcluster(cluster(r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":"plain"}}}"#)).await.unwrap();
    let b = k.launch_subcluster(cluster(r#"{"bootstrap":"b","vats":{"b":{"sourceSpec":"plain"}}}"#)).await.unwrap();
    let (vat_a, sink) = sinks.lock().unwrap()[0].clone();
    let vat_b = sinks.lock().unwrap()[1].0;
    assert_eq!(next_delivery(&mut delivered).await, (vat_a, "bootstrap".to_string()));
    assert_eq!(next_delivery(&mut delivered).await, (vat_b, "bootstrap".to_string()));
    // A "timer" in vat a fires and it sends to its own root: legal, and delivered to it
    // without any host call.
    sink(vat_a, VatEvent::AsyncSyscalls(vec![common::send("o+0", "tick", &[], "p+70")]));
    assert_eq!(next_delivery(&mut delivered).await, (vat_a, "tick".to_string()));
    // Then vat a's worker dies: the vat is terminated, and its root with it.
    sink(vat_a, VatEvent::Died("out of memory".into()));
    let r = k.queue_message(a.root_kref, "anyone", vec![]).await.unwrap();
    let Err(reason) = r else { panic!("the dead vat's root answered: {r:?}") };
    let reason = format!("{:?}", kunser(&reason).unwrap());
    assert!(reason.contains("[KERNEL:OBJECT_DELETED]"), "{reason}");
    let status = k.get_status().await.unwrap();
    assert_eq!(status.vats.iter().map(|v| v.id).collect::<Vec<_>>(), vec![vat_b], "only a is gone");
    // The other vat goes on.
    let answer = k.queue_message(b.root_kref, "still", vec![]).await.unwrap().unwrap();
    assert_eq!(kunser(&answer).unwrap(), Value::str("still done"));
    assert_eq!(next_delivery(&mut delivered).await, (vat_b, "still".to_string()));
    assert!(delivered.try_recv().is_err(), "a got nothing after it died");
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
    k.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subclusters_and_vats_can_be_listed() {
    let dir = tempfile::tempdir().unwrap();
    let (k, _, _) = make(&dir.path().join("k.sqlite"), vec![]);
    let r = k
        .launch_subcluster(cluster(
            r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":"plain"},"b":{"sourceSpec":"plain"}}}"#,
        ))
        .await
        .unwrap();
    let subs = k.get_subclusters().await.unwrap();
    assert_eq!(subs.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), vec!["s1"]);
    assert!(k.get_subcluster(&r.subcluster_id).await.unwrap().is_some());
    assert!(k.get_subcluster("s9").await.unwrap().is_none());
    let vats = k.get_vats().await.unwrap();
    assert_eq!(
        vats.iter().map(|v| (v.name.as_str(), v.subcluster.as_deref())).collect::<Vec<_>>(),
        vec![("a", Some("s1")), ("b", Some("s1"))]
    );
    assert_eq!(k.ping_vat(vats[0].id).await.unwrap(), "pong");
    k.stop().await.unwrap();
}

/// A host pin outlives what it pinned a handle for: a vat root pinned by the host stays an
/// (orphaned) object after its vat is terminated, and only the kref can release it then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_pinned_by_the_host_can_be_unpinned_after_its_vat_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let (k, _, _) = make(&dir.path().join("k.sqlite"), vec![]);
    let r =
        k.launch_subcluster(cluster(r#"{"bootstrap":"main","vats":{"main":{"sourceSpec":"plain"}}}"#)).await.unwrap();
    let vat = k.get_vats().await.unwrap()[0].id;
    assert_eq!(k.pin_vat_root(vat).await.unwrap(), r.root_kref);
    k.terminate_subcluster(&r.subcluster_id).await.unwrap();
    k.collect_garbage().await.unwrap();
    let root = r.root_kref;
    let exists = move |k: Kernel| async move { k.with_store(move |s| Ok(s.object(root)?.is_some())).await.unwrap() };
    assert!(exists(k.clone()).await, "the host's pin keeps the orphaned root");
    assert!(k.unpin_vat_root(vat).await.is_err(), "the vat is gone");
    k.unpin(root).await.unwrap();
    k.collect_garbage().await.unwrap();
    assert!(!exists(k.clone()).await, "released and collected");
    assert!(k.unpin(root).await.is_err(), "nothing left to unpin");
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
    k.stop().await.unwrap();
}

/// A host service may take a built-in service's name (`ocapURLIssuerService`): the host's
/// wins, at the first make and every later one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_service_may_take_a_built_in_services_name() {
    struct Mine;
    impl KernelService for Mine {
        fn invoke(&self, _method: &str, _args: Vec<Value>, reply: ServiceReply) {
            reply.resolve(Value::str("the host's"));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.sqlite");
    let mine = || {
        vec![ServiceRegistration { name: "ocapURLIssuerService".into(), service: Arc::new(Mine), system_only: false }]
    };
    for _ in 0..2 {
        let (k, _, _) = make(&db, mine());
        let status = k.get_status().await.unwrap();
        let kref = status.services.iter().find(|s| s.name == "ocapURLIssuerService").expect("registered").kref;
        let answer = k.queue_message(kref, "issue", vec![]).await.unwrap().unwrap();
        assert_eq!(kunser(&answer).unwrap(), Value::str("the host's"));
        k.stop().await.unwrap();
    }
}
