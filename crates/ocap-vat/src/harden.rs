//! A native `harden` for the vat realm: SES's algorithm
//! (`ses/src/make-hardener.js`) written against QuickJS's C API.
//!
//! SES adopts a `globalThis.harden` that exists when it loads ("use a native
//! hardener if possible", the path XS takes). `js/src/prelude/harden.js`
//! installs this one when the engine has no V8-style own `stack` accessors
//! on errors (QuickJS-ng has none), and its JS twin otherwise.
//!
//! Semantics, as SES: starting from the root, every object or function not
//! yet hardened is frozen (`Object.freeze`; typed arrays go to the JS
//! `freezeTypedArray` helper), then its prototype and each own property's
//! value, or getter and setter, are visited. Own keys and descriptors are
//! read after the freeze, through the same internal methods
//! `Object.getOwnPropertyDescriptors` uses, so proxies see the same traps.
//! Only once the whole graph is frozen is every visited object added to the
//! `hardened` WeakSet; an exception leaves nothing marked.
//!
//! Why: hardening is about 40% of a delivery's time when done in
//! interpreted JS (27 objects, ~100 µs for a ping through `makeDefaultExo`).
//! Here it does not build descriptor objects or key arrays.
//!
//! Asking the WeakSet is the expensive step left (a call into JS, and
//! QuickJS hashes object keys by address, so its chains are long). Two
//! answers come without it, both exact:
//! - an object that is still extensible is not hardened (hardened implies
//!   frozen). Asked of ordinary objects only: on a proxy `isExtensible` is a
//!   trap, which SES's algorithm does not call;
//! - the realm's common prototypes (`Object.prototype`, `Array.prototype`,
//!   …) are immortal, so their identities stay theirs: once the WeakSet has
//!   said one is hardened (lockdown hardens them all), that is remembered.
//!
//! **Leaves are not added to the WeakSet.** A *leaf* is a function, a promise
//! or an array of at most 7 elements (not a proxy, not a typed array) that is
//! not extensible, whose prototype is null or a common prototype known to be
//! hardened, and whose own properties (at most 8) are all non-writable,
//! non-configurable data properties holding primitives. SES's harden does
//! nothing to a leaf but add it to the WeakSet: freezing it changes nothing,
//! its prototype is hardened and its values are primitives. So the WeakSet
//! entry only saves a later harden that work, and checking the leaf's shape
//! (a few property reads, `is_frozen_leaf`) is cheaper than the WeakSet's
//! add and lookups: most of what a message makes and hardens is such leaves
//! (the closures of an `E()` call, promises, argument lists), about 11 of the
//! 18 objects hardened per send. Nothing but harden reads the WeakSet, and an
//! object that passes the check is one harden would leave exactly as it is.

use std::cell::Cell;
use std::collections::HashSet;
use std::mem::MaybeUninit;

use rquickjs::function::This;
use rquickjs::{qjs, Ctx, Function, Object, Persistent, Value};

use crate::plain_data::{identity, PropertyTable};

/// What the native harden needs from the JS side, captured at install time
/// (before lockdown, from trusted prelude code).
pub(crate) struct HardenKit {
    /// The WeakSet of hardened objects.
    pub hardened: Persistent<Object<'static>>,
    /// `WeakSet.prototype.has` and `.add`.
    pub has: Persistent<Function<'static>>,
    pub add: Persistent<Function<'static>>,
    /// SES's `freezeTypedArray`.
    pub freeze_typed_array: Persistent<Function<'static>>,
    /// Identities of the realm's common prototypes (at most 64), and which of
    /// them the WeakSet has said are hardened (bit i for `prototypes[i]`).
    pub prototypes: Vec<usize>,
    pub prototypes_hardened: Cell<u64>,
}

/// The prototypes most hardened graphs reach: captured by `common_prototypes`.
const COMMON_PROTOTYPES: [&str; 6] = ["Object", "Array", "Function", "Promise", "Error", "Map"];

/// The identities of the realm's common prototypes, for [`HardenKit::prototypes`].
///
/// They are the context's intrinsics, alive as long as it is, so an identity
/// cannot be reused by another object while the kit exists.
pub(crate) fn common_prototypes(ctx: &Ctx<'_>) -> rquickjs::Result<Vec<usize>> {
    let mut out = Vec::with_capacity(COMMON_PROTOTYPES.len());
    for name in COMMON_PROTOTYPES {
        let constructor: Object = ctx.globals().get(name)?;
        let proto: Value = constructor.get("prototype")?;
        if proto.is_object() {
            out.push(identity(&proto));
        }
    }
    Ok(out)
}

fn exception() -> rquickjs::Error {
    rquickjs::Error::Exception
}

struct Traversal<'a, 'js> {
    ctx: &'a Ctx<'js>,
    kit: &'a HardenKit,
    hardened: Object<'js>,
    has: Function<'js>,
    queue: Vec<Value<'js>>,
    /// Identities of `queue`'s objects, in the same order: scanned while
    /// few (most graphs hardened at once are a handful of objects), then
    /// also indexed in `queued_set` so large graphs stay linear.
    queued: Vec<usize>,
    queued_set: Option<HashSet<usize>>,
}

