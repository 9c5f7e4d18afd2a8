//! `verdict replay --policies grants.toml`: a policy per grant over shared counters, and grants
//! without a policy, on a log this test writes and works out by hand.

use crate::util::{pl_line, TestDir};

const SEARCH_A: &str = r#"{"version":"1","default":"deny","tools":{
  "search":{"limits":[{"counter":"shared-search","window":"minute","max":3,"scope":"global"}]},
  "navigate":{}}}"#;
const SEARCH_B: &str = r#"{"version":"1","default":"deny","tools":{
  "search":{"limits":[{"counter":"shared-search","window":"minute","max":3,"scope":"global"}]},
  "fetch":{"limits":[{"counter":"shared-search","window":"minute","max":4,"scope":"global"}]}}}"#;

/// Ten calls, by hand: `shared-search` is one global bucket for alice's and bob's policies.
fn warehouse() -> TestDir {
    let t = TestDir::new();
    let calls = [
        ("e01", "09:00:01", "alice", "search"), // a: bucket 0 < 3, allow -> 1
        ("e02", "09:00:02", "bob", "search"),   // b: 1 < 3, allow -> 2
        ("e03", "09:00:03", "alice", "navigate"), // no limit: allow
        ("e04", "09:00:04", "bob", "fetch"),    // b: 2 < 4, allow -> 3
        ("e05", "09:00:05", "alice", "search"), // a: 3 >= 3: rate_limited (alice alone made 1)
        ("e06", "09:00:06", "bob", "fetch"),    // b: 3 < 4, allow -> 4
        ("e07", "09:00:07", "carol", "search"), // carol has no policy: deny (no policy)
        ("e08", "09:00:08", "bob", "search"),   // b: 4 >= 3: rate_limited
        ("e09", "09:00:09", "carol", "navigate"), // recorded deny, no policy: deny, unchanged
        ("e10", "09:01:00", "alice", "search"), // a new minute: allow
    ];
    let mut log = String::new();
    for (id, ts, who, tool) in calls {
        let (decision, rule) = if id == "e09" {
            ("deny", Some("(default deny)"))
        } else {
            ("allow", None)
        };
        log.push_str(&pl_line(
            id,
            &format!("2026-11-02T{ts}Z"),
            who,
            tool,
            decision,
            rule,
        ));
        log.push('\n');
    }
    t.write("gw.jsonl", log);
    assert_exit!(t.cmd(&["ingest", "gw.jsonl"]).run(), 0);
    t.write("p/a.json", SEARCH_A);
    t.write("p/b.json", SEARCH_B);
    // alice by label, bob by grant id; carol unmapped.
    t.write(
        "grants.toml",
        "[grants]\nalice = \"p/a.json\"\ngr_bob = \"p/b.json\"\n",
    );
    t
}

/// The non-zero transitions, by name.
fn nonzero(r: &serde_json::Value) -> Vec<(String, u64)> {
    r["transitions"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| v.as_u64() != Some(0))
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

#[test]
fn a_global_counter_is_shared_across_grants_and_unmapped_grants_have_no_policy() {
    let t = warehouse();
    let out = t
        .cmd(&[
            "replay",
            "--policies",
            "grants.toml",
            "--format",
            "json",
            "--changes",
            "c.parquet",
            "--samples",
            "5",
            "--fail-on",
            "allow->deny",
        ])
        .run();
    assert_exit!(out, 1);
    let r = out.json();
    assert_eq!(r["candidate"], "grants.toml");
    assert_eq!(r["counts"]["tool_calls"], 10);
    assert_eq!(
        nonzero(&r),
        [
            ("allow->deny".to_string(), 1),
            ("allow->rate_limited".to_string(), 2),
            ("unchanged".to_string(), 7)
        ]
    );
    assert_eq!(
        r["candidate_outcomes"],
        serde_json::json!({"allow": 6, "deny": 2, "rate_limited": 2, "approval_required": 0, "indeterminate": 0})
    );
    let rules: Vec<(String, String, u64)> = r["by_rule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["rule"].as_str().unwrap().to_string(),
                x["transition"].as_str().unwrap().to_string(),
                x["calls"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        [
            (
                "/tools/search/limits/shared-search".into(),
                "allow->rate_limited".into(),
                2
            ),
            ("(no policy)".into(), "allow->deny".into(), 1),
        ]
    );
    let ids: Vec<&str> = r["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["e07", "e05", "e08"]);
    assert_eq!(r["samples"][0]["candidate_rule"], "(no policy)");
    assert_eq!(r["changes"]["rows"], 3);
    assert_eq!(r["gates"][0]["detail"], "1 calls allow->deny");

    // With alice's policy for everyone, bob's `fetch` is default-denied and charges nothing, so the
    // bucket holds 2 at e05 and alice is never limited: the limit above came from bob's policy.
    let alone = t
        .cmd(&[
            "replay",
            "--policy",
            "p/a.json",
            "--identity",
            "alice",
            "--format",
            "json",
        ])
        .run();
    assert_exit!(alone, 0);
    assert_eq!(nonzero(&alone.json()), [("unchanged".to_string(), 4)]);
}

#[test]
fn a_default_entry_and_a_baseline_per_grant() {
    let t = warehouse();
    t.write(
        "with-default.toml",
        "default = \"p/a.json\"\n[grants]\nalice = \"p/a.json\"\ngr_bob = \"p/b.json\"\n",
    );
    let out = t
        .cmd(&[
            "replay",
            "--policies",
            "with-default.toml",
            "--format",
            "json",
        ])
        .run();
    assert_exit!(out, 0);
    let r = out.json();
    // carol now has alice's policy: e07 finds the shared bucket at 4 (e01 e02 e04 e06): rate_limited
    // like e05 and e08; e09 navigate, recorded deny, is allowed.
    assert_eq!(
        nonzero(&r),
        [
            ("allow->rate_limited".to_string(), 3),
            ("deny->allow".to_string(), 1),
            ("unchanged".to_string(), 6)
        ]
    );
    let out = t
        .cmd(&[
            "replay",
            "--policies",
            "with-default.toml",
            "--baseline-policies",
            "grants.toml",
            "--format",
            "json",
        ])
        .run();
    assert_exit!(out, 0);
    let r = out.json();
    assert_eq!(r["compared_with"], "baseline");
    assert_eq!(r["baseline"], "grants.toml");
    // Against the simulated per-grant baseline: e07 was (no policy) deny, now rate_limited; e09 deny -> allow.
    assert_eq!(
        nonzero(&r),
        [
            ("deny->allow".to_string(), 1),
            ("deny->rate_limited".to_string(), 1),
            ("unchanged".to_string(), 8)
        ]
    );
    // Fidelity of the baseline: it reproduces 7 of the 10 recorded decisions (not e05, e07, e08).
    assert_eq!(r["fidelity"]["reproduced"], 7);
    // Counters must be declared alike in every policy that shares them.
    t.write(
        "p/c.json",
        r#"{"version":"1","default":"deny","tools":{"search":{"limits":[{"counter":"shared-search","window":"hour","max":3,"scope":"global"}]}}}"#,
    );
    t.write(
        "bad.toml",
        "[grants]\nalice = \"p/a.json\"\ncarol = \"p/c.json\"\n",
    );
    let out = t.cmd(&["replay", "--policies", "bad.toml"]).run();
    assert_exit!(out, 2);
    assert!(
        out.stderr
            .contains("counter \"shared-search\" is a minute window, global scope in")
            && out.stderr.contains("but a hour window, global scope in"),
        "{}",
        out.stderr
    );
}
