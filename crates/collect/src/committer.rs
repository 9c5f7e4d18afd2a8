//! The commit loop: one thread owns the warehouse's [`Committer`], takes runs of lines from the
//! sources, commits every N rows or T seconds, and only then writes the file checkpoints and
//! answers the HTTP requests whose records the commit made durable.
//!
//! Exactly once rests on two facts: a checkpoint never runs ahead of the warehouse (it is written
//! after the commit), and the warehouse drops a row whose `(source, event_id)` it already holds.
//! So after a crash, lines between the checkpoint and the last commit are read again and dropped
//! as duplicates, and a client that retries a request whose answer it lost adds nothing twice.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use verdict_formats::Decoder;
use verdict_ingest::{AppendInfo, Committer, Delivery, IngestOptions};
use verdict_schema::time::Clock;

use crate::checkpoint::{Checkpoint, CheckpointStore};
use crate::config::CommitSettings;
use crate::error::Result;
use crate::metrics::Metrics;

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
    /// For a file: its checkpoint once these lines are committed.
    pub checkpoint: Option<Checkpoint>,
    /// For an HTTP request: where to answer, and who sent it.
    pub ack: Option<HttpAck>,
}

/// The HTTP side of a [`Batch`].
pub struct HttpAck {
    /// Records reserved in the pending budget.
    pub reserved: u64,
    /// Where to answer: what the request added once committed, or why it was refused whole.
    pub tx: tokio::sync::oneshot::Sender<std::result::Result<AppendInfo, String>>,
    /// The principal and peer, stored with the rows.
    pub delivery: Delivery,
    /// Records and bytes the request may have quarantined at most.
    pub max_bad: (u64, u64),
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

/// Runs the loop until every sender is gone, then commits what is left.
///
/// # Errors
/// A failed commit or checkpoint write: the loop stops at once (the sources then stop too), and
/// nothing uncommitted is acknowledged.
pub fn run(
    opts: IngestOptions,
    clock: Arc<dyn Clock>,
    settings: CommitSettings,
    store: Option<CheckpointStore>,
    rx: Receiver<Batch>,
    metrics: Arc<Metrics>,
) -> Result<CollectSummary> {
    let committer = Committer::open(opts, clock.as_ref(), Vec::new())?;
    let rec = committer.warehouse().recovery();
    if !rec.rolled_forward.is_empty() || !rec.rolled_back.is_empty() {
        tracing::info!(
            rolled_forward = rec.rolled_forward.len(),
            rolled_back = rec.rolled_back.len(),
            "recovered the warehouse"
        );
    }
    metrics.ready.store(true, Ordering::SeqCst);
    let mut state = Loop {
        committer,
        settings,
        store,
        metrics,
        acks: Vec::new(),
        checkpoints: BTreeMap::new(),
        since: None,
        summary: CollectSummary::default(),
    };
    loop {
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
    tokio::sync::oneshot::Sender<std::result::Result<AppendInfo, String>>,
    AppendInfo,
);

struct Loop<'a> {
    committer: Committer<'a>,
    settings: CommitSettings,
    store: Option<CheckpointStore>,
    metrics: Arc<Metrics>,
    acks: Vec<Ack>,
    checkpoints: BTreeMap<String, Checkpoint>,
    since: Option<Instant>,
    summary: CollectSummary,
}

impl Loop<'_> {
    fn take(&mut self, b: Batch) -> Result<()> {
        let input = self.committer.add_input(&b.input);
        let info = if b.bytes.is_empty() {
            AppendInfo::default()
        } else if let Some(ack) = &b.ack {
            let r = self.committer.append_from(
                input,
                b.first_line,
                b.bytes,
                &b.decoder,
                &ack.delivery,
                Some(ack.max_bad),
            );
            match r {
                Ok(info) => info,
                Err(verdict_ingest::Error::QuarantineBudget { what, .. }) => {
                    // Refused whole: nothing of the request was added.
                    tracing::warn!(principal = ?ack.delivery.principal, peer = ?ack.delivery.peer, reason = %what, "refused a request past its quarantine budget");
                    let ack = b.ack.expect("checked above");
                    self.metrics
                        .pending
                        .fetch_sub(ack.reserved, Ordering::SeqCst);
                    let _ = ack.tx.send(Err(format!(
                        "refused, nothing stored: the request holds {what}"
                    )));
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
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
        let info = self.committer.commit_now()?;
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
            let _ = tx.send(Ok(a));
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
