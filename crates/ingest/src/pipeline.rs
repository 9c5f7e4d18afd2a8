//! `ingest`: reads inputs on one thread, decodes chunks on worker threads, and on the calling
//! thread drops duplicates, quarantines bad lines and stages rows, then commits atomically.
//! Input order decides which copy of a duplicate is kept: the first one read.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crossbeam_channel::bounded;
use serde::Serialize;
use verdict_formats::{detect, Decoder, Format, UserEnvelope};
use verdict_schema::time::{day_string, Clock};

use verdict_table::Location;

use crate::committer::{CommitStep, Committer, InputMeta, Recovery};
use crate::decode::{decode_chunk, Decoded, Delivery};
use crate::error::{Error, Result};
use crate::redact::RedactionRules;
use crate::source::{self, Chunk, Chunker, Input};

/// What to ingest and how.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// The warehouse root.
    pub warehouse: Location,
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
    /// Rows waiting in memory across all day partitions at most: by default two row groups'
    /// worth (rows a few seconds out of order keep two days open around midnight; four row
    /// groups' worth was, after the dedup keys, the largest part of a 10M-line ingest's peak).
    /// Each rollup grain holds about half as many groups.
    pub max_buffered_rows: usize,
    /// Commit every this many accepted rows (at a chunk boundary); `None`: one commit at the end.
    pub commit_rows: Option<u64>,
    /// zstd level of the Parquet files.
    pub zstd_level: i32,
    /// Dedup keys held in memory at most (24 bytes each, about 32 with the table): past it, the
    /// least recently used buckets of the index are dropped and read again from the
    /// `event_keys` table if a later row needs them. Dedup stays exact.
    pub max_dedup_keys: usize,
    /// New dedup keys of one transaction held in memory at most (about 25 bytes each in a
    /// map): past it, a bucket's new keys are sorted into a run file in the staging directory
    /// and only a filter and a sparse index of them stay in memory (about 2 bytes a key). Dedup
    /// stays exact.
    pub max_pending_keys: usize,
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
    /// The key that signs each commit's link of the integrity chain; `None`: unsigned links.
    pub signing_key: Option<verdict_table::SigningKey>,
}

/// 2000-01-01T00:00:00Z in microseconds: the default earliest accepted time.
pub const DEFAULT_EARLIEST_MICROS: i64 = 946_684_800_000_000;

impl IngestOptions {
    /// Options with the defaults for a warehouse and inputs.
    pub fn new(warehouse: impl Into<Location>, inputs: Vec<String>) -> Self {
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
            max_buffered_rows: 128 * 1024,
            commit_rows: None,
            zstd_level: 1,
            max_dedup_keys: 4_000_000,
            max_pending_keys: crate::index::DEFAULT_MAX_PENDING_KEYS,
            abort_at: None,
            redaction: RedactionRules::default(),
            earliest_micros: DEFAULT_EARLIEST_MICROS,
            max_future_days: 36_525,
            max_quarantine_records: None,
            max_quarantine_bytes: None,
            signing_key: None,
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
    /// What opening the warehouse repaired before the ingest.
    pub recovery: Recovery,
    /// The `decisions` version after the ingest.
    pub version: i64,
    /// Records reusing a stored `(source, event_id)` with other content, quarantined as
    /// `conflicting_duplicate` (also counted in `quarantined`).
    pub conflicting_duplicates: u64,
    /// Quarantine files written.
    pub quarantine_files: Vec<String>,
    /// Times a bucket of the dedup index was dropped to stay within `max_dedup_keys`.
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
    let total = inputs
        .iter()
        .map(|i| match i {
            Input::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            Input::Stdin => None,
        })
        .sum::<Option<u64>>();
    progress.start(total);

    let mut state = Committer::open(opts.clone(), clock, names.clone())?;
    let decoders: Vec<OnceLock<(Decoder, Option<String>)>> =
        inputs.iter().map(|_| OnceLock::new()).collect();
    if let InputFormat::Use(d) = &opts.format {
        for slot in &decoders {
            let _ = slot.set((d.clone(), None));
        }
    }
    let (chunk_tx, chunk_rx) = bounded::<Result<Chunk>>(opts.threads + 1);
    let (dec_tx, dec_rx) = bounded::<Result<Decoded>>(opts.threads + 1);
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
    let mut files = std::mem::take(&mut state.files);
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
        warehouse: opts.warehouse.to_string(),
        txns: std::mem::take(&mut state.committed),
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
        rows_per_day: std::mem::take(&mut state.rows_per_day)
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
        damaged,
        recovery: state.recovery().clone(),
        version: state.version(),
        conflicting_duplicates: state.conflicts,
        quarantine_files: state.quarantine_files.clone(),
        dedup_evictions: state.index_evictions(),
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
        Some(e) => e.detect(lines, c.first_line),
    }
    .map_err(|e| e.to_string())
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

