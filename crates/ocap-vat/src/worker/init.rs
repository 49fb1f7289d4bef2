//! `initVat` on the vat thread: the checks on the vat config the worker owns (parameters,
//! the optional globals against both allowlists, `fetch` only with `network.allowedHosts`),
//! reading and parsing the bundle, and then liveslots' `startVat`.
//!
//! A problem found before liveslots runs is the caller's error (`Err`), not the vat's death:
//! nothing has run in the runtime yet.

use rquickjs::Function;
use serde_json::Value as Json;

use super::runner::Runner;
use super::Fatal;
use crate::{bundle, DeliveryReply, VatWorkerError, ALLOWED_GLOBAL_NAMES, IMPLEMENTED_GLOBAL_NAMES};

impl Runner {
    /// The outer Result is the vat's life; the inner one the caller's answer.
    pub(super) fn init(
        &mut self,
        config: Json,
        bundle_text: Option<String>,
        vatstore: Vec<(String, String)>,
    ) -> Result<Result<DeliveryReply, VatWorkerError>, Fatal> {
        let prepared = self.prepare_init(&config, bundle_text);
        let (code, requested) = match prepared {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        self.initialized = true;
        self.state.vatstore.borrow_mut().load(vatstore);
        let config_text = config.to_string();
        let requested_text = Json::from(requested).to_string();
        let vat_id = self.vat_id();
        self.run_delivery(move |_ctx, sup| {
            let f: Function = sup.get("initVat")?;
            f.call::<_, ()>((vat_id, config_text, code, requested_text))
        })
        .map(Ok)
    }

    fn prepare_init(
        &self,
        config: &Json,
        bundle_text: Option<String>,
    ) -> Result<(String, Vec<String>), VatWorkerError> {
        let vat_id = self.vat_id();
        if self.initialized {
            return Err(VatWorkerError::AlreadyInitialized { vat_id });
        }
        let bad = |reason: &str| VatWorkerError::BadConfig { vat_id: vat_id.clone(), reason: reason.to_string() };
        let object = config.as_object().ok_or_else(|| bad("vatConfig must be an object"))?;
        if let Some(p) = object.get("parameters") {
            if !p.is_object() && !p.is_null() {
                return Err(bad("parameters must be an object"));
            }
        }
        let mut requested = Vec::new();
        if let Some(globals) = object.get("globals") {
            let list = globals.as_array().ok_or_else(|| bad("globals must be an array of names"))?;
            for name in list {
                let name = name.as_str().ok_or_else(|| bad("globals must be an array of names"))?;
                let allowed = ALLOWED_GLOBAL_NAMES.contains(&name)
                    && self.opts.allowed_globals.as_ref().is_none_or(|a| a.iter().any(|n| n == name));
                if !allowed {
                    return Err(VatWorkerError::UnknownGlobal { vat_id, name: name.to_string() });
                }
                if name == "fetch" {
                    match object.get("network").and_then(|n| n.get("allowedHosts")) {
                        None => return Err(VatWorkerError::FetchWithoutAllowedHosts { vat_id }),
                        Some(Json::Array(hosts)) if hosts.iter().all(Json::is_string) => {}
                        Some(_) => return Err(bad("network.allowedHosts must be an array of host names")),
                    }
                }
                if !IMPLEMENTED_GLOBAL_NAMES.contains(&name) {
                    return Err(VatWorkerError::UnimplementedGlobal { vat_id, name: name.to_string() });
                }
                if !requested.iter().any(|n| n == name) {
                    requested.push(name.to_string());
                }
            }
        }
        let text = match bundle_text {
            Some(text) => text,
            None => {
                let spec = match object.get("bundleSpec") {
                    Some(Json::String(spec)) => spec,
                    Some(_) => return Err(bad("bundleSpec must be a string")),
                    None => return Err(bad(
                        "for now, only bundleSpec is supported in vatConfig specifications (or pass the bundle text)",
                    )),
                };
                bundle::read_bundle_spec(&vat_id, spec, bundle::DEFAULT_MAX_BUNDLE_BYTES)?
            }
        };
        let code = bundle::parse_bundle(&text)?;
        Ok((code, requested))
    }
}
