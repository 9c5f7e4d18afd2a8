//! The dedup index in use: which `(source, event_id)` keys the warehouse holds, with a hash of
//! each record's content, looked up by bucket from the `event_keys` table. The same structure
//! serves the `quarantine_keys` table (the keys of quarantined lines, content 0).
//!
//! Memory is budgeted: buckets are loaded on first use, and past `max_keys` loaded keys the least
//! recently used ones move out of memory into a sorted run file (cold buckets: a filter and a
//! sparse index stay, about 2 bytes a key), used where they are from then on and taking the keys
//! committed later. Keys are uniform hashes, so a large run needs every bucket all the time: a
//! bucket dropped and read again from the table when needed would be read for nearly every row.
//! The open transaction's new keys are bounded too: past `max_pending` of them, a bucket's keys
//! go to sorted run files in a staging directory, with a filter and a sparse index in memory
//! ([`spill`], which cold buckets reuse).

mod spill;

use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::Int64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use rustc_hash::FxHashMap;
use verdict_schema::idx;
use verdict_table::{event_keys_schema, key_bucket, Table, TableSnapshot, Warehouse, KEY_BUCKETS};
use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, Result};
use spill::PendingBucket;

/// New keys of the open transaction held in memory at most, by default: 57,344 a bucket, what a
/// hash map of 65,536 slots holds without growing (about 1.6 MB each).
pub const DEFAULT_MAX_PENDING_KEYS: usize = 57_344 * KEY_BUCKETS as usize;

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
    buckets: FxHashMap<i32, Bucket>,
    /// Buckets moved out of memory past `max_keys`: their keys in a sorted run file, a filter
    /// and a sparse index in memory (about 2 bytes a key), keys committed since added as new
    /// keys are. Used where they are instead of read again from the table, which a run
    /// touching every bucket (keys are uniform hashes) would do for nearly every row.
    cold: FxHashMap<i32, PendingBucket>,
    /// Where cold buckets' runs go: made on the first eviction, kept with the index.
    cold_dir: Option<tempfile::TempDir>,
    /// The open transaction's new keys, per bucket (one map each keeps a growing map's
    /// rehash to a sixteenth of the keys), spilled to run files past `spill_at` a bucket.
    pending: FxHashMap<i32, PendingBucket>,
    spill_at: usize,
    /// Where spilled runs go, made on the first spill of a transaction.
    spill_dir: Option<tempfile::TempDir>,
    runs_made: u64,
    clock: u64,
    /// Buckets dropped to stay within the budget.
    pub evicted: u64,
}

/// A key (`(high, low)` halves of its 128-bit hash) and its content hash: 24 bytes, where a
/// `u128` key would pad the pair to 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    hi: u64,
    lo: u64,
    content: u64,
}

fn halves(key: u128) -> (u64, u64) {
    ((key >> 64) as u64, key as u64)
}

/// One loaded bucket: the table's keys sorted (24 bytes each, no hash table's slack), found by
/// interpolation since keys are uniform hashes, and the keys committed since it was loaded,
/// merged into the sorted part once they are many. A bit per key slot ([`Filter`]) answers most
/// lookups of a key it does not hold (nearly every key of new records) with one memory access.
#[derive(Debug, Default)]
struct Bucket {
    used: u64,
    sorted: Vec<Entry>,
    added: FxHashMap<(u64, u64), u64>,
    filter: Filter,
}

impl Bucket {
    fn new(used: u64, sorted: Vec<Entry>) -> Self {
        let mut b = Bucket {
            used,
            sorted,
            added: FxHashMap::default(),
            filter: Filter::default(),
        };
        b.refilter();
        b
    }

    fn len(&self) -> usize {
        self.sorted.len() + self.added.len()
    }

