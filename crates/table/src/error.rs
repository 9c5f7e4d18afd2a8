//! Errors of the table crate: each names the warehouse, table, version or file at fault.

/// Everything that can go wrong reading or writing the warehouse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The warehouse location cannot be understood.
    #[error("{location}: not a warehouse location: {message}")]
    Location {
        /// As given.
        location: String,
        /// Why.
        message: String,
    },
    /// Nothing was ever committed at this location.
    #[error("{location}: no verdict warehouse here (nothing was ingested yet)")]
    NotFound {
        /// The warehouse.
        location: String,
    },
    /// The Delta log of a table cannot be read or written.
    #[error("{table} table of {location}: {source}")]
    Delta {
        /// The warehouse.
        location: String,
        /// The table.
        table: &'static str,
        /// What delta-rs said.
        source: Box<deltalake::DeltaTableError>,
    },
    /// An object store operation failed.
    #[error("{action} {path}: {source}")]
    Store {
        /// What was being done.
        action: &'static str,
        /// The object.
        path: String,
        /// What the store said.
        source: object_store::Error,
    },
    /// A local file operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A data file is missing, truncated or not valid Parquet.
    #[error("{path}: damaged data file of table {table}, added in version {version}: {message} (run `verdict doctor`)")]
    Damaged {
        /// The table.
        table: &'static str,
        /// The file, under the warehouse.
        path: String,
        /// The commit that added it (`?` when unknown).
        version: String,
        /// What is wrong.
        message: String,
    },
    /// Reading Parquet failed.
    #[error("parquet {path}: {source}")]
    Parquet {
        /// The file.
        path: String,
        /// The error.
        source: parquet::errors::ParquetError,
    },
    /// An `--as-of` value that is neither a version nor a timestamp.
    #[error("--as-of {value}: {message}")]
    AsOf {
        /// As given.
        value: String,
        /// Why.
        message: String,
    },
    /// A key file that holds no usable key.
    #[error("{path}: {message}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// A commit that raced with others more times than a writer retries.
    #[error("{table}: gave up committing after {attempts} attempts (other writers kept committing first)")]
    Contended {
        /// The table.
        table: &'static str,
        /// How many times it tried.
        attempts: u32,
    },
    /// A commit that conflicts with one made since its snapshot was read.
    #[error("{table}: version {version} removed {path}, which this commit also removes or rewrites; run it again")]
    Conflict {
        /// The table.
        table: &'static str,
        /// The other commit.
        version: i64,
        /// The file both touch.
        path: String,
    },
    /// A legal hold that is malformed, unknown, or in the way.
    #[error("hold {name}: {message}")]
    Hold {
        /// The hold (or the object that should be one).
        name: String,
        /// What is wrong.
        message: String,
    },
    /// Something that should not happen.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl std::fmt::Display,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_string();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn store(
        action: &'static str,
        path: impl std::fmt::Display,
    ) -> impl FnOnce(object_store::Error) -> Self {
        let path = path.to_string();
        move |source| Error::Store {
            action,
            path,
            source,
        }
    }
}
