//! The OCAP URL services vats use (remote-comms.md §3.3): `ocapURLIssuerService.issue(obj)`
//! answers a URL for an object the vat holds; `ocapURLRedemptionService.redeem(url)` answers a
//! presence for the object a URL names. Offered to every kernel (`KernelCore::offer_service`):
//! a subcluster gets them by listing their names in `services`.
//!
//! Like the kernel facet, each call is a job on the run loop (issuing pins the object in a
//! unit of its own), answered through the service's reply; errors are rejections.

use super::run_loop::{LoopHandle, LoopState};
use crate::core::{KernelService, ServiceReply};
use crate::smallcaps::Value;

/// `ocapURLIssuerService`.
pub(crate) struct OcapUrlIssuer {
    run_loop: LoopHandle,
}

/// `ocapURLRedemptionService`.
pub(crate) struct OcapUrlRedeemer {
    run_loop: LoopHandle,
}

impl OcapUrlIssuer {
    pub(crate) const NAME: &'static str = "ocapURLIssuerService";

    pub(crate) fn new(run_loop: LoopHandle) -> Self {
        OcapUrlIssuer { run_loop }
    }
}

impl OcapUrlRedeemer {
    pub(crate) const NAME: &'static str = "ocapURLRedemptionService";

    pub(crate) fn new(run_loop: LoopHandle) -> Self {
        OcapUrlRedeemer { run_loop }
    }
}

fn no_method(service: &str, method: &str, reply: ServiceReply) {
    reply.reject(Value::error(format!("{service} has no method {method:?}")));
}

impl KernelService for OcapUrlIssuer {
    fn invoke(&self, method: &str, args: Vec<Value>, reply: ServiceReply) {
        if method != "issue" {
            return no_method(Self::NAME, method, reply);
        }
        let Some(Value::Remotable { slot, .. }) = args.first() else {
            return reply.reject(Value::error("Argument must be a remotable"));
        };
        // A URL nobody will see would pin its object for good: issue only for a caller
        // waiting on the answer (not for `E.sendOnly`).
        if !reply.wants_answer() {
            return reply.reject(Value::error("issue needs a caller that awaits the URL"));
        }
        let kref = *slot;
        self.run_loop.post(move |st: &mut LoopState| match st.core.issue_ocap_url(kref) {
            Ok(url) => reply.resolve(Value::str(url)),
            Err(e) => reply.reject(Value::error(e.to_string())),
        });
    }
}

impl KernelService for OcapUrlRedeemer {
    fn invoke(&self, method: &str, args: Vec<Value>, reply: ServiceReply) {
        if method != "redeem" {
            return no_method(Self::NAME, method, reply);
        }
        let Some(Value::String(url)) = args.first() else {
            return reply.reject(Value::error("redeem expects an OCAP URL string"));
        };
        let url = url.clone();
        // A URL of another kernel is answered when its host replies (remote-comms.md §3.5).
        self.run_loop.post(move |st: &mut LoopState| {
            st.core.redeem_ocap_url_with(
                &url,
                false,
                Box::new(move |r| match r {
                    Ok(kref) => reply.resolve(Value::presence(kref, None)),
                    Err(e) => reply.reject(Value::error(e)),
                }),
            )
        });
    }
}
