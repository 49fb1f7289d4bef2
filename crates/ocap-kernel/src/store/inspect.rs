//! Read-only views of the tables for tools and tests: the sections of `ocap inspect`, the
//! leak counts of `ocap bench`, the row counts tests compare. The kernel never calls these;
//! they are here so that no SQL lives outside `store/` (issue 12), and a schema change is
//! made in one directory.
//!
//! Rows are shown as stored: references as their text (`ko3`, `v1`), so a damaged database
//! can still be looked at. A `limit` of `None` means every row.

use rusqlite::{params, Row};

use super::{Ctx, GcActionKind, Store, StoreError};
use crate::refs::{KRef, VatId, ROOT_OBJECT_VREF};

/// A row of `objects`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRow {
    /// `koN`.
    pub kref: String,
    /// `vN`, `kernel`, or `None` once orphaned (its exporter is gone).
    pub owner: Option<String>,
    pub reachable: u64,
    pub recognizable: u64,
    pub revoked: bool,
    pub pins: u64,
}

/// A row of `promises`, with its subscribers and the number of messages parked on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromiseRow {
    /// `kpN`.
    pub kpid: String,
    /// `unresolved`, `fulfilled` or `rejected`.
    pub state: String,
    /// `vN`, `kernel`, or `None` (not yet delivered, or settled).
    pub decider: Option<String>,
    pub refcount: u64,
    /// Whether the host awaits it.
    pub host_watch: bool,
    /// The subscribed vats (`vN`), in key order.
    pub subscribers: Vec<String>,
    /// Messages parked on it (`promise_queue`).
    pub queued: u64,
    /// The settlement, as CapData JSON (`{"body": …, "slots": […]}`), once settled.
    pub value: Option<String>,
}

/// A row of `clist`: `endpoint` (`vN`, `kernel`, …) maps `kref` to `eref` (`o+0`, `p-3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CListRow {
    pub endpoint: String,
    pub kref: String,
    pub eref: String,
    pub reachable: bool,
}

/// A row of `run_queue`: `item` is the JS kernel's `RunQueueItem` JSON
/// (`{"type": "send", "target": "ko3", "message": {…}}`, `{"type": "notify", …}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunQueueRow {
    pub seq: u64,
    pub item: String,
}

/// A row of `gc_actions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcActionRow {
    pub endpoint: String,
    pub kind: GcActionKind,
    pub kref: String,
}

/// A count column (SQLite has no unsigned integers; the schema keeps counts non-negative).
fn count(r: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    let n: i64 = r.get(i)?;
    u64::try_from(n).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, n))
}

/// SQLite's "no limit" is a negative one.
fn sql_limit(limit: Option<u32>) -> i64 {
    limit.map_or(-1, i64::from)
}

