//! The libp2p node of a transport (remote-comms.md §9.1): the swarm, its behaviours, and
//! the task that owns it. Everything else talks to the swarm through [`SwarmCmd`]s.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::timeout::TransportTimeout;
use libp2p::core::transport::ListenerId;
use libp2p::core::upgrade::Version;
use libp2p::core::Transport as _;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, NetworkBehaviour, SwarmEvent};
use libp2p::{dns, identify, noise, ping, quic, relay, tcp, websocket, yamux, Multiaddr, PeerId, Swarm};
use rand::Rng as _;
use tokio::sync::{mpsc, oneshot};

use crate::gate::{WsGate, WsHosts};
use crate::raw::{KeepAlive, RawProtocols};
use crate::NetError;

/// The identify protocol version this node announces.
pub(crate) const IDENTIFY_PROTOCOL_VERSION: &str = "/ocap-kernel/id/1.0.0";

/// Budget of one transport-level connection attempt (the SwarmBuilder's default).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Relay re-reservation backoff (§9.1): base 5 s, max 60 s, at most 10 attempts.
const RELAY_BASE_DELAY: Duration = Duration::from_secs(5);
const RELAY_MAX_DELAY: Duration = Duration::from_secs(60);
const RELAY_MAX_ATTEMPTS: u32 = 10;

#[derive(NetworkBehaviour)]
pub(crate) struct NodeBehaviour {
    relay_client: relay::client::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    stream: libp2p_stream::Behaviour,
    /// Keeps connections with live bare-id channels open (see [`crate::raw`]).
    keep_alive: KeepAlive,
    /// Denies plain-ws dials to public hosts (§9.1 connection gater, [`crate::gate`]).
    ws_gate: WsGate,
}

impl NodeBehaviour {
    /// A handle for opening and accepting streams.
    pub(crate) fn stream_control(&self) -> libp2p_stream::Control {
        self.stream.new_control()
    }
}

/// What the rest of the transport asks of the swarm.
pub(crate) enum SwarmCmd {
    /// Connect to `peer` at `addr` (or succeed at once if already connected).
    Dial { peer: PeerId, addr: Multiaddr, reply: oneshot::Sender<Result<(), DialError>> },
    /// (Re)listen on `<relay>/p2p-circuit`; `attempt` counts consecutive failures.
    ListenRelay { relay: Multiaddr, attempt: u32 },
    /// Whether a connection to `peer` is up.
    IsConnected { peer: PeerId, reply: oneshot::Sender<bool> },
    /// Stop the swarm: the task returns and drops it (closing listeners and connections).
    Stop,
}

/// Runs `task` on a new thread named `name`, in a current-thread tokio runtime of its own,
/// so that a node starts alike from a plain thread and from inside any tokio runtime (whose
/// worker it would otherwise block, or nest in). Blocks until `task` reports through its
/// sender, and returns what it reported with the thread's handle.
pub(crate) fn spawn_node_thread<T, F, Fut>(name: String, task: F) -> Result<(T, std::thread::JoinHandle<()>), NetError>
where
    T: Send + 'static,
    F: FnOnce(std::sync::mpsc::Sender<Result<T, NetError>>) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt.block_on(task(ready_tx)),
            Err(e) => {
                let _ = ready_tx.send(Err(NetError::Runtime(e.to_string())));
            }
        })
        .map_err(|e| NetError::Runtime(e.to_string()))?;
    match ready_rx.recv() {
        Ok(Ok(value)) => Ok((value, thread)),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(NetError::Runtime(format!("the thread {name} died while starting"))),
    }
}

/// Full-jitter backoff: uniform in `[0, min(max, base·2^(attempt−1)))` (§9.4).
pub(crate) fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let cap = base.saturating_mul(1u32 << exp).min(max);
    let cap_ms = cap.as_millis() as u64;
    if cap_ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::thread_rng().gen_range(0..cap_ms))
}

