//! File fingerprints and per-file checkpoints: versioned JSON files keyed by fingerprint, written
//! temp -> fsync -> rename. Advancing them only after a commit is the committer's job.
//!
//! A fingerprint is the xxh3 hash of a file's first `N` bytes (decompressed for gzip), taken only
//! once the file holds at least `N` bytes: an empty or nearly empty file has none yet (it is read
//! when it reaches `N` bytes), so two fresh files can never share one. `N` defaults to 256, past
//! the first line's timestamp and request id in every format verdict reads, so files whose first
//! line starts alike (identical headers) still differ. A rotated file (renamed, copied, or
//! compressed to `.gz`) keeps its first bytes and so its fingerprint and its checkpoint: reading
//! resumes where it stopped and nothing is read twice. Device and inode are recorded as hints.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::error::{Error, Result};

/// The version written in checkpoint files; other versions are refused.
pub const CHECKPOINT_VERSION: u32 = 1;

/// A file's fingerprint and whether it is gzip-compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// `xxh3-<16 hex digits>`, also the checkpoint's file name.
    pub id: String,
    /// The file starts with the gzip magic bytes.
    pub gzip: bool,
}

/// The fingerprint of `path` from its first `n` bytes (decompressed when gzip), or `None` while
/// it holds fewer than `n` bytes.
///
/// # Errors
/// When the file cannot be opened or read (a corrupt gzip header is such an error).
pub fn fingerprint(path: &Path, n: usize) -> Result<Option<Fingerprint>> {
    let file = File::open(path).map_err(Error::io("opening", path))?;
    let mut magic = [0u8; 2];
    let got = file
        .read_at(&mut magic, 0)
        .map_err(Error::io("reading", path))?;
    let gzip = got == 2 && magic == [0x1f, 0x8b];
    let mut head = vec![0u8; n];
    let filled = if gzip {
        read_up_to(
            &mut flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file)),
            &mut head,
        )
    } else {
        read_up_to(&mut FileAt { file, at: 0 }, &mut head)
    }
    .map_err(Error::io("reading", path))?;
    Ok(fingerprint_of(&head[..filled], n).map(|id| Fingerprint { id, gzip }))
}

/// The fingerprint of content whose first bytes are `head`, or `None` when it is shorter than `n`.
pub fn fingerprint_of(head: &[u8], n: usize) -> Option<String> {
    (head.len() >= n && n > 0).then(|| format!("xxh3-{:016x}", xxh3_64(&head[..n])))
}

struct FileAt {
    file: File,
    at: u64,
}

impl Read for FileAt {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// How far one file (one fingerprint) has been committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// The fingerprint this checkpoint belongs to.
    pub fingerprint: String,
    /// Where the file was last seen.
    pub path: String,
    /// Bytes of (decompressed) content committed: reading resumes here.
    pub offset: u64,
    /// The number of the next line (1-based).
    pub line: u64,
    /// The format the file is decoded with (detected once).
    pub format: String,
    /// Device of the file last read (a hint).
    pub dev: u64,
    /// Inode of the file last read (a hint).
    pub ino: u64,
    /// A gzip file read to its end: never read again.
    pub complete: bool,
}

impl Checkpoint {
    /// Encodes as pretty JSON.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Decodes a checkpoint file's bytes; `path` names the file in errors.
    ///
    /// # Errors
    /// Invalid JSON, a missing or unknown field, or another version.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
        let corrupt = |message: String| Error::CorruptCheckpoint {
            path: path.to_path_buf(),
            message,
        };
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        match v.get("version").and_then(serde_json::Value::as_u64) {
            Some(n) if n == u64::from(CHECKPOINT_VERSION) => {}
            Some(n) => {
                return Err(corrupt(format!(
                    "version {n} is not supported (this verdict reads version {CHECKPOINT_VERSION})"
                )))
            }
            None => return Err(corrupt("no `version` number".into())),
        }
        let cp: Checkpoint = serde_json::from_value(v).map_err(|e| corrupt(e.to_string()))?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        if stem.as_deref() != Some(cp.fingerprint.as_str()) {
            return Err(corrupt(format!(
                "it holds the checkpoint of {} under another name",
                cp.fingerprint
            )));
        }
        Ok(cp)
    }
}

/// The directory of checkpoint files, one `<fingerprint>.json` per file.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    dir: PathBuf,
}

