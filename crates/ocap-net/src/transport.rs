//! Channels, per-peer connection management and the `RemoteTransport` implementation
//! (remote-comms.md §9.2–§9.6).
//!
//! Each peer the transport hears of gets a *peer actor*, a task that alone decides about
//! that peer's channel: it queues frames while there is no channel, runs at most one
//! connection attempt at a time (dial, open stream, handshake, incarnation verdict), runs
//! the reconnection loop with backoff, registers inbound channels that finished their
//! handshake, and retires replaced channels. A channel is a reader task (delivering frames
//! to the inbox, watching inactivity) and a writer task (writing frames in order).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::{AsyncReadExt as _, AsyncWriteExt as _, FutureExt as _, StreamExt as _};
use libp2p::core::transport::TransportError;
use libp2p::swarm::DialError;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use ocap_abi::remote::{PeerLinkStatus, RemoteInbox, RemoteTransport, SendError, SendErrorKind};
use tokio::sync::{mpsc, oneshot, watch};

use crate::framing::{read_frame, write_frame, ReadError};
use crate::gate::{WsDialDenied, WsHosts};
use crate::handshake::{self, HandshakeLimits};
use crate::node::{self, SwarmCmd};
use crate::raw::{self, ChannelStream, RawProtocols, JS_PROTOCOL};
use crate::{
    keypair_from_seed, parse_multiaddr, wake, NetError, NetLimits, NetOptions, DEFAULT_PROTOCOL,
    MIN_STREAM_INACTIVITY_TIMEOUT,
};

/// Error codes that, five times in a row, mark a peer permanently failed (§9.4).
const PERMANENT_CODES: [&str; 4] = ["ECONNREFUSED", "EHOSTUNREACH", "ENOTFOUND", "ENETUNREACH"];
const CONSECUTIVE_ERROR_THRESHOLD: usize = 5;
/// How long `start` waits for the direct listeners to report their addresses.
const LISTEN_WAIT: Duration = Duration::from_secs(10);
/// How long `stop` lets channels close before the swarm goes.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The libp2p transport: one per kernel (see the crate doc for the stack and threads).
///
/// Contract with the kernel (remote-comms.md §9.3–§9.6):
/// - Every `send` either goes out on the peer's channel or comes back exactly once through
///   `RemoteInbox::send_failed`: `NetworkStopped` after `stop`, `IntentionalClose` after
///   `close_connection`, `ResourceLimit("messageSize" | "messageRate" | "connection" |
///   "connectionRate")`, `PeerRestarted` (a `true` verdict on our dial), or `Other` (write
///   failed or timed out, gave up connecting). A frame that was written but whose stream
///   then died is not reported (the kernel's acks and retransmission cover it).
/// - Frames sent while there is no channel wait (in `send` order) for the connection
///   attempt, which retries with backoff (`max_retry_attempts`, 0 = forever); frames are
///   never re-sent by the transport.
/// - A channel that ends by error, oversize frame or remote close starts the reconnection
///   loop (§9.4); one torn down for inactivity does not (the next send dials). When the
///   loop gives up (attempts exhausted, a non-retryable error, five identical
///   `ECONNREFUSED`-like errors in a row) the queued frames fail and `give_up` is called.
///   The code of a failed dial is the OS (or DNS) error found under libp2p's wrappers
///   (`error_code`): `ECONNREFUSED` from a port nobody listens on, `ENOTFOUND` from a
///   name that does not resolve, so such a peer is given up on even with unlimited retries.
///   A peer we know no address of (it dialed us) and have nothing queued for is not given
///   up: we reopen a stream if its connection is still up, else wait for it to redial.
/// - When the last libp2p connection to a peer closes while it has no channel (JS's
///   `peer:disconnect`, §9.3), the reconnection loop starts if we know an address of the
///   peer and it is neither closed, given up on, nor last torn down for inactivity (an idle
///   channel owes nothing; redialing it would cycle every few minutes forever).
/// - A peer with no channel, nothing queued and no sign of life for
///   `NetLimits::stale_peer_timeout` is forgotten (§9.5): hints, closed flag, rate windows
///   and backoff go, its reconnection loop stops, and it leaves `peers()`.
/// - A wall-clock jump (wake from sleep, §9.4) resets every backoff
///   ([`Libp2pTransport::reset_all_backoffs`]).
/// - `peers()` states: `connected`, `connecting` (first dial for queued frames),
///   `reconnecting`, `closed` (intentionally), `failed` (given up: our permanent-failure
///   mark), and `idle` (known, no channel, nothing in flight).
pub struct Libp2pTransport {
    shared: Arc<Shared>,
    shutdown: Mutex<Option<oneshot::Sender<()>>>,
}

/// State shared by the public handle, the peer actors and the channel tasks.
struct Shared {
    inbox: Arc<dyn RemoteInbox>,
    limits: NetLimits,
    incarnation_id: String,
    /// The protocol our channels are opened with.
    protocol: OutProtocol,
    /// Bare protocol ids: inbound sniffing, outbound opening.
    raw: Arc<RawProtocols>,
    relays: Vec<Multiaddr>,
    local_peer: PeerId,
    rt: tokio::runtime::Handle,
    swarm_tx: mpsc::UnboundedSender<SwarmCmd>,
    control: libp2p_stream::Control,
    stopped: AtomicBool,
    /// Peers with a registered channel (the `max_concurrent_connections` count).
    registered: AtomicUsize,
    listen: Arc<Mutex<Vec<Multiaddr>>>,
    state: Mutex<State>,
}

/// How outbound channels are opened (`NetOptions::protocol`).
#[derive(Clone)]
enum OutProtocol {
    /// A `/`-prefixed id, negotiated by the swarm (`libp2p-stream`).
    Libp2p(StreamProtocol),
    /// A bare id such as the JS kernel's `whatever`, negotiated by hand ([`crate::raw`]).
    Raw(String),
}

#[derive(Default)]
struct State {
    peers: HashMap<PeerId, PeerEntry>,
}

struct PeerEntry {
    tx: mpsc::UnboundedSender<PeerCmd>,
    hints: Vec<String>,
    /// `close_connection` was called and `reconnect_peer` not since.
    closed: bool,
    has_channel: bool,
    status: &'static str,
    last_error: Option<String>,
    /// Send times in the last second (message rate).
    sends: VecDeque<Instant>,
    /// Connection attempt times in the last minute (connection rate).
    attempts: VecDeque<Instant>,
    /// Last sign of life: entry created, channel registered, or the last frame read or
    /// written on a channel that has ended (the stale-peer clock, §9.5).
    last_active: Instant,
    backoff: Backoff,
}

/// Where the peer's connection loop stands (§9.4); kept with the entry (not in the actor)
/// so that [`Shared::reset_all_backoffs`] resets every peer at once, under the state lock.
#[derive(Default)]
struct Backoff {
    /// Attempts counted in the current loop, the one in flight included (the backoff
    /// exponent and the `max_retry_attempts` count).
    attempt: u32,
    /// Consecutive identical error codes (five `ECONNREFUSED`-like in a row give up).
    last_code: Option<&'static str>,
    code_count: usize,
}

enum PeerCmd {
    Frame(String),
    /// An inbound stream that passed the handshake and the incarnation check.
    Inbound(ChannelStream),
    ChannelEnded {
        id: u64,
        end: ChannelEnd,
    },
    Close,
    Reconnect,
    /// Drop the frames queued while there is no channel (`RemoteTransport::drop_queued`).
    DropQueued,
    /// The last libp2p connection to the peer closed (`peer:disconnect`, §9.3).
    Disconnected,
    /// The stale-peer cleanup found the peer stale (§9.5): end, unless something happened
    /// since.
    Forget,
    Stop,
}

/// Why a channel's reader stopped.
#[derive(Debug)]
enum ChannelEnd {
    /// The remote closed its side (or reset the stream).
    Eof,
    /// Reading or writing failed.
    Failed(String),
    /// An incoming length exceeded the limit; the stream is desynchronised.
    Oversize(String),
    /// No frame read or written for the inactivity timeout.
    Idle,
    /// We aborted it.
    Aborted,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    fn handshake_limits(&self) -> HandshakeLimits {
        HandshakeLimits {
            max_message_size: self.limits.max_message_size_bytes,
            handshake_timeout: self.limits.handshake_timeout,
            write_timeout: self.limits.write_timeout,
        }
    }

