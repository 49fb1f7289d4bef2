//! The web globals of vat-side spec §5.3 (`crypto`, `SubtleCrypto`, `fetch`,
//! `Request`, `Headers`, `Response`, `URL`, `URLSearchParams`,
//! `AbortController`, `AbortSignal`): for each, one test with it endowed and
//! one without, in real JS vats (`tests/vats/web-vat.js`). The fetch tests
//! talk only to tiny HTTP servers they start on 127.0.0.1.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ocap_vat::{bundle_vat_source, DeliveryReply, VatWorker, WorkerEvent, WorkerOptions, ALLOWED_GLOBAL_NAMES};
use serde_json::{json, Value};

const WEB_GLOBALS: [&str; 10] = [
    "crypto",
    "SubtleCrypto",
    "fetch",
    "Request",
    "Headers",
    "Response",
    "URL",
    "URLSearchParams",
    "AbortController",
    "AbortSignal",
];

fn web_bundle() -> String {
    static BUNDLE: OnceLock<String> = OnceLock::new();
    BUNDLE
        .get_or_init(|| {
            let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vats/web-vat.js");
            bundle_vat_source(&source).expect("bundling web-vat")
        })
        .clone()
}

/// Only guards against a hang: the waits it bounds end on an event long before.
const HANG_GUARD: Duration = Duration::from_secs(60);

struct WebVat {
    worker: VatWorker,
    events: Receiver<WorkerEvent>,
    next: std::cell::Cell<u32>,
}

impl WebVat {
    /// A web-vat endowed with `globals` (and `network` when given).
    fn start(globals: &[&str], network: Option<Value>) -> WebVat {
        let (tx, events) = mpsc::channel();
        let tx = Mutex::new(tx);
        let worker = VatWorker::spawn(
            WorkerOptions::new("v1", "web"),
            Box::new(move |event| {
                let _ = tx.lock().unwrap().send(event);
            }),
        )
        .expect("spawn");
        let mut config = json!({"bundleSpec": "web-vat.bundle", "globals": globals});
        if let Some(network) = network {
            config["network"] = network;
        }
        let reply = worker.init(config, Some(web_bundle()), vec![]).expect("init");
        assert_eq!(reply.error, None);
        WebVat { worker, events, next: std::cell::Cell::new(1) }
    }

    fn send(&self, method: &str, args: Value) -> (String, DeliveryReply) {
        let n = self.next.get();
        self.next.set(n + 1);
        let vpid = format!("p-{n}");
        let body = format!("#{}", json!([method, args]));
        let reply = self
            .worker
            .deliver(json!(["message", "o+0", {"methargs": {"body": body, "slots": []}, "result": vpid}]))
            .expect("deliver");
        assert_eq!(reply.error, None);
        (vpid, reply)
    }

    /// Call `method` and wait for its result, whether it is resolved inside
    /// the delivery or in a later turn (a fetch outcome).
    fn call(&self, method: &str, args: Value) -> Result<Value, String> {
        let (vpid, reply) = self.send(method, args);
        if let Some(outcome) = resolution(&reply.syscalls, &vpid) {
            return outcome;
        }
        self.wait_for(&vpid, Duration::from_secs(10))
    }

    fn wait_for(&self, vpid: &str, timeout: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(WorkerEvent::AsyncSyscalls { syscalls }) => {
                    if let Some(outcome) = resolution(&syscalls, vpid) {
                        return outcome;
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("{vpid} not resolved within {timeout:?}: {e}"),
            }
        }
    }
}

/// The decoded smallcaps value resolving `vpid`: Ok if fulfilled, Err (the
/// error's message) if rejected.
fn resolution(syscalls: &[Value], vpid: &str) -> Option<Result<Value, String>> {
    for syscall in syscalls.iter().filter(|s| s[0] == "resolve") {
        for r in syscall[1].as_array().unwrap() {
            if r[0] == vpid {
                let body = r[2]["body"].as_str().unwrap();
                let value = unescape(serde_json::from_str(&body[1..]).unwrap());
                return Some(if r[1] == true {
                    Err(value["message"].as_str().map(str::to_string).unwrap_or_else(|| value.to_string()))
                } else {
                    Ok(value)
                });
            }
        }
    }
    None
}

