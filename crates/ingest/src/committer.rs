//! [`Committer`]: the writing side of an ingest, reusable by long-running collectors: dedup on
//! `(source, event_id)` across the whole warehouse (the `event_keys` index), quarantine, staging,
//! and one Delta commit per table per [`Committer::commit_now`].
//!
//! A commit puts its files in place (invisible until named by a commit), then commits
//! `decisions` (with the app transactions the caller recorded: a collector's file offsets ride
//! in the same commit as their rows), then the quarantine, then each derived table (dedup index,
//! rollups) recording the `decisions` version it covers. A derived table left behind by a crash
//! between those commits is brought up to date from the `decisions` log when the next writer
//! opens the warehouse, so it never misses nor doubles a row.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    AsArray, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    UInt32Array,
};
use arrow::compute::{cast, take_record_batch};
use arrow::datatypes::DataType;
use base64::Engine as _;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use serde::Serialize;
use serde_json::Value;
use verdict_formats::{Decoder, UserEnvelope};
use verdict_schema::time::{day_number, format_micros, Clock};
use verdict_table::{
    block_on, quarantine_schema, stats::describe, Commit, Operation, Table, TableSnapshot,
    Warehouse, COVERS_APP_ID,
};
use xxhash_rust::xxh3::Xxh3;

use crate::decode::{decode_chunk, dedup_key, BadLine, Decoded, Delivery, RowChecks};
use crate::error::{Error, Result};
use crate::index::{content_hash, write_keys, KeyIndex, Seen};
use crate::pipeline::{FileSummary, IngestOptions};
use crate::quarantine_keys::QuarantineKeys;
use crate::redact::{RedactionRules, Redactor};
use crate::rollup::{rollup_properties, RollupWorker, RollupWriter};
use crate::source::Chunk;
use crate::writer::{writer_properties, PartitionWriter, StagedPart};

/// Steps of a commit at which a test may ask the process to abort, to prove crash safety.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitStep {
    /// The files are written, not yet in the tables' directories.
    Staged,
    /// The files are in place, no commit made yet.
    Placed,
    /// `decisions` is committed, the quarantine and derived tables not yet.
    Decisions,
}

impl std::str::FromStr for CommitStep {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "staged" => Self::Staged,
            "placed" => Self::Placed,
            "decisions" => Self::Decisions,
            _ => {
                return Err(format!(
                    "unknown commit step `{s}` (staged, placed or decisions)"
                ))
            }
        })
    }
}

/// What opening the warehouse for writing repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Recovery {
    /// Derived tables brought up to the `decisions` version (after a write cut short).
    pub caught_up: Vec<String>,
}

/// One input read by an ingest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputMeta {
    /// The path as given (`-` for stdin).
    pub file: String,
    /// A fingerprint of the content.
    pub fingerprint: String,
    /// Bytes read (after decompression).
    pub bytes: u64,
    /// Lines read.
    pub lines: u64,
}

/// What one [`Committer::commit_now`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitInfo {
    /// The transaction id, when there was something to commit.
    pub txn: Option<String>,
    /// The `decisions` version it made.
    pub version: Option<i64>,
    /// Rows made visible.
    pub rows: u64,
    /// Lines quarantined.
    pub quarantined: u64,
}

/// What [`Committer::append`] did with one run of lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendInfo {
    /// Non-blank lines.
    pub lines: u64,
    /// Rows accepted into the open transaction.
    pub rows: u64,
    /// Rows dropped as duplicates.
    pub duplicates: u64,
    /// Lines quarantined (bad lines already quarantined earlier are not counted again).
    pub quarantined: u64,
    /// Lines holding no decision.
    pub skipped: u64,
}

/// Decodes lines of one input of a [`Committer`] away from it (see
/// [`Committer::chunk_decoder`]): stateless, so any thread can use it.
#[derive(Clone)]
pub struct ChunkDecoder {
    input: usize,
    name: String,
    envelope: Option<Arc<UserEnvelope>>,
    keep_raw: bool,
    max_line_bytes: usize,
    checks: RowChecks,
}

impl ChunkDecoder {
    /// The input whose lines it decodes.
    pub fn input(&self) -> usize {
        self.input
    }

    /// Decodes whole lines delivered by `delivery`, the first numbered `first_line`. With
    /// `max_bad` (records, bytes), lines that would quarantine more than that are refused whole
    /// with [`Error::QuarantineBudget`]; decoding stops as soon as the budget is spent, so a tiny
    /// body of a million bad lines costs no more than the budget.
    ///
    /// # Errors
    /// The refusal above; a line the decoder cannot handle at all.
    pub fn decode(
        &self,
        first_line: u64,
        bytes: Vec<u8>,
        decoder: &Decoder,
        delivery: &Delivery,
        max_bad: Option<(u64, u64)>,
    ) -> Result<Decoded> {
        let chunk = Chunk {
            seq: 0,
            input: self.input,
            first_line,
            bytes,
            oversized: Vec::new(),
        };
        let mut checks = self.checks.clone();
        checks.max_bad = max_bad.map(|(records, _)| usize::try_from(records).unwrap_or(usize::MAX));
        let d = decode_chunk(
            chunk,
            decoder,
            self.envelope.as_deref(),
            &self.name,
            self.keep_raw,
            self.max_line_bytes,
            &checks,
            delivery,
        )?;
        if let Some((records, bytes)) = max_bad {
            let bad_bytes: u64 = d.bad.iter().map(|b| b.raw.len() as u64).sum();
            let n = d.bad.len() as u64;
            if d.bad_overflow || n > records || bad_bytes > bytes {
                let first = d.bad.iter().map(|b| b.line).min().unwrap_or(first_line);
                let what = if n > records {
                    format!("more than {records} bad records (at most {records} and {bytes} bytes)")
                } else {
                    format!(
                        "bad records of {bad_bytes} bytes (at most {records} and {bytes} bytes)"
                    )
                };
                return Err(Error::QuarantineBudget {
                    file: self.name.clone(),
                    line: first,
                    what,
                });
            }
        }
        Ok(d)
    }
}

struct Snaps {
    decisions: TableSnapshot,
    quarantine: TableSnapshot,
    derived: Vec<TableSnapshot>,
}

struct Txn {
    id: String,
    staging: tempfile::TempDir,
    writer: PartitionWriter,
    rollup: RollupWorker,
    quarantine: QuarantineSink,
    rows: u64,
}

