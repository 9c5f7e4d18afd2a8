//! `compact`: merges a day partition's small files (many small commits of a collector) into one
//! file sorted by `(ts, event_id)`, and the day's rollup files into one, each committed as a
//! Delta `OPTIMIZE` (`dataChange=false`: the rows do not change, readers and the rollups'
//! coverage are unaffected); and each bucket of the dedup indexes (`event_keys`,
//! `quarantine_keys`: a file per bucket per commit) into one file of its keys. Runs beside a
//! collector: its commits only add files, and the compaction removes exactly the files it read.

use std::fs::File;
use std::path::Path;

use crate::committer::commit_id;
use arrow::array::RecordBatch;
use arrow::compute::{concat_batches, lexsort_to_indices, take_record_batch, SortColumn};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use serde::Serialize;
use serde_json::Value;
use verdict_schema::idx;
use verdict_schema::time::Clock;
use verdict_table::{block_on, stats::describe, Commit, Location, Operation, Table, Warehouse};

use crate::committer::CommitStep;
use crate::error::{Error, Result};
use crate::rollup::rollup_properties;
use crate::writer::writer_properties;

/// What to compact.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// The warehouse.
    pub warehouse: Location,
    /// Only this day (`YYYY-MM-DD`); `None`: every day with more than one file.
    pub day: Option<String>,
    /// zstd level of the merged files.
    pub zstd_level: i32,
    /// Rows per row group of the merged files.
    pub row_group_rows: usize,
    /// Test hook: abort the process after the first file is put in place, before its commit.
    pub abort_at: Option<CommitStep>,
    /// The key that signs each commit's link of the integrity chain.
    pub signing_key: Option<verdict_table::SigningKey>,
}

impl CompactOptions {
    /// Defaults for a warehouse.
    pub fn new(warehouse: impl Into<Location>) -> Self {
        Self {
            warehouse: warehouse.into(),
            day: None,
            zstd_level: 1,
            row_group_rows: 64 * 1024,
            abort_at: None,
            signing_key: None,
        }
    }
}

/// What compaction did to one day.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DayCompaction {
    /// The day.
    pub day: String,
    /// Files before.
    pub files_before: usize,
    /// Files after.
    pub files_after: usize,
    /// Rows in the day (the same before and after).
    pub rows: u64,
    /// The `decisions` version of the compaction, when the day was rewritten.
    pub version: Option<i64>,
}

/// What compaction did to a dedup index (`event_keys` or `quarantine_keys`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct IndexCompaction {
    /// The table.
    pub table: String,
    /// Files before, in every bucket.
    pub files_before: usize,
    /// Files after.
    pub files_after: usize,
    /// Keys it holds (a key in two files counted once: the later file's entry is kept).
    pub keys: u64,
    /// The table's version of the compaction, when it merged anything.
    pub version: Option<i64>,
}

/// The outcome of a compaction.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CompactSummary {
    /// The warehouse.
    pub warehouse: String,
    /// Per day looked at.
    pub days: Vec<DayCompaction>,
    /// Per dedup index, when no `--day` was given.
    pub indexes: Vec<IndexCompaction>,
}

/// Merges the files of each chosen day into one sorted file. A day is held in memory while it
/// is merged.
///
/// # Errors
/// When a file cannot be read or written, when a day's files do not hold the rows their commits
/// recorded (nothing is committed then), or a commit fails.
pub fn compact(opts: &CompactOptions, clock: &dyn Clock) -> Result<CompactSummary> {
    let wh = Warehouse::new(opts.warehouse.clone())?.with_signing_key(opts.signing_key.clone());
    let Some(snap) = block_on(wh.latest(Table::Decisions))? else {
        return Err(verdict_table::Error::NotFound {
            location: opts.warehouse.to_string(),
        }
        .into());
    };
    let mut days: Vec<String> = snap
        .files
        .iter()
        .filter_map(|f| f.partition.clone())
        .collect();
    days.sort();
    days.dedup();
    if let Some(d) = &opts.day {
        days.retain(|x| x == d);
        if days.is_empty() {
            days.push(d.clone());
        }
    }
    let mut out = Vec::new();
    for (n, day) in days.iter().enumerate() {
        out.push(compact_day(&wh, opts, clock, day, n)?);
    }
    let mut indexes = Vec::new();
    if opts.day.is_none() {
        for t in [Table::EventKeys, Table::QuarantineKeys] {
            if let Some(c) = compact_index(&wh, clock, t)? {
                indexes.push(c);
            }
        }
    }
    Ok(CompactSummary {
        warehouse: opts.warehouse.to_string(),
        days: out,
        indexes,
    })
}