impl Store {
    /// The number of rows of every table of the schema, by table name:
    /// `[("clist", 12), ("counters", 9), …, ("vatstore", 40)]`.
    pub fn row_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let tables: Vec<String> = self
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' ORDER BY name")
            .ctx("prepare table names")?
            .query_map([], |r| r.get(0))
            .ctx("table names")?
            .collect::<Result<_, _>>()
            .ctx("table names")?;
        tables
            .into_iter()
            .map(|t| {
                let sql = format!("SELECT count(*) FROM \"{}\"", t.replace('"', "\"\""));
                let n = self.conn.query_row(&sql, [], |r| count(r, 0)).ctx("count rows")?;
                Ok((t, n))
            })
            .collect()
    }

    /// The first `limit` objects, by number.
    pub fn object_rows(&self, limit: Option<u32>) -> Result<Vec<ObjectRow>, StoreError> {
        let sql = "SELECT 'ko' || id, owner, reachable, recognizable, revoked, pins FROM objects ORDER BY id LIMIT ?1";
        self.rows(sql, params![sql_limit(limit)], "object rows", |r| {
            Ok(ObjectRow {
                kref: r.get(0)?,
                owner: r.get(1)?,
                reachable: count(r, 2)?,
                recognizable: count(r, 3)?,
                revoked: r.get(4)?,
                pins: count(r, 5)?,
            })
        })
    }

    /// The first `limit` promises, by number.
    pub fn promise_rows(&self, limit: Option<u32>) -> Result<Vec<PromiseRow>, StoreError> {
        let sql = "SELECT 'kp' || p.id, p.state, p.decider, p.refcount, p.host_watch, \
                   coalesce((SELECT group_concat(vat, ',') FROM promise_subscribers s WHERE s.kpid = p.id), ''), \
                   (SELECT count(*) FROM promise_queue q WHERE q.kpid = p.id), p.value \
                   FROM promises p ORDER BY p.id LIMIT ?1";
        self.rows(sql, params![sql_limit(limit)], "promise rows", |r| {
            let subscribers: String = r.get(5)?;
            Ok(PromiseRow {
                kpid: r.get(0)?,
                state: r.get(1)?,
                decider: r.get(2)?,
                refcount: count(r, 3)?,
                host_watch: r.get(4)?,
                subscribers: subscribers.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
                queued: count(r, 6)?,
                value: r.get(7)?,
            })
        })
    }

    /// The first `limit` c-list entries, of every endpoint or of `endpoint` only, by
    /// endpoint then kref (`ko2` before `ko10`).
    pub fn clist_rows(&self, endpoint: Option<&str>, limit: Option<u32>) -> Result<Vec<CListRow>, StoreError> {
        let sql = "SELECT endpoint, kref, eref, reachable FROM clist WHERE ?2 IS NULL OR endpoint = ?2 \
                   ORDER BY endpoint, length(kref), kref LIMIT ?1";
        self.rows(sql, params![sql_limit(limit), endpoint], "c-list rows", |r| {
            Ok(CListRow { endpoint: r.get(0)?, kref: r.get(1)?, eref: r.get(2)?, reachable: r.get(3)? })
        })
    }

    /// The first `limit` run-queue items, in delivery order.
    pub fn run_queue_rows(&self, limit: Option<u32>) -> Result<Vec<RunQueueRow>, StoreError> {
        let sql = "SELECT seq, item FROM run_queue ORDER BY seq LIMIT ?1";
        self.rows(sql, params![sql_limit(limit)], "run-queue rows", |r| {
            Ok(RunQueueRow { seq: count(r, 0)?, item: r.get(1)? })
        })
    }

    /// The first `limit` pending GC actions, by endpoint then kref.
    pub fn gc_action_rows(&self, limit: Option<u32>) -> Result<Vec<GcActionRow>, StoreError> {
        let sql = "SELECT endpoint, kind, kref FROM gc_actions ORDER BY endpoint, kref LIMIT ?1";
        self.rows(sql, params![sql_limit(limit)], "gc-action rows", |r| {
            let kind = match r.get::<_, i64>(1)? {
                0 => GcActionKind::DropExport,
                1 => GcActionKind::RetireExport,
                _ => GcActionKind::RetireImport,
            };
            Ok(GcActionRow { endpoint: r.get(0)?, kind, kref: r.get(2)? })
        })
    }

    /// The keys of `kv` (kernel settings: `service.<name>`, `io.<subcluster>.<name>`, …),
    /// sorted.
    pub fn kv_keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.kv_with_prefix("")?.into_iter().map(|(key, _)| key).collect())
    }

    /// The kref of `vat`'s root object (its export `o+0`), once it has one.
    pub fn vat_root_kref(&self, vat: VatId) -> Result<Option<KRef>, StoreError> {
        Ok(self.clist_by_eref(vat.into(), ROOT_OBJECT_VREF)?.map(|(kref, _)| kref))
    }

    fn rows<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        op: &'static str,
        row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut stmt = self.conn.prepare(sql).ctx(op)?;
        let rows = stmt.query_map(params, row).ctx(op)?;
        rows.collect::<Result<_, _>>().ctx(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_store_has_no_rows_and_counts_every_table() {
        let s = Store::open_in_memory().unwrap();
        assert!(s.object_rows(None).unwrap().is_empty());
        assert!(s.promise_rows(Some(5)).unwrap().is_empty());
        assert!(s.clist_rows(Some("v1"), None).unwrap().is_empty());
        assert!(s.run_queue_rows(None).unwrap().is_empty());
        assert!(s.gc_action_rows(None).unwrap().is_empty());
        let counts = s.row_counts().unwrap();
        assert!(counts.iter().any(|(t, n)| t == "objects" && *n == 0), "{counts:?}");
        assert!(counts.iter().any(|(t, n)| t == "counters" && *n == 1), "the schema version: {counts:?}");
    }
}
