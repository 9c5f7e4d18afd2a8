//! The files source: polls paths and globs, follows each file (by fingerprint) as it grows, and
//! hands whole lines to the commit loop with the checkpoint they reach. Committing and writing
//! checkpoints is the commit loop's job; this module never writes anything.
//!
//! Rotation: a file renamed away keeps its fingerprint, so if the rotated name still matches it
//! is read on from its checkpoint; if not, or if it is deleted, the open handle is drained to its
//! end before it is dropped. With copy-truncate the copy has the original's fingerprint (its
//! unread tail is read from the copy) and the truncated original gets a new one once it holds
//! `fingerprint_bytes` again. A file shorter than its checkpoint with the same first bytes was
//! truncated in place: it is read again from the start and the warehouse drops the rows it
//! already holds. A `.gz` file is decompressed and read once, from its checkpoint on (the gzip of
//! a file already read adds nothing). A last line without its `\n` is left until it is complete.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::Sender;
use verdict_formats::Format;
use verdict_formats::{detect, Decoder, DetectError, DETECT_LINES};
use verdict_ingest::source::{max_lines_for, whole_lines};

use crate::checkpoint::{fingerprint, Checkpoint, Fingerprint, CHECKPOINT_VERSION};
use crate::committer::{Batch, Queued};
use crate::config::{FilesSource, FormatChoice};
use crate::error::{Error, Result};
use crate::metrics::{Metrics, FILE_QUEUE_BYTES};

/// A file seen at one poll.
#[derive(Debug, Clone)]
struct Candidate {
    path: PathBuf,
    dev: u64,
    ino: u64,
    len: u64,
    gzip: bool,
}

struct Tracked {
    cp: Checkpoint,
    decoder: Option<Decoder>,
    handle: Option<(u64, u64, File)>,
    /// Reading waits for a record whose format can be detected (logged once).
    waiting: bool,
}

/// What [`FileSource::send`] did with a run of lines.
enum Sent {
    /// Handed to the commit loop.
    Handed,
    /// Not consumed: the file's format cannot be detected from them yet; read them again later.
    Held,
    /// The commit loop is gone.
    Closed,
}

/// Where reading resumes in content of `len` bytes whose checkpoint is at `offset`: the offset,
/// or 0 when the content is shorter (truncated in place); and whether it was truncated.
pub fn resume_at(offset: u64, len: u64) -> (u64, bool) {
    if len < offset {
        (0, true)
    } else {
        (offset, false)
    }
}

/// Among files sharing a fingerprint, the one to read: a plain file before a gzip one, the
/// longest, and on a tie the one already open (its inode is `open`).
fn choose(cands: &[Candidate], open: Option<(u64, u64)>) -> Option<&Candidate> {
    cands.iter().max_by_key(|c| {
        (
            !c.gzip,
            c.len,
            open == Some((c.dev, c.ino)),
            std::cmp::Reverse(c.path.clone()),
        )
    })
}

/// Follows the files of one source until `stop` is set, then reads once more and returns.
pub struct Tailer {
    src: FilesSource,
    known: HashMap<String, Checkpoint>,
    tracked: BTreeMap<String, Tracked>,
    gz_done: HashSet<(u64, u64, u64)>,
    tx: Sender<Batch>,
    metrics: Arc<Metrics>,
    warned: HashSet<PathBuf>,
    /// Bytes handed to the loop ahead of it, at most ([`FILE_QUEUE_BYTES`]).
    queue_bytes: u64,
}

