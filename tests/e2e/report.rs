//! `verdict report`, `verdict sql` and `verdict timeline` over a small warehouse built from a
//! file the test writes, with numbers counted by hand.

use crate::util::TestDir;

/// (id, ts, identity, server, tool, decision, rule)
const ROWS: &[(&str, &str, &str, &str, &str, &str, &str)] = &[
    (
        "e01",
        "2026-11-02T09:00:00Z",
        "alice",
        "leapfrog",
        "navigate",
        "allow",
        "",
    ),
    (
        "e02",
        "2026-11-02T09:00:30Z",
        "alice",
        "leapfrog",
        "navigate",
        "allow",
        "",
    ),
    (
        "e03",
        "2026-11-02T09:01:10Z",
        "alice",
        "leapfrog",
        "session_destroy",
        "deny",
        "(hidden)",
    ),
    (
        "e04",
        "2026-11-02T09:02:00Z",
        "bob",
        "leapfrog",
        "session_create",
        "allow",
        "",
    ),
    (
        "e05",
        "2026-11-02T09:02:01Z",
        "bob",
        "leapfrog",
        "session_create",
        "deny",
        "/tools/session_create/limits/session_create_rate",
    ),
    (
        "e06",
        "2026-11-02T09:02:02Z",
        "bob",
        "leapfrog",
        "session_create",
        "deny",
        "/tools/session_create/limits/session_create_rate",
    ),
    (
        "e07",
        "2026-11-02T10:15:00Z",
        "bob",
        "weknora",
        "export_all",
        "deny",
        "(default deny)",
    ),
    (
        "e08",
        "2026-11-03T03:12:00Z",
        "carol",
        "leapfrog",
        "session_destroy",
        "allow",
        "",
    ),
    (
        "e09",
        "2026-11-03T03:12:30Z",
        "carol",
        "leapfrog",
        "navigate",
        "allow",
        "",
    ),
    (
        "e10",
        "2026-11-03T03:13:00Z",
        "carol",
        "weknora",
        "delete_session",
        "approval_required",
        "/tools/delete_session/approval",
    ),
    (
        "e11",
        "2026-11-03T11:00:00Z",
        "alice",
        "leapfrog",
        "navigate",
        "deny",
        "/all_tools/limits/calls-per-minute",
    ),
    (
        "e12",
        "2026-11-03T11:00:05Z",
        "alice",
        "leapfrog",
        "click",
        "error",
        "(engine error)",
    ),
    (
        "e13",
        "2026-11-04T08:00:00Z",
        "bob",
        "leapfrog",
        "navigate",
        "allow",
        "",
    ),
    (
        "e14",
        "2026-11-04T08:00:10Z",
        "bob",
        "weknora",
        "purge_cache",
        "allow",
        "",
    ),
    (
        "e15",
        "2026-11-04T08:00:20Z",
        "bob",
        "weknora",
        "get_document",
        "allow",
        "",
    ),
    (
        "e16",
        "2026-11-04T08:00:30Z",
        "alice",
        "weknora",
        "export_all",
        "deny",
        "(default deny)",
    ),
];

