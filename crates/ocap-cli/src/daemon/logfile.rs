//! The daemon's log file, with rotation: when `daemon.log` would pass `MAX_LOG_BYTES` it is
//! renamed to `daemon.log.1` (replacing the previous one) and a new file is started, so the
//! log never takes more than about twice that (§8.7: the JS daemon's log grows forever).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Size at which the log is rotated.
pub const MAX_LOG_BYTES: u64 = 10 * 1024 * 1024;

struct State {
    path: PathBuf,
    old_path: PathBuf,
    file: File,
    len: u64,
    max_bytes: u64,
}

/// A `tracing_subscriber` writer over the rotating log; cheap to clone.
#[derive(Clone)]
pub struct RotatingLog {
    state: Arc<Mutex<State>>,
}

fn open_append(path: &PathBuf) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().create(true).append(true).mode(0o600).open(path)
}

impl RotatingLog {
    pub fn open(path: PathBuf, old_path: PathBuf, max_bytes: u64) -> std::io::Result<RotatingLog> {
        let file = open_append(&path)?;
        let len = file.metadata()?.len();
        Ok(RotatingLog { state: Arc::new(Mutex::new(State { path, old_path, file, len, max_bytes })) })
    }
}

impl State {
    fn rotate(&mut self) -> std::io::Result<()> {
        std::fs::rename(&self.path, &self.old_path)?;
        self.file = open_append(&self.path)?;
        self.len = 0;
        Ok(())
    }
}

impl Write for RotatingLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut st = self.state.lock().map_err(|_| std::io::Error::other("log lock poisoned"))?;
        if st.len > 0 && st.len + buf.len() as u64 > st.max_bytes {
            // A failed rotation keeps appending to the current file rather than losing lines.
            let _ = st.rotate();
        }
        st.file.write_all(buf)?;
        st.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let mut st = self.state.lock().map_err(|_| std::io::Error::other("log lock poisoned"))?;
        st.file.flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RotatingLog {
    type Writer = RotatingLog;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let (path, old) = (dir.path().join("d.log"), dir.path().join("d.log.1"));
        let mut log = RotatingLog::open(path.clone(), old.clone(), 10).unwrap();
        log.write_all(b"12345678\n").unwrap();
        log.write_all(b"abcdefgh\n").unwrap();
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "12345678\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "abcdefgh\n");
    }
}
