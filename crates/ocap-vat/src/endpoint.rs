//! `JsVat`: a [`VatWorker`] seen by the kernel as an
//! [`ocap_abi::vat::Endpoint`].
//!
//! The adapter is a translation layer and nothing else:
//!
//! - a [`VatDelivery`] becomes the liveslots `VatDeliveryObject` tuple
//!   (`["message", vref, {methargs, result?}]`, `["notify", [[vpid, rejected,
//!   capdata], ..]]`, `["dropExports", [..]]`, `["retireExports", [..]]`,
//!   `["retireImports", [..]]`, `["bringOutYourDead"]`);
//! - every syscall of the delivery is parsed into a [`VatSyscall`] and handed to
//!   the kernel's [`SyscallHandler`], in order: those the worker hands over while
//!   the vat runs (in chunks, [`VatWorker::deliver_streaming`]) at once, the
//!   rest from the reply; then the delivery's vatstore
//!   checkpoint is replayed as `VatstoreSet` / `VatstoreDelete` syscalls, so
//!   the kernel writes the vatstore inside the crank's transaction (and a
//!   crank that aborts forgets it);
//! - a syscall tuple that does not parse becomes a syscall the kernel refuses
//!   ([`parse_syscall`]), so the vat is terminated with the reason in the
//!   message, never a panic;
//! - a liveslots delivery error (`reply.error`) and a dead worker (memory
//!   limit, interrupt, panic) are `Err(reason)`: the kernel aborts the crank
//!   and terminates the vat.
//!
//! Syscalls a vat makes outside deliveries (timers) arrive as
//! [`WorkerEvent::AsyncSyscalls`] on the worker's event callback; whoever
//! owns the kernel converts them with [`parse_syscalls`] and passes them to
//! `KernelCore::handle_async_syscalls(vat, ..)`. `JsVat` does not route them
//! itself: the event callback runs on the worker thread, and the kernel is
//! owned by its run loop.

use std::collections::VecDeque;

use ocap_abi::capdata::CapData;
use ocap_abi::vat::{Endpoint, SyscallHandler, VatDelivery, VatResolution, VatSyscall};
use serde_json::{json, Map, Value as Json};

use crate::{DeliveryReply, PendingReply, VatWorker, VatWorkerError, WorkerEvent, WorkerOptions};

/// Longest excerpt of a malformed syscall quoted in the termination reason.
const MALFORMED_EXCERPT_CHARS: usize = 200;

/// A JS vat (QuickJS + SES + liveslots) as a kernel endpoint.
pub struct JsVat {
    vat_id: String,
    worker: Option<VatWorker>,
    /// Deliveries started ahead of their cranks ([`Endpoint::prefetch`]), in the order they
    /// were posted, with their replies to come.
    prefetched: VecDeque<(VatDelivery, PendingReply)>,
}

/// What liveslots' `startVat` left behind when a [`JsVat`] was started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VatStart {
    /// Vatstore keys written by `startVat` (sorted). For a new vat (started
    /// on an empty vatstore) this is the whole vatstore: pass it as
    /// `VatSpec::initial_vatstore`.
    pub vatstore_sets: Vec<(String, String)>,
    /// Vatstore keys deleted by `startVat` (always empty for a new vat).
    pub vatstore_deletes: Vec<String>,
    /// Syscalls other than vatstore ones made by `startVat`. A new vat makes
    /// none (it holds no imports yet); a restarted vat whose
    /// `buildRootObject` messages objects it kept in baggage does. The caller
    /// decides: normally `KernelCore::handle_async_syscalls(vat,
    /// start.syscalls)` right after `add_vat` / `attach_vat`.
    pub syscalls: Vec<VatSyscall>,
}

impl VatStart {
    /// Everything `startVat` did, as one batch for
    /// `KernelCore::handle_async_syscalls`: the vatstore delta first, then
    /// the other syscalls. This is how a *restarted* vat's start is recorded
    /// (after `attach_vat`), since the kernel has no other way to write a
    /// vatstore outside a crank.
    pub fn into_syscalls(self) -> Vec<VatSyscall> {
        let mut out = Vec::with_capacity(self.vatstore_sets.len() + self.vatstore_deletes.len() + self.syscalls.len());
        out.extend(self.vatstore_sets.into_iter().map(|(k, v)| VatSyscall::VatstoreSet(k, v)));
        out.extend(self.vatstore_deletes.into_iter().map(VatSyscall::VatstoreDelete));
        out.extend(self.syscalls);
        out
    }
}

