//! Vat code for the launcher: the text of each vat's bundle, read from its `bundleSpec` or
//! made from its `sourceSpec`, checked and cached.
//!
//! Everything a config names goes through here (issue 11 item 1): a spec is a file path or
//! a `file:` URL (other schemes are refused, saying so); a bundle file is read only if it is
//! a regular file of at most `max_bundle_bytes` (`ocap_bundle::read_regular_file`: a FIFO,
//! `/dev/zero` or a directory is an error, never a hang or an allocation); sources are read
//! the same way by the bundler. The cache is also the launcher's `VatCodeLoader`: the kernel
//! fills it on a thread of its own before a launch reaches the run loop, so a slow disk or a
//! big bundle delays only that launch.
//!
//! Entries are keyed by path and checked against the file's modification time and length
//! at every use; the cache holds at most `MAX_CACHED_BYTES` of code.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use ocap_abi::config::VatConfig;
use ocap_abi::launch::VatCodeLoader;

use crate::bundle::{self, bundle_vat};

/// Code kept across launches; past it the cache starts afresh.
const MAX_CACHED_BYTES: usize = 256 * 1024 * 1024;

/// (modification time, length) of a file when it was read.
type Stamp = (Option<SystemTime>, u64);

#[derive(Default)]
struct Entries {
    by_path: HashMap<(PathBuf, bool), (Stamp, Arc<String>)>,
    bytes: usize,
}

/// The launcher's vat code: resolution, safe reading, bundling, caching.
pub struct CodeCache {
    base_dir: Option<PathBuf>,
    max_bundle_bytes: u64,
    entries: Mutex<Entries>,
}

/// A vat's code, ready for a worker.
pub(crate) struct VatCode {
    /// The bundle's JSON text.
    pub text: Arc<String>,
    /// What the vat's config says its `bundleSpec` is (for a source, `<source>.bundle`).
    pub bundle_spec: String,
}

impl CodeCache {
    pub fn new(base_dir: Option<PathBuf>, max_bundle_bytes: u64) -> CodeCache {
        CodeCache { base_dir, max_bundle_bytes, entries: Mutex::default() }
    }

    /// The file a spec names: a path (relative ones against the base directory) or a `file:`
    /// URL. Other URL schemes are an error that says they are not supported.
    fn resolve(&self, field: &str, spec: &str) -> Result<PathBuf, String> {
        let path = bundle::spec_to_path(spec).ok_or_else(|| {
            format!(
                "{field} {spec:?} is not supported: vat code is loaded from file paths and file: URLs only \
                 (not http:, https: or data:)"
            )
        })?;
        Ok(match &self.base_dir {
            Some(base) if path.is_relative() => base.join(path),
            _ => path,
        })
    }

    /// The bundle text for a vat's config (`sourceSpec` or `bundleSpec`).
    pub(crate) fn code_for(&self, config: &VatConfig) -> Result<VatCode, String> {
        match (&config.source_spec, &config.bundle_spec) {
            (Some(src), _) => {
                let path = self.resolve("sourceSpec", src)?;
                let text = self.cached(&path, true, || bundle_vat(&path).map_err(|e| e.to_string()))?;
                Ok(VatCode { text, bundle_spec: format!("{src}.bundle") })
            }
            (None, Some(spec)) => {
                let path = self.resolve("bundleSpec", spec)?;
                let max = self.max_bundle_bytes;
                let text = self.cached(&path, false, || {
                    bundle::read_bundle_file(&path, max).map_err(|e| format!("{e} (maxBundleBytes: {max})"))
                })?;
                Ok(VatCode { text, bundle_spec: path.to_string_lossy().into_owned() })
            }
            _ => Err("a vat needs sourceSpec or bundleSpec".into()),
        }
    }

    fn cached(
        &self,
        path: &Path,
        source: bool,
        make: impl FnOnce() -> Result<String, String>,
    ) -> Result<Arc<String>, String> {
        let stamp = match std::fs::metadata(path) {
            // Said here, by name, before the bundler or the reader gets to it.
            Ok(m) if !m.is_file() => return Err(format!("{} is not a regular file", path.display())),
            Ok(m) => (m.modified().ok(), m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let what = if source { "source file" } else { "bundle file" };
                return Err(format!("{what} {} not found", path.display()));
            }
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let key = (path.to_path_buf(), source);
        if let Ok(entries) = self.entries.lock() {
            if let Some((s, text)) = entries.by_path.get(&key) {
                if *s == stamp && stamp.0.is_some() {
                    return Ok(text.clone());
                }
            }
        }
        let text = Arc::new(make()?);
        if let Ok(mut entries) = self.entries.lock() {
            if entries.bytes + text.len() > MAX_CACHED_BYTES {
                *entries = Entries::default();
            }
            entries.bytes += text.len();
            if let Some((_, old)) = entries.by_path.insert(key, (stamp, text.clone())) {
                entries.bytes = entries.bytes.saturating_sub(old.len());
            }
        }
        Ok(text)
    }
}

impl VatCodeLoader for CodeCache {
    fn preload(&self, vats: &[VatConfig]) {
        for vat in vats {
            if let Err(e) = self.code_for(vat) {
                tracing::debug!("preloading vat code: {e}");
            }
        }
    }
}
