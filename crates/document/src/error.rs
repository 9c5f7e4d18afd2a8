//! Errors of verdict-document.

use std::path::PathBuf;

/// What can go wrong while building a document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A query of the warehouse failed.
    #[error(transparent)]
    Query(#[from] verdict_query::Error),
    /// Registering or reading a file through DataFusion failed.
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// A result could not be converted.
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The replay changes file could not be read.
    #[error("reading {path}: {message}")]
    Changes {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A quarantine file holds a line that is not a quarantine entry.
    #[error("{path}:{line}: not a quarantine entry: {message}")]
    Quarantine {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Why.
        message: String,
    },
    /// A chart could not be drawn.
    #[error("drawing a chart: {0}")]
    Chart(String),
    /// The period is empty or reversed.
    #[error("the period is empty: --since {since} is not before --until {until}")]
    EmptyPeriod {
        /// Start.
        since: String,
        /// End.
        until: String,
    },
    /// File system access failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The browser could not print the PDF.
    #[error("printing the PDF with {browser}: {message}")]
    Pdf {
        /// The browser binary.
        browser: PathBuf,
        /// What happened.
        message: String,
    },
}

impl Error {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { what, path, source }
    }
}

/// The result type of verdict-document.
pub type Result<T, E = Error> = std::result::Result<T, E>;
