//! A Unix-domain-socket IO channel: the kernel listens, one client at a time, line framing.
//!
//! - Creating it refuses a path a live process is listening on, and replaces a stale socket;
//!   anything else at the path (a file, a directory, a symlink) is an error naming it.
//! - Lines from the client are delivered in order to pending reads (oldest first) or queued
//!   (up to `MAX_BUFFERED_LINES`; past that the reader thread waits, so a fast client is
//!   slowed down rather than eating memory). A final partial line is delivered at EOF.
//! - When the client disconnects, pending reads get `null`, and later reads get `null` at
//!   once until the next client connects. Before any client has connected, reads wait.
//! - Writing with no client connected fails with a clear error (nothing is buffered).
//! - A second client while one is connected is refused (its connection is closed).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::smallcaps::Value;
use crate::ServiceReply;

/// Lines held for reads that have not come yet.
pub const MAX_BUFFERED_LINES: usize = 10_000;
/// Longest line accepted from a client; a longer one is cut into pieces of this size. A line
/// of exactly this length followed by its newline is one line, not that line and an empty one
/// (so a full-length piece is delivered once the byte after it is known).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

#[derive(Default)]
struct State {
    lines: VecDeque<String>,
    readers: VecDeque<ServiceReply>,
    client: Option<UnixStream>,
    /// A client connected once and has gone: reads answer null until the next one.
    disconnected: bool,
    closed: bool,
}

/// A listening socket channel.
pub struct SocketChannel {
    name: String,
    path: PathBuf,
    /// (device, inode) of the socket file we bound, so that closing removes our socket and
    /// never a file someone put at the path since.
    identity: Option<(u64, u64)>,
    state: Arc<(Mutex<State>, Condvar)>,
}

fn lock(state: &(Mutex<State>, Condvar)) -> MutexGuard<'_, State> {
    state.0.lock().unwrap_or_else(|e| e.into_inner())
}

impl SocketChannel {
    /// Listens on `path`. Whatever is already at `path` is left alone unless it is a stale
    /// socket (a socket nobody listens on), which is replaced: a regular file, a directory, a
    /// symlink or a live socket is an error naming it (issue 11: a config never touches files
    /// that are not ours).
    pub fn listen(name: &str, path: &Path) -> Result<SocketChannel, String> {
        remove_stale_socket(name, path)?;
        let listener = UnixListener::bind(path)
            .map_err(|e| format!("IO channel {name:?}: cannot listen on {}: {e}", path.display()))?;
        let identity = file_identity(path);
        let state: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let ch = SocketChannel { name: name.to_owned(), path: path.to_owned(), identity, state: state.clone() };
        let chan_name = name.to_owned();
        std::thread::Builder::new()
            .name(format!("io-{name}"))
            .spawn(move || accept_loop(&chan_name, listener, state))
            .map_err(|e| format!("IO channel {name:?}: cannot start its thread: {e}"))?;
        Ok(ch)
    }

    pub fn read(&self, reply: ServiceReply) {
        let mut st = lock(&self.state);
        if let Some(line) = st.lines.pop_front() {
            self.state.1.notify_all();
            drop(st);
            reply.resolve(Value::String(line));
        } else if st.closed || (st.disconnected && st.client.is_none()) {
            drop(st);
            reply.resolve(Value::Null);
        } else {
            st.readers.push_back(reply);
        }
    }

    pub fn write(&self, data: &str, reply: ServiceReply) {
        let mut st = lock(&self.state);
        if st.closed {
            drop(st);
            return reply.reject(Value::error(format!("IO channel \"{}\" is closed", self.name)));
        }
        let Some(client) = st.client.as_mut() else {
            drop(st);
            return reply.reject(Value::error(format!("IO channel \"{}\" has no connected client", self.name)));
        };
        let r = client.write_all(data.as_bytes()).and_then(|_| client.write_all(b"\n")).and_then(|_| client.flush());
        drop(st);
        match r {
            Ok(()) => reply.resolve(Value::Undefined),
            Err(e) => reply.reject(Value::error(format!("IO channel \"{}\": write failed: {e}", self.name))),
        }
    }

