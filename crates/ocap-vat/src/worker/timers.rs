//! Timers, the host side of `setTimeout` / `setInterval` (`makeTimerEndowments` in
//! js/src/supervisor.js): Rust deadlines kept on the vat thread. The runner's loop wakes for
//! the next one between commands, so a timer never fires inside a delivery: each callback is
//! its own turn, and the syscalls it makes go to the kernel as `WorkerEvent::AsyncSyscalls`.
//! Timers die with the runner. The deadlines themselves are kept in `timer_queue.rs`.

use std::rc::Rc;
use std::time::Duration;

use rquickjs::{Ctx, Function, Object};

use super::host_state::HostState;
use super::js_error::throw;
use crate::MAX_TIMERS_PER_VAT;

/// Installs `timerSet(id, ms, repeat)` and `timerClear(id)` on the host object.
pub(super) fn add_host_functions<'js>(
    ctx: &Ctx<'js>,
    host: &Object<'js>,
    state: Rc<HostState>,
) -> rquickjs::Result<()> {
    let s = state.clone();
    host.set(
        "timerSet",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, id: f64, ms: f64, repeat: bool| -> rquickjs::Result<()> {
            let mut timers = s.timers.borrow_mut();
            if timers.len() >= MAX_TIMERS_PER_VAT {
                return Err(throw(&ctx, &format!("vat {} has too many timers (limit {MAX_TIMERS_PER_VAT})", s.vat_id)));
            }
            let ms = if ms.is_finite() && ms > 0.0 { ms.min(u32::MAX as f64) as u64 } else { 0 };
            timers.set(id as u64, Duration::from_millis(ms), repeat);
            Ok(())
        })?,
    )?;
    let s = state;
    host.set("timerClear", Function::new(ctx.clone(), move |id: f64| s.timers.borrow_mut().clear(id as u64))?)?;
    Ok(())
}

/// Calls the JS callback of timer `id` (the start of its turn; the runner's loop runs it as
/// its own turn when the timer is due, see `Runner::fire_due_timers`).
pub(super) fn fire<'js>(supervisor: &Object<'js>, id: u64) -> rquickjs::Result<()> {
    let f: Function = supervisor.get("fireTimer")?;
    f.call::<_, ()>((id as f64,))
}
