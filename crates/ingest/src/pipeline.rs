//! `ingest`: reads inputs on one thread, decodes chunks on worker threads, and on the calling
//! thread drops duplicates, quarantines bad lines and stages rows, then commits atomically.
//! Input order decides which copy of a duplicate is kept: the first one read.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use arrow::array::{AsArray, RecordBatch, UInt32Array};
use arrow::compute::{cast, take_record_batch};
use arrow::datatypes::DataType;
use base64::Engine as _;
use crossbeam_channel::bounded;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use verdict_formats::{detect, Decoder, Format, UserEnvelope};
use verdict_schema::idx;
use verdict_schema::time::{day_string, format_micros, Clock};
use xxhash_rust::xxh3::Xxh3;

use crate::decode::{decode_chunk, dedup_key, BadLine, Decoded, Delivery, RowChecks};
use crate::error::{Error, Result};
use crate::redact::{RedactionRules, Redactor};
use crate::rollup::{rollup_properties, RollupWorker, RollupWriter};
use crate::source::{self, Chunk, Chunker, Input};
use crate::warehouse::{
    rel, CommitStep, InputMeta, Intent, Move, Recovery, TxnMeta, Warehouse, FORMAT_VERSION,
};
use crate::writer::{writer_properties, PartitionWriter};

/// What to ingest and how.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// The warehouse root.
    pub warehouse: PathBuf,
    /// Files, directories, globs or `-`.
    pub inputs: Vec<String>,
    /// The input format: a fixed decoder, or detected per input from its first records.
    pub format: InputFormat,
    /// An envelope to take each line's record out of before anything else (`--envelope`).
    pub envelope: Option<Arc<UserEnvelope>>,
    /// Any bad line is an error and nothing is committed.
    pub strict: bool,
    /// Keep each record verbatim in `raw`.
    pub keep_raw: bool,
    /// Decoder threads.
    pub threads: usize,
    /// Bytes per chunk handed to a decoder.
    pub chunk_bytes: usize,
    /// Longest accepted line, in bytes.
    pub max_line_bytes: usize,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Rows waiting in memory across all day partitions at most.
    pub max_buffered_rows: usize,
    /// Commit every this many accepted rows (at a chunk boundary); `None`: one commit at the end.
    pub commit_rows: Option<u64>,
    /// zstd level of the Parquet files.
    pub zstd_level: i32,
    /// Dedup keys held in memory at most (16 bytes each, about 20 with the table): past it, the
    /// keys of the least recently touched day partitions are dropped, and rebuilt from the
    /// committed and staged files if a later row needs them. Dedup stays exact.
    pub max_dedup_keys: usize,
    /// Test hook: abort the process at this step of the first commit.
    pub abort_at: Option<CommitStep>,
    /// Secret redaction rules (the built-ins are on by default).
    pub redaction: RedactionRules,
    /// Rows with an earlier `ts` (UTC microseconds) are quarantined as `bad_timestamp`
    /// (default 2000-01-01).
    pub earliest_micros: i64,
    /// Rows with a `ts` more than this many days after now are quarantined as `bad_timestamp`
    /// (default 36,525: a hundred years).
    pub max_future_days: u32,
    /// Lines quarantined by one run at most; past it the run fails and commits nothing.
    pub max_quarantine_records: Option<u64>,
    /// Bytes of quarantined text of one run at most, likewise.
    pub max_quarantine_bytes: Option<u64>,
}

/// 2000-01-01T00:00:00Z in microseconds: the default earliest accepted time.
pub const DEFAULT_EARLIEST_MICROS: i64 = 946_684_800_000_000;

impl IngestOptions {
    /// Options with the defaults for a warehouse and inputs.
    pub fn new(warehouse: impl Into<PathBuf>, inputs: Vec<String>) -> Self {
        Self {
            warehouse: warehouse.into(),
            inputs,
            format: InputFormat::Auto,
            envelope: None,
            strict: false,
            keep_raw: true,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            chunk_bytes: 2 << 20,
            max_line_bytes: 1 << 20,
            row_group_rows: 64 * 1024,
            max_buffered_rows: 256 * 1024,
            commit_rows: None,
            zstd_level: 1,
            max_dedup_keys: 2_000_000,
            abort_at: None,
            redaction: RedactionRules::default(),
            earliest_micros: DEFAULT_EARLIEST_MICROS,
            max_future_days: 36_525,
            max_quarantine_records: None,
            max_quarantine_bytes: None,
        }
    }
}

/// How inputs are decoded.
#[derive(Debug, Clone)]
pub enum InputFormat {
    /// Detect each input's format from its first records ([`verdict_formats::detect`]).
    Auto,
    /// Decode every input with this decoder (a built-in format or a user mapping).
    Use(Decoder),
}