fn warehouse() -> TestDir {
    let t = TestDir::new();
    let mut text = String::new();
    for (id, ts, who, server, tool, decision, rule) in ROWS {
        text.push_str(&format!(
            r#"{{"timestamp":"{ts}","request_id":"{id}","grant_label":"{who}","server":"{server}","method":"tools/call","tool":"{tool}","arg_keys":[],"decision":"{decision}","rule":"{rule}","session_id":"s-{who}"}}"#
        ));
        text.push('\n');
    }
    // One non-tool method, so that volume counts it with a null tool.
    text.push_str(r#"{"timestamp":"2026-11-02T08:59:59Z","request_id":"e00","grant_label":"alice","server":"leapfrog","method":"initialize","tool":null,"decision":"allow","session_id":"s-alice"}"#);
    t.write("gw.jsonl", text);
    let out = t.cmd(&["ingest", "gw.jsonl"]).run();
    assert_exit!(out, 0);
    t
}

fn csv(t: &TestDir, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend(["--format", "csv"]);
    let out = t.cmd(&all).run();
    assert_exit!(out, 0);
    out.stdout
}

#[test]
fn volume_by_identity_and_default() {
    let t = warehouse();
    assert_eq!(
        csv(&t, &["report", "volume", "--by", "identity"]),
        "identity,calls,allow,deny,rate_limited,approval_required,error,unknown\n\
         alice,7,3,2,1,0,1,0\n\
         bob,7,4,1,2,0,0,0\n\
         carol,3,2,0,0,1,0,0\n"
    );
    let default = csv(&t, &["report", "volume", "--top", "3"]);
    assert_eq!(
        default,
        "identity,tool,calls,allow,deny,rate_limited,approval_required,error,unknown\n\
         alice,navigate,3,2,0,1,0,0,0\n\
         bob,session_create,3,1,0,2,0,0,0\n\
         alice,click,1,0,0,0,0,1,0\n"
    );
}

#[test]
fn by_columns_are_canonicalised_and_time_buckets_work() {
    let t = warehouse();
    // The user's order (day, decision) is output in the canonical order (decision, day).
    let out = csv(
        &t,
        &[
            "report",
            "volume",
            "--by",
            "day,decision",
            "--decision",
            "deny",
            "--decision",
            "rate_limited",
        ],
    );
    assert_eq!(
        out,
        "decision,day,calls,allow,deny,rate_limited,approval_required,error,unknown\n\
         deny,2026-11-02,2,0,2,0,0,0,0\n\
         rate_limited,2026-11-02,2,0,0,2,0,0,0\n\
         rate_limited,2026-11-03,1,0,0,1,0,0,0\n\
         deny,2026-11-04,1,0,1,0,0,0,0\n"
    );
    let out = csv(
        &t,
        &[
            "report",
            "volume",
            "--by",
            "server,hour",
            "--server",
            "weknora",
        ],
    );
    assert_eq!(
        out,
        "server,hour,calls,allow,deny,rate_limited,approval_required,error,unknown\n\
         weknora,2026-11-02T10:00:00.000000Z,1,0,1,0,0,0,0\n\
         weknora,2026-11-03T03:00:00.000000Z,1,0,0,0,1,0,0\n\
         weknora,2026-11-04T08:00:00.000000Z,3,2,1,0,0,0,0\n"
    );
}

#[test]
fn denials_rate_limits_and_destructive() {
    let t = warehouse();
    let out = csv(&t, &["report", "denials", "--by", "tool"]);
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(
        lines[0],
        "tool,denied,rules,top_rule,top_rule_calls,top_message,first_seen,last_seen"
    );
    assert_eq!(
        lines[1],
        "export_all,2,1,(default deny),2,,2026-11-02T10:15:00.000000Z,2026-11-04T08:00:30.000000Z"
    );
    assert_eq!(
        lines[2],
        "session_destroy,1,1,(hidden),1,,2026-11-02T09:01:10.000000Z,2026-11-02T09:01:10.000000Z"
    );
    assert_eq!(lines.len(), 3);
    let out = csv(&t, &["report", "rate-limits", "--by", "identity,tool"]);
    assert_eq!(
        out,
        "identity,tool,rate_limited,counter,counter_calls,peak_per_minute,peak_minute,first_seen,last_seen\n\
         bob,session_create,2,/tools/session_create/limits/session_create_rate,2,2,2026-11-02T09:02:00.000000Z,2026-11-02T09:02:01.000000Z,2026-11-02T09:02:02.000000Z\n\
         alice,navigate,1,/all_tools/limits/calls-per-minute,1,1,2026-11-03T11:00:00.000000Z,2026-11-03T11:00:00.000000Z,2026-11-03T11:00:00.000000Z\n"
    );
    let out = csv(
        &t,
        &["report", "rate-limits", "--by", "identity,tool,minute"],
    );
    assert_eq!(
        out,
        "identity,tool,minute,rate_limited,counter,counter_calls,peak_per_minute,peak_minute,first_seen,last_seen\n\
         bob,session_create,2026-11-02T09:02:00.000000Z,2,/tools/session_create/limits/session_create_rate,2,2,2026-11-02T09:02:00.000000Z,2026-11-02T09:02:01.000000Z,2026-11-02T09:02:02.000000Z\n\
         alice,navigate,2026-11-03T11:00:00.000000Z,1,/all_tools/limits/calls-per-minute,1,1,2026-11-03T11:00:00.000000Z,2026-11-03T11:00:00.000000Z,2026-11-03T11:00:00.000000Z\n"
    );
    let out = csv(&t, &["report", "rate-limits", "--by", "rule,minute"]);
    assert_eq!(
        out,
        "rule,minute,rate_limited,peak_per_minute,peak_minute,first_seen,last_seen\n\
         /tools/session_create/limits/session_create_rate,2026-11-02T09:02:00.000000Z,2,2,2026-11-02T09:02:00.000000Z,2026-11-02T09:02:01.000000Z,2026-11-02T09:02:02.000000Z\n\
         /all_tools/limits/calls-per-minute,2026-11-03T11:00:00.000000Z,1,1,2026-11-03T11:00:00.000000Z,2026-11-03T11:00:00.000000Z,2026-11-03T11:00:00.000000Z\n"
    );
    // Allowed destructive calls first, then the others, each by time; purge_cache by the verb heuristic.
    let out = csv(&t, &["report", "destructive"]);
    let ids: Vec<_> = out
        .lines()
        .skip(1)
        .map(|l| (l.split(',').nth(4).unwrap(), l.split(',').nth(5).unwrap()))
        .collect();
    assert_eq!(
        ids,
        [
            ("session_destroy", "allow"),
            ("purge_cache", "allow"),
            ("session_destroy", "deny"),
            ("delete_session", "approval_required"),
        ]
    );
}

#[test]
fn identities_and_tools_reports_carry_risk() {
    let t = warehouse();
    let out = csv(&t, &["report", "tools"]);
    let risk: Vec<(String, String)> = out
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<_> = l.split(',').collect();
            (f[0].to_string(), f[1].to_string())
        })
        .collect();
    let get = |tool: &str| {
        risk.iter()
            .find(|(t, _)| t == tool)
            .map(|(_, r)| r.as_str())
            .unwrap()
    };
    assert_eq!(get("session_destroy"), "destructive");
    assert_eq!(get("delete_session"), "destructive");
    assert_eq!(get("session_create"), "write");
    assert_eq!(get("purge_cache"), "destructive");
    assert_eq!(get("get_document"), "read");
    assert_eq!(get("export_all"), "read");
    assert_eq!(risk.len(), 8);
    let out = csv(&t, &["report", "identities"]);
    let header: Vec<_> = out.lines().next().unwrap().split(',').collect();
    let carol: Vec<_> = out
        .lines()
        .find(|l| l.starts_with("carol,"))
        .unwrap()
        .split(',')
        .collect();
    let col = |name: &str| carol[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(
        (
            col("calls"),
            col("tools"),
            col("destructive"),
            col("destructive_allowed")
        ),
        ("3", "3", "2", "1")
    );
}

