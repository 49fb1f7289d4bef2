//! Remote comms, the network-free part (`/work/shared/spec/remote-comms.md`, issue 13): a
//! kernel's identity and the OCAP URLs it issues. Everything here is pure (no store, no
//! network, no clock); randomness comes from the OS unless a caller injects it.
//!
//! - [`identity`] — §1: the Ed25519 key seed and its libp2p peer ID (`12D3KooW…`), the JS
//!   kernel's `fromHex` quirk, BIP39 recovery phrases, incarnation IDs, and the precedence by
//!   which `initRemoteIdentity` picks (and persists) an identity. The caller reads and writes
//!   the kernel KV (`keySeed`, `peerId`, `ocapURLKey`, `incarnationId`).
//! - [`ocap_url`] — §3.1–3.2: `ocap:<oid>@<peerId>[,<relayMultiaddr>]*`, parsing it as the JS
//!   `parseOcapURL` does, and encrypting a kref into an oid (and back) byte-compatibly with the
//!   JS kernel (PBKDF2-HMAC-SHA256 + AES-128-GCM, multibase base58btc).
//!
//! Both reproduce the JS kernel (`MetaMask/ocap-kernel`, `remotes/kernel/remote-comms.ts`,
//! `kernel-utils/src/hex.ts`, `utils/bip39.ts`) closely enough that a JS kernel's identity
//! values load here to the same peer ID and its oids decrypt here (§12.1 item 9); the tests
//! hold vectors produced with the JS libraries. (Redeeming also needs the URL's record in
//! `ocap_urls`, which this kernel keeps for the URLs it issued: a JS kernel's old URLs are not
//! redeemable here, by design, since each URL here holds a pin and can be revoked.)

pub mod envelope;
pub mod identity;
mod js;
pub mod ocap_url;
pub mod relays;

/// The kernel/transport boundary (`ocap_abi::remote`), under the kernel's remote module.
pub mod transport {
    pub use ocap_abi::remote::*;
}
