//! Tests of `eval`: each step and its rule pointer, counters (windows at exact UTC boundaries, sliding
//! edges, scopes, sharing, atomic reservation, expiry), quota rollback and indeterminate calls.

use serde_json::{json, Value};

use super::*;

fn policy(doc: Value) -> Policy {
    Policy::from_json_str(&doc.to_string()).unwrap()
}

/// UTC microseconds of an RFC 3339 time.
fn ts(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .timestamp_micros()
}

const T0: &str = "2024-05-01T09:00:00Z";

fn at<'a>(s: &str, tool: &'a str) -> Call<'a> {
    Call {
        identity: Some("alice"),
        ..Call::new(ts(s), tool)
    }
}

fn recorded(decision: RecordedDecision, upstream_status: Option<i32>) -> Option<Recorded> {
    Some(Recorded {
        decision,
        upstream_status,
    })
}

/// `(outcome, rule)` of each call, in order.
fn run<'p>(e: &mut Evaluator<'p>, calls: &[Call<'_>]) -> Vec<(Outcome, &'p str)> {
    calls
        .iter()
        .map(|c| {
            let v = e.evaluate(c);
            (v.outcome, v.rule)
        })
        .collect()
}

/// A policy whose tool `t` has one limit.
fn one_limit(limit: Value) -> Policy {
    policy(json!({"version": "1", "default": "deny", "tools": {"t": {"limits": [limit]}}}))
}

use Outcome::{
    Allow as A, ApprovalRequired as Appr, Deny as D, Indeterminate as I, RateLimited as R,
};

// ---- steps ---------------------------------------------------------------------------------------

#[test]
fn hidden_tools_are_denied() {
    let p = policy(json!({"version": "1", "default": "allow", "hide": ["rm"],
                          "tools": {"rm": {}, "ls": {}}}));
    let mut e = Evaluator::new(&p);
    let v = e.evaluate(&at(T0, "rm"));
    assert_eq!(
        v,
        Verdict {
            outcome: Outcome::Deny,
            rule: "(hidden)",
            message: "tool is hidden by the policy",
            charged: false
        }
    );
    assert_eq!(e.evaluate(&at(T0, "ls")).outcome, A);
    assert_eq!(e.evaluate(&at(T0, "unlisted")).outcome, A);

    let p = policy(json!({"version": "1", "default": "allow", "hide": ["*"], "tools": {"ls": {}}}));
    let mut e = Evaluator::new(&p);
    assert_eq!(
        run(&mut e, &[at(T0, "ls"), at(T0, "other")]),
        [(D, "(hidden)"), (D, "(hidden)")]
    );
}

#[test]
fn hidden_only_names_are_still_unlisted() {
    let p = policy(json!({"version": "1", "default": "deny", "hide": ["rm"], "tools": {"ls": {}}}));
    let mut e = Evaluator::new(&p);
    assert_eq!(
        run(&mut e, &[at(T0, "rm"), at(T0, "cat"), at(T0, "ls")]),
        [(D, "(hidden)"), (D, "(default deny)"), (A, "")]
    );
}

#[test]
fn default_deny_and_empty_rule() {
    let p = policy(json!({"version": "1", "default": "deny", "tools": {"navigate": {}}}));
    let mut e = Evaluator::new(&p);
    let v = e.evaluate(&at(T0, "click"));
    assert_eq!(
        (v.outcome, v.rule, v.message),
        (
            D,
            "(default deny)",
            "tool is not listed in the policy and the default is deny"
        )
    );
    let v = e.evaluate(&at(T0, "navigate"));
    assert_eq!(
        v,
        Verdict {
            outcome: Outcome::Allow,
            rule: "",
            message: "",
            charged: true
        }
    );
}

#[test]
fn default_allow_applies_only_all_tools_limits() {
    let p = policy(json!({"version": "1", "default": "allow",
        "all_tools": {"limits": [{"counter": "all", "window": "minute", "max": 2}]},
        "tools": {"listed": {"limits": [{"counter": "listed", "window": "minute", "max": 0}]}}}));
    let mut e = Evaluator::new(&p);
    assert_eq!(
        run(
            &mut e,
            &[
                at(T0, "free"),
                at(T0, "listed"),
                at(T0, "other"),
                at(T0, "free")
            ]
        ),
        [
            (A, ""),
            (R, "/tools/listed/limits/listed"),
            (A, ""),
            (R, "/all_tools/limits/all")
        ]
    );
}

#[test]
fn require_missing_absent_or_null() {
    let p = policy(json!({"version": "1", "default": "deny",
        "tools": {"create_charge": {"require": ["args.reason", "args.meta.ticket"]}}}));
    let mut e = Evaluator::new(&p);
    let eval = |e: &mut Evaluator<'_>, args: Value| {
        let v = e.evaluate(&Call {
            args: Some(Args::Value(&args)),
            ..at(T0, "create_charge")
        });
        (v.outcome, v.rule.to_owned(), v.message.to_owned())
    };
    assert_eq!(
        eval(&mut e, json!({})),
        (
            D,
            "/tools/create_charge/require/args.reason".to_owned(),
            "missing required argument args.reason".to_owned()
        )
    );
    assert_eq!(
        eval(&mut e, json!({"reason": null, "meta": {"ticket": 1}})).1,
        "/tools/create_charge/require/args.reason"
    );
    assert_eq!(
        eval(&mut e, json!({"reason": "", "meta": {}})).1,
        "/tools/create_charge/require/args.meta.ticket"
    );
    assert_eq!(
        eval(&mut e, json!({"reason": false, "meta": {"ticket": 0}})),
        (A, String::new(), String::new())
    );
}

