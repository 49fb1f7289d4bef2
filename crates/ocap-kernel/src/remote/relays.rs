//! The relay pool and the hints put in OCAP URLs (remote-comms.md §3.4), as the JS kernel's
//! `remote-comms.ts` keeps them in the KV key `knownRelays`: a JSON list of
//! `{addr, lastSeen, isBootstrap}`. Pure: the caller gives the clock (`now_ms`) and stores the
//! result.

use serde::{Deserialize, Serialize};

/// The KV key of the pool.
pub const KNOWN_RELAYS: &str = "knownRelays";
/// Default cap of the pool (`maxKnownRelays`).
pub const DEFAULT_MAX_KNOWN_RELAYS: usize = 20;
/// Default number of relays named in an issued URL (`maxUrlRelayHints`).
pub const DEFAULT_MAX_URL_RELAY_HINTS: usize = 3;

/// One relay the kernel knows (`RelayEntry`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayEntry {
    /// A multiaddr ending in `/p2p/<relay peer ID>`.
    pub addr: String,
    /// When it was configured or learned, ms since the epoch.
    pub last_seen: f64,
    /// Configured at `initRemoteComms` (rather than learned from a redeemed URL's hints).
    pub is_bootstrap: bool,
}

/// Why a stored pool could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("knownRelays is not a relay list: {0}")]
pub struct RelayPoolError(String);

/// Reads the stored pool: the current format, or the legacy list of addresses (taken with
/// `lastSeen` 0, as the JS kernel migrates it). Entries that are not valid are dropped.
pub fn parse_pool(text: &str) -> Result<Vec<RelayEntry>, RelayPoolError> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| RelayPoolError(e.to_string()))?;
    let items = v.as_array().ok_or_else(|| RelayPoolError("not a list".into()))?;
    Ok(items
        .iter()
        .filter_map(|item| match item {
            serde_json::Value::String(addr) if !addr.is_empty() => {
                Some(RelayEntry { addr: addr.clone(), last_seen: 0.0, is_bootstrap: false })
            }
            other => serde_json::from_value::<RelayEntry>(other.clone())
                .ok()
                .filter(|e| !e.addr.is_empty() && e.last_seen.is_finite() && e.last_seen >= 0.0),
        })
        .collect())
}

/// The pool as stored.
pub fn pool_text(pool: &[RelayEntry]) -> String {
    serde_json::to_string(pool).unwrap_or_else(|_| "[]".into())
}

/// Bootstrap entries first, then the rest by `lastSeen`, newest first; at most `max`.
fn enforce_cap(mut pool: Vec<RelayEntry>, max: usize) -> Vec<RelayEntry> {
    pool.sort_by(|a, b| b.is_bootstrap.cmp(&a.is_bootstrap).then(b.last_seen.total_cmp(&a.last_seen)));
    pool.truncate(max);
    pool
}

/// The pool after `initRemoteComms` with `relays`: each is a bootstrap relay seen now; former
/// bootstrap relays no longer listed become learned ones; the cap is applied.
pub fn with_bootstrap(pool: Vec<RelayEntry>, relays: &[String], now_ms: f64, max: usize) -> Vec<RelayEntry> {
    let mut out: Vec<RelayEntry> = pool
        .into_iter()
        .filter(|e| !relays.contains(&e.addr))
        .map(|e| RelayEntry { is_bootstrap: false, ..e })
        .collect();
    let mut seen = std::collections::HashSet::new();
    for r in relays.iter().filter(|r| !r.is_empty() && seen.insert(r.as_str())) {
        out.push(RelayEntry { addr: r.clone(), last_seen: now_ms, is_bootstrap: true });
    }
    enforce_cap(out, max)
}

/// The pool after learning `addrs` (a redeemed URL's hints): new ones are added, known ones
/// seen now; the cap is applied.
pub fn with_learned(mut pool: Vec<RelayEntry>, addrs: &[String], now_ms: f64, max: usize) -> Vec<RelayEntry> {
    for a in addrs.iter().filter(|a| !a.is_empty()) {
        match pool.iter_mut().find(|e| &e.addr == a) {
            Some(e) => e.last_seen = now_ms,
            None => pool.push(RelayEntry { addr: a.clone(), last_seen: now_ms, is_bootstrap: false }),
        }
    }
    enforce_cap(pool, max)
}

/// The hints an issued URL names: bootstrap relays first, then by `lastSeen`; at most `max`.
pub fn url_hints(pool: &[RelayEntry], max: usize) -> Vec<String> {
    enforce_cap(pool.to_vec(), max).into_iter().map(|e| e.addr).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(addr: &str, last_seen: f64, is_bootstrap: bool) -> RelayEntry {
        RelayEntry { addr: addr.into(), last_seen, is_bootstrap }
    }

    #[test]
    fn bootstrap_relays_are_marked_and_dropped_ones_demoted_3_4() {
        let pool = vec![e("/a", 1.0, true), e("/learned", 5.0, false)];
        let pool = with_bootstrap(pool, &["/b".into(), "/b".into()], 10.0, 20);
        assert_eq!(pool, vec![e("/b", 10.0, true), e("/learned", 5.0, false), e("/a", 1.0, false)]);
    }

    #[test]
    fn the_cap_keeps_bootstrap_relays_then_the_most_recent_3_4() {
        let pool = vec![e("/old", 1.0, false), e("/new", 9.0, false), e("/boot", 0.0, true)];
        assert_eq!(with_learned(pool, &[], 0.0, 2), vec![e("/boot", 0.0, true), e("/new", 9.0, false)]);
    }

    #[test]
    fn learned_hints_are_added_or_refreshed_3_4() {
        let pool = vec![e("/x", 1.0, false)];
        let pool = with_learned(pool, &["/x".into(), "/y".into()], 7.0, 20);
        assert_eq!(pool, vec![e("/x", 7.0, false), e("/y", 7.0, false)]);
        assert_eq!(url_hints(&pool, 1), vec!["/x".to_string()]);
    }

    #[test]
    fn a_legacy_list_of_addresses_is_read_with_last_seen_zero_3_4() {
        assert_eq!(parse_pool(r#"["/a",""]"#).unwrap(), vec![e("/a", 0.0, false)]);
        let text = pool_text(&[e("/b", 3.0, true)]);
        assert_eq!(text, r#"[{"addr":"/b","lastSeen":3.0,"isBootstrap":true}]"#);
        assert_eq!(parse_pool(&text).unwrap(), vec![e("/b", 3.0, true)]);
        assert_eq!(parse_pool(r#"[{"addr":"/c","lastSeen":-1,"isBootstrap":false}]"#).unwrap(), vec![]);
        assert!(parse_pool("{}").is_err());
    }
}
