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
        if self.system_only.contains(&kref) {
            // Only system subclusters may hold it; a URL would hand it to anyone.
            return Err(KernelError::OcapUrl(format!("{kref} is a system-only kernel service; it cannot have a URL")));
        }
        let identity = self.provide_identity(None)?;
        let oid = encrypt_oid(&identity.ocap_url_key, &kref.to_string());
        let url = OcapUrl { oid: oid.clone(), host: identity.peer_id, hints: self.url_relay_hints()? };
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
    /// parse errors; `ocapURL from a host that's not me` (a URL of another kernel, or any URL
    /// before this kernel has an identity: redeeming it needs remote comms); `ocapURL has bad
    /// object reference`; `ocapURL has been revoked`.
    ///
    /// Cheap for anything this kernel did not issue: the oid's length is bounded and it is
    /// looked up in `ocap_urls` before any decoding or key derivation, so a vat holding the
    /// redemption service cannot make the run loop spend long on garbage.
    pub fn redeem_ocap_url(&mut self, url: &str) -> Result<KRef, KernelError> {
        let (_, kref) = self.own_url(url)?;
        Ok(kref)
    }

    /// Revokes a URL this kernel issued: it can no longer be redeemed, and its pin on the
    /// object is released. Errors as for `redeem_ocap_url`; revoking twice is an error.
    pub fn revoke_ocap_url(&mut self, url: &str) -> Result<(), KernelError> {
        let (oid, kref) = self.own_url(url)?;
        self.unit(|k| {
            k.store.set_ocap_url_revoked(&oid)?;
            k.store.adjust_pins(kref, -1)?;
            k.decref(kref)
        })?;
        self.commit()
    }

    /// Every unrevoked URL this kernel issued, with its object, in oid order: how a host finds
    /// (and can revoke) a URL whose text it lost, such as one issued just before a crash.
    pub fn live_ocap_urls(&self) -> Result<Vec<(String, KRef)>, KernelError> {
        let Some(peer_id) = self.peer_id()? else { return Ok(Vec::new()) };
        let urls = self.store.live_ocap_urls()?;
        Ok(urls
            .into_iter()
            .map(|(oid, kref)| (OcapUrl { oid, host: peer_id.clone(), hints: Vec::new() }.to_string(), kref))
            .collect())
    }

    /// Parses a URL and finds what this kernel issued under it, unrevoked: (oid, kref). The
    /// oid must also decrypt to that kref under this kernel's key (a consistency check, done
    /// last because it costs a key derivation).
    fn own_url(&mut self, url: &str) -> Result<(String, KRef), KernelError> {
        let parsed = OcapUrl::parse(url).map_err(|e| KernelError::OcapUrl(e.to_string()))?;
        let not_me = || KernelError::OcapUrl("ocapURL from a host that's not me".into());
        let identity = self.identity()?.ok_or_else(not_me)?;
        if parsed.host != identity.peer_id {
            return Err(not_me());
        }
        let bad = || KernelError::OcapUrl("ocapURL has bad object reference".into());
        if parsed.oid.len() > MAX_OID_CHARS {
            return Err(bad());
        }
        let issued = self.store.ocap_url(&parsed.oid)?.ok_or_else(bad)?;
        if issued.revoked {
            return Err(KernelError::OcapUrl("ocapURL has been revoked".into()));
        }
        let text = decrypt_oid(&identity.ocap_url_key, &parsed.oid).map_err(|_| bad())?;
        if text.parse::<KRef>().ok() != Some(issued.kref) {
            return Err(bad());
        }
        Ok((parsed.oid, issued.kref))
    }
}

/// The longest oid worth looking at: an issued one is ~82 characters (`z` + base58 of 16 + 12
/// + 16 + 16 bytes for a kref of up to 16 characters); longer krefs add a few.
const MAX_OID_CHARS: usize = 160;
