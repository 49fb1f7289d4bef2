//! Endowment code a vat's runtime loads only when the vat asks for it.
//!
//! The `URL` endowment is core-js-pure's WHATWG URL, ~170 KB of source (a fifth
//! of the prelude). In the prelude, every vat's runtime held its bytecode,
//! ~0.3 MB per vat, and read it at every start, though few vats ask for `URL`
//! (BENCHMARKS.md, issue 15). `js/src/web/url-module.js` is bundled on its own
//! (build.rs, `node build.mjs url`), compiled to bytecode once per process on
//! first use, and evaluated in a vat's realm by `host.loadURLModule()` when
//! the supervisor builds a `URL` or `URLSearchParams` endowment.

use std::sync::OnceLock;

use rquickjs::promise::PromiseState;
use rquickjs::{Ctx, Module, Object, Value};

use crate::prelude::compile_module;

/// The esbuild output of `js/src/web/url-module.js`, built by build.rs.
const URL_MODULE_SOURCE: &str = include_str!(concat!(env!("OUT_DIR"), "/url-module.js"));

/// Module name of the URL code (appears in stack traces).
const URL_MODULE_NAME: &str = "ocap-vat-url.js";

static URL_BYTECODE: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();

/// Evaluates the URL module in `ctx` and returns its namespace
/// (`{ makeURL }`). The module has no top-level `await`, so its evaluation is
/// over when `eval` returns; no other job runs meanwhile. Errors: the module
/// failed to compile (a build defect) or threw.
pub(crate) fn load_url_module<'js>(ctx: &Ctx<'js>) -> Result<Object<'js>, String> {
    let bytecode = URL_BYTECODE
        .get_or_init(|| compile_module(URL_MODULE_NAME, URL_MODULE_SOURCE))
        .as_ref()
        .map_err(Clone::clone)?;
    // SAFETY: the bytes are the output of Module::write by this same QuickJS
    // build, and live for 'static (a OnceLock), as Module::load requires.
    let module = unsafe { Module::load(ctx.clone(), bytecode) }.map_err(|e| describe(ctx, e))?;
    let (module, promise) = module.eval().map_err(|e| describe(ctx, e))?;
    match promise.state() {
        PromiseState::Resolved => module.namespace().map_err(|e| describe(ctx, e)),
        PromiseState::Rejected => {
            let reason = promise.result::<Value>().and_then(Result::err);
            Err(format!("the URL module threw: {reason:?}"))
        }
        PromiseState::Pending => Err("the URL module did not finish evaluating".to_string()),
    }
}

fn describe(ctx: &Ctx<'_>, error: rquickjs::Error) -> String {
    if error.is_exception() {
        format!("loading the URL module: {:?}", ctx.catch())
    } else {
        format!("loading the URL module: {error}")
    }
}
