//! The conformance suite: the same vats and the same expectations, run once with bundles made
//! by **Vite from npm** in the JS kernel's configuration (`bundleSpec`) and once with our own
//! bundler (`sourceSpec`), through the real `ocap` binary: `ocap run`, and the daemon with a
//! temporary `--home`.
//!
//! Spec vat-side.md §4.3: "`bundleVat(sourcePath)` runs a Vite library build: entry = source,
//! format `iife`, global name `__vatExports__`; named exports, no code splitting, not
//! minified", and §4.2: a bundle is "A JSON object: `moduleFormat: "iife"` … `code` …
//! `exports` … `external`". `tests/conformance/build.mjs` reproduces that build; its
//! `package-lock.json` pins Vite and the vat-side packages (the versions of
//! `crates/ocap-vat/js/package.json`). The first test to need them runs `npm ci` there
//! (skipped when the installed tree matches the lock file) and builds every vat once; the
//! bundles are shared by all tests. Node runs only here, in the harness, never in `ocap`.
//!
//! Without `npm` or `node` the Vite half prints "skipped: npm not found" and passes.
//!
//! Each test is generated twice (see `both_bundlers!`): `vite::<name>` and `ocap_bundler::<name>`.
//! No timed assertions: every wait is on an output or an event; socket reads have a generous
//! deadline only so that a broken kernel fails the test instead of hanging it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value as Json};

/// How long a socket read may block before the test gives up (a hang guard, not a timing
/// assertion).
const READ_DEADLINE: Duration = Duration::from_secs(120);

fn conformance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

fn vats_dir() -> PathBuf {
    conformance_dir().join("vats")
}

// ---------------------------------------------------------------------------------------------
// Building the Vite bundles (once per test binary)
// ---------------------------------------------------------------------------------------------

/// The bundles Vite built, or `None` when npm or node is not installed.
fn vite_bundles() -> Option<&'static Path> {
    static BUNDLES: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUNDLES.get_or_init(build_vite_bundles).as_deref()
}

fn tool(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

/// Whether `bin --version` runs.
fn runs(bin: &str) -> bool {
    Command::new(bin).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn build_vite_bundles() -> Option<PathBuf> {
    // The same overrides as crates/ocap-vat's build script.
    let npm = tool("OCAP_VAT_NPM", "npm");
    let node = tool("OCAP_VAT_NODE", "node");
    for (bin, what) in [(&npm, "npm"), (&node, "node")] {
        if !runs(bin) {
            // Written to the real stderr (not captured by the test harness), so it is seen.
            let _ = writeln!(
                std::io::stderr(),
                "conformance: skipped: {what} not found (`{bin}`); the Vite-bundled half of the \
                 conformance suite needs Node.js with npm (crates/ocap-cli/tests/conformance/README.md)"
            );
            return None;
        }
    }
    let dir = conformance_dir();
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&tmp).expect("CARGO_TARGET_TMPDIR");
    // Another test process (another `cargo test`) may be installing too: one at a time.
    let guard = std::fs::File::create(tmp.join("conformance-npm.lock")).expect("lock file");
    rustix::fs::flock(&guard, rustix::fs::FlockOperation::LockExclusive).expect("flock");
    let lock = std::fs::read(dir.join("package-lock.json")).expect("tests/conformance/package-lock.json");
    let stamp = dir.join("node_modules/.ocap-conformance-lock");
    let installed = std::fs::read(&stamp).is_ok_and(|s| s == lock) && dir.join("node_modules/vite").is_dir();
    if !installed {
        let out = Command::new(&npm)
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|e| panic!("running `{npm} ci`: {e}"));
        assert!(
            out.status.success(),
            "`{npm} ci` in {} failed ({}); the npm registry must be reachable:\n{}\n{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&stamp, &lock).expect("write the install stamp");
    }
    // One directory per test process, so that a concurrent run never sees half-written
    // bundles; those of processes that are gone are removed.
    let all = tmp.join("conformance-vite-bundles");
    for entry in std::fs::read_dir(&all).into_iter().flatten().flatten() {
        let gone = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
        if gone {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let out_dir = all.join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&out_dir);
    let mut sources: Vec<PathBuf> = std::fs::read_dir(vats_dir())
        .expect("tests/conformance/vats")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "js"))
        .collect();
    sources.sort();
    let out = Command::new(&node)
        .arg("build.mjs")
        .arg(&out_dir)
        .args(&sources)
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("running `{node} build.mjs`: {e}"));
    assert!(
        out.status.success(),
        "the Vite build failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    drop(guard);
    Some(out_dir)
}