#[test]
fn deny_if_rule_pointers_and_order() {
    let p = policy(json!({"version": "1", "default": "deny", "tools": {"t": {
    "require": ["args.reason"],
    "deny_if": [
        {"id": "big-eur", "conditions": [{"path": "args.amount", "op": "gt", "value": 100},
                                         {"path": "args.currency", "op": "eq", "value": "EUR"}],
         "on_deny": "big EUR"},
        {"conditions": [{"path": "args.amount", "op": "gt", "value": 1000},
                        {"path": "args.currency", "op": "eq", "value": "USD"}],
         "on_deny": "big USD"},
        {"conditions": [{"path": "args.note", "op": "regex", "value": "(?i)urgent"}], "on_deny": "urgent"},
        {"conditions": [], "on_deny": "everything else"}
    ]}}}));
    let mut e = Evaluator::new(&p);
    let mut eval = |args: Value| {
        let v = e.evaluate(&Call {
            args: Some(Args::Value(&args)),
            ..at(T0, "t")
        });
        (v.outcome, v.rule.to_owned(), v.message.to_owned())
    };
    let deny = |rule: &str, msg: &str| (D, format!("/tools/t/deny_if/{rule}"), msg.to_owned());
    assert_eq!(
        eval(json!({"reason": "x", "amount": 500, "currency": "EUR"})),
        deny("big-eur", "big EUR")
    );
    // AND: one false condition and the rule does not match.
    assert_eq!(
        eval(json!({"reason": "x", "amount": 500, "currency": "USD", "note": "URGENT!"})),
        deny("args.note-regex", "urgent")
    );
    assert_eq!(
        eval(json!({"reason": "x", "amount": 5000, "currency": "USD"})),
        deny("args.amount-gt", "big USD")
    );
    assert_eq!(
        eval(json!({"reason": "x", "amount": 1})),
        deny("3", "everything else")
    );
    // require comes before deny_if.
    assert_eq!(
        eval(json!({"amount": 500, "currency": "EUR"})).1,
        "/tools/t/require/args.reason"
    );
}

#[test]
fn empty_conditions_use_the_array_index() {
    let p = policy(
        json!({"version": "1", "default": "deny", "tools": {"create_refund": {
        "deny_if": [{"conditions": [{"path": "args.a", "op": "exists", "value": true}], "on_deny": "a"},
                    {"conditions": [], "on_deny": "Requires human approval."}]}}}),
    );
    let mut e = Evaluator::new(&p);
    let v = e.evaluate(&Call {
        args: Some(Args::Value(&json!({}))),
        ..at(T0, "create_refund")
    });
    assert_eq!(
        (v.outcome, v.rule, v.message),
        (
            D,
            "/tools/create_refund/deny_if/1",
            "Requires human approval."
        )
    );
    // An empty rule holds even when nothing about the arguments is known.
    let v = e.evaluate(&Call {
        arg_keys: Some(&[]),
        ..at(T0, "create_refund")
    });
    assert_eq!(v.rule, "/tools/create_refund/deny_if/1");
}

#[test]
fn approval_after_limits_and_never_charges() {
    let p = policy(json!({"version": "1", "default": "deny", "tools": {
        "wire": {"approval": true, "limits": [{"counter": "c", "window": "minute", "max": 1}]},
        "read": {"limits": [{"counter": "c", "window": "minute", "max": 1}]},
        "zero": {"approval": true, "limits": [{"counter": "z", "window": "minute", "max": 0}]}}}));
    let mut e = Evaluator::new(&p);
    let v = e.evaluate(&at(T0, "wire"));
    assert_eq!(
        v,
        Verdict {
            outcome: Outcome::ApprovalRequired,
            rule: "/tools/wire/approval",
            message: "tool requires human approval",
            charged: false
        }
    );
    assert_eq!(
        run(
            &mut e,
            &[
                at(T0, "wire"),
                at(T0, "read"),
                at(T0, "wire"),
                at(T0, "zero")
            ]
        ),
        [
            (Appr, "/tools/wire/approval"),
            (A, ""),
            (R, "/tools/wire/limits/c"),
            (R, "/tools/zero/limits/z")
        ]
    );
}

// ---- limits and counters -------------------------------------------------------------------------

#[test]
fn limit_message_and_charge_flag() {
    let p = one_limit(
        json!({"counter": "burst", "window": "second", "max": 1, "scope": "session", "sliding": true}),
    );
    let mut e = Evaluator::new(&p);
    assert!(e.evaluate(&at(T0, "t")).charged);
    let v = e.evaluate(&at(T0, "t"));
    assert_eq!(
        v,
        Verdict {
            outcome: Outcome::RateLimited,
            rule: "/tools/t/limits/burst",
            message:
                "rate limit \"burst\" exceeded: at most 1 calls per sliding second per session",
            charged: false
        }
    );
}