impl From<Format> for InputFormat {
    fn from(f: Format) -> Self {
        InputFormat::Use(Decoder::Builtin(f))
    }
}

/// Receives progress, in bytes of input read (compressed bytes for compressed files).
pub trait Progress: Send + Sync {
    /// The total to expect, when known.
    fn start(&self, _total_bytes: Option<u64>) {}
    /// More bytes were read.
    fn advance(&self, _bytes: u64) {}
    /// The work is done.
    fn finish(&self) {}
}

/// A [`Progress`] that shows nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Per-input figures.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FileSummary {
    /// The input name.
    pub file: String,
    /// The format read (a built-in format's name or a mapping's).
    pub format: String,
    /// Whether the format was detected rather than named.
    pub detected: bool,
    /// Non-blank lines.
    pub lines: u64,
    /// Rows written.
    pub rows: u64,
    /// Lines quarantined.
    pub quarantined: u64,
    /// Records known not to be decisions (the proxy's other messages), read and left out.
    pub skipped: u64,
    /// [`skipped`](Self::skipped) by reason (`server_log`, `response` ...).
    pub skipped_by: BTreeMap<String, u64>,
    /// Rows skipped as duplicates.
    pub duplicates: u64,
    /// Bytes read (decompressed).
    pub bytes: u64,
}

/// The outcome of an ingest.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IngestSummary {
    /// The warehouse root.
    pub warehouse: String,
    /// Transactions committed.
    pub txns: Vec<String>,
    /// Per input.
    pub files: Vec<FileSummary>,
    /// Non-blank lines read.
    pub lines: u64,
    /// Blank lines skipped.
    pub blank_lines: u64,
    /// Records known not to be decisions, left out.
    pub skipped: u64,
    /// [`skipped`](Self::skipped) by reason (`server_log`, `response` ...).
    pub skipped_by: BTreeMap<String, u64>,
    /// Rows written.
    pub rows_written: u64,
    /// Rows written per UTC day.
    pub rows_per_day: BTreeMap<String, u64>,
    /// Lines quarantined by this run.
    pub quarantined: u64,
    /// Bad lines already in the quarantine from an earlier run (not written again).
    pub already_quarantined: u64,
    /// Rows skipped because their `(source, event_id)` was already in the warehouse or earlier in the input.
    pub duplicates: u64,
    /// Bytes read (decompressed).
    pub bytes_read: u64,
    /// Wall time in seconds.
    pub elapsed_secs: f64,
    /// Throughput in MB/s of bytes read.
    pub mb_per_s: f64,
    /// Throughput in lines per second.
    pub events_per_s: f64,
    /// What recovery did before the ingest.
    pub recovery: Recovery,
    /// Quarantine files written.
    pub quarantine_files: Vec<String>,
    /// Times a day's dedup keys were dropped to stay within `max_dedup_keys`.
    pub dedup_evictions: u64,
    /// Inputs that could not be read to their end (the lines before the damage are kept):
    /// the run succeeded, but the caller should say so (the CLI exits 2).
    pub damaged: Vec<Damage>,
}

/// An input that could not be read whole (outside `strict` mode, the others go on).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Damage {
    /// The input (or the directory that could not be listed).
    pub file: String,
    /// Bytes of its content (decompressed) read before the damage; the lines before it are
    /// kept, the unfinished line at it is dropped.
    pub offset: u64,
    /// What went wrong.
    pub error: String,
}

struct InputStat {
    meta: InputMeta,
}

