//! Vat records and each vat's private vatstore.

use rusqlite::{params, OptionalExtension};

use super::{Ctx, Store, StoreError};
use crate::refs::{EndpointId, VatId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VatState {
    Active,
    /// Terminated; its c-list entries are being cleaned up in bounded steps.
    Terminated,
}

/// One row of the `vats` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VatRecord {
    pub id: VatId,
    pub name: String,
    pub subcluster: Option<String>,
    /// The vat's config as JSON (the JS kernel's `VatConfig`).
    pub config: String,
    pub state: VatState,
    /// Deliveries between automatic bring-out-your-dead; 0 disables it.
    pub reap_interval: u64,
}

impl Store {
    pub(crate) fn create_vat(&self, rec: &VatRecord) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO vats(id, name, subcluster, config, state, reap_interval, reap_countdown)
                 VALUES (?1, ?2, ?3, ?4, 'active', ?5, ?5)",
            )
            .ctx("prepare create vat")?
            .execute(params![rec.id.to_string(), rec.name, rec.subcluster, rec.config, rec.reap_interval as i64])
            .ctx("create vat")?;
        self.cache.borrow_mut().forget_endpoint(EndpointId::Vat(rec.id));
        Ok(())
    }

    pub fn vat(&self, id: VatId) -> Result<Option<VatRecord>, StoreError> {
        let row = self
            .conn
            .prepare_cached("SELECT name, subcluster, config, state, reap_interval FROM vats WHERE id = ?1")
            .ctx("prepare get vat")?
            .query_row([id.to_string()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .optional()
            .ctx("get vat")?;
        row.map(|(name, subcluster, config, state, reap_interval)| {
            Ok(VatRecord {
                id,
                name,
                subcluster,
                config,
                state: match state.as_str() {
                    "active" => VatState::Active,
                    "terminated" => VatState::Terminated,
                    other => return Err(StoreError::Corrupt(format!("vat {id} has state {other:?}"))),
                },
                reap_interval: reap_interval as u64,
            })
        })
        .transpose()
    }

    pub fn vat_ids(&self) -> Result<Vec<VatId>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT id FROM vats").ctx("prepare vat ids")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).ctx("vat ids")?;
        let mut ids = rows
            .map(|r| r.ctx("vat id row")?.parse().map_err(|e| StoreError::Corrupt(format!("vat id: {e}"))))
            .collect::<Result<Vec<VatId>, _>>()?;
        ids.sort();
        Ok(ids)
    }

    /// Only through `delete_endpoint`, which forgets the vat's cached state first.
    pub(crate) fn delete_vat(&self, id: VatId) -> Result<(), StoreError> {
        for sql in [
            "DELETE FROM vats WHERE id = ?1",
            "DELETE FROM vatstore WHERE vat = ?1",
            "DELETE FROM reap_queue WHERE vat = ?1",
        ] {
            self.conn.prepare_cached(sql).ctx("prepare delete vat")?.execute([id.to_string()]).ctx("delete vat")?;
        }
        Ok(())
    }

    /// Counts one delivery against the vat's reap interval; true when a reap is due.
    pub(crate) fn tick_reap(&self, id: VatId) -> Result<bool, StoreError> {
        let id = id.to_string();
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE vats SET reap_countdown = CASE WHEN reap_countdown <= 1 THEN reap_interval ELSE reap_countdown - 1 END
                 WHERE id = ?1 AND reap_interval > 0",
            )
            .ctx("prepare tick reap")?
            .execute([&id])
            .ctx("tick reap")?;
        if changed == 0 {
            return Ok(false);
        }
        // After the update the countdown equals the interval exactly when it wrapped.
        self.conn
            .prepare_cached("SELECT reap_countdown = reap_interval FROM vats WHERE id = ?1")
            .ctx("prepare read reap")?
            .query_row([&id], |r| r.get(0))
            .ctx("read reap")
    }

    // ---- vatstore --------------------------------------------------------------------

    pub fn vatstore_get(&self, vat: VatId, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .prepare_cached("SELECT value FROM vatstore WHERE vat = ?1 AND key = ?2")
            .ctx("prepare vatstore get")?
            .query_row(params![vat.to_string(), key], |r| r.get(0))
            .optional()
            .ctx("vatstore get")
    }

    pub(crate) fn vatstore_set(&self, vat: VatId, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("INSERT INTO vatstore(vat, key, value) VALUES (?1, ?2, ?3) ON CONFLICT(vat, key) DO UPDATE SET value = ?3")
            .ctx("prepare vatstore set")?
            .execute(params![vat.to_string(), key, value])
            .ctx("vatstore set")?;
        Ok(())
    }

    pub(crate) fn vatstore_delete(&self, vat: VatId, key: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM vatstore WHERE vat = ?1 AND key = ?2")
            .ctx("prepare vatstore delete")?
            .execute(params![vat.to_string(), key])
            .ctx("vatstore delete")?;
        Ok(())
    }

    pub(crate) fn delete_vatstore(&self, vat: VatId) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM vatstore WHERE vat = ?1")
            .ctx("prepare vatstore clear")?
            .execute([vat.to_string()])
            .ctx("vatstore clear")?;
        Ok(())
    }

    /// The smallest key strictly greater than `key` (liveslots' `getNextKey`).
    pub fn vatstore_next_key(&self, vat: VatId, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .prepare_cached("SELECT key FROM vatstore WHERE vat = ?1 AND key > ?2 ORDER BY key LIMIT 1")
            .ctx("prepare vatstore next")?
            .query_row(params![vat.to_string(), key], |r| r.get(0))
            .optional()
            .ctx("vatstore next")
    }

    /// The whole vatstore of a vat, in key order (what `initVat` ships to a worker).
    pub fn vatstore_all(&self, vat: VatId) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT key, value FROM vatstore WHERE vat = ?1 ORDER BY key")
            .ctx("prepare vatstore all")?;
        let rows = stmt.query_map([vat.to_string()], |r| Ok((r.get(0)?, r.get(1)?))).ctx("vatstore all")?;
        rows.collect::<Result<Vec<_>, _>>().ctx("vatstore row")
    }
}