#[test]
fn fixed_minute_boundary() {
    let p = one_limit(json!({"counter": "c", "window": "minute", "max": 1}));
    let mut e = Evaluator::new(&p);
    assert_eq!(
        run(
            &mut e,
            &[
                at("2024-05-01T09:00:00Z", "t"),
                at("2024-05-01T09:00:59.999999Z", "t"),
                at("2024-05-01T09:01:00Z", "t"),
                at("2024-05-01T09:01:00.000001Z", "t"),
                at("2024-05-01T09:02:59.999999Z", "t"),
            ]
        ),
        [
            (A, ""),
            (R, "/tools/t/limits/c"),
            (A, ""),
            (R, "/tools/t/limits/c"),
            (A, "")
        ]
    );
}

#[test]
fn fixed_second_hour_and_day_boundaries() {
    let cases = [
        (
            "second",
            "2024-05-01T09:00:07Z",
            "2024-05-01T09:00:07.999999Z",
            "2024-05-01T09:00:08Z",
        ),
        (
            "hour",
            "2024-05-01T09:00:00Z",
            "2024-05-01T09:59:59.999999Z",
            "2024-05-01T10:00:00Z",
        ),
        (
            "day",
            "2024-05-01T00:00:00Z",
            "2024-05-01T23:59:59.999999Z",
            "2024-05-02T00:00:00Z",
        ),
        // A day starts at 00:00 UTC whatever the offset the time was written with.
        (
            "day",
            "2024-05-01T01:30:00+02:00",
            "2024-05-01T01:59:59.999999+02:00",
            "2024-05-01T02:00:00+02:00",
        ),
    ];
    for (window, first, last, next) in cases {
        let p = one_limit(json!({"counter": "c", "window": window, "max": 2}));
        let mut e = Evaluator::new(&p);
        let got: Vec<Outcome> = [first, last, last, next, next, next]
            .iter()
            .map(|s| e.evaluate(&at(s, "t")).outcome)
            .collect();
        assert_eq!(got, [A, A, R, A, A, R], "{window} {first}");
    }
}

#[test]
fn sliding_window_edge() {
    let p = one_limit(json!({"counter": "c", "window": "minute", "max": 2, "sliding": true}));
    let mut e = Evaluator::new(&p);
    assert_eq!(
        run(
            &mut e,
            &[
                at("2024-05-01T09:00:30Z", "t"),
                at("2024-05-01T09:00:50Z", "t"),
                // Across the fixed boundary, both charges are still in (t - 1 min, t].
                at("2024-05-01T09:01:10Z", "t"),
                at("2024-05-01T09:01:29.999999Z", "t"),
                // Exactly one window after the first charge: it no longer counts.
                at("2024-05-01T09:01:30Z", "t"),
                at("2024-05-01T09:01:30Z", "t"),
                at("2024-05-01T09:01:50Z", "t"),
                at("2024-05-01T09:02:30Z", "t"),
                at("2024-05-01T09:02:30Z", "t"),
            ]
        ),
        [
            (A, ""),
            (A, ""),
            (R, "/tools/t/limits/c"),
            (R, "/tools/t/limits/c"),
            (A, ""),
            (R, "/tools/t/limits/c"),
            (A, ""),
            (A, ""),
            (R, "/tools/t/limits/c"),
        ]
    );
}

#[test]
fn sliding_day_window() {
    let p = one_limit(json!({"counter": "c", "window": "day", "max": 1, "sliding": true}));
    let mut e = Evaluator::new(&p);
    let got: Vec<Outcome> = [
        "2024-05-01T12:00:00Z",
        "2024-05-02T00:00:00Z",
        "2024-05-02T11:59:59.999999Z",
        "2024-05-02T12:00:00Z",
    ]
    .iter()
    .map(|s| e.evaluate(&at(s, "t")).outcome)
    .collect();
    assert_eq!(got, [A, R, R, A]);
}

/// Outcomes of `calls` under one limit (max 1 per minute) with `scope`.
fn scoped(scope: &str, calls: &[Call<'_>]) -> Vec<Outcome> {
    let p = one_limit(json!({"counter": "c", "window": "minute", "max": 1, "scope": scope}));
    let mut e = Evaluator::new(&p);
    calls.iter().map(|c| e.evaluate(c).outcome).collect()
}

fn who(identity: Option<&'static str>, identity_id: Option<&'static str>) -> Call<'static> {
    Call {
        identity,
        identity_id,
        ..Call::new(ts(T0), "t")
    }
}