/// Ingests the inputs into the warehouse. See the crate docs for the guarantees.
///
/// # Errors
/// Unreadable inputs, warehouse failures, and in `strict` mode the first bad line; in every
/// error case nothing of the current transaction is committed.
pub fn ingest(
    opts: &IngestOptions,
    clock: &dyn Clock,
    progress: &dyn Progress,
) -> Result<IngestSummary> {
    let started = Instant::now();
    let (inputs, unreadable) = source::resolve_all(&opts.inputs)?;
    let mut damaged: Vec<Damage> = Vec::new();
    for (dir, source) in unreadable {
        if opts.strict {
            return Err(Error::Read {
                file: dir.display().to_string(),
                source,
            });
        }
        damaged.push(Damage {
            file: dir.display().to_string(),
            offset: 0,
            error: format!("cannot list the directory: {source}"),
        });
    }
    let names: Vec<String> = inputs.iter().map(Input::name).collect();
    let wh = Warehouse::open_for_write(&opts.warehouse)?;
    let total = inputs
        .iter()
        .map(|i| match i {
            Input::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            Input::Stdin => None,
        })
        .sum::<Option<u64>>();
    progress.start(total);

    let mut state = Committer::with_warehouse(wh, opts.clone(), clock, names.clone())?;
    let decoders: Vec<OnceLock<(Decoder, Option<String>)>> =
        inputs.iter().map(|_| OnceLock::new()).collect();
    if let InputFormat::Use(d) = &opts.format {
        for slot in &decoders {
            let _ = slot.set((d.clone(), None));
        }
    }
    let (chunk_tx, chunk_rx) = bounded::<Result<Chunk>>(opts.threads * 2 + 2);
    let (dec_tx, dec_rx) = bounded::<Result<Decoded>>(opts.threads * 2 + 2);
    let threads = opts.threads.max(1);
    let checks = state.checks.clone();
    let no_delivery = Delivery::default();

    let outcome: Result<(Vec<InputStat>, Vec<Damage>)> = std::thread::scope(|s| {
        let decoders = &decoders;
        let reader = s.spawn(|| read_all(&inputs, opts, progress, decoders, chunk_tx));
        for _ in 0..threads {
            let rx = chunk_rx.clone();
            let tx = dec_tx.clone();
            let names = &names;
            let (checks, no_delivery) = (&checks, &no_delivery);
            s.spawn(move || {
                for item in rx {
                    let out = item.and_then(|c| {
                        let name = &names[c.input];
                        let (decoder, _) = decoders[c.input]
                            .get()
                            .ok_or_else(|| Error::Internal("no decoder for an input".into()))?;
                        decode_chunk(
                            c,
                            decoder,
                            opts.envelope.as_deref(),
                            name,
                            opts.keep_raw,
                            opts.max_line_bytes,
                            checks,
                            no_delivery,
                        )
                    });
                    if tx.send(out).is_err() {
                        break;
                    }
                }
            });
        }
        drop(chunk_rx);
        drop(dec_tx);
        let mut pending: BTreeMap<u64, Decoded> = BTreeMap::new();
        let mut next = 0u64;
        let mut result = Ok(());
        for item in dec_rx.iter() {
            match item {
                Ok(d) => {
                    pending.insert(d.seq, d);
                    while let Some(d) = pending.remove(&next) {
                        next += 1;
                        if let Err(e) = state.absorb(d) {
                            result = Err(e);
                            break;
                        }
                    }
                }
                Err(e) => result = Err(e),
            }
            if result.is_err() {
                break;
            }
        }
        drop(dec_rx);
        let stats = reader
            .join()
            .map_err(|_| Error::Internal("the reader thread panicked".into()))?;
        result?;
        stats
    });
    progress.finish();
    let stats = match outcome {
        Ok((s, d)) => {
            damaged.extend(d);
            s
        }
        Err(e) => {
            state.discard()?;
            return Err(e);
        }
    };
    let inputs_meta: Vec<InputMeta> = stats.into_iter().map(|s| s.meta).collect();
    state.commit(inputs_meta)?;
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    let mut files = state.files;
    for (f, d) in files.iter_mut().zip(&decoders) {
        if let Some((decoder, detected)) = d.get() {
            f.format = detected
                .clone()
                .unwrap_or_else(|| decoder.name().to_string());
            f.detected = detected.is_some();
        }
    }
    let bytes_read: u64 = files.iter().map(|f| f.bytes).sum();
    let lines: u64 = files.iter().map(|f| f.lines).sum();
    Ok(IngestSummary {
        warehouse: opts.warehouse.display().to_string(),
        txns: state.committed,
        lines,
        blank_lines: state.blank,
        skipped: files.iter().map(|f| f.skipped).sum(),
        skipped_by: files.iter().fold(BTreeMap::new(), |mut all, f| {
            for (reason, n) in &f.skipped_by {
                *all.entry(reason.clone()).or_default() += n;
            }
            all
        }),
        rows_written: state.rows_per_day.values().sum(),
        rows_per_day: state
            .rows_per_day
            .into_iter()
            .map(|(d, n)| (day_string(d), n))
            .collect(),
        quarantined: files.iter().map(|f| f.quarantined).sum(),
        already_quarantined: state.already_quarantined,
        duplicates: files.iter().map(|f| f.duplicates).sum(),
        files,
        bytes_read,
        elapsed_secs: elapsed,
        mb_per_s: bytes_read as f64 / 1e6 / elapsed,
        events_per_s: lines as f64 / elapsed,
        recovery: state.wh.recovery().clone(),
        quarantine_files: state.quarantine_files,
        dedup_evictions: state.evicted,
        damaged,
    })
}

