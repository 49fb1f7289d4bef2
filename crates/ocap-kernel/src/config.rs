//! Cluster and vat configs: the JS kernel's `ClusterConfig` and `VatConfig`, strictly
//! validated (host-surface.md §2). Unknown keys are refused, a vat names exactly one of
//! `sourceSpec`, `bundleSpec`, `bundleName`, and `bootstrap` must name a vat. Every error
//! names the field that failed, as a path (`vats.alice.globals[1]`).

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

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

/// An IO channel (host-surface.md §2.3). Only `socket` channels with `line` units are
/// implemented; every other type and unit is refused at validation, never accepted and
/// then ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IoConfig {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostport: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<IoDirection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
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
            Some(p) if p.len() > 100 => {
                return Err(cfg_err(
                    format!("{path}.path"),
                    "socket path is too long (Unix sockets allow about 100 bytes)",
                ))
            }
            _ => {}
        }
        if self.hostport.is_some() {
            return Err(cfg_err(format!("{path}.hostport"), "a socket channel takes a path, not a hostport"));
        }
        match self.unit.as_deref() {
            None | Some("line") => Ok(()),
            Some(u) => Err(cfg_err(
                format!("{path}.unit"),
                format!("unit {u:?} is not supported for socket channels; they are framed by line (\"line\")"),
            )),
        }
    }
}

/// One vat of a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VatConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_spec: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_spec: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_name: Option<String>,
    /// Accepted and kept; the kernel reads `reapInterval` from it (deliveries between
    /// automatic bring-out-your-dead). Other keys are ignored, as in the JS kernel.
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
            if ri.as_u64().is_none() {
                return Err(cfg_err(format!("{path}.creationOptions.reapInterval"), "must be a non-negative integer"));
            }
        }
        Ok(())
    }

    /// `creationOptions.reapInterval`, if set.
    pub fn reap_interval(&self) -> Option<u64> {
        self.creation_options.as_ref()?.get("reapInterval")?.as_u64()
    }
}

/// A subcluster: vats launched together, with a bootstrap vat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterConfig {
    pub bootstrap: String,
    pub vats: IndexMap<String, VatConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<IndexMap<String, IoConfig>>,
    /// Accepted for compatibility; ignored (the JS kernel ignores it too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_reset: Option<bool>,
    /// Named vat configs that a vat's `bundleName` may refer to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundles: Option<IndexMap<String, VatConfig>>,
}

impl ClusterConfig {
    /// Parses and validates a config from JSON text.
    pub fn from_json(text: &str) -> Result<ClusterConfig, ConfigError> {
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
                if !self.bundles.as_ref().is_some_and(|bs| bs.contains_key(b)) {
                    return Err(cfg_err(
                        format!("vats.{name}.bundleName"),
                        format!("no bundle named {b:?} in bundles"),
                    ));
                }
            }
        }
        if let Some(bundles) = &self.bundles {
            for (name, vat) in bundles {
                vat.validate(&format!("bundles.{name}"))?;
                if vat.bundle_name.is_some() {
                    return Err(cfg_err(
                        format!("bundles.{name}.bundleName"),
                        "a named bundle cannot refer to another bundle",
                    ));
                }
            }
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

    #[test]
    fn type_errors_name_the_field() {
        let e = err(r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":5}}}"#);
        assert_eq!(e.path, "vats.a.sourceSpec");
        let e = err(r#"{"bootstrap":"a","vats":{"a":{"sourceSpec":"a.js","parameters":[1]}}}"#);
        assert_eq!(e.path, "vats.a.parameters");
    }
}
