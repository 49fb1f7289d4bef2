//! A native smallcaps codec for plain data, in front of `@endo/marshal`'s
//! (1.10.0, `src/encodeToSmallcaps.js` and `marshal.js`'s `toCapData` /
//! `fromCapData`).
//!
//! Why: after the native `harden` and `passStyleOf`, marshal's JavaScript is
//! the largest piece of a delivery left that is not the vat's own code
//! (`toCapData(['ping', [1]])` ~15 µs, `fromCapData` ~16 µs in QuickJS, and a
//! round trip between two vats does each twice). Most capdata has no slots.
//!
//! How it is wired: `js/src/prelude/04-pass-style.js` sets
//! `globalThis[Symbol.for('@ocap fastSmallcaps')]` before `@endo/marshal`
//! loads; our patch to the package (`js/patches/@endo+marshal+1.10.0.patch`)
//! reads it once, and each marshaller's smallcaps `toCapData` / `fromCapData`
//! asks it first. It answers only for plain data (what `plain_data.rs` reads,
//! and primitives other than symbols) with no slots, and otherwise says "give
//! up" before anything has happened, so the JavaScript then does the whole
//! job as if it had not been asked. Everything it answers is byte for byte
//! (encode) or value for value (decode) the JavaScript's answer: the tests
//! in `tests/smallcaps.rs` compare both on random values.
//!
//! Encoding rules followed (encodeToSmallcaps.js): strings starting with a
//! character in `!`..`-` get a `!` prefix; `undefined`, `NaN`, `±Infinity`
//! are `"#undefined"`, `"#NaN"`, `"#Infinity"`, `"#-Infinity"`; `-0` is `0`;
//! bigints are `"+n"` / `"-n"`; record keys are sorted (UTF-16 order),
//! escaped like strings, and then put in JavaScript's own-keys order (array
//! indices first, ascending) as `JSON.stringify(Object.fromEntries(…))`
//! does; the body is `#` followed by the JSON text, escaped as
//! `JSON.stringify` escapes. Strings with lone surrogates are left to the
//! JavaScript.

use std::fmt::Write as _;

use rquickjs::object::Property;
use rquickjs::{qjs, Ctx, Value};

use crate::pass_style::MAX_DEPTH;
use crate::plain_data::{plain_parts, Intrinsics, PlainParts};

/// `toCapData(value).body` if `value` is plain data without slots, else `None`
/// (the JavaScript encodes it). Runs no JavaScript.
pub(crate) fn encode<'js>(ctx: &Ctx<'js>, intrinsics: &Intrinsics, value: &Value<'js>) -> Option<String> {
    let mut encoder = Encoder { ctx, intrinsics, out: String::with_capacity(64) };
    encoder.out.push('#');
    encoder.value(value, 0).then_some(encoder.out)
}

struct Encoder<'a, 'js> {
    ctx: &'a Ctx<'js>,
    intrinsics: &'a Intrinsics,
    out: String,
}

/// Whether smallcaps escapes a string starting with this character.
fn starts_special(s: &str) -> bool {
    matches!(s.as_bytes().first(), Some(b'!'..=b'-'))
}

/// Whether `key` is an array index (a canonical decimal below 2^32 - 1):
/// such keys come first, ascending, in an object's own keys.
fn array_index(key: &str) -> Option<u32> {
    if key.is_empty()
        || key.len() > 10
        || !key.bytes().all(|b| b.is_ascii_digit())
        || (key.len() > 1 && key.starts_with('0'))
    {
        return None;
    }
    key.parse::<u64>().ok().filter(|&n| n < u64::from(u32::MAX)).map(|n| n as u32)
}

