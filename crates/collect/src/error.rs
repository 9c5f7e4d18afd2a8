//! Errors of the collector. Each variant names the file, checkpoint, address or setting at fault.
//! Bad input lines and bad HTTP requests are not errors: they are quarantined or answered 4xx.

use std::path::PathBuf;

/// Everything that can stop a collector.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A checkpoint file cannot be parsed or has an unknown version.
    #[error("{path}: corrupt checkpoint: {message} (remove it, or run with --reset-checkpoints to start over)")]
    CorruptCheckpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A setting is invalid.
    #[error("{setting}: {message}")]
    Config {
        /// The setting (`files.paths`, `commit.interval` ...).
        setting: String,
        /// Why it is invalid.
        message: String,
    },
    /// The HTTP listener could not be bound or failed.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A spool file is damaged before its end: requests answered 200 cannot be read back.
    #[error("{path}: damaged spool at byte {offset}: {message} (requests answered but not committed are in it: keep a copy, then move it aside to start without them)")]
    Spool {
        /// The spool file.
        path: PathBuf,
        /// Where its damaged frame starts.
        offset: u64,
        /// What is wrong.
        message: String,
    },
    /// The warehouse failed (a commit, recovery, the lock).
    #[error(transparent)]
    Warehouse(#[from] verdict_ingest::Error),
    /// A worker stopped unexpectedly.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
