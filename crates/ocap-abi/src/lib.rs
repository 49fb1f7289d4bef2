//! The vat/kernel boundary: what the kernel (`ocap-kernel`) and the vat side (`ocap-vat`,
//! or any other launcher of endpoints) must agree on, and nothing else: references
//! (`refs`), `CapData` (`capdata`), the endpoint protocol (`vat`), vat and cluster configs
//! (`config`, with `json_text` for JSON text of any depth), the launcher traits
//! (`launch`), the kernel/transport boundary of remote comms (`remote`), and the timeline
//! of spans the kernel's and the vats' threads record for `ocap bench --timeline` (`timeline`).
//!
//! It is a crate of its own so that the vat side does not depend on the kernel (and its
//! SQLite store): both depend on this. The kernel re-exports every module here under its old
//! path (`ocap_kernel::refs`, `ocap_kernel::config`, …), so hosts may use either.

pub mod capdata;
pub mod config;
pub mod json_text;
pub mod launch;
pub mod refs;
pub mod remote;
pub mod timeline;
pub mod vat;
