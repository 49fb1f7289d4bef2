//! Bare application protocol ids such as the JS kernel's `whatever` (no leading `/`), which
//! rust-libp2p's multistream-select refuses to propose or accept (see the crate doc).
//!
//! Every connection's muxer is wrapped in a [`RawMuxer`] (installed with `Transport::map`
//! over the whole transport stack, see `node::build_swarm`). The wrapper
//! - *sniffs* each inbound substream: it reads the multistream-select header and the first
//!   proposal itself (at most [`max_sniff_bytes`] bytes, never more than those two
//!   messages). If the proposal is one of our bare ids, it answers the header and echoes the
//!   id, and hands the substream to the transport ([`RawProtocols::take_incoming`]);
//!   otherwise it yields a [`Replay`] substream that first returns the bytes it read, so the
//!   swarm's own negotiation (identify, ping, relay, `/ocap-kernel/1.0.0`, …) proceeds as if
//!   nothing had happened;
//! - opens outbound substreams on request ([`RawProtocols::open`]) next to the swarm's own,
//!   on which the caller runs the dialer side of multistream-select by hand
//!   ([`dialer_select`]).
//!
//! The swarm does not know of these substreams, so a connection carrying only them would be
//! closed as idle. [`KeepAlive`] is a behaviour whose connection handlers keep their
//! connection alive while the wrapper counts live raw substreams (or sniffs) on it.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::task::AtomicWaker;
use futures::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, FutureExt as _, StreamExt as _};
use libp2p::core::muxing::{StreamMuxer, StreamMuxerBox, StreamMuxerEvent, StreamMuxerExt as _, SubstreamBox};
use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::DeniedUpgrade;
use libp2p::core::{ConnectedPoint, Endpoint};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::handler::ConnectionEvent;
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm, NetworkBehaviour,
    SubstreamProtocol, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

/// The JS kernel's application protocol id (remote-comms.md §4.1, §9.1).
pub const JS_PROTOCOL: &str = "whatever";

/// The multistream-select 1.0.0 header message: a uvarint length (19) and
/// `/multistream/1.0.0\n`.
pub(crate) const MSS_HEADER: &[u8] = b"\x13/multistream/1.0.0\n";

/// Longest bare protocol id we accept (bytes, without the `\n`): keeps every message of ours
/// a one-byte-length message and bounds the sniffing.
pub(crate) const MAX_RAW_PROTOCOL_LEN: usize = 100;

/// How long an inbound substream may take to send the header and its first proposal before
/// the wrapper stops waiting and hands it to the swarm as it is (replaying what it read).
/// Handing it over is always safe: the swarm then negotiates under its own timeout.
const SNIFF_TIMEOUT: Duration = Duration::from_secs(10);

/// Most inbound substreams one connection sniffs at once; more wait in the muxer (yamux
/// then applies its own back-pressure), as the swarm does with its 128 negotiating streams.
const MAX_SNIFFS_PER_CONNECTION: usize = 32;

/// Longest multistream-select message the dialer side accepts in an answer (`na`, the header
/// and the echo are all far shorter).
const MAX_ANSWER_LEN: usize = 1024;

/// Most bytes the wrapper reads from an inbound substream before deciding: the header, a
/// one-byte length and the longest bare id with its `\n`.
pub(crate) const fn max_sniff_bytes() -> usize {
    MSS_HEADER.len() + 1 + MAX_RAW_PROTOCOL_LEN + 1
}

/// Whether `name` can be used as a bare protocol id: not `/`-prefixed (those go through
/// libp2p), non-empty, at most [`MAX_RAW_PROTOCOL_LEN`] bytes, no control characters, and
/// not one of multistream-select's own words (`na`, `ls`).
pub(crate) fn valid_raw_protocol(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && name.len() <= MAX_RAW_PROTOCOL_LEN
        && !name.chars().any(char::is_control)
        && name != "na"
        && name != "ls"
}

