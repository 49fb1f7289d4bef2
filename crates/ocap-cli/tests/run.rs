//! End-to-end tests of `ocap run`, spawning the real binary on the real demo.

use std::path::PathBuf;
use std::process::Command;

fn ocap() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ocap"))
}

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo/cluster.json")
}

#[test]
fn run_prints_the_decoded_bootstrap_result() {
    let out = ocap().arg("run").arg(demo()).output().unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"Bob says hello to Alice; Bob says "I received a promise kept"; counter is at 3"#
    );
}

#[test]
fn run_json_prints_only_json_on_stdout() {
    let out = ocap().args(["run", "--json"]).arg(demo()).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(v["subclusterId"], "s1");
    assert!(v["rootKref"].as_str().unwrap().starts_with("ko"));
    assert!(v["bootstrapResult"].as_str().unwrap().contains("counter is at 3"));
}

/// With `--db`, state persists: the first run's vats are still there (and restarted) when
/// the second run launches its own subcluster next to them.
#[test]
fn run_with_a_database_keeps_state_between_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite");
    for _ in 0..2 {
        let out = ocap().arg("run").arg(demo()).arg("--db").arg(&db).output().unwrap();
        assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("counter is at 3"));
    }
    let store = ocap_kernel::store::Store::open(&db, ocap_kernel::store::Durability::Process).unwrap();
    let ids: Vec<String> = store.subclusters().unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(ids, vec!["s1", "s2"]);
    assert_eq!(store.vat_ids().unwrap().len(), 6);
}

#[test]
fn a_bad_config_fails_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.json");
    std::fs::write(&cfg, r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":"a.js","colour":"red"}}}"#).unwrap();
    let out = ocap().arg("run").arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("vats.a.colour"), "{err}");
}

#[test]
fn a_failing_launch_exits_non_zero_with_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("boom.js"),
        "export function buildRootObject() { throw Error('from buildRootObject'); }\n",
    )
    .unwrap();
    let cfg = dir.path().join("c.json");
    std::fs::write(&cfg, r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":"boom.js"}}}"#).unwrap();
    let out = ocap().arg("run").arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Failed to launch vat v1 (a)") && err.contains("from buildRootObject"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_vat_uses_the_hosts_services() {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/host-service/cluster.json");
    let out = ocap().arg("run").arg("--log").arg(example).output().unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Greeter asked the host for the time: the host clock works"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Greeter starting"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_cluster_cannot_have_a_service_the_host_does_not_offer() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.json");
    std::fs::write(&cfg, r#"{"bootstrap":"a","services":["filesystem"],"vats":{"a":{"sourceSpec":"a.js"}}}"#).unwrap();
    let out = ocap().arg("run").arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no registered kernel service 'filesystem'"));
}

/// `--log` streams the vats' console output to stderr, each line tagged with the vat's name
/// and ID; relative paths work from any directory.
#[test]
fn run_log_prefixes_vat_lines_with_name_and_id() {
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let out = ocap().current_dir(&examples).args(["run", "--log", "demo/cluster.json"]).output().unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.lines().any(|l| l.contains("[bob v2] Bob was greeted by Alice")), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("counter is at 3"));
}

/// A TypeScript `sourceSpec` is bundled on the fly too.
#[test]
fn run_accepts_a_typescript_source() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("v.ts"),
        "import { makeDefaultExo } from '@metamask/kernel-utils/exo';\n\
         export function buildRootObject(): unknown {\n\
           const greeting: string = 'typed hello';\n\
           return makeDefaultExo('root', { bootstrap(): string { return greeting; } });\n\
         }\n",
    )
    .unwrap();
    let cfg = dir.path().join("c.json");
    std::fs::write(&cfg, r#"{"bootstrap":"v","vats":{"v":{"sourceSpec":"v.ts"}}}"#).unwrap();
    let out = ocap().arg("run").arg(&cfg).output().unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "typed hello");
}

/// A TypeScript vat importing another TypeScript module, with types and interfaces.
#[test]
fn run_bundles_typescript_modules_natively() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("greet.ts"),
        "export interface Greeting { text: string }\n\
         export type Name = string;\n\
         export function greet(name: Name): Greeting { return { text: `hello ${name}` }; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("main.ts"),
        "import { makeDefaultExo } from '@metamask/kernel-utils/exo';\n\
         import { greet, type Greeting } from './greet';\n\
         enum Mood { Happy = 'happy' }\n\
         export function buildRootObject(): unknown {\n\
           const g: Greeting = greet('ts' as const);\n\
           return makeDefaultExo('root', { bootstrap(): string { return `${g.text} (${Mood.Happy})`; } });\n\
         }\n",
    )
    .unwrap();
    let cfg = dir.path().join("c.json");
    std::fs::write(&cfg, r#"{"bootstrap":"v","vats":{"v":{"sourceSpec":"main.ts"}}}"#).unwrap();
    let out = ocap().arg("run").arg(&cfg).output().unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello ts (happy)");
}
