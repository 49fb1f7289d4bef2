//! The ocap kernel: references, smallcaps marshalling, the SQLite store, the crank loop,
//! kernel promises, garbage collection across vats, and revocation.
//!
//! Start with `ARCHITECTURE.md` at the repository root for the map.

pub mod capdata;
pub mod refs;
pub mod smallcaps;

pub use capdata::CapData;
pub use refs::{EndpointId, ERef, KRef, VatId};
pub use smallcaps::Value;
