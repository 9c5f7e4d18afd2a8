//! Tests of the reports and the timeline over the fixture warehouse (`testutil.rs`): exact
//! pretty-printed output for each report, groupings, filters, `top`, and partition pruning.

use super::*;
use crate::testutil::{engine, lines, micros, rollup_engine};
use crate::TimelineSpec;

fn spec(kind: ReportKind) -> ReportSpec {
    ReportSpec::new(kind)
}

#[track_caller]
fn check(out: &QueryOutput, expected: &[&str]) {
    let got = lines(out);
    assert_eq!(
        got,
        expected,
        "\nexpected:\n{}\ngot:\n{}\n",
        expected.join("\n"),
        got.join("\n")
    );
}

/// The files the scan of a plan reads (the `.parquet` paths in its DataSourceExec lines).
fn scanned_files(plan: &str) -> Vec<String> {
    let mut files: Vec<String> = plan
        .lines()
        .filter(|l| l.contains("DataSourceExec"))
        .flat_map(|l| l.split(['[', ']', ',', ' ']))
        .filter(|w| w.ends_with(".parquet"))
        .map(|w| {
            let parts: Vec<&str> = w.rsplitn(3, '/').collect();
            format!("{}/{}", parts[1], parts[0])
        })
        .collect();
    files.sort();
    files
}

#[test]
fn group_by_is_canonicalised_and_defaulted() {
    let mut s = spec(ReportKind::Volume);
    assert_eq!(s.effective_by(), [GroupBy::Identity, GroupBy::Tool]);
    s.by = vec![
        GroupBy::Minute,
        GroupBy::Rule,
        GroupBy::Identity,
        GroupBy::Rule,
    ];
    assert_eq!(
        s.effective_by(),
        [GroupBy::Identity, GroupBy::Rule, GroupBy::Minute]
    );
    s.kind = ReportKind::Tools;
    assert_eq!(
        s.effective_by(),
        [
            GroupBy::Identity,
            GroupBy::Tool,
            GroupBy::Rule,
            GroupBy::Minute
        ]
    );
    s.kind = ReportKind::Destructive;
    assert!(s.effective_by().is_empty());
    assert_eq!(
        spec(ReportKind::Identities).effective_by(),
        [GroupBy::Identity]
    );
}

#[test]
fn names_parse() {
    assert_eq!(
        "rate_limits".parse::<ReportKind>(),
        Ok(ReportKind::RateLimits)
    );
    assert_eq!(
        "Rate-Limits".parse::<ReportKind>(),
        Ok(ReportKind::RateLimits)
    );
    for k in ReportKind::ALL {
        assert_eq!(k.as_str().parse::<ReportKind>(), Ok(k));
    }
    for g in GroupBy::ALL {
        assert_eq!(g.to_string().parse::<GroupBy>(), Ok(g));
    }
    assert!("week"
        .parse::<GroupBy>()
        .unwrap_err()
        .contains("unknown group `week`"));
    assert!("top".parse::<ReportKind>().is_err());
}

/// Calls per identity and tool, busiest first; the null tool (an `initialize`) and the null identity sort last.
#[tokio::test]
async fn volume_default() {
    // The same answer from the decisions and, on the rollup fixture, from the rollup.
    for ((_dir, e), source) in [
        (engine().await, ReportSource::Decisions),
        (rollup_engine().await, ReportSource::Rollup(Rollup::Hour)),
    ] {
        let s = spec(ReportKind::Volume);
        assert_eq!(e.report_source(&s).await.unwrap(), source);
        check(
        &e.report(&s).await.unwrap(),
        &[
            "+----------+----------------------+-------+-------+------+--------------+-------------------+-------+---------+",
            "| identity | tool                 | calls | allow | deny | rate_limited | approval_required | error | unknown |",
            "+----------+----------------------+-------+-------+------+--------------+-------------------+-------+---------+",
            "| bob      | session_create       | 5     | 1     | 0    | 4            | 0                 | 0     | 0       |",
            "| alice    | create_charge        | 4     | 1     | 3    | 0            | 0                 | 0     | 0       |",
            "| carol    | delete_session       | 3     | 1     | 1    | 0            | 1                 | 0     | 0       |",
            "| alice    | session_destroy      | 2     | 0     | 2    | 0            | 0                 | 0     | 0       |",
            "| bob      | session_destroy      | 2     | 2     | 0    | 0            | 0                 | 0     | 0       |",
            "| alice    | navigate             | 1     | 1     | 0    | 0            | 0                 | 0     | 0       |",
            "| alice    | session_create       | 1     | 1     | 0    | 0            | 0                 | 0     | 0       |",
            "| alice    | session_list         | 1     | 1     | 0    | 0            | 0                 | 0     | 0       |",
            "| bob      | close_session        | 1     | 1     | 0    | 0            | 0                 | 0     | 0       |",
            "| bob      | send_message         | 1     | 0     | 0    | 1            | 0                 | 0     | 0       |",
            "| bob      | session_create_batch | 1     | 0     | 0    | 1            | 0                 | 0     | 0       |",
            "| bob      | session_list         | 1     | 1     | 0    | 0            | 0                 | 0     | 0       |",
            "| bob      |                      | 1     | 1     | 0    | 0            | 0                 | 0     | 0       |",
            "| carol    | get_document         | 1     | 0     | 0    | 0            | 0                 | 1     | 0       |",
            "| carol    | knowledge_search     | 1     | 1     | 0    | 0            | 0                 | 0     | 0       |",
            "| carol    | purge_cache          | 1     | 1     | 0    | 0            | 0                 | 0     | 0       |",
            "| carol    | weather              | 1     | 1     | 0    | 0            | 0                 | 0     | 0       |",
            "| dave     | delete_session       | 1     | 0     | 1    | 0            | 0                 | 0     | 0       |",
            "|          | send_message         | 1     | 0     | 0    | 0            | 0                 | 0     | 1       |",
            "+----------+----------------------+-------+-------+------+--------------+-------------------+-------+---------+",
        ],
    );
    }
}

