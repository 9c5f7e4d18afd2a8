//! The dedup index in use: which `(source, event_id)` keys the warehouse holds, with a hash of
//! each record's content, looked up by bucket from the `event_keys` table. The same structure
//! serves the `quarantine_keys` table (the keys of quarantined lines, content 0).
//!
//! Memory stays bounded: buckets are loaded on first use and the least recently used ones are
//! dropped past `max_keys`; the keys of the open transaction stay until it commits. A dropped
//! bucket is read again from the table when a later row needs it, so dedup stays exact (at the
//! price of re-reading when the index is much larger than the budget).

use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::Int64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use rustc_hash::FxHashMap;
use verdict_schema::idx;
use verdict_table::{event_keys_schema, key_bucket, Table, TableSnapshot, Warehouse};
use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, Result};

/// What the index says of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not stored yet: accepted (and now pending).
    New,
    /// Stored (or pending) with the same content.
    Duplicate,
    /// Stored (or pending) with other content: the stored content hash.
    Conflict(u64),
}

/// Keys known to the warehouse, loaded per bucket.
pub struct KeyIndex {
    table: Table,
    max_keys: usize,
    buckets: FxHashMap<i32, (u64, FxHashMap<u128, u64>)>,
    pending: FxHashMap<u128, u64>,
    clock: u64,
    /// Buckets dropped to stay within the budget.
    pub evicted: u64,
}

impl KeyIndex {
    /// An empty index in use over the bucketed key table `table`, holding about `max_keys`
    /// loaded keys at most.
    pub fn new(table: Table, max_keys: usize) -> Self {
        Self {
            table,
            max_keys: max_keys.max(1),
            buckets: FxHashMap::default(),
            pending: FxHashMap::default(),
            clock: 0,
            evicted: 0,
        }
    }

    /// The budget of loaded keys.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// Checks a key against the table and the open transaction, and records it as pending
    /// when new.
    ///
    /// # Errors
    /// When a bucket of the index cannot be read.
    pub fn check(
        &mut self,
        wh: &Warehouse,
        snap: &TableSnapshot,
        key: u128,
        content: u64,
    ) -> Result<Seen> {
        if let Some(&c) = self.pending.get(&key) {
            return Ok(verdict(c, content));
        }
        let b = key_bucket(key);
        self.clock += 1;
        if !self.buckets.contains_key(&b) {
            let keys = load_bucket(wh, self.table, snap, b)?;
            self.buckets.insert(b, (self.clock, keys));
            self.evict(b);
        }
        let (used, keys) = self
            .buckets
            .get_mut(&b)
            .ok_or_else(|| Error::Internal("index bucket".into()))?;
        *used = self.clock;
        if let Some(&c) = keys.get(&key) {
            return Ok(verdict(c, content));
        }
        self.pending.insert(key, content);
        Ok(Seen::New)
    }

    fn evict(&mut self, keep: i32) {
        let mut total: usize = self.buckets.values().map(|(_, k)| k.len()).sum();
        while total > self.max_keys {
            let Some((&b, _)) = self
                .buckets
                .iter()
                .filter(|(b, _)| **b != keep)
                .min_by_key(|(_, (used, _))| *used)
            else {
                break;
            };
            if let Some((_, k)) = self.buckets.remove(&b) {
                total -= k.len();
                self.evicted += 1;
            }
        }
    }

    /// Writes the pending keys into one file per bucket under `dir`; returns
    /// `(bucket, path)` per file. The keys stay pending until [`KeyIndex::committed`].
    ///
    /// # Errors
    /// When a file cannot be written.
    pub fn write_pending(
        &self,
        dir: &std::path::Path,
        txn: &str,
    ) -> Result<Vec<(i32, String, std::path::PathBuf)>> {
        let mut per: std::collections::BTreeMap<i32, Vec<(u128, u64)>> = Default::default();
        for (&k, &c) in &self.pending {
            per.entry(key_bucket(k)).or_default().push((k, c));
        }
        let mut out = Vec::new();
        for (b, mut keys) in per {
            keys.sort_unstable();
            let rel = self.table.file_path(Some(&b.to_string()), txn, None);
            let path = dir.join(self.table.name()).join(&rel);
            write_keys(&path, &keys)?;
            out.push((b, rel, path));
        }
        Ok(out)
    }

