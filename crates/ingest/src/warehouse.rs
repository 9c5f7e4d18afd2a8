//! The warehouse on disk: layout, manifest, atomic commits and crash recovery.
//! Does not encode Parquet (see `writer`) nor read input (see `source`).
//!
//! Layout under the warehouse root:
//! - `decisions/day=YYYY-MM-DD/part-<txn>-<n>.parquet`: committed data, readable by any Parquet reader;
//! - `rollup/{minute,hour}/day=YYYY-MM-DD/part-<txn>.parquet`: the transaction's rows aggregated
//!   per UTC minute / hour (see `rollup`), committed with its decisions parts;
//! - `quarantine/<txn>.jsonl`: rejected lines with the reason;
//! - `_verdict/manifest.json`: every committed part and transaction;
//! - `_verdict/txn/<txn>.json`: the intent record of a commit in flight;
//! - `_verdict/staging/<txn>/`: files written by an ingest that has not committed yet;
//! - `_verdict/lock`: held exclusively by the process that writes.
//!
//! A commit stages its files, writes the intent record (temp file, fsync, rename: the commit
//! point), renames the staged files into place, rewrites the manifest the same way, then deletes
//! the intent. Recovery rolls forward every intent it finds and deletes staging without one, so a
//! process killed at any moment leaves the state before or after a whole commit.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The version written in the manifest and intent records.
pub const FORMAT_VERSION: u32 = 1;

/// One committed Parquet file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMeta {
    /// Path relative to the warehouse root, `/`-separated.
    pub path: String,
    /// The UTC day partition, `YYYY-MM-DD`.
    pub day: String,
    /// Rows in the file.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// Smallest `ts` (UTC µs).
    pub min_ts: i64,
    /// Largest `ts` (UTC µs).
    pub max_ts: i64,
    /// The transaction that wrote it.
    pub txn: String,
}

/// One input read by a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputMeta {
    /// The path as given (`-` for stdin).
    pub file: String,
    /// A fingerprint of the content (hash of the first bytes and the size).
    pub fingerprint: String,
    /// Bytes read (after decompression).
    pub bytes: u64,
    /// Lines read.
    pub lines: u64,
}

/// One committed transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnMeta {
    /// The transaction id.
    pub id: String,
    /// When it committed, RFC 3339.
    pub committed_at: String,
    /// Rows it added.
    pub rows: u64,
    /// Lines it quarantined.
    pub quarantined: u64,
    /// The inputs it read.
    #[serde(default)]
    pub inputs: Vec<InputMeta>,
}

/// The list of everything committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Committed Parquet files.
    pub parts: Vec<PartMeta>,
    /// Committed rollup files (absent in warehouses written before the rollup existed).
    #[serde(default)]
    pub rollups: Vec<PartMeta>,
    /// Committed transactions, oldest first.
    pub txns: Vec<TxnMeta>,
}

impl Default for Manifest {
    fn default() -> Self {
        Self {
            format_version: FORMAT_VERSION,
            parts: Vec::new(),
            rollups: Vec::new(),
            txns: Vec::new(),
        }
    }
}

/// A staged file and where it goes when the transaction commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// Staged path, relative to the root.
    pub from: String,
    /// Final path, relative to the root.
    pub to: String,
}

/// The intent record of a commit: everything needed to finish it after a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The transaction.
    pub txn: TxnMeta,
    /// The Parquet files it adds.
    pub parts: Vec<PartMeta>,
    /// The rollup files it adds.
    #[serde(default)]
    pub rollups: Vec<PartMeta>,
    /// Renames to perform (data, rollup and quarantine files).
    pub moves: Vec<Move>,
    /// A compaction: the day partition whose directory is swapped with the staged one
    /// (`_verdict/staging/<txn>/day=<day>`), which holds the merged file only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_day: Option<String>,
    /// Parts the commit removes from the manifest (the files a compaction merged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removes: Vec<String>,
}

/// Steps of a commit at which a test may ask the process to abort, to prove crash safety.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitStep {
    /// After the staged files are written, before the intent record.
    Staged,
    /// After the intent record (the commit point), before any rename.
    Intent,
    /// After the first rename.
    FirstMove,
    /// After every rename, before the manifest.
    Moved,
    /// After the manifest, before the intent is deleted.
    Manifest,
}