struct QuarantineRow {
    key: String,
    file: String,
    line: u64,
    error: String,
    field: Option<String>,
    message: String,
    raw: String,
    raw_base64: Option<String>,
    raw_bytes: u64,
    raw_truncated: bool,
    at: i64,
}

/// The writing side of an ingest (see the module docs). Rows go into one open transaction until
/// [`Committer::commit_now`]; nothing is visible before that.
pub struct Committer<'a> {
    wh: Warehouse,
    snaps: Snaps,
    opts: IngestOptions,
    clock: &'a dyn Clock,
    pub(crate) names: Vec<String>,
    /// Inputs whose lines come in an envelope of their own (else `opts.envelope`).
    envelopes: BTreeMap<usize, Arc<UserEnvelope>>,
    index: KeyIndex,
    absorbed: u64,
    /// The index of quarantined lines' keys, opened when this writer first quarantines
    /// something (a run without bad lines never reads it).
    qkeys: Option<QuarantineKeys>,
    txn: Option<Txn>,
    pub(crate) files: Vec<FileSummary>,
    pub(crate) blank: u64,
    pub(crate) rows_per_day: BTreeMap<i32, u64>,
    pub(crate) already_quarantined: u64,
    pub(crate) conflicts: u64,
    pub(crate) committed: Vec<String>,
    pub(crate) quarantine_files: Vec<String>,
    rows_since_commit: u64,
    quarantined_since_commit: u64,
    recovery: Recovery,
    app_txns: BTreeMap<String, i64>,
    extra_info: serde_json::Map<String, Value>,
    pub(crate) checks: RowChecks,
    /// Lines and bytes quarantined by this committer, for the budget.
    quarantined_total: (u64, u64),
}

impl<'a> Committer<'a> {
    /// Opens the warehouse of `opts` for writing (creating its tables, bringing derived tables up
    /// to date) with the inputs named `names` (more can be added with [`Committer::add_input`]).
    ///
    /// # Errors
    /// When the warehouse cannot be opened or its quarantine read.
    pub fn open(opts: IngestOptions, clock: &'a dyn Clock, names: Vec<String>) -> Result<Self> {
        let wh = Warehouse::new(opts.warehouse.clone())?.with_signing_key(opts.signing_key.clone());
        let [decisions, quarantine, keys, minute, hour] = block_on(wh.open_many_for_write([
            Table::Decisions,
            Table::Quarantine,
            Table::EventKeys,
            Table::RollupMinute,
            Table::RollupHour,
        ]))?;
        let derived = vec![keys, minute, hour];
        let checks = row_checks(&wh, &opts, clock)?;
        let mut c = Self {
            checks,
            quarantined_total: (0, 0),
            files: names
                .iter()
                .map(|n| FileSummary {
                    file: n.clone(),
                    ..Default::default()
                })
                .collect(),
            wh,
            snaps: Snaps {
                decisions,
                quarantine,
                derived,
            },
            index: KeyIndex::new(Table::EventKeys, opts.max_dedup_keys)
                .spilling_past(opts.max_pending_keys),
            opts,
            clock,
            names,
            envelopes: BTreeMap::new(),
            absorbed: 0,
            qkeys: None,
            txn: None,
            blank: 0,
            rows_per_day: BTreeMap::new(),
            already_quarantined: 0,
            conflicts: 0,
            committed: Vec::new(),
            quarantine_files: Vec::new(),
            rows_since_commit: 0,
            quarantined_since_commit: 0,
            recovery: Recovery::default(),
            app_txns: BTreeMap::new(),
            extra_info: serde_json::Map::new(),
        };
        c.catch_up_all()?;
        Ok(c)
    }

    /// The warehouse.
    pub fn warehouse(&self) -> &Warehouse {
        &self.wh
    }

    /// Buckets of the dedup index dropped to stay within the key budget.
    pub fn index_evictions(&self) -> u64 {
        self.index.evicted
    }

    /// What opening repaired.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The latest `decisions` version this committer knows.
    pub fn version(&self) -> i64 {
        self.snaps.decisions.version
    }

    /// Reads the tables again after another writer of this process changed them (a retention
    /// run between two commits): fresh snapshots, dedup index and quarantine keys.
    ///
    /// # Errors
    /// With a transaction open, or when the tables cannot be read.
    pub fn reload(&mut self) -> Result<()> {
        if self.has_pending() {
            return Err(Error::Internal(
                "the tables were read again with rows waiting for a commit".into(),
            ));
        }
        self.snaps.decisions = block_on(self.wh.open_for_write(Table::Decisions))?;
        self.snaps.quarantine = block_on(self.wh.open_for_write(Table::Quarantine))?;
        for d in &mut self.snaps.derived {
            *d = block_on(self.wh.open_for_write(d.table))?;
        }
        self.index = self.index.emptied();
        self.qkeys = None;
        self.catch_up_all()
    }

