//! A native `passStyleOf` for the vat realm, in front of `@endo/pass-style`'s
//! JavaScript one (`makePassStyleOf`, 1.8.2, `src/passStyleOf.js`).
//!
//! Why: marshal, the exo interface guards and liveslots call `passStyleOf` more
//! than ten times per delivery (counted, BENCHMARKS.md "issue 15"), and in
//! QuickJS's interpreter a fresh two-element array costs ~10 µs there.
//!
//! How it is wired (`js/src/prelude/04-pass-style.js`, `05-pass-style.js`): the
//! function this module builds is set as `globalThis[Symbol.for('@endo
//! passStyleOf')]` before `@endo/pass-style` loads, so the prelude's copy of the
//! package exports it, liveslots endows vats with it, and every vat bundle's own
//! copy of the package takes that endowment (the package's documented hook).
//! Our patch to the package (`js/patches/@endo+pass-style+1.8.2.patch`) exports
//! `makeJsPassStyleOf`, and the JavaScript `passStyleOf` made with it is the
//! fallback.
//!
//! What it decides itself, exactly as the JavaScript does: primitives other than
//! symbols (and strings, when the realm accepts only well-formed ones), `null`,
//! and the plain data around them: **copyArray** (an array whose prototype is
//! `%Array.prototype%`, frozen, with only index properties `0..length` that are
//! enumerable data properties, and `length`) and **copyRecord** (an ordinary
//! object whose prototype is `%Object.prototype%`, frozen, with only
//! string-keyed enumerable data properties whose values are not functions).
//! Everything else (symbols, functions, remotables, promises, errors, tagged
//! values, byte arrays, proxies, objects that are not frozen or not of those
//! shapes) goes to the JavaScript `passStyleOf`: for the whole value when the
//! value itself is not of those shapes, or for one element or property value
//! when only that one is. Shapes are checked on the whole object before any of
//! its values, and values in the JavaScript's order, so the first error the
//! JavaScript would throw is the one thrown. Reading own data properties of a
//! non-proxy object runs no JavaScript, so nothing observable happens before
//! the fallback runs. Past [`MAX_DEPTH`] nested levels the JavaScript takes
//! the whole value again from the top, so a cycle ends in its "Pass-by-copy
//! data cannot be cyclic" error naming the same object. (Nested values already
//! handed to it, proxies among them, are then looked at twice.)
//!
//! There is no memo: a result depends only on the value (deterministic, as
//! liveslots requires of an endowed `passStyleOf`), and walking a small frozen
//! structure natively costs less than the JavaScript's `WeakMap` lookup.

use std::cell::{Cell, RefCell};
use std::mem::MaybeUninit;

use rquickjs::{qjs, Ctx, Function, Persistent, Value};

/// Nesting the native walk handles before handing the rest to the JavaScript.
pub(crate) const MAX_DEPTH: usize = 64;

/// The pass styles the native walk can answer, as JS strings made once.
pub(crate) struct StyleNames {
    pub undefined: Persistent<rquickjs::String<'static>>,
    pub null: Persistent<rquickjs::String<'static>>,
    pub boolean: Persistent<rquickjs::String<'static>>,
    pub number: Persistent<rquickjs::String<'static>>,
    pub bigint: Persistent<rquickjs::String<'static>>,
    pub string: Persistent<rquickjs::String<'static>>,
    pub copy_array: Persistent<rquickjs::String<'static>>,
    pub copy_record: Persistent<rquickjs::String<'static>>,
}

impl StyleNames {
    pub(crate) fn new(ctx: &Ctx<'_>) -> rquickjs::Result<StyleNames> {
        let make = |s: &str| -> rquickjs::Result<Persistent<rquickjs::String<'static>>> {
            Ok(Persistent::save(ctx, rquickjs::String::from_str(ctx.clone(), s)?))
        };
        Ok(StyleNames {
            undefined: make("undefined")?,
            null: make("null")?,
            boolean: make("boolean")?,
            number: make("number")?,
            bigint: make("bigint")?,
            string: make("string")?,
            copy_array: make("copyArray")?,
            copy_record: make("copyRecord")?,
        })
    }
}

