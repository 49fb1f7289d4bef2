//! Vat worker (in progress).
