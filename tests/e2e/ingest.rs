//! `verdict ingest`: rows, partitions, quarantine, strictness, idempotence and crash safety.

use crate::util::{parquet_files, pl_line, quarantine, read_rows, val, TestDir};

const SPEC_LINE: &str = r#"{"timestamp":"2026-11-02T09:15:02.412Z","request_id":"req_01JD4Q8W2M","grant_id":"gr_7f3a","grant_label":"alice-laptop","server":"leapfrog","method":"tools/call","tool":"session_destroy","arg_keys":["session_id"],"policy":"leapfrog-prod","policy_version":"12","decision":"deny","rule":"(hidden)","message":"Tool \"session_destroy\" is hidden by policy","upstream_status":null,"latency_ms":null,"session_id":"mcp_s_k3m7x1"}"#;

#[test]
fn every_column_of_the_spec_example() {
    let t = TestDir::new();
    t.write("gw.jsonl", format!("{SPEC_LINE}\n"));
    let out = t.cmd(&["ingest", "gw.jsonl"]).run();
    assert_exit!(out, 0);
    let rows = read_rows(&t.join("verdict-warehouse"));
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    let want = [
        ("event_id", Some("req_01JD4Q8W2M")),
        ("ts", Some("2026-11-02T09:15:02.412Z")),
        ("source", Some("policylayer")),
        ("identity", Some("alice-laptop")),
        ("identity_id", Some("gr_7f3a")),
        ("session", Some("mcp_s_k3m7x1")),
        ("server", Some("leapfrog")),
        ("method", Some("tools/call")),
        ("tool", Some("session_destroy")),
        ("arg_keys", Some("session_id")),
        ("args", None),
        ("decision", Some("deny")),
        ("rule", Some("(hidden)")),
        (
            "message",
            Some("Tool \"session_destroy\" is hidden by policy"),
        ),
        ("policy_id", Some("leapfrog-prod")),
        ("policy_version", Some("12")),
        ("upstream_status", None),
        ("latency_ms", None),
        ("raw", Some(SPEC_LINE)),
        ("ingest_file", Some("gw.jsonl")),
        ("ingest_line", Some("1")),
        ("client_addr", None),
        ("ingest_principal", None),
        ("ingest_peer", None),
        ("redacted", None),
        ("day", Some("2026-11-02")),
    ];
    for (col, v) in want {
        assert_eq!(val(r, col), v, "column {col}");
    }
    assert_eq!(r.len(), want.len(), "no other columns");
}

#[test]
fn rate_limit_denials_timestamps_and_partitions() {
    let t = TestDir::new();
    let lines = [
        pl_line(
            "a",
            "2026-11-02T23:59:59.999999Z",
            "alice",
            "session_create",
            "deny",
            Some("/tools/session_create/limits/session_create_rate"),
        ),
        pl_line(
            "b",
            "2026-11-03T00:30:00+01:00",
            "alice",
            "navigate",
            "allow",
            None,
        ),
        pl_line(
            "c",
            "2026-11-03T01:00:00.123456789+01:00",
            "bob",
            "navigate",
            "deny",
            Some("/all_tools/limits/calls-per-minute"),
        ),
        pl_line(
            "d",
            "2026-11-03T00:00:00Z",
            "bob",
            "create_charge",
            "denied",
            Some("/tools/create_charge/deny_if/args.amount-gt"),
        ),
        pl_line(
            "e",
            "2026-11-03T10:00:00Z",
            "bob",
            "create_refund",
            "pending_approval",
            Some("/tools/create_refund/approval"),
        ),
    ];
    t.write("gw.jsonl", lines.join("\n"));
    let out = t.cmd(&["ingest", "gw.jsonl", "--format", "json"]).run();
    assert_exit!(out, 0);
    let s = out.json();
    assert_eq!(
        s["rows_per_day"],
        serde_json::json!({"2026-11-02": 2, "2026-11-03": 3})
    );
    let rows = read_rows(&t.join("verdict-warehouse"));
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                val(r, "day"),
                val(r, "event_id"),
                val(r, "ts"),
                val(r, "decision"),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                Some("2026-11-02"),
                Some("b"),
                Some("2026-11-02T23:30:00Z"),
                Some("allow")
            ),
            (
                Some("2026-11-02"),
                Some("a"),
                Some("2026-11-02T23:59:59.999999Z"),
                Some("rate_limited")
            ),
            (
                Some("2026-11-03"),
                Some("d"),
                Some("2026-11-03T00:00:00Z"),
                Some("deny")
            ),
            (
                Some("2026-11-03"),
                Some("c"),
                Some("2026-11-03T00:00:00.123456Z"),
                Some("rate_limited")
            ),
            (
                Some("2026-11-03"),
                Some("e"),
                Some("2026-11-03T10:00:00Z"),
                Some("approval_required")
            ),
        ]
    );
}