/// Undo smallcaps' escaping of strings that start with a special character.
fn unescape(value: Value) -> Value {
    match value {
        Value::String(s) if s.starts_with('!') => Value::String(s[1..].to_string()),
        Value::Array(items) => Value::Array(items.into_iter().map(unescape).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, unescape(v))).collect()),
        other => other,
    }
}

/// Every other optional global, so that an "absent" test also shows that no
/// other endowment leaks the one left out.
fn all_but(name: &str) -> Vec<&'static str> {
    ALLOWED_GLOBAL_NAMES.iter().copied().filter(|n| *n != name).collect()
}

fn network(hosts: &[&str]) -> Option<Value> {
    Some(json!({"allowedHosts": hosts}))
}

/// Start a vat with every global but `name`, and check that `name` is not
/// there and that using it is a ReferenceError.
fn assert_absent(name: &str, method: &str, args: Value) {
    let vat = WebVat::start(&all_but(name), network(&["127.0.0.1"]));
    let present = vat.call("present", json!([])).unwrap();
    let names: Vec<&str> = present.as_array().unwrap().iter().map(|p| p[0].as_str().unwrap()).collect();
    assert!(!names.contains(&name), "{name} present: {present}");
    assert_eq!(names.len(), WEB_GLOBALS.len() - 1, "{present}");
    // A free identifier missing from a SES compartment's global is
    // `undefined`, so using it is a TypeError.
    let err = vat.call(method, args).unwrap_err();
    assert!(err.contains("\"name\":\"TypeError\""), "{name}: {err}");
}

/// The vat sees exactly `names`, each frozen (hardened).
fn assert_present_and_frozen(vat: &WebVat, names: &[&str]) {
    let present = vat.call("present", json!([])).unwrap();
    let expected: Vec<Value> = names.iter().map(|n| json!([n, true])).collect();
    assert_eq!(present, Value::Array(expected));
}

// ------------------------------------------------------------------ crypto

