//! Shared helpers for the kernel's integration tests: a kernel on a real file-backed
//! SQLite store, scripted vats, and a host call that waits for its result.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::mpsc;

use ocap_kernel::capdata::CapData;
use ocap_kernel::smallcaps::{self, Value};
use ocap_kernel::store::{Durability, Store};
use ocap_kernel::testing::ScriptedVat;
use ocap_kernel::vat::{Endpoint, VatResolution, VatSyscall};
use ocap_kernel::{HostResult, KRef, KernelCore, KernelOptions, VatId, VatSpec};

pub struct TestKernel {
    pub core: KernelCore,
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

pub fn kernel() -> TestKernel {
    kernel_with(KernelOptions::default())
}

pub fn kernel_with(opts: KernelOptions) -> TestKernel {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kernel.sqlite");
    let store = Store::open(&path, Durability::Process).expect("open store");
    let core = KernelCore::new(store, opts).expect("kernel");
    TestKernel { core, path, _dir: dir }
}

impl TestKernel {
    pub fn add(&mut self, name: &str, vat: impl Endpoint + 'static) -> (VatId, KRef) {
        self.add_spec(VatSpec { name: name.into(), config: "{}".into(), ..Default::default() }, vat)
    }

    pub fn add_spec(&mut self, spec: VatSpec, vat: impl Endpoint + 'static) -> (VatId, KRef) {
        self.core.add_vat(spec, Box::new(vat)).expect("add vat")
    }

    /// Queues a host message; the receiver yields the result after the settling commit.
    pub fn send(&mut self, target: KRef, method: &str, args: Vec<Value>) -> mpsc::Receiver<HostResult> {
        let (tx, rx) = mpsc::channel();
        self.core
            .queue_message(target, method, args, Some(Box::new(move |r| drop(tx.send(r)))))
            .expect("queue message");
        rx
    }

    /// Sends and runs the kernel until idle; returns the result if it settled.
    pub fn call(&mut self, target: KRef, method: &str, args: Vec<Value>) -> Option<HostResult> {
        let rx = self.send(target, method, args);
        self.run();
        rx.try_recv().ok()
    }

    pub fn run(&mut self) -> u64 {
        self.core.run_until_idle().expect("run")
    }

    /// Asserts every store invariant holds.
    pub fn check(&self) {
        if let Err(errs) = self.core.check_invariants() {
            panic!("invariants violated:\n  {}", errs.join("\n  "));
        }
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.core.store().connection().query_row(sql, [], |r| r.get(0)).expect("count query")
    }

    /// Reopens the kernel on the same database, as after a process restart.
    pub fn restart(self) -> TestKernel {
        let TestKernel { mut core, path, _dir } = self;
        core.shutdown().expect("shutdown");
        drop(core);
        let store = Store::open(&path, Durability::Process).expect("reopen store");
        let core = KernelCore::new(store, KernelOptions::default()).expect("kernel");
        TestKernel { core, path, _dir }
    }
}

impl TestKernel {
    /// Kills the kernel as `kill -9` would (no commit, no shutdown: whatever was not committed
    /// is lost) and reopens it on the same database. Vats must be attached again.
    pub fn crash(self) -> TestKernel {
        let TestKernel { core, path, _dir } = self;
        drop(core);
        let store = Store::open(&path, Durability::Process).expect("reopen store");
        let core = KernelCore::new(store, KernelOptions::default()).expect("kernel");
        TestKernel { core, path, _dir }
    }
}

pub fn ok_value(r: Option<HostResult>) -> Value {
    match r {
        Some(Ok(data)) => smallcaps::kunser(&data).expect("decode result"),
        other => panic!("expected fulfilment, got {other:?}"),
    }
}

/// The message of a rejection (an Error's message, or the body).
pub fn rejection(r: Option<HostResult>) -> String {
    match r {
        Some(Err(data)) => match smallcaps::kunser(&data) {
            Ok(Value::Error { message, .. }) => message,
            _ => data.body,
        },
        other => panic!("expected rejection, got {other:?}"),
    }
}

pub fn vdata(body: &str, slots: &[&str]) -> CapData<String> {
    CapData::new(body, slots.iter().map(|s| s.to_string()).collect())
}

pub fn send(target: &str, method: &str, slots: &[&str], result: &str) -> VatSyscall {
    let args: Vec<String> = (0..slots.len()).map(|i| format!("\"${i}.Alleged: x\"")).collect();
    VatSyscall::Send {
        target: target.into(),
        methargs: vdata(&format!("#[\"{method}\",[{}]]", args.join(",")), slots),
        result: Some(result.into()),
    }
}

pub fn resolve(vpid: &str, rejected: bool, body: &str, slots: &[&str]) -> VatSyscall {
    VatSyscall::Resolve(vec![VatResolution { vpid: vpid.into(), rejected, data: vdata(body, slots) }])
}

pub fn passive() -> (ScriptedVat, ocap_kernel::testing::DeliveryLog) {
    ScriptedVat::passive()
}

/// The kref of a remotable result.
pub fn remotable(v: Value) -> KRef {
    match v {
        Value::Remotable { slot, .. } => slot,
        v => panic!("expected a remotable, got {v:?}"),
    }
}
