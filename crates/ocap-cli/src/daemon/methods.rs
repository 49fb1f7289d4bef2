//! The kernel-control methods (host-surface.md §7.2), plus the daemon's own `ping` and
//! `shutdown`. Params are checked strictly: a wrong shape is `INVALID_PARAMS`.

use ocap_kernel::config::ClusterConfig;
use ocap_kernel::kernel_extra::StatusDetails;
use ocap_kernel::{CapData, KRef, KernelError, VatId};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use super::server::DaemonState;
use crate::rpc::{codes, RpcError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdParams {
    id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KrefParams {
    kref: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlParams {
    sql: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LaunchParams {
    config: Json,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReapParams {
    #[serde(default)]
    ids: Option<Vec<String>>,
}

/// Named params (`{"id": "v1"}`), as the JS kernel's methods take them. Positional params
/// (`["v1"]`) are refused with a message saying so: serde would otherwise read an array into
/// the fields in declaration order, an undocumented form that silently changes meaning when
/// a field is added. (`queueMessage` is the one positional method, `[target, method, args]`.)
fn parse<T: DeserializeOwned>(params: Json) -> Result<T, RpcError> {
    if params.is_array() {
        return Err(RpcError::invalid_params("this method takes named params (a JSON object), not an array"));
    }
    serde_json::from_value(params).map_err(|e| RpcError::invalid_params(e.to_string()))
}

/// "Empty" params: `[]` (the JS kernel's form), `{}` or none.
fn no_params(params: &Json) -> Result<(), RpcError> {
    match params {
        Json::Null => Ok(()),
        Json::Array(a) if a.is_empty() => Ok(()),
        Json::Object(o) if o.is_empty() => Ok(()),
        _ => Err(RpcError::invalid_params("this method takes no params ([])")),
    }
}

fn vat_id(s: &str) -> Result<VatId, RpcError> {
    s.parse().map_err(|e| RpcError::invalid_params(format!("{e}")))
}

fn kref(s: &str) -> Result<KRef, RpcError> {
    s.parse().map_err(|e| RpcError::invalid_params(format!("{e}")))
}

/// A kernel error as an RPC error: bad input is `INVALID_PARAMS`, a missing thing
/// `NOT_FOUND`, anything else `INTERNAL_ERROR`.
pub fn kernel_error(e: KernelError) -> RpcError {
    let code = match &e {
        KernelError::Config(_) | KernelError::BadRef(_) | KernelError::NotAnObject(..) | KernelError::BadValue(_) => {
            codes::INVALID_PARAMS
        }
        KernelError::UnknownKref(_)
        | KernelError::NoSuchVat(_)
        | KernelError::VatNotRunning(_)
        | KernelError::NoSuchSubcluster(_)
        | KernelError::NoSuchService(_) => codes::NOT_FOUND,
        _ => codes::INTERNAL_ERROR,
    };
    RpcError::new(code, e.to_string())
}

pub fn capdata_json(c: &CapData<KRef>) -> Json {
    json!({"body": c.body, "slots": c.slots.iter().map(|s| s.to_string()).collect::<Vec<_>>()})
}

/// Runs one method. `shutdown` only answers; the server shuts down after replying.
pub async fn call(state: &DaemonState, method: &str, params: Json) -> Result<Json, RpcError> {
    match method {
        "ping" => no_params(&params).map(|()| json!("pong")),
        "shutdown" => no_params(&params).map(|()| json!({"status": "shutting down"})),
        "getStatus" => {
            no_params(&params)?;
            let kernel = state.kernel().await;
            let details = kernel.status_details().await.map_err(kernel_error)?;
            Ok(status_json(&details, &kernel.resume_failures))
        }
        "launchSubcluster" => {
            let p: LaunchParams = parse(params)?;
            let config = ClusterConfig::from_value(p.config).map_err(|e| RpcError::invalid_params(e.to_string()))?;
            let r = state.kernel().await.launch_subcluster(config).await.map_err(kernel_error)?;
            Ok(json!({
                "subclusterId": r.subcluster_id,
                "rootKref": r.root_kref.to_string(),
                "bootstrapResult": capdata_json(&r.bootstrap_result),
            }))
        }
        "terminateSubcluster" => {
            let p: IdParams = parse(params)?;
            state.kernel().await.terminate_subcluster(&p.id).await.map_err(kernel_error)?;
            Ok(Json::Null)
        }
        "queueMessage" => queue_message(state, params).await,
        "pingVat" => {
            let p: IdParams = parse(params)?;
            let pong = state.kernel().await.ping_vat(vat_id(&p.id)?).await.map_err(kernel_error)?;
            Ok(json!(pong))
        }
        "restartVat" => {
            let p: IdParams = parse(params)?;
            state.kernel().await.restart_vat(vat_id(&p.id)?).await.map_err(kernel_error)?;
            Ok(Json::Null)
        }
        "terminateVat" => {
            let p: IdParams = parse(params)?;
            state.kernel().await.terminate_vat(vat_id(&p.id)?, "terminated by the host").await.map_err(kernel_error)?;
            Ok(Json::Null)
        }
        "terminateAllVats" => {
            no_params(&params)?;
            state.kernel().await.terminate_all_vats("terminated by the host").await.map_err(kernel_error)?;
            Ok(Json::Null)
        }
        "collectGarbage" => {
            no_params(&params)?;
            state.kernel().await.collect_garbage().await.map_err(kernel_error)?;
            Ok(Json::Null)
        }
        "clearState" => {
            no_params(&params)?;
            state.clear_state().await?;
            Ok(Json::Null)
        }
        "reapVats" => {
            let p: ReapParams = if no_params(&params).is_ok() { ReapParams::default() } else { parse(params)? };
            let ids = p.ids.map(|ids| ids.iter().map(|s| vat_id(s)).collect::<Result<Vec<_>, _>>()).transpose()?;
            state.kernel().await.reap_vats(ids).await.map_err(kernel_error)?;
            Ok(Json::Null)
        }
        "revoke" => {
            let p: KrefParams = parse(params)?;
            state.kernel().await.revoke(kref(&p.kref)?).await.map_err(kernel_error)?;
            Ok(Json::Null)
        }
        "isRevoked" => {
            let p: KrefParams = parse(params)?;
            let revoked = state.kernel().await.is_revoked(kref(&p.kref)?).await.map_err(kernel_error)?;
            Ok(json!(revoked))
        }
        "executeDBQuery" => {
            let p: SqlParams = parse(params)?;
            let db = state.home.db();
            let defaults = super::query::QueryLimits::default();
            let limits = super::query::QueryLimits {
                max_rows: state.config.max_query_rows.unwrap_or(defaults.max_rows),
                max_bytes: state.config.max_query_bytes.unwrap_or(defaults.max_bytes),
            };
            tokio::task::spawn_blocking(move || super::query::execute(&db, &p.sql, limits))
                .await
                .map_err(|e| RpcError::new(codes::INTERNAL_ERROR, format!("query task failed: {e}")))?
        }
        // Ours (the JS kernel has none): the invariant checker, run between cranks.
        // `{"ok": true}` or `{"ok": false, "violations": [...]}`.
        "checkInvariants" => {
            no_params(&params)?;
            match state.kernel().await.check_invariants().await.map_err(kernel_error)? {
                Ok(()) => Ok(json!({"ok": true})),
                Err(violations) => Ok(json!({"ok": false, "violations": violations})),
            }
        }
        _ => Err(RpcError::new(codes::METHOD_NOT_FOUND, format!("Method not found: {method}"))),
    }
}

/// `[target, method, args?]`. Args are plain JSON; `{"kref": "koN"}` passes a reference
/// (an extension: the JS kernel cannot pass references over RPC). A rejection is `REJECTED`
/// with the decoded message, and the rejection's CapData as `data`.
async fn queue_message(state: &DaemonState, params: Json) -> Result<Json, RpcError> {
    let shape = || RpcError::invalid_params("expected [target: kref, method: string, args: array]");
    let Json::Array(items) = params else { return Err(shape()) };
    if !(2..=3).contains(&items.len()) {
        return Err(shape());
    }
    let target = kref(items[0].as_str().ok_or_else(shape)?)?;
    let method = items[1].as_str().ok_or_else(shape)?.to_owned();
    let args = match items.get(2) {
        None => Vec::new(),
        Some(Json::Array(args)) => args
            .iter()
            .map(ocap_kernel::json::from_json)
            .collect::<Result<_, _>>()
            .map_err(|e| RpcError::invalid_params(e.to_string()))?,
        Some(_) => return Err(shape()),
    };
    // Args may be deep: dropped without recursion on this (2 MiB) worker thread.
    ocap_kernel::json::drop_deep(Json::Array(items));
    match state.kernel().await.queue_message(target, &method, args).await.map_err(kernel_error)? {
        Ok(result) => Ok(capdata_json(&result)),
        Err(reason) => Err(RpcError {
            code: codes::REJECTED,
            message: ocap_kernel::smallcaps::reason_text(&reason),
            data: Some(capdata_json(&reason)),
        }),
    }
}

/// The JS kernel's `KernelStatus` (`vats`, `subclusters`, `remoteComms`), plus `services`,
/// queue lengths, each vat's root kref, vats without a running worker, and vats that failed
/// to come back at start.
pub fn status_json(d: &StatusDetails, resume_failures: &[(VatId, String)]) -> Json {
    let parse = |s: &str| serde_json::from_str::<Json>(s).unwrap_or_else(|_| Json::String(s.to_owned()));
    let vats: Vec<Json> = d
        .vats
        .iter()
        .map(|v| json!({"id": v.id.to_string(), "config": parse(&v.config), "subclusterId": v.subcluster}))
        .collect();
    let subclusters: Vec<Json> = d
        .subclusters
        .iter()
        .map(|s| {
            // In launch order (vat ID order), as the JS kernel's record is built.
            let members: serde_json::Map<String, Json> =
                s.vats.iter().map(|(n, v)| (n.clone(), json!(v.to_string()))).collect();
            let mut j = json!({"id": s.record.id, "config": parse(&s.record.config), "vats": members});
            if let (Some(name), Some(obj)) = (&s.record.system_name, j.as_object_mut()) {
                obj.insert("systemName".into(), json!(name));
            }
            j
        })
        .collect();
    let services: Vec<Json> = d
        .services
        .iter()
        .map(|s| json!({"name": s.name, "kref": s.kref.to_string(), "systemOnly": s.system_only, "registered": s.registered}))
        .collect();
    let not_running: Vec<String> =
        d.vats.iter().filter(|v| !d.attached.contains(&v.id)).map(|v| v.id.to_string()).collect();
    let roots: serde_json::Map<String, Json> =
        d.roots.iter().map(|(v, k)| (v.to_string(), json!(k.to_string()))).collect();
    let failures: Vec<Json> =
        resume_failures.iter().map(|(v, why)| json!({"vat": v.to_string(), "error": why})).collect();
    json!({
        "vats": vats,
        "subclusters": subclusters,
        "remoteComms": {"state": "disconnected"},
        "services": services,
        "runQueueLength": d.run_queue_length,
        "gcActionsPending": d.gc_actions_pending,
        "crankCount": d.crank_count,
        "vatRoots": roots,
        "notRunning": not_running,
        "resumeFailures": failures,
    })
}
