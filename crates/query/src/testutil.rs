//! Test fixtures: a small warehouse of 30 decisions over three UTC days, written as Parquet
//! into a tempdir, with decoy files that the engine must ignore; and the same decisions as two
//! transactions with their per-minute and per-hour rollup files (aggregated here, independently
//! of the ingest). Only compiled for tests.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};

use parquet::arrow::ArrowWriter;
use tempfile::TempDir;
use verdict_schema::{rollup_schema, time, Decision, DecisionBatchBuilder, DecisionRecord};

use verdict_table::{stats::describe, Commit, Operation, Table, Warehouse, COVERS_APP_ID};

use crate::{Catalog, Engine, QueryOutput};

/// Commits files already written under `root/<table>/` (paths relative to the table) in one
/// commit, recording the `decisions` version a derived table covers; returns the new version.
pub(crate) fn commit_files(root: &Path, t: Table, rels: &[String], covers: Option<i64>) -> i64 {
    verdict_table::block_on(async {
        let wh = Warehouse::new(root.into()).unwrap();
        let snap = wh.open_for_write(t).await.unwrap();
        let mut c = Commit::new(Operation::Append);
        for rel in rels {
            let part = rel
                .split_once('/')
                .and_then(|(d, _)| d.split_once('=').map(|(_, v)| v.to_string()));
            let local = root.join(t.name()).join(rel);
            c.adds
                .push(describe(t, rel, part.as_deref(), &local).unwrap());
        }
        if let Some(v) = covers {
            c.app_txns.push((COVERS_APP_ID.to_string(), v));
        }
        wh.commit(&snap, c).await.unwrap().version
    })
}

/// An engine over the latest snapshot of the warehouse at `root`.
pub(crate) async fn open(root: &Path, catalog: Catalog) -> crate::Result<Engine> {
    let wh = Warehouse::new(root.into())?;
    let snap = wh.snapshot(None).await?;
    Engine::open(&snap, catalog).await
}

/// One fixture row: id, ts, identity, session, server, tool, decision, rule, message.
/// Empty strings are nulls; a row without tool has method `initialize`.
pub(crate) type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const HIDDEN: &str = "Tool \"session_destroy\" is hidden by policy";
const RATE: &str = "/tools/session_create/limits/session_create_rate";
const CPM: &str = "/all_tools/limits/calls-per-minute";
const AMOUNT: &str = "/tools/create_charge/deny_if/args.amount-gt";
const DENY_DEL: &str = "Tool \"delete_session\" is not allowed by policy";

/// Day 1 (2026-11-01), one file.
#[rustfmt::skip]
pub(crate) const DAY1: &[Row] = &[
    ("e01", "2026-11-01T23:00:00.000Z", "alice", "s1", "leapfrog", "session_create", "allow", "", ""),
    ("e02", "2026-11-01T23:00:05.000Z", "alice", "s1", "leapfrog", "navigate", "allow", "", ""),
    ("e03", "2026-11-01T23:10:00.000Z", "alice", "s1", "leapfrog", "session_destroy", "deny", "(hidden)", HIDDEN),
    ("e04", "2026-11-01T23:59:59.999Z", "bob", "s2", "mcacp", "", "allow", "", ""),
];

