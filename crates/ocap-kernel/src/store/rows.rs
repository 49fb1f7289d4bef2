//! The rows of the store's hot tables as Rust values, shared by the table modules
//! (`clist.rs`, `objects.rs`, `promises.rs`) and the row cache in front of them
//! (`row_cache.rs`).

use std::sync::Arc;

use super::StoreError;
use crate::refs::EndpointId;

/// A c-list entry as seen from the kref side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CListEntry {
    pub eref: String,
    pub reachable: bool,
}

/// One row of the `objects` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRecord {
    /// `None` once orphaned (the exporter abandoned it or was terminated).
    pub owner: Option<EndpointId>,
    pub reachable: u64,
    pub recognizable: u64,
    pub revoked: bool,
    pub pins: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromiseState {
    Unresolved,
    Fulfilled,
    Rejected,
}

impl PromiseState {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            PromiseState::Unresolved => "unresolved",
            PromiseState::Fulfilled => "fulfilled",
            PromiseState::Rejected => "rejected",
        }
    }
    pub(super) fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "unresolved" => PromiseState::Unresolved,
            "fulfilled" => PromiseState::Fulfilled,
            "rejected" => PromiseState::Rejected,
            _ => return Err(StoreError::Corrupt(format!("bad promise state {s:?}"))),
        })
    }
}

/// A `promises` row as cached: the value as its JSON text, parsed on each read as before.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PromiseRow {
    pub state: PromiseState,
    pub decider: Option<EndpointId>,
    pub value: Option<Arc<str>>,
    pub refcount: u64,
    pub host_watch: bool,
}
