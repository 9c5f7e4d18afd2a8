//! `compact`: merges a day partition's small part files (many small commits of a collector)
//! into one file sorted by `(ts, event_id)`, committed through the warehouse's intent protocol
//! with an atomic directory swap. Does not dedup nor change any row.

use std::fs::File;
use std::path::PathBuf;

use arrow::array::RecordBatch;
use arrow::compute::{concat_batches, lexsort_to_indices, take_record_batch, SortColumn};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use serde::Serialize;
use verdict_schema::time::{day_number, format_micros, Clock};
use verdict_schema::{decisions_schema, idx};
use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, Result};
use crate::rollup::{rollup_properties, RollupWriter};
use crate::warehouse::{CommitStep, Intent, PartMeta, TxnMeta, Warehouse, FORMAT_VERSION};
use crate::writer::writer_properties;

/// What to compact.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// The warehouse root.
    pub warehouse: PathBuf,
    /// Only this day (`YYYY-MM-DD`); `None`: every day with more than one file.
    pub day: Option<String>,
    /// zstd level of the merged files.
    pub zstd_level: i32,
    /// Rows per row group of the merged files.
    pub row_group_rows: usize,
    /// Test hook: abort the process at this step of the first commit.
    pub abort_at: Option<CommitStep>,
}

impl CompactOptions {
    /// Defaults for a warehouse.
    pub fn new(warehouse: impl Into<PathBuf>) -> Self {
        Self {
            warehouse: warehouse.into(),
            day: None,
            zstd_level: 1,
            row_group_rows: 64 * 1024,
            abort_at: None,
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
    /// The transaction, when the day was rewritten.
    pub txn: Option<String>,
}

/// The outcome of a compaction.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CompactSummary {
    /// The warehouse root.
    pub warehouse: String,
    /// Per day looked at.
    pub days: Vec<DayCompaction>,
}

/// Merges the part files of each chosen day into one sorted file. A day holds in memory while it
/// is merged. Takes the warehouse's write lock (so it waits for a running collector or ingest).
///
/// # Errors
/// When a file cannot be read or written, when the manifest disagrees with the files on disk, or
/// when the merged row count differs from the manifest's (nothing is committed then).
pub fn compact(opts: &CompactOptions, clock: &dyn Clock) -> Result<CompactSummary> {
    let wh = Warehouse::open_for_write(&opts.warehouse)?;
    let days = match &opts.day {
        Some(d) => vec![d.clone()],
        None => wh.days()?,
    };
    let mut out = Vec::new();
    for (n, day) in days.iter().enumerate() {
        out.push(compact_day(&wh, opts, clock, day, n)?);
    }
    Ok(CompactSummary {
        warehouse: opts.warehouse.display().to_string(),
        days: out,
    })
}

fn compact_day(
    wh: &Warehouse,
    opts: &CompactOptions,
    clock: &dyn Clock,
    day: &str,
    n: usize,
) -> Result<DayCompaction> {
    let manifest = wh.manifest()?;
    let parts: Vec<&PartMeta> = manifest.parts.iter().filter(|p| p.day == day).collect();
    let on_disk = wh.day_files(day)?;
    let expected_rows: u64 = parts.iter().map(|p| p.rows).sum();
    let mut listed: Vec<PathBuf> = parts.iter().map(|p| wh.root().join(&p.path)).collect();
    listed.sort();
    if listed != on_disk {
        return Err(Error::CorruptMetadata {
            path: wh.root().join("_verdict/manifest.json"),
            message: format!(
                "day {day}: the manifest lists {} file(s) and the directory holds {}; not compacting",
                listed.len(),
                on_disk.len()
            ),
        });
    }
    if on_disk.len() <= 1 {
        return Ok(DayCompaction {
            day: day.to_string(),
            files_before: on_disk.len(),
            files_after: on_disk.len(),
            rows: expected_rows,
            txn: None,
        });
    }
    let mut batches = Vec::new();
    for path in &on_disk {
        let pq = |source| Error::Parquet {
            path: path.clone(),
            source,
        };
        let file = File::open(path).map_err(Error::io("opening", path))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(pq)?
            .with_batch_size(64 * 1024)
            .build()
            .map_err(pq)?;
        for b in reader {
            batches.push(b?);
        }
    }
    let all = concat_batches(&decisions_schema(), &batches)?;
    drop(batches);
    if all.num_rows() as u64 != expected_rows {
        return Err(Error::CorruptMetadata {
            path: wh.root().join("_verdict/manifest.json"),
            message: format!(
                "day {day}: the manifest counts {expected_rows} rows and the files hold {}",
                all.num_rows()
            ),
        });
    }
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
    let sorted = take_record_batch(&all, &order)?;
    drop(all);

    let now = clock.now_micros();
    let mut h = Xxh3::new();
    h.update(&now.to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    h.update(day.as_bytes());
    h.update(&(n as u64).to_le_bytes());
    let stamp = format_micros(now).replace(['-', ':', 'Z'], "");
    let id = format!("{stamp}-{:08x}", h.digest() as u32);
    let dir = wh.staging_dir(&id).join(format!("day={day}"));
    std::fs::create_dir_all(&dir).map_err(Error::io("creating", &dir))?;
    let name = format!("part-{id}-0000.parquet");
    let path = dir.join(&name);
    let bytes = write_sorted(&path, &sorted, opts)?;
    let ts = sorted
        .column(idx::TS)
        .as_any()
        .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
        .ok_or_else(|| Error::Internal("ts is not a timestamp column".into()))?;
    let (min_ts, max_ts) = match ts.len() {
        0 => (0, 0),
        len => (ts.value(0), ts.value(len - 1)),
    };
    let rows = sorted.num_rows() as u64;
    // The day's rollup is rebuilt from the merged rows under the compaction's transaction, and
    // the old rollup files go with the old parts, so reports keep answering from the rollup.
    let mut rollup = RollupWriter::new(
        &wh.staging_dir(&id),
        &id,
        rollup_properties(opts.zstd_level)?,
        opts.row_group_rows.max(64 * 1024),
    );
    rollup.push(day_number(min_ts), &sorted)?;
    let mut moves = Vec::new();
    let mut rollups = Vec::new();
    for r in rollup.finish()? {
        let (m, meta) = r.commit_entry(wh.root(), &id);
        moves.push(m);
        rollups.push(meta);
    }
    let mut removes: Vec<String> = parts.iter().map(|p| p.path.clone()).collect();
    removes.extend(
        manifest
            .rollups
            .iter()
            .filter(|r| r.day == day)
            .map(|r| r.path.clone()),
    );
    let intent = Intent {
        format_version: FORMAT_VERSION,
        txn: TxnMeta {
            id: id.clone(),
            committed_at: format_micros(clock.now_micros()),
            rows: 0,
            quarantined: 0,
            inputs: Vec::new(),
        },
        parts: vec![PartMeta {
            path: format!("decisions/day={day}/{name}"),
            day: day.to_string(),
            rows,
            bytes,
            min_ts,
            max_ts,
            txn: id.clone(),
        }],
        rollups,
        moves,
        swap_day: Some(day.to_string()),
        removes,
    };
    wh.commit(&intent, opts.abort_at)?;
    Ok(DayCompaction {
        day: day.to_string(),
        files_before: on_disk.len(),
        files_after: 1,
        rows,
        txn: Some(id),
    })
}

/// Writes the sorted rows in row groups and fsyncs the file; returns its size.
fn write_sorted(path: &PathBuf, batch: &RecordBatch, opts: &CompactOptions) -> Result<u64> {
    let pq = |source| Error::Parquet {
        path: path.clone(),
        source,
    };
    let file = File::create(path).map_err(Error::io("creating", path))?;
    let props = writer_properties(opts.zstd_level, opts.row_group_rows)?;
    let mut w = ArrowWriter::try_new(file, decisions_schema(), Some(props)).map_err(pq)?;
    let step = opts.row_group_rows.max(1);
    let mut at = 0;
    while at < batch.num_rows() {
        let len = step.min(batch.num_rows() - at);
        w.write(&batch.slice(at, len)).map_err(pq)?;
        w.flush().map_err(pq)?;
        at += len;
    }
    let file = w.into_inner().map_err(pq)?;
    file.sync_all().map_err(Error::io("syncing", path))?;
    Ok(file.metadata().map_err(Error::io("reading", path))?.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ingest, IngestOptions, NoProgress};
    use verdict_schema::time::FixedClock;

    #[test]
    fn merges_small_commits_into_one_sorted_file_with_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let wh = dir.path().join("wh");
        let clock = FixedClock(1_763_769_600_000_000);
        // Three commits into the same day, each out of order with the others.
        for (k, secs) in [(0, [30, 10]), (1, [20, 40]), (2, [5, 50])] {
            let text: String = secs
                .iter()
                .map(|s| {
                    format!(
                        "{{\"timestamp\":\"2026-11-02T10:00:{s:02}Z\",\"request_id\":\"r{k}-{s}\",\"decision\":\"allow\"}}\n"
                    )
                })
                .collect();
            let log = dir.path().join(format!("gw{k}.jsonl"));
            std::fs::write(&log, text).unwrap();
            let o = IngestOptions::new(&wh, vec![log.display().to_string()]);
            ingest(&o, &FixedClock(clock.0 + k), &NoProgress).unwrap();
        }
        let w = Warehouse::open_for_read(&wh).unwrap();
        assert_eq!(w.day_files("2026-11-02").unwrap().len(), 3);
        drop(w);
        let s = compact(&CompactOptions::new(&wh), &clock).unwrap();
        assert_eq!(
            (
                s.days[0].files_before,
                s.days[0].files_after,
                s.days[0].rows
            ),
            (3, 1, 6)
        );
        let w = Warehouse::open_for_read(&wh).unwrap();
        let files = w.day_files("2026-11-02").unwrap();
        assert_eq!(files.len(), 1);
        let m = w.manifest().unwrap();
        assert_eq!(m.parts.len(), 1);
        assert_eq!(m.parts[0].rows, 6);
        // The rollup was rebuilt under the compaction: one minute and one hour file, no old ones.
        let txn = s.days[0].txn.clone().unwrap();
        let mut rollups: Vec<_> = m
            .rollups
            .iter()
            .map(|r| (r.path.clone(), r.txn.clone()))
            .collect();
        rollups.sort();
        assert_eq!(
            rollups,
            [
                (
                    format!("rollup/hour/day=2026-11-02/part-{txn}.parquet"),
                    txn.clone()
                ),
                (
                    format!("rollup/minute/day=2026-11-02/part-{txn}.parquet"),
                    txn.clone()
                ),
            ]
        );
        for grain in ["minute", "hour"] {
            let n = std::fs::read_dir(wh.join(format!("rollup/{grain}/day=2026-11-02")))
                .unwrap()
                .count();
            assert_eq!(n, 1, "{grain}");
        }
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&files[0]).unwrap())
            .unwrap()
            .build()
            .unwrap();
        let mut ids = Vec::new();
        for b in reader {
            let b = b.unwrap();
            let col = arrow::array::AsArray::as_string::<i32>(b.column(idx::EVENT_ID));
            ids.extend(col.iter().map(|v| v.unwrap().to_string()));
        }
        assert_eq!(ids, ["r2-5", "r0-10", "r1-20", "r0-30", "r1-40", "r2-50"]);
        // A second run finds one file and does nothing.
        let again = compact(&CompactOptions::new(&wh), &clock).unwrap();
        assert_eq!(again.days[0].txn, None);
        // Re-ingesting still finds every row a duplicate.
        let o = IngestOptions::new(
            &wh,
            vec![dir.path().join("gw1.jsonl").display().to_string()],
        );
        let r = ingest(&o, &clock, &NoProgress).unwrap();
        assert_eq!((r.rows_written, r.duplicates), (0, 2));
    }
}