/// Day 2 (2026-11-02), first file.
#[rustfmt::skip]
pub(crate) const DAY2A: &[Row] = &[
    ("e05", "2026-11-02T09:15:00.000Z", "bob", "s3", "leapfrog", "session_create", "allow", "", ""),
    ("e06", "2026-11-02T09:15:10.000Z", "bob", "s3", "leapfrog", "session_create", "rate_limited", RATE, "Rate limit exceeded"),
    ("e07", "2026-11-02T09:15:20.000Z", "bob", "s3", "leapfrog", "session_create", "rate_limited", RATE, "Rate limit exceeded"),
    ("e08", "2026-11-02T09:15:30.000Z", "bob", "s3", "leapfrog", "session_create", "rate_limited", RATE, "Rate limit exceeded"),
    ("e09", "2026-11-02T09:16:05.000Z", "bob", "s3", "leapfrog", "session_create", "rate_limited", RATE, "Rate limit exceeded"),
    ("e10", "2026-11-02T09:16:10.000Z", "bob", "s3", "leapfrog", "session_create_batch", "rate_limited", CPM, "Too many calls"),
    ("e11", "2026-11-02T09:20:00.000Z", "bob", "s3", "leapfrog", "session_destroy", "allow", "", ""),
    ("e12", "2026-11-02T09:20:01.000Z", "bob", "s3", "leapfrog", "session_destroy", "allow", "", ""),
    ("e13", "2026-11-02T09:21:00.000Z", "bob", "s3", "leapfrog", "session_list", "allow", "", ""),
];

/// Day 2 (2026-11-02), second file.
#[rustfmt::skip]
pub(crate) const DAY2B: &[Row] = &[
    ("e14", "2026-11-02T10:00:00.000Z", "carol", "s4", "weknora", "knowledge_search", "allow", "", ""),
    ("e15", "2026-11-02T10:00:30.000Z", "carol", "s4", "weknora", "delete_session", "approval_required", "/tools/delete_session/approval", "Call to \"delete_session\" requires human approval"),
    ("e16", "2026-11-02T10:05:00.000Z", "carol", "s4", "weknora", "delete_session", "deny", "(default deny)", DENY_DEL),
    ("e17", "2026-11-02T10:06:00.000Z", "carol", "s4", "weknora", "get_document", "error", "(policy error)", "policy engine unavailable"),
    ("e18", "2026-11-02T11:00:00.000Z", "alice", "s5", "payments", "create_charge", "deny", AMOUNT, "Charges above 5000 need a human"),
    ("e19", "2026-11-02T11:00:10.000Z", "alice", "s5", "payments", "create_charge", "deny", AMOUNT, "Charges above 5000 need a human"),
    ("e20", "2026-11-02T11:00:20.000Z", "alice", "s5", "payments", "create_charge", "deny", "/tools/create_charge/require/args.reason", "A reason is required"),
    ("e21", "2026-11-02T11:01:00.000Z", "alice", "s5", "payments", "create_charge", "allow", "", ""),
    ("e22", "2026-11-02T11:30:00.000Z", "", "", "mcacp", "send_message", "unknown", "", ""),
    ("e23", "2026-11-02T12:00:00.000Z", "carol", "s6", "mcacp", "purge_cache", "allow", "", ""),
];

/// Day 3 (2026-11-03), one file.
#[rustfmt::skip]
pub(crate) const DAY3: &[Row] = &[
    ("e24", "2026-11-03T00:00:00.000Z", "alice", "s7", "leapfrog", "session_destroy", "deny", "(hidden)", HIDDEN),
    ("e25", "2026-11-03T00:00:01.000Z", "alice", "s7", "leapfrog", "session_list", "allow", "", ""),
    ("e26", "2026-11-03T08:00:00.000Z", "bob", "s8", "mcacp", "send_message", "rate_limited", CPM, "Too many calls"),
    ("e27", "2026-11-03T08:00:30.000Z", "bob", "s8", "mcacp", "close_session", "allow", "", ""),
    ("e28", "2026-11-03T08:30:00.000Z", "carol", "s9", "weknora", "weather", "allow", "", ""),
    ("e29", "2026-11-03T08:30:00.000Z", "carol", "s9", "weknora", "delete_session", "allow", "", ""),
    ("e30", "2026-11-03T09:00:00.000Z", "dave", "s10", "weknora", "delete_session", "deny", "(default deny)", DENY_DEL),
];

fn opt(s: &str) -> Option<std::borrow::Cow<'_, str>> {
    (!s.is_empty()).then(|| s.into())
}

