//! A scripted vat for testing the kernel without JavaScript: it records every delivery and
//! makes whatever syscalls its script says. Used by this crate's tests and by anyone who
//! wants to exercise a kernel deterministically.
//!
//! ```
//! use ocap_kernel::testing::{ScriptedVat, answer};
//! use ocap_kernel::smallcaps::Value;
//! // A vat whose every method answers "pong".
//! let (vat, log) = ScriptedVat::new(answer(|_method, _args| Ok(Value::str("pong"))));
//! # let _ = (vat, log);
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::capdata::CapData;
use crate::smallcaps::{self, Value};
use crate::vat::{Endpoint, SyscallHandler, SyscallResult, VatDelivery, VatResolution, VatSyscall};

/// What a scripted vat does with a delivery.
pub type Script = Box<dyn FnMut(&VatDelivery, &mut dyn SyscallHandler) -> Result<(), String> + Send>;

/// Every delivery a scripted vat has received, shared with the test.
#[derive(Clone, Default)]
pub struct DeliveryLog(Arc<Mutex<Vec<VatDelivery>>>);

impl DeliveryLog {
    fn lock(&self) -> MutexGuard<'_, Vec<VatDelivery>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn all(&self) -> Vec<VatDelivery> {
        self.lock().clone()
    }
    pub fn take(&self) -> Vec<VatDelivery> {
        std::mem::take(&mut *self.lock())
    }
    pub fn len(&self) -> usize {
        self.lock().len()
    }
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
    /// The method names of the message deliveries, in order.
    pub fn methods(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter_map(|d| match d {
                VatDelivery::Message { methargs, .. } => decode_methargs(methargs).map(|(m, _)| m),
                _ => None,
            })
            .collect()
    }
}

/// Splits vat-space methargs into the method name and argument values.
pub fn decode_methargs(methargs: &CapData<String>) -> Option<(String, Vec<Value<String>>)> {
    match smallcaps::decode(methargs).ok()? {
        Value::Array(mut parts) if parts.len() == 2 => match (parts.pop(), parts.pop()) {
            (Some(Value::Array(args)), Some(Value::String(m))) => Some((m, args)),
            _ => None,
        },
        _ => None,
    }
}

/// Encodes a method call in vat space.
pub fn vat_methargs(method: &str, args: Vec<Value<String>>) -> CapData<String> {
    smallcaps::encode(&Value::Array(vec![Value::str(method), Value::Array(args)]))
        .unwrap_or_else(|_| CapData::new("#[]", vec![]))
}

/// Encodes a value in vat space.
pub fn vat_value(v: Value<String>) -> CapData<String> {
    smallcaps::encode(&v).unwrap_or_else(|_| CapData::new("#null", vec![]))
}

/// A vat endpoint driven by a script.
pub struct ScriptedVat {
    script: Script,
    log: DeliveryLog,
    /// Results of the syscalls made during the last delivery.
    pub results: Arc<Mutex<Vec<SyscallResult>>>,
}

impl ScriptedVat {
    pub fn new(script: Script) -> (ScriptedVat, DeliveryLog) {
        let log = DeliveryLog::default();
        (ScriptedVat { script, log: log.clone(), results: Arc::default() }, log)
    }

    /// A vat that records deliveries and makes no syscalls.
    pub fn passive() -> (ScriptedVat, DeliveryLog) {
        Self::new(Box::new(|_, _| Ok(())))
    }

    /// A vat that makes the syscalls queued in the returned plan, one batch per delivery.
    pub fn planned() -> (ScriptedVat, DeliveryLog, Plan) {
        let plan = Plan::default();
        let p = plan.clone();
        let (vat, log) = Self::new(Box::new(move |_, sys| {
            for call in p.next_batch() {
                sys.syscall(call);
            }
            Ok(())
        }));
        (vat, log, plan)
    }
}

/// Syscall batches for a planned vat.
#[derive(Clone, Default)]
pub struct Plan(Arc<Mutex<VecDeque<Vec<VatSyscall>>>>);

impl Plan {
    pub fn push(&self, batch: Vec<VatSyscall>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push_back(batch);
    }
    fn next_batch(&self) -> Vec<VatSyscall> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).pop_front().unwrap_or_default()
    }
}

struct Recording<'a> {
    inner: &'a mut dyn SyscallHandler,
    results: Vec<SyscallResult>,
}

impl SyscallHandler for Recording<'_> {
    fn syscall(&mut self, call: VatSyscall) -> SyscallResult {
        let r = self.inner.syscall(call);
        self.results.push(r.clone());
        r
    }
}

impl Endpoint for ScriptedVat {
    fn deliver(&mut self, delivery: VatDelivery, syscalls: &mut dyn SyscallHandler) -> Result<(), String> {
        self.log.0.lock().unwrap_or_else(|e| e.into_inner()).push(delivery.clone());
        let mut rec = Recording { inner: syscalls, results: Vec::new() };
        let r = (self.script)(&delivery, &mut rec);
        *self.results.lock().unwrap_or_else(|e| e.into_inner()) = rec.results;
        r
    }
}

/// A script that answers every message by resolving its result with `f(method, args)`
/// (`Err` rejects), like a vat whose methods return at once.
pub fn answer(
    mut f: impl FnMut(&str, &[Value<String>]) -> Result<Value<String>, Value<String>> + Send + 'static,
) -> Script {
    Box::new(move |d, sys| {
        if let VatDelivery::Message { methargs, result: Some(result), .. } = d {
            let (method, args) = decode_methargs(methargs).ok_or("bad methargs")?;
            let (rejected, v) = match f(&method, &args) {
                Ok(v) => (false, v),
                Err(v) => (true, v),
            };
            sys.syscall(VatSyscall::Resolve(vec![VatResolution {
                vpid: result.clone(),
                rejected,
                data: vat_value(v),
            }]));
        }
        Ok(())
    })
}