impl std::str::FromStr for CommitStep {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "staged" => Self::Staged,
            "intent" => Self::Intent,
            "first-move" => Self::FirstMove,
            "moved" => Self::Moved,
            "manifest" => Self::Manifest,
            _ => return Err(format!("unknown commit step `{s}`")),
        })
    }
}

/// What recovery did when the warehouse was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Recovery {
    /// Interrupted commits that were finished.
    pub rolled_forward: Vec<String>,
    /// Uncommitted staging areas that were deleted.
    pub rolled_back: Vec<String>,
}

/// An opened warehouse directory.
#[derive(Debug)]
pub struct Warehouse {
    root: PathBuf,
    _lock: Option<File>,
    recovery: Recovery,
}

impl Warehouse {
    /// Opens (creating it if needed) a warehouse for writing: takes the exclusive lock, waiting
    /// for another writer to finish, and recovers any interrupted commit.
    ///
    /// # Errors
    /// When the directory cannot be created or locked, or its metadata is corrupt.
    pub fn open_for_write(root: &Path) -> Result<Self> {
        if root.exists() && !root.is_dir() {
            return Err(Error::NotAWarehouse {
                path: root.to_path_buf(),
                message: "it is a file".into(),
            });
        }
        let meta = root.join("_verdict");
        fs::create_dir_all(&meta).map_err(Error::io("creating", &meta))?;
        let lock_path = meta.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(Error::io("opening", &lock_path))?;
        lock.lock().map_err(Error::io("locking", &lock_path))?;
        let mut wh = Self {
            root: root.to_path_buf(),
            _lock: Some(lock),
            recovery: Recovery::default(),
        };
        wh.recovery = wh.recover()?;
        Ok(wh)
    }

