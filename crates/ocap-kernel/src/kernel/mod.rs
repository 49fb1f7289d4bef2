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

mod admin;
mod comms;
mod facet;
mod launch;
mod run_loop;
mod url_services;

pub use admin::{ServiceInfo, SubclusterDetails};
pub use comms::RemoteCommsStatus;
/// How workers report outside a delivery; defined with the launcher traits in `ocap-abi`.
pub use ocap_abi::launch::{VatEvent, VatEventSink};

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::capdata::CapData;
use crate::core::{
    CrankTrace, HostResult, KernelCore, KernelError, KernelOptions, KernelService, SystemBootReport,
    SystemSubclusterConfig, VatLauncher,
};
use crate::refs::{KRef, VatId};
use crate::smallcaps::Value;
use crate::store::{Store, VatRecord};
use launch::BootstrapSlot;
use run_loop::{run_loop, Command, LoopHandle, LoopState};

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

/// The kernel's status (host-surface.md §1.3), read in one job (a consistent snapshot):
/// everything `getStatus` and `ocap status` show.
#[derive(Debug, Clone)]
pub struct KernelStatus {
    /// Active vats, whether or not their worker is attached.
    pub vats: Vec<VatRecord>,
    /// Active vats whose worker is running in this process.
    pub attached: Vec<VatId>,
    /// Each active vat's root object.
    pub roots: Vec<(VatId, KRef)>,
    pub subclusters: Vec<SubclusterDetails>,
    pub services: Vec<ServiceInfo>,
    pub run_queue_length: u64,
    pub gc_actions_pending: u64,
    /// Cranks run since this process started the kernel.
    pub crank_count: u64,
    /// This kernel's peer ID, once it has a remote identity (remote-comms.md §1.2: made on
    /// first use, by issuing or redeeming an OCAP URL).
    pub peer_id: Option<String>,
    /// The transport and the peers, when remote comms are started (or peers are known).
    pub remote_comms: RemoteCommsStatus,
}

/// A running kernel. Clone it freely; every clone talks to the same run loop.
#[derive(Clone)]
pub struct Kernel {
    handle: LoopHandle,
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
    /// The crank traces' channel; the run loop's `KernelCore` holds the only strong sender,
    /// so subscribers see the channel close when the loop ends.
    tracer: tokio::sync::broadcast::WeakSender<CrankTrace>,
}

fn stopped() -> KernelError {
    KernelError::Internal("the kernel has stopped".into())
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
        let (tx, rx) = std::sync::mpsc::channel::<Command>();
        let handle = LoopHandle::new(tx);
        let events = handle.clone();
        let sink: VatEventSink = Arc::new(move |vat, event| {
            events.post(move |st: &mut LoopState| {
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
        });
        let mut core = KernelCore::new(store, config.options)?;
        let (trace_tx, _) = tokio::sync::broadcast::channel(crate::core::TRACE_CAPACITY);
        let tracer = trace_tx.downgrade();
        core.set_tracer(Some(trace_tx));
        let waker = handle.clone();
        core.set_waker(Arc::new(move || waker.wake()));
        // The kernel facet exists from the start: queued messages may target it (§1.1).
        core.register_system_service("kernelFacet", Arc::new(facet::KernelFacet::new(handle.clone())))?;
        for s in &config.services {
            if s.system_only {
                core.register_system_service(&s.name, s.service.clone())?;
            } else {
                core.register_service(&s.name, s.service.clone())?;
            }
        }
        // Built-in services a subcluster may ask for, after the host's (whose names win).
        core.offer_service(
            url_services::OcapUrlIssuer::NAME,
            Arc::new(url_services::OcapUrlIssuer::new(handle.clone())),
        )?;
        core.offer_service(
            url_services::OcapUrlRedeemer::NAME,
            Arc::new(url_services::OcapUrlRedeemer::new(handle.clone())),
        )?;
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
            let name = sys.name.clone();
            let on_failure = handle.clone();
            let (slot, waiter) = BootstrapSlot::waiter(move |launched, r| {
                if let Err(reason) = r {
                    tracing::error!("bootstrap of system subcluster {name:?} failed: {}", reason.body);
                    if let Some((sid, _)) = launched {
                        on_failure.post(move |st| {
                            if let Err(e) = st.core.terminate_subcluster(&sid) {
                                tracing::error!("terminating failed system subcluster {sid}: {e}");
                            }
                        });
                    }
                }
            });
            let launch = core.start_subcluster(&sys.config, launcher.as_mut(), Some(&sys.name), Some(waiter))?;
            slot.fill(&launch);
            system_report.to_launch.push(sys);
        }
        let state = Arc::new(AtomicU8::new(KernelState::Running as u8));
        let loop_state = state.clone();
        let kernel_state = state;
        let state = LoopState { core, launcher, gc_waiters: Vec::new(), ticker_stop: None };
        let thread = std::thread::Builder::new()
            .name("ocap-run-loop".into())
            .spawn(move || {
                run_loop(state, rx);
                loop_state.store(KernelState::Stopped as u8, Ordering::SeqCst);
            })
            .map_err(|e| KernelError::Internal(format!("cannot start the run loop: {e}")))?;
        Ok(Kernel {
            handle,
            thread: Arc::new(Mutex::new(Some(thread))),
            resume_failures,
            system_report: Arc::new(system_report),
            io_failures,
            state: kernel_state,
            code_loader,
            tracer,
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

    /// Runs `f` on the run loop between cranks and returns its answer.
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut LoopState) -> Result<T, KernelError> + Send + 'static,
    ) -> Result<T, KernelError> {
        let (otx, orx) = oneshot::channel();
        if !self.handle.post(move |st| {
            let _ = otx.send(f(st));
        }) {
            return Err(stopped());
        }
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

    /// A live feed of crank traces (`CrankTrace`: the work, the endpoint, its syscalls, the
    /// outcome, the duration), from the next crank on. Traces are only made while someone is
    /// subscribed; a subscriber more than `TRACE_CAPACITY` traces behind loses the oldest
    /// (`RecvError::Lagged`) and never slows the run loop. Once the kernel has stopped, the
    /// receiver is closed.
    pub fn trace_subscribe(&self) -> tokio::sync::broadcast::Receiver<CrankTrace> {
        match self.tracer.upgrade() {
            Some(tx) => tx.subscribe(),
            None => tokio::sync::broadcast::channel(1).1,
        }
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
        if !self.handle.stop(otx) {
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
