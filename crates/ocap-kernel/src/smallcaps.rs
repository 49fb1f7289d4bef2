//! Smallcaps: `@endo/marshal`'s body format, encoded and decoded byte-compatibly.
//!
//! Spec: kernel-core.md §7.1 and vat-side.md §2.5. A body is `#` followed by JSON where
//! strings starting with one of ``!"#$%&'()*+,-`` get a `!` prefix, `#undefined`, `#NaN`,
//! `#Infinity`, `#-Infinity` are constants, bigints are `+N`/`-N`, symbols `%name`,
//! remotables `$i.iface` (iface omitted on a repeat), promises `&i`, errors
//! `{"#error": message, "name": ...}` and tagged values `{"#tag": tag, "payload": p}`.
//! Record keys are sorted, and emitted in JavaScript's property order (array indices first),
//! because the JS side builds the object with `fromEntries` and prints it with `JSON.stringify`.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use crate::capdata::CapData;
use crate::refs::KRef;

/// A passable value in the subset the kernel and hosts need.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<S = KRef> {
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    /// A bigint in canonical decimal form (optional `-`, no leading zeros).
    BigInt(String),
    String(String),
    /// A passable symbol by name, e.g. `@@asyncIterator`.
    Symbol(String),
    Array(Vec<Value<S>>),
    Record(BTreeMap<String, Value<S>>),
    Tagged {
        tag: String,
        payload: Box<Value<S>>,
    },
    /// An error. `extra` holds any further encoded properties (`errorId`, `cause`, `errors`).
    Error {
        name: String,
        message: String,
        extra: BTreeMap<String, Value<S>>,
    },
    /// A reference to an object (a presence or a remotable).
    Remotable {
        slot: S,
        iface: Option<String>,
    },
    Promise {
        slot: S,
    },
}

/// Why a body could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmallcapsError {
    #[error("smallcaps body must start with '#': {0:?}")]
    NotSmallcaps(String),
    #[error("smallcaps body is not valid JSON: {0}")]
    BadJson(String),
    #[error("unknown smallcaps constant {0:?}")]
    UnknownConstant(String),
    #[error("special character {0:?} is reserved in smallcaps string {1:?}")]
    ReservedPrefix(char, String),
    #[error("invalid bigint encoding {0:?}")]
    BadBigInt(String),
    #[error("slot reference {0:?} is malformed or out of range (body has {1} slots)")]
    BadSlot(String, usize),
    #[error("malformed {0} record: {1}")]
    BadSpecialRecord(&'static str, String),
    #[error("record property {0:?} is reserved")]
    ReservedKey(String),
    #[error("value is too deeply nested (limit {0})")]
    TooDeep(usize),
}

/// How deeply a body may nest (arrays, records, tagged values and errors, counted as the
/// JSON of the body nests), when the kernel or a host encodes or decodes it.
///
/// It is the depth vats exchange. A vat (QuickJS with an 8 MiB JS stack, SES, liveslots,
/// `@endo/marshal`) has no explicit limit: it runs out of stack. Measured with
/// `crates/ocap-cli/tests/vats/deep.js`: a vat encodes a result nested up to 3711 arrays
/// deep, and decodes one nested up to 3135 (deeper, its worker dies with "Maximum call
/// stack size exceeded"). 3000 is a round number below both, so every value a host can
/// send, a vat can receive, and the values vats exchange (1000 deep and more) reach hosts.
/// Beyond it, encoding and decoding fail with `TooDeep`.
pub const MAX_DEPTH: usize = crate::json_text::MAX_DEPTH;

const BANG: u32 = '!' as u32;
const DASH: u32 = '-' as u32;

fn starts_special(s: &str) -> bool {
    s.chars().next().is_some_and(|c| (BANG..=DASH).contains(&(c as u32)))
}

impl<S> Value<S> {
    pub fn str(s: impl Into<String>) -> Self {
        Value::String(s.into())
    }

