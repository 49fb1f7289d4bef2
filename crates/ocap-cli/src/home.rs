//! The ocap home: where the daemon keeps its socket, database, log, lock and config.
//!
//! Chosen by `--home`, else `$OCAP_HOME`, else `~/.ocap` (host-surface.md §8.1).

use std::path::{Path, PathBuf};

/// Unix socket paths longer than this do not fit in `sockaddr_un` on Linux.
pub const MAX_SOCKET_PATH_BYTES: usize = 107;

#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error("no home: pass --home or set OCAP_HOME (HOME is not set)")]
    NoHome,
    #[error("resolving the home {path}: {source}")]
    Resolve {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("creating the home {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the socket path {path} is {len} bytes, longer than the {MAX_SOCKET_PATH_BYTES} a Unix socket allows; \
         use a shorter --home"
    )]
    SocketPathTooLong { path: PathBuf, len: usize },
    /// As ssh does with `~/.ssh`: anyone else who can write the home can swap the socket,
    /// the database or the config under the daemon and its clients.
    #[error(
        "the home {path} is writable by its group or by others (mode {mode:03o}), so someone else could \
         replace the daemon's socket or database; fix it with: chmod go-w {path}"
    )]
    NotPrivate { path: PathBuf, mode: u32 },
    #[error("the home {path} belongs to uid {owner}, not to you (uid {me}); use your own --home")]
    NotOurs { path: PathBuf, owner: u32, me: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    pub dir: PathBuf,
}

impl Home {
    /// Resolves the home to an absolute path; does not create it.
    pub fn resolve(flag: Option<&Path>) -> Result<Home, HomeError> {
        let dir = match (flag, std::env::var_os("OCAP_HOME").filter(|v| !v.is_empty())) {
            (Some(dir), _) => dir.to_path_buf(),
            (None, Some(dir)) => PathBuf::from(dir),
            (None, None) => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
                Some(home) => PathBuf::from(home).join(".ocap"),
                None => return Err(HomeError::NoHome),
            },
        };
        let dir = std::path::absolute(&dir).map_err(|source| HomeError::Resolve { path: dir.clone(), source })?;
        let home = Home { dir };
        home.check_private()?;
        Ok(home)
    }

    /// Refuses a home that exists and is not private to the user: owned by someone else, or
    /// writable by its group or others. A home that does not exist yet is fine (`ensure`
    /// creates it 0700).
    pub fn check_private(&self) -> Result<(), HomeError> {
        use std::os::unix::fs::MetadataExt;
        let meta = match std::fs::metadata(&self.dir) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(HomeError::Resolve { path: self.dir.clone(), source }),
        };
        let me = rustix::process::getuid().as_raw();
        if meta.uid() != me {
            return Err(HomeError::NotOurs { path: self.dir.clone(), owner: meta.uid(), me });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(HomeError::NotPrivate { path: self.dir.clone(), mode });
        }
        Ok(())
    }

    /// Creates the home (mode 0700) if it does not exist.
    pub fn ensure(&self) -> Result<(), HomeError> {
        use std::os::unix::fs::DirBuilderExt;
        if self.dir.is_dir() {
            return Ok(());
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|source| HomeError::Create { path: self.dir.clone(), source })
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("daemon.sock")
    }

    pub fn db(&self) -> PathBuf {
        self.dir.join("kernel.sqlite")
    }

    /// The database and its SQLite side files.
    pub fn db_files(&self) -> Vec<PathBuf> {
        ["kernel.sqlite", "kernel.sqlite-wal", "kernel.sqlite-shm", "kernel.sqlite-journal"]
            .iter()
            .map(|f| self.dir.join(f))
            .collect()
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("daemon.log")
    }

    /// The log's previous generation (see `daemon::logfile`).
    pub fn old_log(&self) -> PathBuf {
        self.dir.join("daemon.log.1")
    }

    /// Held (`flock`) by the running daemon for its whole life; holds its PID.
    /// The remote-comms options the daemon resumes with (`daemon::comms`).
    pub fn remote_comms(&self) -> PathBuf {
        self.dir.join("remote-comms.json")
    }

    /// The web panel's URL with its access token, while the daemon serves the panel
    /// (`crate::panel`); mode 0600, removed when the daemon stops.
    pub fn panel(&self) -> PathBuf {
        self.dir.join("panel.json")
    }

    pub fn lock(&self) -> PathBuf {
        self.dir.join("daemon.lock")
    }

    /// The daemon's optional JSON config (`daemon::config`).
    pub fn config(&self) -> PathBuf {
        self.dir.join("daemon.json")
    }

    /// Checks the socket path fits in a `sockaddr_un`.
    pub fn check_socket_path(&self) -> Result<(), HomeError> {
        let len = self.socket().as_os_str().len();
        if len > MAX_SOCKET_PATH_BYTES {
            return Err(HomeError::SocketPathTooLong { path: self.socket(), len });
        }
        Ok(())
    }
}