/// Denials per identity and tool with the most frequent rule and its message.
#[tokio::test]
async fn denials_default() {
    // The same answer from the decisions and, on the rollup fixture, from the rollup.
    for ((_dir, e), source) in [
        (engine().await, ReportSource::Decisions),
        (rollup_engine().await, ReportSource::Rollup(Rollup::Hour)),
    ] {
        let s = spec(ReportKind::Denials);
        assert_eq!(e.report_source(&s).await.unwrap(), source);
        check(
        &e.report(&s).await.unwrap(),
        &[
            "+----------+-----------------+--------+-------+---------------------------------------------+----------------+------------------------------------------------+----------------------+----------------------+",
            "| identity | tool            | denied | rules | top_rule                                    | top_rule_calls | top_message                                    | first_seen           | last_seen            |",
            "+----------+-----------------+--------+-------+---------------------------------------------+----------------+------------------------------------------------+----------------------+----------------------+",
            "| alice    | create_charge   | 3      | 2     | /tools/create_charge/deny_if/args.amount-gt | 2              | Charges above 5000 need a human                | 2026-11-02T11:00:00Z | 2026-11-02T11:00:20Z |",
            "| alice    | session_destroy | 2      | 1     | (hidden)                                    | 2              | Tool \"session_destroy\" is hidden by policy     | 2026-11-01T23:10:00Z | 2026-11-03T00:00:00Z |",
            "| carol    | delete_session  | 1      | 1     | (default deny)                              | 1              | Tool \"delete_session\" is not allowed by policy | 2026-11-02T10:05:00Z | 2026-11-02T10:05:00Z |",
            "| dave     | delete_session  | 1      | 1     | (default deny)                              | 1              | Tool \"delete_session\" is not allowed by policy | 2026-11-03T09:00:00Z | 2026-11-03T09:00:00Z |",
            "+----------+-----------------+--------+-------+---------------------------------------------+----------------+------------------------------------------------+----------------------+----------------------+",
        ],
    );
    }
}

/// Rate limits per identity and tool: the counter and the busiest minute (09:15 holds 3 of bob's 4).
#[tokio::test]
async fn rate_limits_default() {
    // The same answer from the decisions and, on the rollup fixture, from the rollup.
    for ((_dir, e), source) in [
        (engine().await, ReportSource::Decisions),
        (rollup_engine().await, ReportSource::Rollup(Rollup::Minute)),
    ] {
        let s = spec(ReportKind::RateLimits);
        assert_eq!(e.report_source(&s).await.unwrap(), source);
        check(
        &e.report(&s).await.unwrap(),
        &[
            "+----------+----------------------+--------------+--------------------------------------------------+---------------+-----------------+----------------------+----------------------+----------------------+",
            "| identity | tool                 | rate_limited | counter                                          | counter_calls | peak_per_minute | peak_minute          | first_seen           | last_seen            |",
            "+----------+----------------------+--------------+--------------------------------------------------+---------------+-----------------+----------------------+----------------------+----------------------+",
            "| bob      | session_create       | 4            | /tools/session_create/limits/session_create_rate | 4             | 3               | 2026-11-02T09:15:00Z | 2026-11-02T09:15:10Z | 2026-11-02T09:16:05Z |",
            "| bob      | send_message         | 1            | /all_tools/limits/calls-per-minute               | 1             | 1               | 2026-11-03T08:00:00Z | 2026-11-03T08:00:00Z | 2026-11-03T08:00:00Z |",
            "| bob      | session_create_batch | 1            | /all_tools/limits/calls-per-minute               | 1             | 1               | 2026-11-02T09:16:00Z | 2026-11-02T09:16:10Z | 2026-11-02T09:16:10Z |",
            "+----------+----------------------+--------------+--------------------------------------------------+---------------+-----------------+----------------------+----------------------+----------------------+",
        ],
    );
    }
}

/// One row per identity; `purge_cache` counts as destructive through the heuristics.
#[tokio::test]
async fn identities_default() {
    let (_dir, e) = engine().await;
    let s = spec(ReportKind::Identities);
    check(
        &e.report(&s).await.unwrap(),
        &[
            "+----------+-------+-------+------+--------------+-------------------+-------+---------+-------+----------+-------------+---------------------+--------------------------+----------------------+",
            "| identity | calls | allow | deny | rate_limited | approval_required | error | unknown | tools | sessions | destructive | destructive_allowed | first_seen               | last_seen            |",
            "+----------+-------+-------+------+--------------+-------------------+-------+---------+-------+----------+-------------+---------------------+--------------------------+----------------------+",
            "| bob      | 12    | 6     | 0    | 6            | 0                 | 0     | 0       | 6     | 3        | 2           | 2                   | 2026-11-01T23:59:59.999Z | 2026-11-03T08:00:30Z |",
            "| alice    | 9     | 4     | 5    | 0            | 0                 | 0     | 0       | 5     | 3        | 2           | 0                   | 2026-11-01T23:00:00Z     | 2026-11-03T00:00:01Z |",
            "| carol    | 7     | 4     | 1    | 0            | 1                 | 1     | 0       | 5     | 3        | 4           | 2                   | 2026-11-02T10:00:00Z     | 2026-11-03T08:30:00Z |",
            "| dave     | 1     | 0     | 1    | 0            | 0                 | 0     | 0       | 1     | 1        | 1           | 0                   | 2026-11-03T09:00:00Z     | 2026-11-03T09:00:00Z |",
            "|          | 1     | 0     | 0    | 0            | 0                 | 0     | 1       | 1     | 0        | 0           | 0                   | 2026-11-02T11:30:00Z     | 2026-11-02T11:30:00Z |",
            "+----------+-------+-------+------+--------------+-------------------+-------+---------+-------+----------+-------------+---------------------+--------------------------+----------------------+",
        ],
    );
}