#[test]
fn user_catalogue_overrides_heuristics() {
    let t = warehouse();
    t.write(
        "catalog.json",
        r#"{"tools": {"export_all": "destructive", "purge_cache": "write"}}"#,
    );
    let out = csv(&t, &["report", "destructive", "--catalog", "catalog.json"]);
    let tools: Vec<_> = out
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(4).unwrap().to_string())
        .collect();
    assert_eq!(
        tools,
        [
            "session_destroy",
            "session_destroy",
            "export_all",
            "delete_session",
            "export_all"
        ]
    );
    let out = csv(&t, &["sql", "SELECT tool_risk('purge_cache') AS a, tool_risk('drop_table') AS b, tool_risk('list_users') AS c", "--catalog", "catalog.json"]);
    assert_eq!(out, "a,b,c\nwrite,destructive,read\n");
    t.write("bad.json", r#"{"tools": {"x": "dangerous"}}"#);
    let out = t.cmd(&["report", "tools", "--catalog", "bad.json"]).run();
    assert_exit!(out, 2);
    assert!(
        out.stderr.contains("bad.json") && out.stderr.contains("`x`"),
        "{}",
        out.stderr
    );
}

#[test]
fn time_filters_prune_day_partitions() {
    let t = warehouse();
    let out = csv(
        &t,
        &[
            "report",
            "volume",
            "--by",
            "day",
            "--since",
            "2026-11-03",
            "--until",
            "2026-11-04",
        ],
    );
    assert_eq!(out, "day,calls,allow,deny,rate_limited,approval_required,error,unknown\n2026-11-03,5,2,0,1,1,1,0\n");
    let plan = t.cmd(&["sql", "EXPLAIN SELECT count(DISTINCT identity) FROM decisions WHERE day >= '2026-11-03' AND day < '2026-11-04'", "--format", "csv"]).run();
    assert_exit!(plan, 0);
    assert!(plan.stdout.contains("day=2026-11-03"), "{}", plan.stdout);
    assert!(
        !plan.stdout.contains("day=2026-11-02") && !plan.stdout.contains("day=2026-11-04"),
        "{}",
        plan.stdout
    );
    let empty = t
        .cmd(&[
            "report",
            "volume",
            "--since",
            "2026-11-04",
            "--until",
            "2026-11-03",
        ])
        .run();
    assert_exit!(empty, 2);
    assert!(
        empty
            .stderr
            .contains("--until (2026-11-03T00:00:00.000000Z) must be after --since"),
        "{}",
        empty.stderr
    );
    // Relative times are relative to now (pinned here with VERDICT_NOW).
    let out = t
        .cmd(&[
            "report", "volume", "--by", "day", "--since", "24h", "--format", "csv",
        ])
        .env("VERDICT_NOW", "2026-11-05T00:00:00Z")
        .run();
    assert_eq!(out.stdout, "day,calls,allow,deny,rate_limited,approval_required,error,unknown\n2026-11-04,4,3,1,0,0,0,0\n");
}