    /// An `Error` with the given message, as the kernel makes them.
    pub fn error(message: impl Into<String>) -> Self {
        Value::Error { name: "Error".into(), message: message.into(), extra: BTreeMap::new() }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

impl Value<KRef> {
    /// A presence for a kref: a remotable for `koN`, a promise for `kpN` (the JS kernel's `kslot`).
    pub fn presence(kref: KRef, iface: Option<&str>) -> Self {
        match kref {
            KRef::Promise(_) => Value::Promise { slot: kref },
            KRef::Object(_) => Value::Remotable {
                slot: kref,
                iface: iface.map(|i| if i.starts_with("Alleged: ") { i.to_owned() } else { format!("Alleged: {i}") }),
            },
        }
    }
}

/// Encodes a value to smallcaps CapData.
pub fn encode<S: Clone + Eq + Hash>(value: &Value<S>) -> Result<CapData<S>, SmallcapsError> {
    let mut enc = Encoder { out: String::with_capacity(64), slots: Vec::new(), index: HashMap::new(), depth: 0 };
    enc.out.push('#');
    enc.value(value)?;
    Ok(CapData { body: enc.out, slots: enc.slots })
}

struct Encoder<S> {
    out: String,
    slots: Vec<S>,
    index: HashMap<S, usize>,
    /// How many arrays, records, tagged values and errors enclose the value being encoded.
    depth: usize,
}

impl<S: Clone + Eq + Hash> Encoder<S> {
    fn string(&mut self, s: &str) {
        if starts_special(s) {
            let mut escaped = String::with_capacity(s.len() + 1);
            escaped.push('!');
            escaped.push_str(s);
            self.json_string(&escaped);
        } else {
            self.json_string(s);
        }
    }

    fn json_string(&mut self, s: &str) {
        // serde_json escapes exactly what JSON.stringify escapes for well-formed strings.
        self.out.push_str(&serde_json::to_string(s).unwrap_or_default());
    }

    fn slot(&mut self, prefix: char, slot: &S, iface: Option<&str>) {
        let (index, repeat) = match self.index.get(slot) {
            Some(&i) => (i, true),
            None => {
                let i = self.slots.len();
                self.slots.push(slot.clone());
                self.index.insert(slot.clone(), i);
                (i, false)
            }
        };
        let text = match iface {
            Some(iface) if !repeat => format!("{prefix}{index}.{iface}"),
            _ => format!("{prefix}{index}"),
        };
        self.json_string(&text);
    }

    /// Encodes a value one level deeper than the current one (`value` refuses a container
    /// past `MAX_DEPTH`), on a stack grown as needed, so deep values are safe on any thread.
    fn nested(&mut self, v: &Value<S>) -> Result<(), SmallcapsError> {
        self.depth += 1;
        let r = crate::json_text::deeper(|| self.value(v));
        self.depth -= 1;
        r
    }

    fn value(&mut self, v: &Value<S>) -> Result<(), SmallcapsError> {
        let container = matches!(v, Value::Array(_) | Value::Record(_) | Value::Tagged { .. } | Value::Error { .. });
        if container && self.depth >= MAX_DEPTH {
            return Err(SmallcapsError::TooDeep(MAX_DEPTH));
        }
        match v {
            Value::Undefined => self.out.push_str("\"#undefined\""),
            Value::Null => self.out.push_str("null"),
            Value::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => {
                if n.is_nan() {
                    self.out.push_str("\"#NaN\"")
                } else if n.is_infinite() {
                    self.out.push_str(if *n > 0.0 { "\"#Infinity\"" } else { "\"#-Infinity\"" })
                } else {
                    self.out.push_str(&js_number_to_string(*n))
                }
            }
            Value::BigInt(digits) => {
                let text = if digits.starts_with('-') { digits.clone() } else { format!("+{digits}") };
                self.json_string(&text);
            }
            Value::String(s) => self.string(s),
            Value::Symbol(name) => self.json_string(&format!("%{name}")),
            Value::Array(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.nested(item)?;
                }
                self.out.push(']');
            }
            Value::Record(map) => {
                self.out.push('{');
                let mut first = true;
                for (k, v) in js_property_order(map) {
                    if !first {
                        self.out.push(',');
                    }
                    first = false;
                    self.string(k);
                    self.out.push(':');
                    self.nested(v)?;
                }
                self.out.push('}');
            }
            Value::Tagged { tag, payload } => {
                self.out.push_str("{\"#tag\":");
                self.string(tag);
                self.out.push_str(",\"payload\":");
                self.nested(payload)?;
                self.out.push('}');
            }
            Value::Error { name, message, extra } => {
                self.out.push_str("{\"#error\":");
                self.string(message);
                // Object literal order in @endo/marshal: errorId (if tagging), name, then the rest.
                if let Some(id) = extra.get("errorId") {
                    self.out.push_str(",\"errorId\":");
                    self.nested(id)?;
                }
                self.out.push_str(",\"name\":");
                self.string(name);
                for (k, v) in extra.iter().filter(|(k, _)| k.as_str() != "errorId") {
                    self.out.push(',');
                    self.json_string(k);
                    self.out.push(':');
                    self.nested(v)?;
                }
                self.out.push('}');
            }
            Value::Remotable { slot, iface } => self.slot('$', slot, iface.as_deref()),
            Value::Promise { slot } => self.slot('&', slot, None),
        }
        Ok(())
    }
}

/// JavaScript orders integer-like keys (array indices) first, ascending, then the rest in
/// insertion order, which smallcaps makes sorted.
fn js_property_order<V>(map: &BTreeMap<String, V>) -> Vec<(&String, &V)> {
    fn array_index(k: &str) -> Option<u32> {
        let n: u32 = k.parse().ok()?;
        (n != u32::MAX && n.to_string() == k).then_some(n)
    }
    let mut indices: Vec<(u32, &String, &V)> = Vec::new();
    let mut rest: Vec<(&String, &V)> = Vec::new();
    for (k, v) in map {
        match array_index(k) {
            Some(n) => indices.push((n, k, v)),
            None => rest.push((k, v)),
        }
    }
    indices.sort_by_key(|(n, _, _)| *n);
    // JS sorts by UTF-16 code units; BTreeMap sorts by UTF-8 bytes. They differ only for
    // characters above U+FFFF versus U+E000..U+FFFF, so re-sort the rest by UTF-16.
    rest.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    indices.into_iter().map(|(_, k, v)| (k, v)).chain(rest).collect()
}

/// Formats a finite number exactly as ECMAScript's `Number.prototype.toString()` does.
pub fn js_number_to_string(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let sci = format!("{:e}", x.abs()); // shortest round-trip digits, e.g. "1.2345e-7"
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let e: i32 = exp.parse().unwrap_or(0);
    let k = digits.len() as i32;
    let n = e + 1;
    let mut out = String::new();
    if x < 0.0 {
        out.push('-');
    }
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if n > 0 { '+' } else { '-' });
        out.push_str(&(n - 1).abs().to_string());
    }
    out
}

