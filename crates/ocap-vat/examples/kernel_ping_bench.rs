//! Time of one host -> kernel -> JS vat -> kernel -> host round trip:
//! `KernelCore::queue_message(root, "ping")` + `run_until_idle()` on a
//! file-backed store, with the vat running `tests/vats/ping-vat.js` through
//! `JsVat`.
//!
//! `cargo run --release -p ocap-vat --example kernel_ping_bench [messages]`

use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;

use ocap_kernel::store::{Durability, Store};
use ocap_kernel::{KernelCore, KernelOptions, VatSpec};
use ocap_vat::{bundle_vat_source, JsVat, WorkerOptions};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let messages: usize = std::env::args().nth(1).map_or(Ok(5000), |a| a.parse())?;
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vats/ping-vat.js");
    let bundle = bundle_vat_source(&source)?;
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("kernel.sqlite"), Durability::Process)?;
    let mut core = KernelCore::new(store, KernelOptions::default())?;
    let config = json!({"bundleSpec": "ping-vat.bundle"});
    let (vat, start) = JsVat::start(WorkerOptions::new("v1", "ping"), &config, Some(bundle), vec![], Box::new(|_| {}))?;
    let spec = VatSpec {
        name: "ping".into(),
        config: config.to_string(),
        initial_vatstore: start.vatstore_sets,
        ..VatSpec::default()
    };
    let (_, root) = core.add_vat(spec, Box::new(vat))?;
    let (tx, rx) = mpsc::channel();
    let ping = |core: &mut KernelCore| -> Result<(), Box<dyn std::error::Error>> {
        let tx = tx.clone();
        core.queue_message(root, "ping", vec![], Some(Box::new(move |r| drop(tx.send(r)))))?;
        core.run_until_idle()?;
        rx.try_recv()?.map_err(|e| format!("rejected: {e:?}"))?;
        Ok(())
    };
    for _ in 0..200 {
        ping(&mut core)?;
    }
    let t = Instant::now();
    for _ in 0..messages {
        ping(&mut core)?;
    }
    let per = t.elapsed().as_secs_f64() * 1e6 / messages as f64;
    println!(
        "host ping through the kernel and a JS vat: {per:.0} us per message ({messages} messages, file-backed store)"
    );
    core.shutdown()?;
    Ok(())
}
