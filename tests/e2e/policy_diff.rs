//! `verdict policy diff` of the sample live and candidate policies: every change, with the recorded
//! calls it touches (counted by hand from the JSON lines), unexercised access and the gates.

use crate::util::TestDir;

fn sample() -> TestDir {
    let t = TestDir::new();
    t.copy_sample_logs();
    assert_exit!(t.cmd(&["ingest", "sample-logs/policylayer"]).run(), 0);
    t
}

const LIVE: &str = "sample-logs/policies/live.json";
const CAND: &str = "sample-logs/policies/candidate.json";

/// `(tool, kind, calls, new_access, unexercised, destructive)` of every change.
fn changes(r: &serde_json::Value) -> Vec<(String, String, Option<u64>, bool, bool, bool)> {
    let mut out = Vec::new();
    for t in r["diff"]["tools"].as_array().unwrap() {
        for c in t["changes"].as_array().unwrap() {
            out.push((
                t["tool"].as_str().unwrap().to_string(),
                c["kind"].as_str().unwrap().to_string(),
                c["calls"].as_u64(),
                c["new_access"].as_bool().unwrap(),
                c["unexercised"].as_bool().unwrap(),
                c["destructive_access"].as_bool().unwrap(),
            ));
        }
    }
    out
}

#[test]
fn live_to_candidate_with_historical_counts() {
    let t = sample();
    let out = t
        .cmd(&[
            "-w",
            "verdict-warehouse",
            "policy",
            "diff",
            LIVE,
            CAND,
            "--format",
            "json",
        ])
        .run();
    assert_exit!(out, 0);
    let r = out.json();
    let c = |tool: &str, kind: &str, calls: u64, new: bool| {
        (
            tool.to_string(),
            kind.to_string(),
            Some(calls),
            new,
            false,
            false,
        )
    };
    // 523 tools/call rows; per tool as in the logs. `*`'s all_tools limit touches every call.
    assert_eq!(
        changes(&r),
        vec![
            c("*", "limit-loosened", 523, false),
            c("close_session", "access", 9, false),
            c("create_refund", "access", 7, true),
            c("create_refund", "require-added", 7, false),
            c("create_refund", "limit-added", 7, false),
            c("delete_session", "access", 4, false),
            c("knowledge_search", "limit-tightened", 50, false),
            c("navigate", "access", 75, false),
            c("navigate", "deny_if-added", 75, false),
            c("session_create", "access", 35, false),
            c("session_create", "deny_if-added", 35, false),
            c("session_create", "limit-loosened", 35, false),
            c("upload_document", "access", 10, true),
            c("upload_document", "require-added", 10, false),
            c("upload_document", "limit-added", 10, false),
        ]
    );
    assert_eq!(r["diff"]["changes"], 15);
    assert_eq!(r["diff"]["history_calls"], 523);
    let tools = r["diff"]["tools"].as_array().unwrap();
    // `*` counts the calls of tools neither policy names: download_file 2, evaluate_js 2,
    // export_knowledge_base 1, purge_sessions 1.
    assert_eq!(
        (tools[0]["tool"].as_str(), tools[0]["calls"].as_u64()),
        (Some("*"), Some(6))
    );
    assert_eq!(tools.len(), 25, "every tool either policy names, and *");
    let refund = tools.iter().find(|t| t["tool"] == "create_refund").unwrap();
    assert_eq!(
        (refund["before"].as_str(), refund["after"].as_str()),
        (Some("approval"), Some("allowed-with-conditions"))
    );

    // Without a warehouse: the same changes, no counts.
    let out = t
        .cmd(&["policy", "diff", LIVE, CAND, "--format", "json"])
        .run();
    assert_exit!(out, 0);
    let r = out.json();
    assert!(changes(&r).iter().all(|c| c.2.is_none()));
    assert_eq!(r["diff"]["history_calls"], serde_json::Value::Null);
}

#[test]
fn unexercised_access_and_gates() {
    let t = sample();
    let out = t
        .cmd(&[
            "-w",
            "verdict-warehouse",
            "policy",
            "diff",
            LIVE,
            CAND,
            "--fail-on",
            "new-access",
        ])
        .run();
    assert_exit!(out, 1);
    assert!(
        out.stdout.contains(
            "gate new-access: TRIPPED (2 changes grant new access: create_refund /tools/create_refund, upload_document /tools/upload_document)"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("| upload_document"),
        "the table comes first: {}",
        out.stdout
    );
    let out = t
        .cmd(&[
            "-w",
            "verdict-warehouse",
            "policy",
            "diff",
            LIVE,
            CAND,
            "--fail-on",
            "destructive-access",
        ])
        .run();
    assert_exit!(out, 0);

    // A candidate that also lists purge_sessions (destructive, 1 recorded call) and drop_table
    // (destructive, never called).
    let mut p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.join(CAND)).unwrap()).unwrap();
    p["tools"]["purge_sessions"] = serde_json::json!({});
    p["tools"]["drop_table"] = serde_json::json!({});
    t.write("wider.json", serde_json::to_string_pretty(&p).unwrap());
    let out = t
        .cmd(&[
            "-w",
            "verdict-warehouse",
            "policy",
            "diff",
            LIVE,
            "wider.json",
            "--fail-on",
            "destructive-access",
            "--format",
            "json",
        ])
        .run();
    assert_exit!(out, 1);
    let r = out.json();
    let all = changes(&r);
    let row = |tool: &str| all.iter().find(|c| c.0 == tool).unwrap().clone();
    assert_eq!(
        row("drop_table"),
        (
            "drop_table".into(),
            "access".into(),
            Some(0),
            true,
            true,
            true
        )
    );
    assert_eq!(
        row("purge_sessions"),
        (
            "purge_sessions".into(),
            "access".into(),
            Some(1),
            true,
            false,
            true
        )
    );
    assert_eq!(
        r["diff"]["gates"][0]["detail"],
        "2 destructive tools newly allowed: drop_table /tools/drop_table, purge_sessions /tools/purge_sessions"
    );
    let md = t
        .cmd(&[
            "-w",
            "verdict-warehouse",
            "policy",
            "diff",
            LIVE,
            "wider.json",
            "--format",
            "markdown",
        ])
        .run();
    assert_exit!(md, 0);
    assert!(
        md.stdout
            .starts_with("### Policy diff: `sample-logs/policies/live.json` -> `wider.json`"),
        "{}",
        md.stdout
    );
    assert!(
        md.stdout.contains("| drop_table | default-denied -> allowed | access | /tools/drop_table | default-denied -> allowed | 0 | new access, DESTRUCTIVE, UNEXERCISED: no recorded call |"),
        "{}",
        md.stdout
    );
    let bad = t
        .cmd(&["policy", "diff", LIVE, CAND, "--fail-on", "more-access"])
        .run();
    assert_exit!(bad, 2);
    assert!(
        bad.stderr.contains("invalid gate `more-access`"),
        "{}",
        bad.stderr
    );
}