    /// Registers one more input name (stored in `ingest_file`); returns its index.
    pub fn add_input(&mut self, name: &str) -> usize {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return i;
        }
        self.names.push(name.to_string());
        self.files.push(FileSummary {
            file: name.to_string(),
            ..Default::default()
        });
        self.names.len() - 1
    }

    /// Takes the records of input `input` out of `envelope` from now on (`None`: the
    /// options' envelope, if any), for a source with an envelope of its own.
    pub fn set_envelope(&mut self, input: usize, envelope: Option<Arc<UserEnvelope>>) {
        match envelope {
            Some(e) => self.envelopes.insert(input, e),
            None => self.envelopes.remove(&input),
        };
    }

    /// Rows accepted since the last commit.
    pub fn pending_rows(&self) -> u64 {
        self.rows_since_commit
    }

    /// Whether anything (rows, quarantined lines, app transactions) waits for a commit.
    pub fn has_pending(&self) -> bool {
        self.txn.is_some() || !self.app_txns.is_empty()
    }

    /// Records an app transaction (id, version) to commit with the next `decisions` commit: a
    /// collector's offset in a file, so that the offset and its rows become visible together.
    pub fn record_app_txn(&mut self, app_id: &str, version: i64) {
        self.app_txns.insert(app_id.to_string(), version);
    }

    /// Adds a field to the next commit's commit info (shown by `verdict history`).
    pub fn record_info(&mut self, key: &str, value: impl Into<Value>) {
        self.extra_info.insert(key.to_string(), value.into());
    }

    /// The committed version of an app transaction.
    ///
    /// # Errors
    /// When the log cannot be read.
    pub fn app_version(&self, app_id: &str) -> Result<Option<i64>> {
        if let Some(v) = self.app_txns.get(app_id) {
            return Ok(Some(*v));
        }
        Ok(block_on(self.snaps.decisions.app_version(app_id))?)
    }

    /// Decodes whole lines of input `input` (as returned by [`Committer::add_input`]), the first
    /// being line `first_line`, and adds their rows to the open transaction: duplicates of rows
    /// already in the warehouse or in this transaction are dropped, bad lines quarantined.
    ///
    /// # Errors
    /// In `strict` mode the first bad line; a failure to stage rows.
    pub fn append(
        &mut self,
        input: usize,
        first_line: u64,
        bytes: Vec<u8>,
        decoder: &Decoder,
    ) -> Result<AppendInfo> {
        self.append_from(
            input,
            first_line,
            bytes,
            decoder,
            &Delivery::default(),
            None,
        )
    }

    /// Like [`Committer::append`], for lines delivered by `delivery` (stored in
    /// `ingest_principal` and `ingest_peer`). With `max_bad` (records, bytes), lines that would
    /// quarantine more than that are refused whole: nothing of them is added, and the error is
    /// [`Error::QuarantineBudget`] (the committer stays usable).
    ///
    /// # Errors
    /// As [`Committer::append`], and the refusal above.
    pub fn append_from(
        &mut self,
        input: usize,
        first_line: u64,
        bytes: Vec<u8>,
        decoder: &Decoder,
        delivery: &Delivery,
        max_bad: Option<(u64, u64)>,
    ) -> Result<AppendInfo> {
        let d = self
            .chunk_decoder(input)?
            .decode(first_line, bytes, decoder, delivery, max_bad)?;
        self.absorb_decoded(d)
    }

    /// What decodes lines of `input` as [`Committer::append_from`] does, on any thread: a
    /// collector decodes a request where it arrives, then hands the result to
    /// [`Committer::absorb_decoded`].
    ///
    /// # Errors
    /// An input number this committer does not know.
    pub fn chunk_decoder(&self, input: usize) -> Result<ChunkDecoder> {
        let name = self
            .names
            .get(input)
            .cloned()
            .ok_or_else(|| Error::Internal(format!("no input number {input}")))?;
        Ok(ChunkDecoder {
            input,
            name,
            envelope: self
                .envelopes
                .get(&input)
                .or(self.opts.envelope.as_ref())
                .cloned(),
            keep_raw: self.opts.keep_raw,
            max_line_bytes: self.opts.max_line_bytes,
            checks: self.checks.clone(),
        })
    }

    /// Adds lines decoded by a [`ChunkDecoder`] of this committer: rows already in the
    /// warehouse or in this transaction are dropped, bad lines quarantined.
    ///
    /// # Errors
    /// As [`Committer::append`].
    pub fn absorb_decoded(&mut self, mut d: Decoded) -> Result<AppendInfo> {
        if d.input >= self.files.len() {
            return Err(Error::Internal(format!("no input number {}", d.input)));
        }
        self.absorbed += 1;
        d.seq = self.absorbed;
        let input = d.input;
        let before = self.files[input].clone();
        self.absorb(d)?;
        let after = &self.files[input];
        Ok(AppendInfo {
            lines: after.lines - before.lines,
            rows: after.rows - before.rows,
            duplicates: after.duplicates - before.duplicates,
            quarantined: after.quarantined - before.quarantined,
            skipped: after.skipped - before.skipped,
        })
    }

    /// Commits the open transaction; a no-op when nothing waits.
    ///
    /// # Errors
    /// On any staging or store failure. The caller must then stop using this committer: the
    /// rows of the failed transaction are in its dedup index but not in the warehouse.
    pub fn commit_now(&mut self) -> Result<CommitInfo> {
        let rows = self.rows_since_commit;
        let quarantined = self.quarantined_since_commit;
        let before = self.committed.len();
        let before_version = self.version();
        self.commit(Vec::new())?;
        let txn = (self.committed.len() > before)
            .then(|| self.committed.last().cloned())
            .flatten();
        Ok(CommitInfo {
            txn,
            version: (self.version() != before_version).then_some(self.version()),
            rows,
            quarantined,
        })
    }

    fn txn(&mut self) -> Result<&mut Txn> {
        if self.txn.is_none() {
            let now = self.clock.now_micros();
            let id = commit_id(now, &[&(self.committed.len() as u64).to_le_bytes()]);
            let staging = self.wh.staging()?;
            let props = writer_properties(self.opts.zstd_level, self.opts.row_group_rows)?;
            let writer = PartitionWriter::new(
                staging.path(),
                &id,
                props,
                self.opts.row_group_rows,
                self.opts.max_buffered_rows,
            );
            // Half the row budget: a group costs about as much memory as a buffered
            // row without its `raw`.
            let rollup = RollupWorker::spawn(RollupWriter::new(
                staging.path(),
                &id,
                rollup_properties(self.opts.zstd_level)?,
                self.opts.max_buffered_rows / 2,
            ))?;
            let quarantine = QuarantineSink::new(staging.path(), &id, self.opts.zstd_level);
            self.txn = Some(Txn {
                id,
                staging,
                writer,
                rollup,
                quarantine,
                rows: 0,
            });
        }
        self.txn
            .as_mut()
            .ok_or_else(|| Error::Internal("no transaction".into()))
    }

    pub(crate) fn absorb(&mut self, d: Decoded) -> Result<()> {
        let f = &mut self.files[d.input];
        f.lines += d.lines;
        f.bytes += d.bytes;
        f.skipped += d.skipped;
        for (reason, n) in &d.skipped_by {
            *f.skipped_by.entry(reason.code().to_string()).or_default() += n;
        }
        self.blank += d.blank;
        if !d.bad.is_empty() {
            if self.opts.strict {
                let first = d.bad.iter().min_by_key(|b| b.line).cloned();
                if let Some(b) = first {
                    return Err(Error::Strict {
                        file: self.names[b.input].clone(),
                        line: b.line,
                        error: b.error,
                    });
                }
            }
            for b in &d.bad {
                self.quarantine(b)?;
            }
        }
        let n = d.batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let mut per_day: BTreeMap<i32, Vec<u32>> = BTreeMap::new();
        let mut dups = 0u64;
        let mut conflicts = Vec::new();
        let keys_snap = &self.snaps.derived[0];
        for i in 0..n {
            let content = content_hash(&d.batch, i);
            match self.index.check(&self.wh, keys_snap, d.keys[i], content)? {
                Seen::New => per_day.entry(d.days[i]).or_default().push(i as u32),
                Seen::Duplicate => dups += 1,
                Seen::Conflict(stored) => conflicts.push((i, stored, content)),
            }
        }
        for &(i, stored, content) in &conflicts {
            self.quarantine_conflict(&d, i, stored, content)?;
        }
        let dropped = dups + conflicts.len() as u64;
        let f = &mut self.files[d.input];
        f.duplicates += dups;
        f.rows += n as u64 - dropped;
        let accepted = n as u64 - dropped;
        let whole = per_day.len() == 1 && dropped == 0;
        let mut parts = Vec::with_capacity(per_day.len());
        for (day, rows) in per_day {
            let part: RecordBatch = if whole {
                d.batch.clone()
            } else {
                take_record_batch(&d.batch, &UInt32Array::from(rows))?
            };
            *self.rows_per_day.entry(day).or_default() += part.num_rows() as u64;
            parts.push((day, part));
        }
        if accepted == 0 {
            return Ok(());
        }
        let txn = self.txn()?;
        for (day, part) in parts {
            txn.rollup.push(day, part.clone())?;
            txn.writer.push(day, part)?;
        }
        txn.rows += accepted;
        self.rows_since_commit += accepted;
        if self
            .opts
            .commit_rows
            .is_some_and(|every| self.rows_since_commit >= every)
        {
            self.commit(Vec::new())?;
        }
        Ok(())
    }

    /// A record whose `(source, event_id)` is stored with other content: quarantined as
    /// `conflicting_duplicate` with both content hashes, the stored record kept.
    fn quarantine_conflict(
        &mut self,
        d: &Decoded,
        row: usize,
        stored: u64,
        content: u64,
    ) -> Result<()> {
        use arrow::array::Array;
        let raw = d.batch.column(verdict_schema::idx::RAW).as_string::<i32>();
        let raw = if raw.is_valid(row) {
            raw.value(row).to_string()
        } else {
            String::new()
        };
        let lines = d
            .batch
            .column(verdict_schema::idx::INGEST_LINE)
            .as_primitive::<arrow::datatypes::UInt64Type>();
        let line = if lines.is_valid(row) {
            lines.value(row)
        } else {
            0
        };
        let id = d
            .batch
            .column(verdict_schema::idx::EVENT_ID)
            .as_string::<i32>()
            .value(row)
            .to_string();
        let mut h = Xxh3::new();
        h.update(b"conflicting_duplicate");
        h.update(&line.to_le_bytes());
        h.update(&content.to_le_bytes());
        h.update(raw.as_bytes());
        let key = h.digest128();
        if !self.new_quarantine_key(key)? {
            self.already_quarantined += 1;
            return Ok(());
        }
        self.conflicts += 1;
        self.files[d.input].quarantined += 1;
        self.quarantined_since_commit += 1;
        let row = QuarantineRow {
            key: format!("{key:032x}"),
            file: self.names[d.input].clone(),
            line,
            error: "conflicting_duplicate".into(),
            field: Some("event_id".into()),
            message: format!(
                "event_id `{id}` is already stored with other content (stored content hash {stored:016x}, this record's {content:016x}); the stored record is kept"
            ),
            raw_bytes: raw.len() as u64,
            raw,
            raw_base64: None,
            raw_truncated: false,
            at: self.clock.now_micros(),
        };
        self.txn()?.quarantine.push(row)?;
        Ok(())
    }

    /// Whether no line with dedup key `key` is quarantined yet (then it is pending in the
    /// index); the index (the field `qkeys`) is opened on first use.
    fn new_quarantine_key(&mut self, key: u128) -> Result<bool> {
        let keys = match &mut self.qkeys {
            Some(k) => k,
            None => self.qkeys.insert(QuarantineKeys::open(
                &self.wh,
                &self.snaps.quarantine,
                self.opts.max_dedup_keys,
                self.opts.max_pending_keys,
            )?),
        };
        keys.insert(&self.wh, key)
    }

    fn quarantine(&mut self, b: &BadLine) -> Result<()> {
        let mut h = Xxh3::new();
        h.update(&b.line.to_le_bytes());
        h.update(&b.raw_len.to_le_bytes());
        h.update(&b.raw);
        let key = h.digest128();
        if !self.new_quarantine_key(key)? {
            self.already_quarantined += 1;
            return Ok(());
        }
        self.quarantined_total.0 += 1;
        self.quarantined_total.1 += b.raw.len() as u64;
        let (n, bytes) = self.quarantined_total;
        let over = match (
            self.opts.max_quarantine_records,
            self.opts.max_quarantine_bytes,
        ) {
            (Some(max), _) if n > max => Some(format!("{n} records, at most {max}")),
            (_, Some(max)) if bytes > max => Some(format!("{bytes} bytes, at most {max}")),
            _ => None,
        };
        if let Some(what) = over {
            return Err(Error::QuarantineBudget {
                file: self.names[b.input].clone(),
                line: b.line,
                what,
            });
        }
        self.files[b.input].quarantined += 1;
        let file = self.names[b.input].clone();
        let at = self.clock.now_micros();
        self.quarantined_since_commit += 1;
        let (raw, raw_base64) = match std::str::from_utf8(&b.raw) {
            Ok(s) => (s.to_string(), None),
            Err(_) => (
                String::from_utf8_lossy(&b.raw).into_owned(),
                Some(base64::engine::general_purpose::STANDARD.encode(&b.raw)),
            ),
        };
        let row = QuarantineRow {
            key: format!("{key:032x}"),
            file,
            line: b.line,
            error: b.error.kind.code().to_string(),
            field: b.error.field.clone(),
            message: b.error.message.clone(),
            raw,
            raw_base64,
            raw_bytes: b.raw_len,
            raw_truncated: (b.raw.len() as u64) < b.raw_len,
            at,
        };
        self.txn()?.quarantine.push(row)?;
        Ok(())
    }

    pub(crate) fn commit(&mut self, inputs: Vec<InputMeta>) -> Result<()> {
        self.rows_since_commit = 0;
        self.quarantined_since_commit = 0;
        let app_txns: Vec<(String, i64)> = std::mem::take(&mut self.app_txns).into_iter().collect();
        let Some(txn) = self.txn.take() else {
            if !app_txns.is_empty() {
                // Offsets past lines that held nothing to store still advance.
                let mut c = Commit::new(Operation::Append);
                c.app_txns = app_txns;
                self.commit_decisions(c)?;
            }
            return Ok(());
        };
        let Txn {
            id,
            staging,
            writer,
            rollup,
            quarantine,
            rows,
        } = txn;
        let mut staged = writer.finish()?;
        staged.extend(rollup.finish()?);
        let quarantined = quarantine.rows();
        staged.extend(quarantine.finish()?);
        for (b, rel, path) in self.index.write_pending(staging.path(), &id)? {
            let bytes = std::fs::metadata(&path)
                .map_err(Error::io("reading", &path))?
                .len();
            staged.push(StagedPart {
                staged: path,
                table: Table::EventKeys,
                rel_final: rel,
                day: b.to_string(),
                rows: 0,
                bytes,
                min_ts: 0,
                max_ts: 0,
            });
        }
        if staged.is_empty() && app_txns.is_empty() {
            return Ok(());
        }
        self.hit(CommitStep::Staged);
        let mut adds: BTreeMap<Table, Vec<verdict_table::NewFile>> = BTreeMap::new();
        for p in &staged {
            let partition = p.table.partition().map(|_| p.day.as_str());
            let nf = describe(p.table, &p.rel_final, partition, &p.staged)?;
            block_on(self.wh.put_file(p.table, &p.rel_final, &p.staged))?;
            adds.entry(p.table).or_default().push(nf);
        }
        self.hit(CommitStep::Placed);
        let mut info = serde_json::Map::new();
        info.insert("verdict.txn".into(), Value::from(id.as_str()));
        info.insert("verdict.rows".into(), Value::from(rows));
        info.insert("verdict.quarantined".into(), Value::from(quarantined));
        let mut named: Vec<String> = inputs.iter().map(|i| i.file.clone()).collect();
        if named.is_empty() {
            named = self
                .files
                .iter()
                .filter(|f| f.lines > 0)
                .map(|f| f.file.clone())
                .collect();
        }
        info.insert("verdict.inputs".into(), Value::from(named));
        info.extend(std::mem::take(&mut self.extra_info));
        let mut c = Commit::new(Operation::Append);
        c.adds = adds.remove(&Table::Decisions).unwrap_or_default();
        c.app_txns = app_txns;
        c.info = info.clone();
        let base = self.snaps.decisions.version;
        if !c.adds.is_empty() || !c.app_txns.is_empty() {
            self.commit_decisions(c)?;
        }
        self.hit(CommitStep::Decisions);
        // Then the quarantine and the derived tables. They are independent of one another (each
        // has its own log and chain), so their commits run at once: `None` is the quarantine,
        // `Some(i)` the derived table `i`.
        let mut jobs: Vec<(Option<usize>, Commit)> = Vec::new();
        let quarantine_base = self.snaps.quarantine.version;
        if let Some(q) = adds.remove(&Table::Quarantine) {
            let mut c = Commit::new(Operation::Append);
            c.adds = q;
            c.info = info.clone();
            self.quarantine_files
                .extend(c.adds.iter().map(|f| format!("quarantine/{}", f.path)));
            jobs.push((None, c));
        }
        let version = self.snaps.decisions.version;
        let mut behind = Vec::new();
        for i in 0..self.snaps.derived.len() {
            let t = self.snaps.derived[i].table;
            let files = adds.remove(&t).unwrap_or_default();
            let covers = block_on(self.snaps.derived[i].app_version(COVERS_APP_ID))?;
            if covers == Some(version) && files.is_empty() {
                continue;
            }
            // Only this commit since the table was last brought up to date: add its files.
            if covers == Some(base) && (version == base + 1 || version == base) {
                let mut c = Commit::new(Operation::Append);
                c.adds = files;
                c.app_txns = vec![(COVERS_APP_ID.to_string(), version)];
                c.info = info.clone();
                jobs.push((Some(i), c));
            } else {
                // Behind (a write cut short before): recompute from the decisions log instead.
                behind.push(i);
            }
        }
        let (wh, snaps) = (&self.wh, &self.snaps);
        // Every commit runs to its end, so that each one that succeeded is known below even
        // when another failed.
        let done = block_on(futures::future::join_all(jobs.into_iter().map(
            |(slot, c)| async move {
                let base = match slot {
                    None => &snaps.quarantine,
                    Some(i) => &snaps.derived[i],
                };
                (slot, wh.commit(base, c).await)
            },
        )));
        let mut failed = None;
        for (slot, result) in done {
            match (slot, result) {
                (None, Ok(snap)) => self.snaps.quarantine = snap,
                (Some(i), Ok(snap)) => self.snaps.derived[i] = snap,
                (_, Err(e)) => failed = failed.or(Some(e)),
            }
        }
        if let Some(e) = failed {
            return Err(e.into());
        }
        for i in behind {
            self.catch_up(i)?;
        }
        if self.snaps.quarantine.version != quarantine_base {
            if let Some(k) = &mut self.qkeys {
                k.commit(&self.wh, &self.snaps.quarantine, quarantine_base, &id)?;
            }
        }
        self.index.committed(&self.wh);
        self.committed.push(id);
        drop(staging);
        Ok(())
    }

    /// Commits quarantined lines of the old layout (JSON objects as it wrote them) to the
    /// quarantine table, leaving out those already there; returns how many were added.
    ///
    /// # Errors
    /// A line that is not such an object, or a failed commit.
    pub fn adopt_quarantine(&mut self, lines: &[String]) -> Result<u64> {
        let mut rows = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            let v: Value = serde_json::from_str(l)
                .map_err(|e| Error::Internal(format!("old quarantine line {}: {e}", i + 1)))?;
            let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            let key = text("key");
            if let Ok(k) = u128::from_str_radix(&key, 16) {
                if !self.new_quarantine_key(k)? {
                    continue;
                }
            }
            rows.push(QuarantineRow {
                key,
                file: text("file"),
                line: v["line"].as_u64().unwrap_or(0),
                error: text("error"),
                field: v["field"].as_str().map(str::to_string),
                message: text("message"),
                raw: text("raw"),
                raw_base64: v["raw_base64"].as_str().map(str::to_string),
                raw_bytes: v["raw_bytes"].as_u64().unwrap_or(0),
                raw_truncated: v["raw_truncated"].as_bool().unwrap_or(false),
                at: v["quarantined_at"]
                    .as_str()
                    .and_then(verdict_schema::time::parse_rfc3339_micros)
                    .unwrap_or(0),
            });
        }
        let n = rows.len() as u64;
        if rows.is_empty() {
            return Ok(0);
        }
        let staging = self.wh.staging()?;
        let mut sink = QuarantineSink::new(staging.path(), "migrated", self.opts.zstd_level);
        for row in rows {
            sink.push(row)?;
        }
        let Some(p) = sink.finish()? else {
            return Ok(0);
        };
        let mut c = Commit::new(Operation::Append);
        c.adds = vec![describe(Table::Quarantine, &p.rel_final, None, &p.staged)?];
        block_on(self.wh.put_file(Table::Quarantine, &p.rel_final, &p.staged))?;
        c.info
            .insert("verdict.operation".into(), Value::from("migrate"));
        let before = self.snaps.quarantine.version;
        self.snaps.quarantine = block_on(self.wh.commit(&self.snaps.quarantine, c))?;
        if let Some(k) = &mut self.qkeys {
            k.commit(&self.wh, &self.snaps.quarantine, before, "migrated")?;
        }
        Ok(n)
    }

    fn commit_decisions(&mut self, c: Commit) -> Result<()> {
        self.snaps.decisions = block_on(self.wh.commit(&self.snaps.decisions, c))?;
        Ok(())
    }

    fn hit(&self, step: CommitStep) {
        if self.opts.abort_at == Some(step) && self.committed.is_empty() {
            std::process::abort();
        }
    }

    pub(crate) fn discard(&mut self) -> Result<()> {
        self.txn = None;
        self.index.discard();
        // Its pending keys went with the transaction; it is read again when needed.
        self.qkeys = None;
        Ok(())
    }

    fn catch_up_all(&mut self) -> Result<()> {
        for i in 0..self.snaps.derived.len() {
            self.catch_up(i)?;
        }
        Ok(())
    }

    /// Brings derived table `i` up to the `decisions` version: from the files the uncovered
    /// commits added when they are all still in the table, else by recomputing it whole.
    fn catch_up(&mut self, i: usize) -> Result<()> {
        let d = &self.snaps.decisions;
        let snap = &self.snaps.derived[i];
        let t = snap.table;
        let covers = block_on(snap.app_version(COVERS_APP_ID))?;
        if covers == Some(d.version) {
            return Ok(());
        }
        let mut c = Commit::new(Operation::Append);
        c.app_txns = vec![(COVERS_APP_ID.to_string(), d.version)];
        // Only the files added since, when they are all still there; else recompute it whole.
        let files: Vec<(String, Option<String>)> = match block_on(self.wh.added_since(d, covers))? {
            Some(added) => added
                .into_iter()
                .map(|f| (f.path.clone(), f.partition.clone()))
                .collect(),
            None => {
                c.operation = Operation::Rebuild;
                c.removes = snap.files.clone();
                d.files
                    .iter()
                    .map(|f| (f.path.clone(), f.partition.clone()))
                    .collect()
            }
        };
        let staging = self.wh.staging()?;
        let id = format!("catchup-{}-v{}", t.name(), d.version);
        let staged = derive_files(&self.wh, t, &files, staging.path(), &id, &self.opts)?;
        for p in &staged {
            let partition = p.table.partition().map(|_| p.day.as_str());
            c.adds
                .push(describe(p.table, &p.rel_final, partition, &p.staged)?);
            block_on(self.wh.put_file(p.table, &p.rel_final, &p.staged))?;
        }
        c.info.insert(
            "verdict.operation".into(),
            Value::from(format!(
                "bring {} up to decisions version {}",
                t.name(),
                d.version
            )),
        );
        self.snaps.derived[i] = block_on(self.wh.commit(&self.snaps.derived[i], c))?;
        if covers.is_some() {
            self.recovery.caught_up.push(format!(
                "{} (from decisions version {} to {})",
                t.name(),
                covers.map_or("none".into(), |v| v.to_string()),
                self.snaps.decisions.version
            ));
        }
        Ok(())
    }
}