/// One row per tool (calls without a tool are left out) with its risk class and source.
#[tokio::test]
async fn tools_default() {
    let (_dir, e) = engine().await;
    let s = spec(ReportKind::Tools);
    check(
        &e.report(&s).await.unwrap(),
        &[
            "+----------------------+-------------+-------------+-------+-------+------+--------------+-------------------+-------+---------+------------+----------+----------------------+----------------------+",
            "| tool                 | risk        | risk_source | calls | allow | deny | rate_limited | approval_required | error | unknown | identities | sessions | first_seen           | last_seen            |",
            "+----------------------+-------------+-------------+-------+-------+------+--------------+-------------------+-------+---------+------------+----------+----------------------+----------------------+",
            "| session_create       | write       | builtin     | 6     | 2     | 0    | 4            | 0                 | 0     | 0       | 2          | 2        | 2026-11-01T23:00:00Z | 2026-11-02T09:16:05Z |",
            "| create_charge        | write       | builtin     | 4     | 1     | 3    | 0            | 0                 | 0     | 0       | 1          | 1        | 2026-11-02T11:00:00Z | 2026-11-02T11:01:00Z |",
            "| delete_session       | destructive | builtin     | 4     | 1     | 2    | 0            | 1                 | 0     | 0       | 2          | 3        | 2026-11-02T10:00:30Z | 2026-11-03T09:00:00Z |",
            "| session_destroy      | destructive | builtin     | 4     | 2     | 2    | 0            | 0                 | 0     | 0       | 2          | 3        | 2026-11-01T23:10:00Z | 2026-11-03T00:00:00Z |",
            "| send_message         | write       | builtin     | 2     | 0     | 0    | 1            | 0                 | 0     | 1       | 1          | 1        | 2026-11-02T11:30:00Z | 2026-11-03T08:00:00Z |",
            "| session_list         | read        | builtin     | 2     | 2     | 0    | 0            | 0                 | 0     | 0       | 2          | 2        | 2026-11-02T09:21:00Z | 2026-11-03T00:00:01Z |",
            "| close_session        | write       | builtin     | 1     | 1     | 0    | 0            | 0                 | 0     | 0       | 1          | 1        | 2026-11-03T08:00:30Z | 2026-11-03T08:00:30Z |",
            "| get_document         | read        | builtin     | 1     | 0     | 0    | 0            | 0                 | 1     | 0       | 1          | 1        | 2026-11-02T10:06:00Z | 2026-11-02T10:06:00Z |",
            "| knowledge_search     | read        | builtin     | 1     | 1     | 0    | 0            | 0                 | 0     | 0       | 1          | 1        | 2026-11-02T10:00:00Z | 2026-11-02T10:00:00Z |",
            "| navigate             | write       | builtin     | 1     | 1     | 0    | 0            | 0                 | 0     | 0       | 1          | 1        | 2026-11-01T23:00:05Z | 2026-11-01T23:00:05Z |",
            "| purge_cache          | destructive | heuristic   | 1     | 1     | 0    | 0            | 0                 | 0     | 0       | 1          | 1        | 2026-11-02T12:00:00Z | 2026-11-02T12:00:00Z |",
            "| session_create_batch | write       | builtin     | 1     | 0     | 0    | 1            | 0                 | 0     | 0       | 1          | 1        | 2026-11-02T09:16:10Z | 2026-11-02T09:16:10Z |",
            "| weather              | unknown     | heuristic   | 1     | 1     | 0    | 0            | 0                 | 0     | 0       | 1          | 1        | 2026-11-03T08:30:00Z | 2026-11-03T08:30:00Z |",
            "+----------------------+-------------+-------------+-------+-------+------+--------------+-------------------+-------+---------+------------+----------+----------------------+----------------------+",
        ],
    );
}

/// Every destructive call: the allowed ones first, then by time.
#[tokio::test]
async fn destructive_default() {
    let (_dir, e) = engine().await;
    let s = spec(ReportKind::Destructive);
    check(
        &e.report(&s).await.unwrap(),
        &[
            "+----------------------+----------+---------+----------+-----------------+-------------------+--------------------------------+--------------------------------------------------+",
            "| ts                   | identity | session | server   | tool            | decision          | rule                           | message                                          |",
            "+----------------------+----------+---------+----------+-----------------+-------------------+--------------------------------+--------------------------------------------------+",
            "| 2026-11-02T09:20:00Z | bob      | s3      | leapfrog | session_destroy | allow             |                                |                                                  |",
            "| 2026-11-02T09:20:01Z | bob      | s3      | leapfrog | session_destroy | allow             |                                |                                                  |",
            "| 2026-11-02T12:00:00Z | carol    | s6      | mcacp    | purge_cache     | allow             |                                |                                                  |",
            "| 2026-11-03T08:30:00Z | carol    | s9      | weknora  | delete_session  | allow             |                                |                                                  |",
            "| 2026-11-01T23:10:00Z | alice    | s1      | leapfrog | session_destroy | deny              | (hidden)                       | Tool \"session_destroy\" is hidden by policy       |",
            "| 2026-11-02T10:00:30Z | carol    | s4      | weknora  | delete_session  | approval_required | /tools/delete_session/approval | Call to \"delete_session\" requires human approval |",
            "| 2026-11-02T10:05:00Z | carol    | s4      | weknora  | delete_session  | deny              | (default deny)                 | Tool \"delete_session\" is not allowed by policy   |",
            "| 2026-11-03T00:00:00Z | alice    | s7      | leapfrog | session_destroy | deny              | (hidden)                       | Tool \"session_destroy\" is hidden by policy       |",
            "| 2026-11-03T09:00:00Z | dave     | s10     | weknora  | delete_session  | deny              | (default deny)                 | Tool \"delete_session\" is not allowed by policy   |",
            "+----------------------+----------+---------+----------+-----------------+-------------------+--------------------------------+--------------------------------------------------+",
        ],
    );
}

