//! The commit loop: one thread owns the warehouse's [`Committer`], takes runs of lines from the
//! sources, commits every N rows or T seconds, and only then writes the file checkpoints and
//! answers the HTTP requests whose records the commit made durable.
//!
//! Exactly once rests on two facts. Each file's offset rides in the same Delta commit as its rows
//! (an app transaction `verdict.file.<fingerprint>` whose version is the offset), so the offset
//! and the rows become visible together or not at all; the checkpoint file written after the
//! commit is a cache, corrected from the committed offset at start-up ([`reconcile`]). And the
//! warehouse drops a row whose `(source, event_id)` it already holds, so a line read twice (a
//! file whose checkpoint cannot be corrected, a client that retries a request whose answer it
//! lost) adds nothing twice. Each commit also records how many HTTP batches it holds.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use verdict_formats::Decoder;
use verdict_ingest::{AppendInfo, ChunkDecoder, Committer, Decoded, Delivery, IngestOptions};
use verdict_schema::time::Clock;

use crate::checkpoint::{Checkpoint, CheckpointStore};
use crate::config::CommitSettings;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::spool::{Spool, SPOOL_APP_ID};

/// What a source hands the commit loop: whole lines of one input.
pub struct Batch {
    /// Stored in `ingest_file` (the path, or `http`).
    pub input: String,
    /// The number of the first line.
    pub first_line: u64,
    /// Whole lines, `\n`-terminated.
    pub bytes: Vec<u8>,
    /// How to decode them.
    pub decoder: Decoder,
    /// The envelope to take each line's record out of first (`[[files]] envelope`).
    pub envelope: Option<std::sync::Arc<verdict_formats::UserEnvelope>>,
    /// The lines decoded where they arrived (an HTTP request, by the loop's
    /// [`ChunkDecoder`]): then `bytes` is empty and `decoder` unused.
    pub decoded: Option<Decoded>,
    /// For a file: its checkpoint once these lines are committed.
    pub checkpoint: Option<Checkpoint>,
    /// For an HTTP request: where to answer, and who sent it.
    pub ack: Option<HttpAck>,
    /// For a file's lines: their bytes counted as queued until the batch is dropped.
    pub queued: Option<Queued>,
}

/// A followed file's bytes handed to the commit loop and not taken yet, counted in
/// [`Metrics::file_bytes_queued`] for as long as the batch holding them exists: taken by the
/// loop, or dropped with the channel of a loop that stopped.
pub struct Queued {
    metrics: Arc<Metrics>,
    bytes: u64,
}

