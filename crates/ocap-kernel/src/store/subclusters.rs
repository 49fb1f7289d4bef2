//! Subcluster records.

use rusqlite::{params, OptionalExtension};

use super::{Ctx, Store, StoreError};

/// One row of the `subclusters` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubclusterRecord {
    pub id: String,
    /// JSON `ClusterConfig`.
    pub config: String,
    pub system_name: Option<String>,
}

impl Store {
    pub(crate) fn create_subcluster(&self, config: &str, system_name: Option<&str>) -> Result<String, StoreError> {
        let id = format!("s{}", self.next_id("subcluster")?);
        self.conn
            .prepare_cached("INSERT INTO subclusters(id, config, system_name) VALUES (?1, ?2, ?3)")
            .ctx("prepare create subcluster")?
            .execute(params![id, config, system_name])
            .ctx("create subcluster")?;
        Ok(id)
    }

    pub fn subcluster(&self, id: &str) -> Result<Option<SubclusterRecord>, StoreError> {
        self.conn
            .prepare_cached("SELECT id, config, system_name FROM subclusters WHERE id = ?1")
            .ctx("prepare get subcluster")?
            .query_row([id], |r| Ok(SubclusterRecord { id: r.get(0)?, config: r.get(1)?, system_name: r.get(2)? }))
            .optional()
            .ctx("get subcluster")
    }

    pub fn subclusters(&self) -> Result<Vec<SubclusterRecord>, StoreError> {
        let mut stmt =
            self.conn.prepare_cached("SELECT id, config, system_name FROM subclusters").ctx("prepare subclusters")?;
        let rows = stmt
            .query_map([], |r| Ok(SubclusterRecord { id: r.get(0)?, config: r.get(1)?, system_name: r.get(2)? }))
            .ctx("subclusters")?;
        let mut out = rows.collect::<Result<Vec<_>, _>>().ctx("subcluster row")?;
        out.sort_by_key(|s| s.id.trim_start_matches('s').parse::<u64>().unwrap_or(u64::MAX));
        Ok(out)
    }

    pub(crate) fn delete_subcluster(&self, id: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM subclusters WHERE id = ?1")
            .ctx("prepare delete subcluster")?
            .execute([id])
            .ctx("delete subcluster")?;
        Ok(())
    }

    /// Active vats of a subcluster, in launch order, with their names.
    pub fn subcluster_vats(&self, id: &str) -> Result<Vec<(crate::refs::VatId, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, name FROM vats WHERE subcluster = ?1 AND state = 'active'")
            .ctx("prepare subcluster vats")?;
        let rows =
            stmt.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).ctx("subcluster vats")?;
        let mut out = Vec::new();
        for row in rows {
            let (v, name) = row.ctx("subcluster vat row")?;
            out.push((v.parse().map_err(|e| StoreError::Corrupt(format!("vat id: {e}")))?, name));
        }
        out.sort();
        Ok(out)
    }
}
