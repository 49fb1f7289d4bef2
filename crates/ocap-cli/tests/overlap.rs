//! Overlapping deliveries to different vats (issue 15 item 1; `docs/cranks.md`,
//! `ocap-kernel/src/core/overlap.rs`): random workloads of real JS vats run twice, with
//! deliveries overlapped and one at a time, and must end the same: every table of the store
//! row for row, the order in which each vat received its calls, and what the host got back.
//!
//! The workload runs inside the vats (the host sends one `run(script)`), so the kernel's own
//! scheduling is the only thing that orders it: two runs differ only by overlap.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::Path;

use ocap_kernel::config::ClusterConfig;
use ocap_kernel::smallcaps::{kunser, Value};
use ocap_kernel::{KRef, Kernel, KernelConfig, KernelOptions};
use proptest::prelude::*;

/// Vats in the test's subcluster.
const VATS: usize = 4;

/// One operation of a script (`mix.js`'s `step`), started from a vat chosen round robin.
#[derive(Debug, Clone)]
enum Op {
    /// Every vat's peers pinged `n` times, all at once.
    Fan(u8),
    /// A chain of calls through the vats, `depth` long.
    Chain(u8),
    /// A call pipelined on the result of another (`E(E(peer).make(i)).add(1)`).
    Pipe(u8, u8),
    /// A promise passed as an argument, resolved after the call was sent.
    Promise(u8, u8),
    /// `n` objects made by a peer, passed back and dropped.
    Many(u8, u8),
    /// A call that throws.
    Fail(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u8..4).prop_map(Op::Fan),
        2 => (0u8..6).prop_map(Op::Chain),
        2 => (any::<u8>(), 0u8..50).prop_map(|(to, i)| Op::Pipe(to, i)),
        2 => (any::<u8>(), 0u8..50).prop_map(|(to, v)| Op::Promise(to, v)),
        1 => (any::<u8>(), 1u8..20).prop_map(|(to, n)| Op::Many(to, n)),
        1 => any::<u8>().prop_map(Op::Fail),
    ]
}

fn step(op: &str, a: u8, b: u8) -> Value {
    Value::Array(vec![Value::String(op.into()), Value::Number(a.into()), Value::Number(b.into())])
}

fn script(ops: &[Op]) -> Value {
    Value::Array(
        ops.iter()
            .map(|o| match *o {
                Op::Fan(n) => step("fan", n, 0),
                Op::Chain(d) => step("chain", d, 0),
                Op::Pipe(to, i) => step("pipe", to, i),
                Op::Promise(to, v) => step("promise", to, v),
                Op::Many(to, n) => step("many", to, n),
                Op::Fail(to) => step("fail", to, 0),
            })
            .collect(),
    )
}

/// What a run ends with.
#[derive(Debug, PartialEq)]
struct Ending {
    /// The host's results: the script's, then each vat's log of received calls.
    results: Vec<String>,
    /// Every table of the store: its rows, each as text, in rowid order.
    tables: BTreeMap<String, Vec<String>>,
}

fn dump(db: &Path) -> BTreeMap<String, Vec<String>> {
    let conn = rusqlite::Connection::open(db).expect("open the store");
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("table names");
    names
        .into_iter()
        .map(|name| {
            let mut stmt = conn.prepare(&format!("SELECT * FROM \"{name}\"")).expect("select");
            let width = stmt.column_count();
            let rows: Vec<String> = stmt
                .query_map([], |r| {
                    let cells: Vec<String> = (0..width).map(|i| cell(r, i)).collect();
                    Ok(cells.join(" | "))
                })
                .and_then(|rows| rows.collect())
                .expect("rows");
            (name, rows)
        })
        .collect()
}

fn cell(r: &rusqlite::Row<'_>, i: usize) -> String {
    use rusqlite::types::ValueRef;
    match r.get_ref(i) {
        Ok(ValueRef::Null) => "NULL".into(),
        Ok(ValueRef::Integer(n)) => n.to_string(),
        Ok(ValueRef::Real(x)) => x.to_string(),
        Ok(ValueRef::Text(t)) => String::from_utf8_lossy(t).into_owned(),
        Ok(ValueRef::Blob(b)) => format!("{b:?}"),
        Err(e) => format!("<{e}>"),
    }
}

fn text(result: Result<ocap_kernel::HostResult, ocap_kernel::KernelError>) -> String {
    match result {
        Ok(Ok(v)) => format!("ok {:?}", kunser(&v)),
        Ok(Err(v)) => format!("rejected {:?}", kunser(&v)),
        Err(e) => format!("kernel error {e}"),
    }
}

/// Launches the test's subcluster of `mix.js` vats (v0 bootstraps and introduces them to each
/// other) and returns v0's root.
async fn launch_mix(kernel: &Kernel) -> KRef {
    let vats: Vec<String> = (0..VATS)
        .map(|i| format!("\"v{i}\":{{\"sourceSpec\":\"mix.js\",\"parameters\":{{\"name\":\"v{i}\"}}}}"))
        .collect();
    let cluster = ClusterConfig::from_json(&format!("{{\"bootstrap\":\"v0\",\"vats\":{{{}}}}}", vats.join(",")))
        .expect("cluster config");
    let launched = kernel.launch_subcluster(cluster).await.expect("launch");
    assert_eq!(kunser(&launched.bootstrap_result).ok(), Some(Value::Number(VATS as f64)));
    launched.root_kref
}