impl Tailer {
    /// A tailer starting from the committed checkpoints `known`.
    pub fn new(
        src: FilesSource,
        known: HashMap<String, Checkpoint>,
        tx: Sender<Batch>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            src,
            known,
            tracked: BTreeMap::new(),
            gz_done: HashSet::new(),
            tx,
            metrics,
            warned: HashSet::new(),
            queue_bytes: FILE_QUEUE_BYTES,
        }
    }

    /// Polls until `stop`, then polls once more so lines written before the stop are taken.
    ///
    /// # Errors
    /// None today: unreadable files are logged and retried at the next poll.
    pub fn run(mut self, stop: &AtomicBool) -> Result<()> {
        loop {
            let stopping = stop.load(Ordering::SeqCst);
            if !self.poll()? || stopping {
                return Ok(());
            }
            let mut slept = std::time::Duration::ZERO;
            while slept < self.src.poll_interval && !stop.load(Ordering::SeqCst) {
                let step = std::time::Duration::from_millis(20).min(self.src.poll_interval);
                std::thread::sleep(step);
                slept += step;
            }
        }
    }

    fn paths(&mut self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for spec in &self.src.paths {
            if spec.contains(['*', '?', '[']) {
                if let Ok(paths) = glob::glob(spec) {
                    out.extend(paths.filter_map(std::result::Result::ok));
                }
            } else {
                out.push(PathBuf::from(spec));
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// One pass over every file; `false` once the commit loop is gone.
    ///
    /// # Errors
    /// None today (see [`Tailer::run`]).
    pub fn poll(&mut self) -> Result<bool> {
        let mut groups: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
        for path in self.paths() {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let key = (meta.dev(), meta.ino(), meta.len());
            if self.gz_done.contains(&key) {
                continue;
            }
            let fp = match fingerprint(&path, self.src.fingerprint_bytes) {
                Ok(Some(fp)) => fp,
                Ok(None) => continue,
                Err(e) => {
                    if self.warned.insert(path.clone()) {
                        tracing::warn!(error = %e, "skipping a file");
                    }
                    continue;
                }
            };
            let Fingerprint { id, gzip } = fp;
            groups.entry(id).or_default().push(Candidate {
                path,
                dev: meta.dev(),
                ino: meta.ino(),
                len: meta.len(),
                gzip,
            });
        }
        for (fp, cands) in &groups {
            if !self.follow(fp, cands)? {
                return Ok(false);
            }
        }
        // Files no path leads to any more (renamed out of the globs, deleted): drain what is
        // left in the open handle, then let it go.
        let gone: Vec<String> = self
            .tracked
            .iter()
            .filter(|(fp, t)| t.handle.is_some() && !groups.contains_key(*fp))
            .map(|(fp, _)| fp.clone())
            .collect();
        for fp in gone {
            if !self.drain(&fp)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn tracked(&mut self, fp: &str, c: &Candidate) -> &mut Tracked {
        let known = self.known.remove(fp);
        let format = &self.src.format;
        self.tracked.entry(fp.to_string()).or_insert_with(|| {
            let cp = known.unwrap_or_else(|| Checkpoint {
                version: CHECKPOINT_VERSION,
                fingerprint: fp.to_string(),
                path: c.path.display().to_string(),
                offset: 0,
                line: 1,
                format: String::new(),
                dev: c.dev,
                ino: c.ino,
                complete: false,
            });
            let decoder = match format {
                FormatChoice::Use(d) => Some(d.clone()),
                FormatChoice::Auto => cp.format.parse::<Format>().ok().map(Decoder::Builtin),
            };
            Tracked {
                cp,
                decoder,
                handle: None,
                waiting: false,
            }
        })
    }

    fn follow(&mut self, fp: &str, cands: &[Candidate]) -> Result<bool> {
        let open = self
            .tracked
            .get(fp)
            .and_then(|t| t.handle.as_ref().map(|h| (h.0, h.1)));
        let Some(c) = choose(cands, open).cloned() else {
            return Ok(true);
        };
        let t = self.tracked(fp, &c);
        if c.gzip {
            if t.cp.complete {
                self.gz_done.insert((c.dev, c.ino, c.len));
                return Ok(true);
            }
            return self.read_gzip(fp, &c);
        }
        let (at, truncated) = resume_at(t.cp.offset, c.len);
        if truncated {
            tracing::warn!(
                path = %c.path.display(),
                was = t.cp.offset,
                now = c.len,
                "file truncated in place: reading it again from the start (rows already stored are dropped)"
            );
            t.cp.offset = at;
            t.cp.line = 1;
        }
        if open != Some((c.dev, c.ino)) {
            match File::open(&c.path) {
                Ok(f) => t.handle = Some((c.dev, c.ino, f)),
                Err(_) => return Ok(true),
            }
        }
        t.cp.path = c.path.display().to_string();
        t.cp.dev = c.dev;
        t.cp.ino = c.ino;
        self.read_plain(fp, c.len)
    }

    fn drain(&mut self, fp: &str) -> Result<bool> {
        let len = match self.tracked.get(fp).and_then(|t| t.handle.as_ref()) {
            Some((_, _, f)) => f.metadata().map(|m| m.len()).unwrap_or(0),
            None => return Ok(true),
        };
        let more = self.read_plain(fp, len)?;
        if let Some(t) = self.tracked.get_mut(fp) {
            t.handle = None;
        }
        Ok(more)
    }

    /// Reads whole lines from the open handle of `fp` up to `len`.
    fn read_plain(&mut self, fp: &str, len: u64) -> Result<bool> {
        let step = self.src.read_bytes;
        loop {
            let Some(t) = self.tracked.get_mut(fp) else {
                return Ok(true);
            };
            let Some((_, _, file)) = t.handle.as_ref() else {
                return Ok(true);
            };
            if t.cp.offset >= len {
                return Ok(true);
            }
            let mut buf = Vec::new();
            let mut at = t.cp.offset;
            let take = loop {
                let want = usize::try_from((len - at).min(step as u64)).unwrap_or(step);
                if want == 0 {
                    break None;
                }
                let start = buf.len();
                buf.resize(start + want, 0);
                let n = read_at_full(file, &mut buf[start..], at)
                    .map_err(Error::io("reading", &t.cp.path))?;
                buf.truncate(start + n);
                at += n as u64;
                if let Some((end, _, _)) = whole_lines(&buf, max_lines_for(step)) {
                    break Some(end);
                }
                if n < want {
                    break None;
                }
            };
            let Some(take) = take else {
                // Only the start of a line: wait for its end.
                return Ok(true);
            };
            buf.truncate(take);
            match self.send(fp, buf, true)? {
                Sent::Handed => {}
                Sent::Held => return Ok(true),
                Sent::Closed => return Ok(false),
            }
        }
    }

    fn read_gzip(&mut self, fp: &str, c: &Candidate) -> Result<bool> {
        let file = File::open(&c.path).map_err(Error::io("opening", &c.path))?;
        let mut dec = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file));
        let skip = self.tracked.get(fp).map_or(0, |t| t.cp.offset);
        // Content already read under this fingerprint (the plain file this gzip was made of).
        std::io::copy(&mut (&mut dec).take(skip), &mut std::io::sink())
            .map_err(Error::io("decompressing", &c.path))?;
        let mut carry: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; self.src.read_bytes];
        loop {
            let n = match dec.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(path = %c.path.display(), error = %e, "cannot decompress; skipping the rest of the file");
                    0
                }
            };
            if n == 0 {
                break;
            }
            carry.extend_from_slice(&buf[..n]);
            // Whole lines, at most a batch's worth at a time.
            while let Some((end, _, _)) = whole_lines(&carry, max_lines_for(buf.len())) {
                let lines = carry[..end].to_vec();
                carry.drain(..end);
                if let Sent::Closed = self.send(fp, lines, false)? {
                    return Ok(false);
                }
            }
        }
        if !carry.is_empty() {
            // A compressed file is complete: its last line is whole even without `\n` (the
            // `\n` added here is not content, so the offset is moved back by one first).
            carry.push(b'\n');
            if let Some(t) = self.tracked.get_mut(fp) {
                t.cp.offset = t.cp.offset.saturating_sub(1);
            }
            if let Sent::Closed = self.send(fp, carry, false)? {
                return Ok(false);
            }
        }
        if let Some(t) = self.tracked.get_mut(fp) {
            t.cp.complete = true;
            t.cp.path = c.path.display().to_string();
            let cp = t.cp.clone();
            if self.tx.send(empty_batch(&cp, t.decoder.clone())).is_err() {
                return Ok(false);
            }
        }
        self.gz_done.insert((c.dev, c.ino, c.len));
        Ok(true)
    }

    /// Hands whole lines of `fp` to the commit loop with the checkpoint after them. Until the
    /// file's format is known it is detected from these lines; when they hold no record of a
    /// known format yet (a proxy's start-up chatter) and more may come (`can_wait`), they are
    /// held, not consumed, and read again with what follows.
    fn send(&mut self, fp: &str, bytes: Vec<u8>, can_wait: bool) -> Result<Sent> {
        let Some(t) = self.tracked.get_mut(fp) else {
            return Ok(Sent::Handed);
        };
        if t.decoder.is_none() {
            let text = String::from_utf8_lossy(&bytes);
            let detected = match &self.src.envelope {
                Some(e) => e.detect(text.lines(), t.cp.line),
                None => detect(text.lines(), t.cp.line),
            };
            let d = match detected {
                Ok(d) => d.format,
                Err(e)
                    if can_wait
                        && !matches!(e, DetectError::Mixed { .. })
                        && text.lines().filter(|l| !l.trim().is_empty()).count() < DETECT_LINES =>
                {
                    if !t.waiting {
                        tracing::info!(path = %t.cp.path, reason = %e, "waiting for a record of a known format before reading the file");
                        t.waiting = true;
                    }
                    return Ok(Sent::Held);
                }
                Err(e) => {
                    tracing::warn!(path = %t.cp.path, error = %e, "cannot detect the format; decoding as policylayer (bad lines are quarantined)");
                    Format::PolicyLayer
                }
            };
            t.cp.format = d.name().to_string();
            t.decoder = Some(Decoder::Builtin(d));
        }
        let lines = memchr::memchr_iter(b'\n', &bytes).count() as u64;
        self.metrics.received.fetch_add(lines, Ordering::Relaxed);
        self.metrics
            .bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let first_line = t.cp.line;
        t.cp.offset += bytes.len() as u64;
        t.cp.line += lines;
        let batch = Batch {
            input: t.cp.path.clone(),
            first_line,
            bytes,
            decoder: t
                .decoder
                .clone()
                .unwrap_or(Decoder::Builtin(Format::PolicyLayer)),
            envelope: self.src.envelope.clone(),
            checkpoint: Some(t.cp.clone()),
            decoded: None,
            ack: None,
            queued: None,
        };
        // A backlog is read as fast as the loop takes it: wait while what it has not taken yet
        // and these lines would pass the budget (one batch always goes, however large). The
        // count falls as the loop takes batches, and to zero should it stop (its channel's
        // batches are dropped), so this wait ends.
        let len = batch.bytes.len() as u64;
        while {
            let queued = self.metrics.file_bytes_queued.load(Ordering::SeqCst);
            queued > 0 && queued + len > self.queue_bytes
        } {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let batch = Batch {
            queued: Some(Queued::new(self.metrics.clone(), len)),
            ..batch
        };
        Ok(if self.tx.send(batch).is_ok() {
            Sent::Handed
        } else {
            Sent::Closed
        })
    }
}

fn empty_batch(cp: &Checkpoint, decoder: Option<Decoder>) -> Batch {
    Batch {
        input: cp.path.clone(),
        first_line: cp.line,
        bytes: Vec::new(),
        decoder: decoder.unwrap_or(Decoder::Builtin(Format::PolicyLayer)),
        envelope: None,
        checkpoint: Some(cp.clone()),
        decoded: None,
        ack: None,
        queued: None,
    }
}

fn read_at_full(f: &File, buf: &mut [u8], mut at: u64) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match f.read_at(&mut buf[filled..], at) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                at += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests;
