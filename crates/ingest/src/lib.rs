//! verdict-ingest: reads JSONL decision logs into the warehouse's Delta tables.
//! Owns input resolution, decoding threads, dedup, quarantine, the Parquet writer and the rollup;
//! the record format lives in verdict-schema, the tables and their commits in verdict-table.
#![deny(missing_docs)]

//! # Overview
//! - [`ingest`] with [`IngestOptions`] reads files, directories, globs or stdin (gzip and zstd
//!   detected by magic bytes) and returns an [`IngestSummary`].
//! - [`Committer`] is the writing side: dedup against the warehouse's `event_keys` index,
//!   quarantine, staging, and one Delta commit per table per commit.
//! - [`rollup`]: with its decisions files, each commit writes the same rows aggregated per UTC
//!   minute and per UTC hour (tables `rollup_minute`, `rollup_hour`, schema
//!   [`verdict_schema::rollup_schema`]), so that reports can read far fewer rows.
//!
//! Guarantees: a bad line never stops a run (it is quarantined with file, line, reason and raw
//! text) unless `strict` is set, in which case nothing is committed; a `(source, event_id)`
//! already in the warehouse (on any day) is never written again; a process killed at any
//! moment leaves every reader seeing the warehouse as it was before or after a whole commit.
//!
//! ```
//! use verdict_ingest::{ingest, IngestOptions, NoProgress};
//! use verdict_schema::time::FixedClock;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let log = dir.path().join("gw.jsonl");
//! std::fs::write(&log, concat!(
//!     r#"{"timestamp":"2026-11-02T09:15:02.412Z","request_id":"r1","grant_label":"alice","method":"tools/call","tool":"navigate","decision":"allow"}"#, "\n",
//!     "not json\n",
//! )).unwrap();
//! let opts = IngestOptions::new(dir.path().join("wh"), vec![log.display().to_string()]);
//! let clock = FixedClock(1_763_769_600_000_000);
//! let summary = ingest(&opts, &clock, &NoProgress).unwrap();
//! assert_eq!((summary.rows_written, summary.quarantined), (1, 1));
//! // Ingesting the same file again adds nothing.
//! let again = ingest(&opts, &clock, &NoProgress).unwrap();
//! assert_eq!((again.rows_written, again.duplicates, again.already_quarantined), (0, 1, 1));
//! ```

mod committer;
mod compact;
mod decode;
mod error;
mod index;
pub mod lifecycle;
mod migrate;
mod pipeline;
mod preview;
mod quarantine_keys;
pub mod redact;
pub mod rollup;
pub mod source;
mod writer;

pub use committer::{
    AppendInfo, ChunkDecoder, CommitInfo, CommitStep, Committer, InputMeta, Recovery,
};
pub use compact::{compact, CompactOptions, CompactSummary, DayCompaction, IndexCompaction};
pub use decode::{dedup_key, BadLine, Decoded, Delivery, RowChecks, QUARANTINE_RAW_LIMIT};
pub use error::{Error, Result};
pub use migrate::{migrate, Migration};
pub use pipeline::{
    ingest, Damage, FileSummary, IngestOptions, IngestSummary, InputFormat, NoProgress, Progress,
    DEFAULT_EARLIEST_MICROS,
};
pub use preview::{preview, record_json, Preview, PreviewReject, PREVIEW_COLUMNS};
pub use redact::{RedactionRules, Redactor};
pub use verdict_table::{Location, Warehouse};
pub use writer::{writer_properties, HOLD_BACK_MICROS};
