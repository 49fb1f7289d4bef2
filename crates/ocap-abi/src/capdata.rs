//! `CapData`: a smallcaps body plus the slots it refers to by index.
//!
//! Spec: kernel-core.md §7.1. Translation between kernel and vat space never touches the
//! body; only `slots` are rewritten, position by position.

use serde::{Deserialize, Serialize};

/// `{body, slots}`. `S` is `KRef` in kernel space and `String` (a vref) in vat space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapData<S> {
    pub body: String,
    pub slots: Vec<S>,
}

impl<S> CapData<S> {
    pub fn new(body: impl Into<String>, slots: Vec<S>) -> Self {
        CapData { body: body.into(), slots }
    }

    /// Rewrites every slot, failing on the first that cannot be mapped.
    pub fn try_map_slots<T, E>(&self, mut f: impl FnMut(&S) -> Result<T, E>) -> Result<CapData<T>, E> {
        let slots = self.slots.iter().map(&mut f).collect::<Result<Vec<_>, E>>()?;
        Ok(CapData { body: self.body.clone(), slots })
    }
}
