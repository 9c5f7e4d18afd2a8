//! Living with the data: [`retention`] (whole days older than a period leave every table),
//! [`erase`] (one identity's rows deleted, or pseudonymised, on request) and the legal holds
//! both obey ([`verdict_table::Hold`]).
//!
//! Each change is one recorded Delta commit per table it touches (operations `Retention`,
//! `Erase`, `Pseudonymise`), whose commit info carries the trace: `verdict.operation`,
//! `verdict.requested_by`, `verdict.reason`, the rows removed or rewritten, and for every file
//! the commit removes its path, rows and SHA-256 (`verdict.removed`), so that a verifier can
//! tell an authorised change from tampering. No erased value is written into the trace: the
//! subject is recorded as its keyed pseudonym. The files removed stay until `verdict vacuum`
//! deletes them (README "Retention, holds and erasure").
//!
//! The derived tables follow in the same run: the rollups of every day touched are recomputed
//! from the new `decisions` files (so their counts drop by exactly the rows removed), and they
//! record the new `decisions` version they cover.

mod erase;
mod retention;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::committer::commit_id;
use arrow::array::RecordBatch;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use verdict_schema::time::{day_number, Clock};
use verdict_table::{
    block_on, stats::describe, Commit, FileEntry, Location, Operation, Table, TableSnapshot,
    Warehouse, COVERS_APP_ID,
};

pub use erase::{erase, EraseOptions, EraseSummary};
pub use retention::{retention, HeldDay, RetentionOptions, RetentionSummary, RETENTION_APP_ID};

use crate::committer::Committer;
use crate::error::{Error, Result};
use crate::pipeline::IngestOptions;
use crate::rollup::{rollup_properties, RollupWriter};
use crate::writer::StagedPart;

/// Who asked for a change and why, recorded in every commit it makes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// Who asked (a person, a ticket's requester, `collector` ...).
    pub requested_by: Option<String>,
    /// Why.
    pub reason: Option<String>,
}

/// What a change did (or, in a dry run, would do) to one table.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct TableChange {
    /// The table.
    pub table: &'static str,
    /// Files removed from it.
    pub files_removed: usize,
    /// Files added (rewrites of files that kept some rows, recomputed rollups).
    pub files_added: usize,
    /// Rows removed.
    pub rows_removed: u64,
    /// Rows rewritten in place (pseudonymised).
    pub rows_rewritten: u64,
    /// The table version committed (`None`: a dry run, or nothing to commit).
    pub version: Option<i64>,
}

/// The pending change to one table.
struct Work {
    table: Table,
    removes: Vec<FileEntry>,
    removed: Vec<Value>,
    adds: Vec<StagedPart>,
    rows_removed: u64,
    rows_rewritten: u64,
}

impl Work {
    fn new(table: Table) -> Self {
        Self {
            table,
            removes: Vec::new(),
            removed: Vec::new(),
            adds: Vec::new(),
            rows_removed: 0,
            rows_rewritten: 0,
        }
    }

    /// Records a file to remove, with its digest.
    fn remove(&mut self, f: &FileEntry, sha256: String) {
        self.removed.push(serde_json::json!({
            "path": f.path,
            "rows": f.rows,
            "sha256": sha256,
        }));
        self.removes.push(f.clone());
    }

    fn is_empty(&self) -> bool {
        self.removes.is_empty() && self.adds.is_empty()
    }

    fn summary(&self, version: Option<i64>) -> TableChange {
        TableChange {
            table: self.table.name(),
            files_removed: self.removes.len(),
            files_added: self.adds.len(),
            rows_removed: self.rows_removed,
            rows_rewritten: self.rows_rewritten,
            version,
        }
    }
}

/// One run's identity and the info every commit of it carries.
struct Run {
    wh: Warehouse,
    id: String,
    info: Map<String, Value>,
    staging: tempfile::TempDir,
}

