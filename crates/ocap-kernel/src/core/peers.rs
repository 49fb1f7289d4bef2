//! Remote endpoints that are network peers: the kernel side of the JS kernel's `RemoteHandle`
//! (remote-comms.md §2, §3.5, §4.3–§8). A peer is a remote endpoint `rN` with a row in
//! `remote_peers`; deliveries to it become sequenced frames, and its frames arrive as its
//! syscalls. Reliability is the kernel's, not the transport's:
//!
//! - **send** (§5.1): a delivery to a peer is translated as for any endpoint (its c-list, in
//!   this kernel's frame), turned into the receiver's frame (`invert_rref`), given the next
//!   seq and the cumulative ack, and written to `remote_pending` **in the crank's unit**; the
//!   frame goes to the transport only after the commit (`Effect::RemoteSend`). A peer with
//!   `max_pending` unacked frames refuses new messages (`DELIVERY_FAILED`, the JS text); the
//!   kernel's own traffic (notifies, GC, URL replies) is never refused, since dropping it would
//!   leave the two kernels disagreeing.
//! - **receive** (§4.5): the ack is taken first; a seq at or below the highest received is a
//!   duplicate, dropped (and re-acked); the next seq is processed as the peer's syscalls and
//!   `highest_received_seq` is written in the same unit: exactly once. A seq past a gap is
//!   held in memory (bounded), unacked, and processed once the frames before it come: the JS
//!   kernel accepts gaps and so relies on the stream's order, but frames can overtake each
//!   other across the two channels of a simultaneous dial, and a frame taken early would make
//!   the one it overtook a "duplicate" and lose it. While a frame is missing the receiver
//!   repeats its ack every `gap_nudge` (200 ms), and each repeat makes the sender resend the
//!   first frames of its log (`handle_ack`), so a lost frame costs a fraction of a second,
//!   not the 10 s ack timeout. Acks the peer sent after a missing frame retire no promise
//!   entry until that frame is taken (it may call on them). A gap that outlasts
//!   `1.5 × ack_timeout` (counted again from each new channel) while the sender resends its
//!   log without the missing frames is one it made on purpose (it gave up on those frames,
//!   §6) and is accepted. A frame the
//!   kernel cannot process (an unknown ref, a resolution it may not make) is rolled back,
//!   acked, and recorded as the peer's last error; a message it cannot take is answered with a
//!   rejection of its result, so the sending vat hears why (§14: lenient on receive).
//! - **timers** (`remote_tick`): a standalone ack `delayed_ack` after receiving when nothing
//!   carried it; retransmission of every pending frame each `ack_timeout`, and `gap_nudge`
//!   after a new channel's handshake (frames may have gone with the old one; not a retry);
//!   after `max_retries` retransmissions, give-up (§6).
//! - **give-up** (§6): what was asked of the peer is withdrawn (rewritten as no-ops in the
//!   pending log) and every promise the peer decides is rejected with
//!   `[KERNEL:CONNECTION_LOST]` (the JS kernel's scan finds none, §15.1); a later send starts
//!   again. A peer never heard from that holds no references is forgotten then
//!   (`peer_is_abandoned`).
//! - **incarnations** (§7): a handshake showing a new incarnation ID means the peer lost its
//!   state: its seqs restart, what it exported is gone (orphaned, so sends to it are rejected
//!   with `OBJECT_DELETED`), and the promises it decided are rejected with
//!   `[KERNEL:PEER_RESTARTED]`.
//!
//! Fixes of the JS kernel's §15 items: promises passed as arguments are notified (a promise
//! exported to a peer subscribes it, `translate.rs`; echo suppressed here); GC refs go in the
//! receiver's frame and either frame is accepted on receipt (§8.4); a late or duplicate notify
//! or URL reply is acked and ignored (§8.3).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocap_abi::remote::{PeerLinkStatus, RemoteTransport, SendError};

use super::syscalls::{SyscallCtx, SyscallError};
use super::unit::Outcome;
use super::{Effect, KernelCore, KernelError};
use crate::capdata::CapData;
use crate::refs::{EndpointId, KRef, RefType, RemoteId};
use crate::remote::envelope::{self, invert_rref, Body, Frame};
use crate::remote::ocap_url::OcapUrl;
use crate::remote::relays;
use crate::smallcaps::kernel_error;
use crate::store::promises::PromiseState;
use crate::vat::{SyscallHandler, SyscallResult, VatDelivery, VatResolution, VatSyscall};

/// The kernel side's limits (remote-comms.md §5.1, §9.5); defaults are the JS kernel's.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// How long a sent frame waits for its ack before everything pending is sent again (10 s).
    pub ack_timeout: Duration,
    /// Retransmissions before giving up on a peer (3: about 40 s in all).
    pub max_retries: u32,
    /// How long after receiving a standalone ack is sent, if nothing carried one (50 ms).
    pub delayed_ack: Duration,
    /// Unacked frames past which new messages to a peer are refused (200).
    pub max_pending: u64,
    /// Relays named in an issued URL (`maxUrlRelayHints`, 3, §3.4).
    pub max_url_relay_hints: usize,
    /// Relays kept in the pool (`maxKnownRelays`, 20, §3.4).
    pub max_known_relays: usize,
    /// The largest frame the transport carries (`maxMessageSizeBytes`, 1 MiB, §4.1): a
    /// message that would not fit is refused at once.
    pub max_frame_bytes: usize,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            ack_timeout: Duration::from_secs(10),
            max_retries: 3,
            delayed_ack: Duration::from_millis(50),
            max_pending: 200,
            max_url_relay_hints: crate::remote::relays::DEFAULT_MAX_URL_RELAY_HINTS,
            max_known_relays: crate::remote::relays::DEFAULT_MAX_KNOWN_RELAYS,
            max_frame_bytes: 1024 * 1024,
        }
    }
}

impl RemoteOptions {
    /// How long a URL redemption waits for its reply: `ack_timeout × (max_retries + 1)` (§3.5).
    pub fn redemption_timeout(&self) -> Duration {
        self.ack_timeout * (self.max_retries + 1)
    }

    /// How often a receiver missing a frame says so again (a standalone ack of what it has),
    /// and how long after a gap first shows: `ack_timeout / 50` (200 ms by default), at least
    /// 10 ms. TCP's retransmission timer starts at 200 ms too; waiting for the sender's full
    /// ack timeout would stall the link for 10 s on one frame lost or overtaken.
    pub fn gap_nudge(&self) -> Duration {
        (self.ack_timeout / 50).max(Duration::from_millis(10))
    }

    /// How long a sender waits before resending for the same ack value again (half of
    /// `gap_nudge`): one resend per nudge of a receiver still missing a frame, not one per
    /// copy of an ack that crossed frames in flight.
    pub fn fast_resend_holdoff(&self) -> Duration {
        self.gap_nudge() / 2
    }
}

/// At most this many bytes of pending frames go again in a fast retransmission (beyond the
/// first frame): the frames that fill the receiver's gap.
const FAST_RESEND_BYTES: usize = 256 * 1024;

/// At most this many frames past a gap are kept per peer until the gap fills (the rest are
/// dropped: the sender still has them and resends them).
const MAX_HELD_FRAMES: usize = 4096;
/// At most this many bytes of frames (their text) past a gap are kept per peer.
const MAX_HELD_BYTES: usize = 16 * 1024 * 1024;

/// A frame taken off the wire but not yet processed: its seq is past a gap.
#[derive(Debug)]
struct HeldFrame {
    ack: Option<u64>,
    body: Body,
    bytes: usize,
}

/// Called once with the outcome of a URL redemption: the kref of the object, or why not.
pub type RedeemReply = Box<dyn FnOnce(Result<KRef, String>) + Send>;