    /// Every key held and its content hash, sorted by key (the sorted part and the keys added
    /// since, which are not in it).
    fn entries(&self) -> impl Iterator<Item = ((u64, u64), u64)> + '_ {
        let mut added: Vec<((u64, u64), u64)> = self.added.iter().map(|(&k, &c)| (k, c)).collect();
        added.sort_unstable_by_key(|(k, _)| *k);
        let mut added = added.into_iter().peekable();
        let mut sorted = self
            .sorted
            .iter()
            .map(|e| ((e.hi, e.lo), e.content))
            .peekable();
        std::iter::from_fn(move || match (sorted.peek(), added.peek()) {
            (Some(s), Some(a)) if a.0 < s.0 => added.next(),
            // Committed again with another content: the later entry is the one kept.
            (Some(s), Some(a)) if a.0 == s.0 => {
                sorted.next();
                added.next()
            }
            (Some(_), _) => sorted.next(),
            (None, _) => added.next(),
        })
    }

    fn get(&self, k: (u64, u64)) -> Option<u64> {
        if !self.filter.may_hold(k.1) {
            return None;
        }
        self.added
            .get(&k)
            .copied()
            .or_else(|| find(&self.sorted, k))
    }

    fn add(&mut self, keys: impl IntoIterator<Item = ((u64, u64), u64)>) {
        for (k, c) in keys {
            self.filter.set(k.1);
            self.added.insert(k, c);
        }
        if self.added.len() > (self.sorted.len() / 8).max(4096) {
            let added = self.added.drain();
            self.sorted
                .extend(added.map(|((hi, lo), content)| Entry { hi, lo, content }));
            sort_keeping_last(&mut self.sorted);
        }
        if self.len() > self.filter.capacity() {
            self.refilter();
        }
    }

    /// A filter sized for the keys held now (and as many again), holding them.
    fn refilter(&mut self) {
        self.filter = Filter::for_keys(self.len() * 2);
        for e in &self.sorted {
            self.filter.set(e.lo);
        }
        for k in self.added.keys() {
            self.filter.set(k.1);
        }
    }
}

/// One bit per slot, set for every key held, the slot taken from the key's low half (keys are
/// uniform hashes; the bucket and the interpolation use the high half). Sixteen slots per key
/// at capacity: a key not held finds its bit set about 6% of the time. 2 bytes a key, against
/// the 24 of its entry.
#[derive(Debug, Default)]
struct Filter {
    words: Vec<u64>,
}

impl Filter {
    /// Slots per key at capacity.
    const SLOTS_PER_KEY: usize = 16;

    fn for_keys(keys: usize) -> Self {
        let slots = (keys.max(1024) * Self::SLOTS_PER_KEY).next_power_of_two();
        Filter {
            words: vec![0; slots / 64],
        }
    }

    /// Keys it holds at most before it should be rebuilt larger.
    fn capacity(&self) -> usize {
        self.words.len() * 64 / Self::SLOTS_PER_KEY
    }

    fn slot(&self, lo: u64) -> (usize, u64) {
        let slot = (lo as usize) & (self.words.len() * 64 - 1);
        (slot / 64, 1u64 << (slot % 64))
    }

    fn set(&mut self, lo: u64) {
        if self.words.is_empty() {
            *self = Filter::for_keys(0);
        }
        let (w, bit) = self.slot(lo);
        self.words[w] |= bit;
    }

    fn may_hold(&self, lo: u64) -> bool {
        if self.words.is_empty() {
            return false;
        }
        let (w, bit) = self.slot(lo);
        self.words[w] & bit != 0
    }
}

/// The entry of `k` in `v` (sorted by key, keys uniform): a few interpolation probes narrow
/// the range, a binary search finishes.
fn find(v: &[Entry], k: (u64, u64)) -> Option<u64> {
    let (mut a, mut b) = (0usize, v.len());
    for _ in 0..4 {
        if b - a <= 16 {
            break;
        }
        let (x, y) = (v[a].hi, v[b - 1].hi);
        if k.0 < x || k.0 > y {
            return None;
        }
        if x == y {
            break;
        }
        let span = (b - 1 - a) as u128;
        let pos = a + ((u128::from(k.0 - x) * span) / u128::from(y - x)) as usize;
        match (v[pos].hi, v[pos].lo).cmp(&k) {
            std::cmp::Ordering::Equal => return Some(v[pos].content),
            std::cmp::Ordering::Less => a = pos + 1,
            std::cmp::Ordering::Greater => b = pos,
        }
    }
    v[a..b]
        .binary_search_by(|e| (e.hi, e.lo).cmp(&k))
        .ok()
        .map(|i| v[a + i].content)
}

