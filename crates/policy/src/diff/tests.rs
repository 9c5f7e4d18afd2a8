use super::*;

fn load(text: &str) -> Policy {
    Policy::from_json_str(text).unwrap()
}

/// `(tool, kind, detail, new_access)` of every change.
fn flat(d: &PolicyDiff) -> Vec<(String, &'static str, String, bool)> {
    d.tools
        .iter()
        .flat_map(|t| {
            t.changes.iter().map(|c| {
                (
                    t.tool.clone(),
                    c.kind.as_str(),
                    c.detail.clone(),
                    c.new_access,
                )
            })
        })
        .collect()
}

#[test]
fn sample_live_to_candidate_lists_every_change() {
    let live = load(include_str!("../../../../sample-logs/policies/live.json"));
    let cand = load(include_str!(
        "../../../../sample-logs/policies/candidate.json"
    ));
    let d = diff(&live, &cand);
    let s = |x: &str| x.to_string();
    assert_eq!(
        flat(&d),
        vec![
            (
                s("*"),
                "limit-loosened",
                s("calls-per-minute: 20 per minute per grant -> 30 per minute per grant"),
                false
            ),
            (
                s("close_session"),
                "access",
                s("allowed -> approval"),
                false
            ),
            (
                s("create_refund"),
                "access",
                s("approval -> allowed-with-conditions"),
                true
            ),
            (
                s("create_refund"),
                "require-added",
                s("args.reason now required"),
                false
            ),
            (
                s("create_refund"),
                "limit-added",
                s("refunds-per-day: 5 per day per grant"),
                false
            ),
            (
                s("delete_session"),
                "access",
                s("approval -> hidden"),
                false
            ),
            (
                s("knowledge_search"),
                "limit-tightened",
                s("kb-search-per-session: 6 per minute per session -> 4 per minute per session"),
                false
            ),
            (
                s("navigate"),
                "access",
                s("allowed -> allowed-with-conditions"),
                false
            ),
            (
                s("navigate"),
                "deny_if-added",
                s(
                    r#"denies when args.url regex "^https?://(localhost|127\\.0\\.0\\.1|10\\.|192\\.168\\.)""#
                ),
                false
            ),
            (
                s("session_create"),
                "access",
                s("allowed -> allowed-with-conditions"),
                false
            ),
            (
                s("session_create"),
                "deny_if-added",
                s("denies when args.profile exists true"),
                false
            ),
            (
                s("session_create"),
                "limit-loosened",
                s("session_create_rate: 3 per minute per grant -> 5 per minute per grant"),
                false
            ),
            (
                s("upload_document"),
                "access",
                s("default-denied -> allowed-with-conditions"),
                true
            ),
            (
                s("upload_document"),
                "require-added",
                s("args.knowledge_base_id now required"),
                false
            ),
            (
                s("upload_document"),
                "limit-added",
                s("uploads-per-session: 2 per minute per session"),
                false
            ),
        ]
    );
    assert_eq!(d.change_count(), 15);
    // Every tool either policy names is listed, `*` first, unchanged ones with no changes.
    assert_eq!(d.tools[0].tool, "*");
    assert_eq!(d.tools.len(), 1 + 24);
    let destroy = d
        .tools
        .iter()
        .find(|t| t.tool == "session_destroy")
        .unwrap();
    assert_eq!(
        (destroy.before, destroy.after),
        (Access::Hidden, Access::Hidden)
    );
    let kb = d
        .tools
        .iter()
        .find(|t| t.tool == "delete_knowledge_base")
        .unwrap();
    assert_eq!(kb.after, Access::Denied);
    assert_eq!(
        d.rule_of("upload_document", ChangeKind::LimitAdded),
        Some("/tools/upload_document/limits/uploads-per-session")
    );
}

#[test]
fn limits_compare_by_rate_scope_sliding_and_sharing() {
    let a = load(
        r#"{"version":"1","default":"allow","tools":{
          "t":{"limits":[{"counter":"c","window":"minute","max":10}]},
          "u":{"limits":[{"counter":"d","window":"minute","max":10,"scope":"session"}]},
          "v":{"limits":[{"counter":"e","window":"minute","max":10}]},
          "w":{"limits":[{"counter":"f","window":"minute","max":60}]}}}"#,
    );
    let b = load(
        r#"{"version":"1","default":"deny","hide":["*"],"tools":{
          "t":{"limits":[{"counter":"c","window":"hour","max":600}]},
          "u":{"limits":[{"counter":"d","window":"minute","max":10,"scope":"global","sliding":true}]},
          "v":{"limits":[{"counter":"e","window":"minute","max":5,"scope":"session"}]},
          "w":{"limits":[{"counter":"f","window":"hour","max":60}]},
          "x":{"limits":[{"counter":"f","window":"hour","max":5}]}}}"#,
    );
    let d = diff(&a, &b);
    let kinds: Vec<(String, &str)> = flat(&d).into_iter().map(|(t, k, _, _)| (t, k)).collect();
    let s = |t: &str, k: &'static str| (t.to_string(), k);
    assert_eq!(
        kinds,
        vec![
            s("*", "access"),
            s("t", "access"),
            s("t", "limit-loosened"),
            s("u", "access"),
            s("u", "limit-tightened"),
            s("v", "access"),
            s("v", "limit-changed"),
            s("w", "access"),
            s("w", "limit-tightened"),
            s("w", "counter-sharing"),
            s("x", "access"),
            s("x", "limit-added"),
        ]
    );
    assert_eq!(d.tools[0].before, Access::Allowed);
    assert_eq!(d.tools[0].after, Access::Hidden);
    let sharing = &d.tools.iter().find(|t| t.tool == "w").unwrap().changes[2];
    assert_eq!(
        sharing.detail,
        "counter f shared with x (was: no other tool)"
    );
}

#[test]
fn deny_if_and_require_changes_by_id() {
    let a = load(
        r#"{"version":"1","default":"deny","tools":{"t":{"require":["args.a"],"deny_if":[
          {"id":"big","conditions":[{"path":"args.n","op":"gt","value":5}],"on_deny":"x"},
          {"conditions":[{"path":"args.m","op":"exists"}],"on_deny":"y"}]}}}"#,
    );
    let b = load(
        r#"{"version":"1","default":"deny","tools":{"t":{"require":["args.b"],"deny_if":[
          {"id":"big","conditions":[{"path":"args.n","op":"gt","value":9}],"on_deny":"x"}]}}}"#,
    );
    let d = diff(&a, &b);
    assert_eq!(
        flat(&d)
            .into_iter()
            .map(|(_, k, det, new)| (k, det, new))
            .collect::<Vec<_>>(),
        vec![
            (
                "require-removed",
                "args.a no longer required".to_string(),
                true
            ),
            ("require-added", "args.b now required".to_string(), false),
            (
                "deny_if-removed",
                "no longer denies when args.m exists".to_string(),
                true
            ),
            (
                "deny_if-changed",
                "denies when args.n gt 9 (was: args.n gt 5)".to_string(),
                false
            ),
        ]
    );
}