/// Counts bytes read from the underlying file for progress.
struct Counting<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn read_all(
    inputs: &[Input],
    opts: &IngestOptions,
    progress: &dyn Progress,
    decoders: &[OnceLock<(Decoder, Option<String>)>],
    tx: crossbeam_channel::Sender<Result<Chunk>>,
) -> Result<(Vec<InputStat>, Vec<Damage>)> {
    let mut seq = 0u64;
    let mut stats = Vec::with_capacity(inputs.len());
    let mut damaged = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let name = input.name();
        let counter = Arc::new(AtomicU64::new(0));
        let raw: Box<dyn Read + Send> = match input {
            Input::Stdin => Box::new(std::io::stdin()),
            Input::File(p) => match File::open(p) {
                Ok(f) => Box::new(f),
                Err(source) => {
                    let e = Error::Read {
                        file: name.clone(),
                        source,
                    };
                    if damage(opts.strict, &mut damaged, &name, 0, e, &tx) {
                        let _ = decoders[i].set((Decoder::Builtin(Format::PolicyLayer), None));
                        continue;
                    }
                    return Ok((stats, damaged));
                }
            },
        };
        let counted = Counting {
            inner: raw,
            counter: counter.clone(),
        };
        let reader = match source::open_reader(Box::new(counted), &name) {
            Ok(r) => r,
            Err(e) => {
                if damage(opts.strict, &mut damaged, &name, 0, e, &tx) {
                    let _ = decoders[i].set((Decoder::Builtin(Format::PolicyLayer), None));
                    continue;
                }
                return Ok((stats, damaged));
            }
        };
        let mut chunker = Chunker::new(reader, i, opts.chunk_bytes, opts.max_line_bytes);
        let mut reported = 0;
        loop {
            match chunker.next_chunk() {
                Ok(Some(mut c)) => {
                    if decoders[i].get().is_none() {
                        match detect_chunk(&c, opts.envelope.as_deref()) {
                            Ok(d) => {
                                let _ =
                                    decoders[i].set((Decoder::Builtin(d.format), Some(d.label())));
                            }
                            Err(message) => {
                                let _ = tx.send(Err(Error::Detect {
                                    file: name.clone(),
                                    message,
                                }));
                                return Ok((stats, damaged));
                            }
                        }
                    }
                    c.seq = seq;
                    seq += 1;
                    let now = counter.load(Ordering::Relaxed);
                    progress.advance(now - reported);
                    reported = now;
                    if tx.send(Ok(c)).is_err() {
                        return Ok((stats, damaged));
                    }
                }
                Ok(None) => break,
                Err(source) => {
                    let e = Error::Read {
                        file: name.clone(),
                        source,
                    };
                    if damage(opts.strict, &mut damaged, &name, chunker.bytes_read, e, &tx) {
                        break;
                    }
                    return Ok((stats, damaged));
                }
            }
        }
        progress.advance(counter.load(Ordering::Relaxed) - reported);
        if decoders[i].get().is_none() {
            // An empty input: nothing to decode, whatever its format.
            let _ = decoders[i].set((Decoder::Builtin(Format::PolicyLayer), None));
        }
        stats.push(InputStat {
            meta: InputMeta {
                file: name,
                fingerprint: source::fingerprint(&chunker.head, chunker.bytes_read),
                bytes: chunker.bytes_read,
                lines: chunker.lines(),
            },
        });
    }
    Ok((stats, damaged))
}

/// Outside strict mode a damaged input is recorded (returns true: read the next one); in
/// strict mode the error goes to the writer, which then commits nothing.
fn damage(
    strict: bool,
    damaged: &mut Vec<Damage>,
    file: &str,
    offset: u64,
    e: Error,
    tx: &crossbeam_channel::Sender<Result<Chunk>>,
) -> bool {
    if strict {
        let _ = tx.send(Err(e));
        return false;
    }
    damaged.push(Damage {
        file: file.to_string(),
        offset,
        error: match e {
            Error::Read { source, .. } => source.to_string(),
            other => other.to_string(),
        },
    });
    true
}

/// Detects the format of an input from the lines of its first chunk (out of the user's
/// envelope, when one is named; a line that does not match it counts as blank here).
pub(crate) fn detect_chunk(
    c: &Chunk,
    envelope: Option<&UserEnvelope>,
) -> std::result::Result<verdict_formats::Detected, String> {
    let lines = c
        .bytes
        .split(|&b| b == b'\n')
        .take(verdict_formats::DETECT_LINES * 4)
        .map(|l| std::str::from_utf8(l).unwrap_or(""));
    match envelope {
        None => detect(lines, c.first_line),
        Some(e) => {
            let inner: Vec<std::borrow::Cow<'_, str>> = lines
                .map(|l| e.unwrap(l).unwrap_or(std::borrow::Cow::Borrowed("")))
                .collect();
            detect(inner.iter().map(|l| l.as_ref()), c.first_line)
        }
    }
    .map_err(|e| e.to_string())
}