/// Sorts entries by key and keeps one entry per key: the one that came last (a later file's,
/// a later commit's), as a later insert into a map would. The sort is stable and finds runs
/// already in order, so a sorted bucket with a few entries appended sorts in about one pass.
fn sort_keeping_last(v: &mut Vec<Entry>) {
    v.sort_by_key(|e| (e.hi, e.lo));
    // `dedup_by` keeps the first of equal neighbours: copy the later one over it first.
    v.dedup_by(|later, kept| {
        let same = (later.hi, later.lo) == (kept.hi, kept.lo);
        if same {
            *kept = *later;
        }
        same
    });
}

impl KeyIndex {
    /// An empty index in use over the bucketed key table `table`, holding about `max_keys`
    /// loaded keys at most.
    pub fn new(table: Table, max_keys: usize) -> Self {
        Self {
            table,
            max_keys: max_keys.max(1),
            buckets: FxHashMap::default(),
            cold: FxHashMap::default(),
            cold_dir: None,
            pending: FxHashMap::default(),
            spill_at: DEFAULT_MAX_PENDING_KEYS / KEY_BUCKETS as usize,
            spill_dir: None,
            runs_made: 0,
            clock: 0,
            evicted: 0,
        }
    }

    /// The same index holding about `max_pending` new keys of a transaction in memory at most
    /// (the rest in run files, about 2 bytes a key in memory).
    #[must_use]
    pub fn spilling_past(mut self, max_pending: usize) -> Self {
        self.spill_at = (max_pending / KEY_BUCKETS as usize).max(1);
        self
    }

    /// An empty index with the same table and budgets (loaded buckets that may miss keys are
    /// then read again when needed).
    #[must_use]
    pub fn emptied(&self) -> Self {
        Self {
            spill_at: self.spill_at,
            ..Self::new(self.table, self.max_keys)
        }
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
        let b = key_bucket(key);
        let k = halves(key);
        if let Some(p) = self.pending.get(&b) {
            if let Some(c) = p.get(k)? {
                return Ok(verdict(c, content));
            }
        }
        self.clock += 1;
        if let Some(cold) = self.cold.get(&b) {
            if let Some(c) = cold.get(k)? {
                return Ok(verdict(c, content));
            }
        } else if !self.buckets.contains_key(&b) {
            let sorted = load_bucket(wh, self.table, snap, b)?;
            self.buckets.insert(b, Bucket::new(self.clock, sorted));
            self.evict(wh, b)?;
        }
        if let Some(bucket) = self.buckets.get_mut(&b) {
            bucket.used = self.clock;
            if let Some(c) = bucket.get(k) {
                return Ok(verdict(c, content));
            }
        }
        let (dir, made, spill_at) = (&mut self.spill_dir, &mut self.runs_made, self.spill_at);
        self.pending
            .entry(b)
            .or_default()
            .insert(k, content, spill_at, || {
                let dir = match dir {
                    Some(d) => d,
                    None => dir.insert(wh.staging()?),
                };
                *made += 1;
                Ok(dir.path().join(format!("keys-{b}-{made}.run")))
            })?;
        Ok(Seen::New)
    }

    /// Moves the least recently used buckets but `keep` out of memory (to cold runs) while
    /// the loaded ones hold more than `max_keys` keys.
    ///
    /// # Errors
    /// When a cold run cannot be written (the bucket then stays loaded).
    fn evict(&mut self, wh: &Warehouse, keep: i32) -> Result<()> {
        let mut total: usize = self.buckets.values().map(Bucket::len).sum();
        while total > self.max_keys {
            let Some((&b, _)) = self
                .buckets
                .iter()
                .filter(|(b, _)| **b != keep)
                .min_by_key(|(_, bucket)| bucket.used)
            else {
                break;
            };
            let path = self.cold_run_path(wh, b)?;
            let Some(bucket) = self.buckets.get(&b) else {
                break;
            };
            let cold = PendingBucket::cold(&path, bucket.len(), bucket.entries())?;
            if let Some(bucket) = self.buckets.remove(&b) {
                total -= bucket.len();
                self.evicted += 1;
            }
            self.cold.insert(b, cold);
        }
        Ok(())
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
        let mut per: Vec<(&i32, &PendingBucket)> =
            self.pending.iter().filter(|(_, p)| p.len() > 0).collect();
        per.sort_unstable_by_key(|(b, _)| **b);
        let mut out = Vec::new();
        for (&b, pending) in per {
            let rel = self.table.file_path(Some(&b.to_string()), txn, None);
            let path = dir.join(self.table.name()).join(&rel);
            let keys = pending
                .sorted()?
                .map(|e| e.map(|((hi, lo), c)| ((u128::from(hi) << 64) | u128::from(lo), c)));
            write_key_stream(&path, keys)?;
            out.push((b, rel, path));
        }
        Ok(out)
    }

