//! verdict-schema: the normalised `decisions` table and the formats that fill it.
//! Owns the record type, the Arrow schema and JSON -> RecordBatch decoding; does no I/O.
#![deny(missing_docs)]

//! # Overview
//! - [`decisions_schema`] declares the table (spec/decision-schema.md); [`col`] and [`idx`] name its columns.
//! - [`rollup_schema`] declares the ingest-time rollup files ([`rollup_col`] names their columns).
//! - [`Format`] decodes one input line into [`DecisionRecord`]s; [`DecisionBatchBuilder`] turns records
//!   into an Arrow [`RecordBatch`](arrow::array::RecordBatch).
//! - [`time`] normalises every timestamp form to UTC microseconds and names the UTC day partition.
//!
//! ```
//! use verdict_schema::{DecisionBatchBuilder, Format, Decision};
//!
//! let line = r#"{"timestamp":"2026-11-02T10:15:02.412+01:00","request_id":"req_1","grant_label":"alice",
//!   "method":"tools/call","tool":"session_create","decision":"deny",
//!   "rule":"/tools/session_create/limits/session_create_rate"}"#;
//! let mut records = Vec::new();
//! Format::PolicyLayer.decode(line, &mut records).unwrap();
//! assert_eq!(records[0].decision, Decision::RateLimited);
//! assert_eq!(verdict_schema::time::format_micros(records[0].ts_micros), "2026-11-02T09:15:02.412000Z");
//!
//! let mut builder = DecisionBatchBuilder::new(1, true);
//! builder.append(&records[0], line, Some("gateway.jsonl"), Some(1));
//! let batch = builder.finish().unwrap();
//! assert_eq!(batch.num_rows(), 1);
//! assert_eq!(batch.schema(), verdict_schema::decisions_schema());
//! ```

mod columns;
mod decision;
mod error;
pub mod formats;
mod record;
pub mod time;

pub use columns::{
    arg_keys_item, col, decisions_schema, dict_type, idx, rollup_col, rollup_schema, ts_type,
};
pub use decision::{Decision, UnknownDecision};
pub use error::{Error, LineError, LineErrorKind, Result};
pub use formats::Format;
pub use record::{DecisionBatchBuilder, DecisionRecord, RowMeta};
