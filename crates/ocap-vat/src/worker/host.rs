//! The host object the prelude takes as `globalThis.__ocapHost`: the only way JS reaches
//! Rust. The prelude captures it and deletes the global before any vat code runs, so a vat
//! sees only what the supervisor builds on it.
//!
//! This file holds the functions of the worker's own protocol (syscalls, logs, vatstore, GC
//! requests, the native `harden`); the endowments' host functions are installed from
//! `timers.rs`, `web.rs` and `fetch.rs`. The state they share with the runner is
//! `host_state.rs`.

use std::rc::Rc;

use rquickjs::{Ctx, Function, Object, Persistent, Value};
use serde_json::Value as Json;

use super::host_state::HostState;
use super::js_error::throw;
use super::{fetch, timers, web, DeliveryEvent, SYSCALL_CHUNK};
use crate::WorkerEvent;

/// The object the prelude takes as `globalThis.__ocapHost`.
pub(super) fn make_host<'js>(ctx: &Ctx<'js>, state: Rc<HostState>) -> rquickjs::Result<Object<'js>> {
    let host = Object::new(ctx.clone())?;

    let s = state.clone();
    host.set(
        "syscall",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, json: String| -> rquickjs::Result<()> {
            let vso: Json = serde_json::from_str(&json).map_err(|e| throw(&ctx, &format!("bad syscall JSON: {e}")))?;
            if s.syscall_count.get() >= s.max_syscalls_per_delivery {
                return Err(throw(
                    &ctx,
                    &format!("vat {} exceeded {} syscalls in one delivery", s.vat_id, s.max_syscalls_per_delivery),
                ));
            }
            s.syscall_count.set(s.syscall_count.get() + 1);
            let mut syscalls = s.syscalls.borrow_mut();
            syscalls.push(vso);
            if syscalls.len() >= SYSCALL_CHUNK {
                if let Some(stream) = &*s.syscall_stream.borrow() {
                    // A caller that went away (a dropped prefetch) takes nothing more; the
                    // delivery runs to its end all the same.
                    let _ = stream.send(DeliveryEvent::Syscalls(std::mem::take(&mut *syscalls)));
                }
            }
            Ok(())
        })?,
    )?;

    let s = state.clone();
    host.set(
        "log",
        Function::new(ctx.clone(), move |level: String, tags: String, message: String, data: String| {
            let tags: Vec<String> = serde_json::from_str(&tags).unwrap_or_default();
            let data: Vec<Json> = serde_json::from_str(&data).unwrap_or_default();
            if s.starting.get() {
                tracing::debug!(vat_id = %s.vat_id, %level, ?tags, %message, ?data, "vat prelude log");
                return;
            }
            tracing::trace!(vat_id = %s.vat_id, %level, ?tags, %message, "vat log");
            (s.events)(WorkerEvent::Log { level, tags, message, data });
        })?,
    )?;

    let s = state.clone();
    host.set("vatstoreGet", Function::new(ctx.clone(), move |key: String| s.vatstore.borrow().get(&key))?)?;
    let s = state.clone();
    host.set(
        "vatstoreGetNextKey",
        Function::new(ctx.clone(), move |key: String| s.vatstore.borrow().get_next_key(&key))?,
    )?;
    let s = state.clone();
    host.set(
        "vatstoreSet",
        Function::new(ctx.clone(), move |key: String, value: String| s.vatstore.borrow_mut().set(key, value))?,
    )?;
    let s = state.clone();
    host.set("vatstoreDelete", Function::new(ctx.clone(), move |key: String| s.vatstore.borrow_mut().delete(key))?)?;

    timers::add_host_functions(ctx, &host, state.clone())?;

    let s = state.clone();
    host.set("requestGC", Function::new(ctx.clone(), move || s.gc_requested.set(true))?)?;

    web::add_host_functions(ctx, &host)?;
    fetch::add_host_functions(ctx, &host, state.clone())?;

    add_pass_style_functions(ctx, &host, state.clone())?;
    // For our patch to @endo/eventual-send (js/src/prelude/eventual-send-native.js).
    host.set(
        "nonThenableObject",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, value: Value<'js>| {
            crate::non_thenable::is_non_thenable_object(&ctx, &value)
        })?,
    )?;

    // The `URL` endowment's code, loaded into this realm on first request
    // (src/lazy_module.rs, js/src/web/url.js).
    host.set(
        "loadURLModule",
        Function::new(ctx.clone(), |ctx: Ctx<'js>| -> rquickjs::Result<Object<'js>> {
            crate::lazy_module::load_url_module(&ctx).map_err(|e| throw(&ctx, &e))
        })?,
    )?;

    // SES's source checks find their anchors with it (src/source_scan.rs). A
    // source with a lone surrogate is not UTF-8: `undefined`, and SES searches
    // itself.
    host.set(
        "findAll",
        Function::new(ctx.clone(), |source: rquickjs::String<'js>, needles: Vec<String>| -> Option<Vec<u32>> {
            let source = source.to_string().ok()?;
            Some(crate::source_scan::find_all(&source, &needles))
        })?,
    )?;

    // The native `harden` (src/harden.rs), built by js/src/prelude/harden.js
    // before SES loads.
    let s = state;
    host.set(
        "makeNativeHarden",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  hardened: Object<'js>,
                  has: Function<'js>,
                  add: Function<'js>,
                  freeze_typed_array: Function<'js>|
                  -> rquickjs::Result<Function<'js>> {
                let kit = crate::harden::HardenKit {
                    hardened: Persistent::save(&ctx, hardened),
                    has: Persistent::save(&ctx, has),
                    add: Persistent::save(&ctx, add),
                    freeze_typed_array: Persistent::save(&ctx, freeze_typed_array),
                    prototypes: crate::harden::common_prototypes(&ctx)?,
                    prototypes_hardened: std::cell::Cell::new(0),
                };
                s.harden_kit.replace(Some(Rc::new(kit)));
                // The closure holds only the host state, never JS values (see
                // `HostState::harden_kit`).
                let s = s.clone();
                let harden = Function::new(ctx.clone(), move |ctx: Ctx<'js>, root: Value<'js>| {
                    // Cloned out so no borrow is held while harden runs JS (a proxy
                    // trap may harden again).
                    let kit = s.harden_kit.borrow().clone();
                    match kit {
                        Some(kit) => crate::harden::harden(&ctx, &kit, root),
                        None => Err(throw(&ctx, "harden: the vat is being torn down")),
                    }
                })?;
                harden.set_name("harden")?;
                Ok(harden)
            },
        )?,
    )?;
    Ok(host)
}

