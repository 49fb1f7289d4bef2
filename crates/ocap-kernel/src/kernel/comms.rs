//! Remote comms on the kernel facade (remote-comms.md §10): the kernel's side of the
//! transport boundary (`ocap_abi::remote`). A host starts comms in three steps: get the
//! identity (`remote_identity`, whose key seed and incarnation ID the transport needs), start
//! a transport with the kernel's inbox (`remote_inbox`), and attach it
//! (`start_remote_comms`), which also starts the ticker that runs the peers' timers.
//!
//! Everything the transport reports becomes a job on the run loop, between cranks: a
//! received frame is processed and committed in a unit of its own (`core/peers.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocap_abi::remote::{BoxFuture, PeerLinkStatus, RemoteInbox, RemoteTransport, SendError};
use tokio::sync::oneshot;

use super::run_loop::{LoopHandle, LoopState};
use super::{stopped, Kernel};
use crate::core::{check_peer_id, KernelError, PeerStatus, RemoteOptions};
use crate::refs::KRef;
use crate::remote::identity::Identity;

/// The kernel as the transport reaches it: each call posts a job to the run loop.
struct KernelInbox {
    run_loop: LoopHandle,
}

fn log_failure(what: &str, r: Result<(), KernelError>) {
    if let Err(e) = r {
        tracing::error!("remote comms: {what}: {e}");
    }
}

impl RemoteInbox for KernelInbox {
    fn deliver(&self, peer_id: &str, frame: String) {
        let peer = peer_id.to_owned();
        self.run_loop.post(move |st: &mut LoopState| {
            log_failure("receiving a frame", st.core.receive_from_peer(&peer, &frame));
        });
    }

    fn incarnation(&self, peer_id: &str, incarnation_id: &str) -> BoxFuture<'static, bool> {
        let (tx, rx) = oneshot::channel();
        let (peer, inc) = (peer_id.to_owned(), incarnation_id.to_owned());
        self.run_loop.post(move |st: &mut LoopState| {
            let verdict = st.core.peer_incarnation(&peer, &inc).unwrap_or_else(|e| {
                // Fail closed (as the JS browser runtime does): the channel is refused.
                tracing::error!(peer, "remote comms: checking an incarnation: {e}");
                true
            });
            let _ = tx.send(verdict);
        });
        Box::pin(async move { rx.await.unwrap_or(true) })
    }

    fn send_failed(&self, peer_id: &str, error: SendError) {
        let peer = peer_id.to_owned();
        self.run_loop.post(move |st: &mut LoopState| {
            log_failure("a failed send", st.core.send_failed(&peer, error));
        });
    }

    fn give_up(&self, peer_id: &str) {
        let peer = peer_id.to_owned();
        self.run_loop.post(move |st: &mut LoopState| {
            log_failure("giving up on a peer", st.core.transport_gave_up(&peer));
        });
    }
}

/// `getStatus().remoteComms` beyond the identity: whether a transport is attached, where it
/// listens, and each peer as the kernel and the transport see it.
#[derive(Debug, Clone, Default)]
pub struct RemoteCommsStatus {
    /// A transport is attached (state `connected`).
    pub running: bool,
    pub listen_addresses: Vec<String>,
    pub peers: Vec<PeerStatus>,
    pub links: Vec<PeerLinkStatus>,
}

/// Remote comms as `getStatus` shows them, read on the run loop.
pub(crate) fn remote_comms_status(core: &crate::KernelCore) -> Result<RemoteCommsStatus, KernelError> {
    let t = core.transport();
    Ok(RemoteCommsStatus {
        running: t.is_some(),
        listen_addresses: t.as_ref().map(|t| t.listen_addresses()).unwrap_or_default(),
        peers: core.peer_statuses()?,
        links: core.peer_links(),
    })
}

/// How often the ticker runs the peers' timers: often enough for the delayed ack.
fn tick_interval(opts: &RemoteOptions) -> Duration {
    (opts.delayed_ack / 2).clamp(Duration::from_millis(5), Duration::from_millis(50))
}

impl Kernel {
    /// This kernel's remote identity, made and persisted if it has none (remote-comms.md
    /// §1.2): from `mnemonic` if given, which is an error when an identity exists.
    pub async fn remote_identity(&self, mnemonic: Option<String>) -> Result<Identity, KernelError> {
        self.call(move |st| st.core.provide_identity(mnemonic.as_deref())).await
    }

