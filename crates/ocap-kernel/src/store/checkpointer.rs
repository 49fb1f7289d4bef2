//! WAL checkpoints off the run loop.
//!
//! Why: in WAL mode a commit appends the pages it wrote to the `-wal` file, and now and then
//! those pages must be copied back into the database file (a checkpoint) so the WAL can start
//! over. SQLite's own policy (`wal_autocheckpoint`, 1,000 pages) runs the checkpoint inside
//! the commit that crosses the threshold, on the committing thread: about one commit in 70
//! took 1.5–2.5 ms instead of 30–40 µs (the copy and its `fsync`s), on the run loop, where
//! every crank waits for it (`remote-seq` timeline, BENCHMARKS.md, session of 2026-12-02,
//! fifth).
//!
//! So the kernel's connection has autocheckpoint off and a WAL hook (called by SQLite after
//! each commit with the WAL's size in pages) that wakes a thread of our own. That thread has
//! its own connection to the file and runs `PRAGMA wal_checkpoint(PASSIVE)`, which never
//! blocks the writer: it copies what was committed when it began, while new commits go on
//! appending. Once a checkpoint has copied everything, the writer's next transaction starts
//! the WAL over from its beginning, as with SQLite's own policy.
//!
//! Should the thread fall behind (a writer that never pauses), the hook checkpoints on the
//! committing thread once the WAL reaches [`WalPolicy::inline_pages`], as SQLite would have,
//! so the file stays bounded whatever happens. Durability is unchanged: a checkpoint only
//! copies pages that are already durable in the WAL, with the same `synchronous` setting.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};

use super::{Ctx, StoreError};

/// When checkpoints run, in pages of the WAL (the hook's unit).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WalPolicy {
    /// The checkpointer thread is woken once the WAL holds this many pages (SQLite's default
    /// for `wal_autocheckpoint`: 1,000 pages, 1 MiB at our page size).
    pub(crate) background_pages: i32,
    /// The committing thread checkpoints itself from this many pages on: the bound on the
    /// WAL's size should the checkpointer fall behind.
    pub(crate) inline_pages: i32,
    /// Whether to start the checkpointer thread at all (false only in tests of the bound).
    pub(crate) background: bool,
}

impl Default for WalPolicy {
    fn default() -> Self {
        WalPolicy { background_pages: 1_000, inline_pages: 16_000, background: true }
    }
}

/// What the hook and the thread share.
#[derive(Default)]
struct Signal {
    /// A checkpoint was asked for and has not started yet (the hook asks once, not on every
    /// commit while the WAL stays above the threshold).
    asked: AtomicBool,
    /// Set when the store is dropped.
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Signal {
    fn ask(&self) {
        if !self.asked.swap(true, Ordering::AcqRel) {
            // Taking the lock orders the notify after the thread's check of `asked`.
            drop(self.stop.lock());
            self.wake.notify_one();
        }
    }

    /// Waits until a checkpoint is asked for (true) or the store is dropped (false).
    fn wait(&self) -> bool {
        let Ok(mut stop) = self.stop.lock() else { return false };
        loop {
            if *stop {
                return false;
            }
            if self.asked.swap(false, Ordering::AcqRel) {
                return true;
            }
            stop = match self.wake.wait(stop) {
                Ok(s) => s,
                Err(_) => return false,
            };
        }
    }
}

/// The checkpointer thread; dropping it stops the thread and waits for it (a checkpoint in
/// progress finishes first).
pub(crate) struct Checkpointer {
    signal: Arc<Signal>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Sets up `conn` (the kernel's connection to the file at `path`) to checkpoint per
    /// `policy`: autocheckpoint off, the WAL hook on, and the thread started with its own
    /// connection (opened with the same `synchronous` setting). Errors if the pragmas, the
    /// hook or the thread's connection fail.
    pub(crate) fn start(
        conn: &mut Connection,
        path: &Path,
        synchronous: &str,
        policy: WalPolicy,
    ) -> Result<Checkpointer, StoreError> {
        let signal = Arc::new(Signal::default());
        let thread = if policy.background {
            let own =
                Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                    .ctx("open the checkpointer's connection")?;
            own.pragma_update(None, "synchronous", synchronous).ctx("set the checkpointer's synchronous")?;
            let s = Arc::clone(&signal);
            let handle = std::thread::Builder::new()
                .name("ocap-checkpoint".into())
                .spawn(move || run(own, &s))
                .map_err(|e| StoreError::Corrupt(format!("cannot start the checkpointer thread: {e}")))?;
            Some(handle)
        } else {
            None
        };
        conn.pragma_update(None, "wal_autocheckpoint", 0).ctx("turn autocheckpoint off")?;
        let hook_signal = Arc::clone(&signal);
        conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
            if pages >= policy.inline_pages {
                // The thread fell behind: bound the file here, as SQLite's own policy would.
                // Busy only while the thread's own checkpoint runs, which does the same work.
                if let Err(e) = wal.checkpoint_v2(rusqlite::wal::CheckpointMode::PASSIVE) {
                    tracing::debug!(pages, "checkpoint on the committing thread: {e}");
                }
            } else if pages >= policy.background_pages && policy.background {
                hook_signal.ask();
            }
            // The commit has happened whatever the hook returns; an error here would only be
            // reported as the commit's.
            Ok(())
        }))
        .ctx("set the WAL hook")?;
        Ok(Checkpointer { signal, thread })
    }
}

