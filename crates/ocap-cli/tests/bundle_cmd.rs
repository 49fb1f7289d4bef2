//! `ocap bundle` on a directory bundles every source it can: one that fails (an import that
//! cannot be found) is reported by name and does not stop the others; the exit status says
//! that something failed. Found by bundling the JS kernel's own test vats one directory at a
//! time, where the first unresolvable import used to stop everything.

use std::process::Command;

use serde_json::Value as Json;

#[test]
fn a_failing_source_does_not_stop_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good =
        "import { Far } from '@endo/far';\nexport const buildRootObject = () => Far('root', { ping: () => 'pong' });\n";
    std::fs::write(dir.path().join("a-good.js"), good).expect("write");
    std::fs::write(
        dir.path().join("b-bad.js"),
        "import { x } from '@nowhere/missing';\nexport const buildRootObject = () => x;\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("c-good.js"), good).expect("write");
    let out =
        Command::new(env!("CARGO_BIN_EXE_ocap")).args(["--json", "bundle"]).arg(dir.path()).output().expect("run ocap");
    assert_eq!(out.status.code(), Some(1));
    let report: Json = serde_json::from_slice(&out.stdout).expect("JSON report");
    let report = report.as_array().expect("array");
    assert_eq!(report.len(), 3, "{report:?}");
    assert!(report[1]["error"].as_str().unwrap_or_default().contains("@nowhere/missing"), "{report:?}");
    for good in ["a-good.bundle", "c-good.bundle"] {
        assert!(dir.path().join(good).is_file(), "{good} was not written");
    }
    assert!(!dir.path().join("b-bad.bundle").exists());
}