/// Merges each bucket of the key table `t` that has several files into one, all in one commit.
/// A bucket is held in memory while it is merged (24 bytes a key).
fn compact_index(wh: &Warehouse, clock: &dyn Clock, t: Table) -> Result<Option<IndexCompaction>> {
    let Some(snap) = block_on(wh.latest(t))? else {
        return Ok(None);
    };
    let id = commit_id(clock.now_micros(), &[t.name().as_bytes()]);
    let mut result = IndexCompaction {
        table: t.name().to_string(),
        files_before: snap.files.len(),
        files_after: snap.files.len(),
        keys: 0,
        version: None,
    };
    let staging = wh.staging()?;
    let mut c = Commit::new(Operation::Compact);
    for bucket in 0..verdict_table::KEY_BUCKETS as i32 {
        let value = bucket.to_string();
        let files: Vec<_> = snap.partition_files(&value).cloned().collect();
        if files.len() <= 1 {
            result.keys += files.iter().filter_map(|f| f.rows).sum::<u64>();
            continue;
        }
        let keys = crate::index::load_bucket_keys(wh, t, &snap, bucket)?;
        result.keys += keys.len() as u64;
        let rel = t.file_path(Some(&value), &id, None);
        let path = staging.path().join(t.name()).join(&rel);
        crate::index::write_keys(&path, &keys)?;
        let nf = describe(t, &rel, Some(&value), &path)?;
        block_on(wh.put_file(t, &rel, &path))?;
        result.files_after -= files.len() - 1;
        c.adds.push(nf);
        c.removes.extend(files);
    }
    if c.adds.is_empty() {
        return Ok(Some(result));
    }
    c.info
        .insert("verdict.txn".into(), Value::from(id.as_str()));
    c.info.insert(
        "verdict.operation".into(),
        Value::from(format!("compact {}", t.name())),
    );
    result.version = Some(block_on(wh.commit(&snap, c))?.version);
    Ok(Some(result))
}

fn compact_day(
    wh: &Warehouse,
    opts: &CompactOptions,
    clock: &dyn Clock,
    day: &str,
    n: usize,
) -> Result<DayCompaction> {
    let now = clock.now_micros();
    let id = commit_id(now, &[day.as_bytes(), &(n as u64).to_le_bytes()]);
    let mut result = DayCompaction {
        day: day.to_string(),
        files_before: 0,
        files_after: 0,
        rows: 0,
        version: None,
    };
    for t in [Table::Decisions, Table::RollupMinute, Table::RollupHour] {
        let Some(snap) = block_on(wh.latest(t))? else {
            continue;
        };
        let files: Vec<_> = snap.partition_files(day).cloned().collect();
        let rows: u64 = files.iter().filter_map(|f| f.rows).sum();
        if t == Table::Decisions {
            result.files_before = files.len();
            result.files_after = files.len();
            result.rows = rows;
        }
        if files.len() <= 1 {
            continue;
        }
        let mut batches = Vec::new();
        for f in &files {
            let bytes = block_on(wh.read_file(t, &f.path))?;
            let pq = |source| Error::Parquet {
                path: f.path.clone().into(),
                source,
            };
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .and_then(|b| b.with_batch_size(64 * 1024).build())
                .map_err(pq)?;
            for b in reader {
                batches.push(b?);
            }
        }
        let schema = t.file_schema();
        let all = concat_batches(&schema, &batches)?;
        drop(batches);
        if all.num_rows() as u64 != rows {
            return Err(Error::Mismatch {
                day: day.to_string(),
                message: format!(
                    "the {} commits count {rows} rows and the files hold {}",
                    t.name(),
                    all.num_rows()
                ),
            });
        }
        let (sorted, props) = if t == Table::Decisions {
            let order = lexsort_to_indices(
                &[
                    SortColumn {
                        values: all.column(idx::TS).clone(),
                        options: None,
                    },
                    SortColumn {
                        values: all.column(idx::EVENT_ID).clone(),
                        options: None,
                    },
                ],
                None,
            )?;
            (
                take_record_batch(&all, &order)?,
                writer_properties(opts.zstd_level, opts.row_group_rows)?,
            )
        } else {
            (all, rollup_properties(opts.zstd_level)?)
        };
        let staging = wh.staging()?;
        let rel = t.file_path(Some(day), &id, Some(0));
        let path = staging.path().join(&rel);
        write_batches(&path, &sorted, &props, opts.row_group_rows)?;
        let nf = describe(t, &rel, Some(day), &path)?;
        block_on(wh.put_file(t, &rel, &path))?;
        if opts.abort_at.is_some() && n == 0 {
            std::process::abort();
        }
        let mut c = Commit::new(Operation::Compact);
        c.adds = vec![nf];
        c.removes = files;
        c.info
            .insert("verdict.txn".into(), Value::from(id.as_str()));
        c.info.insert(
            "verdict.operation".into(),
            Value::from(format!("compact {day}")),
        );
        let after = block_on(wh.commit(&snap, c))?;
        if t == Table::Decisions {
            result.files_after = 1;
            result.version = Some(after.version);
        }
    }
    Ok(result)
}

/// Writes the rows in row groups of `step` rows and fsyncs the file.
pub(crate) fn write_batches(
    path: &Path,
    batch: &RecordBatch,
    props: &WriterProperties,
    step: usize,
) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(Error::io("creating", d))?;
    }
    let pq = |source| Error::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(path).map_err(Error::io("creating", path))?;
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props.clone())).map_err(pq)?;
    let step = step.max(1);
    let mut at = 0;
    while at < batch.num_rows() {
        let len = step.min(batch.num_rows() - at);
        w.write(&batch.slice(at, len)).map_err(pq)?;
        w.flush().map_err(pq)?;
        at += len;
    }
    let file = w.into_inner().map_err(pq)?;
    file.sync_all().map_err(Error::io("syncing", path))?;
    Ok(())
}
