//! `Kernel`: the host-facing kernel. A `KernelCore` runs on its own thread (the run loop);
//! every host call is a command posted to it, answered through a oneshot channel, so host
//! calls never write into an open crank and never block the loop.
//!
//! ```no_run
//! # async fn demo(launcher: Box<dyn ocap_kernel::VatLauncher + Send>) -> Result<(), ocap_kernel::KernelError> {
//! use ocap_kernel::{Kernel, KernelConfig, config::ClusterConfig, store::{Store, Durability}};
//! let store = Store::open(std::path::Path::new("kernel.sqlite"), Durability::Process)?;
//! let kernel = Kernel::make(store, KernelConfig::default(), |_events| launcher)?;
//! let cluster = ClusterConfig::from_json(r#"{"bootstrap":"main","vats":{"main":{"bundleSpec":"main.bundle"}}}"#)
//!     .map_err(|e| ocap_kernel::KernelError::Config(e.to_string()))?;
//! let launched = kernel.launch_subcluster(cluster).await?;
//! println!("root {} answered {:?}", launched.root_kref, launched.bootstrap_result);
//! kernel.stop().await
//! # }
//! ```

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::capdata::CapData;
use crate::config::ClusterConfig;
use crate::core::{
    HostResult, KernelCore, KernelError, KernelOptions, KernelService, SystemBootReport, SystemSubclusterConfig,
    VatLauncher,
};
use crate::refs::{KRef, VatId};
use crate::smallcaps::Value;
use crate::store::{Store, SubclusterRecord, VatRecord};
use crate::vat::VatSyscall;

/// Something a vat worker reports outside a delivery.
#[derive(Debug)]
pub enum VatEvent {
    /// Syscalls made outside any delivery (a timer fired); run as their own unit.
    AsyncSyscalls(Vec<VatSyscall>),
    /// The worker died (memory limit, runaway loop): the vat is terminated.
    Died(String),
}

/// Where workers post their events; cheap to clone, usable from any thread.
pub type VatEventSink = Arc<dyn Fn(VatId, VatEvent) + Send + Sync>;

/// A host service to register at start-up.
#[derive(Clone)]
pub struct ServiceRegistration {
    pub name: String,
    pub service: Arc<dyn KernelService>,
    /// Only system subclusters may be given it.
    pub system_only: bool,
}

/// How to make a kernel.
#[derive(Clone, Default)]
pub struct KernelConfig {
    pub options: KernelOptions,
    /// Registered before any vat starts, so vats restored at start-up, and system subclusters
    /// launched at their first boot, can use them (G7).
    pub services: Vec<ServiceRegistration>,
    /// Privileged subclusters, by unique name; they may be given the `kernelFacet` service.
    pub system_subclusters: Vec<SystemSubclusterConfig>,
}

/// The kernel's life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelState {
    Starting = 0,
    Running = 1,
    Stopping = 2,
    Stopped = 3,
}

/// What `launch_subcluster` returns (the JS kernel's `SubclusterLaunchResult`).
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchResult {
    pub subcluster_id: String,
    pub root_kref: KRef,
    pub bootstrap_result: CapData<KRef>,
}

/// The kernel's status (host-surface.md §1.3).
#[derive(Debug, Clone)]
pub struct KernelStatus {
    pub vats: Vec<VatRecord>,
    pub subclusters: Vec<SubclusterRecord>,
}

pub(crate) type Job = Box<dyn FnOnce(&mut LoopState) + Send>;

pub(crate) enum Command {
    Run(Job),
    Wake,
    Stop(oneshot::Sender<Result<(), KernelError>>),
}

pub(crate) struct LoopState {
    pub(crate) core: KernelCore,
    pub(crate) launcher: Box<dyn VatLauncher + Send>,
}

/// A running kernel. Clone it freely; every clone talks to the same run loop.
#[derive(Clone)]
pub struct Kernel {
    tx: mpsc::Sender<Command>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
    /// Vats that failed to come back at start-up, with why.
    pub resume_failures: Arc<Vec<(VatId, String)>>,
    /// How the declared system subclusters were reconciled with the store at start-up.
    pub system_report: Arc<SystemBootReport>,
    /// IO channels (`<subcluster>.<name>`) that could not be re-created at start-up, with why.
    pub io_failures: Arc<Vec<(String, String)>>,
    state: Arc<AtomicU8>,
    /// Reads and bundles vat code off the run loop before a launch or restart.
    code_loader: Option<Arc<dyn crate::VatCodeLoader>>,
}

fn stopped() -> KernelError {
    KernelError::Internal("the kernel has stopped".into())
}