#[test]
fn directories_globs_stdin_gzip_and_zstd() {
    let t = TestDir::new();
    t.write(
        "logs/a.jsonl",
        pl_line(
            "a",
            "2026-11-02T09:00:00Z",
            "alice",
            "navigate",
            "allow",
            None,
        ),
    );
    t.write_gz(
        "logs/b.jsonl.gz",
        &pl_line(
            "b",
            "2026-11-02T09:00:01Z",
            "alice",
            "navigate",
            "allow",
            None,
        ),
    );
    t.write_zst(
        "logs/deeper/c.jsonl.zst",
        &pl_line(
            "c",
            "2026-11-02T09:00:02Z",
            "alice",
            "navigate",
            "allow",
            None,
        ),
    );
    t.write("logs/notes.txt", "ignored");
    t.write(
        "more/d.jsonl",
        pl_line(
            "d",
            "2026-11-02T09:00:03Z",
            "alice",
            "navigate",
            "allow",
            None,
        ),
    );
    let out = t
        .cmd(&["ingest", "logs", "more/*.jsonl", "-", "--format", "json"])
        .stdin(pl_line(
            "e",
            "2026-11-02T09:00:04Z",
            "alice",
            "navigate",
            "allow",
            None,
        ))
        .run();
    assert_exit!(out, 0);
    let s = out.json();
    let files: Vec<_> = s["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        files,
        [
            "logs/a.jsonl",
            "logs/b.jsonl.gz",
            "logs/deeper/c.jsonl.zst",
            "more/d.jsonl",
            "-"
        ]
    );
    assert_eq!(s["rows_written"], 5);
    let rows = read_rows(&t.join("verdict-warehouse"));
    let origin: Vec<_> = rows
        .iter()
        .map(|r| (val(r, "event_id"), val(r, "ingest_file")))
        .collect();
    assert_eq!(
        origin,
        [
            (Some("a"), Some("logs/a.jsonl")),
            (Some("b"), Some("logs/b.jsonl.gz")),
            (Some("c"), Some("logs/deeper/c.jsonl.zst")),
            (Some("d"), Some("more/d.jsonl")),
            (Some("e"), Some("-")),
        ]
    );
}

