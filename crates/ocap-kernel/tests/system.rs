//! System subclusters and the kernel facet, with scripted vats (host-surface.md §3.4, §5).

mod common;
use common::{resolve, vdata};

use std::sync::{Arc, Mutex};

use ocap_kernel::config::{ClusterConfig, VatConfig};
use ocap_kernel::smallcaps::Value;
use ocap_kernel::store::{Durability, Store};
use ocap_kernel::testing::ScriptedVat;
use ocap_kernel::vat::{VatDelivery, VatSyscall};
use ocap_kernel::{Kernel, KernelConfig, LaunchedVat, SystemSubclusterConfig, VatLauncher};

/// What the scripted "boss" vats saw, shared across kernel incarnations.
#[derive(Default)]
struct Seen {
    bootstraps: usize,
    notifies: Vec<String>,
    /// Notified whenever the above changes.
    changed: Arc<tokio::sync::Notify>,
}

/// Only guards against a hang: every wait below ends on an event long before.
const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(60);

/// Waits until what the vats saw satisfies `done`.
async fn wait_for(seen: &Arc<Mutex<Seen>>, what: &str, done: impl Fn(&Seen) -> bool) {
    let changed = seen.lock().unwrap().changed.clone();
    loop {
        if done(&seen.lock().unwrap()) {
            return;
        }
        tokio::time::timeout(HANG_GUARD, changed.notified())
            .await
            .unwrap_or_else(|_| panic!("still waiting for {what} after {HANG_GUARD:?}"));
    }
}

struct Launcher {
    seen: Arc<Mutex<Seen>>,
}

impl VatLauncher for Launcher {
    fn launch(&mut self, request: ocap_kernel::LaunchRequest) -> Result<LaunchedVat, String> {
        let config: &VatConfig = &request.config;
        let seen = self.seen.clone();
        let kind = config.source_spec.clone().unwrap_or_default();
        // The boss keeps the facet's vref from bootstrap and uses it on command.
        let mut facet: Option<String> = None;
        let mut next = 100;
        let script = Box::new(move |d: &VatDelivery, sys: &mut dyn ocap_kernel::vat::SyscallHandler| {
            match d {
                VatDelivery::Message { methargs, result, .. } => {
                    let (method, args) = ocap_kernel::testing::decode_methargs(methargs).ok_or("bad methargs")?;
                    let mut call = |facet: &Option<String>, m: &str, body_args: &str, slots: &[&str]| {
                        next += 1;
                        let p = format!("p+{next}");
                        let target = facet.clone().unwrap_or_else(|| "o-1".into());
                        sys.syscall(VatSyscall::Send {
                            target,
                            methargs: vdata(&format!("#[\"{m}\",[{body_args}]]"), slots),
                            result: Some(p.clone()),
                        });
                        sys.syscall(VatSyscall::Subscribe(p));
                    };
                    match method.as_str() {
                        "bootstrap" => {
                            let mut s = seen.lock().unwrap();
                            s.bootstraps += 1;
                            s.changed.notify_one();
                            drop(s);
                            if kind == "boss" {
                                facet = methargs.slots.last().cloned();
                            }
                        }
                        "launch" => call(
                            &facet,
                            "launchSubcluster",
                            r#"{"bootstrap":"w","vats":{"w":{"sourceSpec":"worker"}}}"#,
                            &[],
                        ),
                        "terminate" => {
                            let Some(Value::String(id)) = args.first() else { return Err("no id".into()) };
                            call(&facet, "terminateSubcluster", &format!("\"{id}\""), &[]);
                        }
                        "useFacet" => {
                            // A non-system vat given the facet by the host tries to use it.
                            facet = methargs.slots.first().cloned();
                            call(&facet, "getStatus", "", &[]);
                        }
                        _ => {}
                    }
                    if let Some(r) = result {
                        sys.syscall(resolve(r, false, "#\"ok\"", &[]));
                    }
                }
                VatDelivery::Notify(rs) => {
                    let mut s = seen.lock().unwrap();
                    for r in rs {
                        s.notifies.push(r.data.body.clone());
                    }
                    s.changed.notify_one();
                }
                _ => {}
            }
            Ok(())
        });
        Ok(LaunchedVat {
            endpoint: Box::new(ScriptedVat::new(script).0),
            vatstore_sets: vec![],
            vatstore_deletes: vec![],
        })
    }
}

fn sys(name: &str, kind: &str) -> SystemSubclusterConfig {
    SystemSubclusterConfig {
        name: name.into(),
        config: ClusterConfig::from_json(&format!(
            r#"{{"bootstrap":"boss","services":["kernelFacet"],"vats":{{"boss":{{"sourceSpec":"{kind}"}}}}}}"#
        ))
        .unwrap(),
    }
}