    /// Closes the channel: pending reads get null, the client is disconnected, the socket
    /// file is removed. Idempotent.
    pub fn close(&self) {
        let (readers, client) = {
            let mut st = lock(&self.state);
            if st.closed {
                return;
            }
            st.closed = true;
            self.state.1.notify_all();
            (std::mem::take(&mut st.readers), st.client.take())
        };
        for r in readers {
            r.resolve(Value::Null);
        }
        if let Some(c) = client {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        // Wake the accept loop so it sees `closed`, then remove the file.
        let _ = UnixStream::connect(&self.path);
        if self.identity.is_some() && file_identity(&self.path) == self.identity {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for SocketChannel {
    fn drop(&mut self) {
        self.close();
    }
}

/// The (device, inode) of the socket at `path`, if a socket is there (not following symlinks).
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::symlink_metadata(path).ok()?;
    meta.file_type().is_socket().then(|| (meta.dev(), meta.ino()))
}

/// Makes `path` free for `bind`: nothing there is fine; a socket whose listener is gone
/// (connecting is refused) is removed; anything else is an error that names it.
fn remove_stale_socket(name: &str, path: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("IO channel {name:?}: cannot inspect {}: {e}", path.display())),
    };
    let kind = meta.file_type();
    if !kind.is_socket() {
        let what = if kind.is_symlink() {
            "a symbolic link"
        } else if kind.is_dir() {
            "a directory"
        } else if kind.is_file() {
            "a regular file"
        } else {
            "not a socket"
        };
        return Err(format!(
            "IO channel {name:?}: {} already exists and is {what}; only a stale socket is ever replaced, \
             so remove it or choose another path",
            path.display()
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(format!("IO channel {name:?}: {} is in use by a live process", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => std::fs::remove_file(path)
            .map_err(|e| format!("IO channel {name:?}: cannot remove stale socket {}: {e}", path.display())),
        Err(e) => Err(format!("IO channel {name:?}: cannot tell whether {} is in use: {e}", path.display())),
    }
}

fn accept_loop(name: &str, listener: UnixListener, state: Arc<(Mutex<State>, Condvar)>) {
    for conn in listener.incoming() {
        if lock(&state).closed {
            return;
        }
        let Ok(stream) = conn else { continue };
        {
            let mut st = lock(&state);
            if st.client.is_some() {
                tracing::warn!("IO channel {name:?}: refusing a second client");
                let _ = stream.shutdown(std::net::Shutdown::Both);
                continue;
            }
            match stream.try_clone() {
                Ok(writer) => st.client = Some(writer),
                Err(_) => continue,
            }
            st.disconnected = false;
        }
        let reader_state = state.clone();
        let chan = name.to_owned();
        // Reading happens on its own thread so the accept loop can refuse extra clients.
        let _ = std::thread::Builder::new()
            .name(format!("io-{name}-client"))
            .spawn(move || read_client(&chan, stream, reader_state));
    }
}

fn deliver(state: &(Mutex<State>, Condvar), line: String) -> bool {
    let mut st = lock(state);
    while st.readers.is_empty() && st.lines.len() >= MAX_BUFFERED_LINES && !st.closed {
        st = state.1.wait(st).unwrap_or_else(|e| e.into_inner());
    }
    if st.closed {
        return false;
    }
    match st.readers.pop_front() {
        Some(r) => {
            drop(st);
            r.resolve(Value::String(line));
        }
        None => st.lines.push_back(line),
    }
    true
}

fn read_client(name: &str, stream: UnixStream, state: Arc<(Mutex<State>, Condvar)>) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = match (&mut reader).take(MAX_LINE_BYTES as u64).read_until(b'\n', &mut buf) {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!("IO channel {name:?}: read error: {e}");
                0
            }
        };
        if n == 0 {
            break;
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if buf.len() == MAX_LINE_BYTES && next_is_newline(&mut reader) {
            // A line of exactly the maximum length: its newline is the next byte, and it ends
            // this line rather than starting an empty one.
            reader.consume(1);
        }
        // A partial line at EOF is delivered as a final line, like a complete one.
        if !deliver(&state, String::from_utf8_lossy(&buf).into_owned()) {
            return;
        }
    }
    let readers = {
        let mut st = lock(&state);
        st.client = None;
        st.disconnected = true;
        std::mem::take(&mut st.readers)
    };
    for r in readers {
        r.resolve(Value::Null);
    }
}

/// Whether the next unread byte is a newline (waiting for it if none is buffered yet; false
/// at EOF or on a read error, which the next read then reports).
fn next_is_newline(reader: &mut BufReader<UnixStream>) -> bool {
    matches!(reader.fill_buf(), Ok(bytes) if bytes.first() == Some(&b'\n'))
}

use std::io::Read as _;
