//! The vat-only parts of endpoints: vat records (config, subcluster, reap interval), the root
//! object `o+0`, the vatstore, attaching a worker (a new incarnation, `incarnation.rs`), and
//! what termination does beyond the generic part (`terminate.rs`).

use super::{KernelCore, KernelError};
use crate::refs::{KRef, VatId, ROOT_OBJECT_VREF};
use crate::smallcaps::{self, Value};
use crate::store::{VatRecord, VatState};
use crate::vat::Endpoint;

use super::IncarnationReport;

/// What a vat is set up with when it joins the kernel.
#[derive(Debug, Clone, Default)]
pub struct VatSpec {
    pub name: String,
    pub subcluster: Option<String>,
    /// The vat's config as JSON, stored so the vat can be restarted.
    pub config: String,
    /// `None` uses the kernel default.
    pub reap_interval_deliveries: Option<u64>,
    /// Vatstore contents produced while the worker started (liveslots' startVat).
    pub initial_vatstore: Vec<(String, String)>,
}

impl KernelCore {
    /// Adds a new vat whose worker has already started: allocates its ID, exports its root
    /// object `o+0` (pinned while the vat lives) and records its config and vatstore.
    pub fn add_vat(&mut self, spec: VatSpec, endpoint: Box<dyn Endpoint>) -> Result<(VatId, KRef), KernelError> {
        let vat = self.reserve_vat_id()?;
        self.add_vat_with_id(vat, spec, endpoint)
    }

    /// `add_vat` with an ID from `reserve_vat_id`.
    pub fn add_vat_with_id(
        &mut self,
        vat: VatId,
        spec: VatSpec,
        endpoint: Box<dyn Endpoint>,
    ) -> Result<(VatId, KRef), KernelError> {
        let root = self.unit(|k| {
            k.store.create_vat(&VatRecord {
                id: vat,
                name: spec.name.clone(),
                subcluster: spec.subcluster.clone(),
                config: spec.config.clone(),
                state: VatState::Active,
                reap_interval: spec.reap_interval_deliveries.unwrap_or(k.opts.default_reap_interval_deliveries),
            })?;
            for (key, value) in &spec.initial_vatstore {
                k.store.vatstore_set(vat, key, value)?;
            }
            let root = k.store.create_object(vat.into())?;
            k.store.add_clist(vat.into(), root, ROOT_OBJECT_VREF, true)?;
            k.store.adjust_pins(root, 1)?;
            k.incref(root)?;
            Ok(root)
        })?;
        self.endpoints.insert(vat.into(), endpoint);
        Ok((vat, root))
    }

    /// Allocates a vat ID for `add_vat_with_id` (for worker set-up that needs the ID before
    /// the vat joins). IDs are never reused, so a failed launch leaves a gap.
    pub fn reserve_vat_id(&mut self) -> Result<VatId, KernelError> {
        self.unit(|k| Ok(VatId(k.store.next_id("vat")?)))
    }

    /// Re-attaches a worker for a persisted vat (after a kernel restart or `restartVat`): the
    /// worker is the vat's new incarnation, so its non-durable exports are abandoned and the
    /// promises it decided are rejected first (`core/incarnation.rs`).
    pub fn attach_vat(&mut self, vat: VatId, endpoint: Box<dyn Endpoint>) -> Result<IncarnationReport, KernelError> {
        match self.store.vat(vat)? {
            Some(rec) if rec.state == VatState::Active => {
                if let Some(mut old) = self.endpoints.remove(&vat.into()) {
                    old.shutdown();
                }
                let prune_imports = endpoint.records_durable_imports();
                let report = self.unit(|k| {
                    let report = k.begin_incarnation(vat)?;
                    if prune_imports {
                        k.drop_forgotten_imports(vat)?;
                    }
                    Ok(report)
                })?;
                self.endpoints.insert(vat.into(), endpoint);
                self.commit()?;
                Ok(report)
            }
            Some(_) => Err(KernelError::VatNotRunning(vat)),
            None => Err(KernelError::NoSuchVat(vat)),
        }
    }

    /// Pings a vat's worker (`pingVat`); answers "pong".
    pub fn ping_vat(&mut self, vat: VatId) -> Result<&'static str, KernelError> {
        match self.endpoints.get_mut(&vat.into()) {
            Some(ep) => {
                ep.ping().map(|_| "pong").map_err(|e| KernelError::Internal(format!("ping of {vat} failed: {e}")))
            }
            None if self.store.vat(vat)?.is_some() => Err(KernelError::VatNotRunning(vat)),
            None => Err(KernelError::NoSuchVat(vat)),
        }
    }

    /// Active vats recorded in the store (whether or not a worker is attached).
    pub fn active_vats(&self) -> Result<Vec<VatRecord>, KernelError> {
        let mut out = Vec::new();
        for id in self.store.vat_ids()? {
            if let Some(rec) = self.store.vat(id)? {
                if rec.state == VatState::Active {
                    out.push(rec);
                }
            }
        }
        Ok(out)
    }

    pub fn is_vat_attached(&self, vat: VatId) -> bool {
        self.is_attached(vat.into())
    }

    /// The root kref of a vat.
    pub fn vat_root(&self, vat: VatId) -> Result<KRef, KernelError> {
        self.store.vat_root_kref(vat)?.ok_or(KernelError::NoSuchVat(vat))
    }

    /// Terminates a vat from the host: rejects what it decides and schedules its cleanup.
    pub fn terminate_vat(&mut self, vat: VatId, reason: &str) -> Result<(), KernelError> {
        self.require_active_vat(vat)?;
        let info = smallcaps::kser(&Value::error(reason));
        self.unit(|k| k.terminate_in_unit(vat.into(), &info))?;
        self.commit()
    }

    /// `NoSuchVat` or `VatNotRunning` unless the vat exists and is active.
    pub(crate) fn require_active_vat(&self, vat: VatId) -> Result<(), KernelError> {
        match self.store.vat(vat)? {
            Some(rec) if rec.state == VatState::Active => Ok(()),
            Some(_) => Err(KernelError::VatNotRunning(vat)),
            None => Err(KernelError::NoSuchVat(vat)),
        }
    }

    /// What terminating a vat does beyond any endpoint's termination, inside its unit: the
    /// vatstore goes, the root's pin is released, and a subcluster whose last vat this was is
    /// deleted.
    pub(crate) fn end_vat_in_unit(&mut self, vat: VatId) -> Result<(), KernelError> {
        self.store.delete_vatstore(vat)?;
        if let Some(root) = self.store.vat_root_kref(vat)? {
            // The vat's own pin, unless what is left belongs to OCAP URLs (the host may have
            // released the root's pin itself).
            let url_pins = self.store.live_url_count(root)?;
            if self.store.object(root)?.is_some_and(|o| o.pins > url_pins) {
                self.store.adjust_pins(root, -1)?;
                self.decref(root)?;
            }
        }
        if let Some(sid) = self.store.vat(vat)?.and_then(|r| r.subcluster) {
            if self.store.subcluster_vats(&sid)?.is_empty() {
                self.store.delete_subcluster(&sid)?;
            }
        }
        Ok(())
    }
}
