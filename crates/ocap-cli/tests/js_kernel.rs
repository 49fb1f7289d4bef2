//! The host-facing kernel with real JS vats: durability across restarts and across a
//! SIGKILL of the kernel process (host-surface.md §1, architecture "Non-negotiable").

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ocap_kernel::config::ClusterConfig;
use ocap_kernel::smallcaps::{kunser, Value};
use ocap_kernel::store::{Durability, Store};
use ocap_kernel::{Kernel, KernelConfig, SystemSubclusterConfig};
use ocap_vat::{JsVatLauncher, LauncherOptions};

fn vats_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vats")
}

fn counter_cluster() -> ClusterConfig {
    ClusterConfig::from_json(r#"{"bootstrap":"counter","vats":{"counter":{"sourceSpec":"counter.js"}}}"#).unwrap()
}

fn make(db: &Path, system: Vec<SystemSubclusterConfig>) -> Kernel {
    let store = Store::open(db, Durability::Process).unwrap();
    Kernel::make(store, KernelConfig { system_subclusters: system, ..Default::default() }, |sink| {
        Box::new(JsVatLauncher::new(sink, LauncherOptions { base_dir: Some(vats_dir()), ..Default::default() }))
    })
    .unwrap()
}

async fn number(k: &Kernel, target: ocap_kernel::KRef, method: &str) -> f64 {
    match kunser(&k.queue_message(target, method, vec![]).await.unwrap().unwrap()).unwrap() {
        Value::Number(n) => n,
        v => panic!("{v:?}"),
    }
}

/// A kernel restarted three times keeps a durable counter and its system-subcluster root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_three_times_the_kernel_keeps_a_durable_counter_and_system_roots() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.sqlite");
    let system = || vec![SystemSubclusterConfig { name: "counters".into(), config: counter_cluster() }];
    let k = make(&db, system());
    let root = k.get_system_subcluster_root("counters").await.unwrap();
    assert_eq!(number(&k, root, "increment").await, 1.0);
    k.stop().await.unwrap();
    for round in 2..=4 {
        let k = make(&db, system());
        assert!(k.resume_failures.is_empty(), "{:?}", k.resume_failures);
        assert_eq!(k.get_system_subcluster_root("counters").await.unwrap(), root);
        assert_eq!(number(&k, root, "increment").await, round as f64);
        assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
        k.stop().await.unwrap();
    }
}

/// A launch that fails in its second vat leaves no vats, rows or workers behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_failing_in_its_second_vat_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let k = make(&dir.path().join("k.sqlite"), vec![]);
    let c = ClusterConfig::from_json(
        r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":"counter.js"},"b":{"sourceSpec":"missing.js"}}}"#,
    )
    .unwrap();
    let err = k.launch_subcluster(c).await.unwrap_err().to_string();
    assert!(err.starts_with("Failed to launch vat v2 (b)"), "{err}");
    let counts = k
        .with_store(|s| {
            let c = s.connection();
            let n = |t: &str| c.query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get::<_, i64>(0));
            // Kernel-owned objects (the kernel facet service) are not the launch's.
            Ok(["vats", "subclusters", "clist", "objects WHERE owner IS NOT 'kernel'", "vatstore", "run_queue"]
                .map(|t| n(t).unwrap_or(-1)))
        })
        .await
        .unwrap();
    assert_eq!(counts, [0; 6]);
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
    k.stop().await.unwrap();
}

const CHILD_ENV: &str = "OCAP_CRASH_CHILD_DB";

/// The child half of the SIGKILL test: increments forever, printing each acknowledged count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Ok(db) = std::env::var(CHILD_ENV) else { return };
    let k = make(Path::new(&db), vec![]);
    let root = k.launch_subcluster(counter_cluster()).await.unwrap().root_kref;
    println!("root {root}");
    loop {
        let n = number(&k, root, "increment").await;
        println!("acked {n}");
    }
}

/// A kernel process killed with SIGKILL in the middle of a stream of messages comes back,
/// and every message the host had been told was done is still done, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_with_sigkill_mid_stream_the_kernel_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.sqlite");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut root = None;
    let mut acked = 0.0;
    while let Some(Ok(line)) = lines.next() {
        // The test harness may print its own prefix on the first line.
        if let Some(i) = line.find("root ") {
            root = Some(line[i + 5..].trim().parse::<ocap_kernel::KRef>().unwrap());
        } else if let Some(n) = line.strip_prefix("acked ") {
            acked = n.parse().unwrap();
            if acked >= 40.0 {
                break;
            }
        }
    }
    // SIGKILL: no chance to clean up.
    child.kill().unwrap();
    child.wait().unwrap();
    let root = root.expect("the child launched its counter");
    assert!(acked >= 40.0);
    let k = make(&db, vec![]);
    assert!(k.resume_failures.is_empty());
    let after = number(&k, root, "read").await;
    // Every acknowledged increment is there; at most the one in flight (committed but not
    // yet acknowledged) on top; nothing applied twice.
    assert!(after == acked || after == acked + 1.0, "acked {acked}, counter after restart {after}");
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
    k.stop().await.unwrap();
}