/// Decodes smallcaps CapData into a value whose references carry the slot entries.
pub fn decode<S: Clone>(data: &CapData<S>) -> Result<Value<S>, SmallcapsError> {
    let json = data.body.strip_prefix('#').ok_or_else(|| SmallcapsError::NotSmallcaps(truncate(&data.body)))?;
    let parsed = crate::json_text::parse(json).map_err(|e| match e {
        crate::json_text::JsonTextError::TooDeep(limit) => SmallcapsError::TooDeep(limit),
        crate::json_text::JsonTextError::Syntax(e) => SmallcapsError::BadJson(e.to_string()),
    })?;
    let value = decode_json(&parsed, &data.slots, 0);
    crate::json_text::drop_deep(parsed);
    value
}

/// Drops a value without recursion (the default drop recurses once per level), for values
/// that may be deep.
pub fn drop_deep<S>(v: Value<S>) {
    let mut pending = vec![v];
    while let Some(v) = pending.pop() {
        match v {
            Value::Array(items) => pending.extend(items),
            Value::Record(m) => pending.extend(m.into_values()),
            Value::Tagged { payload, .. } => pending.push(*payload),
            Value::Error { extra, .. } => pending.extend(extra.into_values()),
            _ => {}
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

fn decode_string<S: Clone>(s: &str, slots: &[S]) -> Result<Value<S>, SmallcapsError> {
    if !starts_special(s) {
        return Ok(Value::String(s.to_owned()));
    }
    let first = s.chars().next().unwrap_or('!');
    let rest = &s[1..];
    match first {
        '!' => Ok(Value::String(rest.to_owned())),
        '%' => Ok(Value::Symbol(rest.to_owned())),
        '#' => match s {
            "#undefined" => Ok(Value::Undefined),
            "#NaN" => Ok(Value::Number(f64::NAN)),
            "#Infinity" => Ok(Value::Number(f64::INFINITY)),
            "#-Infinity" => Ok(Value::Number(f64::NEG_INFINITY)),
            _ => Err(SmallcapsError::UnknownConstant(s.to_owned())),
        },
        '+' | '-' => {
            let valid =
                !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) && (rest == "0" || !rest.starts_with('0'));
            if !valid {
                return Err(SmallcapsError::BadBigInt(s.to_owned()));
            }
            Ok(Value::BigInt(if first == '-' && rest != "0" { s.to_owned() } else { rest.to_owned() }))
        }
        '$' | '&' => {
            let (index_text, iface) = match rest.split_once('.') {
                Some((i, iface)) => (i, Some(iface.to_owned())),
                None => (rest, None),
            };
            let index: usize = index_text
                .parse()
                .ok()
                .filter(|_| index_text.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| SmallcapsError::BadSlot(s.to_owned(), slots.len()))?;
            let slot = slots.get(index).cloned().ok_or_else(|| SmallcapsError::BadSlot(s.to_owned(), slots.len()))?;
            Ok(if first == '$' { Value::Remotable { slot, iface } } else { Value::Promise { slot } })
        }
        c => Err(SmallcapsError::ReservedPrefix(c, s.to_owned())),
    }
}

fn decode_json<S: Clone>(j: &serde_json::Value, slots: &[S], depth: usize) -> Result<Value<S>, SmallcapsError> {
    if depth > MAX_DEPTH {
        return Err(SmallcapsError::TooDeep(MAX_DEPTH));
    }
    // One level per call: grow the stack as needed, so deep bodies are safe on any thread.
    crate::json_text::deeper(|| decode_level(j, slots, depth))
}

fn decode_level<S: Clone>(j: &serde_json::Value, slots: &[S], depth: usize) -> Result<Value<S>, SmallcapsError> {
    use serde_json::Value as J;
    Ok(match j {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        J::String(s) => decode_string(s, slots)?,
        J::Array(items) => {
            Value::Array(items.iter().map(|i| decode_json(i, slots, depth + 1)).collect::<Result<_, _>>()?)
        }
        J::Object(map) => {
            if let Some(tag) = map.get("#tag") {
                let tag = match tag {
                    J::String(t) => match decode_string(t, slots)? {
                        Value::String(t) => t,
                        _ => return Err(SmallcapsError::BadSpecialRecord("#tag", "tag must be a string".into())),
                    },
                    _ => return Err(SmallcapsError::BadSpecialRecord("#tag", "tag must be a string".into())),
                };
                if map.len() != 2 || !map.contains_key("payload") {
                    return Err(SmallcapsError::BadSpecialRecord("#tag", "expected exactly #tag and payload".into()));
                }
                let payload = decode_json(&map["payload"], slots, depth + 1)?;
                return Ok(Value::Tagged { tag, payload: Box::new(payload) });
            }
            if let Some(message) = map.get("#error") {
                let text = |v: &J, what: &str| -> Result<String, SmallcapsError> {
                    match v {
                        J::String(s) => match decode_string(s, slots)? {
                            Value::String(s) => Ok(s),
                            _ => Err(SmallcapsError::BadSpecialRecord("#error", format!("{what} must be a string"))),
                        },
                        _ => Err(SmallcapsError::BadSpecialRecord("#error", format!("{what} must be a string"))),
                    }
                };
                let message = text(message, "message")?;
                let name = match map.get("name") {
                    Some(n) => text(n, "name")?,
                    None => "Error".to_owned(),
                };
                let mut extra = BTreeMap::new();
                for (k, v) in map {
                    if k == "#error" || k == "name" {
                        continue;
                    }
                    if k == "message" {
                        return Err(SmallcapsError::BadSpecialRecord("#error", "unexpected message property".into()));
                    }
                    extra.insert(k.clone(), decode_json(v, slots, depth + 1)?);
                }
                return Ok(Value::Error { name, message, extra });
            }
            let mut out = BTreeMap::new();
            for (k, v) in map {
                if k.starts_with('#') {
                    return Err(SmallcapsError::ReservedKey(k.clone()));
                }
                let key = match decode_string(k, slots)? {
                    Value::String(s) => s,
                    _ => return Err(SmallcapsError::ReservedKey(k.clone())),
                };
                out.insert(key, decode_json(v, slots, depth + 1)?);
            }
            Value::Record(out)
        }
    })
}

/// Encodes a value in kernel space (the JS kernel's `kser`).
pub fn kser(value: &Value<KRef>) -> CapData<KRef> {
    // Encoding cannot fail for values built in Rust: every variant has an encoding.
    encode(value).unwrap_or_else(|e| {
        CapData::new(format!("#{}", serde_json::json!({"#error": e.to_string(), "name": "Error"})), vec![])
    })
}

/// Decodes kernel-space CapData (the JS kernel's `kunser`).
pub fn kunser(data: &CapData<KRef>) -> Result<Value<KRef>, SmallcapsError> {
    decode(data)
}

/// Encodes a method call `[method, args]`, the shape of every message's `methargs`.
pub fn methargs(method: &str, args: Vec<Value<KRef>>) -> CapData<KRef> {
    kser(&Value::Array(vec![Value::str(method), Value::Array(args)]))
}

/// The text of a rejection reason or termination info, for people and logs: an error's
/// message, a string as it is, any other value as its smallcaps JSON, undecodable data as its body.
/// The one place a reason becomes text (the kernel's logs and errors, the CLI).
pub fn reason_text(reason: &CapData<KRef>) -> String {
    match kunser(reason) {
        Ok(Value::Error { message, .. }) => message,
        Ok(Value::String(s)) => s,
        Ok(v) => {
            drop_deep(v);
            // The body is `#` and the value's JSON encoding: for plain data, its JSON text.
            reason.body.strip_prefix('#').unwrap_or(&reason.body).to_owned()
        }
        Err(_) => reason.body.clone(),
    }
}

/// The kernel's own error values: `kser(Error("[KERNEL:<CODE>] <detail>"))`.
pub fn kernel_error(code: &str, detail: &str) -> CapData<KRef> {
    kser(&Value::error(format!("[KERNEL:{code}] {detail}")))
}

/// If a body is exactly one reference (`"$0..."` or `"&0"` with one slot), its slot.
/// The router uses this to decide where a fulfilled promise points (spec §7.3).
pub fn single_ref<S: Copy>(data: &CapData<S>) -> Option<S> {
    if data.slots.len() != 1 {
        return None;
    }
    let body = data.body.as_bytes();
    if body.len() < 4 || body[0] != b'#' || body[1] != b'"' || !(body[2] == b'$' || body[2] == b'&') {
        return None;
    }
    match decode(data) {
        Ok(Value::Remotable { slot, .. }) | Ok(Value::Promise { slot }) => Some(slot),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &Value<String>) -> String {
        encode(v).unwrap().body
    }

    #[test]
    fn strings_that_need_escaping_get_a_bang() {
        assert_eq!(enc(&Value::str("hello")), r#"#"hello""#);
        for s in ["!x", "#x", "$x", "&x", "-x", "+1", "%x", ",", "'"] {
            assert_eq!(enc(&Value::str(s)), format!("#\"!{}\"", s.replace('"', "\\\"")));
            assert_eq!(decode(&encode(&Value::<String>::str(s)).unwrap()).unwrap(), Value::str(s));
        }
        assert_eq!(enc(&Value::str(".x")), r#"#".x""#);
    }

    #[test]
    fn manifest_constants_and_numbers() {
        assert_eq!(enc(&Value::Undefined), r##"#"#undefined""##);
        assert_eq!(enc(&Value::Number(f64::NAN)), r##"#"#NaN""##);
        assert_eq!(enc(&Value::Number(f64::INFINITY)), r##"#"#Infinity""##);
        assert_eq!(enc(&Value::Number(f64::NEG_INFINITY)), r##"#"#-Infinity""##);
        assert_eq!(enc(&Value::Number(-0.0)), "#0");
        assert_eq!(enc(&Value::Number(5.0)), "#5");
        assert_eq!(enc(&Value::Number(0.1)), "#0.1");
        assert_eq!(enc(&Value::Number(1e21)), "#1e+21");
        assert_eq!(enc(&Value::Number(1e-7)), "#1e-7");
        assert_eq!(enc(&Value::Number(123456789012345680000.0)), "#123456789012345680000");
        assert_eq!(enc(&Value::Number(-1.5e-7)), "#-1.5e-7");
        assert_eq!(enc(&Value::Number(0.000001)), "#0.000001");
    }

    #[test]
    fn bigints_and_symbols() {
        assert_eq!(enc(&Value::BigInt("123".into())), r#"#"+123""#);
        assert_eq!(enc(&Value::BigInt("-5".into())), r#"#"-5""#);
        assert_eq!(decode(&CapData::<String>::new(r#"#"+42""#, vec![])).unwrap(), Value::BigInt("42".into()));
        assert!(decode(&CapData::<String>::new(r#"#"+4x""#, vec![])).is_err());
        assert_eq!(enc(&Value::Symbol("@@asyncIterator".into())), r#"#"%@@asyncIterator""#);
    }

    #[test]
    fn slots_are_indexed_and_repeats_drop_the_iface() {
        let p = Value::Remotable { slot: "o-1".to_string(), iface: Some("Alleged: thing".into()) };
        let q = Value::Promise { slot: "p-2".to_string() };
        let data = encode(&Value::Array(vec![p.clone(), q, p])).unwrap();
        assert_eq!(data.body, r#"#["$0.Alleged: thing","&1","$0"]"#);
        assert_eq!(data.slots, vec!["o-1", "p-2"]);
        let back = decode(&data).unwrap();
        match back {
            Value::Array(items) => assert_eq!(items[2], Value::Remotable { slot: "o-1".into(), iface: None }),
            _ => panic!("expected array"),
        }
        assert!(decode(&CapData::<String>::new(r#"#"$3""#, vec![])).is_err());
    }

    #[test]
    fn records_sort_keys_in_js_property_order() {
        let mut m = BTreeMap::new();
        m.insert("b".to_string(), Value::Number(1.0));
        m.insert("10".to_string(), Value::Number(2.0));
        m.insert("9".to_string(), Value::Number(3.0));
        m.insert("a".to_string(), Value::Null);
        m.insert("#x".to_string(), Value::Null);
        assert_eq!(enc(&Value::Record(m)), r##"#{"9":3,"10":2,"!#x":null,"a":null,"b":1}"##);
        assert!(decode(&CapData::<String>::new(r##"#{"#x":1}"##, vec![])).is_err());
    }

    #[test]
    fn errors_and_tagged_values() {
        let e: Value<String> = Value::error("[KERNEL:OBJECT_DELETED] gone");
        assert_eq!(enc(&e), r##"#{"#error":"[KERNEL:OBJECT_DELETED] gone","name":"Error"}"##);
        assert_eq!(decode(&encode(&e).unwrap()).unwrap(), e);
        let t: Value<String> = Value::Tagged { tag: "match:string".into(), payload: Box::new(Value::Array(vec![])) };
        assert_eq!(enc(&t), r##"#{"#tag":"match:string","payload":[]}"##);
        assert_eq!(decode(&encode(&t).unwrap()).unwrap(), t);
    }

    #[test]
    fn method_call_bodies_match_the_js_kernel() {
        let m = methargs("fizz", vec![]);
        assert_eq!(m.body, r#"#["fizz",[]]"#);
        let m = methargs("hello", vec![Value::presence(KRef::Object(4), Some("vatRoot")), Value::Number(1.0)]);
        assert_eq!(m.body, r#"#["hello",["$0.Alleged: vatRoot",1]]"#);
        assert_eq!(m.slots, vec![KRef::Object(4)]);
    }

    #[test]
    fn single_ref_detects_a_lone_reference() {
        assert_eq!(single_ref(&CapData::new(r#"#"$0.Alleged: x""#, vec![KRef::Object(3)])), Some(KRef::Object(3)));
        assert_eq!(single_ref(&CapData::new(r#"#"&0""#, vec![KRef::Promise(3)])), Some(KRef::Promise(3)));
        assert_eq!(single_ref(&CapData::new(r#"#["$0"]"#, vec![KRef::Object(3)])), None);
        assert_eq!(single_ref(&CapData::<KRef>::new("#1", vec![])), None);
    }

    #[test]
    fn bad_bodies_are_clear_errors() {
        assert!(matches!(decode(&CapData::<String>::new("[1]", vec![])), Err(SmallcapsError::NotSmallcaps(_))));
        assert!(matches!(decode(&CapData::<String>::new("#[1", vec![])), Err(SmallcapsError::BadJson(_))));
        assert!(matches!(
            decode(&CapData::<String>::new(r#"#"*x""#, vec![])),
            Err(SmallcapsError::ReservedPrefix('*', _))
        ));
        assert!(matches!(
            decode(&CapData::<String>::new(r##"#"#foo""##, vec![])),
            Err(SmallcapsError::UnknownConstant(_))
        ));
    }
}
