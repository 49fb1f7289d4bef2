//! Host services the `ocap` binary offers to vats, by name. A cluster gets one only if it
//! lists it in `services` (capabilities are never ambient); the daemon's config can narrow
//! the set.
//!
//! - `clock`: `now()` → milliseconds since the Unix epoch (a vat without the `Date`
//!   endowment has no clock otherwise).
//! - `log`: `info(message)`, `warn(message)`, `error(message)` → the kernel's log, tagged
//!   with the service name.

use std::sync::Arc;

use ocap_kernel::smallcaps::Value;
use ocap_kernel::{KernelService, ServiceRegistration, ServiceReply};

/// The names of the built-in host services.
pub const BUILTIN_SERVICES: [&str; 2] = ["clock", "log"];

struct Clock;

impl KernelService for Clock {
    fn invoke(&self, method: &str, _args: Vec<Value>, reply: ServiceReply) {
        match method {
            "now" => {
                let ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as f64)
                    .unwrap_or(0.0);
                reply.resolve(Value::Number(ms));
            }
            other => reply.reject(Value::error(format!("clock has no method {other:?}"))),
        }
    }
}

struct Log;

impl KernelService for Log {
    fn invoke(&self, method: &str, args: Vec<Value>, reply: ServiceReply) {
        let text = args.iter().map(crate::display::display).collect::<Vec<_>>().join(" ");
        match method {
            "info" => tracing::info!(target: "ocap::service", service = "log", "{text}"),
            "warn" => tracing::warn!(target: "ocap::service", service = "log", "{text}"),
            "error" => tracing::error!(target: "ocap::service", service = "log", "{text}"),
            other => return reply.reject(Value::error(format!("log has no method {other:?}"))),
        }
        reply.resolve(Value::Undefined);
    }
}

/// Registrations for the built-in services named in `only` (all of them if `None`).
/// An unknown name is an error naming it.
pub fn builtin_services(only: Option<&[String]>) -> Result<Vec<ServiceRegistration>, String> {
    let names: Vec<String> = match only {
        Some(list) => list.to_vec(),
        None => BUILTIN_SERVICES.iter().map(|s| s.to_string()).collect(),
    };
    names
        .into_iter()
        .map(|name| {
            let service: Arc<dyn KernelService> = match name.as_str() {
                "clock" => Arc::new(Clock),
                "log" => Arc::new(Log),
                other => {
                    return Err(format!("unknown host service {other:?} (built-in: {})", BUILTIN_SERVICES.join(", ")))
                }
            };
            Ok(ServiceRegistration { name, service, system_only: false })
        })
        .collect()
}
