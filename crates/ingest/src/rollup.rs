//! The ingest-time rollup: aggregates the rows a transaction commits (after dedup) per UTC minute
//! and per UTC hour x identity x tool x server x decision x rule x message, and stages one rollup
//! file per grain and day partition. A row's strings are interned once, for both grains.
//! Committing the files is `warehouse`'s job, with the decisions parts of the same transaction.
//!
//! Memory stays bounded: when a grain holds more than `max_groups` groups, the largest day is
//! written out as a sorted run of row groups into its file and forgotten. A key may then appear in
//! more than one run of a file; every reader re-aggregates (sums `calls`, takes the min of
//! `first_ts` and the max of `last_ts`), so the answers stay exact.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{Int32Type, TimestampMicrosecondType};
use crossbeam_channel::{bounded, Sender};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use rustc_hash::FxHashMap;
use verdict_schema::time::day_string;
use verdict_schema::{idx, rollup_schema, Decision};

use crate::error::{Error, Result};
use crate::writer::StagedPart;
use verdict_table::Table;

/// The time grain of a rollup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grain {
    /// UTC minutes: the `rollup_minute` table.
    Minute,
    /// UTC hours: the `rollup_hour` table.
    Hour,
}

impl Grain {
    /// Every grain, finest first.
    pub const ALL: [Grain; 2] = [Grain::Minute, Grain::Hour];

    /// The width of a bucket in microseconds.
    pub fn micros(self) -> i64 {
        match self {
            Grain::Minute => 60_000_000,
            Grain::Hour => 3_600_000_000,
        }
    }

    /// The table it is stored in.
    pub fn table(self) -> Table {
        match self {
            Grain::Minute => Table::RollupMinute,
            Grain::Hour => Table::RollupHour,
        }
    }

    /// `minute`, `hour`.
    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Minute => "minute",
            Grain::Hour => "hour",
        }
    }

    fn bucket(self, ts: i64) -> i64 {
        ts - ts.rem_euclid(self.micros())
    }

    /// Its place in [`Grain::ALL`].
    fn index(self) -> usize {
        match self {
            Grain::Minute => 0,
            Grain::Hour => 1,
        }
    }
}

/// Parquet writer settings for rollup files: zstd, row groups of 65,536 groups.
///
/// # Errors
/// When the zstd level is out of range.
pub fn rollup_properties(zstd_level: i32) -> Result<WriterProperties> {
    let level = parquet::basic::ZstdLevel::try_new(zstd_level)
        .map_err(|e| Error::Internal(format!("zstd level: {e}")))?;
    Ok(WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(level))
        .set_created_by(format!("verdict {}", env!("CARGO_PKG_VERSION")))
        .set_max_row_group_row_count(Some(64 * 1024))
        .build())
}

const NULL: u32 = u32::MAX;
const DIMS: usize = 5; // identity, tool, server, rule, message

/// Distinct strings of one dimension of one day, by id.
#[derive(Default)]
struct Interner {
    ids: FxHashMap<Box<str>, u32>,
    values: Vec<Box<str>>,
}

impl Interner {
    fn id(&mut self, s: Option<&str>) -> u32 {
        let Some(s) = s else { return NULL };
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    /// For each id, 1 + its position in string order (0 is left for null).
    fn ranks(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.values.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| self.values[a as usize].cmp(&self.values[b as usize]));
        let mut ranks = vec![0; self.values.len()];
        for (pos, id) in order.into_iter().enumerate() {
            ranks[id as usize] = pos as u32 + 1;
        }
        ranks
    }

    fn get(&self, id: u32) -> Option<&str> {
        if id == NULL {
            None
        } else {
            self.values.get(id as usize).map(|s| &**s)
        }
    }
}

/// (bucket, decision index in [`Decision::ALL`], interned identity, tool, server, rule, message)
type Key = (i64, u8, [u32; DIMS]);

struct Group {
    key: Key,
    calls: i64,
    first: i64,
    last: i64,
}

struct OpenFile {
    writer: ArrowWriter<File>,
    path: PathBuf,
    table: Table,
    rel_final: String,
    rows: u64,
}

/// The groups of one grain of one day, and the file their runs are written to.
#[derive(Default)]
struct GrainDay {
    index: FxHashMap<Key, u32>,
    groups: Vec<Group>,
    file: Option<OpenFile>,
}