/// Checks that `addr` is a direct listen address this node can serve: TCP, TCP/WS or
/// UDP/QUIC v1 over an IP or DNS host (§9.1 "Unsupported direct listen address").
pub(crate) fn check_listen_address(addr: &Multiaddr) -> bool {
    let protos: Vec<Protocol<'_>> = addr.iter().collect();
    let host_ok = matches!(
        protos.first(),
        Some(Protocol::Ip4(_) | Protocol::Ip6(_) | Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_))
    );
    let rest: Vec<&Protocol<'_>> = protos.iter().skip(1).filter(|p| !matches!(p, Protocol::P2p(_))).collect();
    host_ok
        && matches!(
            rest.as_slice(),
            [Protocol::Tcp(_)] | [Protocol::Tcp(_), Protocol::Ws(_)] | [Protocol::Udp(_), Protocol::QuicV1]
        )
}

/// Refuses a fixed port another socket holds. libp2p's listeners set `SO_REUSEPORT`, so a
/// second node (or relay) on a port in use would bind it too and share its connections at
/// random; a plain bind of our own, without that option, says whether the port is free.
/// Port 0 and DNS hosts are not probed.
pub(crate) fn probe_port_free(addr: &Multiaddr) -> Result<(), NetError> {
    let mut ip = None;
    let mut port = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Ip6(a) => ip = Some(std::net::IpAddr::V6(a)),
            Protocol::Tcp(n) => port = Some((n, true)),
            Protocol::Udp(n) => port = Some((n, false)),
            _ => {}
        }
    }
    let (Some(ip), Some((port, tcp))) = (ip, port) else { return Ok(()) };
    if port == 0 {
        return Ok(());
    }
    let at = std::net::SocketAddr::new(ip, port);
    let bound = if tcp { std::net::TcpListener::bind(at).map(drop) } else { std::net::UdpSocket::bind(at).map(drop) };
    match bound {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Err(NetError::Listen { addr: addr.to_string(), reason: "the address is already in use".into() })
        }
        _ => Ok(()),
    }
}

/// The last `/p2p/` component of `addr`, if any.
pub(crate) fn last_p2p(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter()
        .filter_map(|p| match p {
            Protocol::P2p(id) => Some(id),
            _ => None,
        })
        .last()
}

/// `addr` ending in `/p2p/<peer>` (appended unless it already ends so).
pub(crate) fn with_peer(addr: &Multiaddr, peer: PeerId) -> Multiaddr {
    match addr.iter().last() {
        Some(Protocol::P2p(id)) if id == peer => addr.clone(),
        _ => addr.clone().with(Protocol::P2p(peer)),
    }
}

fn transport_err(e: impl std::fmt::Display) -> NetError {
    NetError::Transport(e.to_string())
}

/// A TCP transport's `io::Error`, changed in one way only: `source()` yields it. The
/// upgrade layers above TCP wrap its error in `Either`s, whose `source()` is transparent (it
/// returns the wrapped error's *source*, never the wrapped error), so a bare `io::Error`
/// under them ends the chain unseen; under this wrapper the walk of
/// `transport::error_code` finds it, and with it the refusal behind a dial (§9.4's
/// permanent-failure codes). Displays as the `io::Error`.
#[derive(Debug)]
pub(crate) struct OsError(pub(crate) std::io::Error);

