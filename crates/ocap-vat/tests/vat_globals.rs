//! The vat's global object (spec vat-side §5, "The vat's global environment"):
//!
//! > §5.1 Realm baseline (SES). Every vat worker first imports
//! > `packages/kernel-shims/src/endoify-node.js` […] Observable consequences
//! > inside a vat: All intrinsics are frozen, and the global `harden` exists.
//! > […] There is no `setTimeout`, `setInterval`, `TextEncoder`, `URL`,
//! > `crypto`, `fetch`, `atob`/`btoa` or `AbortController` […]
//! > §5.3 Optional globals (the allowlist)
//!
//! The JS kernel runs SES 1.15, whose compartments get every universal
//! global, `Float32Array`/`Float64Array` included; SES 2.x moved those to the
//! start compartment only, and our worker endows them back (README, "The
//! vat's globals"). These tests read the list of globals SES permits in a
//! compartment from the *installed* `ses` package at test time (its
//! `src/permits.js`, imported by node), so the list cannot drift from the SES
//! the vats run, and check that a real vat has every one of them except the
//! few the QuickJS engine itself lacks.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Mutex, OnceLock};

use ocap_vat::{vat_node_modules, VatWorker, WorkerEvent, WorkerOptions, ALLOWED_GLOBAL_NAMES};
use serde_json::{json, Value};

mod common;
use common::bundle;

/// The permitted compartment globals that QuickJS-ng (as vendored by
/// rquickjs 0.14) does not have, so no vat has them. Keep in sync with the
/// README's "The vat's globals".
const ENGINE_LACKS: [&str; 5] = ["AsyncIterator", "ModuleSource", "Temporal", "TextDecoder", "TextEncoder"];

/// Globals SES 2.x keeps on the start compartment only but the JS kernel's
/// SES 1.15 puts in every compartment; our worker endows each one the engine
/// has.
const ENDOWED_FROM_START_COMPARTMENT: [&str; 3] = ["Float16Array", "Float32Array", "Float64Array"];

/// What the installed SES permits: `compartment` is every global name a new
/// compartment gets (`constantProperties`, `universalPropertyNames`,
/// `sharedGlobalPropertyNames`, `uniqueGlobalPropertyNames`), `initial` the
/// names of `initialGlobalPropertyNames` (start compartment only).
struct SesPermits {
    compartment: BTreeSet<String>,
    initial: BTreeSet<String>,
}

fn ses_permits() -> &'static SesPermits {
    static PERMITS: OnceLock<SesPermits> = OnceLock::new();
    PERMITS.get_or_init(|| {
        let permits = vat_node_modules().join("ses/src/permits.js");
        assert!(permits.is_file(), "{} is missing", permits.display());
        let script = r#"
            import { pathToFileURL } from 'node:url';
            const p = await import(pathToFileURL(process.argv[1]).href);
            const keys = (...tables) => tables.flatMap(t => Object.keys(t));
            console.log(JSON.stringify({
              compartment: keys(p.constantProperties, p.universalPropertyNames,
                p.sharedGlobalPropertyNames, p.uniqueGlobalPropertyNames),
              initial: keys(p.initialGlobalPropertyNames),
            }));
        "#;
        let node = option_env!("OCAP_VAT_NODE").unwrap_or("node");
        let out = Command::new(node)
            .args(["--input-type=module", "-e", script])
            .arg(&permits)
            .output()
            .unwrap_or_else(|e| panic!("running {node}: {e}"));
        assert!(out.status.success(), "node failed: {}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).expect("node printed JSON");
        let set = |key: &str| -> BTreeSet<String> {
            v[key].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect()
        };
        let permits = SesPermits { compartment: set("compartment"), initial: set("initial") };
        // Sanity: the parse found the tables (a handful of well-known names).
        for name in ["Array", "Promise", "Compartment", "globalThis", "undefined", "Date"] {
            assert!(permits.compartment.contains(name), "{name} not in {:?}", permits.compartment);
        }
        permits
    })
}

/// The names, among `names`, that a bare QuickJS context (no SES, no shims)
/// lacks: what the engine itself does not provide.
fn missing_from_bare_engine(names: &BTreeSet<String>) -> BTreeSet<String> {
    let rt = rquickjs::Runtime::new().expect("runtime");
    let ctx = rquickjs::Context::full(&rt).expect("context");
    let list = serde_json::to_string(names).unwrap();
    let json: String = ctx
        .with(|ctx| ctx.eval(format!("JSON.stringify({list}.filter(name => !(name in globalThis)))")).expect("eval"));
    serde_json::from_str::<Vec<String>>(&json).unwrap().into_iter().collect()
}

/// A started `tests/vats/<name>.js`.
struct GlobalsVat {
    worker: VatWorker,
    _events: Receiver<WorkerEvent>,
    next: std::cell::Cell<u32>,
}

impl GlobalsVat {
    /// Starts `tests/vats/globals-vat.js` with `globals` endowed.
    fn start(globals: &[&str]) -> GlobalsVat {
        Self::start_vat("globals-vat", globals)
    }

    /// Starts `tests/vats/<name>.js` with `globals` endowed; panics if the
    /// vat fails to start.
    fn start_vat(name: &str, globals: &[&str]) -> GlobalsVat {
        let (tx, events) = mpsc::channel();
        let tx = Mutex::new(tx);
        let worker = VatWorker::spawn(
            WorkerOptions::new("v1", "globals"),
            Box::new(move |event| {
                let _ = tx.lock().unwrap().send(event);
            }),
        )
        .expect("spawn");
        let mut config = json!({"bundleSpec": format!("{name}.bundle"), "globals": globals});
        if globals.contains(&"fetch") {
            // `fetch` comes only with a network caveat (spec §5.4).
            config["network"] = json!({"allowedHosts": []});
        }
        let reply = worker.init(config, Some(bundle(name)), vec![]).expect("init");
        assert_eq!(reply.error, None, "{name} failed to start");
        GlobalsVat { worker, _events: events, next: std::cell::Cell::new(1) }
    }

