//! The web control panel (`src/panel`), through the real binary and a real daemon: the URL
//! `ocap panel` prints, the token-then-cookie access, the refusals (401 without it, 403
//! without the custom header on a POST), `/api/call` answering what the socket answers, the
//! embedded assets, loopback-only binding; and, where Debian's chromium and chromedriver are
//! installed, the page itself in a headless browser: the overview and its actions, and the
//! Messages, Database, Objects and Trace pages, the launch form (a launch, a refused field, a
//! file) and the capability graph (a screenshot of each under the cargo target's tmp); and
//! `/api/trace`, the crank trace's event stream.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value as Json};

mod common;
use common::Home;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo/cluster.json")
}

/// An HTTP client that reports redirects instead of following them.
fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().redirects(0).timeout(Duration::from_secs(30)).build()
}

/// The status and response of a request, 4xx and 5xx included.
fn send(req: ureq::Request, body: Option<&str>) -> (u16, ureq::Response) {
    let r = match body {
        Some(b) => req.send_string(b),
        None => req.call(),
    };
    match r {
        Ok(resp) => (resp.status(), resp),
        Err(ureq::Error::Status(code, resp)) => (code, resp),
        Err(e) => panic!("request failed: {e}"),
    }
}

/// `http://127.0.0.1:PORT` and the token, from the URL `ocap panel` printed.
fn split_url(url: &str) -> (String, String) {
    let (base, token) = url.split_once("/?token=").unwrap_or_else(|| panic!("not a panel URL: {url}"));
    (base.to_owned(), token.to_owned())
}

/// The panel as a client with its cookie sees it.
struct Panel {
    base: String,
    cookie: String,
}

impl Panel {
    fn get(&self, path: &str) -> (u16, ureq::Response) {
        send(agent().get(&format!("{}{path}", self.base)).set("Cookie", &self.cookie), None)
    }

    /// `POST /api/call` with the cookie and the custom header; the answer's body.
    fn call(&self, method: &str, params: Json) -> Json {
        let req = agent()
            .post(&format!("{}/api/call", self.base))
            .set("Cookie", &self.cookie)
            .set("X-Ocap-Panel", "1")
            .set("Content-Type", "application/json");
        let (status, resp) = send(req, Some(&json!({"method": method, "params": params}).to_string()));
        assert_eq!(status, 200, "{method}");
        resp.into_json().expect("a JSON answer")
    }
}

/// Opens the URL with the token: checks the cookie and redirect, returns the cookie.
fn open(url: &str) -> Panel {
    let (base, _) = split_url(url);
    let (status, resp) = send(agent().get(url), None);
    assert_eq!(status, 303, "the token is exchanged for a cookie");
    assert_eq!(resp.header("Location"), Some("/"), "redirected to the URL without the token");
    assert!(resp.header("Access-Control-Allow-Origin").is_none(), "no CORS");
    let set_cookie = resp.header("Set-Cookie").expect("a cookie").to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().expect("name=value").to_owned();
    Panel { base, cookie }
}