#[test]
fn grant_scope_uses_identity_id_then_identity() {
    for scope in ["grant", "identity"] {
        // The same grant id under two labels shares a bucket.
        assert_eq!(
            scoped(
                scope,
                &[
                    who(Some("alice"), Some("g1")),
                    who(Some("Alice B."), Some("g1"))
                ]
            ),
            [A, R]
        );
        // The same label with two grant ids does not.
        assert_eq!(
            scoped(
                scope,
                &[
                    who(Some("alice"), Some("g1")),
                    who(Some("alice"), Some("g2"))
                ]
            ),
            [A, A]
        );
        // Without an id, the label is the key.
        assert_eq!(
            scoped(
                scope,
                &[
                    who(Some("alice"), None),
                    who(Some("alice"), None),
                    who(Some("bob"), None)
                ]
            ),
            [A, R, A]
        );
        // A label never shares a bucket with an id of the same text.
        assert_eq!(
            scoped(scope, &[who(Some("g1"), None), who(None, Some("g1"))]),
            [A, A]
        );
        // Unknown identity: one shared bucket.
        assert_eq!(scoped(scope, &[who(None, None), who(None, None)]), [A, R]);
    }
}

#[test]
fn session_scope_falls_back_to_grant() {
    let s = |session: Option<&'static str>, identity: Option<&'static str>| Call {
        session,
        identity,
        ..Call::new(ts(T0), "t")
    };
    assert_eq!(
        scoped(
            "session",
            &[
                s(Some("s1"), Some("alice")),
                s(Some("s1"), Some("bob")),
                s(Some("s2"), Some("alice"))
            ]
        ),
        [A, R, A]
    );
    assert_eq!(
        scoped(
            "session",
            &[
                s(None, Some("alice")),
                s(None, Some("alice")),
                s(None, Some("bob"))
            ]
        ),
        [A, R, A]
    );
    assert_eq!(
        scoped(
            "session",
            &[s(Some("alice"), Some("x")), s(None, Some("alice"))]
        ),
        [A, A]
    );
    let with_id = Call {
        identity_id: Some("g1"),
        ..s(None, Some("alice"))
    };
    let with_id_again = Call {
        identity: Some("other label"),
        ..with_id
    };
    assert_eq!(scoped("session", &[with_id, with_id_again]), [A, R]);
    assert_eq!(scoped("session", &[s(None, None), s(None, None)]), [A, R]);
}

#[test]
fn server_and_global_scopes() {
    let s = |server: Option<&'static str>, identity: &'static str| Call {
        server,
        identity: Some(identity),
        ..Call::new(ts(T0), "t")
    };
    assert_eq!(
        scoped(
            "server",
            &[
                s(Some("stripe"), "alice"),
                s(Some("stripe"), "bob"),
                s(Some("github"), "alice")
            ]
        ),
        [A, R, A]
    );
    assert_eq!(
        scoped("server", &[s(None, "alice"), s(None, "bob")]),
        [A, R]
    );
    assert_eq!(
        scoped("global", &[s(Some("stripe"), "alice"), s(None, "bob")]),
        [A, R]
    );
}

#[test]
fn counters_are_shared_across_tools() {
    let p = policy(json!({"version": "1", "default": "deny", "tools": {
        "a": {"limits": [{"counter": "shared", "window": "hour", "max": 2}]},
        "b": {"limits": [{"counter": "shared", "window": "hour", "max": 3}]},
        "c": {}}}));
    let mut e = Evaluator::new(&p);
    assert_eq!(
        run(
            &mut e,
            &[
                at(T0, "a"),
                at(T0, "b"),
                at(T0, "c"),
                at(T0, "a"),
                at(T0, "b"),
                at(T0, "b")
            ]
        ),
        [
            (A, ""),
            (A, ""),
            (A, ""),
            (R, "/tools/a/limits/shared"),
            (A, ""),
            (R, "/tools/b/limits/shared")
        ]
    );
}

#[test]
fn a_bucket_is_charged_once_per_call() {
    // The tool's limit and all_tools' limit share the counter: each call charges it once.
    let p = policy(json!({"version": "1", "default": "deny",
        "all_tools": {"limits": [{"counter": "c", "window": "minute", "max": 5}]},
        "tools": {"t": {"limits": [{"counter": "c", "window": "minute", "max": 2}]},
                  "u": {"limits": [{"counter": "c", "window": "minute", "max": 10},
                                   {"counter": "c", "window": "minute", "max": 10}]}}}));
    let mut e = Evaluator::new(&p);
    assert_eq!(
        run(
            &mut e,
            &[
                at(T0, "t"),
                at(T0, "t"),
                at(T0, "t"),
                at(T0, "u"),
                at(T0, "u"),
                at(T0, "u"),
                at(T0, "u")
            ]
        ),
        [
            (A, ""),
            (A, ""),
            (R, "/tools/t/limits/c"),
            (A, ""),
            (A, ""),
            (A, ""),
            (R, "/all_tools/limits/c")
        ]
    );
}

#[test]
fn reservation_is_atomic_and_names_the_first_exceeded() {
    let p = policy(json!({"version": "1", "default": "deny",
        "all_tools": {"limits": [{"counter": "per-id", "window": "minute", "max": 1},
                                 {"counter": "total", "window": "minute", "max": 100, "scope": "global"}]},
        "tools": {"x": {"limits": [{"counter": "x-rate", "window": "minute", "max": 2, "scope": "global"}]}}}));
    let mut e = Evaluator::new(&p);
    let by = |identity: &'static str| Call {
        identity: Some(identity),
        ..Call::new(ts(T0), "x")
    };
    assert_eq!(
        run(
            &mut e,
            &[by("alice"), by("alice"), by("bob"), by("carol"), by("bob")]
        ),
        [
            (A, ""),
            // per-id is exceeded: nothing is charged, so x-rate is still 1 for bob.
            (R, "/all_tools/limits/per-id"),
            (A, ""),
            (R, "/tools/x/limits/x-rate"),
            // Both are exceeded: the tool's limit comes first.
            (R, "/tools/x/limits/x-rate"),
        ]
    );
}

