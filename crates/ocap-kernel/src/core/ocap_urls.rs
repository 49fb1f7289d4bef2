//! OCAP URLs issued and redeemed by this kernel (remote-comms.md §3.1–3.3), without the
//! network: issuing, redeeming a URL this kernel issued, and revoking one.
//!
//! Unlike the JS kernel (§3.3: "no refcount or pin is taken on the kref", so a URL can
//! outlive its object), an issued URL **pins its object** until the URL is revoked
//! (`revoke_ocap_url`, the control method `revokeOcapURL`, `ocap url revoke`): the `ocap_urls`
//! table records each issue by its oid, so a URL stays redeemable exactly as long as it is not
//! revoked, and a revoked one is refused by name.

use super::{KernelCore, KernelError};
use crate::refs::KRef;
use crate::remote::ocap_url::{decrypt_oid, encrypt_oid, OcapUrl};

impl KernelCore {
    /// Issues a URL for an object (`issueOcapURL`): `ocap:<oid>@<this kernel's peer ID>`. The
    /// object is pinned until the URL is revoked. Makes the kernel's identity if it has none
    /// yet (§1.2). Errors: `NotAnObject`, `UnknownKref`.
    pub fn issue_ocap_url(&mut self, kref: KRef) -> Result<String, KernelError> {
        if kref.is_promise() {
            return Err(KernelError::NotAnObject(kref, "issueOcapURL"));
        }
        self.require_exists(kref)?;
        let identity = self.provide_identity(None)?;
        let oid = encrypt_oid(&identity.ocap_url_key, &kref.to_string());
        let url = OcapUrl { oid: oid.clone(), host: identity.peer_id, hints: Vec::new() };
        self.unit(|k| {
            k.store.record_ocap_url(&oid, kref)?;
            k.store.adjust_pins(kref, 1)?;
            k.incref(kref)
        })?;
        self.commit()?;
        Ok(url.to_string())
    }

    /// The object a URL this kernel issued names (`redeemOcapURL`, local redemption, §3.3).
    /// Errors (`KernelError::OcapUrl`, the JS kernel's texts where it has them): the URL's
    /// parse errors; `ocapURL from a host that's not me` (a URL of another kernel: redeeming
    /// it needs remote comms); `ocapURL has bad object reference`; `ocapURL has been revoked`.
    pub fn redeem_ocap_url(&mut self, url: &str) -> Result<KRef, KernelError> {
        let (oid, kref) = self.own_url(url)?;
        match self.store.ocap_url(&oid)? {
            Some(issued) if issued.revoked => Err(KernelError::OcapUrl("ocapURL has been revoked".into())),
            Some(issued) if issued.kref == kref => Ok(kref),
            _ => Err(KernelError::OcapUrl("ocapURL has bad object reference".into())),
        }
    }

    /// Revokes a URL this kernel issued: it can no longer be redeemed, and its pin on the
    /// object is released. Errors as for `redeem_ocap_url`; revoking twice is an error.
    pub fn revoke_ocap_url(&mut self, url: &str) -> Result<(), KernelError> {
        let (oid, kref) = self.own_url(url)?;
        self.redeem_ocap_url(url)?;
        self.unit(|k| {
            k.store.set_ocap_url_revoked(&oid)?;
            k.store.adjust_pins(kref, -1)?;
            k.decref(kref)
        })?;
        self.commit()
    }

    /// Parses a URL, checks this kernel issued it, and decrypts its oid: (oid, kref).
    fn own_url(&mut self, url: &str) -> Result<(String, KRef), KernelError> {
        let parsed = OcapUrl::parse(url).map_err(|e| KernelError::OcapUrl(e.to_string()))?;
        let identity = self.provide_identity(None)?;
        if parsed.host != identity.peer_id {
            return Err(KernelError::OcapUrl("ocapURL from a host that's not me".into()));
        }
        let bad = || KernelError::OcapUrl("ocapURL has bad object reference".into());
        let text = decrypt_oid(&identity.ocap_url_key, &parsed.oid).map_err(|_| bad())?;
        let kref = text.parse::<KRef>().map_err(|_| bad())?;
        Ok((parsed.oid, kref))
    }
}
