//! The ingest-time rollup: aggregates the rows a transaction commits (after dedup) per UTC minute
//! and per UTC hour x identity x tool x server x decision x rule x message, and stages one rollup
//! file per grain and day partition. Committing the files is `warehouse`'s job, with the
//! decisions parts of the same transaction.
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

#[derive(Default)]
struct DayAgg {
    index: FxHashMap<Key, u32>,
    groups: Vec<Group>,
    strings: [Interner; DIMS],
    file: Option<OpenFile>,
    min_ts: i64,
    max_ts: i64,
    seen: bool,
}

impl DayAgg {
    fn add(
        &mut self,
        bucket: i64,
        decision: u8,
        dims: [Option<&str>; DIMS],
        calls: i64,
        first: i64,
        last: i64,
    ) -> bool {
        let mut ids = [NULL; DIMS];
        for (i, d) in dims.into_iter().enumerate() {
            ids[i] = self.strings[i].id(d);
        }
        let key = (bucket, decision, ids);
        if self.seen {
            self.min_ts = self.min_ts.min(first);
            self.max_ts = self.max_ts.max(last);
        } else {
            (self.min_ts, self.max_ts, self.seen) = (first, last, true);
        }
        match self.index.get(&key) {
            Some(&g) => {
                let g = &mut self.groups[g as usize];
                g.calls += calls;
                g.first = g.first.min(first);
                g.last = g.last.max(last);
                false
            }
            None => {
                self.index.insert(key, self.groups.len() as u32);
                self.groups.push(Group {
                    key,
                    calls,
                    first,
                    last,
                });
                true
            }
        }
    }

    /// The groups as one batch of the rollup schema, sorted by decision, identity, tool,
    /// server, rule, message and bucket (so that a filter on decision skips row groups);
    /// forgets them.
    fn take_batch(&mut self) -> Result<RecordBatch> {
        let mut groups = std::mem::take(&mut self.groups);
        self.index = FxHashMap::default();
        let strings = std::mem::take(&mut self.strings);
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

/// The aggregation of one grain, per day.
struct GrainAgg {
    grain: Grain,
    days: BTreeMap<i32, DayAgg>,
    groups: usize,
}

/// Builds a transaction's rollup files.
pub struct RollupWriter {
    staging: PathBuf,
    txn: String,
    props: WriterProperties,
    max_groups: usize,
    minute: GrainAgg,
    hour: GrainAgg,
}

impl RollupWriter {
    /// A writer staging under `staging` (the transaction's staging directory) for `txn`; each
    /// grain keeps at most about `max_groups` groups in memory.
    pub fn new(staging: &Path, txn: &str, props: WriterProperties, max_groups: usize) -> Self {
        let agg = |grain| GrainAgg {
            grain,
            days: BTreeMap::new(),
            groups: 0,
        };
        Self {
            staging: staging.to_path_buf(),
            txn: txn.to_string(),
            props,
            max_groups: max_groups.max(1),
            minute: agg(Grain::Minute),
            hour: agg(Grain::Hour),
        }
    }

    /// Adds committed rows (of the decisions schema) that all belong to UTC day `day`.
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
        let grain = self.minute.grain;
        let agg = self.minute.days.entry(day).or_default();
        let mut added = 0;
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
            if agg.add(grain.bucket(t), code, d, 1, t, t) {
                added += 1;
            }
        }
        self.minute.groups += added;
        while self.minute.groups > self.max_groups {
            let Some(largest) = largest_day(&self.minute) else {
                break;
            };
            self.flush_minute(largest)?;
        }
        Ok(())
    }

    /// Writes every group, closes every file and returns the staged rollup files, minute files
    /// first.
    ///
    /// # Errors
    /// When writing or closing a file fails.
    pub fn finish(mut self) -> Result<Vec<StagedPart>> {
        let days: Vec<i32> = self.minute.days.keys().copied().collect();
        for day in &days {
            self.flush_minute(*day)?;
        }
        let hour_days: Vec<i32> = self.hour.days.keys().copied().collect();
        for day in &hour_days {
            self.flush_hour(*day)?;
        }
        let mut out = Vec::new();
        for agg in [&mut self.minute, &mut self.hour] {
            for (day, state) in std::mem::take(&mut agg.days) {
                if let Some(f) = state.file {
                    out.push(close(f, &day_string(day), state.min_ts, state.max_ts)?);
                }
            }
        }
        Ok(out)
    }