impl GrainDay {
    /// Counts one call at `ts` in the group of `key`; whether the group is new.
    fn count(&mut self, key: Key, ts: i64) -> bool {
        match self.index.get(&key) {
            Some(&g) => {
                let g = &mut self.groups[g as usize];
                g.calls += 1;
                g.first = g.first.min(ts);
                g.last = g.last.max(ts);
                false
            }
            None => {
                self.index.insert(key, self.groups.len() as u32);
                self.groups.push(Group {
                    key,
                    calls: 1,
                    first: ts,
                    last: ts,
                });
                true
            }
        }
    }

    /// The groups as one batch of the rollup schema, sorted by decision, identity, tool,
    /// server, rule, message and bucket (so that a filter on decision skips row groups);
    /// forgets them.
    fn take_batch(&mut self, strings: &[Interner; DIMS]) -> Result<RecordBatch> {
        let mut groups = std::mem::take(&mut self.groups);
        self.index = FxHashMap::default();
        let s = |i: usize, id: u32| strings[i].get(id);
        // Each dimension's ids ranked in string order once (null first), so that the groups
        // sort on integers instead of comparing strings through the interner.
        let ranks: [Vec<u32>; DIMS] = std::array::from_fn(|i| strings[i].ranks());
        let rank = |i: usize, id: u32| if id == NULL { 0 } else { ranks[i][id as usize] };
        groups.sort_by_cached_key(|g| {
            let (bucket, decision, ids) = g.key;
            (
                decision,
                std::array::from_fn::<u32, DIMS, _>(|i| rank(i, ids[i])),
                bucket,
            )
        });
        let dim = |i: usize| -> ArrayRef {
            Arc::new(StringArray::from_iter(
                groups.iter().map(|g| s(i, g.key.2[i])),
            ))
        };
        let ts = |v: Vec<i64>| -> ArrayRef {
            Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC"))
        };
        let columns: Vec<ArrayRef> = vec![
            ts(groups.iter().map(|g| g.key.0).collect()),
            dim(0),
            dim(1),
            dim(2),
            Arc::new(StringArray::from_iter_values(
                groups
                    .iter()
                    .map(|g| Decision::ALL[g.key.1 as usize].as_str()),
            )),
            dim(3),
            dim(4),
            Arc::new(Int64Array::from_iter_values(groups.iter().map(|g| g.calls))),
            ts(groups.iter().map(|g| g.first).collect()),
            ts(groups.iter().map(|g| g.last).collect()),
        ];
        Ok(RecordBatch::try_new(rollup_schema(), columns)?)
    }
}

/// One UTC day: its strings, interned once for both grains, and each grain's groups.
#[derive(Default)]
struct DayAgg {
    strings: [Interner; DIMS],
    /// Indexed by [`Grain::index`].
    grains: [GrainDay; 2],
    min_ts: i64,
    max_ts: i64,
    seen: bool,
}

/// Builds a transaction's rollup files.
pub struct RollupWriter {
    staging: PathBuf,
    txn: String,
    props: WriterProperties,
    max_groups: usize,
    days: BTreeMap<i32, DayAgg>,
    /// Groups held per grain, over every day.
    groups: [usize; 2],
}

impl RollupWriter {
    /// A writer staging under `staging` (the transaction's staging directory) for `txn`; each
    /// grain keeps at most about `max_groups` groups in memory.
    pub fn new(staging: &Path, txn: &str, props: WriterProperties, max_groups: usize) -> Self {
        Self {
            staging: staging.to_path_buf(),
            txn: txn.to_string(),
            props,
            max_groups: max_groups.max(1),
            days: BTreeMap::new(),
            groups: [0; 2],
        }
    }

