//! Reference grammars: krefs (kernel space), vrefs (vat space) and rrefs (remote space).
//!
//! Spec: kernel-core.md §1.1. Krefs are `koN` / `kpN`. Vrefs are `o+N`, `o-N`, `p+N`, `p-N`,
//! and for vat-allocated objects only `o+vK/I[:F]` and `o+dK/I[:F]`. Rrefs are `ro±N`, `rp±N`.
//! Virtual and durable vrefs are opaque to the kernel: it never parses kind IDs or facets, it
//! only checks the grammar so that garbage from a vat is refused with a clear error.

use std::fmt;
use std::str::FromStr;

/// A reference string that does not follow any of the grammars the kernel accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {text:?}: {why}")]
pub struct RefParseError {
    pub kind: &'static str,
    pub text: String,
    pub why: &'static str,
}

/// Longer texts are cut in the error: a reference can come from a vat or a peer, as large as
/// a message allows, and an error names it, it does not copy it.
const MAX_ERROR_TEXT_CHARS: usize = 64;

fn err(kind: &'static str, text: &str, why: &'static str) -> RefParseError {
    let text = match text.char_indices().nth(MAX_ERROR_TEXT_CHARS) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
        None => text.to_owned(),
    };
    RefParseError { kind, text, why }
}

/// Parses a non-empty run of ASCII digits without a leading `+`/`-` and without overflow.
fn parse_index(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

/// A kernel reference: an object `koN` or a promise `kpN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KRef {
    Object(u64),
    Promise(u64),
}

impl KRef {
    pub fn is_promise(self) -> bool {
        matches!(self, KRef::Promise(_))
    }
    pub fn id(self) -> u64 {
        match self {
            KRef::Object(n) | KRef::Promise(n) => n,
        }
    }
}

impl fmt::Display for KRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KRef::Object(n) => write!(f, "ko{n}"),
            KRef::Promise(n) => write!(f, "kp{n}"),
        }
    }
}

impl FromStr for KRef {
    type Err = RefParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ctor, rest): (fn(u64) -> KRef, &str) = if let Some(r) = s.strip_prefix("ko") {
            (KRef::Object, r)
        } else if let Some(r) = s.strip_prefix("kp") {
            (KRef::Promise, r)
        } else {
            return Err(err("kref", s, "expected koN or kpN"));
        };
        parse_index(rest).map(ctor).ok_or_else(|| err("kref", s, "expected a decimal index"))
    }
}

/// Whether a reference names an object or a promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefType {
    Object,
    Promise,
}

/// Direction is always seen from the endpoint: `+` the endpoint allocated the ID and exported
/// the thing into the kernel; `-` the kernel allocated it when importing into the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Export,
    Import,
}

/// An endpoint reference (a vref or an rref), validated against its grammar.
///
/// The string form is kept because it is what c-lists store and what crosses the wire;
/// the parsed facts (type, direction) are cached next to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ERef {
    text: String,
    ty: RefType,
    dir: Direction,
}

impl ERef {
    /// Parses a vref: `o+N`, `o-N`, `p+N`, `p-N`, `o+vK/I[:F]`, `o+dK/I[:F]`.
    pub fn parse_vref(s: &str) -> Result<ERef, RefParseError> {
        Self::parse_with_prefix(s, "", "vref")
    }

    /// Parses an rref: `ro+N`, `ro-N`, `rp+N`, `rp-N`.
    pub fn parse_rref(s: &str) -> Result<ERef, RefParseError> {
        // Virtual/durable forms are vat-only, so the shared parser refuses them here.
        Self::parse_with_prefix(s, "r", "rref")
    }

