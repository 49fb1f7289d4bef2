//! `fetch`, host side. The request runs on a thread of its own (`net.rs`), never on the vat
//! thread, so a slow server cannot hold the vat (or, through it, the kernel) up; its outcome
//! comes back as a [`Command::FetchDone`] and settles the JS promise as its own turn. An
//! aborted fetch's outcome is dropped. The runner's `Drop` aborts every fetch in flight.

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rquickjs::{ArrayBuffer, Ctx, Function, Object, Value};

use super::host_state::HostState;
use super::js_error::throw;
use super::web::buffer_bytes;
use super::Command;
use crate::net::{self, FetchResponse, FetchSpec};
use crate::MAX_FETCHES_PER_VAT;

/// Installs `fetchStart(id, spec, body)` and `fetchAbort(id)` on the host object.
pub(super) fn add_host_functions<'js>(
    ctx: &Ctx<'js>,
    host: &Object<'js>,
    state: Rc<HostState>,
) -> rquickjs::Result<()> {
    let s = state.clone();
    host.set(
        "fetchStart",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, id: f64, spec: String, body: Value<'js>| -> rquickjs::Result<()> {
                let spec: FetchSpec =
                    serde_json::from_str(&spec).map_err(|e| throw(&ctx, &format!("bad fetch request: {e}")))?;
                let body = if body.is_undefined() { None } else { Some(buffer_bytes(&ctx, &body, "fetch body")?) };
                if s.fetch_threads.load(Ordering::SeqCst) >= MAX_FETCHES_PER_VAT {
                    return Err(throw(
                        &ctx,
                        &format!("vat {} has too many fetches in flight (limit {MAX_FETCHES_PER_VAT})", s.vat_id),
                    ));
                }
                let id = id as u64;
                let abort = Arc::new(AtomicBool::new(false));
                let tx = s.commands_tx.clone();
                net::spawn_fetch(spec, body, abort.clone(), s.fetch_threads.clone(), move |outcome| {
                    let _ = tx.send(Command::FetchDone { id, outcome });
                })
                .map_err(|e| throw(&ctx, &format!("cannot start a fetch thread: {e}")))?;
                s.fetches.borrow_mut().insert(id, abort);
                Ok(())
            },
        )?,
    )?;
    let s = state;
    host.set(
        "fetchAbort",
        Function::new(ctx.clone(), move |id: f64| {
            if let Some(abort) = s.fetches.borrow_mut().remove(&(id as u64)) {
                abort.store(true, Ordering::SeqCst);
            }
        })?,
    )?;
    Ok(())
}

/// Calls the JS side with the outcome of fetch `id`, settling its promise (the start of a
/// turn: the runner runs it as its own turn, unless the fetch was aborted, see
/// `Runner::settle_fetch`).
pub(super) fn settle<'js>(
    ctx: &Ctx<'js>,
    supervisor: &Object<'js>,
    id: u64,
    outcome: Result<FetchResponse, String>,
) -> rquickjs::Result<()> {
    let f: Function = supervisor.get("fetchSettled")?;
    match outcome {
        Ok(response) => {
            let json = response.outcome_json();
            let body = ArrayBuffer::new(ctx.clone(), response.body)?;
            f.call::<_, ()>((id as f64, json, body))
        }
        Err(error) => {
            let json = serde_json::json!({"ok": false, "error": error}).to_string();
            f.call::<_, ()>((id as f64, json))
        }
    }
}
