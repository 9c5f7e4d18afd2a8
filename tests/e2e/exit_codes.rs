//! Exit codes CI can trust: a tripped replay gate exits 1 even when the reader closes stdout
//! early, and a closed or full stdout/stderr never makes verdict panic.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::util::TestDir;

fn sample_warehouse() -> TestDir {
    let t = TestDir::new();
    t.copy_sample_logs();
    let out = t.cmd(&["ingest", "sample-logs/policylayer"]).run();
    assert_exit!(out, 0);
    t
}

const GATED: [&str; 5] = [
    "replay",
    "--policy",
    "sample-logs/policies/candidate.json",
    "--fail-on",
    "deny->allow",
];

/// Runs `cmd` with its stdout going to a pipe whose reading end is already closed, and returns
/// the exit code and stderr.
fn with_closed_stdout(mut cmd: Command) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = cmd
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn dev_full() -> Stdio {
    Stdio::from(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap(),
    )
}

#[test]
fn a_tripped_gate_exits_1_when_stdout_is_closed_before_the_report() {
    let t = sample_warehouse();
    for format in ["table", "json"] {
        let mut args = GATED.to_vec();
        args.extend(["--format", format]);
        let (code, stderr) = with_closed_stdout(t.cmd(&args).cmd);
        assert_eq!(code, Some(1), "--format {format}: stderr {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(
            crate::util::after_version(&stderr),
            "",
            "a closed pipe is not an error to report"
        );
    }
    // A gate that holds still exits 0 with a closed pipe.
    let (code, stderr) = with_closed_stdout(
        t.cmd(&["replay", "--policy", "sample-logs/policies/candidate.json"])
            .cmd,
    );
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn a_tripped_gate_exits_1_when_the_reader_takes_one_line_and_leaves() {
    let t = sample_warehouse();
    let mut cmd = t.cmd(&GATED).cmd;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is dropped here: `| head -1`.
    assert!(
        first.starts_with("replay of sample-logs/policies/candidate.json"),
        "{first}"
    );
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_full_stderr_or_stdout_never_panics() {
    let t = sample_warehouse();
    // An error (unknown policy file) reported to a full stderr: exit 2, no panic.
    let out = t
        .cmd(&["replay", "--policy", "missing.json"])
        .cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(dev_full())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // The gate's exit code survives a full stderr too.
    let out = t
        .cmd(&GATED)
        .cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(dev_full())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // A note on a full stderr (the empty warehouse) while stdout works.
    let empty = TestDir::new();
    std::fs::create_dir(empty.join("wh")).unwrap();
    let out = empty
        .cmd(&[
            "-w",
            "wh",
            "sql",
            "SELECT count(*) AS n FROM decisions",
            "--format",
            "csv",
        ])
        .cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(dev_full())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "n\n0\n");
    // A full stdout is an error (exit 2) said on stderr, not a panic, for each kind of output.
    for args in [
        GATED.to_vec(),
        vec!["report", "volume", "--format", "table"],
        vec!["sql", "SELECT * FROM decisions", "--format", "json"],
        vec!["formats"],
    ] {
        let out = t
            .cmd(&args)
            .cmd
            .stdin(Stdio::null())
            .stdout(dev_full())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            crate::util::after_version(&stderr).starts_with("error: "),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains("No space left on device"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    // Both full: exit 2, nothing to say it with, still no panic (a panic exits 101).
    let out = t
        .cmd(&["report", "volume"])
        .cmd
        .stdin(Stdio::null())
        .stdout(dev_full())
        .stderr(dev_full())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
