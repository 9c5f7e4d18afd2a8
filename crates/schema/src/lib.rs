//! verdict-schema: the normalised `decisions` table.
//! Owns the record type, the declared Arrow schemas and timestamp normalisation; does no I/O.
//! The input formats that fill records live in `verdict-formats`.
#![deny(missing_docs)]

//! # Overview
//! - [`decisions_schema`] declares the table (README "Data layout"); [`col`] and [`idx`] name its columns.
//! - [`rollup_schema`] declares the ingest-time rollup files ([`rollup_col`] names their columns).
//! - [`DecisionRecord`] is one row; [`DecisionBatchBuilder`] turns records into an Arrow
//!   [`RecordBatch`](arrow::array::RecordBatch).
//! - [`time`] normalises every timestamp form to UTC microseconds and names the UTC day partition.
//!
//! ```
//! use verdict_schema::{Decision, DecisionBatchBuilder, DecisionRecord};
//!
//! let ts = verdict_schema::time::parse_rfc3339_micros("2026-11-02T10:15:02.412+01:00").unwrap();
//! assert_eq!(verdict_schema::time::format_micros(ts), "2026-11-02T09:15:02.412000Z");
//! let record = DecisionRecord::new("req_1", ts, "policylayer", Decision::Deny);
//! let mut builder = DecisionBatchBuilder::new(1, true);
//! builder.append(&record, "{}", Some("gateway.jsonl"), Some(1));
//! let batch = builder.finish().unwrap();
//! assert_eq!(batch.num_rows(), 1);
//! assert_eq!(batch.schema(), verdict_schema::decisions_schema());
//! ```

mod columns;
mod decision;
mod error;
mod record;
pub mod time;

pub use columns::{
    arg_keys_item, col, decisions_schema, dict_type, idx, rollup_col, rollup_schema, strings_as,
    ts_type,
};
pub use decision::{Decision, UnknownDecision};
pub use error::{Error, Result};
pub use record::{DecisionBatchBuilder, DecisionRecord, RowMeta};