impl std::fmt::Display for OsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for OsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Builds the node's swarm (must run inside a tokio runtime).
///
/// The transport stack is the one `SwarmBuilder` makes with `with_tcp` (noise, yamux),
/// `with_quic`, `with_dns`, `with_websocket` (noise, yamux) and `with_relay_client` (noise,
/// yamux), built by hand so that every connection's muxer, whatever the transport, can be
/// wrapped once at the top with [`RawProtocols::wrap`] for bare protocol ids. Connections
/// idle (no stream the swarm negotiated, no live bare-id channel, no reservation) for
/// `idle_timeout` are closed. Plain-ws dials are gated by `ws_hosts`.
pub(crate) fn build_swarm(
    key: libp2p::identity::Keypair,
    raw: Arc<RawProtocols>,
    idle_timeout: Duration,
    ws_hosts: WsHosts,
) -> Result<Swarm<NodeBehaviour>, NetError> {
    let local = key.public().to_peer_id();
    let noise = noise::Config::new(&key).map_err(transport_err)?;
    let tcp_quic = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
        .map_err(OsError)
        .upgrade(Version::V1Lazy)
        .authenticate(noise.clone())
        .multiplex(yamux::Config::default())
        .map(|(p, c), _| (p, StreamMuxerBox::new(c)))
        .or_transport(quic::tokio::Transport::new(quic::Config::new(&key)).map(|(p, c), _| (p, StreamMuxerBox::new(c))))
        .map(|either, _| either.into_inner());
    let direct = dns::tokio::Transport::system(tcp_quic).map_err(transport_err)?;
    let ws_tcp = dns::tokio::Transport::system(tcp::tokio::Transport::new(tcp::Config::default()).map_err(OsError))
        .map_err(transport_err)?;
    let ws = websocket::Config::new(ws_tcp)
        .upgrade(Version::V1Lazy)
        .authenticate(noise.clone())
        .multiplex(yamux::Config::default())
        .map(|(p, c), _| (p, StreamMuxerBox::new(c)));
    let (relay_transport, relay_client) = relay::client::new(local);
    let relayed = relay_transport
        .upgrade(Version::V1Lazy)
        .authenticate(noise)
        .multiplex(yamux::Config::default())
        .map(|(p, c), _| (p, StreamMuxerBox::new(c)));
    let raw_map = raw.clone();
    let transport = relayed
        .or_transport(ws.or_transport(direct).map(|either, _| either.into_inner()))
        .map(|either, _| either.into_inner())
        .map(move |(peer, muxer), endpoint| (peer, StreamMuxerBox::new(raw_map.wrap(peer, muxer, &endpoint))));
    let transport = TransportTimeout::new(transport, CONNECTION_TIMEOUT).boxed();
    Ok(Swarm::new(
        transport,
        NodeBehaviour {
            relay_client,
            identify: identify::Behaviour::new(identify::Config::new(
                IDENTIFY_PROTOCOL_VERSION.to_owned(),
                key.public(),
            )),
            ping: ping::Behaviour::default(),
            stream: libp2p_stream::Behaviour::new(),
            keep_alive: KeepAlive::new(raw),
            ws_gate: WsGate::new(ws_hosts),
        },
        local,
        libp2p::swarm::Config::with_tokio_executor().with_idle_connection_timeout(idle_timeout),
    ))
}

/// Listens on every direct address and waits (at most `wait`) until each listener has
/// reported an address, so that the caller sees resolved ports at once.
pub(crate) async fn listen_direct<B>(
    swarm: &mut Swarm<B>,
    addrs: &[Multiaddr],
    listen: &Arc<Mutex<Vec<Multiaddr>>>,
    wait: Duration,
) -> Result<(), NetError>
where
    B: NetworkBehaviour,
    B::ToSwarm: std::fmt::Debug,
{
    use futures::StreamExt as _;
    let local = *swarm.local_peer_id();
    let mut pending: HashMap<ListenerId, Multiaddr> = HashMap::new();
    for addr in addrs {
        probe_port_free(addr)?;
        let id = swarm
            .listen_on(addr.clone())
            .map_err(|e| NetError::Listen { addr: addr.to_string(), reason: e.to_string() })?;
        pending.insert(id, addr.clone());
    }
    let deadline = tokio::time::Instant::now() + wait;
    while !pending.is_empty() {
        let event = match tokio::time::timeout_at(deadline, swarm.select_next_some()).await {
            Ok(ev) => ev,
            Err(_) => {
                let addrs: Vec<String> = pending.values().map(|a| a.to_string()).collect();
                return Err(NetError::Listen {
                    addr: addrs.join(", "),
                    reason: format!("no address reported within {} ms", wait.as_millis()),
                });
            }
        };
        match event {
            SwarmEvent::NewListenAddr { listener_id, address } => {
                push_addr(listen, with_peer(&address, local));
                pending.remove(&listener_id);
            }
            SwarmEvent::ListenerClosed { listener_id, reason, .. } => {
                if let Some(addr) = pending.remove(&listener_id) {
                    return Err(NetError::Listen {
                        addr: addr.to_string(),
                        reason: match reason {
                            Ok(()) => "listener closed".to_owned(),
                            Err(e) => e.to_string(),
                        },
                    });
                }
            }
            SwarmEvent::ListenerError { listener_id, error } => {
                if let Some(addr) = pending.get(&listener_id) {
                    return Err(NetError::Listen { addr: addr.to_string(), reason: error.to_string() });
                }
            }
            other => tracing::trace!(?other, "swarm event while starting"),
        }
    }
    Ok(())
}

