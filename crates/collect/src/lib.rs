//! verdict-collect: the long-running collector behind `verdict collect`. Follows growing log
//! files (with per-file checkpoints) and receives HTTP uploads, committing to the warehouse
//! through verdict-ingest's [`Committer`](verdict_ingest::Committer); owns no Parquet code.
#![deny(missing_docs)]

//! # Overview
//! - [`CollectConfig`] is `collect.toml`; its `build()` gives [`CollectOptions`].
//! - [`run`] starts the sources ([`files::Tailer`] per `[[files]]`, the [`http`] receiver) and
//!   the commit loop ([`committer`]) and runs until the shutdown future completes: then it stops
//!   accepting, commits what was accepted, writes the checkpoints and returns a
//!   [`CollectSummary`].
//! - [`checkpoint`] holds fingerprints and the versioned checkpoint files.
//! - [`spool`]: with `ack = "spool"`, HTTP requests are answered once their decoded rows are
//!   synced to a local spool, and committed after; the next start commits what a crash left.
//!
//! Exactly once: checkpoints are written only after the commit holding their lines, and the
//! warehouse drops any row whose `(source, event_id)` it already holds (rows without a proxy id
//! get a stable hash of their content). A crash re-reads at most the lines after the last
//! checkpoint, and they are dropped as duplicates; an HTTP client that retries adds nothing twice.
//!
//! ```
//! use std::sync::Arc;
//! use verdict_collect::{run, CollectConfig, FilesConfig};
//! use verdict_schema::time::SystemClock;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let log = dir.path().join("gw.jsonl");
//! std::fs::write(&log, concat!(
//!     r#"{"timestamp":"2026-11-02T09:15:02.412Z","request_id":"r1","grant_label":"alice","method":"tools/call","tool":"navigate","decision":"allow"}"#, "\n",
//!     r#"{"timestamp":"2026-11-02T09:15:03.100Z","request_id":"r2","grant_label":"alice","method":"tools/call","tool":"navigate","decision":"deny"}"#, "\n",
//! )).unwrap();
//! let config = CollectConfig {
//!     files: vec![FilesConfig { paths: vec![log.display().to_string()], ..Default::default() }],
//!     ..Default::default()
//! };
//! let opts = config.build(dir.path().join("wh").into(), false).unwrap();
//! let rt = tokio::runtime::Runtime::new().unwrap();
//! // Stop at once: the sources still read what is there, and it is committed before returning.
//! let summary = rt.block_on(run(opts, Arc::new(SystemClock), async {})).unwrap();
//! assert_eq!((summary.rows, summary.commits), (2, 1));
//! ```

pub mod auth;
pub mod checkpoint;
pub mod committer;
pub mod config;
mod error;
pub mod files;
pub mod http;
pub mod metrics;
pub mod serve;
pub mod spool;
mod x509;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use verdict_ingest::IngestOptions;
use verdict_schema::time::Clock;
use verdict_table::Location;

pub use committer::CollectSummary;
pub use config::{CollectConfig, CommitConfig, FilesConfig, HttpConfig, RedactionConfig};
pub use error::{Error, Result};

use crate::checkpoint::CheckpointStore;
use crate::config::{CommitSettings, FilesSource, HttpSource};
use crate::metrics::Metrics;

/// Everything a run needs, checked.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// The warehouse.
    pub warehouse: Location,
    /// The checkpoint directory.
    pub checkpoints: PathBuf,
    /// Delete every checkpoint before starting (files are then read from their start; rows
    /// already stored are dropped as duplicates).
    pub reset_checkpoints: bool,
    /// When to commit.
    pub commit: CommitSettings,
    /// The files sources.
    pub files: Vec<FilesSource>,
    /// The HTTP receiver.
    pub http: Option<HttpSource>,
    /// Secret redaction.
    pub redaction: verdict_ingest::RedactionRules,
    /// The key that signs each commit's link of the integrity chain.
    pub signing_key: Option<verdict_table::SigningKey>,
}