impl Run {
    /// Opens the warehouse for a change: refuses one where nothing was ever committed, and
    /// brings the derived tables up to the latest `decisions` version first (as every writer
    /// does), so that the change starts from tables that agree.
    fn open(
        loc: &Location,
        signing_key: Option<verdict_table::SigningKey>,
        clock: &dyn Clock,
        operation: &str,
        trace: &Trace,
    ) -> Result<Self> {
        let wh = Warehouse::new(loc.clone())?.with_signing_key(signing_key.clone());
        if block_on(wh.latest(Table::Decisions))?.is_none() {
            return Err(verdict_table::Error::NotFound {
                location: loc.to_string(),
            }
            .into());
        }
        let mut catch_up = IngestOptions::new(loc.clone(), Vec::new());
        catch_up.signing_key = signing_key;
        drop(Committer::open(catch_up, clock, Vec::new())?);
        let now = clock.now_micros();
        let id = commit_id(now, &[operation.as_bytes()]);
        let mut info = Map::new();
        info.insert("verdict.txn".into(), Value::from(id.as_str()));
        info.insert("verdict.operation".into(), Value::from(operation));
        if let Some(who) = &trace.requested_by {
            info.insert("verdict.requested_by".into(), Value::from(who.as_str()));
        }
        if let Some(why) = &trace.reason {
            info.insert("verdict.reason".into(), Value::from(why.as_str()));
        }
        let staging = wh.staging()?;
        Ok(Self {
            wh,
            id,
            info,
            staging,
        })
    }

    fn latest(&self, t: Table) -> Result<Option<TableSnapshot>> {
        Ok(block_on(self.wh.latest(t))?)
    }

    /// Writes what remains of quarantine file `n` of this run (`out`, in `schema`) to a staged
    /// file; `None` when nothing remains.
    fn stage_quarantine(
        &self,
        n: usize,
        schema: &arrow::datatypes::SchemaRef,
        out: &[RecordBatch],
    ) -> Result<Option<StagedPart>> {
        let rows: usize = out.iter().map(RecordBatch::num_rows).sum();
        if rows == 0 {
            return Ok(None);
        }
        let all = arrow::compute::concat_batches(schema, out)?;
        let rel = Table::Quarantine.file_path(None, &self.id, Some(n));
        let path = self.staged_path(Table::Quarantine, &rel);
        crate::compact::write_batches(&path, &all, &Default::default(), 64 * 1024)?;
        let bytes = std::fs::metadata(&path)
            .map_err(Error::io("reading", &path))?
            .len();
        Ok(Some(StagedPart {
            staged: path,
            table: Table::Quarantine,
            rel_final: rel,
            day: String::new(),
            rows: rows as u64,
            bytes,
            min_ts: 0,
            max_ts: 0,
        }))
    }

    /// Where a new file of `t` is staged before it is put in place.
    fn staged_path(&self, t: Table, rel: &str) -> PathBuf {
        self.staging
            .path()
            .join("lifecycle")
            .join(t.name())
            .join(rel)
    }

    /// Puts the work's new files in place and commits it to `base` with `app_txns` (for a
    /// derived table, the `decisions` version it now holds: [`covers`]).
    fn commit(
        &self,
        base: &TableSnapshot,
        op: Operation,
        w: &Work,
        app_txns: Vec<(String, i64)>,
    ) -> Result<TableChange> {
        if w.is_empty() && app_txns.is_empty() {
            return Ok(w.summary(None));
        }
        let mut c = Commit::new(op);
        for p in &w.adds {
            let partition = p.table.partition().map(|_| p.day.as_str());
            c.adds
                .push(describe(p.table, &p.rel_final, partition, &p.staged)?);
            block_on(self.wh.put_file(p.table, &p.rel_final, &p.staged))?;
        }
        c.removes = w.removes.clone();
        c.app_txns = app_txns;
        c.info = self.info.clone();
        c.info
            .insert("verdict.rows_removed".into(), Value::from(w.rows_removed));
        c.info.insert(
            "verdict.rows_rewritten".into(),
            Value::from(w.rows_rewritten),
        );
        c.info
            .insert("verdict.removed".into(), Value::from(w.removed.clone()));
        let after = block_on(self.wh.commit(base, c))?;
        Ok(w.summary(Some(after.version)))
    }

