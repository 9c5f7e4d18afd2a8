//! Tests of the rollup writer: exact groups, runs that split a day, and the hour grain.

use std::collections::BTreeMap;

use arrow::array::AsArray;
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use verdict_schema::{DecisionBatchBuilder, DecisionRecord};

use super::*;

const DAY0: i64 = 20759 * verdict_schema::time::MICROS_PER_DAY; // 2026-11-02
const MIN: i64 = 60_000_000;

type Row = (
    i64,
    &'static str,
    Option<&'static str>,
    Decision,
    Option<&'static str>,
);

fn batch(rows: &[Row]) -> RecordBatch {
    let mut b = DecisionBatchBuilder::new(rows.len(), false);
    for (i, (ts, identity, tool, decision, rule)) in rows.iter().enumerate() {
        let mut r = DecisionRecord::new(format!("e{i}"), *ts, "policylayer", *decision);
        r.identity = Some((*identity).into());
        r.tool = tool.map(Into::into);
        r.server = Some("srv".into());
        r.rule = rule.map(Into::into);
        r.message = rule.map(|_| "no".into());
        b.append(&r, "{}", None, None);
    }
    b.finish().unwrap()
}

/// (bucket, identity, tool, decision, rule) -> (calls, first, last), re-aggregated over runs.
type Groups = BTreeMap<(i64, String, Option<String>, String, Option<String>), (i64, i64, i64)>;

fn read(path: &Path) -> (Groups, usize) {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    assert_eq!(reader.schema().as_ref(), rollup_schema().as_ref());
    let mut out = Groups::new();
    let mut rows = 0;
    for b in reader.build().unwrap() {
        let b = b.unwrap();
        rows += b.num_rows();
        let ts = |i: usize| {
            b.column(i)
                .as_primitive::<TimestampMicrosecondType>()
                .clone()
        };
        let s = |i: usize| b.column(i).as_string::<i32>().clone();
        let (bucket, first, last) = (ts(0), ts(8), ts(9));
        let (identity, tool, server, decision, rule, message) =
            (s(1), s(2), s(3), s(4), s(5), s(6));
        let calls = b.column(7).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            assert_eq!(server.value(i), "srv");
            assert_eq!(message.is_null(i), rule.is_null(i));
            let key = (
                bucket.value(i),
                identity.value(i).to_string(),
                (!tool.is_null(i)).then(|| tool.value(i).to_string()),
                decision.value(i).to_string(),
                (!rule.is_null(i)).then(|| rule.value(i).to_string()),
            );
            let e = out.entry(key).or_insert((0, i64::MAX, i64::MIN));
            e.0 += calls.value(i);
            e.1 = e.1.min(first.value(i));
            e.2 = e.2.max(last.value(i));
        }
    }
    (out, rows)
}

fn props() -> WriterProperties {
    rollup_properties(1).unwrap()
}

