//! [`Snapshot`]: what one command reads. `decisions` at one version (the latest, or `--as-of`),
//! the quarantine as it was then, and the rollups only where they hold exactly the rows of that
//! `decisions` version. Reading never writes.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::store::SnapshotStore;
use crate::tables::Table;
use crate::warehouse::{AsOf, TableSnapshot, Warehouse, COVERS_APP_ID};

/// A consistent read view of the warehouse.
#[derive(Debug, Clone)]
pub struct Snapshot {
    warehouse: Warehouse,
    /// `decisions` at the version read; `None` when nothing was ever committed.
    pub decisions: Option<TableSnapshot>,
    /// The rollups that hold exactly the rows of `decisions` (finest first).
    pub rollups: Vec<TableSnapshot>,
    /// The quarantine as of the same moment.
    pub quarantine: Option<TableSnapshot>,
}

impl Warehouse {
    /// Reads the warehouse as of now or `as_of`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a local directory that does not exist; a log that cannot be
    /// read; an `as_of` before the first commit.
    pub async fn snapshot(&self, as_of: Option<&AsOf>) -> Result<Snapshot> {
        if let Some(root) = self.location().local_root() {
            if !root.is_dir() {
                return Err(Error::NotFound {
                    location: self.location().to_string(),
                });
            }
        }
        // The latest versions: the four logs are read at once (a report's fixed cost). As of a
        // version or time: `decisions` first, then the others as of the moment of the version read.
        let (decisions, quarantine, derived) = if as_of.is_none() {
            let (d, q, m, h) = futures::join!(
                self.load(Table::Decisions, None),
                self.load(Table::Quarantine, None),
                self.load(Table::RollupMinute, None),
                self.load(Table::RollupHour, None),
            );
            (d?, q?, [m, h])
        } else {
            let decisions = self.load(Table::Decisions, as_of).await?;
            if decisions.is_none() {
                return Err(Error::NotFound {
                    location: self.location().to_string(),
                });
            }
            let moment = decisions
                .as_ref()
                .and_then(TableSnapshot::timestamp_ms)
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(AsOf::Timestamp);
            let quarantine = match self.load(Table::Quarantine, moment.as_ref()).await {
                Ok(q) => q,
                // The quarantine did not exist yet at that moment.
                Err(_) if moment.is_some() => None,
                Err(e) => return Err(e),
            };
            let minute = self.load(Table::RollupMinute, moment.as_ref()).await;
            let hour = self.load(Table::RollupHour, moment.as_ref()).await;
            (decisions, quarantine, [minute, hour])
        };
        let mut rollups = Vec::new();
        if let Some(d) = &decisions {
            for r in derived {
                // A rollup that cannot be read, or does not exist, is not used.
                let Ok(Some(r)) = r else { continue };
                if self.covers(&r, d).await? {
                    rollups.push(r);
                }
            }
        }
        Ok(Snapshot {
            warehouse: self.clone(),
            decisions,
            rollups,
            quarantine,
        })
    }

    /// Whether a derived table holds exactly the rows of `decisions` at its version: it covers
    /// that version, or an earlier one after which no commit changed data (compactions only).
    ///
    /// # Errors
    /// When a log cannot be read.
    pub async fn covers(&self, derived: &TableSnapshot, decisions: &TableSnapshot) -> Result<bool> {
        let Some(covered) = derived.app_version(COVERS_APP_ID).await? else {
            return Ok(false);
        };
        if covered == decisions.version {
            return Ok(true);
        }
        if covered > decisions.version {
            return Ok(false);
        }
        Ok(!self.data_changed(covered, decisions.version).await?)
    }
}

impl Snapshot {
    /// The warehouse read.
    pub fn warehouse(&self) -> &Warehouse {
        &self.warehouse
    }

    /// The `decisions` version read (`None`: empty warehouse).
    pub fn version(&self) -> Option<i64> {
        self.decisions.as_ref().map(|d| d.version)
    }

    /// The table snapshot of `t`, if read.
    pub fn table(&self, t: Table) -> Option<&TableSnapshot> {
        match t {
            Table::Decisions => self.decisions.as_ref(),
            Table::Quarantine => self.quarantine.as_ref(),
            _ => self.rollups.iter().find(|r| r.table == t),
        }
    }

    /// A read-only object store showing exactly the files of `t` in this snapshot (for a query
    /// engine); `None` when the table was not read.
    pub fn store(&self, t: Table) -> Option<Arc<SnapshotStore>> {
        let s = self.table(t)?;
        Some(Arc::new(SnapshotStore::new(
            self.warehouse.table_store(t),
            t.name(),
            s.version,
            s.files.clone(),
        )))
    }
}
