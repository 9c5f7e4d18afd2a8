//! [`Snapshot`]: what one command reads. `decisions` at one version (the latest, or `--as-of`),
//! the quarantine, and the rollups only where they hold exactly the rows of that `decisions`
//! version. Reading never writes.
//!
//! Of the latest version, `decisions` and `rollup_hour` (which most reports answer from) are read
//! at once when the snapshot is taken; the quarantine and `rollup_minute` only when a command
//! first needs them ([`Snapshot::table`]), so that a report answered from the hourly rollup pays
//! for two Delta logs, not four. A rollup read late is used only if it covers the `decisions`
//! version read, as one read early; the quarantine read late is the latest at that moment, once
//! per command. As of a version or a time, every table is read up front, as of that moment.

use std::sync::Arc;

use tokio::sync::OnceCell;

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
    others: Arc<Others>,
}

/// The tables besides `decisions`, each read once: a rollup is `None` when it does not exist,
/// cannot be read, or does not hold exactly the rows of `decisions`.
#[derive(Debug, Default)]
struct Others {
    quarantine: OnceCell<Option<TableSnapshot>>,
    minute: OnceCell<Option<TableSnapshot>>,
    hour: OnceCell<Option<TableSnapshot>>,
}

impl Others {
    fn cell(&self, t: Table) -> Option<&OnceCell<Option<TableSnapshot>>> {
        match t {
            Table::Quarantine => Some(&self.quarantine),
            Table::RollupMinute => Some(&self.minute),
            Table::RollupHour => Some(&self.hour),
            _ => None,
        }
    }
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
        let others = Arc::new(Others::default());
        let Some(as_of) = as_of else {
            // The latest versions: `decisions` and the hourly rollup at once (a report's fixed
            // cost); the other two when first needed.
            let (d, h) = futures::join!(
                self.load(Table::Decisions, None),
                self.load(Table::RollupHour, None),
            );
            let decisions = d?;
            let hour = self.covering(h, decisions.as_ref()).await?;
            let _ = others.hour.set(hour);
            return Ok(Snapshot {
                warehouse: self.clone(),
                decisions,
                others,
            });
        };
        // As of a version or time: `decisions` first, then the others as of the moment of the
        // version read.
        let decisions = self.load(Table::Decisions, Some(as_of)).await?;
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
        let minute = self.covering(minute, decisions.as_ref()).await?;
        let hour = self.load(Table::RollupHour, moment.as_ref()).await;
        let hour = self.covering(hour, decisions.as_ref()).await?;
        let _ = others.quarantine.set(quarantine);
        let _ = others.minute.set(minute);
        let _ = others.hour.set(hour);
        Ok(Snapshot {
            warehouse: self.clone(),
            decisions,
            others,
        })
    }

    /// The rollup `loaded` if it holds exactly the rows of `decisions`. A rollup that cannot be
    /// read, or does not exist, is not used.
    async fn covering(
        &self,
        loaded: Result<Option<TableSnapshot>>,
        decisions: Option<&TableSnapshot>,
    ) -> Result<Option<TableSnapshot>> {
        let (Ok(Some(r)), Some(d)) = (loaded, decisions) else {
            return Ok(None);
        };
        Ok(self.covers(&r, d).await?.then_some(r))
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

    /// The table snapshot of `t`: `decisions` as read; the quarantine; a rollup when it holds
    /// exactly the rows of `decisions`. The quarantine and `rollup_minute` are read here on
    /// first use (see the module docs).
    ///
    /// # Errors
    /// When the quarantine's log cannot be read (a rollup that cannot be read is `None`).
    pub async fn table(&self, t: Table) -> Result<Option<&TableSnapshot>> {
        let Some(cell) = self.others.cell(t) else {
            return Ok(match t {
                Table::Decisions => self.decisions.as_ref(),
                _ => None,
            });
        };
        let loaded = cell
            .get_or_try_init(|| async {
                let w = &self.warehouse;
                match t {
                    Table::Quarantine => w.load(t, None).await,
                    _ => {
                        w.covering(w.load(t, None).await, self.decisions.as_ref())
                            .await
                    }
                }
            })
            .await?;
        Ok(loaded.as_ref())
    }

    /// The table snapshot of `t` if it was read already ([`Snapshot::table`] reads it).
    pub fn read(&self, t: Table) -> Option<&TableSnapshot> {
        match self.others.cell(t) {
            Some(cell) => cell.get().and_then(Option::as_ref),
            None if t == Table::Decisions => self.decisions.as_ref(),
            None => None,
        }
    }

    /// A read-only object store showing exactly the files of `t` in this snapshot (for a query
    /// engine); `None` when the table was not read.
    pub fn store(&self, t: Table) -> Option<Arc<SnapshotStore>> {
        let s = self.read(t)?;
        Some(Arc::new(SnapshotStore::new(
            self.warehouse.table_store(t),
            t.name(),
            s.version,
            s.files.clone(),
        )))
    }
}