/// A JSON string literal as `JSON.stringify` writes it (for strings without
/// lone surrogates, which a Rust `str` cannot hold).
fn write_quoted(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A string's text, or `None` if it has a lone surrogate (not valid UTF-8).
fn text_of(value: &Value<'_>) -> Option<String> {
    value.as_string()?.to_string().ok()
}

/// `String(value)` of a number or bigint (no JavaScript runs for these).
fn number_text<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> Option<String> {
    // SAFETY: JS_ToString of a live primitive number or bigint; the result is
    // owned and wrapped at once.
    let string = unsafe { Value::from_raw(ctx.clone(), qjs::JS_ToString(ctx.as_raw().as_ptr(), value.as_raw())) };
    let text = text_of(&string);
    if text.is_none() {
        let _ = ctx.catch();
    }
    text
}

impl<'js> Encoder<'_, 'js> {
    fn value(&mut self, value: &Value<'js>, depth: usize) -> bool {
        // SAFETY: reading the tag of a live value.
        let tag = unsafe { qjs::JS_VALUE_GET_NORM_TAG(value.as_raw()) };
        match tag {
            qjs::JS_TAG_UNDEFINED => self.out.push_str("\"#undefined\""),
            qjs::JS_TAG_NULL => self.out.push_str("null"),
            qjs::JS_TAG_BOOL => self.out.push_str(if value.as_bool() == Some(true) { "true" } else { "false" }),
            qjs::JS_TAG_INT => {
                let _ = write!(self.out, "{}", value.as_int().unwrap_or(0));
            }
            qjs::JS_TAG_FLOAT64 => {
                let f = value.as_float().unwrap_or(f64::NAN);
                if f.is_nan() {
                    self.out.push_str("\"#NaN\"");
                } else if f == f64::INFINITY {
                    self.out.push_str("\"#Infinity\"");
                } else if f == f64::NEG_INFINITY {
                    self.out.push_str("\"#-Infinity\"");
                } else if f == 0.0 {
                    self.out.push('0'); // and -0
                } else {
                    let Some(text) = number_text(self.ctx, value) else { return false };
                    self.out.push_str(&text);
                }
            }
            qjs::JS_TAG_BIG_INT | qjs::JS_TAG_SHORT_BIG_INT => {
                let Some(text) = number_text(self.ctx, value) else { return false };
                self.out.push('"');
                if !text.starts_with('-') {
                    self.out.push('+');
                }
                self.out.push_str(&text);
                self.out.push('"');
            }
            qjs::JS_TAG_STRING | qjs::JS_TAG_STRING_ROPE => {
                let Some(text) = text_of(value) else { return false };
                self.string(&text);
            }
            qjs::JS_TAG_OBJECT if depth < MAX_DEPTH => return self.object(value, depth),
            _ => return false, // symbols, and anything too deep (perhaps a cycle)
        }
        true
    }

    fn string(&mut self, text: &str) {
        if starts_special(text) {
            let mut escaped = String::with_capacity(text.len() + 1);
            escaped.push('!');
            escaped.push_str(text);
            write_quoted(&mut self.out, &escaped);
        } else {
            write_quoted(&mut self.out, text);
        }
    }

    fn object(&mut self, value: &Value<'js>, depth: usize) -> bool {
        match plain_parts(self.ctx, self.intrinsics, value) {
            None => false,
            Some(PlainParts::Array(elements)) => {
                self.out.push('[');
                for (i, element) in elements.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    if !self.value(element, depth + 1) {
                        return false;
                    }
                }
                self.out.push(']');
                true
            }
            Some(PlainParts::Record(entries)) => {
                let mut named = Vec::with_capacity(entries.len());
                for (key, value) in entries {
                    let Some(key) = text_of(&key) else { return false };
                    named.push((key, value));
                }
                // `ownKeys(record).sort()` (UTF-16 code unit order), then the order
                // `JSON.stringify(Object.fromEntries(…))` writes them in: array-index keys
                // first, ascending, then the others in sorted order. (Escaped keys start
                // with `!`, so they are never indices.)
                named.sort_by(|(a, _), (b, _)| match (array_index(a), array_index(b)) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => a.encode_utf16().cmp(b.encode_utf16()),
                });
                self.out.push('{');
                for (n, (key, value)) in named.iter().enumerate() {
                    if n > 0 {
                        self.out.push(',');
                    }
                    self.string(key);
                    self.out.push(':');
                    if !self.value(value, depth + 1) {
                        return false;
                    }
                }
                self.out.push('}');
                true
            }
        }
    }
}

