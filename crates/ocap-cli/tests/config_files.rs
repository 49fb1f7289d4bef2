//! Nothing a config names can hurt the host (issue 11, items 1 and 5), through the daemon:
//! bundle and source files are read only if they are regular files under the size limit
//! (`/dev/zero`, a FIFO, a directory are refused by name, at once, without reading), URLs
//! other than `file:` are refused as unsupported, and a vat that loops is stopped at its
//! delivery budget (`creationOptions.deliveryBudgetMs`) while the kernel and other vats go
//! on. After each refusal the daemon is up and launches what is valid.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value as Json};

mod common;
use common::Home;

fn vats_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vats")
}

/// Launches a one-vat cluster whose vat config is `vat`; the error text if it fails.
fn launch(d: &Home, vat: Json) -> Result<Json, String> {
    let config = json!({"bootstrap": "v", "vats": {"v": vat}});
    let path = d.scratch().join("cluster.json");
    std::fs::write(&path, config.to_string()).expect("cluster");
    let out = d.run(&["--json", "launch", &path.display().to_string()]);
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("launch JSON"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn still_up(d: &Home) {
    assert_eq!(d.rpc("ping", json!([]))["result"], "pong");
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success());
}

#[test]
fn files_a_config_names_are_read_only_if_regular_and_small() {
    let d = Home::started_with(Some(json!({"maxBundleBytes": 4096})));
    let dir = d.scratch().to_path_buf();
    let fifo = dir.join("bundle.fifo");
    mkfifo(&fifo);
    let big = dir.join("big.bundle");
    std::fs::write(&big, format!(r#"{{"moduleFormat":"iife","code":"{}"}}"#, "x".repeat(8192))).expect("big");
    let cases = [
        (json!({"bundleSpec": "/dev/zero"}), "/dev/zero is not a regular file"),
        (json!({"bundleSpec": fifo}), "bundle.fifo is not a regular file"),
        (json!({"bundleSpec": dir}), "is not a regular file"),
        (json!({"sourceSpec": "/dev/zero"}), "/dev/zero is not a regular file"),
        (json!({"bundleSpec": big}), "the limit is 4096"),
        (json!({"bundleSpec": "http://example.com/v.bundle"}), "is not supported"),
        (json!({"bundleSpec": "data:application/json,{}"}), "is not supported"),
        (json!({"sourceSpec": "https://example.com/v.js"}), "is not supported"),
    ];
    for (vat, expected) in cases {
        let err = launch(&d, vat.clone()).expect_err("must be refused");
        assert!(err.contains(expected), "{vat}: {err}");
        still_up(&d);
    }
    // The FIFO was never opened for a read that waits on a writer, and is still a FIFO.
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(&fifo).expect("fifo").file_type().is_fifo());
    let ok = launch(&d, json!({"sourceSpec": vats_dir().join("named.js"), "parameters": {"me": "fine"}}));
    assert_eq!(ok.expect("a valid launch")["bootstrapResult"], "fine");
}

#[test]
fn a_looping_vat_is_stopped_at_its_budget_and_others_go_on() {
    let d = Home::started_with(None);
    let spinner =
        launch(&d, json!({"sourceSpec": vats_dir().join("spinner.js"), "creationOptions": {"deliveryBudgetMs": 200}}))
            .expect("launch spinner");
    let bystander = launch(&d, json!({"sourceSpec": vats_dir().join("named.js"), "parameters": {"me": "bystander"}}))
        .expect("launch bystander");
    let spin = d.run(&["send", spinner["rootKref"].as_str().expect("kref"), "spin"]);
    assert!(!spin.status.success());
    let why = String::from_utf8_lossy(&spin.stderr);
    assert!(why.contains("budget of 200 ms"), "{why}");
    let who = d.run(&["--json", "send", bystander["rootKref"].as_str().expect("kref"), "who"]);
    assert_eq!(String::from_utf8_lossy(&who.stdout).trim(), "\"bystander\"");
    // The runaway is gone for good; the kernel is consistent.
    let again = d.run(&["send", spinner["rootKref"].as_str().expect("kref"), "ping"]);
    assert!(!again.status.success());
    let check = d.run(&["check"]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
}