    /// The kernel's inbox, to hand to a transport.
    pub fn remote_inbox(&self) -> Arc<dyn RemoteInbox> {
        Arc::new(KernelInbox { run_loop: self.handle.clone() })
    }

    /// Attaches a started transport: what waits in the pending logs is sent, and the ticker
    /// starts. Replaces (and stops) a transport attached before.
    pub async fn start_remote_comms(
        &self,
        transport: Arc<dyn RemoteTransport>,
        opts: RemoteOptions,
    ) -> Result<(), KernelError> {
        let interval = tick_interval(&opts);
        let stop = Arc::new(AtomicBool::new(false));
        let ticker_stop = stop.clone();
        let old = self
            .call(move |st| {
                let old = st.core.detach_transport();
                st.core.attach_transport(transport, opts)?;
                if let Some(previous) = st.ticker_stop.replace(ticker_stop) {
                    previous.store(true, Ordering::SeqCst);
                }
                Ok(old)
            })
            .await?;
        if let Some(old) = old {
            old.stop();
        }
        let run_loop = self.handle.clone();
        std::thread::Builder::new()
            .name("ocap-remote-timers".into())
            .spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(interval);
                    let posted = run_loop.post(|st: &mut LoopState| {
                        log_failure("peer timers", st.core.remote_tick(Instant::now()));
                    });
                    if !posted {
                        break;
                    }
                }
            })
            .map_err(|e| KernelError::Internal(format!("cannot start the remote timers: {e}")))?;
        Ok(())
    }

    /// Detaches and stops the transport; frames not yet acked stay logged for the next start.
    pub async fn stop_remote_comms(&self) -> Result<(), KernelError> {
        let old = self
            .call(|st| {
                if let Some(stop) = st.ticker_stop.take() {
                    stop.store(true, Ordering::SeqCst);
                }
                Ok(st.core.detach_transport())
            })
            .await?;
        if let Some(t) = old {
            t.stop();
        }
        Ok(())
    }

    /// Adds addresses where a peer may be reached (`registerLocationHints`); they are kept
    /// with the peer. Makes the peer's endpoint if the kernel has none.
    pub async fn register_location_hints(&self, peer_id: &str, hints: Vec<String>) -> Result<(), KernelError> {
        let peer = peer_id.to_owned();
        self.call(move |st| st.core.peer_remote(&peer, &hints).map(|_| ())).await
    }

    /// Closes the channel to a peer and refuses it until `reconnect_peer` (`closeConnection`).
    pub async fn close_connection(&self, peer_id: &str) -> Result<(), KernelError> {
        check_peer_id(peer_id)?;
        let t = self.attached_transport().await?;
        t.close_connection(peer_id);
        Ok(())
    }

    /// Dials a peer again after `close_connection` or a give-up (`reconnectPeer`).
    pub async fn reconnect_peer(&self, peer_id: &str, hints: Vec<String>) -> Result<(), KernelError> {
        check_peer_id(peer_id)?;
        let t = self.attached_transport().await?;
        t.reconnect_peer(peer_id, &hints);
        Ok(())
    }

    async fn attached_transport(&self) -> Result<Arc<dyn RemoteTransport>, KernelError> {
        self.call(|st| st.core.transport().ok_or_else(|| KernelError::Config("remote comms are not started".into())))
            .await
    }

    /// Remote comms as `getStatus` shows them.
    pub async fn remote_comms_status(&self) -> Result<RemoteCommsStatus, KernelError> {
        self.call(|st| remote_comms_status(&st.core)).await
    }

    /// Makes `relays` the pool's bootstrap relays (§3.4), keeping at most `max_known`.
    pub async fn set_bootstrap_relays(&self, relays: Vec<String>, max_known: usize) -> Result<(), KernelError> {
        self.call(move |st| st.core.set_bootstrap_relays(&relays, max_known)).await
    }

    /// The object an OCAP URL names (`redeemOcapURL`): one this kernel issued at once, one
    /// another kernel issued by asking it over the network (remote-comms.md §3.5), which
    /// needs remote comms started; that object is pinned for the host until it unpins it.
    /// Errors are `KernelError::OcapUrl` with the reason.
    pub async fn redeem_ocap_url(&self, url: &str) -> Result<KRef, KernelError> {
        let (tx, rx) = oneshot::channel();
        let url = url.to_owned();
        self.call(move |st| {
            st.core.redeem_ocap_url_with(&url, true, Box::new(move |r| drop(tx.send(r))));
            Ok(())
        })
        .await?;
        rx.await.map_err(|_| stopped())?.map_err(KernelError::OcapUrl)
    }
}
