//! The transport of the `fetch` endowment: a blocking HTTP(S) client (ureq)
//! run on its own OS thread per request, never on the vat thread.
//!
//! The vat thread starts a request with [`spawn_fetch`] and goes on; the
//! outcome is handed to `done` (which queues it for the vat thread, where it
//! settles the JS promise as a later turn). Redirects are followed here, not
//! by ureq, so that the host caveat (`network.allowedHosts`, exact and
//! case-sensitive hostname match, no `file:`) is checked on every hop.
//!
//! Aborting (JS `AbortSignal`, or the vat's teardown) sets the request's
//! flag: its outcome is dropped, and a body being read is abandoned at the
//! next chunk, which closes the connection. A request still waiting for a
//! server's first bytes keeps its thread until the read timeout.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

/// Upper bound on a response body held in memory.
pub(crate) const MAX_FETCH_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Redirect hops followed before giving up (the Fetch standard's 20).
const MAX_REDIRECTS: usize = 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle time allowed between two reads (or writes) on a connection.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
const CHUNK_BYTES: usize = 16 * 1024;

const FILE_MESSAGE: &str = "fetch cannot target file:// URLs. Use the fs platform capability (VatConfig.platformConfig.fs) for filesystem access.";

/// What the JS side asks for (`host.fetchStart`'s JSON).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FetchSpec {
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default = "follow")]
    pub redirect: String,
    pub allowed_hosts: Vec<String>,
}

fn follow() -> String {
    "follow".into()
}

/// A response, body fully read.
#[derive(Debug, Clone)]
pub(crate) struct FetchResponse {
    pub status: u16,
    pub status_text: String,
    pub headers: Vec<(String, String)>,
    pub url: String,
    pub redirected: bool,
    pub body: Vec<u8>,
}

impl FetchResponse {
    /// The JSON `fetchSettled` takes (the body goes as an ArrayBuffer).
    pub(crate) fn outcome_json(&self) -> String {
        serde_json::json!({
            "ok": true,
            "status": self.status,
            "statusText": self.status_text,
            "headers": self.headers,
            "url": self.url,
            "redirected": self.redirected,
        })
        .to_string()
    }
}

/// Run `spec` on a new thread; `done` gets the outcome unless `abort` was
/// raised first.
/// `live` counts the running fetch threads (incremented here, decremented
/// when the thread ends).
pub(crate) fn spawn_fetch(
    spec: FetchSpec,
    body: Option<Vec<u8>>,
    abort: Arc<AtomicBool>,
    live: Arc<AtomicUsize>,
    done: impl FnOnce(Result<FetchResponse, String>) + Send + 'static,
) -> std::io::Result<()> {
    struct Live(Arc<AtomicUsize>);
    impl Drop for Live {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    live.fetch_add(1, Ordering::SeqCst);
    let guard = Live(live);
    std::thread::Builder::new().name("vat-fetch".into()).spawn(move || {
        let _live = guard;
        let outcome = perform(spec, body, &abort);
        if !abort.load(Ordering::SeqCst) {
            done(outcome);
        }
    })?;
    Ok(())
}

/// Request headers the transport sets itself; a vat's values are ignored
/// (as browsers do). `host` in particular must follow the URL, which is
/// what the host caveat checked.
const TRANSPORT_HEADERS: [&str; 9] =
    ["host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer", "expect"];

fn usable_header(name: &str, value: &str) -> bool {
    let bad = |s: &str| s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0);
    !name.is_empty() && !bad(name) && !bad(value) && !TRANSPORT_HEADERS.contains(&name.to_ascii_lowercase().as_str())
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::AgentBuilder::new()
            .redirects(0)
            .timeout_connect(CONNECT_TIMEOUT)
            .timeout_read(IO_TIMEOUT)
            .timeout_write(IO_TIMEOUT)
            .user_agent(concat!("ocap-vat/", env!("CARGO_PKG_VERSION")))
            .build()
    })
}

/// The host caveat, as the JS side applies it, plus the schemes we speak.
pub(crate) fn check_url(url: &Url, allowed_hosts: &[String]) -> Result<(), String> {
    if url.scheme() == "file" {
        return Err(FILE_MESSAGE.into());
    }
    let host = url.host_str().unwrap_or("");
    if !allowed_hosts.iter().any(|h| h == host) {
        return Err(format!("Invalid host: {host}"));
    }
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!("unsupported URL scheme \"{}:\" (only http: and https:)", url.scheme()));
    }
    Ok(())
}

