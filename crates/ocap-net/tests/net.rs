//! Real libp2p on loopback: two (or three) nodes in one process, a recording inbox, every
//! wait bounded by a timeout.

mod common;

use std::time::Duration;

use common::{fast_limits, frames, until, Event, Inbox, Node, WAIT};
use ocap_abi::remote::{RemoteTransport, SendErrorKind};
use ocap_net::{
    Libp2pTransport, NetError, NetLimits, NetOptions, RelayOptions, RelayServer, DEFAULT_PROTOCOL, JS_PROTOCOL,
};

async fn exchange(listen: &str, seeds: (u8, u8)) {
    exchange_with(listen, seeds, (DEFAULT_PROTOCOL, DEFAULT_PROTOCOL)).await;
}

/// A dials B; each opens channels with its own protocol.
async fn exchange_with(listen: &str, seeds: (u8, u8), protocols: (&str, &str)) {
    let mut a = Node::start_with(seeds.0, &[listen], &[], fast_limits(), protocols.0);
    let mut b = Node::start_with(seeds.1, &[listen], &[], fast_limits(), protocols.1);
    let b_addrs = b.t.listen_addresses();
    assert!(!b_addrs.is_empty());
    for addr in &b_addrs {
        assert!(addr.ends_with(&format!("/p2p/{}", b.id)), "{addr}");
        assert!(!addr.contains("/tcp/0/") && !addr.contains("/udp/0/"), "{addr}");
    }
    a.t.register_location_hints(&b.id, &b_addrs);

    let a_to_b = frames("a", 500);
    a.send_all(&b.id, &a_to_b);
    b.expect_frames(&a.id, &a_to_b).await;
    // B answers on the channel A opened (it knows no address of A).
    let b_to_a = frames("b", 500);
    b.send_all(&a.id, &b_to_a);
    a.expect_frames(&b.id, &b_to_a).await;
    let status = a.t.peers();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].peer_id, b.id);
    assert_eq!(status[0].state, "connected");
    a.t.stop();
    b.t.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_frames_flow_both_ways_in_order() {
    exchange("/ip4/127.0.0.1/tcp/0", (1, 2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_frames_flow_both_ways_in_order() {
    exchange("/ip4/127.0.0.1/udp/0/quic-v1", (3, 4)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_frames_flow_both_ways_in_order() {
    exchange("/ip4/127.0.0.1/tcp/0/ws", (5, 6)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_protocol_frames_flow_over_tcp() {
    exchange_with("/ip4/127.0.0.1/tcp/0", (101, 102), (JS_PROTOCOL, JS_PROTOCOL)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_protocol_frames_flow_over_quic() {
    exchange_with("/ip4/127.0.0.1/udp/0/quic-v1", (103, 104), (JS_PROTOCOL, JS_PROTOCOL)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_protocol_frames_flow_over_websocket() {
    exchange_with("/ip4/127.0.0.1/tcp/0/ws", (105, 106), (JS_PROTOCOL, JS_PROTOCOL)).await;
}

/// A node dialing `whatever` reaches a default node (which always accepts `whatever`), and
/// a node dialing `/ocap-kernel/1.0.0` reaches a `whatever` node (which also accepts that).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_and_default_protocol_nodes_reach_each_other() {
    exchange_with("/ip4/127.0.0.1/tcp/0", (107, 108), (JS_PROTOCOL, DEFAULT_PROTOCOL)).await;
    exchange_with("/ip4/127.0.0.1/tcp/0", (109, 110), (DEFAULT_PROTOCOL, JS_PROTOCOL)).await;
}

/// The swarm does not see `whatever` channels; the keep-alive behaviour must keep their
/// connection open past the idle-connection timeout, or the channel would be lost and
/// re-handshaken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_protocol_channels_keep_their_connection_alive() {
    let limits = NetLimits { idle_connection_timeout: Duration::from_millis(500), ..fast_limits() };
    let listen = ["/ip4/127.0.0.1/tcp/0"];
    let mut a = Node::start_with(111, &listen, &[], limits.clone(), JS_PROTOCOL);
    let mut b = Node::start_with(112, &listen, &[], limits, JS_PROTOCOL);
    a.t.register_location_hints(&b.id, &b.t.listen_addresses());
    a.t.send(&b.id, "one".into());
    let mut b_handshakes = handshakes_until(&mut b, "one").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    a.t.send(&b.id, "two".into());
    b.t.send(&a.id, "three".into());
    b_handshakes += handshakes_until(&mut b, "two").await;
    let a_handshakes = handshakes_until(&mut a, "three").await;
    // More than one handshake each would mean the channel was lost and reopened.
    assert_eq!((a_handshakes, b_handshakes), (1, 1));
}

/// Incarnation checks (one per handshake) seen until the frame `want` is delivered; panics
/// on a failure or give-up.
async fn handshakes_until(n: &mut Node, want: &str) -> usize {
    let mut count = 0;
    loop {
        let ev = n.expect(want, |_| true).await;
        match ev {
            Event::Incarnation(..) => count += 1,
            Event::Deliver(_, f) if f == want => return count,
            Event::Deliver(..) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_protocol_peers_reach_each_other_through_a_relay_only() {
    relay_only(JS_PROTOCOL, (113, 114)).await;
}

#[test]
fn start_works_outside_a_runtime_and_checks_addresses() {
    let (inbox, _rx) = Inbox::new();
    let mut opts = NetOptions::new([7; 32], "i");
    opts.listen_addresses = vec!["/ip4/127.0.0.1/tcp/0".into()];
    let t = Libp2pTransport::start(opts.clone(), inbox.clone()).unwrap();
    assert_eq!(t.listen_addresses().len(), 1);
    t.stop();

    opts.listen_addresses = vec!["/ip4/127.0.0.1/udp/0/webrtc-direct".into()];
    let err = Libp2pTransport::start(opts.clone(), inbox.clone()).err().unwrap();
    assert!(matches!(err, NetError::UnsupportedListenAddress(_)), "{err}");
    assert_eq!(err.to_string(), "Unsupported direct listen address: /ip4/127.0.0.1/udp/0/webrtc-direct");

    opts.listen_addresses = vec![];
    opts.relays = vec!["/ip4/127.0.0.1/tcp/9".into()];
    let err = Libp2pTransport::start(opts.clone(), inbox.clone()).err().unwrap();
    assert!(matches!(err, NetError::InvalidRelayAddress(_)), "{err}");

    opts.relays = vec![];
    // Bare ids are fine (`whatever` is the JS kernel's); these are not.
    for bad in ["", "na", "ls", "a\nb"] {
        opts.protocol = bad.into();
        let err = Libp2pTransport::start(opts.clone(), inbox.clone()).err().unwrap();
        assert!(matches!(err, NetError::InvalidProtocol(_)), "{err}");
    }
    opts.protocol = "whatever".into();
    Libp2pTransport::start(opts, inbox).unwrap().stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_carries_incarnations_and_restart_fails_the_send() {
    let mut a = Node::start(11, &["/ip4/127.0.0.1/tcp/0"], &[], fast_limits());
    let mut b = Node::start(12, &["/ip4/127.0.0.1/tcp/0"], &[], fast_limits());
    a.t.register_location_hints(&b.id, &b.t.listen_addresses());
    // A's kernel finds B restarted at the first handshake.
    a.inbox.restarted.lock().unwrap().insert(b.id.clone(), true);
    a.t.send(&b.id, "first".into());
    let ev = a.expect("A's incarnation check", |e| matches!(e, Event::Incarnation(..))).await;
    assert_eq!(ev, Event::Incarnation(b.id.clone(), "incarnation-12".into()));
    let ev = b.expect("B's incarnation check", |e| matches!(e, Event::Incarnation(..))).await;
    assert_eq!(ev, Event::Incarnation(a.id.clone(), "incarnation-11".into()));
    let err = a.expect_failure(&b.id).await;
    assert_eq!(err.kind, SendErrorKind::PeerRestarted);

    // The next send handshakes again (verdict now false) and is delivered.
    a.t.send(&b.id, "second".into());
    b.expect_frames(&a.id, &["second".to_owned()]).await;
    // "first" was never delivered.
    while let Ok(ev) = b.rx.try_recv() {
        assert_ne!(ev, Event::Deliver(a.id.clone(), "first".into()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_restart_verdict_refuses_the_channel() {
    let a = Node::start(13, &["/ip4/127.0.0.1/tcp/0"], &[], fast_limits());
    let mut b = Node::start(14, &["/ip4/127.0.0.1/tcp/0"], &[], fast_limits());
    a.t.register_location_hints(&b.id, &b.t.listen_addresses());
    b.inbox.restarted.lock().unwrap().insert(a.id.clone(), true);
    a.t.send(&b.id, "x".into());
    let ev = b.expect("B's incarnation check", |e| matches!(e, Event::Incarnation(..))).await;
    assert_eq!(ev, Event::Incarnation(a.id.clone(), "incarnation-13".into()));
    // B refused that channel after its ack, so "x" went into a stream B closed (the kernel
    // retransmits such frames); A notices the close and reconnects, and B now accepts.
    send_until_delivered(&a, &mut b, "y").await;
}

/// Sends `frame` from `a` to `b` every 300 ms until `b` gets it (a channel is being
/// re-established meanwhile); panics after [`WAIT`]. Other frames must be short.
async fn send_until_delivered(a: &Node, b: &mut Node, frame: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        a.t.send(&b.id, frame.into());
        let got = tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                match b.rx.recv().await {
                    Some(Event::Deliver(_, f)) => {
                        assert!(f.len() < 1000, "oversize frame delivered");
                        if f == frame {
                            return;
                        }
                    }
                    Some(_) => {}
                    None => panic!("inbox closed"),
                }
            }
        })
        .await;
        if got.is_ok() {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{frame:?} never delivered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_frames_are_refused() {
    let limits = NetLimits { max_message_size_bytes: 1000, ..fast_limits() };
    let mut a = Node::start(21, &["/ip4/127.0.0.1/tcp/0"], &[], limits.clone());
    let mut b = Node::start(22, &["/ip4/127.0.0.1/tcp/0"], &[], limits);
    a.t.register_location_hints(&b.id, &b.t.listen_addresses());
    a.t.send(&b.id, "é".repeat(501)); // 1002 bytes of UTF-8, 501 chars
    let err = a.expect_failure(&b.id).await;
    assert_eq!(err.kind, SendErrorKind::ResourceLimit("messageSize".into()));
    let exact = "x".repeat(1000);
    a.t.send(&b.id, exact.clone());
    b.expect_frames(&a.id, &[exact]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_incoming_frame_drops_the_channel() {
    let small = NetLimits { max_message_size_bytes: 1000, ..fast_limits() };
    let big = NetLimits { max_message_size_bytes: 4000, ..fast_limits() };
    let a = Node::start(23, &["/ip4/127.0.0.1/tcp/0"], &[], big);
    let mut b = Node::start(24, &["/ip4/127.0.0.1/tcp/0"], &[], small);
    a.t.register_location_hints(&b.id, &b.t.listen_addresses());
    a.t.send(&b.id, "before".into());
    b.expect_frames(&a.id, &["before".to_owned()]).await;
    a.t.send(&b.id, "y".repeat(2000));
    // B drops the channel; A sees it close and reconnects; later frames arrive.
    send_until_delivered(&a, &mut b, "after").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_connection_then_reconnect_peer() {
    let mut a = Node::start(31, &["/ip4/127.0.0.1/tcp/0"], &[], fast_limits());
    let mut b = Node::start(32, &["/ip4/127.0.0.1/tcp/0"], &[], fast_limits());
    let hints = b.t.listen_addresses();
    a.t.register_location_hints(&b.id, &hints);
    a.t.send(&b.id, "one".into());
    b.expect_frames(&a.id, &["one".to_owned()]).await;

    a.t.close_connection(&b.id);
    a.t.send(&b.id, "two".into());
    let err = a.expect_failure(&b.id).await;
    assert_eq!(err.kind, SendErrorKind::IntentionalClose);
    assert!(err.kind.is_terminal());
    assert_eq!(a.t.peers()[0].state, "closed");

    // B's channel really closed: B reconnects, A refuses; B's sends do not get through.
    b.t.send(&a.id, "refused".into());

    a.t.reconnect_peer(&b.id, &hints);
    a.t.send(&b.id, "three".into());
    b.expect_frames(&a.id, &["three".to_owned()]).await;
    // Anything B sent while refused is not delivered to A as long as A was closed; after
    // reconnect_peer it may come (B's writer failed it, or it went on the new channel).
    while let Ok(ev) = a.rx.try_recv() {
        if let Event::SendFailed(_, e) = ev {
            assert_eq!(e.kind, SendErrorKind::IntentionalClose);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_reach_each_other_through_a_relay_only() {
    relay_only(DEFAULT_PROTOCOL, (41, 42)).await;
}

async fn relay_only(protocol: &str, seeds: (u8, u8)) {
    let relay = RelayServer::start(RelayOptions {
        listen_addresses: vec!["/ip4/127.0.0.1/tcp/0".into(), "/ip4/127.0.0.1/tcp/0/ws".into()],
        ..RelayOptions::default()
    })
    .unwrap();
    assert_eq!(relay.peer_id(), "12D3KooWJBDqsyHQF2MWiCdU4kdqx4zTsSTLRdShg7Ui6CRWB4uc");
    let addrs = relay.listen_addresses();
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    let tcp = addrs.iter().find(|a| !a.contains("/ws")).unwrap().clone();
    let ws = addrs.iter().find(|a| a.contains("/ws")).unwrap().clone();

    // Neither node listens directly: A reserves over WS, B only knows the relay as a hint.
    let mut a = Node::start_with(seeds.0, &[], std::slice::from_ref(&ws), fast_limits(), protocol);
    let mut b = Node::start_with(seeds.1, &[], &[], fast_limits(), protocol);
    // Wait for A's reservation.
    until("A reserves a slot on the relay", || a.t.listen_addresses().iter().any(|a| a.contains("/p2p-circuit"))).await;
    let circuit = a.t.listen_addresses().into_iter().find(|a| a.contains("/p2p-circuit")).unwrap_or_default();
    assert!(circuit.ends_with(&format!("/p2p-circuit/p2p/{}", a.id)), "{circuit}");

    b.t.register_location_hints(&a.id, &[tcp]);
    let b_to_a = frames("b", 50);
    b.send_all(&a.id, &b_to_a);
    a.expect_frames(&b.id, &b_to_a).await;
    let a_to_b = frames("a", 50);
    a.send_all(&b.id, &a_to_b);
    b.expect_frames(&a.id, &a_to_b).await;
    a.t.stop();
    b.t.stop();
    relay.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_peer_is_given_up() {
    let limits = NetLimits { max_retry_attempts: 3, ..fast_limits() };
    let mut a = Node::start(51, &["/ip4/127.0.0.1/tcp/0"], &[], limits.clone());
    let mut b = Node::start(52, &["/ip4/127.0.0.1/tcp/0"], &[], limits);
    a.t.register_location_hints(&b.id, &b.t.listen_addresses());
    a.t.send(&b.id, "hello".into());
    b.expect_frames(&a.id, &["hello".to_owned()]).await;
    b.t.stop();
    let ev = a.expect("give_up", |e| matches!(e, Event::GiveUp(_))).await;
    assert_eq!(ev, Event::GiveUp(b.id.clone()));
    assert_eq!(a.t.peers()[0].state, "failed");
    // B's own sends now fail at once.
    b.t.send(&a.id, "late".into());
    assert_eq!(b.expect_failure(&a.id).await.kind, SendErrorKind::NetworkStopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_peer_is_given_up_and_queued_sends_fail() {
    let limits = NetLimits { max_retry_attempts: 2, ..fast_limits() };
    let mut a = Node::start(53, &[], &[], limits);
    let b_id = ocap_net::peer_id_from_seed([54; 32]).unwrap();
    // Nothing listens there (port 1 on loopback refuses).
    a.t.register_location_hints(&b_id, &[format!("/ip4/127.0.0.1/tcp/1/p2p/{b_id}")]);
    a.t.send(&b_id, "lost".into());
    let err = a.expect_failure(&b_id).await;
    assert_eq!(err.kind, SendErrorKind::Other);
    let ev = a.expect("give_up", |e| matches!(e, Event::GiveUp(_))).await;
    assert_eq!(ev, Event::GiveUp(b_id.clone()));

    // No address at all: a non-retryable error gives up at once.
    let c_id = ocap_net::peer_id_from_seed([55; 32]).unwrap();
    a.t.send(&c_id, "nowhere".into());
    assert_eq!(a.expect_failure(&c_id).await.kind, SendErrorKind::Other);
    let ev = a.expect("give_up", |e| matches!(e, Event::GiveUp(_))).await;
    assert_eq!(ev, Event::GiveUp(c_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_fails_later_sends_with_network_stopped() {
    let mut a = Node::start(61, &["/ip4/127.0.0.1/tcp/0"], &[], fast_limits());
    let b_id = ocap_net::peer_id_from_seed([62; 32]).unwrap();
    a.t.stop();
    a.t.stop(); // idempotent
    a.t.send(&b_id, "x".into());
    let err = a.expect_failure(&b_id).await;
    assert_eq!(err.kind, SendErrorKind::NetworkStopped);
    assert!(err.kind.is_terminal());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_rate_is_limited_per_peer() {
    let limits = NetLimits { max_messages_per_second: 10, ..fast_limits() };
    let mut a = Node::start(71, &["/ip4/127.0.0.1/tcp/0"], &[], limits);
    let mut b = Node::start(72, &["/ip4/127.0.0.1/tcp/0"], &[], fast_limits());
    a.t.register_location_hints(&b.id, &b.t.listen_addresses());
    let sent = frames("a", 11);
    a.send_all(&b.id, &sent);
    let err = a.expect_failure(&b.id).await;
    assert_eq!(err.kind, SendErrorKind::ResourceLimit("messageRate".into()));
    b.expect_frames(&a.id, &sent[..10]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_channels_are_torn_down_and_redialed() {
    let limits = NetLimits {
        stream_inactivity_timeout: Duration::from_secs(1), // raised to the 5 s minimum
        ..fast_limits()
    };
    let mut a = Node::start(81, &["/ip4/127.0.0.1/tcp/0"], &[], limits.clone());
    let mut b = Node::start(82, &["/ip4/127.0.0.1/tcp/0"], &[], limits);
    a.t.register_location_hints(&b.id, &b.t.listen_addresses());
    a.t.send(&b.id, "one".into());
    b.expect_frames(&a.id, &["one".to_owned()]).await;
    // Whichever side idles out first closes the channel. If both do, nobody redials until
    // the next send; if only one does, the other sees the channel closed and redials (A by
    // its hints, B over the libp2p connection that is still up), so B sees a new handshake.
    tokio::time::timeout(WAIT, async {
        loop {
            if a.t.peers().first().is_some_and(|p| p.state != "connected") {
                return;
            }
            if let Ok(Event::Incarnation(..)) = b.rx.try_recv() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("idle channel torn down");
    a.t.send(&b.id, "two".into());
    b.expect_frames(&a.id, &["two".to_owned()]).await;
    a.assert_no_failures();
    b.assert_no_failures();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_dials_converge_without_losing_frames() {
    let mut a = Node::start(91, &["/ip4/127.0.0.1/tcp/0"], &[], fast_limits());
    let mut b = Node::start(92, &["/ip4/127.0.0.1/tcp/0"], &[], fast_limits());
    a.t.register_location_hints(&b.id, &b.t.listen_addresses());
    b.t.register_location_hints(&a.id, &a.t.listen_addresses());
    let a_to_b = frames("a", 100);
    let b_to_a = frames("b", 100);
    for (fa, fb) in a_to_b.iter().zip(&b_to_a) {
        a.t.send(&b.id, fa.clone());
        b.t.send(&a.id, fb.clone());
    }
    async fn collect(n: &mut Node, count: usize) -> Vec<String> {
        let mut got = Vec::new();
        while got.len() < count {
            match n.expect("a frame or failure", |e| matches!(e, Event::Deliver(..) | Event::SendFailed(..))).await {
                Event::Deliver(_, f) => got.push(f),
                other => panic!("unexpected {other:?}"),
            }
        }
        got.sort();
        got
    }
    let mut want_b = a_to_b.clone();
    want_b.sort();
    let mut want_a = b_to_a.clone();
    want_a.sort();
    assert_eq!(collect(&mut b, 100).await, want_b);
    assert_eq!(collect(&mut a, 100).await, want_a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_without_hints_reopens_over_the_live_connection() {
    let short = NetLimits { stream_inactivity_timeout: Duration::from_secs(5), ..fast_limits() };
    let mut a = Node::start(93, &["/ip4/127.0.0.1/tcp/0"], &[], short);
    let mut b = Node::start(94, &["/ip4/127.0.0.1/tcp/0"], &[], fast_limits());
    a.t.register_location_hints(&b.id, &b.t.listen_addresses());
    a.t.send(&b.id, "one".into());
    b.expect_frames(&a.id, &["one".to_owned()]).await;
    // A's channel idles out after 5 s and A closes it; B (which knows no address of A) sees
    // it closed and reopens a stream over the libp2p connection: A sees a new handshake.
    a.expect("A's first handshake", |e| matches!(e, Event::Incarnation(..))).await;
    a.expect("B redialing", |e| matches!(e, Event::Incarnation(..))).await;
    b.t.send(&a.id, "back".into());
    a.expect_frames(&b.id, &["back".to_owned()]).await;
    b.assert_no_failures();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_and_connection_rate() {
    let one = NetLimits { max_concurrent_connections: 1, ..fast_limits() };
    let mut a = Node::start(95, &["/ip4/127.0.0.1/tcp/0"], &[], one);
    let mut b = Node::start(96, &["/ip4/127.0.0.1/tcp/0"], &[], fast_limits());
    let c = Node::start(97, &["/ip4/127.0.0.1/tcp/0"], &[], fast_limits());
    a.t.register_location_hints(&b.id, &b.t.listen_addresses());
    a.t.register_location_hints(&c.id, &c.t.listen_addresses());
    a.t.send(&b.id, "to b".into());
    b.expect_frames(&a.id, &["to b".to_owned()]).await;
    a.t.send(&c.id, "to c".into());
    let err = a.expect_failure(&c.id).await;
    assert_eq!(err.kind, SendErrorKind::ResourceLimit("connection".into()));

    let rate = NetLimits { max_connection_attempts_per_minute: 1, ..fast_limits() };
    let mut d = Node::start(98, &[], &[], rate);
    let e_id = ocap_net::peer_id_from_seed([99; 32]).unwrap();
    d.t.register_location_hints(&e_id, &[format!("/ip4/127.0.0.1/tcp/1/p2p/{e_id}")]);
    d.t.send(&e_id, "x".into());
    // The first attempt is refused; the retry is over the rate.
    let err = d.expect_failure(&e_id).await;
    assert_eq!(err.kind, SendErrorKind::ResourceLimit("connectionRate".into()));
}

#[tokio::test]
async fn start_works_inside_a_current_thread_runtime() {
    let mut a = Node::start(101, &["/ip4/127.0.0.1/tcp/0"], &[], fast_limits());
    let mut b = Node::start(102, &["/ip4/127.0.0.1/tcp/0"], &[], fast_limits());
    a.t.register_location_hints(&b.id, &b.t.listen_addresses());
    a.t.send(&b.id, "ping".into());
    b.expect_frames(&a.id, &["ping".to_owned()]).await;
    b.t.send(&a.id, "pong".into());
    a.expect_frames(&b.id, &["pong".to_owned()]).await;
}

/// Both peers flood each other on one channel at once. Each channel used to be read and
/// written by two tasks sharing the stream's command sender, which keeps one waker: a read
/// (which asks to send a window update) took the writer's place, and a writer parked on a
/// full command queue was never woken (rust-libp2p#5410), until the write timeout (10 s,
/// here longer than the test's hang guard) failed the channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_flooded_both_ways_at_once_never_stalls() {
    let limits = NetLimits { write_timeout: Duration::from_secs(120), ..fast_limits() };
    let mut a = Node::start(40, &["/ip4/127.0.0.1/tcp/0"], &[], limits.clone());
    let mut b = Node::start(41, &["/ip4/127.0.0.1/tcp/0"], &[], limits);
    a.t.register_location_hints(&b.id, &b.t.listen_addresses());
    let hello = frames("hello", 1);
    a.send_all(&b.id, &hello);
    b.expect_frames(&a.id, &hello).await;
    let pad = "x".repeat(300);
    let flood = |tag: &str| -> Vec<String> {
        (0..20_000).map(|i| format!(r#"{{"seq":{i},"from":"{tag}","pad":"{pad}"}}"#)).collect()
    };
    let (a_to_b, b_to_a) = (flood("a"), flood("b"));
    a.send_all(&b.id, &a_to_b);
    b.send_all(&a.id, &b_to_a);
    let (a_id, b_id) = (a.id.clone(), b.id.clone());
    tokio::join!(b.expect_frames(&a_id, &a_to_b), a.expect_frames(&b_id, &b_to_a));
    a.assert_no_failures();
    b.assert_no_failures();
    a.t.stop();
    b.t.stop();
}