// ---------------------------------------------------------------------------------------------
// Cluster configs for either bundler
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Bundler {
    /// `bundleSpec`: a `file:` URL of the bundle Vite built (spec vat-side §4.5: the JS
    /// kernel's tests address bundles as `file://…/<name>.bundle`).
    Vite,
    /// `sourceSpec`: the vat source, bundled by `ocap` itself (crates/ocap-bundle).
    Ocap,
}

/// The vats for one test, or `None` (after the skip message) when Vite cannot run.
struct Vats {
    bundler: Bundler,
    bundles: Option<&'static Path>,
    /// Cluster files and IO sockets go here (short: a socket path must fit in 107 bytes).
    tmp: tempfile::TempDir,
}

impl Vats {
    fn new(bundler: Bundler) -> Option<Vats> {
        // Also for `Ocap`: our bundler resolves the vats' imports from tests/conformance's
        // node_modules when it is there, so it must not run while `npm ci` rewrites that tree.
        let bundles = vite_bundles();
        if matches!(bundler, Bundler::Vite) && bundles.is_none() {
            return None;
        }
        let tmp = tempfile::Builder::new().prefix("ocap-c").tempdir_in("/tmp").expect("temp dir");
        Some(Vats { bundler, bundles, tmp })
    }

    /// The vat config of source `vat` (`tests/conformance/vats/<vat>.js`), named `name`
    /// (`parameters.name`, the second argument of `buildRootObject`).
    fn spec(&self, name: &str, vat: &str) -> Json {
        let mut spec = match self.bundler {
            Bundler::Vite => {
                let path = self.bundles.expect("built").join(format!("{vat}.bundle"));
                assert!(path.is_file(), "Vite built no {}", path.display());
                let url = format!("file://{}", path.display()).replace('%', "%25").replace(' ', "%20");
                json!({ "bundleSpec": url })
            }
            Bundler::Ocap => json!({ "sourceSpec": vats_dir().join(format!("{vat}.js")) }),
        };
        spec["parameters"] = json!({ "name": name });
        spec
    }

    /// Writes a cluster file: `bootstrap`, `vats` as (name, vat source) pairs, and any other
    /// top-level fields (`io`, `services`).
    fn cluster(&self, file: &str, bootstrap: &str, vats: &[(&str, &str)], extra: Json) -> PathBuf {
        let mut config = json!({
            "bootstrap": bootstrap,
            "vats": vats.iter().map(|(name, vat)| (name.to_string(), self.spec(name, vat))).collect::<serde_json::Map<_, _>>(),
        });
        if let Json::Object(more) = extra {
            config.as_object_mut().unwrap().extend(more);
        }
        let path = self.tmp.path().join(file);
        std::fs::write(&path, config.to_string()).expect("write cluster file");
        path
    }

    fn promises(&self) -> PathBuf {
        self.cluster(
            "promises.json",
            "alice",
            &[("alice", "promise-user"), ("bob", "promise-peer"), ("carol", "promise-peer")],
            json!({}),
        )
    }

    fn exos(&self) -> PathBuf {
        self.cluster("exos.json", "user", &[("user", "exo-user"), ("exo", "exo-vat")], json!({}))
    }

    fn single(&self, vat: &str) -> PathBuf {
        self.cluster(&format!("{vat}.json"), "main", &[("main", vat)], json!({}))
    }
}

// ---------------------------------------------------------------------------------------------
// Expected results
// ---------------------------------------------------------------------------------------------