/// Computes a derived table's files from `decisions` files.
fn derive_files(
    wh: &Warehouse,
    t: Table,
    files: &[(String, Option<String>)],
    staging: &std::path::Path,
    id: &str,
    opts: &IngestOptions,
) -> Result<Vec<StagedPart>> {
    let mut rollup = RollupWriter::new(
        staging,
        id,
        rollup_properties(opts.zstd_level)?,
        opts.max_buffered_rows / 2,
    );
    let mut keys: BTreeMap<i32, Vec<(u128, u64)>> = BTreeMap::new();
    for (path, _) in files {
        let bytes = block_on(wh.read_file(Table::Decisions, path))?;
        let pq = |source| Error::Parquet {
            path: std::path::PathBuf::from(path),
            source,
        };
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.with_batch_size(64 * 1024).build())
            .map_err(pq)?;
        for batch in reader {
            let batch = batch?;
            if t == Table::EventKeys {
                let ids = batch
                    .column(verdict_schema::idx::EVENT_ID)
                    .as_string::<i32>();
                let sources = cast(batch.column(verdict_schema::idx::SOURCE), &DataType::Utf8)?;
                let sources = sources.as_string::<i32>();
                for r in 0..batch.num_rows() {
                    let k = dedup_key(sources.value(r), ids.value(r));
                    keys.entry(verdict_table::key_bucket(k))
                        .or_default()
                        .push((k, content_hash(&batch, r)));
                }
            } else {
                let ts = batch
                    .column(verdict_schema::idx::TS)
                    .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
                if let Some(&first) = ts.values().first() {
                    rollup.push(day_number(first), &batch)?;
                }
            }
        }
    }
    if t != Table::EventKeys {
        let grain_table = t;
        return Ok(rollup
            .finish()?
            .into_iter()
            .filter(|p| p.table == grain_table)
            .collect());
    }
    let mut out = Vec::new();
    for (b, mut ks) in keys {
        ks.sort_unstable();
        ks.dedup_by_key(|p| p.0);
        let rel = Table::EventKeys.file_path(Some(&b.to_string()), id, None);
        let path = staging.join(Table::EventKeys.name()).join(&rel);
        write_keys(&path, &ks)?;
        let bytes = std::fs::metadata(&path)
            .map_err(Error::io("reading", &path))?
            .len();
        out.push(StagedPart {
            staged: path,
            table: Table::EventKeys,
            rel_final: rel,
            day: b.to_string(),
            rows: ks.len() as u64,
            bytes,
            min_ts: 0,
            max_ts: 0,
        });
    }
    Ok(out)
}

