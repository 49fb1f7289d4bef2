//! Cluster and vat configs: the JS kernel's `ClusterConfig` and `VatConfig`, strictly
//! validated (host-surface.md §2). Unknown keys are refused, a vat names exactly one of
//! `sourceSpec`, `bundleSpec`, `bundleName`, and `bootstrap` must name a vat. Every error
//! names the field that failed, as a path (`vats.alice.globals[1]`).

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};

/// Superstruct's `exactOptional` (host-surface.md §2): the key may be absent, but when it is
/// present it must have the field's type; `null` is refused, as the JS kernel refuses it.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Longest socket path `bind` accepts: `sun_path` less its terminating NUL (108 bytes on
/// Linux, 104 on the BSDs and macOS). Node accepts the same paths, so the JS kernel's
/// configs that work there work here.
#[cfg(target_os = "linux")]
pub const MAX_SOCKET_PATH_BYTES: usize = 107;
#[cfg(not(target_os = "linux"))]
pub const MAX_SOCKET_PATH_BYTES: usize = 103;

/// The 20 global names a vat may ask to be endowed with (vat-side.md §5.3).
pub const ALLOWED_GLOBAL_NAMES: [&str; 20] = [
    "setTimeout",
    "clearTimeout",
    "setInterval",
    "clearInterval",
    "Date",
    "Math",
    "crypto",
    "SubtleCrypto",
    "fetch",
    "Request",
    "Headers",
    "Response",
    "TextEncoder",
    "TextDecoder",
    "URL",
    "URLSearchParams",
    "atob",
    "btoa",
    "AbortController",
    "AbortSignal",
];

/// The largest per-vat delivery budget a config may ask for (10 minutes): while a delivery
/// runs, no other vat's does, so a budget is also how long every other vat may have to wait.
pub const MAX_DELIVERY_BUDGET_MS: u64 = 600_000;

/// A config that failed validation; `path` names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cluster config at {path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

fn cfg_err(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError { path: path.into(), message: message.into() }
}

/// `{allowedHosts: [...]}` for vats that request `fetch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkConfig {
    pub allowed_hosts: Vec<String>,
}

/// Which way data flows through an IO channel, seen from the vats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IoDirection {
    In,
    Out,
    #[default]
    Inout,
}

/// The unit an IO channel declares (host-surface.md §2.3). The JS kernel accepts all four
/// and ignores them: its socket channel always frames by line. So does this kernel (with a
/// warning at launch for a unit other than `line`), so its configs run unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IoUnit {
    Line,
    String,
    Chars,
    Bytes,
}

/// An IO channel (host-surface.md §2.3). Only `socket` channels are implemented; every
/// other type is refused at validation (the JS kernel's Node factory refuses them at
/// launch), never accepted and then ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IoConfig {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub hostport: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub direction: Option<IoDirection>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub unit: Option<IoUnit>,
}

impl IoConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        match self.kind.as_str() {
            "socket" => {}
            "console" | "listen" | "network" | "file" => {
                return Err(cfg_err(
                    format!("{path}.type"),
                    format!("IO channel type {:?} is not supported by this kernel; use \"socket\"", self.kind),
                ))
            }
            other => return Err(cfg_err(format!("{path}.type"), format!("unknown IO channel type {other:?}"))),
        }
        match self.path.as_deref() {
            None | Some("") => return Err(cfg_err(format!("{path}.path"), "a socket channel needs a path")),
            Some(p) if p.len() > MAX_SOCKET_PATH_BYTES => {
                return Err(cfg_err(
                    format!("{path}.path"),
                    format!("socket path is too long: {} bytes, Unix sockets allow {MAX_SOCKET_PATH_BYTES}", p.len()),
                ))
            }
            _ => {}
        }
        if self.hostport.is_some() {
            return Err(cfg_err(format!("{path}.hostport"), "a socket channel takes a path, not a hostport"));
        }
        Ok(())
    }
}

/// One vat of a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VatConfig {
    // The spec keys are strict (`{sourceSpec: string}` and so on): present means a string.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub source_spec: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub bundle_spec: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub bundle_name: Option<String>,
    // The other keys are checked only when truthy in the JS kernel, so `null` passes as absent.
    /// Accepted and kept; the kernel reads `reapInterval` from it (deliveries between
    /// automatic bring-out-your-dead; `"never"`, as in swingset configs, or 0: none). Other
    /// keys are ignored, as in the JS kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_options: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_config: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub globals: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkConfig>,
}