impl CollectConfig {
    /// Checks every section; `warehouse` is used when the file names none.
    ///
    /// # Errors
    /// The first invalid setting, or no source at all.
    pub fn build(&self, warehouse: Location, reset_checkpoints: bool) -> Result<CollectOptions> {
        let warehouse = match &self.warehouse {
            Some(w) => {
                Location::parse(&w.display().to_string(), []).map_err(|e| Error::Config {
                    setting: "warehouse".into(),
                    message: e.to_string(),
                })?
            }
            None => warehouse,
        };
        let files = self
            .files
            .iter()
            .map(FilesConfig::build)
            .collect::<Result<Vec<_>>>()?;
        let mut http = self.http.as_ref().map(HttpConfig::build).transpose()?;
        if let (Some(h), Some(c)) = (&mut http, &self.http) {
            if h.spool.is_some() && c.spool_dir.is_none() {
                h.spool = warehouse.state_dir("collect/spool").or(h.spool.take());
            }
        }
        if files.is_empty() && http.is_none() {
            return Err(Error::Config {
                setting: "sources".into(),
                message: "nothing to collect: give files to follow or an address to listen on"
                    .into(),
            });
        }
        Ok(CollectOptions {
            checkpoints: self.checkpoints.clone().unwrap_or_else(|| {
                warehouse
                    .state_dir("collect/checkpoints")
                    .unwrap_or_else(|| PathBuf::from("verdict-collect-checkpoints"))
            }),
            warehouse,
            reset_checkpoints,
            commit: self.commit.build()?,
            files,
            http,
            redaction: self.redaction.rules(),
            signing_key: self
                .signing_key
                .as_deref()
                .map(verdict_table::SigningKey::from_file)
                .transpose()
                .map_err(|e| Error::Config {
                    setting: "signing_key".into(),
                    message: e.to_string(),
                })?,
        })
    }
}

