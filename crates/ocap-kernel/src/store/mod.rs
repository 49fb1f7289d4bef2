//! The kernel's persistent state in SQLite (rusqlite, bundled SQLite, WAL).
//!
//! The schema is relational rather than the JS kernel's single key/value table, so every
//! count the invariant checker needs is one query and every hot-path lookup hits an index.
//! See `schema.sql` next to this file and ARCHITECTURE.md for the table-by-table meaning.
//!
//! Transactions: the run loop opens an outer transaction lazily and wraps each unit of work
//! (a crank, a host command) in `SAVEPOINT unit`. A unit that fails is rolled back to its
//! savepoint; one that succeeds is released. The outer transaction is committed by the run
//! loop before anything produced inside it is shown to the host (group commit), so a crash
//! never loses what was acknowledged. The only state kept in memory is the row cache
//! (`row_cache.rs`: hot `clist`, `promises` and `objects` rows, ID counters, endpoint
//! states), write-through and journalled per savepoint, so a rollback puts it back with the
//! rows themselves and leaves nothing stale behind.
//!
//! No `RETURNING` on the crank's paths: SQLite buffers a RETURNING clause's rows in an
//! ephemeral table that it opens and closes on every run (a B-tree and a pager). An update
//! followed by a read of the same row costs about half as much (1.7 µs against 0.7–0.9 µs,
//! measured on this machine), and the crank runs a dozen of them.

mod checkpointer;
mod clist;
mod endpoints;
pub mod inspect;
pub mod invariants;
mod objects;
mod ocap_urls;
mod peers;
pub mod promises;
mod queues;
mod remotes;
mod row_cache;
mod rows;
mod subclusters;
mod vats;

pub(crate) use clist::eref_is_export;
pub use clist::CListEntry;
pub use objects::ObjectRecord;
pub use ocap_urls::IssuedUrl;
pub use peers::PeerRecord;
pub use promises::{PromiseRecord, PromiseState};
pub(crate) use queues::PendingWork;
pub use queues::{GcAction, GcActionKind, Message, RunQueueItem};
pub use remotes::{RemoteRecord, RemoteState};
pub use subclusters::SubclusterRecord;
pub use vats::{VatRecord, VatState};

use std::cell::RefCell;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

/// Errors from the store. SQLite failures carry the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite error during {op}: {source}")]
    Sqlite {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("corrupt store: {0}")]
    Corrupt(String),
    #[error("cannot start the WAL checkpointer thread: {0}")]
    Thread(#[source] std::io::Error),
}

pub(crate) trait Ctx<T> {
    fn ctx(self, op: &'static str) -> Result<T, StoreError>;
}

impl<T> Ctx<T> for Result<T, rusqlite::Error> {
    fn ctx(self, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite { op, source })
    }
}

/// How hard a commit tries to survive failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// WAL with `synchronous=NORMAL`: survives a kill of the process at any instant.
    #[default]
    Process,
    /// WAL with `synchronous=FULL`: survives power loss as well.
    PowerLoss,
}

/// The kernel database.
pub struct Store {
    conn: Connection,
    in_outer: bool,
    in_unit: bool,
    /// Hot rows of `clist`, `promises` and `objects`, ID counters and endpoint states
    /// (`row_cache.rs`).
    cache: RefCell<row_cache::RowCache>,
    /// SQLite's `data_version` when this connection's last transaction began: it changes
    /// when another connection commits, which makes the row cache stale.
    data_version: i64,
    /// The thread that checkpoints the WAL (`checkpointer.rs`); none for in-memory and
    /// read-only stores. Declared after `conn`, so the thread's connection closes last.
    _checkpointer: Option<checkpointer::Checkpointer>,
}

const SCHEMA: &str = include_str!("schema.sql");
const SCHEMA_VERSION: i64 = 1;
/// Page size of a new store, in bytes. A crank touches one leaf page in each of ten to
/// fifteen tables and indexes, and every page it dirties is written whole to the WAL at
/// commit (and copied into the savepoint's journal before that): with SQLite's default of
/// 4096 a remote round trip wrote about 56 KiB per kernel. 1024 writes a quarter of that;
/// `remote-seq` and `host-to-vat` went up 15–25 % (BENCHMARKS.md, session of 2026-12-01,
/// third). Rows are small, so deeper B-trees cost less than the writes saved.
const PAGE_SIZE_BYTES: i64 = 1024;

