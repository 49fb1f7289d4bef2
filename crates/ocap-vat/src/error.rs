//! Errors of the vat worker.

use std::path::PathBuf;

/// Everything that can go wrong between the kernel and a vat worker, other
/// than a liveslots-level delivery error (that one is
/// [`DeliveryReply::error`](crate::DeliveryReply::error)).
#[derive(Debug, thiserror::Error)]
pub enum VatWorkerError {
    /// `bundleSpec` names a file that does not exist.
    #[error("bundle file {} not found", path.display())]
    BundleNotFound { path: PathBuf },
    /// The bundle file exists but could not be read.
    #[error("cannot read bundle file {}: {source}", path.display())]
    BundleRead { path: PathBuf, source: std::io::Error },
    /// The bundle text is not a valid JS-kernel bundle.
    #[error("invalid bundle: {0}")]
    InvalidBundle(String),
    /// The bundle's `moduleFormat` is not `iife`.
    #[error("Unknown bundle format: {0}")]
    UnknownBundleFormat(String),
    /// `bundleSpec` is neither a path nor a `file:` URL.
    #[error("vat {vat_id}: bundleSpec {spec:?} is not supported: bundles are loaded from file paths and file: URLs only (not http:, https: or data:)")]
    UnsupportedBundleSpec { vat_id: String, spec: String },
    /// The vat config is malformed.
    #[error("VatSupervisor received initVat with bad config parameter (vat {vat_id}): {reason}")]
    BadConfig { vat_id: String, reason: String },
    /// A global outside the 20 names or outside the kernel's allowlist.
    #[error("Vat \"{vat_id}\" requested unknown global \"{name}\"")]
    UnknownGlobal { vat_id: String, name: String },
    /// An allowed global this worker does not implement (none at present:
    /// `IMPLEMENTED_GLOBAL_NAMES` is all of `ALLOWED_GLOBAL_NAMES`).
    #[error("Vat \"{vat_id}\" requested global \"{name}\", which this vat worker does not implement yet")]
    UnimplementedGlobal { vat_id: String, name: String },
    /// `fetch` requested without `network.allowedHosts`.
    #[error("Vat \"{vat_id}\" requested \"fetch\" but no network.allowedHosts was specified")]
    FetchWithoutAllowedHosts { vat_id: String },
    /// `init` called twice.
    #[error("VatSupervisor received initVat after user code already loaded (vat {vat_id})")]
    AlreadyInitialized { vat_id: String },
    /// `deliver` before `init`.
    #[error("cannot deliver before vat is loaded (vat {vat_id})")]
    NotInitialized { vat_id: String },
    /// The delivery tuple is not a JSON array starting with a delivery type.
    #[error("vat {vat_id}: bad delivery: {reason}")]
    BadDelivery { vat_id: String, reason: String },
    /// The supervisor JS threw (a worker bug or a broken prelude).
    #[error("vat {vat_id}: JavaScript error in the supervisor: {message}")]
    Js { vat_id: String, message: String },
    /// The worker is dead (memory limit, interrupt, panic, terminated).
    #[error("vat {vat_id} died: {reason}")]
    Died { vat_id: String, reason: String },
    /// The worker did not answer in time (should not happen: the interrupt
    /// handler bounds each delivery; this is the caller-side backstop).
    #[error("vat {vat_id}: no answer from the worker within {timeout_ms} ms")]
    Timeout { vat_id: String, timeout_ms: u64 },
    /// The worker thread could not be started or the runtime not built.
    #[error("vat {vat_id}: cannot start the worker: {reason}")]
    Spawn { vat_id: String, reason: String },
    /// `bundle_vat_source` failed.
    #[error("bundling {}: {reason}", path.display())]
    Bundler { path: PathBuf, reason: String },
}
