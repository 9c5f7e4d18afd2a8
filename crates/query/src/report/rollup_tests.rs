//! Tests of answering reports from the rollup: which source each question reads, results equal
//! row for row to the `decisions` answer over many groupings and filters, and the fallbacks
//! (a question the rollup cannot answer, a rollup that does not cover the warehouse).

use super::*;
use crate::engine::ROLLUP_MINUTE_TABLE;
use crate::testutil::{engine, lines, micros, rollup_engine, rollup_warehouse};

const MINUTE: ReportSource = ReportSource::Rollup(Rollup::Minute);
const HOUR: ReportSource = ReportSource::Rollup(Rollup::Hour);
const RAW: ReportSource = ReportSource::Decisions;

fn spec(kind: ReportKind, by: &[GroupBy]) -> ReportSpec {
    ReportSpec {
        by: by.to_vec(),
        ..ReportSpec::new(kind)
    }
}

/// The report from its source and from `decisions`, which must print the same.
async fn same_as_raw(e: &Engine, s: &ReportSpec) -> Vec<String> {
    let got = lines(&e.report(s).await.unwrap());
    let raw = ReportSpec {
        raw: true,
        ..s.clone()
    };
    assert_eq!(e.report_source(&raw).await.unwrap(), RAW);
    let want = lines(&e.report(&raw).await.unwrap());
    assert_eq!(
        got,
        want,
        "{s:?} from {:?}:\n{}\nfrom decisions:\n{}",
        e.report_source(s).await.unwrap(),
        got.join("\n"),
        want.join("\n")
    );
    got
}

#[tokio::test]
async fn the_rollup_covers_an_ingested_warehouse_only() {
    let (_d, e) = rollup_engine().await;
    assert_eq!(e.rollups().await.unwrap(), [Rollup::Minute, Rollup::Hour]);
    // The fixture's files are not named after transactions: no rollup could cover them.
    let (_d, plain) = engine().await;
    assert_eq!(plain.rollups().await.unwrap(), []);
    assert_eq!(
        plain
            .report_source(&ReportSpec::new(ReportKind::Volume))
            .await
            .unwrap(),
        RAW
    );
    assert!(plain.sql("SELECT * FROM rollup_minute").await.is_err());
}

#[tokio::test]
async fn each_question_reads_the_smallest_exact_source() {
    use GroupBy::*;
    use ReportKind::*;
    let (_d, e) = rollup_engine().await;
    let at = |s: &str| Some(micros(s));
    let cases: Vec<(ReportSpec, ReportSource)> = vec![
        (spec(Volume, &[]), HOUR),
        (spec(Denials, &[Identity, Rule, Hour]), HOUR),
        (spec(Volume, &[Tool, Minute]), MINUTE),
        // Its peak is per minute.
        (spec(RateLimits, &[]), MINUTE),
        (
            ReportSpec {
                since: at("2026-11-02T09:00:00Z"),
                until: at("2026-11-03T00:00:00Z"),
                ..spec(Volume, &[])
            },
            HOUR,
        ),
        (
            ReportSpec {
                since: at("2026-11-02T09:15:00Z"),
                ..spec(Volume, &[])
            },
            MINUTE,
        ),
        (
            ReportSpec {
                until: at("2026-11-02T09:15:30Z"),
                ..spec(Denials, &[])
            },
            RAW,
        ),
        (spec(Volume, &[Session]), RAW),
        (
            ReportSpec {
                sessions: vec!["s3".into()],
                ..spec(RateLimits, &[])
            },
            RAW,
        ),
        (spec(Identities, &[]), RAW),
        (spec(Tools, &[]), RAW),
        (spec(Destructive, &[]), RAW),
        (
            ReportSpec {
                raw: true,
                ..spec(Volume, &[])
            },
            RAW,
        ),
    ];
    for (s, want) in cases {
        assert_eq!(e.report_source(&s).await.unwrap(), want, "{s:?}");
    }
    // The plan reads the rollup's files.
    let plan = e.explain_report(&spec(Volume, &[])).await.unwrap();
    assert!(plan.contains("day=2026-11-02/part-t1.parquet"), "{plan}");
    assert!(!plan.contains("part-t1-0"), "{plan}");
}

