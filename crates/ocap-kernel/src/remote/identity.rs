//! A kernel's network identity (remote-comms.md §1): an Ed25519 key from a 32-byte seed, the
//! libp2p peer ID it gives, the symmetric key for OCAP URL oids, and the incarnation ID.
//!
//! The values live in the kernel KV under [`KEY_SEED`], [`PEER_ID`], [`OCAP_URL_KEY`] and
//! [`INCARNATION_ID`] (§1.1); this module never touches the store. The caller reads them into a
//! [`StoredIdentity`], calls [`select_identity`] (the precedence of the JS
//! `initRemoteIdentity`, §1.2), and writes back [`IdentitySelection::writes`].
//!
//! Hex text is read with the JS kernel's lenient [`from_hex`] (§1.2), so a `keySeed` or
//! `ocapURLKey` written by a JS kernel gives the same bytes, hence the same peer ID and URLs.

use libp2p_identity::Keypair;
use rand::RngCore;
use unicode_normalization::UnicodeNormalization;

use super::js::parse_int_hex_to_u8;

/// KV key of the key seed, hex text (§1.1).
pub const KEY_SEED: &str = "keySeed";
/// KV key of the peer ID, `12D3KooW…` (§1.1).
pub const PEER_ID: &str = "peerId";
/// KV key of the OCAP URL key, hex text of 32 bytes (§1.1).
pub const OCAP_URL_KEY: &str = "ocapURLKey";
/// KV key of the incarnation ID, UUID v4 text (§1.1). Unlike the three above, not kept by
/// `resetStorage` (§1.4).
pub const INCARNATION_ID: &str = "incarnationId";

/// The keys a state reset keeps (§1.4: `resetStorage` without a mnemonic wipes everything
/// else, `incarnationId` included, so peers see the state loss while the identity stays).
pub const KEPT_ON_RESET: [&str; 3] = [KEY_SEED, PEER_ID, OCAP_URL_KEY];

/// Why an identity could not be derived or selected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// [`from_hex`] on text longer than 64 UTF-16 code units (the JS `fromHex` fails its
    /// `assert(len <= 64)`, whose message is `Check failed`).
    #[error("hex text too long: {0} UTF-16 code units, at most 64")]
    HexTooLong(usize),
    /// Not a valid English BIP39 phrase (§1.3): wrong word count, a word outside the list,
    /// irregular whitespace, or a bad checksum. The JS kernel's text.
    #[error("Invalid BIP39 mnemonic")]
    InvalidMnemonic,
    /// [`generate_mnemonic`] asked for a word count BIP39 does not have.
    #[error("a BIP39 mnemonic has 12, 15, 18, 21 or 24 words, not {0}")]
    BadWordCount(usize),
    /// A mnemonic was supplied but an identity is already stored (§1.2 step 1). The JS
    /// kernel's text.
    #[error("Cannot use mnemonic: kernel identity already exists. Use resetStorage to clear existing identity first.")]
    MnemonicWithExistingIdentity,
    /// `peerId` is stored but the named value is not (the JS `kv.getRequired` text).
    #[error("No value found for key {0}.")]
    MissingValue(&'static str),
}

/// `bytes` as lowercase hex, two digits a byte (the JS `toHex`).
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The 32 bytes hex text `s` stands for, exactly as the JS kernel's `fromHex`
/// (`kernel-utils/src/hex.ts`) reads it (§1.2), so a stored or supplied `keySeed` gives the
/// same key here as there:
///
/// - lengths count UTF-16 code units (as JS strings do); more than 64 is an error;
/// - 2-unit groups are read left to right into bytes 0, 1, …; bytes with no group stay 0
///   (`"01"` → `[1, 0 × 31]`); an odd length reads a final 1-unit group (`"abc"` → `ab 0c`);
/// - each group goes through `parseInt(group, 16)` stored into a `Uint8Array`: an unparsable
///   group (`"zz"`) is `NaN`, stored as 0; `parseInt`'s leniencies carry over (leading
///   whitespace and one sign are accepted, a valid prefix is enough: `"1g"` → 1, `"-1"` → 255).
///
/// Errors: [`IdentityError::HexTooLong`].
pub fn from_hex(s: &str) -> Result<[u8; 32], IdentityError> {
    let units: Vec<u16> = s.encode_utf16().collect();
    if units.len() > 64 {
        return Err(IdentityError::HexTooLong(units.len()));
    }
    let mut bytes = [0u8; 32];
    for (byte, group) in bytes.iter_mut().zip(units.chunks(2)) {
        *byte = parse_int_hex_to_u8(group);
    }
    Ok(bytes)
}

