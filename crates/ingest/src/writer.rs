//! Staged, day-partitioned Parquet writing: buffers rows per UTC day, sorts them by
//! `(ts, event_id)`, and writes row groups of a scan-friendly size into one file per day.
//! Files go to the transaction's staging area; committing them is `warehouse`'s job.
//!
//! A file holds rows sorted by `ts`. Rows are flushed in sorted runs; the newest rows of a run
//! (up to [`HOLD_BACK_MICROS`] behind the newest) wait for the next run, so the small disorder of
//! multi-threaded proxies never breaks the order. When a run still starts before the end of the
//! file (input far out of order), the file is closed and the day continues in a new one.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::interleave_record_batch;
use arrow::datatypes::TimestampMicrosecondType;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowRowGroupWriterFactory};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use verdict_schema::{col, decisions_schema, idx, time::day_string};

use verdict_table::Table;

use crate::error::{Error, Result};

/// How far behind the newest row of a run rows are held back for the next run.
pub const HOLD_BACK_MICROS: i64 = 60_000_000;

/// Parquet writer settings for the decisions table.
///
/// # Errors
/// When the zstd level is out of range.
pub fn writer_properties(zstd_level: i32, row_group_rows: usize) -> Result<WriterProperties> {
    let level =
        ZstdLevel::try_new(zstd_level).map_err(|e| Error::Internal(format!("zstd level: {e}")))?;
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_created_by(format!("verdict {}", env!("CARGO_PKG_VERSION")))
        .set_max_row_group_row_count(Some(row_group_rows.max(1) * 2))
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: idx::TS as i32,
            descending: false,
            nulls_first: false,
        }]));
    for c in [
        col::EVENT_ID,
        col::RAW,
        col::ARGS,
        col::INGEST_LINE,
        col::LATENCY_MS,
    ] {
        b = b.set_column_dictionary_enabled(ColumnPath::from(c), false);
    }
    for c in [col::RAW, col::ARGS, col::MESSAGE] {
        b = b.set_column_statistics_enabled(ColumnPath::from(c), EnabledStatistics::None);
    }
    Ok(b.build())
}

/// A file written to staging, ready to be committed (a decisions part or a rollup file).
#[derive(Debug, Clone)]
pub struct StagedPart {
    /// Where it is now.
    pub staged: PathBuf,
    /// The table it belongs to.
    pub table: Table,
    /// Its place in the table ([`Table::file_path`]).
    pub rel_final: String,
    /// The UTC day.
    pub day: String,
    /// Rows.
    pub rows: u64,
    /// Bytes.
    pub bytes: u64,
    /// Smallest `ts`.
    pub min_ts: i64,
    /// Largest `ts`.
    pub max_ts: i64,
}

impl StagedPart {
    /// A file its writer has finished: synced to disk, its size read.
    ///
    /// # Errors
    /// When syncing or reading the file's metadata fails.
    pub(crate) fn synced(
        file: &File,
        staged: PathBuf,
        table: Table,
        rel_final: String,
        day: &str,
        rows: u64,
        (min_ts, max_ts): (i64, i64),
    ) -> Result<Self> {
        file.sync_all().map_err(Error::io("syncing", &staged))?;
        let bytes = file
            .metadata()
            .map_err(Error::io("reading", &staged))?
            .len();
        Ok(Self {
            staged,
            table,
            rel_final,
            day: day.to_string(),
            rows,
            bytes,
            min_ts,
            max_ts,
        })
    }
}

struct OpenPart {
    writer: SerializedFileWriter<File>,
    factory: ArrowRowGroupWriterFactory,
    row_groups: usize,
    path: PathBuf,
    rel_final: String,
    rows: u64,
    min_ts: i64,
    max_ts: i64,
}

#[derive(Default)]
struct DayState {
    buffered: Vec<RecordBatch>,
    rows: usize,
    part: Option<OpenPart>,
}

/// Writes rows into staged day-partition files.
pub struct PartitionWriter {
    staging: PathBuf,
    txn: String,
    props: WriterProperties,
    row_group_rows: usize,
    max_buffered_rows: usize,
    buffered_rows: usize,
    days: BTreeMap<i32, DayState>,
    next_part: usize,
    done: Vec<StagedPart>,
}

