//! Tests of opening warehouses (fixture, empty, missing), the registered tables and UDFs, and
//! user SQL.

use super::*;
use crate::testutil::{engine, lines, warehouse};
use crate::{ReportKind, ReportSpec, TimelineSpec};

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

fn field_summary(schema: &Schema) -> Vec<(String, DataType, bool)> {
    schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable()))
        .collect()
}

#[tokio::test]
async fn opens_the_fixture_and_ignores_hidden_files() {
    let (_dir, e) = engine().await;
    assert_eq!(e.days(), ["2026-11-01", "2026-11-02", "2026-11-03"]);
    assert_eq!(e.file_count(), 4);
    assert!(!e.is_empty());
    let out = e
        .sql("SELECT day, count(*) AS n, count(DISTINCT identity) AS who FROM decisions GROUP BY day ORDER BY day")
        .await
        .unwrap();
    check(
        &out,
        &[
            "+------------+----+-----+",
            "| day        | n  | who |",
            "+------------+----+-----+",
            "| 2026-11-01 | 4  | 2   |",
            "| 2026-11-02 | 19 | 3   |",
            "| 2026-11-03 | 7  | 4   |",
            "+------------+----+-----+",
        ],
    );
    assert!(!out.warehouse_empty);
    let mallory = e
        .sql("SELECT count(*) AS n FROM decisions WHERE identity = 'mallory'")
        .await
        .unwrap();
    check(&mallory, &["+---+", "| n |", "+---+", "| 0 |", "+---+"]);
}

#[tokio::test]
async fn the_table_schema_is_declared_with_a_date32_day() {
    let (_dir, e) = engine().await;
    let listed = e.context().table(DECISIONS_TABLE).await.unwrap();
    assert_eq!(
        field_summary(listed.schema().as_arrow()),
        field_summary(&table_schema())
    );
    assert_eq!(
        table_schema().field_with_name("day").unwrap().data_type(),
        &DataType::Date32
    );

    let empty_dir = tempfile::tempdir().unwrap();
    let empty = crate::testutil::open(empty_dir.path(), Catalog::builtin())
        .await
        .unwrap();
    let t = empty.context().table(DECISIONS_TABLE).await.unwrap();
    assert_eq!(
        field_summary(t.schema().as_arrow()),
        field_summary(&table_schema())
    );
}

#[tokio::test]
async fn sql_day_filters_prune_partitions() {
    let (_dir, e) = engine().await;
    let out = e
        .sql("EXPLAIN SELECT count(*) FROM decisions WHERE day = DATE '2026-11-02' AND tool_risk(tool) = 'destructive'")
        .await
        .unwrap();
    let text = out.to_pretty_string().unwrap();
    assert!(text.contains("day=2026-11-02/part-0.parquet"), "{text}");
    assert!(text.contains("day=2026-11-02/part-1.parquet"), "{text}");
    assert!(!text.contains("day=2026-11-01"), "{text}");
    assert!(!text.contains("day=2026-11-03"), "{text}");
    // Comparing with a string works too (coerced to a date).
    let out = e
        .sql("SELECT count(*) AS n FROM decisions WHERE day >= '2026-11-03'")
        .await
        .unwrap();
    check(&out, &["+---+", "| n |", "+---+", "| 7 |", "+---+"]);
}

#[tokio::test]
async fn tool_risk_in_sql() {
    let (_dir, e) = engine().await;
    let out = e
        .sql(
            "SELECT tool, tool_risk(tool) AS risk, tool_risk_source(tool, server) AS source, count(*) AS calls \
             FROM decisions WHERE day = '2026-11-03' GROUP BY tool, server ORDER BY risk, tool",
        )
        .await
        .unwrap();
    check(
        &out,
        &[
            "+-----------------+-------------+-----------+-------+",
            "| tool            | risk        | source    | calls |",
            "+-----------------+-------------+-----------+-------+",
            "| delete_session  | destructive | builtin   | 2     |",
            "| session_destroy | destructive | builtin   | 1     |",
            "| session_list    | read        | builtin   | 1     |",
            "| weather         | unknown     | heuristic | 1     |",
            "| close_session   | write       | builtin   | 1     |",
            "| send_message    | write       | builtin   | 1     |",
            "+-----------------+-------------+-----------+-------+",
        ],
    );
    // Scalars and nulls.
    let out = e
        .sql("SELECT tool_risk('DropTable') AS a, tool_risk('get_user', NULL) AS b, tool_risk(NULL) AS c, tool_risk_source('x') AS d")
        .await
        .unwrap();
    check(
        &out,
        &[
            "+-------------+------+---+-----------+",
            "| a           | b    | c | d         |",
            "+-------------+------+---+-----------+",
            "| destructive | read |   | heuristic |",
            "+-------------+------+---+-----------+",
        ],
    );
}

