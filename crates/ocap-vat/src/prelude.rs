//! The embedded prelude (SES + liveslots + supervisor), compiled once per
//! process to QuickJS bytecode.

use std::sync::OnceLock;

use rquickjs::module::WriteOptions;
use rquickjs::{Context, Module, Runtime};

/// The esbuild output of `js/src/prelude/index.js`, built by build.rs.
pub(crate) const PRELUDE_SOURCE: &str = include_str!(concat!(env!("OUT_DIR"), "/prelude.js"));

/// Module name the prelude is compiled under (appears in stack traces).
pub(crate) const PRELUDE_NAME: &str = "ocap-vat-prelude.js";

static BYTECODE: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();

/// The prelude as QuickJS module bytecode, compiled on first use.
pub(crate) fn bytecode() -> Result<&'static [u8], String> {
    BYTECODE
        .get_or_init(|| compile_module(PRELUDE_NAME, PRELUDE_SOURCE))
        .as_ref()
        .map(|bytes| bytes.as_slice())
        .map_err(Clone::clone)
}

/// Compiles an ES module's source to QuickJS bytecode (source text stripped),
/// in a runtime of its own. Errors name the module.
pub(crate) fn compile_module(name: &str, source: &str) -> Result<Vec<u8>, String> {
    let started = std::time::Instant::now();
    let rt = Runtime::new().map_err(|e| format!("creating the compile runtime: {e}"))?;
    let ctx = Context::full(&rt).map_err(|e| format!("creating the compile context: {e}"))?;
    let bytes = ctx.with(|ctx| {
        let module = Module::declare(ctx.clone(), name, source).map_err(|e| {
            let detail = ctx.catch();
            format!("compiling {name}: {e}: {detail:?}")
        })?;
        module
            .write(WriteOptions { strip_source: true, ..WriteOptions::default() })
            .map_err(|e| format!("writing the bytecode of {name}: {e}"))
    })?;
    tracing::debug!(module = name, bytes = bytes.len(), elapsed_ms = started.elapsed().as_millis() as u64, "compiled");
    Ok(bytes)
}
