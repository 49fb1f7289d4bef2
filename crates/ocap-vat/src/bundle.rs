//! Vat bundles in the JS kernel's format (spec vat-side §4.2):
//! JSON `{moduleFormat: "iife", code, exports, external}` where `code`
//! declares `var __vatExports__`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use ocap_bundle::EmbeddedFs;

use crate::VatWorkerError;

/// The largest bundle file read (the default of `LauncherOptions::max_bundle_bytes`).
pub const DEFAULT_MAX_BUNDLE_BYTES: u64 = 64 * 1024 * 1024;

/// Read the bundle named by a `bundleSpec`: a plain path or a `file:` URL; a regular file
/// of at most `max_bytes` (`ocap_bundle::read_regular_file`: never a FIFO or a device).
pub(crate) fn read_bundle_spec(vat_id: &str, spec: &str, max_bytes: u64) -> Result<String, VatWorkerError> {
    let path = spec_to_path(spec)
        .ok_or_else(|| VatWorkerError::UnsupportedBundleSpec { vat_id: vat_id.to_string(), spec: spec.to_string() })?;
    read_bundle_file(&path, max_bytes)
}

/// Reads a bundle file (see `read_bundle_spec`).
pub(crate) fn read_bundle_file(path: &Path, max_bytes: u64) -> Result<String, VatWorkerError> {
    ocap_bundle::read_regular_file(path, max_bytes).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            VatWorkerError::BundleNotFound { path: path.to_path_buf() }
        } else {
            VatWorkerError::BundleRead { path: path.to_path_buf(), source }
        }
    })
}

/// The path a `bundleSpec` or `sourceSpec` names, or `None` for a URL of another scheme than
/// `file:` (`http:`, `https:`, `data:`, ...), which ocap does not load.
pub fn spec_to_path(spec: &str) -> Option<PathBuf> {
    if let Some(rest) = spec.strip_prefix("file://") {
        // file:///abs/path or file://localhost/abs/path
        let rest = rest.strip_prefix("localhost").unwrap_or(rest);
        return percent_decode(rest).map(PathBuf::from);
    }
    if let Some(rest) = spec.strip_prefix("file:") {
        return percent_decode(rest).map(PathBuf::from);
    }
    // Any other scheme (http:, https:, data:, ...) is for the kernel to resolve.
    let looks_like_url = spec.split_once(':').is_some_and(|(scheme, _)| {
        scheme.len() > 1 && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if looks_like_url {
        return None;
    }
    Some(PathBuf::from(spec))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Validate a bundle's JSON text and return its `code`.
pub(crate) fn parse_bundle(text: &str) -> Result<String, VatWorkerError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| VatWorkerError::InvalidBundle(format!("not JSON ({e})")))?;
    let object = value.as_object().ok_or_else(|| VatWorkerError::InvalidBundle("not a JSON object".into()))?;
    match object.get("moduleFormat") {
        Some(serde_json::Value::String(format)) if format == "iife" => {}
        Some(serde_json::Value::String(format)) => return Err(VatWorkerError::UnknownBundleFormat(format.clone())),
        Some(other) => return Err(VatWorkerError::UnknownBundleFormat(other.to_string())),
        None => return Err(VatWorkerError::UnknownBundleFormat("undefined".into())),
    }
    match object.get("code") {
        None | Some(serde_json::Value::Null) => Err(VatWorkerError::InvalidBundle("missing code".into())),
        Some(serde_json::Value::String(code)) => Ok(code.clone()),
        Some(_) => Err(VatWorkerError::InvalidBundle("code must be a string".into())),
    }
}

/// Where this crate's build installed the vat packages (`ses`, `@endo/*`, `@agoric/*`, ...),
/// in the cargo build directory. For tests and dev tooling only: [`bundle_vat`] does not use
/// it (it uses the copy embedded in the binary, [`embedded_packages`]).
pub fn vat_node_modules() -> &'static Path {
    Path::new(env!("OCAP_VAT_NODE_MODULES"))
}

