//! Reading the warehouse for replay: the day partitions of a time range, each file decoded on
//! its own thread (only the columns replay needs), merged into `(ts, event_id)` order.
//! Memory is a few batches per file, whatever the number of rows.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use verdict_table::{Snapshot, Table};

use arrow::array::{Array, AsArray, Int32Array, RecordBatch, StringViewArray};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Int32Type, Schema, TimestampMicrosecondType};
use crossbeam_channel::{bounded, Receiver};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use verdict_policy::RecordedDecision;
use verdict_schema::{col, idx, strings_as};

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

/// One decoded batch with typed columns (cheap clones of Arrow buffers). Strings are read as
/// views: a dictionary-encoded page's values are not copied once per row, and a plain page's
/// values stay in the page's buffer.
pub struct BatchView {
    pub event_id: StringViewArray,
    pub ts: ScalarBuffer<i64>,
    pub identity: StringViewArray,
    pub identity_id: StringViewArray,
    pub session: StringViewArray,
    pub server: StringViewArray,
    pub method: StringViewArray,
    pub tool: StringViewArray,
    pub arg_keys_offsets: OffsetBuffer<i32>,
    pub arg_keys_nulls: Option<arrow::buffer::NullBuffer>,
    pub arg_key_values: StringViewArray,
    pub args: StringViewArray,
    pub decisions: Vec<RecordedDecision>,
    pub rule: StringViewArray,
    pub upstream: Int32Array,
    pub rows: usize,
}