/// What the kernel keeps in memory about a peer (timers; everything durable is in the store).
#[derive(Debug, Default)]
struct PeerLink {
    peer_id: String,
    /// Retransmissions since the last ack that acknowledged something.
    retries: u32,
    /// When pending frames are sent again, while any are pending and a transport is attached.
    ack_deadline: Option<Instant>,
    /// `ack_deadline` was brought forward for a new channel (`resend_soon`): the deadline it
    /// replaced, which the early resend keeps (it is not a retry, and does not put off the
    /// next one either: a peer that reconnects but never acks is still given up on).
    early_resend: Option<Instant>,
    /// When a standalone ack is due.
    ack_due: Option<Instant>,
    /// Whether the peer's persisted hints were handed to the transport in this process.
    hints_pushed: bool,
    last_error: Option<String>,
    /// Since when frames past a gap in the peer's seqs have been arriving (see `receive`).
    gap_since: Option<Instant>,
    /// Frames past a gap, by seq, processed once the gap fills (see `receive_from_peer`).
    held: BTreeMap<u64, HeldFrame>,
    /// The text size of `held`, bytes.
    held_bytes: usize,
    /// The ack value a fast retransmission was last made for, and when (see `handle_ack`).
    fast_resent: Option<(u64, Instant)>,
    /// The highest ack from the peer processed in this process: a frame that carries it
    /// again acknowledges nothing new (see `handle_ack`).
    acked_upto: u64,
    /// The last seq taken from the peer in this process (what a standalone ack must cover).
    last_received: u64,
    /// The seq of the last frame logged for the peer in this process.
    last_logged: u64,
    /// Promise entries to forget once the peer acks the notify that settled them:
    /// `(the notify's seq, kpid)` (see `retire_after_notify`), added when the notify's unit
    /// is committed (`Effect::RetireAfterAck`).
    retiring: Vec<(u64, KRef)>,
}

/// Keeps a frame past a gap until the gap fills, within `MAX_HELD_*` (a copy of one held
/// already is dropped; when full, the highest seqs go first: the sender still has them).
fn hold(link: &mut PeerLink, seq: u64, ack: Option<u64>, body: Body, bytes: usize) {
    if link.held.contains_key(&seq) {
        return;
    }
    // Full: lower seqs are worth more (they fill the gap first), so higher ones make room.
    while link.held.len() >= MAX_HELD_FRAMES || link.held_bytes + bytes > MAX_HELD_BYTES {
        match link.held.last_entry() {
            Some(entry) if *entry.key() > seq => link.held_bytes -= entry.remove().bytes,
            _ => return,
        }
    }
    link.held_bytes += bytes;
    link.held.insert(seq, HeldFrame { ack, body, bytes });
}

struct Redemption {
    remote: RemoteId,
    deadline: Instant,
    /// Pin the object for the host (see `redeem_ocap_url_with`).
    pin: bool,
    reply: RedeemReply,
}

/// The kernel's remote-comms state: the transport, the peers' timers, URL redemptions in
/// flight.
#[derive(Default)]
pub(crate) struct Comms {
    transport: Option<Arc<dyn RemoteTransport>>,
    opts: RemoteOptions,
    links: HashMap<RemoteId, PeerLink>,
    /// The remote of each peer ID this process has seen (a cache of `remote_peers`).
    by_peer: HashMap<String, RemoteId>,
    redemptions: HashMap<String, Redemption>,
    next_reply_key: u64,
}

/// One peer as `getStatus().remoteComms` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub remote: RemoteId,
    pub peer_id: String,
    /// Frames sent and not yet acknowledged.
    pub backlog: u64,
    pub next_send_seq: u64,
    pub highest_received_seq: u64,
    /// The last problem seen with the peer (a frame it sent that could not be processed, a
    /// send that failed, a give-up), if any.
    pub last_error: Option<String>,
}

/// The peer sent something this kernel cannot process.
struct PeerFault(String);

impl From<SyscallError> for PeerFault {
    fn from(e: SyscallError) -> Self {
        match e {
            SyscallError::Illegal(why) => PeerFault(why),
            SyscallError::Internal(e) => PeerFault(format!("kernel error: {e}")),
        }
    }
}

/// `[success, key, value]` to answer a redemption after the commit.
type Completion = (String, Result<KRef, String>);

impl KernelCore {
    /// Loads the peers of active remote endpoints (at start-up).
    pub(crate) fn load_peers(&mut self) -> Result<(), KernelError> {
        for peer in self.store.peers()? {
            if self.store.endpoint_is_active(peer.remote.into())? {
                self.comms.links.insert(peer.remote, PeerLink { peer_id: peer.peer_id, ..Default::default() });
            }
        }
        Ok(())
    }

    /// Whether `remote` is a network peer (rather than a remote attached by the host).
    pub(crate) fn is_peer(&self, remote: RemoteId) -> bool {
        self.comms.links.contains_key(&remote)
    }

    /// Whether this kernel has any network peer.
    pub(crate) fn has_peers(&self) -> bool {
        !self.comms.links.is_empty()
    }

    /// Defers the retirement of promise entries a notify to a peer settles (`delivery.rs`);
    /// false if `ep` is not a peer (retire them now). A vat never names a vpid again once
    /// notified; a peer may: a frame it sent before our notify reached it (a call pipelined
    /// on a result just answered) still names the promise, and forgetting the entry first
    /// would make that reference a new, never-settled promise. The entries go when a frame
    /// the peer sent after processing the notify arrives: the first frame or standalone ack
    /// whose ack covers the notify's seq (one channel carries frames and acks in order, so
    /// nothing the peer sent before can follow it, unless it was lost with a broken channel
    /// and is resent; a late call on such a promise is then refused with a clear error, not
    /// taken for a new promise: `process_body`). Kept in memory: a crash before that only
    /// leaves the entries in place.
    pub(crate) fn retire_after_notify(&mut self, ep: EndpointId, kps: &[KRef]) -> bool {
        let EndpointId::Remote(r) = ep else { return false };
        if !self.is_peer(r) {
            return false;
        }
        if let Some(link) = self.comms.links.get(&r) {
            // The notify is the frame just logged for the peer.
            let seq = link.last_logged;
            self.effects.push(Effect::RetireAfterAck { remote: r, seq, kps: kps.to_vec() });
        }
        true
    }

    /// A committed `Effect::RetireAfterAck`: the entries wait for the peer's ack of `seq`.
    pub(crate) fn retire_committed(&mut self, remote: RemoteId, seq: u64, kps: Vec<KRef>) {
        if let Some(link) = self.comms.links.get_mut(&remote) {
            link.retiring.extend(kps.into_iter().map(|kp| (seq, kp)));
        }
    }

    /// Forgets the promise entries whose notify the peer has acknowledged by `ack` in a frame
    /// processed now (see `retire_after_notify`). Inside the frame's unit.
    fn retire_acked(&mut self, remote: RemoteId, ack: u64) -> Result<(), KernelError> {
        let Some(link) = self.comms.links.get_mut(&remote) else { return Ok(()) };
        if link.retiring.is_empty() {
            return Ok(());
        }
        let (due, kept): (Vec<_>, Vec<_>) = link.retiring.drain(..).partition(|(seq, _)| *seq <= ack);
        link.retiring = kept;
        for (_, kp) in due {
            self.forget_clist_entry(remote.into(), kp)?;
        }
        Ok(())
    }

    /// Attaches the network transport: frames waiting in the pending logs are sent now, and
    /// from here on every committed frame is. Replaces an earlier transport.
    pub fn attach_transport(
        &mut self,
        transport: Arc<dyn RemoteTransport>,
        opts: RemoteOptions,
    ) -> Result<(), KernelError> {
        // Asleep (or stopped) for over an hour: old reconnection backoffs mean nothing now
        // (the JS kernel's cross-restart wake detection, §9.4).
        let last_active = self.store.get_kv(LAST_ACTIVE_TIME)?.and_then(|v| v.parse::<f64>().ok());
        if last_active.is_some_and(|t| now_ms() - t > WAKE_GAP_MS) {
            tracing::info!("more than an hour since this kernel was last active: backoffs reset");
            transport.reset_all_backoffs();
        }
        self.comms.transport = Some(transport);
        self.comms.opts = opts;
        let remotes: Vec<RemoteId> = self.comms.links.keys().copied().collect();
        for remote in remotes {
            if let Some(link) = self.comms.links.get_mut(&remote) {
                link.hints_pushed = false;
            }
            self.resend_pending(remote, Instant::now())?;
        }
        Ok(())
    }

    /// The relay pool (§3.4), as stored.
    pub fn known_relays(&self) -> Result<Vec<relays::RelayEntry>, KernelError> {
        match self.store.get_kv(relays::KNOWN_RELAYS)? {
            None => Ok(Vec::new()),
            Some(text) => relays::parse_pool(&text).map_err(|e| KernelError::Config(e.to_string())),
        }
    }

    fn store_relays(&mut self, pool: &[relays::RelayEntry]) -> Result<(), KernelError> {
        let text = relays::pool_text(pool);
        self.unit(|k| Ok(k.store.set_kv(relays::KNOWN_RELAYS, &text)?))?;
        self.commit()
    }

    /// Makes `relays` the bootstrap relays of the pool (at `initRemoteComms`, §3.4).
    pub fn set_bootstrap_relays(&mut self, bootstrap: &[String], max_known: usize) -> Result<(), KernelError> {
        let pool = relays::with_bootstrap(self.known_relays()?, bootstrap, now_ms(), max_known);
        self.store_relays(&pool)
    }

