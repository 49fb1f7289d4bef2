//! The rust-libp2p transport of ocap's remote comms (remote-comms.md §4, §9): it implements
//! [`ocap_abi::remote::RemoteTransport`] over libp2p and reports back through
//! [`ocap_abi::remote::RemoteInbox`].
//!
//! # Stack (§4.1)
//! TCP, QUIC v1 and WebSocket transports, plus circuit relay v2 (client); noise XX and
//! yamux; identify and ping. One bidirectional stream per peer pair (a *channel*) carries
//! frames: an unsigned LEB128 varint length, then that many bytes of UTF-8 JSON. Whichever
//! side dials, both use the stream; a newly registered channel replaces the old one.
//!
//! # Handshake (§4.2)
//! The dialer writes `{"method":"handshake","params":{"incarnationId":"<id>"}}` and the
//! listener answers `{"method":"handshakeAck","params":{"incarnationId":"<id>"}}`, each
//! within [`NetLimits::handshake_timeout`]. Then the kernel's verdict
//! ([`RemoteInbox::incarnation`](ocap_abi::remote::RemoteInbox::incarnation)) decides:
//! `true` on an outbound channel closes it and fails the queued sends with `PeerRestarted`
//! (a reconnection registers it anyway); `true` on an inbound channel refuses it.
//!
//! # Threads
//! [`Libp2pTransport::start`] and [`RelayServer::start`] each run their swarm on a thread of
//! their own (with a current-thread tokio runtime), so they work from plain threads and from
//! inside any tokio runtime alike. Every [`RemoteTransport`](ocap_abi::remote::RemoteTransport)
//! method returns at once; failures come back through the inbox, always from the transport's
//! thread (never from inside the kernel's call).
//!
//! # Gating and peer lifecycle (§9.1, §9.3–§9.5)
//! Plain WebSocket dials to public hosts are denied unless allowed
//! ([`NetOptions::allowed_ws_hosts`], plain-ws relays' hosts); the denial names the address
//! and is not retried. When the last connection to a peer closes while it has no channel
//! (`peer:disconnect`), the reconnection loop starts if the peer can be dialed. Peers with no
//! channel and no activity for [`NetLimits::stale_peer_timeout`] are forgotten every
//! [`NetLimits::cleanup_interval`]. A wall-clock jump ([`NetOptions::wall_clock`], checked
//! every [`NetLimits::wake_check_interval`]) resets all backoffs, as
//! [`Libp2pTransport::reset_all_backoffs`] does.
//!
//! # The protocol id `whatever`
//! The JS kernel registers and dials its application protocol as the bare string `whatever`
//! ([`JS_PROTOCOL`], no leading `/`). rust-libp2p 0.56 (libp2p-core 0.43, libp2p-swarm
//! 0.47, multistream-select 0.13) cannot negotiate such an id itself:
//! - `StreamProtocol::try_from_owned` refuses any id not starting with `/`
//!   (`InvalidProtocol::missing_forward_slash`), and `libp2p-stream`'s `Control::
//!   open_stream` / `Control::accept` only take `StreamProtocol`s.
//! - Every substream a connection's muxer yields is negotiated by `libp2p-swarm`'s
//!   `connection.rs` (`StreamUpgrade::new_inbound` / `new_outbound`) with
//!   `multistream_select::listener_select_proto` / `dialer_select_proto` before any
//!   `ConnectionHandler` sees it. Dialing, `Protocol::try_from("whatever")` fails, so the
//!   proposal is never sent. Listening, names failing `Protocol::try_from` are dropped from
//!   the supported list, and an incoming `whatever\n` is not recognised by `Message::decode`
//!   (it needs a leading `/`): it is parsed as an `ls` response whose first byte `w` reads
//!   as a varint length of 119, so the negotiation fails with `InvalidMessage` and the
//!   substream is dropped without an `na`.
//!
//! So this crate negotiates bare ids below the swarm (module `raw`), without forking or
//! vendoring anything:
//! - The transport stack (TCP, QUIC, DNS, WebSocket, relay client; noise, yamux) is built
//!   by hand as `SwarmBuilder` would, and `Transport::map` wraps every connection's muxer
//!   (after the stack is merged, so all transports and relayed connections) in a
//!   `StreamMuxer` that reads each inbound substream's multistream-select header and first
//!   proposal itself: at most 20 + 1 + 101 bytes, stopping at the first byte that rules out
//!   our ids; within 10 s; at most 32 such sniffs per connection at once (more wait in the
//!   muxer). For `whatever` it answers `\x13/multistream/1.0.0\n\x09whatever\n` and hands
//!   the substream to the transport, which runs the listener's handshake on it as on any
//!   channel. For anything else (or a timeout or read error) it gives the swarm a substream
//!   that first replays the bytes read, so identify, ping, relay HOP/STOP and
//!   `/ocap-kernel/1.0.0` negotiate exactly as before (checked on the wire: the swarm's
//!   own listener answers `/ipfs/id/1.0.0` and `na`).
//! - Outbound, with [`NetOptions::protocol`] = `"whatever"`, the transport asks the wrapper
//!   of a live connection to the peer (the newest direct one, else the newest relayed one)
//!   for a new substream and runs the dialer side by hand: header and proposal in one write,
//!   then it accepts the listener's header (before the echo, or not at all) and the echo;
//!   `na` fails the attempt as "peer does not support protocol whatever" (not retried).
//! - The swarm's idle-connection timeout only counts the streams it negotiated, so a
//!   keep-alive behaviour keeps a connection open while the wrapper counts live bare-id
//!   substreams (or sniffs) on it. The wrapper and the behaviour's handler find each other
//!   by peer and `ConnectedPoint` addresses, which the swarm passes unchanged to
//!   `handle_established_*_connection`.
//! - Inbound, `whatever` is always accepted, as is [`NetOptions::protocol`] (and
//!   [`DEFAULT_PROTOCOL`] when that is bare), so default and JS-compatible nodes reach each
//!   other either way.
//!
//! Checked: Rust↔Rust on `whatever` over TCP, QUIC, WebSocket and a relay circuit; the
//! exact bytes against a hand-written multistream-select peer on a bare libp2p connection
//! (`tests/wire.rs`); and a live JS node (libp2p 3.3.11, `@chainsafe/libp2p-noise` 17.0.0,
//! `@chainsafe/libp2p-yamux` 8.0.1, `@libp2p/tcp` 11.0.28, Node 20 with a
//! `Promise.withResolvers` polyfill) over TCP, both directions, with both full and
//! optimistic (`negotiateFully: false`) negotiation on the JS dialer
//! (`tests/js_interop.rs`, with the JS peer in `tests/js/`; it installs the pinned npm
//! packages under the target directory and skips without Node/npm outside CI); over
//! WebSocket (`@libp2p/websockets` 10.1.21, both directions); and through a JS relay
//! (`@libp2p/circuit-relay-v2` 4.2.13 with unlimited circuits, as the JS kernel's relay is
//! set up: a JS peer reaching us and us reaching a JS peer); and over QUIC
//! (`@chainsafe/libp2p-quic` 2.1.1, its linux-x64-gnu binary). **Not interoperable: a JS peer through our own
//! `RelayServer`**: rust-libp2p's relay (0.21) always announces a circuit limit (its
//! `max_circuit_duration` and `max_circuit_bytes`), JS libp2p treats any limit as a limited
//! connection, and the JS kernel does not run its protocol on limited connections
//! (`LimitedConnectionError`). JS peers need a JS relay (or one that announces no limit);
//! our relay serves our kernels. The wrapper
//! answers only the first proposal: a dialer that proposes something else first and
//! `whatever` after an `na` is not diverted (JS and rust-libp2p propose one id per stream
//! here). A dialer that waits for the listener's header before proposing (none known) is
//! handed to the swarm after the 10 s sniff timeout.
//!
//! # Relayed connections
//! Our own [`RelayServer`] grants circuits with no practical limit (§9.1). rust-libp2p 0.56
//! does not mark relayed connections as limited and opens streams on them freely. A JS
//! node, however, treats any circuit whose STOP message carries a `limit` as limited, and
//! `libp2p-relay` 0.21 always sends one (duration and bytes from its config, here set to
//! their maximum); whether JS then refuses `whatever` streams over a Rust relay needs a
//! live check.