    /// Recomputes the rollups of `days` from the `decisions` files of those days in `decisions`
    /// (its latest version) and commits them, covering that version.
    fn recompute_rollups(
        &self,
        decisions: &TableSnapshot,
        days: &std::collections::BTreeSet<String>,
        op: Operation,
    ) -> Result<Vec<TableChange>> {
        let mut rollup = RollupWriter::new(
            self.staging.path(),
            &self.id,
            rollup_properties(1)?,
            1 << 20,
        );
        for f in decisions
            .files
            .iter()
            .filter(|f| f.partition.as_ref().is_some_and(|d| days.contains(d)))
        {
            let (_, batches) = read(&self.wh, Table::Decisions, &f.path)?;
            for b in batches {
                if let Some(first) = first_ts(&b) {
                    rollup.push(day_number(first), &b)?;
                }
            }
        }
        let mut parts: BTreeMap<Table, Vec<StagedPart>> = BTreeMap::new();
        for p in rollup.finish()? {
            parts.entry(p.table).or_default().push(p);
        }
        let mut out = Vec::new();
        for t in [Table::RollupMinute, Table::RollupHour] {
            let Some(base) = self.latest(t)? else {
                continue;
            };
            let mut w = Work::new(t);
            for f in base
                .files
                .iter()
                .filter(|f| f.partition.as_ref().is_some_and(|d| days.contains(d)))
            {
                let (sha, _) = read_bytes(&self.wh, t, &f.path)?;
                w.remove(f, sha);
            }
            w.adds = parts.remove(&t).unwrap_or_default();
            out.push(self.commit(&base, op, &w, covers(decisions.version))?);
        }
        Ok(out)
    }
}

/// The app transaction of a derived table holding `decisions` version `v`.
fn covers(v: i64) -> Vec<(String, i64)> {
    vec![(COVERS_APP_ID.to_string(), v)]
}

/// A text cell, `None` when null.
fn opt(a: &arrow::array::StringArray, r: usize) -> Option<&str> {
    use arrow::array::Array;
    a.is_valid(r).then(|| a.value(r))
}

fn first_ts(b: &RecordBatch) -> Option<i64> {
    use arrow::array::AsArray;
    b.column(verdict_schema::idx::TS)
        .as_primitive_opt::<arrow::datatypes::TimestampMicrosecondType>()
        .and_then(|ts| ts.values().first().copied())
}

/// A whole data file and its SHA-256 (hex).
fn read_bytes(wh: &Warehouse, t: Table, path: &str) -> Result<(String, Bytes)> {
    let bytes = block_on(wh.read_file(t, path))?;
    let digest = Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok((hex, bytes))
}

/// A data file's SHA-256 and its rows.
fn read(wh: &Warehouse, t: Table, path: &str) -> Result<(String, Vec<RecordBatch>)> {
    let (sha, bytes) = read_bytes(wh, t, path)?;
    let pq = |source| Error::Parquet {
        path: PathBuf::from(format!("{}/{path}", t.name())),
        source,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.with_batch_size(64 * 1024).build())
        .map_err(pq)?;
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((sha, batches))
}

/// The held rows an operation met, by hold.
#[derive(Debug, Default)]
struct Held(BTreeMap<String, (u64, String)>);

impl Held {
    fn add(&mut self, h: &verdict_table::Hold, n: u64) {
        self.0
            .entry(h.name.clone())
            .or_insert_with(|| (0, h.reason.clone()))
            .0 += n;
    }

    /// The refusal, when any row was held.
    fn refuse(&self, operation: &'static str) -> Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let holds = self
            .0
            .iter()
            .map(|(name, (n, why))| format!("{n} row(s) under hold {name} ({why})"))
            .collect::<Vec<_>>()
            .join("; ");
        Err(Error::Held { operation, holds })
    }
}
