//! C-lists: per-endpoint two-way maps between krefs and erefs, with the reachable flag.

use rusqlite::{params, OptionalExtension};

use super::{Ctx, Store, StoreError};
use crate::refs::{EndpointId, KRef};

/// A c-list entry as seen from the kref side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CListEntry {
    pub eref: String,
    pub reachable: bool,
}

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
    pub(crate) fn clist_by_kref(&self, endpoint: EndpointId, kref: KRef) -> Result<Option<CListEntry>, StoreError> {
        self.conn
            .prepare_cached("SELECT eref, reachable FROM clist WHERE endpoint = ?1 AND kref = ?2")
            .ctx("prepare clist by kref")?
            .query_row(params![endpoint.to_string(), kref.to_string()], |r| {
                Ok(CListEntry { eref: r.get(0)?, reachable: r.get(1)? })
            })
            .optional()
            .ctx("clist by kref")
    }

    pub(crate) fn clist_by_eref(&self, endpoint: EndpointId, eref: &str) -> Result<Option<(KRef, bool)>, StoreError> {
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
        Ok(())
    }

    pub(crate) fn delete_clist(&self, endpoint: EndpointId, kref: KRef) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM clist WHERE endpoint = ?1 AND kref = ?2")
            .ctx("prepare delete clist")?
            .execute(params![endpoint.to_string(), kref.to_string()])
            .ctx("delete clist")?;
        Ok(())
    }

    /// Deletes an entry and returns what it was.
    pub(crate) fn take_clist(&self, endpoint: EndpointId, kref: KRef) -> Result<Option<CListEntry>, StoreError> {
        let entry = self.clist_by_kref(endpoint, kref)?;
        if entry.is_some() {
            self.delete_clist(endpoint, kref)?;
        }
        Ok(entry)
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
