//! A QuickJS allocator that enforces the vat's memory limit and remembers
//! that it did.
//!
//! QuickJS's own limit (`JS_SetMemoryLimit`) turns an over-limit allocation
//! into a catchable "out of memory" error: liveslots catches it and rejects
//! the message's result, and the vat goes on as if nothing happened. The
//! kernel must learn instead that the vat hit its limit, so this allocator
//! refuses the allocation *and* raises a flag that the worker checks after
//! every turn; a flagged vat is dead.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rquickjs::allocator::{Allocator, RustAllocator};

pub(crate) struct LimitedAllocator {
    inner: RustAllocator,
    /// Shared with the worker, which arms the limit after the prelude ran.
    limit_bytes: Rc<Cell<usize>>,
    used_bytes: usize,
    exceeded: Rc<Cell<bool>>,
}

impl LimitedAllocator {
    /// `limit_bytes == 0` means no limit.
    pub(crate) fn new(limit_bytes: Rc<Cell<usize>>, exceeded: Rc<Cell<bool>>) -> Self {
        LimitedAllocator { inner: RustAllocator, limit_bytes, used_bytes: 0, exceeded }
    }

    fn admit(&mut self, extra: usize) -> bool {
        let limit = self.limit_bytes.get();
        if limit == 0 || self.used_bytes.saturating_add(extra) <= limit {
            return true;
        }
        self.exceeded.set(true);
        false
    }
}

// SAFETY: every call is forwarded to RustAllocator, which upholds the
// trait's contract; this wrapper only counts bytes and may refuse (return
// null), which the contract allows.
unsafe impl Allocator for LimitedAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        if !self.admit(size) {
            return std::ptr::null_mut();
        }
        let ptr = self.inner.alloc(size);
        if !ptr.is_null() {
            // SAFETY: ptr was just allocated by RustAllocator.
            self.used_bytes += unsafe { RustAllocator::usable_size(ptr) };
        }
        ptr
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        if !self.admit(count.saturating_mul(size)) {
            return std::ptr::null_mut();
        }
        let ptr = self.inner.calloc(count, size);
        if !ptr.is_null() {
            // SAFETY: ptr was just allocated by RustAllocator.
            self.used_bytes += unsafe { RustAllocator::usable_size(ptr) };
        }
        ptr
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        if ptr.is_null() {
            return;
        }
        // SAFETY: the caller guarantees ptr came from this allocator.
        unsafe {
            self.used_bytes = self.used_bytes.saturating_sub(RustAllocator::usable_size(ptr));
            self.inner.dealloc(ptr);
        }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        // SAFETY: the caller guarantees ptr came from this allocator.
        let old_size = unsafe { RustAllocator::usable_size(ptr) };
        if new_size > old_size && !self.admit(new_size - old_size) {
            return std::ptr::null_mut();
        }
        // SAFETY: as above.
        let new_ptr = unsafe { self.inner.realloc(ptr, new_size) };
        if !new_ptr.is_null() {
            // SAFETY: new_ptr was just (re)allocated by RustAllocator.
            let new_usable = unsafe { RustAllocator::usable_size(new_ptr) };
            self.used_bytes = self.used_bytes.saturating_sub(old_size) + new_usable;
        }
        new_ptr
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        // SAFETY: the caller guarantees ptr came from this allocator, i.e.
        // from RustAllocator.
        unsafe { RustAllocator::usable_size(ptr) }
    }
}

/// Bytes QuickJS runtimes still held when they were freed, summed over the process.
static LEAKED_BYTES: AtomicUsize = AtomicUsize::new(0);

/// How many bytes the QuickJS runtimes freed so far in this process still had allocated
/// when they were freed: memory that stays with the process for good. It must stay 0. A
/// JS value held from Rust in a way the collector cannot see (a `Persistent` owned by a
/// closure that a JS function owns) keeps its context, and so the vat's whole heap, alive
/// past the runtime; this is how such a leak shows (`tests/teardown.rs`).
pub fn runtime_bytes_leaked() -> usize {
    LEAKED_BYTES.load(Ordering::Relaxed)
}

impl Drop for LimitedAllocator {
    /// Runs after `JS_FreeRuntime` (rquickjs drops the allocator last), so whatever is
    /// still counted was never freed.
    fn drop(&mut self) {
        if self.used_bytes > 0 {
            LEAKED_BYTES.fetch_add(self.used_bytes, Ordering::Relaxed);
            tracing::warn!(bytes = self.used_bytes, "a vat's QuickJS runtime was freed with memory still allocated");
        }
    }
}
