//! Live interop with a real JS libp2p node on the bare protocol id `whatever`, the one the JS
//! ocap kernel speaks.
//!
//! The JS side is `tests/js/peer.mjs` (see `tests/js/README.md`): libp2p with `@libp2p/tcp`,
//! `@libp2p/websockets`, `@libp2p/circuit-relay-v2`, `@chainsafe/libp2p-noise` and
//! `@chainsafe/libp2p-yamux` as the JS kernel configures them, plus `@chainsafe/libp2p-quic`
//! (a native addon; its `linux-x64-gnu` binary is the one the registry serves), at the
//! versions pinned by `tests/js/package-lock.json`. The first test copies
//! `tests/js/{package.json,package-lock.json,*.mjs}` to `$CARGO_TARGET_TMPDIR/ocap-net-js/`
//! and runs `npm ci` there (skipped while the installed tree matches the lock file), under a
//! file lock so that concurrent test processes neither race nor run Node from a tree being
//! reinstalled. Nothing is installed in the source tree.
//!
//! Each test starts `node peer.mjs <our multiaddr> <full|optimistic> [ws|quic|circuit
//! <relay>]`, which
//! - handles `whatever`: reads our handshake, answers a handshakeAck with incarnation
//!   `js-incarnation`, reads one frame, writes `js reply on the stream rust opened`;
//! - dials us on `whatever` (`full`: libp2p's default, multistream-select completes before
//!   the first write; `optimistic`: `negotiateFully: false`, the protocol proposal travels
//!   with the first frame), writes a handshake, reads our ack, writes `hello from js`, reads
//!   one frame;
//! - prints what it read (`OUT_ACK …`, `OUT_REPLY …`, `IN_HANDSHAKE …`, `IN_FRAME …`) and
//!   the remote addresses of the connections both streams ran on (`OUT_VIA …`, `IN_VIA …`,
//!   which the test checks against the transport under test), then `DONE`, and stops when the test closes its stdin (after our nodes have received
//!   everything: stopping at once could drop its last frame before we read it).
//!
//! Transports ([`Via`]): loopback TCP; loopback plain WebSocket (`/tcp/<port>/ws`, the JS
//! node with `@libp2p/websockets` only, dialing with Node's global `WebSocket`, under
//! `--experimental-websocket` on Node 20/21); loopback QUIC v1 (`/udp/<port>/quic-v1`, the
//! JS node with `@chainsafe/libp2p-quic` only and no Noise or Yamux, QUIC securing and
//! multiplexing itself); and a relayed circuit through a JS relay
//! (`tests/js/relay.mjs`: `circuitRelayServer` with `applyDefaultLimit: false`, as the JS
//! kernel's relay), where our node and the JS peer only listen on `<relay>/p2p-circuit` and
//! the JS peer, like the kernel, does not set `runOnLimitedConnection`. Not tested: the JS
//! peer through our own [`ocap_net::RelayServer`], which does not interoperate:
//! `libp2p-relay` 0.21 always sends a circuit `limit`, so JS marks the connection limited
//! and refuses `whatever` on it (JS dialing: `LimitedConnectionError: Cannot open protocol
//! stream on limited connection`; Rust dialing: "handshake failed: stream closed before
//! handshakeAck", retried without end).
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

use common::{options, until, Event, Node, WAIT};
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
    /// Flags before the script: `--experimental-websocket` where Node has no global
    /// `WebSocket` without it (Node 20, 21), see [`websocket_flag`].
    node_flags: Vec<&'static str>,
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
    let files = ["package.json", "package-lock.json", "peer.mjs", "polyfill.mjs", "relay.mjs", "lifecycle.mjs"]
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
    let node_flags = websocket_flag(&node).into_iter().collect();
    Some(JsPeerDir { node, node_flags, dir, _lock: lock })
}