#[test]
fn timeline_around_the_incident() {
    let t = warehouse();
    let out = csv(
        &t,
        &[
            "timeline",
            "--identity",
            "carol",
            "--around",
            "2026-11-03T03:12:00Z",
            "--window",
            "1m",
        ],
    );
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r[0], r[4], r[5], r[6], r[10]))
        .collect();
    assert_eq!(
        got,
        [
            (
                "2026-11-03T03:12:00.000000Z",
                "session_destroy",
                "destructive",
                "allow",
                "true"
            ),
            (
                "2026-11-03T03:12:30.000000Z",
                "navigate",
                "write",
                "allow",
                "false"
            ),
            (
                "2026-11-03T03:13:00.000000Z",
                "delete_session",
                "destructive",
                "approval_required",
                "true"
            ),
        ]
    );
}

#[test]
fn output_formats() {
    let t = warehouse();
    let json = t
        .cmd(&["report", "volume", "--by", "identity", "--format", "json"])
        .run()
        .json();
    assert_eq!(
        json[0],
        serde_json::json!({"identity":"alice","calls":7,"allow":3,"deny":2,"rate_limited":1,"approval_required":0,"error":1,"unknown":0})
    );
    let nd = t
        .cmd(&["report", "volume", "--by", "identity", "--format", "ndjson"])
        .run();
    assert_eq!(nd.stdout.lines().count(), 3);
    let table = t
        .cmd(&["sql", "SELECT 1234567 AS n", "--format", "table"])
        .run();
    assert!(table.stdout.contains("1,234,567"), "{}", table.stdout);
    let pq = t
        .cmd(&[
            "report",
            "volume",
            "--format",
            "parquet",
            "--output",
            "vol.parquet",
        ])
        .run();
    assert_exit!(pq, 0);
    let file = std::fs::File::open(t.join("vol.parquet")).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    assert_eq!(
        parquet::file::reader::FileReader::metadata(&reader)
            .file_metadata()
            .num_rows(),
        13
    );
    let no_file = t.cmd(&["report", "volume", "--format", "parquet"]).run();
    assert_exit!(no_file, 2);
    assert!(no_file
        .stderr
        .contains("--format parquet needs --output FILE"));
}