/// Grouped by rule, the top-rule columns would repeat the group and are left out.
#[tokio::test]
async fn denials_by_rule() {
    let (_dir, e) = engine().await;
    let s = ReportSpec {
        by: vec![GroupBy::Rule],
        ..spec(ReportKind::Denials)
    };
    check(
        &e.report(&s).await.unwrap(),
        &[
            "+---------------------------------------------+--------+------------------------------------------------+----------------------+----------------------+",
            "| rule                                        | denied | top_message                                    | first_seen           | last_seen            |",
            "+---------------------------------------------+--------+------------------------------------------------+----------------------+----------------------+",
            "| (default deny)                              | 2      | Tool \"delete_session\" is not allowed by policy | 2026-11-02T10:05:00Z | 2026-11-03T09:00:00Z |",
            "| (hidden)                                    | 2      | Tool \"session_destroy\" is hidden by policy     | 2026-11-01T23:10:00Z | 2026-11-03T00:00:00Z |",
            "| /tools/create_charge/deny_if/args.amount-gt | 2      | Charges above 5000 need a human                | 2026-11-02T11:00:00Z | 2026-11-02T11:00:10Z |",
            "| /tools/create_charge/require/args.reason    | 1      | A reason is required                           | 2026-11-02T11:00:20Z | 2026-11-02T11:00:20Z |",
            "+---------------------------------------------+--------+------------------------------------------------+----------------------+----------------------+",
        ],
    );
}

/// A user order (hour, decision, identity) comes out canonical (identity, decision, hour), ordered by hour first.
#[tokio::test]
async fn volume_hour_decision_identity() {
    let (_dir, e) = engine().await;
    let s = ReportSpec {
        by: vec![GroupBy::Hour, GroupBy::Decision, GroupBy::Identity],
        identities: vec!["bob".into()],
        ..spec(ReportKind::Volume)
    };
    check(
        &e.report(&s).await.unwrap(),
        &[
            "+----------+--------------+----------------------+-------+-------+------+--------------+-------------------+-------+---------+",
            "| identity | decision     | hour                 | calls | allow | deny | rate_limited | approval_required | error | unknown |",
            "+----------+--------------+----------------------+-------+-------+------+--------------+-------------------+-------+---------+",
            "| bob      | allow        | 2026-11-01T23:00:00Z | 1     | 1     | 0    | 0            | 0                 | 0     | 0       |",
            "| bob      | rate_limited | 2026-11-02T09:00:00Z | 5     | 0     | 0    | 5            | 0                 | 0     | 0       |",
            "| bob      | allow        | 2026-11-02T09:00:00Z | 4     | 4     | 0    | 0            | 0                 | 0     | 0       |",
            "| bob      | allow        | 2026-11-03T08:00:00Z | 1     | 1     | 0    | 0            | 0                 | 0     | 0       |",
            "| bob      | rate_limited | 2026-11-03T08:00:00Z | 1     | 0     | 0    | 1            | 0                 | 0     | 0       |",
            "+----------+--------------+----------------------+-------+-------+------+--------------+-------------------+-------+---------+",
        ],
    );
}

/// Day buckets are UTC dates; 23:59:59.999 stays on its day.
#[tokio::test]
async fn volume_by_day() {
    let (_dir, e) = engine().await;
    let s = ReportSpec {
        by: vec![GroupBy::Day],
        ..spec(ReportKind::Volume)
    };
    check(
        &e.report(&s).await.unwrap(),
        &[
            "+------------+-------+-------+------+--------------+-------------------+-------+---------+",
            "| day        | calls | allow | deny | rate_limited | approval_required | error | unknown |",
            "+------------+-------+-------+------+--------------+-------------------+-------+---------+",
            "| 2026-11-01 | 4     | 3     | 1    | 0            | 0                 | 0     | 0       |",
            "| 2026-11-02 | 19    | 7     | 4    | 5            | 1                 | 1     | 1       |",
            "| 2026-11-03 | 7     | 4     | 2    | 1            | 0                 | 0     | 0       |",
            "+------------+-------+-------+------+--------------+-------------------+-------+---------+",
        ],
    );
}

/// Minute buckets: ties in one minute are broken by the rule.
#[tokio::test]
async fn rate_limits_minute_rule() {
    let (_dir, e) = engine().await;
    let s = ReportSpec {
        by: vec![GroupBy::Minute, GroupBy::Rule],
        ..spec(ReportKind::RateLimits)
    };
    check(
        &e.report(&s).await.unwrap(),
        &[
            "+--------------------------------------------------+----------------------+--------------+-----------------+----------------------+----------------------+----------------------+",
            "| rule                                             | minute               | rate_limited | peak_per_minute | peak_minute          | first_seen           | last_seen            |",
            "+--------------------------------------------------+----------------------+--------------+-----------------+----------------------+----------------------+----------------------+",
            "| /tools/session_create/limits/session_create_rate | 2026-11-02T09:15:00Z | 3            | 3               | 2026-11-02T09:15:00Z | 2026-11-02T09:15:10Z | 2026-11-02T09:15:30Z |",
            "| /all_tools/limits/calls-per-minute               | 2026-11-02T09:16:00Z | 1            | 1               | 2026-11-02T09:16:00Z | 2026-11-02T09:16:10Z | 2026-11-02T09:16:10Z |",
            "| /tools/session_create/limits/session_create_rate | 2026-11-02T09:16:00Z | 1            | 1               | 2026-11-02T09:16:00Z | 2026-11-02T09:16:05Z | 2026-11-02T09:16:05Z |",
            "| /all_tools/limits/calls-per-minute               | 2026-11-03T08:00:00Z | 1            | 1               | 2026-11-03T08:00:00Z | 2026-11-03T08:00:00Z | 2026-11-03T08:00:00Z |",
            "+--------------------------------------------------+----------------------+--------------+-----------------+----------------------+----------------------+----------------------+",
        ],
    );
}