    /// Adds a redeemed URL's relay hints to the pool (`addKnownRelays`, §3.4).
    fn learn_relays(&mut self, hints: &[String]) -> Result<(), KernelError> {
        if hints.is_empty() {
            return Ok(());
        }
        let pool = relays::with_learned(self.known_relays()?, hints, now_ms(), self.comms.opts.max_known_relays);
        self.store_relays(&pool)
    }

    /// The hints an issued URL names: relays from the pool (§3.4), then where this kernel
    /// listens (each `…/p2p/<own peer ID>`, tried first by a redeemer as direct addresses,
    /// §9.2; wildcard addresses are left out). The JS kernel puts only relays in its URLs;
    /// the direct addresses let two kernels that can reach each other talk with nothing
    /// more than the URL.
    pub(crate) fn url_relay_hints(&self) -> Result<Vec<String>, KernelError> {
        let mut hints = relays::url_hints(&self.known_relays()?, self.comms.opts.max_url_relay_hints);
        if let Some(t) = &self.comms.transport {
            let wildcard = |a: &str| a.starts_with("/ip4/0.0.0.0/") || a.starts_with("/ip6/::/");
            hints.extend(t.listen_addresses().into_iter().filter(|a| !wildcard(a) && !a.contains("/p2p-circuit")));
        }
        Ok(hints)
    }

    /// Detaches the transport (remote comms stopped); frames stay in the pending logs. Records
    /// when comms were last active (`lastActiveTime`, §9.4).
    pub fn detach_transport(&mut self) -> Option<Arc<dyn RemoteTransport>> {
        if self.comms.transport.is_some() {
            let now = format!("{}", now_ms() as u64);
            let recorded = self.unit(|k| Ok(k.store.set_kv(LAST_ACTIVE_TIME, &now)?)).and_then(|()| self.commit());
            if let Err(e) = recorded {
                tracing::warn!("recording lastActiveTime: {e}");
            }
        }
        for link in self.comms.links.values_mut() {
            link.ack_deadline = None;
            link.early_resend = None;
            link.ack_due = None;
        }
        self.comms.transport.take()
    }

    /// The attached transport, if remote comms are running.
    pub fn transport(&self) -> Option<Arc<dyn RemoteTransport>> {
        self.comms.transport.clone()
    }

    /// The remote endpoint for `peer_id`, made (with its peer row) if this kernel has none;
    /// `hints` are added to its persisted hints and handed to the transport. Committed.
    ///
    /// Errors: `OcapUrl` for a peer ID that is not one, or this kernel's own.
    pub fn peer_remote(&mut self, peer_id: &str, hints: &[String]) -> Result<RemoteId, KernelError> {
        if hints.is_empty() {
            if let Some(&r) = self.comms.by_peer.get(peer_id) {
                if self.comms.links.contains_key(&r) {
                    return Ok(r);
                }
            }
        }
        check_peer_id(peer_id)?;
        if hints.len() > MAX_HINTS_PER_CALL {
            return Err(KernelError::OcapUrl(format!(
                "{} location hints; at most {MAX_HINTS_PER_CALL} at a time",
                hints.len()
            )));
        }
        if let Some(bad) = hints.iter().find(|h| !plausible_hint(h)) {
            return Err(KernelError::OcapUrl(format!(
                "bad location hint {bad:?}: not a multiaddr ending in /p2p/<peer ID> (at most {MAX_HINT_CHARS} characters)"
            )));
        }
        if self.peer_id()?.as_deref() == Some(peer_id) {
            return Err(KernelError::OcapUrl("a kernel cannot be its own peer".into()));
        }
        let existing = self.store.remote_of_peer(peer_id)?;
        let (remote, all_hints) = match existing {
            Some(r) if self.store.endpoint_is_active(r.into())? => {
                if hints.is_empty() {
                    (r, Vec::new())
                } else {
                    let all = self.unit(|k| Ok(k.store.add_peer_hints(r, hints)?))?;
                    self.commit()?;
                    (r, all)
                }
            }
            stale => {
                let peer = peer_id.to_owned();
                let r = self.unit(|k| {
                    if let Some(old) = stale {
                        // A terminated remote for this peer, still being cleaned up: the new
                        // endpoint takes the peer over.
                        k.store.delete_peer(old)?;
                    }
                    let r = k.store.create_remote(&peer)?;
                    k.store.create_peer(r, &peer, hints)?;
                    Ok(r)
                })?;
                self.commit()?;
                self.comms.links.insert(r, PeerLink { peer_id: peer_id.to_owned(), ..Default::default() });
                (r, hints.to_vec())
            }
        };
        if !all_hints.is_empty() {
            if let Some(t) = &self.comms.transport {
                t.register_location_hints(peer_id, &all_hints);
            }
        }
        self.comms.by_peer.insert(peer_id.to_owned(), remote);
        Ok(remote)
    }

    /// The error a message too large for one frame is rejected with, if `methargs` is (a
    /// peer only): said at once, rather than by the transport's refusal and a give-up long
    /// after. The estimate adds room for the envelope and the refs.
    pub(crate) fn too_large_for_peer(&self, ep: EndpointId, methargs: &CapData<KRef>) -> Option<CapData<KRef>> {
        let EndpointId::Remote(r) = ep else { return None };
        if !self.is_peer(r) {
            return None;
        }
        let size = frame_estimate(&methargs.body, methargs.slots.len());
        let max = self.comms.opts.max_frame_bytes;
        (size > max).then(|| {
            kernel_error(
                "DELIVERY_FAILED",
                &format!("the message is about {size} bytes, over the {max}-byte limit of a frame to another kernel"),
            )
        })
    }

    /// Replaces, in a notify to a peer, each resolution too large for one frame by a
    /// rejection saying so, so the peer's waiter hears something rather than nothing.
    pub(crate) fn fit_for_peer(&self, ep: EndpointId, resolutions: &mut [VatResolution]) {
        let EndpointId::Remote(r) = ep else { return };
        if !self.is_peer(r) {
            return;
        }
        let max = self.comms.opts.max_frame_bytes;
        for res in resolutions.iter_mut() {
            let size = frame_estimate(&res.data.body, res.data.slots.len());
            if size > max {
                let why = crate::smallcaps::kser(&crate::smallcaps::Value::error(format!(
                    "[KERNEL:DELIVERY_FAILED] the resolution is about {size} bytes, over the {max}-byte limit of a frame to another kernel"
                )));
                res.rejected = true;
                res.data = CapData::new(why.body, Vec::new());
            }
        }
    }

    /// The largest frame to a peer, in bytes (`RemoteOptions::max_frame_bytes`).
    pub(crate) fn peer_frame_bytes(&self) -> usize {
        self.comms.opts.max_frame_bytes
    }

    /// Whether new messages to `remote` must be refused: its backlog is full.
    pub(crate) fn peer_backlog_full(&self, remote: RemoteId) -> Result<bool, KernelError> {
        Ok(self.store.pending_count(remote)? >= self.comms.opts.max_pending)
    }

    /// Why a message to a peer with a full backlog is refused (the JS kernel's text, §5.1).
    fn backlog_full_text(&self) -> String {
        format!("Message rejected: pending queue at capacity ({})", self.comms.opts.max_pending)
    }

    /// The error a refused message's result is rejected with.
    pub(crate) fn backlog_full_error(&self) -> CapData<KRef> {
        kernel_error("DELIVERY_FAILED", &self.backlog_full_text())
    }

    /// Sends a delivery (in `remote`'s c-list frame) to a peer, inside the open unit.
    pub(crate) fn send_to_peer(&mut self, remote: RemoteId, delivery: VatDelivery) -> Result<Outcome, KernelError> {
        let wire = match delivery {
            VatDelivery::Message { target, methargs, result } => VatDelivery::Message {
                target: invert_rref(&target),
                methargs: invert_capdata(&methargs),
                result: result.as_deref().map(invert_rref),
            },
            VatDelivery::Notify(rs) => VatDelivery::Notify(
                rs.iter()
                    .map(|r| VatResolution {
                        vpid: invert_rref(&r.vpid),
                        rejected: r.rejected,
                        data: invert_capdata(&r.data),
                    })
                    .collect(),
            ),
            VatDelivery::DropExports(refs) => VatDelivery::DropExports(invert_all(&refs)),
            VatDelivery::RetireExports(refs) => VatDelivery::RetireExports(invert_all(&refs)),
            VatDelivery::RetireImports(refs) => VatDelivery::RetireImports(invert_all(&refs)),
            // Reaping a peer does nothing on this side, and the JS peer's BOYD only echoes.
            VatDelivery::BringOutYourDead => return Ok(Outcome::Commit),
        };
        self.enqueue_frame(remote, &Body::Deliver(wire))?;
        Ok(Outcome::Commit)
    }

