//! The interactive SQL shell, driven through a pseudo-terminal: a query, a completed column
//! name, dot commands, and the history saved in the user's data directory.

use crate::util::TestDir;

#[test]
fn the_shell_runs_a_query_completes_a_column_and_exits() {
    let t = TestDir::new();
    t.copy_sample_logs();
    let out = t.cmd(&["ingest", "sample-logs/policylayer"]).run();
    assert_exit!(out, 0);
    let mut cmd = t.cmd(&["sql"]).cmd;
    cmd.env("XDG_DATA_HOME", t.join("data"))
        .env("NO_COLOR", "1")
        .env("TERM", "xterm");
    let mut p = rexpect::session::spawn_command(cmd, Some(60_000)).unwrap();
    p.exp_string("verdict> ").unwrap();
    // A statement over two lines.
    p.send_line("SELECT count(*) AS n").unwrap();
    p.exp_string("...> ").unwrap();
    p.send_line("FROM decisions;").unwrap();
    p.exp_string("| 617 |").unwrap();
    p.exp_string("verdict> ").unwrap();
    // `identi` + Tab completes to the column name.
    p.send("SELECT DISTINCT identi").unwrap();
    p.send("\t").unwrap();
    p.flush().unwrap();
    p.exp_string("identity").unwrap();
    p.send_line(" FROM decisions WHERE identity = 'bob-ci';")
        .unwrap();
    p.exp_string("| bob-ci ").unwrap();
    p.exp_string("verdict> ").unwrap();
    p.send_line(".mode csv").unwrap();
    p.exp_string("verdict> ").unwrap();
    p.send_line("SELECT 1 AS one;").unwrap();
    p.exp_string("one\r\n1\r\n").unwrap();
    p.exp_string("verdict> ").unwrap();
    p.send_line(".tables").unwrap();
    p.exp_string("rollup_minute").unwrap();
    p.exp_string("verdict> ").unwrap();
    p.send_line(".quit").unwrap();
    p.exp_eof().unwrap();
    let history = std::fs::read_to_string(t.join("data/verdict/sql_history")).unwrap();
    assert!(
        history.contains("SELECT DISTINCT identity FROM decisions WHERE identity = 'bob-ci';"),
        "{history}"
    );
}

#[test]
fn piped_sql_on_stdin_keeps_working() {
    let t = TestDir::new();
    std::fs::create_dir(t.join("wh")).unwrap();
    let out = t
        .cmd(&["-w", "wh", "sql", "--format", "csv"])
        .stdin("SELECT 40 + 2 AS answer")
        .run();
    assert_exit!(out, 0);
    assert_eq!(out.stdout, "answer\n42\n");
}
