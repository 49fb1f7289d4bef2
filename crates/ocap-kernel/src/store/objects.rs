//! Kernel objects: owner, SwingSet reachable/recognizable counts, revocation and pins.

use rusqlite::{params, OptionalExtension};

use super::{Ctx, Store, StoreError};
use crate::refs::{EndpointId, KRef};

/// One row of the `objects` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRecord {
    /// `None` once orphaned (the exporter abandoned it or was terminated).
    pub owner: Option<EndpointId>,
    pub reachable: u64,
    pub recognizable: u64,
    pub revoked: bool,
    pub pins: u64,
}

pub(crate) fn parse_endpoint(s: Option<String>) -> Result<Option<EndpointId>, StoreError> {
    s.map(|s| s.parse().map_err(|e| StoreError::Corrupt(format!("bad endpoint in store: {e}")))).transpose()
}

impl Store {
    pub(crate) fn create_object(&self, owner: EndpointId) -> Result<KRef, StoreError> {
        let id = self.next_id("object")?;
        self.conn
            .prepare_cached("INSERT INTO objects(id, owner) VALUES (?1, ?2)")
            .ctx("prepare create object")?
            .execute(params![id as i64, owner.to_string()])
            .ctx("create object")?;
        Ok(KRef::Object(id))
    }

    pub fn object(&self, kref: KRef) -> Result<Option<ObjectRecord>, StoreError> {
        let row = self
            .conn
            .prepare_cached("SELECT owner, reachable, recognizable, revoked, pins FROM objects WHERE id = ?1")
            .ctx("prepare get object")?
            .query_row([kref.id() as i64], |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .optional()
            .ctx("get object")?;
        row.map(|(owner, reachable, recognizable, revoked, pins)| {
            Ok(ObjectRecord {
                owner: parse_endpoint(owner)?,
                reachable: reachable as u64,
                recognizable: recognizable as u64,
                revoked,
                pins: pins as u64,
            })
        })
        .transpose()
    }

    /// Adds to the counts; returns the new `(reachable, recognizable)`, or `None` if the object
    /// no longer exists (decrements on a deleted object are no-ops, as in SwingSet).
    pub(crate) fn adjust_object(
        &self,
        kref: KRef,
        d_reachable: i64,
        d_recognizable: i64,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE objects SET reachable = reachable + ?2, recognizable = recognizable + ?3 WHERE id = ?1",
            )
            .ctx("prepare adjust object")?
            .execute(params![kref.id() as i64, d_reachable, d_recognizable])
            .map_err(|e| {
                StoreError::Corrupt(format!(
                    "refcount of {kref} would go out of range ({d_reachable},{d_recognizable}): {e}"
                ))
            })?;
        if changed == 0 {
            return Ok(None);
        }
        let (a, b): (i64, i64) = self
            .conn
            .prepare_cached("SELECT reachable, recognizable FROM objects WHERE id = ?1")
            .ctx("prepare read object counts")?
            .query_row([kref.id() as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .ctx("read object counts")?;
        Ok(Some((a as u64, b as u64)))
    }

    pub(crate) fn set_object_owner(&self, kref: KRef, owner: Option<EndpointId>) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE objects SET owner = ?2 WHERE id = ?1")
            .ctx("prepare set owner")?
            .execute(params![kref.id() as i64, owner.map(|o| o.to_string())])
            .ctx("set owner")?;
        Ok(())
    }

    pub(crate) fn set_object_revoked(&self, kref: KRef) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE objects SET revoked = 1 WHERE id = ?1")
            .ctx("prepare revoke")?
            .execute([kref.id() as i64])
            .ctx("revoke")?;
        Ok(())
    }

    pub(crate) fn adjust_pins(&self, kref: KRef, delta: i64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE objects SET pins = pins + ?2 WHERE id = ?1")
            .ctx("prepare pin")?
            .execute(params![kref.id() as i64, delta])
            .map_err(|e| StoreError::Corrupt(format!("pin count of {kref} out of range: {e}")))?;
        Ok(())
    }

    pub(crate) fn delete_object(&self, kref: KRef) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM objects WHERE id = ?1")
            .ctx("prepare delete object")?
            .execute([kref.id() as i64])
            .ctx("delete object")?;
        Ok(())
    }

    /// Objects exported by an endpoint (owner = endpoint).
    pub(crate) fn objects_owned_by(&self, owner: EndpointId) -> Result<Vec<KRef>, StoreError> {
        let mut stmt =
            self.conn.prepare_cached("SELECT id FROM objects WHERE owner = ?1 ORDER BY id").ctx("prepare owned")?;
        let rows = stmt.query_map([owner.to_string()], |r| r.get::<_, i64>(0)).ctx("owned")?;
        rows.map(|r| r.map(|id| KRef::Object(id as u64)).ctx("owned row")).collect()
    }
}
