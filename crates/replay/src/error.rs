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
    /// A `grants.toml` could not be read or parsed.
    #[error("grants file {}: {message}", .path.display())]
    Grants {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A policy file of a `grants.toml` does not load.
    #[error("policy {}: {source}", .path.display())]
    Policy {
        /// The policy file.
        path: PathBuf,
        /// Why it does not load.
        source: verdict_policy::Error,
    },
    /// The policies of a `grants.toml` cannot share their counters.
    #[error("{source}")]
    PolicySet {
        /// The conflict.
        source: verdict_policy::Error,
    },
    /// An option has a value the operation cannot use.
    #[error("{option}: {message}")]
    Invalid {
        /// The option.
        option: &'static str,
        /// Why.
        message: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
