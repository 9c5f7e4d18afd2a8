//! Reading the warehouse for replay: the day partitions of a time range, each file decoded on
//! its own thread (only the columns replay needs), merged into `(ts, event_id)` order.
//! Memory is a few batches per file, whatever the number of rows.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, Int32Array, RecordBatch, StringArray};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Int32Type, TimestampMicrosecondType};
use crossbeam_channel::{bounded, Receiver};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use verdict_policy::RecordedDecision;
use verdict_schema::{col, idx};

use crate::error::{Error, Result};

/// Root column indexes replay reads.
const PROJECTION: [usize; 13] = [
    idx::EVENT_ID,
    idx::TS,
    idx::IDENTITY,
    idx::IDENTITY_ID,
    idx::SESSION,
    idx::SERVER,
    idx::METHOD,
    idx::TOOL,
    idx::ARG_KEYS,
    idx::ARGS,
    idx::DECISION,
    idx::RULE,
    idx::UPSTREAM_STATUS,
];

/// One decoded batch with typed columns (cheap clones of Arrow buffers).
pub struct BatchView {
    pub event_id: StringArray,
    pub ts: ScalarBuffer<i64>,
    pub identity: StringArray,
    pub identity_id: StringArray,
    pub session: StringArray,
    pub server: StringArray,
    pub method: StringArray,
    pub tool: StringArray,
    pub arg_keys_offsets: OffsetBuffer<i32>,
    pub arg_keys_nulls: Option<arrow::buffer::NullBuffer>,
    pub arg_key_values: StringArray,
    pub args: StringArray,
    pub decisions: Vec<RecordedDecision>,
    pub rule: StringArray,
    pub upstream: Int32Array,
    pub rows: usize,
}

fn opt(a: &StringArray, i: usize) -> Option<&str> {
    if a.is_null(i) {
        None
    } else {
        Some(a.value(i))
    }
}

impl BatchView {
    fn new(batch: &RecordBatch, path: &Path) -> Result<Self> {
        let col_err = |name: &str| Error::Column {
            path: path.to_path_buf(),
            message: format!("column {name} has an unexpected type"),
        };
        let s = |name: &str| -> Result<StringArray> {
            let c = batch.column_by_name(name).ok_or_else(|| col_err(name))?;
            c.as_string_opt::<i32>()
                .cloned()
                .ok_or_else(|| col_err(name))
        };
        let ts = batch
            .column_by_name(col::TS)
            .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
            .ok_or_else(|| col_err(col::TS))?
            .values()
            .clone();
        let keys = batch
            .column_by_name(col::ARG_KEYS)
            .ok_or_else(|| col_err(col::ARG_KEYS))?;
        let list = keys
            .as_list_opt::<i32>()
            .ok_or_else(|| col_err(col::ARG_KEYS))?;
        let arg_key_values = list
            .values()
            .as_string_opt::<i32>()
            .cloned()
            .ok_or_else(|| col_err(col::ARG_KEYS))?;
        let dec = batch
            .column_by_name(col::DECISION)
            .ok_or_else(|| col_err(col::DECISION))?;
        let decisions = match dec.data_type() {
            DataType::Dictionary(_, _) => {
                let d = dec
                    .as_dictionary_opt::<Int32Type>()
                    .ok_or_else(|| col_err(col::DECISION))?;
                let values = d
                    .values()
                    .as_string_opt::<i32>()
                    .ok_or_else(|| col_err(col::DECISION))?;
                let map: Vec<RecordedDecision> = values
                    .iter()
                    .map(|v| RecordedDecision::from_name(v.unwrap_or("")))
                    .collect();
                d.keys()
                    .values()
                    .iter()
                    .map(|&k| {
                        map.get(k as usize)
                            .copied()
                            .unwrap_or(RecordedDecision::Unknown)
                    })
                    .collect()
            }
            _ => {
                let a = dec
                    .as_string_opt::<i32>()
                    .ok_or_else(|| col_err(col::DECISION))?;
                a.iter()
                    .map(|v| RecordedDecision::from_name(v.unwrap_or("")))
                    .collect()
            }
        };
        let upstream = batch
            .column_by_name(col::UPSTREAM_STATUS)
            .and_then(|c| c.as_primitive_opt::<Int32Type>())
            .ok_or_else(|| col_err(col::UPSTREAM_STATUS))?
            .clone();
        Ok(Self {
            event_id: s(col::EVENT_ID)?,
            ts,
            identity: s(col::IDENTITY)?,
            identity_id: s(col::IDENTITY_ID)?,
            session: s(col::SESSION)?,
            server: s(col::SERVER)?,
            method: s(col::METHOD)?,
            tool: s(col::TOOL)?,
            arg_keys_offsets: list.offsets().clone(),
            arg_keys_nulls: list.nulls().cloned(),
            arg_key_values,
            args: s(col::ARGS)?,
            decisions,
            rule: s(col::RULE)?,
            upstream,
            rows: batch.num_rows(),
        })
    }

    pub fn identity(&self, i: usize) -> Option<&str> {
        opt(&self.identity, i)
    }
    pub fn identity_id(&self, i: usize) -> Option<&str> {
        opt(&self.identity_id, i)
    }
    pub fn session(&self, i: usize) -> Option<&str> {
        opt(&self.session, i)
    }
    pub fn server(&self, i: usize) -> Option<&str> {
        opt(&self.server, i)
    }
    pub fn method(&self, i: usize) -> Option<&str> {
        opt(&self.method, i)
    }
    pub fn tool(&self, i: usize) -> Option<&str> {
        opt(&self.tool, i)
    }
    pub fn args(&self, i: usize) -> Option<&str> {
        opt(&self.args, i)
    }
    pub fn rule(&self, i: usize) -> Option<&str> {
        opt(&self.rule, i).filter(|r| !r.is_empty())
    }
    pub fn upstream(&self, i: usize) -> Option<i32> {
        if self.upstream.is_null(i) {
            None
        } else {
            Some(self.upstream.value(i))
        }
    }