#[test]
fn the_printed_url_opens_the_panel_and_nothing_else_does() {
    let home = Home::new();
    home.ok_json(&["launch", demo().to_str().expect("utf-8 path")]);

    // The daemon runs (launch started it) without a panel: `ocap panel` starts one in it.
    let url = home.ok(&["panel"]).trim().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let (base, token) = split_url(&url);
    assert_eq!(token.len(), 64, "256 bits, in hex: {token}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    assert_eq!(home.ok(&["panel"]).trim(), url, "a second `ocap panel` prints the same panel");

    let file = home.path().join("panel.json");
    let mode = std::fs::metadata(&file).expect("panel.json").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "panel.json holds the token");
    let recorded: Json = serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("JSON");
    assert_eq!(recorded["url"], url.as_str());

    // Without the token or the cookie: 401, for every path and method.
    for path in ["/", "/assets/panel.js", "/nope"] {
        let (status, resp) = send(agent().get(&format!("{base}{path}")), None);
        assert_eq!(status, 401, "{path}");
        assert!(resp.header("Access-Control-Allow-Origin").is_none());
    }
    let anonymous = agent().post(&format!("{base}/api/call")).set("X-Ocap-Panel", "1");
    assert_eq!(send(anonymous, Some(r#"{"method":"getStatus"}"#)).0, 401);
    let wrong = format!("{base}/?token={}", "0".repeat(64));
    assert_eq!(send(agent().get(&wrong), None).0, 401, "a wrong token");
    let forged = agent().get(&format!("{base}/")).set("Cookie", &format!("ocap_panel_1={token}"));
    assert_eq!(send(forged, None).0, 401, "the token in another name's cookie");

    let panel = open(&url);
    assert!(panel.cookie.ends_with(&token));

    // The page and its assets, with their content types.
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/assets/panel.css", "text/css; charset=utf-8"),
        ("/assets/panel.js", "text/javascript; charset=utf-8"),
    ] {
        let (status, resp) = panel.get(path);
        assert_eq!(status, 200, "{path}");
        assert_eq!(resp.header("Content-Type"), Some(content_type), "{path}");
        assert_eq!(resp.header("X-Content-Type-Options"), Some("nosniff"));
        assert!(resp.header("Access-Control-Allow-Origin").is_none());
        let body = resp.into_string().expect("body");
        assert!(!body.is_empty());
        if path == "/" {
            assert!(body.contains("/assets/panel.js") && !body.contains("https://"), "local assets only");
        }
    }
    assert_eq!(panel.get("/assets/nope.js").0, 404);

    // One method table: /api/call answers what the socket answers.
    let over_http = panel.call("getStatus", json!([]));
    let over_socket = home.rpc("getStatus", json!([]));
    for key in ["vats", "subclusters", "vatRoots", "services", "remoteComms", "notRunning"] {
        assert_eq!(over_http["result"][key], over_socket["result"][key], "{key}");
    }
    assert_eq!(over_http["result"]["vats"].as_array().map(Vec::len), Some(3));
    let counter = over_http["result"]["vatRoots"]["v3"].as_str().expect("the counter's root").to_owned();
    let unknown = panel.call("noSuchMethod", json!([]));
    assert_eq!(unknown["error"]["code"], -32601, "{unknown}");
    let bad = panel.call("restartVat", json!({"id": "v99"}));
    assert_eq!(bad["error"]["code"], -32001, "{bad}");

    // A POST without the custom header is refused, cookie or not.
    let no_header = agent()
        .post(&format!("{base}/api/call"))
        .set("Cookie", &panel.cookie)
        .set("Origin", "https://evil.example")
        .set("Content-Type", "application/x-www-form-urlencoded");
    assert_eq!(send(no_header, Some(r#"{"method":"restartVat","params":{"id":"v1"}}"#)).0, 403);
    // A bearer token works instead of the cookie.
    let bearer = agent()
        .post(&format!("{base}/api/call"))
        .set("Authorization", &format!("Bearer {token}"))
        .set("X-Ocap-Panel", "1");
    let (status, resp) = send(bearer, Some(r#"{"method":"ping"}"#));
    assert_eq!(status, 200);
    assert_eq!(resp.into_json::<Json>().expect("JSON")["result"], "pong");

    // Bodies: not JSON is a parse error; more than the socket's 1 MiB is refused.
    let req = agent().post(&format!("{base}/api/call")).set("Cookie", &panel.cookie).set("X-Ocap-Panel", "1");
    let (status, resp) = send(req.clone(), Some("{not json"));
    assert_eq!(status, 400);
    assert_eq!(resp.into_json::<Json>().expect("JSON")["error"]["code"], -32700);
    let huge = format!(r#"{{"method":"ping","params":["{}"]}}"#, "x".repeat(1024 * 1024));
    let (status, resp) = send(req, Some(&huge));
    assert_eq!(status, 413);
    assert_eq!(resp.into_json::<Json>().expect("JSON")["error"]["code"], -32600);

    // A vat restarted through the panel comes back, and its object still answers.
    assert_eq!(panel.call("restartVat", json!({"id": "v3"})), json!({"result": null}));
    assert_eq!(panel.call("pingVat", json!({"id": "v3"})), json!({"result": "pong"}));
    let sent = panel.call("queueMessage", json!([counter, "increment", []]));
    assert!(sent["result"]["body"].as_str().is_some_and(|b| b.contains('4')), "{sent}");
}

/// Server-Sent Events read off a response: `(event, data)`, one at a time.
struct Events {
    lines: std::io::Lines<std::io::BufReader<Box<dyn std::io::Read + Send + Sync>>>,
}

impl Events {
    fn new(resp: ureq::Response) -> Events {
        use std::io::BufRead;
        Events { lines: std::io::BufReader::new(resp.into_reader()).lines() }
    }

    /// The next event with a name (comments, such as keep-alives, are skipped).
    fn next(&mut self) -> (String, String) {
        let (mut event, mut data) = (String::new(), String::new());
        for line in self.lines.by_ref() {
            let line = line.expect("the event stream");
            if line.is_empty() {
                if !event.is_empty() {
                    return (event, data);
                }
                continue;
            }
            if let Some(v) = line.strip_prefix("event:") {
                event = v.trim_start().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
        panic!("the event stream ended");
    }
}

#[test]
fn api_trace_streams_cranks_to_an_authorized_client_only() {
    let home = Home::new();
    home.ok_json(&["launch", demo().to_str().expect("utf-8 path")]);
    let url = home.ok(&["panel"]).trim().to_owned();
    let (base, token) = split_url(&url);
    let counter = home.rpc("getStatus", json!([]))["result"]["vatRoots"]["v3"].as_str().expect("a root").to_owned();

    // Without the cookie or the token: 401, as everywhere.
    let (status, resp) = send(agent().get(&format!("{base}/api/trace")), None);
    assert_eq!(status, 401);
    assert!(resp.header("Content-Type").is_some_and(|t| t.starts_with("text/plain")));
    let wrong = agent().get(&format!("{base}/api/trace")).set("Authorization", &format!("Bearer {}", "0".repeat(64)));
    assert_eq!(send(wrong, None).0, 401);

    // With the bearer token: an event stream, which says hello once subscribed…
    let req = agent().get(&format!("{base}/api/trace")).set("Authorization", &format!("Bearer {token}"));
    let (status, resp) = send(req, None);
    assert_eq!(status, 200);
    assert_eq!(resp.header("Content-Type"), Some("text/event-stream"));
    assert_eq!(resp.header("Cache-Control"), Some("no-store"));
    let mut events = Events::new(resp);
    assert_eq!(events.next().0, "hello");

    // …then shows the crank of a message `ocap send` queues: to the counter's vat, which
    // resolves the result and commits.
    home.ok(&["send", &counter, "increment"]);
    let crank = loop {
        let (event, data) = events.next();
        assert_ne!(event, "lagged", "{data}");
        if event != "crank" {
            continue;
        }
        let crank: Json = serde_json::from_str(&data).expect("a crank as JSON");
        if crank["work"]["kind"] == "send" && crank["work"]["method"] == "increment" {
            break crank;
        }
    };
    assert_eq!(crank["work"]["target"], counter.as_str(), "{crank}");
    assert_eq!(crank["endpoint"], "v3", "{crank}");
    assert_eq!(crank["outcome"]["kind"], "commit", "{crank}");
    assert!(crank["crank"].as_u64().is_some_and(|n| n > 0) && crank["durationUs"].is_u64(), "{crank}");
    let syscalls = crank["syscalls"].as_array().expect("syscalls");
    assert!(syscalls.iter().any(|s| s["name"] == "resolve"), "{crank}");
}

/// A daemon's listening TCP sockets on `port`, as `/proc/net/tcp{,6}` lists them: local
/// addresses in the kernel's hex form (`0100007F` is 127.0.0.1).
fn listening_addresses(port: u16) -> Vec<String> {
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else { continue };
            let Some((addr, p)) = local.split_once(':') else { continue };
            if *state == "0A" && u16::from_str_radix(p, 16).ok() == Some(port) {
                out.push(addr.to_owned());
            }
        }
    }
    out
}

#[test]
fn daemon_start_panel_binds_loopback_and_stop_removes_it() {
    let home = Home::new();
    let started = home.ok_json(&["daemon", "start", "--panel"]);
    assert_eq!(started["started"], true);
    let url = started["panel"].as_str().expect("start --panel prints the URL").to_owned();
    let (base, _) = split_url(&url);
    let port: u16 = base.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
    assert_eq!(listening_addresses(port), vec!["0100007F".to_owned()], "only 127.0.0.1 listens on {port}");
    let panel = open(&url);
    assert_eq!(panel.call("ping", json!([])), json!({"result": "pong"}));
    // `ocap panel` finds the same one.
    assert_eq!(home.ok(&["panel"]).trim(), url);

    home.ok(&["daemon", "stop"]);
    assert!(!home.path().join("panel.json").exists(), "panel.json goes with the daemon");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "the panel stopped with the daemon");
}

/// A chromedriver process, killed when the test ends.
struct Driver {
    child: std::process::Child,
    base: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    /// Starts chromedriver on a free loopback port and waits until it is ready.
    fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let child = std::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Driver { child, base: format!("http://127.0.0.1:{port}") };
        for _ in 0..100 {
            if let Ok(resp) = agent().get(&format!("{}/status", driver.base)).call() {
                let status: Json = resp.into_json().expect("JSON");
                if status["value"]["ready"] == true {
                    return driver;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("chromedriver did not become ready");
    }

    /// A WebDriver command; its `value`.
    fn cmd(&self, method: &str, path: &str, body: Option<Json>) -> Json {
        let req = agent().request(method, &format!("{}{path}", self.base));
        let body = body.map(|b| b.to_string());
        let (status, resp) = send(req.set("Content-Type", "application/json"), body.as_deref());
        let answer: Json = resp.into_json().expect("a JSON answer from chromedriver");
        assert_eq!(status, 200, "{method} {path}: {answer}");
        answer["value"].clone()
    }
}

/// A headless chromium session.
struct Browser<'a> {
    driver: &'a Driver,
    session: String,
}

impl Drop for Browser<'_> {
    fn drop(&mut self) {
        let path = format!("/session/{}", self.session);
        let _ = send(agent().delete(&format!("{}{path}", self.driver.base)), None);
    }
}

impl Browser<'_> {
    fn open<'d>(driver: &'d Driver, profile: &std::path::Path) -> Browser<'d> {
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900", format!("--user-data-dir={}", profile.display())],
        }}}});
        let value = driver.cmd("POST", "/session", Some(caps));
        let session = value["sessionId"].as_str().expect("a session id").to_owned();
        Browser { driver, session }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Json>) -> Json {
        self.driver.cmd(method, &format!("/session/{}{path}", self.session), body)
    }

    fn go(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({"url": url})));
    }

    fn eval(&self, script: &str) -> Json {
        self.cmd("POST", "/execute/sync", Some(json!({"script": script, "args": []})))
    }

    /// Evaluates `script` until `ok` accepts its value (20 s at most); the last value.
    fn wait_for(&self, script: &str, ok: impl Fn(&Json) -> bool) -> Json {
        let mut last = Json::Null;
        for _ in 0..200 {
            last = self.eval(script);
            if ok(&last) {
                return last;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("waited 20 s for {script}; last: {last}");
    }

    fn click(&self, css: &str) {
        let found = self.cmd("POST", "/element", Some(json!({"using": "css selector", "value": css})));
        let id = found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Json::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned();
        self.cmd("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// Saves a PNG of the page under the cargo target dir; its path.
    fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine;
        let png = self.cmd("GET", "/screenshot", None);
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(png.as_str().expect("base64 PNG")).expect("valid base64");
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("panel-{name}.png"));
        std::fs::write(&path, bytes).expect("write the screenshot");
        path
    }
}

/// Whether chromium and chromedriver are installed; if not, says the test `name` is skipped
/// (outside CI: `.ci/run` installs them, so in CI a missing browser is a failure).
fn have_browser(name: &str) -> bool {
    let (chromium, driver) = (std::path::Path::new(CHROMIUM), std::path::Path::new(CHROMEDRIVER));
    if chromium.exists() && driver.exists() {
        return true;
    }
    assert!(
        std::env::var_os("OCAP_CI").is_none(),
        "{CHROMIUM} and {CHROMEDRIVER} are missing under OCAP_CI (.ci/run installs them)"
    );
    eprintln!("SKIPPED {name}: needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install -y chromium chromium-driver)");
    false
}

#[test]
fn the_page_shows_the_kernel_in_headless_chromium() {
    if !have_browser("the_page_shows_the_kernel_in_headless_chromium") {
        return;
    }
    let home = Home::new();
    home.ok_json(&["launch", demo().to_str().expect("utf-8 path")]);
    let url = home.ok(&["panel"]).trim().to_owned();
    let (base, _) = split_url(&url);
    let driver = Driver::start();
    let browser = Browser::open(&driver, &home.scratch().join("chromium-profile"));

    browser.go(&url);
    // The token was exchanged for the cookie and left the address bar.
    assert_eq!(browser.eval("return location.href"), json!(format!("{base}/")));
    // The overview and the vats table fill in from getStatus.
    browser.wait_for("return document.querySelectorAll('#vat-rows tr[data-vat]').length", |v| v == 3);
    let crank = browser.eval("return document.getElementById('crank-count').textContent");
    assert!(crank.as_str().is_some_and(|c| c.parse::<u64>().is_ok()), "crank count: {crank}");
    let comms = browser.eval("return document.getElementById('remote-comms').textContent");
    assert_eq!(comms, "disconnected");
    let names = browser.eval(
        "return [...document.querySelectorAll('#vat-rows tr[data-vat] td:nth-child(2)')].map(td => td.textContent)",
    );
    assert_eq!(names, json!(["alice", "bob", "counter"]));
    let subclusters = browser.eval("return document.querySelectorAll('#subcluster-rows tr[data-subcluster]').length");
    assert_eq!(subclusters, 1);
    assert_eq!(browser.eval("return document.getElementById('error').hidden"), true, "no error shown");
    let shot = browser.screenshot("overview");
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 1000).unwrap_or(false), "{}", shot.display());

    // Actions: ping and restart a vat from its row.
    browser.click("button[aria-label='Ping v1']");
    browser.wait_for("return document.getElementById('action-result').textContent", |v| v == "Ping v1: \"pong\"");
    browser.click("button[aria-label='Restart v3']");
    browser.wait_for("return document.getElementById('action-result').textContent", |v| v == "Restart v3: done");
    assert_eq!(home.rpc("pingVat", json!({"id": "v3"}))["result"], "pong");

    // Trace: opening the page starts the live stream, which goes on while other pages show.
    browser.click("nav a[href='#trace']");
    assert_eq!(browser.eval("return location.hash"), "#trace");
    browser.wait_for("return document.getElementById('page-trace').hidden", |v| v == false);
    browser.wait_for("return document.getElementById('trace-status').textContent", |v| {
        v.as_str().is_some_and(|t| t.starts_with("Live."))
    });

    // Messages: `increment` to the counter's root, twice; the results count up; a method the
    // object lacks shows its rejection; every call is in the history.
    let counter = home.rpc("getStatus", json!([]))["result"]["vatRoots"]["v3"].as_str().expect("a root").to_owned();
    browser.click("nav a[href='#messages']");
    assert_eq!(browser.eval("return location.hash"), "#messages");
    browser.wait_for("return document.getElementById('page-messages').hidden", |v| v == false);
    assert_eq!(browser.eval("return document.getElementById('page-overview').hidden"), true);
    let send = |method: &str, args: &str| {
        let script = format!(
            "document.getElementById('send-target').value = {}; document.getElementById('send-method').value = {}; \
             document.getElementById('send-args').value = {};",
            json!(counter),
            json!(method),
            json!(args)
        );
        browser.eval(&script);
        let sent = browser.eval("return document.querySelectorAll('#send-history li').length");
        browser.click("#send-button");
        // Done when the history has one more entry, for this call.
        let label = format!("{counter}.{method}(");
        let sent = sent.as_u64().expect("a count");
        browser
            .wait_for("return document.querySelectorAll('#send-history li').length", |v| v.as_u64() == Some(sent + 1));
        let newest = browser.eval("return document.querySelector('#send-history li').textContent");
        assert!(newest.as_str().is_some_and(|t| t.contains(&label)), "{newest}");
    };
    send("increment", "[]");
    let first = browser.eval("return document.getElementById('send-value').textContent");
    let first: u64 = first.as_str().and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("a count: {first}"));
    send("increment", "[]");
    browser.wait_for("return document.getElementById('send-value')?.textContent", |v| {
        v == &json!((first + 1).to_string())
    });
    send("noSuchMethod", "[1]");
    let rejected = browser.eval("return document.getElementById('send-result').textContent");
    assert!(rejected.as_str().is_some_and(|t| t.starts_with("Rejected: ")), "{rejected}");
    let history = browser.eval("return [...document.querySelectorAll('#send-history li')].map(li => li.textContent)");
    assert_eq!(history.as_array().map(Vec::len), Some(3), "{history}");
    assert!(history[2].as_str().is_some_and(|t| t.ends_with(&format!("→ {first}"))), "{history}");
    let shot = browser.screenshot("messages");
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 1000).unwrap_or(false), "{}", shot.display());

    // Back on the Trace page, the sends' cranks are there: delivered to the counter's vat,
    // its `resolve`, committed.
    browser.click("nav a[href='#trace']");
    browser.wait_for("return document.getElementById('page-trace').hidden", |v| v == false);
    let increments = format!(
        "return [...document.querySelectorAll('#trace-rows tr[data-crank]')] \
           .filter(tr => tr.cells[1].textContent.startsWith({})) \
           .map(tr => [tr.dataset.endpoint, tr.dataset.outcome, tr.cells[3].textContent])",
        json!(format!("send {counter}.increment()"))
    );
    let rows = browser.wait_for(&increments, |v| v.as_array().is_some_and(|a| a.len() == 2));
    for row in rows.as_array().expect("rows") {
        assert_eq!((&row[0], &row[1]), (&json!("v3"), &json!("commit")), "{rows}");
        assert!(row[2].as_str().is_some_and(|t| t.contains("resolve")), "{rows}");
    }
    let head = browser.eval("return [...document.querySelectorAll('#trace-table thead th')].map(th => th.textContent)");
    assert_eq!(head, json!(["Crank", "Work", "Endpoint", "Syscalls", "Outcome", "µs"]));
    // The filter keeps one endpoint's cranks.
    let filter = |endpoint: &str| {
        browser.eval(&format!(
            "const s = document.getElementById('trace-endpoint'); s.value = {}; \
             s.dispatchEvent(new Event('change', {{bubbles: true}}));",
            json!(endpoint)
        ));
    };
    let endpoints =
        "return [...document.querySelectorAll('#trace-rows tr[data-crank]')].map(tr => tr.dataset.endpoint)";
    browser.wait_for("return [...document.getElementById('trace-endpoint').options].map(o => o.value)", |v| {
        v.as_array().is_some_and(|a| ["", "v1", "v2", "v3"].iter().all(|e| a.contains(&json!(e))))
    });
    filter("v3");
    let only = browser.eval(endpoints);
    assert!(only.as_array().is_some_and(|a| a.len() >= 3 && a.iter().all(|e| e == "v3")), "{only}");
    // Paused, the table stands still while cranks arrive; resumed, they show.
    browser.click("#trace-pause");
    assert_eq!(browser.eval("return document.getElementById('trace-pause').getAttribute('aria-pressed')"), "true");
    let before = browser.eval("return document.querySelectorAll('#trace-rows tr[data-crank]').length");
    home.ok(&["send", &counter, "increment"]);
    browser.wait_for("return document.getElementById('trace-status').textContent", |v| {
        v.as_str().is_some_and(|t| t.starts_with("Paused: ") && !t.starts_with("Paused: 0 "))
    });
    assert_eq!(browser.eval("return document.querySelectorAll('#trace-rows tr[data-crank]').length"), before);
    browser.click("#trace-pause");
    assert_eq!(browser.eval("return document.getElementById('trace-pause').getAttribute('aria-pressed')"), "false");
    browser.wait_for(&increments, |v| v.as_array().is_some_and(|a| a.len() == 3));
    let shot = browser.screenshot("trace");
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 1000).unwrap_or(false), "{}", shot.display());
    filter("");

    // Database: a query's rows as a table.
    browser.click("nav a[href='#database']");
    assert_eq!(browser.eval("return location.hash"), "#database");
    browser.wait_for("return document.getElementById('page-database').hidden", |v| v == false);
    browser.eval(
        "document.getElementById('sql').value = \"SELECT endpoint, kref, eref FROM clist ORDER BY endpoint, kref\"",
    );
    browser.click("#sql-button");
    let rows = browser.wait_for("return document.querySelectorAll('#sql-rows tr').length", |v| v.as_u64() > Some(0));
    let head = browser.eval("return [...document.querySelectorAll('#sql-head th')].map(th => th.textContent)");
    assert_eq!(head, json!(["endpoint", "kref", "eref"]));
    let status = browser.eval("return document.getElementById('sql-status').textContent");
    assert_eq!(status, json!(format!("{rows} rows.")));
    let shot = browser.screenshot("database");
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 1000).unwrap_or(false), "{}", shot.display());
    // A statement that would write is refused, visibly.
    browser.eval("document.getElementById('sql').value = 'DELETE FROM kv'");
    browser.click("#sql-button");
    browser.wait_for("return document.getElementById('sql-status').className", |v| v == "failed");

    // Objects: the tables fill in; the filter keeps one owner's; Revoke (two clicks) revokes.
    browser.click("nav a[href='#objects']");
    assert_eq!(browser.eval("return location.hash"), "#objects");
    browser.wait_for("return document.getElementById('page-objects').hidden", |v| v == false);
    browser.wait_for("return document.querySelectorAll('#object-rows tr[data-kref]').length", |v| v.as_u64() > Some(0));
    browser.wait_for("return document.querySelectorAll('#clist-rows tr[data-clist]').length", |v| v.as_u64() > Some(0));
    // The run queue and the GC actions: their tables, read with the others (an idle kernel's
    // run queue is likely empty: then its table says so).
    let heads = "return ['run-queue-table', 'gc-actions-table'].map(id => \
                 [...document.querySelectorAll(`#${id} thead th`)].map(th => th.textContent))";
    assert_eq!(
        browser.eval(heads),
        json!([["Seq", "Type", "Target / kpid", "Endpoint", "Item"], ["Endpoint", "Action", "Kref"]])
    );
    let shown = |body: &str, row: &str, empty: &str| {
        let script = format!(
            "const b = document.getElementById({}); \
             return b.querySelector({}) ? 'rows' : b.textContent",
            json!(body),
            json!(row)
        );
        browser.wait_for(&script, |v| v == "rows" || v == empty);
    };
    shown("run-queue-rows", "tr[data-seq]", "None.");
    shown("gc-action-rows", "tr[data-gc]", "None.");
    browser.wait_for("return document.querySelector('.pager[data-table=\"run-queue\"] span')?.textContent", |v| {
        v.as_str().is_some_and(|t| t.contains(" of "))
    });
    browser.wait_for("return document.querySelector('.pager[data-table=\"gc-actions\"] span')?.textContent", |v| {
        v.as_str().is_some_and(|t| t.contains(" of "))
    });
    let shot = browser.screenshot("objects");
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 1000).unwrap_or(false), "{}", shot.display());
    browser.eval("document.getElementById('objects-endpoint').value = 'v3'");
    browser.click("#objects-filter button[type='submit']");
    browser.wait_for(
        "return [...document.querySelectorAll('#object-rows tr[data-kref] td:nth-child(2)')].map(td => td.textContent)",
        |v| v.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(|o| o == "v3")),
    );
    browser.wait_for(
        "return [...document.querySelectorAll('#clist-rows tr[data-clist] td:first-child')].map(td => td.textContent)",
        |v| v.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(|e| e == "v3")),
    );
    // Filtered, the two new tables show v3's rows only, or say that it has none.
    shown("run-queue-rows", "tr[data-seq]", "None for v3.");
    shown("gc-action-rows", "tr[data-gc]", "None for v3.");
    let gc = browser.eval(
        "return [...document.querySelectorAll('#gc-action-rows tr[data-gc] td:first-child')].map(td => td.textContent)",
    );
    assert!(gc.as_array().is_some_and(|a| a.iter().all(|e| e == "v3")), "{gc}");
    // The last (the root, if v3 exports nothing else: nothing after this sends to it).
    let victim =
        browser.eval("return [...document.querySelectorAll('#object-rows tr[data-kref]')].at(-1).dataset.kref");
    let victim = victim.as_str().expect("a kref").to_owned();
    let revoke = format!("button[aria-label='Revoke {victim}']");
    browser.click(&revoke);
    browser.click(&revoke);
    browser.wait_for("return document.getElementById('action-result').textContent", |v| {
        v == &json!(format!("Revoke {victim}: done"))
    });
    assert_eq!(home.rpc("isRevoked", json!({"kref": victim}))["result"], true);
    browser.wait_for(
        &format!(
            "return document.querySelector(\"#object-rows tr[data-kref='{victim}'] td:nth-child(5)\")?.textContent"
        ),
        |v| v == "yes",
    );
    // Back to the overview by the hash.
    browser.click("nav a[href='#overview']");
    browser.wait_for("return document.getElementById('page-overview').hidden", |v| v == false);
    assert_eq!(browser.eval("return document.querySelector('nav a[aria-current=page]').textContent"), "Overview");

    // Reload the demo's subcluster (two clicks): terminated, launched again from its config
    // under a new ID, its bootstrap run again.
    let old = home.rpc("getStatus", json!([]))["result"]["subclusters"][0]["id"].as_str().expect("an id").to_owned();
    let reload = format!("button[aria-label='Reload subcluster {old}']");
    browser.click(&reload);
    browser.click(&reload);
    let said = browser.wait_for("return document.getElementById('action-result').textContent", |v| {
        v.as_str().is_some_and(|t| t.starts_with(&format!("Reload subcluster {old}: now ")))
    });
    let new = browser.eval("return document.getElementById('reload-subcluster').textContent");
    assert_ne!(new, json!(old), "{said}");
    let status = home.rpc("getStatus", json!([]))["result"].clone();
    assert_eq!(status["subclusters"].as_array().map(Vec::len), Some(1), "{status}");
    assert_eq!(status["subclusters"][0]["id"], new, "{status}");
    assert_eq!(
        browser.eval("return document.getElementById('reload-bootstrap').textContent"),
        "Bob says hello to Alice; Bob says \"I received a promise kept\"; counter is at 3"
    );
    browser.wait_for("return [...document.querySelectorAll('#subcluster-rows tr[data-subcluster]')].map(tr => tr.dataset.subcluster)", |v| {
        v == &json!([new])
    });
    let shot = browser.screenshot("reloaded");
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 1000).unwrap_or(false), "{}", shot.display());

    // Without the cookie, the browser gets a 401.
    browser.cmd("DELETE", "/cookie", None);
    browser.go(&format!("{base}/"));
    let text = browser.eval("return document.body.innerText");
    assert!(text.as_str().is_some_and(|t| t.contains("401")), "{text}");
}