#[tokio::test]
async fn tools_table_merges_seen_tools_and_user_catalogue_files() {
    let dir = warehouse();
    let json = dir.path().join("tools.json");
    std::fs::write(
        &json,
        r#"{"tools": {"weather": "read", "leapfrog/session_list": "destructive"}}"#,
    )
    .unwrap();
    let toml = dir.path().join("more.toml");
    std::fs::write(
        &toml,
        "[tools]\nrotate_keys = \"write\"\n\"mcacp/send_message\" = \"read\"\n",
    )
    .unwrap();
    let catalog = Catalog::builtin()
        .with_file(&json)
        .unwrap()
        .with_file(&toml)
        .unwrap();
    let e = crate::testutil::open(dir.path(), catalog).await.unwrap();
    let out = e
        .sql("SELECT * FROM tools WHERE risk_source <> 'builtin' OR server IS NOT NULL ORDER BY tool, server NULLS FIRST")
        .await
        .unwrap();
    check(
        &out,
        &[
            "+--------------+----------+-------------+-------------+",
            "| tool         | server   | risk        | risk_source |",
            "+--------------+----------+-------------+-------------+",
            "| purge_cache  |          | destructive | heuristic   |",
            "| rotate_keys  |          | write       | catalog     |",
            "| send_message | mcacp    | read        | catalog     |",
            "| session_list | leapfrog | destructive | catalog     |",
            "| weather      |          | read        | catalog     |",
            "+--------------+----------+-------------+-------------+",
        ],
    );
    let out = e
        .sql("SELECT count(*) AS n, count(DISTINCT tool) AS tools FROM tools")
        .await
        .unwrap();
    // Rows: 28 built-in + 4 user entries + purge_cache (seen, not catalogued); the two
    // server-qualified entries share their tool name with a built-in row.
    check(
        &out,
        &[
            "+----+-------+",
            "| n  | tools |",
            "+----+-------+",
            "| 33 | 31    |",
            "+----+-------+",
        ],
    );
    // The server-qualified entry applies to calls on that server only.
    let out = e
        .sql("SELECT server, tool, tool_risk(tool, server) AS risk, count(*) AS calls FROM decisions \
              WHERE tool IN ('session_list', 'send_message') GROUP BY server, tool ORDER BY server, tool")
        .await
        .unwrap();
    check(
        &out,
        &[
            "+----------+--------------+-------------+-------+",
            "| server   | tool         | risk        | calls |",
            "+----------+--------------+-------------+-------+",
            "| leapfrog | session_list | destructive | 2     |",
            "| mcacp    | send_message | read        | 2     |",
            "+----------+--------------+-------------+-------+",
        ],
    );
    // ... and so in reports: session_list is now destructive.
    let out = e
        .report(&ReportSpec::new(ReportKind::Destructive))
        .await
        .unwrap();
    assert_eq!(out.num_rows(), 11);
    let out = e
        .sql("SELECT count(*) AS n FROM catalog_entries WHERE risk_source = 'catalog'")
        .await
        .unwrap();
    check(&out, &["+---+", "| n |", "+---+", "| 4 |", "+---+"]);
}

#[tokio::test]
async fn bad_sql_is_an_error_not_a_panic() {
    let (_dir, e) = engine().await;
    for (sql, wanted) in [
        ("SELEC 1", "query failed: SQL error: ParserError"),
        (
            "SELECT * FROM nope",
            "query failed: Error during planning: table 'datafusion.public.nope' not found",
        ),
        (
            "SELECT no_such_column FROM decisions",
            "query failed: Schema error: No field named no_such_column",
        ),
        (
            "SELECT tool_risk(1, 2, 3)",
            "query failed: Error during planning",
        ),
        (
            "CREATE TABLE t AS SELECT 1",
            "query failed: Error during planning: DDL not supported",
        ),
        (
            "COPY decisions TO '/tmp/verdict-copy.parquet'",
            "query failed: Error during planning: DML not supported",
        ),
        (
            "SET datafusion.execution.batch_size = 1",
            "query failed: Error during planning: Statement not supported",
        ),
    ] {
        let err = e.sql(sql).await.unwrap_err();
        assert!(matches!(err, Error::Sql { .. }), "{sql}: {err:?}");
        assert!(err.to_string().starts_with(wanted), "{sql}: {err}");
    }
}

#[tokio::test]
async fn information_schema_and_describe_work() {
    let (_dir, e) = engine().await;
    let out = e.sql("SHOW TABLES").await.unwrap();
    let text = out.to_pretty_string().unwrap();
    for table in ["decisions", "tools", "catalog_entries", "quarantine"] {
        assert!(text.contains(table), "{text}");
    }
    let out = e.sql("DESCRIBE decisions").await.unwrap();
    assert_eq!(out.num_rows(), 26);
}