/// The writing side of an ingest, reusable by long-running collectors: dedup on
/// `(source, event_id)` across the warehouse, quarantine, staging and atomic commits. It holds
/// the warehouse's write lock for its whole life. Rows go into one open transaction until
/// [`Committer::commit`]; nothing is visible (nor durable) before that.
pub struct Committer<'a> {
    wh: Warehouse,
    opts: IngestOptions,
    clock: &'a dyn Clock,
    names: Vec<String>,
    seen: FxHashMap<i32, FxHashSet<u128>>,
    /// When each day's keys were last used (chunk sequence), for eviction.
    touched: FxHashMap<i32, u64>,
    /// Days whose key sets were dropped during this run.
    evicted: u64,
    /// A sequence number per absorbed batch, for eviction when the caller gives none.
    absorbed: u64,
    quarantined_keys: FxHashSet<u128>,
    txn: Option<Txn>,
    files: Vec<FileSummary>,
    blank: u64,
    rows_per_day: BTreeMap<i32, u64>,
    already_quarantined: u64,
    committed: Vec<String>,
    quarantine_files: Vec<String>,
    rows_since_commit: u64,
    quarantined_since_commit: u64,
    checks: RowChecks,
    /// Lines and bytes quarantined by this committer, for the budget.
    quarantined_total: (u64, u64),
}

/// What one [`Committer::commit`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitInfo {
    /// The transaction id, when there was something to commit.
    pub txn: Option<String>,
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

struct Txn {
    id: String,
    writer: PartitionWriter,
    rollup: RollupWorker,
    quarantine: Option<(PathBuf, BufWriter<File>, u64)>,
    rows: u64,
}

impl<'a> Committer<'a> {
    /// Opens the warehouse of `opts` for writing (waiting for its lock, recovering interrupted
    /// commits) with the inputs named `names` (more can be added with [`Committer::add_input`]).
    ///
    /// # Errors
    /// When the warehouse cannot be opened or its quarantine read.
    pub fn open(opts: IngestOptions, clock: &'a dyn Clock, names: Vec<String>) -> Result<Self> {
        let wh = Warehouse::open_for_write(&opts.warehouse)?;
        Self::with_warehouse(wh, opts, clock, names)
    }

    fn with_warehouse(
        wh: Warehouse,
        opts: IngestOptions,
        clock: &'a dyn Clock,
        names: Vec<String>,
    ) -> Result<Self> {
        let quarantined_keys = load_quarantine_keys(&wh)?;
        let checks = row_checks(&wh, &opts, clock)?;
        Ok(Self {
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
            opts,
            clock,
            names,
            seen: FxHashMap::default(),
            touched: FxHashMap::default(),
            evicted: 0,
            absorbed: 0,
            quarantined_keys,
            txn: None,
            blank: 0,
            rows_per_day: BTreeMap::new(),
            already_quarantined: 0,
            committed: Vec::new(),
            quarantine_files: Vec::new(),
            rows_since_commit: 0,
            quarantined_since_commit: 0,
        })
    }

