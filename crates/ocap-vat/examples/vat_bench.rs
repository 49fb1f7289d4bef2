//! Rough figures for the vat worker: time to a ready vat, time per simple
//! delivery, memory per idle vat.
//!
//! `cargo run --release -p ocap-vat --example vat_bench [vats] [deliveries]`

use std::path::Path;
use std::time::Instant;

use ocap_vat::{bundle_vat_source, VatWorker, WorkerOptions};
use serde_json::json;

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let vats: usize = args.next().map_or(Ok(20), |a| a.parse())?;
    let deliveries: usize = args.next().map_or(Ok(5000), |a| a.parse())?;
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vats/ping-vat.js");
    let bundle = bundle_vat_source(&source)?;

    let t = Instant::now();
    let first = VatWorker::spawn(WorkerOptions::new("v0", "first"), Box::new(|_| {}))?;
    println!("first spawn (includes compiling the prelude to bytecode): {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    first.terminate();

    let rss_before = rss_bytes();
    let mut workers = Vec::new();
    let mut spawn_ms = Vec::new();
    let mut init_ms = Vec::new();
    for i in 0..vats {
        let t = Instant::now();
        let w = VatWorker::spawn(WorkerOptions::new(format!("v{}", i + 1), "bench"), Box::new(|_| {}))?;
        spawn_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let reply = w.init(json!({"bundleSpec": "ping-vat.bundle"}), Some(bundle.clone()), vec![])?;
        init_ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(reply.error.is_none(), "{:?}", reply.error);
        workers.push(w);
    }
    let rss_after = rss_bytes();
    let avg = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "spawn (SES lockdown + liveslots + supervisor from bytecode): avg {:.1} ms; init (bundle eval + startVat): avg {:.1} ms; ready vat: avg {:.1} ms",
        avg(&spawn_ms),
        avg(&init_ms),
        avg(&spawn_ms) + avg(&init_ms)
    );
    println!(
        "memory: {} idle initialised vats added {:.1} MB RSS, {:.2} MB per vat",
        vats,
        (rss_after.saturating_sub(rss_before)) as f64 / 1e6,
        (rss_after.saturating_sub(rss_before)) as f64 / 1e6 / vats as f64
    );

    let w = &workers[0];
    let ping = |n: usize| json!(["message", "o+0", {"methargs": {"body": "#[\"ping\",[]]", "slots": []}, "result": format!("p-{}", n + 1)}]);
    for n in 0..200 {
        w.deliver(ping(n))?;
    }
    let t = Instant::now();
    for n in 200..200 + deliveries {
        let reply = w.deliver(ping(n))?;
        debug_assert_eq!(reply.syscalls.len(), 1);
    }
    let per = t.elapsed().as_secs_f64() * 1e6 / deliveries as f64;
    println!("deliver ping -> resolve: {per:.0} us per delivery (round trip from the caller, {deliveries} deliveries)");
    Ok(())
}
