//! `verdict verify`: rereads every link of the integrity chain and every live data file of the
//! chained tables, and names what does not match. The README's "Integrity" section describes
//! what each finding means.

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::chain::{self, FileDigest, ParsedCommit, PublicKey};
use crate::error::{Error, Result};
use crate::snapshot::Snapshot;
use crate::tables::Table;
use crate::warehouse::{delta_err, NewFile, TableSnapshot, Warehouse};

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Reread only the files added at or after this instant (older ones are checked for
    /// presence and size); every link is checked whatever it is.
    pub since: Option<DateTime<Utc>>,
    /// Every link must carry a signature by this key.
    pub public_key: Option<PublicKey>,
}

/// What kind of problem a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FindingKind {
    /// A live file's bytes differ from the digest its commit recorded.
    FileChanged,
    /// A live file is gone, and no commit removed it.
    FileRemoved,
    /// A data file in the table's directory that no commit added.
    FileAdded,
    /// A link does not follow the one before it (a commit edited, inserted or removed).
    ChainBroken,
    /// A commit's actions differ from its own link, or the commit cannot be read.
    CommitEdited,
    /// A commit after the chain's start is missing from the log.
    LogMissing,
    /// A link without a signature, under `--public-key`.
    SignatureMissing,
    /// A link whose signature is not the public key's.
    SignatureWrong,
}

impl FindingKind {
    /// How the report names it.
    pub fn label(self) -> &'static str {
        match self {
            FindingKind::FileChanged => "file changed",
            FindingKind::FileRemoved => "file removed outside verdict",
            FindingKind::FileAdded => "file added outside verdict",
            FindingKind::ChainBroken => "chain broken",
            FindingKind::CommitEdited => "commit edited",
            FindingKind::LogMissing => "commit missing",
            FindingKind::SignatureMissing => "signature missing",
            FindingKind::SignatureWrong => "signature wrong",
        }
    }
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The table.
    pub table: &'static str,
    /// What kind.
    pub kind: FindingKind,
    /// The commit concerned, when one is.
    pub version: Option<i64>,
    /// The file concerned, relative to the table directory.
    pub path: Option<String>,
    /// What does not match.
    pub message: String,
}

/// Files removed by a chained commit: authorised, listed, not a problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removal {
    /// The table.
    pub table: &'static str,
    /// The commit.
    pub version: i64,
    /// Its operation (`compact`, `restore`, `remove_damaged`, `erase`, `retention` ...).
    pub operation: String,
    /// Files it removed.
    pub files: usize,
}

/// The last link read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainHead {
    /// Its version.
    pub version: i64,
    /// The digest of its record (what the next link will name).
    pub digest: String,
}

/// What was checked in one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableIntegrity {
    /// The table.
    pub table: &'static str,
    /// The version whose files were checked.
    pub version: i64,
    /// The link of that version (`None`: the version has no link).
    pub head: Option<ChainHead>,
    /// The first chained version.
    pub chain_start: Option<i64>,
    /// Links checked.
    pub links: u64,
    /// Links carrying a signature (checked under `--public-key`).
    pub signed_links: u64,
    /// Commits before the chain's start that add or remove files ("unchained" history).
    pub unchained_commits: u64,
    /// Live files added by unchained commits (read, with no digest to compare).
    pub unchained_files: u64,
    /// Commits at the start of the table no longer in the log (cleaned up after a checkpoint).
    pub expired_commits: u64,
    /// Live files reread and hashed.
    pub files_hashed: u64,
    /// Their bytes.
    pub bytes_hashed: u64,
    /// Live files older than `--since`, checked for presence and size only.
    pub files_listed_only: u64,
}

/// The outcome of [`Warehouse::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// No problem found.
    pub ok: bool,
    /// Per chained table.
    pub tables: Vec<TableIntegrity>,
    /// Every problem, the first found first.
    pub problems: Vec<Finding>,
    /// Authorised removals.
    pub removals: Vec<Removal>,
}

impl VerifyReport {
    /// The `decisions` table's part.
    pub fn decisions(&self) -> Option<&TableIntegrity> {
        self.tables
            .iter()
            .find(|t| t.table == Table::Decisions.name())
    }
}

/// A file some commit added, as the log knows it.
struct Known {
    version: i64,
    sha256: Option<String>,
    added_ms: Option<i64>,
}