    /// Gives a frame the next seq and the current ack, logs it, and sends it after the commit.
    fn enqueue_frame(&mut self, remote: RemoteId, body: &Body) -> Result<(), KernelError> {
        let (seq, ack) = self.store.next_send_seq(remote)?;
        if let Some(link) = self.comms.links.get_mut(&remote) {
            link.last_logged = seq;
        }
        let frame = envelope::encode(seq, (ack > 0).then_some(ack), body);
        self.store.add_pending(remote, seq, &frame)?;
        self.effects.push(Effect::RemoteSend { remote, frame, ack });
        Ok(())
    }

    /// After the commit: hands a logged frame to the transport (`unit.rs`).
    pub(crate) fn frame_committed(&mut self, remote: RemoteId, frame: String, ack: u64) {
        let now = Instant::now();
        let timeout = self.comms.opts.ack_timeout;
        let Some(t) = self.comms.transport.clone() else { return };
        let Some(link) = self.comms.links.get_mut(&remote) else { return };
        // The frame carries the ack, unless something arrived after it was made. A missing
        // frame is still said with standalone acks: only those make the peer resend.
        if ack >= link.last_received && link.held.is_empty() {
            link.ack_due = None;
        }
        if link.ack_deadline.is_none() {
            link.ack_deadline = Some(now + timeout);
        }
        let peer = link.peer_id.clone();
        self.push_hints(remote, &*t);
        t.send(&peer, frame);
    }

    /// Hands the peer's persisted hints to the transport, once per process and transport
    /// (the JS kernel registers them lazily on the first send, §5.1 step 1).
    fn push_hints(&mut self, remote: RemoteId, t: &dyn RemoteTransport) {
        let Some(link) = self.comms.links.get_mut(&remote) else { return };
        if link.hints_pushed {
            return;
        }
        link.hints_pushed = true;
        match self.store.peer(remote) {
            Ok(Some(p)) if !p.hints.is_empty() => t.register_location_hints(&p.peer_id, &p.hints),
            Ok(_) => {}
            Err(e) => tracing::warn!(%remote, "reading the peer's hints: {e}"),
        }
    }

    /// Sends every pending frame of `remote` again, in seq order (`send_log`; the commit
    /// there hands the newest to the transport too, and the peer drops the second copy), and
    /// re-arms its ack timer.
    fn resend_pending(&mut self, remote: RemoteId, now: Instant) -> Result<(), KernelError> {
        let pending = self.send_log(remote, usize::MAX)?;
        let timeout = self.comms.opts.ack_timeout;
        if let Some(link) = self.comms.links.get_mut(&remote) {
            link.ack_deadline = pending.then(|| now + timeout);
            link.early_resend = None;
        }
        Ok(())
    }

    /// Sends the pending frames of `remote` in seq order, up to `budget` bytes (at least one
    /// frame), its timers untouched; returns whether any were pending. Only what is durable
    /// is sent: the log read here includes the frames of units released since the last
    /// commit, so they are committed first.
    fn send_log(&mut self, remote: RemoteId, budget: usize) -> Result<bool, KernelError> {
        let Some(t) = self.comms.transport.clone() else { return Ok(false) };
        self.commit()?;
        let frames = self.store.pending_frames(remote)?;
        let pending = !frames.is_empty();
        self.push_hints(remote, &*t);
        let Some(link) = self.comms.links.get(&remote) else { return Ok(pending) };
        let mut sent = 0;
        for (_, frame) in frames {
            if sent > 0 && sent + frame.len() > budget {
                break;
            }
            sent += frame.len();
            t.send(&link.peer_id, frame);
        }
        Ok(pending)
    }

