//! The CLI's error type: what a command failed with, for `main` to print. It wraps the
//! errors of every module below the commands, and none of those modules uses it.

use crate::client::lifecycle::LifecycleError;
use crate::client::ClientError;
use crate::daemon::DaemonError;
use crate::home::HomeError;
use crate::lock::LockError;

/// Errors of the CLI, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(#[from] ocap_kernel::config::ConfigError),
    #[error(transparent)]
    Kernel(#[from] ocap_kernel::KernelError),
    #[error(transparent)]
    Store(#[from] ocap_kernel::store::StoreError),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error("{0}")]
    Usage(String),
    /// A message's result promise was rejected; the message is the decoded reason.
    #[error("rejected: {0}")]
    Rejected(String),
    /// Already reported on stdout/stderr: exit with this status, without another message.
    #[error("exit status {0}")]
    Exit(u8),
    #[error("{0}")]
    Other(String),
}
