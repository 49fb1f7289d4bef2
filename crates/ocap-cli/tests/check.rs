//! Integrity the user can check (issue 11, item 6): `ocap check` runs the kernel's invariant
//! checker on a database, directly (`--db`) or through the daemon, prints what is wrong and
//! exits 1 if anything is; `ocap daemon start --check-invariants` runs it after every crank
//! and reports the first crank that finds the store inconsistent.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value as Json;

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo/cluster.json")
}

fn ocap(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ocap"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("OCAP_HOME")
        .env_remove("RUST_LOG")
        .output()
        .expect("run ocap")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Breaks one refcount: the kind of damage a bad disk or a hand edit does.
fn corrupt(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).expect("open db");
    let id: i64 = conn.query_row("SELECT max(id) FROM objects", [], |r| r.get(0)).expect("an object");
    conn.execute("UPDATE objects SET reachable = reachable + 2, recognizable = recognizable + 2 WHERE id = ?1", [id])
        .expect("corrupt");
    format!("ko{id}")
}

#[test]
fn check_reports_a_corrupt_database_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("k.sqlite");
    let home = dir.path().join("home");
    let run =
        Command::new(env!("CARGO_BIN_EXE_ocap")).args(["run", "--db"]).arg(&db).arg(demo()).output().expect("ocap run");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let db_arg = db.display().to_string();
    let clean = ocap(&home, &["check", "--db", &db_arg]);
    assert!(clean.status.success(), "{}", stdout(&clean));
    assert!(stdout(&clean).starts_with("ok: "), "{}", stdout(&clean));

    let broken = corrupt(&db);
    let out = ocap(&home, &["check", "--db", &db_arg]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains(&format!("{broken} has counts")), "{}", stdout(&out));
    let out = ocap(&home, &["--json", "check", "--db", &db_arg]);
    assert_eq!(out.status.code(), Some(1));
    let report: Json = serde_json::from_str(&stdout(&out)).expect("JSON report");
    assert_eq!(report["ok"], false);
    assert_eq!(report["violations"].as_array().map(Vec::len), Some(1), "{report}");

    // Not a kernel database, or none at all: a clear error, not "ok".
    let readme = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md").display().to_string();
    let out = ocap(&home, &["check", "--db", &readme]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an ocap kernel database"));
    let out = ocap(&home, &["check", "--db", &dir.path().join("none.sqlite").display().to_string()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no kernel database"));
}

#[test]
fn the_daemon_checks_between_cranks_and_after_every_crank_when_asked() {
    // Short paths: a Unix socket path must fit in 107 bytes.
    let tmp = tempfile::Builder::new().prefix("ocap-c").tempdir_in("/tmp").expect("tempdir");
    let home = tmp.path().join("home");
    let ok = |args: &[&str]| {
        let out = ocap(&home, args);
        assert!(out.status.success(), "ocap {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        stdout(&out)
    };
    ok(&["daemon", "start", "--check-invariants"]);
    let launched: Json = serde_json::from_str(&ok(&["--json", "launch", &demo().display().to_string()])).unwrap();
    assert!(launched["rootKref"].is_string(), "{launched}");
    // Through the daemon, between two cranks.
    assert!(ok(&["check"]).starts_with("ok: the daemon's kernel"));
    ok(&["daemon", "stop"]);

    let broken = corrupt(&home.join("kernel.sqlite"));
    // Without the daemon: the home's database, directly.
    let out = ocap(&home, &["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    // With it, checking after every crank: the first crank reports the damage in the log.
    ok(&["daemon", "start", "--check-invariants"]);
    let root = launched["rootKref"].as_str().unwrap();
    let _ = ocap(&home, &["send", root, "hello"]);
    let out = ocap(&home, &["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    ok(&["daemon", "stop"]);
    let log = std::fs::read_to_string(home.join("daemon.log")).expect("daemon log");
    assert!(log.contains("invariants violated") && log.contains(&format!("{broken} has counts")), "{log}");
}