/// The checks of [`RowChecks`] for a run that starts now; the redaction key is created on
/// first use, and only when some rule is on.
fn row_checks(wh: &Warehouse, opts: &IngestOptions, clock: &dyn Clock) -> Result<RowChecks> {
    let now = clock.now_micros();
    let ahead = i64::from(opts.max_future_days).saturating_mul(86_400_000_000);
    let off = RedactionRules {
        builtins: false,
        ..RedactionRules::default()
    };
    let redactor = if opts.redaction == off {
        None
    } else {
        Some(Arc::new(Redactor::for_warehouse(&opts.redaction, wh)?))
    };
    Ok(RowChecks {
        ts_min: opts.earliest_micros,
        ts_max: now.saturating_add(ahead),
        redactor,
        max_bad: None,
    })
}

/// The quarantined lines of one transaction, written to its staging file a batch at a time: memory
/// holds one batch and one row group whatever the number of bad lines.
struct QuarantineSink {
    path: std::path::PathBuf,
    rel: String,
    id: String,
    zstd_level: i32,
    pending: Vec<QuarantineRow>,
    writer: Option<ArrowWriter<std::fs::File>>,
    rows: u64,
}

impl QuarantineSink {
    /// Lines buffered before they are written as one batch.
    const BATCH: usize = 8192;

