//! [`retention`]: removes every whole UTC day older than the period from `decisions`, both
//! rollups, the quarantine (by the day a line was quarantined) and the dedup index (the keys of
//! the removed rows), except days a legal hold covers.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Int64Type, TimestampMicrosecondType};
use rustc_hash::FxHashSet;
use serde::Serialize;
use serde_json::Value;
use verdict_schema::idx;
use verdict_schema::time::{day_number, day_string, Clock};
use verdict_table::{
    key_bucket, quarantine_col, quarantine_schema, Hold, Location, Operation, Table, TableSnapshot,
};

use super::{covers, opt, read, read_bytes, Run, TableChange, Trace, Work};
use crate::decode::dedup_key;
use crate::error::{Error, Result};
use crate::index::write_keys;
use crate::writer::StagedPart;

/// The app transaction of `decisions` recording the UTC day (number) of the last retention
/// commit, so that a collector applies retention at most once a day.
pub const RETENTION_APP_ID: &str = "verdict.retention";

const DAY_MICROS: i64 = 86_400_000_000;

/// What to keep.
#[derive(Debug, Clone)]
pub struct RetentionOptions {
    /// The warehouse.
    pub warehouse: Location,
    /// The period kept (microseconds): a day leaves once all of it is older than this.
    pub keep_micros: i64,
    /// Count what would leave; write nothing.
    pub dry_run: bool,
    /// Who asked and why.
    pub trace: Trace,
    /// Signs the change's links of the integrity chain (`--signing-key`).
    pub signing_key: Option<verdict_table::SigningKey>,
}

/// A day retention kept because of holds.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HeldDay {
    /// The day.
    pub day: String,
    /// The holds covering rows of it.
    pub holds: Vec<String>,
}

/// What a retention run did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RetentionSummary {
    /// The first day kept (`YYYY-MM-DD`): every earlier day leaves.
    pub keep_from: String,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// The days removed from `decisions` and the rollups.
    pub days_removed: Vec<String>,
    /// Decisions rows removed.
    pub rows_removed: u64,
    /// Quarantined lines removed.
    pub quarantined_removed: u64,
    /// Days older than the period kept because a hold covers them.
    pub held: Vec<HeldDay>,
    /// Per table.
    pub tables: Vec<TableChange>,
}

