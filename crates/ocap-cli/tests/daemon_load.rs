//! The daemon serves clients concurrently (issue 11, item 2): idle and slow clients hold only
//! their own connection, the busy ones keep being served, and past the connection cap a
//! client is told so at once instead of waiting. Local and bounded: 200 idle connections,
//! 20 busy clients of 25 requests each, then one over the cap.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde_json::{json, Value as Json};

mod common;
use common::Home;

const IDLE: usize = 200;
const BUSY_CLIENTS: usize = 20;
const REQUESTS_EACH: usize = 25;
/// `ocap_cli`'s `MAX_CONNECTIONS` (the binary is the unit under test, not the library).
const MAX_CONNECTIONS: usize = 512;

/// Sends one request on an open connection and reads the one-line reply.
fn request(stream: &mut UnixStream, method: &str) -> Json {
    let req = json!({"jsonrpc": "2.0", "id": 1, "method": method});
    stream.write_all(format!("{req}\n").as_bytes()).expect("write request");
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).expect("read reply");
    serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("reply is not JSON ({e}): {line:?}"))
}

fn ping(socket: &Path) -> Json {
    let mut s = UnixStream::connect(socket).expect("connect");
    request(&mut s, "ping")
}

#[test]
fn idle_connections_do_not_hold_up_busy_clients() {
    let d = Home::started_with(None);
    let socket = d.socket();
    // Connections that say nothing (yet): before, 64 of them blocked everyone for 30 s.
    let mut idle: Vec<UnixStream> = (0..IDLE).map(|_| UnixStream::connect(&socket).expect("idle connect")).collect();
    std::thread::scope(|scope| {
        let busy: Vec<_> = (0..BUSY_CLIENTS)
            .map(|_| scope.spawn(|| (0..REQUESTS_EACH).filter(|_| ping(&socket)["result"] == json!("pong")).count()))
            .collect();
        for client in busy {
            assert_eq!(client.join().expect("busy client"), REQUESTS_EACH);
        }
    });
    // Every idle connection is still being served: each gets its answer now. (Had the busy
    // clients waited for idle ones to time out, these would have been closed unanswered.)
    for conn in &mut idle {
        assert_eq!(request(conn, "ping")["result"], json!("pong"));
    }
}

#[test]
fn past_the_connection_cap_a_client_is_told_at_once() {
    let d = Home::started_with(None);
    let socket = d.socket();
    // Idle connections hold every slot (each takes one when accepted, in order) ...
    let held: Vec<UnixStream> = (0..MAX_CONNECTIONS).map(|_| UnixStream::connect(&socket).expect("connect")).collect();
    // ... so the next client, accepted after them, is answered at once that the daemon is busy.
    let over = ping(&socket);
    assert_eq!(over["error"]["code"], json!(-32002), "{over}");
    let message = over["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("busy") && message.contains("MAX_CONNECTIONS"), "{over}");
    // Once connections go away, new clients are served again.
    drop(held);
    let reply = loop {
        let reply = ping(&socket);
        if reply["error"]["code"] != json!(-32002) {
            break reply;
        }
    };
    assert_eq!(reply["result"], json!("pong"), "{reply}");
}