    fn parse_with_prefix(s: &str, prefix: &str, kind: &'static str) -> Result<ERef, RefParseError> {
        let rest = s.strip_prefix(prefix).ok_or_else(|| err(kind, s, "wrong prefix"))?;
        let mut chars = rest.chars();
        let ty = match chars.next() {
            Some('o') => RefType::Object,
            Some('p') => RefType::Promise,
            _ => return Err(err(kind, s, "type must be o or p")),
        };
        let dir = match chars.next() {
            Some('+') => Direction::Export,
            Some('-') => Direction::Import,
            _ => return Err(err(kind, s, "direction must be + or -")),
        };
        let index = &rest[2..];
        if parse_index(index).is_none() {
            // Virtual/durable object vrefs: o+vK/I or o+dK/I, optionally :F. Exports only.
            let special = prefix.is_empty() && ty == RefType::Object && dir == Direction::Export && {
                let body = index.strip_prefix('v').or_else(|| index.strip_prefix('d'));
                body.is_some_and(|b| {
                    let (main, facet) = match b.split_once(':') {
                        Some((m, f)) => (m, Some(f)),
                        None => (b, None),
                    };
                    main.split_once('/').is_some_and(|(k, i)| parse_index(k).is_some() && parse_index(i).is_some())
                        && facet.is_none_or(|f| parse_index(f).is_some())
                })
            };
            if !special {
                return Err(err(kind, s, "malformed index"));
            }
        }
        Ok(ERef { text: s.to_owned(), ty, dir })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
    pub fn ref_type(&self) -> RefType {
        self.ty
    }
    pub fn direction(&self) -> Direction {
        self.dir
    }
    pub fn is_promise(&self) -> bool {
        self.ty == RefType::Promise
    }
    pub fn is_export(&self) -> bool {
        self.dir == Direction::Export
    }
}

impl fmt::Display for ERef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The root object of every vat.
pub const ROOT_OBJECT_VREF: &str = "o+0";

/// A vat identifier `vN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VatId(pub u64);

impl fmt::Display for VatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl FromStr for VatId {
    type Err = RefParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix('v').and_then(parse_index).map(VatId).ok_or_else(|| err("vat id", s, "expected vN"))
    }
}

/// A remote kernel (a peer) as an endpoint of this kernel: `rN` (remote-comms.md §2). Local to
/// this kernel; it never appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RemoteId(pub u64);

impl fmt::Display for RemoteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

impl FromStr for RemoteId {
    type Err = RefParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix('r').and_then(parse_index).map(RemoteId).ok_or_else(|| err("remote id", s, "expected rN"))
    }
}

/// Who owns a kernel object, decides a kernel promise or holds a c-list: a vat, a remote
/// kernel, or the kernel itself (kernel services, and promises the kernel resolves on a
/// service's behalf). Vats and remotes are the endpoints the kernel delivers to
/// (`core/endpoints.rs`); the kernel has no c-list.
///
/// Text form (store columns, run-queue JSON): `vN`, `rN`, `kernel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndpointId {
    Vat(VatId),
    Remote(RemoteId),
    Kernel,
}

impl EndpointId {
    /// Parses a reference this endpoint uses: a vref for a vat, an rref for a remote. The
    /// kernel, having no c-list, uses none.
    pub fn parse_eref(self, s: &str) -> Result<ERef, RefParseError> {
        match self {
            EndpointId::Vat(_) => ERef::parse_vref(s),
            EndpointId::Remote(_) => ERef::parse_rref(s),
            EndpointId::Kernel => Err(err("eref", s, "the kernel has no c-list")),
        }
    }

    /// The eref the kernel allocates when it imports a kref into this endpoint: `o-N`/`p-N`
    /// for a vat, `ro-N`/`rp-N` for a remote (always `-`: kernel to endpoint, §2.1).
    pub fn import_eref(self, index: u64, promise: bool) -> String {
        let prefix = if matches!(self, EndpointId::Remote(_)) { "r" } else { "" };
        let ty = if promise { 'p' } else { 'o' };
        format!("{prefix}{ty}-{index}")
    }

    /// The vat, if this endpoint is one.
    pub fn vat(self) -> Option<VatId> {
        match self {
            EndpointId::Vat(v) => Some(v),
            _ => None,
        }
    }
}

