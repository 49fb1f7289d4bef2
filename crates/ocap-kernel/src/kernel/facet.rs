//! The kernel facet: a system-only kernel service that gives system subclusters the host's
//! powers (host-surface.md §5): launch and terminate subclusters, send messages, look up
//! system roots, turn krefs into presences, ping vats.
//!
//! Like every service it runs outside cranks: each call is posted to the run loop as a job
//! that runs between cranks, so the facet can do anything a host call can without
//! deadlocking the crank that invoked it. Errors reach the caller as rejections.

use std::sync::{Arc, Mutex};

use super::launch::BootstrapSlot;
use super::run_loop::{LoopHandle, LoopState};
use crate::capdata::CapData;
use crate::config::ClusterConfig;
use crate::core::{KernelService, ServiceReply};
use crate::json::{from_json, to_json};
use crate::refs::{KRef, VatId};
use crate::smallcaps::Value;

/// The facet's only way into the kernel: jobs posted to the run loop.
pub(crate) struct KernelFacet {
    run_loop: LoopHandle,
}

impl KernelFacet {
    pub(crate) fn new(run_loop: LoopHandle) -> Self {
        KernelFacet { run_loop }
    }
}

/// `{body, slots}` as a record value (the JS kernel's CapData as vats see it).
fn capdata_record(c: &CapData<KRef>) -> Value {
    from_json(&serde_json::to_value(c).unwrap_or_default()).unwrap_or(Value::Undefined)
}

fn kref_arg(v: Option<&Value>) -> Result<KRef, String> {
    match v {
        Some(Value::Remotable { slot, .. }) | Some(Value::Promise { slot }) => Ok(*slot),
        Some(Value::String(s)) => s.parse().map_err(|e| format!("{e}")),
        other => Err(format!("expected a reference or kref string, got {other:?}")),
    }
}

fn str_arg(v: Option<&Value>, what: &str) -> Result<String, String> {
    match v {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(format!("{what} must be a string")),
    }
}

