//! Vat bundles in the JS kernel's format (spec vat-side §4.2):
//! JSON `{moduleFormat: "iife", code, exports, external}` where `code`
//! declares `var __vatExports__`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::VatWorkerError;

/// Read the bundle named by a `bundleSpec`: a plain path or a `file:` URL.
pub(crate) fn read_bundle_spec(vat_id: &str, spec: &str) -> Result<String, VatWorkerError> {
    let path = spec_to_path(spec)
        .ok_or_else(|| VatWorkerError::UnsupportedBundleSpec { vat_id: vat_id.to_string(), spec: spec.to_string() })?;
    std::fs::read_to_string(&path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            VatWorkerError::BundleNotFound { path }
        } else {
            VatWorkerError::BundleRead { path, source }
        }
    })
}

fn spec_to_path(spec: &str) -> Option<PathBuf> {
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

/// Where this crate's build installed the vat packages (`ses`, `@endo/*`, `@agoric/*`, ...):
/// `sourceSpec` imports resolve from here.
pub fn vat_node_modules() -> &'static Path {
    Path::new(env!("OCAP_VAT_NODE_MODULES"))
}

/// Import aliases every vat source gets: `@metamask/kernel-utils/exo` (`makeDefaultExo`), which
/// no npm release of `@metamask/kernel-utils` ships, maps to our compat module.
pub fn vat_aliases() -> Vec<(String, PathBuf)> {
    let compat = Path::new(env!("CARGO_MANIFEST_DIR")).join("js/src/compat/kernel-utils-exo.js");
    vec![("@metamask/kernel-utils/exo".to_string(), compat)]
}

/// Bundles a vat source file (`sourceSpec`) into the JS kernel's bundle format with the
/// Rust-native bundler (`ocap-bundle`, swc): no node at run time.
/// TypeScript sources (`.ts`, `.mts`) have their types stripped.
pub fn bundle_vat(source: &Path) -> Result<String, VatWorkerError> {
    ocap_bundle::bundle_vat(source, &[vat_node_modules().to_path_buf()], &vat_aliases())
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
}