#[test]
fn a_page_opens_from_its_hash_and_a_truncated_answer_says_so() {
    if !have_browser("a_page_opens_from_its_hash_and_a_truncated_answer_says_so") {
        return;
    }
    let home = Home::started_with(Some(json!({"maxQueryRows": 2})));
    home.ok_json(&["launch", demo().to_str().expect("utf-8 path")]);
    let url = home.ok(&["panel"]).trim().to_owned();
    let (base, _) = split_url(&url);
    let driver = Driver::start();
    let browser = Browser::open(&driver, &home.scratch().join("chromium-profile"));
    browser.go(&url);
    browser.wait_for("return document.querySelectorAll('#vat-rows tr[data-vat]').length", |v| v == 3);
    // Opened (or reloaded) at #database, the page shows the Database page.
    browser.go(&format!("{base}/#database"));
    // (From the same document: a hash change, which the page follows.)
    browser.wait_for("return document.getElementById('page-database').hidden", |v| v == false);
    assert_eq!(browser.eval("return document.querySelector('nav a[aria-current=page]').textContent"), "Database");
    browser.eval("document.getElementById('sql').value = 'SELECT * FROM clist'");
    browser.click("#sql-button");
    let notice =
        browser.wait_for("return document.getElementById('sql-truncated')?.textContent ?? null", |v| v.is_string());
    assert!(notice.as_str().is_some_and(|t| t.starts_with("Truncated: the answer stopped at 2 row(s)")), "{notice}");
    assert_eq!(browser.eval("return document.querySelectorAll('#sql-rows tr').length"), 2);
}