/// The libp2p Ed25519 keypair whose secret key is `seed` (RFC 8032: the secret key *is* the
/// 32-byte seed; the JS `generateKeyPairFromSeed('Ed25519', seed)`), §1.2.
pub fn keypair_from_seed(seed: &[u8; 32]) -> Keypair {
    // `ed25519_from_bytes` zeroes what it is given, so give it a copy.
    let mut secret = *seed;
    Keypair::ed25519_from_bytes(&mut secret).expect("any 32 bytes are an Ed25519 secret key")
}

/// The peer ID of the Ed25519 key with secret `seed`, as text: the identity multihash of the
/// protobuf-encoded public key in base58btc, `12D3KooW…` (§1.2; the JS
/// `peerIdFromPrivateKey(key).toString()`).
pub fn peer_id_from_seed(seed: &[u8; 32]) -> String {
    keypair_from_seed(seed).public().to_peer_id().to_base58()
}

/// Splits `mnemonic` into its words as `@scure/bip39` does (§1.3): NFKD-normalised (so a
/// no-break space counts as a space, full-width letters as ASCII), then split on single
/// spaces. `None` when that does not give 12/15/18/21/24 words, or a word is empty or holds
/// other whitespace (leading, trailing or doubled spaces, tabs, newlines) — phrases the
/// `bip39` crate alone would accept.
fn strict_words(mnemonic: &str) -> Option<String> {
    let normalized: String = mnemonic.nfkd().collect();
    let words: Vec<&str> = normalized.split(' ').collect();
    let regular = matches!(words.len(), 12 | 15 | 18 | 21 | 24)
        && words.iter().all(|w| !w.is_empty() && !w.chars().any(char::is_whitespace));
    regular.then_some(normalized)
}

/// Whether `mnemonic` is a valid English BIP39 phrase, as strictly as the JS kernel's
/// `isValidMnemonic` (`@scure/bip39` `validateMnemonic`) judges it (§1.3): see
/// [`seed_from_mnemonic`].
pub fn is_valid_mnemonic(mnemonic: &str) -> bool {
    parse_mnemonic(mnemonic).is_some()
}

fn parse_mnemonic(mnemonic: &str) -> Option<bip39::Mnemonic> {
    let normalized = strict_words(mnemonic)?;
    bip39::Mnemonic::parse_in_normalized(bip39::Language::English, &normalized).ok()
}

/// The Ed25519 seed a recovery phrase stands for (§1.3; the JS `mnemonicToSeed`, whose hex
/// text becomes `keySeed`): the first 32 of the 64 bytes of the standard BIP39 seed
/// (PBKDF2-HMAC-SHA512, 2048 iterations, salt `"mnemonic"`, empty passphrase).
///
/// The phrase must be 12, 15, 18, 21 or 24 words of the English list with a valid checksum,
/// separated by single spaces after NFKD normalisation (as `@scure/bip39` requires: no
/// leading, trailing or repeated whitespace, no tabs); words are case-sensitive.
///
/// Errors: [`IdentityError::InvalidMnemonic`] (`Invalid BIP39 mnemonic`).
pub fn seed_from_mnemonic(mnemonic: &str) -> Result<[u8; 32], IdentityError> {
    let parsed = parse_mnemonic(mnemonic).ok_or(IdentityError::InvalidMnemonic)?;
    let full = parsed.to_seed_normalized("");
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&full[..32]);
    Ok(seed)
}

