//! Crank traces: what each crank did, for whoever watches (the panel's Trace page).
//!
//! One `CrankTrace` per unit of work the kernel runs on its own (a crank from the queues, a
//! kernel service's answer, a batch of syscalls an endpoint made outside a delivery): the
//! work, the endpoint it went to, the syscalls it made (at most `MAX_TRACED_SYSCALLS`), the
//! outcome and the time it took.
//!
//! Built for the hot path: `KernelCore` holds an optional `tokio::sync::broadcast::Sender`
//! (`set_tracer`); at the start of a unit it checks once whether anyone is subscribed, and
//! only then records anything. With no subscriber nothing is allocated; the syscall handler
//! and the delivery code only test `self.trace.is_some()`. Sending never blocks the run loop:
//! a subscriber that falls more than the channel's capacity behind loses the oldest traces
//! (`RecvError::Lagged`). Tracing changes nothing the kernel does.

use std::time::Instant;

use serde::Serialize;
use tokio::sync::broadcast;

use super::unit::Outcome;
use super::KernelError;
use crate::refs::{EndpointId, KRef, VatId};
use crate::smallcaps;
use crate::store::{GcActionKind, Message};
use crate::vat::VatSyscall;

/// At most this many syscalls are recorded per crank; the rest are only counted
/// (`CrankTrace::syscalls_omitted`).
pub const MAX_TRACED_SYSCALLS: usize = 50;

/// How many traces a subscriber may fall behind before it loses the oldest.
pub const TRACE_CAPACITY: usize = 1024;

/// A summary is cut to this many bytes (at a character boundary), with `…` after it.
const MAX_SUMMARY_BYTES: usize = 160;

/// One crank, as it happened. Serialized in camelCase (`durationUs`, `syscallsOmitted`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CrankTrace {
    /// The crank's number (`KernelCore::crank_count` after it). Units that are not counted as
    /// cranks (a service's answer, async syscalls) carry the number of the last crank.
    pub crank: u64,
    pub work: TracedWork,
    /// The endpoint delivered to (or whose syscalls ran); none when the work reached no
    /// endpoint (a send parked on a promise, rejected, or given to a kernel service).
    pub endpoint: Option<EndpointId>,
    /// The syscalls made, in order, at most `MAX_TRACED_SYSCALLS`.
    pub syscalls: Vec<TracedSyscall>,
    /// Syscalls made beyond `MAX_TRACED_SYSCALLS`.
    pub syscalls_omitted: usize,
    pub outcome: TracedOutcome,
    /// Wall-clock time from taking the work to finishing its unit, in microseconds.
    pub duration_us: u64,
}

/// What a crank was given to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum TracedWork {
    /// A message from the run queue: its target, method (when the body names it plainly) and
    /// result promise.
    Send { target: KRef, method: Option<String>, result: Option<KRef> },
    /// A promise's settlement, to a subscriber; with `batched`, the settlements of the
    /// run-queue notifies delivered with it in one `notify`, in queue order
    /// (`notify_batch.rs`).
    Notify {
        endpoint: EndpointId,
        kpid: KRef,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        batched: Vec<KRef>,
    },
    /// A GC action (`dropExports`, `retireExports`, `retireImports`) and its krefs.
    Gc { action: &'static str, endpoint: EndpointId, krefs: Vec<KRef> },
    /// Bring-out-your-dead.
    Reap { vat: VatId },
    /// One bounded step of a terminated endpoint's cleanup.
    Cleanup { endpoint: EndpointId },
    /// A kernel service's answer settling a promise.
    ServiceReply { kpid: KRef },
    /// Syscalls an endpoint made outside a delivery (a timer, a remote's frame).
    AsyncSyscalls { endpoint: EndpointId, count: usize },
}