    fn new(staging: &std::path::Path, id: &str, zstd_level: i32) -> Self {
        let rel = Table::Quarantine.file_path(None, id, None);
        Self {
            path: staging.join(Table::Quarantine.name()).join(&rel),
            rel,
            id: id.to_string(),
            zstd_level,
            pending: Vec::new(),
            writer: None,
            rows: 0,
        }
    }

    fn rows(&self) -> u64 {
        self.rows
    }

    fn push(&mut self, row: QuarantineRow) -> Result<()> {
        self.pending.push(row);
        self.rows += 1;
        if self.pending.len() >= Self::BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn parquet_error(&self) -> impl Fn(parquet::errors::ParquetError) -> Error + '_ {
        |source| Error::Parquet {
            path: self.path.clone(),
            source,
        }
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = quarantine_batch(&self.pending, &self.id)?;
        self.pending.clear();
        if self.writer.is_none() {
            if let Some(d) = self.path.parent() {
                std::fs::create_dir_all(d).map_err(Error::io("creating", d))?;
            }
            let file =
                std::fs::File::create(&self.path).map_err(Error::io("creating", &self.path))?;
            // zstd and 64K-row groups, as the rollups: a group of bad lines stays small in memory.
            let props = rollup_properties(self.zstd_level)?;
            let w = ArrowWriter::try_new(file, quarantine_schema(), Some(props))
                .map_err(self.parquet_error())?;
            self.writer = Some(w);
        }
        let written = match self.writer.as_mut() {
            Some(w) => w.write(&batch),
            None => Ok(()),
        };
        written.map_err(self.parquet_error())
    }

