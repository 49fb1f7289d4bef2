//! IO channels with real JS vats and a real Unix-socket client (host-surface.md §6; seeds
//! 001 and 002).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ocap_kernel::config::ClusterConfig;
use ocap_kernel::smallcaps::{kunser, Value};
use ocap_kernel::{KRef, Kernel, KernelConfig};

mod common;

/// The vats: the io-echo example's, and the tests' own counter.
fn vats_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/io-echo")
}

fn make(db: &Path) -> Kernel {
    common::js_kernel(db, KernelConfig::default(), vats_dir())
}

fn echo_cluster(sock: &Path, direction: &str) -> ClusterConfig {
    ClusterConfig::from_json(&format!(
        r#"{{"bootstrap":"echo","io":{{"repl":{{"type":"socket","path":{:?},"direction":"{direction}"}}}},
            "vats":{{"echo":{{"sourceSpec":"echo.js"}}}}}}"#,
        sock.to_string_lossy()
    ))
    .unwrap()
}

fn connect(sock: &Path) -> (UnixStream, BufReader<UnixStream>) {
    let c = UnixStream::connect(sock).expect("connect to the channel");
    c.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let r = BufReader::new(c.try_clone().unwrap());
    (c, r)
}

fn line(r: &mut BufReader<UnixStream>) -> String {
    let mut s = String::new();
    r.read_line(&mut s).expect("a line from the vat");
    s.trim_end_matches('\n').to_string()
}

/// Only guards against a hang: the waits it bounds end on an event long before.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Waits for the channel at `sock` to be destroyed (once the kernel is idle after its
/// subcluster ended): destroying it disconnects `client` first, on the run loop, and removes
/// the socket file in the same step, so a kernel call answered after the disconnect comes
/// after the removal.
async fn wait_until_closed(k: &Kernel, sock: &Path, client: UnixStream) {
    let disconnected = tokio::task::spawn_blocking(move || {
        let mut client = client;
        client.set_read_timeout(Some(HANG_GUARD)).unwrap();
        let mut buf = [0u8; 64];
        loop {
            match std::io::Read::read(&mut client, &mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return Err(e)
                }
                Err(_) => return Ok(()), // reset: disconnected too
            }
        }
    });
    disconnected.await.unwrap().expect("the channel disconnects its client (hang guard)");
    k.get_status().await.unwrap();
    assert!(!sock.exists(), "the socket file goes with the channel");
}

