//! Reading frozen plain data (`@endo/pass-style`'s copyArray and copyRecord)
//! through QuickJS's C API without running any JavaScript: the shape checks
//! that the native `passStyleOf` (`pass_style.rs`) and the native smallcaps
//! codec (`smallcaps.rs`) share.
//!
//! A **plain array** is a non-proxy array whose prototype is
//! `%Array.prototype%`, not extensible, whose own keys are exactly its indices
//! `0..length` and `length`, each index an enumerable, non-configurable,
//! non-writable data property, and `length` non-writable (pass-style's
//! CopyArrayHelper plus `Object.isFrozen`). A **plain record** is a non-proxy
//! ordinary object (QuickJS class of `{}`) whose prototype is
//! `%Object.prototype%`, not extensible, whose own keys are all strings, each
//! an enumerable, non-configurable, non-writable data property whose value is
//! not a function (CopyRecordHelper plus `Object.isFrozen`; a function value
//! would make it a candidate remotable). Anything else is "not plain": the
//! callers hand it to JavaScript.

use std::mem::MaybeUninit;

use rquickjs::{qjs, Ctx, Value};

/// Identities the shape checks compare against, captured once per realm after
/// lockdown (the intrinsics are frozen and live as long as the context).
pub(crate) struct Intrinsics {
    /// `%Object.prototype%` and `%Array.prototype%` (their `JSObject` pointers).
    pub object_prototype: usize,
    pub array_prototype: usize,
    /// QuickJS's class id of ordinary objects (`{}`).
    pub ordinary_class: u32,
    /// The atom `length` (predefined in QuickJS: never freed, so never leaked).
    pub length_atom: qjs::JSAtom,
}

impl Intrinsics {
    pub(crate) fn new(ctx: &Ctx<'_>) -> rquickjs::Result<Intrinsics> {
        let raw_ctx = ctx.as_raw().as_ptr();
        let object_prototype = prototype_identity(ctx, "Object")?;
        let array_prototype = prototype_identity(ctx, "Array")?;
        // SAFETY: plain C API calls on this live context; the new object is
        // wrapped at once so it is freed.
        let (ordinary_class, length_atom) = unsafe {
            let plain = Value::from_raw(ctx.clone(), qjs::JS_NewObject(raw_ctx));
            (qjs::JS_GetClassID(plain.as_raw()), qjs::JS_NewAtom(raw_ctx, c"length".as_ptr()))
        };
        Ok(Intrinsics { object_prototype, array_prototype, ordinary_class, length_atom })
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
pub(crate) fn identity(value: &Value<'_>) -> usize {
    // SAFETY: only called on values whose tag is JS_TAG_OBJECT.
    unsafe { qjs::JS_VALUE_GET_PTR(value.as_raw()) as usize }
}

/// The parts of a plain array or record, in the order JavaScript sees them.
pub(crate) enum PlainParts<'js> {
    /// The elements, by index.
    Array(Vec<Value<'js>>),
    /// `(key, value)` in own-keys order; keys are JS strings.
    Record(Vec<(Value<'js>, Value<'js>)>),
}

/// Frees a property table (`JS_GetOwnPropertyNames`'s) on every exit path.
pub(crate) struct PropertyTable {
    pub ctx: *mut qjs::JSContext,
    pub tab: *mut qjs::JSPropertyEnum,
    pub len: u32,
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
        // Missing, or an exception (none for ordinary objects; the caller then
        // leaves the value to JavaScript, which sees it too).
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

/// The parts of `value` if it is a plain array or record (module doc), else
/// `None`. Runs no JavaScript and has no effect on the realm.
pub(crate) fn plain_parts<'js>(ctx: &Ctx<'js>, intrinsics: &Intrinsics, value: &Value<'js>) -> Option<PlainParts<'js>> {
    if !value.is_object() {
        return None;
    }
    let raw_ctx = ctx.as_raw().as_ptr();
    let raw = value.as_raw();
    // SAFETY: `raw` is a live object value; every value the C API hands back
    // is owned and wrapped in a `Value` at once, so it is freed.
    unsafe {
        if qjs::JS_IsProxy(raw) || qjs::JS_IsFunction(raw_ctx, raw) {
            return None;
        }
        let is_array = qjs::JS_IsArray(raw);
        if !is_array && qjs::JS_GetClassID(raw) != intrinsics.ordinary_class {
            return None;
        }
        if qjs::JS_IsExtensible(raw_ctx, raw) != 0 {
            return None;
        }
        let proto = Value::from_raw(ctx.clone(), qjs::JS_GetPrototype(raw_ctx, raw));
        if !proto.is_object() {
            let _ = ctx.catch();
            return None;
        }
        let expected = if is_array { intrinsics.array_prototype } else { intrinsics.object_prototype };
        if identity(&proto) != expected {
            return None;
        }
        let mut table = PropertyTable { ctx: raw_ctx, tab: std::ptr::null_mut(), len: 0 };
        let flags = (qjs::JS_GPN_STRING_MASK | qjs::JS_GPN_SYMBOL_MASK) as i32;
        if qjs::JS_GetOwnPropertyNames(raw_ctx, &mut table.tab, &mut table.len, raw, flags) < 0 {
            let _ = ctx.catch();
            return None;
        }
        if is_array {
            array_parts(ctx, intrinsics, raw, table.len).map(PlainParts::Array)
        } else {
            record_parts(ctx, raw, &table).map(PlainParts::Record)
        }
    }
}

/// # Safety
/// `raw` must be a live non-proxy array of `ctx`.
unsafe fn array_parts<'js>(
    ctx: &Ctx<'js>,
    intrinsics: &Intrinsics,
    raw: qjs::JSValue,
    key_count: u32,
) -> Option<Vec<Value<'js>>> {
    let raw_ctx = ctx.as_raw().as_ptr();
    let (length_flags, length) = own_property(ctx, raw, intrinsics.length_atom)?;
    // `length` is never an accessor nor configurable; frozen means read-only.
    if length_flags as u32 & qjs::JS_PROP_WRITABLE != 0 {
        return None;
    }
    let len = length.as_int().and_then(|n| u32::try_from(n).ok())?;
    if key_count != len.saturating_add(1) {
        return None;
    }
    let mut values = Vec::with_capacity(len as usize);
    for i in 0..len {
        let atom = qjs::JS_NewAtomUInt32(raw_ctx, i);
        let property = own_property(ctx, raw, atom);
        qjs::JS_FreeAtom(raw_ctx, atom);
        match property {
            Some((flags, value)) if is_frozen_enumerable_data(flags) => values.push(value),
            _ => return None,
        }
    }
    Some(values)
}

/// # Safety
/// `raw` must be a live non-proxy ordinary object of `ctx`, and `table` its own keys.
unsafe fn record_parts<'js>(
    ctx: &Ctx<'js>,
    raw: qjs::JSValue,
    table: &PropertyTable,
) -> Option<Vec<(Value<'js>, Value<'js>)>> {
    let raw_ctx = ctx.as_raw().as_ptr();
    let mut parts = Vec::with_capacity(table.len as usize);
    for i in 0..table.len as usize {
        let atom = (*table.tab.add(i)).atom;
        let key = Value::from_raw(ctx.clone(), qjs::JS_AtomToValue(raw_ctx, atom));
        if !key.is_string() {
            let _ = ctx.catch();
            return None; // a symbol key: a remotable, a tagged value or an error
        }
        match own_property(ctx, raw, atom) {
            Some((flags, value)) if is_frozen_enumerable_data(flags) && !value.is_function() => {
                parts.push((key, value))
            }
            _ => return None,
        }
    }
    Some(parts)
}