/// The demo's cluster config with its `sourceSpec`s made absolute (a relative one would
/// resolve against the daemon's current directory).
fn absolute_demo_config() -> Json {
    let dir = demo().parent().expect("the demo's directory").canonicalize().expect("canonical");
    let mut config: Json =
        serde_json::from_str(&std::fs::read_to_string(demo()).expect("read the demo")).expect("JSON");
    for vat in config["vats"].as_object_mut().expect("vats").values_mut() {
        let spec = vat["sourceSpec"].as_str().expect("a sourceSpec");
        vat["sourceSpec"] = json!(dir.join(spec).to_str().expect("utf-8 path"));
    }
    config
}

#[test]
fn the_launch_form_and_the_capability_graph_in_headless_chromium() {
    if !have_browser("the_launch_form_and_the_capability_graph_in_headless_chromium") {
        return;
    }
    let home = Home::new();
    let url = home.ok(&["panel"]).trim().to_owned();
    let driver = Driver::start();
    let browser = Browser::open(&driver, &home.scratch().join("chromium-profile"));
    browser.go(&url);
    browser.wait_for("return document.getElementById('kernel-state').textContent", |v| v == "running");
    assert_eq!(browser.eval("return document.querySelectorAll('#vat-rows tr[data-vat]').length"), 0);

    // Paste the demo's config into the launch form and launch it: the answer shows.
    let paste = |config: &str| {
        browser.eval(&format!(
            "const t = document.getElementById('launch-config'); t.value = {}; \
             t.dispatchEvent(new Event('input', {{bubbles: true}}));",
            json!(config)
        ));
    };
    paste(&serde_json::to_string_pretty(&absolute_demo_config()).expect("JSON"));
    browser
        .wait_for("return document.querySelectorAll('#launch-fields li[data-path]').length", |v| v.as_u64() > Some(5));
    browser.click("#launch-button");
    let subcluster =
        browser.wait_for("return document.getElementById('launch-subcluster')?.textContent ?? null", |v| v.is_string());
    let status = home.rpc("getStatus", json!([]))["result"].clone();
    assert_eq!(status["subclusters"][0]["id"], subcluster, "{status}");
    let root = browser.eval("return document.getElementById('launch-root').textContent");
    assert_eq!(root, status["vatRoots"]["v1"], "the bootstrap vat's root");
    let bootstrap = browser.eval("return document.getElementById('launch-bootstrap').textContent");
    assert_eq!(
        bootstrap, "Bob says hello to Alice; Bob says \"I received a promise kept\"; counter is at 3",
        "decoded, as `ocap launch` prints it"
    );
    // The overview picks up the new vats.
    browser.wait_for("return document.querySelectorAll('#vat-rows tr[data-vat]').length", |v| v == 3);
    browser.eval("document.getElementById('launch').scrollIntoView()");
    let shot = browser.screenshot("launch");
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 1000).unwrap_or(false), "{}", shot.display());

    // A config with a field the kernel does not know: the daemon's error shows at that field.
    let mut bad = absolute_demo_config();
    bad["vats"]["bob"]["colour"] = json!("red");
    paste(&serde_json::to_string_pretty(&bad).expect("JSON"));
    browser.click("#launch-button");
    let at = browser.wait_for(
        "return document.getElementById('launch-field-error')?.closest('li[data-path]').dataset.path ?? null",
        |v| v.is_string(),
    );
    assert_eq!(at, "vats.bob.colour");
    let text = browser.eval("return document.getElementById('launch-field-error').textContent");
    assert!(
        text.as_str().is_some_and(|t| t.starts_with("vats.bob.colour (line ") && t.contains("unknown field")),
        "{text}"
    );
    assert_eq!(browser.eval("return document.getElementById('launch-config').getAttribute('aria-invalid')"), "true");
    assert_eq!(home.rpc("getStatus", json!([]))["result"]["subclusters"].as_array().map(Vec::len), Some(1));
    let shot = browser.screenshot("launch-error");
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 1000).unwrap_or(false), "{}", shot.display());

    // A file read with the file input fills the form; an error that names no field (not
    // JSON) shows under the textarea.
    let file = home.scratch().join("broken.json");
    std::fs::write(&file, "{\"bootstrap\": ").expect("write the file");
    let found = browser.cmd("POST", "/element", Some(json!({"using": "css selector", "value": "#launch-file"})));
    let input =
        found.as_object().and_then(|o| o.values().next()).and_then(Json::as_str).expect("the file input").to_owned();
    browser.cmd("POST", &format!("/element/{input}/value"), Some(json!({"text": file.to_str().expect("utf-8 path")})));
    browser.wait_for("return document.getElementById('launch-config').value", |v| v == "{\"bootstrap\": ");
    browser.click("#launch-button");
    let under = browser
        .wait_for("const e = document.getElementById('launch-error'); return e.hidden ? null : e.textContent", |v| {
            v.is_string()
        });
    assert!(under.as_str().is_some_and(|t| t.starts_with("The config is not JSON")), "{under}");
    assert_eq!(browser.eval("return document.getElementById('launch-field-error')"), Json::Null);

    // The capability graph: the demo's vats as nodes, their references as edges.
    browser.click("nav a[href='#graph']");
    assert_eq!(browser.eval("return location.hash"), "#graph");
    browser.wait_for("return document.getElementById('page-graph').hidden", |v| v == false);
    let nodes = browser
        .wait_for("return [...document.querySelectorAll('#graph-svg g.node')].map(g => g.dataset.node)", |v| {
            v.as_array().is_some_and(|a| ["v1", "v2", "v3"].iter().all(|id| a.contains(&json!(id))))
        });
    assert!(nodes.as_array().is_some_and(|a| a.contains(&json!("service:log"))), "services are nodes: {nodes}");
    let edges = browser.eval(
        "return [...document.querySelectorAll('#graph-svg g.edge')].map(g => [g.dataset.from, g.dataset.to, g.querySelector('title').textContent])",
    );
    // Alice (the bootstrap vat) holds bob's and the counter's roots.
    let edges = edges.as_array().expect("edges").clone();
    assert!(edges.iter().any(|e| e[0] == "v1" && e[1] == "v2"), "{edges:?}");
    assert!(edges.iter().any(|e| e[0] == "v1" && e[1] == "v3"), "{edges:?}");
    let table = browser.eval("return document.querySelectorAll('#graph-edge-rows tr[data-edge]').length");
    assert_eq!(table, json!(edges.len()), "the table lists every edge");
    let titles =
        browser.eval("return [...document.querySelectorAll('#graph-svg g.node')].every(g => g.querySelector('title'))");
    assert_eq!(titles, true);
    // Selecting a node shows its exports and imports.
    browser.click("#graph-svg g.node[data-node='v1']");
    browser
        .wait_for("return document.getElementById('graph-details-title')?.textContent ?? null", |v| v == "v1 (alice)");
    let imports = browser
        .eval("return [...document.querySelectorAll('#graph-details tr[data-import]')].map(tr => tr.dataset.import)");
    assert!(imports.as_array().is_some_and(|a| a.len() >= 2), "{imports}");
    let exports = browser
        .eval("return [...document.querySelectorAll('#graph-details tr[data-export]')].map(tr => tr.dataset.export)");
    assert_eq!(exports, json!([root]), "alice exports her root");
    let shot = browser.screenshot("graph");
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 1000).unwrap_or(false), "{}", shot.display());
}