impl Queued {
    /// Counts `bytes` as queued.
    pub fn new(metrics: Arc<Metrics>, bytes: u64) -> Self {
        metrics.file_bytes_queued.fetch_add(bytes, Ordering::SeqCst);
        Self { metrics, bytes }
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.metrics
            .file_bytes_queued
            .fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// The HTTP side of a [`Batch`].
pub struct HttpAck {
    /// Records reserved in the pending budget, released by the commit.
    pub reserved: u64,
    /// Where to answer what the request added once committed; `None` when it was answered
    /// once spooled.
    pub tx: Option<tokio::sync::oneshot::Sender<AppendInfo>>,
    /// The principal and peer, stored with the rows.
    pub delivery: Delivery,
    /// Its number in the spool, when it was spooled.
    pub spool_seq: Option<u64>,
}

/// What the loop hands back once the warehouse is open, before it takes any batch.
pub struct Opened {
    /// Decodes HTTP requests (input `http`) where they arrive.
    pub http_decoder: ChunkDecoder,
    /// The last spooled request the warehouse holds.
    pub spool_committed: Option<u64>,
}

/// Figures of a whole run.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq, Eq)]
pub struct CollectSummary {
    /// Commits that wrote something.
    pub commits: u64,
    /// Rows committed.
    pub rows: u64,
    /// Rows dropped as duplicates.
    pub duplicates: u64,
    /// Lines quarantined.
    pub quarantined: u64,
    /// Checkpoints written.
    pub checkpoints_written: u64,
}

/// What the loop talks to besides the warehouse.
pub struct Links {
    /// The batches of every source.
    pub rx: Receiver<Batch>,
    /// Counters and the stopping flag.
    pub metrics: Arc<Metrics>,
    /// Where to say that the warehouse is open (see [`Opened`]).
    pub opened: crossbeam_channel::Sender<Opened>,
    /// The spool, with `ack = "spool"`.
    pub spool: Option<Arc<Spool>>,
}

/// Runs the loop until every sender is gone, then commits what is left. Once the warehouse is
/// open it sends `opened` what HTTP requests need, before taking any batch; with a `spool`, each
/// commit records the last spooled request it holds and then removes the spool files committed.
///
/// # Errors
/// A failed commit or checkpoint write: the loop stops at once (the sources then stop too), and
/// nothing uncommitted is acknowledged.
pub fn run(
    opts: IngestOptions,
    clock: Arc<dyn Clock>,
    settings: CommitSettings,
    store: Option<CheckpointStore>,
    links: Links,
) -> Result<CollectSummary> {
    let Links {
        rx,
        metrics,
        opened,
        spool,
    } = links;
    let mut committer = Committer::open(opts, clock.as_ref(), Vec::new())?;
    for what in &committer.recovery().caught_up {
        tracing::info!(table = %what, "brought a derived table up to date");
    }
    let http = committer.add_input("http");
    let _ = opened.send(Opened {
        http_decoder: committer.chunk_decoder(http)?,
        spool_committed: committer
            .app_version(SPOOL_APP_ID)?
            .and_then(|v| u64::try_from(v).ok()),
    });
    drop(opened);
    metrics.ready.store(true, Ordering::SeqCst);
    let mut state = Loop {
        clock: clock.clone(),
        retention_day: None,
        committer,
        settings,
        store,
        metrics,
        acks: Vec::new(),
        spool,
        spooled: None,
        spool_committed: None,
        checkpoints: BTreeMap::new(),
        since: None,
        summary: CollectSummary::default(),
    };
    loop {
        state.retention()?;
        let wait = state
            .since
            .map_or(Duration::from_millis(200), |t| {
                state.settings.interval.saturating_sub(t.elapsed())
            })
            .clamp(Duration::from_millis(1), Duration::from_millis(100));
        match rx.recv_timeout(wait) {
            Ok(b) => state.take(b)?,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                state.commit()?;
                // The spool thread is gone, its last file complete: it goes if committed.
                if let (Some(spool), Some(seq)) = (&state.spool, state.spool_committed) {
                    spool.release(seq)?;
                }
                return Ok(state.summary);
            }
        }
        let due = state.since.is_some_and(|t| {
            t.elapsed() >= state.settings.interval
                || state.committer.pending_rows() >= state.settings.rows
                || state.metrics.stopping.load(Ordering::SeqCst)
        });
        if due {
            state.commit()?;
        }
    }
}

type Ack = (
    u64,
    Option<tokio::sync::oneshot::Sender<AppendInfo>>,
    AppendInfo,
);

struct Loop<'a> {
    clock: Arc<dyn Clock>,
    /// The UTC day retention last ran (or found it had run).
    retention_day: Option<i32>,
    committer: Committer<'a>,
    settings: CommitSettings,
    store: Option<CheckpointStore>,
    metrics: Arc<Metrics>,
    acks: Vec<Ack>,
    spool: Option<Arc<Spool>>,
    /// The last spooled request taken since the last commit.
    spooled: Option<u64>,
    /// The last spooled request committed by this run.
    spool_committed: Option<u64>,
    checkpoints: BTreeMap<String, Checkpoint>,
    since: Option<Instant>,
    summary: CollectSummary,
}