/// Extra groups add to the report's own key.
#[tokio::test]
async fn identities_by_day() {
    let (_dir, e) = engine().await;
    let s = ReportSpec {
        by: vec![GroupBy::Day],
        ..spec(ReportKind::Identities)
    };
    check(
        &e.report(&s).await.unwrap(),
        &[
            "+----------+------------+-------+-------+------+--------------+-------------------+-------+---------+-------+----------+-------------+---------------------+--------------------------+--------------------------+",
            "| identity | day        | calls | allow | deny | rate_limited | approval_required | error | unknown | tools | sessions | destructive | destructive_allowed | first_seen               | last_seen                |",
            "+----------+------------+-------+-------+------+--------------+-------------------+-------+---------+-------+----------+-------------+---------------------+--------------------------+--------------------------+",
            "| alice    | 2026-11-01 | 3     | 2     | 1    | 0            | 0                 | 0     | 0       | 3     | 1        | 1           | 0                   | 2026-11-01T23:00:00Z     | 2026-11-01T23:10:00Z     |",
            "| bob      | 2026-11-01 | 1     | 1     | 0    | 0            | 0                 | 0     | 0       | 0     | 1        | 0           | 0                   | 2026-11-01T23:59:59.999Z | 2026-11-01T23:59:59.999Z |",
            "| bob      | 2026-11-02 | 9     | 4     | 0    | 5            | 0                 | 0     | 0       | 4     | 1        | 2           | 2                   | 2026-11-02T09:15:00Z     | 2026-11-02T09:21:00Z     |",
            "| carol    | 2026-11-02 | 5     | 2     | 1    | 0            | 1                 | 1     | 0       | 4     | 2        | 3           | 1                   | 2026-11-02T10:00:00Z     | 2026-11-02T12:00:00Z     |",
            "| alice    | 2026-11-02 | 4     | 1     | 3    | 0            | 0                 | 0     | 0       | 1     | 1        | 0           | 0                   | 2026-11-02T11:00:00Z     | 2026-11-02T11:01:00Z     |",
            "|          | 2026-11-02 | 1     | 0     | 0    | 0            | 0                 | 0     | 1       | 1     | 0        | 0           | 0                   | 2026-11-02T11:30:00Z     | 2026-11-02T11:30:00Z     |",
            "| alice    | 2026-11-03 | 2     | 1     | 1    | 0            | 0                 | 0     | 0       | 2     | 1        | 1           | 0                   | 2026-11-03T00:00:00Z     | 2026-11-03T00:00:01Z     |",
            "| bob      | 2026-11-03 | 2     | 1     | 0    | 1            | 0                 | 0     | 0       | 2     | 1        | 0           | 0                   | 2026-11-03T08:00:00Z     | 2026-11-03T08:00:30Z     |",
            "| carol    | 2026-11-03 | 2     | 2     | 0    | 0            | 0                 | 0     | 0       | 2     | 1        | 1           | 1                   | 2026-11-03T08:30:00Z     | 2026-11-03T08:30:00Z     |",
            "| dave     | 2026-11-03 | 1     | 0     | 1    | 0            | 0                 | 0     | 0       | 1     | 1        | 1           | 0                   | 2026-11-03T09:00:00Z     | 2026-11-03T09:00:00Z     |",
            "+----------+------------+-------+-------+------+--------------+-------------------+-------+---------+-------+----------+-------------+---------------------+--------------------------+--------------------------+",
        ],
    );
}

/// The tools report keeps `tool` and classifies with the server when grouped by it; a server filter.
#[tokio::test]
async fn tools_server_identity() {
    let (_dir, e) = engine().await;
    let s = ReportSpec {
        by: vec![GroupBy::Server, GroupBy::Identity],
        servers: vec!["weknora".into()],
        ..spec(ReportKind::Tools)
    };
    check(
        &e.report(&s).await.unwrap(),
        &[
            "+----------+------------------+---------+-------------+-------------+-------+-------+------+--------------+-------------------+-------+---------+------------+----------+----------------------+----------------------+",
            "| identity | tool             | server  | risk        | risk_source | calls | allow | deny | rate_limited | approval_required | error | unknown | identities | sessions | first_seen           | last_seen            |",
            "+----------+------------------+---------+-------------+-------------+-------+-------+------+--------------+-------------------+-------+---------+------------+----------+----------------------+----------------------+",
            "| carol    | delete_session   | weknora | destructive | builtin     | 3     | 1     | 1    | 0            | 1                 | 0     | 0       | 1          | 2        | 2026-11-02T10:00:30Z | 2026-11-03T08:30:00Z |",
            "| carol    | get_document     | weknora | read        | builtin     | 1     | 0     | 0    | 0            | 0                 | 1     | 0       | 1          | 1        | 2026-11-02T10:06:00Z | 2026-11-02T10:06:00Z |",
            "| carol    | knowledge_search | weknora | read        | builtin     | 1     | 1     | 0    | 0            | 0                 | 0     | 0       | 1          | 1        | 2026-11-02T10:00:00Z | 2026-11-02T10:00:00Z |",
            "| carol    | weather          | weknora | unknown     | heuristic   | 1     | 1     | 0    | 0            | 0                 | 0     | 0       | 1          | 1        | 2026-11-03T08:30:00Z | 2026-11-03T08:30:00Z |",
            "| dave     | delete_session   | weknora | destructive | builtin     | 1     | 0     | 1    | 0            | 0                 | 0     | 0       | 1          | 1        | 2026-11-03T09:00:00Z | 2026-11-03T09:00:00Z |",
            "+----------+------------------+---------+-------------+-------------+-------+-------+------+--------------+-------------------+-------+---------+------------+----------+----------------------+----------------------+",
        ],
    );
}