fn make(db: &std::path::Path, seen: &Arc<Mutex<Seen>>, system: Vec<SystemSubclusterConfig>) -> Kernel {
    let store = Store::open(db, Durability::Process).unwrap();
    let seen = seen.clone();
    Kernel::make(store, KernelConfig { system_subclusters: system, ..Default::default() }, move |_| {
        Box::new(Launcher { seen })
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_subcluster_launches_and_terminates_another_through_the_facet() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let k = make(&dir.path().join("k.sqlite"), &seen, vec![sys("admin", "boss")]);
    let root = k.get_system_subcluster_root("admin").await.unwrap();
    k.queue_message(root, "launch", vec![]).await.unwrap().unwrap();
    wait_for(&seen, "the launch's answer", |s| !s.notifies.is_empty()).await;
    let launched = seen.lock().unwrap().notifies[0].clone();
    assert!(launched.contains("\"subclusterId\":\"s2\""), "{launched}");
    assert_eq!(k.get_status().await.unwrap().subclusters.len(), 2, "the facet launched a subcluster");
    k.queue_message(root, "terminate", vec![Value::str("s2")]).await.unwrap().unwrap();
    wait_for(&seen, "the termination's answer", |s| s.notifies.len() == 2).await;
    let terminated = seen.lock().unwrap().notifies[1].clone();
    assert_eq!(terminated, "#\"#undefined\"", "{terminated}");
    assert_eq!(k.get_status().await.unwrap().subclusters.len(), 1, "the facet terminated it");
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
    k.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regular_subcluster_cannot_get_or_use_the_kernel_facet() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let k = make(&dir.path().join("k.sqlite"), &seen, vec![]);
    let asks =
        ClusterConfig::from_json(r#"{"bootstrap":"a","services":["kernelFacet"],"vats":{"a":{"sourceSpec":"x"}}}"#)
            .unwrap();
    let err = k.launch_subcluster(asks).await.unwrap_err();
    assert_eq!(err.to_string(), "no registered kernel service 'kernelFacet'");
    // Handed the facet's kref anyway, a regular vat's calls are refused at invocation.
    let plain = ClusterConfig::from_json(r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":"x"}}}"#).unwrap();
    let r = k.launch_subcluster(plain).await.unwrap();
    let facet = k.with_store(|s| Ok(s.get_kv("service.kernelFacet")?)).await.unwrap().unwrap().parse().unwrap();
    k.queue_message(r.root_kref, "useFacet", vec![Value::presence(facet, None)]).await.unwrap().unwrap();
    wait_for(&seen, "the refusal", |s| !s.notifies.is_empty()).await;
    let answer = seen.lock().unwrap().notifies[0].clone();
    assert!(answer.contains("DELIVERY_FAILED") && answer.contains("no registered kernel service"), "{answer}");
    k.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_subclusters_survive_restarts_without_rebootstrap_and_go_when_undeclared() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.sqlite");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let k = make(&db, &seen, vec![sys("admin", "boss"), sys("extra", "boss")]);
    let root = k.get_system_subcluster_root("admin").await.unwrap();
    wait_for(&seen, "both system subclusters' bootstraps", |s| s.bootstraps == 2).await;
    k.stop().await.unwrap();
    assert_eq!(seen.lock().unwrap().bootstraps, 2);
    for _ in 0..3 {
        let k = make(&db, &seen, vec![sys("admin", "boss"), sys("extra", "boss")]);
        assert_eq!(k.get_system_subcluster_root("admin").await.unwrap(), root);
        assert_eq!(k.system_report.restored, vec!["admin".to_string(), "extra".to_string()]);
        k.stop().await.unwrap();
    }
    assert_eq!(seen.lock().unwrap().bootstraps, 2, "bootstrap is not re-run on restart");
    // Drop "extra" from the declarations: it is gone after the next boot.
    let k = make(&db, &seen, vec![sys("admin", "boss")]);
    assert_eq!(k.system_report.removed, vec!["extra".to_string()]);
    assert!(k.get_system_subcluster_root("extra").await.is_err());
    let status = k.get_status().await.unwrap();
    assert!(status.subclusters.len() == 1 && status.vats.len() == 1, "{status:?}");
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
    k.stop().await.unwrap();
    // A changed declaration under the same name is reported, not silently ignored (G8).
    let mut changed = sys("admin", "boss");
    changed.config.force_reset = Some(true);
    let k = make(&db, &seen, vec![changed]);
    assert_eq!(k.system_report.changed, vec!["admin".to_string()]);
    assert_eq!(k.get_system_subcluster_root("admin").await.unwrap(), root);
    k.stop().await.unwrap();
}

#[test]
fn duplicate_system_subcluster_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("k.sqlite"), Durability::Process).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let r = Kernel::make(
        store,
        KernelConfig { system_subclusters: vec![sys("a", "boss"), sys("a", "boss")], ..Default::default() },
        move |_| Box::new(Launcher { seen }),
    );
    let err = r.err().expect("refused").to_string();
    assert!(err.contains("duplicate system subcluster name \"a\""), "{err}");
}

#[test]
fn kernel_state_machine_runs_then_stops() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let k = make(&dir.path().join("k.sqlite"), &seen, vec![]);
    assert_eq!(k.state(), ocap_kernel::KernelState::Running);
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(k.stop()).unwrap();
    assert_eq!(k.state(), ocap_kernel::KernelState::Stopped);
}