impl Loop<'_> {
    /// Applies the retention setting when it has not run this UTC day: commits what waits,
    /// removes the old days, and reads the tables again.
    fn retention(&mut self) -> Result<()> {
        use verdict_ingest::lifecycle::{retention, RetentionOptions, Trace, RETENTION_APP_ID};
        let Some(keep) = self.settings.retention else {
            return Ok(());
        };
        let today = verdict_schema::time::day_number(self.clock.now_micros());
        if self.retention_day == Some(today) {
            return Ok(());
        }
        // A run of today before a restart counts (its commit records the day).
        if self.retention_day.is_none()
            && self.committer.app_version(RETENTION_APP_ID)? == Some(i64::from(today))
        {
            self.retention_day = Some(today);
            tracing::info!("retention already applied today");
            return Ok(());
        }
        self.commit()?;
        let opts = RetentionOptions {
            warehouse: self.committer.warehouse().location().clone(),
            keep_micros: i64::try_from(keep.as_micros()).unwrap_or(i64::MAX),
            dry_run: false,
            signing_key: self.committer.warehouse().signing_key().cloned(),
            trace: Trace {
                requested_by: Some("verdict collect".into()),
                reason: Some(format!("retention setting: keep {}", humantime_days(keep))),
            },
        };
        let s = retention(&opts, self.clock.as_ref())?;
        self.committer.reload()?;
        self.retention_day = Some(today);
        tracing::info!(
            keep_from = %s.keep_from,
            days = s.days_removed.len(),
            rows = s.rows_removed,
            quarantined = s.quarantined_removed,
            held_days = s.held.len(),
            "retention"
        );
        Ok(())
    }

    fn take(&mut self, b: Batch) -> Result<()> {
        let input = self.committer.add_input(&b.input);
        self.committer.set_envelope(input, b.envelope.clone());
        let info = if let Some(d) = b.decoded {
            self.committer.absorb_decoded(d)?
        } else if b.bytes.is_empty() {
            AppendInfo::default()
        } else if let Some(ack) = &b.ack {
            self.committer.append_from(
                input,
                b.first_line,
                b.bytes,
                &b.decoder,
                &ack.delivery,
                None,
            )?
        } else {
            self.committer
                .append(input, b.first_line, b.bytes, &b.decoder)?
        };
        self.metrics
            .duplicates
            .fetch_add(info.duplicates, Ordering::Relaxed);
        self.summary.duplicates += info.duplicates;
        if let Some(cp) = b.checkpoint {
            self.checkpoints.insert(cp.fingerprint.clone(), cp);
        }
        if let Some(ack) = b.ack {
            if ack.spool_seq.is_some() {
                self.spooled = ack.spool_seq;
            }
            self.acks.push((ack.reserved, ack.tx, info));
        }
        self.since.get_or_insert_with(Instant::now);
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        if self.since.is_none() {
            return Ok(());
        }
        let started = Instant::now();
        for cp in self.checkpoints.values() {
            self.committer
                .record_app_txn(&file_app_id(&cp.fingerprint), cp.offset as i64);
        }
        if !self.acks.is_empty() {
            self.committer
                .record_info("verdict.http_batches", self.acks.len() as u64);
        }
        if let Some(seq) = self.spooled {
            self.committer
                .record_app_txn(SPOOL_APP_ID, i64::try_from(seq).unwrap_or(i64::MAX));
        }
        let info = self.committer.commit_now()?;
        if let (Some(spool), Some(seq)) = (&self.spool, self.spooled.take()) {
            self.spool_committed = Some(seq);
            spool.release(seq)?;
        }
        let files = self.checkpoints.len();
        if let Some(store) = &self.store {
            for cp in self.checkpoints.values() {
                store.save(cp)?;
                self.summary.checkpoints_written += 1;
            }
        }
        self.checkpoints.clear();
        let secs = started.elapsed().as_secs_f64();
        let requests = self.acks.len();
        let mut released = 0;
        for (reserved, tx, a) in self.acks.drain(..) {
            released += reserved;
            // A client that went away is no error: its records are committed all the same.
            if let Some(tx) = tx {
                let _ = tx.send(a);
            }
        }
        self.metrics.pending.fetch_sub(released, Ordering::SeqCst);
        self.since = None;
        self.metrics
            .committed
            .fetch_add(info.rows, Ordering::Relaxed);
        self.metrics
            .quarantined
            .fetch_add(info.quarantined, Ordering::Relaxed);
        self.metrics.observe_commit(secs);
        self.summary.rows += info.rows;
        self.summary.quarantined += info.quarantined;
        if let Some(txn) = &info.txn {
            self.summary.commits += 1;
            tracing::info!(
                txn = %txn,
                rows = info.rows,
                quarantined = info.quarantined,
                files,
                requests,
                ms = (secs * 1000.0).round() as u64,
                "commit"
            );
        } else {
            tracing::debug!(files, requests, "nothing new to commit");
        }
        Ok(())
    }
}

/// A period in whole days where it is one (`400d`), else seconds.
fn humantime_days(d: Duration) -> String {
    let secs = d.as_secs();
    if secs.is_multiple_of(86_400) {
        format!("{}d", secs / 86_400)
    } else {
        format!("{secs}s")
    }
}

/// The app transaction id under which a file's committed offset is recorded.
pub fn file_app_id(fingerprint: &str) -> String {
    format!("verdict.file.{fingerprint}")
}

/// Moves each checkpoint that lags behind its committed offset (a crash between a commit and
/// the checkpoint's write) up to that offset, counting the lines in between, when the file at
/// the checkpoint's path is still the same file (device and inode) and not compressed. Other
/// lagging checkpoints stay: their lines are read again and dropped as duplicates.
///
/// # Errors
/// When the warehouse's log cannot be read.
pub fn reconcile(
    warehouse: &verdict_table::Location,
    known: &mut std::collections::HashMap<String, Checkpoint>,
) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::fs::MetadataExt;
    let wh =
        verdict_table::Warehouse::new(warehouse.clone()).map_err(verdict_ingest::Error::from)?;
    let Some(snap) = verdict_table::block_on(wh.latest(verdict_table::Table::Decisions))
        .map_err(verdict_ingest::Error::from)?
    else {
        return Ok(());
    };
    for cp in known.values_mut() {
        let Some(committed) =
            verdict_table::block_on(snap.app_version(&file_app_id(&cp.fingerprint)))
                .map_err(verdict_ingest::Error::from)?
        else {
            continue;
        };
        let committed = committed as u64;
        if committed <= cp.offset || cp.complete {
            continue;
        }
        let Ok(mut f) = std::fs::File::open(&cp.path) else {
            continue;
        };
        let same = f
            .metadata()
            .is_ok_and(|m| m.dev() == cp.dev && m.ino() == cp.ino && m.len() >= committed);
        let mut magic = [0u8; 2];
        let gzip = f.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
        if !same || gzip || f.seek(SeekFrom::Start(cp.offset)).is_err() {
            continue;
        }
        let mut between = vec![0u8; (committed - cp.offset) as usize];
        if f.read_exact(&mut between).is_err() {
            continue;
        }
        let lines = memchr::memchr_iter(b'\n', &between).count() as u64;
        tracing::info!(path = %cp.path, from = cp.offset, to = committed, "checkpoint behind its commit: moved to the committed offset");
        cp.offset = committed;
        cp.line += lines;
    }
    Ok(())
}
