//! The web control panel: an HTTP server in the daemon process, on its tokio runtime, for
//! people who would rather look at their kernel than read tables (issue 14). Off by default:
//! `ocap daemon start --panel [ADDR]`, `ocap panel`, or the `startPanel` control method.
//!
//! It is another door to the same method table, not a second API: the page calls
//! `POST /api/call` with `{method, params}`, which runs `daemon::methods::call` exactly as
//! the Unix socket does (`api.rs`). The one other route is read-only: `GET /api/trace`,
//! the kernel's crank traces as Server-Sent Events (`trace.rs`), for the Trace page.
//! Access needs the secret token the daemon prints (`auth.rs`, as Jupyter does); the page's
//! files are compiled into the binary (`assets.rs`), so nothing is fetched from anywhere
//! else and no Node runs.
//!
//! The panel sits above the daemon (it calls the method table), so the daemon does not
//! import it: `ocap daemon serve` hands the daemon `starter()`, which it calls on
//! `--panel` or `startPanel`.

mod api;
mod assets;
mod auth;
mod trace;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use self::auth::Token;
use crate::daemon::state::{DaemonState, PanelStarter};
use crate::rpc::{codes, RpcError};

/// Why the panel could not start.
#[derive(Debug, thiserror::Error)]
pub enum PanelError {
    #[error("cannot bind the panel to {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make the panel's token: {0}")]
    Token(String),
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<PanelError> for RpcError {
    fn from(e: PanelError) -> RpcError {
        RpcError::new(codes::INTERNAL_ERROR, e.to_string())
    }
}

/// What `ocap daemon serve` gives the daemon to start the panel with.
pub fn starter() -> PanelStarter {
    Arc::new(|state, addr| Box::pin(async move { Ok(start(state, addr).await?) }))
}

/// The router: the page's files, `/api/call` and the crank trace's event stream
/// (`/api/trace`), every route behind `auth::guard`.
fn router(state: Arc<DaemonState>, token: Arc<Token>) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{file}", get(assets::file))
        .route("/api/call", post(api::call).layer(api::body_limit()))
        .route("/api/trace", get(trace::stream))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(token, auth::guard))
}

/// Binds `addr`, serves the panel until the daemon shuts down, writes `panel.json`, and
/// returns the URL with the token.
pub async fn start(state: Arc<DaemonState>, addr: SocketAddr) -> Result<String, PanelError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| PanelError::Bind { addr, source })?;
    let bound = listener.local_addr().map_err(|source| PanelError::Bind { addr, source })?;
    if !bound.ip().is_loopback() {
        // Asked for: the token still guards it, but it travels in clear over plain HTTP.
        tracing::warn!(%bound, "the web panel listens beyond loopback, over plain HTTP");
    }
    let token = Token::generate(bound.port()).map_err(|e| PanelError::Token(e.to_string()))?;
    let url = format!("http://{bound}/?token={}", token.hex());
    write_panel_file(&state, &url, bound)?;
    let token = Arc::new(token);
    let app = router(state.clone(), token);
    let mut shutdown = state.shutdown_receiver();
    tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
            tracing::error!("the web panel stopped: {e}");
        }
    });
    tracing::info!(%bound, "web panel started");
    Ok(url)
}

/// `<home>/panel.json`, `{url, address, pid}`, private (0600): the URL holds the token.
fn write_panel_file(state: &DaemonState, url: &str, bound: SocketAddr) -> Result<(), PanelError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = state.home.panel();
    let err = |source| PanelError::Write { path: path.display().to_string(), source };
    let body = serde_json::json!({"url": url, "address": bound.to_string(), "pid": std::process::id()});
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path).map_err(err)?;
    f.write_all(format!("{body}\n").as_bytes()).map_err(err)
}