async fn value(k: &Kernel, target: KRef, method: &str, args: Vec<Value>) -> Result<Value, String> {
    match k.queue_message(target, method, args).await.unwrap() {
        Ok(v) => Ok(kunser(&v).unwrap()),
        Err(v) => Err(match kunser(&v).unwrap() {
            Value::Error { message, .. } => message,
            other => format!("{other:?}"),
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vat_echoes_socket_lines_upper_cased_and_clients_can_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("repl.sock");
    let k = make(&dir.path().join("k.sqlite"));
    let r = k.launch_subcluster(echo_cluster(&sock, "inout")).await.unwrap();
    assert_eq!(kunser(&r.bootstrap_result).unwrap(), Value::str("repl"), "the channel is in services by name");
    for round in 0..2 {
        let (mut client, mut reader) = connect(&sock);
        let k2 = k.clone();
        let pump = tokio::spawn(async move { value(&k2, r.root_kref, "pump", vec![]).await });
        client.write_all(b"hello\nworld\n").unwrap();
        assert_eq!(line(&mut reader), "HELLO");
        assert_eq!(line(&mut reader), "WORLD");
        // A partial line is delivered when the client goes away; the vat's answer to it then
        // has nowhere to go, so its write fails.
        client.write_all(b"partial").unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        drop(client);
        drop(reader);
        let err = pump.await.unwrap().unwrap_err();
        assert!(err.contains("has no connected client"), "round {round}: {err}");
        // Until the next client connects, reads answer null.
        assert_eq!(value(&k, r.root_kref, "read", vec![]).await, Ok(Value::Null));
    }
    // With no client connected, a write fails clearly.
    let err = value(&k, r.root_kref, "write", vec![Value::str("x")]).await.unwrap_err();
    assert!(err.contains("has no connected client"), "{err}");
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
    k.stop().await.unwrap();
    assert!(!sock.exists(), "stopping the kernel closes the channel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direction_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let k = make(&dir.path().join("k.sqlite"));
    let inbound = k.launch_subcluster(echo_cluster(&dir.path().join("in.sock"), "in")).await.unwrap();
    let outbound = k.launch_subcluster(echo_cluster(&dir.path().join("out.sock"), "out")).await.unwrap();
    let err = value(&k, inbound.root_kref, "write", vec![Value::str("x")]).await.unwrap_err();
    assert!(err.contains("IO channel \"repl\" is read-only"), "{err}");
    let err = value(&k, outbound.root_kref, "read", vec![]).await.unwrap_err();
    assert!(err.contains("IO channel \"repl\" is write-only"), "{err}");
    k.stop().await.unwrap();
}

/// Seed 002: the IO reference a vat stored in baggage still works after the kernel is
/// stopped and made again on the same database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_io_reference_in_baggage_works_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("repl.sock");
    let db = dir.path().join("k.sqlite");
    let k = make(&db);
    let r = k.launch_subcluster(echo_cluster(&sock, "inout")).await.unwrap();
    k.stop().await.unwrap();
    let k = make(&db);
    assert!(k.io_failures.is_empty(), "{:?}", k.io_failures);
    assert!(sock.exists(), "the channel is back before the vats");
    let (mut client, mut reader) = connect(&sock);
    let k2 = k.clone();
    let pump = tokio::spawn(async move { value(&k2, r.root_kref, "pump", vec![]).await });
    client.write_all(b"again\n").unwrap();
    assert_eq!(line(&mut reader), "AGAIN");
    drop(client);
    drop(reader);
    assert_eq!(pump.await.unwrap(), Ok(Value::Number(1.0)));
    k.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_launch_leaves_no_socket_file_and_no_service() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("repl.sock");
    let k = make(&dir.path().join("k.sqlite"));
    let c = ClusterConfig::from_json(&format!(
        r#"{{"bootstrap":"echo","io":{{"repl":{{"type":"socket","path":{:?}}}}},
            "vats":{{"echo":{{"sourceSpec":"echo.js"}},"broken":{{"sourceSpec":"missing.js"}}}}}}"#,
        sock.to_string_lossy()
    ))
    .unwrap();
    assert!(k.launch_subcluster(c).await.is_err());
    assert!(!sock.exists());
    let left = k.with_store(|s| Ok(s.kv_keys()?.iter().filter(|k| k.starts_with("io.")).count())).await.unwrap();
    assert_eq!(left, 0);
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
    k.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_subcluster_removes_the_socket_file() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("repl.sock");
    let k = make(&dir.path().join("k.sqlite"));
    let r = k.launch_subcluster(echo_cluster(&sock, "inout")).await.unwrap();
    assert!(sock.exists());
    let client = UnixStream::connect(&sock).unwrap();
    k.terminate_subcluster(&r.subcluster_id).await.unwrap();
    wait_until_closed(&k, &sock, client).await;
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
    k.stop().await.unwrap();
}

/// Gap G6: another subcluster cannot obtain the channel, by any name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_subcluster_cannot_obtain_the_channel_by_any_name() {
    let dir = tempfile::tempdir().unwrap();
    let k = make(&dir.path().join("k.sqlite"));
    let r = k.launch_subcluster(echo_cluster(&dir.path().join("repl.sock"), "inout")).await.unwrap();
    for name in ["repl", &format!("io:{}:repl", r.subcluster_id), "io.s1.repl"] {
        let c = ClusterConfig::from_json(&format!(
            r#"{{"bootstrap":"v","services":["{name}"],"vats":{{"v":{{"sourceSpec":"../../crates/ocap-cli/tests/vats/counter.js"}}}}}}"#
        ))
        .unwrap();
        let err = k.launch_subcluster(c).await.unwrap_err().to_string();
        assert_eq!(err, format!("no registered kernel service '{name}'"));
    }
    k.stop().await.unwrap();
}

