//! The kernel-control methods (host-surface.md §7.2), plus the daemon's own `ping` and
//! `shutdown`. Params are checked strictly (`params`): a wrong shape is `INVALID_PARAMS`.

use std::sync::Arc;

use ocap_kernel::config::ClusterConfig;
use ocap_kernel::KernelError;
use serde_json::{json, Value as Json};

use super::params::{
    kref, no_params, parse, vat_id, IdParams, KrefParams, LaunchParams, PanelParams, PeerParams, ReapParams, SqlParams,
    UrlParams,
};
use super::state::DaemonState;
use super::status::status_json;
use crate::rpc::{codes, RpcError};

/// A kernel error as an RPC error: bad input is `INVALID_PARAMS`, a missing thing
/// `NOT_FOUND`, anything else `INTERNAL_ERROR`.
pub fn kernel_error(e: KernelError) -> RpcError {
    let code = match &e {
        KernelError::Config(_)
        | KernelError::BadRef(_)
        | KernelError::NotAnObject(..)
        | KernelError::NotPinned(_)
        | KernelError::BadValue(_)
        | KernelError::OcapUrl(_) => codes::INVALID_PARAMS,
        KernelError::UnknownKref(_)
        | KernelError::NoSuchVat(_)
        | KernelError::VatNotRunning(_)
        | KernelError::NoSuchSubcluster(_)
        | KernelError::NoSuchService(_) => codes::NOT_FOUND,
        _ => codes::INTERNAL_ERROR,
    };
    RpcError::new(code, e.to_string())
}

/// Where `startPanel` without an address binds: loopback, a free port.
pub const DEFAULT_PANEL_ADDRESS: &str = "127.0.0.1:0";

/// Runs one method: the one table behind both the Unix socket and the web panel's
/// `/api/call`. `shutdown` only answers; the caller shuts down after replying.
pub async fn call(state: &Arc<DaemonState>, method: &str, params: Json) -> Result<Json, RpcError> {
    match method {
        "ping" => no_params(&params).map(|()| json!("pong")),
        "shutdown" => no_params(&params).map(|()| json!({"status": "shutting down"})),
        "getStatus" => {
            no_params(&params)?;
            let kernel = state.kernel().await;
            let details = kernel.get_status().await.map_err(kernel_error)?;
            Ok(status_json(&details, &kernel.resume_failures))
        }
        "launchSubcluster" => {
            let p: LaunchParams = parse(params)?;
            let config = ClusterConfig::from_value(p.config).map_err(|e| RpcError::invalid_params(e.to_string()))?;
            let r = state.kernel().await.launch_subcluster(config).await.map_err(kernel_error)?;
            Ok(json!({
                "subclusterId": r.subcluster_id,
                "rootKref": r.root_kref.to_string(),
                "bootstrapResult": r.bootstrap_result,
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
        // Ours: the objects in the results the host receives are pinned for it (so a kref it
        // was given stays valid); `unpinObject` releases one pin, and an object nobody else
        // holds is then collected. `pinObject` adds one. The JS kernel has these as kernel
        // functions (`pinObject`, `unpinObject`) but no control method.
        "pinObject" => {
            let p: KrefParams = parse(params)?;
            state.kernel().await.pin(kref(&p.kref)?).await.map_err(kernel_error)?;
            Ok(Json::Null)
        }
        "unpinObject" => {
            let p: KrefParams = parse(params)?;
            state.kernel().await.unpin(kref(&p.kref)?).await.map_err(kernel_error)?;
            Ok(Json::Null)
        }
        "issueOcapURL" => {
            let p: KrefParams = parse(params)?;
            let url = state.kernel().await.issue_ocap_url(kref(&p.kref)?).await.map_err(kernel_error)?;
            Ok(json!(url))
        }
        "redeemOcapURL" => {
            let p: UrlParams = parse(params)?;
            let kref = state.kernel().await.redeem_ocap_url(&p.url).await.map_err(kernel_error)?;
            Ok(json!(kref.to_string()))
        }
        // Ours: the JS kernel's URLs cannot be revoked (and do not keep their object alive).
        "revokeOcapURL" => {
            let p: UrlParams = parse(params)?;
            state.kernel().await.revoke_ocap_url(&p.url).await.map_err(kernel_error)?;
            Ok(Json::Null)
        }
        // Ours: the unrevoked URLs, so a lost one can still be revoked. `[{url, kref}]`.
        "listOcapURLs" => {
            no_params(&params)?;
            let urls = state.kernel().await.live_ocap_urls().await.map_err(kernel_error)?;
            Ok(Json::Array(urls.into_iter().map(|(url, kref)| json!({"url": url, "kref": kref.to_string()})).collect()))
        }
        // Remote comms (remote-comms.md §10): start the libp2p transport for the kernel (and
        // again with each daemon start), stop it, steer it.
        "initRemoteComms" => {
            let p: super::comms::CommsParams =
                if no_params(&params).is_ok() { Default::default() } else { parse(params)? };
            super::comms::start(&state.home, &state.kernel().await, p).await?;
            Ok(Json::Null)
        }
        // Ours: comms stop, and no longer start with the daemon.
        "stopRemoteComms" => {
            no_params(&params)?;
            super::comms::stop(&state.home, &state.kernel().await).await?;
            Ok(Json::Null)
        }
        "registerLocationHints" => {
            let p: PeerParams = parse(params)?;
            state.kernel().await.register_location_hints(&p.peer_id, p.hints).await.map_err(kernel_error)?;
            Ok(Json::Null)
        }
        "closeConnection" => {
            let p: PeerParams = parse(params)?;
            state.kernel().await.close_connection(&p.peer_id).await.map_err(kernel_error)?;
            Ok(Json::Null)
        }
        "reconnectPeer" => {
            let p: PeerParams = parse(params)?;
            state.kernel().await.reconnect_peer(&p.peer_id, p.hints).await.map_err(kernel_error)?;
            Ok(Json::Null)
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
        // Ours: start the web panel (`crate::panel`) unless it runs; `{url}`, with the token.
        "startPanel" => {
            let p: PanelParams = if no_params(&params).is_ok() { PanelParams::default() } else { parse(params)? };
            let addr = match p.address {
                Some(a) => a,
                None => DEFAULT_PANEL_ADDRESS
                    .parse()
                    .map_err(|e| RpcError::new(codes::INTERNAL_ERROR, format!("default panel address: {e}")))?,
            };
            let url = state.start_panel(addr).await?;
            Ok(json!({"url": url}))
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
        Ok(result) => Ok(json!(result)),
        Err(reason) => Err(RpcError {
            code: codes::REJECTED,
            message: ocap_kernel::smallcaps::reason_text(&reason),
            data: Some(json!(reason)),
        }),
    }
}
