//! Live interop with a real JS libp2p node on the bare protocol id `whatever`, the one the JS
//! ocap kernel speaks.
//!
//! The JS side is `tests/js/peer.mjs` (see `tests/js/README.md`): libp2p with `@libp2p/tcp`,
//! `@chainsafe/libp2p-noise` and `@chainsafe/libp2p-yamux` as the JS kernel configures it,
//! at the versions pinned by `tests/js/package-lock.json`. The first test copies
//! `tests/js/{package.json,package-lock.json,*.mjs}` to `$CARGO_TARGET_TMPDIR/ocap-net-js/`
//! and runs `npm ci` there (skipped while the installed tree matches the lock file), under a
//! file lock so that concurrent test processes neither race nor run Node from a tree being
//! reinstalled. Nothing is installed in the source tree.
//!
//! Each test starts `node peer.mjs <our multiaddr> <full|optimistic>`, which
//! - handles `whatever`: reads our handshake, answers a handshakeAck with incarnation
//!   `js-incarnation`, reads one frame, writes `js reply on the stream rust opened`;
//! - dials us on `whatever` (`full`: libp2p's default, multistream-select completes before
//!   the first write; `optimistic`: `negotiateFully: false`, the protocol proposal travels
//!   with the first frame), writes a handshake, reads our ack, writes `hello from js`, reads
//!   one frame;
//! - prints what it read (`OUT_ACK …`, `OUT_REPLY …`, `IN_HANDSHAKE …`, `IN_FRAME …`), then
//!   `DONE`, and stops when the test closes its stdin (after our nodes have received
//!   everything: stopping at once could drop its last frame before we read it).
//!
//! Without `npm` or `node` the tests print "js_interop: skipped: npm not found" and pass,
//! except under CI (`OCAP_CI`, set by `.ci/run`), where that is a failure. `OCAP_VAT_NPM` /
//! `OCAP_VAT_NODE` override the binaries, as for ocap-vat's build script (optional).
//!
//! No timed assertions: every wait is on an output, an event or a process exit, with a
//! generous deadline only so that a broken transport fails the test instead of hanging it.

mod common;

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{options, Event, Node, WAIT};
use ocap_abi::remote::RemoteTransport;
use ocap_net::JS_PROTOCOL;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::sync::mpsc;
/// Hang guard for `npm ci` (a cold install downloads ~120 small packages).
const INSTALL_WAIT: Duration = Duration::from_secs(600);

// ---------------------------------------------------------------------------------------------
// The JS peer's npm install (once per test binary)
// ---------------------------------------------------------------------------------------------

/// The installed JS peer.
struct JsPeerDir {
    node: String,
    dir: PathBuf,
    /// A shared lock on the install, held until the process exits: another process may only
    /// reinstall (exclusive lock) once no test runs Node from this tree.
    _lock: File,
}

fn js_source_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