/// The JS kernel's own IO test config lists the channel in `services` as well as in `io`;
/// such a name is skipped by service validation (host-surface.md §3.1, launch step b: "skip
/// it if it is also an `io` key") and bootstrap gets the channel under it (§3.2: "If a name
/// is in both lists, the IO channel wins"). Failed before the fix with `no registered kernel
/// service 'repl'`. Another subcluster's channel is still never obtainable by that name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_may_list_the_subclusters_own_io_channel() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("repl.sock");
    let k = make(&dir.path().join("k.sqlite"));
    let c = ClusterConfig::from_json(&format!(
        r#"{{"bootstrap":"echo","io":{{"repl":{{"type":"socket","path":{:?}}}}},"services":["repl"],
            "vats":{{"echo":{{"sourceSpec":"echo.js"}}}}}}"#,
        sock.to_string_lossy()
    ))
    .unwrap();
    let r = k.launch_subcluster(c).await.unwrap();
    assert_eq!(kunser(&r.bootstrap_result).unwrap(), Value::str("repl"), "one entry: the channel");
    let (mut client, mut reader) = connect(&sock);
    let k2 = k.clone();
    let pump = tokio::spawn(async move { value(&k2, r.root_kref, "pump", vec![]).await });
    client.write_all(b"both lists\n").unwrap();
    assert_eq!(line(&mut reader), "BOTH LISTS", "the service named repl is the channel");
    drop(client);
    drop(reader);
    assert_eq!(pump.await.unwrap(), Ok(Value::Number(1.0)));
    // A subcluster with IO of its own still cannot name another subcluster's channel.
    let other = ClusterConfig::from_json(&format!(
        r#"{{"bootstrap":"echo","io":{{"mine":{{"type":"socket","path":{:?}}}}},"services":["mine","repl"],
            "vats":{{"echo":{{"sourceSpec":"echo.js"}}}}}}"#,
        dir.path().join("mine.sock").to_string_lossy()
    ))
    .unwrap();
    let err = k.launch_subcluster(other).await.unwrap_err().to_string();
    assert_eq!(err, "no registered kernel service 'repl'");
    assert!(!dir.path().join("mine.sock").exists(), "the refused launch left no channel");
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
    k.stop().await.unwrap();
}

/// A line of exactly `MAX_LINE_BYTES` followed by `\n` is that line only (§6.4: "The text
/// is split on `\n`; each line is delivered without the `\n`"). Failed before the fix: an
/// empty line followed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_of_exactly_the_maximum_length_is_one_line() {
    use ocap_kernel::io::socket::MAX_LINE_BYTES;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("repl.sock");
    let k = make(&dir.path().join("k.sqlite"));
    let r = k.launch_subcluster(echo_cluster(&sock, "inout")).await.unwrap();
    let (mut client, _reader) = connect(&sock);
    let long = "x".repeat(MAX_LINE_BYTES);
    client.write_all(format!("{long}\nnext\n").as_bytes()).unwrap();
    match value(&k, r.root_kref, "read", vec![]).await {
        Ok(Value::String(s)) => assert!(s.len() == MAX_LINE_BYTES && s == long, "first line: {} bytes", s.len()),
        other => panic!("first read: {other:?}"),
    }
    assert_eq!(value(&k, r.root_kref, "read", vec![]).await, Ok(Value::str("next")), "no empty line in between");
    // A longer line is still cut into pieces of the maximum length, with nothing empty after.
    client.write_all(format!("{long}yz\nlast\n").as_bytes()).unwrap();
    match value(&k, r.root_kref, "read", vec![]).await {
        Ok(Value::String(s)) => assert_eq!(s.len(), MAX_LINE_BYTES),
        other => panic!("piece: {other:?}"),
    }
    assert_eq!(value(&k, r.root_kref, "read", vec![]).await, Ok(Value::str("yz")));
    assert_eq!(value(&k, r.root_kref, "read", vec![]).await, Ok(Value::str("last")));
    k.stop().await.unwrap();
}

