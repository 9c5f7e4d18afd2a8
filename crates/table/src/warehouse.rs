//! [`Warehouse`]: the tables under one root, their snapshots and commits.
//!
//! Every write is one Delta commit per table, made with a conditional put of the next log entry
//! (no lock: two writers never both win a version; the loser re-checks and retries). Data files
//! are written first (invisible until a commit names them); a file no commit names is removed by
//! `vacuum` once older than the retention period.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path as StdPath, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deltalake::checkpoints;
use deltalake::kernel::transaction::{
    CommitBuilder, CommitProperties, FinalizedCommit, TableReference,
};
use deltalake::kernel::{Action, Add, Remove, Transaction};
use deltalake::logstore::{default_logstore, LogStoreRef, StorageConfig};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::table::config::TablePropertiesExt;
use deltalake::table::state::DeltaTableState;
use deltalake::{DeltaTable, DeltaTableError, TableProperty};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::Value;

use crate::chain::{self, ChainRecord, SigningKey};
use crate::error::{Error, Result};
use crate::location::Location;
use crate::store::FileEntry;
use crate::tables::Table;

/// The app transaction id with which a derived table records the `decisions` version it covers.
pub const COVERS_APP_ID: &str = "verdict.covers";

/// A table version to read instead of the latest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsOf {
    /// A `decisions` version number.
    Version(i64),
    /// The versions current at this instant.
    Timestamp(DateTime<Utc>),
}

impl std::str::FromStr for AsOf {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if let Ok(v) = s.parse::<i64>() {
            if v < 0 {
                return Err(Error::AsOf {
                    value: s.into(),
                    message: "a version is 0 or more".into(),
                });
            }
            return Ok(AsOf::Version(v));
        }
        let micros = verdict_schema::time::parse_rfc3339_micros(s)
            .or_else(|| {
                chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(|t| t.and_utc().timestamp_micros())
            })
            .ok_or_else(|| Error::AsOf {
                value: s.into(),
                message: "give a version number or an RFC 3339 timestamp (2026-11-02T10:00:00Z)"
                    .into(),
            })?;
        DateTime::from_timestamp_micros(micros)
            .map(AsOf::Timestamp)
            .ok_or_else(|| Error::AsOf {
                value: s.into(),
                message: "out of range".into(),
            })
    }
}

/// One table as of one version.
#[derive(Debug, Clone)]
pub struct TableSnapshot {
    /// Which table.
    pub table: Table,
    /// Its version.
    pub version: i64,
    /// Its data files.
    pub files: Vec<FileEntry>,
    state: DeltaTableState,
    log_store: LogStoreRef,
    /// The version `state` was read whole at (from the latest checkpoint and the commits after
    /// it); commits since were applied to it one by one.
    read_at: i64,
    /// App transactions this version is known to hold without reading the log: those of the
    /// commits this snapshot was made by, since the table was last committed by another writer.
    known_txns: BTreeMap<String, i64>,
}

impl TableSnapshot {
    /// Rows in the snapshot (from the files' statistics).
    pub fn rows(&self) -> u64 {
        self.files.iter().filter_map(|f| f.rows).sum()
    }

    /// The version of an app transaction recorded in the table (a collector's file offset, the
    /// `decisions` version a derived table covers).
    ///
    /// # Errors
    /// When the log cannot be read.
    pub async fn app_version(&self, app_id: &str) -> Result<Option<i64>> {
        if let Some(v) = self.known_txns.get(app_id) {
            return Ok(Some(*v));
        }
        self.state
            .transaction_version(self.log_store.as_ref(), app_id)
            .await
            .map_err(|e| delta_err(&self.log_store, self.table, e))
    }

    /// The files of one partition value (`2026-11-02`).
    pub fn partition_files<'a>(&'a self, value: &'a str) -> impl Iterator<Item = &'a FileEntry> {
        self.files
            .iter()
            .filter(move |f| f.partition.as_deref() == Some(value))
    }

    /// The `stats` JSON of each file, by path.
    pub(crate) fn stats_by_path(&self) -> HashMap<String, String> {
        self.state
            .log_data()
            .iter()
            .map(|f| (f.path().to_string(), f.stats().unwrap_or_default()))
            .collect()
    }

    /// The commit timestamp of this version (ms).
    pub fn timestamp_ms(&self) -> Option<i64> {
        self.timestamp_of(self.version)
    }

    /// The commit timestamp of an earlier version (ms), when the loaded log still lists it.
    pub fn timestamp_of(&self, version: i64) -> Option<i64> {
        u64::try_from(version)
            .ok()
            .and_then(|v| self.state.version_timestamp(v))
    }
}

pub(crate) fn delta_err(ls: &LogStoreRef, table: Table, e: DeltaTableError) -> Error {
    Error::Delta {
        location: ls.root_url().to_string(),
        table: table.name(),
        source: Box::new(e),
    }
}

/// How many commits a writer applies to a table it read before it writes a checkpoint and reads
/// the table again from it (see [`Warehouse::commit`]).
const REREAD_AFTER: i64 = 20;

/// How many times a chained commit is tried before giving up.
const COMMIT_ATTEMPTS: u32 = 30;