/// What the native `passStyleOf` needs from the realm, captured by the prelude.
pub(crate) struct PassStyleKit {
    /// The JavaScript `passStyleOf` (`makeJsPassStyleOf()`), once the package has
    /// loaded; until then the native one answers only what it decides itself.
    pub fallback: RefCell<Option<Persistent<Function<'static>>>>,
    /// Whether strings must be well formed to pass (`ONLY_WELL_FORMED_STRINGS_PASSABLE`):
    /// then the JavaScript checks them. Set with the fallback.
    pub strings_to_fallback: Cell<bool>,
    /// Identities of `%Object.prototype%` and `%Array.prototype%` (immortal intrinsics).
    pub object_prototype: usize,
    pub array_prototype: usize,
    /// QuickJS's class id of ordinary objects (`{}`).
    pub ordinary_class: u32,
    /// The atom `length` (predefined in QuickJS: never freed, so never leaked).
    pub length_atom: qjs::JSAtom,
    pub names: StyleNames,
}

/// What the native walk found about one value.
enum Found {
    /// Decided: this style.
    Style(Style),
    /// This value is not plain data: the JavaScript must look at it.
    Ask,
    /// Nested deeper than [`MAX_DEPTH`] (perhaps a cycle): the JavaScript
    /// must look at the whole value, so that its error names the same object.
    TooDeep,
}

enum Style {
    Undefined,
    Null,
    Boolean,
    Number,
    BigInt,
    String,
    CopyArray,
    CopyRecord,
}

impl PassStyleKit {
    /// Captures the realm's intrinsics. Called from trusted prelude code after
    /// lockdown (the prototypes are frozen by then).
    pub(crate) fn new(ctx: &Ctx<'_>) -> rquickjs::Result<PassStyleKit> {
        let raw_ctx = ctx.as_raw().as_ptr();
        let object_prototype = prototype_identity(ctx, "Object")?;
        let array_prototype = prototype_identity(ctx, "Array")?;
        // SAFETY: plain C API calls on this live context; the new object is
        // wrapped at once so it is freed.
        let (ordinary_class, length_atom) = unsafe {
            let plain = Value::from_raw(ctx.clone(), qjs::JS_NewObject(raw_ctx));
            let class = qjs::JS_GetClassID(plain.as_raw());
            (class, qjs::JS_NewAtom(raw_ctx, c"length".as_ptr()))
        };
        Ok(PassStyleKit {
            fallback: RefCell::new(None),
            strings_to_fallback: Cell::new(false),
            object_prototype,
            array_prototype,
            ordinary_class,
            length_atom,
            names: StyleNames::new(ctx)?,
        })
    }
}

fn prototype_identity(ctx: &Ctx<'_>, constructor: &str) -> rquickjs::Result<usize> {
    let constructor: rquickjs::Object = ctx.globals().get(constructor)?;
    let proto: Value = constructor.get("prototype")?;
    if !proto.is_object() {
        return Err(rquickjs::Error::new_from_js("value", "prototype object"));
    }
    Ok(identity(&proto))
}

/// Identity of an object value (its `JSObject` pointer).
fn identity(value: &Value<'_>) -> usize {
    // SAFETY: only called on values whose tag is JS_TAG_OBJECT.
    unsafe { qjs::JS_VALUE_GET_PTR(value.as_raw()) as usize }
}

/// Frees a property table on every exit path.
struct PropertyTable {
    ctx: *mut qjs::JSContext,
    tab: *mut qjs::JSPropertyEnum,
    len: u32,
}

impl Drop for PropertyTable {
    fn drop(&mut self) {
        if !self.tab.is_null() {
            // SAFETY: tab/len come from JS_GetOwnPropertyNames on this ctx.
            unsafe { qjs::JS_FreePropertyEnum(self.ctx, self.tab, self.len) };
        }
    }
}

/// An own property, read without running JavaScript: `None` when it is missing.
/// The value of an accessor property is not kept (its flags say it was one).
///
/// # Safety
/// `obj` must be a live non-proxy object of `ctx`, and `atom` a live atom.
unsafe fn own_property<'js>(ctx: &Ctx<'js>, obj: qjs::JSValue, atom: qjs::JSAtom) -> Option<(i32, Value<'js>)> {
    let mut desc = MaybeUninit::<qjs::JSPropertyDescriptor>::zeroed();
    if qjs::JS_GetOwnProperty(ctx.as_raw().as_ptr(), desc.as_mut_ptr(), obj, atom) <= 0 {
        // Missing, or an exception (none for ordinary objects; the walk then
        // leaves the whole value to the JavaScript, which sees it too).
        let _ = ctx.catch();
        return None;
    }
    let desc = desc.assume_init();
    let value = Value::from_raw(ctx.clone(), desc.value);
    drop(Value::from_raw(ctx.clone(), desc.getter));
    drop(Value::from_raw(ctx.clone(), desc.setter));
    Some((desc.flags, value))
}

