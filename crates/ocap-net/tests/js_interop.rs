//! Live interop with a JS libp2p node on the bare protocol id `whatever` (ignored by
//! default: it needs Node and a JS peer script, which are not part of this repository).
//!
//! Run with `OCAP_NET_JS_PEER=/path/to/peer.mjs cargo test -p ocap-net --test js_interop --
//! --ignored`. The script is started as `node <script> <our multiaddr>` and must, using
//! `libp2p` with `@libp2p/tcp`, `@chainsafe/libp2p-noise` and `@chainsafe/libp2p-yamux` as
//! the JS kernel does:
//! - `handle('whatever', …)`: read the handshake frame (`lpStream`), answer
//!   `{"method":"handshakeAck","params":{"incarnationId":"js-incarnation"}}`, read one
//!   frame, write `js reply on the stream rust opened`;
//! - print `JS_PEER <peer ID>` and `JS_ADDR <multiaddr>`;
//! - `dialProtocol(<our multiaddr>, 'whatever')`: write the handshake frame with incarnation
//!   `js-incarnation`, read the ack, write `hello from js`, read one frame;
//! - print what it read (`OUT_ACK …`, `OUT_REPLY …`, `IN_HANDSHAKE …`, `IN_FRAME …`) and
//!   `DONE`, then exit.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ocap_abi::remote::{BoxFuture, RemoteInbox, RemoteTransport, SendError};
use ocap_net::{Libp2pTransport, NetOptions, JS_PROTOCOL};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, PartialEq)]
enum Event {
    Deliver(String, String),
    Incarnation(String, String),
    Other(String),
}

struct Inbox(mpsc::UnboundedSender<Event>);

impl RemoteInbox for Inbox {
    fn deliver(&self, peer_id: &str, frame: String) {
        let _ = self.0.send(Event::Deliver(peer_id.into(), frame));
    }
    fn incarnation(&self, peer_id: &str, incarnation_id: &str) -> BoxFuture<'static, bool> {
        let _ = self.0.send(Event::Incarnation(peer_id.into(), incarnation_id.into()));
        Box::pin(async { false })
    }
    fn send_failed(&self, peer_id: &str, error: SendError) {
        let _ = self.0.send(Event::Other(format!("send_failed {peer_id} {error:?}")));
    }
    fn give_up(&self, peer_id: &str) {
        let _ = self.0.send(Event::Other(format!("give_up {peer_id}")));
    }
}

fn start(seed: u8) -> (Arc<Libp2pTransport>, mpsc::UnboundedReceiver<Event>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut opts = NetOptions::new([seed; 32], format!("rust-{seed}"));
    opts.listen_addresses = vec!["/ip4/127.0.0.1/tcp/0".into()];
    opts.protocol = JS_PROTOCOL.to_owned();
    (Libp2pTransport::start(opts, Arc::new(Inbox(tx))).expect("transport starts"), rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Event>) -> Event {
    tokio::time::timeout(WAIT, rx.recv()).await.expect("an inbox event in time").expect("inbox open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and a JS libp2p peer script (OCAP_NET_JS_PEER), see the module doc"]
async fn js_libp2p_peer_talks_whatever_both_ways() {
    let script = std::env::var("OCAP_NET_JS_PEER").expect("OCAP_NET_JS_PEER names the JS peer script");
    // A: dialed by JS. B: dials JS.
    let (a, mut a_events) = start(221);
    let (b, mut b_events) = start(222);
    let a_addr = a.listen_addresses()[0].clone();
    let mut child = Command::new("node")
        .arg(&script)
        .arg(&a_addr)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node starts");
    let (line_tx, mut lines) = mpsc::unbounded_channel::<String>();
    let stdout = child.stdout.take().expect("stdout piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            eprintln!("js> {line}");
            let _ = line_tx.send(line);
        }
    });
    let mut js_peer = String::new();
    let mut js_addr = String::new();
    while js_peer.is_empty() || js_addr.is_empty() {
        let line = tokio::time::timeout(WAIT, lines.recv()).await.expect("JS prints its address").expect("JS runs");
        if let Some(p) = line.strip_prefix("JS_PEER ") {
            js_peer = p.to_owned();
        } else if let Some(addr) = line.strip_prefix("JS_ADDR ") {
            js_addr = addr.to_owned();
        }
    }

    // JS dials A on `whatever`: handshake, then a frame each way.
    assert_eq!(next(&mut a_events).await, Event::Incarnation(js_peer.clone(), "js-incarnation".into()));
    assert_eq!(next(&mut a_events).await, Event::Deliver(js_peer.clone(), "hello from js".into()));
    a.send(&js_peer, "rust reply on the stream js opened".into());

    // B dials JS on `whatever`.
    b.register_location_hints(&js_peer, &[js_addr]);
    b.send(&js_peer, "hello from rust".into());
    assert_eq!(next(&mut b_events).await, Event::Incarnation(js_peer.clone(), "js-incarnation".into()));
    assert_eq!(next(&mut b_events).await, Event::Deliver(js_peer.clone(), "js reply on the stream rust opened".into()));

    let mut seen = Vec::new();
    loop {
        let line = tokio::time::timeout(WAIT, lines.recv()).await.expect("JS finishes").expect("JS runs");
        if line == "DONE" {
            break;
        }
        seen.push(line);
    }
    let _ = child.wait();
    let expect = [
        r#"OUT_ACK {"method":"handshakeAck","params":{"incarnationId":"rust-221"}}"#.to_owned(),
        "OUT_REPLY rust reply on the stream js opened".to_owned(),
        r#"IN_HANDSHAKE {"method":"handshake","params":{"incarnationId":"rust-222"}}"#.to_owned(),
        "IN_FRAME hello from rust".to_owned(),
    ];
    for want in &expect {
        assert!(seen.contains(want), "JS did not print {want:?}; it printed {seen:?}");
    }
    assert!(!seen.iter().any(|l| l.contains("ERROR")), "{seen:?}");
    for rx in [&mut a_events, &mut b_events] {
        while let Ok(ev) = rx.try_recv() {
            assert!(!matches!(ev, Event::Other(_)), "{ev:?}");
        }
    }
    a.stop();
    b.stop();
}
