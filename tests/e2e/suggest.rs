//! `verdict suggest` on the sample logs: two drafts worked out by hand from the JSON lines, and the
//! property that a draft replayed on its own drafting period turns no recorded allow into a deny.

use serde_json::json;

use crate::util::TestDir;

fn sample() -> TestDir {
    let t = TestDir::new();
    t.copy_sample_logs();
    assert_exit!(t.cmd(&["ingest", "sample-logs/policylayer"]).run(), 0);
    t
}

/// A limit as the draft writes it: the tool's own counter, grant scope.
fn limit(tool: &str, window: &str, max: u64) -> serde_json::Value {
    json!([{"counter": format!("{tool}-per-{window}"), "window": window, "max": max, "scope": "grant"}])
}

#[test]
fn drafts_for_two_identities_worked_by_hand() {
    let t = sample();
    // dave-sandbox, 34 calls on weknora. Listed: the tools with a recorded allow. The window is the
    // shortest of minute/hour/day whose peak of chargeable calls (not error, not upstream 5xx)
    // reaches 5, else the day; max = peak x 2. `require`: keys in every call (and non-null in every
    // logged `args`). Never allowed: delete_session (approval_required x2), export_knowledge_base
    // and upload_document (denied).
    let out = t
        .cmd(&[
            "suggest",
            "--identity",
            "dave-sandbox",
            "--out",
            "dave.json",
            "--format",
            "json",
        ])
        .run();
    assert_exit!(out, 0);
    let dave = json!({"version": "1", "default": "deny", "tools": {
        // peaks 1/1/1 per minute/hour/day
        "create_session": {"require": ["args.knowledge_base_id"], "limits": limit("create_session", "day", 2)},
        // 9 allow + 1 error with a 5xx: peaks 3/5/5
        "get_document": {"require": ["args.document_id"], "limits": limit("get_document", "hour", 10)},
        // peaks 5/6/6
        "knowledge_search": {"require": ["args.knowledge_base_id", "args.query", "args.top_k"],
                             "limits": limit("knowledge_search", "minute", 10)},
        // one call without argument keys
        "list_knowledge_bases": {"limits": limit("list_knowledge_bases", "day", 2)}
    }});
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.join("dave.json")).unwrap()).unwrap();
    assert_eq!(written, dave);
    let r = out.json();
    let s = &r["suggestions"][0];
    assert_eq!(s["policy"], dave);
    assert_eq!(s["identity"], "dave-sandbox");
    assert_eq!(s["tool_calls"], 34);
    let lines: Vec<(&str, bool, &str)> = s["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["tool"].as_str().unwrap(),
                l["listed"].as_bool().unwrap(),
                l["why"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(lines.len(), 7);
    assert_eq!(
        lines[1],
        (
            "delete_session",
            false,
            "never allowed in 2 calls: left to the default (deny)"
        )
    );
    assert_eq!(
        lines[3].2,
        "allowed 9 of 10 calls: listed; args.document_id present in every call: required; \
         peak 5 per hour (the shortest window whose peak reaches 5) x headroom 2: max 10"
    );
    let ok = t.cmd(&["policy", "check", "dave.json"]).run();
    assert_exit!(ok, 0);

    // ops-bot (grant gr_5d21), 72 calls on payments and mcacp; asked for by its grant id.
    let out = t
        .cmd(&["suggest", "--identity", "gr_5d21", "--format", "json"])
        .run();
    assert_exit!(out, 0);
    let ops = json!({"version": "1", "default": "deny", "tools": {
        "close_session": {"require": ["args.session_id"], "limits": limit("close_session", "day", 2)},
        // 20 allow + 7 deny, one allowed call failed upstream: peaks 2/8/15
        "create_charge": {"require": ["args.amount", "args.currency", "args.customer_id"],
                          "limits": limit("create_charge", "hour", 16)},
        "get_balance": {"limits": limit("get_balance", "day", 8)},
        "list_charges": {"require": ["args.customer_id", "args.limit"], "limits": limit("list_charges", "day", 6)},
        "list_sessions": {"limits": limit("list_sessions", "hour", 12)},
        "open_session": {"require": ["args.agent", "args.cwd"], "limits": limit("open_session", "hour", 12)},
        "send_message": {"require": ["args.session_id", "args.text"], "limits": limit("send_message", "hour", 10)}
    }});
    let r = out.json();
    assert_eq!(r["suggestions"][0]["identity"], "ops-bot");
    assert_eq!(r["suggestions"][0]["identity_id"], "gr_5d21");
    assert_eq!(r["suggestions"][0]["policy"], ops);
    // create_refund was only ever approval_required: left out.
    assert!(r["suggestions"][0]["policy"]["tools"]
        .get("create_refund")
        .is_none());

    // The table names every tool and prints the policy when no file is written.
    let out = t.cmd(&["suggest", "--identity", "ops-bot"]).run();
    assert_exit!(out, 0);
    assert!(
        out.stdout
            .starts_with("suggested policy for ops-bot from 72 calls"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("\"create_charge-per-hour\""),
        "{}",
        out.stdout
    );
    let out = t.cmd(&["suggest", "--identity", "nobody"]).run();
    assert_exit!(out, 2);
    assert!(
        out.stderr.contains("identity nobody made no tools/call"),
        "{}",
        out.stderr
    );
}

/// `(identity, tool, transition) -> calls` of a replay's matrix, for the named transitions.
fn cells(r: &serde_json::Value, names: &[&str]) -> Vec<(String, String, String, u64)> {
    let mut out = Vec::new();
    for row in r["by_identity_tool"].as_array().unwrap() {
        for n in names {
            if let Some(v) = row["transitions"][*n].as_u64() {
                out.push((
                    row["identity"].as_str().unwrap_or("").to_string(),
                    row["tool"].as_str().unwrap().to_string(),
                    n.to_string(),
                    v,
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn drafts_replayed_on_their_own_period_break_no_recorded_allow() {
    let t = sample();
    let out = t
        .cmd(&["suggest", "--all", "--out", "drafts", "--format", "json"])
        .run();
    assert_exit!(out, 0);
    let r = out.json();
    let who: Vec<&str> = r["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["identity"].as_str().unwrap())
        .collect();
    assert_eq!(
        who,
        [
            "alice-laptop",
            "bob-ci",
            "carol-agent",
            "dave-sandbox",
            "ops-bot"
        ]
    );
    let grants = std::fs::read_to_string(t.join("drafts/grants.toml")).unwrap();
    assert!(grants.contains("\"bob-ci\" = \"bob-ci.json\""), "{grants}");
    for w in &who {
        assert_exit!(
            t.cmd(&["policy", "check", &format!("drafts/{w}.json")])
                .run(),
            0
        );
    }
    let out = t
        .cmd(&[
            "replay",
            "--policies",
            "drafts/grants.toml",
            "--format",
            "json",
            "--fail-on",
            "allow->deny",
            "--fail-on",
            "allow->rate_limited",
        ])
        .run();
    assert_exit!(out, 0);
    let r = out.json();
    assert_eq!(r["transitions"]["allow->deny"], 0);
    assert_eq!(r["transitions"]["allow->rate_limited"], 0);
    assert_eq!(r["transitions"]["indeterminate"], 0);
    // Approvals only for destructive tools (by the built-in catalogue): carol's session_destroy.
    let approvals = cells(&r, &["allow->approval_required"]);
    assert!(
        approvals
            .iter()
            .all(|(_, tool, _, _)| tool.contains("destroy") || tool.contains("delete")),
        "{approvals:?}"
    );
    // With --allow-destructive nothing at all changes for a recorded allow.
    let out = t
        .cmd(&[
            "suggest",
            "--all",
            "--allow-destructive",
            "--out",
            "plain",
            "--format",
            "json",
        ])
        .run();
    assert_exit!(out, 0);
    let out = t
        .cmd(&[
            "replay",
            "--policies",
            "plain/grants.toml",
            "--format",
            "json",
        ])
        .run();
    let r = out.json();
    assert_eq!(
        cells(
            &r,
            &[
                "allow->deny",
                "allow->rate_limited",
                "allow->approval_required"
            ]
        ),
        []
    );
    // Only a headroom below 1 rate-limits recorded allows.
    let out = t
        .cmd(&[
            "suggest",
            "--all",
            "--headroom",
            "0.5",
            "--out",
            "tight",
            "--format",
            "json",
        ])
        .run();
    assert_exit!(out, 0);
    let r = t
        .cmd(&[
            "replay",
            "--policies",
            "tight/grants.toml",
            "--format",
            "json",
        ])
        .run()
        .json();
    assert!(r["transitions"]["allow->rate_limited"].as_u64().unwrap() > 0);
    assert_eq!(r["transitions"]["allow->deny"], 0);
}

#[test]
fn holdout_replays_the_draft_on_the_last_part() {
    let t = sample();
    // Draft bob-ci from 2026-11-02 .. 2026-11-04, replay on the last day.
    let out = t
        .cmd(&[
            "suggest",
            "--identity",
            "bob-ci",
            "--until",
            "2026-11-05",
            "--holdout",
            "1d",
            "--format",
            "json",
        ])
        .run();
    assert_exit!(out, 0);
    let r = out.json();
    let s = &r["suggestions"][0];
    assert_eq!(s["drafted_until"], "2026-11-04T00:00:00.000000Z");
    let h = &s["holdout"];
    assert_eq!(h["from"], "2026-11-04T00:00:00.000000Z");
    assert_eq!(h["until"], "2026-11-05T00:00:00.000000Z");
    // The same figures as a replay of the draft over the holdout, bob-ci reported.
    t.write("bob.json", serde_json::to_string(&s["policy"]).unwrap());
    let rep = t
        .cmd(&[
            "replay",
            "--policy",
            "bob.json",
            "--since",
            "2026-11-04",
            "--until",
            "2026-11-05",
            "--identity",
            "bob-ci",
            "--format",
            "json",
        ])
        .run()
        .json();
    assert_eq!(h["tool_calls"], rep["counts"]["tool_calls"]);
    let broken: u64 = [
        "allow->deny",
        "allow->rate_limited",
        "allow->approval_required",
    ]
    .iter()
    .map(|k| rep["transitions"][*k].as_u64().unwrap())
    .sum();
    assert_eq!(h["total_broken"].as_u64().unwrap(), broken);
    let out = t
        .cmd(&[
            "suggest",
            "--identity",
            "bob-ci",
            "--since",
            "2026-11-04",
            "--until",
            "2026-11-05",
            "--holdout",
            "2d",
        ])
        .run();
    assert_exit!(out, 2);
    assert!(
        out.stderr
            .contains("--holdout: leaves nothing of the period to draft from"),
        "{}",
        out.stderr
    );
}