/// Why a [`JsVat`] could not be started.
#[derive(Debug, thiserror::Error)]
pub enum JsVatError {
    /// Spawning the worker or `initVat` failed before liveslots ran (bad
    /// config, unknown global, missing bundle, ...).
    #[error(transparent)]
    Worker(#[from] VatWorkerError),
    /// Liveslots' `startVat` failed (e.g. `buildRootObject` threw).
    #[error("vat {vat_id} failed to start: {reason}")]
    StartVat { vat_id: String, reason: String },
}

impl JsVat {
    /// Spawns a worker and runs `initVat` on it.
    ///
    /// `vat_config` is the JS kernel's VatConfig JSON (`bundleSpec`,
    /// `parameters`, `globals`, ...). The bundle is `bundle_text` when given,
    /// else read from `bundleSpec` (a path or a `file:` URL). `vatstore` is
    /// the vat's persisted vatstore: empty for a new vat,
    /// `core.store().vatstore_all(vat)` for a restart. `events` receives the
    /// worker's log records, async syscalls and death (see
    /// [`VatWorker::spawn`]).
    ///
    /// On a start error the worker is stopped before returning.
    pub fn start(
        options: WorkerOptions,
        vat_config: &Json,
        bundle_text: Option<String>,
        vatstore: Vec<(String, String)>,
        events: Box<dyn Fn(WorkerEvent) + Send>,
    ) -> Result<(JsVat, VatStart), JsVatError> {
        let vat_id = options.vat_id.clone();
        let worker = VatWorker::spawn(options, events)?;
        let reply = worker.init(vat_config.clone(), bundle_text, vatstore)?;
        if let Some(reason) = reply.error {
            worker.terminate();
            return Err(JsVatError::StartVat { vat_id, reason });
        }
        let start = VatStart {
            vatstore_sets: reply.vatstore_sets,
            vatstore_deletes: reply.vatstore_deletes,
            syscalls: reply.syscalls.iter().map(parse_syscall).collect(),
        };
        Ok((JsVat { vat_id, worker: Some(worker), prefetched: VecDeque::new() }, start))
    }

    /// Wraps a worker that is already initialised.
    pub fn from_worker(worker: VatWorker) -> JsVat {
        JsVat { vat_id: worker.vat_id().to_string(), worker: Some(worker), prefetched: VecDeque::new() }
    }

    /// The vat id the worker was started with.
    pub fn vat_id(&self) -> &str {
        &self.vat_id
    }

    /// The worker, while it runs.
    pub fn worker(&self) -> Option<&VatWorker> {
        self.worker.as_ref()
    }
}

impl Endpoint for JsVat {
    /// Liveslots keeps `vom.rc.`/`vom.ir.` vatstore keys for imports held by durable state.
    fn records_durable_imports(&self) -> bool {
        true
    }

    fn deliver(&mut self, delivery: VatDelivery, syscalls: &mut dyn SyscallHandler) -> Result<(), String> {
        let Some(worker) = self.worker.as_ref() else {
            return Err(format!("vat {} has no running worker", self.vat_id));
        };
        // Syscalls the vat hands over while it runs go to the kernel at once (the chunks of
        // `VatWorker::deliver_streaming`); the reply brings the rest. If the worker then
        // dies or times out, the crank fails and takes them back; should one of them have
        // been illegal, the vat is terminated for that first fault (`SyscallReport::outcome`),
        // not for the death.
        let mut early = |chunk: Vec<Json>| feed(&chunk, syscalls);
        let answer = match self.prefetched.pop_front() {
            Some((started, pending)) if started == delivery => worker.wait_streaming(pending, &mut early),
            Some((started, pending)) => {
                // Let the vat finish what it started; its state now holds a delivery the
                // kernel will not record, so the crank fails and the vat is terminated.
                let _ = worker.wait(pending);
                self.prefetched.clear();
                return Err(format!(
                    "vat {} ran a delivery ahead of its crank that was not the one delivered \
                     (started {started:?}, delivered {delivery:?})",
                    self.vat_id
                ));
            }
            None => worker.deliver_streaming(delivery_to_json(&delivery), &mut early),
        };
        let reply = match answer {
            Ok(reply) => reply,
            Err(e) => {
                // A dead worker answers nothing more; free it now.
                if matches!(e, VatWorkerError::Died { .. } | VatWorkerError::Timeout { .. }) {
                    if let Some(w) = self.worker.take() {
                        w.terminate();
                    }
                }
                return Err(e.to_string());
            }
        };
        replay(reply, syscalls)
    }

