//! The `--changes` Parquet file: every changed or indeterminate event, written as the replay
//! goes (bounded memory), with the columns README "Replay semantics and exit codes" lists.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use verdict_schema::ts_type;

use crate::error::{Error, Result};

const COLUMNS: [&str; 11] = [
    "event_id",
    "identity",
    "session",
    "server",
    "tool",
    "recorded_decision",
    "recorded_rule",
    "candidate_decision",
    "candidate_rule",
    "candidate_message",
    "transition",
];

/// The schema of the changes file: `event_id, ts, identity, session, server, tool,
/// recorded_decision, recorded_rule, candidate_decision, candidate_rule, candidate_message,
/// transition`, plus `baseline_decision, baseline_rule` when a baseline was simulated.
pub fn changes_schema(with_baseline: bool) -> SchemaRef {
    let mut fields = vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("ts", ts_type(), false),
    ];
    for c in &COLUMNS[1..] {
        fields.push(Field::new(*c, DataType::Utf8, true));
    }
    if with_baseline {
        fields.push(Field::new("baseline_decision", DataType::Utf8, true));
        fields.push(Field::new("baseline_rule", DataType::Utf8, true));
    }
    Arc::new(Schema::new(fields))
}

/// One row of the changes file.
pub struct ChangeRow<'a> {
    pub event_id: &'a str,
    pub ts: i64,
    pub identity: Option<&'a str>,
    pub session: Option<&'a str>,
    pub server: Option<&'a str>,
    pub tool: &'a str,
    pub recorded_decision: &'a str,
    pub recorded_rule: Option<&'a str>,
    pub candidate_decision: &'a str,
    pub candidate_rule: &'a str,
    pub candidate_message: &'a str,
    pub transition: &'a str,
    pub baseline: Option<(&'a str, &'a str)>,
}

/// Streams change rows into a Parquet file.
pub struct ChangesWriter {
    path: PathBuf,
    writer: ArrowWriter<File>,
    schema: SchemaRef,
    ts: TimestampMicrosecondBuilder,
    cols: Vec<StringBuilder>,
    with_baseline: bool,
    pending: usize,
    pub rows: u64,
}

impl ChangesWriter {
    /// Creates the file.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn create(path: &Path, with_baseline: bool) -> Result<Self> {
        let file = File::create(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let schema = changes_schema(with_baseline);
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_created_by(format!("verdict {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|source| {
            Error::Parquet {
                path: path.to_path_buf(),
                source,
            }
        })?;
        let n = COLUMNS.len() + if with_baseline { 2 } else { 0 };
        Ok(Self {
            path: path.to_path_buf(),
            writer,
            schema,
            ts: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            cols: (0..n).map(|_| StringBuilder::new()).collect(),
            with_baseline,
            pending: 0,
            rows: 0,
        })
    }

    /// Adds a row.
    ///
    /// # Errors
    /// When flushing a full batch fails.
    pub fn push(&mut self, r: &ChangeRow<'_>) -> Result<()> {
        let values = [
            Some(r.event_id),
            r.identity,
            r.session,
            r.server,
            Some(r.tool),
            Some(r.recorded_decision),
            r.recorded_rule,
            Some(r.candidate_decision),
            Some(r.candidate_rule).filter(|s| !s.is_empty()),
            Some(r.candidate_message).filter(|s| !s.is_empty()),
            Some(r.transition),
        ];
        for (b, v) in self.cols.iter_mut().zip(values) {
            b.append_option(v);
        }
        if self.with_baseline {
            let (d, rule) = r.baseline.unwrap_or(("", ""));
            self.cols[COLUMNS.len()].append_value(d);
            self.cols[COLUMNS.len() + 1].append_option(Some(rule).filter(|s| !s.is_empty()));
        }
        self.ts.append_value(r.ts);
        self.pending += 1;
        self.rows += 1;
        if self.pending >= 8192 {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.cols.len() + 1);
        let mut finished: Vec<ArrayRef> = self
            .cols
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        arrays.push(finished.remove(0));
        arrays.push(Arc::new(self.ts.finish()));
        arrays.extend(finished);
        let batch =
            RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| Error::Column {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        self.writer.write(&batch).map_err(|source| Error::Parquet {
            path: self.path.clone(),
            source,
        })?;
        self.pending = 0;
        Ok(())
    }

    /// Writes what is pending and closes the file.
    ///
    /// # Errors
    /// When writing fails.
    pub fn finish(mut self) -> Result<u64> {
        self.flush()?;
        self.writer.close().map_err(|source| Error::Parquet {
            path: self.path.clone(),
            source,
        })?;
        Ok(self.rows)
    }
}