mod framing;
mod gate;
mod handshake;
mod node;
mod raw;
mod relay;
mod transport;
mod wake;

use std::time::Duration;

pub use raw::JS_PROTOCOL;
pub use relay::{RelayOptions, RelayServer, RELAY_SEED};
pub use transport::Libp2pTransport;
pub use wake::WallClock;

/// The application protocol id this transport uses by default. The JS kernel uses
/// [`JS_PROTOCOL`] (`whatever`), which this crate negotiates by hand (see the crate doc);
/// set [`NetOptions::protocol`] to it to open channels to JS kernels.
pub const DEFAULT_PROTOCOL: &str = "/ocap-kernel/1.0.0";

/// Limits and timeouts of the transport, with the JS defaults of remote-comms.md §9.5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetLimits {
    /// Largest frame payload in bytes (UTF-8 length of the frame), on send and receive.
    /// Default 1 MiB (1 048 576).
    pub max_message_size_bytes: usize,
    /// How long each side of the handshake waits for the other's frame (§4.2). Default 10 s.
    pub handshake_timeout: Duration,
    /// How long one frame write may take before the channel counts as lost. Default 10 s.
    pub write_timeout: Duration,
    /// Most peers with a registered channel at once; more fail with
    /// `ResourceLimit("connection")` (outbound) or are refused (inbound). Default 100.
    pub max_concurrent_connections: usize,
    /// Most frames sent to one peer in any sliding 1 s window; more fail with
    /// `ResourceLimit("messageRate")`. Counted before sending. Default 100.
    pub max_messages_per_second: usize,
    /// Most connection attempts to one peer in any sliding 60 s window. A send that would
    /// need one more fails with `ResourceLimit("connectionRate")`; the reconnection loop
    /// waits instead. Default 10.
    pub max_connection_attempts_per_minute: usize,
    /// Base of the reconnection backoff (full jitter: uniform in
    /// `[0, min(max, base·2^(attempt−1)))`, §9.4). Default 500 ms.
    pub reconnection_base_delay: Duration,
    /// Cap of the reconnection backoff. Default 10 s.
    pub reconnection_max_delay: Duration,
    /// Connection attempts before giving up on a peer (`RemoteInbox::give_up`); 0 means
    /// retry forever. Default 0.
    pub max_retry_attempts: u32,
    /// A channel with neither a frame read nor written for this long is closed (the next
    /// send dials again). Values under 5 s are raised to 5 s. Default 120 s.
    pub stream_inactivity_timeout: Duration,
    /// Budget of one connection attempt: trying every dial candidate and opening the stream
    /// (§9.2, hard-coded 30 s in JS). Default 30 s.
    pub dial_timeout: Duration,
    /// A libp2p connection with no stream (ours or the swarm's), no relay reservation and
    /// no circuit is closed after this long. Default 60 s.
    pub idle_connection_timeout: Duration,
    /// How often stale peers are looked for (§9.5 `cleanupIntervalMs`). Default 15 min.
    pub cleanup_interval: Duration,
    /// A peer with no channel, nothing queued and no sign of life (channel registered, frame
    /// read or written) for longer than this is *stale*: its in-memory state (hints,
    /// intentional-close flag, rate-limit windows, backoff and error history) is dropped and
    /// its reconnection loop stopped, so that peers heard of once do not accumulate (§9.5
    /// `stalePeerTimeoutMs`). The kernel's own state of the peer is untouched. Default 1 h.
    pub stale_peer_timeout: Duration,
    /// Tick of the wake detector (§9.4; hard-coded 15 s in JS): the wall clock
    /// ([`NetOptions::wall_clock`]) is read this often.
    pub wake_check_interval: Duration,
    /// A wall-clock gap between two ticks longer than `wake_check_interval` plus this means the
    /// machine slept (§9.4; hard-coded 30 s in JS): every backoff is reset
    /// ([`Libp2pTransport::reset_all_backoffs`]). Default 30 s.
    pub wake_jump_threshold: Duration,
}

