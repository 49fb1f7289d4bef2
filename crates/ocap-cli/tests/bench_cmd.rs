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
        // The machine's stolen time beside each figure, where the OS counts it (Linux).
        if std::path::Path::new("/proc/stat").exists() {
            assert!(l["steal_pct"].as_f64().is_some_and(|p| (0.0..=100.0).contains(&p)), "no steal share: {l}");
        }
    }
    let left: Vec<_> = std::fs::read_dir(tmp.path()).expect("read tmp").map(|e| e.expect("entry").path()).collect();
    assert!(left.is_empty(), "ocap bench left files behind: {left:?}");
}

/// `--timeline FILE`: the spans of the last run, per thread, within its timed window, and a
/// table of busy % per 25 ms on stderr.
#[test]
fn a_timeline_shows_each_kernel_and_vat_thread_at_work_in_the_timed_window() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("timeline.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_ocap"))
        .args(["bench", "vat-to-vat-pipelined", "--n", "50", "--runs", "2", "--json", "--timeline"])
        .arg(&file)
        .output()
        .expect("run ocap bench");
    assert!(out.status.success(), "ocap bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("timeline of vat-to-vat-pipelined"), "{stderr}");
    assert!(stderr.contains("busy % per 25 ms bin"), "{stderr}");
    let csv = std::fs::read_to_string(&file).expect("the timeline file");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("workload,thread,kind,start_us,end_us"));
    let rows: Vec<Vec<String>> = lines.map(|l| l.split(',').map(str::to_owned).collect()).collect();
    assert!(rows.iter().all(|r| r.len() == 5 && r[0] == "vat-to-vat-pipelined"), "{csv}");
    let threads = |kind: &str| {
        let mut t: Vec<&str> = rows.iter().filter(|r| r[2] == kind).map(|r| r[1].as_str()).collect();
        t.sort_unstable();
        t.dedup();
        t
    };
    // Two vats delivered, on two threads (of the last run only: each run has its own); the
    // one run loop stepped and waited for them.
    let deliveries = threads("delivery");
    assert_eq!(deliveries.len(), 2, "{csv}");
    assert!(deliveries.iter().all(|t| t.starts_with("vat-")), "{csv}");
    let steps = threads("step");
    assert_eq!(steps.len(), 1, "{csv}");
    assert!(steps[0].starts_with("ocap-run-loop#"), "{csv}");
    assert_eq!(threads("wait-vat"), steps, "{csv}");
    for r in &rows {
        let (start, end): (u64, u64) = (r[3].parse().expect("start"), r[4].parse().expect("end"));
        assert!(start <= end, "{r:?}");
    }
}
