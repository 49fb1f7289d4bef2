//! Peer lifecycle beyond channels (remote-comms.md §9.1, §9.3–§9.5), with real libp2p on
//! loopback: the plain-ws dial gate, `peer:disconnect`, stale-peer cleanup, and backoff
//! resets on wake. Intervals are configured short and the wall clock is injected, so no
//! test waits for minutes; every wait is on an event or a state, bounded by `WAIT`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::{fast_limits, options, until, Event, Node};
use ocap_abi::remote::{RemoteTransport, SendErrorKind};
use ocap_net::{NetLimits, WallClock};

const TCP: &str = "/ip4/127.0.0.1/tcp/0";

/// §9.1: plain ws to a public host is denied before anything is dialed, with an error that
/// names the address, and not retried (the loop gives up at once although retries are
/// unlimited); a host in `allowed_ws_hosts` is dialed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_ws_to_a_public_host_is_denied_unless_allowed() {
    let b_id = ocap_net::peer_id_from_seed([2; 32]).unwrap();
    // TEST-NET-3: public, and never reached by this test.
    let public = format!("/ip4/203.0.113.7/tcp/80/ws/p2p/{b_id}");

    let mut a = Node::start(1, &[], &[], fast_limits());
    a.t.register_location_hints(&b_id, std::slice::from_ref(&public));
    a.t.send(&b_id, "x".into());
    let err = a.expect_failure(&b_id).await;
    assert_eq!(err.kind, SendErrorKind::Other);
    assert!(err.message.contains(&format!("plain WebSocket dial to {public} denied")), "{}", err.message);
    assert_eq!(a.expect("give_up", |e| matches!(e, Event::GiveUp(_))).await, Event::GiveUp(b_id.clone()));

    // Listed: the gate lets it through, so whatever happens then is a network failure (and,
    // with one attempt allowed, a give-up), not a denial.
    let mut opts = options(3, &[]);
    opts.allowed_ws_hosts = vec!["203.0.113.7".into()];
    opts.limits = NetLimits { max_retry_attempts: 1, dial_timeout: Duration::from_millis(500), ..fast_limits() };
    let mut c = Node::start_opts(opts);
    c.t.register_location_hints(&b_id, &[public]);
    c.t.send(&b_id, "x".into());
    let err = c.expect_failure(&b_id).await;
    assert!(!err.message.contains("denied"), "{}", err.message);
}

/// §9.3 `peer:disconnect`: A's first dial finds B restarted (and B finds A restarted), so
/// both drop that stream and nothing is left on the connection; when the connection idles
/// out, A (which knows B's address) reconnects on its own, without a send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnect_without_a_channel_reconnects() {
    let limits = NetLimits { idle_connection_timeout: Duration::from_millis(300), ..fast_limits() };
    let mut a = Node::start(11, &[TCP], &[], limits.clone());
    let mut b = Node::start(12, &[TCP], &[], limits);
    a.t.register_location_hints(&b.id, &b.t.listen_addresses());
    a.inbox.restarted.lock().unwrap().insert(b.id.clone(), true);
    b.inbox.restarted.lock().unwrap().insert(a.id.clone(), true);
    a.t.send(&b.id, "first".into());
    assert_eq!(a.expect_failure(&b.id).await.kind, SendErrorKind::PeerRestarted);
    b.expect("B's first incarnation check", |e| matches!(e, Event::Incarnation(..))).await;

    // Nobody sends again: only the disconnect can make A dial.
    b.expect("A redialing", |e| matches!(e, Event::Incarnation(..))).await;
    until("A's channel is up", || a.state_of(&b.id).as_deref() == Some("connected")).await;
    a.t.send(&b.id, "after".into());
    b.expect_frames(&a.id, &["after".to_owned()]).await;
    a.assert_no_failures();
}

/// §9.5: a peer with no channel and no activity for `stale_peer_timeout` is forgotten by the
/// cleanup: it leaves `peers()`, and with it go its intentional-close flag (a send is no
/// longer refused as `IntentionalClose`) and its hints (that send finds no address).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_peers_are_forgotten() {
    let limits = NetLimits {
        cleanup_interval: Duration::from_millis(50),
        stale_peer_timeout: Duration::from_millis(300),
        ..fast_limits()
    };
    let mut a = Node::start(21, &[TCP], &[], limits);
    let mut b = Node::start(22, &[TCP], &[], fast_limits());
    a.t.register_location_hints(&b.id, &b.t.listen_addresses());
    a.t.send(&b.id, "one".into());
    b.expect_frames(&a.id, &["one".to_owned()]).await;
    // B goes away for good, and A closes the peer (which stops its reconnecting).
    b.t.stop();
    a.t.close_connection(&b.id);

    until("A forgets B", || a.state_of(&b.id).is_none()).await;
    a.t.send(&b.id, "again".into());
    let err = a.expect_failure(&b.id).await;
    assert_eq!(err.kind, SendErrorKind::Other);
    assert!(err.message.contains("no address known"), "{}", err.message);
}

