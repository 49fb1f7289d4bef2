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
//! and the plain data around them: **copyArray** and **copyRecord** as
//! `plain_data.rs` reads them (frozen, the right prototype, only enumerable data
//! properties, no functions in records).
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

use rquickjs::{qjs, Ctx, Function, Persistent, Value};

use crate::plain_data::{plain_parts, Intrinsics, PlainParts};

/// Nesting the native walk handles before handing the rest to the JavaScript.
pub(crate) const MAX_DEPTH: usize = 64;

/// The pass styles the native walk can answer, as JS strings made once.
pub(crate) struct StyleNames {
    undefined: Persistent<rquickjs::String<'static>>,
    null: Persistent<rquickjs::String<'static>>,
    boolean: Persistent<rquickjs::String<'static>>,
    number: Persistent<rquickjs::String<'static>>,
    bigint: Persistent<rquickjs::String<'static>>,
    string: Persistent<rquickjs::String<'static>>,
    copy_array: Persistent<rquickjs::String<'static>>,
    copy_record: Persistent<rquickjs::String<'static>>,
}

impl StyleNames {
    fn new(ctx: &Ctx<'_>) -> rquickjs::Result<StyleNames> {
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
    pub intrinsics: Intrinsics,
    names: StyleNames,
}

impl PassStyleKit {
    /// Captures the realm's intrinsics. Called from trusted prelude code after
    /// lockdown (the prototypes are frozen by then).
    pub(crate) fn new(ctx: &Ctx<'_>) -> rquickjs::Result<PassStyleKit> {
        Ok(PassStyleKit {
            fallback: RefCell::new(None),
            strings_to_fallback: Cell::new(false),
            intrinsics: Intrinsics::new(ctx)?,
            names: StyleNames::new(ctx)?,
        })
    }
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

struct Walk<'a, 'js> {
    ctx: &'a Ctx<'js>,
    kit: &'a PassStyleKit,
}

impl<'js> Walk<'_, 'js> {
    /// What the native walk finds about `value`. Errors are JavaScript
    /// exceptions from the fallback on a nested value.
    fn classify(&self, value: &Value<'js>, depth: usize) -> rquickjs::Result<Found> {
        // SAFETY: reading the tag of a live value.
        let tag = unsafe { qjs::JS_VALUE_GET_NORM_TAG(value.as_raw()) };
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

    /// Shape first (the whole object), then each value in order: the order in
    /// which the JavaScript meets its errors.
    fn classify_object(&self, value: &Value<'js>, depth: usize) -> rquickjs::Result<Found> {
        let found = match plain_parts(self.ctx, &self.kit.intrinsics, value) {
            None => return Ok(Found::Ask),
            Some(PlainParts::Array(values)) => self.check_children(values.iter(), depth, Style::CopyArray)?,
            Some(PlainParts::Record(entries)) => {
                self.check_children(entries.iter().map(|(_, v)| v), depth, Style::CopyRecord)?
            }
        };
        Ok(found)
    }

    /// `style` if every child passes (natively, or by the JavaScript, whose error is
    /// thrown); `TooDeep` as soon as one is.
    fn check_children<'v>(
        &self,
        children: impl Iterator<Item = &'v Value<'js>>,
        depth: usize,
        style: Style,
    ) -> rquickjs::Result<Found>
    where
        'js: 'v,
    {
        for child in children {
            match self.classify(child, depth + 1)? {
                Found::Style(_) => {}
                Found::Ask => drop(self.call_fallback(child)?),
                Found::TooDeep => return Ok(Found::TooDeep),
            }
        }
        Ok(Found::Style(style))
    }

    /// The JavaScript `passStyleOf` on `value`, restored only when it is needed (plain data
    /// never needs it). Cloned out of the kit: it may run `passStyleOf` again (a proxy's trap).
    fn call_fallback(&self, value: &Value<'js>) -> rquickjs::Result<Value<'js>> {
        let fallback = self.kit.fallback.borrow().clone();
        match fallback {
            Some(fallback) => fallback.restore(self.ctx)?.call((value.clone(),)),
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
    let walk = Walk { ctx, kit };
    let style = match walk.classify(&value, 0)? {
        Found::Style(style) => style,
        Found::Ask | Found::TooDeep => return walk.call_fallback(&value),
    };
    let names = &kit.names;
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