#[test]
fn max_zero_denies_every_call() {
    let p = one_limit(json!({"counter": "c", "window": "day", "max": 0, "scope": "global"}));
    let mut e = Evaluator::new(&p);
    for i in 0..3 {
        let v = e.evaluate(&at(T0, "t"));
        assert_eq!(
            (v.outcome, v.rule, v.charged),
            (R, "/tools/t/limits/c", false),
            "call {i}"
        );
    }
    assert_eq!(e.live_buckets(), 0);
}

#[test]
fn rollback_on_upstream_failure() {
    let p = one_limit(json!({"counter": "c", "window": "minute", "max": 1}));
    for (status, charged) in [
        (Some(500), false),
        (Some(503), false),
        (Some(499), true),
        (Some(200), true),
        (None, true),
    ] {
        let mut e = Evaluator::new(&p);
        let first = Call {
            recorded: recorded(RecordedDecision::Allow, status),
            ..at(T0, "t")
        };
        let v = e.evaluate(&first);
        assert_eq!((v.outcome, v.charged), (A, charged), "{status:?}");
        let next = e.evaluate(&at(T0, "t")).outcome;
        assert_eq!(next, if charged { R } else { A }, "{status:?}");
    }
    // A recorded deny (or rate limit, or approval) does not matter for a call the candidate allows.
    for decision in [
        RecordedDecision::Deny,
        RecordedDecision::RateLimited,
        RecordedDecision::ApprovalRequired,
    ] {
        let mut e = Evaluator::new(&p);
        let v = e.evaluate(&Call {
            recorded: recorded(decision, None),
            ..at(T0, "t")
        });
        assert_eq!((v.outcome, v.charged), (A, true), "{decision:?}");
    }
    // A recorded error or unknown: the live gateway failed closed and kept no quota.
    for decision in [RecordedDecision::Error, RecordedDecision::Unknown] {
        let mut e = Evaluator::new(&p);
        let v = e.evaluate(&Call {
            recorded: recorded(decision, Some(200)),
            ..at(T0, "t")
        });
        assert_eq!((v.outcome, v.charged), (A, false), "{decision:?}");
        assert_eq!(e.evaluate(&at(T0, "t")).outcome, A, "{decision:?}");
    }
}

#[test]
fn buckets_expire() {
    let p = policy(json!({"version": "1", "default": "allow",
        "all_tools": {"limits": [{"counter": "m", "window": "minute", "max": 100},
                                 {"counter": "s", "window": "second", "max": 100, "sliding": true}]}}));
    let mut e = Evaluator::new(&p);
    let names: Vec<String> = (0..50).map(|i| format!("user{i}")).collect();
    let t0 = ts(T0);
    for n in &names {
        e.evaluate(&Call {
            identity: Some(n),
            ..Call::new(t0, "t")
        });
    }
    assert_eq!(e.live_buckets(), 100);
    // 2 s later: the sliding buckets are gone; the minute buckets live on.
    e.evaluate(&Call {
        identity: Some("late"),
        ..Call::new(t0 + 2_000_000, "t")
    });
    assert_eq!(e.live_buckets(), 52);
    // Next minute: the previous minute's buckets are kept for reuse, then dropped a minute later.
    e.evaluate(&Call::new(t0 + 60_000_000, "t"));
    assert_eq!(e.live_buckets(), 53);
    e.evaluate(&Call::new(t0 + 120_000_000, "t"));
    assert_eq!(e.live_buckets(), 2);
    // Many days later, nothing of the past is kept.
    e.evaluate(&Call::new(t0 + 10 * 86_400_000_000, "t"));
    assert_eq!(e.live_buckets(), 2);
    e.reset();
    assert_eq!(e.live_buckets(), 0);
}

#[test]
fn a_reused_bucket_restarts_from_zero() {
    let p = one_limit(json!({"counter": "c", "window": "minute", "max": 2}));
    let mut e = Evaluator::new(&p);
    assert_eq!(
        run(
            &mut e,
            &[
                at("2024-05-01T09:00:10Z", "t"),
                at("2024-05-01T09:00:20Z", "t"),
                at("2024-05-01T09:01:10Z", "t"),
                at("2024-05-01T09:01:20Z", "t"),
                at("2024-05-01T09:01:30Z", "t"),
            ]
        ),
        [(A, ""), (A, ""), (A, ""), (A, ""), (R, "/tools/t/limits/c")]
    );
}