#[inline]
fn opt(a: &StringViewArray, i: usize) -> Option<&str> {
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
        let s = |name: &str| -> Result<StringViewArray> {
            let c = batch.column_by_name(name).ok_or_else(|| col_err(name))?;
            c.as_string_view_opt().cloned().ok_or_else(|| col_err(name))
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
            .as_string_view_opt()
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

    #[inline]
    pub fn identity(&self, i: usize) -> Option<&str> {
        opt(&self.identity, i)
    }
    #[inline]
    pub fn identity_id(&self, i: usize) -> Option<&str> {
        opt(&self.identity_id, i)
    }
    #[inline]
    pub fn session(&self, i: usize) -> Option<&str> {
        opt(&self.session, i)
    }
    #[inline]
    pub fn server(&self, i: usize) -> Option<&str> {
        opt(&self.server, i)
    }
    #[inline]
    pub fn method(&self, i: usize) -> Option<&str> {
        opt(&self.method, i)
    }
    #[inline]
    pub fn tool(&self, i: usize) -> Option<&str> {
        opt(&self.tool, i)
    }
    #[inline]
    pub fn args(&self, i: usize) -> Option<&str> {
        opt(&self.args, i)
    }
    #[inline]
    pub fn rule(&self, i: usize) -> Option<&str> {
        opt(&self.rule, i).filter(|r| !r.is_empty())
    }
    #[inline]
    pub fn upstream(&self, i: usize) -> Option<i32> {
        if self.upstream.is_null(i) {
            None
        } else {
            Some(self.upstream.value(i))
        }
    }

    /// Appends the row's argument keys to `buf`; false when the log has none (null list).
    #[inline]
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

/// One data file to read: its place in the `decisions` table, and its local path when the
/// warehouse is on local disk.
#[derive(Debug, Clone)]
pub struct DataFile {
    /// Relative to the table.
    pub path: String,
    /// On local disk.
    pub local: Option<PathBuf>,
}

/// The files of each day partition of the snapshot overlapping `[lo, hi)`, oldest day first.
pub fn plan(snapshot: &Snapshot, lo: Option<i64>, hi: Option<i64>) -> Vec<Vec<DataFile>> {
    use verdict_schema::time::{day_number, day_string};
    let first = lo.map(|t| day_string(day_number(t)));
    let last = hi.map(|t| day_string(day_number(t - 1)));
    let Some(d) = &snapshot.decisions else {
        return Vec::new();
    };
    let mut days: std::collections::BTreeMap<&str, Vec<DataFile>> = Default::default();
    for f in &d.files {
        let Some(day) = f.partition.as_deref() else {
            continue;
        };
        if first.as_deref().is_some_and(|x| day < x) || last.as_deref().is_some_and(|l| day > l) {
            continue;
        }
        days.entry(day).or_default().push(DataFile {
            path: f.path.clone(),
            local: snapshot.warehouse().local_path(Table::Decisions, &f.path),
        });
    }
    days.into_values()
        .map(|mut v| {
            v.sort_by(|a, b| a.path.cmp(&b.path));
            v
        })
        .collect()
}

fn spawn_reader<'s>(
    s: &'s std::thread::Scope<'s, '_>,
    snapshot: &'s Snapshot,
    file: DataFile,
) -> Receiver<Result<BatchView>> {
    let (tx, rx) = bounded(4);
    s.spawn(move || {
        let name = PathBuf::from(format!("{}/{}", Table::Decisions.name(), file.path));
        let damaged = |message: String| {
            let version = snapshot.version().unwrap_or(0);
            let wh = snapshot.warehouse();
            let added = verdict_table::block_on(wh.added_in(Table::Decisions, &file.path, version))
                .ok()
                .flatten();
            Error::Damaged(verdict_table::Error::Damaged {
                table: Table::Decisions.name(),
                path: format!("{}/{}", wh.location(), name.display()),
                version: added.map_or("?".into(), |v| v.to_string()),
                message,
            })
        };
        let run = || -> Result<()> {
            let expected = snapshot
                .decisions
                .as_ref()
                .and_then(|d| d.files.iter().find(|f| f.path == file.path))
                .map(|f| f.size);
            let reader = match &file.local {
                Some(p) => {
                    let f = File::open(p).map_err(|e| damaged(format!("cannot open it: {e}")))?;
                    let len = f.metadata().map(|m| m.len()).ok();
                    if let (Some(len), Some(want)) = (len, expected) {
                        if len != want {
                            return Err(damaged(format!(
                                "it holds {len} bytes and its commit recorded {want}"
                            )));
                        }
                    }
                    open_reader(f)
                }
                None => {
                    let bytes = verdict_table::block_on(
                        snapshot.warehouse().read_file(Table::Decisions, &file.path),
                    )
                    .map_err(|e| damaged(e.to_string()))?;
                    open_reader(bytes)
                }
            }
            .map_err(|e| damaged(format!("not valid Parquet: {e}")))?;
            for batch in reader {
                let batch = batch.map_err(|e| damaged(format!("not valid Parquet: {e}")))?;
                if tx.send(Ok(BatchView::new(&batch, &name)?)).is_err() {
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

fn open_reader<R: parquet::file::reader::ChunkReader + 'static>(
    r: R,
) -> parquet::errors::Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
    let meta = ArrowReaderMetadata::load(&r, ArrowReaderOptions::new())?;
    // Lists too: replay reads `arg_keys`' items itself.
    let views = Arc::new(Schema::new(strings_as(
        meta.schema(),
        &DataType::Utf8,
        &DataType::Utf8View,
        true,
    )));
    let meta = ArrowReaderMetadata::try_new(
        Arc::clone(meta.metadata()),
        ArrowReaderOptions::new().with_schema(views),
    )?;
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(r, meta);
    let mask = ProjectionMask::roots(builder.parquet_schema(), PROJECTION);
    builder.with_projection(mask).with_batch_size(8192).build()
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
    snapshot: &Snapshot,
    days: &[Vec<DataFile>],
    mut f: impl FnMut(&BatchView, usize) -> Result<()>,
) -> Result<()> {
    for files in days {
        std::thread::scope(|s| -> Result<()> {
            let mut cursors = Vec::with_capacity(files.len());
            for p in files {
                if let Some(c) = Cursor::open(spawn_reader(s, snapshot, p.clone()))? {
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