impl VatConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let specs = [&self.source_spec, &self.bundle_spec, &self.bundle_name].iter().filter(|s| s.is_some()).count();
        if specs != 1 {
            return Err(cfg_err(
                path,
                format!("a vat needs exactly one of sourceSpec, bundleSpec or bundleName (found {specs})"),
            ));
        }
        for (key, v) in
            [("sourceSpec", &self.source_spec), ("bundleSpec", &self.bundle_spec), ("bundleName", &self.bundle_name)]
        {
            if v.as_deref() == Some("") {
                return Err(cfg_err(format!("{path}.{key}"), "must not be empty"));
            }
        }
        if let Some(p) = &self.parameters {
            if !p.is_object() && !p.is_null() {
                return Err(cfg_err(format!("{path}.parameters"), "must be a JSON object"));
            }
        }
        // `platformConfig` must match the JS kernel's `platformConfigStruct` (§9.3) when truthy.
        if let Some(pc) = self.platform_config.as_ref().filter(|pc| truthy(pc)) {
            if !pc.is_object() {
                return Err(cfg_err(format!("{path}.platformConfig"), "must be an object"));
            }
            let de = pc.clone();
            if let Err(e) = serde_path_to_error::deserialize::<_, PlatformConfig>(de) {
                let sub = e.path().to_string();
                let at =
                    if sub == "." { format!("{path}.platformConfig") } else { format!("{path}.platformConfig.{sub}") };
                return Err(cfg_err(at, e.into_inner().to_string()));
            }
        }
        if let Some(globals) = &self.globals {
            for (i, g) in globals.iter().enumerate() {
                if !ALLOWED_GLOBAL_NAMES.contains(&g.as_str()) {
                    return Err(cfg_err(format!("{path}.globals[{i}]"), format!("unknown global {g:?}")));
                }
            }
            if globals.iter().any(|g| g == "fetch") && self.network.is_none() {
                return Err(cfg_err(format!("{path}.network"), "a vat that requests fetch needs network.allowedHosts"));
            }
        }
        if let Some(ri) = self.creation_options.as_ref().and_then(|c| c.get("reapInterval")) {
            if ri.as_u64().is_none() && ri.as_str() != Some("never") {
                return Err(cfg_err(
                    format!("{path}.creationOptions.reapInterval"),
                    "must be a non-negative integer or \"never\"",
                ));
            }
        }
        if let Some(b) = self.creation_options.as_ref().and_then(|c| c.get("deliveryBudgetMs")) {
            if !b.as_u64().is_some_and(|ms| (1..=MAX_DELIVERY_BUDGET_MS).contains(&ms)) {
                return Err(cfg_err(
                    format!("{path}.creationOptions.deliveryBudgetMs"),
                    format!("must be an integer number of milliseconds from 1 to {MAX_DELIVERY_BUDGET_MS}"),
                ));
            }
        }
        Ok(())
    }

    /// `creationOptions.deliveryBudgetMs`, if set: how long one delivery to this vat may run
    /// before the vat is terminated (ours; the JS kernel has no metering). Overrides the
    /// kernel-wide budget, up or down.
    pub fn delivery_budget_ms(&self) -> Option<u64> {
        self.creation_options.as_ref()?.get("deliveryBudgetMs")?.as_u64()
    }

    /// `creationOptions.reapInterval`, if set; `"never"` is 0 (no automatic reaping).
    pub fn reap_interval(&self) -> Option<u64> {
        let ri = self.creation_options.as_ref()?.get("reapInterval")?;
        if ri.as_str() == Some("never") {
            return Some(0);
        }
        ri.as_u64()
    }
}

/// JS truthiness of a JSON value: the JS kernel checks several optional keys only when truthy.
fn truthy(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => false,
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        serde_json::Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// The JS kernel's `platformConfigStruct` (host-surface.md §9.3), for validation only: the
/// config is kept as JSON. This kernel provides no platform capabilities (a warning at
/// launch says so).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by serde only
struct PlatformConfig {
    #[serde(default, deserialize_with = "present")]
    fs: Option<FsConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)] // read by serde only
struct FsConfig {
    root_dir: String,
    #[serde(default, deserialize_with = "present")]
    exists_sync: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    promises: Option<FsPromisesConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)] // read by serde only