#[test]
fn crypto_endowed_gives_random_values_and_uuids() {
    let vat = WebVat::start(&["crypto"], None);
    assert_present_and_frozen(&vat, &["crypto"]);
    assert_eq!(
        vat.call("crypto", json!([])).unwrap(),
        json!([true, 4, true, true, "TypeMismatchError", "QuotaExceededError", true])
    );
    // SHA-256("abc"), through crypto.subtle.
    assert_eq!(
        vat.call("digest", json!(["abc"])).unwrap(),
        json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
}

#[test]
fn crypto_absent_without_the_endowment() {
    assert_absent("crypto", "crypto", json!([]));
}

#[test]
fn subtle_crypto_endowed_digests_and_refuses_the_rest() {
    let vat = WebVat::start(&["SubtleCrypto"], None);
    assert_present_and_frozen(&vat, &["SubtleCrypto"]);
    assert_eq!(
        vat.call("subtleCrypto", json!([])).unwrap(),
        json!([
            "function",
            "TypeError: Illegal constructor",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "NotSupportedError",
            true
        ])
    );
}

#[test]
fn subtle_crypto_absent_without_the_endowment() {
    assert_absent("SubtleCrypto", "subtleCrypto", json!([]));
}

// ------------------------------------------------------------------ URL

#[test]
fn url_endowed_parses_and_resolves() {
    let vat = WebVat::start(&["URL"], None);
    assert_present_and_frozen(&vat, &["URL"]);
    assert_eq!(
        vat.call("url", json!(["../b?x=1#frag", "https://Example.COM:8443/a/c"])).unwrap(),
        json!([
            "https://example.com:8443/b?x=1&added=yes#frag",
            "example.com",
            "8443",
            "/b",
            "?x=1&added=yes",
            "#frag"
        ])
    );
    assert_eq!(
        vat.call("url", json!(["http://127.0.0.1:80/p q"])).unwrap(),
        json!(["http://127.0.0.1/p%20q?added=yes", "127.0.0.1", "", "/p%20q", "?added=yes", ""])
    );
    let err = vat.call("url", json!(["not a url"])).unwrap_err();
    assert!(err.contains("\"name\":\"TypeError\""), "{err}");
}

#[test]
fn url_absent_without_the_endowment() {
    assert_absent("URL", "url", json!(["https://example.com/"]));
}

#[test]
fn url_search_params_endowed() {
    let vat = WebVat::start(&["URLSearchParams"], None);
    assert_present_and_frozen(&vat, &["URLSearchParams"]);
    assert_eq!(
        vat.call("searchParams", json!(["?b=2&a=1&b=3%204"])).unwrap(),
        json!(["a=1&b=2&b=3+4&z=last+%26+first", "1", ["2", "3 4"], ["a", "b", "b", "z"]])
    );
}

#[test]
fn url_search_params_absent_without_the_endowment() {
    assert_absent("URLSearchParams", "searchParams", json!(["a=1"]));
}

// ------------------------------------------------------------------ abort

#[test]
fn abort_controller_endowed() {
    let vat = WebVat::start(&["AbortController", "AbortSignal"], None);
    assert_present_and_frozen(&vat, &["AbortController", "AbortSignal"]);
    assert_eq!(vat.call("abort", json!([])).unwrap(), json!([false, true, "because", ["abort"], true, "AbortError"]));
}

#[test]
fn abort_controller_absent_without_the_endowment() {
    assert_absent("AbortController", "abort", json!([]));
}

#[test]
fn abort_signal_endowed() {
    let vat = WebVat::start(&["AbortSignal"], None);
    assert_present_and_frozen(&vat, &["AbortSignal"]);
    assert_eq!(vat.call("abortSignal", json!([])).unwrap(), json!([true, "done", "TypeError"]));
}

#[test]
fn abort_signal_absent_without_the_endowment() {
    assert_absent("AbortSignal", "abortSignal", json!([]));
}

// ------------------------------------------------------------------ fetch classes

#[test]
fn headers_endowed() {
    let vat = WebVat::start(&["Headers"], None);
    assert_present_and_frozen(&vat, &["Headers"]);
    assert_eq!(
        vat.call("headers", json!([])).unwrap(),
        json!(["1, 2", true, [["b", "b"], ["x-one", "1, 2"]], "TypeError"])
    );
}

#[test]
fn headers_absent_without_the_endowment() {
    assert_absent("Headers", "headers", json!([]));
}

#[test]
fn request_endowed() {
    let vat = WebVat::start(&["Request"], None);
    assert_present_and_frozen(&vat, &["Request"]);
    assert_eq!(
        vat.call("request", json!(["https://example.com/x"])).unwrap(),
        json!(["POST", "https://example.com/x", "text/plain;charset=UTF-8", "hi there", true, "hi there", "TypeError"])
    );
}

#[test]
fn request_absent_without_the_endowment() {
    assert_absent("Request", "request", json!(["https://example.com/x"]));
}

#[test]
fn response_endowed() {
    let vat = WebVat::start(&["Response"], None);
    assert_present_and_frozen(&vat, &["Response"]);
    assert_eq!(
        vat.call("response", json!([])).unwrap(),
        json!([201, true, "Created", {"a": 1}, "{\"b\":[2]}", "application/json", "error"])
    );
}

#[test]
fn response_absent_without_the_endowment() {
    assert_absent("Response", "response", json!([]));
}

// ------------------------------------------------------------------ fetch

/// A one-shot HTTP server on 127.0.0.1: answers one connection per canned
/// response, in order, and reports each raw request.
struct Server {
    port: u16,
    requests: Receiver<String>,
    _thread: JoinHandle<()>,
}

fn read_request(stream: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse::<usize>().unwrap())
                .unwrap_or(0);
            while data.len() < end + 4 + length {
                let n = stream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&buf[..n]);
            }
            break;
        }
    }
    String::from_utf8_lossy(&data).into_owned()
}

fn serve(responses: Vec<String>) -> Server {
    serve_with_delay(responses, Duration::ZERO)
}

fn serve_with_delay(responses: Vec<String>, delay: Duration) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, requests) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        for response in responses {
            let Ok((mut stream, _)) = listener.accept() else { return };
            let request = read_request(&mut stream);
            let _ = tx.send(request);
            std::thread::sleep(delay);
            let response = response.replace("{port}", &port.to_string());
            let _ = stream.write_all(response.as_bytes());
        }
    });
    Server { port, requests, _thread: thread }
}