/// Flags of a frozen, enumerable data property (configurable and writable unset).
fn is_frozen_enumerable_data(flags: i32) -> bool {
    let flags = flags as u32;
    flags & qjs::JS_PROP_GETSET == 0
        && flags & qjs::JS_PROP_ENUMERABLE != 0
        && flags & (qjs::JS_PROP_CONFIGURABLE | qjs::JS_PROP_WRITABLE) == 0
}

struct Walk<'a, 'js> {
    ctx: &'a Ctx<'js>,
    kit: &'a PassStyleKit,
    fallback: Option<Function<'js>>,
}

impl<'js> Walk<'_, 'js> {
    /// What the native walk finds about `value`. Errors are JavaScript
    /// exceptions from the fallback on a nested value.
    fn classify(&self, value: &Value<'js>, depth: usize) -> rquickjs::Result<Found> {
        let raw = value.as_raw();
        // SAFETY: reading the tag of a live value.
        let tag = unsafe { qjs::JS_VALUE_GET_NORM_TAG(raw) };
        Ok(Found::Style(match tag {
            qjs::JS_TAG_UNDEFINED => Style::Undefined,
            qjs::JS_TAG_NULL => Style::Null,
            qjs::JS_TAG_BOOL => Style::Boolean,
            qjs::JS_TAG_INT | qjs::JS_TAG_FLOAT64 => Style::Number,
            qjs::JS_TAG_BIG_INT | qjs::JS_TAG_SHORT_BIG_INT => Style::BigInt,
            qjs::JS_TAG_STRING | qjs::JS_TAG_STRING_ROPE if !self.kit.strings_to_fallback.get() => Style::String,
            qjs::JS_TAG_OBJECT if depth < MAX_DEPTH => return self.classify_object(value, depth),
            qjs::JS_TAG_OBJECT => return Ok(Found::TooDeep),
            _ => return Ok(Found::Ask),
        }))
    }

    fn classify_object(&self, value: &Value<'js>, depth: usize) -> rquickjs::Result<Found> {
        let ctx = self.ctx.as_raw().as_ptr();
        let raw = value.as_raw();
        // SAFETY: `raw` is a live object value; every value the C API hands
        // back is owned and wrapped in a `Value` at once, so it is freed.
        unsafe {
            if qjs::JS_IsProxy(raw) || qjs::JS_IsFunction(ctx, raw) {
                return Ok(Found::Ask);
            }
            let is_array = qjs::JS_IsArray(raw);
            if !is_array && qjs::JS_GetClassID(raw) != self.kit.ordinary_class {
                return Ok(Found::Ask);
            }
            // Not frozen: the JavaScript throws its "Use harden()" error.
            if qjs::JS_IsExtensible(ctx, raw) != 0 {
                return Ok(Found::Ask);
            }
            let proto = Value::from_raw(self.ctx.clone(), qjs::JS_GetPrototype(ctx, raw));
            if !proto.is_object() {
                let _ = self.ctx.catch();
                return Ok(Found::Ask);
            }
            let expected = if is_array { self.kit.array_prototype } else { self.kit.object_prototype };
            if identity(&proto) != expected {
                return Ok(Found::Ask);
            }
            let mut table = PropertyTable { ctx, tab: std::ptr::null_mut(), len: 0 };
            let flags = (qjs::JS_GPN_STRING_MASK | qjs::JS_GPN_SYMBOL_MASK) as i32;
            if qjs::JS_GetOwnPropertyNames(ctx, &mut table.tab, &mut table.len, raw, flags) < 0 {
                let _ = self.ctx.catch();
                return Ok(Found::Ask);
            }
            let values = if is_array { self.array_values(raw, table.len)? } else { self.record_values(raw, &table)? };
            let Some(values) = values else {
                return Ok(Found::Ask);
            };
            drop(table);
            for child in &values {
                match self.classify(child, depth + 1)? {
                    Found::Style(_) => {}
                    Found::Ask => drop(self.call_fallback(child)?),
                    Found::TooDeep => return Ok(Found::TooDeep),
                }
            }
            Ok(Found::Style(if is_array { Style::CopyArray } else { Style::CopyRecord }))
        }
    }

    /// The elements of a frozen array with nothing but its indices and
    /// `length` (CopyArrayHelper), or `None` if it is not one.
    ///
    /// # Safety
    /// `raw` must be a live non-proxy array of this context.
    unsafe fn array_values(&self, raw: qjs::JSValue, key_count: u32) -> rquickjs::Result<Option<Vec<Value<'js>>>> {
        let ctx = self.ctx.as_raw().as_ptr();
        let Some((length_flags, length)) = own_property(self.ctx, raw, self.kit.length_atom) else {
            return Ok(None);
        };
        // `length` is never an accessor nor configurable; frozen means read-only.
        if length_flags as u32 & qjs::JS_PROP_WRITABLE != 0 {
            return Ok(None);
        }
        let Some(len) = length.as_int().and_then(|n| u32::try_from(n).ok()) else {
            return Ok(None);
        };
        if key_count != len.saturating_add(1) {
            return Ok(None);
        }
        let mut values = Vec::with_capacity(len as usize);
        for i in 0..len {
            let atom = qjs::JS_NewAtomUInt32(ctx, i);
            let property = own_property(self.ctx, raw, atom);
            qjs::JS_FreeAtom(ctx, atom);
            match property {
                Some((flags, value)) if is_frozen_enumerable_data(flags) => values.push(value),
                _ => return Ok(None),
            }
        }
        Ok(Some(values))
    }

    /// The property values of a frozen record with only string-keyed
    /// enumerable data properties holding no functions (CopyRecordHelper), or
    /// `None` if it is not one.
    ///
    /// # Safety
    /// `raw` must be a live non-proxy ordinary object of this context, and
    /// `table` its own keys.
    unsafe fn record_values(
        &self,
        raw: qjs::JSValue,
        table: &PropertyTable,
    ) -> rquickjs::Result<Option<Vec<Value<'js>>>> {
        let ctx = self.ctx.as_raw().as_ptr();
        let mut values = Vec::with_capacity(table.len as usize);
        for i in 0..table.len as usize {
            let atom = (*table.tab.add(i)).atom;
            let key = Value::from_raw(self.ctx.clone(), qjs::JS_AtomToValue(ctx, atom));
            if !key.is_string() {
                let _ = self.ctx.catch();
                return Ok(None); // a symbol key: a remotable or a tagged value, or an error
            }
            match own_property(self.ctx, raw, atom) {
                Some((flags, value)) if is_frozen_enumerable_data(flags) && !value.is_function() => values.push(value),
                _ => return Ok(None),
            }
        }
        Ok(Some(values))
    }

    fn call_fallback(&self, value: &Value<'js>) -> rquickjs::Result<Value<'js>> {
        match &self.fallback {
            Some(fallback) => fallback.call((value.clone(),)),
            None => Err(rquickjs::Exception::throw_type(
                self.ctx,
                "passStyleOf: the JavaScript passStyleOf is not loaded yet (only plain data can be asked)",
            )),
        }
    }
}

/// `passStyleOf(value)`: a pass style name, or the JavaScript's exception.
pub(crate) fn pass_style_of<'js>(
    ctx: &Ctx<'js>,
    kit: &PassStyleKit,
    value: Value<'js>,
) -> rquickjs::Result<Value<'js>> {
    // Cloned out: the fallback may run `passStyleOf` again (a proxy's trap).
    let fallback = kit.fallback.borrow().clone();
    let fallback = match fallback {
        Some(f) => Some(f.restore(ctx)?),
        None => None,
    };
    let walk = Walk { ctx, kit, fallback };
    let names = &kit.names;
    let style = match walk.classify(&value, 0)? {
        Found::Style(style) => style,
        Found::Ask | Found::TooDeep => return walk.call_fallback(&value),
    };
    let name = match style {
        Style::Undefined => &names.undefined,
        Style::Null => &names.null,
        Style::Boolean => &names.boolean,
        Style::Number => &names.number,
        Style::BigInt => &names.bigint,
        Style::String => &names.string,
        Style::CopyArray => &names.copy_array,
        Style::CopyRecord => &names.copy_record,
    };
    Ok(name.clone().restore(ctx)?.into_value())
}