    /// Closes and syncs the file; `None` when nothing was quarantined.
    fn finish(mut self) -> Result<Option<StagedPart>> {
        self.flush()?;
        let Some(w) = self.writer.take() else {
            return Ok(None);
        };
        let f = w.into_inner().map_err(self.parquet_error())?;
        f.sync_all().map_err(Error::io("syncing", &self.path))?;
        let bytes = f
            .metadata()
            .map_err(Error::io("reading", &self.path))?
            .len();
        Ok(Some(StagedPart {
            staged: self.path,
            table: Table::Quarantine,
            rel_final: self.rel,
            day: String::new(),
            rows: self.rows,
            bytes,
            min_ts: 0,
            max_ts: 0,
        }))
    }
}

/// One batch of the quarantine table; `id` is the transaction.
/// The id of a commit made at `now` (UTC µs) by this process: its time, then 8 hex digits of a
/// hash of the time, the process id and `salt` (what tells this process's commits apart), so
/// that ids sort by commit time: `20261122T014512.123456-1a2b3c4d`. It names the commit's files
/// and is its `verdict.txn`.
pub(crate) fn commit_id(now: i64, salt: &[&[u8]]) -> String {
    let mut h = Xxh3::new();
    h.update(&now.to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    for s in salt {
        h.update(s);
    }
    let stamp = format_micros(now).replace(['-', ':', 'Z'], "");
    format!("{stamp}-{:08x}", h.digest() as u32)
}

fn quarantine_batch(rows: &[QuarantineRow], id: &str) -> Result<RecordBatch> {
    let s = |f: fn(&QuarantineRow) -> &str| {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f))) as arrow::array::ArrayRef
    };
    Ok(RecordBatch::try_new(
        quarantine_schema(),
        vec![
            s(|r| &r.key),
            s(|r| &r.file),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.line as i64),
            )),
            s(|r| &r.error),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| r.field.as_deref()),
            )),
            s(|r| &r.message),
            s(|r| &r.raw),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| r.raw_base64.as_deref()),
            )),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.raw_bytes as i64),
            )),
            Arc::new(BooleanArray::from_iter(
                rows.iter().map(|r| Some(r.raw_truncated)),
            )),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|_| id))),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.at))
                    .with_timezone("UTC"),
            ),
        ],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{ingest, NoProgress};
    use verdict_formats::Format;
    use verdict_schema::time::FixedClock;

    #[test]
    fn commit_ids_sort_by_time_and_differ_by_salt() {
        // 2026-11-22T01:45:12.123456Z
        let t = 1_795_311_912_123_456;
        let id = commit_id(t, &[b"decisions"]);
        let (stamp, hash) = id.split_once('-').unwrap();
        assert_eq!(stamp, "20261122T014512.123456");
        assert_eq!(hash.len(), 8);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(id, commit_id(t, &[b"decisions"]));
        assert_ne!(id, commit_id(t, &[b"event_keys"]));
        assert!(id < commit_id(t + 1, &[b"decisions"]));
    }

    #[test]
    fn quarantine_keys_are_read_only_when_a_line_is_quarantined() {
        let dir = tempfile::tempdir().unwrap();
        let good = r#"{"timestamp":"2026-11-02T10:00:00Z","request_id":"g1","grant_label":"a","method":"tools/call","tool":"t","decision":"allow"}"#;
        let log = dir.path().join("gw.jsonl");
        std::fs::write(&log, format!("{good}\n{{}}\n")).unwrap();
        let opts = IngestOptions::new(dir.path().join("wh"), vec![log.display().to_string()]);
        let clock = FixedClock(0);
        let s = ingest(&opts, &clock, &NoProgress).unwrap();
        assert_eq!((s.rows_written, s.quarantined), (1, 1));

        let pl = Decoder::Builtin(Format::PolicyLayer);
        let mut c = Committer::open(opts.clone(), &clock, Vec::new()).unwrap();
        assert!(c.qkeys.is_none(), "opening must not read them");
        let input = c.add_input("more.jsonl");
        let clean = good.replace("g1", "g2") + "\n";
        c.append(input, 1, clean.into_bytes(), &pl).unwrap();
        assert!(c.qkeys.is_none(), "a clean line must not read them");
        c.append(input, 2, b"not json\n".to_vec(), &pl).unwrap();
        assert!(c.qkeys.is_some());
        // The first run's bad line again: known, not quarantined twice.
        let again = c.add_input(&log.display().to_string());
        c.append(again, 2, b"{}\n".to_vec(), &pl).unwrap();
        assert_eq!(c.already_quarantined, 1);
    }

    #[test]
    fn many_bad_lines_are_written_batch_by_batch_and_all_kept() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("bad.jsonl");
        let n = 2 * QuarantineSink::BATCH + 5;
        // One good line first, for format detection.
        let good = r#"{"timestamp":"2026-11-02T10:00:00Z","request_id":"g1","grant_label":"a","method":"tools/call","tool":"t","decision":"allow"}"#;
        let bad: String = (0..n).map(|i| format!("not json {i}\n")).collect();
        std::fs::write(&log, format!("{good}\n{bad}")).unwrap();
        let opts = IngestOptions::new(dir.path().join("wh"), vec![log.display().to_string()]);
        let clock = FixedClock(0);
        let s = ingest(&opts, &clock, &NoProgress).unwrap();
        assert_eq!((s.rows_written, s.quarantined), (1, n as u64));

        // One file for the run, every line in it, and every key in the key index, which covers
        // the quarantine's version.
        let wh = Warehouse::new(opts.warehouse.clone()).unwrap();
        let q = block_on(wh.latest(Table::Quarantine)).unwrap().unwrap();
        assert_eq!(q.files.len(), 1);
        let keys = block_on(wh.latest(Table::QuarantineKeys)).unwrap().unwrap();
        assert_eq!(keys.rows(), n as u64);
        assert_eq!(
            block_on(keys.app_version(COVERS_APP_ID)).unwrap(),
            Some(q.version)
        );
        // The same file again adds nothing.
        let s = ingest(&opts, &clock, &NoProgress).unwrap();
        assert_eq!((s.quarantined, s.already_quarantined), (0, n as u64));
    }

    /// A warehouse in `dir` after ingesting one good line and the three lines of `bad` (each
    /// quarantined), and the options that ingested them.
    fn three_quarantined(dir: &std::path::Path, bad: [&str; 3]) -> IngestOptions {
        let good = r#"{"timestamp":"2026-11-02T10:00:00Z","request_id":"g1","grant_label":"a","method":"tools/call","tool":"t","decision":"allow"}"#;
        let body: String = bad.iter().map(|l| format!("{l}\n")).collect();
        let log = dir.join("a.jsonl");
        std::fs::write(&log, format!("{good}\n{body}")).unwrap();
        let opts = IngestOptions::new(dir.join("wh"), vec![log.display().to_string()]);
        let s = ingest(&opts, &FixedClock(0), &NoProgress).unwrap();
        assert_eq!(s.quarantined, 3);
        opts
    }

    #[test]
    fn a_missing_key_index_is_rebuilt_from_the_quarantine() {
        let dir = tempfile::tempdir().unwrap();
        let opts = three_quarantined(dir.path(), ["not json 1", "not json 2", "{}"]);
        let clock = FixedClock(0);
        // A warehouse written before the key index existed has no `quarantine_keys` table.
        std::fs::remove_dir_all(dir.path().join("wh").join("quarantine_keys")).unwrap();
        let s = ingest(&opts, &clock, &NoProgress).unwrap();
        assert_eq!((s.quarantined, s.already_quarantined), (0, 3));
        let wh = Warehouse::new(opts.warehouse.clone()).unwrap();
        let q = block_on(wh.latest(Table::Quarantine)).unwrap().unwrap();
        let keys = block_on(wh.latest(Table::QuarantineKeys)).unwrap().unwrap();
        assert_eq!(keys.rows(), 3);
        assert_eq!(
            block_on(keys.app_version(COVERS_APP_ID)).unwrap(),
            Some(q.version)
        );
    }

    #[test]
    fn a_key_index_left_behind_catches_up_from_the_files_added_since() {
        let dir = tempfile::tempdir().unwrap();
        let opts = three_quarantined(dir.path(), ["not json 1", "not json 2", "not json 3"]);
        let clock = FixedClock(0);
        let wh = Warehouse::new(opts.warehouse.clone()).unwrap();
        let before = block_on(wh.latest(Table::QuarantineKeys)).unwrap().unwrap();

        // Two lines reach the quarantine by a commit the key index never saw (as after a
        // crash between the two commits).
        let staging = wh.staging().unwrap();
        let mut sink = QuarantineSink::new(staging.path(), "behind", 3);
        let late = [0x0123_u128, 0x4567 << 100];
        for (i, k) in late.iter().enumerate() {
            sink.push(QuarantineRow {
                key: format!("{k:032x}"),
                file: "late.jsonl".into(),
                line: i as u64 + 1,
                error: "invalid_json".into(),
                field: None,
                message: "late".into(),
                raw: "late".into(),
                raw_base64: None,
                raw_bytes: 4,
                raw_truncated: false,
                at: 0,
            })
            .unwrap();
        }
        let p = sink.finish().unwrap().unwrap();
        let mut c = Commit::new(Operation::Append);
        c.adds = vec![describe(Table::Quarantine, &p.rel_final, None, &p.staged).unwrap()];
        block_on(wh.put_file(Table::Quarantine, &p.rel_final, &p.staged)).unwrap();
        let q = block_on(wh.latest(Table::Quarantine)).unwrap().unwrap();
        let q = block_on(wh.commit(&q, c)).unwrap();

        // The next writer that quarantines reads only the new file's keys: it knows them, and
        // the index keeps its files and adds the two.
        let mut w = Committer::open(opts.clone(), &clock, Vec::new()).unwrap();
        assert!(!w.new_quarantine_key(late[1]).unwrap());
        assert!(w.new_quarantine_key(late[1] + 1).unwrap());
        let after = block_on(wh.latest(Table::QuarantineKeys)).unwrap().unwrap();
        assert_eq!(after.rows(), 5);
        assert_eq!(
            block_on(after.app_version(COVERS_APP_ID)).unwrap(),
            Some(q.version)
        );
        let kept: Vec<_> = after.files.iter().map(|f| &f.path).collect();
        assert!(before.files.iter().all(|f| kept.contains(&&f.path)));
    }
}
