//! C-lists: per-endpoint two-way maps between krefs and erefs, with the reachable flag.

use rusqlite::{params, OptionalExtension};

pub use super::rows::CListEntry;
use super::{Ctx, Store, StoreError};
use crate::refs::{EndpointId, KRef};

fn parse_kref(s: String) -> Result<KRef, StoreError> {
    s.parse().map_err(|e| StoreError::Corrupt(format!("bad kref in c-list: {e}")))
}

/// An eref's direction is its second character (`o+`, `p-`), or third for rrefs (`ro+`).
pub(crate) fn eref_is_export(eref: &str) -> bool {
    let b = eref.as_bytes();
    let i = if b.first() == Some(&b'r') { 2 } else { 1 };
    b.get(i) == Some(&b'+')
}

impl Store {
    /// The entry of `kref` in `endpoint`'s c-list (cached: `row_cache.rs`).
    pub(crate) fn clist_by_kref(&self, endpoint: EndpointId, kref: KRef) -> Result<Option<CListEntry>, StoreError> {
        let known = self.cache.borrow().clist_by_kref(endpoint, kref);
        self.read_through(
            known,
            || self.read_clist_by_kref(endpoint, kref),
            |cache, entry| {
                if let Some(e) = entry {
                    cache.set_clist_by_eref(endpoint, &e.eref, kref);
                }
                cache.set_clist_by_kref(endpoint, kref, entry.clone());
            },
        )
    }

    fn read_clist_by_kref(&self, endpoint: EndpointId, kref: KRef) -> Result<Option<CListEntry>, StoreError> {
        self.conn
            .prepare_cached("SELECT eref, reachable FROM clist WHERE endpoint = ?1 AND kref = ?2")
            .ctx("prepare clist by kref")?
            .query_row(params![endpoint.to_string(), kref.to_string()], |r| {
                Ok(CListEntry { eref: r.get(0)?, reachable: r.get(1)? })
            })
            .optional()
            .ctx("clist by kref")
    }

    /// The kref and reachable flag of `eref` in `endpoint`'s c-list (cached: `row_cache.rs`;
    /// only entries that exist are kept).
    pub(crate) fn clist_by_eref(&self, endpoint: EndpointId, eref: &str) -> Result<Option<(KRef, bool)>, StoreError> {
        let known = {
            let cache = self.cache.borrow();
            cache.clist_by_eref(endpoint, eref).and_then(|kref| match cache.clist_by_kref(endpoint, kref) {
                Some(Some(entry)) if entry.eref == eref => Some(Some((kref, entry.reachable))),
                _ => None,
            })
        };
        self.read_through(
            known,
            || self.read_clist_by_eref(endpoint, eref),
            |cache, row| {
                if let Some((kref, reachable)) = *row {
                    cache.set_clist_by_eref(endpoint, eref, kref);
                    cache.set_clist_by_kref(endpoint, kref, Some(CListEntry { eref: eref.to_owned(), reachable }));
                }
            },
        )
    }

    fn read_clist_by_eref(&self, endpoint: EndpointId, eref: &str) -> Result<Option<(KRef, bool)>, StoreError> {
        let row: Option<(String, bool)> = self
            .conn
            .prepare_cached("SELECT kref, reachable FROM clist WHERE endpoint = ?1 AND eref = ?2")
            .ctx("prepare clist by eref")?
            .query_row(params![endpoint.to_string(), eref], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .ctx("clist by eref")?;
        row.map(|(k, f)| Ok((parse_kref(k)?, f))).transpose()
    }

    pub(crate) fn add_clist(
        &self,
        endpoint: EndpointId,
        kref: KRef,
        eref: &str,
        reachable: bool,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("INSERT INTO clist(endpoint, kref, eref, reachable) VALUES (?1, ?2, ?3, ?4)")
            .ctx("prepare add clist")?
            .execute(params![endpoint.to_string(), kref.to_string(), eref, reachable])
            .ctx("add clist")?;
        let mut cache = self.cache.borrow_mut();
        cache.set_clist_by_kref(endpoint, kref, Some(CListEntry { eref: eref.to_owned(), reachable }));
        cache.set_clist_by_eref(endpoint, eref, kref);
        Ok(())
    }

    pub(crate) fn set_clist_reachable(
        &self,
        endpoint: EndpointId,
        kref: KRef,
        reachable: bool,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE clist SET reachable = ?3 WHERE endpoint = ?1 AND kref = ?2")
            .ctx("prepare set reachable")?
            .execute(params![endpoint.to_string(), kref.to_string(), reachable])
            .ctx("set reachable")?;
        self.cache.borrow_mut().set_clist_reachable(endpoint, kref, reachable);
        Ok(())
    }

    pub(crate) fn delete_clist(&self, endpoint: EndpointId, kref: KRef) -> Result<(), StoreError> {
        self.take_clist(endpoint, kref).map(drop)
    }

    /// Deletes an entry and returns what it was.
    pub(crate) fn take_clist(&self, endpoint: EndpointId, kref: KRef) -> Result<Option<CListEntry>, StoreError> {
        // Read first (usually from the cache): the cache's eref side needs the entry's eref.
        let Some(entry) = self.clist_by_kref(endpoint, kref)? else { return Ok(None) };
        self.conn
            .prepare_cached("DELETE FROM clist WHERE endpoint = ?1 AND kref = ?2")
            .ctx("prepare delete clist")?
            .execute(params![endpoint.to_string(), kref.to_string()])
            .ctx("delete clist")?;
        let mut cache = self.cache.borrow_mut();
        cache.forget_clist_by_eref(endpoint, &entry.eref);
        cache.set_clist_by_kref(endpoint, kref, None);
        Ok(Some(entry))
    }

    /// Endpoints that import `kref` (c-list entries that are not exports), in endpoint order.
    pub(crate) fn importers(&self, kref: KRef) -> Result<Vec<(EndpointId, bool)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT endpoint, eref, reachable FROM clist WHERE kref = ?1 ORDER BY endpoint")
            .ctx("prepare importers")?;
        let rows = stmt
            .query_map([kref.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, bool>(2)?))
            })
            .ctx("importers")?;
        let mut out = Vec::new();
        for row in rows {
            let (ep, eref, reachable) = row.ctx("importer row")?;
            if !eref_is_export(&eref) {
                out.push((ep.parse().map_err(|e| StoreError::Corrupt(format!("importer of {kref}: {e}")))?, reachable));
            }
        }
        Ok(out)
    }

    /// Up to `limit` c-list entries of an endpoint, in eref order (`usize::MAX`: all of them).
    pub(crate) fn clist_entries(
        &self,
        endpoint: EndpointId,
        limit: usize,
    ) -> Result<Vec<(KRef, String, bool)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT kref, eref, reachable FROM clist WHERE endpoint = ?1 ORDER BY eref LIMIT ?2")
            .ctx("prepare clist entries")?;
        let rows = stmt
            .query_map(params![endpoint.to_string(), i64::try_from(limit).unwrap_or(-1)], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, bool>(2)?))
            })
            .ctx("clist entries")?;
        rows.map(|r| {
            let (k, e, f) = r.ctx("clist row")?;
            Ok((parse_kref(k)?, e, f))
        })
        .collect()
    }
}