/// Runs the collector until `shutdown` completes (or a commit fails), then stops accepting,
/// commits what was accepted, writes the checkpoints and returns the run's figures.
///
/// # Errors
/// A corrupt checkpoint (before anything is read), an address that cannot be bound, a failed
/// commit or checkpoint write.
pub async fn run(
    opts: CollectOptions,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()>,
) -> Result<CollectSummary> {
    let store = CheckpointStore::open(&opts.checkpoints, opts.reset_checkpoints)?;
    let mut known = store.load_all()?;
    // The offsets committed with the rows are the truth; a checkpoint file written after its
    // commit may lag behind a crash.
    committer::reconcile(&opts.warehouse, &mut known)?;
    let metrics = Arc::new(Metrics::default());
    let (tx, rx) = crossbeam_channel::bounded(256);

    let mut ingest_opts = IngestOptions::new(opts.warehouse.clone(), Vec::new());
    ingest_opts.keep_raw = opts.commit.keep_raw;
    ingest_opts.redaction = opts.redaction.clone();
    ingest_opts.signing_key = opts.signing_key.clone();
    ingest_opts.earliest_micros = opts.commit.earliest_micros;
    ingest_opts.max_future_days = opts.commit.max_future_days;
    ingest_opts.commit_rows = None;
    ingest_opts.max_line_bytes = opts
        .files
        .iter()
        .map(|f| f.max_line_bytes)
        .max()
        .unwrap_or(1 << 20);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let (opened_tx, opened_rx) = crossbeam_channel::bounded(1);
    // The spool is opened before the loop (its files must be known before anything is
    // released), its requests read back once the loop says what the warehouse committed.
    let spool_dir = opts.http.as_ref().and_then(|h| h.spool.clone());
    let spool_files = spool_dir
        .as_deref()
        .map(spool::Spool::open_dir)
        .transpose()?;
    let committer = {
        let metrics = metrics.clone();
        let settings = opts.commit.clone();
        let spool = spool_files.as_ref().map(|s| s.spool.clone());
        std::thread::Builder::new()
            .name("verdict-commit".into())
            .spawn(move || {
                let r = committer::run(
                    ingest_opts,
                    clock,
                    settings,
                    Some(store),
                    committer::Links {
                        rx,
                        metrics,
                        opened: opened_tx,
                        spool,
                    },
                );
                let _ = done_tx.send(());
                r
            })
            .map_err(|e| Error::Internal(format!("starting the commit thread: {e}")))?
    };
    let opened = match tokio::task::spawn_blocking(move || opened_rx.recv()).await {
        Ok(Ok(o)) => o,
        _ => {
            // The loop stopped before the warehouse was open: its error says why.
            drop(tx);
            return Err(match committer.join() {
                Ok(Err(e)) => e,
                Ok(Ok(_)) => Error::Internal("the commit loop stopped at start".into()),
                Err(_) => Error::Internal("the commit thread panicked".into()),
            });
        }
    };
    let mut spool_writer = match spool_files
        .map(|files| recover_spool(files, &opened, spool_dir.as_deref(), &tx))
        .transpose()
    {
        Ok(w) => w,
        Err(e) => {
            // What was handed over is committed as the loop stops; all of it stays spooled.
            drop(tx);
            let _ = committer.join();
            return Err(e);
        }
    };

    let stop = Arc::new(AtomicBool::new(false));
    let mut tailers = Vec::new();
    for src in opts.files.clone() {
        let t = files::Tailer::new(src, known.clone(), tx.clone(), metrics.clone());
        let stop = stop.clone();
        let h = std::thread::Builder::new()
            .name("verdict-files".into())
            .spawn(move || t.run(&stop))
            .map_err(|e| Error::Internal(format!("starting a files thread: {e}")))?;
        tailers.push(h);
    }

    let mut server = None;
    let (http_stop_tx, http_stop_rx) = tokio::sync::watch::channel(false);
    if let Some(src) = opts.http.clone() {
        let listener = match tokio::net::TcpListener::bind(src.listen).await {
            Ok(l) => l,
            Err(source) => {
                stop.store(true, Ordering::SeqCst);
                drop(tx);
                for t in tailers {
                    let _ = t.join();
                }
                let _ = committer.join();
                return Err(Error::Listen {
                    addr: src.listen.to_string(),
                    source,
                });
            }
        };
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let tls = match src.tls.as_ref().map(serve::tls_acceptor).transpose() {
            Ok(t) => t,
            Err(e) => {
                stop.store(true, Ordering::SeqCst);
                drop(tx);
                for t in tailers {
                    let _ = t.join();
                }
                let _ = committer.join();
                return Err(e);
            }
        };
        tracing::info!(
            addr = %addr,
            tls = tls.is_some(),
            auth = src.auth.is_on(),
            "listening"
        );
        let limits = serve::ConnLimits {
            header_timeout: src.header_timeout,
            idle_timeout: src.idle_timeout,
            max_connections: src.max_connections,
        };
        let spool_tx = match spool_writer.take() {
            Some(w) => Some(spool::start(w, tx.clone(), metrics.clone())?),
            None => None,
        };
        let shared = Arc::new(http::Shared {
            src,
            tx: tx.clone(),
            decoder: Arc::new(opened.http_decoder.clone()),
            spool: spool_tx,
            metrics: metrics.clone(),
            max_pending: opts.commit.max_pending_records,
            inflight_bytes: std::sync::atomic::AtomicU64::new(0),
        });
        let app = http::router(shared);
        server = Some(tokio::spawn(serve::serve(
            listener,
            app,
            tls,
            limits,
            http_stop_rx,
        )));
    }
    drop(tx);
    if !opts.files.is_empty() {
        tracing::info!(
            sources = opts.files.len(),
            checkpoints = %opts.checkpoints.display(),
            "following files"
        );
    }

    tokio::select! {
        () = shutdown => tracing::info!("stopping: committing what was accepted"),
        _ = done_rx => tracing::warn!("the commit loop stopped"),
    }
    metrics.stopping.store(true, Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    let _ = http_stop_tx.send(true);
    if let Some(s) = server {
        if let Err(e) = s.await {
            tracing::warn!(error = %e, "the HTTP server task failed");
        }
    }
    let joined = tokio::task::spawn_blocking(move || {
        let mut first_err = None;
        for t in tailers {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(Error::Internal("a files thread panicked".into()));
                }
            }
        }
        let r = committer
            .join()
            .map_err(|_| Error::Internal("the commit thread panicked".into()))
            .and_then(|r| r);
        match (r, first_err) {
            (Err(e), _) | (Ok(_), Some(e)) => Err(e),
            (Ok(s), None) => Ok(s),
        }
    })
    .await
    .map_err(|e| Error::Internal(format!("joining the workers: {e}")))?;
    let summary = joined?;
    tracing::info!(
        commits = summary.commits,
        rows = summary.rows,
        duplicates = summary.duplicates,
        quarantined = summary.quarantined,
        "stopped"
    );
    Ok(summary)
}

/// Hands the commit loop the requests a previous run spooled and did not commit, removes the
/// files of those it did, and returns the writer that goes on numbering after them.
fn recover_spool(
    files: spool::SpoolFiles,
    opened: &committer::Opened,
    dir: Option<&std::path::Path>,
    tx: &crossbeam_channel::Sender<committer::Batch>,
) -> Result<spool::SpoolWriter> {
    let r = files.recover(opened.spool_committed);
    // Files of requests committed before a stop (the last file of a run, which no later
    // commit released) go now.
    r.spool.release(opened.spool_committed.unwrap_or(0))?;
    if !r.entries.is_empty() {
        tracing::info!(
            requests = r.entries.len(),
            dir = %dir.unwrap_or(std::path::Path::new("")).display(),
            "committing spooled requests a previous run answered"
        );
    }
    for e in r.entries {
        let batch = spool::recovered_batch(e, opened.http_decoder.input())?;
        if tx.send(batch).is_err() {
            break;
        }
    }
    Ok(spool::SpoolWriter::new(r.spool, r.next_seq))
}
