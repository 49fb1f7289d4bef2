//! `nonThenableObject(x)`: whether reading `x.then` is sure to find no `then`, with no code
//! run and nothing observable, so that an eventual send to `x` may skip eventual-send's race
//! (js/patches/README.md, `@endo+eventual-send+1.5.0.patch`).
//!
//! True only for an ordinary object (not a proxy, not an exotic object) whose prototype
//! chain, made of ordinary objects only, has no own property named `then` at any level.
//! Such an object is what every exo and `Far` object is. Looking at it through the C API
//! reads descriptors and prototypes, which for ordinary objects runs no code (no proxy trap,
//! no getter), so the question itself is unobservable. Anything else answers false and
//! takes the unpatched path.

use rquickjs::{qjs, Ctx, Value};

/// QuickJS's class id of ordinary objects (`JS_CLASS_OBJECT`, the first entry of the class
/// enum in quickjs.c, which its public header does not name). Proxies, arrays, functions,
/// module namespaces and the other exotic objects have their own.
const JS_CLASS_OBJECT: u32 = 1;

/// Longer prototype chains answer false (the slow path is always right).
const MAX_CHAIN: usize = 16;

/// See the module documentation.
pub(crate) fn is_non_thenable_object<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> bool {
    if !value.is_object() {
        return false;
    }
    // A predefined atom: no reference to take or free.
    let then = qjs::JS_ATOM_then as qjs::JSAtom;
    let raw_ctx = ctx.as_raw().as_ptr();
    let mut current = value.clone();
    for _ in 0..MAX_CHAIN {
        // SAFETY: `current` is a live object value of `ctx`; the prototype the C API hands
        // back is owned and wrapped in a `Value` at once, so it is freed.
        unsafe {
            let raw = current.as_raw();
            if qjs::JS_GetClassID(raw) != JS_CLASS_OBJECT {
                return false;
            }
            // A null descriptor: only whether the property is there (no value to free).
            match qjs::JS_GetOwnProperty(raw_ctx, std::ptr::null_mut(), raw, then) {
                0 => {}
                1 => return false,
                _ => {
                    // An exception (not for an ordinary object's property): leave none
                    // pending; the slow path decides.
                    drop(ctx.catch());
                    return false;
                }
            }
            let proto = qjs::JS_GetPrototype(raw_ctx, raw);
            if qjs::JS_IsException(proto) {
                // Not for an ordinary object; should it happen, the slow path decides.
                drop(ctx.catch());
                return false;
            }
            let proto = Value::from_raw(ctx.clone(), proto);
            if proto.is_null() {
                return true;
            }
            current = proto;
        }
    }
    false
}