/// promise-user.js's bootstrap result: one entry per case.
fn expected_promises() -> Json {
    json!({
        "promiseArgResolvedLater": 42,
        "promiseArgRejectedLater": "rejected: nope",
        "promiseArgAlreadyResolved": 2,
        "promiseReturnedAndSettledLater": [1, "kept"],
        "chainThroughTwoVats": "42 from carol",
        "chainOfLocalPromises": 10,
        "cycleMadeRemotely": ["a", "b", "a", "b"],
        "cycleSentCrosswise": ["a", "b", "a", "b"],
        "pipelineOneHop": "z from bob",
        "pipelineTwoHops": "z from bob",
        "pipelineOrder": ["one", "two"],
        "pipelineOnRejection": "caught: bob fails on purpose",
        // E.sendOnly delivers its message, before the later E() call on the same target.
        "sendOnly": ["quiet"],
        "promiseInsideData": [1, "inside"],
    })
}

/// exo-user.js's bootstrap result. The rejections are @endo/patterns' and @endo/exo's own
/// messages (pinned versions), identical whichever bundler inlined them.
fn expected_exos() -> Json {
    json!({
        "greet": "hello exo",
        "guardRejectsWrongArgument": "rejected: In \"greet\" method of (ExoRoot): arg 0: number 42 - Must be a string",
        "guardRejectsMissingArgument": "rejected: In \"greet\" method of (ExoRoot): Expected at least 1 arguments: []",
        "guardRejectsBadReturn": "rejected: In \"badReturn\" method of (ExoRoot): result: number 42 - Must be a string",
        "unknownMethodRejects": "rejected: target has no method \"noSuchMethod\", has [\"__getInterfaceGuard__\",\"__getMethodNames__\",\"badReturn\",\"double\",\"greet\",\"lookup\",\"makeAccount\",\"makeCounter\",\"register\"]",
        "classInstances": [16, 16, "rejected: In \"incr\" method of (Counter): arg 0?: string \"x\" - Must be a number"],
        "classKit": [
            "7",
            "7",
            "rejected: insufficient funds: 7 < 100",
            "rejected: In \"withdraw\" method of (Account owner): arg 0: \"[-1n]\" - Must be non-negative",
            "rejected: target has no method \"withdraw\", has [\"__getInterfaceGuard__\",\"__getMethodNames__\",\"balance\"]",
        ],
        "scalarMapStore": [2, {"x": [1, 2]}, "rejected: \"registry\" already registered: \"a\""],
        "callWhenAwaitsPromiseArgument": 42,
    })
}

/// marshal-vat.js's bootstrap result: @endo/marshal's smallcaps encoding, made in the vat.
fn expected_marshal() -> Json {
    json!({
        "body": "#{\"bang\":\"!!excited\",\"big\":\"+2\",\"list\":[true,null],\"n\":1,\"nan\":\"#NaN\",\"neg\":\"#-Infinity\",\"s\":\"x\",\"thing\":\"$0.Alleged: thing\",\"u\":\"#undefined\"}",
        "slots": ["s0"],
        "roundTrip": true,
        "styles": ["remotable", "bigint", "copyArray", "undefined"],
        // 0.5 as a little-endian IEEE 754 double.
        "float64": [0, 0, 0, 0, 0, 0, 224, 63],
    })
}

/// The three vats that cannot launch, and what the failure must say. Spec vat-side §3.5/§7.3:
/// a throw at global scope or in `buildRootObject` fails the vat's start; "If `bootstrap`
/// rejects, `launchSubcluster` throws that error".
const LAUNCH_ERRORS: [(&str, &str); 3] = [
    ("error-global-vat", "thrown at global scope of error-global-vat"),
    ("error-build-vat", "thrown from buildRootObject of error-build-vat"),
    ("error-bootstrap-vat", "rejected from bootstrap of error-bootstrap-vat"),
];