/// `since` is inclusive and `until` exclusive (e18 at 11:00:00 is out).
#[tokio::test]
async fn volume_since_until() {
    let (_dir, e) = engine().await;
    let s = ReportSpec {
        by: vec![GroupBy::Server, GroupBy::Session],
        since: Some(micros("2026-11-02T09:00:00Z")),
        until: Some(micros("2026-11-02T11:00:00Z")),
        ..spec(ReportKind::Volume)
    };
    check(
        &e.report(&s).await.unwrap(),
        &[
            "+----------+---------+-------+-------+------+--------------+-------------------+-------+---------+",
            "| server   | session | calls | allow | deny | rate_limited | approval_required | error | unknown |",
            "+----------+---------+-------+-------+------+--------------+-------------------+-------+---------+",
            "| leapfrog | s3      | 9     | 4     | 0    | 5            | 0                 | 0     | 0       |",
            "| weknora  | s4      | 4     | 1     | 1    | 0            | 1                 | 1     | 0       |",
            "+----------+---------+-------+-------+------+--------------+-------------------+-------+---------+",
        ],
    );
}

/// OR within a filter list, AND across lists.
#[tokio::test]
async fn volume_identities_tools() {
    let (_dir, e) = engine().await;
    let s = ReportSpec {
        identities: vec!["alice".into(), "carol".into()],
        tools: vec![
            "delete_session".into(),
            "session_destroy".into(),
            "purge_cache".into(),
        ],
        ..spec(ReportKind::Volume)
    };
    check(
        &e.report(&s).await.unwrap(),
        &[
            "+----------+-----------------+-------+-------+------+--------------+-------------------+-------+---------+",
            "| identity | tool            | calls | allow | deny | rate_limited | approval_required | error | unknown |",
            "+----------+-----------------+-------+-------+------+--------------+-------------------+-------+---------+",
            "| carol    | delete_session  | 3     | 1     | 1    | 0            | 1                 | 0     | 0       |",
            "| alice    | session_destroy | 2     | 0     | 2    | 0            | 0                 | 0     | 0       |",
            "| carol    | purge_cache     | 1     | 1     | 0    | 0            | 0                 | 0     | 0       |",
            "+----------+-----------------+-------+-------+------+--------------+-------------------+-------+---------+",
        ],
    );
}

/// Decision and session filters.
#[tokio::test]
async fn volume_decisions_sessions() {
    let (_dir, e) = engine().await;
    let s = ReportSpec {
        by: vec![GroupBy::Identity],
        decisions: vec![Decision::Deny, Decision::ApprovalRequired],
        sessions: vec!["s4".into(), "s7".into()],
        ..spec(ReportKind::Volume)
    };
    check(
        &e.report(&s).await.unwrap(),
        &[
            "+----------+-------+-------+------+--------------+-------------------+-------+---------+",
            "| identity | calls | allow | deny | rate_limited | approval_required | error | unknown |",
            "+----------+-------+-------+------+--------------+-------------------+-------+---------+",
            "| carol    | 2     | 0     | 1    | 0            | 1                 | 0     | 0       |",
            "| alice    | 1     | 0     | 1    | 0            | 0                 | 0     | 0       |",
            "+----------+-------+-------+------+--------------+-------------------+-------+---------+",
        ],
    );
}

/// `top` keeps the first rows of the report's order.
#[tokio::test]
async fn volume_top() {
    let (_dir, e) = engine().await;
    let s = ReportSpec {
        top: Some(3),
        ..spec(ReportKind::Volume)
    };
    check(
        &e.report(&s).await.unwrap(),
        &[
            "+----------+----------------+-------+-------+------+--------------+-------------------+-------+---------+",
            "| identity | tool           | calls | allow | deny | rate_limited | approval_required | error | unknown |",
            "+----------+----------------+-------+-------+------+--------------+-------------------+-------+---------+",
            "| bob      | session_create | 5     | 1     | 0    | 4            | 0                 | 0     | 0       |",
            "| alice    | create_charge  | 4     | 1     | 3    | 0            | 0                 | 0     | 0       |",
            "| carol    | delete_session | 3     | 1     | 1    | 0            | 1                 | 0     | 0       |",
            "+----------+----------------+-------+-------+------+--------------+-------------------+-------+---------+",
        ],
    );
}

/// The destructive report ignores `by` and honours `top`.
#[tokio::test]
async fn destructive_top() {
    let (_dir, e) = engine().await;
    let s = ReportSpec {
        by: vec![GroupBy::Tool],
        top: Some(2),
        ..spec(ReportKind::Destructive)
    };
    check(
        &e.report(&s).await.unwrap(),
        &[
            "+----------------------+----------+---------+----------+-----------------+----------+------+---------+",
            "| ts                   | identity | session | server   | tool            | decision | rule | message |",
            "+----------------------+----------+---------+----------+-----------------+----------+------+---------+",
            "| 2026-11-02T09:20:00Z | bob      | s3      | leapfrog | session_destroy | allow    |      |         |",
            "| 2026-11-02T09:20:01Z | bob      | s3      | leapfrog | session_destroy | allow    |      |         |",
            "+----------------------+----------+---------+----------+-----------------+----------+------+---------+",
        ],
    );
}

