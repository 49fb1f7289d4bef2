//! `ocap bench` as a user runs it: each workload prints one JSON line with its figure, and
//! the command leaves nothing behind in the temporary directory (it used to leave the bench
//! vat's bundle there on every run: hundreds of them on a machine that benchmarks often).

use std::process::Command;

#[test]
fn bench_prints_a_figure_per_workload_and_leaves_no_files_behind() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = Command::new(env!("CARGO_BIN_EXE_ocap"))
        .args(["bench", "host-to-vat", "remote-seq", "--n", "5", "--runs", "1", "--json"])
        .env("TMPDIR", tmp.path())
        .output()
        .expect("run ocap bench");
    assert!(out.status.success(), "ocap bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let workloads: Vec<&str> = lines.iter().map(|l| l["workload"].as_str().expect("workload")).collect();
    assert_eq!(workloads, ["host-to-vat", "remote-seq"]);
    for l in &lines {
        assert!(l["median"].as_f64().is_some_and(|m| m > 0.0), "no figure: {l}");
        assert_eq!(l["n"], 5, "{l}");
    }
    let left: Vec<_> = std::fs::read_dir(tmp.path()).expect("read tmp").map(|e| e.expect("entry").path()).collect();
    assert!(left.is_empty(), "ocap bench left files behind: {left:?}");
}