/// Import aliases for bundling against [`vat_node_modules`] (tests and dev tooling):
/// `@metamask/kernel-utils/exo` (`makeDefaultExo`), which no npm release of
/// `@metamask/kernel-utils` ships, maps to our compat module in the source tree.
pub fn vat_aliases() -> Vec<(String, PathBuf)> {
    let compat = Path::new(env!("CARGO_MANIFEST_DIR")).join("js/src/compat/kernel-utils-exo.js");
    vec![(KERNEL_UTILS_EXO.to_string(), compat)]
}

const KERNEL_UTILS_EXO: &str = "@metamask/kernel-utils/exo";

/// Where the embedded packages are mounted: a virtual path that only the bundler's file
/// system knows (nothing at or under it is ever looked up on disk). It shows in error
/// messages about imports from embedded packages, hence a name that cannot be mistaken for a
/// real directory.
pub(crate) const EMBEDDED_PACKAGES_ROOT: &str = "/<ocap-embedded>";

/// The packages vat sources may import, packed by `build.rs` (see `pack_vat_packages` there
/// and the crate README, "Embedded vat packages"): tar + gzip, about 1.6 MB.
static EMBEDDED_PACKAGES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vat-packages.tar.gz"));

/// The embedded packages, mounted in memory at [`EMBEDDED_PACKAGES_ROOT`] over the real disk.
///
/// Decompressed on first use and kept for the life of the process: a binary that never
/// bundles a `sourceSpec` never pays for it, and one that bundles many pays once (~7 MB
/// of memory). Read in memory rather than extracted to a cache directory: the bundler reads
/// every file through `ocap_bundle::FileSystem`, so nothing needs to exist on disk, and there
/// is no cache to race on, verify or clean up.
pub(crate) fn embedded_packages() -> Result<Arc<EmbeddedFs>, VatWorkerError> {
    static MOUNTED: OnceLock<Result<Arc<EmbeddedFs>, String>> = OnceLock::new();
    MOUNTED
        .get_or_init(|| {
            EmbeddedFs::from_tar_gz(EMBEDDED_PACKAGES_ROOT, EMBEDDED_PACKAGES).map(Arc::new).map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|reason| VatWorkerError::Bundler {
            path: PathBuf::from(EMBEDDED_PACKAGES_ROOT),
            reason: format!("the embedded vat packages are unreadable: {reason}"),
        })
}

/// Bundles a vat source file (`sourceSpec`) into the JS kernel's bundle format with the
/// Rust-native bundler (`ocap-bundle`, swc): no node at run time.
/// TypeScript sources (`.ts`, `.mts`) have their types stripped.
///
/// Bare imports resolve Node-style from the `node_modules` directories above the source
/// (so a vat's own packages win), then from the packages embedded in this binary
/// ([`embedded_packages`]); `@metamask/kernel-utils/exo` is the embedded compat module. The
/// build directory is never consulted, so a copied or installed binary bundles the same.
pub fn bundle_vat(source: &Path) -> Result<String, VatWorkerError> {
    let fs = embedded_packages()?;
    let root = Path::new(EMBEDDED_PACKAGES_ROOT);
    let node_modules = [root.join("node_modules")];
    let aliases = [(KERNEL_UTILS_EXO.to_string(), root.join("compat/kernel-utils-exo.js"))];
    ocap_bundle::bundle_vat_with_fs(fs, source, &node_modules, &aliases)
        .map_err(|e| VatWorkerError::Bundler { path: source.to_path_buf(), reason: e.to_string() })
}

/// Bundle a vat source file (`.js`, importing packages such as `@endo/exo`,
/// `@endo/eventual-send` or `@metamask/kernel-utils/exo`) into the JS
/// kernel's bundle format, returning the bundle's JSON text.
///
/// This is the esbuild path, kept to check the native bundler against (`bundle_vat` is what
/// the kernel uses). It runs `node` with the esbuild
/// and the `node_modules` that this crate's build script installed, so it
/// only works on the machine (and in the target directory) that built the
/// crate. Packages are resolved from that `node_modules` (the packages in
/// `crates/ocap-vat/js/package.json`).
pub fn bundle_vat_source(source: &Path) -> Result<String, VatWorkerError> {
    let bundler_error = |reason: String| VatWorkerError::Bundler { path: source.to_path_buf(), reason };
    if !source.is_file() {
        return Err(bundler_error("source file not found".into()));
    }
    let out = std::env::temp_dir().join(format!(
        "ocap-vat-bundle-{}-{}.bundle",
        std::process::id(),
        NEXT_BUNDLE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let output = Command::new(env!("OCAP_VAT_NODE"))
        .arg(env!("OCAP_VAT_BUILD_SCRIPT"))
        .arg("vat")
        .arg(env!("OCAP_VAT_NODE_MODULES"))
        .arg(source)
        .arg(&out)
        .output()
        .map_err(|e| bundler_error(format!("cannot run node: {e}")))?;
    if !output.status.success() {
        return Err(bundler_error(format!(
            "esbuild failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let text = std::fs::read_to_string(&out).map_err(|e| bundler_error(format!("reading output: {e}")));
    let _ = std::fs::remove_file(&out);
    text
}

static NEXT_BUNDLE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_specs_map_to_paths() {
        assert_eq!(spec_to_path("/x/y.bundle"), Some(PathBuf::from("/x/y.bundle")));
        assert_eq!(spec_to_path("file:///x/a%20b.bundle"), Some(PathBuf::from("/x/a b.bundle")));
        assert_eq!(spec_to_path("rel/y.bundle"), Some(PathBuf::from("rel/y.bundle")));
        assert_eq!(spec_to_path("https://example.test/y.bundle"), None);
    }

    #[test]
    fn bundle_validation_messages_match_the_js_kernel() {
        let err = |t: &str| parse_bundle(t).unwrap_err().to_string();
        assert_eq!(err(r#"{"moduleFormat":"esm","code":""}"#), "Unknown bundle format: esm");
        assert_eq!(err(r#"{"moduleFormat":"iife"}"#), "invalid bundle: missing code");
        assert_eq!(err(r#"{"moduleFormat":"iife","code":3}"#), "invalid bundle: code must be a string");
        assert_eq!(parse_bundle(r#"{"moduleFormat":"iife","code":"var x"}"#).unwrap(), "var x");
    }

    /// The embedded packages are the installed ones: every test vat bundles to the same text
    /// from the archive (in memory) as from the build directory, where a missing file would
    /// make the first fail or differ.
    #[test]
    fn embedded_packages_bundle_like_the_build_directory() {
        let vats = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vats");
        let mut compared = 0;
        for name in ["ping-vat.js", "alice-vat.js", "bob-vat.js", "web-vat.js"] {
            let source = vats.join(name);
            let embedded = bundle_vat(&source).unwrap_or_else(|e| panic!("{name}: {e}"));
            let on_disk = ocap_bundle::bundle_vat(&source, &[vat_node_modules().to_path_buf()], &vat_aliases())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(embedded == on_disk, "{name}: the embedded packages bundle differently");
            compared += 1;
        }
        assert_eq!(compared, 4);
        let fs = embedded_packages().unwrap();
        assert_eq!(fs.root(), Path::new(EMBEDDED_PACKAGES_ROOT));
        use ocap_bundle::FileSystem;
        let root = Path::new(EMBEDDED_PACKAGES_ROOT);
        assert!(fs.is_file(&root.join("node_modules/@agoric/swingset-liveslots/package.json")));
        assert!(fs.is_file(&root.join("compat/kernel-utils-exo.js")));
        // Prelude-only packages and build tools are left out.
        for absent in ["core-js-pure", "abort-controller", "esbuild", "patch-package"] {
            assert!(!fs.is_dir(&root.join("node_modules").join(absent)), "{absent} is embedded");
        }
    }

    #[test]
    fn a_missing_embedded_import_names_the_embedded_root() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("v.js");
        std::fs::write(&source, "import { x } from 'no-such-package-anywhere';\nexport const y = x;\n").unwrap();
        let err = bundle_vat(&source).unwrap_err().to_string();
        assert!(err.contains("no-such-package-anywhere") && err.contains(EMBEDDED_PACKAGES_ROOT), "{err}");
    }
}
