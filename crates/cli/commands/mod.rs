//! One small function per subcommand: build the library objects, run them, hand the results
//! to `output`.

pub mod cluster;
pub mod collect;
pub mod docs;
pub mod document;
pub mod empty;
pub mod ingest;
pub mod lifecycle;
pub mod policy;
pub mod query;
pub mod replay;
pub mod shell;
pub mod suggest;
pub mod table;
pub mod tune;