/// Denials per server and day.
#[tokio::test]
async fn denials_day_server() {
    let (_dir, e) = engine().await;
    let s = ReportSpec {
        by: vec![GroupBy::Day, GroupBy::Server],
        ..spec(ReportKind::Denials)
    };
    check(
        &e.report(&s).await.unwrap(),
        &[
            "+----------+------------+--------+-------+---------------------------------------------+----------------+------------------------------------------------+----------------------+----------------------+",
            "| server   | day        | denied | rules | top_rule                                    | top_rule_calls | top_message                                    | first_seen           | last_seen            |",
            "+----------+------------+--------+-------+---------------------------------------------+----------------+------------------------------------------------+----------------------+----------------------+",
            "| leapfrog | 2026-11-01 | 1      | 1     | (hidden)                                    | 1              | Tool \"session_destroy\" is hidden by policy     | 2026-11-01T23:10:00Z | 2026-11-01T23:10:00Z |",
            "| payments | 2026-11-02 | 3      | 2     | /tools/create_charge/deny_if/args.amount-gt | 2              | Charges above 5000 need a human                | 2026-11-02T11:00:00Z | 2026-11-02T11:00:20Z |",
            "| weknora  | 2026-11-02 | 1      | 1     | (default deny)                              | 1              | Tool \"delete_session\" is not allowed by policy | 2026-11-02T10:05:00Z | 2026-11-02T10:05:00Z |",
            "| leapfrog | 2026-11-03 | 1      | 1     | (hidden)                                    | 1              | Tool \"session_destroy\" is hidden by policy     | 2026-11-03T00:00:00Z | 2026-11-03T00:00:00Z |",
            "| weknora  | 2026-11-03 | 1      | 1     | (default deny)                              | 1              | Tool \"delete_session\" is not allowed by policy | 2026-11-03T09:00:00Z | 2026-11-03T09:00:00Z |",
            "+----------+------------+--------+-------+---------------------------------------------+----------------+------------------------------------------------+----------------------+----------------------+",
        ],
    );
}

#[tokio::test]
async fn time_filters_prune_day_partitions() {
    let (_dir, e) = engine().await;
    let all = e.explain_report(&spec(ReportKind::Volume)).await.unwrap();
    assert_eq!(
        scanned_files(&all),
        [
            "day=2026-11-01/part-0.parquet",
            "day=2026-11-02/part-0.parquet",
            "day=2026-11-02/part-1.parquet",
            "day=2026-11-03/part-0.parquet",
        ],
        "{all}"
    );
    let s = ReportSpec {
        since: Some(micros("2026-11-03T00:00:00Z")),
        ..spec(ReportKind::Volume)
    };
    let plan = e.explain_report(&s).await.unwrap();
    assert_eq!(
        scanned_files(&plan),
        ["day=2026-11-03/part-0.parquet"],
        "{plan}"
    );
    // `until` is exclusive: midnight does not pull in the next day.
    let s = ReportSpec {
        since: Some(micros("2026-11-01T23:30:00Z")),
        until: Some(micros("2026-11-03T00:00:00Z")),
        ..spec(ReportKind::Denials)
    };
    let plan = e.explain_report(&s).await.unwrap();
    assert_eq!(
        scanned_files(&plan),
        [
            "day=2026-11-01/part-0.parquet",
            "day=2026-11-02/part-0.parquet",
            "day=2026-11-02/part-1.parquet",
        ],
        "{plan}"
    );
}

#[tokio::test]
async fn reports_read_only_the_columns_they_need() {
    let (_dir, e) = engine().await;
    for kind in ReportKind::ALL {
        let plan = e.explain_report(&spec(kind)).await.unwrap();
        let scan = plan.lines().find(|l| l.contains("DataSourceExec")).unwrap();
        let projection = scan
            .split("projection=[")
            .nth(1)
            .and_then(|p| p.split(']').next())
            .unwrap();
        for column in projection.split(", ") {
            assert!(
                !["raw", "args", "arg_keys", "ingest_file"].contains(&column),
                "{kind} reads {column}: {scan}"
            );
        }
    }
    let plan = e.explain_report(&spec(ReportKind::Volume)).await.unwrap();
    assert!(
        plan.contains("projection=[identity, tool, decision]"),
        "{plan}"
    );
}

#[tokio::test]
async fn invalid_specs_are_errors() {
    let (_dir, e) = engine().await;
    let s = ReportSpec {
        since: Some(micros("2026-11-03T00:00:00Z")),
        until: Some(micros("2026-11-02T00:00:00Z")),
        ..spec(ReportKind::Volume)
    };
    let err = e.report(&s).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid time range: `until` (2026-11-02T00:00:00.000000Z) is not after `since` \
         (2026-11-03T00:00:00.000000Z)"
    );
    let s = ReportSpec {
        top: Some(0),
        ..spec(ReportKind::Volume)
    };
    assert!(matches!(
        e.report(&s).await.unwrap_err(),
        Error::InvalidSpec { what: "top", .. }
    ));
}

#[tokio::test]
async fn filters_matching_nothing_give_an_empty_report() {
    let (_dir, e) = engine().await;
    let s = ReportSpec {
        identities: vec!["nobody' OR '1'='1".into()],
        ..spec(ReportKind::Denials)
    };
    let out = e.report(&s).await.unwrap();
    assert_eq!(out.num_rows(), 0);
    assert!(!out.warehouse_empty);
    assert_eq!(
        out.schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>(),
        [
            "identity",
            "tool",
            "denied",
            "rules",
            "top_rule",
            "top_rule_calls",
            "top_message",
            "first_seen",
            "last_seen"
        ]
    );
}

