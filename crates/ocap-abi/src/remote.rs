//! The kernel/transport boundary for remote comms (remote-comms.md §10, "kernel ↔ platform"):
//! what the kernel asks of a network transport (`RemoteTransport`) and what the transport
//! tells the kernel (`RemoteInbox`). The kernel owns reliability (sequence numbers, acks, the
//! pending log, give-up, incarnations); the transport owns channels: one bidirectional stream
//! per peer, length-prefixed frames, the connection handshake (§4.2), reconnection and limits.
//!
//! Frames are opaque JSON texts to the transport (the kernel's envelope, §4.3), at most
//! `max_message_size_bytes` of UTF-8. Peers are named by their libp2p peer ID text
//! (`12D3KooW…`). A crate of its own would pull in the kernel (and SQLite); the libp2p
//! transport (`ocap-net`) depends on this crate only.

use std::future::Future;
use std::pin::Pin;

/// A boxed future, for the one async call of `RemoteInbox`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why the transport could not send a frame. Only the three terminal kinds end the kernel's
/// retransmission to that peer at once (§5.1); the others are retried by the kernel's ack
/// timer and the transport's reconnection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendErrorKind {
    /// The peer came back with a new incarnation (it lost its state, §7).
    PeerRestarted,
    /// `closeConnection` was called for the peer (§9.6).
    IntentionalClose,
    /// The transport is stopped.
    NetworkStopped,
    /// A limit was hit: `messageSize`, `connection`, `messageRate` or `connectionRate` (§9.5).
    ResourceLimit(String),
    /// Anything else (dial failure, write timeout, connection lost).
    Other,
}

impl SendErrorKind {
    /// Whether the kernel must stop retransmitting to the peer at once (§6).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::PeerRestarted | Self::IntentionalClose | Self::NetworkStopped)
    }
}

/// A send that failed, reported back to the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub kind: SendErrorKind,
    pub message: String,
}

/// What one peer's channel looks like now, for `getStatus().remoteComms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerLinkStatus {
    pub peer_id: String,
    /// `connected`, `connecting`, `reconnecting`, `closed` (intentionally) or `failed`.
    pub state: String,
    /// The last transport error seen for the peer, if any.
    pub last_error: Option<String>,
}

/// The transport as the kernel drives it. Every call returns at once: sends are
/// fire-and-forget (a failure comes back through `RemoteInbox::send_failed`), and frames to
/// one peer leave in the order `send` was called.
pub trait RemoteTransport: Send + Sync {
    /// Sends one frame to `peer_id`, dialing (with the registered location hints) if there is
    /// no channel yet.
    fn send(&self, peer_id: &str, frame: String);
    /// Adds addresses where `peer_id` may be reached: full multiaddrs ending in
    /// `/p2p/<peer>` (direct) or relays (`…/p2p/<relay>`), as in §9.2.
    fn register_location_hints(&self, peer_id: &str, hints: &[String]);
    /// Closes the peer's channel and refuses it until `reconnect_peer` (§9.6).
    fn close_connection(&self, peer_id: &str);
    /// Clears an intentional close and dials the peer again (§9.6).
    fn reconnect_peer(&self, peer_id: &str, hints: &[String]);
    /// The addresses this node listens on, each ending in `/p2p/<own peer ID>`.
    fn listen_addresses(&self) -> Vec<String>;
    /// Each peer the transport knows of.
    fn peers(&self) -> Vec<PeerLinkStatus>;
    /// Closes every channel and stops the node. Idempotent.
    fn stop(&self);
    /// Forgets reconnection backoffs and permanent failures (after the machine slept, §9.4).
    fn reset_all_backoffs(&self) {}
    /// Drops the frames queued for `peer_id` that have not been written to a channel yet:
    /// the kernel gave up on the peer and withdrew them (it sends what still stands again
    /// when the peer is back). No failures are reported for them.
    fn drop_queued(&self, _peer_id: &str) {}
}

/// The kernel as the transport reaches it. Calls return at once (the kernel queues the work
/// on its run loop), except `incarnation`, whose answer the handshake waits for.
pub trait RemoteInbox: Send + Sync {
    /// A frame arrived from `peer_id` on its channel (after the handshake).
    fn deliver(&self, peer_id: &str, frame: String);
    /// A handshake with `peer_id` completed and it presented `incarnation_id`. Resolves to
    /// true if the kernel found the peer restarted with fresh state (§7): then an outbound
    /// channel is closed and the pending send fails with `PeerRestarted`, an inbound one is
    /// refused, and a reconnection registers it anyway.
    fn incarnation(&self, peer_id: &str, incarnation_id: &str) -> BoxFuture<'static, bool>;
    /// A send failed (see `SendErrorKind`).
    fn send_failed(&self, peer_id: &str, error: SendError);
    /// The transport gave up reconnecting to `peer_id` (§6, transport level).
    fn give_up(&self, peer_id: &str);
}
