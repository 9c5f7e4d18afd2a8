//! `verdict migrate`: adopts a warehouse of the old layout (a JSON manifest) in place. Its
//! decisions files are committed to the `decisions` Delta table where they are, its quarantined
//! lines are copied into the `quarantine` table, the dedup index and the rollups are computed
//! from the decisions, and the old metadata is moved aside until `vacuum`. Running it again
//! after an interruption finishes the job without doubling anything.

use verdict_schema::time::SystemClock;
use verdict_table::{block_on, Location, Warehouse};

use crate::committer::Committer;
use crate::error::{Error, Result};
use crate::pipeline::IngestOptions;

/// What a migration did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Migration {
    /// The warehouse.
    pub warehouse: String,
    /// Decisions files committed.
    pub files: usize,
    /// Rows they hold.
    pub rows: u64,
    /// Quarantined lines copied.
    pub quarantined: u64,
    /// The `decisions` version after the migration.
    pub version: i64,
}

impl std::fmt::Display for Migration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "migrated {}: {} files ({} rows) committed, {} quarantined lines copied, decisions version {}; \
             the old metadata is kept in _verdict/migrated until `verdict vacuum`",
            self.warehouse, self.files, self.rows, self.quarantined, self.version
        )
    }
}

/// Migrates the warehouse at `loc` (see the module docs).
///
/// # Errors
/// No old-layout manifest, a file it lists is missing or unreadable, or a commit fails.
pub fn migrate(loc: &Location) -> Result<Migration> {
    let wh = Warehouse::new(loc.clone())?;
    if !wh.has_legacy_manifest() {
        return Err(Error::Internal(format!(
            "{loc}: no warehouse of the old layout here (no _verdict/manifest.json)"
        )));
    }
    let adopted = block_on(wh.adopt_legacy_decisions())?;
    let lines = wh.legacy_quarantine_lines()?;
    let clock = SystemClock;
    // Opening for writing computes the dedup index and the rollups of the adopted files.
    let mut c = Committer::open(
        IngestOptions::new(loc.clone(), Vec::new()),
        &clock,
        Vec::new(),
    )?;
    let quarantined = c.adopt_quarantine(&lines)?;
    wh.retire_legacy()?;
    Ok(Migration {
        warehouse: loc.to_string(),
        files: adopted.files,
        rows: adopted.rows,
        quarantined,
        version: c.version(),
    })
}