/// JSON numbers as f64, so that `42` and `42.0` compare equal.
fn normalize(j: &Json) -> Json {
    match j {
        Json::Number(n) => json!(n.as_f64().expect("finite")),
        Json::Array(a) => Json::Array(a.iter().map(normalize).collect()),
        Json::Object(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), normalize(v))).collect()),
        other => other.clone(),
    }
}

/// Compares a record of cases with the expected one, naming every case that differs.
fn assert_cases(what: &str, actual: &Json, expected: &Json) {
    let (actual, expected) = (normalize(actual), normalize(expected));
    let (Some(a), Some(e)) = (actual.as_object(), expected.as_object()) else {
        panic!("{what}: expected a record of cases, got {actual}");
    };
    let mut wrong = Vec::new();
    for (case, want) in e {
        match a.get(case) {
            Some(got) if got == want => {}
            Some(got) => wrong.push(format!("  {case}: got {got}, expected {want}")),
            None => wrong.push(format!("  {case}: missing")),
        }
    }
    for case in a.keys().filter(|k| !e.contains_key(*k)) {
        wrong.push(format!("  {case}: unexpected case"));
    }
    assert!(wrong.is_empty(), "{what}: {} case(s) differ:\n{}", wrong.len(), wrong.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Running `ocap`
// ---------------------------------------------------------------------------------------------

fn ocap() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocap"));
    c.env_remove("RUST_LOG").env_remove("OCAP_HOME");
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `ocap run --json <cluster>`, which must succeed; returns the decoded bootstrap result.
fn run_ok(cluster: &Path) -> Json {
    let out = ocap().args(["run", "--json"]).arg(cluster).output().expect("run ocap");
    assert!(out.status.success(), "ocap run {} failed ({}): {}", cluster.display(), out.status, text(&out.stderr));
    let j: Json =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stdout)));
    j["bootstrapResult"].clone()
}

/// A temporary daemon home; its daemon is stopped (or killed) when the test ends.
struct Home {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Home {
    fn new() -> Home {
        // Short paths: a Unix socket path must fit in 107 bytes.
        let tmp = tempfile::Builder::new().prefix("ocap-ch").tempdir_in("/tmp").expect("temp dir");
        let dir = tmp.path().join("home");
        Home { _tmp: tmp, dir }
    }

    fn cmd(&self) -> Command {
        let mut c = ocap();
        c.arg("--home").arg(&self.dir);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run ocap")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    /// A command that must succeed; its stdout parsed as JSON (`--json`).
    fn ok(&self, args: &[&str]) -> Json {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "ocap {args:?} failed ({}):\nstdout: {}\nstderr: {}\ndaemon log:\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr),
            self.log()
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("ocap {args:?} printed non-JSON ({e}): {}", text(&out.stdout)))
    }

    /// A command that must fail; returns its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "ocap {args:?} succeeded: {}", text(&out.stdout));
        assert!(out.stdout.is_empty(), "ocap {args:?} failed but printed a result: {}", text(&out.stdout));
        text(&out.stderr)
    }

    fn launch(&self, cluster: &Path) -> Json {
        self.ok(&["launch", cluster.to_str().unwrap()])
    }

    fn send(&self, target: &str, method: &str, args: &[&str]) -> Json {
        let mut all = vec!["send", target, method];
        all.extend_from_slice(args);
        self.ok(&all)
    }

    /// The vat ID and root kref of vat `name` in the newest subcluster.
    fn vat(&self, name: &str) -> (String, String) {
        let status = self.ok(&["status"]);
        let subclusters = status["subclusters"].as_array().expect("subclusters");
        let id = subclusters
            .last()
            .and_then(|s| s["vats"][name].as_str())
            .unwrap_or_else(|| panic!("no vat {name}: {status}"));
        let root = status["vatRoots"][id].as_str().unwrap_or_else(|| panic!("no root for {id}: {status}"));
        (id.to_owned(), root.to_owned())
    }