    /// Appends the row's argument keys to `buf`; false when the log has none (null list).
    pub fn arg_keys_into<'a>(&'a self, i: usize, buf: &mut Vec<&'a str>) -> bool {
        if self.arg_keys_nulls.as_ref().is_some_and(|n| n.is_null(i)) {
            return false;
        }
        let off = &self.arg_keys_offsets;
        for j in off[i] as usize..off[i + 1] as usize {
            buf.push(self.arg_key_values.value(j));
        }
        true
    }
}

/// The files of each day partition overlapping `[lo, hi)`, oldest day first.
pub fn plan(
    wh: &verdict_ingest::Warehouse,
    lo: Option<i64>,
    hi: Option<i64>,
) -> Result<Vec<Vec<PathBuf>>> {
    use verdict_schema::time::{day_number, day_string};
    let first = lo.map(|t| day_string(day_number(t)));
    let last = hi.map(|t| day_string(day_number(t - 1)));
    let mut out = Vec::new();
    for day in wh.days()? {
        if first.as_ref().is_some_and(|f| &day < f) || last.as_ref().is_some_and(|l| &day > l) {
            continue;
        }
        let files = wh.day_files(&day)?;
        if !files.is_empty() {
            out.push(files);
        }
    }
    Ok(out)
}

fn spawn_reader<'s>(
    s: &'s std::thread::Scope<'s, '_>,
    path: PathBuf,
) -> Receiver<Result<BatchView>> {
    let (tx, rx) = bounded(4);
    s.spawn(move || {
        let run = || -> Result<()> {
            let pq = |source| Error::Parquet {
                path: path.clone(),
                source,
            };
            let file = File::open(&path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?;
            let mask = ProjectionMask::roots(builder.parquet_schema(), PROJECTION);
            let reader = builder
                .with_projection(mask)
                .with_batch_size(8192)
                .build()
                .map_err(pq)?;
            for batch in reader {
                let batch = batch.map_err(|e| Error::Column {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                if tx.send(Ok(BatchView::new(&batch, &path)?)).is_err() {
                    break;
                }
            }
            Ok(())
        };
        if let Err(e) = run() {
            let _ = tx.send(Err(e));
        }
    });
    rx
}

struct Cursor {
    rx: Receiver<Result<BatchView>>,
    view: BatchView,
    row: usize,
}

impl Cursor {
    fn open(rx: Receiver<Result<BatchView>>) -> Result<Option<Self>> {
        for item in rx.iter() {
            let view = item?;
            if view.rows > 0 {
                return Ok(Some(Self { rx, view, row: 0 }));
            }
        }
        Ok(None)
    }

    /// Moves to the next row; false at the end of the file.
    fn advance(&mut self) -> Result<bool> {
        self.row += 1;
        while self.row >= self.view.rows {
            match self.rx.recv() {
                Ok(item) => {
                    self.view = item?;
                    self.row = 0;
                }
                Err(_) => return Ok(false),
            }
        }
        Ok(true)
    }

    fn key(&self) -> (i64, &str) {
        (self.view.ts[self.row], self.view.event_id.value(self.row))
    }
}

struct HeapItem {
    ts: i64,
    id: String,
    cursor: usize,
}

impl PartialEq for HeapItem {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for HeapItem {}
impl PartialOrd for HeapItem {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for HeapItem {
    fn cmp(&self, o: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the smallest (ts, event_id) first.
        (o.ts, &o.id, o.cursor).cmp(&(self.ts, &self.id, self.cursor))
    }
}

/// Calls `f(view, row)` for every row of the planned days in `(ts, event_id)` order, stopping at
/// the first error `f` returns. Within a file rows are already in that order; files of one day are
/// merged.
pub fn for_each_row(
    days: &[Vec<PathBuf>],
    mut f: impl FnMut(&BatchView, usize) -> Result<()>,
) -> Result<()> {
    for files in days {
        std::thread::scope(|s| -> Result<()> {
            let mut cursors = Vec::with_capacity(files.len());
            for p in files {
                if let Some(c) = Cursor::open(spawn_reader(s, p.clone()))? {
                    cursors.push(c);
                }
            }
            if cursors.len() == 1 {
                let mut c = cursors.pop().ok_or_else(|| Error::Column {
                    path: PathBuf::new(),
                    message: "cursor".into(),
                })?;
                loop {
                    for i in c.row..c.view.rows {
                        f(&c.view, i)?;
                    }
                    c.row = c.view.rows - 1;
                    if !c.advance()? {
                        break;
                    }
                }
                return Ok(());
            }
            let mut heap = BinaryHeap::with_capacity(cursors.len());
            for (i, c) in cursors.iter().enumerate() {
                let (ts, id) = c.key();
                heap.push(HeapItem {
                    ts,
                    id: id.to_string(),
                    cursor: i,
                });
            }
            while let Some(top) = heap.pop() {
                let c = &mut cursors[top.cursor];
                f(&c.view, c.row)?;
                if c.advance()? {
                    let (ts, id) = c.key();
                    heap.push(HeapItem {
                        ts,
                        id: id.to_string(),
                        cursor: top.cursor,
                    });
                }
            }
            Ok(())
        })?;
    }
    Ok(())
}