/// Applies a retention period; see the module docs.
///
/// # Errors
/// A period shorter than a day; a warehouse with nothing in it; a file that cannot be read; a
/// failed commit.
pub fn retention(opts: &RetentionOptions, clock: &dyn Clock) -> Result<RetentionSummary> {
    if opts.keep_micros < DAY_MICROS {
        return Err(Error::Config(
            "--keep: the retention period is at least one day (1d)".into(),
        ));
    }
    let now = clock.now_micros();
    let first_kept = day_number(now.saturating_sub(opts.keep_micros));
    let cutoff = i64::from(first_kept) * DAY_MICROS;
    let mut run = Run::open(
        &opts.warehouse,
        opts.signing_key.clone(),
        clock,
        "retention",
        &opts.trace,
    )?;
    run.info.insert(
        "verdict.retention.keep_from".into(),
        Value::from(day_string(first_kept)),
    );
    let holds = verdict_table::block_on(run.wh.holds())?;
    let decisions = run.latest(Table::Decisions)?.ok_or_else(no_table)?;
    let mut old: BTreeSet<String> = decisions
        .files
        .iter()
        .filter_map(|f| f.partition.clone())
        .filter(|d| d.as_str() < day_string(first_kept).as_str())
        .collect();
    let mut summary = RetentionSummary {
        keep_from: day_string(first_kept),
        dry_run: opts.dry_run,
        ..RetentionSummary::default()
    };
    for day in old.clone() {
        let by = holding(&run, &decisions, &day, &holds)?;
        if !by.is_empty() {
            old.remove(&day);
            summary.held.push(HeldDay { day, holds: by });
        }
    }
    let (dw, keys) = remove_days(&run, &decisions, &old, !opts.dry_run)?;
    let qw = trim_quarantine(&run, cutoff, &holds, opts.dry_run)?;
    summary.days_removed = old.iter().cloned().collect();
    summary.rows_removed = dw.rows_removed;
    summary.quarantined_removed = qw.rows_removed;
    if opts.dry_run || (dw.is_empty() && qw.is_empty()) {
        summary.tables = vec![dw.summary(None), qw.summary(None)];
        return Ok(summary);
    }
    let op = Operation::Retention;
    if !dw.is_empty() {
        // The day this retention ran rides in its commit (a collector runs it once a day).
        let ran = vec![(RETENTION_APP_ID.to_string(), i64::from(day_number(now)))];
        summary.tables.push(run.commit(&decisions, op, &dw, ran)?);
        let after = run.latest(Table::Decisions)?.ok_or_else(no_table)?;
        for t in [Table::RollupMinute, Table::RollupHour] {
            let Some(base) = run.latest(t)? else { continue };
            let mut w = Work::new(t);
            for f in base
                .files
                .iter()
                .filter(|f| f.partition.as_ref().is_some_and(|d| old.contains(d)))
            {
                let (sha, _) = read_bytes(&run.wh, t, &f.path)?;
                w.rows_removed += f.rows.unwrap_or(0);
                w.remove(f, sha);
            }
            summary
                .tables
                .push(run.commit(&base, op, &w, covers(after.version))?);
        }
        if let Some(base) = run.latest(Table::EventKeys)? {
            let w = trim_keys(&run, &base, &keys)?;
            summary
                .tables
                .push(run.commit(&base, op, &w, covers(after.version))?);
        }
    }
    if !qw.is_empty() {
        let base = run.latest(Table::Quarantine)?.ok_or_else(no_table)?;
        summary.tables.push(run.commit(&base, op, &qw, Vec::new())?);
    }
    Ok(summary)
}

fn no_table() -> Error {
    Error::Internal("a table vanished during retention".into())
}

/// The holds covering any row of `day`.
fn holding(run: &Run, decisions: &TableSnapshot, day: &str, holds: &[Hold]) -> Result<Vec<String>> {
    let start = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_micros())
        .ok_or_else(|| Error::Internal(format!("decisions partition day={day} is not a date")))?;
    let end = start + DAY_MICROS;
    let mut by = Vec::new();
    let mut rows: Option<Vec<RecordBatch>> = None;
    for h in holds {
        if !h.covers_span(start, end) {
            continue;
        }
        if h.identities.is_empty() {
            by.push(h.name.clone());
            continue;
        }
        if rows.is_none() {
            let mut all = Vec::new();
            for f in decisions.partition_files(day) {
                all.extend(read(&run.wh, Table::Decisions, &f.path)?.1);
            }
            rows = Some(all);
        }
        let covered = rows.iter().flatten().any(|b| {
            let ts = b.column(idx::TS).as_primitive::<TimestampMicrosecondType>();
            let identity = b.column(idx::IDENTITY).as_string::<i32>();
            let identity_id = b.column(idx::IDENTITY_ID).as_string::<i32>();
            (0..b.num_rows())
                .any(|r| h.covers(ts.value(r), &[opt(identity, r), opt(identity_id, r)]))
        });
        if covered {
            by.push(h.name.clone());
        }
    }
    Ok(by)
}

/// The `decisions` files of `days`, with the dedup keys of their rows by bucket (read only when
/// `keys` is set).
fn remove_days(
    run: &Run,
    decisions: &TableSnapshot,
    days: &BTreeSet<String>,
    keys: bool,
) -> Result<(Work, BTreeMap<i32, FxHashSet<u128>>)> {
    let mut w = Work::new(Table::Decisions);
    let mut by_bucket: BTreeMap<i32, FxHashSet<u128>> = BTreeMap::new();
    for f in decisions
        .files
        .iter()
        .filter(|f| f.partition.as_ref().is_some_and(|d| days.contains(d)))
    {
        w.rows_removed += f.rows.unwrap_or(0);
        if !keys {
            w.removes.push(f.clone());
            continue;
        }
        let (sha, batches) = read(&run.wh, Table::Decisions, &f.path)?;
        for b in &batches {
            let ids = b.column(idx::EVENT_ID).as_string::<i32>();
            let sources = arrow::compute::cast(b.column(idx::SOURCE), &DataType::Utf8)?;
            let sources = sources.as_string::<i32>();
            for r in 0..b.num_rows() {
                let k = dedup_key(sources.value(r), ids.value(r));
                by_bucket.entry(key_bucket(k)).or_default().insert(k);
            }
        }
        w.remove(f, sha);
    }
    Ok((w, by_bucket))
}