    /// Adds committed rows (of the decisions schema) that all belong to UTC day `day`: each
    /// row's strings are interned once and its call counted in its minute and its hour.
    ///
    /// # Errors
    /// When a column does not have the declared type, or writing a run fails.
    pub fn push(&mut self, day: i32, batch: &RecordBatch) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let bad = |c: &str| Error::Internal(format!("rollup: column {c} has an unexpected type"));
        let ts = batch
            .column(idx::TS)
            .as_primitive_opt::<TimestampMicrosecondType>()
            .ok_or_else(|| bad("ts"))?;
        let decision = batch
            .column(idx::DECISION)
            .as_dictionary_opt::<Int32Type>()
            .ok_or_else(|| bad("decision"))?;
        // The decision of each dictionary value, looked up once per batch.
        let values = decision
            .values()
            .as_string_opt::<i32>()
            .ok_or_else(|| bad("decision"))?;
        let mut codes = Vec::with_capacity(values.len());
        for v in values.iter() {
            let d: Decision = v
                .unwrap_or_default()
                .parse()
                .map_err(|e| Error::Internal(format!("rollup: {e}")))?;
            codes.push(Decision::ALL.iter().position(|x| *x == d).unwrap_or(5) as u8);
        }
        let keys = decision.keys();
        let dims = [
            idx::IDENTITY,
            idx::TOOL,
            idx::SERVER,
            idx::RULE,
            idx::MESSAGE,
        ]
        .map(|i| batch.column(i).as_string_opt::<i32>());
        let [Some(a0), Some(a1), Some(a2), Some(a3), Some(a4)] = dims else {
            return Err(bad("identity, tool, server, rule or message"));
        };
        let agg = self.days.entry(day).or_default();
        let mut added = [0; 2];
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for i in 0..n {
            let t = ts.value(i);
            let code = codes
                .get(keys.value(i) as usize)
                .copied()
                .ok_or_else(|| bad("decision"))?;
            let d = [
                opt_str(a0, i),
                opt_str(a1, i),
                opt_str(a2, i),
                opt_str(a3, i),
                opt_str(a4, i),
            ];
            let ids: [u32; DIMS] = std::array::from_fn(|k| agg.strings[k].id(d[k]));
            for grain in Grain::ALL {
                let key = (grain.bucket(t), code, ids);
                if agg.grains[grain.index()].count(key, t) {
                    added[grain.index()] += 1;
                }
            }
            (lo, hi) = (lo.min(t), hi.max(t));
        }
        if agg.seen {
            (agg.min_ts, agg.max_ts) = (agg.min_ts.min(lo), agg.max_ts.max(hi));
        } else {
            (agg.min_ts, agg.max_ts, agg.seen) = (lo, hi, true);
        }
        for grain in Grain::ALL {
            let g = grain.index();
            self.groups[g] += added[g];
            while self.groups[g] > self.max_groups {
                let Some(largest) = self.largest_day(grain) else {
                    break;
                };
                self.flush(grain, largest)?;
            }
        }
        Ok(())
    }

    /// Writes every group, closes every file and returns the staged rollup files, minute files
    /// first.
    ///
    /// # Errors
    /// When writing or closing a file fails.
    pub fn finish(mut self) -> Result<Vec<StagedPart>> {
        let days: Vec<i32> = self.days.keys().copied().collect();
        for grain in Grain::ALL {
            for day in &days {
                self.flush(grain, *day)?;
            }
        }
        let mut out = Vec::new();
        for grain in Grain::ALL {
            for (day, state) in &mut self.days {
                if let Some(f) = state.grains[grain.index()].file.take() {
                    out.push(close(f, &day_string(*day), state.min_ts, state.max_ts)?);
                }
            }
        }
        Ok(out)
    }

    /// The day holding the most groups of `grain`.
    fn largest_day(&self, grain: Grain) -> Option<i32> {
        self.days
            .iter()
            .map(|(d, s)| (*d, s.grains[grain.index()].groups.len()))
            .filter(|(_, n)| *n > 0)
            .max_by_key(|(_, n)| *n)
            .map(|(d, _)| d)
    }

    /// Writes one day's groups of one grain as a sorted run, and forgets them (and the day's
    /// strings, once neither grain holds a group of it).
    fn flush(&mut self, grain: Grain, day: i32) -> Result<()> {
        let Some(state) = self.days.get_mut(&day) else {
            return Ok(());
        };
        let DayAgg {
            strings, grains, ..
        } = state;
        let g = &mut grains[grain.index()];
        if g.groups.is_empty() {
            return Ok(());
        }
        self.groups[grain.index()] -= g.groups.len();
        let batch = g.take_batch(strings)?;
        write_run(
            &mut g.file,
            grain,
            day,
            &batch,
            &self.staging,
            &self.txn,
            &self.props,
        )?;
        if grains.iter().all(|g| g.groups.is_empty()) {
            *strings = Default::default();
        }
        Ok(())
    }
}

/// A [`RollupWriter`] on a thread of its own, so that the committing thread (dedup, staging,
/// row-group encoding) does not also aggregate: it hands each accepted batch over and goes on.
/// Batches wait in a short bounded queue, so a slow rollup slows the ingest instead of
/// buffering without end.
pub struct RollupWorker {
    tx: Option<Sender<(i32, RecordBatch)>>,
    handle: Option<JoinHandle<Result<Vec<StagedPart>>>>,
    abandon: Arc<AtomicBool>,
}