/// Runs `loader.preload(vats)` on a thread of its own and waits for it without blocking the
/// caller's executor (any executor: a plain thread and a oneshot, not `spawn_blocking`).
async fn preload_off_loop(loader: &Option<Arc<dyn crate::VatCodeLoader>>, vats: Vec<crate::config::VatConfig>) {
    let Some(loader) = loader.clone() else { return };
    let (tx, rx) = oneshot::channel();
    let spawned = std::thread::Builder::new().name("ocap-code-loader".into()).spawn(move || {
        loader.preload(&vats);
        let _ = tx.send(());
    });
    if spawned.is_ok() {
        let _ = rx.await;
    }
}

impl Kernel {
    /// Makes a kernel on `store`: registers the host services, brings back every persisted
    /// vat (a vat that fails is reported in `resume_failures`, and the others start), then
    /// starts the run loop, which resumes any work left in the queues.
    pub fn make(
        store: Store,
        config: KernelConfig,
        make_launcher: impl FnOnce(VatEventSink) -> Box<dyn VatLauncher + Send>,
    ) -> Result<Kernel, KernelError> {
        // `mpsc::Sender` is `Sync`: clones are shared by workers' threads without a lock.
        let (tx, rx) = mpsc::channel::<Command>();
        let events_tx = tx.clone();
        let sink: VatEventSink = Arc::new(move |vat, event| {
            let job: Job = Box::new(move |st: &mut LoopState| {
                let r = match event {
                    VatEvent::AsyncSyscalls(calls) => st.core.handle_async_syscalls(vat, calls),
                    VatEvent::Died(reason) => match st.core.terminate_vat(vat, &reason) {
                        Err(KernelError::VatNotRunning(_)) | Err(KernelError::NoSuchVat(_)) => Ok(()),
                        r => r,
                    },
                };
                if let Err(e) = r {
                    tracing::error!(%vat, "handling a vat event failed: {e}");
                }
            });
            let _ = events_tx.send(Command::Run(job));
        });
        let mut core = KernelCore::new(store, config.options)?;
        let waker_tx = tx.clone();
        core.set_waker(Arc::new(move || {
            let _ = waker_tx.send(Command::Wake);
        }));
        // The kernel facet exists from the start: queued messages may target it (§1.1).
        core.register_system_service("kernelFacet", Arc::new(crate::facet::KernelFacet { tx: tx.clone() }))?;
        for s in &config.services {
            if s.system_only {
                core.register_system_service(&s.name, s.service.clone())?;
            } else {
                core.register_service(&s.name, s.service.clone())?;
            }
        }
        // Reconcile system subclusters before any vat starts, so removed ones never run.
        let mut system_report = core.prepare_system_subclusters(&config.system_subclusters)?;
        // IO channels come back before the vats that use them (seed 002).
        let io_failures = Arc::new(core.restore_io_channels()?);
        let mut launcher = make_launcher(sink);
        let code_loader = launcher.code_loader();
        let failures = core.resume_vats(launcher.as_mut())?;
        let resume_failures = Arc::new(failures.into_iter().map(|(v, e)| (v, e.to_string())).collect());
        // New system subclusters: their vats start now; bootstrap runs on the loop. A
        // bootstrap that rejects gets its subcluster terminated.
        for sys in std::mem::take(&mut system_report.to_launch) {
            let tx2 = tx.clone();
            let name = sys.name.clone();
            let sid_cell: Arc<Mutex<Option<String>>> = Arc::default();
            let sid_for_waiter = sid_cell.clone();
            let waiter: crate::core::HostWaiter = Box::new(move |r| {
                if let Err(reason) = r {
                    tracing::error!("bootstrap of system subcluster {name:?} failed: {}", reason.body);
                    let sid = sid_for_waiter.lock().ok().and_then(|g| g.clone());
                    if let Some(sid) = sid {
                        let job: Job = Box::new(move |st| {
                            if let Err(e) = st.core.terminate_subcluster(&sid) {
                                tracing::error!("terminating failed system subcluster {sid}: {e}");
                            }
                        });
                        let _ = tx2.send(Command::Run(job));
                    }
                }
            });
            let launch = core.start_subcluster(&sys.config, launcher.as_mut(), Some(&sys.name), Some(waiter))?;
            if let Ok(mut g) = sid_cell.lock() {
                *g = Some(launch.subcluster_id);
            }
            system_report.to_launch.push(sys);
        }
        let state = Arc::new(AtomicU8::new(KernelState::Running as u8));
        let loop_state = state.clone();
        let kernel_state = state;
        let state = LoopState { core, launcher };
        let thread = std::thread::Builder::new()
            .name("ocap-run-loop".into())
            .spawn(move || {
                run_loop(state, rx);
                loop_state.store(KernelState::Stopped as u8, Ordering::SeqCst);
            })
            .map_err(|e| KernelError::Internal(format!("cannot start the run loop: {e}")))?;
        Ok(Kernel {
            tx,
            thread: Arc::new(Mutex::new(Some(thread))),
            resume_failures,
            system_report: Arc::new(system_report),
            io_failures,
            state: kernel_state,
            code_loader,
        })
    }