/// Whether a commit failed only because another writer took its version first.
fn lost_race(e: &DeltaTableError) -> bool {
    use deltalake::kernel::transaction::TransactionError;
    matches!(
        e,
        DeltaTableError::VersionAlreadyExists(_)
            | DeltaTableError::Transaction {
                source: TransactionError::MaxCommitAttempts(_)
                    | TransactionError::VersionAlreadyExists(_)
            }
    )
}

fn record_operation(c: &Commit) -> String {
    match (
        c.operation,
        c.info.get("verdict.operation").and_then(Value::as_str),
    ) {
        (Operation::Append, Some(named)) => named.to_string(),
        (op, _) => op.name().to_string(),
    }
}

fn sorted_paths(files: &[FileEntry]) -> Vec<String> {
    let mut v: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    v.sort_unstable();
    v
}

fn commit_actions(c: &Commit, part: &Option<String>, now: i64) -> Vec<Action> {
    let data_change = c.operation != Operation::Compact;
    let mut actions = Vec::with_capacity(c.adds.len() + c.removes.len());
    for f in &c.removes {
        actions.push(Action::Remove(Remove {
            path: f.path.clone(),
            data_change,
            deletion_timestamp: Some(now),
            extended_file_metadata: Some(true),
            partition_values: Some(partition_values(part, f.partition.as_deref())),
            size: Some(f.size as i64),
            tags: None,
            deletion_vector: None,
            base_row_id: None,
            default_row_commit_version: None,
        }));
    }
    for f in &c.adds {
        actions.push(Action::Add(Add {
            path: f.path.clone(),
            partition_values: partition_values(part, f.partition.as_deref()),
            size: f.size as i64,
            modification_time: now,
            data_change,
            stats: Some(f.stats.clone()),
            tags: None,
            deletion_vector: None,
            base_row_id: None,
            default_row_commit_version: None,
            clustering_provider: None,
        }));
    }
    actions
}

/// A file to add in a commit.
#[derive(Debug, Clone)]
pub struct NewFile {
    /// Path relative to the table root.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// Rows.
    pub rows: u64,
    /// The partition value.
    pub partition: Option<String>,
    /// The statistics JSON.
    pub stats: String,
}

/// What a commit does to a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Adds rows.
    Append,
    /// Rewrites files without changing rows (`dataChange=false`).
    Compact,
    /// Replaces every file of a derived table with a recomputation.
    Rebuild,
    /// Brings the table back to the files of an earlier version.
    Restore(i64),
    /// Removes files `doctor` found damaged or lost.
    RemoveDamaged,
    /// Deletes the rows of one subject on request (erasure), recorded with who asked, why, how
    /// many rows and the digests of the files removed.
    Erase,
    /// Removes data older than a retention period (whole days; files rewritten without the
    /// old rows where a file spans days). The commit info says who, why and what went.
    Retention,
    /// Replaces one subject's identifiers by keyed pseudonyms, keeping every row.
    Pseudonymise,
}

impl Operation {
    /// Its name in the integrity chain's record.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Append => "append",
            Operation::Compact => "compact",
            Operation::Rebuild => "rebuild",
            Operation::Restore(_) => "restore",
            Operation::RemoveDamaged => "remove_damaged",
            Operation::Erase => "erase",
            Operation::Retention => "retention",
            Operation::Pseudonymise => "pseudonymise",
        }
    }

    fn delta(self, part: &Option<String>) -> DeltaOperation {
        let partition_by = part.clone().map(|p| vec![p]);
        match self {
            Operation::Append => DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by,
                predicate: None,
            },
            Operation::Rebuild => DeltaOperation::Write {
                mode: SaveMode::Overwrite,
                partition_by,
                predicate: None,
            },
            Operation::Compact => DeltaOperation::Optimize {
                predicate: None,
                target_size: 0,
            },
            Operation::Restore(v) => DeltaOperation::Restore {
                version: u64::try_from(v).ok(),
                datetime: None,
            },
            // What was removed is in the commit info, never in a predicate: an erased value
            // must not be written into the log.
            Operation::RemoveDamaged | Operation::Erase | Operation::Retention => {
                DeltaOperation::Delete { predicate: None }
            }
            Operation::Pseudonymise => DeltaOperation::Update { predicate: None },
        }
    }
}

/// One commit to one table.
#[derive(Debug, Clone)]
pub struct Commit {
    /// What it does.
    pub operation: Operation,
    /// Files it adds.
    pub adds: Vec<NewFile>,
    /// Files it removes.
    pub removes: Vec<FileEntry>,
    /// App transactions (id, version) it records.
    pub app_txns: Vec<(String, i64)>,
    /// Fields of its commit info (`verdict.txn`, `verdict.rows`, inputs ...).
    pub info: serde_json::Map<String, Value>,
}

impl Commit {
    /// An empty commit of this kind.
    pub fn new(operation: Operation) -> Self {
        Self {
            operation,
            adds: Vec::new(),
            removes: Vec::new(),
            app_txns: Vec::new(),
            info: serde_json::Map::new(),
        }
    }
}