fn perform(spec: FetchSpec, mut body: Option<Vec<u8>>, abort: &AtomicBool) -> Result<FetchResponse, String> {
    let mut url = Url::parse(&spec.url).map_err(|e| format!("invalid URL {:?}: {e}", spec.url))?;
    let mut method = spec.method.clone();
    let mut headers: Vec<(String, String)> =
        spec.headers.iter().filter(|(n, v)| usable_header(n, v)).cloned().collect();
    let mut redirected = false;
    for _hop in 0..=MAX_REDIRECTS {
        check_url(&url, &spec.allowed_hosts)?;
        let mut request = agent().request_url(&method, &url);
        for (name, value) in &headers {
            request = request.set(name, value);
        }
        let sent = match &body {
            Some(bytes) => request.send_bytes(bytes),
            None => request.call(),
        };
        let response = match sent {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(e)) => return Err(e.to_string()),
        };
        if abort.load(Ordering::SeqCst) {
            return Err("aborted".into());
        }
        let status = response.status();
        let location = response.header("location").map(str::to_string);
        if matches!(status, 301 | 302 | 303 | 307 | 308) && spec.redirect != "manual" {
            if let Some(location) = location {
                if spec.redirect == "error" {
                    return Err(format!("redirect to {location} with redirect mode \"error\""));
                }
                let next = url.join(&location).map_err(|e| format!("bad redirect location {location:?}: {e}"))?;
                if (status == 303 && method != "HEAD") || (matches!(status, 301 | 302) && method == "POST") {
                    method = "GET".into();
                    body = None;
                    headers.retain(|(name, _)| {
                        !matches!(
                            name.to_ascii_lowercase().as_str(),
                            "content-type" | "content-encoding" | "content-language" | "content-location"
                        )
                    });
                }
                // Drop the response unread: its connection is not reused.
                drop(response);
                url = next;
                redirected = true;
                continue;
            }
        }
        let status_text = response.status_text().to_string();
        let mut out_headers = Vec::new();
        for name in response.headers_names() {
            for value in response.all(&name) {
                out_headers.push((name.clone(), value.to_string()));
            }
        }
        let body = read_body(response.into_reader(), abort)?;
        return Ok(FetchResponse { status, status_text, headers: out_headers, url: url.to_string(), redirected, body });
    }
    Err(format!("too many redirects (more than {MAX_REDIRECTS})"))
}

/// Read a body in chunks, stopping (and so closing the connection) as soon
/// as the request is aborted.
fn read_body(mut reader: impl Read, abort: &AtomicBool) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut chunk = vec![0u8; CHUNK_BYTES];
    loop {
        if abort.load(Ordering::SeqCst) {
            return Err("aborted".into());
        }
        let n = match reader.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("reading the response body: {e}")),
        };
        if n == 0 {
            return Ok(body);
        }
        if body.len() + n > MAX_FETCH_BODY_BYTES {
            return Err(format!("response body larger than {MAX_FETCH_BODY_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caveat_matches_hostnames_exactly_and_refuses_file() {
        let hosts = vec!["127.0.0.1".to_string(), "Example.com".to_string()];
        assert!(check_url(&Url::parse("http://127.0.0.1:8080/x").unwrap(), &hosts).is_ok());
        assert_eq!(
            check_url(&Url::parse("http://localhost/").unwrap(), &hosts).unwrap_err(),
            "Invalid host: localhost"
        );
        // URL parsing lower-cases the hostname; the list is matched as is.
        assert_eq!(
            check_url(&Url::parse("https://Example.com/").unwrap(), &hosts).unwrap_err(),
            "Invalid host: example.com"
        );
        assert_eq!(check_url(&Url::parse("file:///etc/passwd").unwrap(), &hosts).unwrap_err(), FILE_MESSAGE);
    }

    #[test]
    fn transport_headers_and_broken_values_are_dropped() {
        assert!(usable_header("x-a", "1"));
        assert!(!usable_header("Host", "evil.example"));
        assert!(!usable_header("content-length", "3"));
        assert!(!usable_header("x-a", "1\r\nx-b: 2"));
        assert!(!usable_header("", "1"));
    }
}
