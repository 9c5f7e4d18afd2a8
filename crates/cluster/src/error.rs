//! Errors of the cluster processes: a refused bind address, a scheduler that cannot start, an
//! executor that cannot reach its scheduler.

/// Everything that can go wrong in `verdict-cluster`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bind address off the loopback interface without the consent it needs.
    #[error(
        "refusing to listen on {addr}: the scheduler and executors have no authentication nor \
         TLS of their own, so any host that reaches {addr} could run queries over the warehouse \
         and read its files; bind to 127.0.0.1 (the default), or put the cluster on a private \
         network and pass --insecure-bind"
    )]
    InsecureBind {
        /// The address asked for.
        addr: std::net::SocketAddr,
    },

    /// An address that is not `HOST:PORT`.
    #[error("invalid {what} `{given}`: {message}")]
    Address {
        /// Which option (`--scheduler`, `--bind`).
        what: &'static str,
        /// As given.
        given: String,
        /// Why.
        message: String,
    },

    /// Ballista failed to start or stopped with an error.
    #[error("{role}: {source}")]
    Ballista {
        /// `scheduler` or `executor`.
        role: &'static str,
        /// Ballista's error.
        #[source]
        source: Box<ballista_core::error::BallistaError>,
    },

    /// A local resource (a listening socket, the work directory) could not be had.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A node's metrics could not be registered (a name registered twice).
    #[error("metrics: {0}")]
    Metrics(String),
}

impl From<prometheus::Error> for Error {
    fn from(e: prometheus::Error) -> Self {
        Error::Metrics(e.to_string())
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
