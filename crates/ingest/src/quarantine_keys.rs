//! The keys of quarantined lines, kept in the `quarantine_keys` table so that a run which
//! quarantines a line reads the bucket of that line's key, not the whole quarantine.
//!
//! The table is derived from `quarantine` and records (app transaction `verdict.covers`) the
//! `quarantine` version it covers. A writer brings it up to date before its first look-up: from
//! the key columns of the files added since when they are all still there, else by reading the
//! key column of every quarantine file (the first run on a warehouse written before the table
//! existed, or after retention or erasure removed quarantined lines). So a key index that a crash
//! left behind, or that is missing, costs one catch-up and never a wrong answer.

use std::collections::BTreeMap;

use arrow::array::AsArray;
use serde_json::Value;
use verdict_table::{
    block_on, key_bucket, stats::describe, Commit, FileEntry, NewFile, Operation, Table,
    TableSnapshot, Warehouse, COVERS_APP_ID,
};

use crate::error::{Error, Result};
use crate::index::{write_keys, KeyIndex, Seen};

/// The quarantine key index of a writer: the table as read, and the buckets loaded.
pub(crate) struct QuarantineKeys {
    snap: TableSnapshot,
    index: KeyIndex,
}

impl QuarantineKeys {
    /// Opens the index (creating the table when missing) and brings it up to `quarantine`'s
    /// version; `max_keys` bounds the keys held in memory, `max_pending` the new keys of a
    /// transaction held in memory (the rest spilled to files).
    ///
    /// # Errors
    /// When a table or a quarantine file cannot be read, or the catch-up cannot be committed.
    pub(crate) fn open(
        wh: &Warehouse,
        quarantine: &TableSnapshot,
        max_keys: usize,
        max_pending: usize,
    ) -> Result<Self> {
        let snap = block_on(wh.open_for_write(Table::QuarantineKeys))?;
        let mut k = Self {
            snap,
            index: KeyIndex::new(Table::QuarantineKeys, max_keys).spilling_past(max_pending),
        };
        k.catch_up(wh, quarantine)?;
        Ok(k)
    }

    /// Whether `key` is new to the quarantine (then it is pending until [`Self::committed`]).
    ///
    /// # Errors
    /// When a bucket of the index cannot be read.
    pub(crate) fn insert(&mut self, wh: &Warehouse, key: u128) -> Result<bool> {
        Ok(self.index.check(wh, &self.snap, key, 0)? == Seen::New)
    }

    /// Commits the pending keys after the quarantine went from version `before` to `after` by
    /// one commit; when the index did not cover `before`, it is brought up to `after` instead.
    ///
    /// # Errors
    /// When a file cannot be written or the commit fails.
    pub(crate) fn commit(
        &mut self,
        wh: &Warehouse,
        quarantine: &TableSnapshot,
        before: i64,
        txn: &str,
    ) -> Result<()> {
        let covers = block_on(self.snap.app_version(COVERS_APP_ID))?;
        if covers != Some(before) || quarantine.version != before + 1 {
            self.index.discard();
            return self.catch_up(wh, quarantine);
        }
        let staging = wh.staging()?;
        let mut c = Commit::new(Operation::Append);
        for (b, rel, path) in self.index.write_pending(staging.path(), txn)? {
            c.adds.push(place(wh, b, &rel, &path)?);
        }
        c.app_txns = vec![(COVERS_APP_ID.to_string(), quarantine.version)];
        c.info.insert("verdict.txn".into(), Value::from(txn));
        self.snap = block_on(wh.commit(&self.snap, c))?;
        self.index.committed(wh);
        Ok(())
    }

    /// Brings the table up to `quarantine`'s version.
    fn catch_up(&mut self, wh: &Warehouse, quarantine: &TableSnapshot) -> Result<()> {
        let covers = block_on(self.snap.app_version(COVERS_APP_ID))?;
        if covers == Some(quarantine.version) {
            return Ok(());
        }
        let mut c = Commit::new(Operation::Append);
        c.app_txns = vec![(COVERS_APP_ID.to_string(), quarantine.version)];
        // Only the files added since, when they are all still there; else rebuild it whole.
        let files = match block_on(wh.added_since(quarantine, covers))? {
            Some(added) => added,
            None => {
                c.operation = Operation::Rebuild;
                c.removes = self.snap.files.clone();
                quarantine.files.iter().collect()
            }
        };
        let mut per: BTreeMap<i32, Vec<(u128, u64)>> = BTreeMap::new();
        for k in read_keys(wh, &files)? {
            per.entry(key_bucket(k)).or_default().push((k, 0));
        }
        let staging = wh.staging()?;
        let id = format!("catchup-v{}", quarantine.version);
        for (b, mut keys) in per {
            keys.sort_unstable();
            keys.dedup();
            let rel = Table::QuarantineKeys.file_path(Some(&b.to_string()), &id, None);
            let path = staging.path().join(Table::QuarantineKeys.name()).join(&rel);
            write_keys(&path, &keys)?;
            c.adds.push(place(wh, b, &rel, &path)?);
        }
        c.info.insert(
            "verdict.operation".into(),
            Value::from(format!(
                "bring quarantine_keys up to quarantine version {}",
                quarantine.version
            )),
        );
        self.snap = block_on(wh.commit(&self.snap, c))?;
        // Loaded buckets may miss keys the catch-up added: read them again when needed.
        self.index = self.index.emptied();
        Ok(())
    }
}

/// Puts the staged key file `path` of bucket `b` in place as `rel`; returns its Add action.
fn place(wh: &Warehouse, b: i32, rel: &str, path: &std::path::Path) -> Result<NewFile> {
    let t = Table::QuarantineKeys;
    let added = describe(t, rel, Some(&b.to_string()), path)?;
    block_on(wh.put_file(t, rel, path))?;
    Ok(added)
}

/// The keys of quarantine files `files`, read by range, key column only.
///
/// # Errors
/// When a file cannot be read or its key column is not text.
pub(crate) fn read_keys(wh: &Warehouse, files: &[&FileEntry]) -> Result<Vec<u128>> {
    use futures::TryStreamExt as _;
    use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;

    let mut keys = Vec::new();
    for f in files {
        let pq = |source| Error::Parquet {
            path: std::path::PathBuf::from(&f.path),
            source,
        };
        // Only the key column is read: the footer, then its column chunks by range (the raw
        // text, the bulk of the file, is never fetched), on local disk and object stores alike.
        let reader = wh.ranged_file(Table::Quarantine, &f.path, f.size);
        let keys = &mut keys;
        block_on(async move {
            let b = ParquetRecordBatchStreamBuilder::new(reader)
                .await
                .map_err(pq)?;
            let mask = parquet::arrow::ProjectionMask::roots(b.parquet_schema(), [0]);
            let mut batches = b
                .with_projection(mask)
                .with_batch_size(64 * 1024)
                .build()
                .map_err(pq)?;
            while let Some(batch) = batches.try_next().await.map_err(pq)? {
                let col = batch.column(0).as_string_opt::<i32>().ok_or_else(|| {
                    Error::Internal(format!("quarantine file {}: the key is not text", f.path))
                })?;
                keys.extend(
                    col.iter()
                        .flatten()
                        .filter_map(|k| u128::from_str_radix(k, 16).ok()),
                );
            }
            Ok::<(), Error>(())
        })?;
    }
    Ok(keys)
}
