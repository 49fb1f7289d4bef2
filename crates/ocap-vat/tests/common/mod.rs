//! Shared by the vat crate's integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use ocap_vat::bundle_vat_source;

/// Bundles `tests/vats/<name>.js` once per test process.
pub fn bundle(name: &str) -> String {
    static CACHE: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(name.to_string())
        .or_insert_with(|| {
            let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vats").join(format!("{name}.js"));
            bundle_vat_source(&source).unwrap_or_else(|e| panic!("bundling {name}: {e}"))
        })
        .clone()
}
