//! The home's daemon lock, shared by the daemon (which holds it) and its clients (which probe
//! it to know whether a daemon runs, and take it to purge or to remove a stale socket).
//!
//! At most one daemon per home: the daemon holds an exclusive `flock` on `daemon.lock` for
//! its whole life and writes its PID into it. The kernel releases the lock when the process
//! exits, however it exits, so a stale lock cannot exist (unlike the JS CLI's PID file,
//! which PID reuse could fool, §8.7).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

/// Attempts to lock a lock file that is being replaced (purge) before giving up.
const MAX_LOCK_ATTEMPTS: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("a daemon is already running for this home{}", .pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Held { pid: Option<u32> },
    #[error("lock file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The held lock; released when dropped (or when the process exits).
#[derive(Debug)]
pub struct DaemonLock {
    file: File,
    path: PathBuf,
}

impl DaemonLock {
    /// Takes the lock without waiting, or reports who holds it.
    pub fn try_acquire(path: &Path) -> Result<DaemonLock, LockError> {
        let io = |source| LockError::Io { path: path.to_path_buf(), source };
        for _ in 0..MAX_LOCK_ATTEMPTS {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(io)?;
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(e) if e == rustix::io::Errno::WOULDBLOCK => return Err(LockError::Held { pid: read_pid(path) }),
                Err(e) => return Err(io(e.into())),
            }
            // The file may have been unlinked (purge) between our open and our lock: then a
            // lock on it excludes nobody. Only a lock on the file at `path` counts.
            let ours = file.metadata().map_err(io)?;
            match std::fs::metadata(path) {
                Ok(now) if now.dev() == ours.dev() && now.ino() == ours.ino() => {
                    return Ok(DaemonLock { file, path: path.to_path_buf() })
                }
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(e)),
            }
        }
        Err(io(std::io::Error::other("the lock file keeps being replaced")))
    }

    /// Records this process's PID in the lock file.
    pub fn write_pid(&mut self) -> Result<(), LockError> {
        let io = |source| LockError::Io { path: self.path.clone(), source };
        self.file.set_len(0).map_err(io)?;
        self.file.rewind().map_err(io)?;
        writeln!(self.file, "{}", std::process::id()).map_err(io)?;
        self.file.sync_all().map_err(io)
    }

    /// Deletes the lock file while still holding it (purge).
    pub fn unlink(self) -> Result<(), LockError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(LockError::Io { path: self.path.clone(), source }),
        }
    }
}

/// Whether some process holds the lock (a daemon is running or starting).
pub fn is_held(path: &Path) -> Result<bool, LockError> {
    let file = match OpenOptions::new().read(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(LockError::Io { path: path.to_path_buf(), source }),
    };
    match flock(&file, FlockOperation::NonBlockingLockShared) {
        // Closing the file releases our probe.
        Ok(()) => Ok(false),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(true),
        Err(e) => Err(LockError::Io { path: path.to_path_buf(), source: e.into() }),
    }
}

/// The PID written in the lock file, if any.
pub fn read_pid(path: &Path) -> Option<u32> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Whether the process exists and has not exited (a zombie nobody reaped counts as exited:
/// its files, and so its lock, are already closed).
pub fn process_alive(pid: u32) -> bool {
    let Some(p) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else { return false };
    match rustix::process::test_kill_process(p) {
        Ok(()) => {}
        Err(e) if e == rustix::io::Errno::PERM => {}
        Err(_) => return false,
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may contain any byte.
        Ok(stat) => !matches!(stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next()), Some("Z" | "X")),
        Err(_) => true,
    }
}

/// Sends a signal to the daemon process.
pub fn signal(pid: u32, sig: rustix::process::Signal) -> std::io::Result<()> {
    let p = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| std::io::Error::other(format!("bad pid {pid}")))?;
    rustix::process::kill_process(p, sig).map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.lock");
        assert!(!is_held(&path).unwrap());
        let mut lock = DaemonLock::try_acquire(&path).unwrap();
        lock.write_pid().unwrap();
        assert!(is_held(&path).unwrap());
        match DaemonLock::try_acquire(&path) {
            Err(LockError::Held { pid }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        drop(lock);
        assert!(!is_held(&path).unwrap());
        let lock = DaemonLock::try_acquire(&path).unwrap();
        lock.unlink().unwrap();
        assert!(!path.exists());
        assert!(process_alive(std::process::id()));
    }
}
