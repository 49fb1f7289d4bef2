//! What every endpoint has, whatever its kind: a state (active, or terminated and awaiting
//! cleanup) and the counters of the import erefs the kernel allocates for it. Vats keep these
//! in the `vats` table, remotes in `remotes`; the kernel's generic paths (translation, GC,
//! termination, cleanup) call these and never name a table.

use rusqlite::OptionalExtension;

use super::{Ctx, Store, StoreError};
use crate::refs::EndpointId;

/// The table holding an endpoint's row; `None` for the kernel, which has none.
fn table(ep: EndpointId) -> Option<&'static str> {
    match ep {
        EndpointId::Vat(_) => Some("vats"),
        EndpointId::Remote(_) => Some("remotes"),
        EndpointId::Kernel => None,
    }
}

impl Store {
    /// Whether the endpoint exists and is active. The kernel always is.
    pub(crate) fn endpoint_is_active(&self, ep: EndpointId) -> Result<bool, StoreError> {
        let Some(table) = table(ep) else { return Ok(true) };
        let known = self.cache.borrow().endpoint_active(ep);
        self.read_through(
            known,
            || self.read_endpoint_active(table, ep),
            |cache, active| cache.set_endpoint_active(ep, *active),
        )
    }

    fn read_endpoint_active(&self, table: &str, ep: EndpointId) -> Result<bool, StoreError> {
        let sql = match table {
            "vats" => "SELECT state = 'active' FROM vats WHERE id = ?1",
            _ => "SELECT state = 'active' FROM remotes WHERE id = ?1",
        };
        let active: Option<bool> = self
            .conn
            .prepare_cached(sql)
            .ctx("prepare endpoint active")?
            .query_row([ep.to_string()], |r| r.get(0))
            .optional()
            .ctx("endpoint active")?;
        Ok(active == Some(true))
    }

    /// Marks an endpoint terminated: it takes no more deliveries and its c-list is cleaned.
    pub(crate) fn set_endpoint_terminated(&self, ep: EndpointId) -> Result<(), StoreError> {
        let sql = match table(ep) {
            Some("vats") => "UPDATE vats SET state = 'terminated' WHERE id = ?1",
            Some(_) => "UPDATE remotes SET state = 'terminated' WHERE id = ?1",
            None => return Ok(()),
        };
        self.conn.prepare_cached(sql).ctx("prepare terminate endpoint")?.execute([ep.to_string()]).ctx("terminate")?;
        self.cache.borrow_mut().forget_endpoint(ep);
        Ok(())
    }

    /// The first terminated endpoint still awaiting cleanup (vats first, then remotes).
    pub(crate) fn next_terminated_endpoint(&self) -> Result<Option<EndpointId>, StoreError> {
        let row: Option<String> = self
            .conn
            .prepare_cached(
                "SELECT id FROM (SELECT id, 0 AS k FROM vats WHERE state = 'terminated'
                                 UNION ALL SELECT id, 1 AS k FROM remotes WHERE state = 'terminated')
                 ORDER BY k, id LIMIT 1",
            )
            .ctx("prepare next terminated")?
            .query_row([], |r| r.get(0))
            .optional()
            .ctx("next terminated")?;
        row.map(|s| s.parse().map_err(|e| StoreError::Corrupt(format!("endpoint id: {e}")))).transpose()
    }

    /// Deletes a cleaned-up endpoint's row and everything keyed by it.
    pub(crate) fn delete_endpoint(&self, ep: EndpointId) -> Result<(), StoreError> {
        // Forgotten first: whichever statement fails, nothing stale is left.
        self.cache.borrow_mut().forget_endpoint(ep);
        match ep {
            EndpointId::Vat(vat) => self.delete_vat(vat),
            EndpointId::Remote(r) => {
                self.delete_peer(r)?;
                self.conn
                    .prepare_cached("DELETE FROM remotes WHERE id = ?1")
                    .ctx("prepare delete remote")?
                    .execute([ep.to_string()])
                    .ctx("delete remote")?;
                Ok(())
            }
            EndpointId::Kernel => Ok(()),
        }
    }

    /// Allocates the next import eref number for an endpoint (`o-N`/`p-N`, `ro-N`/`rp-N`).
    pub(crate) fn next_import_index(&self, ep: EndpointId, promise: bool) -> Result<u64, StoreError> {
        let (update, read) = match (table(ep), promise) {
            (Some("vats"), true) => (
                "UPDATE vats SET next_promise = next_promise + 1 WHERE id = ?1",
                "SELECT next_promise - 1 FROM vats WHERE id = ?1",
            ),
            (Some("vats"), false) => (
                "UPDATE vats SET next_object = next_object + 1 WHERE id = ?1",
                "SELECT next_object - 1 FROM vats WHERE id = ?1",
            ),
            (Some(_), true) => (
                "UPDATE remotes SET next_promise = next_promise + 1 WHERE id = ?1",
                "SELECT next_promise - 1 FROM remotes WHERE id = ?1",
            ),
            (Some(_), false) => (
                "UPDATE remotes SET next_object = next_object + 1 WHERE id = ?1",
                "SELECT next_object - 1 FROM remotes WHERE id = ?1",
            ),
            (None, _) => return Err(StoreError::Corrupt("the kernel has no c-list to import into".into())),
        };
        let id = ep.to_string();
        let changed =
            self.conn.prepare_cached(update).ctx("prepare import index")?.execute([&id]).ctx("import index")?;
        let read_back = || -> Result<u64, StoreError> {
            let v: i64 = self
                .conn
                .prepare_cached(read)
                .ctx("prepare read import index")?
                .query_row([&id], |r| r.get(0))
                .ctx("read import index")?;
            Ok(v as u64)
        };
        // The value is remembered (`row_cache.rs`), so the read runs once per endpoint.
        let cached = self.cache.borrow().import_index(ep, promise).filter(|_| changed == 1);
        let v = match cached {
            Some(v) => {
                #[cfg(debug_assertions)]
                assert_eq!(v, read_back()?, "row cache: import index of {ep}");
                v
            }
            None => read_back()?,
        };
        self.cache.borrow_mut().set_import_index(ep, promise, v + 1);
        Ok(v)
    }
}