#[tokio::test]
async fn rollup_answers_equal_the_decisions_answers_row_for_row() {
    use GroupBy::*;
    use ReportKind::*;
    let (_d, e) = rollup_engine().await;
    let groupings: &[&[GroupBy]] = &[
        &[],
        &[Identity, Tool, Minute],
        &[Identity, Tool, Hour],
        &[Tool, Server, Day],
        &[Decision, Rule],
        &[Rule],
        &[Identity, Rule, Minute],
        &[Server, Decision, Hour],
        &[Minute],
        &[Day],
    ];
    let at = |s: &str| Some(micros(s));
    let mut checked = 0;
    for kind in [Volume, Denials, RateLimits] {
        for by in groupings {
            let filters = [
                spec(kind, by),
                ReportSpec {
                    identities: vec!["bob".into(), "alice".into()],
                    ..spec(kind, by)
                },
                ReportSpec {
                    tools: vec!["session_create".into()],
                    servers: vec!["leapfrog".into()],
                    ..spec(kind, by)
                },
                ReportSpec {
                    decisions: vec![
                        verdict_schema::Decision::Deny,
                        verdict_schema::Decision::Allow,
                    ],
                    ..spec(kind, by)
                },
                ReportSpec {
                    since: at("2026-11-02T09:16:00Z"),
                    until: at("2026-11-03T08:01:00Z"),
                    ..spec(kind, by)
                },
                ReportSpec {
                    since: at("2026-11-02T00:00:00Z"),
                    until: at("2026-11-02T11:00:00Z"),
                    top: Some(2),
                    ..spec(kind, by)
                },
            ];
            for s in filters {
                assert_ne!(e.report_source(&s).await.unwrap(), RAW, "{s:?}");
                same_as_raw(&e, &s).await;
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 180);
}

/// Exact values from the rollup where a rule's calls span two runs of a rollup file.
#[tokio::test]
async fn rate_limits_by_minute_and_rule_from_the_rollup() {
    let (_d, e) = rollup_engine().await;
    let s = spec(
        ReportKind::RateLimits,
        &[GroupBy::Identity, GroupBy::Rule, GroupBy::Minute],
    );
    assert_eq!(e.report_source(&s).await.unwrap(), MINUTE);
    assert_eq!(
        same_as_raw(&e, &s).await,
        [
            "+----------+--------------------------------------------------+----------------------+--------------+-----------------+----------------------+----------------------+----------------------+",
            "| identity | rule                                             | minute               | rate_limited | peak_per_minute | peak_minute          | first_seen           | last_seen            |",
            "+----------+--------------------------------------------------+----------------------+--------------+-----------------+----------------------+----------------------+----------------------+",
            "| bob      | /tools/session_create/limits/session_create_rate | 2026-11-02T09:15:00Z | 3            | 3               | 2026-11-02T09:15:00Z | 2026-11-02T09:15:10Z | 2026-11-02T09:15:30Z |",
            "| bob      | /all_tools/limits/calls-per-minute               | 2026-11-02T09:16:00Z | 1            | 1               | 2026-11-02T09:16:00Z | 2026-11-02T09:16:10Z | 2026-11-02T09:16:10Z |",
            "| bob      | /tools/session_create/limits/session_create_rate | 2026-11-02T09:16:00Z | 1            | 1               | 2026-11-02T09:16:00Z | 2026-11-02T09:16:05Z | 2026-11-02T09:16:05Z |",
            "| bob      | /all_tools/limits/calls-per-minute               | 2026-11-03T08:00:00Z | 1            | 1               | 2026-11-03T08:00:00Z | 2026-11-03T08:00:00Z | 2026-11-03T08:00:00Z |",
            "+----------+--------------------------------------------------+----------------------+--------------+-----------------+----------------------+----------------------+----------------------+",
        ]
    );
}

#[tokio::test]
async fn questions_the_rollup_cannot_answer_read_the_decisions() {
    let (_d, e) = rollup_engine().await;
    // `until` inside a minute: only the decisions know which calls of 09:15 came before 09:15:15.
    let s = ReportSpec {
        until: Some(micros("2026-11-02T09:15:15Z")),
        ..spec(ReportKind::RateLimits, &[])
    };
    assert_eq!(e.report_source(&s).await.unwrap(), RAW);
    let plan = e.explain_report(&s).await.unwrap();
    assert!(
        plan.contains("day=2026-11-02/part-t1-0001.parquet"),
        "{plan}"
    );
    assert!(!plan.contains("part-t1.parquet"), "{plan}");
    assert_eq!(
        lines(&e.report(&s).await.unwrap()),
        [
            "+----------+----------------+--------------+--------------------------------------------------+---------------+-----------------+----------------------+----------------------+----------------------+",
            "| identity | tool           | rate_limited | counter                                          | counter_calls | peak_per_minute | peak_minute          | first_seen           | last_seen            |",
            "+----------+----------------+--------------+--------------------------------------------------+---------------+-----------------+----------------------+----------------------+----------------------+",
            "| bob      | session_create | 1            | /tools/session_create/limits/session_create_rate | 1             | 1               | 2026-11-02T09:15:00Z | 2026-11-02T09:15:10Z | 2026-11-02T09:15:10Z |",
            "+----------+----------------+--------------+--------------------------------------------------+---------------+-----------------+----------------------+----------------------+----------------------+",
        ]
    );
    // A session filter: the rollup has no session.
    let s = ReportSpec {
        sessions: vec!["s5".into()],
        ..spec(ReportKind::Volume, &[GroupBy::Session])
    };
    assert_eq!(e.report_source(&s).await.unwrap(), RAW);
    assert_eq!(
        lines(&e.report(&s).await.unwrap()),
        [
            "+---------+-------+-------+------+--------------+-------------------+-------+---------+",
            "| session | calls | allow | deny | rate_limited | approval_required | error | unknown |",
            "+---------+-------+-------+------+--------------+-------------------+-------+---------+",
            "| s5      | 4     | 1     | 3    | 0            | 0                 | 0     | 0       |",
            "+---------+-------+-------+------+--------------+-------------------+-------+---------+",
        ]
    );
}

#[tokio::test]
async fn a_rollup_behind_the_decisions_is_not_used() {
    use crate::testutil::{commit_files, write_rollup, write_rows, DAY3};
    use verdict_table::Table;
    let dir = rollup_warehouse();
    let root = dir.path();
    // A third commit of decisions; the minute rollup gets its rows, the hour rollup does not
    // (a write cut short between the two commits).
    let extra: Vec<_> = DAY3
        .iter()
        .map(|r| {
            let mut r = *r;
            r.0 = Box::leak(format!("x{}", r.0).into_boxed_str());
            r
        })
        .collect();
    let rel = "day=2026-11-03/part-t3-0000.parquet".to_string();
    write_rows(&root.join("decisions").join(&rel), &extra);
    let v = commit_files(root, Table::Decisions, std::slice::from_ref(&rel), None);
    let rrel = "day=2026-11-03/part-t3.parquet".to_string();
    for (t, width) in [
        (Table::RollupMinute, 60_000_000),
        (Table::RollupHour, 3_600_000_000),
    ] {
        write_rollup(
            &root.join(t.name()).join(&rrel),
            &extra,
            width,
            extra.len() / 2,
        );
    }
    commit_files(
        root,
        Table::RollupMinute,
        std::slice::from_ref(&rrel),
        Some(v),
    );
    let e = crate::testutil::open(root, crate::Catalog::builtin())
        .await
        .unwrap();
    assert_eq!(e.rollups().await.unwrap(), [Rollup::Minute]);
    let s = spec(ReportKind::Volume, &[]);
    assert_eq!(e.report_source(&s).await.unwrap(), MINUTE);
    let volume = same_as_raw(&e, &s).await;
    assert!(e.sql("SELECT * FROM rollup_hour").await.is_err());
    // Once the hour rollup covers the version too, both answer, the same.
    commit_files(
        root,
        Table::RollupHour,
        std::slice::from_ref(&rrel),
        Some(v),
    );
    let e = crate::testutil::open(root, crate::Catalog::builtin())
        .await
        .unwrap();
    assert_eq!(e.rollups().await.unwrap(), [Rollup::Minute, Rollup::Hour]);
    assert_eq!(same_as_raw(&e, &s).await, volume);
}

#[tokio::test]
async fn sql_reads_the_rollup_tables() {
    let (_d, e) = rollup_engine().await;
    // Day 2 holds 16 rows for 19 calls: 6 + 10 groups over its two files, each written in two
    // runs (a key of both runs of a file appears twice).
    let out = e
        .sql(
            "SELECT day, sum(calls) AS calls, count(*) AS rows, min(first_ts) AS first \
             FROM rollup_hour GROUP BY day ORDER BY day",
        )
        .await
        .unwrap();
    assert_eq!(
        lines(&out),
        [
            "+------------+-------+------+----------------------+",
            "| day        | calls | rows | first                |",
            "+------------+-------+------+----------------------+",
            "| 2026-11-01 | 4     | 4    | 2026-11-01T23:00:00Z |",
            "| 2026-11-02 | 19    | 16   | 2026-11-02T09:15:00Z |",
            "| 2026-11-03 | 7     | 7    | 2026-11-03T00:00:00Z |",
            "+------------+-------+------+----------------------+",
        ]
    );
    let empty = tempfile::tempdir().unwrap();
    let e = crate::testutil::open(empty.path(), crate::Catalog::builtin())
        .await
        .unwrap();
    assert_eq!(e.rollups().await.unwrap(), [Rollup::Minute, Rollup::Hour]);
    let t = e.context().table(ROLLUP_MINUTE_TABLE).await.unwrap();
    assert_eq!(
        t.schema().as_arrow().fields().len(),
        crate::rollup_table_schema().fields().len()
    );
}
