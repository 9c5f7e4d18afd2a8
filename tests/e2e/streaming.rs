//! Output that streams: `sql`, `report` and `timeline` print batch by batch, so a reader that
//! takes one line and leaves (`| head -1`) gets it at once and stops the query, and memory stays
//! bounded by a few batches whatever the size of the result. Measured on a generated warehouse
//! of 300,000 rows through the child's own peak RSS (`wait4`), with generous bounds: they catch
//! "collect everything first", not noise.

use std::io::BufWriter;
use std::process::Command;

use verdict_testkit::{GenOptions, Generator};

use crate::util::TestDir;

const ROWS: u64 = 300_000;

/// A warehouse of [`ROWS`] generated calls.
fn big_warehouse() -> TestDir {
    {
        let t = TestDir::new();
        let path = t.join("big.jsonl");
        let mut w = BufWriter::new(std::fs::File::create(&path).unwrap());
        // Two identities: each has about 150,000 calls, for the timeline.
        let opts = GenOptions {
            identities: 2,
            mean_gap_micros: 20_000,
            ..GenOptions::default()
        };
        Generator::new(opts).write_lines(ROWS, &mut w).unwrap();
        drop(w);
        let out = t.cmd(&["ingest", "big.jsonl", "--format", "json"]).run();
        assert_exit!(out, 0);
        assert_eq!(out.json()["rows_written"], ROWS);
        std::fs::remove_file(path).unwrap();
        t
    }
}

/// What the reader saw: the first line, the child's exit code, its peak RSS and how long it
/// ran in all.
#[derive(Debug)]
struct OneLine {
    first: String,
    code: i32,
    max_rss_mb: f64,
    secs: f64,
    stderr: String,
}

/// Runs verdict with `args`, reads one line of its stdout, closes the pipe and waits for the
/// child with `wait4`, which gives the child's own peak RSS. Python's `os.wait4` does the
/// waiting (the Rust standard library has no safe `wait4`).
fn read_one_line(t: &TestDir, args: &[&str]) -> OneLine {
    const DRIVER: &str = r#"
import json, os, subprocess, sys, time
t0 = time.monotonic()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
first = p.stdout.readline().decode()
p.stdout.close()
_, status, ru = os.wait4(p.pid, 0)
secs = time.monotonic() - t0
p.returncode = os.waitstatus_to_exitcode(status)
err = p.stderr.read().decode()
print(json.dumps({"first": first, "code": p.returncode, "max_rss_kb": ru.ru_maxrss, "secs": secs, "stderr": err}))
"#;
    let out = Command::new("python3")
        .current_dir(t.path())
        .arg("-c")
        .arg(DRIVER)
        .arg(env!("CARGO_BIN_EXE_verdict"))
        .args(args)
        .env_remove("VERDICT_WAREHOUSE")
        .output()
        .expect("python3 runs the child");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "driver output ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    OneLine {
        first: v["first"].as_str().unwrap().to_string(),
        code: v["code"].as_i64().unwrap() as i32,
        max_rss_mb: v["max_rss_kb"].as_f64().unwrap() / 1024.0,
        secs: v["secs"].as_f64().unwrap(),
        stderr: v["stderr"].as_str().unwrap().to_string(),
    }
}

/// Peak RSS a command that read one line's worth of a 300,000-row result may add to that of a
/// one-row query over the same warehouse (the binary, the runtime and the table snapshot). The
/// same query collected whole before printing added several hundred MB.
const MAX_EXTRA_RSS_MB: f64 = 200.0;

/// One warehouse for every check (ingesting it takes a while in a debug build).
#[test]
fn big_results_stream() {
    let t = big_warehouse();
    let base = read_one_line(&t, &["sql", "SELECT 1 AS one", "--format", "csv"]);
    assert_eq!(base.code, 0, "{base:?}");
    let max_rss_mb = base.max_rss_mb + MAX_EXTRA_RSS_MB;
    sql_select_star_piped_into_head_returns_at_once_with_bounded_memory(&t, max_rss_mb);
    a_table_on_a_pipe_shows_max_rows_and_says_how_many_were_left_out(&t, max_rss_mb);
    timeline_of_an_identity_with_150k_calls_starts_at_once(&t, max_rss_mb);
}

fn sql_select_star_piped_into_head_returns_at_once_with_bounded_memory(
    t: &TestDir,
    max_rss_mb: f64,
) {
    for format in ["csv", "ndjson", "json"] {
        let r = read_one_line(t, &["sql", "SELECT * FROM decisions", "--format", format]);
        assert_eq!(r.code, 0, "--format {format}: {r:?}");
        assert_eq!(
            crate::util::after_version(&r.stderr),
            "",
            "a closed pipe is not an error: {r:?}"
        );
        match format {
            "csv" => assert!(r.first.starts_with("event_id,"), "{r:?}"),
            "ndjson" => assert!(r.first.starts_with("{\"event_id\":"), "{r:?}"),
            _ => assert_eq!(r.first, "[\n"),
        }
        assert!(
            r.max_rss_mb < max_rss_mb,
            "--format {format}: peak RSS {:.0} MB",
            r.max_rss_mb
        );
        assert!(r.secs < 30.0, "--format {format}: {:.1} s", r.secs);
    }
}

fn a_table_on_a_pipe_shows_max_rows_and_says_how_many_were_left_out(t: &TestDir, max_rss_mb: f64) {
    let out = t
        .cmd(&[
            "sql",
            "SELECT identity, count(*) AS calls FROM decisions GROUP BY identity ORDER BY identity",
            "--format",
            "table",
            "--max-rows",
            "1",
        ])
        .run();
    assert_exit!(out, 0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", out.stdout);
    assert!(lines[0].starts_with("| identity"), "{}", out.stdout);
    assert_eq!(lines[3], "(1 of 2 rows shown; --max-rows 0 shows them all)");
    // Every row of a big result past the limit is counted, none kept.
    let r = read_one_line(
        t,
        &[
            "sql",
            "SELECT * FROM decisions",
            "--format",
            "table",
            "--max-rows",
            "3",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.first.starts_with("| event_id"), "{r:?}");
    assert!(r.max_rss_mb < max_rss_mb, "peak RSS {:.0} MB", r.max_rss_mb);
}

fn timeline_of_an_identity_with_150k_calls_starts_at_once(t: &TestDir, max_rss_mb: f64) {
    let out = t
        .cmd(&["sql", "SELECT identity, count(*) AS n FROM decisions GROUP BY identity ORDER BY n DESC LIMIT 1", "--format", "csv"])
        .run();
    assert_exit!(out, 0);
    let row = out.stdout.lines().nth(1).unwrap().to_string();
    let (identity, n) = row.split_once(',').unwrap();
    assert!(n.parse::<u64>().unwrap() > 100_000, "{row}");
    let r = read_one_line(t, &["timeline", "--identity", identity, "--format", "csv"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.first.starts_with("ts,session,"), "{r:?}");
    assert!(r.max_rss_mb < max_rss_mb, "peak RSS {:.0} MB", r.max_rss_mb);
    let r = read_one_line(t, &["report", "destructive", "--format", "ndjson"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.first.starts_with("{\"ts\":"), "{r:?}");
}
