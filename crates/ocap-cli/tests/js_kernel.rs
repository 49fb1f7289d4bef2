//! The host-facing kernel with real JS vats: durability across restarts and across a
//! SIGKILL of the kernel process, the daemon (host-surface.md §1, architecture
//! "Non-negotiable").

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ocap_kernel::config::ClusterConfig;
use ocap_kernel::smallcaps::{kunser, Value};
use ocap_kernel::{Kernel, KernelConfig, SystemSubclusterConfig};
use serde_json::{json, Value as Json};

mod common;

fn counter_cluster() -> ClusterConfig {
    ClusterConfig::from_json(r#"{"bootstrap":"counter","vats":{"counter":{"sourceSpec":"counter.js"}}}"#).unwrap()
}

fn make(db: &Path, system: Vec<SystemSubclusterConfig>) -> Kernel {
    common::js_kernel(db, KernelConfig { system_subclusters: system, ..Default::default() }, common::test_vats())
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
            let rows = s.row_counts()?;
            let n =
                |t: &str| rows.iter().find(|(name, _)| name == t).map(|(_, n)| *n).unwrap_or_else(|| panic!("no {t}"));
            // Kernel-owned objects (the kernel facet service) are not the launch's.
            let objects = s.object_rows(None)?.iter().filter(|o| o.owner.as_deref() != Some("kernel")).count() as u64;
            Ok([n("vats"), n("subclusters"), n("clist"), objects, n("vatstore"), n("run_queue")])
        })
        .await
        .unwrap();
    assert_eq!(counts, [0; 6]);
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
    k.stop().await.unwrap();
}

/// Only guards against a hang: the waits it bounds end on an event long before.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// A daemon home (a short path: a socket path must fit in 107 bytes) whose daemon is
/// killed when the test ends, also when it fails.
struct DaemonHome {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl DaemonHome {
    fn new() -> DaemonHome {
        let tmp = tempfile::Builder::new().prefix("ocap-k").tempdir_in("/tmp").unwrap();
        let dir = tmp.path().join("home");
        DaemonHome { _tmp: tmp, dir }
    }

    /// `ocap --json <args>`, which must succeed; its JSON output.
    fn ocap(&self, args: &[&str]) -> Json {
        let out = Command::new(env!("CARGO_BIN_EXE_ocap"))
            .arg("--home")
            .arg(&self.dir)
            .arg("--json")
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("OCAP_HOME")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ocap {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("ocap {args:?} printed non-JSON: {e}"))
    }

    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("daemon.lock")).ok()?.trim().parse().ok()
    }
}

impl Drop for DaemonHome {
    fn drop(&mut self) {
        if let Some(pid) = self.pid().filter(|p| alive(*p)) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next()), Some("Z" | "X")),
        Err(_) => false,
    }
}

/// One JSON-RPC call to the daemon: its `result`, or why there is none (the daemon is gone).
fn rpc(socket: &Path, method: &str, params: Json) -> Result<Json, String> {
    let mut s = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let req = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    s.write_all(format!("{req}\n").as_bytes()).map_err(|e| format!("write: {e}"))?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).map_err(|e| format!("read: {e}"))?;
    let reply: Json = serde_json::from_str(reply.trim()).map_err(|e| format!("reply {reply:?}: {e}"))?;
    match reply.get("result") {
        Some(r) => Ok(r.clone()),
        None => Err(format!("error reply: {reply}")),
    }
}

/// The number a `queueMessage` result holds (CapData `{"body": "#N", ...}`).
fn count_of(result: &Json) -> u64 {
    let body = result["body"].as_str().unwrap_or_else(|| panic!("not CapData: {result}"));
    body.strip_prefix('#').and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("not a count: {result}"))
}

/// A kernel process (the daemon) killed with SIGKILL in the middle of a stream of messages
/// comes back, and every message the host had been told was done is still done, exactly once.
#[test]
fn killed_with_sigkill_mid_stream_the_kernel_loses_nothing_acknowledged() {
    let home = DaemonHome::new();
    home.ocap(&["daemon", "start"]);
    let pid = home.pid().expect("the lock file holds the daemon's pid");
    let cluster = home._tmp.path().join("counter.json");
    let counter = common::test_vats().join("counter.js");
    let config = json!({"bootstrap": "counter", "vats": {"counter": {"sourceSpec": counter}}});
    std::fs::write(&cluster, config.to_string()).unwrap();
    let launched = home.ocap(&["launch", cluster.to_str().unwrap()]);
    let root = launched["rootKref"].as_str().expect("a root kref").to_owned();
    let socket = home.dir.join("daemon.sock");

    // The host: increments one at a time, reporting every acknowledged count, until the
    // daemon stops answering.
    let (acks_tx, acks) = std::sync::mpsc::channel();
    let host = {
        let (socket, root) = (socket.clone(), root.clone());
        std::thread::spawn(move || loop {
            match rpc(&socket, "queueMessage", json!([root, "increment", []])) {
                Ok(r) => acks_tx.send(count_of(&r)).unwrap(),
                Err(e) => return e,
            }
        })
    };
    let mut acked = 0;
    while acked < 40 {
        acked = acks.recv_timeout(HANG_GUARD).expect("the daemon acknowledges increments");
    }
    // SIGKILL, with messages in flight: no chance to clean up.
    let status = Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(status.success());
    let why = host.join().unwrap();
    // Acknowledgements that arrived before the kill took effect count too.
    acked = acks.try_iter().fold(acked, u64::max);
    assert!(acked >= 40, "{why}");
    // The host saw the daemon go; the process itself is gone a moment later.
    let deadline = Instant::now() + HANG_GUARD;
    while alive(pid) {
        assert!(Instant::now() < deadline, "daemon {pid} still alive after SIGKILL");
        std::thread::sleep(Duration::from_millis(5));
    }

    home.ocap(&["daemon", "start"]);
    assert_ne!(home.pid(), Some(pid), "a new daemon");
    let after = count_of(&rpc(&socket, "queueMessage", json!([root, "read", []])).unwrap());
    // Every acknowledged increment is there; at most the one in flight (committed but not
    // yet acknowledged) on top; nothing applied twice.
    assert!(after == acked || after == acked + 1, "acked {acked}, counter after restart {after}");
    assert_eq!(rpc(&socket, "checkInvariants", json!([])).unwrap(), json!({"ok": true}));
    home.ocap(&["daemon", "stop"]);
}