/// Everything the walk over a table's log learnt.
#[derive(Default)]
struct Walk {
    known: HashMap<String, Known>,
    removed_by: HashMap<String, i64>,
    problems: Vec<Finding>,
    removals: Vec<Removal>,
}

impl Warehouse {
    /// Verifies the chained tables of `snap`: every link of their logs up to the snapshot's
    /// version, every file live in the snapshot, every file in their directories (one that a
    /// later commit added is verdict's). The same snapshot version gives the same report while
    /// its history and files stay untouched.
    ///
    /// # Errors
    /// When a log or a directory cannot be read at all (a mismatch is a [`Finding`]).
    pub async fn verify(&self, snap: &Snapshot, opts: &VerifyOptions) -> Result<VerifyReport> {
        let mut report = VerifyReport {
            ok: true,
            tables: Vec::new(),
            problems: Vec::new(),
            removals: Vec::new(),
        };
        for t in [Table::Decisions, Table::Quarantine] {
            let Some(s) = snap.table(t).await? else {
                continue;
            };
            let (integrity, walk) = self.verify_table(s, opts).await?;
            report.tables.push(integrity);
            report.problems.extend(walk.problems);
            report.removals.extend(walk.removals);
        }
        report.ok = report.problems.is_empty();
        Ok(report)
    }

    async fn verify_table(
        &self,
        s: &TableSnapshot,
        opts: &VerifyOptions,
    ) -> Result<(TableIntegrity, Walk)> {
        let t = s.table;
        let ls = self.log_store(t);
        let latest = ls
            .get_latest_version(u64::try_from(s.version).unwrap_or(0))
            .await
            .map_err(|e| delta_err(&ls, t, e))? as i64;
        let mut ti = TableIntegrity {
            table: t.name(),
            version: s.version,
            head: None,
            chain_start: None,
            links: 0,
            signed_links: 0,
            unchained_commits: 0,
            unchained_files: 0,
            expired_commits: 0,
            files_hashed: 0,
            bytes_hashed: 0,
            files_listed_only: 0,
        };
        let mut walk = Walk::default();
        let mut prev: Option<String> = None;
        let mut seen_any = false;
        for v in 0..=latest {
            // Commits after the version checked only tell which files verdict added since (so
            // that they are not taken for files added outside it).
            let later = v > s.version;
            let Some(bytes) = self.try_commit_bytes(t, v).await? else {
                if later {
                    continue;
                }
                if seen_any {
                    walk.problem(
                        t,
                        FindingKind::LogMissing,
                        Some(v),
                        None,
                        format!("commit {v} is missing from the log (removed outside verdict)"),
                    );
                } else {
                    ti.expired_commits += 1;
                }
                prev = None;
                continue;
            };
            seen_any = true;
            let parsed = match chain::parse_commit(&bytes, t.partition().map(|p| p.0)) {
                Ok(p) => p,
                Err(_) if later => continue,
                Err(m) => {
                    walk.problem(
                        t,
                        FindingKind::CommitEdited,
                        Some(v),
                        None,
                        format!("commit {v} is not a valid commit: {m}"),
                    );
                    prev = None;
                    continue;
                }
            };
            if later {
                walk.learn(v, &parsed);
                continue;
            }
            let link = walk.check_link(t, v, &parsed, prev.as_deref(), &mut ti, opts);
            walk.learn(v, &parsed);
            prev = Some(link.unwrap_or_else(|| chain::sha256_hex(&bytes)));
            if v == s.version {
                ti.head = parsed.found.as_ref().map(|f| ChainHead {
                    version: v,
                    digest: f.record.digest(),
                });
            }
        }
        self.check_files(s, opts, &mut walk, &mut ti).await?;
        Ok((ti, walk))
    }

