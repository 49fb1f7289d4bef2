//! Paths in a cluster config made absolute, so that whoever reads the config later (the
//! daemon, whose working directory is elsewhere; an embedded kernel) finds the same files.
//! Used by `ocap run`, `ocap launch`, `ocap daemon exec launchSubcluster`, and the daemon's
//! system subclusters (against the home).

use std::path::Path;

use serde_json::Value as Json;

/// Makes the relative paths of a cluster config absolute against `base`, so the daemon,
/// whose directory is elsewhere, finds them: `sourceSpec` and `bundleSpec` (in `vats` and
/// `bundles`; URLs, `scheme:...`, are left alone) and IO channels' `path`.
pub fn resolve_specs(config: &mut Json, base: &Path) {
    if let Some(channels) = config.get_mut("io").and_then(Json::as_object_mut) {
        for channel in channels.values_mut() {
            if let Some(Json::String(path)) = channel.get_mut("path") {
                // An empty path stays empty, for the validator to refuse by name.
                if !path.is_empty() && Path::new(path.as_str()).is_relative() {
                    *path = base.join(path.as_str()).display().to_string();
                }
            }
        }
    }
    for section in ["vats", "bundles"] {
        let Some(vats) = config.get_mut(section).and_then(Json::as_object_mut) else { continue };
        for vat in vats.values_mut() {
            for key in ["sourceSpec", "bundleSpec"] {
                if let Some(Json::String(spec)) = vat.get_mut(key) {
                    // A URL of any scheme (`file:`, `http:`, `data:`) is left as it is: the
                    // launcher reads `file:` URLs and says the others are not supported.
                    let plain_path = !spec.starts_with("file:") && ocap_vat::spec_to_path(spec).is_some();
                    if plain_path && !spec.is_empty() && Path::new(spec.as_str()).is_relative() {
                        *spec = base.join(spec.as_str()).display().to_string();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty spec is not made `<base>/`: the config validator must see it and say
    /// `vats.a.sourceSpec: must not be empty` (found through the panel's launch form).
    #[test]
    fn empty_specs_stay_empty_for_the_validator() {
        let mut config = serde_json::json!({"vats": {"a": {"sourceSpec": ""}}, "io": {"c": {"path": ""}}});
        resolve_specs(&mut config, Path::new("/tmp"));
        assert_eq!(config["vats"]["a"]["sourceSpec"], "");
        assert_eq!(config["io"]["c"]["path"], "");
        let e = ocap_kernel::config::ClusterConfig::from_value(
            serde_json::json!({"bootstrap": "a", "vats": {"a": {"sourceSpec": ""}}}),
        )
        .expect_err("refused");
        assert!(e.to_string().contains("vats.a.sourceSpec"), "{e}");
    }

    #[test]
    fn relative_specs_become_absolute() {
        let mut c = serde_json::json!({
            "bootstrap": "a",
            "vats": {"a": {"sourceSpec": "a.js"}, "b": {"bundleSpec": "/abs/b.bundle"}, "c": {"bundleSpec": "http://x/c"}, "e": {"bundleSpec": "data:application/json,{}"}},
            "bundles": {"d": {"bundleSpec": "d.bundle"}},
            "io": {"repl": {"type": "socket", "path": "repl.sock"}},
        });
        resolve_specs(&mut c, Path::new("/base"));
        assert_eq!(c["vats"]["a"]["sourceSpec"], "/base/a.js");
        assert_eq!(c["vats"]["b"]["bundleSpec"], "/abs/b.bundle");
        assert_eq!(c["vats"]["c"]["bundleSpec"], "http://x/c");
        assert_eq!(c["vats"]["e"]["bundleSpec"], "data:application/json,{}");
        assert_eq!(c["bundles"]["d"]["bundleSpec"], "/base/d.bundle");
        assert_eq!(c["io"]["repl"]["path"], "/base/repl.sock");
    }
}
