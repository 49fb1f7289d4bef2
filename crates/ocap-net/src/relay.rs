//! A circuit relay v2 server (remote-comms.md §1.5, §9.1), as `startRelay` of the JS
//! kernel-utils: a fixed identity, TCP and WebSocket listeners, identify and ping, and
//! circuits with no practical limit (JS sets `applyDefaultLimit: false`; kernels need
//! unlimited relayed connections).

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use futures::StreamExt as _;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, ping, relay, tcp, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder};
use tokio::sync::oneshot;

use crate::node::{self, IDENTIFY_PROTOCOL_VERSION};
use crate::{keypair_from_seed, parse_multiaddr, NetError};

/// The relay's key seed: first byte 200 (`RELAY_LOCAL_ID`), the rest zero (§1.5). Its peer
/// ID is `12D3KooWJBDqsyHQF2MWiCdU4kdqx4zTsSTLRdShg7Ui6CRWB4uc`.
pub const RELAY_SEED: [u8; 32] = {
    let mut s = [0u8; 32];
    s[0] = 200;
    s
};

/// Longest circuit the relay grants: 365 days (rust-libp2p sends the limit in whole seconds
/// as a u32 and needs a finite duration).
const CIRCUIT_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// How to start a [`RelayServer`].
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// The 32-byte Ed25519 seed of the relay's key. Default [`RELAY_SEED`].
    pub key_seed: [u8; 32],
    /// TCP (`/ip4/…/tcp/<port>`) and WebSocket (`/ip4/…/tcp/<port>/ws`) listen addresses.
    /// Default `/ip4/0.0.0.0/tcp/9001/ws` and `/ip4/0.0.0.0/tcp/9002`, as the JS relay.
    pub listen_addresses: Vec<String>,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            key_seed: RELAY_SEED,
            listen_addresses: vec!["/ip4/0.0.0.0/tcp/9001/ws".to_owned(), "/ip4/0.0.0.0/tcp/9002".to_owned()],
        }
    }
}

#[derive(NetworkBehaviour)]
struct RelayBehaviour {
    relay: relay::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// A running relay. Stops when [`RelayServer::stop`] is called or it is dropped.
pub struct RelayServer {
    peer_id: PeerId,
    listen: Arc<Mutex<Vec<Multiaddr>>>,
    stop_tx: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

fn relay_config() -> relay::Config {
    relay::Config {
        max_reservations: 1024,
        max_reservations_per_peer: 16,
        reservation_duration: Duration::from_secs(3600),
        reservation_rate_limiters: Vec::new(),
        max_circuits: 1024,
        max_circuits_per_peer: 64,
        max_circuit_duration: CIRCUIT_DURATION,
        max_circuit_bytes: u64::MAX,
        circuit_src_rate_limiters: Vec::new(),
    }
}

async fn build(key: libp2p::identity::Keypair) -> Result<Swarm<RelayBehaviour>, NetError> {
    let err = |e: &dyn std::fmt::Display| NetError::Transport(e.to_string());
    let swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| err(&e))?
        .with_websocket(noise::Config::new, yamux::Config::default)
        .await
        .map_err(|e| err(&e))?
        .with_behaviour(|key| RelayBehaviour {
            relay: relay::Behaviour::new(key.public().to_peer_id(), relay_config()),
            identify: identify::Behaviour::new(identify::Config::new(
                IDENTIFY_PROTOCOL_VERSION.to_owned(),
                key.public(),
            )),
            ping: ping::Behaviour::default(),
        })
        .map_err(|e| err(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    Ok(swarm)
}

impl RelayServer {
    /// Starts the relay on a thread of its own and waits until every listen address is
    /// bound (at most 10 s). Works from plain threads and from inside a tokio runtime.
    ///
    /// Errors: [`NetError::InvalidMultiaddr`], [`NetError::UnsupportedListenAddress`]
    /// (anything but TCP and TCP/WS), [`NetError::Listen`], [`NetError::Transport`],
    /// [`NetError::Runtime`].
    pub fn start(opts: RelayOptions) -> Result<Self, NetError> {
        let key = keypair_from_seed(opts.key_seed)?;
        let peer_id = key.public().to_peer_id();
        let mut addrs = Vec::new();
        for a in &opts.listen_addresses {
            let addr = parse_multiaddr(a)?;
            let is_tcp = node::check_listen_address(&addr) && !addr.iter().any(|p| matches!(p, Protocol::QuicV1));
            if !is_tcp {
                return Err(NetError::UnsupportedListenAddress(a.clone()));
            }
            addrs.push(addr);
        }
        let listen = Arc::new(Mutex::new(Vec::new()));
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let listen2 = listen.clone();
        let ((), thread) = node::spawn_node_thread("ocap-relay".to_owned(), move |ready_tx| {
            run(key, addrs, listen2, ready_tx, stop_rx)
        })?;
        Ok(Self { peer_id, listen, stop_tx: Some(stop_tx), thread: Some(thread) })
    }

    /// The relay's peer ID.
    pub fn peer_id(&self) -> String {
        self.peer_id.to_string()
    }

    /// The bound addresses (port 0 resolved, `0.0.0.0` expanded to each interface), each
    /// ending in `/p2p/<relay peer ID>`: what kernels take as relay addresses.
    pub fn listen_addresses(&self) -> Vec<String> {
        let l = self.listen.lock().unwrap_or_else(|e| e.into_inner());
        l.iter().map(|a| a.to_string()).collect()
    }

    /// Stops the relay and waits for its thread to end.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop_tx.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RelayServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn run(
    key: libp2p::identity::Keypair,
    addrs: Vec<Multiaddr>,
    listen: Arc<Mutex<Vec<Multiaddr>>>,
    ready_tx: std::sync::mpsc::Sender<Result<(), NetError>>,
    mut stop_rx: oneshot::Receiver<()>,
) {
    let mut swarm = match build(key).await {
        Ok(s) => s,
        Err(e) => {
            let _ = ready_tx.send(Err(e));
            return;
        }
    };
    if let Err(e) = node::listen_direct(&mut swarm, &addrs, &listen, Duration::from_secs(10)).await {
        let _ = ready_tx.send(Err(e));
        return;
    }
    let local = *swarm.local_peer_id();
    // Advertise the bound addresses in reservations (the relay's external addresses).
    for a in listen.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        swarm.add_external_address(a.clone());
    }
    tracing::info!(peer = %local, "relay started");
    let _ = ready_tx.send(Ok(()));
    drop(ready_tx);
    loop {
        tokio::select! {
            _ = &mut stop_rx => break,
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { address, .. } => {
                    let full = node::with_peer(&address, local);
                    swarm.add_external_address(full.clone());
                    node::push_addr(&listen, full);
                }
                SwarmEvent::ExpiredListenAddr { address, .. } => {
                    let full = node::with_peer(&address, local);
                    swarm.remove_external_address(&full);
                    node::remove_addr(&listen, &full);
                }
                SwarmEvent::Behaviour(RelayBehaviourEvent::Relay(ev)) => {
                    tracing::debug!(?ev, "relay event");
                }
                other => tracing::trace!(?other, "relay swarm event"),
            },
        }
    }
    tracing::info!(peer = %local, "relay stopped");
}
