//! The spool: a local append-only log of accepted HTTP requests, for `ack = "spool"`. A request
//! is answered 200 once its lines are in the spool and synced to disk, before the commit that
//! makes them rows; the commit records the last spooled request it holds (an app transaction
//! `verdict.spool` whose version is that request's sequence number, in the same Delta commit as
//! the rows), and the spool's files whose requests are all committed are then removed.
//!
//! At start-up, the requests spooled after the committed number (a crash or a failed commit
//! between the answer and the commit) are read back and committed first. A request the spool
//! holds but whose answer was lost with the crash may be sent again by its client: the
//! warehouse drops its rows as duplicates of the first.
//!
//! A spool file is a sequence of frames, each `[u32 header length][u64 body length][u64 xxh3
//! of header and body]` (little endian) followed by the JSON header (sequence number, format,
//! principal, peer) and the body: the request's decoded rows and bad lines as
//! `verdict_ingest::Decoded::to_bytes` writes them. They have been through the row checks and
//! secret redaction already: nothing of a request reaches the disk before its secrets are
//! replaced, and reading it back gives exactly the rows the answered request would have added. A
//! frame cut short at the end of a file was never answered (the sync that would answer it did
//! not complete) and is ignored; a damaged frame anywhere else stops the start-up with the file
//! and byte offset.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crossbeam_channel::Sender;
use serde::{Deserialize, Serialize};
use verdict_formats::{Decoder, Format};
use verdict_ingest::{Decoded, Delivery};
use xxhash_rust::xxh3::Xxh3;

use crate::committer::{Batch, HttpAck};
use crate::error::{Error, Result};

/// The app transaction under which a commit records the last spooled request it holds.
pub const SPOOL_APP_ID: &str = "verdict.spool";

/// A spool file holds about this many bytes before the next one is started.
const SEGMENT_BYTES: u64 = 64 << 20;
const FRAME_HEAD: usize = 4 + 8 + 8;
const MAX_HEADER: u32 = 1 << 20;
const SUFFIX: &str = ".spool";

/// One spooled request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its sequence number: increasing, never reused in a warehouse.
    pub seq: u64,
    /// How its lines decode.
    pub format: Format,
    /// Who sent it.
    pub delivery: Delivery,
    /// Its decoded rows and bad lines (`Decoded::to_bytes`).
    pub body: Vec<u8>,
    /// The spool file and byte offset of its frame, for messages.
    pub at: (PathBuf, u64),
}

#[derive(Serialize, Deserialize)]
struct Header {
    seq: u64,
    format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peer: Option<String>,
}

/// The spool's directory and its files, shared by the writer and the commit loop.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    /// The files in order: each one's last request number (`None` while it is written) and
    /// path.
    segments: Mutex<Vec<(Option<u64>, PathBuf)>>,
}

/// The spool as found at start-up: its files and every request in them.
#[derive(Debug)]
pub struct SpoolFiles {
    /// The spool.
    pub spool: Arc<Spool>,
    entries: Vec<Entry>,
    /// The highest number a file is named after.
    max_first: u64,
}

/// What [`SpoolFiles::recover`] gives.
#[derive(Debug)]
pub struct Recovered {
    /// The spool.
    pub spool: Arc<Spool>,
    /// Requests spooled after the committed number, in order: to commit before anything else.
    pub entries: Vec<Entry>,
    /// The number the next request gets.
    pub next_seq: u64,
}

impl SpoolFiles {
    /// The requests numbered after `committed` (the warehouse's [`SPOOL_APP_ID`] version), and
    /// the number to go on from: after the spool's last, `committed` and every file's name, so
    /// that a number the warehouse already holds is never given again nor a file name reused.
    pub fn recover(self, committed: Option<u64>) -> Recovered {
        let committed = committed.unwrap_or(0);
        let last = self.entries.iter().map(|e| e.seq).max().unwrap_or(0);
        Recovered {
            spool: self.spool,
            entries: self
                .entries
                .into_iter()
                .filter(|e| e.seq > committed)
                .collect(),
            next_seq: last.max(committed).max(self.max_first) + 1,
        }
    }
}