/// The warehouse at one location.
#[derive(Debug, Clone)]
pub struct Warehouse {
    loc: Location,
    root: Arc<dyn ObjectStore>,
    signer: Option<SigningKey>,
}

impl Warehouse {
    /// The warehouse at `loc` (no I/O).
    ///
    /// # Errors
    /// When the object store cannot be configured.
    pub fn new(loc: Location) -> Result<Self> {
        // The Delta log reader decodes a table's path again: an escaped character (a space, a
        // bracket, non-ASCII, `%`) would name another directory. Refuse rather than misread.
        if loc.url().path().contains('%') {
            return Err(Error::Location {
                location: loc.to_string(),
                message: "spaces, brackets, `%` and non-ASCII characters are not supported in the \
                          warehouse path; rename the directory"
                    .into(),
            });
        }
        let root = loc.root_store()?;
        Ok(Self {
            loc,
            root,
            signer: None,
        })
    }

    /// The same warehouse, signing each link of the integrity chain it commits with `key`.
    #[must_use]
    pub fn with_signing_key(mut self, key: Option<SigningKey>) -> Self {
        self.signer = key;
        self
    }

    /// The key that signs its links, if any.
    pub fn signing_key(&self) -> Option<&SigningKey> {
        self.signer.as_ref()
    }

    /// Where it is.
    pub fn location(&self) -> &Location {
        &self.loc
    }

    fn table_prefix(&self, t: Table) -> Path {
        self.loc.root_path().join(t.name())
    }

    /// The store rooted at a table's directory.
    pub fn table_store(&self, t: Table) -> Arc<dyn ObjectStore> {
        Arc::new(PrefixStore::new(self.root.clone(), self.table_prefix(t)))
    }

    /// The URL of a table's directory (`s3://bucket/audit/decisions/`): where a query engine on
    /// another machine finds the table's files, in the store [`Location::url`] names.
    pub fn table_url(&self, t: Table) -> url::Url {
        self.loc.child_url(t.name())
    }

    /// The store rooted at the warehouse root.
    pub fn root_store(&self) -> Arc<dyn ObjectStore> {
        Arc::new(PrefixStore::new(self.root.clone(), self.loc.root_path()))
    }

    pub(crate) fn log_store(&self, t: Table) -> LogStoreRef {
        default_logstore(
            self.table_store(t),
            self.root.clone(),
            &self.loc.child_url(t.name()),
            &StorageConfig::default(),
        )
    }

    /// The local path of a table file, when the warehouse is on local disk.
    pub fn local_path(&self, t: Table, rel: &str) -> Option<PathBuf> {
        self.loc.local_root().map(|r| r.join(t.name()).join(rel))
    }

    /// Loads a table at its latest version or `as_of`; `None` when the table was never created.
    ///
    /// # Errors
    /// When its log cannot be read, or `as_of` is before its first version.
    pub async fn load(&self, t: Table, as_of: Option<&AsOf>) -> Result<Option<TableSnapshot>> {
        let ls = self.log_store(t);
        let mut table = DeltaTable::new(ls.clone());
        if !table
            .verify_deltatable_existence()
            .await
            .map_err(|e| delta_err(&ls, t, e))?
        {
            return Ok(None);
        }
        let r = match as_of {
            None => table.load().await,
            Some(AsOf::Version(v)) => table.load_version(*v as u64).await,
            Some(AsOf::Timestamp(ts)) => table.load_with_datetime(*ts).await,
        };
        r.map_err(|e| delta_err(&ls, t, e))?;
        Ok(Some(self.snapshot_of(t, &table)?))
    }

    fn snapshot_of(&self, t: Table, table: &DeltaTable) -> Result<TableSnapshot> {
        let ls = table.log_store();
        let state = table.snapshot().map_err(|e| delta_err(&ls, t, e))?.clone();
        let read_at = state.version() as i64;
        Ok(state_snapshot(t, state, ls, read_at))
    }
}

fn state_snapshot(
    t: Table,
    state: DeltaTableState,
    ls: LogStoreRef,
    read_at: i64,
) -> TableSnapshot {
    let part = t.partition().map(|p| p.0);
    let files = state
        .log_data()
        .iter()
        .map(|f| {
            let path = f.path().to_string();
            FileEntry {
                txn: txn_of(&path),
                size: u64::try_from(f.size()).unwrap_or(0),
                modified_ms: f.modification_time(),
                rows: f.num_records().map(|n| n as u64),
                partition: part.and_then(|p| f.partition_values_map().remove(p).flatten()),
                path,
            }
        })
        .collect();
    TableSnapshot {
        table: t,
        version: state.version() as i64,
        files,
        state,
        log_store: ls,
        read_at,
        known_txns: BTreeMap::new(),
    }
}