    fn inactivity_timeout(&self) -> Duration {
        self.limits.stream_inactivity_timeout.max(MIN_STREAM_INACTIVITY_TIMEOUT)
    }

    /// The peer's entry, creating it (and spawning its actor) if needed; `None` once the
    /// transport is stopped (checked under the state lock, which `stop_all` drains under).
    fn entry<'a>(self: &Arc<Self>, state: &'a mut State, peer: PeerId) -> Option<&'a mut PeerEntry> {
        if self.is_stopped() {
            return None;
        }
        Some(state.peers.entry(peer).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let actor = PeerActor::new(self.clone(), peer, rx, tx.clone());
            self.rt.spawn(actor.run());
            PeerEntry {
                tx,
                hints: Vec::new(),
                closed: false,
                has_channel: false,
                status: "idle",
                last_error: None,
                sends: VecDeque::new(),
                attempts: VecDeque::new(),
                last_active: Instant::now(),
                backoff: Backoff::default(),
            }
        }))
    }

    /// `resetAllBackoffs` (§9.4), after a wake from sleep: network conditions changed, so
    /// past errors say nothing about the peers. Given-up peers lose their `failed` mark (a
    /// disconnect may redial them again), error histories are cleared, and loops in flight
    /// start counting attempts (and growing delays) from scratch; a delay already running
    /// runs out. Our send-triggered dial and reconnection loop are one loop, so both reset.
    fn reset_all_backoffs(&self) {
        let mut st = self.lock();
        for e in st.peers.values_mut() {
            e.backoff = Backoff::default();
            if e.status == "failed" {
                e.status = "idle";
            }
        }
    }

    /// `cleanupStalePeers` (§9.5): asks every peer without a channel and inactive for longer
    /// than `stale_peer_timeout` to forget itself (its actor alone knows whether frames are
    /// queued).
    fn cleanup_stale_peers(&self) {
        let timeout = self.limits.stale_peer_timeout;
        let st = self.lock();
        for e in st.peers.values() {
            if !e.has_channel && e.last_active.elapsed() > timeout {
                let _ = e.tx.send(PeerCmd::Forget);
            }
        }
    }

    /// Reports a failed send from outside the runtime (never from the caller's thread).
    fn report_later(&self, peer: &str, kind: SendErrorKind, message: String) {
        let inbox = self.inbox.clone();
        let peer = peer.to_owned();
        self.rt.spawn(async move {
            inbox.send_failed(&peer, SendError { kind, message });
        });
    }

    fn report(&self, peer: &str, kind: SendErrorKind, message: impl Into<String>) {
        self.inbox.send_failed(peer, SendError { kind, message: message.into() });
    }

    fn set_status(&self, peer: PeerId, status: &'static str, error: Option<String>) {
        let mut st = self.lock();
        if let Some(e) = st.peers.get_mut(&peer) {
            e.status = status;
            if error.is_some() {
                e.last_error = error;
            }
        }
    }

    /// Takes a `max_concurrent_connections` slot if one is free.
    fn acquire_slot(&self) -> bool {
        let max = self.limits.max_concurrent_connections;
        self.registered.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < max).then_some(n + 1)).is_ok()
    }

    fn release_slot(&self) {
        let _ = self.registered.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    /// Dial candidates for `peer` (§9.2): hints whose last `/p2p/` is the peer (direct,
    /// first), then `<relay>/p2p-circuit/p2p/<peer>` for each relay hint and configured
    /// relay, de-duplicated. Malformed hints (and relay hints without a `/p2p/`) are skipped.
    fn candidates(&self, peer: PeerId, hints: &[String]) -> Vec<Multiaddr> {
        let mut direct = Vec::new();
        let mut relays: Vec<Multiaddr> = Vec::new();
        for hint in hints {
            let Ok(addr) = hint.parse::<Multiaddr>() else {
                tracing::debug!(%hint, "skipping malformed location hint");
                continue;
            };
            match node::last_p2p(&addr) {
                Some(id) if id == peer => {
                    if !direct.contains(&addr) {
                        direct.push(addr);
                    }
                }
                Some(id) if id == self.local_peer => {}
                Some(_) => {
                    if !relays.contains(&addr) {
                        relays.push(addr);
                    }
                }
                None => tracing::debug!(%hint, "skipping location hint without /p2p/"),
            }
        }
        for relay in &self.relays {
            if !relays.contains(relay) {
                relays.push(relay.clone());
            }
        }
        direct.extend(
            relays
                .into_iter()
                .filter(|r| node::last_p2p(r) != Some(peer))
                .map(|r| r.with(libp2p::multiaddr::Protocol::P2pCircuit).with(libp2p::multiaddr::Protocol::P2p(peer))),
        );
        direct
    }
}

impl Libp2pTransport {
    /// Starts the node: derives the key (§1.2), binds the direct listen addresses (waiting
    /// until each has reported its actual address, at most 10 s), starts reserving slots on
    /// the relays, and begins accepting channels. The swarm runs on a thread of its own, so
    /// this works both from a plain thread and from inside a tokio runtime (it blocks the
    /// calling thread until the listeners are bound).
    ///
    /// Channels are accepted on [`JS_PROTOCOL`] (`whatever`) always, on
    /// `NetOptions::protocol`, and on [`DEFAULT_PROTOCOL`] when `protocol` is a bare id; they
    /// are opened with `NetOptions::protocol` (see its doc).
    ///
    /// Errors: [`NetError::InvalidProtocol`],
    /// [`NetError::InvalidMultiaddr`], [`NetError::UnsupportedListenAddress`],
    /// [`NetError::InvalidRelayAddress`], [`NetError::Listen`] (bind failed),
    /// [`NetError::Transport`], [`NetError::Runtime`].
    pub fn start(opts: NetOptions, inbox: Arc<dyn RemoteInbox>) -> Result<Arc<Self>, NetError> {
        let invalid = || NetError::InvalidProtocol(opts.protocol.clone());
        // (outbound, accepted through libp2p-stream, accepted bare)
        let (protocol, listen_protocol, raw_names) = if opts.protocol.starts_with('/') {
            let p = StreamProtocol::try_from_owned(opts.protocol.clone()).map_err(|_| invalid())?;
            (OutProtocol::Libp2p(p.clone()), p, vec![JS_PROTOCOL])
        } else if raw::valid_raw_protocol(&opts.protocol) {
            (
                OutProtocol::Raw(opts.protocol.clone()),
                StreamProtocol::new(DEFAULT_PROTOCOL),
                vec![JS_PROTOCOL, opts.protocol.as_str()],
            )
        } else {
            return Err(invalid());
        };
        let raw_protocols = RawProtocols::new(&raw_names);
        let key = keypair_from_seed(opts.key_seed)?;
        let local_peer = key.public().to_peer_id();
        let mut direct = Vec::new();
        for a in &opts.listen_addresses {
            let addr = parse_multiaddr(a)?;
            if !node::check_listen_address(&addr) {
                return Err(NetError::UnsupportedListenAddress(a.clone()));
            }
            direct.push(addr);
        }
        let mut relays = Vec::new();
        for r in &opts.relays {
            let addr = parse_multiaddr(r)?;
            if !matches!(addr.iter().last(), Some(libp2p::multiaddr::Protocol::P2p(_))) {
                return Err(NetError::InvalidRelayAddress(r.clone()));
            }
            if !relays.contains(&addr) {
                relays.push(addr);
            }
        }

        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let protocols = Protocols { out: protocol, listen: listen_protocol, raw: raw_protocols };
        // The thread runs until the handle is dropped; it is not joined.
        let (shared, _thread) = node::spawn_node_thread(format!("ocap-net-{}", short(&local_peer)), move |ready_tx| {
            run_node(key, opts, protocols, direct, relays, inbox, ready_tx, shutdown_rx)
        })?;
        Ok(Arc::new(Self { shared, shutdown: Mutex::new(Some(shutdown_tx)) }))
    }

    /// Resets every peer's reconnection backoff, error history and given-up (`failed`)
    /// mark, as the wake detector does when the wall clock jumps (§9.4, `resetAllBackoffs`).
    /// For a host that learns of a wake another way, e.g. the kernel's cross-restart check
    /// (`lastActiveTime` more than 1 h old). Synchronous: done when it returns.
    pub fn reset_all_backoffs(&self) {
        self.shared.reset_all_backoffs();
    }

    /// This node's peer ID (`12D3KooW…`).
    pub fn peer_id(&self) -> String {
        self.shared.local_peer.to_string()
    }