    /// Opens an existing warehouse for reading. When no writer holds the lock, an interrupted
    /// commit is recovered first; when one does, its staged files are invisible anyway.
    ///
    /// # Errors
    /// When the path does not exist or is not a directory, or recovery fails.
    pub fn open_for_read(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::NotAWarehouse {
                path: root.to_path_buf(),
                message: if root.exists() {
                    "it is a file".into()
                } else {
                    "no such directory".into()
                },
            });
        }
        let lock_path = root.join("_verdict").join("lock");
        let mut wh = Self {
            root: root.to_path_buf(),
            _lock: None,
            recovery: Recovery::default(),
        };
        if let Ok(lock) = File::options().write(true).open(&lock_path) {
            if lock.try_lock().is_ok() {
                wh.recovery = wh.recover()?;
            }
        }
        Ok(wh)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What recovery did when this handle was opened.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// `decisions/` under the root.
    pub fn decisions_dir(&self) -> PathBuf {
        self.root.join("decisions")
    }

    /// `quarantine/` under the root.
    pub fn quarantine_dir(&self) -> PathBuf {
        self.root.join("quarantine")
    }

    /// The staging directory of a transaction.
    pub fn staging_dir(&self, txn: &str) -> PathBuf {
        self.root.join("_verdict").join("staging").join(txn)
    }

    fn manifest_path(&self) -> PathBuf {
        self.root.join("_verdict").join("manifest.json")
    }

    fn intent_dir(&self) -> PathBuf {
        self.root.join("_verdict").join("txn")
    }

    /// Reads the manifest (empty when none was written yet).
    ///
    /// # Errors
    /// When it exists but cannot be read or parsed.
    pub fn manifest(&self) -> Result<Manifest> {
        let path = self.manifest_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::CorruptMetadata {
                path: path.clone(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(e) => Err(Error::io("reading", path)(e)),
        }
    }

    /// The committed Parquet files of one day partition, sorted by name.
    ///
    /// # Errors
    /// When the directory exists but cannot be listed.
    pub fn day_files(&self, day: &str) -> Result<Vec<PathBuf>> {
        let dir = self.decisions_dir().join(format!("day={day}"));
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("listing", dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(Error::io("listing", &dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".parquet") && !name.starts_with(['.', '_']) {
                out.push(entry.path());
            }
        }
        out.sort();
        Ok(out)
    }

    /// The day partitions present on disk, sorted.
    ///
    /// # Errors
    /// When `decisions/` exists but cannot be listed.
    pub fn days(&self) -> Result<Vec<String>> {
        let dir = self.decisions_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("listing", dir)(e)),
        };
        let mut days = Vec::new();
        for entry in entries {
            let entry = entry.map_err(Error::io("listing", &dir))?;
            if let Some(day) = entry.file_name().to_string_lossy().strip_prefix("day=") {
                days.push(day.to_string());
            }
        }
        days.sort();
        Ok(days)
    }

    /// Commits a staged transaction atomically (see the module docs). `abort_at` makes the
    /// process abort at that step, for crash tests only.
    ///
    /// # Errors
    /// On any filesystem failure; recovery on the next open finishes or discards the commit.
    pub fn commit(&self, intent: &Intent, abort_at: Option<CommitStep>) -> Result<()> {
        let hit = |step| {
            if abort_at == Some(step) {
                std::process::abort();
            }
        };
        hit(CommitStep::Staged);
        let dir = self.intent_dir();
        fs::create_dir_all(&dir).map_err(Error::io("creating", &dir))?;
        let intent_path = dir.join(format!("{}.json", intent.txn.id));
        let bytes =
            serde_json::to_vec_pretty(intent).map_err(|e| Error::Internal(e.to_string()))?;
        write_atomic(&intent_path, &bytes)?;
        hit(CommitStep::Intent);
        self.apply(intent, || hit(CommitStep::FirstMove))?;
        hit(CommitStep::Moved);
        self.record_in_manifest(intent)?;
        hit(CommitStep::Manifest);
        fs::remove_file(&intent_path).map_err(Error::io("removing", &intent_path))?;
        let staging = self.staging_dir(&intent.txn.id);
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(Error::io("removing", &staging))?;
        }
        Ok(())
    }

    /// Deletes a transaction's staging area without committing it.
    ///
    /// # Errors
    /// When the directory cannot be removed.
    pub fn abort(&self, txn: &str) -> Result<()> {
        let staging = self.staging_dir(txn);
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(Error::io("removing", &staging))?;
        }
        Ok(())
    }

    fn apply(&self, intent: &Intent, mut after_first: impl FnMut()) -> Result<()> {
        if let Some(day) = &intent.swap_day {
            self.swap_day(intent, day)?;
            after_first();
            // The day's new rollup files, then the old ones removed: until both are done the
            // rollup does not match the day's parts, and reports answer from the decisions.
            self.run_moves(intent, || {})?;
            for path in intent.removes.iter().filter(|p| p.starts_with("rollup/")) {
                let path = self.root.join(path);
                if path.exists() {
                    fs::remove_file(&path).map_err(Error::io("removing", &path))?;
                }
            }
            return Ok(());
        }
        self.run_moves(intent, after_first)
    }

    /// Renames each staged file of the intent into place (idempotent, for recovery).
    fn run_moves(&self, intent: &Intent, mut after_first: impl FnMut()) -> Result<()> {
        let mut touched_dirs: Vec<PathBuf> = Vec::new();
        for (i, m) in intent.moves.iter().enumerate() {
            let from = self.root.join(&m.from);
            let to = self.root.join(&m.to);
            if from.exists() {
                if let Some(parent) = to.parent() {
                    if !touched_dirs.iter().any(|d| d == parent) {
                        fs::create_dir_all(parent).map_err(Error::io("creating", parent))?;
                        touched_dirs.push(parent.to_path_buf());
                    }
                }
                fs::rename(&from, &to).map_err(Error::io("renaming into place", &from))?;
            } else if !to.exists() {
                return Err(Error::CorruptMetadata {
                    path: self.intent_dir().join(format!("{}.json", intent.txn.id)),
                    message: format!(
                        "staged file {} is gone and {} was never written",
                        m.from, m.to
                    ),
                });
            }
            if i == 0 {
                after_first();
            }
        }
        for d in &touched_dirs {
            sync_dir(d)?;
            if let Some(p) = d.parent() {
                sync_dir(p)?;
            }
        }
        Ok(())
    }

    /// Puts a compacted day in place in one step: the staged day directory (holding the merged
    /// file) and the live one are exchanged atomically (`renameat2(RENAME_EXCHANGE)`), so a
    /// reader listing the day sees either every old file or the merged one, never both. Where
    /// the filesystem cannot exchange, the live directory is renamed aside first (a reader may
    /// then briefly see the day empty, never doubled). Idempotent, for recovery.
    fn swap_day(&self, intent: &Intent, day: &str) -> Result<()> {
        let staged = self.staging_dir(&intent.txn.id).join(format!("day={day}"));
        let live = self.decisions_dir().join(format!("day={day}"));
        let done = intent
            .parts
            .iter()
            .all(|p| self.root.join(&p.path).exists());
        if done {
            return Ok(());
        }
        if !staged.is_dir() {
            return Err(Error::CorruptMetadata {
                path: self.intent_dir().join(format!("{}.json", intent.txn.id)),
                message: format!("the compacted day {day} is neither staged nor in place"),
            });
        }
        if live.is_dir() {
            match rustix::fs::renameat_with(
                rustix::fs::CWD,
                &staged,
                rustix::fs::CWD,
                &live,
                rustix::fs::RenameFlags::EXCHANGE,
            ) {
                Ok(()) => {}
                Err(_) => {
                    let aside = self.staging_dir(&intent.txn.id).join("replaced");
                    fs::rename(&live, &aside).map_err(Error::io("renaming aside", &live))?;
                    fs::rename(&staged, &live)
                        .map_err(Error::io("renaming into place", &staged))?;
                }
            }
        } else {
            fs::rename(&staged, &live).map_err(Error::io("renaming into place", &staged))?;
        }
        sync_dir(&self.decisions_dir())?;
        Ok(())
    }

    fn record_in_manifest(&self, intent: &Intent) -> Result<()> {
        let mut manifest = self.manifest()?;
        if manifest.txns.iter().any(|t| t.id == intent.txn.id) {
            return Ok(());
        }
        manifest.parts.retain(|p| !intent.removes.contains(&p.path));
        manifest
            .rollups
            .retain(|p| !intent.removes.contains(&p.path));
        manifest.parts.extend(intent.parts.iter().cloned());
        manifest.rollups.extend(intent.rollups.iter().cloned());
        manifest.txns.push(intent.txn.clone());
        let bytes =
            serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
        write_atomic(&self.manifest_path(), &bytes)
    }

    /// Finishes interrupted commits and deletes uncommitted staging. Needs the write lock.
    fn recover(&self) -> Result<Recovery> {
        let mut report = Recovery::default();
        let dir = self.intent_dir();
        let mut committed = Vec::new();
        if let Ok(entries) = fs::read_dir(&dir) {
            let mut paths: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for path in paths {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !name.ends_with(".json") {
                    fs::remove_file(&path).map_err(Error::io("removing", &path))?;
                    continue;
                }
                let bytes = fs::read(&path).map_err(Error::io("reading", &path))?;
                let intent: Intent =
                    serde_json::from_slice(&bytes).map_err(|e| Error::CorruptMetadata {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                self.apply(&intent, || {})?;
                self.record_in_manifest(&intent)?;
                fs::remove_file(&path).map_err(Error::io("removing", &path))?;
                committed.push(intent.txn.id.clone());
                report.rolled_forward.push(intent.txn.id);
            }
        }
        let staging_root = self.root.join("_verdict").join("staging");
        if let Ok(entries) = fs::read_dir(&staging_root) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let path = entry.path();
                fs::remove_dir_all(&path).map_err(Error::io("removing", &path))?;
                if !committed.contains(&name) {
                    report.rolled_back.push(name);
                }
            }
        }
        if let Ok(entries) = fs::read_dir(self.root.join("_verdict")) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().contains(".tmp") {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        Ok(report)
    }
}