#[test]
fn sql_from_argument_and_stdin_and_bad_sql() {
    let t = warehouse();
    let out = csv(&t, &["sql", "SELECT decision, count(*) AS n FROM decisions GROUP BY decision ORDER BY n DESC, decision"]);
    assert_eq!(
        out,
        "decision,n\nallow,9\ndeny,3\nrate_limited,3\napproval_required,1\nerror,1\n"
    );
    let out = t
        .cmd(&["sql", "--format", "csv"])
        .stdin("SELECT count(*) AS n FROM decisions WHERE tool_risk(tool) = 'destructive'")
        .run();
    assert_exit!(out, 0);
    assert_eq!(out.stdout, "n\n4\n");
    let bad = t.cmd(&["sql", "SELEC nonsense"]).run();
    assert_exit!(bad, 2);
    assert!(bad.stderr.starts_with("error: "), "{}", bad.stderr);
    assert_eq!(bad.stderr.lines().count(), 1, "{}", bad.stderr);
    let col = t.cmd(&["sql", "SELECT nope FROM decisions"]).run();
    assert_exit!(col, 2);
    assert!(col.stderr.contains("No field named nope"), "{}", col.stderr);
}

#[test]
fn empty_and_missing_warehouses() {
    let t = TestDir::new();
    std::fs::create_dir(t.join("empty")).unwrap();
    let out = t
        .cmd(&["-w", "empty", "report", "volume", "--format", "json"])
        .run();
    assert_exit!(out, 0);
    assert_eq!(out.stdout.trim(), "[]");
    assert!(out.stderr.contains("no decisions yet"), "{}", out.stderr);
    let out = t.cmd(&["-w", "missing", "report", "volume"]).run();
    assert_exit!(out, 2);
    assert!(
        out.stderr.contains("missing: no verdict warehouse here"),
        "{}",
        out.stderr
    );
    let out = t.cmd(&["report", "nonsense"]).run();
    assert_exit!(out, 2);
    assert!(
        out.stderr.contains("unknown report `nonsense`"),
        "{}",
        out.stderr
    );
}