fn run(conn: Connection, signal: &Signal) {
    while signal.wait() {
        // PASSIVE: copies what it can without waiting for, or blocking, the writer.
        let done: Result<(i64, i64, i64), _> =
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)));
        match done {
            Ok((busy, log, copied)) => tracing::trace!(busy, log, copied, "WAL checkpoint"),
            Err(e) => tracing::warn!("WAL checkpoint: {e}"),
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        if let Ok(mut stop) = self.signal.stop.lock() {
            *stop = true;
        }
        self.signal.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Durability, Store};

    /// Commits `n` units of two or three pages each (a 3 KiB value at 1 KiB pages).
    fn write(store: &mut Store, n: usize) {
        let value = "x".repeat(3 * 1024);
        for i in 0..n {
            store.begin_unit().unwrap();
            store.set_kv(&format!("k{}", i % 8), &format!("{i}{value}")).unwrap();
            store.release_unit().unwrap();
            store.commit().unwrap();
        }
    }

    fn len(path: &Path) -> u64 {
        std::fs::metadata(path).map_or(0, |m| m.len())
    }

    fn wal_path(db: &Path) -> std::path::PathBuf {
        let mut p = db.as_os_str().to_owned();
        p.push("-wal");
        p.into()
    }

    fn autocheckpoint(store: &Store) -> i64 {
        store.connection().query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0)).unwrap()
    }

    /// The committing thread does not checkpoint below the inline bound: without the thread,
    /// nothing reaches the database file; with it, the committed pages do.
    #[test]
    fn the_thread_checkpoints_and_the_committing_thread_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let policy = |background| WalPolicy { background_pages: 50, inline_pages: i32::MAX, background };

        let alone = dir.path().join("alone.sqlite");
        let mut store = Store::open_with(&alone, Durability::Process, policy(false)).unwrap();
        assert_eq!(autocheckpoint(&store), 0, "SQLite's own checkpoints are off");
        let before = len(&alone);
        write(&mut store, 100);
        assert_eq!(len(&alone), before, "nothing was copied back on the committing thread");
        assert!(len(&wal_path(&alone)) > 200 * 1024, "the WAL holds the commits");

        let helped = dir.path().join("helped.sqlite");
        let mut store = Store::open_with(&helped, Durability::Process, policy(true)).unwrap();
        let before = len(&helped);
        write(&mut store, 100);
        // The thread runs on its own time: wait for its copy (the bound only turns a thread
        // that never checkpoints into a failure instead of a hang).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while len(&helped) <= before {
            assert!(std::time::Instant::now() < deadline, "the checkpointer copied nothing");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // And the data reads back through the kernel's connection.
        assert!(store.get_kv("k3").unwrap().is_some_and(|v| v.starts_with("99") || v.starts_with("91")));
    }

    /// With the thread behind (here: absent), the committing thread keeps the WAL bounded.
    #[test]
    fn the_wal_stays_bounded_when_the_thread_falls_behind() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("bounded.sqlite");
        let policy = WalPolicy { background_pages: 50, inline_pages: 200, background: false };
        let mut store = Store::open_with(&db, Durability::Process, policy).unwrap();
        let before = len(&db);
        write(&mut store, 500);
        // Over 1,000 pages were committed; the WAL starts over once past 200 of them, so it
        // never grows far past that (a page is 1 KiB plus a 24-byte frame header).
        let wal = len(&wal_path(&db));
        assert!(wal < 260 * 1048, "the WAL grew to {wal} bytes");
        assert!(len(&db) > before, "the pages were copied into the database file");
    }

    /// Dropping the store stops the thread, and the file reopens with everything in it.
    #[test]
    fn a_dropped_store_stops_its_thread_and_reopens_whole() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("reopen.sqlite");
        let policy = WalPolicy { background_pages: 10, inline_pages: i32::MAX, background: true };
        let mut store = Store::open_with(&db, Durability::Process, policy).unwrap();
        write(&mut store, 200);
        drop(store);
        let store = Store::open(&db, Durability::Process).unwrap();
        for k in 0..8 {
            assert!(store.get_kv(&format!("k{k}")).unwrap().is_some(), "k{k} survived");
        }
        assert_eq!(store.get_kv("k7").unwrap().map(|v| v[..3].to_owned()), Some("199".into()));
    }
}
