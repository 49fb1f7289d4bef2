//! Crash torture (issue 11, item 7): the real daemon under load is killed with `kill -9` at
//! random instants, restarted, and checked after every restart. See TESTING.md.
//!
//! The load, on one subcluster of the vats in `tests/torture/`, from threads of this process
//! talking JSON-RPC to the daemon's socket:
//! - two clients incrementing a durable counter (`counter.js`); every increment carries a
//!   unique tag and the vat logs each tag at the position it got, so an increment lost or
//!   applied twice shows;
//! - a client asking `pipea.js` for pipelined chains of calls to `pipeb.js` (`start`, `next`
//!   on each promised step, `value`), a quarter of them failing at a chosen step; `pipeb`
//!   counts each tag's steps durably;
//! - a GC churn client: `churn.js` makes objects and passes them to `sink.js`, which holds,
//!   keeps (in baggage, overwriting) and drops them, and makes objects that are dropped at
//!   once; plus `collectGarbage`, `reapVats` and `poke` (calls to the kept objects);
//! - an IO client echoing lines through the subcluster's Unix-socket channel (`echo.js`).
//!
//! After each kill, with the daemon down: `ocap check` (directly on the database). After each
//! restart, once the run queue has drained: `resumeFailures` empty, `executeDBQuery` shows an
//! empty run queue, promise queue and GC actions, `ocap check` (through the daemon) exits 0,
//! every acknowledged increment is in the log exactly once at the position it was acknowledged
//! with and nothing else is there but increments that were in flight, every acknowledged
//! pipeline made exactly its steps and every one in flight at most its steps (and never more
//! later), a new pipeline completes, kept objects answer or are rejected as deleted, and the
//! IO channel echoes again. Waits have generous deadlines only so that a hang fails instead of
//! hanging.
//!
//! `OCAP_TORTURE_SEED` repeats a run's schedule (load choices, when to kill); thread
//! interleavings are the machine's. `OCAP_TORTURE_KILLS` sets the number of kills (the short
//! test: 10; the ignored long one: 100), `OCAP_TORTURE_MAX_LOAD_MS` the longest load before a
//! kill (300), `OCAP_TORTURE_LOG` the daemon's log filter (`debug`, ...),
//! `OCAP_TORTURE_STRICT_IO=1` fails on the known IO issue (TESTING.md) instead of counting it.
//! On failure the home is copied to `/tmp/ocap-torture-failed-<seed>-<kill>`.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

/// Only so that a hung daemon fails the test rather than hanging it.
const DEADLINE: Duration = Duration::from_secs(120);
const VAT_NAMES: [&str; 6] = ["counter", "pipea", "pipeb", "churn", "sink", "echo"];
/// Read the whole counter log back (not only its new part) every this many kills.
const FULL_CHECK_EVERY: u32 = 25;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.trim().parse().unwrap_or_else(|e| panic!("{name}={v:?}: {e}")))
}

/// SplitMix64: small, and the same sequence everywhere for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    fn fork(&mut self) -> Rng {
        Rng(self.next())
    }
}

// ---------------------------------------------------------------------------------------
// The control RPC, one request per connection.

#[derive(Debug)]
enum Reply {
    Ok(Json),
    /// `-32000`: the result was rejected; the decoded reason.
    Rejected(String),
    #[allow(dead_code)] // shown through Debug
    Error(i64, String),
    /// Could not connect: the request was certainly not seen.
    Refused,
    /// Sent (maybe partly), no reply: the request may or may not have been applied.
    Lost,
}

fn rpc(sock: &Path, method: &str, params: Json) -> Reply {
    let Ok(mut s) = UnixStream::connect(sock) else { return Reply::Refused };
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let req = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    if s.write_all(format!("{req}\n").as_bytes()).is_err() {
        return Reply::Lost;
    }
    let mut line = String::new();
    match BufReader::new(s).read_line(&mut line) {
        Ok(_) if line.ends_with('\n') => {}
        _ => return Reply::Lost,
    }
    let v: Json = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{method}: reply is not JSON ({e}): {line}"));
    match v.get("error") {
        Some(e) => {
            let code = e["code"].as_i64().unwrap_or(0);
            let message = e["message"].as_str().unwrap_or_default().to_owned();
            if code == -32000 {
                Reply::Rejected(message)
            } else {
                Reply::Error(code, message)
            }
        }
        None => Reply::Ok(v["result"].clone()),
    }
}