impl RollupWorker {
    /// Starts `writer` on its own thread.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn spawn(writer: RollupWriter) -> Result<Self> {
        let (tx, rx) = bounded::<(i32, RecordBatch)>(4);
        let abandon = Arc::new(AtomicBool::new(false));
        let abandoned = Arc::clone(&abandon);
        let handle = std::thread::Builder::new()
            .name("verdict-rollup".into())
            .spawn(move || {
                let mut writer = writer;
                for (day, batch) in rx {
                    writer.push(day, &batch)?;
                }
                if abandoned.load(Ordering::Acquire) {
                    return Ok(Vec::new());
                }
                writer.finish()
            })
            .map_err(|e| Error::Internal(format!("starting the rollup thread: {e}")))?;
        Ok(Self {
            tx: Some(tx),
            handle: Some(handle),
            abandon,
        })
    }

    /// Hands over committed rows of UTC day `day` (see [`RollupWriter::push`]).
    ///
    /// # Errors
    /// The rollup thread's error, if it stopped on one.
    pub fn push(&mut self, day: i32, batch: RecordBatch) -> Result<()> {
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send((day, batch)).is_ok());
        if sent {
            return Ok(());
        }
        // The thread only stops receiving when it failed: report why.
        self.join()?;
        Err(Error::Internal("the rollup thread stopped".into()))
    }

    /// Waits for every handed-over batch, then writes the remaining groups and returns the
    /// staged rollup files (see [`RollupWriter::finish`]).
    ///
    /// # Errors
    /// The rollup thread's error.
    pub fn finish(mut self) -> Result<Vec<StagedPart>> {
        self.join()
    }

    fn join(&mut self) -> Result<Vec<StagedPart>> {
        self.tx = None;
        match self.handle.take() {
            Some(h) => h
                .join()
                .map_err(|_| Error::Internal("the rollup thread panicked".into()))?,
            None => Err(Error::Internal("the rollup thread already stopped".into())),
        }
    }
}

impl Drop for RollupWorker {
    /// An abandoned transaction: the thread stops without writing its groups out, and is waited
    /// for, so that nothing writes to the staging directory after the transaction is gone.
    fn drop(&mut self) {
        if self.handle.is_some() {
            self.abandon.store(true, Ordering::Release);
            let _ = self.join();
        }
    }
}

fn opt_str(a: &StringArray, i: usize) -> Option<&str> {
    if a.is_null(i) {
        None
    } else {
        Some(a.value(i))
    }
}

fn write_run(
    file: &mut Option<OpenFile>,
    grain: Grain,
    day: i32,
    batch: &RecordBatch,
    staging: &Path,
    txn: &str,
    props: &WriterProperties,
) -> Result<()> {
    if file.is_none() {
        let table = grain.table();
        let rel = table.file_path(Some(&day_string(day)), txn, None);
        let path = staging.join(table.name()).join(&rel);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
        }
        let created = File::create(&path).map_err(Error::io("creating", &path))?;
        let writer = ArrowWriter::try_new(created, rollup_schema(), Some(props.clone())).map_err(
            |source| Error::Parquet {
                path: path.clone(),
                source,
            },
        )?;
        *file = Some(OpenFile {
            writer,
            path,
            table,
            rel_final: rel,
            rows: 0,
        });
    }
    if let Some(f) = file.as_mut() {
        let pq = |source| Error::Parquet {
            path: f.path.clone(),
            source,
        };
        // One row group per decision (the run is sorted by decision first), so that a filter on
        // decision reads only its own row groups whatever the size of the run.
        let decision = batch.column(4).as_string_opt::<i32>().ok_or_else(|| {
            Error::Internal("rollup: a run does not have the rollup schema".into())
        })?;
        let mut start = 0;
        while start < batch.num_rows() {
            let d = decision.value(start);
            let mut end = start + 1;
            while end < batch.num_rows() && decision.value(end) == d {
                end += 1;
            }
            f.writer
                .write(&batch.slice(start, end - start))
                .map_err(pq)?;
            f.writer.flush().map_err(pq)?;
            start = end;
        }
        f.rows += batch.num_rows() as u64;
    }
    Ok(())
}

fn close(f: OpenFile, day: &str, min_ts: i64, max_ts: i64) -> Result<StagedPart> {
    let OpenFile {
        writer,
        path,
        table,
        rel_final,
        rows,
    } = f;
    let file = writer.into_inner().map_err(|source| Error::Parquet {
        path: path.clone(),
        source,
    })?;
    StagedPart::synced(&file, path, table, rel_final, day, rows, (min_ts, max_ts))
}

#[cfg(test)]
mod tests;