impl CheckpointStore {
    /// Opens (creating) the directory; with `reset`, deletes every checkpoint first.
    ///
    /// # Errors
    /// When the directory cannot be created, listed or cleared.
    pub fn open(dir: &Path, reset: bool) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
        let store = Self {
            dir: dir.to_path_buf(),
        };
        for entry in std::fs::read_dir(dir).map_err(Error::io("listing", dir))? {
            let path = entry.map_err(Error::io("listing", dir))?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            // Leftovers of a write cut short, and with `reset` every checkpoint.
            if name.contains(".tmp") || (reset && name.ends_with(".json")) {
                std::fs::remove_file(&path).map_err(Error::io("removing", &path))?;
            }
        }
        Ok(store)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every checkpoint, by fingerprint.
    ///
    /// # Errors
    /// A checkpoint that cannot be read or decoded (the error names the file).
    pub fn load_all(&self) -> Result<std::collections::HashMap<String, Checkpoint>> {
        let mut out = std::collections::HashMap::new();
        let entries = std::fs::read_dir(&self.dir).map_err(Error::io("listing", &self.dir))?;
        for entry in entries {
            let path = entry.map_err(Error::io("listing", &self.dir))?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(Error::io("reading", &path))?;
            let cp = Checkpoint::decode(&bytes, &path)?;
            out.insert(cp.fingerprint.clone(), cp);
        }
        Ok(out)
    }

    /// Writes one checkpoint: a temp file, fsync, rename, fsync of the directory.
    ///
    /// # Errors
    /// On any filesystem failure (the previous checkpoint is then intact).
    pub fn save(&self, cp: &Checkpoint) -> Result<()> {
        let path = self.dir.join(format!("{}.json", cp.fingerprint));
        let tmp = self.dir.join(format!("{}.json.tmp", cp.fingerprint));
        {
            let mut f = File::create(&tmp).map_err(Error::io("creating", &tmp))?;
            f.write_all(&cp.encode())
                .map_err(Error::io("writing", &tmp))?;
            f.sync_all().map_err(Error::io("syncing", &tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(Error::io("renaming", &tmp))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(Error::io("syncing", &self.dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp(fp: &str) -> Checkpoint {
        Checkpoint {
            version: CHECKPOINT_VERSION,
            fingerprint: fp.into(),
            path: "/var/log/gw.jsonl".into(),
            offset: 4096,
            line: 11,
            format: "policylayer".into(),
            dev: 2049,
            ino: 77,
            complete: false,
        }
    }

    #[test]
    fn fingerprints_need_n_bytes_and_ignore_what_follows() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        std::fs::write(&p, b"").unwrap();
        assert_eq!(fingerprint(&p, 16).unwrap(), None, "an empty file has none");
        std::fs::write(&p, b"0123456789").unwrap();
        assert_eq!(fingerprint(&p, 16).unwrap(), None, "nor a short one");
        std::fs::write(&p, b"0123456789abcdef").unwrap();
        let a = fingerprint(&p, 16).unwrap().unwrap();
        assert_eq!(a.id, format!("xxh3-{:016x}", xxh3_64(b"0123456789abcdef")));
        assert!(!a.gzip);
        std::fs::write(&p, b"0123456789abcdef and more lines\n").unwrap();
        assert_eq!(fingerprint(&p, 16).unwrap().unwrap(), a, "growth keeps it");
        // A copy has the same one; the same header followed by other bytes within N does not.
        let q = dir.path().join("b.log");
        std::fs::write(&q, b"0123456789abcdeX").unwrap();
        assert_ne!(fingerprint(&q, 16).unwrap().unwrap().id, a.id);
        // The gzip of the same content has the same id, flagged as gzip.
        let gz = dir.path().join("a.log.1.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"0123456789abcdef and more lines\n").unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let g = fingerprint(&gz, 16).unwrap().unwrap();
        assert_eq!((g.id.as_str(), g.gzip), (a.id.as_str(), true));
    }

    #[test]
    fn checkpoints_round_trip_through_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path(), false).unwrap();
        let c = cp("xxh3-00000000000000ab");
        store.save(&c).unwrap();
        store.save(&cp("xxh3-00000000000000cd")).unwrap();
        let all = store.load_all().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all["xxh3-00000000000000ab"], c);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("tmp"))
            .collect();
        assert!(names.is_empty(), "no temp file is left: {names:?}");
        let reset = CheckpointStore::open(dir.path(), true).unwrap();
        assert!(reset.load_all().unwrap().is_empty());
    }

    #[test]
    fn corrupt_and_future_checkpoints_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("xxh3-00000000000000ab.json");
        let e = Checkpoint::decode(b"{\"version\":1,", &p)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("{}: corrupt checkpoint: EOF", p.display())),
            "{e}"
        );
        assert!(e.ends_with("(remove it, or run with --reset-checkpoints to start over)"));
        let mut v: serde_json::Value =
            serde_json::from_slice(&cp("xxh3-00000000000000ab").encode()).unwrap();
        v["version"] = 2.into();
        let e = Checkpoint::decode(v.to_string().as_bytes(), &p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("version 2 is not supported (this verdict reads version 1)"),
            "{e}"
        );
        let e = Checkpoint::decode(&cp("xxh3-0000000000000000").encode(), &p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("under another name"), "{e}");
        let ok = Checkpoint::decode(&cp("xxh3-00000000000000ab").encode(), &p).unwrap();
        assert_eq!(ok.offset, 4096);
    }
}