/// A fresh random English BIP39 phrase of `words` words (12 = 128 bits of entropy, 24 = 256;
/// 15, 18 and 21 are accepted too), words separated by single spaces. The JS kernel's
/// `generateMnemonic(128 | 256)`, §1.3. The kernel never stores it.
///
/// Errors: [`IdentityError::BadWordCount`].
pub fn generate_mnemonic(words: usize) -> Result<String, IdentityError> {
    if !matches!(words, 12 | 15 | 18 | 21 | 24) {
        return Err(IdentityError::BadWordCount(words));
    }
    let mut entropy = [0u8; 32];
    let entropy = &mut entropy[..words / 3 * 4];
    rand::rngs::OsRng.fill_bytes(entropy);
    let mnemonic = bip39::Mnemonic::from_entropy_in(bip39::Language::English, entropy)
        .map_err(|_| IdentityError::BadWordCount(words))?;
    Ok(mnemonic.to_string())
}

/// A fresh incarnation ID: a random UUID v4 in its hyphenated lowercase form (the JS
/// `crypto.randomUUID()`, §1.1, §7).
pub fn new_incarnation_id() -> String {
    incarnation_id_from_random(random_array())
}

fn incarnation_id_from_random(bytes: [u8; 16]) -> String {
    uuid::Builder::from_random_bytes(bytes).into_uuid().hyphenated().to_string()
}

/// 32 random bytes from the OS: a fresh Ed25519 key seed (a relay's, for instance).
pub fn random_key_seed() -> [u8; 32] {
    random_array()
}

fn random_array<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A kernel's identity, as [`select_identity`] settles it (§1.1–1.2).
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    /// The key seed as stored in `keySeed`: hex text, normally 64 lowercase digits, but kept
    /// verbatim as supplied or stored (a test kernel's `"01"` stays `"01"`); read it with
    /// [`from_hex`]. **Secret**.
    pub key_seed: String,
    /// The libp2p peer ID, `12D3KooW…`.
    pub peer_id: String,
    /// The 32-byte key OCAP URL oids are encrypted with (`ocapURLKey`, read with
    /// [`from_hex`]). **Secret**.
    pub ocap_url_key: [u8; 32],
    /// This incarnation's ID, UUID v4 text.
    pub incarnation_id: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("key_seed", &"<secret>")
            .field("peer_id", &self.peer_id)
            .field("ocap_url_key", &"<secret>")
            .field("incarnation_id", &self.incarnation_id)
            .finish()
    }
}

/// The identity values found in the kernel KV (§1.1), `None` where a key is absent. An empty
/// string counts as absent where the JS kernel tests the value's truthiness (`peerId`,
/// `ocapURLKey`, `incarnationId`), as it does there. Its `Debug` hides the secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoredIdentity {
    /// `keySeed`.
    pub key_seed: Option<String>,
    /// `peerId`.
    pub peer_id: Option<String>,
    /// `ocapURLKey`.
    pub ocap_url_key: Option<String>,
    /// `incarnationId`.
    pub incarnation_id: Option<String>,
}

/// What the kernel was started with (§1.2): `Kernel.make`'s `mnemonic` and `keySeed` options.
/// Its `Debug` hides the secrets.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct IdentityOptions<'a> {
    /// A BIP39 recovery phrase (§1.3). Only allowed when no identity is stored. An empty
    /// string counts as none, as in JS.
    pub mnemonic: Option<&'a str>,
    /// A key seed, hex text read with [`from_hex`] and stored verbatim. Used when no identity
    /// is stored and no mnemonic is given.
    pub key_seed: Option<&'a str>,
}

impl std::fmt::Debug for StoredIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = |v: &Option<String>| v.as_ref().map(|_| "<secret>");
        f.debug_struct("StoredIdentity")
            .field("key_seed", &secret(&self.key_seed))
            .field("peer_id", &self.peer_id)
            .field("ocap_url_key", &secret(&self.ocap_url_key))
            .field("incarnation_id", &self.incarnation_id)
            .finish()
    }
}

impl std::fmt::Debug for IdentityOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityOptions")
            .field("mnemonic", &self.mnemonic.map(|_| "<secret>"))
            .field("key_seed", &self.key_seed.map(|_| "<secret>"))
            .finish()
    }
}