impl PartitionWriter {
    /// A writer staging under `staging` for transaction `txn`. Row groups hold about
    /// `row_group_rows` rows; at most `max_buffered_rows` rows wait in memory across all days.
    pub fn new(
        staging: &Path,
        txn: &str,
        props: WriterProperties,
        row_group_rows: usize,
        max_buffered_rows: usize,
    ) -> Self {
        Self {
            staging: staging.to_path_buf(),
            txn: txn.to_string(),
            props,
            row_group_rows: row_group_rows.max(1),
            max_buffered_rows: max_buffered_rows.max(row_group_rows.max(1)),
            buffered_rows: 0,
            days: BTreeMap::new(),
            next_part: 0,
            done: Vec::new(),
        }
    }

    /// Adds rows that all belong to UTC day number `day`.
    ///
    /// # Errors
    /// When writing a full row group fails.
    pub fn push(&mut self, day: i32, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let n = batch.num_rows();
        let state = self.days.entry(day).or_default();
        state.buffered.push(batch);
        state.rows += n;
        self.buffered_rows += n;
        if state.rows >= self.row_group_rows {
            self.flush(day, false)?;
        }
        while self.buffered_rows > self.max_buffered_rows {
            let Some((&largest, _)) = self.days.iter().max_by_key(|(_, s)| s.rows) else {
                break;
            };
            self.flush(largest, false)?;
        }
        Ok(())
    }

    /// Writes every buffered row, closes every file and returns the staged parts.
    ///
    /// # Errors
    /// When writing or closing a file fails.
    pub fn finish(mut self) -> Result<Vec<StagedPart>> {
        let days: Vec<i32> = self.days.keys().copied().collect();
        for day in days {
            self.flush(day, true)?;
            if let Some(part) = self.days.get_mut(&day).and_then(|s| s.part.take()) {
                let staged = close(part, &day_string(day))?;
                self.done.push(staged);
            }
        }
        Ok(self.done)
    }

    fn flush(&mut self, day: i32, last: bool) -> Result<()> {
        let Some(state) = self.days.get_mut(&day) else {
            return Ok(());
        };
        if state.rows == 0 {
            return Ok(());
        }
        let batches = std::mem::take(&mut state.buffered);
        self.buffered_rows -= state.rows;
        state.rows = 0;
        let order = sort_order(&batches);
        let n = order.len();
        let mut split = n;
        if !last {
            let newest = order.last().map_or(i64::MIN, |o| o.0);
            split = order
                .partition_point(|o| o.0 <= newest - HOLD_BACK_MICROS)
                .max(n * 3 / 4)
                .max(1);
        }
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        let head: Vec<(usize, usize)> = order[..split]
            .iter()
            .map(|o| (o.1 as usize, o.2 as usize))
            .collect();
        if split < n {
            let tail: Vec<(usize, usize)> = order[split..]
                .iter()
                .map(|o| (o.1 as usize, o.2 as usize))
                .collect();
            let kept = interleave_record_batch(&refs, &tail)?;
            state.rows = kept.num_rows();
            self.buffered_rows += state.rows;
            state.buffered.push(kept);
        }
        let (min_ts, max_ts) = (order[0].0, order[split - 1].0);
        drop(order);
        if state.part.as_ref().is_some_and(|p| min_ts < p.max_ts) {
            if let Some(p) = state.part.take() {
                self.done.push(close(p, &day_string(day))?);
            }
        }
        if state.part.is_none() {
            let day_s = day_string(day);
            let rel = Table::Decisions.file_path(Some(&day_s), &self.txn, Some(self.next_part));
            self.next_part += 1;
            let path = self.staging.join(Table::Decisions.name()).join(&rel);
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
            }
            let file = File::create(&path).map_err(Error::io("creating", &path))?;
            let pq = |source| Error::Parquet {
                path: path.clone(),
                source,
            };
            // ArrowWriter embeds the Arrow schema in the footer; its lower-level halves let the
            // columns of a row group be encoded on two threads.
            let (writer, factory) =
                ArrowWriter::try_new(file, decisions_schema(), Some(self.props.clone()))
                    .and_then(ArrowWriter::into_serialized_writer)
                    .map_err(pq)?;
            state.part = Some(OpenPart {
                writer,
                factory,
                row_groups: 0,
                path,
                rel_final: rel,
                rows: 0,
                min_ts,
                max_ts,
            });
        }
        if let Some(part) = state.part.as_mut() {
            write_row_group(part, &refs, &head).map_err(|source| Error::Parquet {
                path: part.path.clone(),
                source,
            })?;
            part.rows += head.len() as u64;
            part.min_ts = part.min_ts.min(min_ts);
            part.max_ts = part.max_ts.max(max_ts);
        }
        Ok(())
    }
}

