//! The layout before Delta tables (a JSON manifest under `_verdict/`, rollups under `rollup/`,
//! quarantine as JSON lines): what `verdict migrate` needs to adopt it in place. The decisions
//! files already sit where the `decisions` table keeps them; the migration commits them, and
//! moves the old metadata aside (`_verdict/migrated/`) until `vacuum` deletes it.

use std::path::PathBuf;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::stats::describe;
use crate::tables::Table;
use crate::warehouse::{Commit, Operation, Warehouse};

/// What the adoption of the old decisions files did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adopted {
    /// Files committed now.
    pub files: usize,
    /// Rows they hold.
    pub rows: u64,
    /// The `decisions` version after the migration.
    pub version: i64,
}

impl Warehouse {
    fn legacy_root(&self) -> Result<PathBuf> {
        self.location().local_root().ok_or_else(|| Error::Location {
            location: self.location().to_string(),
            message: "the old layout only ever existed on local disk".into(),
        })
    }

    /// Whether an old-layout manifest is present.
    pub fn has_legacy_manifest(&self) -> bool {
        self.legacy_root()
            .is_ok_and(|r| r.join("_verdict").join("manifest.json").is_file())
    }

    /// Commits every decisions file the old manifest lists (and no commit names yet) to the
    /// `decisions` table, in one commit.
    ///
    /// # Errors
    /// No manifest, a listed file that is missing, or a failed commit.
    pub async fn adopt_legacy_decisions(&self) -> Result<Adopted> {
        let root = self.legacy_root()?;
        let path = root.join("_verdict").join("manifest.json");
        let text = std::fs::read(&path).map_err(Error::io("reading", path.display()))?;
        let manifest: Value = serde_json::from_slice(&text).map_err(|e| Error::Location {
            location: path.display().to_string(),
            message: format!("not an old-layout manifest: {e}"),
        })?;
        let snap = self.open_for_write(Table::Decisions).await?;
        let prefix = format!("{}/", Table::Decisions.name());
        let mut c = Commit::new(Operation::Append);
        let mut rows = 0;
        for part in manifest["parts"].as_array().into_iter().flatten() {
            let Some(rel) = part["path"].as_str().and_then(|p| p.strip_prefix(&prefix)) else {
                continue;
            };
            if snap.files.iter().any(|f| f.path == rel) {
                continue;
            }
            let day = part["day"].as_str().map(str::to_string);
            let local = root.join(Table::Decisions.name()).join(rel);
            let nf = describe(Table::Decisions, rel, day.as_deref(), &local)?;
            rows += nf.rows;
            c.adds.push(nf);
        }
        let files = c.adds.len();
        if files == 0 {
            return Ok(Adopted {
                files,
                rows,
                version: snap.version,
            });
        }
        c.info
            .insert("verdict.operation".into(), Value::from("migrate"));
        let after = self.commit(&snap, c).await?;
        Ok(Adopted {
            files,
            rows,
            version: after.version,
        })
    }

    /// The lines of the old quarantine files (`quarantine/*.jsonl`).
    ///
    /// # Errors
    /// When a file cannot be read.
    pub fn legacy_quarantine_lines(&self) -> Result<Vec<String>> {
        let dir = self.legacy_root()?.join(Table::Quarantine.name());
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(out);
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        {
            let text = std::fs::read_to_string(p).map_err(Error::io("reading", p.display()))?;
            out.extend(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_string),
            );
        }
        Ok(out)
    }

    /// Moves the old metadata (manifest, intent records, rollup files, quarantine JSON lines)
    /// into `_verdict/migrated/`, where `vacuum` deletes it.
    ///
    /// # Errors
    /// When a rename fails.
    pub fn retire_legacy(&self) -> Result<()> {
        let root = self.legacy_root()?;
        let aside = root.join("_verdict").join("migrated");
        std::fs::create_dir_all(aside.join("quarantine"))
            .map_err(Error::io("creating", aside.display()))?;
        let mv = |from: PathBuf, to: PathBuf| -> Result<()> {
            if from.exists() {
                std::fs::rename(&from, &to).map_err(Error::io("moving aside", from.display()))?;
            }
            Ok(())
        };
        mv(
            root.join("_verdict/manifest.json"),
            aside.join("manifest.json"),
        )?;
        mv(root.join("_verdict/txn"), aside.join("txn"))?;
        mv(root.join("rollup"), aside.join("rollup"))?;
        if let Ok(entries) = std::fs::read_dir(root.join(Table::Quarantine.name())) {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "jsonl") {
                    mv(p.clone(), aside.join("quarantine").join(e.file_name()))?;
                }
            }
        }
        let _ = std::fs::remove_file(root.join("_verdict/lock"));
        Ok(())
    }

    /// Deletes what `retire_legacy` moved aside (called by vacuum); returns whether there was any.
    pub(crate) fn delete_retired(&self) -> bool {
        let Ok(root) = self.legacy_root() else {
            return false;
        };
        let aside = root.join("_verdict").join("migrated");
        aside.is_dir() && std::fs::remove_dir_all(&aside).is_ok()
    }
}