fn ok_response(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Test: yes\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn fetch_endowed_reaches_an_allowed_host_as_a_later_turn() {
    // The server answers only when the test says so.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (gate, gate_rx) = mpsc::channel::<()>();
    let (requests_tx, requests) = mpsc::channel();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        requests_tx.send(read_request(&mut stream)).unwrap();
        gate_rx.recv().unwrap();
        stream.write_all(ok_response("héllo").as_bytes()).unwrap();
    });
    let vat = WebVat::start(&["fetch"], network(&["127.0.0.1"]));
    assert_present_and_frozen(&vat, &["fetch"]);
    let url = format!("http://127.0.0.1:{port}/path?q=1");
    // The delivery ends while the server has not answered: fetch never
    // blocks a delivery...
    let (vpid, reply) = vat.send("fetchText", json!([url]));
    assert_eq!(resolution(&reply.syscalls, &vpid), None);
    let request = requests.recv_timeout(Duration::from_secs(10)).unwrap();
    // ... and the vat serves other deliveries meanwhile.
    assert_eq!(vat.call("ping", json!([])).unwrap(), json!("pong"));
    gate.send(()).unwrap();
    // The response arrives as its own turn: AsyncSyscalls.
    assert_eq!(
        vat.wait_for(&vpid, Duration::from_secs(10)).unwrap(),
        json!([200, "OK", true, "héllo", "yes", url, false])
    );
    server.join().unwrap();
    assert!(request.starts_with("GET /path?q=1 HTTP/1.1\r\n"), "{request}");
    let lower = request.to_ascii_lowercase();
    assert!(lower.contains("\r\nx-req: r\r\n"), "{request}");
    assert!(lower.contains(&format!("\r\nhost: 127.0.0.1:{port}\r\n")), "{request}");
    assert!(!lower.contains("evil.example"), "{request}");
}

#[test]
fn fetch_absent_without_the_endowment() {
    let vat = WebVat::start(&all_but("fetch"), None);
    let present = vat.call("present", json!([])).unwrap();
    assert!(!present.to_string().contains("\"fetch\""), "{present}");
    let err = vat.call("fetchText", json!(["http://127.0.0.1:1/"])).unwrap_err();
    assert!(err.contains("not a function"), "{err}");
    // The other fetch classes do not need fetch (nor the network caveat).
    assert_eq!(vat.call("fetchClasses", json!([])).unwrap(), json!(["undefined", "function", "function", "function"]));
}