#[test]
fn time_never_goes_backwards() {
    let p = one_limit(json!({"counter": "c", "window": "minute", "max": 1}));
    let mut e = Evaluator::new(&p);
    assert_eq!(
        run(
            &mut e,
            &[
                at("2024-05-01T09:01:00Z", "t"),
                at("2024-05-01T09:00:30Z", "t")
            ]
        ),
        [(A, ""), (R, "/tools/t/limits/c")]
    );
}

// ---- indeterminate -------------------------------------------------------------------------------

fn charge_policy() -> Policy {
    policy(json!({"version": "1", "default": "deny",
        "all_tools": {"limits": [{"counter": "per-id", "window": "minute", "max": 1}]},
        "tools": {"create_charge": {
            "require": ["args.reason"],
            "deny_if": [
                {"conditions": [{"path": "args.memo", "op": "exists", "value": true},
                                {"path": "args.amount", "op": "gt", "value": 10}], "on_deny": "memo"},
                {"conditions": [{"path": "args.amount", "op": "gt", "value": 10000}],
                 "on_deny": "Charges over 10000 need finance sign-off."},
                {"conditions": [], "on_deny": "all"}
            ]},
            "list": {"require": ["args.filter.kind"],
                     "limits": [{"counter": "list", "window": "minute", "max": 1}]},
            "plain": {"deny_if": [{"id": "no-debug", "conditions": [{"path": "args.debug", "op": "exists", "value": false}],
                                   "on_deny": "debug required"}]}}}))
}