/// `fromCapData({body, slots: []})` before its `harden`: the decoded value, or
/// `None` when the JavaScript must decode it (anything but plain data, or a
/// body the JavaScript rejects). `body` includes the leading `#`.
pub(crate) fn decode<'js>(ctx: &Ctx<'js>, body: &str) -> Option<Value<'js>> {
    let json = body.strip_prefix('#')?;
    let parsed = match ctx.json_parse(json) {
        Ok(parsed) => parsed,
        Err(_) => {
            let _ = ctx.catch(); // the JavaScript throws the same SyntaxError
            return None;
        }
    };
    decode_value(ctx, parsed, 0).map(|(decoded, _)| decoded)
}

/// The decoded value of a freshly parsed JSON value (which nothing else can
/// see, so it is changed in place where that is exact), and whether it differs
/// from the parsed value.
fn decode_value<'js>(ctx: &Ctx<'js>, value: Value<'js>, depth: usize) -> Option<(Value<'js>, bool)> {
    if let Some(string) = value.as_string() {
        let text = string.to_string().ok()?;
        if !starts_special(&text) {
            return Some((value, false));
        }
        return decode_special(ctx, &text).map(|decoded| (decoded, true));
    }
    let Some(object) = value.as_object() else {
        return Some((value, false)); // numbers, booleans, null
    };
    if depth >= MAX_DEPTH {
        return None;
    }
    if let Some(array) = object.as_array() {
        for i in 0..array.len() {
            let (decoded, changed) = decode_value(ctx, array.get(i).ok()?, depth + 1)?;
            if changed {
                array.set(i, decoded).ok()?;
            }
        }
        return Some((value, false));
    }
    // A record: `Object.fromEntries` of the decoded entries, in the parsed order.
    let mut entries = Vec::new();
    let mut any_changed = false;
    // Keys as JS strings, read with their length and checked UTF-8 (a key with a
    // lone surrogate is left to the JavaScript; a NUL is kept).
    for key_value in object.keys::<Value>() {
        let key_value = key_value.ok()?;
        let key = text_of(&key_value)?;
        let name = match key.as_bytes().first() {
            Some(b'#') => return None, // `#tag`, `#error`, or a record type the JavaScript rejects
            Some(b'!') => {
                any_changed = true;
                key[1..].to_string()
            }
            _ if starts_special(&key) => return None, // a key that does not decode to a string
            _ => key.clone(),
        };
        let (decoded, changed) = decode_value(ctx, object.get(key_value).ok()?, depth + 1)?;
        any_changed |= changed;
        entries.push((name, decoded));
    }
    if !any_changed {
        return Some((value, false));
    }
    let rebuilt = rquickjs::Object::new(ctx.clone()).ok()?;
    for (name, decoded) in entries {
        // Defined, not assigned: `__proto__` is an own key, as `fromEntries` makes it.
        rebuilt.prop(name.as_str(), Property::from(decoded).writable().enumerable().configurable()).ok()?;
    }
    Some((rebuilt.into_value(), true))
}

/// A string starting with a smallcaps special character that decodes to plain
/// data, or `None`.
fn decode_special<'js>(ctx: &Ctx<'js>, text: &str) -> Option<Value<'js>> {
    let rest = &text[1..];
    match text.as_bytes()[0] {
        b'!' => rquickjs::String::from_str(ctx.clone(), rest).ok().map(|s| s.into_value()),
        b'#' => match text {
            "#undefined" => Some(Value::new_undefined(ctx.clone())),
            "#NaN" => Some(Value::new_float(ctx.clone(), f64::NAN)),
            "#Infinity" => Some(Value::new_float(ctx.clone(), f64::INFINITY)),
            "#-Infinity" => Some(Value::new_float(ctx.clone(), f64::NEG_INFINITY)),
            _ => None,
        },
        sign @ (b'+' | b'-') => {
            if rest.is_empty() || rest.len() > 18 || !rest.bytes().all(|b| b.is_ascii_digit()) {
                return None; // large or unusual: `BigInt(text)` in the JavaScript
            }
            let magnitude: i64 = rest.parse().ok()?;
            let n = if sign == b'-' { -magnitude } else { magnitude };
            // SAFETY: a new bigint on this live context, wrapped at once.
            let big = unsafe { Value::from_raw(ctx.clone(), qjs::JS_NewBigInt64(ctx.as_raw().as_ptr(), n)) };
            if big.is_exception() {
                let _ = ctx.catch();
                return None;
            }
            Some(big)
        }
        _ => None, // symbols, slots, and reserved characters
    }
}