/// SQLite's `synchronous` setting for a durability.
fn synchronous(durability: Durability) -> &'static str {
    match durability {
        Durability::Process => "NORMAL",
        Durability::PowerLoss => "FULL",
    }
}

impl Store {
    /// Opens (creating if needed) a file-backed store.
    pub fn open(path: &Path, durability: Durability) -> Result<Store, StoreError> {
        Self::open_with(path, durability, checkpointer::WalPolicy::default())
    }

    /// [`Store::open`] with a checkpoint policy of its own (the tests of `checkpointer.rs`).
    fn open_with(path: &Path, durability: Durability, wal: checkpointer::WalPolicy) -> Result<Store, StoreError> {
        let conn = Connection::open(path).ctx("open database")?;
        let mut store = Self::init(conn, durability)?;
        let sync = synchronous(durability);
        store._checkpointer = Some(checkpointer::Checkpointer::start(&mut store.conn, path, sync, wal)?);
        Ok(store)
    }

    /// Opens an existing kernel database read-only, for inspection (`ocap check`): nothing is
    /// created or changed, and a file that is not an ocap kernel database is an error.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        use rusqlite::OpenFlags;
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .ctx("open database read-only")?;
        let version: Option<i64> = conn
            .query_row("SELECT value FROM counters WHERE name = 'schemaVersion'", [], |r| r.get(0))
            .optional()
            .map_err(|e| StoreError::Corrupt(format!("not an ocap kernel database: {e}")))?;
        match version {
            // No row cache: the kernel's own connection writes the file under this one.
            Some(v) if v == SCHEMA_VERSION => Ok(Store {
                conn,
                in_outer: false,
                in_unit: false,
                cache: RefCell::new(row_cache::RowCache::off()),
                data_version: 0,
                _checkpointer: None,
            }),
            Some(v) => Err(StoreError::Corrupt(format!("schema version {v}, this build knows {SCHEMA_VERSION}"))),
            None => Err(StoreError::Corrupt("not an ocap kernel database: no schema version".into())),
        }
    }

    /// An in-memory store, for unit tests of a single module only.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory().ctx("open in-memory database")?;
        Self::init(conn, Durability::Process)
    }

    fn init(conn: Connection, durability: Durability) -> Result<Store, StoreError> {
        // Takes effect only while the file is empty: a store made with another page size
        // keeps it (SQLite cannot change it in WAL mode), which is correct, only slower.
        conn.pragma_update(None, "page_size", PAGE_SIZE_BYTES).ctx("set page size")?;
        conn.pragma_update(None, "journal_mode", "WAL").ctx("set WAL")?;
        conn.pragma_update(None, "synchronous", synchronous(durability)).ctx("set synchronous")?;
        // Every unit is a savepoint, whose statement journal would otherwise be a temporary
        // file; in memory it costs no syscalls. Durability is unaffected: the statement
        // journal only serves rollbacks inside the open transaction.
        conn.pragma_update(None, "temp_store", "MEMORY").ctx("set temp_store")?;
        conn.set_prepared_statement_cache_capacity(256);
        // One plan per statement, whatever values are bound. Without this, SQLite marks a
        // statement whose plan used a bound value (`WHERE kpid = ?1 ORDER BY seq`,
        // `MIN(seq) … WHERE remote = ?1` were) to be compiled again whenever that value
        // changes: on every run, for a cached statement.
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .ctx("set query planner stability")?;
        conn.execute_batch(SCHEMA).ctx("create schema")?;
        let version: Option<i64> = conn
            .query_row("SELECT value FROM counters WHERE name = 'schemaVersion'", [], |r| r.get(0))
            .optional()
            .ctx("read schema version")?;
        match version {
            None => {
                conn.execute("INSERT INTO counters(name, value) VALUES ('schemaVersion', ?1)", [SCHEMA_VERSION])
                    .ctx("write schema version")?;
            }
            Some(v) if v == SCHEMA_VERSION => {}
            Some(v) => {
                return Err(StoreError::Corrupt(format!("schema version {v}, this build knows {SCHEMA_VERSION}")))
            }
        }
        Ok(Store {
            conn,
            in_outer: false,
            in_unit: false,
            cache: RefCell::default(),
            data_version: 0,
            _checkpointer: None,
        })
    }

    /// A read through the row cache (`row_cache.rs`): what the cache knows (`known`, checked
    /// against `read` in debug builds, so the whole test suite checks the cache), or else
    /// what `read` finds in SQLite, handed to `fill` to keep.
    fn read_through<T: Clone + PartialEq + std::fmt::Debug>(
        &self,
        known: Option<T>,
        read: impl Fn() -> Result<T, StoreError>,
        fill: impl FnOnce(&mut row_cache::RowCache, &T),
    ) -> Result<T, StoreError> {
        if let Some(known) = known {
            #[cfg(debug_assertions)]
            assert_eq!(known, read()?, "the row cache differs from SQLite");
            return Ok(known);
        }
        let row = read()?;
        fill(&mut self.cache.borrow_mut(), &row);
        Ok(row)
    }

    /// The raw connection, for read-only inspection (the invariant checker, `inspect`).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    // ---- transactions ----------------------------------------------------------------

    /// Runs a transaction-control statement through the statement cache: these run several
    /// times per crank, and `execute_batch` would parse them every time.
    fn control(&self, sql: &'static str, op: &'static str) -> Result<(), StoreError> {
        self.conn.prepare_cached(sql).ctx(op)?.execute([]).ctx(op)?;
        Ok(())
    }

    /// Starts a unit of work (a crank or a host command) inside the outer transaction.
    pub fn begin_unit(&mut self) -> Result<(), StoreError> {
        debug_assert!(!self.in_unit, "units do not nest");
        if !self.in_outer {
            self.control("BEGIN IMMEDIATE", "begin transaction")?;
            self.in_outer = true;
            // Only this connection writes a kernel's store (the daemon's lock, `ocap check`
            // and inspection read only); should another have committed all the same (two
            // kernels started on one file), the cached rows are dropped rather than trusted.
            let version: i64 = self
                .conn
                .prepare_cached("PRAGMA data_version")
                .ctx("prepare data version")?
                .query_row([], |r| r.get(0))
                .ctx("data version")?;
            if version != self.data_version {
                self.cache.get_mut().reset();
                self.data_version = version;
            }
        }
        self.control("SAVEPOINT unit", "begin unit")?;
        self.cache.get_mut().savepoint();
        self.in_unit = true;
        Ok(())
    }

    /// Keeps the unit's writes; they become durable at the next `commit`.
    pub fn release_unit(&mut self) -> Result<(), StoreError> {
        debug_assert!(self.in_unit);
        if let Err(e) = self.control("RELEASE unit", "release unit") {
            self.cache.get_mut().reset();
            return Err(e);
        }
        self.cache.get_mut().release_all();
        self.in_unit = false;
        Ok(())
    }

    /// Undoes every write of the unit.
    pub fn rollback_unit(&mut self) -> Result<(), StoreError> {
        debug_assert!(self.in_unit);
        if let Err(e) = self.control("ROLLBACK TO unit", "roll back unit") {
            self.cache.get_mut().reset();
            return Err(e);
        }
        self.cache.get_mut().rollback_all();
        self.control("RELEASE unit", "release rolled-back unit")?;
        self.in_unit = false;
        Ok(())
    }

    /// Opens a savepoint inside the open unit whose writes [`Store::discard_speculation`]
    /// undoes: what the kernel computes ahead of its turn (`core/overlap.rs`).
    pub(crate) fn begin_speculation(&mut self) -> Result<(), StoreError> {
        debug_assert!(self.in_unit);
        self.control("SAVEPOINT speculate", "begin speculation")?;
        self.cache.get_mut().savepoint();
        Ok(())
    }

    /// Undoes every write since [`Store::begin_speculation`] and closes its savepoint.
    pub(crate) fn discard_speculation(&mut self) -> Result<(), StoreError> {
        if let Err(e) = self.control("ROLLBACK TO speculate", "roll back speculation") {
            self.cache.get_mut().reset();
            return Err(e);
        }
        self.cache.get_mut().rollback();
        self.control("RELEASE speculate", "release speculation")
    }

    /// Makes every released unit durable.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        debug_assert!(!self.in_unit, "commit inside a unit");
        if self.in_outer {
            if let Err(e) = self.control("COMMIT", "commit") {
                // A failed COMMIT may leave the transaction open or rolled back: the cached
                // rows can no longer be trusted either way.
                self.cache.get_mut().reset();
                return Err(e);
            }
            self.in_outer = false;
        }
        Ok(())
    }

    // ---- counters --------------------------------------------------------------------

    /// Returns the next value of a named counter and advances it. Counters start at 1. The
    /// value is remembered (`row_cache.rs`), so the read after the update runs only once.
    pub(crate) fn next_id(&self, name: &str) -> Result<u64, StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO counters(name, value) VALUES (?1, 2) ON CONFLICT(name) DO UPDATE SET value = value + 1",
            )
            .ctx("prepare counter")?
            .execute([name])
            .ctx("advance counter")?;
        let cached = self.cache.borrow().counter(name);
        let v = match cached {
            Some(v) => {
                #[cfg(debug_assertions)]
                assert_eq!(v, self.read_counter(name)?, "row cache: counter {name}");
                v
            }
            None => self.read_counter(name)?,
        };
        self.cache.borrow_mut().set_counter(name, v + 1);
        Ok(v)
    }

    /// The value a counter just handed out.
    fn read_counter(&self, name: &str) -> Result<u64, StoreError> {
        let v: i64 = self
            .conn
            .prepare_cached("SELECT value - 1 FROM counters WHERE name = ?1")
            .ctx("prepare read counter")?
            .query_row([name], |r| r.get(0))
            .ctx("read counter")?;
        Ok(v as u64)
    }

    /// Reads a small kernel-wide setting.
    pub fn get_kv(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .prepare_cached("SELECT value FROM kv WHERE key = ?1")
            .ctx("prepare kv get")?
            .query_row([key], |r| r.get(0))
            .optional()
            .ctx("kv get")
    }

    pub fn set_kv(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("INSERT INTO kv(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2")
            .ctx("prepare kv set")?
            .execute(params![key, value])
            .ctx("kv set")?;
        Ok(())
    }

    /// Every `kv` entry whose key starts with `prefix`, in key order.
    pub fn kv_with_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        // Keys are compared as text; `prefix || char(0x10FFFF)` bounds every key with the prefix.
        let mut stmt = self
            .conn
            .prepare_cached("SELECT key, value FROM kv WHERE key >= ?1 AND key < ?1 || char(1114111) ORDER BY key")
            .ctx("prepare kv prefix")?;
        let rows = stmt.query_map([prefix], |r| Ok((r.get(0)?, r.get(1)?))).ctx("kv prefix")?;
        rows.map(|r| r.ctx("kv prefix row")).collect()
    }

    pub fn delete_kv(&self, key: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM kv WHERE key = ?1")
            .ctx("prepare kv delete")?
            .execute([key])
            .ctx("kv delete")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_size(store: &Store) -> i64 {
        store.connection().query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_new_store_uses_small_pages_and_an_old_one_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new.sqlite");
        let store = Store::open(&new, Durability::Process).unwrap();
        assert_eq!(page_size(&store), PAGE_SIZE_BYTES);
        drop(store);
        assert_eq!(page_size(&Store::open(&new, Durability::Process).unwrap()), PAGE_SIZE_BYTES);

        // A store made before PAGE_SIZE_BYTES (SQLite's default, 4096) opens and works as it was.
        let old = dir.path().join("old.sqlite");
        Connection::open(&old).unwrap().execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x);").unwrap();
        let store = Store::open(&old, Durability::Process).unwrap();
        assert_eq!(page_size(&store), 4096);
        assert_eq!(store.next_id("test").unwrap(), 1);
        assert_eq!(store.next_id("test").unwrap(), 2);
    }
}
