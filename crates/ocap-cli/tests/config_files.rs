//! Nothing a config names can hurt the host (issue 11, items 1 and 5), through the daemon:
//! bundle and source files are read only if they are regular files under the size limit
//! (`/dev/zero`, a FIFO, a directory are refused by name, at once, without reading), URLs
//! other than `file:` are refused as unsupported, and a vat that loops is stopped at its
//! delivery budget (`creationOptions.deliveryBudgetMs`) while the kernel and other vats go
//! on. After each refusal the daemon is up and launches what is valid.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value as Json};

fn vats_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vats")
}

struct Daemon {
    _tmp: tempfile::TempDir,
    home: PathBuf,
}

impl Daemon {
    fn start(config: Option<Json>) -> Daemon {
        // Short paths: a Unix socket path must fit in 107 bytes.
        let tmp = tempfile::Builder::new().prefix("ocap-f").tempdir_in("/tmp").expect("tempdir");
        let home = tmp.path().join("home");
        std::fs::create_dir(&home).expect("home");
        if let Some(c) = config {
            std::fs::write(home.join("daemon.json"), c.to_string()).expect("daemon.json");
        }
        let d = Daemon { _tmp: tmp, home };
        let out = d.ocap(&["daemon", "start"]);
        assert!(out.status.success(), "start: {}", String::from_utf8_lossy(&out.stderr));
        d
    }

    fn ocap(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ocap"))
            .arg("--home")
            .arg(&self.home)
            .args(args)
            .env_remove("OCAP_HOME")
            .output()
            .expect("run ocap")
    }

    /// Launches a one-vat cluster whose vat config is `vat`; the error text if it fails.
    fn launch(&self, vat: Json) -> Result<Json, String> {
        let config = json!({"bootstrap": "v", "vats": {"v": vat}});
        let path = self.home.parent().expect("tmp").join("cluster.json");
        std::fs::write(&path, config.to_string()).expect("cluster");
        let out = self.ocap(&["--json", "launch", &path.display().to_string()]);
        if out.status.success() {
            Ok(serde_json::from_slice(&out.stdout).expect("launch JSON"))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn still_up(&self) {
        let out = self.ocap(&["--json", "daemon", "exec", "ping"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "\"pong\"");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.ocap(&["daemon", "stop"]);
    }
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success());
}

#[test]
fn files_a_config_names_are_read_only_if_regular_and_small() {
    let d = Daemon::start(Some(json!({"maxBundleBytes": 4096})));
    let dir = d.home.parent().expect("tmp").to_path_buf();
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
        let err = d.launch(vat.clone()).expect_err("must be refused");
        assert!(err.contains(expected), "{vat}: {err}");
        d.still_up();
    }
    // The FIFO was never opened for a read that waits on a writer, and is still a FIFO.
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(&fifo).expect("fifo").file_type().is_fifo());
    let ok = d.launch(json!({"sourceSpec": vats_dir().join("named.js"), "parameters": {"me": "fine"}}));
    assert_eq!(ok.expect("a valid launch")["bootstrapResult"], "fine");
}

#[test]
fn a_looping_vat_is_stopped_at_its_budget_and_others_go_on() {
    let d = Daemon::start(None);
    let spinner = d
        .launch(json!({"sourceSpec": vats_dir().join("spinner.js"), "creationOptions": {"deliveryBudgetMs": 200}}))
        .expect("launch spinner");
    let bystander = d
        .launch(json!({"sourceSpec": vats_dir().join("named.js"), "parameters": {"me": "bystander"}}))
        .expect("launch bystander");
    let spin = d.ocap(&["send", spinner["rootKref"].as_str().expect("kref"), "spin"]);
    assert!(!spin.status.success());
    let why = String::from_utf8_lossy(&spin.stderr);
    assert!(why.contains("budget of 200 ms"), "{why}");
    let who = d.ocap(&["--json", "send", bystander["rootKref"].as_str().expect("kref"), "who"]);
    assert_eq!(String::from_utf8_lossy(&who.stdout).trim(), "\"bystander\"");
    // The runaway is gone for good; the kernel is consistent.
    let again = d.ocap(&["send", spinner["rootKref"].as_str().expect("kref"), "ping"]);
    assert!(!again.status.success());
    let check = d.ocap(&["check"]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
}