/// A multistream-select message: uvarint length (one byte here), `text`, `\n`.
pub(crate) fn mss_message(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 2);
    crate::framing::encode_varint(text.len() as u64 + 1, &mut out);
    out.extend_from_slice(text.as_bytes());
    out.push(b'\n');
    out
}

// ---------------------------------------------------------------------------------------
// Shared registry

/// What identifies a connection both in `Transport::map` (its `ConnectedPoint`) and in
/// `NetworkBehaviour::handle_established_*_connection`, where the swarm passes the same
/// addresses (`libp2p-swarm` `Swarm::handle_pool_event`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ConnKey {
    Dialer(Multiaddr),
    Listener { local: Multiaddr, remote: Multiaddr },
}

impl ConnKey {
    fn of(endpoint: &ConnectedPoint) -> Self {
        match endpoint {
            ConnectedPoint::Dialer { address, .. } => ConnKey::Dialer(address.clone()),
            ConnectedPoint::Listener { local_addr, send_back_addr } => {
                ConnKey::Listener { local: local_addr.clone(), remote: send_back_addr.clone() }
            }
        }
    }
}

type OpenReply = oneshot::Sender<io::Result<SubstreamBox>>;

/// Per-connection state shared by its [`RawMuxer`], its [`KeepAliveHandler`], and the raw
/// substreams on it.
struct ConnState {
    /// Live raw substreams and sniffs in progress.
    live: AtomicUsize,
    /// The connection task (registered by the keep-alive handler's `poll`), woken when
    /// `live` drops to 0 so the swarm re-evaluates keep-alive and starts its idle timer.
    waker: AtomicWaker,
    /// Requests for a new outbound substream, served by the muxer's `poll`.
    open_tx: mpsc::UnboundedSender<OpenReply>,
    relayed: bool,
}

/// Counts one live raw substream (or sniff) on a connection while it exists.
struct LiveGuard(Arc<ConnState>);

impl LiveGuard {
    fn new(state: Arc<ConnState>) -> Self {
        state.live.fetch_add(1, Ordering::SeqCst);
        LiveGuard(state)
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.waker.wake();
        }
    }
}

#[derive(Default)]
struct Conns {
    /// Every live connection's state by peer (for outbound opens), oldest first.
    by_peer: HashMap<PeerId, Vec<Weak<ConnState>>>,
    /// Connections whose keep-alive handler has not been created yet.
    unclaimed: Vec<(PeerId, ConnKey, Weak<ConnState>)>,
}

impl Conns {
    fn prune(&mut self) {
        self.by_peer.retain(|_, v| {
            v.retain(|w| w.strong_count() > 0);
            !v.is_empty()
        });
        self.unclaimed.retain(|(_, _, w)| w.strong_count() > 0);
    }
}

/// The bare protocol ids this node answers, the connections it knows, and where diverted
/// inbound substreams go. One per node, shared by the transport map, the keep-alive
/// behaviour and the transport.
pub(crate) struct RawProtocols {
    /// The proposal messages we accept inbound (each [`mss_message`] of an id).
    accepted: Arc<Vec<Vec<u8>>>,
    incoming_tx: mpsc::UnboundedSender<(PeerId, RawStream)>,
    incoming_rx: Mutex<Option<mpsc::UnboundedReceiver<(PeerId, RawStream)>>>,
    conns: Mutex<Conns>,
}

