//! Subclusters with scripted vats: launch and bootstrap, rollback of a failed launch,
//! termination, relaunch and resume (host-surface.md §3; gaps G2, G9).

mod common;
use common::*;

use std::collections::HashMap;
use std::sync::Arc;

use ocap_kernel::config::{ClusterConfig, VatConfig};
use ocap_kernel::smallcaps::Value;
use ocap_kernel::testing::{answer, decode_methargs, ScriptedVat};
use ocap_kernel::vat::VatDelivery;
use ocap_kernel::{KernelService, LaunchedVat, ServiceReply, VatId, VatLauncher};

/// Starts scripted vats by the `sourceSpec` name; `fail:` names fail to start.
struct Launcher {
    logs: HashMap<String, ocap_kernel::testing::DeliveryLog>,
    launches: Vec<(VatId, String, usize)>,
}

impl VatLauncher for Launcher {
    fn launch(&mut self, request: ocap_kernel::LaunchRequest) -> Result<LaunchedVat, String> {
        let (vat, name, config, vatstore): (VatId, &str, &VatConfig, _) =
            (request.vat, &request.name, &request.config, &request.vatstore);
        let spec = config.source_spec.clone().unwrap_or_default();
        if spec.starts_with("fail:") {
            return Err(format!("cannot load {spec}"));
        }
        self.launches.push((vat, name.to_string(), vatstore.len()));
        let (vat, log) = ScriptedVat::new(answer(|m, args| match m {
            "bootstrap" => Ok(Value::Array(args.to_vec())),
            _ => Ok(Value::str(m)),
        }));
        self.logs.insert(name.to_string(), log);
        Ok(LaunchedVat {
            endpoint: Box::new(vat),
            vatstore_sets: vec![("started".into(), name.into())],
            vatstore_deletes: vec![],
        })
    }
}

fn launcher() -> Launcher {
    Launcher { logs: HashMap::new(), launches: Vec::new() }
}

fn config(json: &str) -> ClusterConfig {
    ClusterConfig::from_json(json).unwrap()
}

struct Nop;
impl KernelService for Nop {
    fn invoke(&self, _m: &str, _a: Vec<Value>, reply: ServiceReply) {
        reply.resolve(Value::Null);
    }
}

#[test]
fn launch_starts_vats_in_order_and_bootstraps_with_roots_and_services() {
    let mut k = kernel();
    k.core.register_service("clock", Arc::new(Nop)).unwrap();
    let mut l = launcher();
    let c = config(
        r#"{"bootstrap":"main","services":["clock"],"vats":{"main":{"sourceSpec":"m.js"},"helper":{"sourceSpec":"h.js"}}}"#,
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let launch = k.core.start_subcluster(&c, &mut l, None, Some(Box::new(move |r| drop(tx.send(r))))).unwrap();
    k.run();
    assert_eq!(launch.subcluster_id, "s1");
    assert_eq!(
        l.launches.iter().map(|(v, n, _)| (v.to_string(), n.clone())).collect::<Vec<_>>(),
        vec![("v1".into(), "main".into()), ("v2".into(), "helper".into())]
    );
    let boot = l.logs["main"].all();
    let VatDelivery::Message { methargs, .. } = &boot[0] else { panic!("{boot:?}") };
    let (method, args) = decode_methargs(methargs).unwrap();
    assert_eq!(method, "bootstrap");
    let Value::Record(vats) = &args[0] else { panic!("{args:?}") };
    assert_eq!(vats.keys().collect::<Vec<_>>(), vec!["helper", "main"]);
    let Value::Record(services) = &args[1] else { panic!("{args:?}") };
    assert!(services.contains_key("clock"));
    assert!(rx.try_recv().unwrap().is_ok());
    assert_eq!(k.core.store().vatstore_get(VatId(1), "started").unwrap().as_deref(), Some("main"));
    k.check();
}

/// Gap G2: a launch that fails in its second vat leaves no vats, rows or workers behind.
#[test]
fn failed_launch_in_second_vat_leaves_nothing_behind() {
    let mut k = kernel();
    let mut l = launcher();
    let c = config(r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":"a.js"},"b":{"sourceSpec":"fail:b.js"}}}"#);
    let err = k.core.start_subcluster(&c, &mut l, None, None).unwrap_err().to_string();
    assert_eq!(err, "Failed to launch vat v2 (b): cannot load fail:b.js");
    k.run();
    for table in ["vats", "subclusters", "clist", "objects", "promises", "vatstore", "run_queue"] {
        assert_eq!(k.count(&format!("SELECT COUNT(*) FROM {table}")), 0, "{table} is empty");
    }
    assert!(!k.core.is_vat_attached(VatId(1)));
    k.check();
}

#[test]
fn missing_and_system_only_services_are_refused_alike() {
    let mut k = kernel();
    k.core.register_system_service("kernelFacet", Arc::new(Nop)).unwrap();
    let mut l = launcher();
    for name in ["kernelFacet", "nonesuch"] {
        let c = config(&format!(r#"{{"bootstrap":"a","services":["{name}"],"vats":{{"a":{{"sourceSpec":"a.js"}}}}}}"#));
        let err = k.core.start_subcluster(&c, &mut l, None, None).unwrap_err().to_string();
        assert_eq!(err, format!("no registered kernel service '{name}'"));
    }
    assert!(l.launches.is_empty(), "nothing started");
    // A system subcluster may have the system-only one.
    let c = config(r#"{"bootstrap":"a","services":["kernelFacet"],"vats":{"a":{"sourceSpec":"a.js"}}}"#);
    k.core.start_subcluster(&c, &mut l, Some("sys"), None).unwrap();
    k.run();
    k.check();
}

#[test]
fn terminate_subcluster_terminates_its_vats_and_deletes_it() {
    let mut k = kernel();
    let mut l = launcher();
    let c = config(r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":"a.js"},"b":{"sourceSpec":"b.js"}}}"#);
    let launch = k.core.start_subcluster(&c, &mut l, None, None).unwrap();
    k.run();
    k.core.terminate_subcluster(&launch.subcluster_id).unwrap();
    k.run();
    assert_eq!(k.count("SELECT COUNT(*) FROM vats"), 0);
    assert_eq!(k.count("SELECT COUNT(*) FROM subclusters"), 0);
    assert!(k.core.terminate_subcluster("s1").unwrap_err().to_string().contains("does not exist"));
    k.check();
}

/// Gap G9: after a restart, vats come back from their persisted state; one that fails is
/// reported and the others still start.
#[test]
fn resume_brings_vats_back_and_reports_failures() {
    let mut k = kernel();
    let mut l = launcher();
    let c = config(r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":"a.js"},"b":{"sourceSpec":"b.js"}}}"#);
    let launch = k.core.start_subcluster(&c, &mut l, None, None).unwrap();
    k.run();
    let a_root = launch.root;
    let mut k = k.restart();
    // Make b's config unloadable, as if its bundle vanished.
    k.core
        .store()
        .connection()
        .execute("UPDATE vats SET config = '{\"sourceSpec\":\"fail:gone.js\"}' WHERE id = 'v2'", [])
        .unwrap();
    let mut l = launcher();
    let failures = k.core.resume_vats(&mut l).unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].0, VatId(2));
    assert_eq!(l.launches, vec![(VatId(1), "a".to_string(), 1)], "a came back with its vatstore");
    assert_eq!(ok_value(k.call(a_root, "hello", vec![])), Value::str("hello"));
    assert!(l.logs["a"].methods() == vec!["hello"], "bootstrap is not re-run");
    k.check();
}