/// Past this many queued objects, membership goes through a hash set.
const QUEUED_SCAN_MAX: usize = 32;

/// The most own properties a leaf has (see the module doc): an array's
/// elements and `length`, a function's `length` and `name`.
const LEAF_MAX_PROPERTIES: usize = 8;

impl HardenKit {
    /// The slot of the common prototype whose identity is `id`, if it is one.
    fn prototype_slot(&self, id: usize) -> Option<usize> {
        self.prototypes.iter().position(|&p| p == id)
    }

    /// Whether the WeakSet has said the common prototype in `slot` is hardened.
    fn slot_hardened(&self, slot: usize) -> bool {
        self.prototypes_hardened.get() & (1 << slot) != 0
    }

    /// Whether `proto` is null or a common prototype the WeakSet has said is
    /// hardened.
    fn is_known_hardened_prototype(&self, proto: &Value<'_>) -> bool {
        if proto.is_null() {
            return true;
        }
        proto.is_object() && self.prototype_slot(identity(proto)).is_some_and(|i| self.slot_hardened(i))
    }
}

/// Whether the object `raw` is of a kind that may be a leaf, from cheap checks
/// only: a function, a promise, or an array of at most
/// `LEAF_MAX_PROPERTIES - 1` elements; never a proxy or a typed array.
///
/// # Safety
/// `raw` must be a live object value of `ctx`.
unsafe fn leaf_kind(ctx: *mut qjs::JSContext, raw: qjs::JSValue) -> bool {
    if qjs::JS_IsProxy(raw) || qjs::JS_GetTypedArrayType(raw) >= 0 {
        return false;
    }
    if qjs::JS_IsFunction(ctx, raw) || qjs::JS_IsPromise(raw) {
        return true;
    }
    if qjs::JS_IsArray(raw) {
        let mut len: i64 = 0;
        return qjs::JS_GetLength(ctx, raw, &mut len) == 0 && (0..LEAF_MAX_PROPERTIES as i64).contains(&len);
    }
    false
}

