//! Errors of the schema crate.

/// Errors of the schema crate outside single records.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Arrow refused to build a batch (an internal invariant was broken).
    #[error("building the decisions batch: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