impl Warehouse {
    /// Loads a table for writing, creating it when missing.
    ///
    /// # Errors
    /// When the table cannot be created or loaded.
    pub async fn open_for_write(&self, t: Table) -> Result<TableSnapshot> {
        if let Some(s) = self.load(t, None).await? {
            return Ok(s);
        }
        let ls = self.log_store(t);
        let mut b = DeltaTable::new(ls.clone())
            .create()
            .with_table_name(t.name())
            .with_columns(t.delta_fields()?)
            .with_save_mode(SaveMode::Ignore)
            .with_configuration_property(TableProperty::CheckpointInterval, Some("100"));
        if let Some((p, _)) = t.partition() {
            b = b.with_partition_columns(vec![p.to_string()]);
        }
        match b.await {
            Ok(table) => self.snapshot_of(t, &table),
            // Another writer created it first.
            Err(_) => self
                .load(t, None)
                .await?
                .ok_or_else(|| Error::Internal(format!("table {} vanished", t.name()))),
        }
    }

    /// [`Warehouse::open_for_write`] of several tables at once (a first ingest creates five).
    ///
    /// # Errors
    /// As [`Warehouse::open_for_write`], for the first table that fails.
    pub async fn open_many_for_write<const N: usize>(
        &self,
        tables: [Table; N],
    ) -> Result<[TableSnapshot; N]> {
        let all =
            futures::future::try_join_all(tables.iter().map(|t| self.open_for_write(*t))).await?;
        all.try_into()
            .map_err(|_| Error::Internal("a table was opened twice or not at all".into()))
    }

    /// Commits to a table read at `base`; returns the table after the commit.
    ///
    /// A commit to a chained table ([`Table::is_chained`]) carries its link of the integrity
    /// chain ([`crate::ChainRecord`]): the digests of the files it adds (read back from the
    /// store) and of the previous commit's record, signed when the warehouse has a signing key.
    /// Since the link names its version, such a commit is retried here (never by the Delta
    /// writer, which would reuse the bytes at a later version), each attempt at the version after
    /// the latest, after checking that no commit since `base` removed a file it removes.
    ///
    /// # Errors
    /// When the commit conflicts with a concurrent one that cannot be reconciled, or the store
    /// fails, or a file it adds cannot be read.
    pub async fn commit(&self, base: &TableSnapshot, c: Commit) -> Result<TableSnapshot> {
        let t = base.table;
        let now = chrono::Utc::now().timestamp_millis();
        let part = t.partition().map(|p| p.0.to_string());
        let actions = commit_actions(&c, &part, now);
        let operation = c.operation.delta(&part);
        let mut info = c.info.clone();
        info.insert(
            "verdict.version".into(),
            Value::from(env!("CARGO_PKG_VERSION")),
        );
        let props = |info: serde_json::Map<String, Value>| {
            CommitProperties::default()
                .with_metadata(info)
                // Expired log files are cleaned up where the table is read again (`committed`),
                // not at every commit: it lists the whole log.
                .with_cleanup_expired_logs(Some(false))
                .with_application_transactions(
                    c.app_txns
                        .iter()
                        .map(|(id, v)| Transaction::new_with_last_update(id, *v, Some(now)))
                        .collect(),
                )
        };
        let ls = &base.log_store;
        if !t.is_chained() {
            let reference: &dyn TableReference = &base.state;
            let done = CommitBuilder::from(props(info))
                .with_actions(actions)
                .build(Some(reference), ls.clone(), operation)
                .await
                .map_err(|e| delta_err(ls, t, e))?;
            return self.committed(base, &c, &done).await;
        }
        let adds = self.file_digests(t, &c.adds).await?;
        let mut read = base.state.clone();
        for _ in 0..COMMIT_ATTEMPTS {
            let head = ls
                .get_latest_version(read.version())
                .await
                .map_err(|e| delta_err(ls, t, e))?;
            if head > read.version() {
                self.check_removes(t, &c, read.version() as i64, head as i64)
                    .await?;
                read.update(ls.as_ref(), Some(head))
                    .await
                    .map_err(|e| delta_err(ls, t, e))?;
            }
            let record = ChainRecord {
                adds: adds.clone(),
                format: chain::FORMAT,
                operation: record_operation(&c),
                prev: self.link_digest(t, head as i64).await?,
                removes: sorted_paths(&c.removes),
                table: t.name().to_string(),
                version: head as i64 + 1,
            };
            let mut info = info.clone();
            if let Some(key) = &self.signer {
                info.insert(
                    chain::SIGNATURE_KEY.into(),
                    Value::from(key.sign_hex(&record.canonical_bytes())),
                );
                info.insert(
                    chain::SIGNER_KEY.into(),
                    Value::from(key.public_key().hex()),
                );
            }
            info.insert(
                chain::RECORD_KEY.into(),
                serde_json::to_value(&record).expect("a record serialises"),
            );
            let reference: &dyn TableReference = &read;
            let r = CommitBuilder::from(props(info).with_max_retries(0))
                .with_actions(actions.clone())
                .build(Some(reference), ls.clone(), operation.clone())
                .await;
            match r {
                Ok(done) => return self.committed(base, &c, &done).await,
                Err(e) if lost_race(&e) => continue,
                Err(e) => return Err(delta_err(ls, t, e)),
            }
        }
        Err(Error::Contended {
            table: t.name(),
            attempts: COMMIT_ATTEMPTS,
        })
    }

