//! Errors of the replay crate, each naming the file, gate or value at fault.

use std::path::PathBuf;

/// Everything that can stop a replay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The warehouse could not be read.
    #[error(transparent)]
    Warehouse(#[from] verdict_table::Error),
    /// A data file is missing, truncated or corrupt.
    #[error(transparent)]
    Damaged(verdict_table::Error),
    /// A Parquet file could not be read or written.
    #[error("parquet {path}: {source}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The error.
        source: parquet::errors::ParquetError,
    },
    /// An Arrow kernel failed, or a column had an unexpected type.
    #[error("{path}: {message}")]
    Column {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file could not be created or opened.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A `--fail-on` gate could not be parsed.
    #[error("invalid gate `{gate}`: {message}")]
    Gate {
        /// The gate as written.
        gate: String,
        /// Why it is invalid.
        message: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
