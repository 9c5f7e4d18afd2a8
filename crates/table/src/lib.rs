//! verdict-table: the only owner of the warehouse. Its tables are Delta Lake tables under one
//! root (a local directory or an object store URL): `decisions` (partitioned by `day`),
//! `rollup_minute`, `rollup_hour`, `quarantine` and the dedup index `event_keys`. This crate
//! knows their paths, schemas and partitioning, reads snapshots (one version for a whole
//! command), commits files written elsewhere with their statistics, and keeps the tables:
//! history, vacuum, restore, integrity checks and the
//! integrity chain of signed commit links that `verify` rereads. No other crate spells a path in the warehouse.
#![deny(missing_docs)]

mod chain;
mod error;
mod holds;
mod legacy;
mod location;
mod maintenance;
mod ranged;
mod secret;
mod snapshot;
pub mod stats;
pub mod store;
mod tables;
mod verify;
mod warehouse;

pub use chain::{ChainRecord, FileDigest, PublicKey, SigningKey};
pub use error::{Error, Result};
pub use holds::Hold;
pub use legacy::Adopted;
pub use location::Location;
pub use maintenance::{DoctorReport, HistoryEntry, Problem};
pub use ranged::RangedFile;
pub use snapshot::Snapshot;
pub use store::{FileEntry, SnapshotStore};
pub use tables::{
    event_keys_schema, key_bucket, quarantine_col, quarantine_schema, Table, KEY_BUCKETS,
};
pub use verify::{
    ChainHead, Finding, FindingKind, Removal, TableIntegrity, VerifyOptions, VerifyReport,
};
pub use warehouse::{AsOf, Commit, NewFile, Operation, TableSnapshot, Warehouse, COVERS_APP_ID};

/// Runs a future to completion from synchronous code: on the caller's multi-threaded tokio
/// runtime when there is one (from a blocking thread, as `spawn_blocking` gives, or a worker),
/// else on a small runtime kept for the process (collector threads, tests, tools).
pub fn block_on<F>(f: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| h.block_on(f))
        }
        // A single-threaded runtime cannot be blocked: run on the side runtime from a thread.
        Ok(_) => std::thread::scope(|s| {
            s.spawn(|| fallback_runtime().block_on(f))
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        }),
        Err(_) => fallback_runtime().block_on(f),
    }
}

fn fallback_runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime can be built (the process can start threads)")
    })
}