    fn parse_peer(&self, peer_id: &str) -> Option<PeerId> {
        match peer_id.parse::<PeerId>() {
            Ok(p) if p != self.shared.local_peer => Some(p),
            Ok(_) => {
                tracing::warn!("ignoring a request about our own peer ID");
                None
            }
            Err(e) => {
                tracing::warn!(%peer_id, error = %e, "invalid peer ID");
                None
            }
        }
    }
}

/// The first characters of a peer ID's tail, for thread names and logs.
fn short(peer: &PeerId) -> String {
    let s = peer.to_string();
    s[s.len().saturating_sub(6)..].to_owned()
}

/// The protocols a node opens and accepts channels with.
struct Protocols {
    out: OutProtocol,
    /// Accepted through `libp2p-stream`.
    listen: StreamProtocol,
    /// Bare ids, accepted through the muxer wrapper.
    raw: Arc<RawProtocols>,
}

#[allow(clippy::too_many_arguments)]
async fn run_node(
    key: libp2p::identity::Keypair,
    opts: NetOptions,
    protocols: Protocols,
    direct: Vec<Multiaddr>,
    relays: Vec<Multiaddr>,
    inbox: Arc<dyn RemoteInbox>,
    ready_tx: std::sync::mpsc::Sender<Result<Arc<Shared>, NetError>>,
    shutdown_rx: oneshot::Receiver<()>,
) {
    let local_peer = key.public().to_peer_id();
    let Some(raw_incoming) = protocols.raw.take_incoming() else {
        let _ = ready_tx.send(Err(NetError::Runtime("bare-protocol receiver already taken".to_owned())));
        return;
    };
    let ws_hosts = WsHosts::new(&opts.allowed_ws_hosts, &relays);
    let mut swarm = match node::build_swarm(key, protocols.raw.clone(), opts.limits.idle_connection_timeout, ws_hosts) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready_tx.send(Err(e));
            return;
        }
    };
    let listen = Arc::new(Mutex::new(Vec::new()));
    if let Err(e) = node::listen_direct(&mut swarm, &direct, &listen, LISTEN_WAIT).await {
        let _ = ready_tx.send(Err(e));
        return;
    }
    let mut control = swarm.behaviour().stream_control();
    let incoming = match control.accept(protocols.listen.clone()) {
        Ok(i) => i,
        Err(e) => {
            let _ = ready_tx.send(Err(NetError::Transport(e.to_string())));
            return;
        }
    };
    let (swarm_tx, swarm_rx) = mpsc::unbounded_channel();
    let (disconnected_tx, disconnected_rx) = mpsc::unbounded_channel();
    let relay_peers: HashSet<PeerId> = relays.iter().filter_map(node::last_p2p).collect();
    for relay in &relays {
        let _ = swarm_tx.send(SwarmCmd::ListenRelay { relay: relay.clone(), attempt: 0 });
    }
    let shared = Arc::new(Shared {
        inbox,
        limits: opts.limits,
        incarnation_id: opts.incarnation_id,
        protocol: protocols.out,
        raw: protocols.raw,
        relays,
        local_peer,
        rt: tokio::runtime::Handle::current(),
        swarm_tx: swarm_tx.clone(),
        control,
        stopped: AtomicBool::new(false),
        registered: AtomicUsize::new(0),
        listen: listen.clone(),
        state: Mutex::new(State::default()),
    });
    let swarm_task = tokio::spawn(node::run_swarm(swarm, swarm_rx, swarm_tx, listen, relay_peers, disconnected_tx));
    tokio::spawn(accept_loop(shared.clone(), incoming));
    tokio::spawn(raw_accept_loop(shared.clone(), raw_incoming));
    tokio::spawn(disconnect_loop(shared.clone(), disconnected_rx));
    tokio::spawn(cleanup_loop(shared.clone()));
    let (stopping, waking) = (shared.clone(), shared.clone());
    tokio::spawn(wake::detect(
        opts.wall_clock,
        shared.limits.wake_check_interval,
        shared.limits.wake_jump_threshold,
        move || stopping.is_stopped(),
        move || waking.reset_all_backoffs(),
    ));
    tracing::info!(peer = %local_peer, "network started");
    let _ = ready_tx.send(Ok(shared.clone()));
    drop(ready_tx);
    // Until the handle is dropped; `stop` shuts the swarm down before that.
    let _ = shutdown_rx.await;
    if !shared.stopped.swap(true, Ordering::SeqCst) {
        stop_all(shared.clone()).await;
    }
    let _ = tokio::time::timeout(STOP_GRACE, swarm_task).await;
}

/// Stops every peer actor (closing channels, failing queued frames with `NetworkStopped`),
/// waits for them at most [`STOP_GRACE`], then stops the swarm.
async fn stop_all(shared: Arc<Shared>) {
    let peers: Vec<mpsc::UnboundedSender<PeerCmd>> = {
        let mut st = shared.lock();
        st.peers.drain().map(|(_, e)| e.tx).collect()
    };
    for tx in &peers {
        let _ = tx.send(PeerCmd::Stop);
    }
    let _ = tokio::time::timeout(STOP_GRACE, async {
        for tx in &peers {
            tx.closed().await;
        }
    })
    .await;
    let _ = shared.swarm_tx.send(SwarmCmd::Stop);
    tracing::info!(peer = %shared.local_peer, "network stopped");
}

/// Hands `peer:disconnect`s from the swarm to the peers' actors (§9.3). Peers we hold no
/// state of are ignored: we know nothing to redial them with.
async fn disconnect_loop(shared: Arc<Shared>, mut disconnected: mpsc::UnboundedReceiver<PeerId>) {
    while let Some(peer) = disconnected.recv().await {
        if let Some(e) = shared.lock().peers.get(&peer) {
            let _ = e.tx.send(PeerCmd::Disconnected);
        }
    }
}

/// Runs the stale-peer cleanup every `cleanup_interval` until the transport stops (§9.5).
async fn cleanup_loop(shared: Arc<Shared>) {
    // tokio panics on a zero period.
    let every = shared.limits.cleanup_interval.max(Duration::from_millis(1));
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        timer.tick().await;
        if shared.is_stopped() {
            return;
        }
        shared.cleanup_stale_peers();
    }
}

impl Drop for Libp2pTransport {
    fn drop(&mut self) {
        let tx = self.shutdown.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(tx) = tx {
            let _ = tx.send(());
        }
    }
}

