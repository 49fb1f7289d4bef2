//! The OCAP URLs this kernel issued (`ocap_urls`): oid → kref, and whether the URL was revoked.

use rusqlite::{params, OptionalExtension};

use super::{Ctx, Store, StoreError};
use crate::refs::KRef;

/// One issued URL, by its oid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedUrl {
    pub kref: KRef,
    pub revoked: bool,
}

impl Store {
    pub(crate) fn record_ocap_url(&self, oid: &str, kref: KRef) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("INSERT INTO ocap_urls(oid, kref) VALUES (?1, ?2)")
            .ctx("prepare record url")?
            .execute(params![oid, kref.to_string()])
            .ctx("record url")?;
        Ok(())
    }

    /// The URL issued with `oid`, if this kernel issued it.
    pub fn ocap_url(&self, oid: &str) -> Result<Option<IssuedUrl>, StoreError> {
        let row: Option<(String, bool)> = self
            .conn
            .prepare_cached("SELECT kref, revoked FROM ocap_urls WHERE oid = ?1")
            .ctx("prepare get url")?
            .query_row([oid], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .ctx("get url")?;
        row.map(|(kref, revoked)| {
            let kref = kref.parse().map_err(|e| StoreError::Corrupt(format!("url {oid}: {e}")))?;
            Ok(IssuedUrl { kref, revoked })
        })
        .transpose()
    }

    pub(crate) fn set_ocap_url_revoked(&self, oid: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE ocap_urls SET revoked = 1 WHERE oid = ?1")
            .ctx("prepare revoke url")?
            .execute([oid])
            .ctx("revoke url")?;
        Ok(())
    }

    /// How many unrevoked URLs pin `kref`: those pins are not the host's or the vat's to release.
    pub fn live_url_count(&self, kref: KRef) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM ocap_urls WHERE kref = ?1 AND revoked = 0")
            .ctx("prepare live url count")?
            .query_row([kref.to_string()], |r| r.get(0))
            .ctx("live url count")?;
        Ok(n as u64)
    }

    /// Every unrevoked URL's oid and object, in oid order.
    pub fn live_ocap_urls(&self) -> Result<Vec<(String, KRef)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT oid, kref FROM ocap_urls WHERE revoked = 0 ORDER BY oid")
            .ctx("prepare live urls")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).ctx("live urls")?;
        rows.map(|r| {
            let (oid, kref) = r.ctx("live url row")?;
            Ok((oid.clone(), kref.parse().map_err(|e| StoreError::Corrupt(format!("url {oid}: {e}")))?))
        })
        .collect()
    }
}