/// Issue 3: the ingest writes the rollup, reports read it, and they fall back to the decisions
/// when it does not cover the version read; the next write brings it up to date.
#[test]
fn reports_read_the_rollup_and_fall_back_when_it_does_not_cover() {
    let t = warehouse();
    let sums = "SELECT (SELECT sum(calls) FROM rollup_minute) AS minute, \
                (SELECT sum(calls) FROM rollup_hour) AS hour, \
                (SELECT count(*) FROM decisions) AS decisions";
    assert_eq!(csv(&t, &["sql", sums]), "minute,hour,decisions\n17,17,17\n");
    let alice = [
        "report",
        "volume",
        "--by",
        "hour",
        "--identity",
        "alice",
        "--until",
        "2026-11-03",
    ];
    let truth = "hour,calls,allow,deny,rate_limited,approval_required,error,unknown\n\
                 2026-11-02T08:00:00.000000Z,1,1,0,0,0,0,0\n\
                 2026-11-02T09:00:00.000000Z,3,2,1,0,0,0,0\n";
    assert_eq!(csv(&t, &alice), truth);
    let mut raw = alice.to_vec();
    raw.push("--no-rollup");
    assert_eq!(csv(&t, &raw), truth);
    // A second ingest (version 2), then a restore of version 1 (version 3): a change of the
    // decisions the rollups did not see. They are no tables then, and reports read the
    // decisions: the answer of version 1.
    t.write(
        "more.jsonl",
        r#"{"timestamp":"2026-11-02T09:30:00Z","request_id":"m1","grant_label":"alice","method":"tools/call","tool":"navigate","decision":"deny","rule":"r"}"#,
    );
    assert_exit!(t.cmd(&["ingest", "more.jsonl"]).run(), 0);
    assert_ne!(csv(&t, &alice), truth);
    let out = t.cmd(&["restore", "--to", "1"]).run();
    assert_exit!(out, 0);
    assert_eq!(out.stdout, "restored decisions to version 1 as version 3\n");
    assert_eq!(csv(&t, &alice), truth);
    let gone = t.cmd(&["sql", "SELECT count(*) FROM rollup_hour"]).run();
    assert_exit!(gone, 2);
    assert!(
        gone.stderr.contains("rollup_hour") && gone.stderr.contains("not found"),
        "{}",
        gone.stderr
    );
    // The next write recomputes the rollups (and the dedup index): the restored-away row is new
    // again, and the rollups answer with the decisions.
    let again = t.cmd(&["ingest", "more.jsonl", "--format", "json"]).run();
    assert_exit!(again, 0);
    assert_eq!(again.json()["rows_written"], 1, "{}", again.stdout);
    assert_eq!(csv(&t, &["sql", sums]), "minute,hour,decisions\n18,18,18\n");
    assert_eq!(csv(&t, &alice), csv(&t, &raw));
}

