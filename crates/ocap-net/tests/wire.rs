//! The bare protocol id `whatever` checked against the wire format: on one side our
//! transport configured as JS kernels are (`protocol = "whatever"`), on the other a bare
//! libp2p connection (TCP, noise, yamux; no swarm) on which this test speaks
//! multistream-select 1.0.0 byte by byte, as `@libp2p/multistream-select` does.

mod common;

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use common::{options, Event, Node, WAIT};
use futures::{AsyncReadExt as _, AsyncWriteExt as _};
use libp2p::core::muxing::{StreamMuxerBox, StreamMuxerExt as _, SubstreamBox};
use libp2p::core::transport::{DialOpts, PortUse};
use libp2p::core::upgrade::Version;
use libp2p::core::{Endpoint, Transport as _};
use libp2p::{identity, noise, tcp, yamux, Multiaddr, PeerId};
use ocap_abi::remote::RemoteTransport;
use ocap_net::JS_PROTOCOL;
use tokio::sync::{mpsc, oneshot};

const HEADER: &[u8] = b"\x13/multistream/1.0.0\n";
const WHATEVER: &[u8] = b"\x09whatever\n";

/// A length-prefixed frame (unsigned LEB128 length, then the bytes), written independently
/// of the crate's framing.
fn frame(payload: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut n = payload.len();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    out.extend_from_slice(payload.as_bytes());
    out
}

async fn read_exactly(s: &mut SubstreamBox, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(WAIT, s.read_exact(&mut buf)).await.expect("bytes in time").expect("read");
    buf
}

/// One multistream-select message (one-byte length here), with its length byte.
async fn read_message(s: &mut SubstreamBox) -> Vec<u8> {
    let mut out = read_exactly(s, 1).await;
    assert!(out[0] < 0x80, "short messages only");
    let body = read_exactly(s, usize::from(out[0])).await;
    out.extend_from_slice(&body);
    out
}

/// Owns a bare connection's muxer: serves open requests and hands out inbound substreams.
struct Conn {
    /// The node's peer ID, as noise authenticated it.
    peer: PeerId,
    /// Ours.
    local: PeerId,
    open_tx: mpsc::UnboundedSender<oneshot::Sender<SubstreamBox>>,
    inbound_rx: mpsc::UnboundedReceiver<SubstreamBox>,
}

impl Conn {
    async fn dial(addr: Multiaddr) -> Conn {
        let key = identity::Keypair::generate_ed25519();
        let mut transport = tcp::tokio::Transport::new(tcp::Config::default())
            .upgrade(Version::V1)
            .authenticate(noise::Config::new(&key).unwrap())
            .multiplex(yamux::Config::default())
            .map(|(p, m), _| (p, StreamMuxerBox::new(m)))
            .boxed();
        let dial = transport.dial(addr, DialOpts { role: Endpoint::Dialer, port_use: PortUse::New }).unwrap();
        let (peer, mut muxer) = tokio::time::timeout(WAIT, dial).await.unwrap().unwrap();
        let (open_tx, mut open_rx) = mpsc::unbounded_channel::<oneshot::Sender<SubstreamBox>>();
        let (inbound_tx, inbound_rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut pending: Option<oneshot::Sender<SubstreamBox>> = None;
            poll_fn(|cx| loop {
                let mut progress = false;
                match muxer.poll_unpin(cx) {
                    Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Ready(Ok(_)) => progress = true,
                    Poll::Pending => {}
                }
                match muxer.poll_inbound_unpin(cx) {
                    Poll::Ready(Ok(s)) => {
                        let _ = inbound_tx.send(s);
                        progress = true;
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Pending => {}
                }
                if pending.is_none() {
                    if let Poll::Ready(Some(r)) = open_rx.poll_recv(cx) {
                        pending = Some(r);
                        progress = true;
                    }
                }
                if pending.is_some() {
                    match muxer.poll_outbound_unpin(cx) {
                        Poll::Ready(Ok(s)) => {
                            if let Some(r) = pending.take() {
                                let _ = r.send(s);
                            }
                            progress = true;
                        }
                        Poll::Ready(Err(_)) => return Poll::Ready(()),
                        Poll::Pending => {}
                    }
                }
                if !progress {
                    return Poll::Pending;
                }
            })
            .await;
        });
        Conn { peer, local: key.public().to_peer_id(), open_tx, inbound_rx }
    }

    async fn open(&self) -> SubstreamBox {
        let (tx, rx) = oneshot::channel();
        self.open_tx.send(tx).unwrap();
        tokio::time::timeout(WAIT, rx).await.unwrap().unwrap()
    }

    /// The next inbound substream proposing `whatever`, answering `na` to every other one
    /// (our node's identify and ping): returns it with the exact bytes read from it.
    async fn accept_whatever(&mut self) -> (SubstreamBox, Vec<u8>) {
        loop {
            let mut s = tokio::time::timeout(WAIT, self.inbound_rx.recv()).await.unwrap().unwrap();
            let header = read_message(&mut s).await;
            let proposal = read_message(&mut s).await;
            if proposal == WHATEVER {
                return (s, [header, proposal].concat());
            }
            let _ = s.write_all(&[HEADER, b"\x03na\n"].concat()).await;
            let _ = s.flush().await;
        }
    }
}