    /// The pending keys are in the table now: they join their buckets, loaded or cold. A bucket
    /// whose new keys were spilled is dropped instead (read again from the table when a later
    /// key needs it), so that they do not all come back into memory at once. Loaded buckets
    /// past the budget then move out of memory, as when a bucket is loaded.
    ///
    /// A cold bucket takes its new keys as it took pending ones; should that fail (a run file
    /// that cannot be written), the bucket is dropped instead, to be read again from the
    /// table, so that no committed key can be missed.
    pub fn committed(&mut self, wh: &Warehouse) {
        let pending = std::mem::take(&mut self.pending);
        self.spill_dir = None;
        for (b, keys) in pending {
            if keys.is_spilled() {
                self.buckets.remove(&b);
                self.cold.remove(&b);
            } else if let Some(bucket) = self.buckets.get_mut(&b) {
                bucket.add(keys.recent);
            } else if self.cold.contains_key(&b) {
                if let Err(e) = self.add_cold(wh, b, keys.recent) {
                    tracing::warn!(bucket = b, error = %e, "a cold bucket of the dedup index is dropped; it will be read again from the table");
                }
            }
        }
        // Loaded buckets grow with what is committed (a collector's, commit after commit).
        if let Err(e) = self.evict(wh, i32::MIN) {
            tracing::warn!(error = %e, "the dedup index holds more keys in memory than its budget: a bucket could not be moved out");
        }
    }

    /// A new name for a run file of cold bucket `b`, in the index's directory (made on first
    /// use, in the warehouse's staging area).
    fn cold_run_path(&mut self, wh: &Warehouse, b: i32) -> Result<std::path::PathBuf> {
        let dir = match &self.cold_dir {
            Some(d) => d,
            None => self.cold_dir.insert(wh.staging()?),
        };
        self.runs_made += 1;
        Ok(dir.path().join(format!("cold-{b}-{}.run", self.runs_made)))
    }

    fn add_cold(
        &mut self,
        wh: &Warehouse,
        b: i32,
        keys: impl IntoIterator<Item = ((u64, u64), u64)>,
    ) -> Result<()> {
        // Out of the map while it takes the keys (a failure leaves it out: read again from the
        // table when needed).
        let mut cold = self
            .cold
            .remove(&b)
            .ok_or_else(|| Error::Internal("cold index bucket".into()))?;
        let spill_at = self.spill_at;
        for (k, c) in keys {
            cold.insert(k, c, spill_at, || self.cold_run_path(wh, b))?;
        }
        self.cold.insert(b, cold);
        Ok(())
    }

    /// Forgets the pending keys (their transaction was not committed).
    pub fn discard(&mut self) {
        self.pending.clear();
        self.spill_dir = None;
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
    write_key_stream(path, keys.iter().map(|&e| Ok(e)))
}

/// Writes a dedup index file of `(key, content)` pairs as they come, 65,536 at a time.
///
/// # Errors
/// When the file cannot be written or an entry is an error.
fn write_key_stream(
    path: &std::path::Path,
    keys: impl Iterator<Item = Result<(u128, u64)>>,
) -> Result<()> {
    const BATCH: usize = 64 * 1024;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
    }
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
    let mut chunk: Vec<(u128, u64)> = Vec::with_capacity(BATCH);
    let mut keys = keys.peekable();
    let mut first = true;
    // An empty list still writes one (empty) batch, as a file of no keys always had.
    while first || keys.peek().is_some() {
        first = false;
        chunk.clear();
        for e in keys.by_ref().take(BATCH) {
            chunk.push(e?);
        }
        let batch = RecordBatch::try_new(
            event_keys_schema(),
            vec![
                Arc::new(Int64Array::from_iter_values(
                    chunk.iter().map(|(k, _)| (*k >> 64) as i64),
                )),
                Arc::new(Int64Array::from_iter_values(
                    chunk.iter().map(|(k, _)| *k as u64 as i64),
                )),
                Arc::new(Int64Array::from_iter_values(
                    chunk.iter().map(|(_, c)| *c as i64),
                )),
            ],
        )?;
        w.write(&batch).map_err(pq)?;
    }
    let f = w.into_inner().map_err(pq)?;
    f.sync_all().map_err(Error::io("syncing", path))?;
    Ok(())
}