/// The JSON value of a smallcaps body without slots (`#...`); our vats return only plain data.
fn decode(capdata: &Json) -> Json {
    let body = capdata["body"].as_str().unwrap_or_else(|| panic!("not CapData: {capdata}"));
    serde_json::from_str(body.strip_prefix('#').unwrap_or_else(|| panic!("not smallcaps: {body}")))
        .unwrap_or_else(|e| panic!("{body}: {e}"))
}

fn send(sock: &Path, target: &str, method: &str, args: Json) -> Reply {
    match rpc(sock, "queueMessage", json!([target, method, args])) {
        Reply::Ok(v) => Reply::Ok(decode(&v)),
        other => other,
    }
}

// ---------------------------------------------------------------------------------------
// The daemon, through the real binary.

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next()), Some("Z" | "X")),
        Err(_) => false,
    }
}

struct Daemon {
    tmp: tempfile::TempDir,
    home: PathBuf,
    sock: PathBuf,
}

impl Daemon {
    fn new() -> Daemon {
        // Short paths: a Unix socket path must fit in 107 bytes.
        let tmp = tempfile::Builder::new().prefix("ocap-x").tempdir_in("/tmp").expect("temp dir");
        let home = tmp.path().join("home");
        let sock = home.join("daemon.sock");
        Daemon { tmp, home, sock }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ocap"));
        c.arg("--home").arg(&self.home).args(args).env_remove("OCAP_HOME").env_remove("RUST_LOG");
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        c
    }

    fn ocap(&self, args: &[&str]) -> Output {
        self.cmd(args).stdout(Stdio::piped()).stderr(Stdio::piped()).output().expect("run ocap")
    }