    /// A frame from `peer_id` (`RemoteInbox::deliver`). Never fails for what the peer sent:
    /// that is logged and recorded as the peer's last error. Errors are the kernel's own.
    pub fn receive_from_peer(&mut self, peer_id: &str, text: &str) -> Result<(), KernelError> {
        let frame = match envelope::decode(text) {
            Ok(f) => f,
            Err(e) => {
                // A stray handshake frame after registration is the JS race of §4.2: ignore it.
                if !text.contains("\"handshake") {
                    tracing::warn!(peer = peer_id, "unreadable frame from a peer: {e}");
                    if let Some(r) = self.store.remote_of_peer(peer_id)? {
                        self.note_peer_error(r, format!("unreadable frame: {e}"));
                    }
                }
                return Ok(());
            }
        };
        let remote = match self.peer_remote(peer_id, &[]) {
            Ok(r) => r,
            Err(KernelError::OcapUrl(why)) => {
                tracing::warn!(peer = peer_id, "frame from an impossible peer: {why}");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let (seq, ack, body) = match frame {
            Frame::Ack(n) => {
                // With a frame of the peer's missing, one it sent before this ack may still
                // name a promise the ack would retire: retiring waits for the frames.
                let gap = self.comms.links.get(&remote).is_some_and(|l| !l.held.is_empty());
                self.handle_ack(remote, n, true, !gap)?;
                return self.peer_is_back(remote);
            }
            Frame::Message { seq, ack, body } => (seq, ack, body),
        };
        let highest = self.store.highest_received_seq(remote)?;
        let past_gap = seq > highest + 1;
        if let Some(n) = ack {
            // A frame past a gap retires what its ack allows when it is taken (`take_frame`):
            // the frames before it may name those promises.
            self.handle_ack(remote, n, false, !past_gap)?;
        }
        self.peer_is_back(remote)?;
        if seq <= highest {
            tracing::debug!(%remote, seq, "duplicate frame from a peer, dropped");
            self.ack_soon(remote);
            return Ok(());
        }
        if past_gap {
            return self.receive_past_gap(remote, seq, ack, body, text.len());
        }
        self.ack_soon(remote);
        self.take_in_order(remote, seq, ack, body)
    }

    /// A standalone ack `delayed_ack` from now, unless a frame of ours carries one first.
    fn ack_soon(&mut self, remote: RemoteId) {
        let due = Instant::now() + self.comms.opts.delayed_ack;
        if let Some(link) = self.comms.links.get_mut(&remote) {
            link.ack_due = Some(due);
        }
    }

    /// Frame `seq` is past a gap in the peer's seqs: held until the gap fills, while the
    /// receiver says what it has every `gap_nudge` (`remote_tick`), or taken as the next if
    /// the gap is the sender's on purpose: it has lasted `1.5 × ack_timeout` since it showed
    /// (or since the last new channel: nothing could be resent while the link was down) and
    /// this frame is a copy of one held already, so the sender has resent its log without the
    /// missing frames (the JS kernel leaves such gaps after a give-up, §6; ours never does).
    fn receive_past_gap(
        &mut self,
        remote: RemoteId,
        seq: u64,
        ack: Option<u64>,
        body: Body,
        bytes: usize,
    ) -> Result<(), KernelError> {
        let now = Instant::now();
        let (tolerance, nudge) = (self.comms.opts.ack_timeout * 3 / 2, self.comms.opts.gap_nudge());
        let Some(link) = self.comms.links.get_mut(&remote) else { return Ok(()) };
        let since = *link.gap_since.get_or_insert(now);
        let resent = link.held.contains_key(&seq);
        hold(link, seq, ack, body, bytes);
        if resent && now.duration_since(since) >= tolerance {
            return self.accept_gap(remote);
        }
        tracing::debug!(%remote, seq, "frame past a gap from a peer, held back");
        // Say what we have at the next nudge (or the ack already due), not at every frame
        // that comes meanwhile.
        link.ack_due.get_or_insert(now + nudge);
        Ok(())
    }

    /// Processes frame `seq` (the next one from the peer) and then the held frames that
    /// follow it. What remains held is past another gap, which starts now.
    fn take_in_order(&mut self, remote: RemoteId, seq: u64, ack: Option<u64>, body: Body) -> Result<(), KernelError> {
        self.take_frame(remote, seq, ack, body)?;
        let mut last = seq;
        loop {
            let Some(link) = self.comms.links.get_mut(&remote) else { return Ok(()) };
            // Copies of frames already taken (held twice, or resent) go.
            while let Some(entry) = link.held.first_entry() {
                if *entry.key() > last {
                    break;
                }
                link.held_bytes -= entry.remove().bytes;
            }
            let Some(next) = link.held.remove(&(last + 1)) else {
                link.gap_since = (!link.held.is_empty()).then(Instant::now);
                return Ok(());
            };
            link.held_bytes -= next.bytes;
            last += 1;
            self.take_frame(remote, last, next.ack, next.body)?;
        }
    }

    /// The gap before the peer's held frames has lasted longer than the sender's
    /// retransmission would: it skipped those seqs on purpose (it gave up on them, §6), so the
    /// lowest held frame is taken as the next.
    fn accept_gap(&mut self, remote: RemoteId) -> Result<(), KernelError> {
        let Some(link) = self.comms.links.get_mut(&remote) else { return Ok(()) };
        let Some((seq, frame)) = link.held.pop_first() else {
            link.gap_since = None;
            return Ok(());
        };
        link.held_bytes -= frame.bytes;
        tracing::info!(%remote, seq, "accepting a gap in the peer's seqs (it gave up on those frames)");
        self.take_in_order(remote, seq, frame.ack, frame.body)
    }

    /// Processes the next frame from the peer in a unit of its own, with its seq recorded in
    /// the same unit (exactly once). A frame that cannot be processed is recorded as the
    /// peer's last error, taken all the same, and a message in it refused to its sender.
    fn take_frame(&mut self, remote: RemoteId, seq: u64, ack: Option<u64>, body: Body) -> Result<(), KernelError> {
        let mut completions: Vec<Completion> = Vec::new();
        let processed = self.unit(|k| {
            // First, so that frames this one produces (a URL reply) carry its ack.
            k.store.set_highest_received_seq(remote, seq)?;
            if let Some(n) = ack {
                k.retire_acked(remote, n)?;
            }
            k.process_body(remote, &body).map_err(|PeerFault(why)| KernelError::PeerProtocol(why))
        });
        if let Some(link) = self.comms.links.get_mut(&remote) {
            link.last_received = seq;
        }
        match processed {
            Ok(done) => completions.extend(done),
            Err(KernelError::PeerProtocol(why)) => {
                let why = format!("{} #{seq}: {why}", body_name(&body));
                tracing::warn!(%remote, "cannot process a frame from a peer: {why}");
                self.note_peer_error(remote, why.clone());
                self.unit(|k| {
                    k.store.set_highest_received_seq(remote, seq)?;
                    // Answer a message that was refused, so its sender is not left waiting.
                    if let Body::Deliver(VatDelivery::Message { result: Some(result), .. }) = &body {
                        let err = crate::smallcaps::kser(&crate::smallcaps::Value::error(format!(
                            "[KERNEL:DELIVERY_FAILED] the receiving kernel refused the message: {why}"
                        )));
                        let data = CapData::new(err.body, Vec::new());
                        // In the peer's frame: its own promise.
                        let rejection = VatResolution { vpid: invert_rref(result), rejected: true, data };
                        k.enqueue_frame(remote, &Body::Deliver(VatDelivery::Notify(vec![rejection])))?;
                    }
                    Ok(())
                })?;
            }
            Err(e) => return Err(e),
        }
        // The unit is committed with the next commit (the crank it queued, or idle); acks
        // wait for it (`remote_tick`). Redemption answers need it now.
        if completions.is_empty() {
            return Ok(());
        }
        self.commit()?;
        for (key, result) in completions {
            if let Some(r) = self.comms.redemptions.remove(&key) {
                (r.reply)(result);
            }
        }
        Ok(())
    }

    /// A cumulative ack from the peer: frames up to `n` are delivered. A standalone ack that
    /// acknowledges nothing new while frames are pending says the peer saw a duplicate or is
    /// missing a frame (one was lost, or overtaken by a later one on another channel): what
    /// is pending is resent at once rather than at the ack timeout (TCP's fast retransmit).
    /// A peer still missing a frame repeats its ack every `gap_nudge`, so a resend is made
    /// again for the same value after `fast_resend_holdoff` (a lost resend costs a nudge, not
    /// the 10 s timeout); acks that only crossed frames in flight come once.
    ///
    /// `retire`: whether the promise entries the ack allows to forget go now
    /// (`retire_after_notify`); not while a frame the peer sent before the ack is missing.
    fn handle_ack(&mut self, remote: RemoteId, n: u64, standalone: bool, retire: bool) -> Result<(), KernelError> {
        // A stream of frames from the peer repeats its ack until it hears from us: frames up
        // to it were dropped and their promises retired when it first came (every frame
        // logged since has a higher seq), so only a standalone ack (fast retransmit) is news.
        if !standalone && self.comms.links.get(&remote).is_some_and(|l| n <= l.acked_upto) {
            return Ok(());
        }
        let acked = self.unit(|k| {
            if retire {
                k.retire_acked(remote, n)?;
            }
            Ok(k.store.drop_pending(remote, n)?)
        })?;
        if let Some(link) = self.comms.links.get_mut(&remote) {
            link.acked_upto = link.acked_upto.max(n);
        }
        let more = self.store.has_pending(remote)?;
        if acked == 0 && !more {
            return Ok(());
        }
        let timeout = self.comms.opts.ack_timeout;
        let holdoff = self.comms.opts.fast_resend_holdoff();
        let attached = self.comms.transport.is_some();
        let now = Instant::now();
        let mut fast_resend = false;
        if let Some(link) = self.comms.links.get_mut(&remote) {
            if acked > 0 {
                link.retries = 0;
                link.last_error = None;
                let deadline = (more && attached).then(|| now + timeout);
                match (link.early_resend, deadline) {
                    // A resend for a new channel is still due: what this ack does not cover
                    // may have gone with the old channel. The timer starts again after it.
                    (Some(_), Some(d)) => link.early_resend = Some(d),
                    _ => {
                        link.ack_deadline = deadline;
                        link.early_resend = None;
                    }
                }
            } else if standalone && link.fast_resent.is_none_or(|(m, at)| m != n || now.duration_since(at) >= holdoff) {
                link.fast_resent = Some((n, now));
                fast_resend = true;
            }
        }
        if fast_resend {
            tracing::debug!(%remote, ack = n, "the peer missed a frame: resending the first pending frames");
            // The first frames fill the receiver's gap (it holds what follows); the ack timer
            // keeps its course: a fast retransmission is not a retry.
            self.send_log(remote, FAST_RESEND_BYTES)?;
        }
        Ok(())
    }

    /// Processes one received body inside the open unit, as the peer's syscalls. Returns the
    /// redemptions to answer after the commit.
    fn process_body(&mut self, remote: RemoteId, body: &Body) -> Result<Vec<Completion>, PeerFault> {
        let ep = EndpointId::Remote(remote);
        match body {
            Body::Deliver(VatDelivery::Message { target, methargs, result }) => {
                let Some(result) = result else { return Err(PeerFault("message result must be a string".into())) };
                // A call on a promise of the peer's own that this kernel does not know is a
                // call on one already settled and retired (see `retire_after_notify`), never
                // a new promise: minting one would leave the call unanswered for good.
                if target.starts_with("rp+")
                    && self.store.clist_by_eref(ep, target).map_err(SyscallError::from)?.is_none()
                {
                    return Err(PeerFault(format!(
                        "call on {target}, a promise this kernel has already settled and forgotten"
                    )));
                }
                // The peer does not subscribe: the kernel does it for it, so the result's
                // resolution goes back (§8.1).
                self.peer_syscalls(
                    ep,
                    vec![
                        VatSyscall::Send {
                            target: target.clone(),
                            methargs: methargs.clone(),
                            result: Some(result.clone()),
                        },
                        VatSyscall::Subscribe(result.clone()),
                    ],
                )?;
            }
            Body::Deliver(VatDelivery::Notify(resolutions)) => {
                let mut accepted = Vec::with_capacity(resolutions.len());
                for r in resolutions {
                    // A notify names a promise by its rref (§4.4); anything else is a malformed
                    // frame, not an unknown promise.
                    if let Err(e) = ep.parse_eref(&r.vpid) {
                        return Err(PeerFault(format!("notify for a malformed promise reference: {e}")));
                    }
                    let known = self.store.clist_by_eref(ep, &r.vpid).map_err(SyscallError::from)?;
                    let Some((kpid, _)) = known.filter(|(k, _)| k.is_promise()) else {
                        tracing::debug!(%remote, vpid = %r.vpid, "notify for a promise this kernel does not know, ignored");
                        continue;
                    };
                    let p = self.store.promise_status(kpid).map_err(SyscallError::from)?;
                    if !p.is_some_and(|p| p.state == PromiseState::Unresolved && p.decider == Some(ep)) {
                        // A late or repeated notify (§8.3): acked and ignored.
                        tracing::debug!(%remote, %kpid, "notify for a promise the peer does not decide, ignored");
                        continue;
                    }
                    // The peer resolved it; it needs no notify of its own resolution (§8.2).
                    self.store.remove_subscriber(kpid, ep).map_err(SyscallError::from)?;
                    accepted.push(r.clone());
                }
                if !accepted.is_empty() {
                    self.peer_syscalls(ep, vec![VatSyscall::Resolve(accepted)])?;
                }
            }
            // The peer's GC of what it imports from us / we import from it (§8.4), in our frame
            // whichever frame it used.
            Body::Deliver(VatDelivery::DropExports(refs)) => {
                self.peer_syscalls(ep, vec![VatSyscall::DropImports(in_frame(refs, '-'))])?;
            }
            Body::Deliver(VatDelivery::RetireExports(refs)) => {
                self.peer_syscalls(ep, vec![VatSyscall::RetireImports(in_frame(refs, '-'))])?;
            }
            Body::Deliver(VatDelivery::RetireImports(refs)) => {
                self.peer_syscalls(ep, vec![VatSyscall::RetireExports(in_frame(refs, '+'))])?;
            }
            // A peer's reap request reaps nothing here (§8.5), and is never echoed.
            Body::Deliver(VatDelivery::BringOutYourDead) => {}
            Body::RedeemUrl { url, reply_key } => {
                let (ok, value) = match self.redeem_for_peer(remote, url) {
                    Ok(rref) => (true, rref),
                    Err(e) => (false, e),
                };
                let reply = Body::RedeemUrlReply { ok, reply_key: reply_key.clone(), value };
                self.enqueue_frame(remote, &reply).map_err(|e| PeerFault(format!("kernel error: {e}")))?;
            }
            Body::RedeemUrlReply { ok, reply_key, value } => {
                if self.comms.redemptions.get(reply_key).is_none_or(|r| r.remote != remote) {
                    // Late (timed out) or never ours: acked and ignored (§3.5 sharp edge).
                    tracing::debug!(%remote, reply_key, "URL redemption reply nobody waits for, ignored");
                    return Ok(Vec::new());
                }
                if !ok {
                    return Ok(vec![(reply_key.clone(), Err(value.clone()))]);
                }
                let is_export = ep.parse_eref(value).is_ok_and(|e| e.is_export() && e.ref_type() == RefType::Object);
                if !is_export {
                    let why = format!("URL redemption answered {value:?}, not an object the peer exports");
                    return Ok(vec![(reply_key.clone(), Err(why))]);
                }
                let kref = self.eref_to_kref(ep, value)?;
                if self.comms.redemptions.get(reply_key).is_some_and(|r| r.pin) {
                    self.store.adjust_pins(kref, 1).map_err(SyscallError::from)?;
                    self.incref(kref).map_err(SyscallError::from)?;
                }
                return Ok(vec![(reply_key.clone(), Ok(kref))]);
            }
        }
        Ok(Vec::new())
    }

    /// Runs a peer's syscalls; the first illegal one is the peer's fault.
    fn peer_syscalls(&mut self, ep: EndpointId, calls: Vec<VatSyscall>) -> Result<(), PeerFault> {
        let mut ctx = SyscallCtx::new(self, ep);
        for call in calls {
            if let SyscallResult::Error(_) = ctx.syscall(call) {
                break;
            }
        }
        let report = ctx.finish();
        if let Some(e) = report.internal {
            return Err(PeerFault(format!("kernel error: {e}")));
        }
        if let Some(why) = report.illegal {
            return Err(PeerFault(why));
        }
        Ok(())
    }

    /// Answers a peer's `redeemURL`: the object's rref in the peer's frame, or why not.
    fn redeem_for_peer(&mut self, remote: RemoteId, url: &str) -> Result<String, String> {
        let kref = self.redeem_ocap_url(url).map_err(|e| e.to_string())?;
        let eref = self.kref_to_eref(remote.into(), kref).map_err(|e| e.to_string())?;
        Ok(invert_rref(&eref))
    }

    /// Redeems a URL another kernel issued (§3.5): sends `redeemURL` to its host and answers
    /// `reply` with the kref of the object (owned by the peer's endpoint) when the reply
    /// comes, or with why not. A URL this kernel issued is redeemed at once (its URL holds
    /// it). `pin`: the object from another kernel is pinned for the host, which releases it
    /// with `unpin` (a host's redemption); a vat's redemption is held by the answer it gets.
    pub fn redeem_ocap_url_with(&mut self, url: &str, pin: bool, reply: RedeemReply) {
        let parsed = match OcapUrl::parse(url) {
            Ok(p) => p,
            Err(e) => return reply(Err(e.to_string())),
        };
        let own = match self.peer_id() {
            Ok(p) => p,
            Err(e) => return reply(Err(e.to_string())),
        };
        if own.as_deref() == Some(parsed.host.as_str()) {
            return reply(self.redeem_ocap_url(url).map_err(|e| e.to_string()));
        }
        if self.comms.transport.is_none() {
            // The JS kernel's text, and what to do about it.
            return reply(Err("ocapURL from a host that's not me (remote comms are not started, so a URL of \
                              another kernel cannot be redeemed: start them with `ocap comms start` or \
                              initRemoteComms)"
                .into()));
        }
        let remote = match self.peer_remote(&parsed.host, &parsed.hints) {
            Ok(r) => r,
            Err(e) => return reply(Err(e.to_string())),
        };
        if let Err(e) = self.learn_relays(&parsed.hints) {
            tracing::warn!("remembering a URL's relays: {e}");
        }
        match self.peer_backlog_full(remote) {
            Ok(false) => {}
            Ok(true) => return reply(Err(self.backlog_full_text())),
            Err(e) => return reply(Err(e.to_string())),
        }
        // Keys are unique within a process and across restarts (a reply to a request sent
        // before a restart must not answer a new one).
        if self.comms.next_reply_key == 0 {
            self.comms.next_reply_key =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_micros() as u64);
        }
        self.comms.next_reply_key += 1;
        let reply_key = self.comms.next_reply_key.to_string();
        let body = Body::RedeemUrl { url: url.to_owned(), reply_key: reply_key.clone() };
        let sent = self.unit(|k| k.enqueue_frame(remote, &body)).and_then(|()| self.commit());
        if let Err(e) = sent {
            return reply(Err(e.to_string()));
        }
        let deadline = Instant::now() + self.comms.opts.redemption_timeout();
        self.comms.redemptions.insert(reply_key, Redemption { remote, deadline, pin, reply });
    }

    /// The transport's verdict on a handshake (`RemoteInbox::incarnation`, §7): true if the
    /// peer restarted with fresh state, which this kernel has then taken into account.
    pub fn peer_incarnation(&mut self, peer_id: &str, incarnation: &str) -> Result<bool, KernelError> {
        let remote = self.peer_remote(peer_id, &[])?;
        let known = self.store.peer(remote)?.and_then(|p| p.incarnation);
        match known {
            Some(k) if k == incarnation => {
                // After a give-up nothing is retransmitting: `peer_is_back` resends at once.
                let retransmitting = self.comms.links.get(&remote).is_some_and(|l| l.ack_deadline.is_some());
                self.peer_is_back(remote)?;
                if retransmitting {
                    self.resend_soon(remote);
                }
                Ok(false)
            }
            None => {
                let inc = incarnation.to_owned();
                self.unit(|k| Ok(k.store.set_peer_incarnation(remote, &inc)?))?;
                self.commit()?;
                Ok(false)
            }
            Some(_) => {
                tracing::warn!(%remote, peer = peer_id, "the peer restarted with fresh state");
                let inc = incarnation.to_owned();
                let reason = kernel_error("PEER_RESTARTED", "Remote peer restarted (incarnation changed)");
                self.unit(|k| {
                    k.store.reset_peer_seqs(remote)?;
                    k.forget_peer_state(remote, &reason)?;
                    k.store.set_peer_incarnation(remote, &inc).map_err(KernelError::from)
                })?;
                self.commit()?;
                self.reset_link(remote, "Remote peer restarted");
                Ok(true)
            }
        }
    }

    /// What a peer that lost its state held is gone: the promises it decides are rejected with
    /// `reason`, its subscriptions end, its exports are orphaned (sends to them are rejected
    /// with `OBJECT_DELETED`, and importers are told to retire them once nobody reaches them),
    /// and its promise entries go. Its imports of our objects stay, so URLs issued to it
    /// still name the same rrefs.
    fn forget_peer_state(&mut self, remote: RemoteId, reason: &CapData<KRef>) -> Result<(), KernelError> {
        let ep = EndpointId::Remote(remote);
        for kpid in self.store.promises_decided_by(ep)? {
            self.resolve_promise(kpid, true, reason.clone())?;
        }
        self.store.remove_subscriptions_of(ep)?;
        for (kref, eref, _) in self.store.clist_entries(ep, usize::MAX)? {
            match kref {
                KRef::Promise(_) => self.forget_clist_entry(ep, kref)?,
                KRef::Object(_) if crate::store::eref_is_export(&eref) => self.abandon_export(ep, kref)?,
                KRef::Object(_) => {}
            }
        }
        Ok(())
    }

    /// Forgets the in-memory state of a peer's link and fails its redemptions with `why`.
    fn reset_link(&mut self, remote: RemoteId, why: &str) {
        if let Some(link) = self.comms.links.get_mut(&remote) {
            link.retries = 0;
            link.ack_deadline = None;
            link.early_resend = None;
            link.ack_due = None;
            link.last_error = Some(why.to_owned());
            // The peer's acks count from the start again (a new incarnation resets the seqs).
            link.acked_upto = 0;
            link.fast_resent = None;
            // Its frames past a gap were of the old seqs.
            link.held.clear();
            link.held_bytes = 0;
            link.gap_since = None;
            link.last_received = 0;
        }
        let keys: Vec<String> =
            self.comms.redemptions.iter().filter(|(_, r)| r.remote == remote).map(|(k, _)| k.clone()).collect();
        for k in keys {
            if let Some(r) = self.comms.redemptions.remove(&k) {
                (r.reply)(Err(why.to_owned()));
            }
        }
    }

    /// Gives up on a peer (§6): every promise it decides is rejected with
    /// `[KERNEL:CONNECTION_LOST] <reason>` (and forgotten in its c-list), its URL redemptions
    /// fail, and retransmission stops until the peer is heard from again or a new frame goes
    /// to it. The endpoint and its c-list stay.
    ///
    /// Unlike the JS kernel, which drops its pending log (§6) and so leaves a gap in the seqs
    /// and, worse, loses what it owed the peer (a notify dropped there leaves the peer's vat
    /// waiting forever), the log is kept and only what was *asked* of the peer is withdrawn:
    /// each pending message or URL redemption is rewritten, under its own seq, as a
    /// `bringOutYourDead` (a no-op for the receiver), and the transport drops what it still
    /// queues for the peer, so a message whose result was just rejected is not sent again
    /// (one already written to the network may still arrive and run: the ambiguity of any
    /// lost connection); the peer, if it returns with its state, still gets every notify,
    /// GC action and URL reply in order, with no gap.
    ///
    /// A peer that is abandoned (`peer_is_abandoned`) after that (never heard from, no
    /// references either way, nothing owed) is then forgotten altogether, in the same unit.
    pub fn give_up_peer(&mut self, remote: RemoteId, reason: &str) -> Result<(), KernelError> {
        if !self.is_peer(remote) {
            return Ok(());
        }
        tracing::warn!(%remote, "giving up on a peer: {reason}");
        let err = kernel_error("CONNECTION_LOST", reason);
        let forgotten = self.unit(|k| {
            for (seq, frame) in k.store.pending_frames(remote)? {
                // What was asked of the peer: a message or a URL redemption.
                if let Ok(Frame::Message {
                    ack,
                    body: Body::Deliver(VatDelivery::Message { .. }) | Body::RedeemUrl { .. },
                    ..
                }) = envelope::decode(&frame)
                {
                    let noop = envelope::encode(seq, ack, &Body::Deliver(VatDelivery::BringOutYourDead));
                    k.store.replace_pending(remote, seq, &noop)?;
                }
            }
            let ep = EndpointId::Remote(remote);
            for kpid in k.store.promises_decided_by(ep)? {
                k.resolve_promise(kpid, true, err.clone())?;
                k.forget_clist_entry(ep, kpid)?;
            }
            if !k.peer_is_abandoned(remote)? {
                return Ok(false);
            }
            // Nothing refers to the endpoint (checked above): its rows go, hints and pending
            // no-ops with the peer row, and the endpoint row.
            k.store.remove_subscriptions_of(ep)?;
            k.store.delete_endpoint(ep)?;
            Ok(true)
        })?;
        self.commit()?;
        // The transport may still hold the withdrawn frames, queued for a channel that is not
        // there: they must not go out when the peer returns (a frame already written cannot
        // be recalled: that message may still run, as with any call lost in the network).
        if let (Some(t), Some(link)) = (&self.comms.transport, self.comms.links.get(&remote)) {
            t.drop_queued(&link.peer_id);
        }
        self.reset_link(remote, reason);
        if forgotten {
            if let Some(link) = self.comms.links.remove(&remote) {
                tracing::info!(%remote, peer = %link.peer_id, "forgot a peer never reached");
                self.comms.by_peer.remove(&link.peer_id);
            }
        }
        Ok(())
    }

    /// Whether a peer just given up on is *abandoned*, and so forgotten (`give_up_peer`):
    ///
    /// - it was never heard from: no frame taken from it (`highest_received_seq` 0) and no
    ///   handshake with it (no incarnation known). A handshake precedes every frame on a
    ///   channel, and the incarnation is persisted before the channel carries anything, so
    ///   the peer has never seen a frame of ours either: it holds no state about us;
    /// - it holds no references either way: no c-list entry (nothing imported from it,
    ///   nothing exported to it, no promise), no object owned, no promise decided;
    /// - nothing is owed to it: its pending log holds only the `bringOutYourDead` no-ops its
    ///   withdrawn requests became (this kernel never sends one otherwise).
    ///
    /// Typically a peer made to redeem a URL, whose addresses nobody answers at. Keeping it
    /// would list it forever, `failed` with a backlog of one no-op, for nothing: there is no
    /// state to keep consistent with it. If it shows up later (a handshake, a frame, a new
    /// redemption), it becomes a new remote endpoint, and since it never saw our seqs, it
    /// starts at 1 as we do. A peer once heard from, or holding references, is kept: it may
    /// come back with its state, and what it holds and is owed matters then.
    ///
    /// The transport is not told to close the peer (`close_connection` would refuse a later
    /// redemption's frames until `reconnect_peer`): its queue is dropped, it has given up
    /// dialing (or stops at its next failure, finding no such peer here), and its own
    /// stale-peer cleanup forgets it (§9.5).
    fn peer_is_abandoned(&self, remote: RemoteId) -> Result<bool, KernelError> {
        let Some(p) = self.store.peer(remote)? else { return Ok(false) };
        if p.highest_received_seq > 0 || p.incarnation.is_some() {
            return Ok(false);
        }
        let ep = EndpointId::Remote(remote);
        if !self.store.clist_entries(ep, 1)?.is_empty()
            || !self.store.objects_owned_by(ep)?.is_empty()
            || !self.store.promises_decided_by(ep)?.is_empty()
        {
            return Ok(false);
        }
        for (_, frame) in self.store.pending_frames(remote)? {
            let noop = matches!(
                envelope::decode(&frame),
                Ok(Frame::Message { body: Body::Deliver(VatDelivery::BringOutYourDead), .. })
            );
            if !noop {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The peer was heard from (a frame, a handshake): if frames wait for it and nothing is
    /// retransmitting them (after a give-up, or a start without a transport), they go now.
    fn peer_is_back(&mut self, remote: RemoteId) -> Result<(), KernelError> {
        let idle = self.comms.links.get(&remote).is_some_and(|l| l.ack_deadline.is_none());
        if idle && self.comms.transport.is_some() && self.store.has_pending(remote)? {
            self.resend_pending(remote, Instant::now())?;
        }
        Ok(())
    }

    /// A new channel to the peer is being opened (its handshake showed the incarnation we
    /// know): frames sent on the old channel may have been lost with it, as when the peer was
    /// killed and restarted with its state. What is pending goes again `gap_nudge` from now,
    /// once the channel is up, rather than at the ack timer (the JS kernel waits for it,
    /// remote-comms.md §9.4); that resend is not counted as a retry.
    fn resend_soon(&mut self, remote: RemoteId) {
        let now = Instant::now();
        let soon = now + self.comms.opts.gap_nudge();
        if let Some(link) = self.comms.links.get_mut(&remote) {
            // Frames missing from the peer could not be resent while the link was down: the
            // time a gap may last before it counts as deliberate starts again.
            if link.gap_since.is_some() {
                link.gap_since = Some(now);
            }
            if let Some(deadline) = link.ack_deadline.filter(|d| *d > soon) {
                link.ack_deadline = Some(soon);
                link.early_resend = Some(link.early_resend.unwrap_or(deadline));
            }
        }
    }

    /// The transport gave up on `peer_id` (`RemoteInbox::give_up`).
    pub fn transport_gave_up(&mut self, peer_id: &str) -> Result<(), KernelError> {
        match self.store.remote_of_peer(peer_id)? {
            Some(r) => self.give_up_peer(r, &lost_reason(peer_id)),
            None => Ok(()),
        }
    }

    /// A send the transport could not make (`RemoteInbox::send_failed`): a terminal one ends
    /// the retransmission at once (§5.1); others wait for the ack timer.
    pub fn send_failed(&mut self, peer_id: &str, error: SendError) -> Result<(), KernelError> {
        let Some(remote) = self.store.remote_of_peer(peer_id)? else { return Ok(()) };
        if error.kind.is_terminal() {
            return self.give_up_peer(remote, &error.message);
        }
        self.note_peer_error(remote, error.message);
        Ok(())
    }

    fn note_peer_error(&mut self, remote: RemoteId, why: String) {
        if let Some(link) = self.comms.links.get_mut(&remote) {
            link.last_error = Some(why);
        }
    }

    /// Runs the peers' timers (`now` is the caller's clock): due standalone acks, due
    /// retransmissions or give-ups, expired URL redemptions.
    pub fn remote_tick(&mut self, now: Instant) -> Result<(), KernelError> {
        let Some(t) = self.comms.transport.clone() else { return Ok(()) };
        let remotes: Vec<RemoteId> = self.comms.links.keys().copied().collect();
        let (tolerance, nudge) = (self.comms.opts.ack_timeout * 3 / 2, self.comms.opts.gap_nudge());
        for remote in remotes {
            let Some(link) = self.comms.links.get(&remote) else { continue };
            let ack_due = link.ack_due.is_some_and(|d| d <= now);
            let retransmit_due = link.ack_deadline.is_some_and(|d| d <= now);
            let (retries, early, peer_id) = (link.retries, link.early_resend, link.peer_id.clone());
            if ack_due {
                // Only what is durable is acknowledged.
                self.commit()?;
                let highest = self.store.highest_received_seq(remote)?;
                let Some(link) = self.comms.links.get_mut(&remote) else { continue };
                // Still missing a frame: say so again every `gap_nudge` (`handle_ack`) until it
                // comes, or until the gap looks deliberate (then a resent frame takes it,
                // `receive_past_gap`). Even "nothing yet" (0) when the first one is missing.
                let missing =
                    !link.held.is_empty() && link.gap_since.is_some_and(|since| now.duration_since(since) < tolerance);
                link.ack_due = missing.then(|| now + nudge);
                if highest > 0 || missing {
                    t.send(&peer_id, envelope::encode_ack(highest));
                }
            }
            if retransmit_due {
                if let Some(deadline) = early {
                    // Not a retry: the timer keeps the deadline it had.
                    let pending = self.send_log(remote, usize::MAX)?;
                    if let Some(link) = self.comms.links.get_mut(&remote) {
                        link.ack_deadline = pending.then_some(deadline);
                        link.early_resend = None;
                    }
                } else if retries >= self.comms.opts.max_retries {
                    self.give_up_peer(remote, &lost_reason(&peer_id))?;
                } else {
                    if let Some(link) = self.comms.links.get_mut(&remote) {
                        link.retries += 1;
                    }
                    self.resend_pending(remote, now)?;
                }
            }
        }
        let expired: Vec<String> =
            self.comms.redemptions.iter().filter(|(_, r)| r.deadline <= now).map(|(k, _)| k.clone()).collect();
        let ms = self.comms.opts.redemption_timeout().as_millis();
        for k in expired {
            if let Some(r) = self.comms.redemptions.remove(&k) {
                (r.reply)(Err(format!("URL redemption timed out after {ms}ms")));
            }
        }
        Ok(())
    }

    /// Whether any peer timer or redemption is waiting (so a ticker has work).
    pub fn remote_timers_armed(&self) -> bool {
        !self.comms.redemptions.is_empty()
            || self.comms.links.values().any(|l| l.ack_due.is_some() || l.ack_deadline.is_some())
    }

    /// Every peer, for `getStatus().remoteComms` and `ocap peers`.
    pub fn peer_statuses(&self) -> Result<Vec<PeerStatus>, KernelError> {
        let mut out = Vec::new();
        for p in self.store.peers()? {
            let Some(link) = self.comms.links.get(&p.remote) else { continue };
            out.push(PeerStatus {
                remote: p.remote,
                backlog: self.store.pending_count(p.remote)?,
                peer_id: p.peer_id,
                next_send_seq: p.next_send_seq,
                highest_received_seq: p.highest_received_seq,
                last_error: link.last_error.clone(),
            });
        }
        Ok(out)
    }

    /// The transport's view of its peers, if one is attached.
    pub fn peer_links(&self) -> Vec<PeerLinkStatus> {
        self.comms.transport.as_ref().map(|t| t.peers()).unwrap_or_default()
    }
}

/// The KV key of when remote comms were last active, ms since the epoch (§1.1).
const LAST_ACTIVE_TIME: &str = "lastActiveTime";
/// A gap past which the kernel counts as having slept (§9.4: 1 h).
const WAKE_GAP_MS: f64 = 3_600_000.0;

/// An upper estimate of a frame's size: the body with room for JSON's escapes (a quote,
/// backslash or control byte becomes up to 6 bytes), the refs and the envelope.
pub(crate) fn frame_estimate(body: &str, slots: usize) -> usize {
    let escapes = body.bytes().filter(|b| *b == b'"' || *b == b'\\' || *b < 0x20).count();
    body.len() + escapes * 5 + slots * 24 + 256
}

/// Refuses what is not a libp2p peer ID, by name (`OcapUrl`: bad input).
pub(crate) fn check_peer_id(peer_id: &str) -> Result<(), KernelError> {
    match peer_id.parse::<libp2p_identity::PeerId>() {
        Ok(_) => Ok(()),
        Err(_) => Err(KernelError::OcapUrl(format!("{peer_id:?} is not a peer ID"))),
    }
}

/// Hints one call may add, and the longest one (a multiaddr with a relay and a peer ID is
/// about 150 characters).
const MAX_HINTS_PER_CALL: usize = 32;
const MAX_HINT_CHARS: usize = 512;

/// A location hint as §9.2 uses them: a multiaddr whose last component names a peer. The
/// transport parses it fully; this keeps garbage out of the store.
fn plausible_hint(h: &str) -> bool {
    h.len() <= MAX_HINT_CHARS
        && h.starts_with('/')
        && h.rsplit_once("/p2p/").is_some_and(|(_, id)| check_peer_id(id).is_ok())
}

fn now_ms() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_millis() as f64)
}

fn lost_reason(peer_id: &str) -> String {
    format!("Remote connection lost: {peer_id} (max retries reached or non-retryable error)")
}

fn body_name(body: &Body) -> &'static str {
    match body {
        Body::Deliver(VatDelivery::Message { .. }) => "message",
        Body::Deliver(VatDelivery::Notify(_)) => "notify",
        Body::Deliver(VatDelivery::DropExports(_)) => "dropExports",
        Body::Deliver(VatDelivery::RetireExports(_)) => "retireExports",
        Body::Deliver(VatDelivery::RetireImports(_)) => "retireImports",
        Body::Deliver(VatDelivery::BringOutYourDead) => "bringOutYourDead",
        Body::RedeemUrl { .. } => "redeemURL",
        Body::RedeemUrlReply { .. } => "redeemURLReply",
    }
}

fn invert_all(refs: &[String]) -> Vec<String> {
    refs.iter().map(|r| invert_rref(r)).collect()
}

fn invert_capdata(d: &CapData<String>) -> CapData<String> {
    CapData::new(d.body.clone(), invert_all(&d.slots))
}

/// GC refs in this kernel's frame: each must have direction `sign` here (`-`: this kernel
/// allocated it; `+`: the peer did). The JS kernel sends them in its own frame (§8.4, §15.2),
/// which shows as the other sign; those are turned around.
fn in_frame(refs: &[String], sign: char) -> Vec<String> {
    refs.iter()
        .map(|r| if r.len() > 2 && r.as_bytes()[2] as char != sign { invert_rref(r) } else { r.clone() })
        .collect()
}