/// The keys of one bucket of `table` as a writer sees them: every file's, sorted, the later
/// file's entry kept where two hold the same key.
///
/// # Errors
/// A file that cannot be read.
pub(crate) fn load_bucket_keys(
    wh: &Warehouse,
    table: Table,
    snap: &TableSnapshot,
    bucket: i32,
) -> Result<Vec<(u128, u64)>> {
    Ok(load_bucket(wh, table, snap, bucket)?
        .into_iter()
        .map(|e| ((u128::from(e.hi) << 64) | u128::from(e.lo), e.content))
        .collect())
}

/// The keys of one bucket of the table, sorted; where the table holds a key twice, the entry of
/// the later file wins.
fn load_bucket(
    wh: &Warehouse,
    table: Table,
    snap: &TableSnapshot,
    bucket: i32,
) -> Result<Vec<Entry>> {
    let mut keys: Vec<Entry> = Vec::new();
    let value = bucket.to_string();
    for f in snap.partition_files(&value) {
        let bytes = verdict_table::block_on(wh.read_file(table, &f.path))?;
        let pq = |source| Error::Parquet {
            path: std::path::PathBuf::from(&f.path),
            source,
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(pq)?;
        let rows = usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
        keys.reserve_exact(rows);
        let reader = builder.with_batch_size(64 * 1024).build().map_err(pq)?;
        for batch in reader {
            let batch = batch?;
            let hi = batch.column(0).as_primitive::<Int64Type>();
            let lo = batch.column(1).as_primitive::<Int64Type>();
            let c = batch.column(2).as_primitive::<Int64Type>();
            keys.extend((0..batch.num_rows()).map(|i| Entry {
                hi: hi.value(i) as u64,
                lo: lo.value(i) as u64,
                content: c.value(i) as u64,
            }));
        }
    }
    sort_keeping_last(&mut keys);
    keys.shrink_to_fit();
    Ok(keys)
}

/// A hash of a decision's content: its `raw` record when kept, else its main columns.
pub fn content_hash(batch: &RecordBatch, row: usize) -> u64 {
    let raw = batch.column(idx::RAW).as_string::<i32>();
    if raw.is_valid(row) {
        // One shot: the same value as a streaming hash of the same bytes, without its state.
        return xxhash_rust::xxh3::xxh3_64(raw.value(row).as_bytes());
    }
    let mut h = Xxh3::new();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// splitmix64: uniform keys without a dependency (the spill tests use them too).
    pub(super) fn keys(seed: u64, n: usize) -> Vec<(u64, u64)> {
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        (0..n).map(|_| (next(), next())).collect()
    }

    fn sorted(ks: &[(u64, u64)]) -> Vec<Entry> {
        let mut v: Vec<Entry> = ks
            .iter()
            .enumerate()
            .map(|(i, &(hi, lo))| Entry {
                hi,
                lo,
                content: i as u64,
            })
            .collect();
        v.sort_unstable_by_key(|e| (e.hi, e.lo));
        v
    }

    #[test]
    fn find_answers_as_a_map_for_present_and_absent_keys() {
        for n in [0, 1, 2, 17, 1000, 100_000] {
            let ks = keys(n as u64 + 1, n);
            let v = sorted(&ks);
            for (i, &k) in ks.iter().enumerate() {
                assert_eq!(find(&v, k), Some(i as u64), "n={n} key {i}");
            }
            for k in keys(999, 2000) {
                assert_eq!(find(&v, k), None, "n={n}");
            }
            // Same high half, other low half: found only by the full key.
            if let Some(&(hi, lo)) = ks.first() {
                assert_eq!(find(&v, (hi, lo.wrapping_add(1))), None);
            }
        }
    }

    #[test]
    fn the_content_hash_of_a_raw_record_is_its_streamed_hash() {
        // Content hashes are stored in event_keys: the one-shot hash must keep their values.
        use verdict_schema::{Decision, DecisionBatchBuilder, DecisionRecord};
        let raw = format!("{{\"request_id\":\"r1\",\"pad\":\"{}\"}}", "y".repeat(700));
        let mut b = DecisionBatchBuilder::new(1, true);
        b.append(
            &DecisionRecord::new("r1", 0, "policylayer", Decision::Allow),
            &raw,
            Some("f"),
            Some(1),
        );
        let batch = b.finish().unwrap();
        let mut h = Xxh3::new();
        h.update(raw.as_bytes());
        assert_eq!(content_hash(&batch, 0), h.digest());
    }

    #[test]
    fn a_bucket_lists_its_keys_in_order_with_the_later_entry_of_a_key() {
        let ks = keys(11, 3_000);
        let mut b = Bucket::new(0, sorted(&ks[..2_000]));
        b.add(ks[2_000..].iter().map(|&k| (k, 7)));
        b.add([(ks[5], 99)]);
        assert!(!b.added.is_empty(), "the overlay is not merged yet");
        let listed: Vec<_> = b.entries().collect();
        assert_eq!(listed.len(), 3_000);
        assert!(
            listed.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, one entry a key"
        );
        for (k, c) in listed {
            assert_eq!(b.get(k), Some(c));
        }
        assert_eq!(b.get(ks[5]), Some(99));
    }

    #[test]
    fn find_handles_keys_that_share_their_high_half() {
        let v: Vec<Entry> = (0..100u64)
            .map(|lo| Entry {
                hi: 7,
                lo: lo * 2,
                content: lo,
            })
            .collect();
        for lo in 0..100u64 {
            assert_eq!(find(&v, (7, lo * 2)), Some(lo));
            assert_eq!(find(&v, (7, lo * 2 + 1)), None);
        }
        assert_eq!(find(&v, (6, 0)), None);
        assert_eq!(find(&v, (8, 0)), None);
    }

    #[test]
    fn a_bucket_keeps_every_key_across_merges_and_later_entries_win() {
        let ks = keys(5, 50_000);
        let mut b = Bucket::new(0, sorted(&ks[..10_000]));
        // Committed in runs: the overlay is merged into the sorted part along the way.
        for chunk in ks[10_000..].chunks(3_000) {
            b.add(chunk.iter().map(|&k| (k, 1)));
        }
        assert!(b.added.len() <= (b.sorted.len() / 8).max(4096));
        assert_eq!(b.len(), 50_000);
        for (i, &k) in ks.iter().enumerate() {
            let want = if i < 10_000 { i as u64 } else { 1 };
            assert_eq!(b.get(k), Some(want), "key {i}");
        }
        // A key committed again with another content: the later entry is the one kept, in the
        // overlay and once merged into the sorted part.
        b.add([(ks[3], 42)]);
        assert_eq!(b.get(ks[3]), Some(42));
        let merged_before = b.sorted.len();
        b.add(
            keys(6, 8_000)
                .into_iter()
                .map(|k| (k, 2))
                .chain([(ks[4], 43)]),
        );
        assert!(
            b.added.is_empty() && b.sorted.len() > merged_before,
            "merged"
        );
        assert_eq!(
            (b.get(ks[3]), b.get(ks[4]), b.get(ks[20_000])),
            (Some(42), Some(43), Some(1))
        );
        assert_eq!(b.len(), 50_000 + 8_000);
        // The filter grew with the keys (10,000 at load, 58,000 now) and turns most absent keys
        // away before any lookup; it never turns away a key the bucket holds (checked above).
        assert!(b.filter.capacity() >= b.len(), "{}", b.filter.capacity());
        let absent = keys(7, 10_000);
        let passed = absent.iter().filter(|k| b.filter.may_hold(k.1)).count();
        assert!(
            passed < 1_000,
            "{passed} of 10,000 absent keys passed the filter"
        );
        assert!(absent.iter().all(|&k| b.get(k).is_none()));
        // The same for entries read from the table: the later file's wins.
        let mut v = sorted(&ks[..3]);
        v.push(Entry {
            hi: ks[1].0,
            lo: ks[1].1,
            content: 99,
        });
        sort_keeping_last(&mut v);
        assert_eq!(v.len(), 3);
        assert_eq!(find(&v, ks[1]), Some(99));
    }
}