    /// The opened warehouse.
    pub fn warehouse(&self) -> &Warehouse {
        &self.wh
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

    /// Rows accepted since the last commit.
    pub fn pending_rows(&self) -> u64 {
        self.rows_since_commit
    }

    /// Whether anything (rows or quarantined lines) waits for a commit.
    pub fn has_pending(&self) -> bool {
        self.txn.is_some()
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
        let name = self
            .names
            .get(input)
            .cloned()
            .ok_or_else(|| Error::Internal(format!("no input number {input}")))?;
        self.absorbed += 1;
        let chunk = Chunk {
            seq: self.absorbed,
            input,
            first_line,
            bytes,
            oversized: Vec::new(),
        };
        // With a budget, decoding stops as soon as it is spent: a tiny body of a million bad
        // lines costs no more than the budget.
        let mut checks = self.checks.clone();
        checks.max_bad = max_bad.map(|(records, _)| usize::try_from(records).unwrap_or(usize::MAX));
        let d = decode_chunk(
            chunk,
            decoder,
            self.opts.envelope.as_deref(),
            &name,
            self.opts.keep_raw,
            self.opts.max_line_bytes,
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
                    file: name,
                    line: first,
                    what,
                });
            }
        }
        let before = self.files[input].clone();
        let quarantined_before = self.files[input].quarantined;
        self.absorb(d)?;
        let after = &self.files[input];
        Ok(AppendInfo {
            lines: after.lines - before.lines,
            rows: after.rows - before.rows,
            duplicates: after.duplicates - before.duplicates,
            quarantined: after.quarantined - quarantined_before,
            skipped: after.skipped - before.skipped,
        })
    }

    /// Commits the open transaction (see [`Warehouse::commit`]); a no-op when nothing waits.
    ///
    /// # Errors
    /// On any staging or filesystem failure. The caller must then stop using this committer:
    /// the rows of the failed transaction are in its dedup sets but not in the warehouse.
    pub fn commit_now(&mut self) -> Result<CommitInfo> {
        let rows = self.rows_since_commit;
        let quarantined = self.quarantined_since_commit;
        let before = self.committed.len();
        self.commit(Vec::new())?;
        let txn = (self.committed.len() > before)
            .then(|| self.committed.last().cloned())
            .flatten();
        Ok(CommitInfo {
            txn,
            rows,
            quarantined,
        })
    }

    fn txn(&mut self) -> Result<&mut Txn> {
        if self.txn.is_none() {
            let now = self.clock.now_micros();
            let mut h = Xxh3::new();
            h.update(&now.to_le_bytes());
            h.update(&std::process::id().to_le_bytes());
            h.update(&(self.committed.len() as u64).to_le_bytes());
            // Ids sort by commit time: 20261122T014512.123456-1a2b3c4d.
            let stamp = format_micros(now).replace(['-', ':', 'Z'], "");
            let id = format!("{stamp}-{:08x}", h.digest() as u32);
            let staging = self.wh.staging_dir(&id);
            std::fs::create_dir_all(&staging).map_err(Error::io("creating", &staging))?;
            let props = writer_properties(self.opts.zstd_level, self.opts.row_group_rows)?;
            let writer = PartitionWriter::new(
                &staging,
                &id,
                props,
                self.opts.row_group_rows,
                self.opts.max_buffered_rows,
            );
            // A quarter of the row budget: a group costs about as much memory as a buffered
            // row without its `raw`, and runs need not be large since each decision of a run is
            // a row group of its own.
            let rollup = RollupWorker::spawn(RollupWriter::new(
                &staging,
                &id,
                rollup_properties(self.opts.zstd_level)?,
                self.opts.max_buffered_rows / 4,
            ))?;
            self.txn = Some(Txn {
                id,
                writer,
                rollup,
                quarantine: None,
                rows: 0,
            });
        }
        self.txn
            .as_mut()
            .ok_or_else(|| Error::Internal("no transaction".into()))
    }

    fn absorb(&mut self, d: Decoded) -> Result<()> {
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
        for i in 0..n {
            let day = d.days[i];
            if !self.seen.contains_key(&day) {
                let set = self.load_keys(day)?;
                self.seen.insert(day, set);
            }
            self.touched.insert(day, d.seq);
            let set = self
                .seen
                .get_mut(&day)
                .ok_or_else(|| Error::Internal("day set".into()))?;
            if set.insert(d.keys[i]) {
                per_day.entry(day).or_default().push(i as u32);
            } else {
                dups += 1;
            }
        }
        self.evict(d.seq);
        let f = &mut self.files[d.input];
        f.duplicates += dups;
        f.rows += n as u64 - dups;
        let accepted = n as u64 - dups;
        let whole = per_day.len() == 1 && dups == 0;
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

    /// The dedup keys of a day: its committed files, plus what this run already staged for it
    /// (only after an eviction; the day's open file is sealed so it can be read).
    fn load_keys(&mut self, day: i32) -> Result<FxHashSet<u128>> {
        let mut paths = self.wh.day_files(&day_string(day))?;
        if let Some(txn) = self.txn.as_mut() {
            if self.rows_per_day.contains_key(&day) {
                paths.extend(txn.writer.seal_day(day)?);
            }
        }
        load_day_keys(&paths)
    }

    /// Drops the key sets of the least recently touched days while over the budget, never
    /// those of the chunk just absorbed.
    fn evict(&mut self, current: u64) {
        let mut total: usize = self.seen.values().map(|s| s.len()).sum();
        if total <= self.opts.max_dedup_keys {
            return;
        }
        let mut days: Vec<(u64, i32)> = self.touched.iter().map(|(d, t)| (*t, *d)).collect();
        days.sort_unstable();
        for (t, day) in days {
            if total <= self.opts.max_dedup_keys || t >= current {
                break;
            }
            if let Some(set) = self.seen.remove(&day) {
                total -= set.len();
                self.touched.remove(&day);
                self.evicted += 1;
            }
        }
    }

    fn quarantine(&mut self, b: &BadLine) -> Result<()> {
        let mut h = Xxh3::new();
        h.update(&b.line.to_le_bytes());
        h.update(&b.raw_len.to_le_bytes());
        h.update(&b.raw);
        let key = h.digest128();
        if !self.quarantined_keys.insert(key) {
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
        let at = format_micros(self.clock.now_micros());
        self.quarantined_since_commit += 1;
        let id = self.txn()?.id.clone();
        let staged_path = txn_staging_quarantine(&self.wh, &id);
        let txn = self.txn()?;
        if txn.quarantine.is_none() {
            let path = staged_path;
            let f = File::create(&path).map_err(Error::io("creating", &path))?;
            txn.quarantine = Some((path, BufWriter::new(f), 0));
        }
        let Some((path, w, count)) = txn.quarantine.as_mut() else {
            return Ok(());
        };
        let (raw, b64) = match std::str::from_utf8(&b.raw) {
            Ok(s) => (s.to_string(), None),
            Err(_) => (
                String::from_utf8_lossy(&b.raw).into_owned(),
                Some(base64::engine::general_purpose::STANDARD.encode(&b.raw)),
            ),
        };
        let entry = QuarantineEntry {
            key: format!("{key:032x}"),
            file,
            line: b.line,
            error: b.error.kind.code(),
            field: b.error.field.as_deref(),
            message: &b.error.message,
            raw,
            raw_base64: b64,
            raw_bytes: b.raw_len,
            raw_truncated: (b.raw.len() as u64) < b.raw_len,
            txn: &txn.id,
            quarantined_at: at,
        };
        serde_json::to_writer(&mut *w, &entry).map_err(|e| Error::Internal(e.to_string()))?;
        w.write_all(b"\n")
            .map_err(Error::io("writing", path.clone()))?;
        *count += 1;
        Ok(())
    }

    fn commit(&mut self, inputs: Vec<InputMeta>) -> Result<()> {
        self.rows_since_commit = 0;
        self.quarantined_since_commit = 0;
        let Some(txn) = self.txn.take() else {
            return Ok(());
        };
        let Txn {
            id,
            writer,
            rollup,
            quarantine,
            rows,
        } = txn;
        let staged = writer.finish()?;
        let staged_rollups = rollup.finish()?;
        let mut moves = Vec::new();
        let mut parts = Vec::new();
        let root = self.wh.root();
        for p in &staged {
            let (m, meta) = p.commit_entry(root, &id);
            moves.push(m);
            parts.push(meta);
        }
        // Rollup files move after the decisions parts: a reader that sees a commit cut short
        // finds decisions without their rollup and answers from the decisions.
        let mut rollups = Vec::new();
        for p in &staged_rollups {
            let (m, meta) = p.commit_entry(root, &id);
            moves.push(m);
            rollups.push(meta);
        }
        let mut quarantined = 0;
        if let Some((path, mut w, count)) = quarantine {
            w.flush().map_err(Error::io("writing", &path))?;
            let f = w
                .into_inner()
                .map_err(|e| Error::io("writing", &path)(e.into_error()))?;
            f.sync_all().map_err(Error::io("syncing", &path))?;
            let to = format!("quarantine/{id}.jsonl");
            moves.push(Move {
                from: rel(root, &path),
                to: to.clone(),
            });
            self.quarantine_files.push(to);
            quarantined = count;
        }
        if moves.is_empty() {
            return self.wh.abort(&id);
        }
        let intent = Intent {
            format_version: FORMAT_VERSION,
            txn: TxnMeta {
                id: id.clone(),
                committed_at: format_micros(self.clock.now_micros()),
                rows,
                quarantined,
                inputs,
            },
            parts,
            rollups,
            moves,
            swap_day: None,
            removes: Vec::new(),
        };
        self.wh.commit(&intent, self.opts.abort_at)?;
        self.committed.push(id);
        Ok(())
    }

    fn discard(&mut self) -> Result<()> {
        if let Some(txn) = self.txn.take() {
            let id = txn.id.clone();
            drop(txn);
            self.wh.abort(&id)?;
        }
        Ok(())
    }
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
        Some(Arc::new(Redactor::for_warehouse(
            &opts.redaction,
            wh.root(),
        )?))
    };
    Ok(RowChecks {
        ts_min: opts.earliest_micros,
        ts_max: now.saturating_add(ahead),
        redactor,
        max_bad: None,
    })
}