    async fn check_files(
        &self,
        s: &TableSnapshot,
        opts: &VerifyOptions,
        walk: &mut Walk,
        ti: &mut TableIntegrity,
    ) -> Result<()> {
        let t = s.table;
        let listed: BTreeMap<String, u64> = self.list_files(t).await?.into_iter().collect();
        let since_ms = opts.since.map(|d| d.timestamp_millis());
        let mut to_hash = Vec::new();
        for f in &s.files {
            let known = walk.known.get(&f.path);
            let gone = !listed.contains_key(&f.path);
            if gone {
                // Removed by a later commit and vacuumed since: not this version's problem.
                if walk.removed_by.get(&f.path).is_some_and(|v| *v > s.version) {
                    continue;
                }
                walk.problem(
                    t,
                    FindingKind::FileRemoved,
                    known.map(|k| k.version),
                    Some(&f.path),
                    format!("{}: the file is gone and no commit removed it", f.path),
                );
                continue;
            }
            let old = match (since_ms, known.and_then(|k| k.added_ms)) {
                (Some(since), Some(added)) => added < since,
                _ => false,
            };
            if old {
                ti.files_listed_only += 1;
                if listed.get(&f.path) != Some(&f.size) {
                    walk.problem(
                        t,
                        FindingKind::FileChanged,
                        known.map(|k| k.version),
                        Some(&f.path),
                        format!(
                            "{}: holds {} bytes, its commit recorded {}",
                            f.path,
                            listed.get(&f.path).copied().unwrap_or(0),
                            f.size
                        ),
                    );
                }
                continue;
            }
            to_hash.push(f.path.clone());
        }
        let hashed = self.hash_files(t, &to_hash).await;
        for (path, r) in to_hash.iter().zip(hashed) {
            let known = walk.known.get(path);
            let version = known.map(|k| k.version);
            match r {
                Ok((digest, size)) => {
                    ti.files_hashed += 1;
                    ti.bytes_hashed += size;
                    match known.and_then(|k| k.sha256.as_deref()) {
                        None => ti.unchained_files += 1,
                        Some(d) if d == digest => {}
                        Some(d) => walk.problem(t, FindingKind::FileChanged, version, Some(path),
                            format!("{path}: digest mismatch: commit {} recorded sha256 {d}, the file's is {digest}",
                                version.unwrap_or(-1))),
                    }
                }
                Err(Error::Store {
                    source: object_store::Error::NotFound { .. },
                    ..
                }) => {
                    walk.problem(
                        t,
                        FindingKind::FileRemoved,
                        version,
                        Some(path),
                        format!("{path}: the file is gone and no commit removed it"),
                    );
                }
                Err(e) => return Err(e),
            }
        }
        for path in listed.keys() {
            if !walk.known.contains_key(path) {
                walk.problem(
                    t,
                    FindingKind::FileAdded,
                    None,
                    Some(path),
                    format!(
                        "{path}: no commit added this file (written outside verdict, or left by a \
                     write cut short: `verdict vacuum` removes those)"
                    ),
                );
            }
        }
        Ok(())
    }

    /// The SHA-256 (hex) and size of each file, read in parallel (as many at once as there are
    /// cores, two at least).
    async fn hash_files(&self, t: Table, paths: &[String]) -> Vec<Result<(String, u64)>> {
        let n = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(2);
        let mut jobs = Vec::with_capacity(paths.len());
        for p in paths {
            jobs.push(self.hash_file(t, p));
        }
        futures::stream::iter(jobs).buffered(n).collect().await
    }