impl RemoteTransport for Libp2pTransport {
    fn send(&self, peer_id: &str, frame: String) {
        let sh = &self.shared;
        if sh.is_stopped() {
            sh.report_later(peer_id, SendErrorKind::NetworkStopped, "network stopped".into());
            return;
        }
        let Some(peer) = self.parse_peer(peer_id) else {
            sh.report_later(peer_id, SendErrorKind::Other, format!("invalid peer ID {peer_id:?}"));
            return;
        };
        let max = sh.limits.max_message_size_bytes;
        let mut st = sh.lock();
        let Some(entry) = sh.entry(&mut st, peer) else {
            drop(st);
            sh.report_later(peer_id, SendErrorKind::NetworkStopped, "network stopped".into());
            return;
        };
        if entry.closed {
            drop(st);
            sh.report_later(
                peer_id,
                SendErrorKind::IntentionalClose,
                "connection to peer was intentionally closed".into(),
            );
            return;
        }
        if frame.len() > max {
            drop(st);
            sh.report_later(
                peer_id,
                SendErrorKind::ResourceLimit("messageSize".into()),
                format!("message of {} bytes exceeds the limit of {max} bytes", frame.len()),
            );
            return;
        }
        let now = Instant::now();
        while entry.sends.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1)) {
            entry.sends.pop_front();
        }
        if entry.sends.len() >= sh.limits.max_messages_per_second {
            drop(st);
            sh.report_later(
                peer_id,
                SendErrorKind::ResourceLimit("messageRate".into()),
                format!("more than {} messages per second to peer", sh.limits.max_messages_per_second),
            );
            return;
        }
        entry.sends.push_back(now);
        if entry.tx.send(PeerCmd::Frame(frame)).is_err() {
            drop(st);
            sh.report_later(peer_id, SendErrorKind::NetworkStopped, "network stopped".into());
        }
    }

    fn register_location_hints(&self, peer_id: &str, hints: &[String]) {
        let Some(peer) = self.parse_peer(peer_id) else { return };
        let mut st = self.shared.lock();
        let Some(entry) = self.shared.entry(&mut st, peer) else { return };
        merge_hints(&mut entry.hints, hints);
    }

    fn close_connection(&self, peer_id: &str) {
        let Some(peer) = self.parse_peer(peer_id) else { return };
        let mut st = self.shared.lock();
        let Some(entry) = self.shared.entry(&mut st, peer) else { return };
        entry.closed = true;
        entry.status = "closed";
        let _ = entry.tx.send(PeerCmd::Close);
    }

    fn drop_queued(&self, peer_id: &str) {
        let Some(peer) = self.parse_peer(peer_id) else { return };
        let mut st = self.shared.lock();
        if let Some(entry) = self.shared.entry(&mut st, peer) {
            let _ = entry.tx.send(PeerCmd::DropQueued);
        }
    }

    fn reconnect_peer(&self, peer_id: &str, hints: &[String]) {
        let Some(peer) = self.parse_peer(peer_id) else { return };
        let mut st = self.shared.lock();
        let Some(entry) = self.shared.entry(&mut st, peer) else { return };
        entry.closed = false;
        merge_hints(&mut entry.hints, hints);
        let _ = entry.tx.send(PeerCmd::Reconnect);
    }

    fn listen_addresses(&self) -> Vec<String> {
        let l = self.shared.listen.lock().unwrap_or_else(|e| e.into_inner());
        l.iter().map(|a| a.to_string()).collect()
    }

    fn peers(&self) -> Vec<PeerLinkStatus> {
        let st = self.shared.lock();
        let mut out: Vec<PeerLinkStatus> = st
            .peers
            .iter()
            .map(|(p, e)| PeerLinkStatus {
                peer_id: p.to_string(),
                state: e.status.to_owned(),
                last_error: e.last_error.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        out
    }

    fn stop(&self) {
        if self.shared.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        self.shared.rt.spawn(stop_all(self.shared.clone()));
    }

    fn reset_all_backoffs(&self) {
        Libp2pTransport::reset_all_backoffs(self);
    }
}

fn merge_hints(into: &mut Vec<String>, hints: &[String]) {
    for h in hints {
        if !into.contains(h) {
            into.push(h.clone());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Inbound channels

async fn accept_loop(shared: Arc<Shared>, mut incoming: libp2p_stream::IncomingStreams) {
    while let Some((peer, stream)) = incoming.next().await {
        if shared.is_stopped() {
            break;
        }
        tokio::spawn(inbound(shared.clone(), peer, ChannelStream::Libp2p(stream)));
    }
}

/// Inbound channels on a bare protocol id (`whatever`), already negotiated by the muxer
/// wrapper; handled exactly as those `libp2p-stream` accepts.
async fn raw_accept_loop(shared: Arc<Shared>, mut incoming: mpsc::UnboundedReceiver<(PeerId, raw::RawStream)>) {
    while let Some((peer, stream)) = incoming.recv().await {
        if shared.is_stopped() {
            break;
        }
        tokio::spawn(inbound(shared.clone(), peer, ChannelStream::Raw(stream)));
    }
}

async fn close_stream(mut stream: ChannelStream, timeout: Duration) {
    let _ = tokio::time::timeout(timeout, stream.close()).await;
}

/// Handles one inbound stream: refuse intentionally closed peers and streams over the
/// connection limit, run the listener's handshake and the incarnation check, then hand the
/// stream to the peer's actor for registration.
async fn inbound(shared: Arc<Shared>, peer: PeerId, mut stream: ChannelStream) {
    // None: refuse (intentionally closed); Some(has_channel) otherwise.
    let verdict = {
        let st = shared.lock();
        match st.peers.get(&peer) {
            Some(e) if e.closed => None,
            Some(e) => Some(e.has_channel),
            None => Some(false),
        }
    };
    let Some(has_channel) = verdict else {
        tracing::debug!(%peer, "refusing inbound channel from intentionally closed peer");
        close_stream(stream, shared.limits.write_timeout).await;
        return;
    };
    if !has_channel && shared.registered.load(Ordering::SeqCst) >= shared.limits.max_concurrent_connections {
        tracing::warn!(%peer, "refusing inbound channel: connection limit reached");
        close_stream(stream, shared.limits.write_timeout).await;
        return;
    }
    let remote_incarnation =
        match handshake::inbound(&mut stream, &shared.incarnation_id, shared.handshake_limits()).await {
            Ok(id) => id,
            Err(e) => {
                tracing::info!(%peer, error = %e, "inbound handshake failed");
                close_stream(stream, shared.limits.write_timeout).await;
                return;
            }
        };
    let restarted = shared.inbox.incarnation(&peer.to_string(), &remote_incarnation).await;
    if restarted {
        tracing::info!(%peer, "peer restarted: refusing its inbound channel");
        close_stream(stream, shared.limits.write_timeout).await;
        return;
    }
    if shared.is_stopped() {
        return;
    }
    // Sent under the state lock, as every command to an actor, so that a peer forgetting
    // itself (`PeerCmd::Forget`) cannot miss it.
    let mut st = shared.lock();
    if let Some(e) = shared.entry(&mut st, peer) {
        let _ = e.tx.send(PeerCmd::Inbound(stream));
    }
}

// ---------------------------------------------------------------------------------------
// Outbound connection attempts

enum EstablishError {
    /// Over `max_connection_attempts_per_minute`; a slot frees after this long.
    RateLimited(Duration),
    /// Over `max_concurrent_connections`.
    ConnectionLimit,
    /// A channel got registered (inbound) while we dialed; the dialed stream is dropped.
    AlreadyConnected,
    /// No hint, no relay and no live connection: nothing to dial.
    NoAddress(String),
    Retryable {
        code: Option<&'static str>,
        message: String,
    },
    Fatal(String),
}

struct Established {
    stream: ChannelStream,
    restarted: bool,
}

fn io_code(kind: std::io::ErrorKind) -> Option<&'static str> {
    use std::io::ErrorKind as K;
    Some(match kind {
        K::ConnectionRefused => "ECONNREFUSED",
        K::ConnectionReset => "ECONNRESET",
        K::TimedOut => "ETIMEDOUT",
        K::BrokenPipe => "EPIPE",
        K::HostUnreachable => "EHOSTUNREACH",
        K::NetworkUnreachable => "ENETUNREACH",
        K::NotFound => "ENOTFOUND",
        _ => return None,
    })
}

/// The Node-style code (`ECONNREFUSED`, …) of the OS or DNS error behind `err`, if any.
///
/// rust-libp2p never hands us the OS error directly: a refused TCP dial reaches the swarm as
/// `io::Error::other(TransportTimeoutError::Other(Either::Right(Either::Right(
/// dns::Error::Dial([TransportError::Other(Either::Left(Either::Left(Either::Left(
/// OsError(io::Error)))))])))))` (our stack, `node::build_swarm`, boxed). So the `source()`
/// chain is walked, each link downcast to `io::Error` (its kind, decoded from the raw OS
/// error, gives the code; a custom `io::Error` is entered through `get_ref()`, since
/// `io::Error::source` skips the wrapped error and yields only *its* source) and to
/// hickory's `ResolveError` (no such name, or no records: `ENOTFOUND`, as Node's
/// `getaddrinfo` says). The first code found wins. `Either`'s `source()` is transparent (the
/// wrapped error's source, not the wrapped error), which is why TCP's error is wrapped in
/// [`node::OsError`], whose source is the `io::Error` itself.
fn error_code(err: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    // A guard against a (buggy) cyclic chain.
    const MAX_DEPTH: usize = 32;
    fn walk(err: &(dyn std::error::Error + 'static), depth: usize) -> Option<&'static str> {
        let mut next = Some(err);
        let mut depth = depth;
        while let Some(e) = next {
            if depth >= MAX_DEPTH {
                return None;
            }
            depth += 1;
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if let Some(code) = io_code(io.kind()) {
                    return Some(code);
                }
                if let Some(inner) = io.get_ref() {
                    // `io.source()` is `inner.source()`: the walk below covers it.
                    return walk(inner, depth);
                }
            }
            if let Some(r) = e.downcast_ref::<libp2p::dns::ResolveError>() {
                if r.is_nx_domain()
                    || r.is_no_records_found()
                    || matches!(r.kind(), libp2p::dns::ResolveErrorKind::Message("No Matching Records Found"))
                {
                    return Some("ENOTFOUND");
                }
            }
            next = e.source();
        }
        None
    }
    walk(err, 0)
}

/// Retryable or not, as `isRetryableNetworkError` (§9.4) as far as rust-libp2p tells:
/// transport-level dial failures and aborted dials are retryable; a wrong peer ID, a denied
/// dial (the plain-ws gate's names the address), no address, or only unsupported addresses
/// are not. The code of a retryable failure is the one [`error_code`] digs out of the
/// transport errors (the last address's that has one), for the permanent-failure rule.
fn classify_dial_error(e: DialError) -> EstablishError {
    let message = e.to_string();
    match e {
        DialError::Transport(errors) => {
            let mut code = None;
            let mut any_io = false;
            for (_, te) in &errors {
                if let TransportError::Other(io) = te {
                    any_io = true;
                    code = error_code(io).or(code);
                }
            }
            if any_io {
                EstablishError::Retryable { code, message }
            } else {
                EstablishError::Fatal(message)
            }
        }
        DialError::Aborted => EstablishError::Retryable { code: None, message },
        DialError::Denied { cause } => {
            EstablishError::Fatal(cause.downcast_ref::<WsDialDenied>().map_or(message, ToString::to_string))
        }
        _ => EstablishError::Fatal(message),
    }
}

/// One connection attempt (§9.2, §9.3): after `delay`, check the connection rate and the
/// connection limit, try each candidate in turn (all within `dial_timeout`), open the
/// stream, run the dialer's handshake and ask the kernel for its incarnation verdict.
async fn establish(shared: Arc<Shared>, peer: PeerId, delay: Duration) -> Result<Established, EstablishError> {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let hints = {
        let mut st = shared.lock();
        let Some(entry) = st.peers.get_mut(&peer) else {
            return Err(EstablishError::Fatal("network stopped".to_owned()));
        };
        if entry.has_channel {
            return Err(EstablishError::AlreadyConnected);
        }
        let now = Instant::now();
        let window = Duration::from_secs(60);
        while entry.attempts.front().is_some_and(|t| now.duration_since(*t) >= window) {
            entry.attempts.pop_front();
        }
        if entry.attempts.len() >= shared.limits.max_connection_attempts_per_minute {
            let wait = entry.attempts.front().map_or(window, |t| window.saturating_sub(now.duration_since(*t)));
            return Err(EstablishError::RateLimited(wait));
        }
        if shared.registered.load(Ordering::SeqCst) >= shared.limits.max_concurrent_connections {
            return Err(EstablishError::ConnectionLimit);
        }
        entry.attempts.push_back(now);
        entry.hints.clone()
    };
    let candidates = shared.candidates(peer, &hints);
    // With no address, a libp2p connection that is still up (the remote dialed us and only
    // the stream went away) still carries a new stream.
    let mut connected = false;
    if candidates.is_empty() {
        let (reply, rx) = oneshot::channel();
        let _ = shared.swarm_tx.send(SwarmCmd::IsConnected { peer, reply });
        connected = rx.await.unwrap_or(false);
        if !connected {
            return Err(EstablishError::NoAddress(format!("no address known for peer {peer}")));
        }
    }
    let dial_timeout = shared.limits.dial_timeout;
    let stream = tokio::time::timeout(dial_timeout, async {
        let mut last = None;
        for addr in candidates {
            let (reply, rx) = oneshot::channel();
            if shared.swarm_tx.send(SwarmCmd::Dial { peer, addr: addr.clone(), reply }).is_err() {
                return Err(EstablishError::Fatal("network stopped".to_owned()));
            }
            match rx.await {
                Ok(Ok(())) => {
                    connected = true;
                    break;
                }
                Ok(Err(e)) => {
                    tracing::debug!(%peer, %addr, error = %e, "dial candidate failed");
                    last = Some(classify_dial_error(e));
                }
                Err(_) => return Err(EstablishError::Fatal("network stopped".to_owned())),
            }
        }
        if !connected {
            return Err(last.unwrap_or(EstablishError::Fatal("no dial candidate".to_owned())));
        }
        match &shared.protocol {
            OutProtocol::Libp2p(protocol) => {
                let mut control = shared.control.clone();
                match control.open_stream(peer, protocol.clone()).await {
                    Ok(s) => Ok(ChannelStream::Libp2p(s)),
                    Err(libp2p_stream::OpenStreamError::UnsupportedProtocol(p)) => {
                        Err(EstablishError::Fatal(format!("peer does not support protocol {p}")))
                    }
                    Err(libp2p_stream::OpenStreamError::Io(e)) => {
                        Err(EstablishError::Retryable { code: error_code(&e), message: format!("opening stream: {e}") })
                    }
                    Err(e) => Err(EstablishError::Retryable { code: None, message: e.to_string() }),
                }
            }
            OutProtocol::Raw(name) => match shared.raw.open(peer, name).await {
                Ok(s) => Ok(ChannelStream::Raw(s)),
                Err(raw::OpenError::Unsupported(p)) => {
                    Err(EstablishError::Fatal(format!("peer does not support protocol {p}")))
                }
                Err(raw::OpenError::Io(e)) => {
                    Err(EstablishError::Retryable { code: error_code(&e), message: format!("opening stream: {e}") })
                }
                Err(e) => Err(EstablishError::Retryable { code: None, message: format!("opening stream: {e}") }),
            },
        }
    })
    .await
    .map_err(|_| EstablishError::Retryable {
        code: Some("ETIMEDOUT"),
        message: format!("connection attempt timed out after {} ms", dial_timeout.as_millis()),
    })??;
    // reuseOrReturnChannel: prefer a channel registered meanwhile.
    if shared.lock().peers.get(&peer).is_some_and(|e| e.has_channel) {
        close_stream(stream, shared.limits.write_timeout).await;
        return Err(EstablishError::AlreadyConnected);
    }
    let mut stream = stream;
    let remote = match handshake::outbound(&mut stream, &shared.incarnation_id, shared.handshake_limits()).await {
        Ok(id) => id,
        Err(e) => {
            close_stream(stream, shared.limits.write_timeout).await;
            return Err(EstablishError::Retryable { code: None, message: format!("handshake failed: {e}") });
        }
    };
    let restarted = shared.inbox.incarnation(&peer.to_string(), &remote).await;
    Ok(Established { stream, restarted })
}

// ---------------------------------------------------------------------------------------
// Channels

enum WriterMsg {
    Frame(String),
    /// Wait for the previous channel's writer to finish before writing (send order).
    WaitFor(oneshot::Receiver<()>),
    /// The channel was replaced: write what is queued, signal `drained`, then write nothing
    /// more but keep the stream open (the remote may still be reading it, or writing to
    /// us on it) until the channel is aborted.
    Retire,
}

struct ChannelHandle {
    writer_tx: mpsc::UnboundedSender<WriterMsg>,
    /// Set to the kind of the abort: reading and writing stop at once, unsent frames fail
    /// with it.
    abort_tx: watch::Sender<Option<SendErrorKind>>,
    /// Fires when the writer has written (or failed) its last frame.
    drained: Option<oneshot::Receiver<()>>,
    /// The channel's one task (reading and writing, see `spawn_channel`): it ends once both
    /// have, the writer after closing its half.
    task: tokio::task::JoinHandle<()>,
    /// When a frame was last read or written (the channel's start before any).
    activity: Arc<Activity>,
}

impl ChannelHandle {
    fn abort(&self, kind: SendErrorKind) {
        let _ = self.abort_tx.send(Some(kind));
    }
}

/// Milliseconds since `base`, for the inactivity clock.
struct Activity {
    base: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        self.last_ms.store(self.base.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    fn last(&self) -> Instant {
        self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

fn spawn_channel(
    shared: &Arc<Shared>,
    peer: PeerId,
    stream: ChannelStream,
    id: u64,
    actor_tx: mpsc::UnboundedSender<PeerCmd>,
) -> ChannelHandle {
    let (reader, writer) = stream.split();
    let (writer_tx, writer_rx) = mpsc::unbounded_channel();
    let (abort_tx, abort_rx) = watch::channel(None);
    let (drained_tx, drained_rx) = oneshot::channel();
    let activity = Arc::new(Activity { base: Instant::now(), last_ms: AtomicU64::new(0) });
    let peer_str = peer.to_string();
    let reading =
        read_loop(shared.clone(), peer_str.clone(), reader, id, actor_tx.clone(), abort_rx.clone(), activity.clone());
    let last_activity = activity.clone();
    let writing = write_loop(shared.clone(), peer_str, writer, id, writer_rx, actor_tx, abort_rx, activity, drained_tx);
    // One task for both halves, never two: a yamux stream's command sender keeps a single
    // waker, and a read (which may send a window update through it) replaces the writer's.
    // Two tasks then lose the writer's wake-up when its command queue is full: the write
    // stalls until the write timeout (rust-libp2p#5410). In one task every wake-up is the
    // same task's, which polls both halves.
    let task = tokio::spawn(async move {
        tokio::join!(reading, writing);
    });
    ChannelHandle { writer_tx, abort_tx, drained: Some(drained_rx), task, activity: last_activity }
}

async fn read_loop(
    shared: Arc<Shared>,
    peer: String,
    mut reader: futures::io::ReadHalf<ChannelStream>,
    id: u64,
    actor_tx: mpsc::UnboundedSender<PeerCmd>,
    mut abort: watch::Receiver<Option<SendErrorKind>>,
    activity: Arc<Activity>,
) {
    let max = shared.limits.max_message_size_bytes;
    let inactivity = shared.inactivity_timeout();
    let inbox = shared.inbox.clone();
    let reading = async {
        let mut reader = futures::io::BufReader::new(&mut reader);
        loop {
            match read_frame(&mut reader, max).await {
                Ok(Some(bytes)) => {
                    activity.touch();
                    let text = match String::from_utf8(bytes) {
                        Ok(t) => t,
                        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
                    };
                    if handshake::is_stray_handshake(&text) {
                        tracing::debug!(%peer, "ignoring stray handshake frame");
                        continue;
                    }
                    inbox.deliver(&peer, text);
                    // yamux's buffered data never makes a read wait, so a backlog would be
                    // read in one go while this task's writer waits: yield when tokio's
                    // budget for the task is spent.
                    tokio::task::coop::consume_budget().await;
                }
                Ok(None) => return ChannelEnd::Eof,
                Err(ReadError::Oversize(m)) => return ChannelEnd::Oversize(m),
                Err(ReadError::Io(e)) => return ChannelEnd::Failed(format!("read failed: {e}")),
            }
        }
    };
    let idle = async {
        loop {
            let deadline = activity.last() + inactivity;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    };
    let aborted = async {
        let _ = abort.changed().await;
    };
    let end = tokio::select! {
        end = reading => end,
        () = idle => ChannelEnd::Idle,
        () = aborted => ChannelEnd::Aborted,
    };
    match &end {
        ChannelEnd::Oversize(m) => tracing::warn!(%peer, "dropping channel: {m}"),
        ChannelEnd::Idle => tracing::debug!(%peer, "closing idle channel"),
        other => tracing::debug!(%peer, ?other, "channel reader ended"),
    }
    let _ = actor_tx.send(PeerCmd::ChannelEnded { id, end });
}

#[allow(clippy::too_many_arguments)]
async fn write_loop(
    shared: Arc<Shared>,
    peer: String,
    mut writer: futures::io::WriteHalf<ChannelStream>,
    id: u64,
    mut rx: mpsc::UnboundedReceiver<WriterMsg>,
    actor_tx: mpsc::UnboundedSender<PeerCmd>,
    mut abort: watch::Receiver<Option<SendErrorKind>>,
    activity: Arc<Activity>,
    drained: oneshot::Sender<()>,
) {
    let mut drained = Some(drained);
    let write_timeout = shared.limits.write_timeout;
    // The kind to fail unsent frames with, once the loop ends.
    let mut fail_with = SendErrorKind::Other;
    let mut fail_msg = "channel closed".to_owned();
    loop {
        let msg = tokio::select! {
            biased;
            _ = abort.changed() => {
                let kind = abort.borrow().clone().unwrap_or(SendErrorKind::Other);
                fail_msg = describe(&kind).to_owned();
                fail_with = kind;
                break;
            }
            msg = rx.recv() => msg,
        };
        match msg {
            None => break,
            Some(WriterMsg::Retire) => {
                if let Some(d) = drained.take() {
                    let _ = d.send(());
                }
            }
            Some(WriterMsg::WaitFor(prev)) => {
                let _ = tokio::time::timeout(write_timeout, prev).await;
            }
            Some(WriterMsg::Frame(frame)) => {
                let result = tokio::select! {
                    biased;
                    _ = abort.changed() => None,
                    r = tokio::time::timeout(write_timeout, write_frame(&mut writer, frame.as_bytes())) => Some(r),
                };
                match result {
                    Some(Ok(Ok(()))) => activity.touch(),
                    None => {
                        let kind = abort.borrow().clone().unwrap_or(SendErrorKind::Other);
                        shared.report(&peer, kind.clone(), describe(&kind));
                        fail_msg = describe(&kind).to_owned();
                        fail_with = kind;
                        break;
                    }
                    Some(r) => {
                        let message = match r {
                            Ok(Err(e)) => format!("write failed: {e}"),
                            _ => format!("write timed out after {} ms", write_timeout.as_millis()),
                        };
                        tracing::info!(%peer, %message, "channel write failed");
                        shared.report(&peer, SendErrorKind::Other, message.clone());
                        let _ = actor_tx.send(PeerCmd::ChannelEnded { id, end: ChannelEnd::Failed(message.clone()) });
                        fail_msg = message;
                        break;
                    }
                }
            }
        }
    }
    rx.close();
    while let Ok(msg) = rx.try_recv() {
        if let WriterMsg::Frame(_) = msg {
            shared.report(&peer, fail_with.clone(), fail_msg.clone());
        }
    }
    if let Some(d) = drained.take() {
        let _ = d.send(());
    }
    let _ = tokio::time::timeout(write_timeout, writer.close()).await;
}

fn describe(kind: &SendErrorKind) -> &'static str {
    match kind {
        SendErrorKind::PeerRestarted => "peer restarted",
        SendErrorKind::IntentionalClose => "connection to peer was intentionally closed",
        SendErrorKind::NetworkStopped => "network stopped",
        SendErrorKind::ResourceLimit(_) => "resource limit",
        SendErrorKind::Other => "channel lost",
    }
}

// ---------------------------------------------------------------------------------------
// The peer actor

struct Connecting {
    /// A reconnection (after a loss, or `reconnect_peer`) rather than a send-triggered dial:
    /// a `true` incarnation verdict still registers the channel, and limits wait rather
    /// than fail the loop.
    reconnect: bool,
    fut: BoxFuture<'static, Result<Established, EstablishError>>,
}

struct PeerActor {
    shared: Arc<Shared>,
    peer: PeerId,
    peer_str: String,
    rx: mpsc::UnboundedReceiver<PeerCmd>,
    self_tx: mpsc::UnboundedSender<PeerCmd>,
    /// Frames waiting for a channel.
    queue: VecDeque<String>,
    /// Every live channel (the current one and retired ones still draining), by id.
    channels: HashMap<u64, ChannelHandle>,
    current: Option<u64>,
    next_id: u64,
    connecting: Option<Connecting>,
    /// The last current channel was torn down for inactivity (or by us), and none registered
    /// since: nothing is owed, so a `peer:disconnect` does not redial.
    idled_out: bool,
}

async fn poll_connecting(c: &mut Option<Connecting>) -> Result<Established, EstablishError> {
    match c {
        Some(c) => (&mut c.fut).await,
        None => std::future::pending().await,
    }
}

impl PeerActor {
    fn new(
        shared: Arc<Shared>,
        peer: PeerId,
        rx: mpsc::UnboundedReceiver<PeerCmd>,
        self_tx: mpsc::UnboundedSender<PeerCmd>,
    ) -> Self {
        Self {
            shared,
            peer,
            peer_str: peer.to_string(),
            rx,
            self_tx,
            queue: VecDeque::new(),
            channels: HashMap::new(),
            current: None,
            next_id: 0,
            connecting: None,
            idled_out: false,
        }
    }

    async fn run(mut self) {
        loop {
            tokio::select! {
                cmd = self.rx.recv() => {
                    let Some(cmd) = cmd else { break };
                    if !self.on_cmd(cmd).await {
                        break;
                    }
                }
                outcome = poll_connecting(&mut self.connecting) => {
                    self.on_outcome(outcome).await;
                }
            }
        }
        // Anything sent after we stopped.
        self.rx.close();
        while let Ok(cmd) = self.rx.try_recv() {
            if let PeerCmd::Frame(_) = cmd {
                self.shared.report(&self.peer_str, SendErrorKind::NetworkStopped, "network stopped");
            }
        }
    }

    fn closed(&self) -> bool {
        self.shared.lock().peers.get(&self.peer).is_some_and(|e| e.closed)
    }

    /// Runs `f` on the peer's entry (absent only once the transport is stopping).
    fn with_entry<R>(&self, f: impl FnOnce(&mut PeerEntry) -> R) -> Option<R> {
        self.shared.lock().peers.get_mut(&self.peer).map(f)
    }

    /// Moves the stale-peer clock to the last frame of a channel that ended.
    fn note_activity(&self, ch: &ChannelHandle) {
        let last = ch.activity.last();
        self.with_entry(|e| e.last_active = e.last_active.max(last));
    }

    fn fail_queue(&mut self, kind: SendErrorKind, message: &str) {
        for _ in self.queue.drain(..) {
            self.shared.report(&self.peer_str, kind.clone(), message);
        }
    }

    fn start_connecting(&mut self, reconnect: bool) {
        let delay = if reconnect {
            node::backoff(1, self.shared.limits.reconnection_base_delay, self.shared.limits.reconnection_max_delay)
        } else {
            Duration::ZERO
        };
        self.with_entry(|e| {
            e.status = if reconnect { "reconnecting" } else { "connecting" };
            e.backoff.attempt = 1;
        });
        self.connecting = Some(Connecting { reconnect, fut: establish(self.shared.clone(), self.peer, delay).boxed() });
    }

    /// Returns false when the actor must end.
    async fn on_cmd(&mut self, cmd: PeerCmd) -> bool {
        match cmd {
            PeerCmd::Frame(frame) => {
                if self.shared.is_stopped() {
                    self.shared.report(&self.peer_str, SendErrorKind::NetworkStopped, "network stopped");
                } else if self.closed() {
                    self.shared.report(
                        &self.peer_str,
                        SendErrorKind::IntentionalClose,
                        describe(&SendErrorKind::IntentionalClose),
                    );
                } else if let Some(ch) = self.current.and_then(|id| self.channels.get(&id)) {
                    if let Err(mpsc::error::SendError(WriterMsg::Frame(frame))) =
                        ch.writer_tx.send(WriterMsg::Frame(frame))
                    {
                        // The writer just ended; its end is on its way to us.
                        self.queue.push_back(frame);
                    }
                } else {
                    self.queue.push_back(frame);
                    if self.connecting.is_none() {
                        self.start_connecting(false);
                    }
                }
            }
            PeerCmd::Inbound(stream) => {
                if self.shared.is_stopped() || self.closed() {
                    close_stream(stream, self.shared.limits.write_timeout).await;
                } else if self.current.is_none() && !self.shared.acquire_slot() {
                    tracing::warn!(peer = %self.peer, "refusing inbound channel: connection limit reached");
                    close_stream(stream, self.shared.limits.write_timeout).await;
                } else {
                    // An attempt of ours in flight goes on: if its handshake is under way the
                    // remote may register that stream, and we then register it too (each
                    // side reads every live channel, so a simultaneous dial converges without
                    // closing anything). Before dialing it sees the channel and stops.
                    self.register(stream);
                }
            }
            PeerCmd::ChannelEnded { id, end } => self.on_channel_end(id, end),
            PeerCmd::Close => {
                self.connecting = None;
                self.drop_current(SendErrorKind::IntentionalClose);
                for ch in self.channels.values() {
                    ch.abort(SendErrorKind::IntentionalClose);
                }
                self.fail_queue(SendErrorKind::IntentionalClose, describe(&SendErrorKind::IntentionalClose));
                self.shared.set_status(self.peer, "closed", None);
            }
            PeerCmd::Reconnect => {
                self.with_entry(|e| e.backoff = Backoff::default());
                if self.current.is_none() && self.connecting.is_none() {
                    self.start_connecting(true);
                }
            }
            PeerCmd::DropQueued => self.queue.clear(),
            PeerCmd::Disconnected => self.on_disconnected(),
            PeerCmd::Forget => {
                if self.forget() {
                    return false;
                }
            }
            PeerCmd::Stop => {
                self.connecting = None;
                self.drop_current(SendErrorKind::NetworkStopped);
                let mut tasks = Vec::new();
                for (_, ch) in self.channels.drain() {
                    ch.abort(SendErrorKind::NetworkStopped);
                    tasks.push(ch.task);
                }
                self.fail_queue(SendErrorKind::NetworkStopped, "network stopped");
                for t in tasks {
                    let _ = tokio::time::timeout(STOP_GRACE, t).await;
                }
                return false;
            }
        }
        true
    }

    /// `peer:disconnect` (§9.3): with no channel and nothing in flight, all connections
    /// closing may have taken frames with them (the kernel retransmits them once a channel
    /// is up), so reconnect as `handleConnectionLoss` does; but not a peer we cannot dial
    /// (no hint, no relay: it dialed us, and will again), one closed or given up on (the
    /// kernel knows; its next send dials), or one whose channel idled out (nothing owed).
    fn on_disconnected(&mut self) {
        if self.shared.is_stopped() || self.current.is_some() || self.connecting.is_some() || self.idled_out {
            return;
        }
        let hints = {
            let st = self.shared.lock();
            match st.peers.get(&self.peer) {
                Some(e) if !e.closed && e.status != "failed" => e.hints.clone(),
                _ => return,
            }
        };
        if self.shared.candidates(self.peer, &hints).is_empty() {
            return;
        }
        tracing::debug!(peer = %self.peer, "all connections closed with no channel: reconnecting");
        self.start_connecting(true);
    }

    /// Drops the peer's state if it is still stale (§9.5): no channel (current or retired),
    /// nothing queued, no command waiting, inactive for longer than `stale_peer_timeout`.
    /// A loop in flight (a reconnection with nothing queued) stops. Returns whether the
    /// actor must end (its entry is gone).
    fn forget(&mut self) -> bool {
        if self.current.is_some() || !self.channels.is_empty() || !self.queue.is_empty() {
            return false;
        }
        // Every command is sent under the state lock: with the lock held and none waiting,
        // nothing can reach this actor any more once the entry is gone.
        let mut st = self.shared.lock();
        let timeout = self.shared.limits.stale_peer_timeout;
        let stale = st.peers.get(&self.peer).is_some_and(|e| !e.has_channel && e.last_active.elapsed() > timeout);
        if !stale || !self.rx.is_empty() {
            return false;
        }
        st.peers.remove(&self.peer);
        drop(st);
        self.connecting = None;
        tracing::debug!(peer = %self.peer, "forgetting stale peer");
        true
    }

    /// Forgets the current channel (aborting it with `kind`), releasing its slot.
    fn drop_current(&mut self, kind: SendErrorKind) {
        if let Some(id) = self.current.take() {
            self.shared.release_slot();
            if let Some(ch) = self.channels.remove(&id) {
                ch.abort(kind);
                self.note_activity(&ch);
            }
            let mut st = self.shared.lock();
            if let Some(e) = st.peers.get_mut(&self.peer) {
                e.has_channel = false;
            }
        }
    }

    /// Makes `stream` the peer's channel and writes the queued frames on it. The previous
    /// channel is retired, not closed: its queued frames are written first (send order),
    /// then it stays open and read until the remote closes it, it idles out, or it fails.
    /// Closing it at once (as JS does) makes both sides of a simultaneous dial see their
    /// current channel closed and redial in a cascade. The caller holds the slot (or the previous channel's).
    fn register(&mut self, stream: ChannelStream) {
        let id = self.next_id;
        self.next_id += 1;
        let ch = spawn_channel(&self.shared, self.peer, stream, id, self.self_tx.clone());
        if let Some(old) = self.current.and_then(|old| self.channels.get_mut(&old)) {
            if let Some(drained) = old.drained.take() {
                let _ = ch.writer_tx.send(WriterMsg::WaitFor(drained));
            }
            let _ = old.writer_tx.send(WriterMsg::Retire);
        }
        for frame in self.queue.drain(..) {
            let _ = ch.writer_tx.send(WriterMsg::Frame(frame));
        }
        self.channels.insert(id, ch);
        self.current = Some(id);
        self.idled_out = false;
        self.with_entry(|e| {
            e.has_channel = true;
            e.status = "connected";
            e.last_active = Instant::now();
            e.backoff = Backoff::default();
        });
        tracing::debug!(peer = %self.peer, id, "channel registered");
    }

    fn on_channel_end(&mut self, id: u64, end: ChannelEnd) {
        let Some(ch) = self.channels.remove(&id) else { return };
        ch.abort(SendErrorKind::Other);
        self.note_activity(&ch);
        if self.current != Some(id) {
            return;
        }
        self.current = None;
        self.shared.release_slot();
        {
            let mut st = self.shared.lock();
            if let Some(e) = st.peers.get_mut(&self.peer) {
                e.has_channel = false;
                e.status = "idle";
            }
        }
        let error = match end {
            ChannelEnd::Idle | ChannelEnd::Aborted => {
                // Torn down on purpose: the next send dials again.
                self.idled_out = true;
                if !self.queue.is_empty() && self.connecting.is_none() {
                    self.start_connecting(false);
                }
                return;
            }
            ChannelEnd::Eof => "stream closed by peer".to_owned(),
            ChannelEnd::Failed(m) => m,
            ChannelEnd::Oversize(m) => format!("messageSize: {m}"),
        };
        // handleConnectionLoss (§9.4)
        self.shared.set_status(self.peer, "idle", Some(error));
        if self.shared.is_stopped() || self.closed() {
            return;
        }
        if self.connecting.is_none() {
            self.start_connecting(true);
        }
    }

    async fn on_outcome(&mut self, outcome: Result<Established, EstablishError>) {
        let Some(conn) = self.connecting.take() else { return };
        let write_timeout = self.shared.limits.write_timeout;
        match outcome {
            Ok(Established { stream, restarted }) => {
                if restarted {
                    tracing::info!(peer = %self.peer, "peer restarted (new incarnation)");
                    self.fail_queue(SendErrorKind::PeerRestarted, "peer restarted");
                    if !conn.reconnect {
                        close_stream(stream, write_timeout).await;
                        self.shared.set_status(self.peer, "idle", Some("peer restarted".into()));
                        return;
                    }
                }
                if self.shared.is_stopped() || self.closed() {
                    close_stream(stream, write_timeout).await;
                    return;
                }
                if self.current.is_none() && !self.shared.acquire_slot() {
                    close_stream(stream, write_timeout).await;
                    self.after_failure(conn, EstablishError::ConnectionLimit);
                    return;
                }
                self.register(stream);
            }
            Err(e) => self.after_failure(conn, e),
        }
    }

    /// Decides what follows a failed attempt: retry with backoff, wait, or give up (§9.4).
    fn after_failure(&mut self, conn: Connecting, error: EstablishError) {
        if self.shared.is_stopped() {
            // `PeerCmd::Stop` is on its way and fails the queue as `NetworkStopped`.
            return;
        }
        let limits = self.shared.limits.clone();
        let next = |attempt: u32| node::backoff(attempt, limits.reconnection_base_delay, limits.reconnection_max_delay);
        match error {
            EstablishError::AlreadyConnected => {}
            EstablishError::RateLimited(wait) => {
                self.fail_queue(
                    SendErrorKind::ResourceLimit("connectionRate".into()),
                    "too many connection attempts to peer",
                );
                if conn.reconnect {
                    // Not counted: try again when the window has room.
                    self.connecting =
                        Some(Connecting { fut: establish(self.shared.clone(), self.peer, wait).boxed(), ..conn });
                } else {
                    self.shared.set_status(self.peer, "idle", Some("connectionRate".into()));
                }
            }
            EstablishError::ConnectionLimit => {
                self.fail_queue(SendErrorKind::ResourceLimit("connection".into()), "connection limit reached");
                self.shared.set_status(self.peer, "idle", Some("connection limit".into()));
                if conn.reconnect {
                    self.retry_or_give_up(conn, "connection limit reached".into(), &next);
                }
            }
            EstablishError::Retryable { code, message } => {
                tracing::debug!(peer = %self.peer, ?code, %message, "connection attempt failed");
                let in_a_row = self
                    .with_entry(|e| {
                        e.status = "reconnecting";
                        e.last_error = Some(message.clone());
                        let b = &mut e.backoff;
                        match code {
                            Some(c) if PERMANENT_CODES.contains(&c) => {
                                b.code_count = if b.last_code == Some(c) { b.code_count + 1 } else { 1 };
                                b.last_code = Some(c);
                            }
                            _ => {
                                b.last_code = None;
                                b.code_count = 0;
                            }
                        }
                        b.code_count
                    })
                    .unwrap_or(0);
                if in_a_row >= CONSECUTIVE_ERROR_THRESHOLD {
                    self.give_up(format!("{message} ({in_a_row} times in a row)"));
                } else {
                    self.retry_or_give_up(conn, message, &next);
                }
            }
            EstablishError::NoAddress(message) => {
                if conn.reconnect && self.queue.is_empty() {
                    // A peer that reached us (we know no address of it) closed the channel:
                    // nothing to send, so wait for it to come back rather than give up.
                    tracing::debug!(peer = %self.peer, "channel lost, no address to redial: idle");
                    self.shared.set_status(self.peer, "idle", Some(message));
                } else {
                    self.give_up(message);
                }
            }
            EstablishError::Fatal(message) => self.give_up(message),
        }
    }

    fn retry_or_give_up(&mut self, conn: Connecting, message: String, next: &dyn Fn(u32) -> Duration) {
        let max = self.shared.limits.max_retry_attempts;
        // Ok(next attempt) or Err(attempts made).
        let counted = self.with_entry(|e| {
            let b = &mut e.backoff;
            if max > 0 && b.attempt >= max {
                Err(b.attempt)
            } else {
                b.attempt += 1;
                Ok(b.attempt)
            }
        });
        match counted {
            Some(Ok(attempt)) => {
                self.connecting = Some(Connecting {
                    reconnect: conn.reconnect,
                    fut: establish(self.shared.clone(), self.peer, next(attempt)).boxed(),
                });
            }
            Some(Err(made)) => self.give_up(format!("{message} (after {made} attempts)")),
            None => self.give_up(message),
        }
    }

    fn give_up(&mut self, message: String) {
        tracing::info!(peer = %self.peer, %message, "giving up on peer");
        self.connecting = None;
        self.with_entry(|e| e.backoff = Backoff::default());
        self.fail_queue(SendErrorKind::Other, &format!("gave up connecting: {message}"));
        self.shared.set_status(self.peer, "failed", Some(message));
        self.shared.inbox.give_up(&self.peer_str);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_codes() {
        assert_eq!(io_code(std::io::ErrorKind::ConnectionRefused), Some("ECONNREFUSED"));
        assert_eq!(io_code(std::io::ErrorKind::Other), None);
    }

    /// An error that only wraps another, as libp2p's transport errors do.
    #[derive(Debug)]
    struct Wrap(Box<dyn std::error::Error + Send + Sync>);
    impl std::fmt::Display for Wrap {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "wrapped: {}", self.0)
        }
    }
    impl std::error::Error for Wrap {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&*self.0)
        }
    }

    /// The OS error is found under `io::Error::other` and `source()` links, as in a boxed
    /// libp2p transport's dial error; a DNS name with no records is `ENOTFOUND`.
    #[test]
    fn error_codes_are_found_under_wrappers() {
        use std::io::{Error, ErrorKind};
        let refused = Error::other(Wrap(Box::new(Wrap(Box::new(Error::from(ErrorKind::ConnectionRefused))))));
        assert_eq!(error_code(&refused), Some("ECONNREFUSED"));
        let os = Error::other(Wrap(Box::new(Error::from_raw_os_error(libc_enetunreach()))));
        assert_eq!(error_code(&os), Some("ENETUNREACH"));
        let unresolved: libp2p::dns::ResolveError =
            libp2p::dns::ResolveErrorKind::Message("No Matching Records Found").into();
        assert_eq!(error_code(&Error::other(Wrap(Box::new(unresolved)))), Some("ENOTFOUND"));
        assert_eq!(error_code(&Error::other(Wrap(Box::new(Error::other("nothing known"))))), None);
        let timeout: Box<dyn std::error::Error + Send + Sync> = "timeout".into();
        assert_eq!(error_code(&Error::other(Wrap(timeout))), None);
    }

    /// `ENETUNREACH`'s number on this OS, read back from std's own mapping.
    fn libc_enetunreach() -> i32 {
        (1..200)
            .find(|n| std::io::Error::from_raw_os_error(*n).kind() == std::io::ErrorKind::NetworkUnreachable)
            .expect("an OS error number for ENETUNREACH")
    }
}