fn keys(tool: &'static str, keys: &'static [&'static str]) -> Call<'static> {
    Call {
        arg_keys: Some(keys),
        ..at(T0, tool)
    }
}

#[test]
fn keys_decide_top_level_presence() {
    let p = charge_policy();
    let mut e = Evaluator::new(&p);
    // require: an absent top-level key is missing.
    let v = e.evaluate(&keys("create_charge", &["amount"]));
    assert_eq!(
        (v.outcome, v.rule),
        (D, "/tools/create_charge/require/args.reason")
    );
    // exists false on an absent key holds.
    let v = e.evaluate(&keys("plain", &["other"]));
    assert_eq!(
        (v.outcome, v.rule, v.message),
        (D, "/tools/plain/deny_if/no-debug", "debug required")
    );
    // exists false on a present key is false: allow.
    let v = e.evaluate(&keys("plain", &["debug"]));
    assert_eq!((v.outcome, v.rule), (A, ""));
}

#[test]
fn a_value_condition_is_indeterminate_and_stops_evaluation() {
    let p = charge_policy();
    let mut e = Evaluator::new(&p);
    // Rule 0: memo is absent, so the rule is determinately false despite the unknown amount.
    // Rule 1: needs the amount's value: evaluation stops there (rule 2 would deny).
    let v = e.evaluate(&keys("create_charge", &["amount", "reason"]));
    assert_eq!(
        v,
        Verdict {
            outcome: Outcome::Indeterminate,
            rule: "/tools/create_charge/deny_if/args.amount-gt",
            message: "args.amount value not logged",
            charged: false
        }
    );
    // With memo present, rule 0 itself is indeterminate (exists holds, gt unknown).
    let v = e.evaluate(&keys("create_charge", &["amount", "memo", "reason"]));
    assert_eq!(
        (v.outcome, v.rule, v.message),
        (
            I,
            "/tools/create_charge/deny_if/args.memo-exists",
            "args.amount value not logged"
        )
    );
    // Without an amount, rules 0 and 1 are false and rule 2 denies.
    let v = e.evaluate(&keys("create_charge", &["reason"]));
    assert_eq!((v.outcome, v.rule), (D, "/tools/create_charge/deny_if/2"));
}

#[test]
fn an_earlier_decision_wins_over_a_later_unknown() {
    let p = policy(
        json!({"version": "1", "default": "deny", "tools": {"t": {"deny_if": [
        {"id": "first", "conditions": [{"path": "args.x", "op": "exists", "value": true}], "on_deny": "x"},
        {"id": "second", "conditions": [{"path": "args.x", "op": "eq", "value": 1}], "on_deny": "one"}]}}}),
    );
    let mut e = Evaluator::new(&p);
    let v = e.evaluate(&keys("t", &["x"]));
    assert_eq!((v.outcome, v.rule), (D, "/tools/t/deny_if/first"));
}

#[test]
fn nested_require_and_nothing_logged() {
    let p = charge_policy();
    let mut e = Evaluator::new(&p);
    let v = e.evaluate(&keys("list", &["filter"]));
    assert_eq!(
        (v.outcome, v.rule, v.message),
        (
            I,
            "/tools/list/require/args.filter.kind",
            "args.filter.kind presence not logged"
        )
    );
    let v = e.evaluate(&keys("list", &["page"]));
    assert_eq!(
        (v.outcome, v.rule),
        (D, "/tools/list/require/args.filter.kind")
    );
    // Neither keys nor values: require and exists are undecidable.
    let v = e.evaluate(&at(T0, "create_charge"));
    assert_eq!(
        (v.outcome, v.rule, v.message),
        (
            I,
            "/tools/create_charge/require/args.reason",
            "args.reason presence not logged"
        )
    );
    let v = e.evaluate(&at(T0, "plain"));
    assert_eq!(
        (v.outcome, v.rule, v.message),
        (
            I,
            "/tools/plain/deny_if/no-debug",
            "args.debug presence not logged"
        )
    );
}

#[test]
fn indeterminate_charges_iff_recorded_allow() {
    let p = charge_policy();
    let call = |decision: Option<(RecordedDecision, Option<i32>)>| Call {
        recorded: decision.and_then(|(d, s)| recorded(d, s)),
        ..keys("list", &["filter"])
    };
    let cases = [
        (Some((RecordedDecision::Allow, None)), true),
        (Some((RecordedDecision::Allow, Some(200))), true),
        (Some((RecordedDecision::Allow, Some(502))), false),
        (Some((RecordedDecision::Deny, None)), false),
        (Some((RecordedDecision::RateLimited, None)), false),
        (Some((RecordedDecision::Unknown, None)), false),
        (None, false),
    ];
    for (decision, charged) in cases {
        let mut e = Evaluator::new(&p);
        let v = e.evaluate(&call(decision));
        assert_eq!((v.outcome, v.charged), (I, charged), "{decision:?}");
        // Both the tool's counter and all_tools' counter were charged (or neither).
        let next = e.evaluate(&Call {
            args: Some(Args::Value(&json!({"filter": {"kind": "x"}}))),
            ..at(T0, "list")
        });
        let expect = if charged {
            (R, "/tools/list/limits/list")
        } else {
            (A, "")
        };
        assert_eq!((next.outcome, next.rule), expect, "{decision:?}");
        assert_eq!(e.live_buckets(), 2, "{decision:?}");
    }
}

#[test]
fn indeterminate_charges_regardless_of_exceedance() {
    let p = charge_policy();
    let mut e = Evaluator::new(&p);
    let allowed = Call {
        recorded: recorded(RecordedDecision::Allow, None),
        ..keys("list", &["filter"])
    };
    for _ in 0..3 {
        let v = e.evaluate(&allowed);
        assert_eq!((v.outcome, v.charged), (I, true));
    }
    let v = e.evaluate(&Call {
        args: Some(Args::Value(&json!({"filter": {"kind": "x"}}))),
        ..Call::new(ts("2024-05-01T09:00:59Z"), "list")
    });
    assert_eq!(v.outcome, A, "another identity's bucket is untouched");
}

#[test]
fn json_text_arguments() {
    let p = charge_policy();
    let mut e = Evaluator::new(&p);
    let call = |text: &'static str| Call {
        args: Some(Args::Json(text)),
        arg_keys: Some(&["amount", "reason"]),
        ..at(T0, "create_charge")
    };
    let v = e.evaluate(&call(r#"{"reason": "r", "amount": 20000}"#));
    assert_eq!(
        (v.outcome, v.rule),
        (D, "/tools/create_charge/deny_if/args.amount-gt")
    );
    // Text that is not JSON counts as not logged: only the keys are known.
    let v = e.evaluate(&call("{not json"));
    assert_eq!(
        (v.outcome, v.rule),
        (I, "/tools/create_charge/deny_if/args.amount-gt")
    );
}

#[test]
fn recorded_and_outcome_names() {
    for name in [
        "allow",
        "deny",
        "rate_limited",
        "approval_required",
        "error",
        "unknown",
    ] {
        assert_eq!(RecordedDecision::from_name(name).as_str(), name);
    }
    assert_eq!(
        RecordedDecision::from_name("ALLOW"),
        RecordedDecision::Unknown
    );
    let names: Vec<String> = [A, D, R, Appr, I].iter().map(ToString::to_string).collect();
    assert_eq!(
        names,
        [
            "allow",
            "deny",
            "rate_limited",
            "approval_required",
            "indeterminate"
        ]
    );
}

#[test]
fn json_text_and_parsed_values_agree() {
    let p = policy(json!({"version": "1", "default": "deny", "tools": {"t": {
    "require": ["args.reason", "args.meta.ticket"],
    "deny_if": [
        {"conditions": [{"path": "args.meta.amount", "op": "gte", "value": 100}], "on_deny": "a"},
        {"conditions": [{"path": "args.tags", "op": "contains", "value": "prod"},
                        {"path": "args.reason", "op": "regex", "value": "^x"}], "on_deny": "b"},
        {"conditions": [{"path": "args.meta.flag", "op": "exists", "value": false}], "on_deny": "c"}
    ]}}}));
    let texts = [
        r#"{"reason": "x1", "meta": {"ticket": 1, "amount": 100.0, "flag": true}}"#,
        r#"{"reason": "x1", "meta": {"ticket": 1, "amount": 99, "flag": 0}, "tags": ["prod"]}"#,
        r#"{"reason": "y", "meta": {"ticket": 1, "amount": 99, "flag": 0}, "tags": ["prod"]}"#,
        r#"{"reason": "y", "meta": {"ticket": 1, "amount": "500"}}"#,
        r#"{"reason": "y", "meta": {"ticket": null}}"#,
        r#"{"reason": null, "meta": {"ticket": 1}}"#,
        r#"{"reason": "a", "reason": "x", "meta": {"ticket": 2, "flag": 1}, "tags": "prod"}"#,
        r#"{"meta": [1], "reason": "x"}"#,
        r#"[{"reason": "x"}]"#,
        r#""reason""#,
        r#"{}"#,
    ];
    for text in texts {
        let parsed: Value = serde_json::from_str(text).unwrap();
        let mut by_value = Evaluator::new(&p);
        let mut by_text = Evaluator::new(&p);
        let a = by_value.evaluate(&Call {
            args: Some(Args::Value(&parsed)),
            ..at(T0, "t")
        });
        let b = by_text.evaluate(&Call {
            args: Some(Args::Json(text)),
            ..at(T0, "t")
        });
        assert_eq!(a, b, "{text}");
    }
    let mut e = Evaluator::new(&p);
    let v = e.evaluate(&Call {
        args: Some(Args::Json(texts[0])),
        ..at(T0, "t")
    });
    assert_eq!(
        (v.outcome, v.rule),
        (D, "/tools/t/deny_if/args.meta.amount-gte")
    );
}

#[test]
fn sliding_counts_stay_exact_beyond_max() {
    // Indeterminate calls recorded as allow charge past `max`; the bucket keeps only `max + 1` charge
    // times, which still answers exactly.
    let p = policy(json!({"version": "1", "default": "deny", "tools": {"t": {
        "require": ["args.x"],
        "limits": [{"counter": "c", "window": "minute", "max": 1, "sliding": true}]}}}));
    let mut e = Evaluator::new(&p);
    for s in [
        "2024-05-01T09:00:00Z",
        "2024-05-01T09:00:10Z",
        "2024-05-01T09:00:20Z",
    ] {
        let v = e.evaluate(&Call {
            recorded: recorded(RecordedDecision::Allow, None),
            ..at(s, "t")
        });
        assert_eq!((v.outcome, v.charged), (I, true));
    }
    let x = json!({"x": 1});
    let got: Vec<Outcome> = [
        "2024-05-01T09:01:00.5Z",
        "2024-05-01T09:01:10.5Z",
        "2024-05-01T09:01:19.999999Z",
        "2024-05-01T09:01:20Z",
    ]
    .iter()
    .map(|s| {
        e.evaluate(&Call {
            args: Some(Args::Value(&x)),
            ..at(s, "t")
        })
        .outcome
    })
    .collect();
    assert_eq!(got, [R, R, R, A]);
}

// ---- one screen, many policies -------------------------------------------------------------------

#[test]
fn one_screen_finishes_alike_policies_as_their_own_evaluation() {
    let lead = charge_policy();
    let target = crate::LimitTarget::resolve(&lead, "/all_tools/limits/per-id").unwrap();
    let lanes: Vec<Policy> = [0, 1, 3]
        .iter()
        .map(|&m| target.apply(&lead, &crate::LimitField::Max(m)).unwrap())
        .collect();
    assert!(lanes.iter().all(|p| lanes[0].alike_but_limits(p)));
    let calls = [
        keys("create_charge", &["amount", "reason"]),
        keys("create_charge", &["reason"]),
        keys("plain", &["debug"]),
        keys("plain", &["debug"]),
        keys("plain", &[]),
        keys("list", &["filter"]),
        keys("unlisted", &[]),
        Call {
            recorded: recorded(RecordedDecision::Allow, None),
            ..keys("create_charge", &["amount", "reason"])
        },
        keys("plain", &["debug"]),
    ];
    let mut screened: Vec<Evaluator<'_>> = lanes.iter().map(Evaluator::new).collect();
    let mut alone: Vec<Evaluator<'_>> = lanes.iter().map(Evaluator::new).collect();
    let mut outcomes = Vec::new();
    for c in &calls {
        let screen = screened[0].screen(c);
        for (s, a) in screened.iter_mut().zip(alone.iter_mut()) {
            let v = s.finish(c, &screen);
            assert_eq!(v, a.evaluate(c));
            outcomes.push(v.outcome);
        }
    }
    // Per call, the three lanes (max 0, 1, 3): the limits tell them apart and nothing else does.
    assert_eq!(
        outcomes,
        [
            [I, I, I],
            [D, D, D],
            [R, A, A],
            [R, R, A],
            [D, D, D],
            [I, I, I],
            [D, D, D],
            [I, I, I],
            // The recorded allow above charged every lane: max 3 is reached too.
            [R, R, R],
        ]
        .concat()
    );
}

#[test]
fn alike_but_limits_sees_any_other_change() {
    let p = charge_policy();
    let target = crate::LimitTarget::resolve(&p, "/tools/list/limits/list").unwrap();
    let edited = target.apply(&p, &crate::LimitField::Max(9)).unwrap();
    assert!(p.alike_but_limits(&edited));
    let window = target
        .apply(&p, &crate::LimitField::Window("hour".into()))
        .unwrap();
    assert!(edited.alike_but_limits(&window));
    let other = policy(json!({"version": "1", "default": "allow",
        "all_tools": {"limits": [{"counter": "per-id", "window": "minute", "max": 1}]},
        "tools": {"create_charge": {"require": ["args.reason"]}}}));
    assert!(!p.alike_but_limits(&other));
}