    /// The daemon's pid, if the lock names a live `ocap daemon serve` of this home.
    fn pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.home.join("daemon.lock")).ok()?.trim().parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        let ours = args.iter().any(|a| Path::new(a) == self.home) && args.iter().any(|a| a == "serve");
        (ours && alive(pid)).then_some(pid)
    }

    /// SIGKILL, then wait (boundedly) until the process is gone.
    fn kill9(&self) -> Result<u32, String> {
        let pid = self.pid().ok_or("no daemon to kill")?;
        let status = Command::new("kill").args(["-9", &pid.to_string()]).status().expect("run kill");
        if !status.success() {
            return Err(format!("kill -9 {pid} failed: {status}"));
        }
        let start = Instant::now();
        while alive(pid) {
            if start.elapsed() > DEADLINE {
                return Err(format!("daemon {pid} still alive after kill -9"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(pid)
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.home.join("daemon.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

// ---------------------------------------------------------------------------------------
// The load. Each client runs until the daemon goes away, and reports what it was told.

#[derive(Default)]
struct CounterRun {
    acked: Vec<(String, u64)>,
    in_flight: Vec<String>,
    errors: Vec<String>,
}

fn counter_client(sock: PathBuf, root: String, prefix: String) -> CounterRun {
    let mut run = CounterRun::default();
    for seq in 0.. {
        let tag = format!("{prefix}.{seq}");
        match send(&sock, &root, "increment", json!([tag])) {
            Reply::Ok(v) => match v.as_u64() {
                Some(n) => run.acked.push((tag, n)),
                None => run.errors.push(format!("increment {tag} answered {v}")),
            },
            Reply::Refused => break,
            Reply::Lost => {
                run.in_flight.push(tag);
                break;
            }
            other => {
                run.errors.push(format!("increment {tag}: {other:?}"));
                run.in_flight.push(tag);
                break;
            }
        }
    }
    run
}

/// A pipeline's tag and how many steps pipeb must have counted for it: exactly (`exact`),
/// or at most (in flight at a kill).
struct PipeRecord {
    tag: String,
    steps: u64,
    exact: bool,
}

#[derive(Default)]
struct PipeRun {
    records: Vec<PipeRecord>,
    completed: u64,
    rejected: u64,
    errors: Vec<String>,
}

/// `depth` steps; with `fail_at`, the step that throws (and the count pipeb ends at).
fn pipeline_args(rng: &mut Rng) -> (u64, Option<u64>) {
    let depth = 2 + rng.below(7);
    let fail_at = rng.percent(25).then(|| 2 + rng.below(depth - 1));
    (depth, fail_at)
}

fn pipeline_client(sock: PathBuf, root: String, prefix: String, mut rng: Rng) -> PipeRun {
    let mut run = PipeRun::default();
    for seq in 0.. {
        let tag = format!("{prefix}.{seq}");
        let (depth, fail_at) = pipeline_args(&mut rng);
        let steps = fail_at.unwrap_or(depth);
        let reply = send(&sock, &root, "pipeline", json!([tag, depth, fail_at]));
        let expected = match fail_at {
            None => format!("{tag}:{depth}"),
            Some(k) => format!("failed at {k} of {tag}"),
        };
        match (reply, fail_at) {
            (Reply::Ok(v), None) if v == json!(expected) => run.completed += 1,
            (Reply::Rejected(m), Some(_)) if m.contains(&expected) => run.rejected += 1,
            (Reply::Refused, _) => break,
            (Reply::Lost, _) => {
                run.records.push(PipeRecord { tag, steps, exact: false });
                break;
            }
            (other, _) => {
                run.errors.push(format!(
                    "pipeline {tag} (depth {depth}, fail at {fail_at:?}): expected {expected:?}, got {other:?}"
                ));
                run.records.push(PipeRecord { tag, steps, exact: false });
                break;
            }
        }
        run.records.push(PipeRecord { tag, steps, exact: true });
    }
    run
}

#[derive(Default)]
struct ChurnRun {
    churned: u64,
    errors: Vec<String>,
}

/// A `poke` answer must not name any reason but OBJECT_DELETED.
fn poke_ok(answer: &Json) -> bool {
    answer.as_str().is_some_and(|s| s.starts_with("ok=") && s.ends_with(" other="))
}

fn churn_client(sock: PathBuf, roots: HashMap<String, String>, mut rng: Rng) -> ChurnRun {
    let mut run = ChurnRun::default();
    for i in 0u64.. {
        let (what, reply) = match i % 8 {
            3 => ("poke", send(&sock, &roots["sink"], "poke", json!([]))),
            5 => ("collectGarbage", rpc(&sock, "collectGarbage", json!([]))),
            7 => ("reapVats", rpc(&sock, "reapVats", json!([]))),
            _ => {
                let n = 1 + rng.below(8);
                match send(&sock, &roots["churn"], "churn", json!([n])) {
                    Reply::Ok(v) if v == json!(2 * n) => {
                        run.churned += n;
                        continue;
                    }
                    other => ("churn", other),
                }
            }
        };
        match reply {
            Reply::Ok(v) if what != "poke" || poke_ok(&v) => {}
            Reply::Refused | Reply::Lost => break,
            other => {
                run.errors.push(format!("{what}: {other:?}"));
                break;
            }
        }
    }
    run
}

/// A client connected to the IO channel, with `pump` running in the vat.
struct Echo {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
    pump: JoinHandle<Reply>,
}

#[derive(Default)]
struct EchoRun {
    echoed: u64,
    errors: Vec<String>,
}

impl Echo {
    /// Connects (waiting for the channel to be back) and starts `pump`.
    fn connect(sock: &Path, io_sock: &Path, echo_root: &str) -> Result<Echo, String> {
        let start = Instant::now();
        let stream = loop {
            match UnixStream::connect(io_sock) {
                Ok(s) => break s,
                Err(e) if start.elapsed() > DEADLINE => return Err(format!("IO channel: {e}")),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let (sock, root) = (sock.to_owned(), echo_root.to_owned());
        let pump = std::thread::spawn(move || send(&sock, &root, "pump", json!([])));
        Ok(Echo { stream, reader, pump })
    }

    /// One round trip: `Ok(None)` if the connection went away.
    fn echo(&mut self, line: &str) -> Result<Option<()>, String> {
        if self.stream.write_all(format!("{line}\n").as_bytes()).is_err() {
            return Ok(None);
        }
        let mut back = String::new();
        match self.reader.read_line(&mut back) {
            Ok(_) if back.ends_with('\n') => {}
            _ => return Ok(None),
        }
        if back.trim_end() != line.to_uppercase() {
            return Err(format!("echo of {line:?} came back as {back:?}"));
        }
        Ok(Some(()))
    }

    fn run(mut self, prefix: String) -> EchoRun {
        let mut run = EchoRun::default();
        for seq in 0.. {
            match self.echo(&format!("{prefix}.{seq}")) {
                Ok(Some(())) => run.echoed += 1,
                Ok(None) => break,
                Err(e) => {
                    run.errors.push(e);
                    break;
                }
            }
        }
        drop(self.stream);
        drop(self.reader);
        match self.pump.join().unwrap() {
            Reply::Lost | Reply::Refused => {}
            other => run.errors.push(format!("pump ended with {other:?} while the daemon was killed")),
        }
        run
    }
}

// ---------------------------------------------------------------------------------------
// What the checks remember between restarts.

#[derive(Default)]
struct Ledger {
    /// The counter's log as verified so far (`log.1` first).
    log: Vec<String>,
    logged: HashSet<String>,
    /// Increments since the last check: acknowledged (tag → position), and in flight.
    acked: HashMap<String, u64>,
    in_flight: HashSet<String>,
    acked_total: u64,
    in_flight_total: u64,
    /// Pipelines since the last check, and every pipeline's final step count.
    pipes: Vec<PipeRecord>,
    pipe_steps: HashMap<String, u64>,
    completed: u64,
    rejected: u64,
    pipes_in_flight: u64,
    churned: u64,
    echoed: u64,
    /// IO lines taken by reads queued at a kill (the known issue).
    swallowed: u64,
}

struct Torture {
    d: Daemon,
    seed: u64,
    kill: u32,
    io_sock: PathBuf,
    roots: HashMap<String, String>,
    ledger: Ledger,
    /// `ocap inspect` of the database as the last kill left it, for failure reports.
    at_kill: String,
    /// The IO channel's kref, and how many `read`s to it the last kill left in the run queue.
    io_kref: String,
    orphan_reads: u64,
}

impl Torture {
    fn fail(&self, msg: impl std::fmt::Display) -> ! {
        let keep = format!("/tmp/ocap-torture-failed-{}-{}", self.seed, self.kill);
        let _ = Command::new("cp").arg("-a").arg(&self.d.home).arg(&keep).status();
        panic!(
            "torture failed at kill {} (OCAP_TORTURE_SEED={} repeats the schedule; home copied to {keep}):\n{msg}\n\
             --- daemon.log (last lines) ---\n{}",
            self.kill,
            self.seed,
            self.d.log_tail()
        );
    }

    fn ocap_ok(&self, args: &[&str]) -> String {
        let out = self.d.ocap(args);
        if !out.status.success() {
            self.fail(format!(
                "ocap {args:?} failed ({}):\nstdout: {}\nstderr: {}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn call(&self, method: &str, params: Json) -> Json {
        match rpc(&self.d.sock, method, params.clone()) {
            Reply::Ok(v) => v,
            other => self.fail(format!("{method} {params}: {other:?}")),
        }
    }

    fn send_ok(&self, vat: &str, method: &str, args: Json) -> Json {
        match send(&self.d.sock, &self.roots[vat], method, args.clone()) {
            Reply::Ok(v) => v,
            other => self.fail(format!("{vat}.{method}({args}): {other:?}")),
        }
    }

    fn query(&self, sql: &str) -> Vec<Json> {
        match self.call("executeDBQuery", json!({ "sql": sql })) {
            Json::Array(rows) => rows,
            other => self.fail(format!("executeDBQuery: {other}")),
        }
    }

    fn launch(&mut self) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/torture");
        let vats: serde_json::Map<String, Json> =
            VAT_NAMES.iter().map(|n| (n.to_string(), json!({ "sourceSpec": dir.join(format!("{n}.js")) }))).collect();
        let cluster = json!({
            "bootstrap": "counter",
            "io": { "tio": { "type": "socket", "path": self.io_sock, "direction": "inout" } },
            "vats": vats,
        });
        let file = self.d.tmp.path().join("cluster.json");
        std::fs::write(&file, cluster.to_string()).unwrap();
        let launched: Json =
            serde_json::from_str(&self.ocap_ok(&["--json", "launch", file.to_str().unwrap()])).unwrap();
        if launched["bootstrapResult"] != "ready" {
            self.fail(format!("launch: {launched}"));
        }
        let kv = self.query("SELECT value FROM kv WHERE key = 'io.s1.tio'");
        self.io_kref =
            kv[0]["value"].as_str().unwrap_or_else(|| self.fail(format!("no IO channel: {kv:?}"))).to_owned();
        let status = self.call("getStatus", json!([]));
        for name in VAT_NAMES {
            let vat = status["subclusters"][0]["vats"][name].as_str().unwrap_or_default();
            let root = status["vatRoots"][vat].as_str().unwrap_or_else(|| self.fail(format!("no root for {name}")));
            self.roots.insert(name.to_owned(), root.to_owned());
        }
    }

    fn start(&self) -> u32 {
        let out: Json =
            serde_json::from_str(&self.ocap_ok(&["--json", "daemon", "start", "--timeout", "120"])).unwrap();
        out["pid"].as_u64().unwrap_or_else(|| self.fail(format!("daemon start: {out}"))) as u32
    }

    /// Waits until the kernel is idle: nothing in the run queue, no GC actions.
    fn wait_idle(&self) {
        let start = Instant::now();
        loop {
            let s = self.call("getStatus", json!([]));
            if !s["resumeFailures"].as_array().is_some_and(Vec::is_empty)
                || !s["notRunning"].as_array().is_some_and(Vec::is_empty)
            {
                self.fail(format!("vats did not come back: {s}"));
            }
            if s["runQueueLength"] == 0 && s["gcActionsPending"] == 0 {
                return;
            }
            if start.elapsed() > DEADLINE {
                self.fail(format!("the run queue did not drain: {s}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The checks after a restart; returns a connected IO client for the load.
    fn check_restarted(&mut self, full: bool) -> Echo {
        self.wait_idle();
        let rows = self.query(
            "SELECT (SELECT COUNT(*) FROM run_queue) AS rq, (SELECT COUNT(*) FROM gc_actions) AS gc, \
             (SELECT COUNT(*) FROM promise_queue) AS pq",
        );
        if rows != [json!({"rq": "0", "gc": "0", "pq": "0"})] {
            self.fail(format!("idle, but executeDBQuery shows queued work: {rows:?}"));
        }
        let out = self.ocap_ok(&["--json", "check"]);
        if !out.contains("\"ok\":true") {
            self.fail(format!("ocap check: {out}"));
        }
        self.check_counter(full);
        self.check_pipelines(full);
        let probe = format!("probe{}", self.kill);
        let v = self.send_ok("pipea", "pipeline", json!([probe, 3, null]));
        if v != json!(format!("{probe}:3")) {
            self.fail(format!("a pipeline after the restart answered {v}"));
        }
        self.ledger.pipe_steps.insert(probe, 3);
        let poked = self.send_ok("sink", "poke", json!([]));
        if !poke_ok(&poked) {
            self.fail(format!("kept objects: {poked}"));
        }
        let mut echo = Echo::connect(&self.d.sock, &self.io_sock, &self.roots["echo"]).unwrap_or_else(|e| self.fail(e));
        // Known issue (TESTING.md): a `read` the previous incarnation queued before the kill
        // is still delivered to the new channel, and takes the next line with it; the
        // answer has nowhere to go. So the first `orphan_reads` lines are swallowed, and the
        // next one is echoed. OCAP_TORTURE_STRICT_IO=1 fails on it instead.
        let swallowed = std::mem::take(&mut self.orphan_reads);
        if swallowed > 0 && std::env::var_os("OCAP_TORTURE_STRICT_IO").is_some() {
            self.fail(format!("{swallowed} read(s) of the previous incarnation queued at the kill:\n{}", self.at_kill));
        }
        for j in 0..swallowed {
            if echo.stream.write_all(format!("probe{}.{j}\n", self.kill).as_bytes()).is_err() {
                self.fail("the IO channel closed after a restart");
            }
        }
        match echo.echo(&format!("probe{}.{swallowed}", self.kill)) {
            Ok(Some(())) => {}
            Ok(None) => self.fail(format!(
                "no echo of the first line after the restart ({swallowed} lines expected to be swallowed); \
                 the run queue at the kill:\n{}",
                self.at_kill
            )),
            Err(e) => self.fail(e),
        }
        self.ledger.swallowed += swallowed;
        echo
    }

    fn read_log(&self, from: u64, to: u64) -> Vec<String> {
        let mut out = Vec::new();
        let mut i = from;
        while i <= to {
            let end = to.min(i + 499);
            match self.send_ok("counter", "readLog", json!([i, end])) {
                Json::Array(tags) => out.extend(tags.into_iter().map(|t| t.as_str().unwrap_or_default().to_owned())),
                other => self.fail(format!("readLog: {other}")),
            }
            i = end + 1;
        }
        out
    }

    fn check_counter(&mut self, full: bool) {
        let count = self.send_ok("counter", "count", json!([])).as_u64().unwrap_or_else(|| self.fail("count"));
        let known = self.ledger.log.len() as u64;
        if count < known {
            self.fail(format!("the counter went back from {known} to {count}"));
        }
        if full && self.read_log(1, known) != self.ledger.log {
            self.fail("the counter's log changed below what was verified");
        }
        let new = self.read_log(known + 1, count);
        for (i, tag) in new.into_iter().enumerate() {
            let pos = known + 1 + i as u64;
            if !self.ledger.logged.insert(tag.clone()) {
                self.fail(format!("increment {tag} applied twice (again at {pos})"));
            }
            match self.ledger.acked.remove(&tag) {
                Some(acked) if acked == pos => {}
                Some(acked) => self.fail(format!("increment {tag} was acknowledged as {acked}, logged at {pos}")),
                None if self.ledger.in_flight.remove(&tag) => {}
                None => self.fail(format!("increment {tag} at {pos} was never sent, or not in this run")),
            }
            self.ledger.log.push(tag);
        }
        if let Some((tag, n)) = self.ledger.acked.iter().next() {
            self.fail(format!(
                "acknowledged increment {tag} (value {n}) is lost; counter at {count}, {} acknowledged missing",
                self.ledger.acked.len()
            ));
        }
        // What was in flight and is not there now never will be.
        self.ledger.in_flight.clear();
    }

    fn pipe_steps(&self, tags: &[&String]) -> Vec<u64> {
        let mut out = Vec::new();
        for chunk in tags.chunks(200) {
            match self.send_ok("pipeb", "steps", json!([chunk])) {
                Json::Array(v) => out.extend(v.iter().map(|n| n.as_u64().unwrap_or(u64::MAX))),
                other => self.fail(format!("steps: {other}")),
            }
        }
        out
    }

    fn check_pipelines(&mut self, full: bool) {
        let pipes = std::mem::take(&mut self.ledger.pipes);
        let tags: Vec<&String> = pipes.iter().map(|p| &p.tag).collect();
        for (p, got) in pipes.iter().zip(self.pipe_steps(&tags)) {
            if (p.exact && got != p.steps) || got > p.steps {
                let how = if p.exact { "exactly" } else { "at most" };
                self.fail(format!("pipeline {} made {got} steps, expected {how} {}", p.tag, p.steps));
            }
            self.ledger.pipe_steps.insert(p.tag.clone(), got);
        }
        if full {
            let (tags, want): (Vec<&String>, Vec<u64>) = self.ledger.pipe_steps.iter().map(|(t, n)| (t, *n)).unzip();
            let got = self.pipe_steps(&tags);
            if let Some(i) = (0..tags.len()).find(|&i| got[i] != want[i]) {
                self.fail(format!("pipeline {} now has {} steps, had {}", tags[i], got[i], want[i]));
            }
        }
    }

    /// Runs the load until `kill -9` after `load_ms`; records what the clients were told.
    fn load_and_kill(&mut self, echo: Echo, rng: &mut Rng, load_ms: u64) -> u32 {
        let k = self.kill;
        let sock = &self.d.sock;
        let counters: Vec<JoinHandle<CounterRun>> = (0..2)
            .map(|c| {
                let (sock, root, prefix) = (sock.clone(), self.roots["counter"].clone(), format!("c{k}.{c}"));
                std::thread::spawn(move || counter_client(sock, root, prefix))
            })
            .collect();
        let pipes = {
            let (sock, root, prefix, rng) = (sock.clone(), self.roots["pipea"].clone(), format!("p{k}"), rng.fork());
            std::thread::spawn(move || pipeline_client(sock, root, prefix, rng))
        };
        let churn = {
            let (sock, roots, rng) = (sock.clone(), self.roots.clone(), rng.fork());
            std::thread::spawn(move || churn_client(sock, roots, rng))
        };
        let io = std::thread::spawn(move || echo.run(format!("io{k}")));
        std::thread::sleep(Duration::from_millis(load_ms));
        let pid = self.d.kill9().unwrap_or_else(|e| self.fail(e));
        let mut errors = Vec::new();
        for c in counters {
            let run = c.join().unwrap();
            self.ledger.acked_total += run.acked.len() as u64;
            self.ledger.in_flight_total += run.in_flight.len() as u64;
            self.ledger.acked.extend(run.acked);
            self.ledger.in_flight.extend(run.in_flight);
            errors.extend(run.errors);
        }
        let run = pipes.join().unwrap();
        self.ledger.completed += run.completed;
        self.ledger.rejected += run.rejected;
        self.ledger.pipes_in_flight += run.records.iter().filter(|p| !p.exact).count() as u64;
        self.ledger.pipes.extend(run.records);
        errors.extend(run.errors);
        let run = churn.join().unwrap();
        self.ledger.churned += run.churned;
        errors.extend(run.errors);
        let run = io.join().unwrap();
        self.ledger.echoed += run.echoed;
        errors.extend(run.errors);
        if !errors.is_empty() {
            self.fail(format!("under load:\n{}", errors.join("\n")));
        }
        pid
    }

    /// Starts the daemon and kills it `delay_ms` after its process exists (while it opens the
    /// database and resumes the vats, or soon after).
    fn kill_while_starting(&self, delay_ms: u64) {
        let mut start = self.d.cmd(&["daemon", "start", "--timeout", "120"]).spawn().expect("run ocap daemon start");
        let began = Instant::now();
        while self.d.pid().is_none() {
            if began.elapsed() > DEADLINE || start.try_wait().unwrap().is_some_and(|s| !s.success()) {
                self.fail("the daemon did not start");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        self.d.kill9().unwrap_or_else(|e| self.fail(e));
        let _ = start.wait();
    }

    /// `ocap check` on the database as the kill left it (the daemon is down: checked directly).
    fn check_dead(&mut self) {
        let db = self.d.home.join("kernel.sqlite");
        let inspect = self.d.ocap(&["--json", "inspect", "--db", db.to_str().unwrap(), "--limit", "1000000"]);
        let inspect: Json = serde_json::from_slice(&inspect.stdout).unwrap_or_default();
        self.orphan_reads = inspect["runQueue"]["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| serde_json::from_str::<Json>(r["item"].as_str()?).ok())
                    .filter(|i| {
                        i["type"] == "send"
                            && i["target"] == self.io_kref.as_str()
                            && i["message"]["methargs"]["body"].as_str().is_some_and(|b| b.starts_with("#[\"read\""))
                    })
                    .count() as u64
            })
            .unwrap_or(0);
        self.at_kill = format!("{:#}", inspect["runQueue"]);
        let out = self.d.ocap(&["--json", "check"]);
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !text.contains("\"ok\":true") {
            self.fail(format!(
                "ocap check after the kill ({}): {text}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }

    fn table_sizes(&self) -> String {
        let rows = self.query(
            "SELECT (SELECT COUNT(*) FROM objects) AS objects, (SELECT COUNT(*) FROM promises) AS promises, \
             (SELECT COUNT(*) FROM clist) AS clist",
        );
        let r = &rows[0];
        let n = |k: &str| r[k].as_str().unwrap_or("?").to_owned();
        format!("objects {} promises {} clist {}", n("objects"), n("promises"), n("clist"))
    }
}

fn torture(default_kills: u64) {
    let kills = env_u64("OCAP_TORTURE_KILLS").unwrap_or(default_kills) as u32;
    let max_load_ms = env_u64("OCAP_TORTURE_MAX_LOAD_MS").unwrap_or(300);
    let seed = env_u64("OCAP_TORTURE_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("torture: {kills} kills, load up to {max_load_ms} ms; seed {seed} (OCAP_TORTURE_SEED={seed} repeats it)");
    let mut rng = Rng(seed);
    let d = Daemon::new();
    let io_sock = d.tmp.path().join("t.sock");
    let mut t = Torture {
        d,
        seed,
        kill: 0,
        io_sock,
        roots: HashMap::new(),
        ledger: Ledger::default(),
        at_kill: String::new(),
        io_kref: String::new(),
        orphan_reads: 0,
    };
    if let Ok(filter) = std::env::var("OCAP_TORTURE_LOG") {
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700).create(&t.d.home).unwrap();
        std::fs::write(t.d.home.join("daemon.json"), json!({ "logFilter": filter }).to_string()).unwrap();
    }
    let began = Instant::now();
    t.start();
    t.launch();
    let mut echo = t.check_restarted(false);
    let mut sizes_before = t.table_sizes();
    let mut during_resume = 0;
    let mut kill = 0;
    while kill < kills {
        kill += 1;
        t.kill = kill;
        let load_ms = rng.below(max_load_ms + 1);
        t.load_and_kill(echo, &mut rng, load_ms);
        t.check_dead();
        // One restart in ten is killed again while the kernel is opening and resuming its vats.
        while kill < kills && rng.percent(10) {
            kill += 1;
            t.kill = kill;
            during_resume += 1;
            let delay = rng.below(max_load_ms + 1);
            t.kill_while_starting(delay);
            t.check_dead();
        }
        t.start();
        echo = t.check_restarted(kill % FULL_CHECK_EVERY == 0 || kill == kills);
        if kill == 1 {
            sizes_before = t.table_sizes();
        }
        if kill % 10 == 0 || kill == kills {
            let l = &t.ledger;
            eprintln!(
                "torture: {kill}/{kills} kills ({:.0} s): counter {} ({} acknowledged, {} in flight at kills), \
                 pipelines {} completed {} rejected {} in flight, {} churned, {} echoed ({} lines swallowed); {}",
                began.elapsed().as_secs_f64(),
                l.log.len(),
                l.acked_total,
                l.in_flight_total,
                l.completed,
                l.rejected,
                l.pipes_in_flight,
                l.churned,
                l.echoed,
                l.swallowed,
                t.table_sizes()
            );
        }
    }
    // Stop cleanly: the pump ends with the echoes of this run, and the state checks out.
    drop(echo.stream);
    drop(echo.reader);
    match echo.pump.join().unwrap() {
        Reply::Ok(n) if n == json!(1) => {}
        other => t.fail(format!("pump after the client left: {other:?}")),
    }
    t.wait_idle();
    let sizes_after = t.table_sizes();
    t.ocap_ok(&["daemon", "stop"]);
    t.check_dead();
    eprintln!(
        "torture: passed, seed {seed}: {kills} kills ({during_resume} during resume) in {:.0} s, 0 failures; \
         tables after the first restart: {sizes_before}; at the end: {sizes_after}",
        began.elapsed().as_secs_f64()
    );
    assert!(t.ledger.acked_total > 0, "the load never got an increment acknowledged");
}

/// Ten kills, for CI.
#[test]
fn torture_short() {
    torture(10);
}

/// `OCAP_TORTURE_KILLS=1000 cargo test -p ocap-cli --test torture -- --ignored --nocapture`
#[test]
#[ignore = "long: run with --ignored"]
fn torture_long() {
    torture(100);
}