/// Writes `rows` as one Parquet file of the decisions schema.
pub(crate) fn write_rows(path: &Path, rows: &[Row]) {
    let mut b = DecisionBatchBuilder::new(rows.len(), true);
    for (i, &(id, ts, identity, session, server, tool, decision, rule, message)) in
        rows.iter().enumerate()
    {
        let ts = time::parse_rfc3339_micros(ts).unwrap();
        let decision: Decision = decision.parse().unwrap();
        let mut r = DecisionRecord::new(id, ts, "policylayer", decision);
        r.identity = opt(identity);
        r.session = opt(session);
        r.server = opt(server);
        r.method = Some(
            if tool.is_empty() {
                "initialize"
            } else {
                "tools/call"
            }
            .into(),
        );
        r.tool = opt(tool);
        r.arg_keys = Some(vec!["session_id".into()]);
        r.rule = opt(rule);
        r.message = opt(message);
        r.latency_ms = Some(10.0 + i as f64 * 0.5);
        r.upstream_status = (decision == Decision::Allow).then_some(200);
        b.append(
            &r,
            "{\"raw\":true}",
            Some("fixture.jsonl"),
            Some(i as u64 + 1),
        );
    }
    let batch = b.finish().unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// The fixture warehouse, with decoys that must be ignored: hidden and `_`-prefixed files and
/// directories inside `decisions/`, and the `_verdict/` metadata directory.
pub(crate) fn warehouse() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("decisions");
    let files = [
        ("day=2026-11-01/part-0.parquet", DAY1),
        ("day=2026-11-02/part-0.parquet", DAY2A),
        ("day=2026-11-02/part-1.parquet", DAY2B),
        ("day=2026-11-03/part-0.parquet", DAY3),
    ];
    for (rel, rows) in files {
        write_rows(&d.join(rel), rows);
    }
    let rels: Vec<String> = files.iter().map(|(r, _)| r.to_string()).collect();
    commit_files(dir.path(), Table::Decisions, &rels, None);
    let decoy: &[Row] = &[(
        "x01",
        "2026-11-02T09:00:00.000Z",
        "mallory",
        "sx",
        "leapfrog",
        "session_destroy",
        "allow",
        "",
        "",
    )];
    write_rows(&d.join("day=2026-11-02/.part-2.parquet"), decoy);
    write_rows(&d.join("day=2026-11-02/_part-3.parquet"), decoy);
    write_rows(&d.join("day=2026-11-02/_staging/part-4.parquet"), decoy);
    write_rows(&d.join("_staging/day=2026-11-02/part-5.parquet"), decoy);
    write_rows(&d.join(".day=2026-11-04/part-6.parquet"), decoy);
    write_rows(
        &dir.path().join("_verdict/staging/t1/part-7.parquet"),
        decoy,
    );
    std::fs::write(d.join("day=2026-11-02/part-1.parquet.tmp"), b"partial").unwrap();
    dir
}

/// (bucket, identity, tool, server, decision, rule, message) -> (calls, first ts, last ts).
type RollupGroups = BTreeMap<
    (
        i64,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
    ),
    (i64, i64, i64),
>;

fn rollup_groups(rows: &[Row], width: i64) -> RollupGroups {
    let o = |s: &'static str| (!s.is_empty()).then_some(s);
    let mut g = RollupGroups::new();
    for &(_, ts, identity, _, server, tool, decision, rule, message) in rows {
        let ts = time::parse_rfc3339_micros(ts).unwrap();
        let key = (
            ts - ts.rem_euclid(width),
            o(identity),
            o(tool),
            o(server),
            decision,
            o(rule),
            o(message),
        );
        let e = g.entry(key).or_insert((0, i64::MAX, i64::MIN));
        e.0 += 1;
        e.1 = e.1.min(ts);
        e.2 = e.2.max(ts);
    }
    g
}

/// Picks a timestamp from a group's (calls, first, last) and its bucket.
type PickTs<'a> = &'a dyn Fn(&(i64, i64, i64), i64) -> i64;