/// A node configured as JS kernels are (`protocol = "whatever"`), on loopback TCP.
fn start_node(seed: u8) -> Node {
    let mut opts = options(seed, &["/ip4/127.0.0.1/tcp/0"]);
    opts.protocol = JS_PROTOCOL.to_owned();
    Node::start_opts(opts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatever_on_the_wire() {
    let mut node = start_node(201);
    let addr: Multiaddr = node.t.listen_addresses()[0].parse().unwrap();
    let mut conn = Conn::dial(addr).await;
    assert_eq!(conn.peer.to_string(), node.id);
    let me = conn.local.to_string();

    // 1. The node dials `whatever` over the connection we opened (it knows no address of
    // ours): header and proposal, then the handshake frame once we answered.
    node.t.send(&me, "hello from the node".into());
    let (mut out, proposal) = conn.accept_whatever().await;
    assert_eq!(proposal, b"\x13/multistream/1.0.0\n\x09whatever\n");
    // Answer as @libp2p/multistream-select's `handle` does: the header, then the echo.
    out.write_all(HEADER).await.unwrap();
    out.flush().await.unwrap();
    out.write_all(WHATEVER).await.unwrap();
    out.flush().await.unwrap();
    let handshake = frame(r#"{"method":"handshake","params":{"incarnationId":"incarnation-201"}}"#);
    assert_eq!(read_exactly(&mut out, handshake.len()).await, handshake);
    out.write_all(&frame(r#"{"method":"handshakeAck","params":{"incarnationId":"hand-1"}}"#)).await.unwrap();
    out.flush().await.unwrap();
    assert_eq!(node.next().await, Event::Incarnation(me.clone(), "hand-1".into()));
    let hello = frame("hello from the node");
    assert_eq!(read_exactly(&mut out, hello.len()).await, hello);
    out.write_all(&frame("reply on the node's stream")).await.unwrap();
    out.flush().await.unwrap();
    assert_eq!(node.next().await, Event::Deliver(me.clone(), "reply on the node's stream".into()));

    // 2. We dial `whatever` as an optimistic JS dialer would: header, proposal and the
    // handshake frame in one write. The node answers the header and echoes the id, then
    // acks the handshake; nothing we sent after the proposal is lost to the sniffing.
    let mut inb = conn.open().await;
    let hs = frame(r#"{"method":"handshake","params":{"incarnationId":"hand-2"}}"#);
    inb.write_all(&[HEADER, WHATEVER, &hs].concat()).await.unwrap();
    inb.flush().await.unwrap();
    assert_eq!(read_exactly(&mut inb, 30).await, b"\x13/multistream/1.0.0\n\x09whatever\n");
    let ack = frame(r#"{"method":"handshakeAck","params":{"incarnationId":"incarnation-201"}}"#);
    assert_eq!(read_exactly(&mut inb, ack.len()).await, ack);
    assert_eq!(node.next().await, Event::Incarnation(me.clone(), "hand-2".into()));
    inb.write_all(&frame("on our stream")).await.unwrap();
    inb.flush().await.unwrap();
    assert_eq!(node.next().await, Event::Deliver(me.clone(), "on our stream".into()));
    // It replaced the node's channel: the node now writes on ours.
    node.t.send(&me, "second".into());
    let second = frame("second");
    assert_eq!(read_exactly(&mut inb, second.len()).await, second);

    // 3. Everything else still goes to the swarm, byte for byte: identify is answered by
    // rust-libp2p's own listener (header, echo, then the identify message) after the
    // sniffer replayed what it read...
    let mut id = conn.open().await;
    id.write_all(&[HEADER, b"\x0f/ipfs/id/1.0.0\n"].concat()).await.unwrap();
    id.flush().await.unwrap();
    assert_eq!(read_exactly(&mut id, 20 + 16).await, [HEADER, b"\x0f/ipfs/id/1.0.0\n"].concat());
    let mut info = Vec::new();
    tokio::time::timeout(WAIT, id.read_to_end(&mut info)).await.unwrap().unwrap();
    assert!(info.windows(21).any(|w| w == b"/ocap-kernel/id/1.0.0"), "identify message: {info:?}");
    // ...and an unknown `/` id, also answered by it, with `na`.
    let mut nope = conn.open().await;
    nope.write_all(&[HEADER, b"\x0c/nope/1.0.0\n"].concat()).await.unwrap();
    nope.flush().await.unwrap();
    assert_eq!(read_exactly(&mut nope, 24).await, [HEADER, b"\x03na\n"].concat());

    drop((out, inb));
    node.assert_no_failures();
    node.t.stop();
}

/// A peer without `whatever` answers `na`: the node's attempt fails as unsupported (not
/// retried), the queued frame fails, and it gives up on the peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn na_means_the_peer_lacks_whatever() {
    let mut node = start_node(202);
    let addr: Multiaddr = node.t.listen_addresses()[0].parse().unwrap();
    let mut conn = Conn::dial(addr).await;
    let me = conn.local.to_string();
    let mut inbound = std::mem::replace(&mut conn.inbound_rx, mpsc::unbounded_channel().1);
    let saw_whatever = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let saw = saw_whatever.clone();
    tokio::spawn(async move {
        while let Some(mut s) = inbound.recv().await {
            let saw = saw.clone();
            tokio::spawn(async move {
                let _header = read_message(&mut s).await;
                if read_message(&mut s).await == WHATEVER {
                    saw.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                let _ = s.write_all(&[HEADER, b"\x03na\n"].concat()).await;
                let _ = s.flush().await;
                // Keep it open until the node gives up on it.
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest).await;
            });
        }
    });
    node.t.send(&me, "never delivered".into());
    let mut failed = None;
    loop {
        match node.next().await {
            Event::SendFailed(_, e) => failed = Some(e.message),
            Event::GiveUp(_) => break,
            other => panic!("{other:?}"),
        }
    }
    let failed = failed.expect("the queued frame failed");
    assert!(failed.contains("does not support protocol whatever"), "{failed}");
    assert!(saw_whatever.load(std::sync::atomic::Ordering::SeqCst));
    node.t.stop();
}