    fn prefetch(&mut self, delivery: &VatDelivery) -> bool {
        let Some(worker) = self.worker.as_ref() else { return false };
        match worker.post_deliver(delivery_to_json(delivery)) {
            Ok(pending) => {
                self.prefetched.push_back((delivery.clone(), pending));
                true
            }
            // The worker is gone: the delivery itself will find out and say so.
            Err(_) => false,
        }
    }

    fn shutdown(&mut self) {
        self.prefetched.clear();
        if let Some(worker) = self.worker.take() {
            worker.terminate();
        }
    }

    fn ping(&mut self) -> Result<(), String> {
        match &self.worker {
            Some(w) => w.ping().map_err(|e| e.to_string()),
            None => Err(format!("vat {} has no worker", self.vat_id)),
        }
    }
}

/// Hands syscall tuples to the kernel, in order.
fn feed(calls: &[Json], syscalls: &mut dyn SyscallHandler) {
    for call in calls {
        syscalls.syscall(parse_syscall(call));
    }
}

/// Feeds a delivery's syscalls, then its vatstore checkpoint, to the kernel.
/// The kernel refuses everything after an illegal syscall and terminates the
/// vat at the end of the crank, so the results are not inspected here.
fn replay(reply: DeliveryReply, syscalls: &mut dyn SyscallHandler) -> Result<(), String> {
    let DeliveryReply { syscalls: calls, vatstore_sets, vatstore_deletes, error } = reply;
    feed(&calls, syscalls);
    if let Some(error) = error {
        return Err(error);
    }
    for (key, value) in vatstore_sets {
        syscalls.syscall(VatSyscall::VatstoreSet(key, value));
    }
    for key in vatstore_deletes {
        syscalls.syscall(VatSyscall::VatstoreDelete(key));
    }
    Ok(())
}

// ------------------------------------------------------------------ deliveries

/// The liveslots `VatDeliveryObject` tuple of a kernel delivery.
///
/// `CapData` (`{body, slots}`) and vref lists are written by their serde `Serialize`: the
/// kernel's type owns its JSON shape. The tuples of the frequent deliveries (`message`,
/// `notify`) are assembled as `Json` values directly: `json!` would serialize an already
/// built `Json` argument again, a deep copy per delivery.
pub fn delivery_to_json(delivery: &VatDelivery) -> Json {
    match delivery {
        VatDelivery::Message { target, methargs, result } => {
            let mut msg = Map::with_capacity(2);
            msg.insert("methargs".into(), json!(methargs));
            if let Some(result) = result {
                msg.insert("result".into(), Json::String(result.clone()));
            }
            Json::Array(vec!["message".into(), Json::String(target.clone()), Json::Object(msg)])
        }
        VatDelivery::Notify(resolutions) => {
            let list = resolutions
                .iter()
                .map(|r| Json::Array(vec![Json::String(r.vpid.clone()), Json::Bool(r.rejected), json!(r.data)]))
                .collect();
            Json::Array(vec!["notify".into(), Json::Array(list)])
        }
        VatDelivery::DropExports(vrefs) => json!(["dropExports", vrefs]),
        VatDelivery::RetireExports(vrefs) => json!(["retireExports", vrefs]),
        VatDelivery::RetireImports(vrefs) => json!(["retireImports", vrefs]),
        VatDelivery::BringOutYourDead => json!(["bringOutYourDead"]),
    }
}

// ------------------------------------------------------------------ syscalls

/// Converts a liveslots `VatSyscallObject` tuple (as in
/// [`DeliveryReply::syscalls`] and [`WorkerEvent::AsyncSyscalls`]) into a
/// kernel syscall. Never fails: a tuple that does not parse becomes a `send`
/// to the invalid target `"(malformed syscall: <reason>: <excerpt>)"`, which
/// the kernel refuses as an illegal syscall, terminating the vat with that
/// text in its reason.
pub fn parse_syscall(json: &Json) -> VatSyscall {
    try_parse_syscall(json).unwrap_or_else(|why| {
        let text = json.to_string();
        let excerpt: String = text.chars().take(MALFORMED_EXCERPT_CHARS).collect();
        let ellipsis = if excerpt.len() < text.len() { "…" } else { "" };
        VatSyscall::Send {
            target: format!("(malformed syscall: {why}: {excerpt}{ellipsis})"),
            methargs: CapData::new("#null", vec![]),
            result: Some("(malformed syscall)".into()),
        }
    })
}

/// [`parse_syscall`] over a batch, e.g. the syscalls of
/// [`WorkerEvent::AsyncSyscalls`] before `KernelCore::handle_async_syscalls`.
pub fn parse_syscalls(calls: &[Json]) -> Vec<VatSyscall> {
    calls.iter().map(parse_syscall).collect()
}

fn try_parse_syscall(json: &Json) -> Result<VatSyscall, String> {
    let tuple = json.as_array().ok_or("not an array")?;
    let name = tuple.first().and_then(Json::as_str).ok_or("the first element is not the syscall name")?;
    let arg = |i: usize| -> Result<&Json, String> { tuple.get(i).ok_or_else(|| format!("{name} has no argument {i}")) };
    let arity = |n: usize| -> Result<(), String> {
        if tuple.len() == n + 1 {
            Ok(())
        } else {
            Err(format!("{name} takes {n} argument(s), got {}", tuple.len() - 1))
        }
    };
    Ok(match name {
        "send" => {
            arity(2)?;
            let target = string(arg(1)?, "send target")?;
            let msg = arg(2)?.as_object().ok_or("send message is not an object")?;
            let methargs = capdata(msg.get("methargs").ok_or("send message has no methargs")?, "methargs")?;
            let result = match msg.get("result") {
                None | Some(Json::Null) => None,
                Some(r) => Some(string(r, "send result")?),
            };
            VatSyscall::Send { target, methargs, result }
        }
        "subscribe" => {
            arity(1)?;
            VatSyscall::Subscribe(string(arg(1)?, "subscribe vpid")?)
        }
        "resolve" => {
            arity(1)?;
            let list = arg(1)?.as_array().ok_or("resolutions is not an array")?;
            let mut out = Vec::with_capacity(list.len());
            for r in list {
                let r = r.as_array().ok_or("a resolution is not an array")?;
                if r.len() != 3 {
                    return Err("a resolution is not [vpid, rejected, data]".into());
                }
                out.push(VatResolution {
                    vpid: string(&r[0], "resolution vpid")?,
                    rejected: r[1].as_bool().ok_or("resolution rejected is not a boolean")?,
                    data: capdata(&r[2], "resolution data")?,
                });
            }
            VatSyscall::Resolve(out)
        }
        "exit" => {
            arity(2)?;
            VatSyscall::Exit {
                failure: arg(1)?.as_bool().ok_or("exit isFailure is not a boolean")?,
                info: capdata(arg(2)?, "exit info")?,
            }
        }
        "dropImports" | "retireImports" | "retireExports" | "abandonExports" => {
            arity(1)?;
            let vrefs = string_list(arg(1)?, name)?;
            match name {
                "dropImports" => VatSyscall::DropImports(vrefs),
                "retireImports" => VatSyscall::RetireImports(vrefs),
                "retireExports" => VatSyscall::RetireExports(vrefs),
                _ => VatSyscall::AbandonExports(vrefs),
            }
        }
        other => return Err(format!("unknown syscall {other:?}")),
    })
}

fn string(v: &Json, what: &str) -> Result<String, String> {
    v.as_str().map(str::to_owned).ok_or_else(|| format!("{what} is not a string"))
}

fn string_list(v: &Json, what: &str) -> Result<Vec<String>, String> {
    v.as_array().ok_or_else(|| format!("{what} argument is not an array"))?.iter().map(|s| string(s, what)).collect()
}

fn capdata(v: &Json, what: &str) -> Result<CapData<String>, String> {
    let o = v.as_object().ok_or_else(|| format!("{what} is not {{body, slots}}"))?;
    let body = string(o.get("body").ok_or_else(|| format!("{what} has no body"))?, "body")?;
    let slots = string_list(o.get("slots").ok_or_else(|| format!("{what} has no slots"))?, "slots")?;
    Ok(CapData::new(body, slots))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_become_liveslots_tuples() {
        let m = VatDelivery::Message {
            target: "o+0".into(),
            methargs: CapData::new("#[\"ping\",[]]", vec![]),
            result: None,
        };
        assert_eq!(
            delivery_to_json(&m),
            json!(["message", "o+0", {"methargs": {"body": "#[\"ping\",[]]", "slots": []}}])
        );
        let m = VatDelivery::Message {
            target: "o+0".into(),
            methargs: CapData::new("#[\"f\",[\"$0\"]]", vec!["o-1".into()]),
            result: Some("p-1".into()),
        };
        assert_eq!(
            delivery_to_json(&m),
            json!(["message", "o+0", {"methargs": {"body": "#[\"f\",[\"$0\"]]", "slots": ["o-1"]}, "result": "p-1"}])
        );
        let n = VatDelivery::Notify(vec![VatResolution {
            vpid: "p+5".into(),
            rejected: true,
            data: CapData::new("#1", vec![]),
        }]);
        assert_eq!(delivery_to_json(&n), json!(["notify", [["p+5", true, {"body": "#1", "slots": []}]]]));
        assert_eq!(delivery_to_json(&VatDelivery::DropExports(vec!["o+10".into()])), json!(["dropExports", ["o+10"]]));
        assert_eq!(
            delivery_to_json(&VatDelivery::RetireExports(vec!["o+10".into()])),
            json!(["retireExports", ["o+10"]])
        );
        assert_eq!(
            delivery_to_json(&VatDelivery::RetireImports(vec!["o-1".into()])),
            json!(["retireImports", ["o-1"]])
        );
        assert_eq!(delivery_to_json(&VatDelivery::BringOutYourDead), json!(["bringOutYourDead"]));
    }

    #[test]
    fn syscall_tuples_parse() {
        assert_eq!(
            parse_syscall(
                &json!(["send", "o-1", {"methargs": {"body": "#[\"foo\",[]]", "slots": []}, "result": "p+5"}])
            ),
            VatSyscall::Send {
                target: "o-1".into(),
                methargs: CapData::new("#[\"foo\",[]]", vec![]),
                result: Some("p+5".into())
            }
        );
        assert_eq!(
            parse_syscall(&json!(["send", "o-1", {"methargs": {"body": "#0", "slots": []}}])),
            VatSyscall::Send { target: "o-1".into(), methargs: CapData::new("#0", vec![]), result: None }
        );
        assert_eq!(parse_syscall(&json!(["subscribe", "p+5"])), VatSyscall::Subscribe("p+5".into()));
        assert_eq!(
            parse_syscall(&json!(["resolve", [["p-1", false, {"body": "#\"$0.Alleged: x\"", "slots": ["o+10"]}]]])),
            VatSyscall::Resolve(vec![VatResolution {
                vpid: "p-1".into(),
                rejected: false,
                data: CapData::new("#\"$0.Alleged: x\"", vec!["o+10".into()])
            }])
        );
        assert_eq!(
            parse_syscall(&json!(["exit", true, {"body": "#\"bye\"", "slots": []}])),
            VatSyscall::Exit { failure: true, info: CapData::new("#\"bye\"", vec![]) }
        );
        assert_eq!(
            parse_syscall(&json!(["dropImports", ["o-1", "o-2"]])),
            VatSyscall::DropImports(vec!["o-1".into(), "o-2".into()])
        );
        assert_eq!(parse_syscall(&json!(["retireImports", ["o-1"]])), VatSyscall::RetireImports(vec!["o-1".into()]));
        assert_eq!(parse_syscall(&json!(["retireExports", ["o+1"]])), VatSyscall::RetireExports(vec!["o+1".into()]));
        assert_eq!(parse_syscall(&json!(["abandonExports", ["o+1"]])), VatSyscall::AbandonExports(vec!["o+1".into()]));
    }

    #[test]
    fn malformed_syscalls_become_sends_to_an_invalid_target() {
        for bad in [
            json!(null),
            json!([]),
            json!([3]),
            json!(["frobnicate", 1]),
            json!(["send", "o-1"]),
            json!(["send", "o-1", {"methargs": {"body": 3, "slots": []}}]),
            json!(["resolve", [["p-1", "yes", {"body": "#1", "slots": []}]]]),
            json!(["dropImports", "o-1"]),
            json!(["subscribe", "p-1", "extra"]),
            json!(["exit", false, {"body": "#1"}]),
        ] {
            match parse_syscall(&bad) {
                VatSyscall::Send { target, result, .. } => {
                    assert!(target.starts_with("(malformed syscall: "), "{target}");
                    assert!(result.is_some());
                }
                other => panic!("{bad} parsed as {other:?}"),
            }
        }
        let long = json!(["frobnicate", "x".repeat(1000)]);
        let VatSyscall::Send { target, .. } = parse_syscall(&long) else { panic!() };
        assert!(target.len() < 400 && target.ends_with("…)"), "{target}");
    }
}