#[test]
fn bad_lines_are_quarantined_with_file_line_reason_and_raw() {
    let t = TestDir::new();
    let logs = t.copy_sample_logs();
    let mut long = String::from("{\"timestamp\":\"2026-11-05T10:00:00Z\",\"pad\":\"");
    long.push_str(&"x".repeat(600));
    long.push_str("\"}");
    t.write(
        "extra.jsonl",
        [
            b"\xff\xfe not utf-8\n".to_vec(),
            long.into_bytes(),
            b"\n".to_vec(),
        ]
        .concat(),
    );
    let broken = logs.join("broken/gateway-broken.jsonl");
    let out = t
        .cmd(&[
            "ingest",
            broken.to_str().unwrap(),
            "extra.jsonl",
            "--max-line-bytes",
            "500",
            // Nothing in extra.jsonl is a decision, so its format cannot be detected: name it.
            "--input-format",
            "policylayer",
            "--format",
            "json",
        ])
        .run();
    assert_exit!(out, 0);
    let s = out.json();
    assert_eq!(
        (
            s["lines"].as_u64(),
            s["rows_written"].as_u64(),
            s["quarantined"].as_u64()
        ),
        (Some(10), Some(3), Some(7))
    );
    assert_eq!(s["blank_lines"], 1);
    let q = quarantine(&t.join("verdict-warehouse"));
    let got: Vec<_> = q
        .iter()
        .map(|e| {
            let file = e["file"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string();
            (
                file,
                e["line"].as_u64().unwrap(),
                e["error"].as_str().unwrap().to_string(),
                e["field"].as_str().map(str::to_string),
            )
        })
        .collect();
    let f = "gateway-broken.jsonl".to_string();
    assert_eq!(
        got,
        [
            (f.clone(), 2, "invalid_json".into(), None),
            (
                f.clone(),
                3,
                "missing_timestamp".into(),
                Some("timestamp".into())
            ),
            (
                f.clone(),
                4,
                "bad_timestamp".into(),
                Some("timestamp".into())
            ),
            (
                f.clone(),
                5,
                "unknown_decision".into(),
                Some("decision".into())
            ),
            (f, 7, "wrong_type".into(), Some("tool".into())),
            ("extra.jsonl".into(), 1, "invalid_utf8".into(), None),
            ("extra.jsonl".into(), 2, "too_long".into(), None),
        ]
    );
    // The raw text is kept verbatim, and invalid UTF-8 exactly, in base64.
    assert_eq!(
        q[1]["raw"],
        std::fs::read_to_string(&broken)
            .unwrap()
            .lines()
            .nth(2)
            .unwrap()
    );
    assert_eq!(q[5]["raw_base64"], "//4gbm90IHV0Zi04");
    assert_eq!(q[6]["raw_bytes"], 645);
    assert!(out.stdout.contains("\"quarantine_files\""));
}

#[test]
fn strict_mode_fails_and_commits_nothing() {
    let t = TestDir::new();
    let logs = t.copy_sample_logs();
    let broken = logs.join("broken/gateway-broken.jsonl");
    let good = logs.join("policylayer/gateway-2026-11-02.jsonl");
    let out = t
        .cmd(&[
            "ingest",
            good.to_str().unwrap(),
            broken.to_str().unwrap(),
            "--strict",
        ])
        .run();
    assert_exit!(out, 2);
    assert!(
        out.stderr.contains("gateway-broken.jsonl:2: invalid_json"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("strict mode: nothing was committed"),
        "{}",
        out.stderr
    );
    let wh = t.join("verdict-warehouse");
    assert!(parquet_files(&wh).is_empty());
    assert!(quarantine(&wh).is_empty());
    assert!(std::fs::read_dir(wh.join("_verdict/staging")).map_or(true, |mut d| d.next().is_none()));
}

#[test]
fn reingesting_adds_nothing_and_overlaps_add_only_new_rows() {
    let t = TestDir::new();
    let lines: Vec<String> = (0..10)
        .map(|i| {
            pl_line(
                &format!("r{i}"),
                &format!("2026-11-02T09:00:{i:02}Z"),
                "alice",
                "navigate",
                "allow",
                None,
            )
        })
        .collect();
    t.write("first.jsonl", lines[..6].join("\n"));
    t.write("overlap.jsonl", lines[4..].join("\n"));
    let first = t
        .cmd(&["ingest", "first.jsonl", "--format", "json"])
        .run()
        .json();
    assert_eq!(
        (first["rows_written"].as_u64(), first["duplicates"].as_u64()),
        (Some(6), Some(0))
    );
    let again = t
        .cmd(&["ingest", "first.jsonl", "--format", "json"])
        .run()
        .json();
    assert_eq!(
        (again["rows_written"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(6))
    );
    assert_eq!(again["txns"], serde_json::json!([]));
    let overlap = t
        .cmd(&["ingest", "overlap.jsonl", "--format", "json"])
        .run()
        .json();
    assert_eq!(
        (
            overlap["rows_written"].as_u64(),
            overlap["duplicates"].as_u64()
        ),
        (Some(4), Some(2))
    );
    // A duplicate inside one input is dropped too (the first copy wins); the same id with other
    // content is quarantined as a conflicting duplicate.
    t.write(
        "twice.jsonl",
        format!("{}\n{}\n", lines[0], lines[0].replace("alice", "mallory")),
    );
    let twice = t
        .cmd(&["ingest", "twice.jsonl", "--format", "json"])
        .run()
        .json();
    assert_eq!(twice["duplicates"], 1);
    assert_eq!(twice["conflicting_duplicates"], 1);
    let rows = read_rows(&t.join("verdict-warehouse"));
    let mut ids: Vec<_> = rows
        .iter()
        .map(|r| val(r, "event_id").unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, (0..10).map(|i| format!("r{i}")).collect::<Vec<_>>());
    assert!(rows.iter().all(|r| val(r, "identity") == Some("alice")));
}

#[test]
fn warehouse_from_env_and_flag() {
    let t = TestDir::new();
    t.write(
        "gw.jsonl",
        pl_line(
            "a",
            "2026-11-02T09:00:00Z",
            "alice",
            "navigate",
            "allow",
            None,
        ),
    );
    assert_exit!(
        t.cmd(&["ingest", "gw.jsonl"])
            .env("VERDICT_WAREHOUSE", "from-env")
            .run(),
        0
    );
    assert_eq!(read_rows(&t.join("from-env")).len(), 1);
    assert_exit!(
        t.cmd(&["ingest", "gw.jsonl", "--warehouse", "from-flag"])
            .env("VERDICT_WAREHOUSE", "from-env")
            .run(),
        0
    );
    assert_eq!(read_rows(&t.join("from-flag")).len(), 1);
    assert!(!t.join("verdict-warehouse").exists());
}

#[test]
fn missing_inputs_are_clear_errors() {
    let t = TestDir::new();
    let out = t.cmd(&["ingest", "nope.jsonl"]).run();
    assert_exit!(out, 2);
    assert_eq!(
        out.stderr,
        "error: ingest into verdict-warehouse: nope.jsonl: no such file or directory\n"
    );
    let out = t.cmd(&["ingest", "logs/*.jsonl"]).run();
    assert_exit!(out, 2);
    assert_eq!(
        out.stderr,
        "error: ingest into verdict-warehouse: logs/*.jsonl: the pattern matched no files\n"
    );
}

#[test]
fn sample_logs_ingest_matches_the_oracle() {
    let t = TestDir::new();
    t.copy_sample_logs();
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(t.join("sample-logs/policylayer/expected.json")).unwrap(),
    )
    .unwrap();
    let out = t
        .cmd(&["ingest", "sample-logs/policylayer", "--format", "json"])
        .run();
    assert_exit!(out, 0);
    let s = out.json();
    assert_eq!(s["lines"], expected["total_lines"]);
    assert_eq!(s["rows_written"], expected["total_lines"]);
    assert_eq!(s["rows_per_day"], expected["rows_per_utc_day"]);
    assert_eq!(s["quarantined"], 0);
    let rows = read_rows(&t.join("verdict-warehouse"));
    let mut decisions = std::collections::BTreeMap::<String, u64>::new();
    for r in &rows {
        *decisions
            .entry(val(r, "decision").unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(
        serde_json::to_value(&decisions).unwrap(),
        expected["decisions"]
    );
    // One file per day, rows sorted by ts within each.
    let files = parquet_files(&t.join("verdict-warehouse"));
    assert_eq!(files.len(), 3);
    let mut last = i64::MIN;
    let mut last_day = String::new();
    for r in &rows {
        let day = val(r, "day").unwrap();
        let ts = chrono::DateTime::parse_from_rfc3339(val(r, "ts").unwrap())
            .unwrap()
            .timestamp_micros();
        if day != last_day {
            last = i64::MIN;
            last_day = day.to_string();
        }
        assert!(ts >= last, "{ts} after {last}");
        last = ts;
    }
}

#[test]
fn files_are_zstd_parquet_sorted_by_ts_with_declared_schema() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let t = TestDir::new();
    t.copy_sample_logs();
    assert_exit!(
        t.cmd(&[
            "ingest",
            "sample-logs/policylayer",
            "--row-group-rows",
            "100"
        ])
        .run(),
        0
    );
    for f in parquet_files(&t.join("verdict-warehouse")) {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            name.starts_with("part-") && name.ends_with(".parquet"),
            "{name}"
        );
        let r = SerializedFileReader::new(std::fs::File::open(&f).unwrap()).unwrap();
        let md = r.metadata();
        assert!(
            md.num_row_groups() >= 2,
            "{name}: row groups of about 100 rows"
        );
        for rg in md.row_groups() {
            assert_eq!(rg.sorting_columns().map(|s| s[0].column_idx), Some(1));
            for c in rg.columns() {
                assert_eq!(
                    c.compression().to_string(),
                    "ZSTD(ZstdLevel(1))",
                    "{}",
                    c.column_path()
                );
            }
        }
        let schema = md.file_metadata().schema_descr();
        let names: Vec<_> = schema.columns().iter().map(|c| c.path().string()).collect();
        assert_eq!(names.len(), 25);
        assert_eq!(names[9], "arg_keys.list.item");
    }
}