pub(crate) fn push_addr(listen: &Arc<Mutex<Vec<Multiaddr>>>, addr: Multiaddr) {
    let mut l = listen.lock().unwrap_or_else(|e| e.into_inner());
    if !l.contains(&addr) {
        l.push(addr);
    }
}

pub(crate) fn remove_addr(listen: &Arc<Mutex<Vec<Multiaddr>>>, addr: &Multiaddr) {
    let mut l = listen.lock().unwrap_or_else(|e| e.into_inner());
    l.retain(|a| a != addr);
}

/// The task that owns the swarm until [`SwarmCmd::Stop`].
///
/// When the last connection to a peer closes, the peer is sent on `disconnected` (JS's
/// `peer:disconnect`, §9.3), unless it is one of `relays` (relay disconnects are not peer
/// disconnects, §9.1; the relay listener's own closing re-reserves).
pub(crate) async fn run_swarm(
    mut swarm: Swarm<NodeBehaviour>,
    mut cmds: mpsc::UnboundedReceiver<SwarmCmd>,
    cmd_tx: mpsc::UnboundedSender<SwarmCmd>,
    listen: Arc<Mutex<Vec<Multiaddr>>>,
    relays: HashSet<PeerId>,
    disconnected: mpsc::UnboundedSender<PeerId>,
) {
    use futures::StreamExt as _;
    let local = *swarm.local_peer_id();
    let mut dials: HashMap<ConnectionId, oneshot::Sender<Result<(), DialError>>> = HashMap::new();
    let mut relay_listeners: HashMap<ListenerId, (Multiaddr, u32)> = HashMap::new();
    loop {
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                None | Some(SwarmCmd::Stop) => break,
                Some(SwarmCmd::Dial { peer, addr, reply }) => {
                    if swarm.is_connected(&peer) {
                        let _ = reply.send(Ok(()));
                        continue;
                    }
                    let opts = DialOpts::peer_id(peer)
                        .addresses(vec![addr.clone()])
                        .condition(PeerCondition::Always)
                        .build();
                    let id = opts.connection_id();
                    tracing::debug!(%peer, %addr, "dialing");
                    match swarm.dial(opts) {
                        Ok(()) => {
                            dials.insert(id, reply);
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    }
                }
                Some(SwarmCmd::ListenRelay { relay, attempt }) => {
                    let circuit = relay.clone().with(Protocol::P2pCircuit);
                    match swarm.listen_on(circuit) {
                        Ok(id) => {
                            relay_listeners.insert(id, (relay, attempt));
                        }
                        Err(e) => {
                            tracing::warn!(%relay, error = %e, "cannot listen through relay");
                            schedule_relay(&cmd_tx, relay, attempt + 1);
                        }
                    }
                }
                Some(SwarmCmd::IsConnected { peer, reply }) => {
                    let _ = reply.send(swarm.is_connected(&peer));
                }
            },
            event = swarm.select_next_some() => match event {
                SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } => {
                    tracing::debug!(%peer_id, addr = %endpoint.get_remote_address(), "connection established");
                    if let Some(reply) = dials.remove(&connection_id) {
                        let _ = reply.send(Ok(()));
                    }
                }
                SwarmEvent::OutgoingConnectionError { connection_id, peer_id, error } => {
                    tracing::debug!(?peer_id, %error, "dial failed");
                    if let Some(reply) = dials.remove(&connection_id) {
                        let _ = reply.send(Err(error));
                    }
                }
                SwarmEvent::ConnectionClosed { peer_id, cause, num_established, .. } => {
                    tracing::debug!(%peer_id, ?cause, num_established, "connection closed");
                    if num_established == 0 && !relays.contains(&peer_id) {
                        let _ = disconnected.send(peer_id);
                    }
                }
                SwarmEvent::NewListenAddr { listener_id, address } => {
                    tracing::info!(%address, "listening");
                    if let Some((_, attempt)) = relay_listeners.get_mut(&listener_id) {
                        *attempt = 0;
                    }
                    push_addr(&listen, with_peer(&address, local));
                }
                SwarmEvent::ExpiredListenAddr { address, .. } => {
                    remove_addr(&listen, &with_peer(&address, local));
                }
                SwarmEvent::ListenerClosed { listener_id, addresses, reason } => {
                    for a in &addresses {
                        remove_addr(&listen, &with_peer(a, local));
                    }
                    if let Some((relay, attempt)) = relay_listeners.remove(&listener_id) {
                        tracing::warn!(%relay, ?reason, "relay listener closed");
                        schedule_relay(&cmd_tx, relay, attempt + 1);
                    }
                }
                SwarmEvent::ListenerError { error, .. } => {
                    tracing::debug!(%error, "listener error");
                }
                SwarmEvent::Behaviour(ev) => tracing::trace!(?ev, "behaviour event"),
                other => tracing::trace!(?other, "swarm event"),
            },
        }
    }
    for (_, reply) in dials.drain() {
        let _ = reply.send(Err(DialError::Aborted));
    }
    tracing::debug!("swarm stopped");
}