impl Default for NetLimits {
    fn default() -> Self {
        Self {
            max_message_size_bytes: 1024 * 1024,
            handshake_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_concurrent_connections: 100,
            max_messages_per_second: 100,
            max_connection_attempts_per_minute: 10,
            reconnection_base_delay: Duration::from_millis(500),
            reconnection_max_delay: Duration::from_secs(10),
            max_retry_attempts: 0,
            stream_inactivity_timeout: Duration::from_secs(120),
            dial_timeout: Duration::from_secs(30),
            idle_connection_timeout: Duration::from_secs(60),
            cleanup_interval: Duration::from_secs(15 * 60),
            stale_peer_timeout: Duration::from_secs(60 * 60),
            wake_check_interval: Duration::from_secs(15),
            wake_jump_threshold: Duration::from_secs(30),
        }
    }
}

/// Smallest effective [`NetLimits::stream_inactivity_timeout`].
pub const MIN_STREAM_INACTIVITY_TIMEOUT: Duration = Duration::from_secs(5);

/// How to start a [`Libp2pTransport`].
#[derive(Debug, Clone)]
pub struct NetOptions {
    /// The 32-byte Ed25519 secret seed of the node's key (remote-comms.md §1.2); the peer ID
    /// is derived from it as libp2p does (`12D3KooW…`).
    pub key_seed: [u8; 32],
    /// The kernel's incarnation id, sent in every handshake (§4.2).
    pub incarnation_id: String,
    /// Direct listen multiaddrs: TCP (`/ip4/127.0.0.1/tcp/0`), QUIC v1
    /// (`/ip4/127.0.0.1/udp/0/quic-v1`) and WebSocket (`/ip4/127.0.0.1/tcp/0/ws`); `/ip6/`
    /// and `/dns*/` hosts are fine. Port 0 picks a free port. Anything else is
    /// [`NetError::UnsupportedListenAddress`].
    pub listen_addresses: Vec<String>,
    /// Bootstrap relays, full multiaddrs ending `/p2p/<relay peer ID>`. The node listens on
    /// `<relay>/p2p-circuit` (reserving a slot, re-reserving with backoff when the relay
    /// connection drops) and dials peers through them as `<relay>/p2p-circuit/p2p/<peer>`.
    pub relays: Vec<String>,
    /// The application protocol id channels are opened with. Default [`DEFAULT_PROTOCOL`].
    /// - `/`-prefixed: negotiated by libp2p (`libp2p-stream`); channels are accepted on it
    ///   and on [`JS_PROTOCOL`].
    /// - a bare id, e.g. [`JS_PROTOCOL`] (`"whatever"`) to talk to JS kernels: negotiated by
    ///   this crate's muxer wrapper (see the crate doc); channels are accepted on it, on
    ///   [`JS_PROTOCOL`] and on [`DEFAULT_PROTOCOL`]. At most 100 bytes, no control
    ///   characters, not `na` or `ls`.
    ///
    /// Anything else is [`NetError::InvalidProtocol`].
    pub protocol: String,
    /// Limits and timeouts.
    pub limits: NetLimits,
    /// Hosts (IP literals or DNS names, as they appear in multiaddrs) that plain WebSocket
    /// (`/ws`, without `/wss` or `/tls`) may be dialed on besides private and loopback ones
    /// (§9.1 connection gater, JS `allowedWsHosts`): plain ws to a public host is unencrypted
    /// below noise and easily blocked, so it is denied unless listed here. The hosts of
    /// plain-ws [`NetOptions::relays`] are allowed without being listed. Default empty.
    pub allowed_ws_hosts: Vec<String>,
    /// The wall clock the wake detector reads (§9.4). Default the system clock; a host or a
    /// test may supply its own.
    pub wall_clock: WallClock,
}

