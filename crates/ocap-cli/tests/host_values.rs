//! Host-side values are exact (issue 10, item 7): JSON output prints a JS number that is an
//! integer as a JSON integer, and values nested as deep as vats exchange them reach the host
//! (kernel-core.md §7, smallcaps; `smallcaps::MAX_DEPTH`), with a clear error beyond.
//! Real JS vats (`tests/vats/deep.js`), the real kernel, the real `ocap` binary and daemon.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ocap_kernel::config::ClusterConfig;
use ocap_kernel::smallcaps::{drop_deep, kunser, SmallcapsError, Value, MAX_DEPTH};
use ocap_kernel::{KRef, Kernel, KernelConfig, KernelError};

mod common;

fn make(db: &Path) -> Kernel {
    common::js_kernel(db, KernelConfig::default(), common::test_vats())
}

/// `n` arrays around "leaf", as JSON text (what `deep.js`'s `makeDeep(n)` returns).
fn nested_text(n: usize) -> String {
    format!("{}\"leaf\"{}", "[".repeat(n), "]".repeat(n))
}

fn nested_value(n: usize) -> Value {
    let mut v = Value::str("leaf");
    for _ in 0..n {
        v = Value::Array(vec![v]);
    }
    v
}

/// How many arrays a decoded value is nested in (without recursion).
fn depth_of(v: &Value) -> usize {
    let (mut d, mut x) = (0, v);
    while let Value::Array(items) = x {
        d += 1;
        x = &items[0];
    }
    assert_eq!(x, &Value::str("leaf"));
    d
}

async fn call(k: &Kernel, target: KRef, method: &str, args: Vec<Value>) -> Value {
    let data = k.queue_message(target, method, args).await.unwrap().unwrap_or_else(|e| panic!("rejected: {}", e.body));
    kunser(&data).unwrap()
}

/// A result or argument nested up to `MAX_DEPTH` levels is decoded by the host, on the
/// runtime's ordinary worker threads; deeper, a clear error. Before the fix the host failed
/// at 128 levels ("recursion limit exceeded"), and sending deep arguments overflowed the
/// run loop's stack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_as_deep_as_vats_exchange_reach_the_host_and_deeper_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let k = make(&dir.path().join("k.sqlite"));
    let c = ClusterConfig::from_json(
        r#"{"bootstrap":"deep","vats":{"deep":{"sourceSpec":"deep.js"},"peer":{"sourceSpec":"deep.js"}}}"#,
    )
    .unwrap();
    let r = k.launch_subcluster(c).await.unwrap();
    let root = r.root_kref;
    // Vats exchange 1000 levels (and more) between themselves.
    assert_eq!(call(&k, root, "viaPeer", vec![Value::Number(1000.0)]).await, Value::Number(1000.0));
    assert_eq!(call(&k, root, "toPeer", vec![Value::Number(1000.0)]).await, Value::Number(1000.0));
    // Results, decoded by the host.
    for n in [128, 129, 1000, MAX_DEPTH] {
        let v = call(&k, root, "makeDeep", vec![Value::Number(n as f64)]).await;
        assert_eq!(depth_of(&v), n);
        drop_deep(v);
    }
    // One beyond: the vat can make it (it encodes up to about 3700), the host refuses it clearly.
    let data = k.queue_message(root, "makeDeep", vec![Value::Number((MAX_DEPTH + 1) as f64)]).await.unwrap().unwrap();
    assert_eq!(kunser(&data), Err(SmallcapsError::TooDeep(MAX_DEPTH)));
    assert_eq!(SmallcapsError::TooDeep(MAX_DEPTH).to_string(), "value is too deeply nested (limit 3000)");
    // Arguments: the message body is `[method, [arg]]`, two levels more than the argument.
    for n in [128, 1000, MAX_DEPTH - 2] {
        assert_eq!(call(&k, root, "depthOf", vec![nested_value(n)]).await, Value::Number(n as f64));
    }
    let err = k.queue_message(root, "depthOf", vec![nested_value(MAX_DEPTH - 1)]).await.unwrap_err();
    assert!(matches!(err, KernelError::BadValue(SmallcapsError::TooDeep(MAX_DEPTH))), "{err}");
    // Nothing was queued for the refused message, and the vat is still there.
    assert_eq!(call(&k, root, "depthOf", vec![nested_value(3)]).await, Value::Number(3.0));
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
    k.stop().await.unwrap();
}