    /// Writes `text` as `gw.jsonl` in `dir`; options for ingesting it into `dir/wh` in chunks
    /// of `chunk_bytes`.
    fn log_options(dir: &std::path::Path, text: &str, chunk_bytes: usize) -> IngestOptions {
        let log = dir.join("gw.jsonl");
        std::fs::write(&log, text).unwrap();
        let mut opts = IngestOptions::new(dir.join("wh"), vec![log.display().to_string()]);
        opts.chunk_bytes = chunk_bytes;
        opts
    }

    #[test]
    fn dedup_is_global_and_exact_when_index_buckets_are_evicted() {
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
        // A late duplicate, the same id on another day (other content: quarantined as a
        // conflicting duplicate), and a new row.
        text.push_str(&line("a7", "2026-11-02T10:00:07Z"));
        text.push('\n');
        text.push_str(&line("a8", "2026-11-04T10:00:08Z"));
        text.push('\n');
        text.push_str(&line("a-late", "2026-11-02T11:00:00Z"));
        text.push('\n');
        let mut opts = log_options(dir.path(), &text, 1024);
        opts.max_dedup_keys = 20;
        let clock = FixedClock(0);
        let s = ingest(&opts, &clock, &NoProgress).unwrap();
        assert_eq!((s.rows_written, s.duplicates), (101, 1));
        assert_eq!((s.conflicting_duplicates, s.quarantined), (1, 1));
        assert_eq!(s.rows_per_day["2026-11-02"], 51);
        assert!(!s.rows_per_day.contains_key("2026-11-04"));
        // The rollups and the dedup index cover the decisions version.
        let wh = verdict_table::Warehouse::new(opts.warehouse.clone()).unwrap();
        let snap = verdict_table::block_on(wh.snapshot(None)).unwrap();
        for t in [
            verdict_table::Table::RollupMinute,
            verdict_table::Table::RollupHour,
        ] {
            let rollup = verdict_table::block_on(snap.table(t)).unwrap();
            assert!(rollup.is_some(), "{t:?} covers the decisions version");
        }
        assert_eq!(snap.decisions.as_ref().unwrap().rows(), 101);
        let keys = verdict_table::block_on(wh.latest(verdict_table::Table::EventKeys))
            .unwrap()
            .unwrap();
        assert_eq!(keys.rows(), 101);
        // Re-ingesting, with the index read back from the table (101 keys, more than the
        // budget of 20: buckets are dropped and read again), commits nothing.
        let again = ingest(&opts, &clock, &NoProgress).unwrap();
        assert!(
            again.dedup_evictions > 0,
            "the budget must have forced an eviction"
        );
        // A bucket moved out of memory is used where it is (a run file), never read again:
        // at most one eviction per bucket of the 16, however many rows look keys up.
        assert!(again.dedup_evictions <= 16, "{}", again.dedup_evictions);
        assert_eq!((again.rows_written, again.duplicates), (0, 102));
        assert_eq!(again.already_quarantined, 1);
        assert!(again.txns.is_empty());
    }