/// The dedup index without `keys`: each bucket holding one rewritten as one file.
fn trim_keys(
    run: &Run,
    base: &TableSnapshot,
    keys: &BTreeMap<i32, FxHashSet<u128>>,
) -> Result<Work> {
    let mut w = Work::new(Table::EventKeys);
    for (bucket, gone) in keys {
        let value = bucket.to_string();
        let mut kept: Vec<(u128, u64)> = Vec::new();
        let files: Vec<_> = base.partition_files(&value).cloned().collect();
        for f in &files {
            let (sha, batches) = read(&run.wh, Table::EventKeys, &f.path)?;
            for b in &batches {
                let hi = b.column(0).as_primitive::<Int64Type>();
                let lo = b.column(1).as_primitive::<Int64Type>();
                let content = b.column(2).as_primitive::<Int64Type>();
                for r in 0..b.num_rows() {
                    let k = ((hi.value(r) as u64 as u128) << 64) | lo.value(r) as u64 as u128;
                    if gone.contains(&k) {
                        w.rows_removed += 1;
                    } else {
                        kept.push((k, content.value(r) as u64));
                    }
                }
            }
            w.remove(f, sha);
        }
        if kept.is_empty() {
            continue;
        }
        kept.sort_unstable();
        let rel = Table::EventKeys.file_path(Some(&value), &run.id, None);
        let path = run.staged_path(Table::EventKeys, &rel);
        write_keys(&path, &kept)?;
        let bytes = std::fs::metadata(&path)
            .map_err(Error::io("reading", &path))?
            .len();
        w.adds.push(StagedPart {
            staged: path,
            table: Table::EventKeys,
            rel_final: rel,
            day: value,
            rows: kept.len() as u64,
            bytes,
            min_ts: 0,
            max_ts: 0,
        });
    }
    Ok(w)
}

/// The quarantine without lines quarantined before `cutoff` that no hold covers.
fn trim_quarantine(run: &Run, cutoff: i64, holds: &[Hold], dry_run: bool) -> Result<Work> {
    use quarantine_col as q;
    let mut w = Work::new(Table::Quarantine);
    let Some(snap) = run.latest(Table::Quarantine)? else {
        return Ok(w);
    };
    let schema = quarantine_schema();
    let at_i = schema
        .index_of(q::QUARANTINED_AT)
        .expect("a quarantine column");
    let raw_i = schema.index_of(q::RAW).expect("a quarantine column");
    for (n, f) in snap.files.iter().enumerate() {
        let (sha, batches) = read(&run.wh, Table::Quarantine, &f.path)?;
        let mut out = Vec::with_capacity(batches.len());
        let mut gone = 0u64;
        for b in batches {
            let at = b.column(at_i).as_primitive::<TimestampMicrosecondType>();
            let raw = b.column(raw_i).as_string::<i32>();
            let keep: BooleanArray = (0..b.num_rows())
                .map(|r| {
                    let t = at.value(r);
                    Some(t >= cutoff || holds.iter().any(|h| h.covers_text(t, raw.value(r))))
                })
                .collect();
            gone += (b.num_rows() - keep.true_count()) as u64;
            out.push(filter_record_batch(&b, &keep)?);
        }
        if gone == 0 {
            continue;
        }
        w.rows_removed += gone;
        w.remove(f, sha);
        if dry_run {
            continue;
        }
        w.adds.extend(run.stage_quarantine(n, &schema, &out)?);
    }
    Ok(w)
}