#[derive(Serialize)]
struct QuarantineEntry<'a> {
    key: String,
    file: String,
    line: u64,
    error: &'static str,
    field: Option<&'a str>,
    message: &'a str,
    raw: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_base64: Option<String>,
    raw_bytes: u64,
    raw_truncated: bool,
    txn: &'a str,
    quarantined_at: String,
}

fn txn_staging_quarantine(wh: &Warehouse, txn: &str) -> PathBuf {
    wh.staging_dir(txn).join("quarantine.jsonl")
}

/// The dedup keys of every row in these Parquet files.
fn load_day_keys(paths: &[PathBuf]) -> Result<FxHashSet<u128>> {
    let mut set = FxHashSet::default();
    for path in paths {
        let pq = |source| Error::Parquet {
            path: path.clone(),
            source,
        };
        let file = File::open(path).map_err(Error::io("opening", path))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), [idx::EVENT_ID, idx::SOURCE]);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(64 * 1024)
            .build()
            .map_err(pq)?;
        for batch in reader {
            let batch = batch?;
            let ids = batch.column(0).as_string::<i32>();
            let sources = cast(batch.column(1), &DataType::Utf8)?;
            let sources = sources.as_string::<i32>();
            set.reserve(batch.num_rows());
            for i in 0..batch.num_rows() {
                set.insert(dedup_key(sources.value(i), ids.value(i)));
            }
        }
    }
    Ok(set)
}

