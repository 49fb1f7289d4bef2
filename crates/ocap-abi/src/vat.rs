//! The kernel's view of a vat: a `Endpoint` that takes deliveries and makes syscalls.
//!
//! The kernel knows this trait, not QuickJS: JS vats (the `ocap-vat` crate) implement it
//! through an adapter, and tests implement it with scripted vats (`ocap_kernel::testing`).
//! Everything crossing this boundary is in vat space: vrefs, never krefs.

use crate::capdata::CapData;

/// One promise resolution in vat space: `[vpid, rejected, data]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VatResolution {
    pub vpid: String,
    pub rejected: bool,
    pub data: CapData<String>,
}

/// A delivery to a vat (the liveslots `VatDeliveryObject`, spec kernel-core.md §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VatDelivery {
    Message { target: String, methargs: CapData<String>, result: Option<String> },
    Notify(Vec<VatResolution>),
    DropExports(Vec<String>),
    RetireExports(Vec<String>),
    RetireImports(Vec<String>),
    BringOutYourDead,
}

/// A syscall from a vat (the liveslots `VatSyscallObject`, spec kernel-core.md §5.3), plus
/// the vatstore calls. Refs are raw strings: the kernel validates them, so a malformed ref
/// is an illegal syscall rather than a parse failure in the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VatSyscall {
    Send { target: String, methargs: CapData<String>, result: Option<String> },
    Subscribe(String),
    Resolve(Vec<VatResolution>),
    Exit { failure: bool, info: CapData<String> },
    DropImports(Vec<String>),
    RetireImports(Vec<String>),
    RetireExports(Vec<String>),
    AbandonExports(Vec<String>),
    VatstoreGet(String),
    VatstoreGetNextKey(String),
    VatstoreSet(String, String),
    VatstoreDelete(String),
}

impl VatSyscall {
    /// The liveslots name of the syscall, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            VatSyscall::Send { .. } => "send",
            VatSyscall::Subscribe(_) => "subscribe",
            VatSyscall::Resolve(_) => "resolve",
            VatSyscall::Exit { .. } => "exit",
            VatSyscall::DropImports(_) => "dropImports",
            VatSyscall::RetireImports(_) => "retireImports",
            VatSyscall::RetireExports(_) => "retireExports",
            VatSyscall::AbandonExports(_) => "abandonExports",
            VatSyscall::VatstoreGet(_) => "vatstoreGet",
            VatSyscall::VatstoreGetNextKey(_) => "vatstoreGetNextKey",
            VatSyscall::VatstoreSet(..) => "vatstoreSet",
            VatSyscall::VatstoreDelete(_) => "vatstoreDelete",
        }
    }
}

/// What a syscall returns to the vat. Liveslots only reads values from the vatstore calls;
/// every other syscall is optimistic (the vat never learns it failed: the kernel kills it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyscallResult {
    Ok,
    Value(Option<String>),
    Error(String),
}

/// The kernel side of a delivery's syscalls, handed to the vat for the delivery's duration.
pub trait SyscallHandler {
    fn syscall(&mut self, call: VatSyscall) -> SyscallResult;
}

/// A vat as the kernel drives it. `deliver` must make every syscall of the delivery through
/// `syscalls`, in order, before returning. `Err` is a liveslots-level delivery error (not a
/// user exception, which liveslots turns into a rejection): the kernel aborts the crank and
/// terminates the vat.
pub trait Endpoint: Send {
    fn deliver(&mut self, delivery: VatDelivery, syscalls: &mut dyn SyscallHandler) -> Result<(), String>;

    /// Starts `delivery` ahead of its crank, while the kernel finishes the crank before it
    /// (overlapping deliveries, `docs/cranks.md`). Returns false when the endpoint does not
    /// run deliveries ahead (the default): then nothing happened. Started deliveries run in
    /// the order they were started; the kernel's next [`Endpoint::deliver`] calls to this
    /// endpoint are the same deliveries in the same order, and the endpoint hands over each
    /// run's syscalls then. A different one means the kernel broke its own rule, and
    /// `deliver` fails (the vat has run something the kernel did not record).
    fn prefetch(&mut self, _delivery: &VatDelivery) -> bool {
        false
    }

    /// Called when the vat is terminated or the kernel stops; releases the worker.
    fn shutdown(&mut self) {}

    /// A round trip to the worker outside the crank protocol (`pingVat`).
    fn ping(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// Whether the vat records in its vatstore every import its durable state holds, as
    /// liveslots does (`vom.rc.<vref>` for a reachable reference, `vom.ir.<vref>|<store>` for a
    /// weak key). If so, when the vat starts a new incarnation the kernel drops the imports no
    /// such key names: the previous incarnation held them in memory only, the new one cannot
    /// reach them, and nobody else would ever drop them (`core/incarnation.rs`). Default false:
    /// the kernel then keeps every import.
    fn records_durable_imports(&self) -> bool {
        false
    }
}