    #[test]
    fn keys_committed_into_buckets_out_of_memory_are_found_by_later_commits() {
        // One run of several commits (as a collector's), the index's budget far below the
        // keys: buckets move out of memory and take later commits' keys there.
        let dir = tempfile::tempdir().unwrap();
        let lines: Vec<String> = (0..300)
            .map(|i| {
                line(
                    &format!("k{i}"),
                    &format!("2026-11-02T10:{:02}:{:02}Z", i / 60, i % 60),
                )
            })
            .collect();
        let mut text = lines.join("\n") + "\n";
        // The first 100 again (duplicates of earlier commits), and one of them with other
        // content (a conflicting duplicate).
        text.push_str(&(lines[..100].join("\n") + "\n"));
        text.push_str(&line("k7", "2026-11-02T11:00:00Z"));
        text.push('\n');
        let mut opts = log_options(dir.path(), &text, 1024);
        opts.commit_rows = Some(40);
        opts.max_dedup_keys = 20;
        let clock = FixedClock(0);
        let s = ingest(&opts, &clock, &NoProgress).unwrap();
        assert_eq!((s.rows_written, s.duplicates), (300, 100));
        assert_eq!((s.conflicting_duplicates, s.quarantined), (1, 1));
        assert!(s.txns.len() >= 300 / 40, "{} commits", s.txns.len());
        assert!(
            (1..=16).contains(&s.dedup_evictions),
            "{}",
            s.dedup_evictions
        );
        let again = ingest(&opts, &clock, &NoProgress).unwrap();
        assert_eq!((again.rows_written, again.duplicates), (0, 400));
        assert_eq!(again.already_quarantined, 1);
    }

    /// What an ingest of `text` into a new warehouse reports and leaves in the tables, with
    /// the run's new keys held in memory up to `max_pending_keys`.
    fn ingest_counts(text: &str, max_pending_keys: usize) -> (Vec<u64>, u64, u64) {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = log_options(dir.path(), &text, 4096);
        opts.max_pending_keys = max_pending_keys;
        let clock = verdict_schema::time::FixedClock(0);
        let s = ingest(&opts, &clock, &NoProgress).unwrap();
        let again = ingest(&opts, &clock, &NoProgress).unwrap();
        let wh = verdict_table::Warehouse::new(opts.warehouse.clone()).unwrap();
        let rows = |t| {
            verdict_table::block_on(wh.latest(t))
                .unwrap()
                .map_or(0, |s| s.rows())
        };
        // No spill file outlives the run.
        let staging = dir.path().join("wh/_verdict/staging");
        let left = std::fs::read_dir(&staging).map_or(0, |d| d.count());
        assert_eq!(left, 0, "staging left behind");
        (
            vec![
                s.rows_written,
                s.duplicates,
                s.conflicting_duplicates,
                s.quarantined,
                again.rows_written,
                again.duplicates,
                again.already_quarantined,
            ],
            rows(verdict_table::Table::EventKeys),
            rows(verdict_table::Table::QuarantineKeys),
        )
    }

    #[test]
    fn spilled_new_keys_dedup_exactly_as_keys_in_memory() {
        // 3,000 new events, then each tenth again (a duplicate), each thirtieth again with
        // other content (a conflict), and 400 bad lines (a bad line's key holds its line
        // number: the conflicts and bad lines are 500 quarantine keys).
        let mut text = String::new();
        for i in 0..3_000 {
            text.push_str(&line(
                &format!("e{i}"),
                &format!("2026-11-02T10:{:02}:{:02}Z", i / 60 % 60, i % 60),
            ));
            text.push('\n');
        }
        for i in (0..3_000).step_by(10) {
            text.push_str(&line(
                &format!("e{i}"),
                &format!("2026-11-02T10:{:02}:{:02}Z", i / 60 % 60, i % 60),
            ));
            text.push('\n');
        }
        for i in (0..3_000).step_by(30) {
            text.push_str(&line(&format!("e{i}"), "2026-11-03T00:00:00Z"));
            text.push('\n');
        }
        for i in 0..400 {
            text.push_str(&format!("{{\"broken\": {i}\n"));
        }
        // 32 keys a run in memory: two a bucket, so nearly every key is in a run file and the
        // runs of each bucket are merged many times over.
        let spilled = ingest_counts(&text, 32);
        let in_memory = ingest_counts(&text, usize::MAX);
        assert_eq!(spilled, in_memory);
        assert_eq!(
            spilled,
            (vec![3_000, 300, 100, 500, 0, 3_300, 500], 3_000, 500)
        );
    }
}