/// The outcome of [`select_identity`]: the identity, and the KV writes that make it persistent.
/// Its `Debug` shows only the keys written (the values include secrets).
#[derive(Clone, PartialEq, Eq)]
pub struct IdentitySelection {
    /// The identity to use.
    pub identity: Identity,
    /// `(KV key, value)` pairs to write (some of [`KEY_SEED`], [`PEER_ID`], [`OCAP_URL_KEY`],
    /// [`INCARNATION_ID`], in that order); empty when everything was already stored. Write them
    /// in one transaction.
    pub writes: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for IdentitySelection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.writes.iter().map(|(k, _)| *k).collect();
        f.debug_struct("IdentitySelection").field("identity", &self.identity).field("writes", &keys).finish()
    }
}

/// Settles the kernel's identity from what is stored and what it was started with, with the
/// precedence of the JS `initRemoteIdentity` (§1.2) and `provideIncarnationId` (§1.1):
///
/// 1. a stored `peerId` wins: it is used as stored (not re-derived) with the stored `keySeed`;
///    supplying a mnemonic then is an error;
/// 2. otherwise the key seed is the mnemonic's ([`seed_from_mnemonic`], as 64 hex digits),
/// 3. or else the `key_seed` option (verbatim),
/// 4. or else 32 random bytes as 64 hex digits; the peer ID is derived from it, and both are
///    written;
/// 5. the stored `ocapURLKey` is used (through [`from_hex`]), or 32 random bytes are made and
///    written;
/// 6. the stored `incarnationId` is used, or a new UUID v4 is made and written.
///
/// Randomness comes from the OS; [`select_identity_with`] takes it from the caller.
///
/// Errors: [`IdentityError::MnemonicWithExistingIdentity`] (step 1),
/// [`IdentityError::MissingValue`] (`peerId` stored without `keySeed`),
/// [`IdentityError::InvalidMnemonic`], [`IdentityError::HexTooLong`] (a supplied or stored
/// hex value over 64 characters).
pub fn select_identity(
    stored: &StoredIdentity,
    options: IdentityOptions<'_>,
) -> Result<IdentitySelection, IdentityError> {
    select_identity_with(stored, options, &mut |bytes| rand::rngs::OsRng.fill_bytes(bytes))
}

