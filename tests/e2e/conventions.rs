//! The conventions of a good CLI: completions and man pages generated from the clap
//! definitions, colour with `NO_COLOR` and `--color`, `--quiet`, and empty answers that say why.

use crate::util::TestDir;

fn sample_warehouse() -> TestDir {
    let t = TestDir::new();
    t.copy_sample_logs();
    let out = t.cmd(&["ingest", "sample-logs/policylayer"]).run();
    assert_exit!(out, 0);
    t
}

#[test]
fn completions_for_every_shell_name_the_subcommands_and_flags() {
    let t = TestDir::new();
    for (shell, marker) in [
        ("bash", "_verdict()"),
        ("zsh", "#compdef verdict"),
        ("fish", "complete -c verdict"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = t.cmd(&["completions", shell]).run();
        assert_exit!(out, 0);
        assert!(out.stdout.contains(marker), "{shell}: {}", out.stdout);
        for word in ["timeline", "replay", "fail-on", "max-rows"] {
            assert!(out.stdout.contains(word), "{shell} lacks {word}");
        }
    }
    let out = t.cmd(&["completions", "tcsh"]).run();
    assert_exit!(out, 2);
}

#[test]
fn man_pages_are_written_for_verdict_and_each_subcommand() {
    let t = TestDir::new();
    let out = t.cmd(&["man"]).run();
    assert_exit!(out, 0);
    assert!(
        out.stdout.starts_with(".ie \\n(.g .ds Aq"),
        "{}",
        &out.stdout[..80]
    );
    assert!(out.stdout.contains(".TH verdict 1"), "{}", out.stdout);
    let out = t.cmd(&["man", "--out", "man"]).run();
    assert_exit!(out, 0);
    for page in [
        "verdict.1",
        "verdict-ingest.1",
        "verdict-replay.1",
        "verdict-sql.1",
        "verdict-policy-check.1",
    ] {
        let text = std::fs::read_to_string(t.join("man").join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".SH NAME"), "{page}");
    }
    assert!(std::fs::read_to_string(t.join("man/verdict-replay.1"))
        .unwrap()
        .contains("fail\\-on"));
    assert!(out.stderr.starts_with("note: wrote "), "{}", out.stderr);
}

#[test]
fn colour_follows_the_flag_and_no_color() {
    let t = sample_warehouse();
    let q = [
        "sql",
        "SELECT decision, count(*) AS n FROM decisions GROUP BY 1 ORDER BY 1",
        "--format",
        "table",
    ];
    let esc = "\u{1b}[";
    // Piped: no colour by default.
    let plain = t.cmd(&q).run();
    assert_exit!(plain, 0);
    assert!(!plain.stdout.contains(esc), "{}", plain.stdout);
    // Asked for: the decisions are coloured (allow green, deny red).
    let mut args = q.to_vec();
    args.extend(["--color", "always"]);
    let coloured = t.cmd(&args).run();
    assert_exit!(coloured, 0);
    assert!(
        coloured
            .stdout
            .contains("|\u{1b}[38;5;10m allow             \u{1b}[39m| 536 |"),
        "{:?}",
        coloured.stdout
    );
    assert!(
        coloured
            .stdout
            .contains("|\u{1b}[38;5;9m deny              \u{1b}[39m|  42 |"),
        "{:?}",
        coloured.stdout
    );
    // NO_COLOR wins over auto, even when asked through the environment only.
    let mut args = q.to_vec();
    args.extend(["--color", "auto"]);
    let out = t.cmd(&args).env("NO_COLOR", "1").run();
    assert_exit!(out, 0);
    assert!(!out.stdout.contains(esc));
    // --color never, and NO_COLOR on the replay gate lines.
    let replay = [
        "replay",
        "--policy",
        "sample-logs/policies/candidate.json",
        "--fail-on",
        "deny->allow",
        "--samples",
        "0",
    ];
    let out = t.cmd(&replay).env("NO_COLOR", "1").run();
    assert_exit!(out, 1);
    assert!(out
        .stdout
        .contains("gate deny->allow: TRIPPED (6 calls deny->allow)"));
    let mut args = replay.to_vec();
    args.extend(["--color", "always"]);
    let out = t.cmd(&args).run();
    assert_exit!(out, 1);
    assert!(
        out.stdout
            .contains("gate deny->allow: \u{1b}[1m\u{1b}[31mTRIPPED\u{1b}[0m (6 calls"),
        "{:?}",
        out.stdout
    );
}

#[test]
fn quiet_leaves_the_answer_and_the_exit_code() {
    let t = TestDir::new();
    t.copy_sample_logs();
    let out = t.cmd(&["ingest", "-q", "sample-logs/policylayer"]).run();
    assert_exit!(out, 0);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    let out = t
        .cmd(&[
            "replay",
            "-q",
            "--policy",
            "sample-logs/policies/candidate.json",
            "--fail-on",
            "deny->allow",
        ])
        .run();
    assert_exit!(out, 1);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    let out = t
        .cmd(&[
            "sql",
            "-q",
            "SELECT count(*) AS n FROM decisions WHERE identity = 'nobody'",
        ])
        .run();
    assert_exit!(out, 0);
    assert_eq!(out.stdout, "n\n0\n");
}

#[test]
fn empty_answers_explain_themselves() {
    let t = sample_warehouse();
    let ids = t
        .cmd(&[
            "sql",
            "SELECT DISTINCT identity FROM decisions WHERE identity IS NOT NULL ORDER BY 1",
        ])
        .run();
    assert_exit!(ids, 0);
    let known: Vec<&str> = ids.stdout.lines().skip(1).collect();
    assert_eq!(
        known,
        [
            "alice-laptop",
            "bob-ci",
            "carol-agent",
            "dave-sandbox",
            "ops-bot"
        ]
    );
    // An unknown identity: the closest known ones first.
    let out = t
        .cmd(&["timeline", "--identity", "carol", "--format", "csv"])
        .run();
    assert_exit!(out, 0);
    assert_eq!(
        out.stdout.lines().count(),
        1,
        "only the header: {}",
        out.stdout
    );
    let prefix =
        "note: no calls by identity \"carol\" in the warehouse; known identities: carol-agent, ";
    let stderr = crate::util::after_version(&out.stderr);
    assert!(stderr.starts_with(prefix), "{}", out.stderr);
    assert!(
        out.stderr.trim_end().ends_with("(closest first)"),
        "{}",
        out.stderr
    );
    // A known identity outside the window.
    let out = t
        .cmd(&[
            "timeline",
            "--identity",
            "alice-laptop",
            "--around",
            "2001-01-01T00:00:00Z",
            "--format",
            "json",
        ])
        .run();
    assert_exit!(out, 0);
    assert_eq!(out.stdout, "[]\n");
    assert!(
        crate::util::after_version(&out.stderr)
            .starts_with("note: identity \"alice-laptop\" made ")
            && out.stderr.contains(" calls, none in the window asked"),
        "{}",
        out.stderr
    );
    // A report filtered on an unknown tool.
    let out = t
        .cmd(&[
            "report",
            "volume",
            "--tool",
            "sesion_destroy",
            "--format",
            "csv",
        ])
        .run();
    assert_exit!(out, 0);
    assert!(
        crate::util::after_version(&out.stderr).starts_with("note: no calls by tool \"sesion_destroy\" in the warehouse; known tools: session_destroy, "),
        "{}",
        out.stderr
    );
    // --quiet keeps the note back.
    let out = t.cmd(&["timeline", "-q", "--identity", "carol"]).run();
    assert_exit!(out, 0);
    assert_eq!(out.stderr, "");
}