    fn restart_vat(&self, id: &str) {
        assert_eq!(self.ok(&["daemon", "exec", "restartVat", &json!({ "id": id }).to_string()]), Json::Null);
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = self.cmd().args(["daemon", "stop"]).output();
        // A stop that failed: kill what is left of this home's daemon (its PID is in the lock).
        if let Some(pid) =
            std::fs::read_to_string(self.dir.join("daemon.lock")).ok().and_then(|s| s.trim().parse::<u32>().ok())
        {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if text(&cmdline).contains(&*self.dir.to_string_lossy()) {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
        }
    }
}

/// A child process killed if the test ends before it does (a pending `ocap send`).
struct KillOnDrop(Option<Child>);

impl KillOnDrop {
    fn wait(mut self) -> Output {
        self.0.take().expect("not waited yet").wait_with_output().expect("wait for the child")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------------------------

/// Promises passed as arguments, chains, cycles, pipelining and E.sendOnly (spec vat-side §6.5,
/// §7.5), in a three-vat cluster under `ocap run`.
fn run_promises(b: Bundler) {
    let Some(vats) = Vats::new(b) else { return };
    assert_cases("promises", &run_ok(&vats.promises()), &expected_promises());
}

/// Exos with interface guards; guard violations reject (spec vat-side §7.4, §7.5).
fn run_exos(b: Bundler) {
    let Some(vats) = Vats::new(b) else { return };
    assert_cases("exos", &run_ok(&vats.exos()), &expected_exos());
}

/// A vat importing @endo/marshal (which does `new Float64Array(1)` at load).
fn run_marshal(b: Bundler) {
    let Some(vats) = Vats::new(b) else { return };
    assert_cases("marshal", &run_ok(&vats.single("marshal-vat")), &expected_marshal());
}

/// Eventual sends run in the same turns in a vat as with npm's `@endo/eventual-send`: the
/// `HandledPromise` vats get is the prelude's copy with
/// `crates/ocap-vat/js/patches/@endo+eventual-send+1.5.0.patch` applied (a fast path for
/// sends to presences, a postponed handler made lazily). Vat code may depend on the order of
/// its promise jobs, and every bundle uses this one (spec vat-side §4.3: "The inlined
/// `@endo/eventual-send` (no-shim entry) reads the global `HandledPromise`"; §5.1: the realm
/// "installs the `@endo/eventual-send` shim, i.e. a global `HandledPromise`"). The same scenario
/// (`tests/conformance/turn-order-scenario.js`: sends of every kind beside a ticker that logs
/// each promise job) runs in a vat and in Node with npm's unpatched package under SES
/// (`turn-order.mjs`); the two logs must be equal, entry for entry.
fn run_turn_order(b: Bundler) {
    let Some(vats) = Vats::new(b) else { return };
    if vats.bundles.is_none() {
        let _ = writeln!(std::io::stderr(), "conformance: turn order: skipped: no Node.js to run npm's package");
        return;
    }
    let node = tool("OCAP_VAT_NODE", "node");
    let out = Command::new(&node)
        .arg("turn-order.mjs")
        .current_dir(conformance_dir())
        .output()
        .unwrap_or_else(|e| panic!("running `{node} turn-order.mjs`: {e}"));
    assert!(out.status.success(), "turn-order.mjs failed ({}): {}", out.status, text(&out.stderr));
    let npm_log: Vec<String> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("turn-order.mjs printed no log ({e}): {}", text(&out.stdout)));
    let vat_log: Vec<String> = serde_json::from_value(run_ok(&vats.single("turn-order-vat")))
        .expect("the vat answers its log, a list of strings");
    // The scenario ran to its end, and every kind of send settled, on npm's package.
    for entry in [
        "t20",
        "send fulfilled presence hello",
        "pipelined fulfilled presence-answer again",
        "presence.quiet(8) result:false",
        "proxied fulfilled proxied hi",
        "pending pipelined fulfilled presence again",
        "handled, settled fulfilled presence hello",
        "rejected rejected rejected on purpose",
        "far fulfilled far hi",
        "throws rejected boom",
        "subclass presence fulfilled subclass-presence hello",
        "pipelined on a local result fulfilled local hi",
        "pipelined on a forwarded local result fulfilled local hi",
        "pipelined on an immediate local result fulfilled local hi",
        "pipelined on a handled promise resolved to a local result fulfilled local hi",
    ] {
        assert!(npm_log.iter().any(|e| e == entry), "npm's log lacks {entry:?}: {npm_log:?}");
    }
    if vat_log != npm_log {
        let first = vat_log.iter().zip(&npm_log).position(|(a, b)| a != b).unwrap_or(vat_log.len().min(npm_log.len()));
        panic!(
            "the vat's turn order differs from npm's @endo/eventual-send from entry {first}:\n  vat: {:?}\n  npm: {:?}",
            &vat_log[first.min(vat_log.len())..],
            &npm_log[first.min(npm_log.len())..]
        );
    }
}

/// `ocap run` of a vat that cannot launch: a non-zero exit, the vat's own message on stderr,
/// nothing on stdout.
fn run_launch_errors(b: Bundler) {
    let Some(vats) = Vats::new(b) else { return };
    for (vat, message) in LAUNCH_ERRORS {
        let out = ocap().arg("run").arg(vats.single(vat)).output().expect("run ocap");
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{vat}: ocap run succeeded: {}", text(&out.stdout));
        assert!(out.stdout.is_empty(), "{vat}: {}", text(&out.stdout));
        assert!(err.contains(message), "{vat}: stderr does not carry the vat's error: {err}");
        if vat != "error-bootstrap-vat" {
            assert!(err.contains("Failed to launch vat v1 (main)"), "{vat}: {err}");
        }
    }
}

/// In the daemon: each failing launch is a clear error and leaves nothing behind; the kernel
/// keeps running, and the promise and exo clusters then launch and answer messages.
fn daemon_launch_errors_then_promises_and_exos(b: Bundler) {
    let Some(vats) = Vats::new(b) else { return };
    let home = Home::new();
    home.ok(&["daemon", "start"]);
    for (vat, message) in LAUNCH_ERRORS {
        let err = home.fails(&["launch", vats.single(vat).to_str().unwrap()]);
        assert!(err.contains(message), "{vat}: {err}");
        assert_eq!(home.ok(&["daemon", "status"])["running"], true, "after {vat}");
        let status = home.ok(&["status"]);
        assert_eq!(status["vats"], json!([]), "{vat} left vats behind: {status}");
        assert_eq!(status["subclusters"], json!([]), "{vat} left a subcluster behind: {status}");
    }

    let launched = home.launch(&vats.promises());
    assert_cases("promises (daemon)", &launched["bootstrapResult"], &expected_promises());
    let (_, alice) = home.vat("alice");
    let (_, bob) = home.vat("bob");
    assert_eq!(home.send(&alice, "whoami", &[]), "alice");
    // A reference passed by the host; alice sends bob a promise for 5.
    assert_eq!(normalize(&home.send(&alice, "askBob", &[&json!({ "kref": bob }).to_string(), "5"])), json!(6.0));

    let launched = home.launch(&vats.exos());
    assert_cases("exos (daemon)", &launched["bootstrapResult"], &expected_exos());
    let (_, exo) = home.vat("exo");
    assert_eq!(home.send(&exo, "greet", &["\"host\""]), "hello host");
    // A guard violation by the host's message rejects it; the vat stays.
    let err = home.fails(&["send", &exo, "greet", "42"]);
    assert!(err.contains("In \"greet\" method of (ExoRoot): arg 0: number 42 - Must be a string"), "{err}");
    assert_eq!(home.send(&exo, "double", &["4"]), json!(8));
    assert_eq!(home.ok(&["status"])["notRunning"], json!([]));
}

/// A durable counter in baggage survives a daemon stop/start and `restartVat`; each brings a
/// new incarnation (spec vat-side §8.4; host-surface §8.3).
fn daemon_durable_counter(b: Bundler) {
    let Some(vats) = Vats::new(b) else { return };
    let home = Home::new();
    let launched = home.launch(&vats.cluster("keeper.json", "keeper", &[("keeper", "keeper-vat")], json!({})));
    assert_eq!(launched["bootstrapResult"], "keeper ready, count 0");
    let (id, root) = home.vat("keeper");
    let count = |n: f64, incarnation: f64| json!({ "count": n, "incarnation": incarnation });
    assert_eq!(normalize(&home.send(&root, "increment", &[])), json!(1.0));
    assert_eq!(normalize(&home.send(&root, "increment", &[])), json!(2.0));
    assert_eq!(normalize(&home.send(&root, "read", &[])), count(2.0, 0.0));

    home.ok(&["daemon", "stop"]);
    assert!(!home.run(&["daemon", "status"]).status.success(), "the daemon still runs after stop");
    home.ok(&["daemon", "start"]);
    let status = home.ok(&["status"]);
    assert_eq!(status["resumeFailures"], json!([]), "{status}");
    assert_eq!(normalize(&home.send(&root, "increment", &[])), json!(3.0));
    assert_eq!(normalize(&home.send(&root, "read", &[])), count(3.0, 1.0));

    home.restart_vat(&id);
    assert_eq!(normalize(&home.send(&root, "increment", &[])), json!(4.0));
    assert_eq!(normalize(&home.send(&root, "read", &[])), count(4.0, 2.0));
    assert_eq!(home.ok(&["status"])["notRunning"], json!([]));
}

/// Vat K (keeper) exports a plain exo to vat U (user). After K restarts, U's call on it is
/// rejected with `[KERNEL:OBJECT_DELETED]` (non-durable exports are abandoned with the old
/// incarnation; kernel-core §4.5), U and K both keep running, and K's durable counter goes on.
fn daemon_orphaned_ephemeral_export(b: Bundler) {
    let Some(vats) = Vats::new(b) else { return };
    let home = Home::new();
    let cluster = vats.cluster("orphan.json", "user", &[("user", "user-vat"), ("keeper", "keeper-vat")], json!({}));
    let launched = home.launch(&cluster);
    assert_eq!(launched["bootstrapResult"], "hello from first (incarnation 0)");
    let (keeper_id, keeper) = home.vat("keeper");
    let (user_id, user) = home.vat("user");
    assert_eq!(home.send(&user, "callEphemeral", &[]), "hello from first (incarnation 0)");
    assert_eq!(normalize(&home.send(&keeper, "increment", &[])), json!(1.0));

    home.restart_vat(&keeper_id);
    let err = home.fails(&["send", &user, "callEphemeral"]);
    assert!(err.contains("[KERNEL:OBJECT_DELETED]"), "the orphaned export's call: {err}");
    // Neither vat was terminated for it.
    let status = home.ok(&["status"]);
    assert_eq!(status["notRunning"], json!([]), "{status}");
    assert_eq!(home.ok(&["daemon", "exec", "pingVat", &json!({ "id": user_id }).to_string()]), "pong");
    assert_eq!(home.ok(&["daemon", "exec", "pingVat", &json!({ "id": keeper_id }).to_string()]), "pong");
    // The durable counter goes on counting, from the host and through U's reference to K's root.
    assert_eq!(normalize(&home.send(&keeper, "increment", &[])), json!(2.0));
    assert_eq!(normalize(&home.send(&user, "incrementKeeper", &[])), json!(3.0));
    assert_eq!(normalize(&home.send(&keeper, "read", &[])), json!({"count": 3.0, "incarnation": 1.0}));
    // Still orphaned: a second call is rejected the same way.
    let err = home.fails(&["send", &user, "callEphemeral"]);
    assert!(err.contains("[KERNEL:OBJECT_DELETED]"), "{err}");
}

/// A vat echoing the lines of a Unix-socket IO channel (spec host-surface §6), driven by a real
/// client while an `ocap send … pump` waits for the vat's answer.
fn daemon_io_echo(b: Bundler) {
    let Some(vats) = Vats::new(b) else { return };
    let sock = vats.tmp.path().join("repl.sock");
    let cluster = vats.cluster(
        "io.json",
        "echo",
        &[("echo", "io-echo-vat")],
        json!({ "io": { "repl": { "type": "socket", "path": sock, "direction": "inout" } } }),
    );
    let home = Home::new();
    let launched = home.launch(&cluster);
    assert_eq!(launched["bootstrapResult"], "repl", "the channel is in services by name");
    assert!(sock.exists(), "the channel's socket is there once the launch returned");
    let root = launched["rootKref"].as_str().expect("rootKref").to_owned();

    let pump = KillOnDrop(Some(
        home.cmd()
            .args(["--json", "send", &root, "pump"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ocap send"),
    ));
    let mut client = UnixStream::connect(&sock).expect("connect to the channel");
    client.set_read_timeout(Some(READ_DEADLINE)).unwrap();
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut line = || {
        let mut s = String::new();
        reader.read_line(&mut s).expect("a line from the vat");
        s.trim_end_matches('\n').to_owned()
    };
    client.write_all(b"hello\n").unwrap();
    assert_eq!(line(), "echo 0: HELLO");
    client.write_all(b"conformance\nworld\n").unwrap();
    assert_eq!(line(), "echo 1: CONFORMANCE");
    assert_eq!(line(), "echo 2: WORLD");
    // The client goes away: the vat's next read answers null and `pump` returns its count.
    client.shutdown(std::net::Shutdown::Both).unwrap();
    drop(client);
    let out = pump.wait();
    assert!(out.status.success(), "pump failed: {}\ndaemon log:\n{}", text(&out.stderr), home.log());
    assert_eq!(normalize(&serde_json::from_slice(&out.stdout).expect("JSON")), json!(3.0));
}

/// Each scenario, once per bundler: `vite::<name>` (bundleSpec) and `ocap_bundler::<name>`
/// (sourceSpec).
macro_rules! both_bundlers {
    ($($name:ident),* $(,)?) => {
        mod vite {
            $( #[test] fn $name() { super::$name(super::Bundler::Vite) } )*
        }
        mod ocap_bundler {
            $( #[test] fn $name() { super::$name(super::Bundler::Ocap) } )*
        }
    };
}

both_bundlers!(
    run_promises,
    run_exos,
    run_marshal,
    run_turn_order,
    run_launch_errors,
    daemon_launch_errors_then_promises_and_exos,
    daemon_durable_counter,
    daemon_orphaned_ephemeral_export,
    daemon_io_echo,
);

/// The Vite bundles have the JS kernel's shape (spec vat-side §4.2): JSON
/// `{moduleFormat: 'iife', code, exports, external}`, `code` declaring `var __vatExports__`,
/// everything inlined, no comments left (SES rejects `import(` even in comments, §4.3).
#[test]
fn vite_bundles_have_the_js_kernel_shape() {
    let Some(dir) = vite_bundles() else { return };
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("bundles dir") {
        let path = entry.expect("entry").path();
        let bundle: Json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let keys: Vec<&str> = bundle.as_object().unwrap().keys().map(String::as_str).collect();
        // In the order the JS kernel's bundleVat writes them.
        assert_eq!(keys, ["moduleFormat", "code", "exports", "external"], "{}", path.display());
        assert_eq!(bundle["moduleFormat"], "iife");
        assert_eq!(bundle["exports"], json!(["buildRootObject"]), "{}", path.display());
        assert_eq!(bundle["external"], json!([]));
        let code = bundle["code"].as_str().unwrap();
        assert!(code.starts_with("var __vatExports__ = (function(exports) {"), "{}", &code[..code.len().min(200)]);
        assert!(!code.contains("import(") && !code.contains("process.env"), "{}", path.display());
        assert!(!code.lines().any(|l| l.trim_start().starts_with("//")), "{} keeps comments", path.display());
        seen += 1;
    }
    assert_eq!(seen, std::fs::read_dir(vats_dir()).unwrap().count(), "one bundle per vat");
}
