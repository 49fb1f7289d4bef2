//! `POST /api/call`: `{"method", "params"}` in, `{"result"}` or `{"error": {code, message,
//! data}}` out, run by `daemon::methods::call`, the table the Unix socket uses: the panel
//! can do exactly what `ocap daemon exec` can, no more and no less. The body is bounded
//! like a socket request (`rpc::MAX_REQUEST_BYTES`) and parsed the same way (a duplicated
//! key is a parse error; arguments may nest as deep as a vat can receive).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value as Json};

use crate::daemon::methods;
use crate::daemon::state::DaemonState;
use crate::rpc::{codes, RpcError, MAX_REQUEST_BYTES};

/// The body limit of `/api/call`: the socket's.
pub fn body_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::max(MAX_REQUEST_BYTES)
}

/// An answer whose body is `{"error": …}`, with `status`.
fn failure(status: StatusCode, e: &RpcError) -> Response {
    (status, axum::Json(json!({"error": e}))).into_response()
}

pub async fn call(State(state): State<Arc<DaemonState>>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            let too_large = e.status() == StatusCode::PAYLOAD_TOO_LARGE;
            let message = if too_large {
                format!("Invalid request: larger than {MAX_REQUEST_BYTES} bytes (MAX_REQUEST_BYTES)")
            } else {
                format!("Invalid request: {}", e.body_text())
            };
            return failure(e.status(), &RpcError::new(codes::INVALID_REQUEST, message));
        }
    };
    let request: Json = match ocap_kernel::json::parse_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return failure(StatusCode::BAD_REQUEST, &RpcError::new(codes::PARSE_ERROR, format!("Parse error: {e}")))
        }
    };
    let Json::Object(mut request) = request else {
        let e = RpcError::new(codes::INVALID_REQUEST, "Invalid request: expected {\"method\", \"params\"}");
        return failure(StatusCode::BAD_REQUEST, &e);
    };
    let Some(Json::String(method)) = request.remove("method") else {
        return failure(
            StatusCode::BAD_REQUEST,
            &RpcError::new(codes::INVALID_REQUEST, "Invalid request: missing method"),
        );
    };
    let params = request.remove("params").unwrap_or_else(|| json!([]));
    tracing::debug!(%method, "panel request");
    // In its own task, as on the socket: a panicking handler is an error, not a dead daemon.
    let (st, m) = (state.clone(), method.clone());
    let result = match tokio::spawn(async move { methods::call(&st, &m, params).await }).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(%method, "panel handler failed: {e}");
            Err(RpcError::new(codes::INTERNAL_ERROR, format!("internal error in {method}: {e}")))
        }
    };
    match result {
        Ok(v) => {
            if method == "shutdown" {
                state.request_shutdown("shutdown request from the panel");
            }
            axum::Json(json!({"result": v})).into_response()
        }
        Err(e) => {
            tracing::info!(%method, code = e.code, "panel request failed: {}", e.message);
            failure(StatusCode::OK, &e)
        }
    }
}