fn tool(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

/// Whether `bin --version` runs.
fn runs(bin: &str) -> bool {
    std::process::Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The installed JS peer, or `None` (after the skip message) when npm or node is missing.
fn js_peer_dir() -> Option<&'static JsPeerDir> {
    static DIR: OnceLock<Option<JsPeerDir>> = OnceLock::new();
    DIR.get_or_init(install).as_ref()
}

fn install() -> Option<JsPeerDir> {
    let npm = tool("OCAP_VAT_NPM", "npm");
    let node = tool("OCAP_VAT_NODE", "node");
    for (bin, what) in [(&npm, "npm"), (&node, "node")] {
        if !runs(bin) {
            assert!(
                std::env::var_os("OCAP_CI").is_none(),
                "js_interop needs Node.js with npm (`{bin}` does not run): install them \
                 (crates/ocap-net/tests/js/README.md)"
            );
            // Written to the real stderr (not captured by the test harness), so it is seen.
            let _ = writeln!(
                std::io::stderr(),
                "js_interop: skipped: {what} not found (`{bin}`); the JS libp2p interop test needs \
                 Node.js with npm (crates/ocap-net/tests/js/README.md)"
            );
            return None;
        }
    }
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.join("ocap-net-js");
    std::fs::create_dir_all(&dir).expect("create the JS peer's install directory");
    let src = js_source_dir();
    let files = ["package.json", "package-lock.json", "peer.mjs", "polyfill.mjs"]
        .map(|f| (f, std::fs::read(src.join(f)).unwrap_or_else(|e| panic!("tests/js/{f}: {e}"))));
    // What the install stamp records: the manifest and lock file it was installed from.
    let manifest: Vec<u8> =
        files.iter().filter(|(f, _)| f.starts_with("package")).flat_map(|(_, b)| b.clone()).collect();
    let stamp = dir.join("node_modules/.ocap-net-js-lock");
    let up_to_date = || {
        files.iter().all(|(f, bytes)| std::fs::read(dir.join(f)).ok().as_ref() == Some(bytes))
            && std::fs::read(&stamp).is_ok_and(|s| s == manifest)
            && dir.join("node_modules/libp2p").is_dir()
    };
    // Test processes that run Node from the tree hold a shared lock; one that (re)installs
    // holds it exclusively, so that neither races another nor pulls the tree from under it.
    let lock = File::create(tmp.join("ocap-net-js.lock")).expect("lock file");
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockShared).expect("flock");
    if !up_to_date() {
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::Unlock).expect("flock");
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).expect("flock");
        for (f, bytes) in &files {
            if std::fs::read(dir.join(f)).ok().as_ref() != Some(bytes) {
                std::fs::write(dir.join(f), bytes).unwrap_or_else(|e| panic!("copy tests/js/{f}: {e}"));
            }
        }
        if !up_to_date() {
            npm_ci(&npm, &dir);
            std::fs::write(&stamp, &manifest).expect("write the install stamp");
        }
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockShared).expect("flock");
    }
    Some(JsPeerDir { node, dir, _lock: lock })
}

/// `npm ci` in `dir`, bounded by [`INSTALL_WAIT`].
fn npm_ci(npm: &str, dir: &Path) {
    let log_path = dir.join("npm-ci.log");
    let log = File::create(&log_path).expect("npm log");
    let mut child = std::process::Command::new(npm)
        .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts", "--prefer-offline"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("npm log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("running `{npm} ci`: {e}"));
    let deadline = Instant::now() + INSTALL_WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for npm") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    match status {
        Some(status) if status.success() => {}
        Some(status) => {
            panic!("`{npm} ci` in {} failed ({status}); the npm registry must be reachable:\n{output}", dir.display())
        }
        None => panic!("`{npm} ci` in {} did not finish within {INSTALL_WAIT:?}:\n{output}", dir.display()),
    }
}

// ---------------------------------------------------------------------------------------------
// The Rust side
// ---------------------------------------------------------------------------------------------

/// A node as the JS kernel's peers are (`protocol = "whatever"`) on loopback TCP, with
/// incarnation `rust-<seed>` (the JS peer prints it back).
fn start(seed: u8) -> Node {
    let mut opts = options(seed, &["/ip4/127.0.0.1/tcp/0"]);
    opts.incarnation_id = format!("rust-{seed}");
    opts.protocol = JS_PROTOCOL.to_owned();
    Node::start_opts(opts)
}

// ---------------------------------------------------------------------------------------------
// The JS process
// ---------------------------------------------------------------------------------------------

