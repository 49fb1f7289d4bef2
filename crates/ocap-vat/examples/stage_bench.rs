//! Per-stage cost of a delivery inside QuickJS: each piece (a guarded exo call,
//! marshal's `toCapData` / `fromCapData`, `passStyleOf`, `harden`, eventual
//! send) run `n` times in one delivery, timed from outside (vats have no clock),
//! minus an empty loop. For BENCHMARKS.md's per-stage table (issue 15).
//!
//! The marshal stages time the JavaScript `@endo/marshal` (the probe vat's own
//! copy, in its compartment); liveslots' marshaller in the prelude first asks
//! the native smallcaps codec (`src/smallcaps.rs`), which this probe cannot
//! reach: `vat_bench`'s whole delivery shows that part.
//!
//! `cargo run --release -p ocap-vat --example stage_bench [n] [stage ...]` (all stages when
//! none is named)

use std::path::Path;
use std::time::Instant;

use ocap_vat::{bundle_vat_source, VatWorker, WorkerOptions};
use serde_json::{json, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(5000), |a| a.parse())?;
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/vats/stage-probe-vat.js");
    let bundle = bundle_vat_source(&source)?;
    let mut options = WorkerOptions::new("v1", "stage-probe");
    // The send stages make two syscalls per send.
    options.max_syscalls_per_delivery = 1_000_000;
    let worker = VatWorker::spawn(options, Box::new(|_| {}))?;
    let reply = worker.init(json!({"bundleSpec": "stage-probe-vat.bundle"}), Some(bundle), vec![])?;
    if let Some(error) = reply.error {
        return Err(error.into());
    }
    let mut result = 0;
    let mut call = |method: &str, args: Value| -> Result<(Value, f64), Box<dyn std::error::Error>> {
        result += 1;
        let body = format!("#{}", json!([method, args]));
        let (t, cpu) = (Instant::now(), vat_cpu_ns());
        let reply = worker.deliver(
            json!(["message", "o+0", {"methargs": {"body": body, "slots": []}, "result": format!("p-{result}")}]),
        )?;
        let elapsed = match (cpu, vat_cpu_ns()) {
            (Some(before), Some(after)) => after.saturating_sub(before) as f64 / 1e9,
            _ => t.elapsed().as_secs_f64(),
        };
        let resolve = reply.syscalls.iter().rev().find(|s| s[0] == "resolve").ok_or("no resolve")?;
        let resolution = &resolve[1][0];
        if resolution[1] != json!(false) {
            return Err(format!("{method} rejected: {resolution}").into());
        }
        let body = resolution[2]["body"].as_str().ok_or("no body")?;
        Ok((serde_json::from_str(&body[1..])?, elapsed))
    };
    let (names, _) = call("names", json!([]))?;
    // A presence of another vat's object, for the send stages.
    {
        let t = worker.deliver(json!(["message", "o+0", {
            "methargs": {"body": "#[\"setPeer\",[\"$0.Alleged: peer\"]]", "slots": ["o-5"]},
            "result": "p-1000000"
        }]))?;
        if t.error.is_some() {
            return Err(format!("setPeer: {:?}", t.error).into());
        }
    }
    let mut names: Vec<String> = serde_json::from_value(names)?;
    let only: Vec<String> = std::env::args().skip(2).collect();
    if !only.is_empty() {
        names.retain(|name| only.contains(name));
    }
    let mut per_op = |name: &str| -> Result<f64, Box<dyn std::error::Error>> {
        call("run", json!([name, n / 10]))?; // warm up
        let (_, seconds) = call("run", json!([name, n]))?;
        Ok(seconds * 1e6 / n as f64)
    };
    let empty = per_op("empty")?;
    let clock = if vat_cpu_ns().is_some() { "the vat thread's CPU time" } else { "wall-clock time" };
    println!("{n} iterations per stage; µs per operation ({clock}), minus the empty loop ({empty:.2} µs)");
    for name in names.iter().filter(|name| *name != "empty") {
        println!("{name:>20}: {:6.1}", per_op(name)? - empty);
    }
    Ok(())
}

/// CPU time of the vat's worker thread so far (ns), from Linux's per-thread `schedstat`: what a
/// stage costs, unlike wall-clock time, does not count time the thread waited for a core on a
/// busy machine. `None` where it cannot be read.
fn vat_cpu_ns() -> Option<u64> {
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        if std::fs::read_to_string(dir.join("comm")).ok()?.trim() == "vat-v1" {
            return std::fs::read_to_string(dir.join("schedstat")).ok()?.split_whitespace().next()?.parse().ok();
        }
    }
    None
}