/// The keys of every line already quarantined, so a re-ingest does not quarantine it twice.
fn load_quarantine_keys(wh: &Warehouse) -> Result<FxHashSet<u128>> {
    #[derive(serde::Deserialize)]
    struct Key {
        key: String,
    }
    let mut keys = FxHashSet::default();
    let dir = wh.quarantine_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(keys);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(Error::io("reading", &path))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Ok(k) = serde_json::from_str::<Key>(line) {
                if let Ok(v) = u128::from_str_radix(&k.key, 16) {
                    keys.insert(v);
                }
            }
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use verdict_schema::time::FixedClock;

    fn line(id: &str, ts: &str) -> String {
        format!(
            r#"{{"timestamp":"{ts}","request_id":"{id}","grant_label":"a","method":"tools/call","tool":"t","decision":"allow"}}"#
        )
    }

    #[test]
    fn dedup_stays_exact_when_day_keys_are_evicted() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        for i in 0..50 {
            text.push_str(&line(
                &format!("a{i}"),
                &format!("2026-11-02T10:00:{i:02}Z"),
            ));
            text.push('\n');
        }
        for i in 0..50 {
            text.push_str(&line(
                &format!("b{i}"),
                &format!("2026-11-03T10:00:{i:02}Z"),
            ));
            text.push('\n');
        }
        // Late rows for the first day, whose keys were evicted: one duplicate, one new row.
        text.push_str(&line("a7", "2026-11-02T10:00:07Z"));
        text.push('\n');
        text.push_str(&line("a-late", "2026-11-02T11:00:00Z"));
        text.push('\n');
        let log = dir.path().join("gw.jsonl");
        std::fs::write(&log, text).unwrap();
        let mut opts = IngestOptions::new(dir.path().join("wh"), vec![log.display().to_string()]);
        opts.chunk_bytes = 1024;
        opts.max_dedup_keys = 60;
        let clock = FixedClock(0);
        let s = ingest(&opts, &clock, &NoProgress).unwrap();
        assert!(
            s.dedup_evictions > 0,
            "the budget must have forced an eviction"
        );
        assert_eq!((s.rows_written, s.duplicates), (101, 1));
        assert_eq!(s.rows_per_day["2026-11-02"], 51);
        // The rollup holds the committed rows once, per grain and day, listed in the manifest.
        let wh = Warehouse::open_for_read(&opts.warehouse).unwrap();
        let m = wh.manifest().unwrap();
        let rollups: Vec<(&str, u64)> = m
            .rollups
            .iter()
            .map(|p| (p.path.split('/').nth(1).unwrap(), p.rows))
            .collect();
        assert_eq!(
            rollups,
            [("minute", 2), ("minute", 1), ("hour", 2), ("hour", 1)]
        );
        for p in &m.rollups {
            let path = opts.warehouse.join(&p.path);
            let calls: i64 = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
                .unwrap()
                .build()
                .unwrap()
                .map(|b| {
                    let b = b.unwrap();
                    let c = b.column(7).as_primitive::<arrow::datatypes::Int64Type>();
                    c.values().iter().sum::<i64>()
                })
                .sum();
            let day = &p.day;
            assert_eq!(calls as u64, s.rows_per_day[day], "{}", p.path);
        }
        // Re-ingesting finds every row, across both days' files, and commits nothing.
        let again = ingest(&opts, &clock, &NoProgress).unwrap();
        assert_eq!((again.rows_written, again.duplicates), (0, 102));
        let m = Warehouse::open_for_read(&opts.warehouse)
            .unwrap()
            .manifest()
            .unwrap();
        assert_eq!(m.rollups.len(), 4);
    }
}