fn rollup_batch(groups: &RollupGroups) -> RecordBatch {
    let ts = |f: PickTs| -> ArrayRef {
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(groups.iter().map(|(k, v)| f(v, k.0)))
                .with_timezone("UTC"),
        )
    };
    let strs = |v: Vec<Option<&str>>| -> ArrayRef { Arc::new(StringArray::from(v)) };
    RecordBatch::try_new(
        rollup_schema(),
        vec![
            ts(&|_, b| b),
            strs(groups.keys().map(|k| k.1).collect()),
            strs(groups.keys().map(|k| k.2).collect()),
            strs(groups.keys().map(|k| k.3).collect()),
            strs(groups.keys().map(|k| Some(k.4)).collect()),
            strs(groups.keys().map(|k| k.5).collect()),
            strs(groups.keys().map(|k| k.6).collect()),
            Arc::new(Int64Array::from_iter_values(groups.values().map(|v| v.0))),
            ts(&|v, _| v.1),
            ts(&|v, _| v.2),
        ],
    )
    .unwrap()
}

/// Writes the rollup of `rows` at bucket width `width` as one file, in two runs (the rows cut
/// at `split`), so that a key may appear twice, as after the ingest's memory budget.
pub(crate) fn write_rollup(path: &Path, rows: &[Row], width: i64, split: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), rollup_schema(), None).unwrap();
    for run in [&rows[..split], &rows[split..]] {
        w.write(&rollup_batch(&rollup_groups(run, width))).unwrap();
    }
    w.close().unwrap();
}

/// The fixture's decisions as an ingest lays them out: transaction `t1` wrote days 1 and 2
/// (first file), `t2` day 2 (second file) and day 3; with the rollup parts of each.
pub(crate) fn rollup_warehouse() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("decisions");
    let parts: [(&str, &str, &str, &[Row]); 4] = [
        ("2026-11-01", "t1", "0000", DAY1),
        ("2026-11-02", "t1", "0001", DAY2A),
        ("2026-11-02", "t2", "0000", DAY2B),
        ("2026-11-03", "t2", "0001", DAY3),
    ];
    for txn in ["t1", "t2"] {
        let mut rels = Vec::new();
        let mut rollup_rels = Vec::new();
        for &(day, t, n, rows) in parts.iter().filter(|p| p.1 == txn) {
            let rel = format!("day={day}/part-{t}-{n}.parquet");
            write_rows(&d.join(&rel), rows);
            rels.push(rel);
            let rel = format!("day={day}/part-{t}.parquet");
            for (table, width) in [
                (Table::RollupMinute, 60_000_000),
                (Table::RollupHour, 3_600_000_000),
            ] {
                let path = dir.path().join(table.name()).join(&rel);
                write_rollup(&path, rows, width, rows.len() / 2);
            }
            rollup_rels.push(rel);
        }
        let v = commit_files(dir.path(), Table::Decisions, &rels, None);
        for table in [Table::RollupMinute, Table::RollupHour] {
            commit_files(dir.path(), table, &rollup_rels, Some(v));
        }
    }
    dir
}

/// The rollup fixture and an engine over it.
pub(crate) async fn rollup_engine() -> (TempDir, Engine) {
    let dir = rollup_warehouse();
    let engine = open(dir.path(), Catalog::builtin()).await.unwrap();
    (dir, engine)
}

/// The fixture warehouse and an engine over it with the built-in catalogue.
pub(crate) async fn engine() -> (TempDir, Engine) {
    let dir = warehouse();
    let engine = open(dir.path(), Catalog::builtin()).await.unwrap();
    (dir, engine)
}

/// Arrow's pretty-printed batches, as lines (for `assert_eq!` against expected tables).
pub(crate) fn lines(out: &QueryOutput) -> Vec<String> {
    out.to_pretty_string()
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Parses an RFC 3339 instant to UTC microseconds.
pub(crate) fn micros(s: &str) -> i64 {
    time::parse_rfc3339_micros(s).unwrap()
}