/// §2.3: `unit` is one of `line`, `string`, `chars`, `bytes`, accepted and ignored by the JS
/// kernel (its socket channel frames by line), so it is accepted here too; anything else,
/// like every type but `socket` (which the JS kernel's Node factory refuses at launch), is
/// refused. Keys are `exactOptional`: present with `null` is refused.
#[test]
fn unsupported_io_types_and_units_are_refused_at_validation() {
    for unit in ["line", "string", "chars", "bytes"] {
        ClusterConfig::from_json(&format!(
            r#"{{"bootstrap":"v","io":{{"x":{{"type":"socket","path":"/tmp/x","unit":"{unit}"}}}},"vats":{{"v":{{"sourceSpec":"a.js"}}}}}}"#
        ))
        .unwrap_or_else(|e| panic!("unit {unit}: {e}"));
    }
    for (io, field) in [
        (r#"{"type":"file","path":"/tmp/x"}"#, "io.x.type"),
        (r#"{"type":"console"}"#, "io.x.type"),
        (r#"{"type":"socket"}"#, "io.x.path"),
        (r#"{"type":"socket","path":"/tmp/x","unit":"words"}"#, "io.x.unit"),
        (r#"{"type":"socket","path":"/tmp/x","unit":null}"#, "io.x.unit"),
        (r#"{"type":"socket","path":"/tmp/x","direction":"sideways"}"#, "io.x.direction"),
        (r#"{"type":"socket","path":"/tmp/x","direction":null}"#, "io.x.direction"),
    ] {
        let err = ClusterConfig::from_json(&format!(
            r#"{{"bootstrap":"v","io":{{"x":{io}}},"vats":{{"v":{{"sourceSpec":"a.js"}}}}}}"#
        ))
        .unwrap_err();
        assert_eq!(err.path, field, "{io}: {err}");
    }
}

/// A stale socket file is replaced; a path a live process listens on is refused, and the
/// refused launch leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_socket_files_are_replaced_and_live_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap()); // file left, nobody listening
    assert!(stale.exists());
    let k = make(&dir.path().join("k.sqlite"));
    k.launch_subcluster(echo_cluster(&stale, "inout")).await.unwrap();
    let (_client, _) = connect(&stale);
    let live = dir.path().join("live.sock");
    let _owner = std::os::unix::net::UnixListener::bind(&live).unwrap();
    let err = k.launch_subcluster(echo_cluster(&live, "inout")).await.unwrap_err().to_string();
    assert!(err.contains("in use by a live process"), "{err}");
    assert!(live.exists(), "the live owner's socket is untouched");
    let status = k.get_status().await.unwrap();
    assert_eq!(status.subclusters.len(), 1);
    k.stop().await.unwrap();
}

/// Issue 11 item 1: a config never touches files that are not ours. Whatever is at a socket
/// path and is not a stale socket (a regular file, a directory, a symlink, even one to a
/// stale socket) is left as it was, and the launch fails naming it; nothing is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_path_naming_anything_but_a_stale_socket_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let k = make(&dir.path().join("k.sqlite"));
    let file = dir.path().join("precious.txt");
    std::fs::write(&file, "keep me").unwrap();
    let subdir = dir.path().join("a-dir");
    std::fs::create_dir(&subdir).unwrap();
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let link_to_file = dir.path().join("link-to-file");
    std::os::unix::fs::symlink(&file, &link_to_file).unwrap();
    let link_to_stale = dir.path().join("link-to-stale");
    std::os::unix::fs::symlink(&stale, &link_to_stale).unwrap();
    for (path, what) in [
        (&file, "a regular file"),
        (&subdir, "a directory"),
        (&link_to_file, "a symbolic link"),
        (&link_to_stale, "a symbolic link"),
    ] {
        let err = k.launch_subcluster(echo_cluster(path, "inout")).await.unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()) && err.contains(what), "{err}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    assert!(subdir.is_dir());
    assert!(std::fs::symlink_metadata(&link_to_file).unwrap().file_type().is_symlink());
    assert!(std::fs::symlink_metadata(&link_to_stale).unwrap().file_type().is_symlink());
    assert!(stale.exists(), "the socket behind the link is not touched either");
    assert!(k.get_status().await.unwrap().subclusters.is_empty());
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
    k.stop().await.unwrap();
}

/// Closing a channel removes its own socket file, never a file that replaced it since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_channel_leaves_a_file_that_replaced_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("echo.sock");
    let k = make(&dir.path().join("k.sqlite"));
    let launched = k.launch_subcluster(echo_cluster(&sock, "inout")).await.unwrap();
    std::fs::remove_file(&sock).unwrap();
    std::fs::write(&sock, "someone else's").unwrap();
    k.terminate_subcluster(&launched.subcluster_id).await.unwrap();
    k.stop().await.unwrap();
    assert_eq!(std::fs::read_to_string(&sock).unwrap(), "someone else's");
}

/// `reset` ends every subcluster, so every channel goes too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_terminates_everything_and_closes_channels() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("repl.sock");
    let k = make(&dir.path().join("k.sqlite"));
    k.launch_subcluster(echo_cluster(&sock, "inout")).await.unwrap();
    let client = UnixStream::connect(&sock).unwrap();
    k.reset().await.unwrap();
    wait_until_closed(&k, &sock, client).await;
    let status = k.get_status().await.unwrap();
    assert!(status.subclusters.is_empty() && status.vats.is_empty());
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
    k.stop().await.unwrap();
}

/// A channel that cannot come back at boot is reported, and calls to it reject cleanly
/// while the kernel and the vat go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_that_fails_to_come_back_rejects_calls_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("repl.sock");
    let db = dir.path().join("k.sqlite");
    let k = make(&db);
    let r = k.launch_subcluster(echo_cluster(&sock, "inout")).await.unwrap();
    k.stop().await.unwrap();
    // Someone else now listens on the path.
    let _squatter = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let k = make(&db);
    assert_eq!(k.io_failures.len(), 1, "{:?}", k.io_failures);
    let err = value(&k, r.root_kref, "read", vec![]).await.unwrap_err();
    assert!(err.contains("IO channel \"repl\" is unavailable") && err.contains("live process"), "{err}");
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
    k.stop().await.unwrap();
}

/// One client at a time (§6.4): a second connection is closed at once, and the first goes
/// on as if nothing happened; once the first has gone, a new client is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_client_is_refused_while_one_is_connected() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("repl.sock");
    let k = make(&dir.path().join("k.sqlite"));
    let r = k.launch_subcluster(echo_cluster(&sock, "inout")).await.unwrap();
    let (mut first, mut first_reader) = connect(&sock);
    // The first client is attached once a line from it arrives.
    first.write_all(b"one\n").unwrap();
    assert_eq!(value(&k, r.root_kref, "read", vec![]).await, Ok(Value::str("one")));
    let (mut second, mut second_reader) = connect(&sock);
    let mut rest = String::new();
    let refused = std::io::Read::read_to_string(&mut second_reader, &mut rest);
    assert!(matches!(refused, Ok(0)) || refused.is_err(), "the second client is disconnected: {refused:?} {rest:?}");
    let _ = second.write_all(b"from the second\n");
    // The first is still the client: its line comes next, and writes go to it.
    first.write_all(b"two\n").unwrap();
    assert_eq!(value(&k, r.root_kref, "read", vec![]).await, Ok(Value::str("two")));
    assert_eq!(value(&k, r.root_kref, "write", vec![Value::str("to the first")]).await, Ok(Value::Undefined));
    assert_eq!(line(&mut first_reader), "to the first");
    // The first goes; a third client is served.
    drop(first);
    drop(first_reader);
    assert_eq!(value(&k, r.root_kref, "read", vec![]).await, Ok(Value::Null), "the first client's EOF");
    let (mut third, mut third_reader) = connect(&sock);
    third.write_all(b"three\n").unwrap();
    assert_eq!(value(&k, r.root_kref, "read", vec![]).await, Ok(Value::str("three")));
    assert_eq!(value(&k, r.root_kref, "write", vec![Value::str("to the third")]).await, Ok(Value::Undefined));
    assert_eq!(line(&mut third_reader), "to the third");
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
    k.stop().await.unwrap();
}

/// The tests' IO vat (bulk reads, and the channel handed out), with a socket channel.
fn reader_cluster(sock: &Path) -> ClusterConfig {
    ClusterConfig::from_json(&format!(
        r#"{{"bootstrap":"r","io":{{"repl":{{"type":"socket","path":{:?}}}}},
            "vats":{{"r":{{"sourceSpec":"../../crates/ocap-cli/tests/vats/io-reader.js"}}}}}}"#,
        sock.to_string_lossy()
    ))
    .unwrap()
}