impl RawProtocols {
    /// A registry accepting `names` inbound (each must pass [`valid_raw_protocol`]).
    pub(crate) fn new(names: &[&str]) -> Arc<Self> {
        let (incoming_tx, incoming_rx) = mpsc::unbounded_channel();
        let mut accepted: Vec<Vec<u8>> = Vec::new();
        for n in names {
            let m = mss_message(n);
            if valid_raw_protocol(n) && !accepted.contains(&m) {
                accepted.push(m);
            }
        }
        Arc::new(Self {
            accepted: Arc::new(accepted),
            incoming_tx,
            incoming_rx: Mutex::new(Some(incoming_rx)),
            conns: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Conns> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The inbound substreams whose remote proposed one of our bare ids (already answered),
    /// with the remote peer. Can be taken once.
    pub(crate) fn take_incoming(&self) -> Option<mpsc::UnboundedReceiver<(PeerId, RawStream)>> {
        self.incoming_rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Wraps a freshly upgraded connection's muxer (the `Transport::map` step).
    pub(crate) fn wrap(self: &Arc<Self>, peer: PeerId, inner: StreamMuxerBox, endpoint: &ConnectedPoint) -> RawMuxer {
        let (open_tx, open_rx) = mpsc::unbounded_channel();
        let relayed = endpoint.get_remote_address().iter().any(|p| matches!(p, Protocol::P2pCircuit));
        let state = Arc::new(ConnState { live: AtomicUsize::new(0), waker: AtomicWaker::new(), open_tx, relayed });
        {
            let mut conns = self.lock();
            conns.prune();
            conns.by_peer.entry(peer).or_default().push(Arc::downgrade(&state));
            conns.unclaimed.push((peer, ConnKey::of(endpoint), Arc::downgrade(&state)));
        }
        RawMuxer {
            inner,
            peer,
            state,
            protocols: self.clone(),
            open_rx,
            opening: None,
            sniffs: FuturesUnordered::new(),
            ready: VecDeque::new(),
        }
    }

    /// The state of the connection the swarm just established, for its keep-alive handler.
    /// Should two connections share peer and addresses, either may get either's state; the
    /// worst outcome is one kept alive a little longer than needed.
    fn claim(&self, peer: PeerId, key: &ConnKey) -> Option<Arc<ConnState>> {
        let mut conns = self.lock();
        conns.prune();
        let i = conns.unclaimed.iter().position(|(p, k, _)| *p == peer && k == key)?;
        let (_, _, weak) = conns.unclaimed.remove(i);
        weak.upgrade()
    }

    /// Opens a substream to `peer` on one of its live connections (the newest direct one,
    /// else the newest relayed one) and negotiates the bare id `name` on it as the dialer.
    pub(crate) async fn open(&self, peer: PeerId, name: &str) -> Result<RawStream, OpenError> {
        let state = {
            let mut conns = self.lock();
            conns.prune();
            let live: Vec<Arc<ConnState>> =
                conns.by_peer.get(&peer).map(|v| v.iter().filter_map(Weak::upgrade).collect()).unwrap_or_default();
            live.iter().rev().find(|s| !s.relayed).or_else(|| live.last()).cloned()
        };
        let state = state.ok_or(OpenError::NotConnected)?;
        let guard = LiveGuard::new(state.clone());
        let (tx, rx) = oneshot::channel();
        state.open_tx.send(tx).map_err(|_| OpenError::NotConnected)?;
        let inner = rx.await.map_err(|_| OpenError::NotConnected)?.map_err(OpenError::Io)?;
        let mut stream = RawStream { inner, _guard: guard };
        dialer_select(&mut stream, name).await?;
        Ok(stream)
    }
}

/// Why [`RawProtocols::open`] failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    #[error("no connection to the peer")]
    NotConnected,
    #[error("peer does not support protocol {0}")]
    Unsupported(String),
    #[error("protocol negotiation failed: {0}")]
    Protocol(String),
    #[error("{0}")]
    Io(io::Error),
}

// ---------------------------------------------------------------------------------------
// multistream-select by hand

/// Reads one multistream-select message (uvarint length, then that many bytes) of at most
/// `max` bytes.
async fn read_message<S: AsyncRead + Unpin>(s: &mut S, max: usize) -> Result<Vec<u8>, OpenError> {
    let mut len: usize = 0;
    let mut shift = 0;
    loop {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.map_err(OpenError::Io)?;
        len |= usize::from(b[0] & 0x7f) << shift;
        if b[0] & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 21 {
            return Err(OpenError::Protocol("message length varint too long".into()));
        }
    }
    if len > max {
        return Err(OpenError::Protocol(format!("message of {len} bytes")));
    }
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf).await.map_err(OpenError::Io)?;
    Ok(buf)
}

/// The dialer side of multistream-select 1.0.0 for the bare id `name`: writes the header and
/// the proposal in one write (as JS and rust-libp2p do), then reads answers until the echo.
/// The listener's header may come first or not at all before the echo, and in one write
/// with it or not; `na` means the listener lacks the protocol.
pub(crate) async fn dialer_select<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, name: &str) -> Result<(), OpenError> {
    let mut out = MSS_HEADER.to_vec();
    out.extend_from_slice(&mss_message(name));
    s.write_all(&out).await.map_err(OpenError::Io)?;
    s.flush().await.map_err(OpenError::Io)?;
    let header = &MSS_HEADER[1..];
    let echo = format!("{name}\n");
    let mut seen_header = false;
    loop {
        let msg = read_message(s, MAX_ANSWER_LEN).await?;
        if msg == header && !seen_header {
            seen_header = true;
        } else if msg == echo.as_bytes() {
            return Ok(());
        } else if msg == b"na\n" {
            return Err(OpenError::Unsupported(name.to_owned()));
        } else {
            return Err(OpenError::Protocol(format!("unexpected answer {:?}", String::from_utf8_lossy(&msg))));
        }
    }
}

/// Reads into `buf` until it holds `target` bytes. On error or EOF the bytes read so far
/// stay in `buf` (to be replayed).
async fn fill<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>, target: usize) -> io::Result<()> {
    let mut chunk = [0u8; 128];
    while buf.len() < target {
        let want = (target - buf.len()).min(chunk.len());
        let n = s.read(&mut chunk[..want]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// Reads the header and the first proposal into `buf`, stopping at the first byte that
/// rules out every id in `accepted`. Returns the index of the accepted proposal, if any.
async fn read_proposal<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
    accepted: &[Vec<u8>],
) -> io::Result<Option<usize>> {
    fill(s, buf, 1).await?;
    if buf[0] != MSS_HEADER[0] {
        return Ok(None);
    }
    fill(s, buf, MSS_HEADER.len()).await?;
    if buf[..] != *MSS_HEADER {
        return Ok(None);
    }
    fill(s, buf, MSS_HEADER.len() + 1).await?;
    let len_byte = buf[MSS_HEADER.len()];
    let candidates: Vec<usize> = (0..accepted.len()).filter(|&i| accepted[i][0] == len_byte).collect();
    let Some(&first) = candidates.first() else { return Ok(None) };
    fill(s, buf, MSS_HEADER.len() + accepted[first].len()).await?;
    debug_assert!(buf.len() <= max_sniff_bytes());
    let proposal = &buf[MSS_HEADER.len()..];
    Ok(candidates.into_iter().find(|&i| accepted[i][..] == *proposal))
}

enum Sniffed {
    /// Not ours: give it to the swarm, replaying what was read.
    Replay(Replay),
    /// Ours, answered: give it to the transport.
    Divert(RawStream),
    /// Ours, but answering failed.
    Dropped,
}

/// The listener side for one inbound substream: ours (answered and diverted) or not
/// (replayed), bounded by [`SNIFF_TIMEOUT`] and [`max_sniff_bytes`].
async fn sniff(mut inner: SubstreamBox, accepted: Arc<Vec<Vec<u8>>>, guard: LiveGuard) -> Sniffed {
    let mut buf = Vec::with_capacity(MSS_HEADER.len() + 16);
    let verdict = tokio::time::timeout(SNIFF_TIMEOUT, read_proposal(&mut inner, &mut buf, &accepted)).await;
    match verdict {
        Ok(Ok(Some(i))) => {
            let mut answer = MSS_HEADER.to_vec();
            answer.extend_from_slice(&accepted[i]);
            let written = tokio::time::timeout(SNIFF_TIMEOUT, async {
                inner.write_all(&answer).await?;
                inner.flush().await
            })
            .await;
            match written {
                Ok(Ok(())) => Sniffed::Divert(RawStream { inner, _guard: guard }),
                _ => Sniffed::Dropped,
            }
        }
        // Not ours, too slow, or failed: the swarm sees exactly what we saw.
        Ok(Ok(None)) | Ok(Err(_)) | Err(_) => Sniffed::Replay(Replay { prefix: buf, pos: 0, inner }),
    }
}

// ---------------------------------------------------------------------------------------
// Substreams

/// A substream given to the swarm: first the bytes the sniffer consumed, then the rest.
pub(crate) struct Replay {
    prefix: Vec<u8>,
    pos: usize,
    inner: SubstreamBox,
}

impl AsyncRead for Replay {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pos < this.prefix.len() {
            let n = out.len().min(this.prefix.len() - this.pos);
            out[..n].copy_from_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut this.inner).poll_read(cx, out)
    }
}

impl AsyncWrite for Replay {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// A substream negotiated on a bare id, outside the swarm. Keeps its connection alive.
pub(crate) struct RawStream {
    inner: SubstreamBox,
    _guard: LiveGuard,
}

impl std::fmt::Debug for RawStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawStream").finish_non_exhaustive()
    }
}

