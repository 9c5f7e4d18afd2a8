//! End-to-end tests: each runs the real `verdict` binary on files it creates or on a copy of
//! `sample-logs/` in its own temporary directory.

#[macro_use]
mod macros;
mod util;

mod cluster;
mod collect;
mod conventions;
mod document;
mod exit_codes;
mod formats;
mod grants;
mod ingest;
mod lifecycle;
mod policy_diff;
mod regression;
mod replay;
mod report;
mod s3;
mod shell;
mod streaming;
mod suggest;
mod table;
mod trust;
mod tune;
mod verify;