    /// Writes one day's minute groups as a sorted run and adds them to the hour grain.
    fn flush_minute(&mut self, day: i32) -> Result<()> {
        let Some(batch) = take_run(&mut self.minute, day)? else {
            return Ok(());
        };
        write_run(
            &mut self.minute,
            day,
            &batch,
            &self.staging,
            &self.txn,
            &self.props,
        )?;
        let agg = self.hour.days.entry(day).or_default();
        let added = add_run(agg, Grain::Hour, &batch)?;
        self.hour.groups += added;
        while self.hour.groups > self.max_groups {
            let Some(largest) = largest_day(&self.hour) else {
                break;
            };
            self.flush_hour(largest)?;
        }
        Ok(())
    }

    fn flush_hour(&mut self, day: i32) -> Result<()> {
        let Some(batch) = take_run(&mut self.hour, day)? else {
            return Ok(());
        };
        write_run(
            &mut self.hour,
            day,
            &batch,
            &self.staging,
            &self.txn,
            &self.props,
        )
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

fn largest_day(agg: &GrainAgg) -> Option<i32> {
    agg.days
        .iter()
        .filter(|(_, s)| !s.groups.is_empty())
        .max_by_key(|(_, s)| s.groups.len())
        .map(|(d, _)| *d)
}

fn take_run(agg: &mut GrainAgg, day: i32) -> Result<Option<RecordBatch>> {
    let Some(state) = agg.days.get_mut(&day) else {
        return Ok(None);
    };
    if state.groups.is_empty() {
        return Ok(None);
    }
    agg.groups -= state.groups.len();
    state.take_batch().map(Some)
}

/// Adds a run of finer rollup rows to a coarser grain's day; returns the new groups.
fn add_run(agg: &mut DayAgg, grain: Grain, batch: &RecordBatch) -> Result<usize> {
    let bad = || Error::Internal("rollup: a run does not have the rollup schema".into());
    let ts = |i: usize| {
        batch
            .column(i)
            .as_primitive_opt::<TimestampMicrosecondType>()
            .ok_or_else(bad)
    };
    let s = |i: usize| batch.column(i).as_string_opt::<i32>().ok_or_else(bad);
    let (bucket, first, last) = (ts(0)?, ts(8)?, ts(9)?);
    let (identity, tool, server, decision, rule, message) =
        (s(1)?, s(2)?, s(3)?, s(4)?, s(5)?, s(6)?);
    let calls = batch
        .column(7)
        .as_primitive_opt::<arrow::datatypes::Int64Type>()
        .ok_or_else(bad)?;
    let mut added = 0;
    for i in 0..batch.num_rows() {
        let code = Decision::ALL
            .iter()
            .position(|d| d.as_str() == decision.value(i))
            .ok_or_else(bad)? as u8;
        let dims = [
            opt_str(identity, i),
            opt_str(tool, i),
            opt_str(server, i),
            opt_str(rule, i),
            opt_str(message, i),
        ];
        if agg.add(
            grain.bucket(bucket.value(i)),
            code,
            dims,
            calls.value(i),
            first.value(i),
            last.value(i),
        ) {
            added += 1;
        }
    }
    Ok(added)
}

fn write_run(
    agg: &mut GrainAgg,
    day: i32,
    batch: &RecordBatch,
    staging: &Path,
    txn: &str,
    props: &WriterProperties,
) -> Result<()> {
    let state = agg.days.entry(day).or_default();
    if state.file.is_none() {
        let table = agg.grain.table();
        let rel = table.file_path(Some(&day_string(day)), txn, None);
        let path = staging.join(table.name()).join(&rel);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
        }
        let file = File::create(&path).map_err(Error::io("creating", &path))?;
        let writer =
            ArrowWriter::try_new(file, rollup_schema(), Some(props.clone())).map_err(|source| {
                Error::Parquet {
                    path: path.clone(),
                    source,
                }
            })?;
        state.file = Some(OpenFile {
            writer,
            path,
            table,
            rel_final: rel,
            rows: 0,
        });
    }
    if let Some(f) = state.file.as_mut() {
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
