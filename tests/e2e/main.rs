//! End-to-end tests: each runs the real `verdict` binary on files it creates or on a copy of
//! `sample-logs/` in its own temporary directory.

#[macro_use]
mod macros;
mod util;

mod collect;
mod formats;
mod ingest;
mod regression;
mod replay;
mod report;
mod s3;
mod table;