/// `--experimental-websocket` if `node` needs it for a global `WebSocket` (Node 20 and 21;
/// Node 22 and later have it by default). `@libp2p/websockets` dials with the global, as the
/// JS kernel does on Node 22+ (the same undici client); its listener uses the `ws` package.
fn websocket_flag(node: &str) -> Option<&'static str> {
    const FLAG: &str = "--experimental-websocket";
    let has_websocket = |flag: Option<&str>| {
        std::process::Command::new(node)
            .args(flag)
            .args(["-e", "if (typeof WebSocket !== 'function') process.exit(1)"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    (!has_websocket(None) && has_websocket(Some(FLAG))).then_some(FLAG)
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

/// A node as the JS kernel's peers are (`protocol = "whatever"`), listening on `listen` and
/// reserving a slot on each of `relays`, with incarnation `rust-<seed>` (the JS peer prints
/// it back).
fn start(seed: u8, listen: &[&str], relays: &[String]) -> Node {
    let mut opts = options(seed, listen);
    opts.incarnation_id = format!("rust-{seed}");
    opts.protocol = JS_PROTOCOL.to_owned();
    opts.relays = relays.to_vec();
    Node::start_opts(opts)
}

// ---------------------------------------------------------------------------------------------
// The JS process
// ---------------------------------------------------------------------------------------------

/// A running `node peer.mjs` (or `relay.mjs`), killed when dropped (a failing test leaves no
/// process behind).
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
    /// Runs `node <script> <args…>`; `label` prefixes its output in the test log.
    fn spawn(js: &JsPeerDir, script: &str, args: &[&str], label: &str) -> JsPeer {
        let mut child = tokio::process::Command::new(&js.node)
            .args(&js.node_flags)
            .arg(script)
            .args(args)
            .current_dir(&js.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("running `{} {script}`: {e}", js.node));
        let stdin = child.stdin.take();
        let (line_tx, lines) = mpsc::unbounded_channel();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout piped")).lines();
        let out_label = label.to_owned();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                eprintln!("js {out_label}> {line}");
                let _ = line_tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_lines = BufReader::new(child.stderr.take().expect("stderr piped")).lines();
        let sink = stderr.clone();
        let err_label = label.to_owned();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err_lines.next_line().await {
                eprintln!("js {err_label}! {line}");
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

/// How the JS peer and our nodes reach each other.
#[derive(Clone, Copy, Debug)]
enum Via {
    /// Loopback TCP (`@libp2p/tcp` on the JS side).
    Tcp,
    /// Loopback plain WebSocket (`/tcp/<port>/ws`; `@libp2p/websockets` only on the JS side).
    Ws,
    /// Loopback QUIC v1 (`/udp/<port>/quic-v1`; `@chainsafe/libp2p-quic` only on the JS side,
    /// with no Noise or Yamux: QUIC secures and multiplexes itself).
    Quic,
    /// A circuit through a JS relay (`relay.mjs`): nobody listens directly; A and the JS peer
    /// each reserve a slot on the relay and are dialed at their `/p2p-circuit` addresses.
    JsRelay,
}

/// The whole exchange with a JS peer that dials in `mode` (`full` or `optimistic`) over
/// `via`; `seed` and `seed + 1` key the two Rust nodes.
async fn exchange(mode: &'static str, via: Via, seed: u8) {
    let Some(js) = js_peer_dir() else { return };
    let label = format!("{mode}/{via:?}");
    // The JS relay, first: A reserves a slot on it.
    let mut relay = None;
    let mut relay_addr = String::new();
    if let Via::JsRelay = via {
        let r = relay.insert(JsPeer::spawn(js, "relay.mjs", &[], &format!("{label}/relay")));
        loop {
            if let Some(addr) = r.line("its address").await.strip_prefix("RELAY_ADDR ") {
                relay_addr = addr.to_owned();
                break;
            }
        }
    }
    // A: dialed by JS. B: dials JS.
    let (listen, relays): (&[&str], Vec<String>) = match via {
        Via::Tcp => (&["/ip4/127.0.0.1/tcp/0"], vec![]),
        Via::Ws => (&["/ip4/127.0.0.1/tcp/0/ws"], vec![]),
        Via::Quic => (&["/ip4/127.0.0.1/udp/0/quic-v1"], vec![]),
        Via::JsRelay => (&[], vec![relay_addr.clone()]),
    };
    let mut a = start(seed, listen, &relays);
    let mut b = start(seed + 1, listen, &[]);
    let a_addr = match via {
        Via::Tcp | Via::Ws | Via::Quic => a.t.listen_addresses()[0].clone(),
        Via::JsRelay => {
            until("A reserves a slot on the JS relay", || {
                a.t.listen_addresses().iter().any(|l| l.contains("/p2p-circuit"))
            })
            .await;
            a.t.listen_addresses().into_iter().find(|l| l.contains("/p2p-circuit")).unwrap_or_default()
        }
    };
    match via {
        Via::Ws => assert!(a_addr.contains("/ws/p2p/"), "{a_addr}"),
        Via::Quic => assert!(a_addr.contains("/quic-v1/p2p/"), "{a_addr}"),
        Via::Tcp | Via::JsRelay => {}
    }
    let mut args = vec![a_addr.as_str(), mode];
    match via {
        Via::Tcp => {}
        Via::Ws => args.push("ws"),
        Via::Quic => args.push("quic"),
        Via::JsRelay => args.extend(["circuit", relay_addr.as_str()]),
    }
    let mut peer = JsPeer::spawn(js, "peer.mjs", &args, &label);
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
    let js_addr_kind = match via {
        Via::Tcp => "/tcp/",
        Via::Ws => "/ws/p2p/",
        Via::Quic => "/quic-v1/p2p/",
        Via::JsRelay => "/p2p-circuit/p2p/",
    };
    assert!(js_addr.contains(js_addr_kind), "{}", peer.report(&format!("JS_ADDR {js_addr} is not {via:?}")));

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
    if let Some(r) = relay.as_mut() {
        r.finish().await;
    }
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
    // Both streams ran on connections of the kind under test.
    for prefix in ["OUT_VIA ", "IN_VIA "] {
        let via_line = peer.seen.iter().find_map(|l| l.strip_prefix(prefix)).unwrap_or_default();
        let kind = !via_line.is_empty()
            && via_line.split(' ').all(|a| match via {
                Via::Tcp => !a.contains("/ws") && !a.contains("/p2p-circuit"),
                Via::Ws => a.contains("/ws"),
                Via::Quic => a.contains("/udp/") && a.contains("/quic-v1"),
                Via::JsRelay => a.contains("/p2p-circuit"),
            });
        assert!(kind, "{}", peer.report(&format!("{prefix}{via_line:?} is not {via:?}")));
    }
}

/// JS dials with libp2p's default: multistream-select completes before the first frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_libp2p_peer_talks_whatever_both_ways() {
    exchange("full", Via::Tcp, 221).await;
}

/// JS dials optimistically (`negotiateFully: false`): the protocol proposal and the first
/// frame arrive together, and the protocol is confirmed only when JS reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_libp2p_peer_talks_whatever_both_ways_optimistically() {
    exchange("optimistic", Via::Tcp, 223).await;
}

/// The same exchange over plain WebSocket on loopback, both ways (JS has no TCP transport).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_libp2p_peer_talks_whatever_over_websocket() {
    exchange("full", Via::Ws, 225).await;
}

/// The same exchange over WebSocket with JS dialing optimistically.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_libp2p_peer_talks_whatever_over_websocket_optimistically() {
    exchange("optimistic", Via::Ws, 227).await;
}

/// The same exchange over QUIC v1 on loopback, both ways (JS has only `@chainsafe/libp2p-quic`,
/// without Noise or Yamux).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_libp2p_peer_talks_whatever_over_quic() {
    exchange("full", Via::Quic, 233).await;
}

/// The same exchange over QUIC with JS dialing optimistically.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_libp2p_peer_talks_whatever_over_quic_optimistically() {
    exchange("optimistic", Via::Quic, 235).await;
}

/// The same exchange through a JS circuit relay (`applyDefaultLimit: false`, as the JS
/// kernel's relay): our node reserves a slot on it and the JS peer dials its `/p2p-circuit`
/// address; our other node dials the JS peer's circuit address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_libp2p_peer_talks_whatever_through_a_js_relay() {
    exchange("full", Via::JsRelay, 229).await;
}

/// The same exchange through a JS relay with JS dialing optimistically.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_libp2p_peer_talks_whatever_through_a_js_relay_optimistically() {
    exchange("optimistic", Via::JsRelay, 231).await;
}