/// `(ts, batch, row)` of every buffered row, sorted by `ts` then `event_id`.
fn sort_order(batches: &[RecordBatch]) -> Vec<(i64, u32, u32)> {
    let mut order = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    for (b, batch) in batches.iter().enumerate() {
        let ts = batch
            .column(idx::TS)
            .as_primitive::<TimestampMicrosecondType>();
        for (r, &t) in ts.values().iter().enumerate() {
            order.push((t, b as u32, r as u32));
        }
    }
    let ids: Vec<_> = batches
        .iter()
        .map(|b| b.column(idx::EVENT_ID).as_string::<i32>().clone())
        .collect();
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0).then_with(|| {
            ids[a.1 as usize]
                .value(a.2 as usize)
                .cmp(ids[b.1 as usize].value(b.2 as usize))
        })
    });
    order
}

/// Rows of a row group put in order and encoded at a time: the sorted copy of a row group is
/// never whole in memory, only this many rows of it.
const ENCODE_WINDOW_ROWS: usize = 8192;

/// Encodes one row group of the rows `rows` (`(batch, row)` in order) of `batches`, with its
/// columns split over two threads: `raw` (the bulk of the bytes) on one, every other column on
/// the other. Each thread takes the rows in windows of [`ENCODE_WINDOW_ROWS`], copying only a
/// window of its columns at a time; then the chunks are appended in column order.
fn write_row_group(
    part: &mut OpenPart,
    batches: &[&RecordBatch],
    rows: &[(usize, usize)],
) -> parquet::errors::Result<()> {
    use arrow::array::Array;
    use parquet::arrow::arrow_writer::ArrowColumnWriter;
    let writers = part.factory.create_column_writers(part.row_groups)?;
    let schema = decisions_schema();
    // Every column of the schema is one leaf (no structs), so writer i encodes column i.
    if writers.len() != schema.fields().len() {
        return Err(parquet::errors::ParquetError::General(format!(
            "{} column writers for {} columns",
            writers.len(),
            schema.fields().len()
        )));
    }
    type Job = Vec<(usize, ArrowColumnWriter)>;
    let (mut rest, mut raw): (Job, Job) = (Vec::new(), Vec::new());
    for (i, w) in writers.into_iter().enumerate() {
        if i == idx::RAW {
            raw.push((i, w))
        } else {
            rest.push((i, w))
        }
    }
    let encode = |mut job: Job| {
        let columns: Vec<Vec<&dyn Array>> = job
            .iter()
            .map(|(i, _)| batches.iter().map(|b| b.column(*i).as_ref()).collect())
            .collect();
        for window in rows.chunks(ENCODE_WINDOW_ROWS) {
            for ((i, w), arrays) in job.iter_mut().zip(&columns) {
                let column = arrow::compute::interleave(arrays, window)?;
                for leaf in compute_leaves(schema.field(*i), &column)? {
                    w.write(&leaf)?;
                }
            }
        }
        job.into_iter()
            .map(|(i, w)| Ok((i, w.close()?)))
            .collect::<parquet::errors::Result<Vec<(usize, ArrowColumnChunk)>>>()
    };
    let (a, b) = std::thread::scope(|s| {
        let h = s.spawn(|| encode(raw));
        let a = encode(rest);
        let b = h.join().unwrap_or_else(|_| {
            Err(parquet::errors::ParquetError::General(
                "encoder thread panicked".into(),
            ))
        });
        (a, b)
    });
    let mut chunks = a?;
    chunks.extend(b?);
    chunks.sort_by_key(|(i, _)| *i);
    let mut rg = part.writer.next_row_group()?;
    for (_, chunk) in chunks {
        chunk.append_to_row_group(&mut rg)?;
    }
    rg.close()?;
    part.row_groups += 1;
    Ok(())
}