/// Back-pressure (§6.4 "a fast client is slowed down rather than eating memory"): a client
/// writing far more than `MAX_BUFFERED_LINES` before the vat reads anything loses nothing:
/// every line arrives, in order, and the client's writes complete once the vat has read.
/// (That the client is held back meanwhile is a matter of blocking, which a test cannot
/// observe without timing; the bound itself is what `deliver` in `io/socket.rs` enforces.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_far_ahead_of_the_vat_loses_nothing() {
    use ocap_kernel::io::socket::MAX_BUFFERED_LINES;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("repl.sock");
    let k = make(&dir.path().join("k.sqlite"));
    let r = k.launch_subcluster(reader_cluster(&sock)).await.unwrap();
    let (client, _reader) = connect(&sock);
    // More than the channel buffers, plus more bytes than the socket itself can hold.
    let total = MAX_BUFFERED_LINES + 4_000;
    let pad = "p".repeat(1_000);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        let mut client = client;
        for i in 0..total {
            client.write_all(format!("{i} {pad}\n").as_bytes()).unwrap();
        }
        done_tx.send(()).unwrap();
        client
    });
    let all = value(&k, r.root_kref, "readMany", vec![Value::Number(0.0), Value::Number(total as f64)]).await;
    assert_eq!(all, Ok(Value::Number(total as f64)), "every line, in order");
    done_rx.recv_timeout(HANG_GUARD).expect("the writer finished once the lines were read");
    drop(writer.join().unwrap());
    k.stop().await.unwrap();
}