/// §9.4: a wall-clock jump beyond tick + threshold is a wake, and resets backoffs: a peer
/// given up on loses its `failed` mark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_jump_clears_given_up_peers() {
    let now = Arc::new(Mutex::new(SystemTime::now()));
    let clock = now.clone();
    let mut opts = options(31, &[]);
    opts.wall_clock = WallClock::new(move || *clock.lock().unwrap());
    opts.limits = NetLimits { max_retry_attempts: 2, wake_check_interval: Duration::from_millis(20), ..fast_limits() };
    let mut a = Node::start_opts(opts);
    let c_id = ocap_net::peer_id_from_seed([32; 32]).unwrap();
    // Nothing listens there (port 1 on loopback refuses).
    a.t.register_location_hints(&c_id, &[format!("/ip4/127.0.0.1/tcp/1/p2p/{c_id}")]);
    a.t.send(&c_id, "lost".into());
    a.expect("give_up", |e| matches!(e, Event::GiveUp(_))).await;
    assert_eq!(a.state_of(&c_id).as_deref(), Some("failed"));

    *now.lock().unwrap() += Duration::from_secs(3600);
    until("the wake resets C", || a.state_of(&c_id).as_deref() == Some("idle")).await;
}

/// §9.4 `resetAllBackoffs` on a reconnecting peer: the attempt in flight no longer counts,
/// so a loop allowed 2 attempts makes 2 more after the reset (4 in all). The test is the
/// peer: a TCP listener that fails each attempt when told (it speaks no libp2p).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_all_backoffs_restarts_the_attempt_count() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut a = Node::start(41, &[], &[], NetLimits { max_retry_attempts: 2, ..fast_limits() });
    let c_id = ocap_net::peer_id_from_seed([42; 32]).unwrap();
    let accept = || async { tokio::time::timeout(common::WAIT, listener.accept()).await.unwrap().unwrap().0 };

    a.t.reconnect_peer(&c_id, &[format!("/ip4/127.0.0.1/tcp/{port}/p2p/{c_id}")]);
    drop(accept().await); // attempt 1 fails
    let second = accept().await; // attempt 2 waits for its answer...
    a.t.reset_all_backoffs();
    drop(second); // ...and fails after the reset.
    let more = Arc::new(AtomicUsize::new(0));
    let counted = more.clone();
    let failing = tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            counted.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    assert_eq!(a.expect("give_up", |e| matches!(e, Event::GiveUp(_))).await, Event::GiveUp(c_id));
    failing.abort();
    assert_eq!(more.load(Ordering::SeqCst), 2);
}

/// §9.4 permanent failures, with real dials and unlimited retries: a loopback port nobody
/// listens on refuses each dial (`ECONNREFUSED`, found under libp2p's wrapped errors), and
/// the fifth refusal in a row gives up on the peer: the queued frame fails, `give_up` is
/// called, and the peer is `failed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_refused_dials_in_a_row_give_up() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let limits = NetLimits { max_retry_attempts: 0, ..fast_limits() };
    let mut a = Node::start(51, &[], &[], limits);
    let c_id = ocap_net::peer_id_from_seed([52; 32]).unwrap();
    a.t.register_location_hints(&c_id, &[format!("/ip4/127.0.0.1/tcp/{port}/p2p/{c_id}")]);
    a.t.send(&c_id, "lost".into());
    let err = a.expect_failure(&c_id).await;
    assert_eq!(err.kind, SendErrorKind::Other);
    assert!(err.message.contains("(5 times in a row)"), "{}", err.message);
    assert_eq!(a.expect("give_up", |e| matches!(e, Event::GiveUp(_))).await, Event::GiveUp(c_id.clone()));
    assert_eq!(a.state_of(&c_id).as_deref(), Some("failed"));
}

/// §9.4 permanent failures for names: a `.invalid` name never resolves (the resolver answers
/// NXDOMAIN itself, RFC 6761, so no network is needed), which is `ENOTFOUND`; five in a row
/// give up although retries are unlimited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_unresolvable_dials_in_a_row_give_up() {
    let limits = NetLimits { max_retry_attempts: 0, ..fast_limits() };
    let mut a = Node::start(53, &[], &[], limits);
    let c_id = ocap_net::peer_id_from_seed([54; 32]).unwrap();
    a.t.register_location_hints(&c_id, &[format!("/dns4/nowhere.invalid/tcp/4001/p2p/{c_id}")]);
    a.t.send(&c_id, "lost".into());
    let err = a.expect_failure(&c_id).await;
    assert!(err.message.contains("(5 times in a row)"), "{}", err.message);
    assert_eq!(a.expect("give_up", |e| matches!(e, Event::GiveUp(_))).await, Event::GiveUp(c_id.clone()));
}

/// A fixed port another node holds is refused with "already in use", for transports and
/// relays alike (libp2p's listeners set `SO_REUSEPORT`, so without the check both bound it).
#[test]
fn a_port_in_use_is_refused_not_shared() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("/ip4/127.0.0.1/tcp/{port}");
    let first = ocap_net::RelayServer::start(ocap_net::RelayOptions {
        key_seed: [7; 32],
        listen_addresses: vec![addr.clone()],
    })
    .expect("the first relay listens");
    let second = ocap_net::RelayServer::start(ocap_net::RelayOptions {
        key_seed: [8; 32],
        listen_addresses: vec![addr.clone()],
    });
    let err = second.err().expect("the second is refused").to_string();
    assert!(err.contains("already in use") && err.contains(&addr), "{err}");
    let (inbox, _events) = common::Inbox::new();
    let mut opts = ocap_net::NetOptions::new([9; 32], "inc");
    opts.listen_addresses = vec![addr.clone()];
    let err = ocap_net::Libp2pTransport::start(opts, inbox).err().expect("refused").to_string();
    assert!(err.contains("already in use"), "{err}");
    first.stop();
}