fn ocap() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocap"));
    c.env_remove("RUST_LOG").env_remove("OCAP_HOME");
    c
}

fn stdout_of(out: &Output, what: &str) -> String {
    assert!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A cluster file running `deep.js` (a single vat: bootstrap returns numbers).
fn deep_cluster(dir: &Path) -> PathBuf {
    let path = dir.join("deep.json");
    let spec = common::test_vats().join("deep.js");
    std::fs::write(&path, format!(r#"{{"bootstrap":"deep","vats":{{"deep":{{"sourceSpec":{spec:?}}}}}}}"#)).unwrap();
    path
}

/// `ocap run --json` prints integers as JSON integers (`4`, not `4.0`), other numbers in
/// their shortest round-trip form, -0 as 0 (as `JSON.stringify`). Failed before the fix
/// (`[4.0,0.0,-7.0,...]`).
#[test]
fn run_json_prints_integers_as_integers() {
    let dir = tempfile::tempdir().unwrap();
    let out = ocap().args(["run", "--json"]).arg(deep_cluster(dir.path())).output().unwrap();
    let text = stdout_of(&out, "ocap run --json");
    assert!(text.contains(r#""bootstrapResult":[4,0,-7,2.5,9007199254740992,1e+21,0]"#), "{text}");
}

/// Stops the test's daemon when the test ends, failed or not.
struct Daemon {
    _tmp: tempfile::TempDir,
    home: PathBuf,
}

impl Daemon {
    fn cmd(&self) -> Command {
        let mut c = ocap();
        c.arg("--home").arg(&self.home);
        c
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.cmd().args(["daemon", "stop"]).output();
    }
}

/// `ocap send … --json` through the daemon: integers print as integers, and results and
/// arguments deeper than serde_json's 128 go through, up to `MAX_DEPTH`; beyond, a clear
/// error. Both failed before the fix (`4.0`; "recursion limit exceeded" at 128).
#[test]
fn send_json_prints_integers_and_deep_values() {
    // Short paths: the daemon's socket path must fit in a Unix socket address.
    let tmp = tempfile::Builder::new().prefix("ocap-hv").tempdir_in("/tmp").unwrap();
    let d = Daemon { home: tmp.path().join("home"), _tmp: tmp };
    let cluster = deep_cluster(d._tmp.path());
    let launched = stdout_of(&d.cmd().args(["--json", "launch"]).arg(&cluster).output().unwrap(), "launch");
    let launched: serde_json::Value = serde_json::from_str(&launched).unwrap();
    let root = launched["rootKref"].as_str().unwrap().to_owned();
    let send = |args: &[&str]| d.cmd().args(["--json", "send", &root]).args(args).output().unwrap();
    assert_eq!(stdout_of(&send(&["numbers"]), "send numbers"), "[4,0,-7,2.5,9007199254740992,1e+21,0,0.1]");
    for n in [128, 1000, MAX_DEPTH] {
        let out = send(&["makeDeep", &n.to_string()]);
        assert_eq!(stdout_of(&out, &format!("makeDeep {n}")), nested_text(n));
    }
    let out = send(&["makeDeep", &(MAX_DEPTH + 1).to_string()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("too deeply nested (limit 3000)"), "{err}");
    // Arguments, parsed by the CLI and by the daemon, encoded by the kernel.
    let out = send(&["depthOf", &nested_text(1000)]);
    assert_eq!(stdout_of(&out, "depthOf 1000"), "1000");
    let out = send(&["depthOf", &nested_text(MAX_DEPTH + 1)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("too deeply nested"), "{err}");
}
