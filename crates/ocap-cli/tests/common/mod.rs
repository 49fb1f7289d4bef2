//! Shared by the CLI's integration tests: a temporary home for the real `ocap` binary, whose
//! daemon is stopped (or killed) when the test ends, also when it fails.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ocap_kernel::store::{Durability, Store};
use ocap_kernel::{Kernel, KernelConfig};
use ocap_vat::{JsVatLauncher, LauncherOptions};
use serde_json::{json, Value as Json};

/// A JSON string argument for `ocap send`.
pub fn json_arg(s: &str) -> String {
    Json::String(s.to_owned()).to_string()
}

/// `crates/ocap-cli/tests/vats`, where the tests' vat sources are.
pub fn test_vats() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vats")
}

/// A kernel on the file `db` with real JS vats, relative specs resolving against `vats`.
pub fn js_kernel(db: &Path, config: KernelConfig, vats: PathBuf) -> Kernel {
    let store = Store::open(db, Durability::Process).expect("open store");
    Kernel::make(store, config, |sink| {
        Box::new(JsVatLauncher::new(sink, LauncherOptions { base_dir: Some(vats), ..Default::default() }))
    })
    .expect("make kernel")
}

/// A temporary home whose daemon is stopped (or killed) on drop.
pub struct Home {
    _tmp: tempfile::TempDir,
    /// Inside the temporary directory, created by the first command that needs it.
    dir: PathBuf,
}

impl Home {
    pub fn new() -> Home {
        // Short paths: a Unix socket path must fit in 107 bytes.
        let tmp = tempfile::Builder::new().prefix("ocap-t").tempdir_in("/tmp").expect("temp dir");
        let dir = tmp.path().join("home");
        Home { _tmp: tmp, dir }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ocap"));
        c.arg("--home").arg(self.path()).env_remove("RUST_LOG").env_remove("OCAP_HOME");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run ocap")
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "ocap {args:?} failed ({}):\nstdout: {}\nstderr: {}\nlog: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.path().join("daemon.log")).unwrap_or_default()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn ok_json(&self, args: &[&str]) -> Json {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("ocap {args:?} printed non-JSON ({e}): {text}"))
    }

    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.path().join("daemon.lock")).ok()?.trim().parse().ok()
    }

    /// Sends raw bytes on the socket and returns the parsed reply.
    pub fn raw(&self, bytes: &[u8]) -> Json {
        let mut s = UnixStream::connect(self.path().join("daemon.sock")).expect("connect");
        s.write_all(bytes).expect("write request");
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut reply = String::new();
        s.read_to_string(&mut reply).expect("read reply");
        serde_json::from_str(reply.trim()).unwrap_or_else(|e| panic!("reply is not JSON ({e}): {reply:?}"))
    }

    pub fn rpc(&self, method: &str, params: Json) -> Json {
        let req = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
        self.raw(format!("{req}\n").as_bytes())
    }

    /// `ocap daemon serve` processes for this home that are alive (zombies have no cmdline).
    pub fn daemon_processes(&self) -> Vec<u32> {
        let home = self.path().to_string_lossy().into_owned();
        let mut out = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
            let args: Vec<String> =
                cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
            if args.iter().any(|a| a == &home) && args.iter().any(|a| a == "serve") {
                out.push(pid);
            }
        }
        out
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = self.cmd().args(["daemon", "stop"]).output();
        // Whatever is left (a stop that failed): kill it.
        for pid in self.daemon_processes() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    }
}

impl Home {
    /// A home whose `daemon.json` is `config`, with its daemon started.
    pub fn started_with(config: Option<Json>) -> Home {
        let home = Home::new();
        std::fs::create_dir_all(home.path()).expect("home");
        if let Some(c) = config {
            std::fs::write(home.path().join("daemon.json"), c.to_string()).expect("daemon.json");
        }
        home.ok(&["daemon", "start"]);
        home
    }

    /// The daemon's control socket.
    pub fn socket(&self) -> PathBuf {
        self.path().join("daemon.sock")
    }

    /// `ocap launch` of a one-vat cluster named `name`, whose vat is `tests/vats/<source>` and
    /// is given `services` (the cluster file goes in the scratch directory); its answer
    /// `{subclusterId, rootKref, bootstrapResult}`.
    pub fn launch_one(&self, name: &str, source: &str, services: &[&str]) -> Json {
        let spec = test_vats().join(source);
        let config = json!({
            "bootstrap": name,
            "services": services,
            "vats": {name: {"sourceSpec": spec.to_str().expect("utf-8 path")}},
        });
        let path = self.scratch().join(format!("{name}.json"));
        std::fs::write(&path, config.to_string()).expect("cluster file");
        self.ok_json(&["launch", path.to_str().expect("utf-8 path")])
    }

    /// `ocap ARGS` started in the background, its stdout and stderr captured (collect them
    /// with `wait_with_output`).
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.cmd()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start ocap")
    }

    /// `ocap send` that must succeed; its decoded result.
    pub fn send_ok(&self, target: &str, method: &str, args: &[&str]) -> Json {
        let mut all = vec!["send", target, method];
        all.extend_from_slice(args);
        self.ok_json(&all)
    }

    /// A control RPC call that must succeed; its result.
    pub fn rpc_ok(&self, method: &str, params: Json) -> Json {
        let r = self.rpc(method, params.clone());
        assert!(r.get("error").is_none(), "{method} {params} failed: {r}");
        r["result"].clone()
    }

    /// The temporary directory the home is in (for the test's other files).
    pub fn scratch(&self) -> &Path {
        self._tmp.path()
    }
}