#[tokio::test]
async fn timeline_around_a_destruction() {
    let (_dir, e) = engine().await;
    let s = TimelineSpec {
        around: Some(micros("2026-11-02T09:20:00Z")),
        window: Some(5 * 60 * 1_000_000),
        ..TimelineSpec::new("bob")
    };
    let out = e.timeline(&s).await.unwrap();
    // [09:15:00, 09:25:00], both ends included.
    check(
        &out,
        &[
            "+----------------------+---------+----------+------------+----------------------+-------------+--------------+--------------------------------------------------+---------------------+------------+-------------+----------+",
            "| ts                   | session | server   | method     | tool                 | risk        | decision     | rule                                             | message             | latency_ms | destructive | event_id |",
            "+----------------------+---------+----------+------------+----------------------+-------------+--------------+--------------------------------------------------+---------------------+------------+-------------+----------+",
            "| 2026-11-02T09:15:00Z | s3      | leapfrog | tools/call | session_create       | write       | allow        |                                                  |                     | 10.0       | false       | e05      |",
            "| 2026-11-02T09:15:10Z | s3      | leapfrog | tools/call | session_create       | write       | rate_limited | /tools/session_create/limits/session_create_rate | Rate limit exceeded | 10.5       | false       | e06      |",
            "| 2026-11-02T09:15:20Z | s3      | leapfrog | tools/call | session_create       | write       | rate_limited | /tools/session_create/limits/session_create_rate | Rate limit exceeded | 11.0       | false       | e07      |",
            "| 2026-11-02T09:15:30Z | s3      | leapfrog | tools/call | session_create       | write       | rate_limited | /tools/session_create/limits/session_create_rate | Rate limit exceeded | 11.5       | false       | e08      |",
            "| 2026-11-02T09:16:05Z | s3      | leapfrog | tools/call | session_create       | write       | rate_limited | /tools/session_create/limits/session_create_rate | Rate limit exceeded | 12.0       | false       | e09      |",
            "| 2026-11-02T09:16:10Z | s3      | leapfrog | tools/call | session_create_batch | write       | rate_limited | /all_tools/limits/calls-per-minute               | Too many calls      | 12.5       | false       | e10      |",
            "| 2026-11-02T09:20:00Z | s3      | leapfrog | tools/call | session_destroy      | destructive | allow        |                                                  |                     | 13.0       | true        | e11      |",
            "| 2026-11-02T09:20:01Z | s3      | leapfrog | tools/call | session_destroy      | destructive | allow        |                                                  |                     | 13.5       | true        | e12      |",
            "| 2026-11-02T09:21:00Z | s3      | leapfrog | tools/call | session_list         | read        | allow        |                                                  |                     | 14.0       | false       | e13      |",
            "+----------------------+---------+----------+------------+----------------------+-------------+--------------+--------------------------------------------------+---------------------+------------+-------------+----------+",
        ],
    );
}

#[tokio::test]
async fn timeline_whole_history_of_a_session_with_ties_by_event_id() {
    let (_dir, e) = engine().await;
    let s = TimelineSpec {
        session: Some("s9".into()),
        ..TimelineSpec::new("carol")
    };
    check(
        &e.timeline(&s).await.unwrap(),
        &[
            "+----------------------+---------+---------+------------+----------------+-------------+----------+------+---------+------------+-------------+----------+",
            "| ts                   | session | server  | method     | tool           | risk        | decision | rule | message | latency_ms | destructive | event_id |",
            "+----------------------+---------+---------+------------+----------------+-------------+----------+------+---------+------------+-------------+----------+",
            "| 2026-11-03T08:30:00Z | s9      | weknora | tools/call | weather        | unknown     | allow    |      |         | 12.0       | false       | e28      |",
            "| 2026-11-03T08:30:00Z | s9      | weknora | tools/call | delete_session | destructive | allow    |      |         | 12.5       | true        | e29      |",
            "+----------------------+---------+---------+------------+----------------+-------------+----------+------+---------+------------+-------------+----------+",
        ],
    );
    let s = TimelineSpec {
        limit: Some(2),
        ..TimelineSpec::new("alice")
    };
    check(
        &e.timeline(&s).await.unwrap(),
        &[
            "+----------------------+---------+----------+------------+----------------+-------+----------+------+---------+------------+-------------+----------+",
            "| ts                   | session | server   | method     | tool           | risk  | decision | rule | message | latency_ms | destructive | event_id |",
            "+----------------------+---------+----------+------------+----------------+-------+----------+------+---------+------------+-------------+----------+",
            "| 2026-11-01T23:00:00Z | s1      | leapfrog | tools/call | session_create | write | allow    |      |         | 10.0       | false       | e01      |",
            "| 2026-11-01T23:00:05Z | s1      | leapfrog | tools/call | navigate       | write | allow    |      |         | 10.5       | false       | e02      |",
            "+----------------------+---------+----------+------------+----------------+-------+----------+------+---------+------------+-------------+----------+",
        ],
    );
}

#[tokio::test]
async fn timeline_prunes_by_its_window_and_checks_its_spec() {
    let (_dir, e) = engine().await;
    let s = TimelineSpec {
        around: Some(micros("2026-11-03T00:10:00Z")),
        ..TimelineSpec::new("alice")
    };
    // The default window is 30 minutes: 23:40 on the 2nd to 00:40 on the 3rd.
    let out = e.timeline(&s).await.unwrap();
    assert_eq!(out.num_rows(), 2);
    let s = TimelineSpec {
        window: Some(0),
        ..s
    };
    assert!(matches!(
        e.timeline(&s).await.unwrap_err(),
        Error::InvalidSpec { what: "window", .. }
    ));
    assert!(e.timeline(&TimelineSpec::new("")).await.is_err());
}