    /// The table after commit `done` to `base`.
    ///
    /// The state the Delta writer returns is `base`'s, with the commit applied: it holds the file
    /// list as one batch per commit applied since the table was read whole, and goes through all
    /// of them at every later commit. A collector committing every few seconds would make each
    /// commit slower and hold more memory, hour after hour (50 ms a commit at the start, 400 ms
    /// after 600 commits). So once [`REREAD_AFTER`] commits were applied, the table gets a
    /// checkpoint at this version, unless the commit wrote one, and is read again from it: one
    /// batch again. That is also where the log files the table's log retention lets go (30 days
    /// by default, before the latest checkpoint) are removed, which Delta writers otherwise do
    /// at every commit by listing the whole log.
    ///
    /// The app transactions of `c` (and of `base` when no other writer committed between) are
    /// kept, so that [`TableSnapshot::app_version`] answers them without replaying the log.
    async fn committed(
        &self,
        base: &TableSnapshot,
        c: &Commit,
        done: &FinalizedCommit,
    ) -> Result<TableSnapshot> {
        let (t, ls) = (base.table, &base.log_store);
        let version = done.version();
        let mut known_txns = if version as i64 == base.version + 1 {
            base.known_txns.clone()
        } else {
            BTreeMap::new()
        };
        known_txns.extend(c.app_txns.iter().cloned());
        let checkpointed = done.metrics.new_checkpoint_created;
        if checkpointed || (version as i64) - base.read_at >= REREAD_AFTER {
            match self.reread(t, ls, done, checkpointed).await {
                Ok(mut s) => {
                    s.known_txns = known_txns;
                    return Ok(s);
                }
                // The commit is done: a failure here only postpones the re-read to the next.
                Err(e) => tracing::warn!(
                    table = t.name(),
                    version,
                    error = %e,
                    "the table could not be read again after its commit; tried again at the next"
                ),
            }
        }
        let mut s = state_snapshot(t, done.snapshot(), ls.clone(), base.read_at);
        s.known_txns = known_txns;
        Ok(s)
    }

    /// Writes a checkpoint at commit `done` (unless it wrote one), removes the log files past
    /// the table's retention, and reads the table again at that version.
    async fn reread(
        &self,
        t: Table,
        ls: &LogStoreRef,
        done: &FinalizedCommit,
        checkpointed: bool,
    ) -> Result<TableSnapshot> {
        let version = done.version();
        let state = done.snapshot();
        let config = state.table_config();
        let cleanup = config.enable_expired_log_cleanup();
        let retention =
            i64::try_from(config.log_retention_duration().as_millis()).unwrap_or(i64::MAX);
        if !checkpointed {
            let mut table = DeltaTable::new(ls.clone());
            table.state = Some(state);
            checkpoints::create_checkpoint(&table, None)
                .await
                .map_err(|e| delta_err(ls, t, e))?;
        }
        if cleanup {
            let cutoff = chrono::Utc::now()
                .timestamp_millis()
                .saturating_sub(retention);
            checkpoints::cleanup_expired_logs_for(version, ls.as_ref(), cutoff, None)
                .await
                .map_err(|e| delta_err(ls, t, e))?;
        }
        let mut table = DeltaTable::new(ls.clone());
        table
            .load_version(version)
            .await
            .map_err(|e| delta_err(ls, t, e))?;
        self.snapshot_of(t, &table)
    }