fn close(part: OpenPart, day: &str) -> Result<StagedPart> {
    let OpenPart {
        writer,
        path,
        rel_final,
        factory: _,
        row_groups: _,
        rows,
        min_ts,
        max_ts,
    } = part;
    let file = writer.into_inner().map_err(|source| Error::Parquet {
        path: path.clone(),
        source,
    })?;
    StagedPart::synced(
        &file,
        path,
        Table::Decisions,
        rel_final,
        day,
        rows,
        (min_ts, max_ts),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use verdict_schema::{Decision, DecisionBatchBuilder, DecisionRecord};

    fn batch(rows: &[(i64, &str)]) -> RecordBatch {
        let mut b = DecisionBatchBuilder::new(rows.len(), true);
        for (ts, id) in rows {
            b.append(
                &DecisionRecord::new(*id, *ts, "policylayer", Decision::Allow),
                "{}",
                Some("f"),
                Some(1),
            );
        }
        b.finish().unwrap()
    }

    fn read_ts(path: &Path) -> (Vec<i64>, usize) {
        let r = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
        let groups = r.metadata().num_row_groups();
        let mut out = Vec::new();
        for b in r.build().unwrap() {
            let b = b.unwrap();
            out.extend(
                b.column(idx::TS)
                    .as_primitive::<TimestampMicrosecondType>()
                    .values()
                    .iter()
                    .copied(),
            );
        }
        (out, groups)
    }

    const DAY0: i64 = 20759 * verdict_schema::time::MICROS_PER_DAY;

    #[test]
    fn jittered_input_stays_in_one_sorted_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PartitionWriter::new(
            dir.path(),
            "t",
            writer_properties(1, 100).unwrap(),
            100,
            1000,
        );
        // 1000 rows one second apart, each pair swapped: small disorder.
        for chunk in 0..10 {
            let rows: Vec<(i64, String)> = (0..100)
                .map(|i| {
                    let n = chunk * 100 + (i ^ 1);
                    (DAY0 + n * 1_000_000, format!("e{n:05}"))
                })
                .collect();
            let refs: Vec<(i64, &str)> = rows.iter().map(|(t, s)| (*t, s.as_str())).collect();
            w.push(20759, batch(&refs)).unwrap();
        }
        let parts = w.finish().unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].rows, 1000);
        assert_eq!(parts[0].rel_final, "day=2026-11-02/part-t-0000.parquet");
        let (ts, groups) = read_ts(&parts[0].staged);
        assert_eq!(ts.len(), 1000);
        assert!(ts.windows(2).all(|w| w[0] <= w[1]));
        assert!(groups > 1);
        assert_eq!(
            (parts[0].min_ts, parts[0].max_ts),
            (DAY0, DAY0 + 999_000_000)
        );
    }

    #[test]
    fn far_out_of_order_input_splits_into_sorted_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut w =
            PartitionWriter::new(dir.path(), "t", writer_properties(1, 10).unwrap(), 10, 100);
        let late: Vec<(i64, String)> = (0..10)
            .map(|i| (DAY0 + 3_600_000_000 + i, format!("l{i}")))
            .collect();
        let early: Vec<(i64, String)> = (0..10).map(|i| (DAY0 + i, format!("e{i}"))).collect();
        for rows in [&late, &early] {
            let refs: Vec<(i64, &str)> = rows.iter().map(|(t, s)| (*t, s.as_str())).collect();
            w.push(20759, batch(&refs)).unwrap();
        }
        let parts = w.finish().unwrap();
        assert_eq!(parts.iter().map(|p| p.rows).sum::<u64>(), 20);
        for p in &parts {
            let (ts, _) = read_ts(&p.staged);
            assert!(ts.windows(2).all(|w| w[0] <= w[1]));
        }
        assert_eq!(parts.len(), 2);
    }

    #[test]
    fn ties_on_ts_are_ordered_by_event_id() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PartitionWriter::new(
            dir.path(),
            "t",
            writer_properties(1, 100).unwrap(),
            100,
            1000,
        );
        w.push(20759, batch(&[(DAY0, "b"), (DAY0, "a"), (DAY0 + 1, "0")]))
            .unwrap();
        let parts = w.finish().unwrap();
        let r = ParquetRecordBatchReaderBuilder::try_new(File::open(&parts[0].staged).unwrap())
            .unwrap();
        let b = r.build().unwrap().next().unwrap().unwrap();
        let ids: Vec<_> = b.column(0).as_string::<i32>().iter().flatten().collect();
        assert_eq!(ids, ["a", "b", "0"]);
    }
}