fn record(pairs: Vec<(&str, Value)>) -> Value {
    Value::Record(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// Runs one facet method on the loop. `Ok(Some(v))` answers now; `Ok(None)` means the method
/// answers later through `reply` (which it then owns).
fn dispatch(
    st: &mut LoopState,
    method: &str,
    args: &[Value],
    reply: &mut Option<ServiceReply>,
) -> Result<Option<Value>, String> {
    let core = &mut st.core;
    let e = |e: crate::KernelError| e.to_string();
    match method {
        "ping" => Ok(Some(Value::str("pong"))),
        "getStatus" => {
            let vats = core.active_vats().map_err(e)?;
            let subclusters = core.store().subclusters().map_err(|x| x.to_string())?;
            let vats = vats
                .into_iter()
                .map(|v| {
                    record(vec![
                        ("id", Value::str(v.id.to_string())),
                        ("name", Value::str(v.name)),
                        ("subclusterId", v.subcluster.map(Value::str).unwrap_or(Value::Null)),
                    ])
                })
                .collect();
            let subclusters = subclusters.into_iter().map(|s| record(vec![("id", Value::str(s.id))])).collect();
            Ok(Some(record(vec![("vats", Value::Array(vats)), ("subclusters", Value::Array(subclusters))])))
        }
        "getSubclusters" | "getSubcluster" => {
            let all = core.store().subclusters().map_err(|x| x.to_string())?;
            let want = if method == "getSubcluster" { Some(str_arg(args.first(), "id")?) } else { None };
            let mut out = Vec::new();
            for s in all.into_iter().filter(|s| want.as_ref().is_none_or(|w| *w == s.id)) {
                let config: serde_json::Value = serde_json::from_str(&s.config).unwrap_or_default();
                let vats = core.store().subcluster_vats(&s.id).map_err(|x| x.to_string())?;
                let vats = Value::Record(vats.into_iter().map(|(v, n)| (n, Value::str(v.to_string()))).collect());
                let config = from_json(&config).map_err(|x| x.to_string())?;
                out.push(record(vec![("id", Value::str(s.id)), ("config", config), ("vats", vats)]));
            }
            Ok(Some(if want.is_some() { out.pop().unwrap_or(Value::Undefined) } else { Value::Array(out) }))
        }
        "getSystemSubclusterRoot" => {
            let name = str_arg(args.first(), "name")?;
            Ok(Some(Value::str(core.system_subcluster_root(&name).map_err(e)?.to_string())))
        }
        "getPresence" => {
            let kref = kref_arg(args.first())?;
            core.require_exists(kref).map_err(e)?;
            let iface = match args.get(1) {
                Some(Value::String(s)) => s.clone(),
                _ => "Kernel Object".into(),
            };
            Ok(Some(Value::presence(kref, Some(&iface))))
        }
        "pingVat" => {
            let vat: VatId = str_arg(args.first(), "vatId")?.parse().map_err(|x| format!("{x}"))?;
            Ok(Some(Value::str(core.ping_vat(vat).map_err(e)?)))
        }
        "terminateSubcluster" => {
            core.terminate_subcluster(&str_arg(args.first(), "id")?).map_err(e)?;
            Ok(Some(Value::Undefined))
        }
        "launchSubcluster" => {
            let json = to_json(args.first().ok_or("launchSubcluster needs a config")?);
            let config = ClusterConfig::from_value(json).map_err(|x| x.to_string())?;
            // The reply goes to the bootstrap waiter, but comes back here if the launch fails
            // at once, so the caller gets the launch's error rather than "dropped the call".
            let shared_reply = Arc::new(Mutex::new(Some(reply.take().ok_or("internal: reply already used")?)));
            let waiter_reply = shared_reply.clone();
            let (slot, waiter) = BootstrapSlot::waiter(move |launched, r| {
                let Some(reply) = waiter_reply.lock().ok().and_then(|mut g| g.take()) else { return };
                let (sid, root) = launched.unwrap_or((String::new(), KRef::Object(0)));
                match r {
                    Ok(v) => reply.resolve(record(vec![
                        ("subclusterId", Value::str(sid)),
                        ("rootKref", Value::str(root.to_string())),
                        ("root", Value::presence(root, Some("vatRoot"))),
                        ("bootstrapResult", capdata_record(&v)),
                    ])),
                    Err(reason) => reply.reject(crate::smallcaps::kunser(&reason).unwrap_or(Value::Undefined)),
                }
            });
            match core.start_subcluster(&config, st.launcher.as_mut(), None, Some(waiter)) {
                Ok(launch) => {
                    slot.fill(&launch);
                    Ok(None)
                }
                Err(err) => {
                    *reply = shared_reply.lock().ok().and_then(|mut g| g.take());
                    Err(e(err))
                }
            }
        }
        "queueMessage" => {
            let target = kref_arg(args.first())?;
            let method = str_arg(args.get(1), "method")?;
            let margs = match args.get(2) {
                Some(Value::Array(a)) => a.clone(),
                None => Vec::new(),
                _ => return Err("args must be an array".into()),
            };
            core.require_exists(target).map_err(e)?;
            let reply = reply.take().ok_or("internal: reply already used")?;
            core.queue_message(
                target,
                &method,
                margs,
                Some(Box::new(move |r| match r {
                    Ok(v) => reply.resolve(capdata_record(&v)),
                    Err(v) => reply.reject(crate::smallcaps::kunser(&v).unwrap_or(Value::Undefined)),
                })),
            )
            .map_err(e)?;
            Ok(None)
        }
        "reset" => {
            core.reset().map_err(e)?;
            Ok(Some(Value::Undefined))
        }
        other => Err(format!("kernelFacet has no method {other:?}")),
    }
}

impl KernelService for KernelFacet {
    fn invoke(&self, method: &str, args: Vec<Value>, reply: ServiceReply) {
        let method = method.to_owned();
        self.run_loop.post(move |st: &mut LoopState| {
            let mut reply = Some(reply);
            match dispatch(st, &method, &args, &mut reply) {
                Ok(Some(v)) => {
                    if let Some(r) = reply {
                        r.resolve(v)
                    }
                }
                Ok(None) => {}
                Err(msg) => {
                    if let Some(r) = reply {
                        r.reject(Value::error(format!("[KERNEL:DELIVERY_FAILED] {msg}")))
                    }
                }
            }
        });
    }
}