impl NetOptions {
    /// Options with the given key and incarnation and every other field at its default (no
    /// listen addresses, no relays, no extra plain-ws hosts, the system clock).
    pub fn new(key_seed: [u8; 32], incarnation_id: impl Into<String>) -> Self {
        Self {
            key_seed,
            incarnation_id: incarnation_id.into(),
            listen_addresses: Vec::new(),
            relays: Vec::new(),
            protocol: DEFAULT_PROTOCOL.to_owned(),
            limits: NetLimits::default(),
            allowed_ws_hosts: Vec::new(),
            wall_clock: WallClock::system(),
        }
    }
}

/// Why a transport or relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The key seed is not a valid Ed25519 secret (cannot happen for 32 bytes in practice).
    #[error("Invalid key seed: {0}")]
    InvalidKey(String),
    /// A string is not a multiaddr.
    #[error("Invalid multiaddr {addr:?}: {reason}")]
    InvalidMultiaddr { addr: String, reason: String },
    /// A listen address uses a transport this node does not have.
    #[error("Unsupported direct listen address: {0}")]
    UnsupportedListenAddress(String),
    /// A relay address does not end in `/p2p/<relay peer ID>`.
    #[error("Relay address must end in /p2p/<relay peer ID>: {0}")]
    InvalidRelayAddress(String),
    /// The protocol id is not usable (see [`NetOptions::protocol`]).
    #[error("Invalid protocol id {0:?}")]
    InvalidProtocol(String),
    /// Binding a listen address failed (port in use, no such interface, …).
    #[error("Could not listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    /// Building the libp2p transport stack failed.
    #[error("Could not build the libp2p transport: {0}")]
    Transport(String),
    /// The node's thread or runtime could not be started, or it died while starting.
    #[error("Could not start the network thread: {0}")]
    Runtime(String),
}

/// Parses a multiaddr, naming it in the error.
pub(crate) fn parse_multiaddr(addr: &str) -> Result<libp2p::Multiaddr, NetError> {
    addr.parse().map_err(|e: libp2p::multiaddr::Error| NetError::InvalidMultiaddr {
        addr: addr.to_owned(),
        reason: e.to_string(),
    })
}

/// The node key from a 32-byte Ed25519 seed (§1.2).
pub(crate) fn keypair_from_seed(seed: [u8; 32]) -> Result<libp2p::identity::Keypair, NetError> {
    let mut seed = seed;
    libp2p::identity::Keypair::ed25519_from_bytes(&mut seed).map_err(|e| NetError::InvalidKey(e.to_string()))
}

/// The peer ID (`12D3KooW…`) of a 32-byte Ed25519 seed (§1.2).
pub fn peer_id_from_seed(seed: [u8; 32]) -> Result<String, NetError> {
    Ok(keypair_from_seed(seed)?.public().to_peer_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_seed_gives_the_js_relay_peer_id() {
        assert_eq!(peer_id_from_seed(RELAY_SEED).unwrap(), "12D3KooWJBDqsyHQF2MWiCdU4kdqx4zTsSTLRdShg7Ui6CRWB4uc");
    }
}
