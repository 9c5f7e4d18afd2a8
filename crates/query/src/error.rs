//! Errors of the query crate: opening a warehouse, loading a tool catalogue, running SQL and
//! reports, and writing results. Each variant names the path, entry or query it is about.

use std::io;
use std::path::PathBuf;

use datafusion::error::DataFusionError;

/// Everything that can go wrong in `verdict-query`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The warehouse could not be read.
    #[error(transparent)]
    Table(#[from] verdict_table::Error),

    /// Reading a file or directory failed.
    #[error("{action} `{}`: {source}", path.display())]
    Io {
        /// What was being done (`reading`, `listing` ...).
        action: &'static str,
        /// The path at fault.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A tool catalogue file could not be used.
    #[error("tool catalogue `{}`: {}{message}", path.display(), entry.as_ref().map(|e| format!("entry `{e}`: ")).unwrap_or_default())]
    Catalog {
        /// The catalogue file.
        path: PathBuf,
        /// The entry at fault, when one is.
        entry: Option<String>,
        /// What is wrong.
        message: String,
    },

    /// A user's SQL query failed to parse, plan or run.
    #[error("query failed: {source}")]
    Sql {
        /// DataFusion's error.
        #[source]
        source: Box<DataFusionError>,
    },

    /// A report or timeline specification is not valid (for example `until` before `since`).
    #[error("invalid {what}: {message}")]
    InvalidSpec {
        /// Which option is wrong.
        what: &'static str,
        /// Why.
        message: String,
    },

    /// DataFusion failed while building or running a report, timeline or table.
    #[error("query engine: {0}")]
    DataFusion(#[from] Box<DataFusionError>),

    /// The cluster named by `--cluster` cannot be used (a malformed URL, or the scheduler
    /// refused the session).
    #[error("cluster {url}: {message}")]
    Cluster {
        /// The cluster URL, as given.
        url: String,
        /// What is wrong.
        message: String,
    },

    /// Arrow failed while formatting or building a batch.
    #[error("formatting results: {0}")]
    Arrow(#[from] arrow::error::ArrowError),

    /// Writing the output failed (a broken pipe is reported here too; see [`Error::is_broken_pipe`]).
    #[error("writing output: {0}")]
    Write(#[source] io::Error),

    /// Writing a Parquet output file failed.
    #[error("writing Parquet `{}`: {source}", path.display())]
    Parquet {
        /// The output file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: parquet::errors::ParquetError,
    },
}

impl Error {
    /// Whether this is a write to a closed pipe (`verdict report ... | head`), which the CLI
    /// treats as success.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Write(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn sql(e: DataFusionError) -> Self {
        Error::Sql {
            source: Box::new(e),
        }
    }
}

impl From<DataFusionError> for Error {
    fn from(e: DataFusionError) -> Self {
        Error::DataFusion(Box::new(e))
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