/// One syscall: its liveslots name, a short summary of its arguments (in the endpoint's
/// space), and why it was refused, if it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TracedSyscall {
    pub name: &'static str,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How the crank ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum TracedOutcome {
    /// Its effects were kept.
    Commit,
    /// Its effects were kept, then the endpoint was terminated (a vat's `exit(false)`).
    CommitThenTerminate { endpoint: EndpointId, reason: String },
    /// Rolled back, and the endpoint terminated (illegal syscall, delivery error,
    /// `exit(true)`).
    Abort { endpoint: EndpointId, reason: String },
    /// Failed inside the kernel: rolled back, its item discarded.
    Error { message: String },
}

/// The trace of the unit in progress (`KernelCore::trace`).
#[derive(Debug)]
pub(crate) struct TraceInProgress {
    crank: u64,
    work: TracedWork,
    started: Instant,
    pub(crate) endpoint: Option<EndpointId>,
    syscalls: Vec<TracedSyscall>,
    omitted: usize,
    /// Set when the unit failed after its body had an outcome (`on_error`).
    failed: Option<String>,
}

impl TraceInProgress {
    pub(crate) fn new(crank: u64, work: TracedWork) -> Box<TraceInProgress> {
        let endpoint = match &work {
            TracedWork::Notify { endpoint, .. }
            | TracedWork::Gc { endpoint, .. }
            | TracedWork::Cleanup { endpoint }
            | TracedWork::AsyncSyscalls { endpoint, .. } => Some(*endpoint),
            TracedWork::Reap { vat } => Some((*vat).into()),
            TracedWork::Send { .. } | TracedWork::ServiceReply { .. } => None,
        };
        Box::new(TraceInProgress {
            crank,
            work,
            started: Instant::now(),
            endpoint,
            syscalls: Vec::new(),
            omitted: 0,
            failed: None,
        })
    }

    /// Records a syscall, or only counts it past the cap.
    pub(crate) fn syscall(&mut self, name: &'static str, summary: String, error: Option<String>) {
        if self.syscalls.len() < MAX_TRACED_SYSCALLS {
            self.syscalls.push(TracedSyscall { name, summary, error });
        } else {
            self.omitted += 1;
        }
    }

    /// Notes that the unit failed inside the kernel (its outcome is then that error).
    pub(crate) fn fail(&mut self, e: &KernelError) {
        self.failed.get_or_insert_with(|| e.to_string());
    }

    /// The finished trace, given the outcome the unit's body had.
    pub(crate) fn finish(self, outcome: TracedOutcome) -> CrankTrace {
        let outcome = match self.failed {
            Some(message) => TracedOutcome::Error { message },
            None => outcome,
        };
        CrankTrace {
            crank: self.crank,
            work: self.work,
            endpoint: self.endpoint,
            syscalls: self.syscalls,
            syscalls_omitted: self.omitted,
            outcome,
            duration_us: u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX),
        }
    }
}

impl TracedOutcome {
    /// The outcome of a unit's body.
    pub(crate) fn of(outcome: &Result<Outcome, KernelError>) -> TracedOutcome {
        match outcome {
            Ok(Outcome::Commit) => TracedOutcome::Commit,
            Ok(Outcome::CommitThenTerminate { endpoint, info }) => {
                TracedOutcome::CommitThenTerminate { endpoint: *endpoint, reason: smallcaps::reason_text(info) }
            }
            Ok(Outcome::Abort { endpoint, info }) => {
                TracedOutcome::Abort { endpoint: *endpoint, reason: smallcaps::reason_text(info) }
            }
            Err(e) => TracedOutcome::Error { message: e.to_string() },
        }
    }
}

impl TracedWork {
    /// A run-queue `send` as a trace shows it.
    pub(crate) fn send(target: KRef, message: &Message) -> TracedWork {
        TracedWork::Send { target, method: method_of(&message.methargs.body), result: message.result }
    }