    /// The SHA-256 (hex) and size of one table file: streamed from local disk on a blocking
    /// thread, or fetched whole from an object store and hashed on one.
    pub(crate) async fn hash_file(&self, t: Table, rel: &str) -> Result<(String, u64)> {
        let shown = format!("{}/{rel}", t.name());
        if let Some(path) = self.local_path(t, rel) {
            let r = tokio::task::spawn_blocking(move || hash_local(&path)).await;
            return match r.map_err(|e| Error::Internal(format!("hashing {shown}: {e}")))? {
                Ok(x) => Ok(x),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Store {
                    action: "reading",
                    path: shown,
                    source: object_store::Error::NotFound {
                        path: rel.to_string(),
                        source: Box::new(e),
                    },
                }),
                Err(e) => Err(Error::io("reading", shown)(e)),
            };
        }
        let bytes = self.read_file(t, rel).await?;
        tokio::task::spawn_blocking(move || {
            (hex::encode(Sha256::digest(&bytes)), bytes.len() as u64)
        })
        .await
        .map_err(|e| Error::Internal(format!("hashing {shown}: {e}")))
    }

    /// The digests of the files a commit adds, read back from the store.
    pub(crate) async fn file_digests(&self, t: Table, adds: &[NewFile]) -> Result<Vec<FileDigest>> {
        let paths: Vec<String> = adds.iter().map(|f| f.path.clone()).collect();
        let hashed = self.hash_files(t, &paths).await;
        let mut out = Vec::with_capacity(adds.len());
        for (f, h) in adds.iter().zip(hashed) {
            let (sha256, size) = h?;
            out.push(FileDigest {
                partition: f.partition.clone(),
                path: f.path.clone(),
                sha256,
                size,
                stats_sha256: chain::sha256_hex(f.stats.as_bytes()),
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

fn hash_local(path: &std::path::Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(h.finalize()), total))
}

impl Walk {
    fn problem(
        &mut self,
        t: Table,
        kind: FindingKind,
        version: Option<i64>,
        path: Option<&str>,
        message: String,
    ) {
        self.problems.push(Finding {
            table: t.name(),
            kind,
            version,
            path: path.map(str::to_string),
            message,
        });
    }

    /// Checks commit `v`'s link against the previous one and its own actions; returns its
    /// record's digest when it has a record.
    fn check_link(
        &mut self,
        t: Table,
        v: i64,
        p: &ParsedCommit,
        prev: Option<&str>,
        ti: &mut TableIntegrity,
        opts: &VerifyOptions,
    ) -> Option<String> {
        let Some(found) = &p.found else {
            if ti.chain_start.is_some() {
                self.problem(
                    t,
                    FindingKind::ChainBroken,
                    Some(v),
                    None,
                    format!(
                    "commit {v} carries no link after the chain started at version {}: written \
                     outside verdict, or its link was removed",
                    ti.chain_start.unwrap_or_default()
                ),
                );
            } else if !p.adds.is_empty() || !p.removes.is_empty() {
                ti.unchained_commits += 1;
            }
            return None;
        };
        let r = &found.record;
        ti.chain_start.get_or_insert(v);
        ti.links += 1;
        if r.version != v || r.table != t.name() {
            self.problem(
                t,
                FindingKind::ChainBroken,
                Some(v),
                None,
                format!(
                "commit {v} holds the link of {} version {}: a commit was inserted, removed or \
                 renumbered",
                r.table, r.version
            ),
            );
        } else if let Some(prev) = prev.filter(|p| *p != r.prev) {
            self.problem(
                t,
                FindingKind::ChainBroken,
                Some(v),
                None,
                format!(
                    "commit {v} names {} as the previous link, but commit {} digests to {prev}: \
                 commit {} was edited or commit {v} inserted",
                    r.prev,
                    v - 1,
                    v - 1
                ),
            );
        }
        if let Some(m) = actions_mismatch(p) {
            self.problem(
                t,
                FindingKind::CommitEdited,
                Some(v),
                None,
                format!("commit {v}: {m}"),
            );
        }
        if found.signature.is_some() {
            ti.signed_links += 1;
        }
        if let Some(key) = &opts.public_key {
            match &found.signature {
                None => self.problem(
                    t,
                    FindingKind::SignatureMissing,
                    Some(v),
                    None,
                    format!("commit {v} is not signed"),
                ),
                Some(sig) if !key.verifies(&r.canonical_bytes(), sig) => {
                    self.problem(
                        t,
                        FindingKind::SignatureWrong,
                        Some(v),
                        None,
                        format!(
                            "commit {v}: the signature is not by public key {} (signed by {})",
                            key.hex(),
                            found.signer.as_deref().unwrap_or("an unnamed key")
                        ),
                    );
                }
                Some(_) => {}
            }
        }
        if !r.removes.is_empty() {
            self.removals.push(Removal {
                table: t.name(),
                version: v,
                operation: r.operation.clone(),
                files: r.removes.len(),
            });
        }
        Some(r.digest())
    }

    fn learn(&mut self, v: i64, p: &ParsedCommit) {
        let digests: HashMap<&str, &str> = p
            .found
            .iter()
            .flat_map(|f| f.record.adds.iter())
            .map(|d| (d.path.as_str(), d.sha256.as_str()))
            .collect();
        for a in &p.adds {
            self.known.insert(
                a.path.clone(),
                Known {
                    version: v,
                    sha256: digests.get(a.path.as_str()).map(|d| d.to_string()),
                    added_ms: p.timestamp_ms,
                },
            );
        }
        for r in &p.removes {
            self.removed_by.insert(r.clone(), v);
        }
    }
}

/// How a commit's actions differ from its record, if they do.
fn actions_mismatch(p: &ParsedCommit) -> Option<String> {
    let r = &p.found.as_ref()?.record;
    let mut logged: Vec<FileDigest> = p
        .adds
        .iter()
        .map(|a| FileDigest {
            partition: a.partition.clone(),
            path: a.path.clone(),
            sha256: String::new(),
            size: a.size,
            stats_sha256: chain::sha256_hex(a.stats.as_bytes()),
        })
        .collect();
    logged.sort_by(|a, b| a.path.cmp(&b.path));
    if logged.len() != r.adds.len() {
        return Some(format!(
            "its log adds {} file(s), its link names {}",
            logged.len(),
            r.adds.len()
        ));
    }
    for (l, d) in logged.iter().zip(&r.adds) {
        let what = if l.path != d.path {
            "path"
        } else if l.size != d.size {
            "size"
        } else if l.partition != d.partition {
            "partition"
        } else if l.stats_sha256 != d.stats_sha256 {
            "statistics"
        } else {
            continue;
        };
        return Some(format!(
            "the {what} of its add of {} differs from its link",
            d.path
        ));
    }
    let mut removes = p.removes.clone();
    removes.sort_unstable();
    if removes != r.removes {
        return Some("its removes differ from its link".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::{Commit, Operation};
    use crate::Location;

    fn add(wh: &Warehouse, dir: &std::path::Path, name: &str, bytes: &[u8]) -> NewFile {
        crate::warehouse::tests::staged_file(wh, Table::Decisions, dir, name, bytes)
    }

    #[test]
    fn a_commit_from_a_stale_snapshot_links_to_the_latest_and_conflicting_removals_fail() {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::new(Location::from(dir.path().join("wh").as_path())).unwrap();
        let base = crate::block_on(wh.open_for_write(Table::Decisions)).unwrap();
        let mut c = Commit::new(Operation::Append);
        c.adds
            .push(add(&wh, dir.path(), "part-a.parquet", b"first"));
        let v1 = crate::block_on(wh.commit(&base, c)).unwrap();
        // The same stale base again: the commit lands at version 2, linked to version 1.
        let mut c = Commit::new(Operation::Append);
        c.adds
            .push(add(&wh, dir.path(), "part-b.parquet", b"second"));
        let v2 = crate::block_on(wh.commit(&base, c)).unwrap();
        assert_eq!((v1.version, v2.version), (1, 2));
        let bytes = crate::block_on(wh.commit_bytes(Table::Decisions, 2)).unwrap();
        let found = chain::record_in(&bytes).unwrap().unwrap();
        assert_eq!(found.record.version, 2);
        assert_eq!(
            found.record.prev,
            crate::block_on(wh.link_digest(Table::Decisions, 1)).unwrap()
        );
        assert_eq!(found.record.adds[0].sha256, chain::sha256_hex(b"second"));
        let snap = crate::block_on(wh.snapshot(None)).unwrap();
        let r = crate::block_on(wh.verify(&snap, &VerifyOptions::default())).unwrap();
        assert!(r.ok, "{r:?}");
        assert_eq!(r.decisions().unwrap().links, 2);
        assert_eq!(r.decisions().unwrap().bytes_hashed, 11);

        // Two compactions of the same file from one snapshot: the second is refused.
        let removes: Vec<_> = v2
            .files
            .iter()
            .filter(|f| f.path.ends_with("part-a.parquet"))
            .cloned()
            .collect();
        let mut c = Commit::new(Operation::Compact);
        c.removes = removes.clone();
        c.adds
            .push(add(&wh, dir.path(), "part-c.parquet", b"first"));
        crate::block_on(wh.commit(&v2, c)).unwrap();
        let mut c = Commit::new(Operation::Compact);
        c.removes = removes;
        c.adds
            .push(add(&wh, dir.path(), "part-d.parquet", b"first"));
        let err = crate::block_on(wh.commit(&v2, c)).unwrap_err();
        assert!(
            matches!(&err, Error::Conflict { version: 3, path, .. } if path.ends_with("part-a.parquet")),
            "{err}"
        );
        // part-d was put but never committed: verify names it as added outside verdict.
        let snap = crate::block_on(wh.snapshot(None)).unwrap();
        let r = crate::block_on(wh.verify(&snap, &VerifyOptions::default())).unwrap();
        assert_eq!(r.problems.len(), 1, "{r:?}");
        assert_eq!(r.problems[0].kind, FindingKind::FileAdded);
        assert_eq!(
            r.problems[0].path.as_deref(),
            Some("day=2026-11-02/part-d.parquet")
        );
        assert_eq!(r.removals.len(), 1);
        assert_eq!(r.removals[0].operation, "compact");
    }
}