/// The native `passStyleOf` (src/pass_style.rs): `makeNativePassStyleOf()` builds it
/// before `@endo/pass-style` loads (js/src/prelude/04-pass-style.js), and
/// `setPassStyleFallback(jsPassStyleOf, onlyWellFormedStrings)` gives it the
/// JavaScript one once the package has (05-pass-style.js).
fn add_pass_style_functions<'js>(ctx: &Ctx<'js>, host: &Object<'js>, state: Rc<HostState>) -> rquickjs::Result<()> {
    let s = state.clone();
    host.set(
        "makeNativePassStyleOf",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>| -> rquickjs::Result<Function<'js>> {
            s.pass_style_kit.replace(Some(Rc::new(crate::pass_style::PassStyleKit::new(&ctx)?)));
            // As `harden`: the closure holds only the host state, never JS values.
            let s = s.clone();
            let pass_style_of = Function::new(ctx.clone(), move |ctx: Ctx<'js>, value: Value<'js>| {
                let kit = s.pass_style_kit.borrow().clone();
                match kit {
                    Some(kit) => crate::pass_style::pass_style_of(&ctx, &kit, value),
                    None => Err(throw(&ctx, "passStyleOf: the vat is being torn down")),
                }
            })?;
            pass_style_of.set_name("passStyleOf")?;
            Ok(pass_style_of)
        })?,
    )?;
    // The native smallcaps codec (src/smallcaps.rs), made after `passStyleOf`
    // (it reads the same intrinsics): `{ encode(value) -> body | undefined,
    // decode(body) -> [value] | undefined }`, `undefined` meaning "the
    // JavaScript does it".
    let s = state.clone();
    host.set(
        "makeNativeSmallcaps",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>| -> rquickjs::Result<Object<'js>> {
            let codec = Object::new(ctx.clone())?;
            let kit = s.clone();
            codec.set(
                "encode",
                Function::new(
                    ctx.clone(),
                    move |ctx: Ctx<'js>, value: Value<'js>| -> rquickjs::Result<Option<String>> {
                        let kit = kit.pass_style_kit.borrow().clone();
                        let Some(kit) = kit else {
                            return Err(throw(&ctx, "smallcaps: the vat is being torn down"));
                        };
                        Ok(crate::smallcaps::encode(&ctx, &kit.intrinsics, &value))
                    },
                )?,
            )?;
            codec.set(
                "decode",
                Function::new(
                    ctx.clone(),
                    move |ctx: Ctx<'js>, body: rquickjs::String<'js>| -> rquickjs::Result<Value<'js>> {
                        let Ok(body) = body.to_string() else {
                            return Ok(Value::new_undefined(ctx.clone()));
                        };
                        match crate::smallcaps::decode(&ctx, &body) {
                            Some(decoded) => {
                                let wrapper = rquickjs::Array::new(ctx.clone())?;
                                wrapper.set(0, decoded)?;
                                Ok(wrapper.into_value())
                            }
                            None => Ok(Value::new_undefined(ctx.clone())),
                        }
                    },
                )?,
            )?;
            Ok(codec)
        })?,
    )?;
    let s = state;
    host.set(
        "setPassStyleFallback",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, fallback: Function<'js>, only_well_formed_strings: bool| -> rquickjs::Result<()> {
                let kit = s.pass_style_kit.borrow().clone();
                let Some(kit) = kit else {
                    return Err(throw(&ctx, "setPassStyleFallback: makeNativePassStyleOf was not called"));
                };
                kit.fallback.replace(Some(Persistent::save(&ctx, fallback)));
                kit.strings_to_fallback.set(only_well_formed_strings);
                Ok(())
            },
        )?,
    )?;
    Ok(())
}
