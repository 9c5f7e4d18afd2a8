//! Errors of the ingest crate. Each variant names the file, line, partition or step at fault.
//! Bad input lines are not errors (they are quarantined) unless the caller asked for `strict`.

use std::path::PathBuf;

/// Everything that can stop an ingest or a warehouse operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input path does not exist.
    #[error("{path}: no such file or directory")]
    InputNotFound {
        /// The path as given.
        path: String,
    },
    /// A glob matched no file.
    #[error("{pattern}: the pattern matched no files")]
    GlobEmpty {
        /// The pattern as given.
        pattern: String,
    },
    /// A glob pattern is malformed.
    #[error("{pattern}: invalid glob pattern: {message}")]
    GlobPattern {
        /// The pattern as given.
        pattern: String,
        /// Why it is invalid.
        message: String,
    },
    /// An input's format could not be detected.
    #[error("{file}: cannot detect the format: {message}")]
    Detect {
        /// The input (`-` for stdin).
        file: String,
        /// Why (which lines looked like what).
        message: String,
    },
    /// Reading an input failed.
    #[error("reading {file}: {source}")]
    Read {
        /// The input (`-` for stdin).
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A filesystem operation on the warehouse failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`writing`, `renaming` ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Encoding or decoding Parquet failed.
    #[error("parquet {path}: {source}")]
    Parquet {
        /// The file involved.
        path: PathBuf,
        /// The Parquet error.
        source: parquet::errors::ParquetError,
    },
    /// An Arrow kernel failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Building a batch failed.
    #[error(transparent)]
    Schema(#[from] verdict_schema::Error),
    /// `strict` was asked and a line was bad: nothing was committed.
    #[error("{file}:{line}: {error} (strict mode: nothing was committed)")]
    Strict {
        /// The input file.
        file: String,
        /// The 1-based line.
        line: u64,
        /// What was wrong.
        error: verdict_formats::LineError,
    },
    /// The warehouse's tables could not be read or written.
    #[error(transparent)]
    Table(#[from] verdict_table::Error),
    /// Compaction found a day whose files do not hold the rows their commits recorded.
    #[error("day {day}: {message}; not compacting")]
    Mismatch {
        /// The day.
        day: String,
        /// What differs.
        message: String,
    },
    /// A legal hold covers rows a change would touch: nothing was changed.
    #[error("{operation} refused, nothing was changed: {holds}; lift a hold with `verdict hold remove NAME` or narrow the request")]
    Held {
        /// `erasure`, `pseudonymisation`.
        operation: &'static str,
        /// Each hold met, with its rows and reason.
        holds: String,
    },
    /// A worker thread stopped unexpectedly.
    #[error("internal error: {0}")]
    Internal(String),
    /// An invalid setting (a redaction rule that does not compile ...).
    #[error("{0}")]
    Config(String),
    /// More bad lines than the run's quarantine budget allows: nothing of the run is committed.
    #[error("{file}:{line}: the quarantine budget of this run is spent ({what}); nothing was committed (raise it with --max-quarantine-records / --max-quarantine-bytes, or fix the input)")]
    QuarantineBudget {
        /// The input of the bad line that went past the budget.
        file: String,
        /// Its line.
        line: u64,
        /// Which limit, e.g. `1001 records, at most 1000`.
        what: String,
    },
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