/// Issue 3: on the sample logs, every volume, denials and rate-limits question the rollup can
/// answer gives exactly the decisions' answer.
#[test]
fn rollup_answers_equal_the_decisions_answers_on_the_sample_logs() {
    let t = TestDir::new();
    t.copy_sample_logs();
    let out = t.cmd(&["ingest", "sample-logs/policylayer"]).run();
    assert_exit!(out, 0);
    // 272 distinct (hour, identity, tool, server, decision, rule, message), as DuckDB counts
    // them on the decisions files.
    assert_eq!(
        csv(
            &t,
            &[
                "sql",
                "SELECT (SELECT sum(calls) FROM rollup_minute) AS m, (SELECT sum(calls) FROM rollup_hour) AS h, \
                 (SELECT count(*) FROM rollup_hour) AS hour_rows"
            ]
        ),
        "m,h,hour_rows\n617,617,272\n"
    );
    assert_eq!(
        csv(&t, &["report", "volume", "--by", "identity"]),
        "identity,calls,allow,deny,rate_limited,approval_required,error,unknown\n\
         bob-ci,184,160,9,15,0,0,0\n\
         alice-laptop,154,143,10,0,0,1,0\n\
         carol-agent,150,128,15,4,2,1,0\n\
         ops-bot,89,71,5,5,7,1,0\n\
         dave-sandbox,40,34,3,0,2,1,0\n"
    );
    let groupings = [
        "identity,tool",
        "identity,tool,minute",
        "tool,server,hour",
        "decision,rule,day",
        "rule",
    ];
    let filters: [&[&str]; 5] = [
        &[],
        &["--identity", "bob-ci", "--identity", "carol-agent"],
        &[
            "--since",
            "2026-11-03T00:00:00Z",
            "--until",
            "2026-11-04T12:00:00Z",
        ],
        &[
            "--decision",
            "deny",
            "--decision",
            "rate_limited",
            "--server",
            "leapfrog",
        ],
        &[
            "--since",
            "2026-11-02T05:17:00Z",
            "--tool",
            "session_create",
            "--top",
            "4",
        ],
    ];
    let mut compared = 0;
    for kind in ["volume", "denials", "rate-limits"] {
        for by in groupings {
            for f in filters {
                let mut args = vec!["report", kind, "--by", by];
                args.extend(f);
                let from_rollup = csv(&t, &args);
                args.push("--no-rollup");
                let from_decisions = csv(&t, &args);
                assert_eq!(from_rollup, from_decisions, "{args:?}");
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 75);
}

/// The counter of a rate-limit group is the rule with the most calls in total, not the rule of
/// the largest rollup row (a rule's calls split over several messages make several rows); ties
/// go to the smaller rule. Same answer from the minute rollup and from the decisions, and
/// `weighted_mode` gives it in SQL.
#[test]
fn rate_limit_counter_is_the_rule_with_most_calls_in_total() {
    let t = TestDir::new();
    let calls = [
        // dave/search at 10:00: b 2 (two messages), a 2 (one message), c 3 (two messages).
        ("r1", "10:00:01", "b", "m1"),
        ("r2", "10:00:02", "b", "m2"),
        ("r3", "10:00:03", "a", "m1"),
        ("r4", "10:00:04", "a", "m1"),
        ("r5", "10:00:05", "c", "m1"),
        ("r6", "10:00:06", "c", "m1"),
        ("r7", "10:00:07", "c", "m3"),
        // dave/search at 10:01: a tie, 1 each: the smaller rule wins.
        ("r8", "10:01:00", "b", "m1"),
        ("r9", "10:01:30", "a", "m2"),
    ];
    let mut text = String::new();
    for (id, time, rule, message) in calls {
        text.push_str(&format!(
            r#"{{"timestamp":"2026-11-02T{time}Z","request_id":"{id}","grant_label":"dave","server":"web","method":"tools/call","tool":"search","decision":"deny","rule":"/tools/search/limits/{rule}","message":"{message}","session_id":"s1"}}"#
        ));
        text.push('\n');
    }
    t.write("gw.jsonl", text);
    assert_exit!(t.cmd(&["ingest", "gw.jsonl"]).run(), 0);
    let limit = |r: &str| format!("/tools/search/limits/{r}");
    let expected = format!(
        "identity,tool,minute,rate_limited,counter,counter_calls\n\
         dave,search,2026-11-02T10:00:00.000000Z,7,{},3\n\
         dave,search,2026-11-02T10:01:00.000000Z,2,{},1\n",
        limit("c"),
        limit("a")
    );
    let cut = |csv: String| -> String {
        csv.lines()
            .map(|l| l.split(',').take(6).collect::<Vec<_>>().join(",") + "\n")
            .collect()
    };
    let by_minute = ["report", "rate-limits", "--by", "identity,tool,minute"];
    assert_eq!(cut(csv(&t, &by_minute)), expected);
    let mut raw = by_minute.to_vec();
    raw.push("--no-rollup");
    assert_eq!(cut(csv(&t, &raw)), expected);
    // Over both minutes: c 3, a 3, b 3: a three-way tie, so the smallest rule.
    let out = csv(&t, &["report", "rate-limits", "--by", "identity,tool"]);
    assert_eq!(
        out.lines()
            .nth(1)
            .unwrap()
            .split(',')
            .take(6)
            .collect::<Vec<_>>(),
        ["dave", "search", "9", &limit("a"), "3", "7"]
    );
    let out = csv(
        &t,
        &[
            "sql",
            "SELECT bucket, weighted_mode(rule, calls)['value'] AS counter, \
             weighted_mode(rule, calls)['weight'] AS n FROM rollup_minute \
             WHERE decision = 'rate_limited' GROUP BY bucket ORDER BY bucket",
        ],
    );
    assert_eq!(
        out,
        format!(
            "bucket,counter,n\n2026-11-02T10:00:00.000000Z,{},3\n2026-11-02T10:01:00.000000Z,{},1\n",
            limit("c"),
            limit("a")
        )
    );
}