/// A channel handed out by its vat, called after its subcluster ended and it was closed:
/// the calls are rejected, and the kernel goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_a_closed_channel_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("repl.sock");
    let k = make(&dir.path().join("k.sqlite"));
    let r = k.launch_subcluster(reader_cluster(&sock)).await.unwrap();
    let channel = match value(&k, r.root_kref, "channel", vec![]).await.unwrap() {
        Value::Remotable { slot, .. } => slot,
        other => panic!("not a reference: {other:?}"),
    };
    // The host can use it like the vat can (the client is attached once its line is read).
    let (mut client, mut reader) = connect(&sock);
    client.write_all(b"hello\n").unwrap();
    assert_eq!(value(&k, channel, "read", vec![]).await, Ok(Value::str("hello")));
    assert_eq!(value(&k, channel, "write", vec![Value::str("hi")]).await, Ok(Value::Undefined));
    assert_eq!(line(&mut reader), "hi");
    drop(reader);
    k.terminate_subcluster(&r.subcluster_id).await.unwrap();
    wait_until_closed(&k, &sock, client).await;
    for (method, args) in [("write", vec![Value::str("late")]), ("read", vec![])] {
        let err = value(&k, channel, method, args).await.unwrap_err();
        assert!(err.contains("[KERNEL:"), "{method}: {err}");
    }
    assert_eq!(k.check_invariants().await.unwrap(), Ok(()));
    k.stop().await.unwrap();
}