    pub fn state(&self) -> KernelState {
        match self.state.load(Ordering::SeqCst) {
            0 => KernelState::Starting,
            1 => KernelState::Running,
            2 => KernelState::Stopping,
            _ => KernelState::Stopped,
        }
    }

    /// The root kref of a system subcluster's bootstrap vat.
    pub async fn get_system_subcluster_root(&self, name: &str) -> Result<KRef, KernelError> {
        let name = name.to_owned();
        self.call(move |st| st.core.system_subcluster_root(&name)).await
    }

    /// Runs `f` on the run loop between cranks and returns its answer.
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut LoopState) -> Result<T, KernelError> + Send + 'static,
    ) -> Result<T, KernelError> {
        let (otx, orx) = oneshot::channel();
        let job: Job = Box::new(move |st| {
            let _ = otx.send(f(st));
        });
        self.tx.send(Command::Run(job)).map_err(|_| stopped())?;
        orx.await.map_err(|_| stopped())?
    }

    /// `target.method(...args)`; resolves with the settled result once it is durable.
    pub async fn queue_message(&self, target: KRef, method: &str, args: Vec<Value>) -> Result<HostResult, KernelError> {
        let (otx, orx) = oneshot::channel();
        let method = method.to_owned();
        self.call(move |st| {
            st.core.queue_message(target, &method, args, Some(Box::new(move |r| drop(otx.send(r)))))?;
            Ok(())
        })
        .await?;
        orx.await.map_err(|_| stopped())
    }

    /// Launches a subcluster and waits for its bootstrap result. A failed launch, or a
    /// bootstrap that rejects, leaves nothing behind.
    pub async fn launch_subcluster(&self, config: ClusterConfig) -> Result<LaunchResult, KernelError> {
        self.launch(config, None).await
    }

    async fn launch(&self, config: ClusterConfig, system_name: Option<String>) -> Result<LaunchResult, KernelError> {
        let vats: Vec<_> = config.vats.keys().filter_map(|name| config.resolved_vat(name)).collect();
        preload_off_loop(&self.code_loader, vats).await;
        let (otx, orx) = oneshot::channel();
        let tx = self.tx.clone();
        let launch = self
            .call(move |st| {
                let LoopState { core, launcher } = st;
                core.start_subcluster(
                    &config,
                    launcher.as_mut(),
                    system_name.as_deref(),
                    Some(Box::new(move |r| drop(otx.send(r)))),
                )
            })
            .await?;
        let result = orx.await.map_err(|_| stopped())?;
        match result {
            Ok(value) => Ok(LaunchResult {
                subcluster_id: launch.subcluster_id,
                root_kref: launch.root,
                bootstrap_result: value,
            }),
            Err(reason) => {
                let sid = launch.subcluster_id.clone();
                let (dtx, drx) = oneshot::channel();
                let job: Job = Box::new(move |st| {
                    let _ = dtx.send(st.core.terminate_subcluster(&sid));
                });
                tx.send(Command::Run(job)).map_err(|_| stopped())?;
                let _ = drx.await;
                Err(KernelError::BootstrapFailed(crate::smallcaps::reason_text(&reason)))
            }
        }
    }

    pub async fn terminate_subcluster(&self, id: &str) -> Result<(), KernelError> {
        let id = id.to_owned();
        self.call(move |st| st.core.terminate_subcluster(&id)).await
    }

    pub async fn terminate_vat(&self, vat: VatId, reason: &str) -> Result<(), KernelError> {
        let reason = reason.to_owned();
        self.call(move |st| st.core.terminate_vat(vat, &reason)).await
    }

    /// A new worker for the vat from its persisted state; `bootstrap` is not re-run.
    pub async fn restart_vat(&self, vat: VatId) -> Result<(), KernelError> {
        if self.code_loader.is_some() {
            let config = self
                .call(move |st| Ok(st.core.store().vat(vat)?.and_then(|r| serde_json::from_str(&r.config).ok())))
                .await?;
            preload_off_loop(&self.code_loader, config.into_iter().collect()).await;
        }
        self.call(move |st| {
            let LoopState { core, launcher } = st;
            core.relaunch_vat(vat, launcher.as_mut())
        })
        .await
    }

    pub async fn ping_vat(&self, vat: VatId) -> Result<&'static str, KernelError> {
        self.call(move |st| st.core.ping_vat(vat)).await
    }

    pub async fn revoke(&self, kref: KRef) -> Result<(), KernelError> {
        self.call(move |st| st.core.revoke(kref)).await
    }

    pub async fn is_revoked(&self, kref: KRef) -> Result<bool, KernelError> {
        self.call(move |st| st.core.is_revoked(kref)).await
    }

    pub async fn pin_vat_root(&self, vat: VatId) -> Result<KRef, KernelError> {
        self.call(move |st| {
            let root = st.core.vat_root(vat)?;
            st.core.pin(root)?;
            Ok(root)
        })
        .await
    }

    pub async fn unpin_vat_root(&self, vat: VatId) -> Result<(), KernelError> {
        self.call(move |st| {
            let root = st.core.vat_root(vat)?;
            st.core.unpin(root)
        })
        .await
    }

    /// Schedules bring-out-your-dead for the given vats (all if `None`).
    pub async fn reap_vats(&self, vats: Option<Vec<VatId>>) -> Result<(), KernelError> {
        self.call(move |st| st.core.reap_vats(vats.as_deref())).await
    }

    pub async fn get_status(&self) -> Result<KernelStatus, KernelError> {
        self.call(|st| Ok(KernelStatus { vats: st.core.active_vats()?, subclusters: st.core.store().subclusters()? }))
            .await
    }

    /// Every subcluster record.
    pub async fn get_subclusters(&self) -> Result<Vec<SubclusterRecord>, KernelError> {
        self.call(|st| Ok(st.core.store().subclusters()?)).await
    }

    /// One subcluster record, if it exists.
    pub async fn get_subcluster(&self, id: &str) -> Result<Option<SubclusterRecord>, KernelError> {
        let id = id.to_owned();
        self.call(move |st| Ok(st.core.store().subcluster(&id)?)).await
    }

    /// The active vats, with their subclusters.
    pub async fn get_vats(&self) -> Result<Vec<VatRecord>, KernelError> {
        self.call(|st| st.core.active_vats()).await
    }

    /// Runs `f` with read access to the store between cranks (inspection, queries).
    pub async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, KernelError> + Send + 'static,
    ) -> Result<T, KernelError> {
        self.call(move |st| f(st.core.store())).await
    }

    /// Terminates every subcluster (and so every vat and IO channel); the kernel keeps
    /// running, empty. Identity and service registrations are kept.
    pub async fn reset(&self) -> Result<(), KernelError> {
        self.call(|st| {
            for s in st.core.store().subclusters()? {
                st.core.terminate_subcluster(&s.id)?;
            }
            for v in st.core.active_vats()? {
                st.core.terminate_vat(v.id, "kernel reset")?;
            }
            Ok(())
        })
        .await
    }

    /// Checks every store invariant (between cranks).
    pub async fn check_invariants(&self) -> Result<Result<(), Vec<String>>, KernelError> {
        self.call(|st| Ok(st.core.check_invariants())).await
    }

    /// Stops the run loop after the current crank, commits, and shuts every worker down.
    pub async fn stop(&self) -> Result<(), KernelError> {
        let _ = self.state.compare_exchange(
            KernelState::Running as u8,
            KernelState::Stopping as u8,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        let (otx, orx) = oneshot::channel();
        if self.tx.send(Command::Stop(otx)).is_err() {
            return Ok(());
        }
        let r = orx.await.unwrap_or(Ok(()));
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            // The loop has answered and is returning: the join is immediate.
            let _ = h.join();
        }
        r
    }
}

fn run_loop(mut st: LoopState, rx: mpsc::Receiver<Command>) {
    loop {
        // Host commands first, between cranks.
        loop {
            match rx.try_recv() {
                Ok(Command::Run(job)) => job(&mut st),
                Ok(Command::Wake) => {}
                Ok(Command::Stop(reply)) => {
                    let _ = reply.send(st.core.shutdown());
                    return;
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    let _ = st.core.shutdown();
                    return;
                }
            }
        }
        match st.core.step() {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::error!("run loop: {e}"),
        }
        // Idle: sleep until a command arrives.
        match rx.recv() {
            Ok(Command::Run(job)) => job(&mut st),
            Ok(Command::Wake) => {}
            Ok(Command::Stop(reply)) => {
                let _ = reply.send(st.core.shutdown());
                return;
            }
            Err(_) => {
                let _ = st.core.shutdown();
                return;
            }
        }
    }
}
