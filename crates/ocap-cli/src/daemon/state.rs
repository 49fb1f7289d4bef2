//! What the daemon's request handlers share: the home, the config, the kernel (which
//! `clearState` replaces), the shutdown signal and the web panel's hook. Its own module so
//! that the server (which hands it to every request) and the methods (which use it) both
//! depend on it, and not on each other.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use ocap_kernel::store::{Durability, Store};
use ocap_kernel::Kernel;
use ocap_vat::JsVatLauncher;
use tokio::sync::{watch, Mutex, RwLock};

use super::config::DaemonConfig;
use super::DaemonError;
use crate::home::Home;
use crate::rpc::{codes, RpcError};

/// What the handlers share.
pub struct DaemonState {
    pub home: Home,
    pub config: DaemonConfig,
    /// Replaced by `clearState`; handlers clone it (cheap) and release the lock at once.
    kernel: RwLock<Kernel>,
    shutdown: watch::Sender<bool>,
    /// How to start the web panel, if this daemon can serve one.
    panel_starter: Option<PanelStarter>,
    /// The running panel's URL (with its token); the lock also keeps two `startPanel`s from
    /// starting two panels.
    panel_url: Mutex<Option<String>>,
}

/// Starts the web panel (`crate::panel`) on the given address and returns its URL with the
/// token. A hook rather than a call: the panel sits above the daemon (it calls the method
/// table), so the daemon cannot import it without an import circle; `ocap daemon serve`
/// hands it in.
pub type PanelStarter = Arc<
    dyn Fn(Arc<DaemonState>, SocketAddr) -> Pin<Box<dyn Future<Output = Result<String, RpcError>> + Send>>
        + Send
        + Sync,
>;

/// Opens the home's database and makes the kernel; persisted vats are restarted.
pub fn open_kernel(home: &Home, config: &DaemonConfig) -> Result<Kernel, DaemonError> {
    let store = Store::open(&home.db(), Durability::Process)?;
    let opts = config.launcher_options(&home.dir);
    let kernel =
        Kernel::make(store, config.kernel_config(&home.dir)?, move |sink| Box::new(JsVatLauncher::new(sink, opts)))?;
    for (vat, why) in kernel.resume_failures.iter() {
        tracing::warn!(%vat, "vat did not come back: {why}");
    }
    Ok(kernel)
}

impl DaemonState {
    pub fn new(
        home: Home,
        config: DaemonConfig,
        kernel: Kernel,
        panel_starter: Option<PanelStarter>,
    ) -> Arc<DaemonState> {
        let (shutdown, _) = watch::channel(false);
        Arc::new(DaemonState {
            home,
            config,
            kernel: RwLock::new(kernel),
            shutdown,
            panel_starter,
            panel_url: Mutex::new(None),
        })
    }

    /// `startPanel`, and `daemon serve --panel`: starts the web panel unless it runs, and
    /// returns its URL (with the token). A panel already running keeps its address: one
    /// daemon serves one panel.
    pub async fn start_panel(self: &Arc<Self>, addr: SocketAddr) -> Result<String, RpcError> {
        let mut url = self.panel_url.lock().await;
        if let Some(url) = url.as_ref() {
            return Ok(url.clone());
        }
        let Some(start) = self.panel_starter.as_ref() else {
            return Err(RpcError::new(codes::INTERNAL_ERROR, "this daemon cannot serve the web panel"));
        };
        let started = start(self.clone(), addr).await?;
        *url = Some(started.clone());
        Ok(started)
    }

    pub async fn kernel(&self) -> Kernel {
        self.kernel.read().await.clone()
    }

    pub fn request_shutdown(&self, why: &str) {
        if !*self.shutdown.borrow() {
            tracing::info!("shutting down: {why}");
        }
        self.shutdown.send_replace(true);
    }

    pub fn shutdown_receiver(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// `clearState`: stops the kernel, deletes the database, and starts a fresh kernel (the
    /// JS kernel's `reset()`, without stale in-memory state, G11). Calls in flight on the old
    /// kernel fail with "the kernel has stopped".
    pub async fn clear_state(&self) -> Result<(), RpcError> {
        let mut kernel = self.kernel.write().await;
        if let Err(e) = kernel.stop().await {
            tracing::error!("stopping the kernel for clearState: {e}");
        }
        // The identity survives (remote-comms.md §1.4): read it before the files go.
        let db = self.home.db();
        let kept: Vec<(&str, String)> = match Store::open_read_only(&db) {
            Ok(store) => ocap_kernel::remote::identity::KEPT_ON_RESET
                .iter()
                .filter_map(|key| store.get_kv(key).ok().flatten().map(|v| (*key, v)))
                .collect(),
            Err(e) => {
                tracing::error!("clearState: reading the identity to keep: {e}");
                Vec::new()
            }
        };
        for f in self.home.db_files() {
            match std::fs::remove_file(&f) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::error!("clearState: removing {}: {e}", f.display()),
            }
        }
        if !kept.is_empty() {
            let written = Store::open(&db, Durability::Process)
                .and_then(|store| kept.iter().try_for_each(|(key, value)| store.set_kv(key, value)));
            if let Err(e) = written {
                self.request_shutdown(&format!("clearState could not keep the identity: {e}"));
                return Err(RpcError::new(codes::INTERNAL_ERROR, format!("cannot keep the identity: {e}")));
            }
        }
        let (home, config) = (self.home.clone(), self.config.clone());
        match tokio::task::spawn_blocking(move || open_kernel(&home, &config)).await {
            Ok(Ok(fresh)) => {
                // Comms that ran go on, on the fresh kernel (a new incarnation: peers notice).
                let params = self.config.remote_comms.clone().or_else(|| super::comms::saved(&self.home));
                if let Some(params) = params {
                    if let Err(e) = super::comms::start(&self.home, &fresh, params).await {
                        tracing::error!("remote comms did not restart after clearState: {}", e.message);
                    }
                }
                *kernel = fresh;
                tracing::info!("state cleared");
                Ok(())
            }
            Ok(Err(e)) => {
                self.request_shutdown(&format!("no kernel after clearState: {e}"));
                Err(RpcError::new(codes::INTERNAL_ERROR, format!("cannot start a fresh kernel: {e}")))
            }
            Err(e) => {
                self.request_shutdown(&format!("no kernel after clearState: {e}"));
                Err(RpcError::new(codes::INTERNAL_ERROR, format!("cannot start a fresh kernel: {e}")))
            }
        }
    }
}