fn schedule_relay(cmd_tx: &mpsc::UnboundedSender<SwarmCmd>, relay: Multiaddr, attempt: u32) {
    if attempt > RELAY_MAX_ATTEMPTS {
        tracing::warn!(%relay, "giving up reserving a slot on the relay");
        return;
    }
    let delay = backoff(attempt, RELAY_BASE_DELAY, RELAY_MAX_DELAY);
    let tx = cmd_tx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let _ = tx.send(SwarmCmd::ListenRelay { relay, attempt });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_are_checked() {
        for ok in [
            "/ip4/127.0.0.1/tcp/0",
            "/ip4/0.0.0.0/tcp/9002",
            "/ip6/::1/tcp/0/ws",
            "/ip4/127.0.0.1/udp/0/quic-v1",
            "/dns4/localhost/tcp/1",
        ] {
            assert!(check_listen_address(&ok.parse().unwrap()), "{ok}");
        }
        for bad in [
            "/ip4/127.0.0.1/udp/0/quic",
            "/ip4/127.0.0.1/tcp/0/wss",
            "/ip4/127.0.0.1/udp/0/webrtc-direct",
            "/p2p-circuit",
            "/ip4/127.0.0.1",
        ] {
            assert!(!check_listen_address(&bad.parse().unwrap()), "{bad}");
        }
    }

    #[test]
    fn backoff_is_bounded() {
        let base = Duration::from_millis(500);
        let max = Duration::from_secs(10);
        for attempt in 1..40 {
            let d = backoff(attempt, base, max);
            let cap = base.saturating_mul(1u32 << (attempt - 1).min(30)).min(max);
            assert!(d < cap, "{attempt}: {d:?}");
        }
        assert_eq!(backoff(1, Duration::ZERO, max), Duration::ZERO);
    }
}