    /// `root.method(...args)`, resolved within the delivery.
    fn call(&self, method: &str, args: Value) -> Value {
        let n = self.next.get();
        self.next.set(n + 1);
        let vpid = format!("p-{n}");
        let body = format!("#{}", json!([method, args]));
        let reply = self
            .worker
            .deliver(json!(["message", "o+0", {"methargs": {"body": body, "slots": []}, "result": vpid}]))
            .expect("deliver");
        assert_eq!(reply.error, None);
        for syscall in reply.syscalls.iter().filter(|s| s[0] == "resolve") {
            for r in syscall[1].as_array().unwrap() {
                if r[0] == vpid.as_str() {
                    let body = r[2]["body"].as_str().unwrap();
                    let value: Value = serde_json::from_str(&body[1..]).unwrap();
                    assert_eq!(r[1], false, "{method} rejected: {value}");
                    return value;
                }
            }
        }
        panic!("{method}: no resolution in {:?}", reply.syscalls)
    }

    fn missing(&self, names: &BTreeSet<String>) -> BTreeSet<String> {
        let v = self.call("missing", json!([names]));
        v.as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect()
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn a_vat_has_every_global_ses_permits_in_a_compartment_but_those_the_engine_lacks() {
    let permits = ses_permits();
    // The Float*Array constructors are start-compartment-only in this SES
    // (or universal again in a later one): either way, vats must have them.
    for name in ENDOWED_FROM_START_COMPARTMENT {
        assert!(
            permits.initial.contains(name) || permits.compartment.contains(name),
            "{name} is not permitted by the installed SES at all"
        );
    }
    let mut expected: BTreeSet<String> = permits.compartment.clone();
    expected.extend(set(&ENDOWED_FROM_START_COMPARTMENT));

    let vat = GlobalsVat::start(&[]);
    let missing = vat.missing(&expected);
    let engine_lacks = missing_from_bare_engine(&expected);
    // Whatever a vat lacks, the bare engine lacks too …
    assert!(
        missing.is_subset(&engine_lacks),
        "missing in the vat: {missing:?}; the bare engine lacks {engine_lacks:?}"
    );
    // … and it is exactly the documented list.
    assert_eq!(missing, set(&ENGINE_LACKS), "update ENGINE_LACKS and the README's \"The vat's globals\"");
}

#[test]
fn optional_globals_are_absent_unless_listed_and_present_when_listed() {
    let permits = ses_permits();
    // `Date` and `Math` are always there (SES's tamed shared ones); listing
    // them swaps in working ones. Every other optional name is absent.
    // (`TextEncoder`/`TextDecoder` are universal in SES 2.x, but only when
    // the engine has them, and QuickJS-ng does not.)
    let optional: BTreeSet<String> = ALLOWED_GLOBAL_NAMES.iter().map(|n| n.to_string()).collect();
    let always: BTreeSet<String> = permits.compartment.difference(&set(&ENGINE_LACKS)).cloned().collect();
    let not_always: BTreeSet<String> = optional.difference(&always).cloned().collect();
    assert_eq!(optional.difference(&not_always).cloned().collect::<BTreeSet<_>>(), set(&["Date", "Math"]));
    let bare = GlobalsVat::start(&[]);
    assert_eq!(bare.missing(&optional), not_always);
    let full = GlobalsVat::start(&ALLOWED_GLOBAL_NAMES);
    assert_eq!(full.missing(&optional), BTreeSet::new());
    // Endowing them does not make anything permitted disappear.
    let mut expected: BTreeSet<String> = permits.compartment.clone();
    expected.extend(set(&ENDOWED_FROM_START_COMPARTMENT));
    let missing = full.missing(&expected);
    let lacks: BTreeSet<String> = set(&ENGINE_LACKS).difference(&optional).cloned().collect();
    assert_eq!(missing, lacks);
}

#[test]
fn a_bundle_using_float64array_at_load_starts_and_works() {
    // Its module body runs `new Float64Array(1)`: starting is the first check.
    let vat = GlobalsVat::start_vat("float-at-load-vat", &[]);
    // 1.5 = 0x3FF8_0000_0000_0000; -0.0 has only the sign bit.
    assert_eq!(vat.call("float64Bits", json!([1.5])), json!("3ff8000000000000"));
    assert_eq!(vat.call("float64Bits", json!([-2.0])), json!("c000000000000000"));
    // 0.1 in single precision.
    assert_eq!(vat.call("float32", json!([0.1])), json!(0.10000000149011612));
}

#[test]
fn the_endowed_float_arrays_are_the_hardened_intrinsics() {
    let vat = GlobalsVat::start(&[]);
    let report = vat.call("floatArraysHardened", json!([]));
    for name in ["Float32Array", "Float64Array"] {
        let r = &report[name];
        assert_eq!(r["frozen"], true, "{name}: {r}");
        assert_eq!(r["sameTypedArray"], true, "{name}: {r}");
        // Strict-mode writes to frozen objects throw.
        assert_eq!(r["writeStatic"], "TypeError", "{name}: {r}");
        assert_eq!(r["writePrototype"], "TypeError", "{name}: {r}");
        assert_eq!(r["writeTypedArray"], "TypeError", "{name}: {r}");
        assert_eq!(r["stillWorks"], "3,3", "{name}: {r}");
    }
}