impl Spool {
    /// Opens (creating) the spool in `dir` and reads its requests.
    ///
    /// # Errors
    /// A directory that cannot be created or read; a damaged frame that is not the end of a
    /// file.
    pub fn open_dir(dir: &Path) -> Result<SpoolFiles> {
        std::fs::create_dir_all(dir).map_err(Error::io("creating the spool directory", dir))?;
        let mut files: Vec<(u64, PathBuf)> = Vec::new();
        for e in std::fs::read_dir(dir).map_err(Error::io("reading the spool directory", dir))? {
            let e = e.map_err(Error::io("reading the spool directory", dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(first) = name
                .strip_suffix(SUFFIX)
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            files.push((first, e.path()));
        }
        files.sort();
        let max_first = files.last().map_or(0, |f| f.0);
        let mut entries = Vec::new();
        let mut segments = Vec::new();
        for (first, path) in files {
            let read = read_segment(&path)?;
            // A file holding nothing whole counts as ending before its first number.
            let last = read.last().map_or(first.saturating_sub(1), |e| e.seq);
            entries.extend(read);
            segments.push((Some(last), path));
        }
        Ok(SpoolFiles {
            spool: Arc::new(Spool {
                dir: dir.to_path_buf(),
                segments: Mutex::new(segments),
            }),
            entries,
            max_first,
        })
    }

    /// Removes the files whose requests are all numbered `upto` or less (never the file being
    /// written). Returns how many were removed.
    ///
    /// # Errors
    /// A file that cannot be removed.
    pub fn release(&self, upto: u64) -> Result<usize> {
        let mut segs = self
            .segments
            .lock()
            .map_err(|_| Error::Internal("spool lock poisoned".into()))?;
        let mut removed = 0;
        let mut failed = None;
        segs.retain(|(last, path)| {
            if failed.is_some() || !last.is_some_and(|l| l <= upto) {
                return true;
            }
            match std::fs::remove_file(path) {
                Ok(()) => {
                    removed += 1;
                    false
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => {
                    failed = Some(Error::Io {
                        action: "removing a committed spool file",
                        path: path.clone(),
                        source: e,
                    });
                    true
                }
            }
        });
        failed.map_or(Ok(removed), Err)
    }

    /// The spool's files now (for tests and the log).
    pub fn files(&self) -> Vec<PathBuf> {
        self.segments
            .lock()
            .map(|s| s.iter().map(|(_, p)| p.clone()).collect())
            .unwrap_or_default()
    }
}

/// Appends requests to the spool (one thread owns it).
#[derive(Debug)]
pub struct SpoolWriter {
    spool: Arc<Spool>,
    file: Option<File>,
    written: u64,
    next_seq: u64,
}

impl SpoolWriter {
    /// A writer that numbers requests from `next_seq` on, in a new file.
    pub fn new(spool: Arc<Spool>, next_seq: u64) -> Self {
        Self {
            spool,
            file: None,
            written: 0,
            next_seq,
        }
    }

    /// Appends one request's decoded bytes (not yet synced: see [`SpoolWriter::sync`]) and
    /// returns its number.
    ///
    /// # Errors
    /// A write that fails.
    pub fn append(&mut self, source: &str, delivery: &Delivery, lines: &[u8]) -> Result<u64> {
        if self.file.is_none() || self.written >= SEGMENT_BYTES {
            self.rotate()?;
        }
        let seq = self.next_seq;
        let header = serde_json::to_vec(&Header {
            seq,
            format: source.to_string(),
            principal: delivery.principal.clone(),
            peer: delivery.peer.clone(),
        })
        .map_err(|e| Error::Internal(format!("spool header: {e}")))?;
        let mut h = Xxh3::new();
        h.update(&header);
        h.update(lines);
        let mut head = Vec::with_capacity(FRAME_HEAD + header.len());
        head.extend_from_slice(&(header.len() as u32).to_le_bytes());
        head.extend_from_slice(&(lines.len() as u64).to_le_bytes());
        head.extend_from_slice(&h.digest().to_le_bytes());
        head.extend_from_slice(&header);
        let path = self.current_path();
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| Error::Internal("no spool file".into()))?;
        if let Err(e) = file.write_all(&head).and_then(|()| file.write_all(lines)) {
            // What was half written stays the end of its file: the next request starts a new
            // one, and reading back ignores a file's cut-short end.
            self.file = None;
            return Err(Error::io("writing the spool", &path)(e));
        }
        self.written += (head.len() + lines.len()) as u64;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Makes every request appended so far durable.
    ///
    /// # Errors
    /// A sync that fails: the requests appended since the last sync must not be answered.
    pub fn sync(&mut self) -> Result<()> {
        let path = self.current_path();
        if let Some(f) = &self.file {
            if let Err(e) = f.sync_data() {
                self.file = None;
                return Err(Error::io("syncing the spool", &path)(e));
            }
        }
        Ok(())
    }

    fn current_path(&self) -> PathBuf {
        self.spool
            .segments
            .lock()
            .ok()
            .and_then(|s| s.last().map(|(_, p)| p.clone()))
            .unwrap_or_default()
    }

    fn rotate(&mut self) -> Result<()> {
        if let Some(f) = &self.file {
            let path = self.current_path();
            f.sync_data()
                .map_err(Error::io("syncing the spool", &path))?;
        }
        let path = self
            .spool
            .dir
            .join(format!("{:020}{SUFFIX}", self.next_seq));
        let f = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(Error::io("creating a spool file", &path))?;
        // The new name must survive a crash as well as what is written into it.
        File::open(&self.spool.dir)
            .and_then(|d| d.sync_all())
            .map_err(Error::io("syncing the spool directory", &self.spool.dir))?;
        let mut segs = self
            .spool
            .segments
            .lock()
            .map_err(|_| Error::Internal("spool lock poisoned".into()))?;
        // The file written so far (or given up after a failed write) is complete: its last
        // number is the one before this.
        for s in segs.iter_mut().filter(|s| s.0.is_none()) {
            s.0 = Some(self.next_seq - 1);
        }
        segs.push((None, path));
        drop(segs);
        self.file = Some(f);
        self.written = 0;
        Ok(())
    }
}

impl Drop for SpoolWriter {
    /// The file written is complete: the commit that holds its last request may remove it.
    fn drop(&mut self) {
        if let Ok(mut segs) = self.spool.segments.lock() {
            for s in segs.iter_mut().filter(|s| s.0.is_none()) {
                s.0 = Some(self.next_seq - 1);
            }
        }
    }
}

/// An HTTP request for the spool thread: decoded, within its quarantine budget, its records
/// reserved in the pending budget.
pub struct Spooled {
    /// How its lines were decoded (a built-in format: the spool records its name).
    pub decoder: Decoder,
    /// Who sent it.
    pub delivery: Delivery,
    /// Its lines decoded.
    pub decoded: Decoded,
    /// `decoded` as bytes (`Decoded::to_bytes`), what the spool keeps.
    pub stored: Vec<u8>,
    /// Records reserved in the pending budget, released by the commit that holds them.
    pub reserved: u64,
    /// Answered once the request is synced to the spool, or with why it is not.
    pub answer: tokio::sync::oneshot::Sender<std::result::Result<(), String>>,
}

/// Requests written to the spool at most before one sync answers them all.
const GROUP: usize = 64;

/// Starts the thread that owns `writer`: it appends each request it is sent, syncs a group of
/// them at once, hands them to the commit loop (`tx`) in the spool's order and answers them. A
/// request the spool cannot take is answered with the reason and its records released from
/// `metrics`' pending count.
///
/// # Errors
/// The thread cannot be started.
pub fn start(
    mut writer: SpoolWriter,
    tx: Sender<Batch>,
    metrics: Arc<crate::metrics::Metrics>,
) -> Result<Sender<Spooled>> {
    let (in_tx, in_rx) = crossbeam_channel::bounded::<Spooled>(256);
    std::thread::Builder::new()
        .name("verdict-spool".into())
        .spawn(move || {
            while let Ok(first) = in_rx.recv() {
                let mut group = vec![first];
                while group.len() < GROUP {
                    match in_rx.try_recv() {
                        Ok(r) => group.push(r),
                        Err(_) => break,
                    }
                }
                let written: Result<Vec<u64>> = group
                    .iter()
                    .map(|r| writer.append(r.decoder.name(), &r.delivery, &r.stored))
                    .collect::<Result<Vec<u64>>>()
                    .and_then(|seqs| writer.sync().map(|()| seqs));
                let seqs = match written {
                    Ok(seqs) => seqs,
                    Err(e) => {
                        tracing::error!(error = %e, requests = group.len(), "the spool could not be written: requests refused");
                        for r in group {
                            // Not handed to the loop: its reservation goes now.
                            metrics
                                .pending
                                .fetch_sub(r.reserved, std::sync::atomic::Ordering::SeqCst);
                            let _ = r.answer.send(Err(format!(
                                "the spool could not be written ({e}); nothing of this request is stored"
                            )));
                        }
                        continue;
                    }
                };
                for (r, seq) in group.into_iter().zip(seqs) {
                    let batch = Batch {
                        input: "http".into(),
                        first_line: 1,
                        bytes: Vec::new(),
                        decoder: r.decoder,
                        envelope: None,
                        decoded: Some(r.decoded),
                        checkpoint: None,
                        ack: Some(HttpAck {
                            reserved: r.reserved,
                            tx: None,
                            delivery: r.delivery,
                            spool_seq: Some(seq),
                        }),
                        queued: None,
                    };
                    // Spooled, so answered 200 even when the loop has just stopped: the next
                    // start-up commits it.
                    let _ = tx.send(batch);
                    let _ = r.answer.send(Ok(()));
                }
            }
            // The last file is complete before the loop can see this thread gone (`tx`
            // dropped after it) and release what its final commit holds.
            drop(writer);
            drop(tx);
        })
        .map_err(|e| Error::Internal(format!("starting the spool thread: {e}")))?;
    Ok(in_tx)
}

/// A request read back from the spool, for the commit loop (as lines of input `input`, the
/// loop's `http`; nothing to answer).
///
/// # Errors
/// A frame whose checksum holds but whose rows cannot be read (written by another version).
pub fn recovered_batch(e: Entry, input: usize) -> Result<Batch> {
    let decoded = Decoded::from_bytes(input, &e.body).map_err(|err| Error::Spool {
        path: e.at.0.clone(),
        offset: e.at.1,
        message: err.to_string(),
    })?;
    Ok(Batch {
        input: "http".into(),
        first_line: 1,
        decoder: Decoder::Builtin(e.format),
        bytes: Vec::new(),
        envelope: None,
        decoded: Some(decoded),
        checkpoint: None,
        ack: Some(HttpAck {
            reserved: 0,
            tx: None,
            delivery: e.delivery,
            spool_seq: Some(e.seq),
        }),
        queued: None,
    })
}

/// Reads one spool file's frames. A frame cut short (or damaged and reaching the end of the file)
/// at the end of a file is dropped with a warning: it was being written when the collector
/// stopped, and never answered (a file is synced whole before the next one is started).
fn read_segment(path: &Path) -> Result<Vec<Entry>> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(Error::io("reading the spool", path))?;
    let damaged = |at: usize, what: &str| Error::Spool {
        path: path.to_path_buf(),
        offset: at as u64,
        message: what.to_string(),
    };
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < data.len() {
        let rest = &data[at..];
        let frame = (rest.len() >= FRAME_HEAD).then(|| {
            let hlen = u32::from_le_bytes(rest[0..4].try_into().unwrap_or_default());
            let blen = u64::from_le_bytes(rest[4..12].try_into().unwrap_or_default());
            let sum = u64::from_le_bytes(rest[12..20].try_into().unwrap_or_default());
            (hlen, blen, sum)
        });
        let whole = frame.and_then(|(hlen, blen, sum)| {
            let end = (hlen <= MAX_HEADER)
                .then(|| {
                    usize::try_from(blen)
                        .ok()
                        .and_then(|b| (FRAME_HEAD + hlen as usize).checked_add(b))
                })
                .flatten()?;
            (end <= rest.len()).then_some((hlen as usize, end, sum))
        });
        let Some((hlen, end, sum)) = whole else {
            tracing::warn!(path = %path.display(), offset = at, "spool file ends in a request cut short (never answered): ignored");
            break;
        };
        let header = &rest[FRAME_HEAD..FRAME_HEAD + hlen];
        let body = &rest[FRAME_HEAD + hlen..end];
        let mut h = Xxh3::new();
        h.update(header);
        h.update(body);
        if h.digest() != sum {
            if at + end == data.len() {
                tracing::warn!(path = %path.display(), offset = at, "spool ends in a damaged request (never answered): ignored");
                break;
            }
            return Err(damaged(at, "checksum mismatch"));
        }
        let header: Header =
            serde_json::from_slice(header).map_err(|e| damaged(at, &format!("bad header: {e}")))?;
        let format = header
            .format
            .parse::<Format>()
            .map_err(|e| damaged(at, &format!("bad format: {e}")))?;
        out.push(Entry {
            seq: header.seq,
            format,
            delivery: Delivery {
                principal: header.principal,
                peer: header.peer,
            },
            body: body.to_vec(),
            at: (path.to_path_buf(), at as u64),
        });
        at += end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(p: &str) -> Delivery {
        Delivery {
            principal: Some(p.into()),
            peer: Some("127.0.0.1:9".into()),
        }
    }

    #[test]
    fn requests_come_back_after_the_committed_number_and_files_go_once_committed() {
        let dir = tempfile::tempdir().unwrap();
        let r = Spool::open_dir(dir.path()).unwrap().recover(None);
        assert_eq!((r.entries.len(), r.next_seq), (0, 1));
        let mut w = SpoolWriter::new(r.spool.clone(), r.next_seq);
        assert_eq!(w.append("policylayer", &who("a"), b"one\n").unwrap(), 1);
        assert_eq!(w.append("opa", &who("b"), b"two\n").unwrap(), 2);
        w.sync().unwrap();
        drop(w);
        // Restarted after committing request 1: only request 2 comes back.
        let r = Spool::open_dir(dir.path()).unwrap().recover(Some(1));
        assert_eq!(r.next_seq, 3);
        assert_eq!(r.entries.len(), 1);
        let e = &r.entries[0];
        assert_eq!(
            (e.seq, e.format, &e.delivery, e.body.as_slice()),
            (2, Format::Opa, &who("b"), b"two\n".as_slice())
        );
        let mut w = SpoolWriter::new(r.spool.clone(), r.next_seq);
        assert_eq!(w.append("policylayer", &who("c"), b"three\n").unwrap(), 3);
        w.sync().unwrap();
        assert_eq!(r.spool.files().len(), 2);
        // Request 1 committed: the first file holds 2, which is not.
        assert_eq!(r.spool.release(1).unwrap(), 0);
        // Request 2 committed: the first file goes, the one being written stays.
        assert_eq!(r.spool.release(2).unwrap(), 1);
        assert_eq!(r.spool.release(3).unwrap(), 0);
        assert_eq!(r.spool.files().len(), 1);
        // An empty file left by a crash does not take its number again.
        std::fs::File::create(dir.path().join(format!("{:020}{SUFFIX}", 4))).unwrap();
        let r = Spool::open_dir(dir.path()).unwrap().recover(Some(3));
        assert_eq!((r.entries.len(), r.next_seq), (0, 5));
        assert_eq!(r.spool.release(3).unwrap(), 2);
        // A warehouse that committed more than the spool holds: numbers go on after it.
        let r = Spool::open_dir(dir.path()).unwrap().recover(Some(10));
        assert_eq!((r.entries.len(), r.next_seq), (0, 11));
    }

    #[test]
    fn a_request_cut_short_at_the_end_is_ignored_and_damage_elsewhere_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let r = Spool::open_dir(dir.path()).unwrap().recover(None);
        let mut w = SpoolWriter::new(r.spool.clone(), 1);
        w.append("policylayer", &who("a"), b"one\n").unwrap();
        w.append("policylayer", &who("a"), b"two\n").unwrap();
        w.sync().unwrap();
        let path = r.spool.files()[0].clone();
        let whole = std::fs::read(&path).unwrap();
        // Cut inside the second request's body.
        std::fs::write(&path, &whole[..whole.len() - 2]).unwrap();
        let back = Spool::open_dir(dir.path()).unwrap().recover(None);
        assert_eq!(back.entries.len(), 1);
        assert_eq!(back.entries[0].body, b"one\n");
        // A flipped byte in the first request, with the second whole after it.
        let mut bad = whole.clone();
        bad[30] ^= 0xff;
        std::fs::write(&path, &bad).unwrap();
        let e = Spool::open_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains("at byte 0"), "{e}");
    }
}