/// Writes `bytes` to `path` atomically: a temp file beside it, fsync, rename, fsync of the directory.
///
/// # Errors
/// On any filesystem failure (the old content of `path` is then intact).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    {
        let mut f = File::create(&tmp).map_err(Error::io("creating", &tmp))?;
        f.write_all(bytes).map_err(Error::io("writing", &tmp))?;
        f.sync_all().map_err(Error::io("syncing", &tmp))?;
    }
    fs::rename(&tmp, path).map_err(Error::io("renaming", &tmp))?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("syncing", dir))
}

/// A path relative to the root as a `/`-separated string.
pub(crate) fn rel(root: &Path, path: &Path) -> String {
    let p = path.strip_prefix(root).unwrap_or(path);
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(wh: &Warehouse, id: &str) -> Intent {
        let staging = wh.staging_dir(id).join("day=2026-11-02");
        fs::create_dir_all(&staging).unwrap();
        let staged = staging.join(format!("part-{id}-0.parquet"));
        fs::write(&staged, b"data").unwrap();
        let to = format!("decisions/day=2026-11-02/part-{id}-0.parquet");
        Intent {
            format_version: FORMAT_VERSION,
            txn: TxnMeta {
                id: id.into(),
                committed_at: "2026-11-22T00:00:00Z".into(),
                rows: 1,
                quarantined: 0,
                inputs: vec![],
            },
            parts: vec![PartMeta {
                path: to.clone(),
                day: "2026-11-02".into(),
                rows: 1,
                bytes: 4,
                min_ts: 0,
                max_ts: 0,
                txn: id.into(),
            }],
            rollups: vec![],
            moves: vec![Move {
                from: rel(wh.root(), &staged),
                to,
            }],
            swap_day: None,
            removes: vec![],
        }
    }

    #[test]
    fn commit_moves_files_and_records_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::open_for_write(dir.path()).unwrap();
        let i = intent(&wh, "t1");
        wh.commit(&i, None).unwrap();
        assert_eq!(wh.day_files("2026-11-02").unwrap().len(), 1);
        let m = wh.manifest().unwrap();
        assert_eq!(m.parts.len(), 1);
        assert_eq!(m.txns[0].id, "t1");
        assert!(!wh.staging_dir("t1").exists());
        assert_eq!(wh.days().unwrap(), ["2026-11-02"]);
    }

    #[test]
    fn recovery_rolls_forward_an_intent_and_back_a_bare_staging() {
        let dir = tempfile::tempdir().unwrap();
        {
            let wh = Warehouse::open_for_write(dir.path()).unwrap();
            let i = intent(&wh, "t1");
            fs::create_dir_all(wh.intent_dir()).unwrap();
            write_atomic(
                &wh.intent_dir().join("t1.json"),
                &serde_json::to_vec(&i).unwrap(),
            )
            .unwrap();
            let _ = intent(&wh, "t2");
        }
        let wh = Warehouse::open_for_write(dir.path()).unwrap();
        assert_eq!(wh.recovery().rolled_forward, ["t1"]);
        assert_eq!(wh.recovery().rolled_back, ["t2"]);
        assert_eq!(wh.day_files("2026-11-02").unwrap().len(), 1);
        assert_eq!(wh.manifest().unwrap().txns.len(), 1);
        // A second recovery finds nothing to do and does not double the manifest.
        drop(wh);
        let wh = Warehouse::open_for_write(dir.path()).unwrap();
        assert_eq!(wh.recovery(), &Recovery::default());
        assert_eq!(wh.manifest().unwrap().parts.len(), 1);
    }

    #[test]
    fn corrupt_manifest_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::open_for_write(dir.path()).unwrap();
        fs::write(dir.path().join("_verdict/manifest.json"), b"{oops").unwrap();
        let e = wh.manifest().unwrap_err().to_string();
        assert!(
            e.contains("manifest.json: corrupt warehouse metadata"),
            "{e}"
        );
    }

    #[test]
    fn reading_a_missing_warehouse_names_the_path() {
        let e = Warehouse::open_for_read(Path::new("/nonexistent/wh"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/nonexistent/wh: not a verdict warehouse (no such directory)"
        );
    }
}