/// [`select_identity`] with the random bytes (a fresh key seed: 32 bytes; a fresh OCAP URL
/// key: 32; a fresh incarnation ID: 16, in that order) taken from `fill_random`.
pub fn select_identity_with(
    stored: &StoredIdentity,
    options: IdentityOptions<'_>,
    fill_random: &mut dyn FnMut(&mut [u8]),
) -> Result<IdentitySelection, IdentityError> {
    let present = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let mnemonic = options.mnemonic.filter(|m| !m.is_empty());
    let mut writes = Vec::new();

    let (key_seed, peer_id) = match present(&stored.peer_id) {
        Some(peer_id) => {
            if mnemonic.is_some() {
                return Err(IdentityError::MnemonicWithExistingIdentity);
            }
            let key_seed = stored.key_seed.clone().ok_or(IdentityError::MissingValue(KEY_SEED))?;
            (key_seed, peer_id)
        }
        None => {
            let key_seed = match (mnemonic, options.key_seed) {
                (Some(m), _) => to_hex(&seed_from_mnemonic(m)?),
                (None, Some(seed)) => seed.to_owned(),
                (None, None) => {
                    let mut seed = [0u8; 32];
                    fill_random(&mut seed);
                    to_hex(&seed)
                }
            };
            let peer_id = peer_id_from_seed(&from_hex(&key_seed)?);
            writes.push((KEY_SEED, key_seed.clone()));
            writes.push((PEER_ID, peer_id.clone()));
            (key_seed, peer_id)
        }
    };

    let ocap_url_key = match present(&stored.ocap_url_key) {
        Some(hex) => from_hex(&hex)?,
        None => {
            let mut key = [0u8; 32];
            fill_random(&mut key);
            writes.push((OCAP_URL_KEY, to_hex(&key)));
            key
        }
    };

    let incarnation_id = match present(&stored.incarnation_id) {
        Some(id) => id,
        None => {
            let mut bytes = [0u8; 16];
            fill_random(&mut bytes);
            let id = incarnation_id_from_random(bytes);
            writes.push((INCARNATION_ID, id.clone()));
            id
        }
    };

    Ok(IdentitySelection { identity: Identity { key_seed, peer_id, ocap_url_key, incarnation_id }, writes })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// §1.5: `startRelay`'s seed (`RELAY_LOCAL_ID = 200`, then 31 zero bytes).
    const RELAY_PEER_ID: &str = "12D3KooWJBDqsyHQF2MWiCdU4kdqx4zTsSTLRdShg7Ui6CRWB4uc";
    /// §1.3's e2e test phrase (entropy 0x7f × 16).
    const LEGAL_WINNER: &str = "legal winner thank year wave sausage worth useful legal winner thank yellow";
    /// First 32 bytes of `mnemonicToSeedSync(LEGAL_WINNER, '')` from `@scure/bip39` 2.4.0 in
    /// node 20; Python's `hashlib.pbkdf2_hmac('sha512', phrase, b'mnemonic', 2048)` agrees
    /// (full seed `878386ef…bddfb096`). The published BIP39 vectors use the passphrase
    /// `TREZOR` (`2e890581…`), not the kernel's empty one.
    const LEGAL_WINNER_SEED: &str = "878386efb78845b3355bd15ea4d39ef97d179cb712b77d5c12b6be415fffeffe";
    /// `peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', fromHex(LEGAL_WINNER_SEED)))`
    /// with `@libp2p/crypto` 5.1.14 and `@libp2p/peer-id` 6.0.5 (the JS kernel's versions).
    const LEGAL_WINNER_PEER_ID: &str = "12D3KooWPCyWnZCXR3VGdrQjLr5d8TBaAHD956XZvo6xoCXYB5AR";
    /// The same for keySeed `'01'` (`fromHex('01')` = `[1, 0 × 31]`).
    const SEED_01_PEER_ID: &str = "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X";

    fn seed(first: u8) -> [u8; 32] {
        let mut s = [0u8; 32];
        s[0] = first;
        s
    }

    #[test]
    fn relay_seed_gives_the_fixed_relay_peer_id_s1_5() {
        assert_eq!(peer_id_from_seed(&seed(200)), RELAY_PEER_ID);
    }

    #[test]
    fn key_seed_01_gives_the_js_peer_id_s1_2() {
        let bytes = from_hex("01").unwrap();
        assert_eq!(bytes, seed(1));
        assert_eq!(peer_id_from_seed(&bytes), SEED_01_PEER_ID);
    }

    #[test]
    fn peer_id_is_an_ed25519_identity_multihash_s1_2() {
        let id = peer_id_from_seed(&[7; 32]);
        assert!(id.starts_with("12D3KooW"), "{id}");
        assert_eq!(id.len(), 52);
        let keypair = keypair_from_seed(&[7; 32]);
        assert!(keypair.clone().try_into_ed25519().is_ok());
        assert_eq!(keypair.public().to_peer_id().to_string(), id);
    }

    #[test]
    fn from_hex_reproduces_the_js_quirk_s1_2() {
        // Each expected value is `toHex(fromHex(input))` from the JS kernel's hex.ts, run in
        // node 20.
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("0", ""),
            ("01", "01"),
            ("ff", "ff"),
            ("FF", "ff"),
            ("abc", "ab0c"),
            ("0g", "00"),
            ("g0", "00"),
            ("zz", "00"),
            (" 1", "01"),
            ("1 ", "01"),
            ("+f", "0f"),
            ("-f", "f1"),
            ("-1", "ff"),
            ("--", "00"),
            ("-", "00"),
            ("0x", "00"),
            ("x1", "00"),
            ("\t7", "07"),
            ("\u{a0}a", "0a"),
            ("\u{3000}b", "0b"),
            ("\u{feff}c", "0c"),
            ("\u{85}d", "00"),
            ("\u{2028}e", "0e"),
            ("é1", "00"),
            ("1é", "01"),
            ("😀", "00"),
            ("a😀", "0a"),
            (
                "121212121212121212121212121212121212121212121212121212121212123",
                "1212121212121212121212121212121212121212121212121212121212121203",
            ),
            (
                "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff0f",
            ),
        ];
        for (input, prefix) in cases {
            let mut expected = prefix.to_string();
            expected.push_str(&"0".repeat(64 - prefix.len()));
            assert_eq!(to_hex(&from_hex(input).unwrap()), expected, "fromHex({input:?})");
        }
    }

    #[test]
    fn from_hex_length_counts_utf16_units_s1_2() {
        assert_eq!(from_hex(&"0".repeat(64)).unwrap(), [0; 32]);
        assert_eq!(from_hex(&"0".repeat(65)), Err(IdentityError::HexTooLong(65)));
        // 32 emoji are 64 UTF-16 units (accepted, all NaN → 0); 33 are 66.
        assert_eq!(from_hex(&"😀".repeat(32)).unwrap(), [0; 32]);
        assert_eq!(from_hex(&"😀".repeat(33)), Err(IdentityError::HexTooLong(66)));
    }

    #[test]
    fn to_hex_round_trips_through_from_hex() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 37 + 5) as u8);
        let hex = to_hex(&bytes);
        assert_eq!(hex.len(), 64);
        assert_eq!(hex, hex.to_lowercase());
        assert_eq!(from_hex(&hex).unwrap(), bytes);
        assert_eq!(to_hex(&[0, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }

    #[test]
    fn mnemonic_seed_matches_scure_bip39_s1_3() {
        let seed = seed_from_mnemonic(LEGAL_WINNER).unwrap();
        assert_eq!(to_hex(&seed), LEGAL_WINNER_SEED);
        assert_eq!(peer_id_from_seed(&seed), LEGAL_WINNER_PEER_ID);
        // A 24-word phrase works as well.
        let abandon = format!("{}art", "abandon ".repeat(23));
        assert!(seed_from_mnemonic(&abandon).is_ok());
    }

    #[test]
    fn mnemonic_validation_is_as_strict_as_scure_s1_3() {
        // Accept/reject of each phrase checked with `validateMnemonic(m, wordlist)` from
        // `@scure/bip39` 2.4.0 in node 20.
        let nfkd_equivalent = [
            LEGAL_WINNER.to_owned(),
            LEGAL_WINNER.replacen(' ', "\u{a0}", 1), // NFKD turns a no-break space into a space
            LEGAL_WINNER.replacen("legal", "ｌｅｇａｌ", 1), // and full-width letters into ASCII
        ];
        for m in &nfkd_equivalent {
            assert!(is_valid_mnemonic(m), "{m:?}");
            assert_eq!(to_hex(&seed_from_mnemonic(m).unwrap()), LEGAL_WINNER_SEED, "{m:?}");
        }
        assert!(is_valid_mnemonic(&format!("{}about", "abandon ".repeat(11))));
        let rejected = [
            LEGAL_WINNER.replacen(' ', "  ", 1),
            format!(" {LEGAL_WINNER}"),
            format!("{LEGAL_WINNER} "),
            LEGAL_WINNER.replacen(' ', "\t", 1),
            LEGAL_WINNER.replacen(' ', "\n", 1),
            LEGAL_WINNER.replace("yellow", "wave"), // bad checksum
            LEGAL_WINNER.to_uppercase(),
            "legal winner thank".to_owned(),
            String::new(),
            format!("{LEGAL_WINNER} legal"),
            LEGAL_WINNER.replace("yellow", "yellowish"),
        ];
        for m in &rejected {
            assert!(!is_valid_mnemonic(m), "{m:?}");
            assert_eq!(seed_from_mnemonic(m), Err(IdentityError::InvalidMnemonic), "{m:?}");
        }
        assert_eq!(IdentityError::InvalidMnemonic.to_string(), "Invalid BIP39 mnemonic");
    }

    #[test]
    fn generated_mnemonics_are_valid_s1_3() {
        for words in [12, 15, 18, 21, 24] {
            let m = generate_mnemonic(words).unwrap();
            assert_eq!(m.split(' ').count(), words, "{m}");
            assert!(is_valid_mnemonic(&m), "{m}");
        }
        assert_ne!(generate_mnemonic(12).unwrap(), generate_mnemonic(12).unwrap());
        assert_eq!(generate_mnemonic(13), Err(IdentityError::BadWordCount(13)));
        assert_eq!(generate_mnemonic(0), Err(IdentityError::BadWordCount(0)));
    }

    #[test]
    fn incarnation_ids_are_uuid_v4() {
        let id = new_incarnation_id();
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(id, parsed.hyphenated().to_string());
        assert_ne!(id, new_incarnation_id());
        assert_eq!(incarnation_id_from_random([0xff; 16]), "ffffffff-ffff-4fff-bfff-ffffffffffff");
    }

    /// Deterministic "randomness": each call fills with the next byte value.
    fn counter() -> impl FnMut(&mut [u8]) {
        let mut next = 0xa0u8;
        move |bytes: &mut [u8]| {
            bytes.fill(next);
            next += 1;
        }
    }

    fn stored(key_seed: &str, peer_id: &str, url_key: &str, incarnation: &str) -> StoredIdentity {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        StoredIdentity {
            key_seed: opt(key_seed),
            peer_id: opt(peer_id),
            ocap_url_key: opt(url_key),
            incarnation_id: opt(incarnation),
        }
    }

    #[test]
    fn fresh_identity_is_random_and_written_s1_2_step_4() {
        let sel = select_identity_with(&StoredIdentity::default(), IdentityOptions::default(), &mut counter()).unwrap();
        let id = &sel.identity;
        assert_eq!(id.key_seed, "a0".repeat(32));
        assert_eq!(id.peer_id, peer_id_from_seed(&[0xa0; 32]));
        assert_eq!(id.ocap_url_key, [0xa1; 32]);
        assert_eq!(id.incarnation_id, incarnation_id_from_random([0xa2; 16]));
        assert_eq!(
            sel.writes,
            vec![
                (KEY_SEED, id.key_seed.clone()),
                (PEER_ID, id.peer_id.clone()),
                (OCAP_URL_KEY, "a1".repeat(32)),
                (INCARNATION_ID, id.incarnation_id.clone()),
            ]
        );
        // With the OS's randomness: two fresh kernels differ.
        let a = select_identity(&StoredIdentity::default(), IdentityOptions::default()).unwrap();
        let b = select_identity(&StoredIdentity::default(), IdentityOptions::default()).unwrap();
        assert_ne!(a.identity.peer_id, b.identity.peer_id);
        assert_ne!(a.identity.ocap_url_key, b.identity.ocap_url_key);
        assert_eq!(a.identity.key_seed.len(), 64);
    }

    #[test]
    fn stored_identity_wins_and_writes_nothing_s1_2_step_1() {
        let s = stored("01", "12D3KooWStoredAsIs", &"0b".repeat(32), "inc-1");
        // The keySeed option is ignored once an identity exists; the stored peer ID is used
        // as stored, not re-derived.
        let options = IdentityOptions { mnemonic: None, key_seed: Some("02") };
        let sel = select_identity_with(&s, options, &mut counter()).unwrap();
        assert_eq!(
            sel.identity,
            Identity {
                key_seed: "01".into(),
                peer_id: "12D3KooWStoredAsIs".into(),
                ocap_url_key: [0x0b; 32],
                incarnation_id: "inc-1".into(),
            }
        );
        assert!(sel.writes.is_empty());
    }

    #[test]
    fn mnemonic_with_existing_identity_is_refused_s1_2_step_1() {
        let s = stored("01", SEED_01_PEER_ID, "", "");
        let err = select_identity(&s, IdentityOptions { mnemonic: Some(LEGAL_WINNER), key_seed: None }).unwrap_err();
        assert_eq!(err, IdentityError::MnemonicWithExistingIdentity);
        assert_eq!(
            err.to_string(),
            "Cannot use mnemonic: kernel identity already exists. Use resetStorage to clear existing identity first."
        );
        // An empty mnemonic is no mnemonic (JS truthiness).
        assert!(select_identity(&s, IdentityOptions { mnemonic: Some(""), key_seed: None }).is_ok());
    }

    #[test]
    fn stored_peer_id_without_key_seed_is_an_error() {
        let s = stored("", "12D3KooWx", "", "");
        let err = select_identity(&s, IdentityOptions::default()).unwrap_err();
        assert_eq!(err.to_string(), "No value found for key keySeed.");
    }

    #[test]
    fn mnemonic_seeds_a_new_identity_s1_2_step_2() {
        // The mnemonic wins over the keySeed option.
        let options = IdentityOptions { mnemonic: Some(LEGAL_WINNER), key_seed: Some("01") };
        let sel = select_identity_with(&StoredIdentity::default(), options, &mut counter()).unwrap();
        assert_eq!(sel.identity.key_seed, LEGAL_WINNER_SEED);
        assert_eq!(sel.identity.peer_id, LEGAL_WINNER_PEER_ID);
        // No random seed was drawn: the first random fill went to the URL key.
        assert_eq!(sel.identity.ocap_url_key, [0xa0; 32]);
        assert_eq!(sel.writes[0], (KEY_SEED, LEGAL_WINNER_SEED.to_owned()));
        assert_eq!(sel.writes[1], (PEER_ID, LEGAL_WINNER_PEER_ID.to_owned()));

        let bad = IdentityOptions { mnemonic: Some("legal winner"), key_seed: None };
        assert_eq!(select_identity(&StoredIdentity::default(), bad), Err(IdentityError::InvalidMnemonic));
    }

    #[test]
    fn key_seed_option_is_used_verbatim_s1_2_step_3() {
        let options = IdentityOptions { mnemonic: None, key_seed: Some("01") };
        // A stored URL key and incarnation (e.g. after a partial write) are kept.
        let s = stored("", "", "ff", "inc-2");
        let sel = select_identity_with(&s, options, &mut counter()).unwrap();
        assert_eq!(sel.identity.key_seed, "01");
        assert_eq!(sel.identity.peer_id, SEED_01_PEER_ID);
        assert_eq!(sel.identity.ocap_url_key, seed(0xff));
        assert_eq!(sel.identity.incarnation_id, "inc-2");
        assert_eq!(sel.writes, vec![(KEY_SEED, "01".to_owned()), (PEER_ID, SEED_01_PEER_ID.to_owned())]);

        let too_long = "0".repeat(65);
        let options = IdentityOptions { mnemonic: None, key_seed: Some(&too_long) };
        assert_eq!(select_identity(&StoredIdentity::default(), options), Err(IdentityError::HexTooLong(65)));
    }

    #[test]
    fn reset_storage_keeps_identity_but_not_incarnation_s1_4() {
        // After `resetStorage` without a mnemonic only keySeed, peerId and ocapURLKey remain:
        // the same identity comes back with a new incarnation ID.
        let first = select_identity(&StoredIdentity::default(), IdentityOptions::default()).unwrap();
        let kept = StoredIdentity {
            key_seed: Some(first.identity.key_seed.clone()),
            peer_id: Some(first.identity.peer_id.clone()),
            ocap_url_key: Some(to_hex(&first.identity.ocap_url_key)),
            incarnation_id: None,
        };
        let again = select_identity(&kept, IdentityOptions::default()).unwrap();
        assert_eq!(again.identity.peer_id, first.identity.peer_id);
        assert_eq!(again.identity.ocap_url_key, first.identity.ocap_url_key);
        assert_ne!(again.identity.incarnation_id, first.identity.incarnation_id);
        assert_eq!(again.writes, vec![(INCARNATION_ID, again.identity.incarnation_id.clone())]);
    }

    #[test]
    fn debug_hides_secrets() {
        let sel = select_identity(&StoredIdentity::default(), IdentityOptions::default()).unwrap();
        let text = format!("{:?}", sel.identity);
        assert!(!text.contains(&sel.identity.key_seed), "{text}");
        assert!(text.contains(&sel.identity.peer_id));
    }
}