impl From<VatId> for EndpointId {
    fn from(v: VatId) -> Self {
        EndpointId::Vat(v)
    }
}

impl From<RemoteId> for EndpointId {
    fn from(r: RemoteId) -> Self {
        EndpointId::Remote(r)
    }
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointId::Vat(v) => v.fmt(f),
            EndpointId::Remote(r) => r.fmt(f),
            EndpointId::Kernel => f.write_str("kernel"),
        }
    }
}

impl FromStr for EndpointId {
    type Err = RefParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "kernel" {
            Ok(EndpointId::Kernel)
        } else if s.starts_with('r') {
            s.parse().map(EndpointId::Remote)
        } else {
            s.parse().map(EndpointId::Vat).map_err(|_| err("endpoint id", s, "expected vN, rN or kernel"))
        }
    }
}

/// Serializes a type as its `Display` text and deserializes it through `FromStr`, so the
/// JSON forms (run-queue items, RPC) are the same strings as the store's columns.
macro_rules! serde_as_text {
    ($($ty:ty),*) => {$(
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

serde_as_text!(KRef, VatId, RemoteId, EndpointId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_reference_is_named_not_copied_in_its_error() {
        let long = format!("ro+{}", "9x".repeat(50_000));
        let e = ERef::parse_rref(&long).unwrap_err();
        assert!(e.text.len() < 100, "{} bytes kept", e.text.len());
        assert!(e.to_string().contains("(100003 bytes)"), "{e}");
        let short = ERef::parse_rref("rq+1").unwrap_err();
        assert_eq!(short.text, "rq+1");
    }

    #[test]
    fn krefs_round_trip_and_reject_garbage() {
        assert_eq!("ko12".parse::<KRef>().unwrap(), KRef::Object(12));
        assert_eq!("kp3".parse::<KRef>().unwrap().to_string(), "kp3");
        for bad in ["k12", "ko", "ko-1", "kox", "ko01", "kq1", "o+1", ""] {
            assert!(bad.parse::<KRef>().is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn vrefs_follow_spec_grammar_1_1() {
        for good in ["o+0", "o-3", "p+7", "p-1", "o+d10/1", "o+v3/4:0", "o+d1/2:3"] {
            ERef::parse_vref(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in ["o-d1/2", "p+d1/2", "o+d1", "o+x1/2", "o+d1/2:", "o+", "q+1", "o*1", "o+1a", "ro+1", "o+v1/2:x"] {
            assert!(ERef::parse_vref(bad).is_err(), "{bad} should be rejected");
        }
        let v = ERef::parse_vref("p-4").unwrap();
        assert!(v.is_promise() && !v.is_export());
    }

    #[test]
    fn rrefs_are_plain() {
        for good in ["ro+1", "ro-2", "rp+3", "rp-4"] {
            ERef::parse_rref(good).unwrap();
        }
        for bad in ["o+1", "ro+d1/2", "rx+1", "ro1"] {
            assert!(ERef::parse_rref(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn endpoint_ids_parse() {
        assert_eq!("v3".parse::<EndpointId>().unwrap(), EndpointId::Vat(VatId(3)));
        assert_eq!("kernel".parse::<EndpointId>().unwrap(), EndpointId::Kernel);
        assert_eq!("r2".parse::<EndpointId>().unwrap(), EndpointId::Remote(RemoteId(2)));
        assert_eq!(EndpointId::Remote(RemoteId(2)).to_string(), "r2");
        assert!("x3".parse::<EndpointId>().is_err());
        assert!("r".parse::<EndpointId>().is_err());
        assert_eq!(EndpointId::Remote(RemoteId(1)).import_eref(4, true), "rp-4");
        assert_eq!(EndpointId::Vat(VatId(1)).import_eref(4, false), "o-4");
        assert!(EndpointId::Remote(RemoteId(1)).parse_eref("o+1").is_err());
    }
}