impl<'js> Traversal<'_, 'js> {
    fn is_hardened(&self, value: &Value<'js>, id: usize) -> rquickjs::Result<bool> {
        let raw = value.as_raw();
        // SAFETY: `raw` is a live object value (checked by the caller).
        unsafe {
            if !qjs::JS_IsProxy(raw) && qjs::JS_IsExtensible(self.ctx.as_raw().as_ptr(), raw) == 1 {
                return Ok(false);
            }
        }
        let known = self.kit.prototype_slot(id);
        if known.is_some_and(|i| self.kit.slot_hardened(i)) {
            return Ok(true);
        }
        if self.is_frozen_leaf(value)? {
            return Ok(true);
        }
        let hardened: bool = self.has.call((This(self.hardened.clone()), value.clone()))?;
        if let (Some(i), true) = (known, hardened) {
            self.kit.prototypes_hardened.set(self.kit.prototypes_hardened.get() | (1 << i));
        }
        Ok(hardened)
    }

    /// Whether `value`, a non-extensible object, is a leaf (module doc): what
    /// harden would leave exactly as it is, WeakSet or not.
    fn is_frozen_leaf(&self, value: &Value<'js>) -> rquickjs::Result<bool> {
        let ctx = self.ctx.as_raw().as_ptr();
        let raw = value.as_raw();
        // SAFETY: `raw` is a live object value; every value the C API hands
        // back is owned and wrapped in a `Value` at once, so it is freed.
        unsafe {
            if !leaf_kind(ctx, raw) {
                return Ok(false);
            }
            let proto = qjs::JS_GetPrototype(ctx, raw);
            if qjs::JS_IsException(proto) {
                return Err(exception());
            }
            if !self.kit.is_known_hardened_prototype(&Value::from_raw(self.ctx.clone(), proto)) {
                return Ok(false);
            }
            let mut table = PropertyTable { ctx, tab: std::ptr::null_mut(), len: 0 };
            let flags = (qjs::JS_GPN_STRING_MASK | qjs::JS_GPN_SYMBOL_MASK) as i32;
            if qjs::JS_GetOwnPropertyNames(ctx, &mut table.tab, &mut table.len, raw, flags) < 0 {
                return Err(exception());
            }
            if table.len as usize > LEAF_MAX_PROPERTIES {
                return Ok(false);
            }
            for i in 0..table.len as usize {
                let atom = (*table.tab.add(i)).atom;
                let mut desc = MaybeUninit::<qjs::JSPropertyDescriptor>::zeroed();
                if qjs::JS_GetOwnProperty(ctx, desc.as_mut_ptr(), raw, atom) != 1 {
                    // An error, or a key that went away: not worth deciding here.
                    return Ok(false);
                }
                let desc = desc.assume_init();
                let value = Value::from_raw(self.ctx.clone(), desc.value);
                let _getter = Value::from_raw(self.ctx.clone(), desc.getter);
                let _setter = Value::from_raw(self.ctx.clone(), desc.setter);
                let open = (qjs::JS_PROP_GETSET | qjs::JS_PROP_WRITABLE | qjs::JS_PROP_CONFIGURABLE) as i32;
                if desc.flags & open != 0 || value.is_object() {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    }

    fn enqueue(&mut self, value: Value<'js>) -> rquickjs::Result<()> {
        // Objects and functions share QuickJS's object tag; everything else
        // is a primitive.
        if !value.is_object() {
            return Ok(());
        }
        let id = identity(&value);
        let seen = match &self.queued_set {
            Some(set) => set.contains(&id),
            None => self.queued.contains(&id),
        };
        if seen || self.is_hardened(&value, id)? {
            return Ok(());
        }
        self.queued.push(id);
        match &mut self.queued_set {
            Some(set) => {
                set.insert(id);
            }
            None if self.queued.len() > QUEUED_SCAN_MAX => {
                self.queued_set = Some(self.queued.iter().copied().collect());
            }
            None => {}
        }
        self.queue.push(value);
        Ok(())
    }

    /// Freezes `obj` and queues what hangs from it; returns whether it is a
    /// leaf (module doc), which then stays out of the WeakSet.
    fn freeze_and_traverse(&mut self, obj: &Value<'js>, freeze_typed_array: &Function<'js>) -> rquickjs::Result<bool> {
        let ctx = self.ctx.as_raw().as_ptr();
        let raw = obj.as_raw();
        // SAFETY: `raw` is a live object value owned by `self.queue`; every
        // value the C API hands back is owned (new reference) and wrapped in
        // a `Value` at once, so it is freed on every path.
        unsafe {
            if qjs::JS_GetTypedArrayType(raw) >= 0 {
                freeze_typed_array.call::<_, ()>((obj.clone(),))?;
            } else if qjs::JS_FreezeObject(ctx, raw) < 0 {
                return Err(exception());
            }
            let proto = qjs::JS_GetPrototype(ctx, raw);
            if qjs::JS_IsException(proto) {
                return Err(exception());
            }
            let proto = Value::from_raw(self.ctx.clone(), proto);
            // Decided before the prototype is queued: a prototype hardened by this
            // same call is not known yet, and its object goes to the WeakSet.
            let mut leaf = leaf_kind(ctx, raw) && self.kit.is_known_hardened_prototype(&proto);
            self.enqueue(proto)?;

            let mut table = PropertyTable { ctx, tab: std::ptr::null_mut(), len: 0 };
            let flags = (qjs::JS_GPN_STRING_MASK | qjs::JS_GPN_SYMBOL_MASK) as i32;
            if qjs::JS_GetOwnPropertyNames(ctx, &mut table.tab, &mut table.len, raw, flags) < 0 {
                return Err(exception());
            }
            leaf &= table.len as usize <= LEAF_MAX_PROPERTIES;
            for i in 0..table.len as usize {
                let atom = (*table.tab.add(i)).atom;
                let mut desc = MaybeUninit::<qjs::JSPropertyDescriptor>::zeroed();
                match qjs::JS_GetOwnProperty(ctx, desc.as_mut_ptr(), raw, atom) {
                    r if r < 0 => return Err(exception()),
                    0 => {
                        // Gone (a proxy may say so): not in the descriptors.
                        leaf = false;
                        continue;
                    }
                    _ => {}
                }
                let desc = desc.assume_init();
                let value = Value::from_raw(self.ctx.clone(), desc.value);
                let getter = Value::from_raw(self.ctx.clone(), desc.getter);
                let setter = Value::from_raw(self.ctx.clone(), desc.setter);
                if desc.flags & qjs::JS_PROP_GETSET as i32 != 0 {
                    leaf = false;
                    self.enqueue(getter)?;
                    self.enqueue(setter)?;
                } else {
                    leaf &= !value.is_object();
                    self.enqueue(value)?;
                }
            }
            Ok(leaf)
        }
    }
}

/// `harden(root)`.
pub(crate) fn harden<'js>(ctx: &Ctx<'js>, kit: &HardenKit, root: Value<'js>) -> rquickjs::Result<Value<'js>> {
    if !root.is_object() {
        return Ok(root);
    }
    let hardened = kit.hardened.clone().restore(ctx)?;
    let has = kit.has.clone().restore(ctx)?;
    let mut traversal = Traversal { ctx, kit, hardened, has, queue: Vec::new(), queued: Vec::new(), queued_set: None };
    traversal.enqueue(root.clone())?;
    if traversal.queue.is_empty() {
        return Ok(root); // already hardened
    }
    let freeze_typed_array = kit.freeze_typed_array.clone().restore(ctx)?;
    // The queue grows while it is walked: breadth first, as SES's Set.
    let mut next = 0;
    let mut leaves = Vec::with_capacity(traversal.queue.len());
    while next < traversal.queue.len() {
        let obj = traversal.queue[next].clone();
        next += 1;
        leaves.push(traversal.freeze_and_traverse(&obj, &freeze_typed_array)?);
    }
    let add = kit.add.clone().restore(ctx)?;
    for (value, leaf) in traversal.queue.into_iter().zip(leaves) {
        if !leaf {
            add.call::<_, Value>((This(traversal.hardened.clone()), value))?;
        }
    }
    Ok(root)
}