#[tokio::test]
async fn the_quarantine_is_registered_when_a_statement_names_it() {
    let (_dir, e) = engine().await;
    let ctx = e.context();
    assert!(!ctx.table_exist(QUARANTINE_TABLE).unwrap(), "not at open");
    e.sql("SELECT count(*) FROM decisions").await.unwrap();
    assert!(
        !ctx.table_exist(QUARANTINE_TABLE).unwrap(),
        "nor for decisions"
    );
    // Named in a subquery, in any case: registered, then answered.
    let out = e
        .sql("SELECT (SELECT count(*) FROM Quarantine) AS bad, count(*) AS n FROM decisions")
        .await
        .unwrap();
    check(
        &out,
        &[
            "+-----+----+",
            "| bad | n  |",
            "+-----+----+",
            "| 0   | 30 |",
            "+-----+----+",
        ],
    );
    assert!(ctx.table_exist(QUARANTINE_TABLE).unwrap());
    // A statement that does not parse is still reported as such.
    let err = e.sql("SELEC 1 FROM quarantine").await.unwrap_err();
    assert!(matches!(err, Error::Sql { .. }), "{err:?}");
}

#[tokio::test]
async fn an_empty_warehouse_answers_with_zero_rows_and_a_flag() {
    // No decisions/ at all, then a decisions/ holding only files to ignore.
    let bare = tempfile::tempdir().unwrap();
    let decoys = tempfile::tempdir().unwrap();
    let d = decoys.path().join("decisions");
    crate::testutil::write_rows(
        &d.join("day=2026-11-02/.part-0.parquet"),
        &crate::testutil::DAY1[..1],
    );
    crate::testutil::write_rows(
        &d.join("_staging/day=2026-11-02/part-0.parquet"),
        &crate::testutil::DAY1[..1],
    );
    std::fs::create_dir_all(d.join("day=2026-11-03")).unwrap();
    for dir in [bare.path(), decoys.path()] {
        let e = crate::testutil::open(dir, Catalog::builtin())
            .await
            .unwrap();
        assert!(e.is_empty());
        assert!(e.days().is_empty());
        for kind in ReportKind::ALL {
            let out = e.report(&ReportSpec::new(kind)).await.unwrap();
            assert_eq!(out.num_rows(), 0, "{kind}");
            assert!(out.warehouse_empty, "{kind}");
        }
        let out = e.timeline(&TimelineSpec::new("alice")).await.unwrap();
        assert!(out.is_empty() && out.warehouse_empty);
        let out = e.sql("SELECT count(*) AS n FROM decisions").await.unwrap();
        check(&out, &["+---+", "| n |", "+---+", "| 0 |", "+---+"]);
        assert!(out.warehouse_empty);
        // The catalogue still lists its entries.
        let out = e.sql("SELECT count(*) AS n FROM tools").await.unwrap();
        check(&out, &["+----+", "| n  |", "+----+", "| 28 |", "+----+"]);
    }
}

#[tokio::test]
async fn a_missing_warehouse_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let err = crate::testutil::open(&missing, Catalog::builtin())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: no verdict warehouse here (nothing was ingested yet)",
            missing.display()
        )
    );
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let err = crate::testutil::open(&file, Catalog::builtin())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no verdict warehouse here"),
        "{err}"
    );
}

#[tokio::test]
async fn directories_no_commit_names_are_ignored() {
    let dir = warehouse();
    std::fs::create_dir_all(dir.path().join("decisions/day=yesterday")).unwrap();
    crate::testutil::write_rows(
        &dir.path().join("decisions/day=2026-11-05/part-9.parquet"),
        &crate::testutil::DAY1[..1],
    );
    let e = crate::testutil::open(dir.path(), Catalog::builtin())
        .await
        .unwrap();
    let out = e.sql("SELECT count(*) AS n FROM decisions").await.unwrap();
    check(&out, &["+----+", "| n  |", "+----+", "| 30 |", "+----+"]);
    assert_eq!(e.days(), ["2026-11-01", "2026-11-02", "2026-11-03"]);
}

#[tokio::test]
async fn relative_and_unusual_warehouse_paths() {
    let fixture = warehouse();
    let cwd = std::env::current_dir().unwrap();
    let up: std::path::PathBuf = std::iter::repeat_n("..", cwd.components().count() - 1).collect();
    let relative = up.join(fixture.path().strip_prefix("/").unwrap());
    assert!(relative.is_relative());
    for path in [fixture.path(), relative.as_path()] {
        let e = crate::testutil::open(path, Catalog::builtin())
            .await
            .unwrap();
        let out = e.sql("SELECT count(*) AS n FROM decisions").await.unwrap();
        check(&out, &["+----+", "| n  |", "+----+", "| 30 |", "+----+"]);
    }
    // A path the Delta log reader would misread is refused, never read as another.
    let odd = fixture.path().join("my wh [1]");
    std::fs::create_dir_all(&odd).unwrap();
    let err = crate::testutil::open(&odd, Catalog::builtin())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("not supported in the warehouse path"),
        "{err}"
    );
}
