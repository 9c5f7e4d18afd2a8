//! verdict-query: answers questions over the decisions warehouse with DataFusion.
//! Owns the SessionContext, tables, tool catalogue, UDFs, reports and the printer; never ingests.
#![deny(missing_docs)]

//! # Overview
//! - [`Engine::open`] registers, over one [`verdict_table::Snapshot`] (one `decisions` version
//!   for every question), the `decisions` table (declared schema + Date32 partition column
//!   `day`), the `quarantine` table, the `tools` view, the `catalog_entries` table and the UDFs
//!   `tool_risk(tool [, server])` and `tool_risk_source(tool [, server])`, and the
//!   `rollup_minute` / `rollup_hour` tables when they hold exactly the rows of that version
//!   ([`Rollup`]). [`Engine::sql`] runs any read-only SQL.
//! - [`Catalog`] classifies tools as [`Risk`] `destructive | write | read | unknown`: explicit
//!   entries (a user JSON/TOML file over [`Catalog::builtin`]) first, then [`heuristic_risk`].
//! - [`Engine::report`] runs a [`ReportSpec`] ([`ReportKind`] `volume`, `denials`,
//!   `rate-limits`, `identities`, `tools`, `destructive`, grouped by any [`GroupBy`] set),
//!   from the rollup when it answers exactly ([`ReportSource`], [`Engine::report_source`]);
//!   [`Engine::timeline`] lists one identity's calls around an instant ([`TimelineSpec`]).
//! - Every result is a [`QueryOutput`]; [`write_output`] prints it as a table, CSV, JSON or
//!   NDJSON and [`write_parquet`] saves it. The JSON shape is documented in [`output`].
//!
//! ```
//! use verdict_query::{write_output, Catalog, Engine, OutputFormat, PrintOptions, ReportKind, ReportSpec};
//! use verdict_formats::Format;
//! use verdict_schema::DecisionBatchBuilder;
//!
//! let jsonl = r#"{"timestamp":"2026-11-02T09:15:02.412Z","request_id":"r1","grant_label":"bob","method":"tools/call","tool":"session_destroy","decision":"allow"}
//! {"timestamp":"2026-11-02T09:15:03.100Z","request_id":"r2","grant_label":"bob","method":"tools/call","tool":"session_destroy","decision":"deny","rule":"(hidden)"}"#;
//! let mut builder = DecisionBatchBuilder::new(2, true);
//! for line in jsonl.lines() {
//!     let mut records = Vec::new();
//!     Format::PolicyLayer.decode(line, &mut records).unwrap();
//!     builder.append(&records[0], line, None, None);
//! }
//! let batch = builder.finish().unwrap();
//!
//! // One Parquet file committed to the `decisions` Delta table of a new warehouse.
//! use verdict_table::{stats::describe, Commit, Operation, Table, Warehouse};
//! let dir = tempfile::tempdir().unwrap();
//! let local = dir.path().join("part-0.parquet");
//! let mut writer = parquet::arrow::ArrowWriter::try_new(
//!     std::fs::File::create(&local).unwrap(), batch.schema(), None).unwrap();
//! writer.write(&batch).unwrap();
//! writer.close().unwrap();
//! let rel = Table::Decisions.file_path(Some("2026-11-02"), "t1", Some(0));
//!
//! let rt = tokio::runtime::Runtime::new().unwrap();
//! let out = rt.block_on(async {
//!     let wh = Warehouse::new(dir.path().join("wh").into())?;
//!     let snap = wh.open_for_write(Table::Decisions).await?;
//!     let mut commit = Commit::new(Operation::Append);
//!     commit.adds.push(describe(Table::Decisions, &rel, Some("2026-11-02"), &local)?);
//!     wh.put_file(Table::Decisions, &rel, &local).await?;
//!     wh.commit(&snap, commit).await?;
//!     let engine = Engine::open(&wh.snapshot(None).await?, Catalog::builtin()).await?;
//!     Ok::<_, verdict_query::Error>(engine.report(&ReportSpec::new(ReportKind::Volume)).await?)
//! }).unwrap();
//! let mut text = Vec::new();
//! write_output(&out, OutputFormat::Table, &mut text, &PrintOptions::default()).unwrap();
//! assert_eq!(String::from_utf8(text).unwrap(), "\
//! | identity | tool            | calls | allow | deny | rate_limited | approval_required | error | unknown |
//! |----------|-----------------|-------|-------|------|--------------|-------------------|-------|---------|
//! | bob      | session_destroy |     2 |     1 |    1 |            0 |                 0 |     0 |       0 |
//! ");
//! ```

mod catalog;
pub mod cluster;
mod engine;
mod error;
pub mod output;
mod report;
mod timeline;
mod udaf;
mod udf;

#[cfg(test)]
pub(crate) mod testutil;

pub use catalog::{heuristic_risk, Catalog, CatalogEntry, Classification, Risk, RiskSource};
pub use cluster::Cluster;
pub use engine::{
    rollup_table_schema, table_schema, Engine, QueryOutput, QueryStream, Rollup,
    CATALOG_ENTRIES_TABLE, DAY_TYPE, DECISIONS_TABLE, QUARANTINE_TABLE, ROLLUP_HOUR_TABLE,
    ROLLUP_MINUTE_TABLE, TOOLS_TABLE,
};
pub use error::{Error, Result};
pub use output::{
    write_output, write_parquet, write_parquet_stream, write_stream, BatchPrinter, OutputFormat,
    PrintOptions, Printed,
};
pub use report::{GroupBy, ReportKind, ReportSource, ReportSpec};
pub use timeline::{TimelineSpec, DEFAULT_WINDOW_MICROS};
pub use udaf::WEIGHTED_MODE;
pub use udf::{TOOL_RISK, TOOL_RISK_SOURCE};