impl AsyncRead for RawStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for RawStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// A channel's stream: negotiated by libp2p (`/`-prefixed id) or by us (bare id).
pub(crate) enum ChannelStream {
    Libp2p(libp2p::Stream),
    Raw(RawStream),
}

impl AsyncRead for ChannelStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ChannelStream::Libp2p(s) => Pin::new(s).poll_read(cx, buf),
            ChannelStream::Raw(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ChannelStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ChannelStream::Libp2p(s) => Pin::new(s).poll_write(cx, buf),
            ChannelStream::Raw(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ChannelStream::Libp2p(s) => Pin::new(s).poll_flush(cx),
            ChannelStream::Raw(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ChannelStream::Libp2p(s) => Pin::new(s).poll_close(cx),
            ChannelStream::Raw(s) => Pin::new(s).poll_close(cx),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The muxer wrapper

/// A connection's muxer with bare-id sniffing and opening (see the module doc). All its
/// work happens in the connection's task, inside the swarm's calls to it.
pub(crate) struct RawMuxer {
    inner: StreamMuxerBox,
    peer: PeerId,
    state: Arc<ConnState>,
    protocols: Arc<RawProtocols>,
    open_rx: mpsc::UnboundedReceiver<OpenReply>,
    /// The open request being served.
    opening: Option<OpenReply>,
    sniffs: FuturesUnordered<BoxFuture<'static, Sniffed>>,
    /// Sniffed substreams that are not ours, for the next `poll_inbound`.
    ready: VecDeque<Replay>,
}

impl RawMuxer {
    /// Advances the sniffs; returns whether one finished with a substream for the swarm.
    fn drive_sniffs(&mut self, cx: &mut Context<'_>) -> bool {
        let mut replayed = false;
        while let Poll::Ready(Some(done)) = self.sniffs.poll_next_unpin(cx) {
            match done {
                Sniffed::Replay(s) => {
                    self.ready.push_back(s);
                    replayed = true;
                }
                Sniffed::Divert(s) => {
                    tracing::debug!(peer = %self.peer, "inbound substream on a bare protocol id");
                    // Dropped (reset) if the transport is gone.
                    let _ = self.protocols.incoming_tx.send((self.peer, s));
                }
                Sniffed::Dropped => tracing::debug!(peer = %self.peer, "could not answer a bare protocol proposal"),
            }
        }
        replayed
    }

    /// Serves pending open requests with new outbound substreams of the inner muxer.
    fn serve_opens(&mut self, cx: &mut Context<'_>) {
        loop {
            if self.opening.as_ref().is_some_and(|r| r.is_closed()) {
                self.opening = None;
            }
            if self.opening.is_none() {
                match self.open_rx.poll_recv(cx) {
                    Poll::Ready(Some(r)) => {
                        self.opening = Some(r);
                        continue;
                    }
                    Poll::Ready(None) | Poll::Pending => return,
                }
            }
            match self.inner.poll_outbound_unpin(cx) {
                Poll::Ready(result) => {
                    if let Some(r) = self.opening.take() {
                        let _ = r.send(result);
                    }
                }
                Poll::Pending => return,
            }
        }
    }
}

impl StreamMuxer for RawMuxer {
    type Substream = Replay;
    type Error = io::Error;

    fn poll_inbound(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Replay, io::Error>> {
        let this = self.get_mut();
        loop {
            this.drive_sniffs(cx);
            if let Some(s) = this.ready.pop_front() {
                return Poll::Ready(Ok(s));
            }
            if this.sniffs.len() >= MAX_SNIFFS_PER_CONNECTION {
                return Poll::Pending;
            }
            match this.inner.poll_inbound_unpin(cx) {
                Poll::Ready(Ok(s)) => {
                    if this.protocols.accepted.is_empty() {
                        return Poll::Ready(Ok(Replay { prefix: Vec::new(), pos: 0, inner: s }));
                    }
                    let guard = LiveGuard::new(this.state.clone());
                    this.sniffs.push(sniff(s, this.protocols.accepted.clone(), guard).boxed());
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn poll_outbound(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Replay, io::Error>> {
        self.get_mut().inner.poll_outbound_unpin(cx).map_ok(|inner| Replay { prefix: Vec::new(), pos: 0, inner })
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        self.get_mut().inner.poll_close_unpin(cx)
    }

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<StreamMuxerEvent, io::Error>> {
        let this = self.get_mut();
        if this.drive_sniffs(cx) {
            // A substream for the swarm is waiting: make it call `poll_inbound` again.
            cx.waker().wake_by_ref();
        }
        this.serve_opens(cx);
        this.inner.poll_unpin(cx)
    }
}

// ---------------------------------------------------------------------------------------
// Keep-alive

/// Keeps a connection open while raw substreams (or sniffs) are live on it, which the swarm
/// cannot see (it counts only the streams it negotiated).
pub(crate) struct KeepAlive {
    protocols: Arc<RawProtocols>,
}

impl KeepAlive {
    pub(crate) fn new(protocols: Arc<RawProtocols>) -> Self {
        Self { protocols }
    }
}

impl NetworkBehaviour for KeepAlive {
    type ConnectionHandler = KeepAliveHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        let key = ConnKey::Listener { local: local_addr.clone(), remote: remote_addr.clone() };
        Ok(KeepAliveHandler { state: self.protocols.claim(peer, &key) })
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(KeepAliveHandler { state: self.protocols.claim(peer, &ConnKey::Dialer(addr.clone())) })
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(&mut self, _: PeerId, _: ConnectionId, event: THandlerOutEvent<Self>) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

pub(crate) struct KeepAliveHandler {
    state: Option<Arc<ConnState>>,
}

impl ConnectionHandler for KeepAliveHandler {
    type FromBehaviour = Infallible;
    type ToBehaviour = Infallible;
    type InboundProtocol = DeniedUpgrade;
    type OutboundProtocol = DeniedUpgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<DeniedUpgrade, ()> {
        SubstreamProtocol::new(DeniedUpgrade, ())
    }

    fn connection_keep_alive(&self) -> bool {
        self.state.as_ref().is_some_and(|s| s.live.load(Ordering::SeqCst) > 0)
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ConnectionHandlerEvent<DeniedUpgrade, (), Infallible>> {
        if let Some(s) = &self.state {
            s.waker.register(cx.waker());
        }
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, event: Infallible) {
        match event {}
    }

    fn on_connection_event(&mut self, _: ConnectionEvent<DeniedUpgrade, DeniedUpgrade>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_byte_exact() {
        assert_eq!(mss_message("whatever"), b"\x09whatever\n");
        assert_eq!(mss_message("/multistream/1.0.0"), MSS_HEADER);
        assert!(valid_raw_protocol("whatever"));
        for bad in ["", "/ocap", "na", "ls", "a\nb", &"x".repeat(101)] {
            assert!(!valid_raw_protocol(bad), "{bad:?}");
        }
    }

    async fn sniff_bytes(input: &[u8]) -> (Option<usize>, Vec<u8>) {
        let mut r = futures::io::Cursor::new(input.to_vec());
        let mut buf = Vec::new();
        let accepted = vec![mss_message("whatever"), mss_message("other")];
        let v = read_proposal(&mut r, &mut buf, &accepted).await.ok().flatten();
        (v, buf)
    }

    #[tokio::test]
    async fn sniffing_reads_no_more_than_it_must() {
        let (v, buf) = sniff_bytes(b"\x13/multistream/1.0.0\n\x09whatever\n\x05hello").await;
        assert_eq!(v, Some(0));
        assert_eq!(buf, b"\x13/multistream/1.0.0\n\x09whatever\n");
        let (v, buf) = sniff_bytes(b"\x13/multistream/1.0.0\n\x06other\nrest").await;
        assert_eq!(v, Some(1));
        assert_eq!(buf.len(), 20 + 7);
        // A `/` protocol: stops at the length byte that matches no id.
        let (v, buf) = sniff_bytes(b"\x13/multistream/1.0.0\n\x0f/ipfs/id/1.0.0\n").await;
        assert_eq!(v, None);
        assert_eq!(buf.len(), 21);
        // Same length as `whatever`, other bytes.
        let (v, buf) = sniff_bytes(b"\x13/multistream/1.0.0\n\x09whatevex\n").await;
        assert_eq!(v, None);
        assert_eq!(buf.len(), 30);
        // Not multistream-select at all.
        let (v, buf) = sniff_bytes(b"GET / HTTP/1.1").await;
        assert_eq!(v, None);
        assert_eq!(buf, b"G");
        // EOF mid-way keeps what was read.
        let (v, buf) = sniff_bytes(b"\x13/multi").await;
        assert_eq!(v, None);
        assert_eq!(buf, b"\x13/multi");
    }

    #[tokio::test]
    async fn dialer_select_tolerates_either_answer_shape() {
        // A duplex made of a cursor for reads and a sink for writes.
        struct Duplex {
            input: futures::io::Cursor<Vec<u8>>,
            output: Vec<u8>,
        }
        impl AsyncRead for Duplex {
            fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, b: &mut [u8]) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.input).poll_read(cx, b)
            }
        }
        impl AsyncWrite for Duplex {
            fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
                self.output.extend_from_slice(b);
                Poll::Ready(Ok(b.len()))
            }
            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
            fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
        }
        let run = |answer: &[u8]| {
            let mut d = Duplex { input: futures::io::Cursor::new(answer.to_vec()), output: Vec::new() };
            async move {
                let r = dialer_select(&mut d, "whatever").await;
                assert_eq!(d.output, b"\x13/multistream/1.0.0\n\x09whatever\n");
                r
            }
        };
        assert!(run(b"\x13/multistream/1.0.0\n\x09whatever\n").await.is_ok());
        assert!(run(b"\x09whatever\n").await.is_ok());
        assert!(matches!(run(b"\x13/multistream/1.0.0\n\x03na\n").await, Err(OpenError::Unsupported(_))));
        assert!(matches!(run(b"\x13/multistream/1.0.0\n\x05other\n").await, Err(OpenError::Protocol(_))));
        assert!(matches!(run(b"\x13/multistream/1.0.0\n").await, Err(OpenError::Io(_))));
        assert!(matches!(run(b"\xff\xff\x03").await, Err(OpenError::Protocol(_))));
    }
}