    /// Fails when a commit in `(from, to]` removed a file `c` removes.
    async fn check_removes(&self, t: Table, c: &Commit, from: i64, to: i64) -> Result<()> {
        if c.removes.is_empty() {
            return Ok(());
        }
        for v in from + 1..=to {
            for a in self.commit_actions(t, v).await? {
                let Some(p) = a.pointer("/remove/path").and_then(Value::as_str) else {
                    continue;
                };
                if c.removes.iter().any(|f| f.path == p) {
                    return Err(Error::Conflict {
                        table: t.name(),
                        version: v,
                        path: p.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The digest a link names for commit `version`: of its record, or of its log file's
    /// bytes when it has none.
    pub(crate) async fn link_digest(&self, t: Table, version: i64) -> Result<String> {
        let bytes = self.commit_bytes(t, version).await?;
        match chain::record_in(&bytes) {
            Ok(Some(found)) => Ok(found.record.digest()),
            Ok(None) => Ok(chain::sha256_hex(&bytes)),
            Err(message) => Err(Error::Internal(format!(
                "{} commit {version}: {message}",
                t.name()
            ))),
        }
    }

    /// Writes a local file into a table's directory at `rel` (a rename on local disk, an upload
    /// to an object store). The file is invisible until a commit adds it.
    ///
    /// # Errors
    /// When the file cannot be moved or uploaded.
    pub async fn put_file(&self, t: Table, rel: &str, local: &StdPath) -> Result<()> {
        if let Some(dest) = self.local_path(t, rel) {
            if let Some(dir) = dest.parent() {
                std::fs::create_dir_all(dir).map_err(Error::io("creating", dir.display()))?;
            }
            if std::fs::rename(local, &dest).is_err() {
                std::fs::copy(local, &dest).map_err(Error::io("copying", dest.display()))?;
            }
            return Ok(());
        }
        let bytes = std::fs::read(local).map_err(Error::io("reading", local.display()))?;
        let store = self.table_store(t);
        let path = Path::from(rel);
        store
            .put(&path, bytes.into())
            .await
            .map_err(Error::store("uploading", format!("{}/{rel}", t.name())))?;
        Ok(())
    }

    /// Reads a whole data file.
    ///
    /// # Errors
    /// A missing file, or a store failure.
    pub async fn read_file(&self, t: Table, rel: &str) -> Result<bytes::Bytes> {
        let store = self.table_store(t);
        let r = store
            .get(&Path::from(rel))
            .await
            .map_err(Error::store("reading", format!("{}/{rel}", t.name())))?;
        r.bytes()
            .await
            .map_err(Error::store("reading", format!("{}/{rel}", t.name())))
    }

    /// A directory for files being written before they are put in place: under
    /// `_verdict/staging/` on local disk (same filesystem, so putting is a rename), else a
    /// temporary directory. Removed when dropped.
    ///
    /// # Errors
    /// When it cannot be created.
    pub fn staging(&self) -> Result<tempfile::TempDir> {
        match self.loc.local_root() {
            Some(root) => {
                let base = root.join("_verdict").join("staging");
                std::fs::create_dir_all(&base).map_err(Error::io("creating", base.display()))?;
                tempfile::Builder::new()
                    .prefix("txn-")
                    .tempdir_in(&base)
                    .map_err(Error::io("creating", base.display()))
            }
            None => tempfile::Builder::new()
                .prefix("verdict-staging-")
                .tempdir()
                .map_err(Error::io("creating", "a temporary directory")),
        }
    }

    /// Whether `decisions` changed data (a commit adding rows) in versions `(from, to]`.
    ///
    /// # Errors
    /// When a commit of the range cannot be read.
    pub async fn data_changed(&self, from: i64, to: i64) -> Result<bool> {
        let (adds, removes) = self.changes_between(Table::Decisions, from, to).await?;
        Ok(!adds.is_empty() || removes)
    }

    /// The data files (`dataChange=true`) that commits `(from, to]` of a table added, and
    /// whether any of them removed data (a restore, a removal of damaged files).
    ///
    /// # Errors
    /// When a commit of the range cannot be read (for example removed by log cleanup).
    pub async fn changes_between(
        &self,
        t: Table,
        from: i64,
        to: i64,
    ) -> Result<(Vec<String>, bool)> {
        let mut out = Vec::new();
        let mut removes = false;
        let changes = |x: &Value| x.get("dataChange").and_then(Value::as_bool) == Some(true);
        for v in (from + 1).max(0)..=to {
            for a in self.commit_actions(t, v).await? {
                if let Some(add) = a.get("add").filter(|x| changes(x)) {
                    if let Some(p) = add.get("path").and_then(Value::as_str) {
                        out.push(p.to_string());
                    }
                }
                if a.get("remove").is_some_and(changes) {
                    removes = true;
                }
            }
        }
        Ok((out, removes))
    }

    /// The files of `source` that its commits after version `covered` added, when every one of
    /// them is still in `source` and none of those commits removed data: what a table derived
    /// from `source` (a rollup, a key index) must take in to cover `source`'s version. `None`
    /// when the derived table must be recomputed whole instead: it covers nothing yet, or a
    /// later version, or rows were removed since (a restore, retention, erasure, damaged files
    /// removed), or a file added since was compacted away.
    ///
    /// # Errors
    /// When a commit of the range cannot be read.
    pub async fn added_since<'a>(
        &self,
        source: &'a TableSnapshot,
        covered: Option<i64>,
    ) -> Result<Option<Vec<&'a FileEntry>>> {
        let Some(v) = covered.filter(|v| *v <= source.version) else {
            return Ok(None);
        };
        let (added, removed) = self
            .changes_between(source.table, v, source.version)
            .await?;
        let added: std::collections::HashSet<&str> = added.iter().map(String::as_str).collect();
        let files: Vec<&FileEntry> = source
            .files
            .iter()
            .filter(|f| added.contains(f.path.as_str()))
            .collect();
        Ok((!removed && files.len() == added.len()).then_some(files))
    }

    /// The actions of one commit, as JSON objects.
    ///
    /// # Errors
    /// When the commit does not exist any more or cannot be read.
    pub async fn commit_actions(&self, t: Table, version: i64) -> Result<Vec<Value>> {
        let bytes = self.commit_bytes(t, version).await?;
        let text = String::from_utf8_lossy(&bytes);
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .map_err(|e| Error::Internal(format!("{} commit {version}: {e}", t.name())))
            })
            .collect()
    }

    /// The bytes of one commit's log file.
    ///
    /// # Errors
    /// When the commit does not exist any more or cannot be read.
    pub async fn commit_bytes(&self, t: Table, version: i64) -> Result<bytes::Bytes> {
        self.try_commit_bytes(t, version)
            .await?
            .ok_or_else(|| Error::Internal(format!("{}: no commit {version} in the log", t.name())))
    }

    /// The bytes of one commit's log file, `None` when the log holds no such commit.
    pub(crate) async fn try_commit_bytes(
        &self,
        t: Table,
        version: i64,
    ) -> Result<Option<bytes::Bytes>> {
        let ls = self.log_store(t);
        let Ok(v) = u64::try_from(version) else {
            return Ok(None);
        };
        ls.read_commit_entry(v)
            .await
            .map_err(|e| delta_err(&ls, t, e))
    }

    /// Lists the files under a table's directory (for vacuum and doctor).
    ///
    /// # Errors
    /// When the listing fails.
    pub async fn list_files(&self, t: Table) -> Result<Vec<(String, u64)>> {
        let store = self.table_store(t);
        let metas: Vec<_> = store
            .list(None)
            .try_collect()
            .await
            .map_err(Error::store("listing", t.name()))?;
        Ok(metas
            .into_iter()
            .map(|m| (m.location.to_string(), m.size))
            .filter(|(p, _)| !p.starts_with("_delta_log"))
            .collect())
    }
}

fn partition_values(col: &Option<String>, v: Option<&str>) -> HashMap<String, Option<String>> {
    col.iter()
        .map(|c| (c.clone(), v.map(str::to_string)))
        .collect()
}

/// The verdict transaction in a data file's name (`.../part-<txn>-<n>.parquet`,
/// `.../part-<txn>.parquet`).
pub(crate) fn txn_of(path: &str) -> Option<String> {
    let name = path.rsplit('/').next()?;
    let stem = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    match stem.rsplit_once('-') {
        Some((t, n)) if n.len() == 4 && n.bytes().all(|b| b.is_ascii_digit()) => {
            Some(t.to_string())
        }
        _ => Some(stem.to_string()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::Location;

    /// Puts `bytes` in table `t` as `day=2026-11-02/<name>` (written in `dir` first), one row by
    /// its statistics: the file a test commit adds.
    pub(crate) fn staged_file(
        wh: &Warehouse,
        t: Table,
        dir: &StdPath,
        name: &str,
        bytes: &[u8],
    ) -> NewFile {
        let local = dir.join(name);
        std::fs::write(&local, bytes).unwrap();
        let path = format!("day=2026-11-02/{name}");
        crate::block_on(wh.put_file(t, &path, &local)).unwrap();
        NewFile {
            path,
            size: bytes.len() as u64,
            rows: 1,
            partition: Some("2026-11-02".into()),
            stats: "{\"numRecords\":1}".into(),
        }
    }

    /// A commit adding one small file (`name`) to `t`, with `txns`.
    fn append(wh: &Warehouse, t: Table, dir: &StdPath, name: &str, txns: &[(&str, i64)]) -> Commit {
        let mut c = Commit::new(Operation::Append);
        c.adds.push(staged_file(wh, t, dir, name, name.as_bytes()));
        c.app_txns = txns.iter().map(|(id, v)| ((*id).to_string(), *v)).collect();
        c
    }

    /// A warehouse in a new temporary directory (its `wh` subdirectory).
    fn warehouse() -> (tempfile::TempDir, Warehouse) {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::new(Location::from(dir.path().join("wh").as_path())).unwrap();
        (dir, wh)
    }

    fn log_dir(dir: &tempfile::TempDir, t: Table) -> PathBuf {
        dir.path().join("wh").join(t.name()).join("_delta_log")
    }

    fn paths(s: &TableSnapshot) -> Vec<String> {
        sorted_paths(&s.files)
    }

    #[test]
    fn a_writer_reads_its_tables_again_from_a_checkpoint_every_so_many_commits() {
        let (dir, wh) = warehouse();
        // A chained table and one that is not: their commits take different paths.
        for t in [Table::Decisions, Table::RollupHour] {
            let mut s = crate::block_on(wh.open_for_write(t)).unwrap();
            let n = REREAD_AFTER + 3;
            for i in 1..=n {
                let c = append(
                    &wh,
                    t,
                    dir.path(),
                    &format!("{}-{i}", t.name()),
                    &[("app", i)],
                );
                s = crate::block_on(wh.commit(&s, c)).unwrap();
                assert_eq!(s.version, i);
                // Read whole at creation, then again at the commit that came to REREAD_AFTER.
                let expect = if i < REREAD_AFTER { 0 } else { REREAD_AFTER };
                assert_eq!(s.read_at, expect, "{} after commit {i}", t.name());
                // The app transaction is answered from the commits (the log's is checked below).
                assert_eq!(crate::block_on(s.app_version("app")).unwrap(), Some(i));
            }
            let log = log_dir(&dir, t);
            let checkpoint = format!("{REREAD_AFTER:020}.checkpoint.parquet");
            assert!(
                log.join(&checkpoint).is_file(),
                "{}: no {checkpoint}",
                t.name()
            );
            let fresh = crate::block_on(wh.load(t, None)).unwrap().unwrap();
            assert_eq!(fresh.version, n);
            assert_eq!(paths(&s), paths(&fresh));
            assert_eq!(s.files.len(), n as usize);
            assert_eq!(s.rows(), n as u64);
            assert_eq!(crate::block_on(fresh.app_version("app")).unwrap(), Some(n));
        }
    }

    #[test]
    fn expired_log_files_are_removed_where_the_table_is_read_again_not_at_every_commit() {
        let (dir, wh) = warehouse();
        let t = Table::RollupHour;
        let log = log_dir(&dir, t);
        let commit_file = |v: i64| log.join(format!("{v:020}.json"));
        let mut s = crate::block_on(wh.open_for_write(t)).unwrap();
        let commit = |s: &TableSnapshot, i: i64| {
            let c = append(&wh, t, dir.path(), &format!("f{i}"), &[]);
            crate::block_on(wh.commit(s, c)).unwrap()
        };
        let aged = REREAD_AFTER + 5;
        for i in 1..=aged {
            s = commit(&s, i);
        }
        // The commits up to `aged` age past the log retention (30 days by default): those
        // before the checkpoint at REREAD_AFTER can go, the rest is needed to read the table
        // as of them.
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(40 * 86_400);
        for v in 0..=aged {
            let f = std::fs::File::options()
                .write(true)
                .open(commit_file(v))
                .unwrap();
            f.set_modified(old).unwrap();
        }
        for i in aged + 1..2 * REREAD_AFTER {
            s = commit(&s, i);
            assert!(commit_file(0).is_file(), "removed at commit {i}");
        }
        s = commit(&s, 2 * REREAD_AFTER);
        assert_eq!(s.read_at, 2 * REREAD_AFTER);
        for v in 0..REREAD_AFTER {
            assert!(!commit_file(v).exists(), "version {v} kept");
        }
        for v in REREAD_AFTER..=2 * REREAD_AFTER {
            assert!(commit_file(v).is_file(), "version {v} removed");
        }
        let fresh = crate::block_on(wh.load(t, None)).unwrap().unwrap();
        assert_eq!(paths(&fresh), paths(&s));
        assert_eq!(fresh.files.len(), 2 * REREAD_AFTER as usize);
    }

    #[test]
    fn a_re_read_that_fails_leaves_the_commit_done_and_is_tried_at_the_next() {
        let (dir, wh) = warehouse();
        let t = Table::Decisions;
        let log = log_dir(&dir, t);
        let mut s = crate::block_on(wh.open_for_write(t)).unwrap();
        for i in 1..REREAD_AFTER {
            let c = append(&wh, t, dir.path(), &format!("f{i}"), &[("app", i)]);
            s = crate::block_on(wh.commit(&s, c)).unwrap();
        }
        // The checkpoint at REREAD_AFTER cannot be written: a directory is in its place.
        let blocked = log.join(format!("{REREAD_AFTER:020}.checkpoint.parquet"));
        std::fs::create_dir_all(blocked.join("in-the-way")).unwrap();
        let c = append(&wh, t, dir.path(), "f-blocked", &[("app", REREAD_AFTER)]);
        s = crate::block_on(wh.commit(&s, c)).unwrap();
        assert_eq!((s.version, s.read_at), (REREAD_AFTER, 0));
        assert_eq!(s.files.len(), REREAD_AFTER as usize);
        assert_eq!(
            crate::block_on(s.app_version("app")).unwrap(),
            Some(REREAD_AFTER)
        );
        // The next commit writes its checkpoint and reads the table again.
        let c = append(&wh, t, dir.path(), "f-next", &[]);
        s = crate::block_on(wh.commit(&s, c)).unwrap();
        assert_eq!((s.version, s.read_at), (REREAD_AFTER + 1, REREAD_AFTER + 1));
        assert!(log
            .join(format!("{:020}.checkpoint.parquet", REREAD_AFTER + 1))
            .is_file());
        let fresh = crate::block_on(wh.load(t, None)).unwrap().unwrap();
        assert_eq!(paths(&s), paths(&fresh));
        assert_eq!(
            crate::block_on(s.app_version("app")).unwrap(),
            Some(REREAD_AFTER)
        );
    }

    #[test]
    fn app_transactions_known_from_commits_give_way_to_another_writers() {
        let (dir, wh) = warehouse();
        for t in [Table::Decisions, Table::RollupHour] {
            let base = crate::block_on(wh.open_for_write(t)).unwrap();
            let name = |n: &str| format!("{}-{n}", t.name());
            let c = append(&wh, t, dir.path(), &name("a"), &[("app", 1), ("other", 5)]);
            let a = crate::block_on(wh.commit(&base, c)).unwrap();
            assert_eq!(a.known_txns.get("app"), Some(&1));
            // Another writer, from the same version, records app 7.
            let c = append(&wh, t, dir.path(), &name("b"), &[("app", 7)]);
            let b = crate::block_on(wh.commit(&a, c)).unwrap();
            assert_eq!(b.known_txns.get("other"), Some(&5), "kept: nothing between");
            // This writer commits again from `a`: it lands after `b`, so what it knew from `a`
            // is not trusted; the log answers.
            let c = append(&wh, t, dir.path(), &name("c"), &[]);
            let after = crate::block_on(wh.commit(&a, c)).unwrap();
            assert_eq!(after.version, 3);
            assert!(after.known_txns.is_empty(), "{:?}", after.known_txns);
            assert_eq!(crate::block_on(after.app_version("app")).unwrap(), Some(7));
            assert_eq!(
                crate::block_on(after.app_version("other")).unwrap(),
                Some(5)
            );
            assert_eq!(paths(&after).len(), 3);
        }
    }
}