#[test]
fn fetch_posts_a_body_and_reads_binary_responses() {
    let body = "\u{0}\u{1}\u{ff}";
    let server = serve(vec![format!(
        "HTTP/1.1 201 Created\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )]);
    let vat = WebVat::start(&["fetch"], network(&["127.0.0.1"]));
    let url = format!("http://127.0.0.1:{}/upload", server.port);
    assert_eq!(vat.call("fetchPost", json!([url, "payload é"])).unwrap(), json!([201, "0001c3bf"]));
    let request = server.requests.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(request.starts_with("POST /upload HTTP/1.1\r\n"), "{request}");
    assert!(request.ends_with("\r\n\r\npayload é"), "{request}");
}

#[test]
fn fetch_allowed_hosts_match_exactly_and_file_urls_are_refused() {
    let vat = WebVat::start(&["fetch"], network(&["127.0.0.1", "LOCALHOST"]));
    assert_eq!(
        vat.call("fetchError", json!(["http://localhost:9/"])).unwrap(),
        json!("Error: Invalid host: localhost")
    );
    // URL parsing lower-cases hostnames; the list is matched case-sensitively.
    assert_eq!(
        vat.call("fetchError", json!(["http://LOCALHOST:9/"])).unwrap(),
        json!("Error: Invalid host: localhost")
    );
    assert_eq!(
        vat.call("fetchError", json!(["file:///etc/passwd"])).unwrap(),
        json!("Error: fetch cannot target file:// URLs. Use the fs platform capability (VatConfig.platformConfig.fs) for filesystem access.")
    );
    // Ports are ignored: 127.0.0.1 on a closed port is allowed, and fails
    // only as a network error.
    let refused = vat.call("fetchError", json!(["http://127.0.0.1:1/"])).unwrap();
    assert!(refused.as_str().unwrap().starts_with("TypeError: fetch failed: "), "{refused}");

    let worker = VatWorker::spawn(WorkerOptions::new("v9", "web"), Box::new(|_| {})).unwrap();
    let config = json!({"bundleSpec": "x", "globals": ["fetch"], "network": {"allowedHosts": "127.0.0.1"}});
    let err = worker.init(config, Some(web_bundle()), vec![]).unwrap_err();
    assert!(err.to_string().contains("network.allowedHosts must be an array of host names"), "{err}");

    let vat = WebVat::start(&["fetch"], network(&[]));
    assert_eq!(
        vat.call("fetchError", json!(["http://127.0.0.1:9/"])).unwrap(),
        json!("Error: Invalid host: 127.0.0.1")
    );
}

#[test]
fn fetch_follows_redirects_only_to_allowed_hosts() {
    let server = serve(vec![
        "HTTP/1.1 302 Found\r\nLocation: /final\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
        ok_response("landed"),
        "HTTP/1.1 302 Found\r\nLocation: http://localhost:{port}/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_string(),
    ]);
    let vat = WebVat::start(&["fetch"], network(&["127.0.0.1"]));
    let url = format!("http://127.0.0.1:{}/start", server.port);
    assert_eq!(
        vat.call("fetchText", json!([url])).unwrap(),
        json!([200, "OK", true, "landed", "yes", format!("http://127.0.0.1:{}/final", server.port), true])
    );
    assert_eq!(
        vat.call("fetchError", json!([url])).unwrap(),
        json!("TypeError: fetch failed: Invalid host: localhost")
    );
}

#[test]
fn fetch_is_aborted_by_an_abort_signal() {
    let server = serve_with_delay(vec![ok_response("late")], Duration::from_millis(200));
    let vat = WebVat::start(&["fetch", "AbortController"], network(&["127.0.0.1"]));
    let url = format!("http://127.0.0.1:{}/", server.port);
    assert_eq!(vat.call("fetchAborted", json!([url])).unwrap(), json!("AbortError: This operation was aborted"));
}

#[test]
fn terminating_the_vat_aborts_its_fetches() {
    // The server sends the head and part of a long body, then keeps sending
    // until the client goes away.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sent_tx, sent_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        read_request(&mut stream);
        stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n").unwrap();
        stream.write_all(&[b'x'; 1000]).unwrap();
        sent_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        // Keep sending, a trickle (so that a reader blocked on the body wakes up and sees it
        // was aborted, and so that the body limit is never what ends the fetch), until the
        // client's end is closed. The deadline only guards against a hang.
        stream.set_write_timeout(Some(HANG_GUARD)).unwrap();
        let started = Instant::now();
        while started.elapsed() < HANG_GUARD {
            if let Err(e) = stream.write_all(&[b'y'; 64]) {
                return Some(e.kind());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    });
    let vat = WebVat::start(&["fetch"], network(&["127.0.0.1"]));
    let (vpid, reply) = vat.send("fetchForever", json!([format!("http://127.0.0.1:{port}/")]));
    assert_eq!(resolution(&reply.syscalls, &vpid), None);
    sent_rx.recv_timeout(HANG_GUARD).unwrap();
    let WebVat { worker, events, .. } = vat;
    // Terminating does not wait for the fetch: the server sends nothing more until it
    // returns (a terminate that waited for the body would hang here).
    let (done_tx, done_rx) = mpsc::channel();
    let terminating = std::thread::spawn(move || {
        worker.terminate();
        let _ = done_tx.send(());
    });
    done_rx.recv_timeout(HANG_GUARD).expect("terminate returned while the fetch was still open");
    terminating.join().unwrap();
    go_tx.send(()).unwrap();
    let closed = server.join().unwrap();
    assert!(
        matches!(closed, Some(std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset)),
        "the fetch kept its connection open after the vat was terminated: {closed:?}"
    );
    // Nothing of the fetch reached the kernel.
    assert!(!events.try_iter().any(|e| matches!(e, WorkerEvent::AsyncSyscalls { .. })));
}

#[test]
fn all_twenty_globals_can_be_endowed_together_and_each_is_hardened() {
    let vat = WebVat::start(&ALLOWED_GLOBAL_NAMES, network(&["127.0.0.1"]));
    assert_present_and_frozen(&vat, &WEB_GLOBALS);
    assert_eq!(vat.call("abort", json!([])).unwrap()[1], json!(true));
    assert_eq!(vat.call("headers", json!([])).unwrap()[0], json!("1, 2"));
}

#[test]
fn prototypes_reachable_from_an_endowment_are_hardened() {
    for name in ["crypto", "Response", "URL", "AbortController"] {
        let vat = WebVat::start(&[name], None);
        assert_eq!(vat.call("reachableFrozen", json!([name])).unwrap(), json!(true), "{name}");
    }
}
