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
//! appending.
//!
//! The WAL starts over from its beginning only when a transaction begins with every frame
//! copied back and no other connection reading it. Between bursts of work that happens soon
//! after the thread's checkpoint. A writer that never pauses, though, always has newer
//! frames than the thread has copied, so once the WAL reaches [`WalPolicy::inline_pages`]
//! the committing thread checkpoints itself: it holds the thread back, waits for a
//! checkpoint of its in progress, and runs a RESTART checkpoint, which copies the little the
//! thread left and makes the next transaction start the WAL over. The file stays bounded
//! whatever happens (a review found the first version, which only ran a PASSIVE one there,
//! let a busy writer's WAL grow on).
//!
//! Durability is unchanged: the thread's connection has the kernel's `synchronous` setting,
//! so a checkpoint syncs the WAL before copying from it and the database file after, as
//! SQLite's own would.

use std::path::Path;
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
    /// WAL's size (4 MiB at our page size) when the thread cannot catch up with the newest
    /// frames (a writer that never pauses).
    pub(crate) inline_pages: i32,
    /// Whether to start the checkpointer thread at all (false only in tests of the bound).
    pub(crate) background: bool,
}

impl Default for WalPolicy {
    fn default() -> Self {
        WalPolicy { background_pages: 1_000, inline_pages: 4_000, background: true }
    }
}

/// How long the committing thread's RESTART checkpoint waits for the thread's checkpoint to
/// end (a few milliseconds in practice: the copy and two `fsync`s).
const RESTART_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// What the hook and the thread share, under one lock.
#[derive(Default)]
struct State {
    /// A checkpoint was asked for and has not started yet.
    asked: bool,
    /// The thread is checkpointing.
    running: bool,
    /// The committing thread is about to checkpoint itself: the thread starts none meanwhile
    /// (a checkpoint in progress would make the committing thread's fail at once).
    held: bool,
    /// The store is being dropped.
    stop: bool,
}

#[derive(Default)]
struct Signal {
    state: Mutex<State>,
    changed: Condvar,
}

impl Signal {
    /// Changes the state and wakes whoever waits on it.
    fn with(&self, f: impl FnOnce(&mut State)) {
        if let Ok(mut state) = self.state.lock() {
            f(&mut state);
        }
        self.changed.notify_all();
    }

    fn ask(&self) {
        self.with(|s| s.asked = true);
    }

    /// The thread: waits until a checkpoint is asked for and not held back (true, and the
    /// state says it runs), or the store is dropped (false).
    fn next(&self) -> bool {
        let Ok(mut state) = self.state.lock() else { return false };
        loop {
            if state.stop {
                return false;
            }
            if state.asked && !state.held {
                state.asked = false;
                state.running = true;
                return true;
            }
            state = match self.changed.wait(state) {
                Ok(s) => s,
                Err(_) => return false,
            };
        }
    }

    /// The committing thread: holds the thread back and waits, up to `wait`, for a
    /// checkpoint of its in progress to end. Then [`Signal::release`].
    fn hold(&self, wait: std::time::Duration) {
        let Ok(mut state) = self.state.lock() else { return };
        state.held = true;
        let _ = self.changed.wait_timeout_while(state, wait, |s| s.running);
    }

    /// Ends a [`Signal::hold`]: what was asked meanwhile is done.
    fn release(&self) {
        self.with(|s| {
            s.held = false;
            s.asked = false;
        });
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
        // Made first, so that its `Drop` stops the thread should a later step fail.
        let mut checkpointer = Checkpointer { signal: Arc::clone(&signal), thread: None };
        if policy.background {
            let own = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .ctx("open the checkpointer's connection")?;
            own.pragma_update(None, "synchronous", synchronous).ctx("set the checkpointer's synchronous")?;
            let s = Arc::clone(&signal);
            let handle = std::thread::Builder::new()
                .name("ocap-checkpoint".into())
                .spawn(move || run(own, &s))
                .map_err(StoreError::Thread)?;
            checkpointer.thread = Some(handle);
        }
        conn.pragma_update(None, "wal_autocheckpoint", 0).ctx("turn autocheckpoint off")?;
        // Only the RESTART checkpoint below ever waits: the thread's PASSIVE checkpoints take
        // no lock a write waits for, and readers never block a writer in WAL mode.
        conn.busy_timeout(RESTART_WAIT).ctx("set the busy timeout")?;
        // The thread is asked once per `background_pages` the WAL grows by, not after every
        // commit past the threshold: under a writer that never pauses it would otherwise
        // checkpoint (and sync) back to back.
        let mut asked_at = 0;
        conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
            let step = pages / policy.background_pages.max(1);
            if step < asked_at {
                // The WAL started over.
                asked_at = step;
            }
            if pages >= policy.inline_pages {
                // Bound the file here. The thread is held back, and a checkpoint of its in
                // progress waited for: SQLite fails a checkpoint at once while another runs,
                // and the thread, asked at every step of a busy writer, would always be
                // running. RESTART then copies what is left and waits (the busy timeout) for
                // readers to leave the WAL, so that the next transaction starts it over.
                signal.hold(RESTART_WAIT);
                let done = wal.checkpoint_v2(rusqlite::wal::CheckpointMode::RESTART);
                signal.release();
                match done {
                    Ok(_) => {}
                    Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
                        tracing::debug!(pages, "checkpoint on the committing thread: busy")
                    }
                    Err(e) => tracing::warn!(pages, "checkpoint on the committing thread: {e}"),
                }
            } else if step > asked_at && policy.background {
                asked_at = step;
                signal.ask();
            }
            // The commit has happened whatever the hook returns; an error here would only be
            // reported as the commit's.
            Ok(())
        }))
        .ctx("set the WAL hook")?;
        Ok(checkpointer)
    }
}

fn run(conn: Connection, signal: &Signal) {
    while signal.next() {
        // PASSIVE: copies what it can without waiting for, or blocking, the writer.
        let done: Result<(i64, i64, i64), _> =
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)));
        match done {
            Ok((busy, log, copied)) => tracing::trace!(busy, log, copied, "WAL checkpoint"),
            Err(e) => tracing::warn!("WAL checkpoint: {e}"),
        }
        signal.with(|s| s.running = false);
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.signal.with(|s| s.stop = true);
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
        assert!(store.get_kv("k3").unwrap().is_some_and(|v| v.starts_with("99")), "the last write to k3 reads back");
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

    /// A writer that never pauses: the thread's checkpoints never catch up with the newest
    /// frames, and the committing thread's own checkpoint keeps the WAL bounded.
    #[test]
    fn the_wal_stays_bounded_under_a_writer_that_never_pauses() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("busy.sqlite");
        let policy = WalPolicy { background_pages: 50, inline_pages: 300, background: true };
        let mut store = Store::open_with(&db, Durability::Process, policy).unwrap();
        let mut largest = 0;
        for _ in 0..60 {
            write(&mut store, 100);
            largest = largest.max(len(&wal_path(&db)));
        }
        // About 15,000 pages were committed; the WAL never grows far past 300 of them (it
        // reached 1,400 to 2,500 before the committing thread held the thread back).
        assert!(largest < 360 * 1048, "the WAL grew to {largest} bytes");
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