struct FsPromisesConfig {
    #[serde(default, deserialize_with = "present")]
    read_file: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    access: Option<bool>,
}

/// A subcluster: vats launched together, with a bootstrap vat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterConfig {
    pub bootstrap: String,
    pub vats: IndexMap<String, VatConfig>,
    /// Kernel services handed to bootstrap. A name that is also one of this config's own
    /// `io` keys is that channel (host-surface.md §3.1 b), never a registered service.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub io: Option<IndexMap<String, IoConfig>>,
    /// Accepted for compatibility; ignored (the JS kernel ignores it too).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub force_reset: Option<bool>,
    /// Named vat configs that a vat's `bundleName` may refer to (the JS kernel validates them
    /// and uses none; a named bundle is checked further only when a vat uses it).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub bundles: Option<IndexMap<String, VatConfig>>,
}

impl ClusterConfig {
    /// Parses and validates a config from JSON text.
    pub fn from_json(text: &str) -> Result<ClusterConfig, ConfigError> {
        // First the JSON itself: a key given twice (a vat name used twice, say) is an error,
        // not "the last one wins" (issue 11 item 1).
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize::<_, crate::json_text::StrictJson>(de).map_err(|e| {
            let path = e.path().to_string();
            cfg_err(if path == "." { "(root)".into() } else { path }, e.into_inner().to_string())
        })?;
        let de = &mut serde_json::Deserializer::from_str(text);
        let config: ClusterConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            cfg_err(if path == "." { "(root)".into() } else { path }, e.into_inner().to_string())
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Validates a config built in code.
    pub fn from_value(value: serde_json::Value) -> Result<ClusterConfig, ConfigError> {
        Self::from_json(&value.to_string())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vats.is_empty() {
            return Err(cfg_err("vats", "a cluster needs at least one vat"));
        }
        if !self.vats.contains_key(&self.bootstrap) {
            return Err(cfg_err(
                "bootstrap",
                format!("invalid bootstrap vat name {:?}: not a key of vats", self.bootstrap),
            ));
        }
        for (name, vat) in &self.vats {
            vat.validate(&format!("vats.{name}"))?;
            if let Some(b) = &vat.bundle_name {
                match self.bundles.as_ref().and_then(|bs| bs.get(b)) {
                    None => {
                        return Err(cfg_err(
                            format!("vats.{name}.bundleName"),
                            format!("no bundle named {b:?} in bundles"),
                        ))
                    }
                    Some(named) if named.bundle_name.is_some() => {
                        return Err(cfg_err(
                            format!("vats.{name}.bundleName"),
                            format!(
                            "bundle {b:?} names another bundle; a vat's bundle must have a sourceSpec or bundleSpec"
                        ),
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
        for (name, vat) in self.bundles.iter().flatten() {
            vat.validate(&format!("bundles.{name}"))?;
        }
        for (name, io) in self.io.iter().flatten() {
            io.validate(&format!("io.{name}"))?;
        }
        Ok(())
    }

    /// The effective config of a vat: a `bundleName` is replaced by the named bundle's spec.
    pub fn resolved_vat(&self, name: &str) -> Option<VatConfig> {
        let vat = self.vats.get(name)?;
        let Some(b) = &vat.bundle_name else { return Some(vat.clone()) };
        let named = self.bundles.as_ref()?.get(b)?;
        Some(VatConfig {
            source_spec: named.source_spec.clone(),
            bundle_spec: named.bundle_spec.clone(),
            bundle_name: None,
            creation_options: vat.creation_options.clone().or_else(|| named.creation_options.clone()),
            parameters: vat.parameters.clone().or_else(|| named.parameters.clone()),
            platform_config: vat.platform_config.clone().or_else(|| named.platform_config.clone()),
            globals: vat.globals.clone().or_else(|| named.globals.clone()),
            network: vat.network.clone().or_else(|| named.network.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> ConfigError {
        ClusterConfig::from_json(json).unwrap_err()
    }

    #[test]
    fn accepts_every_key_the_js_kernel_accepts() {
        let c = ClusterConfig::from_json(
            r#"{"bootstrap":"a","forceReset":true,"services":["x"],
                "bundles":{"b":{"bundleSpec":"file:///b.bundle"}},
                "vats":{"a":{"sourceSpec":"a.js","parameters":{"name":"A"},"creationOptions":{"reapInterval":5},
                             "platformConfig":{},"globals":["Date","fetch"],"network":{"allowedHosts":["x.org"]}},
                        "b":{"bundleName":"b"}}}"#,
        )
        .unwrap();
        assert_eq!(c.vats.keys().collect::<Vec<_>>(), vec!["a", "b"], "key order is launch order");
        assert_eq!(c.vats["a"].reap_interval(), Some(5));
        assert_eq!(c.resolved_vat("b").unwrap().bundle_spec.as_deref(), Some("file:///b.bundle"));
    }

    #[test]
    fn unknown_keys_are_refused_with_their_path() {
        let e = err(r#"{"bootstrap":"a","name":"x","vats":{"a":{"sourceSpec":"a.js"}}}"#);
        assert!(e.message.contains("unknown field `name`"), "{e}");
        let e = err(r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":"a.js","colour":1}}}"#);
        assert_eq!(e.path, "vats.a.colour");
        assert!(e.message.contains("unknown field"), "{e}");
    }

    #[test]
    fn a_vat_needs_exactly_one_spec() {
        let e = err(r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":"a.js","bundleSpec":"b"}}}"#);
        assert_eq!(e.path, "vats.a");
        let e = err(r#"{"bootstrap":"a","vats":{"a":{"parameters":{}}}}"#);
        assert!(e.message.contains("exactly one"), "{e}");
    }

    #[test]
    fn bootstrap_must_name_a_vat() {
        let e = err(r#"{"bootstrap":"zed","vats":{"a":{"sourceSpec":"a.js"}}}"#);
        assert_eq!(e.path, "bootstrap");
        assert!(e.message.contains("zed"), "{e}");
    }

    #[test]
    fn globals_are_checked_against_the_allowlist() {
        let e = err(r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":"a.js","globals":["Date","process"]}}}"#);
        assert_eq!(e.path, "vats.a.globals[1]");
        let e = err(r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":"a.js","globals":["fetch"]}}}"#);
        assert_eq!(e.path, "vats.a.network");
    }

    const VAT: &str = r#""vats":{"a":{"sourceSpec":"a.js"}}"#;

    /// host-surface.md §2.1: `services`, `io`, `forceReset` and `bundles` are
    /// `exactOptional`: absent is fine, `null` is not (the JS kernel refuses it). A vat's spec
    /// key with `null` is an unknown key to the strict `{sourceSpec: string}` variant.
    #[test]
    fn exact_optional_keys_refuse_null() {
        for key in ["services", "io", "forceReset", "bundles"] {
            let e = err(&format!(r#"{{"bootstrap":"a","{key}":null,{VAT}}}"#));
            assert_eq!(e.path, key, "{e}");
        }
        let e = err(r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":"a.js","bundleSpec":null}}}"#);
        assert_eq!(e.path, "vats.a.bundleSpec", "{e}");
        // §2.2: the other vat keys are checked only when truthy, so null passes as absent.
        ClusterConfig::from_json(
            r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":"a.js","parameters":null,"creationOptions":null,
                "platformConfig":null,"globals":null,"network":null}}}"#,
        )
        .unwrap();
    }

    /// §2.1: `bundles` is validated (as vat configs) but not used by the JS kernel, so a
    /// named bundle that itself names a bundle is refused only when a vat uses it.
    #[test]
    fn a_bundle_naming_a_bundle_is_refused_only_when_used() {
        let bundles = r#""bundles":{"b":{"bundleName":"c"},"c":{"bundleSpec":"file:///c.bundle"}}"#;
        ClusterConfig::from_json(&format!(r#"{{"bootstrap":"a",{bundles},{VAT}}}"#)).unwrap();
        let e = err(&format!(r#"{{"bootstrap":"a",{bundles},"vats":{{"a":{{"bundleName":"b"}}}}}}"#));
        assert_eq!(e.path, "vats.a.bundleName", "{e}");
        let e = err(&format!(r#"{{"bootstrap":"a","bundles":{{"b":{{"colour":1}}}},{VAT}}}"#));
        assert_eq!(e.path, "bundles.b.colour", "{e}");
    }

    /// §2.2 and §9.3: a truthy `platformConfig` must match `platformConfigStruct`
    /// (`{fs?: {rootDir, existsSync?, promises?: {readFile?, access?}}}`, strict).
    #[test]
    fn platform_config_is_checked_against_the_js_struct() {
        let cfg =
            |pc: &str| format!(r#"{{"bootstrap":"a","vats":{{"a":{{"sourceSpec":"a.js","platformConfig":{pc}}}}}}}"#);
        for ok in ["{}", "false", r#"{"fs":{"rootDir":"/d","existsSync":true,"promises":{"readFile":true}}}"#] {
            ClusterConfig::from_json(&cfg(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, path) in [
            (r#"{"net":{}}"#, "vats.a.platformConfig.net"),
            (r#"{"fs":{}}"#, "vats.a.platformConfig.fs"),
            (r#"{"fs":{"rootDir":"/d","promises":{"writeFile":true}}}"#, "vats.a.platformConfig.fs.promises.writeFile"),
            ("[1]", "vats.a.platformConfig"),
        ] {
            assert_eq!(err(&cfg(bad)).path, path, "{bad}");
        }
    }

    /// `creationOptions` is free JSON in the JS kernel; this kernel reads `reapInterval` from
    /// it, accepting swingset's `"never"` (no automatic reaping) besides counts.
    #[test]
    fn reap_interval_never_means_no_automatic_reaping() {
        let c = ClusterConfig::from_json(
            r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":"a.js","creationOptions":{"reapInterval":"never"}}}}"#,
        )
        .unwrap();
        assert_eq!(c.vats["a"].reap_interval(), Some(0));
        let e =
            err(r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":"a.js","creationOptions":{"reapInterval":"soon"}}}}"#);
        assert_eq!(e.path, "vats.a.creationOptions.reapInterval");
    }

    /// Socket paths as long as `bind` (and so Node) accepts are accepted; longer ones refused.
    #[test]
    fn socket_paths_up_to_the_platform_limit_are_accepted() {
        let cfg = |len: usize| {
            let p = format!("/{}", "p".repeat(len - 1));
            format!(r#"{{"bootstrap":"a","io":{{"x":{{"type":"socket","path":"{p}"}}}},{VAT}}}"#)
        };
        ClusterConfig::from_json(&cfg(MAX_SOCKET_PATH_BYTES)).unwrap();
        assert_eq!(err(&cfg(MAX_SOCKET_PATH_BYTES + 1)).path, "io.x.path");
        // The limit is real: a path of exactly that length binds.
        let dir = tempfile::Builder::new().prefix("s").tempdir_in("/tmp").unwrap();
        let base = dir.path().join("x").display().to_string();
        let path = format!("{base}{}", "y".repeat(MAX_SOCKET_PATH_BYTES - base.len()));
        assert_eq!(path.len(), MAX_SOCKET_PATH_BYTES);
        std::os::unix::net::UnixListener::bind(&path).unwrap();
    }

    #[test]
    fn type_errors_name_the_field() {
        let e = err(r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":5}}}"#);
        assert_eq!(e.path, "vats.a.sourceSpec");
        let e = err(r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":"a.js","parameters":[1]}}}"#);
        assert_eq!(e.path, "vats.a.parameters");
    }

    /// Issue 11 item 1: a key given twice is an error naming where, never "the last wins".
    #[test]
    fn duplicate_keys_are_errors_that_name_the_object() {
        let e = err(r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":"a.js"},"a":{"sourceSpec":"b.js"}}}"#);
        assert_eq!(e.path, "vats");
        assert!(e.message.contains(r#"duplicate key "a""#), "{e}");
        let e = err(r#"{"bootstrap":"a","bootstrap":"a","vats":{"a":{"sourceSpec":"a.js"}}}"#);
        assert_eq!(e.path, "(root)");
        let e = err(r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":"a.js","parameters":{"x":1,"x":2}}}}"#);
        assert_eq!(e.path, "vats.a.parameters");
    }

    #[test]
    fn delivery_budget_is_a_positive_bounded_integer() {
        let cfg = |b: &str| {
            format!(
                r#"{{"bootstrap":"a","vats":{{"a":{{"sourceSpec":"a.js","creationOptions":{{"deliveryBudgetMs":{b}}}}}}}}}"#
            )
        };
        let c = ClusterConfig::from_json(&cfg("250")).unwrap();
        assert_eq!(c.vats["a"].delivery_budget_ms(), Some(250));
        for bad in ["0", "-5", "1.5", "\"fast\"", "600001"] {
            assert_eq!(err(&cfg(bad)).path, "vats.a.creationOptions.deliveryBudgetMs", "{bad}");
        }
    }
}