/// A running `node peer.mjs`, killed when dropped (a failing test leaves no process behind).
struct JsPeer {
    child: tokio::process::Child,
    /// Closing it tells the peer to stop (it keeps its node up until then).
    stdin: Option<tokio::process::ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every stdout line so far.
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl JsPeer {
    fn spawn(js: &JsPeerDir, target: &str, mode: &'static str) -> JsPeer {
        let mut child = tokio::process::Command::new(&js.node)
            .arg("peer.mjs")
            .arg(target)
            .arg(mode)
            .current_dir(&js.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("running `{} peer.mjs`: {e}", js.node));
        let stdin = child.stdin.take();
        let (line_tx, lines) = mpsc::unbounded_channel();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout piped")).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                eprintln!("js {mode}> {line}");
                let _ = line_tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_lines = BufReader::new(child.stderr.take().expect("stderr piped")).lines();
        let sink = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err_lines.next_line().await {
                eprintln!("js {mode}! {line}");
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        JsPeer { child, stdin, lines, seen: Vec::new(), stderr }
    }

    /// The next stdout line; `what` names what the test waits for.
    async fn line(&mut self, what: &str) -> String {
        let line = match tokio::time::timeout(WAIT, self.lines.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => panic!("{}", self.report(&format!("the JS peer exited before {what}"))),
            Err(_) => panic!("{}", self.report(&format!("the JS peer did not print {what} in time"))),
        };
        self.seen.push(line.clone());
        line
    }

    /// Closes the peer's stdin, reads the rest of its output and waits for it to exit.
    async fn finish(&mut self) {
        self.stdin = None;
        while let Ok(Some(line)) = tokio::time::timeout(WAIT, self.lines.recv()).await {
            self.seen.push(line);
        }
        match tokio::time::timeout(WAIT, self.child.wait()).await {
            Ok(Ok(status)) => {
                assert!(status.success(), "{}", self.report(&format!("the JS peer exited with {status}")))
            }
            Ok(Err(e)) => panic!("waiting for the JS peer: {e}"),
            Err(_) => panic!("{}", self.report("the JS peer did not exit in time")),
        }
    }

    fn report(&self, headline: &str) -> String {
        format!("{headline}; it printed {:?}; its stderr:\n{}", self.seen, self.stderr.lock().unwrap())
    }
}

/// The whole exchange with a JS peer that dials in `mode` (`full` or `optimistic`); `seed`
/// and `seed + 1` key the two Rust nodes.
async fn exchange(mode: &'static str, seed: u8) {
    let Some(js) = js_peer_dir() else { return };
    // A: dialed by JS. B: dials JS.
    let mut a = start(seed);
    let mut b = start(seed + 1);
    let a_addr = a.t.listen_addresses()[0].clone();
    let mut peer = JsPeer::spawn(js, &a_addr, mode);
    let mut js_peer = String::new();
    let mut js_addr = String::new();
    while js_peer.is_empty() || js_addr.is_empty() {
        let line = peer.line("its peer ID and address").await;
        if let Some(p) = line.strip_prefix("JS_PEER ") {
            js_peer = p.to_owned();
        } else if let Some(addr) = line.strip_prefix("JS_ADDR ") {
            js_addr = addr.to_owned();
        }
    }

    // JS dials A on `whatever`: handshake, then a frame each way.
    assert_eq!(a.next().await, Event::Incarnation(js_peer.clone(), "js-incarnation".into()));
    assert_eq!(a.next().await, Event::Deliver(js_peer.clone(), "hello from js".into()));
    a.t.send(&js_peer, "rust reply on the stream js opened".into());

    // B dials JS on `whatever`.
    b.t.register_location_hints(&js_peer, &[js_addr]);
    b.t.send(&js_peer, "hello from rust".into());
    assert_eq!(b.next().await, Event::Incarnation(js_peer.clone(), "js-incarnation".into()));
    assert_eq!(b.next().await, Event::Deliver(js_peer.clone(), "js reply on the stream rust opened".into()));

    while peer.line("DONE").await != "DONE" {}
    a.assert_no_failures();
    b.assert_no_failures();
    a.t.stop();
    b.t.stop();
    peer.finish().await;
    let expect = [
        format!(r#"OUT_ACK {{"method":"handshakeAck","params":{{"incarnationId":"rust-{seed}"}}}}"#),
        "OUT_REPLY rust reply on the stream js opened".to_owned(),
        format!(r#"IN_HANDSHAKE {{"method":"handshake","params":{{"incarnationId":"rust-{}"}}}}"#, seed + 1),
        "IN_FRAME hello from rust".to_owned(),
        "OUT_PROTOCOL whatever".to_owned(),
    ];
    for want in &expect {
        assert!(peer.seen.contains(want), "{}", peer.report(&format!("the JS peer did not print {want:?}")));
    }
    assert!(!peer.seen.iter().any(|l| l.contains("ERROR")), "{}", peer.report("the JS peer failed"));
}

/// JS dials with libp2p's default: multistream-select completes before the first frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_libp2p_peer_talks_whatever_both_ways() {
    exchange("full", 221).await;
}

/// JS dials optimistically (`negotiateFully: false`): the protocol proposal and the first
/// frame arrive together, and the protocol is confirmed only when JS reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_libp2p_peer_talks_whatever_both_ways_optimistically() {
    exchange("optimistic", 223).await;
}