#[test]
fn groups_are_exact_per_minute_and_hour() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = RollupWriter::new(dir.path(), "t1", props(), 1000);
    use Decision::*;
    w.push(
        20759,
        &batch(&[
            (DAY0 + 5, "a", Some("nav"), Allow, None),
            (DAY0 + 7, "a", Some("nav"), Allow, None),
            (DAY0 + MIN + 1, "a", Some("nav"), Allow, None),
            (DAY0 + 9, "a", None, Allow, None),
            (DAY0 + 3, "b", Some("nav"), RateLimited, Some("/lim")),
            (DAY0 + 2 * MIN, "b", Some("nav"), RateLimited, Some("/lim")),
        ]),
    )
    .unwrap();
    let parts = w.finish().unwrap();
    let names: Vec<(verdict_table::Table, &str)> = parts
        .iter()
        .map(|p| (p.table, p.rel_final.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            (
                verdict_table::Table::RollupMinute,
                "day=2026-11-02/part-t1.parquet"
            ),
            (
                verdict_table::Table::RollupHour,
                "day=2026-11-02/part-t1.parquet"
            )
        ]
    );
    assert_eq!(
        (parts[0].min_ts, parts[0].max_ts),
        (DAY0 + 3, DAY0 + 2 * MIN)
    );
    assert_eq!(
        (parts[1].min_ts, parts[1].max_ts),
        (DAY0 + 3, DAY0 + 2 * MIN)
    );
    let (minute, rows) = read(&parts[0].staged);
    assert_eq!((rows as u64, parts[0].rows), (5, 5));
    let k = |b: i64, id: &str, tool: Option<&str>, d: &str, rule: Option<&str>| {
        (
            b,
            id.to_string(),
            tool.map(String::from),
            d.to_string(),
            rule.map(String::from),
        )
    };
    let expected: Groups = [
        (
            k(DAY0, "a", Some("nav"), "allow", None),
            (2, DAY0 + 5, DAY0 + 7),
        ),
        (
            k(DAY0 + MIN, "a", Some("nav"), "allow", None),
            (1, DAY0 + MIN + 1, DAY0 + MIN + 1),
        ),
        (k(DAY0, "a", None, "allow", None), (1, DAY0 + 9, DAY0 + 9)),
        (
            k(DAY0, "b", Some("nav"), "rate_limited", Some("/lim")),
            (1, DAY0 + 3, DAY0 + 3),
        ),
        (
            k(
                DAY0 + 2 * MIN,
                "b",
                Some("nav"),
                "rate_limited",
                Some("/lim"),
            ),
            (1, DAY0 + 2 * MIN, DAY0 + 2 * MIN),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(minute, expected);
    let (hour, rows) = read(&parts[1].staged);
    assert_eq!(rows, 3);
    let expected: Groups = [
        (
            k(DAY0, "a", Some("nav"), "allow", None),
            (3, DAY0 + 5, DAY0 + MIN + 1),
        ),
        (k(DAY0, "a", None, "allow", None), (1, DAY0 + 9, DAY0 + 9)),
        (
            k(DAY0, "b", Some("nav"), "rate_limited", Some("/lim")),
            (2, DAY0 + 3, DAY0 + 2 * MIN),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(hour, expected);
}

#[test]
fn runs_past_the_group_budget_reaggregate_to_the_same_groups() {
    // The same 3,000 rows over two days, with room for 1,000,000 groups and for 7.
    let rows: Vec<Row> = (0..3000i64)
        .map(|i| {
            let ids = ["a", "b", "c"];
            let day = if i % 5 == 0 {
                DAY0 + verdict_schema::time::MICROS_PER_DAY
            } else {
                DAY0
            };
            let d = if i % 7 == 0 {
                Decision::Deny
            } else {
                Decision::Allow
            };
            (
                day + (i % 90) * MIN / 3 + i,
                ids[(i % 3) as usize],
                Some("t"),
                d,
                (i % 7 == 0).then_some("/r"),
            )
        })
        .collect();
    let run = |budget: usize| {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RollupWriter::new(dir.path(), "t", props(), budget);
        for chunk in rows.chunks(250) {
            let mut per_day: BTreeMap<i32, Vec<Row>> = BTreeMap::new();
            for r in chunk {
                per_day
                    .entry(verdict_schema::time::day_number(r.0))
                    .or_default()
                    .push(*r);
            }
            for (day, rs) in per_day {
                w.push(day, &batch(&rs)).unwrap();
            }
        }
        let parts = w.finish().unwrap();
        let out: Vec<(String, Groups, usize)> = parts
            .iter()
            .map(|p| {
                let (g, n) = read(&p.staged);
                (p.rel_final.clone(), g, n)
            })
            .collect();
        (dir, out)
    };
    let (_d1, whole) = run(1_000_000);
    let (_d2, split) = run(7);
    assert_eq!(whole.len(), 4);
    assert_eq!(split.len(), 4);
    for ((name_a, a, rows_a), (name_b, b, rows_b)) in whole.iter().zip(&split) {
        assert_eq!(name_a, name_b);
        assert_eq!(a, b);
        // With one run every key is one row; with many runs some keys repeat.
        assert_eq!(*rows_a, a.len());
        if name_a.starts_with("rollup/minute/") {
            assert!(rows_b > rows_a, "{name_b}: {rows_b} rows");
        } else {
            assert!(rows_b >= rows_a, "{name_b}: {rows_b} rows");
        }
    }
    let calls: i64 = whole[0].1.values().map(|v| v.0).sum::<i64>()
        + whole[1].1.values().map(|v| v.0).sum::<i64>();
    assert_eq!(calls, 3000);
}

#[test]
fn a_run_is_sorted_by_decision_then_the_keys_with_nulls_first_then_the_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = RollupWriter::new(dir.path(), "t1", props(), 1000);
    use Decision::*;
    w.push(
        20759,
        &batch(&[
            (DAY0 + 3 * MIN, "b", Some("nav"), Allow, None),
            (DAY0 + MIN, "b", Some("nav"), Allow, None),
            (DAY0, "a", Some("zoom"), Deny, Some("/r2")),
            (DAY0, "a", Some("zoom"), Deny, Some("/r1")),
            (DAY0, "a", None, Allow, None),
            (DAY0 + 2 * MIN, "a", Some("nav"), Allow, None),
            (DAY0, "c", Some("nav"), RateLimited, Some("/lim")),
            (DAY0, "a", Some("nav"), Error, None),
            (DAY0 + MIN, "a", Some("nav"), Allow, None),
            (DAY0, "B", Some("nav"), Allow, None),
        ]),
    )
    .unwrap();
    let parts = w.finish().unwrap();
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(File::open(&parts[0].staged).unwrap()).unwrap();
    let mut rows = Vec::new();
    for b in reader.build().unwrap() {
        let b = b.unwrap();
        let s = |i: usize| b.column(i).as_string::<i32>().clone();
        let (identity, tool, decision, rule) = (s(1), s(2), s(4), s(5));
        let bucket = b.column(0).as_primitive::<TimestampMicrosecondType>();
        for i in 0..b.num_rows() {
            let opt =
                |a: &arrow::array::StringArray| (!a.is_null(i)).then(|| a.value(i).to_string());
            rows.push((
                decision.value(i).to_string(),
                identity.value(i).to_string(),
                opt(&tool),
                opt(&rule),
                (bucket.value(i) - DAY0) / MIN,
            ));
        }
    }
    let r = |d: &str, id: &str, tool: Option<&str>, rule: Option<&str>, m: i64| {
        (
            d.to_string(),
            id.to_string(),
            tool.map(String::from),
            rule.map(String::from),
            m,
        )
    };
    // Decisions in the order of `Decision::ALL` (allow, deny, rate_limited, ..., error), then
    // identity, tool (null first), rule in byte order, then the minute.
    assert_eq!(
        rows,
        [
            r("allow", "B", Some("nav"), None, 0),
            r("allow", "a", None, None, 0),
            r("allow", "a", Some("nav"), None, 1),
            r("allow", "a", Some("nav"), None, 2),
            r("allow", "b", Some("nav"), None, 1),
            r("allow", "b", Some("nav"), None, 3),
            r("deny", "a", Some("zoom"), Some("/r1"), 0),
            r("deny", "a", Some("zoom"), Some("/r2"), 0),
            r("rate_limited", "c", Some("nav"), Some("/lim"), 0),
            r("error", "a", Some("nav"), None, 0),
        ]
    );
}

#[test]
fn the_worker_thread_writes_what_the_writer_writes() {
    use Decision::*;
    let rows = batch(&[
        (DAY0 + 5, "a", Some("nav"), Allow, None),
        (DAY0 + MIN + 1, "a", Some("nav"), Allow, None),
        (DAY0 + 3, "b", Some("nav"), RateLimited, Some("/lim")),
    ]);
    let direct = tempfile::tempdir().unwrap();
    let mut w = RollupWriter::new(direct.path(), "t1", props(), 1);
    w.push(20759, &rows).unwrap();
    w.push(20759, &rows).unwrap();
    let expected: Vec<_> = w
        .finish()
        .unwrap()
        .iter()
        .map(|p| read(&p.staged))
        .collect();

    let threaded = tempfile::tempdir().unwrap();
    let mut worker =
        RollupWorker::spawn(RollupWriter::new(threaded.path(), "t1", props(), 1)).unwrap();
    worker.push(20759, rows.clone()).unwrap();
    worker.push(20759, rows.clone()).unwrap();
    let parts = worker.finish().unwrap();
    let got: Vec<_> = parts.iter().map(|p| read(&p.staged)).collect();
    assert_eq!(got, expected);
    assert_eq!(got[0].0.values().map(|g| g.0).sum::<i64>(), 6);
}

#[test]
fn the_worker_reports_a_bad_batch_and_an_abandoned_worker_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut worker =
        RollupWorker::spawn(RollupWriter::new(dir.path(), "t1", props(), 1000)).unwrap();
    // Not the decisions schema: the thread stops on it, and the next call says why.
    let bad =
        RecordBatch::try_from_iter([("ts", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef)])
            .unwrap();
    let _ = worker.push(20759, bad);
    // The queue may take a few more batches before the thread's stop shows; bounded, so that a
    // thread that never reports fails the test instead of hanging it.
    let err = (0..1000)
        .find_map(|_| {
            match worker.push(20759, batch(&[(DAY0, "a", None, Decision::Allow, None)])) {
                Ok(()) => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    None
                }
                Err(e) => Some(e),
            }
        })
        .expect("the rollup thread never reported the bad batch");
    assert!(err.to_string().contains("rollup"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let mut worker =
        RollupWorker::spawn(RollupWriter::new(dir.path(), "t2", props(), 1000)).unwrap();
    worker
        .push(20759, batch(&[(DAY0, "a", None, Decision::Allow, None)]))
        .unwrap();
    drop(worker);
    assert!(!dir.path().join("rollup").exists());
}

#[test]
fn each_decision_of_a_run_is_a_row_group_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    // A budget of two groups: the day is written as several runs.
    let mut w = RollupWriter::new(dir.path(), "t1", props(), 2);
    use Decision::*;
    w.push(
        20759,
        &batch(&[
            (DAY0, "a", Some("nav"), Allow, None),
            (DAY0, "b", Some("nav"), Deny, Some("/r")),
            (DAY0, "c", Some("nav"), Allow, None),
            (DAY0 + MIN, "a", Some("nav"), RateLimited, Some("/lim")),
            (DAY0 + MIN, "b", Some("nav"), RateLimited, Some("/lim")),
            (DAY0 + MIN, "c", Some("nav"), Allow, None),
        ]),
    )
    .unwrap();
    let parts = w.finish().unwrap();
    let meta = ParquetRecordBatchReaderBuilder::try_new(File::open(&parts[0].staged).unwrap())
        .unwrap()
        .metadata()
        .clone();
    let groups: Vec<(String, String, i64)> = meta
        .row_groups()
        .iter()
        .map(|rg| {
            let stats = rg.column(4).statistics().unwrap();
            let text = |b: Option<&[u8]>| String::from_utf8(b.unwrap().to_vec()).unwrap();
            (
                text(stats.min_bytes_opt()),
                text(stats.max_bytes_opt()),
                rg.num_rows(),
            )
        })
        .collect();
    for (min, max, _) in &groups {
        assert_eq!(min, max, "{groups:?}");
    }
    assert_eq!(groups.iter().map(|g| g.2).sum::<i64>(), 6);
    assert!(groups.len() >= 3, "{groups:?}");
}
