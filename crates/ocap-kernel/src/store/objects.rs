//! Kernel objects: owner, SwingSet reachable/recognizable counts, revocation and pins.

use rusqlite::{params, OptionalExtension};

pub use super::rows::ObjectRecord;
use super::{Ctx, Store, StoreError};
use crate::refs::{EndpointId, KRef};

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
        let row = ObjectRecord { owner: Some(owner), reachable: 0, recognizable: 0, revoked: false, pins: 0 };
        self.cache.borrow_mut().set_object(id, Some(row));
        Ok(KRef::Object(id))
    }

    /// An object's row (cached: `row_cache.rs`).
    pub fn object(&self, kref: KRef) -> Result<Option<ObjectRecord>, StoreError> {
        let known = self.cache.borrow().object(kref.id());
        self.read_through(known, || self.read_object(kref), |cache, row| cache.set_object(kref.id(), row.clone()))
    }

    fn read_object(&self, kref: KRef) -> Result<Option<ObjectRecord>, StoreError> {
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
            Ok::<_, StoreError>(ObjectRecord {
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
        let mut cache = self.cache.borrow_mut();
        if changed == 0 {
            cache.set_object(kref.id(), None);
            return Ok(None);
        }
        let mut counts = None;
        cache.update_object(kref.id(), |row| {
            row.reachable = row.reachable.saturating_add_signed(d_reachable);
            row.recognizable = row.recognizable.saturating_add_signed(d_recognizable);
            counts = Some((row.reachable, row.recognizable));
        });
        drop(cache);
        match counts {
            Some(counts) => Ok(Some(counts)),
            // Not cached: read the row (the counts just written with it).
            None => Ok(self.object(kref)?.map(|r| (r.reachable, r.recognizable))),
        }
    }

    pub(crate) fn set_object_owner(&self, kref: KRef, owner: Option<EndpointId>) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE objects SET owner = ?2 WHERE id = ?1")
            .ctx("prepare set owner")?
            .execute(params![kref.id() as i64, owner.map(|o| o.to_string())])
            .ctx("set owner")?;
        self.cache.borrow_mut().update_object(kref.id(), |row| row.owner = owner);
        Ok(())
    }

    pub(crate) fn set_object_revoked(&self, kref: KRef) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE objects SET revoked = 1 WHERE id = ?1")
            .ctx("prepare revoke")?
            .execute([kref.id() as i64])
            .ctx("revoke")?;
        self.cache.borrow_mut().update_object(kref.id(), |row| row.revoked = true);
        Ok(())
    }

    pub(crate) fn adjust_pins(&self, kref: KRef, delta: i64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE objects SET pins = pins + ?2 WHERE id = ?1")
            .ctx("prepare pin")?
            .execute(params![kref.id() as i64, delta])
            .map_err(|e| StoreError::Corrupt(format!("pin count of {kref} out of range: {e}")))?;
        self.cache.borrow_mut().update_object(kref.id(), |row| row.pins = row.pins.saturating_add_signed(delta));
        Ok(())
    }

    pub(crate) fn delete_object(&self, kref: KRef) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM objects WHERE id = ?1")
            .ctx("prepare delete object")?
            .execute([kref.id() as i64])
            .ctx("delete object")?;
        self.cache.borrow_mut().set_object(kref.id(), None);
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