fn run(ops: &[Op], overlap: bool) -> Ending {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("kernel.sqlite");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let results = rt.block_on(async {
        let config = KernelConfig {
            options: KernelOptions { overlap_deliveries: overlap, ..Default::default() },
            ..Default::default()
        };
        let kernel = js_kernel(&db, config, test_vats());
        let root = launch_mix(&kernel).await;
        let mut results = vec![text(kernel.queue_message(root, "run", vec![script(ops)]).await)];
        let mut roots: Vec<KRef> = Vec::new();
        for vat in kernel.get_vats().await.expect("vats") {
            roots.push(kernel.pin_vat_root(vat.id).await.expect("vat root"));
        }
        for root in roots {
            results.push(text(kernel.queue_message(root, "log", vec![]).await));
        }
        kernel.collect_garbage().await.expect("collect garbage");
        assert_eq!(kernel.check_invariants().await.expect("check"), Ok(()));
        kernel.stop().await.expect("stop");
        results
    });
    Ending { results, tables: dump(&db) }
}

/// A stream of cranks that each choose the next does not keep host calls out: the run loop
/// holds them back only until the chosen crank has run, and no crank chooses another while
/// they wait (`kernel/run_loop.rs`). The vats here pass messages on forever, four chains at
/// once, so the queue always holds an item that could be chosen.
///
/// And the other way round: cranks get in while a host posts call after call. On one core a
/// caller woken by an answer runs before the loop looks for more work and posts its next call
/// in time, every time; a loop that ran every command it could find before the next crank
/// never ran one (found by CI under load). So the test runs on one core: its threads, the
/// run loop's and the vats' inherit this thread's affinity.
#[test]
fn host_calls_get_in_while_vats_stream_messages() {
    pin_to_one_cpu();
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        // No reaps (they would let host calls in now and then anyway).
        let options = KernelOptions { default_reap_interval_deliveries: u64::MAX, ..Default::default() };
        let kernel =
            js_kernel(&dir.path().join("kernel.sqlite"), KernelConfig { options, ..Default::default() }, test_vats());
        let root = launch_mix(&kernel).await;
        let started = kernel.queue_message(root, "spam", vec![]).await.expect("spam");
        assert_eq!(started.ok().and_then(|v| kunser(&v).ok()), Some(Value::Number(VATS as f64)));
        // Host calls while the stream runs: each must be answered (a hang is the failure;
        // the bound only turns it into a test failure instead of a stuck test).
        let bound = std::time::Duration::from_secs(30);
        for _ in 0..5 {
            let status = tokio::time::timeout(bound, kernel.get_status()).await.expect("status answered");
            assert!(status.expect("status").crank_count > 0);
            let vats = tokio::time::timeout(bound, kernel.get_vats()).await.expect("vats answered");
            assert_eq!(vats.expect("vats").len(), VATS);
        }
        // The stream is still running: cranks go on between the host's calls.
        let before = kernel.get_status().await.expect("status").crank_count;
        let mut advanced = false;
        for _ in 0..1000 {
            let now = tokio::time::timeout(bound, kernel.get_status()).await.expect("status answered");
            if now.expect("status").crank_count > before {
                advanced = true;
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(advanced, "the stream stopped");
        tokio::time::timeout(bound, kernel.stop()).await.expect("stop answered").expect("stop");
    });
}

/// Limits this thread, and the threads it starts from now on, to the first CPU it may use
/// (Linux; elsewhere the test runs unpinned).
#[cfg(not(target_os = "linux"))]
fn pin_to_one_cpu() {}

/// Limits this thread, and the threads it starts from now on, to the first CPU it may use.
#[cfg(target_os = "linux")]
fn pin_to_one_cpu() {
    // SAFETY: `cpu_set_t` is plain data; the calls read and write only the set passed, for
    // the calling thread (pid 0).
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        assert_eq!(libc::sched_getaffinity(0, size, &mut allowed), 0, "sched_getaffinity");
        let first = (0..libc::CPU_SETSIZE as usize).find(|&c| libc::CPU_ISSET(c, &allowed)).expect("an allowed CPU");
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(first, &mut one);
        assert_eq!(libc::sched_setaffinity(0, size, &one), 0, "sched_setaffinity");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, failure_persistence: None, ..ProptestConfig::default() })]

    /// issue 15 item 1: overlapped and sequential execution of the same workload end in the
    /// same store, the same per-vat delivery order and the same results.
    #[test]
    fn overlapped_and_sequential_deliveries_end_the_same(ops in prop::collection::vec(op(), 1..12)) {
        let overlapped = run(&ops, true);
        let sequential = run(&ops, false);
        prop_assert!(overlapped.results[0].starts_with("ok"), "the script failed: {}", overlapped.results[0]);
        prop_assert_eq!(&overlapped.results, &sequential.results);
        for (table, rows) in &sequential.tables {
            prop_assert_eq!(overlapped.tables.get(table), Some(rows), "table {}", table);
        }
        prop_assert_eq!(overlapped.tables.len(), sequential.tables.len());
    }
}
