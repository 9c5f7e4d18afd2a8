//! The warehouse as Delta tables: whole commits only, time travel, history, global dedup,
//! damaged files named with the commit that added them, doctor, vacuum, migration from the old
//! layout, and reading without writing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::util::{committed, log_actions, log_rows, parquet_files, pl_line, read_rows, TestDir};

fn day_lines(prefix: &str, day: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            let identity = ["alice", "bob"][i % 2];
            let decision = ["allow", "deny", "allow"][i % 3];
            format!(
                "{}\n",
                pl_line(
                    &format!("{prefix}{i}"),
                    &format!("{day}T10:{:02}:{:02}Z", i / 60, i % 60),
                    identity,
                    "navigate",
                    decision,
                    (decision == "deny").then_some("/tools/navigate/deny_if/x"),
                )
            )
        })
        .collect()
}

fn ingest(t: &TestDir, name: &str, text: &str) {
    t.write(name, text);
    let out = t.cmd(&["ingest", name]).run();
    assert_exit!(out, 0);
}

fn csv(t: &TestDir, args: &[&str]) -> String {
    let mut a = args.to_vec();
    a.extend(["--format", "csv"]);
    let out = t.cmd(&a).run();
    assert_exit!(out, 0);
    out.stdout
}

/// Every file under a directory with its length and modification time.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (u64, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.insert(e.path(), (m.len(), m.modified().unwrap()));
            }
        }
    }
    out
}

#[test]
fn time_travel_history_and_the_version_read() {
    let t = TestDir::new();
    ingest(&t, "a.jsonl", &day_lines("a", "2026-11-02", 30));
    let before = csv(&t, &["report", "volume", "--by", "identity"]);
    ingest(&t, "b.jsonl", &day_lines("b", "2026-11-03", 12));
    let wh = t.join("verdict-warehouse");
    assert_eq!(log_rows(&wh, "decisions"), 42);

    // History: the table's creation, then one commit per ingest, newest first.
    let h = t.cmd(&["history", "--format", "json"]).run();
    assert_exit!(h, 0);
    let h = h.json();
    let ops: Vec<(i64, &str, u64)> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["version"].as_i64().unwrap(),
                e["operation"].as_str().unwrap(),
                e["rows_added"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [(2, "WRITE", 12), (1, "WRITE", 30), (0, "CREATE TABLE", 0)]
    );
    assert_eq!(h[0]["inputs"], serde_json::json!(["b.jsonl"]));
    assert_eq!(h[0]["verdict_version"], env!("CARGO_PKG_VERSION"));

    // As of version 1 every reader sees the first ingest only, and says which version it read.
    let out = t
        .cmd(&[
            "report", "volume", "--by", "identity", "--format", "csv", "--as-of", "1",
        ])
        .run();
    assert_exit!(out, 0);
    assert_eq!(out.stdout, before);
    assert!(
        out.stderr.contains("read decisions version 1"),
        "{}",
        out.stderr
    );
    let now = t.cmd(&["report", "volume", "--format", "csv"]).run();
    assert!(
        now.stderr.contains("read decisions version 2"),
        "{}",
        now.stderr
    );
    assert_eq!(
        csv(
            &t,
            &["sql", "SELECT count(*) AS n FROM decisions", "--as-of", "1"]
        ),
        "n\n30\n"
    );
    assert_eq!(
        csv(&t, &["sql", "SELECT count(*) AS n FROM decisions"]),
        "n\n42\n"
    );
    // A timestamp before the second commit reads version 1 as well.
    let v2_time = h[0]["time"].as_str().unwrap().to_string();
    let v1_time = h[1]["time"].as_str().unwrap().to_string();
    assert!(v1_time < v2_time);
    assert_eq!(
        csv(
            &t,
            &[
                "sql",
                "SELECT count(*) AS n FROM decisions",
                "--as-of",
                &v1_time
            ]
        ),
        "n\n30\n"
    );
    let tl = t
        .cmd(&[
            "timeline",
            "--identity",
            "bob",
            "--format",
            "csv",
            "--as-of",
            "1",
        ])
        .run();
    assert_exit!(tl, 0);
    assert!(!tl.stdout.contains("b1"), "{}", tl.stdout);

    t.write(
        "allow-all.json",
        r#"{"version":"1","default":"allow","tools":{"navigate":{}}}"#,
    );
    let r = t
        .cmd(&[
            "replay",
            "--policy",
            "allow-all.json",
            "--format",
            "json",
            "--as-of",
            "1",
        ])
        .run();
    assert_exit!(r, 0);
    let r = r.json();
    assert_eq!(r["table_version"], 1);
    assert_eq!(r["counts"]["tool_calls"], 30, "{r}");
    let r = t
        .cmd(&["replay", "--policy", "allow-all.json", "--format", "json"])
        .run()
        .json();
    assert_eq!(
        (
            r["table_version"].as_i64(),
            r["counts"]["tool_calls"].as_u64()
        ),
        (Some(2), Some(42))
    );

    let bad = t.cmd(&["sql", "SELECT 1", "--as-of", "yesterday"]).run();
    assert_exit!(bad, 2);
    assert!(bad.stderr.contains("--as-of yesterday"), "{}", bad.stderr);
}