    /// The pending keys are in the table now: they join their buckets where loaded.
    pub fn committed(&mut self) {
        for (k, c) in std::mem::take(&mut self.pending) {
            if let Some((_, keys)) = self.buckets.get_mut(&key_bucket(k)) {
                keys.insert(k, c);
            }
        }
    }

    /// Forgets the pending keys (their transaction was not committed).
    pub fn discard(&mut self) {
        self.pending.clear();
    }
}

fn verdict(stored: u64, content: u64) -> Seen {
    if stored == content {
        Seen::Duplicate
    } else {
        Seen::Conflict(stored)
    }
}

/// Writes a dedup index file of `(key, content)` pairs.
///
/// # Errors
/// When the file cannot be written.
pub fn write_keys(path: &std::path::Path, keys: &[(u128, u64)]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
    }
    let batch = RecordBatch::try_new(
        event_keys_schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(
                keys.iter().map(|(k, _)| (*k >> 64) as i64),
            )),
            Arc::new(Int64Array::from_iter_values(
                keys.iter().map(|(k, _)| *k as u64 as i64),
            )),
            Arc::new(Int64Array::from_iter_values(
                keys.iter().map(|(_, c)| *c as i64),
            )),
        ],
    )?;
    let file = std::fs::File::create(path).map_err(Error::io("creating", path))?;
    let pq = |source| Error::Parquet {
        path: path.to_path_buf(),
        source,
    };
    // Keys are hashes: a dictionary would never pay, so none is built.
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .set_dictionary_enabled(false)
        .build();
    let mut w = ArrowWriter::try_new(file, event_keys_schema(), Some(props)).map_err(pq)?;
    w.write(&batch).map_err(pq)?;
    let f = w.into_inner().map_err(pq)?;
    f.sync_all().map_err(Error::io("syncing", path))?;
    Ok(())
}

fn load_bucket(
    wh: &Warehouse,
    table: Table,
    snap: &TableSnapshot,
    bucket: i32,
) -> Result<FxHashMap<u128, u64>> {
    let mut keys = FxHashMap::default();
    let value = bucket.to_string();
    for f in snap.partition_files(&value) {
        let bytes = verdict_table::block_on(wh.read_file(table, &f.path))?;
        let pq = |source| Error::Parquet {
            path: std::path::PathBuf::from(&f.path),
            source,
        };
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.with_batch_size(64 * 1024).build())
            .map_err(pq)?;
        for batch in reader {
            let batch = batch?;
            let hi = batch.column(0).as_primitive::<Int64Type>();
            let lo = batch.column(1).as_primitive::<Int64Type>();
            let c = batch.column(2).as_primitive::<Int64Type>();
            keys.reserve(batch.num_rows());
            for i in 0..batch.num_rows() {
                let k = ((hi.value(i) as u64 as u128) << 64) | (lo.value(i) as u64 as u128);
                keys.insert(k, c.value(i) as u64);
            }
        }
    }
    Ok(keys)
}

/// A hash of a decision's content: its `raw` record when kept, else its main columns.
pub fn content_hash(batch: &RecordBatch, row: usize) -> u64 {
    let mut h = Xxh3::new();
    let raw = batch.column(idx::RAW).as_string::<i32>();
    if raw.is_valid(row) {
        h.update(raw.value(row).as_bytes());
        return h.digest();
    }
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    let opts = FormatOptions::default();
    // The record's own columns, not where it was read from (`ingest_*`).
    for c in &batch.columns()[..idx::RAW] {
        if let Ok(f) = ArrayFormatter::try_new(c.as_ref(), &opts) {
            h.update(f.value(row).to_string().as_bytes());
        }
        h.update(&[0]);
    }
    h.digest()
}
