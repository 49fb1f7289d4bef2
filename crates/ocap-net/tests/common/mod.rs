//! What the integration tests share: a recording inbox, a node started on loopback, and
//! waits bounded by [`WAIT`] (a hang guard, never a timed assertion).

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ocap_abi::remote::{BoxFuture, RemoteInbox, RemoteTransport, SendError};
use ocap_net::{Libp2pTransport, NetLimits, NetOptions, DEFAULT_PROTOCOL};
use tokio::sync::mpsc;

/// Hang guard for one awaited step.
pub const WAIT: Duration = Duration::from_secs(30);

/// One inbox callback.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Deliver(String, String),
    Incarnation(String, String),
    SendFailed(String, SendError),
    GiveUp(String),
}

/// Records every callback as an [`Event`]; answers `incarnation` from `restarted` (a verdict
/// is used once), else `false`.
pub struct Inbox {
    tx: mpsc::UnboundedSender<Event>,
    pub restarted: Mutex<HashMap<String, bool>>,
}

impl Inbox {
    pub fn new() -> (Arc<Inbox>, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Arc::new(Inbox { tx, restarted: Mutex::new(HashMap::new()) }), rx)
    }
}

impl RemoteInbox for Inbox {
    fn deliver(&self, peer_id: &str, frame: String) {
        let _ = self.tx.send(Event::Deliver(peer_id.into(), frame));
    }
    fn incarnation(&self, peer_id: &str, incarnation_id: &str) -> BoxFuture<'static, bool> {
        let _ = self.tx.send(Event::Incarnation(peer_id.into(), incarnation_id.into()));
        let verdict = self.restarted.lock().unwrap().remove(peer_id).unwrap_or(false);
        Box::pin(async move { verdict })
    }
    fn send_failed(&self, peer_id: &str, error: SendError) {
        let _ = self.tx.send(Event::SendFailed(peer_id.into(), error));
    }
    fn give_up(&self, peer_id: &str) {
        let _ = self.tx.send(Event::GiveUp(peer_id.into()));
    }
}

/// A running transport with its recording inbox.
pub struct Node {
    pub t: Arc<Libp2pTransport>,
    pub inbox: Arc<Inbox>,
    pub rx: mpsc::UnboundedReceiver<Event>,
    pub id: String,
}

/// Options keyed by `[seed; 32]`, incarnation `incarnation-<seed>`, listening on `listen`.
pub fn options(seed: u8, listen: &[&str]) -> NetOptions {
    let mut opts = NetOptions::new([seed; 32], format!("incarnation-{seed}"));
    opts.listen_addresses = listen.iter().map(|s| s.to_string()).collect();
    opts
}

impl Node {
    pub fn start(seed: u8, listen: &[&str], relays: &[String], limits: NetLimits) -> Node {
        Node::start_with(seed, listen, relays, limits, DEFAULT_PROTOCOL)
    }

    /// A node opening its channels with `protocol` (`whatever` as JS kernels do).
    pub fn start_with(seed: u8, listen: &[&str], relays: &[String], limits: NetLimits, protocol: &str) -> Node {
        let mut opts = options(seed, listen);
        opts.relays = relays.to_vec();
        opts.limits = limits;
        opts.protocol = protocol.to_owned();
        Node::start_opts(opts)
    }

    pub fn start_opts(opts: NetOptions) -> Node {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let (inbox, rx) = Inbox::new();
        let t = Libp2pTransport::start(opts, inbox.clone()).expect("transport starts");
        let id = t.peer_id();
        Node { t, inbox, rx, id }
    }

    /// The next event, whatever it is; panics after [`WAIT`].
    pub async fn next(&mut self) -> Event {
        tokio::time::timeout(WAIT, self.rx.recv()).await.expect("an inbox event in time").expect("inbox open")
    }

    /// The next event matching `pred`, skipping others; panics after [`WAIT`].
    pub async fn expect(&mut self, what: &str, mut pred: impl FnMut(&Event) -> bool) -> Event {
        let fut = async {
            loop {
                match self.rx.recv().await {
                    Some(ev) if pred(&ev) => return ev,
                    Some(_) => {}
                    None => panic!("inbox closed while waiting for {what}"),
                }
            }
        };
        tokio::time::timeout(WAIT, fut).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    pub async fn expect_frames(&mut self, from: &str, frames: &[String]) {
        for want in frames {
            let ev = self.expect("a frame", |e| matches!(e, Event::Deliver(..))).await;
            assert_eq!(ev, Event::Deliver(from.into(), want.clone()));
        }
    }

    pub async fn expect_failure(&mut self, peer: &str) -> SendError {
        match self.expect("a send failure", |e| matches!(e, Event::SendFailed(..))).await {
            Event::SendFailed(p, e) => {
                assert_eq!(p, peer);
                e
            }
            _ => unreachable!(),
        }
    }

    /// Sends each frame to `to`.
    pub fn send_all(&self, to: &str, frames: &[String]) {
        for f in frames {
            self.t.send(to, f.clone());
        }
    }

    /// The state `peers()` reports for `peer`, if it lists it.
    pub fn state_of(&self, peer: &str) -> Option<String> {
        self.t.peers().into_iter().find(|p| p.peer_id == peer).map(|p| p.state)
    }

    /// Fails on any give-up or failed send still in the inbox.
    pub fn assert_no_failures(&mut self) {
        while let Ok(ev) = self.rx.try_recv() {
            assert!(!matches!(ev, Event::GiveUp(_) | Event::SendFailed(..)), "{ev:?}");
        }
    }
}

/// Polls `cond` every 20 ms until it holds; panics after [`WAIT`].
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    tokio::time::timeout(WAIT, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

/// Limits for tests: no message-rate limit in the way, reconnection backoff in tens of ms.
pub fn fast_limits() -> NetLimits {
    NetLimits {
        max_messages_per_second: 100_000,
        reconnection_base_delay: Duration::from_millis(20),
        reconnection_max_delay: Duration::from_millis(200),
        ..NetLimits::default()
    }
}

/// `n` distinct small JSON frames tagged `tag`.
pub fn frames(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!(r#"{{"seq":{i},"from":"{tag}"}}"#)).collect()
}