    pub(crate) fn gc(kind: GcActionKind, endpoint: EndpointId, krefs: &[KRef]) -> TracedWork {
        let action = match kind {
            GcActionKind::DropExport => "dropExports",
            GcActionKind::RetireExport => "retireExports",
            GcActionKind::RetireImport => "retireImports",
        };
        TracedWork::Gc { action, endpoint, krefs: krefs.to_vec() }
    }
}

/// The method of a smallcaps `[method, args]` body (`#["name",…]`), when it is a plain
/// string; read without decoding the arguments.
pub fn method_of(body: &str) -> Option<String> {
    let rest = body.strip_prefix("#[")?.trim_start();
    if !rest.starts_with('"') {
        return None;
    }
    let method: String = serde_json::Deserializer::from_str(rest).into_iter::<String>().next()?.ok()?;
    // A string starting with one of smallcaps' prefixes (`!`, `$`, `&`, …) encodes something
    // else, or an escaped string; show those only when plain.
    match method.chars().next() {
        Some(c) if "!$&#%+-@?*".contains(c) => None,
        _ => Some(method),
    }
}

/// Cuts `s` to `MAX_SUMMARY_BYTES` at a character boundary.
fn cut(mut s: String) -> String {
    if s.len() > MAX_SUMMARY_BYTES {
        let mut end = MAX_SUMMARY_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// A list of refs, the first few of them.
fn refs(list: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = list.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(" ");
    if list.len() > SHOWN {
        s.push_str(&format!(" (+{} more)", list.len() - SHOWN));
    }
    s
}

/// A short, human-readable summary of a syscall's arguments (refs in the endpoint's space).
pub(crate) fn summarize(call: &VatSyscall) -> String {
    cut(match call {
        VatSyscall::Send { target, methargs, result } => {
            let method = method_of(&methargs.body).unwrap_or_else(|| "?".into());
            match result {
                Some(r) => format!("{target}.{method}() → {r}"),
                None => format!("{target}.{method}()"),
            }
        }
        VatSyscall::Subscribe(vpid) => vpid.clone(),
        VatSyscall::Resolve(resolutions) => resolutions
            .iter()
            .map(|r| {
                let how = if r.rejected { "rejected" } else { "fulfilled" };
                format!("{} {how} {}", r.vpid, r.data.body)
            })
            .collect::<Vec<_>>()
            .join("; "),
        VatSyscall::Exit { failure, info } => format!("failure={failure} {}", info.body),
        VatSyscall::DropImports(v)
        | VatSyscall::RetireImports(v)
        | VatSyscall::RetireExports(v)
        | VatSyscall::AbandonExports(v) => refs(v),
        VatSyscall::VatstoreGet(key) | VatSyscall::VatstoreGetNextKey(key) | VatSyscall::VatstoreDelete(key) => {
            key.clone()
        }
        VatSyscall::VatstoreSet(key, value) => format!("{key} ({} bytes)", value.len()),
    })
}

/// Whether `tracer` has anyone to send to: one uncontended lock, once per unit.
pub(crate) fn listening(tracer: &Option<broadcast::Sender<CrankTrace>>) -> bool {
    tracer.as_ref().is_some_and(|tx| tx.receiver_count() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_method_is_read_from_a_plain_body() {
        assert_eq!(method_of("#[\"increment\",[]]").as_deref(), Some("increment"));
        assert_eq!(method_of("#[ \"a\\\"b\" ,[1]]").as_deref(), Some("a\"b"));
        assert_eq!(method_of("#[\"!escaped\",[]]"), None);
        assert_eq!(method_of("#[\"%@@asyncIterator\",[]]"), None);
        assert_eq!(method_of("#{}"), None);
        assert_eq!(method_of(""), None);
    }

    #[test]
    fn summaries_are_cut_at_a_character_boundary() {
        let s = cut("é".repeat(200));
        assert!(s.len() <= MAX_SUMMARY_BYTES + '…'.len_utf8() && s.ends_with('…'));
        assert_eq!(cut("short".into()), "short");
    }
}