#[test]
fn the_same_id_on_two_days_is_stored_once() {
    let t = TestDir::new();
    let a = pl_line(
        "same",
        "2026-11-02T10:00:00Z",
        "alice",
        "navigate",
        "allow",
        None,
    );
    let b = pl_line(
        "same",
        "2026-11-05T10:00:00Z",
        "alice",
        "navigate",
        "allow",
        None,
    );
    t.write("a.jsonl", format!("{a}\n"));
    t.write("b.jsonl", format!("{b}\n"));
    let one = t
        .cmd(&["ingest", "a.jsonl", "--format", "json"])
        .run()
        .json();
    assert_eq!(one["rows_written"], 1);
    let two = t
        .cmd(&["ingest", "b.jsonl", "--format", "json"])
        .run()
        .json();
    // Its content differs (another day): quarantined as a conflicting duplicate with both
    // content hashes, the stored record kept.
    assert_eq!(
        (two["rows_written"].as_u64(), two["duplicates"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(
        (
            two["conflicting_duplicates"].as_u64(),
            two["quarantined"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(read_rows(&t.join("verdict-warehouse")).len(), 1);
    let q = crate::util::quarantine(&t.join("verdict-warehouse"));
    assert_eq!(q.len(), 1);
    assert_eq!(
        (q[0]["error"].as_str(), q[0]["line"].as_i64()),
        (Some("conflicting_duplicate"), Some(1))
    );
    let msg = q[0]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(
            "event_id `same` is already stored with other content (stored content hash "
        ),
        "{msg}"
    );
    // The same line again: already quarantined; the stored record again: a duplicate.
    let three = t
        .cmd(&["ingest", "b.jsonl", "a.jsonl", "--format", "json"])
        .run()
        .json();
    assert_eq!(
        (
            three["quarantined"].as_u64(),
            three["already_quarantined"].as_u64(),
            three["duplicates"].as_u64()
        ),
        (Some(0), Some(1), Some(1))
    );
}

#[test]
fn reading_never_writes() {
    let t = TestDir::new();
    ingest(&t, "a.jsonl", &day_lines("a", "2026-11-02", 20));
    t.write(
        "p.json",
        r#"{"version":"1","default":"deny","tools":{"navigate":{}}}"#,
    );
    let wh = t.join("verdict-warehouse");
    let before = tree(&wh);
    for args in [
        vec!["sql", "SELECT count(*) FROM decisions"],
        vec!["report", "denials"],
        vec!["timeline", "--identity", "alice"],
        vec!["replay", "--policy", "p.json"],
        vec!["history"],
        vec!["doctor"],
    ] {
        let out = t.cmd(&args).run();
        assert_exit!(out, 0);
    }
    assert_eq!(
        tree(&wh),
        before,
        "no file created, changed or removed by a reader"
    );
}

#[test]
fn damaged_files_are_named_with_their_commit_and_doctor_says_how_to_recover() {
    let t = TestDir::new();
    ingest(&t, "a.jsonl", &day_lines("a", "2026-11-02", 40));
    ingest(&t, "b.jsonl", &day_lines("b", "2026-11-03", 40));
    ingest(&t, "c.jsonl", &day_lines("c", "2026-11-04", 40));
    let wh = t.join("verdict-warehouse");
    let files = parquet_files(&wh);
    assert_eq!(files.len(), 3);
    let name = |p: &PathBuf| {
        p.strip_prefix(wh.join("decisions"))
            .unwrap()
            .display()
            .to_string()
    };
    // The second commit's file is truncated, the third's corrupted in the middle.
    let truncated = files
        .iter()
        .find(|p| name(p).contains("2026-11-03"))
        .unwrap();
    let corrupt = files
        .iter()
        .find(|p| name(p).contains("2026-11-04"))
        .unwrap();
    let len = std::fs::metadata(truncated).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(truncated)
        .unwrap();
    f.set_len(len / 2).unwrap();
    let mut bytes = std::fs::read(corrupt).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid - 200..mid + 200] {
        *b = 0xAB;
    }
    let n = bytes.len();
    bytes[n - 8..n - 4].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0x7F]);
    std::fs::write(corrupt, bytes).unwrap();

    t.write(
        "p.json",
        r#"{"version":"1","default":"deny","tools":{"navigate":{}}}"#,
    );
    for args in [
        vec!["sql", "SELECT count(*), max(ts) FROM decisions"],
        vec!["report", "volume", "--no-rollup"],
        vec![
            "timeline",
            "--identity",
            "alice",
            "--around",
            "2026-11-03T10:00:00Z",
            "--window",
            "3d",
        ],
        vec!["replay", "--policy", "p.json"],
    ] {
        let out = t.cmd(&args).run();
        assert_exit!(out, 2);
        assert!(
            out.stderr.contains(&name(truncated)) || out.stderr.contains(&name(corrupt)),
            "{args:?} must name a damaged file: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("version 2") || out.stderr.contains("version 3"),
            "{args:?} must name the commit that added it: {}",
            out.stderr
        );
    }
    let doc = t.cmd(&["doctor"]).run();
    assert_exit!(doc, 2);
    assert!(
        doc.stdout.contains(&format!(
            "damaged: decisions/{} (added in version 2)",
            name(truncated)
        )),
        "{}",
        doc.stdout
    );
    assert!(
        doc.stdout.contains(&format!(
            "damaged: decisions/{} (added in version 3)",
            name(corrupt)
        )),
        "{}",
        doc.stdout
    );
    assert!(
        doc.stdout.contains("verdict restore --to 1"),
        "{}",
        doc.stdout
    );
    assert!(doc.stderr.contains("2 damaged file(s)"), "{}", doc.stderr);

    // The way out: remove the damaged files with a recorded commit; every command works again.
    let fix = t.cmd(&["doctor", "--remove-damaged"]).run();
    assert_exit!(fix, 0);
    assert!(
        fix.stdout
            .contains("removed the damaged files in decisions version 4"),
        "{}",
        fix.stdout
    );
    assert_eq!(
        csv(&t, &["sql", "SELECT count(*) AS n FROM decisions"]),
        "n\n40\n"
    );
    assert_exit!(t.cmd(&["doctor"]).run(), 0);
    assert_exit!(t.cmd(&["replay", "--policy", "p.json"]).run(), 0);
}

#[test]
fn compact_and_vacuum_keep_every_row() {
    let t = TestDir::new();
    for k in 0..5 {
        ingest(
            &t,
            &format!("g{k}.jsonl"),
            &day_lines(&format!("g{k}-"), "2026-11-02", 10),
        );
    }
    let wh = t.join("verdict-warehouse");
    assert_eq!(parquet_files(&wh).len(), 5);
    let volume = csv(&t, &["report", "volume", "--by", "identity"]);
    let out = t.cmd(&["compact"]).run();
    assert_exit!(out, 0);
    assert_eq!(parquet_files(&wh).len(), 1);
    assert_eq!(committed(&wh, "rollup_minute").len(), 1);
    assert_eq!(csv(&t, &["report", "volume", "--by", "identity"]), volume);
    assert_eq!(
        csv(&t, &["report", "volume", "--by", "identity", "--no-rollup"]),
        volume
    );
    // Compaction changed no data: the history says so, and the rollup still answers.
    let h = t
        .cmd(&["history", "-n", "1", "--format", "json"])
        .run()
        .json();
    assert_eq!(
        (h[0]["operation"].as_str(), h[0]["rows_added"].as_u64()),
        (Some("OPTIMIZE"), Some(0))
    );
    // The default retention keeps the old files (time travel still reads them) ...
    let on_disk = |wh: &Path| {
        std::fs::read_dir(wh.join("decisions/day=2026-11-02"))
            .unwrap()
            .count()
    };
    assert_exit!(t.cmd(&["vacuum"]).run(), 0);
    assert_eq!(on_disk(&wh), 6);
    assert_eq!(
        csv(
            &t,
            &["sql", "SELECT count(*) AS n FROM decisions", "--as-of", "5"]
        ),
        "n\n50\n"
    );
    // ... a zero retention removes them; the current version reads the same.
    let v = t.cmd(&["vacuum", "--retention", "0s"]).run();
    assert_exit!(v, 0);
    assert!(
        v.stdout.contains("decisions: 5 file(s) deleted"),
        "{}",
        v.stdout
    );
    assert_eq!(on_disk(&wh), 1);
    assert_eq!(csv(&t, &["report", "volume", "--by", "identity"]), volume);
    assert_exit!(t.cmd(&["doctor"]).run(), 0);
}

/// An old-layout warehouse (manifest, rollup folders, JSON-lines quarantine) is converted in
/// place: the same rows, the same reports, the quarantine kept, the manifest set aside.
#[test]
fn migrate_converts_the_old_layout_in_place() {
    let t = TestDir::new();
    ingest(
        &t,
        "a.jsonl",
        &format!("{}not json\n", day_lines("a", "2026-11-02", 25)),
    );
    ingest(&t, "b.jsonl", &day_lines("b", "2026-11-03", 15));
    let new = t.join("verdict-warehouse");
    let volume = csv(&t, &["report", "volume", "--by", "identity"]);
    let denials = csv(&t, &["report", "denials"]);

    // The same files laid out as the old format did.
    let old = t.join("old");
    let mut parts = Vec::new();
    for f in parquet_files(&new) {
        let rel = f.strip_prefix(new.join("decisions")).unwrap();
        let day = rel
            .parent()
            .unwrap()
            .display()
            .to_string()
            .replace("day=", "");
        let to = old.join("decisions").join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&f, &to).unwrap();
        parts.push(serde_json::json!({
            "path": format!("decisions/{}", rel.display()),
            "day": day, "rows": 0, "bytes": 0, "min_ts": 0, "max_ts": 0, "txn": "t"
        }));
    }
    std::fs::create_dir_all(old.join("_verdict")).unwrap();
    std::fs::write(
        old.join("_verdict/manifest.json"),
        serde_json::json!({"format_version": 1, "parts": parts, "rollups": [], "txns": []})
            .to_string(),
    )
    .unwrap();
    std::fs::create_dir_all(old.join("quarantine")).unwrap();
    std::fs::write(
        old.join("quarantine/t.jsonl"),
        r#"{"key":"0000000000000000000000000000abcd","file":"a.jsonl","line":26,"error":"invalid_json","message":"expected value","raw":"not json","raw_bytes":8,"raw_truncated":false,"txn":"t","quarantined_at":"2026-11-22T00:00:00.000000Z"}"#.to_string() + "\n",
    )
    .unwrap();

    let out = t.cmd(&["-w", "old", "migrate"]).run();
    assert_exit!(out, 0);
    assert!(
        out.stdout
            .contains("2 files (40 rows) committed, 1 quarantined lines copied"),
        "{}",
        out.stdout
    );
    assert!(old.join("_verdict/migrated/manifest.json").is_file());
    assert!(!old.join("_verdict/manifest.json").exists());
    assert_eq!(
        csv(&t, &["-w", "old", "report", "volume", "--by", "identity"]),
        volume
    );
    assert_eq!(csv(&t, &["-w", "old", "report", "denials"]), denials);
    assert_eq!(
        csv(
            &t,
            &[
                "-w",
                "old",
                "sql",
                "SELECT error, count(*) AS n FROM quarantine GROUP BY 1"
            ]
        ),
        "error,n\ninvalid_json,1\n"
    );
    // The rollup and the dedup index were computed: a re-ingest adds nothing.
    let again = t
        .cmd(&[
            "-w", "old", "ingest", "a.jsonl", "b.jsonl", "--format", "json",
        ])
        .run()
        .json();
    assert_eq!(
        (again["rows_written"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(40))
    );
    let twice = t.cmd(&["-w", "old", "migrate"]).run();
    assert_exit!(twice, 2);
    assert!(
        twice.stderr.contains("no warehouse of the old layout"),
        "{}",
        twice.stderr
    );
    // Vacuum deletes the old metadata.
    assert_exit!(t.cmd(&["-w", "old", "vacuum"]).run(), 0);
    assert!(!old.join("_verdict/migrated").exists());
    let log = log_actions(&old, "decisions");
    assert!(log
        .iter()
        .any(|(_, a)| a["commitInfo"]["verdict.operation"] == "migrate"));
}

/// Engines that know nothing of verdict read its warehouse: the Python `deltalake` package and
/// DuckDB's `delta_scan`, with exact counts (the test script is `outside_engines.py`).
#[test]
fn outside_engines_read_the_warehouse() {
    let ready = std::process::Command::new("python3")
        .args(["-c", "import deltalake, duckdb, duckdb_extension_delta"])
        .output();
    if !ready.is_ok_and(|o| o.status.success()) {
        eprintln!("skipping: python3 with deltalake, duckdb and duckdb-extension-delta is not installed (.ci/run installs them)");
        return;
    }
    let t = TestDir::new();
    let logs = t.copy_sample_logs();
    let out = t
        .cmd(&[
            "ingest",
            logs.join("policylayer").to_str().unwrap(),
            logs.join("broken").to_str().unwrap(),
        ])
        .run();
    assert_exit!(out, 0);
    ingest(&t, "more.jsonl", &day_lines("m", "2026-11-09", 25));
    let wh = t.join("verdict-warehouse");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/outside_engines.py");
    let run = std::process::Command::new("python3")
        .arg(&script)
        .arg(&wh)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let count = |sql: &str| -> u64 {
        let text = csv(&t, &["sql", sql]);
        text.lines().nth(1).unwrap().parse().unwrap()
    };
    let total = count("SELECT count(*) FROM decisions");
    assert_eq!(total, log_rows(&wh, "decisions"));
    assert_eq!(got["deltalake_decisions"], total, "{got}");
    assert_eq!(got["duckdb_decisions"], total, "{got}");
    assert_eq!(
        got["duckdb_denials"],
        count("SELECT count(*) FROM decisions WHERE decision = 'deny'")
    );
    assert_eq!(
        got["deltalake_rollup_minute"],
        count("SELECT count(*) FROM rollup_minute")
    );
    let quarantined = count("SELECT count(*) FROM quarantine");
    assert!(quarantined > 0);
    assert_eq!(got["deltalake_quarantine"], quarantined);
    assert_eq!(got["duckdb_quarantine"], quarantined);
    let per_day: BTreeMap<String, u64> = csv(
        &t,
        &[
            "sql",
            "SELECT CAST(day AS VARCHAR) AS d, count(*) AS n FROM decisions GROUP BY 1 ORDER BY 1",
        ],
    )
    .lines()
    .skip(1)
    .map(|l| {
        let (d, n) = l.split_once(',').unwrap();
        (d.to_string(), n.parse().unwrap())
    })
    .collect();
    assert_eq!(got["duckdb_per_day"], serde_json::json!(per_day));
    assert_eq!(got["deltalake_per_day"], serde_json::json!(per_day));
    assert_eq!(got["deltalake_decisions_version"], 2);
}
