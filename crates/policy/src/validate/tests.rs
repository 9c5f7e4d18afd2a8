//! Tests of `validate`: every rejected case with its exact JSON Pointer, syntax errors with line and
//! column, several errors at once, and the precompiled model of an accepted document.

use serde_json::{json, Value};

use super::*;

/// The validation errors of `doc` as `(path, message)`.
fn errors(doc: &Value) -> Vec<(String, String)> {
    match Policy::from_json_str(&doc.to_string()) {
        Ok(_) => panic!("accepted: {doc}"),
        Err(Error::Invalid { errors }) => errors.into_iter().map(|e| (e.path, e.message)).collect(),
        Err(e) => panic!("not a validation error: {e}"),
    }
}

/// The paths of the validation errors of `doc`.
fn paths(doc: &Value) -> Vec<String> {
    errors(doc).into_iter().map(|(p, _)| p).collect()
}

/// A document with one tool `t` whose rule is `rule`.
fn with_tool(rule: Value) -> Value {
    json!({"version": "1", "default": "deny", "tools": {"t": rule}})
}

/// A document with one condition in `/tools/t/deny_if/0/conditions/0`.
fn with_condition(condition: Value) -> Value {
    with_tool(json!({"deny_if": [{"conditions": [condition], "on_deny": "no"}]}))
}

/// A document with one limit in `/tools/t/limits/0`.
fn with_limit(limit: Value) -> Value {
    with_tool(json!({"limits": [limit]}))
}

fn one(doc: &Value) -> (String, String) {
    let mut e = errors(doc);
    assert_eq!(e.len(), 1, "{e:?}");
    e.remove(0)
}

#[test]
fn accepts_the_spec_example() {
    let src = r#"{
      "version": "1",
      "default": "deny",
      "hide": ["session_destroy"],
      "all_tools": { "limits": [ {"counter": "calls-per-minute", "window": "minute", "max": 120, "scope": "grant"} ] },
      "tools": {
        "session_create": { "limits": [ {"counter": "session_create_rate", "window": "minute", "max": 30, "scope": "grant"} ] },
        "create_refund":  { "deny_if": [ {"conditions": [], "on_deny": "Requires human approval."} ] },
        "create_charge":  { "require": ["args.reason"],
                            "deny_if": [ {"conditions": [ {"path": "args.amount", "op": "gt", "value": 10000} ],
                                          "on_deny": "Charges over 10000 need finance sign-off."} ] },
        "navigate": {}
      }
    }"#;
    let p = Policy::from_json_str(src).unwrap();
    assert_eq!(p.source(), src);
    assert_eq!(p.default_action(), DefaultAction::Deny);
    assert!(p.is_hidden("session_destroy"));
    assert!(!p.is_hidden("navigate"));
    assert_eq!(
        p.tool_names().collect::<Vec<_>>(),
        [
            "session_create",
            "create_refund",
            "create_charge",
            "navigate"
        ]
    );
    assert_eq!(
        p.counter_names().collect::<Vec<_>>(),
        ["calls-per-minute", "session_create_rate"]
    );
    let charge = &p.tools[2];
    assert_eq!(
        &*charge.require[0].rule,
        "/tools/create_charge/require/args.reason"
    );
    assert_eq!(
        &*charge.deny_if[0].rule,
        "/tools/create_charge/deny_if/args.amount-gt"
    );
    assert!(charge.reads_args);
    assert_eq!(
        &*p.tools[1].deny_if[0].rule,
        "/tools/create_refund/deny_if/0"
    );
    assert!(!p.tools[1].reads_args);
    let rules: Vec<&str> = p.tools[0].limits.limits.iter().map(|l| &*l.rule).collect();
    assert_eq!(
        rules,
        [
            "/tools/session_create/limits/session_create_rate",
            "/all_tools/limits/calls-per-minute"
        ]
    );
    assert_eq!(&*p.tools[0].limits.counters, [1, 0]);
    assert_eq!(
        &*p.unlisted.limits[0].rule,
        "/all_tools/limits/calls-per-minute"
    );
    assert_eq!(
        &*p.unlisted.limits[0].message,
        "rate limit \"calls-per-minute\" exceeded: at most 120 calls per minute per identity"
    );
}

#[test]
fn minimal_document_and_defaults() {
    let p = Policy::from_json_str(r#"{"version":"1","default":"allow"}"#).unwrap();
    assert_eq!(p.default_action(), DefaultAction::Allow);
    assert_eq!(p.tool_names().count(), 0);
    let p = Policy::from_json_str(
        r#"{"version":"1","default":"deny","hide":["*"],"tools":{"t":{"limits":[
            {"counter":"c","window":"day","max":5.0}]}}}"#,
    )
    .unwrap();
    assert!(p.is_hidden("anything"));
    assert_eq!(p.tools[0].limits.limits[0].max, 5);
    assert_eq!(p.counters[0].scope, Scope::Grant);
    assert_eq!(p.classes, [(Window::Day, false)]);
}

#[test]
fn syntax_error_has_line_and_column() {
    let src = "{\n  \"version\": \"1\",\n  \"default\" \"deny\"\n}";
    match Policy::from_json_str(src) {
        Err(Error::Syntax {
            line,
            column,
            message,
        }) => {
            assert_eq!((line, column), (3, 13));
            assert_eq!(message, "expected `:`");
        }
        other => panic!("{other:?}"),
    }
    let e = Policy::from_json_str("{\"version\": \"1\",}").unwrap_err();
    assert!(
        matches!(
            e,
            Error::Syntax {
                line: 1,
                column: 17,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "policy is not valid JSON: trailing comma at line 1, column 17"
    );
    let e = Policy::from_json_str("").unwrap_err();
    assert!(
        matches!(
            e,
            Error::Syntax {
                line: 1,
                column: 0,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn root_must_be_an_object() {
    assert_eq!(
        one(&json!([1])),
        (
            "".to_owned(),
            "expected an object, found an array".to_owned()
        )
    );
}

#[test]
fn version_and_default() {
    assert_eq!(
        errors(&json!({})),
        [
            (
                "/version".to_owned(),
                "missing required field \"version\"".to_owned()
            ),
            (
                "/default".to_owned(),
                "missing required field \"default\"".to_owned()
            ),
        ]
    );
    assert_eq!(
        errors(&json!({"version": "2", "default": "maybe"})),
        [
            (
                "/version".to_owned(),
                "unsupported version \"2\" (expected \"1\")".to_owned()
            ),
            (
                "/default".to_owned(),
                "unknown default \"maybe\" (expected one of allow, deny)".to_owned()
            ),
        ]
    );
    assert_eq!(
        errors(&json!({"version": 1, "default": true})),
        [
            (
                "/version".to_owned(),
                "expected a string, found a number".to_owned()
            ),
            (
                "/default".to_owned(),
                "expected a string, found a boolean".to_owned()
            ),
        ]
    );
}

#[test]
fn unknown_fields_anywhere() {
    assert_eq!(
        one(&json!({"version": "1", "default": "deny", "extra": 1})),
        (
            "/extra".to_owned(),
            "unknown field \"extra\" (expected one of version, default, hide, all_tools, tools)"
                .to_owned()
        )
    );
    assert_eq!(
        paths(&json!({"version": "1", "default": "deny", "all_tools": {"limit": []}})),
        ["/all_tools/limit"]
    );
    assert_eq!(paths(&with_tool(json!({"deny": []}))), ["/tools/t/deny"]);
    assert_eq!(
        paths(&with_tool(
            json!({"deny_if": [{"conditions": [], "on_deny": "x", "reason": "y"}]})
        )),
        ["/tools/t/deny_if/0/reason"]
    );
    assert_eq!(
        paths(&with_condition(
            json!({"path": "args.a", "op": "eq", "value": 1, "negate": true})
        )),
        ["/tools/t/deny_if/0/conditions/0/negate"]
    );
    assert_eq!(
        paths(&with_limit(
            json!({"counter": "c", "window": "minute", "max": 1, "burst": 2})
        )),
        ["/tools/t/limits/0/burst"]
    );
}

#[test]
fn wrong_types() {
    assert_eq!(
        errors(
            &json!({"version": "1", "default": "deny", "hide": "x", "all_tools": [], "tools": []})
        ),
        [
            (
                "/hide".to_owned(),
                "expected an array, found a string".to_owned()
            ),
            (
                "/all_tools".to_owned(),
                "expected an object, found an array".to_owned()
            ),
            (
                "/tools".to_owned(),
                "expected an object, found an array".to_owned()
            ),
        ]
    );
    assert_eq!(
        paths(&json!({"version": "1", "default": "deny", "hide": ["a", 2, null]})),
        ["/hide/1", "/hide/2"]
    );
    assert_eq!(
        one(&with_tool(json!(true))),
        (
            "/tools/t".to_owned(),
            "expected an object, found a boolean".to_owned()
        )
    );
    assert_eq!(
        one(&with_tool(json!({"approval": "yes"}))),
        (
            "/tools/t/approval".to_owned(),
            "expected a boolean, found a string".to_owned()
        )
    );
    assert_eq!(
        paths(&with_tool(
            json!({"require": "args.a", "deny_if": {}, "limits": 3})
        )),
        ["/tools/t/require", "/tools/t/deny_if", "/tools/t/limits"]
    );
    assert_eq!(
        paths(&with_tool(json!({"require": ["args.a", 7]}))),
        ["/tools/t/require/1"]
    );
    assert_eq!(
        paths(&with_tool(
            json!({"deny_if": [{"conditions": {}, "on_deny": 1, "id": 2}]})
        )),
        [
            "/tools/t/deny_if/0/conditions",
            "/tools/t/deny_if/0/on_deny",
            "/tools/t/deny_if/0/id"
        ]
    );
    assert_eq!(
        paths(&with_tool(json!({"deny_if": ["x"]}))),
        ["/tools/t/deny_if/0"]
    );
    assert_eq!(
        paths(&with_condition(
            json!({"path": 1, "op": ["eq"], "value": 1})
        )),
        [
            "/tools/t/deny_if/0/conditions/0/path",
            "/tools/t/deny_if/0/conditions/0/op"
        ]
    );
    assert_eq!(
        paths(&with_limit(
            json!({"counter": 1, "window": 60, "max": "5", "scope": null, "sliding": "no"})
        )),
        [
            "/tools/t/limits/0/counter",
            "/tools/t/limits/0/window",
            "/tools/t/limits/0/max",
            "/tools/t/limits/0/scope",
            "/tools/t/limits/0/sliding"
        ]
    );
}

#[test]
fn missing_required_fields() {
    assert_eq!(
        errors(&with_tool(json!({"deny_if": [{}]}))),
        [
            (
                "/tools/t/deny_if/0/conditions".to_owned(),
                "missing required field \"conditions\"".to_owned()
            ),
            (
                "/tools/t/deny_if/0/on_deny".to_owned(),
                "missing required field \"on_deny\"".to_owned()
            ),
        ]
    );
    assert_eq!(
        paths(&with_condition(json!({}))),
        [
            "/tools/t/deny_if/0/conditions/0/path",
            "/tools/t/deny_if/0/conditions/0/op"
        ]
    );
    assert_eq!(
        one(&with_condition(json!({"path": "args.a", "op": "eq"}))),
        (
            "/tools/t/deny_if/0/conditions/0/value".to_owned(),
            "missing required field \"value\"".to_owned()
        )
    );
    assert_eq!(
        paths(&with_limit(json!({}))),
        [
            "/tools/t/limits/0/counter",
            "/tools/t/limits/0/window",
            "/tools/t/limits/0/max"
        ]
    );
}

#[test]
fn unknown_op_window_scope() {
    assert_eq!(
        one(&with_condition(json!({"path": "args.amount", "op": "gtt", "value": 1}))),
        (
            "/tools/t/deny_if/0/conditions/0/op".to_owned(),
            "unknown op \"gtt\" (expected one of eq, neq, in, not_in, lt, lte, gt, gte, regex, contains, exists)"
                .to_owned()
        )
    );
    assert_eq!(
        one(&with_limit(
            json!({"counter": "c", "window": "week", "max": 1})
        )),
        (
            "/tools/t/limits/0/window".to_owned(),
            "unknown window \"week\" (expected one of second, minute, hour, day)".to_owned()
        )
    );
    assert_eq!(
        one(&with_limit(
            json!({"counter": "c", "window": "day", "max": 1, "scope": "user"})
        )),
        (
            "/tools/t/limits/0/scope".to_owned(),
            "unknown scope \"user\" (expected one of grant, identity, session, server, global)"
                .to_owned()
        )
    );
}

#[test]
fn condition_values_checked_against_op() {
    let value_error = |op: &str, value: Value| {
        one(&with_condition(
            json!({"path": "args.a", "op": op, "value": value}),
        ))
    };
    let at = "/tools/t/deny_if/0/conditions/0/value".to_owned();
    assert_eq!(
        value_error("in", json!("a")),
        (
            at.clone(),
            "value of \"in\" must be an array, found a string".to_owned()
        )
    );
    assert_eq!(
        value_error("not_in", json!({"a": 1})),
        (
            at.clone(),
            "value of \"not_in\" must be an array, found an object".to_owned()
        )
    );
    for op in ["lt", "lte", "gt", "gte"] {
        assert_eq!(
            value_error(op, json!("5")),
            (
                at.clone(),
                format!("value of {op:?} must be a number, found a string")
            )
        );
    }
    assert_eq!(
        value_error("exists", json!("yes")),
        (
            at.clone(),
            "value of \"exists\" must be a boolean, found a string".to_owned()
        )
    );
    assert_eq!(
        value_error("regex", json!(5)),
        (
            at.clone(),
            "value of \"regex\" must be a string, found a number".to_owned()
        )
    );
    let (path, message) = value_error("regex", json!("a("));
    assert_eq!(path, at);
    assert!(message.starts_with("invalid regex: "), "{message}");
    // Any JSON is fine for eq, neq and contains.
    for op in ["eq", "neq", "contains"] {
        for v in [json!(null), json!([1]), json!({"a": 1}), json!("s")] {
            let doc = with_condition(json!({"path": "args.a", "op": op, "value": v}));
            assert!(Policy::from_json_str(&doc.to_string()).is_ok(), "{doc}");
        }
    }
}

#[test]
fn paths_must_start_with_args() {
    assert_eq!(
        one(&with_tool(json!({"require": ["reason"]}))),
        (
            "/tools/t/require/0".to_owned(),
            "path \"reason\" does not start with \"args.\"".to_owned()
        )
    );
    assert_eq!(
        one(&with_condition(
            json!({"path": "amount", "op": "gt", "value": 1})
        )),
        (
            "/tools/t/deny_if/0/conditions/0/path".to_owned(),
            "path \"amount\" does not start with \"args.\"".to_owned()
        )
    );
    assert_eq!(
        paths(&with_tool(
            json!({"require": ["args.", "args.a..b", "arguments.a"]})
        )),
        [
            "/tools/t/require/0",
            "/tools/t/require/1",
            "/tools/t/require/2"
        ]
    );
}

#[test]
fn max_must_be_a_non_negative_integer() {
    let max_error = |max: Value| {
        one(&with_limit(
            json!({"counter": "c", "window": "day", "max": max}),
        ))
    };
    let at = "/tools/t/limits/0/max".to_owned();
    assert_eq!(
        max_error(json!(-1)),
        (at.clone(), "max must not be negative, found -1".to_owned())
    );
    assert_eq!(
        max_error(json!(-2.5)),
        (
            at.clone(),
            "max must not be negative, found -2.5".to_owned()
        )
    );
    assert_eq!(
        max_error(json!(1.5)),
        (
            at.clone(),
            "max must be a whole number, found 1.5".to_owned()
        )
    );
    assert_eq!(
        max_error(json!("5")),
        (
            at,
            "expected a non-negative integer, found a string".to_owned()
        )
    );
    for ok in [json!(0), json!(7), json!(7.0), json!(u64::MAX)] {
        let doc = with_limit(json!({"counter": "c", "window": "day", "max": ok}));
        assert!(Policy::from_json_str(&doc.to_string()).is_ok(), "{doc}");
    }
}

#[test]
fn empty_names_rejected() {
    assert_eq!(
        one(&with_tool(
            json!({"deny_if": [{"conditions": [], "on_deny": "x", "id": ""}]})
        )),
        (
            "/tools/t/deny_if/0/id".to_owned(),
            "rule id must not be empty".to_owned()
        )
    );
    assert_eq!(
        one(&with_limit(
            json!({"counter": "", "window": "day", "max": 1})
        )),
        (
            "/tools/t/limits/0/counter".to_owned(),
            "counter name must not be empty".to_owned()
        )
    );
}

#[test]
fn shared_counter_must_agree() {
    let doc = json!({
        "version": "1", "default": "deny",
        "all_tools": {"limits": [{"counter": "c", "window": "minute", "max": 10}]},
        "tools": {
            "a": {"limits": [{"counter": "c", "window": "hour", "max": 5}]},
            "b": {"limits": [{"counter": "c", "window": "minute", "max": 5, "scope": "session"}]},
            "d": {"limits": [{"counter": "c", "window": "minute", "max": 5, "sliding": true}]},
            "e": {"limits": [{"counter": "c", "window": "minute", "max": 1, "scope": "identity"},
                             {"counter": "c", "window": "minute", "max": 2, "scope": "grant", "sliding": false}]}
        }
    });
    assert_eq!(
        errors(&doc),
        [
            (
                "/tools/a/limits/0".to_owned(),
                "counter \"c\" is declared at /all_tools/limits/0 with window minute, scope grant, \
                 sliding false; this limit has window hour, scope grant, sliding false"
                    .to_owned()
            ),
            (
                "/tools/b/limits/0".to_owned(),
                "counter \"c\" is declared at /all_tools/limits/0 with window minute, scope grant, \
                 sliding false; this limit has window minute, scope session, sliding false"
                    .to_owned()
            ),
            (
                "/tools/d/limits/0".to_owned(),
                "counter \"c\" is declared at /all_tools/limits/0 with window minute, scope grant, \
                 sliding false; this limit has window minute, scope grant, sliding true"
                    .to_owned()
            ),
        ]
    );
    // Between two tools, and across two limits of one tool.
    let doc = json!({"version": "1", "default": "deny", "tools": {
        "a": {"limits": [{"counter": "x", "window": "day", "max": 1, "scope": "server"}]},
        "b": {"limits": [{"counter": "y", "window": "day", "max": 1},
                         {"counter": "x", "window": "day", "max": 1, "scope": "global"}]}}});
    assert_eq!(paths(&doc), ["/tools/b/limits/1"]);
    // `tools` before `all_tools` in the document: the tool's declaration comes first.
    let src = r#"{"version": "1", "default": "deny",
        "tools": {"a": {"limits": [{"counter": "c", "window": "day", "max": 1}]}},
        "all_tools": {"limits": [{"counter": "c", "window": "hour", "max": 1}]}}"#;
    let e = Policy::from_json_str(src).unwrap_err();
    let paths: Vec<&str> = e
        .validation_errors()
        .iter()
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(paths, ["/all_tools/limits/0"]);
}

#[test]
fn tool_names_are_escaped_in_paths() {
    let doc = json!({"version": "1", "default": "deny", "tools": {
        "fs/read~v2": {"deny_if": [{"conditions": [{"path": "args.p", "op": "like", "value": 1}],
                                    "on_deny": "x"}]}}});
    assert_eq!(
        paths(&doc),
        ["/tools/fs~1read~0v2/deny_if/0/conditions/0/op"]
    );
    let doc = json!({"version": "1", "default": "deny", "tools": {"a/b": {"x~y": 1}}});
    assert_eq!(paths(&doc), ["/tools/a~1b/x~0y"]);
}

#[test]
fn duplicate_keys() {
    let src = r#"{"version": "1", "default": "deny", "version": "1",
        "tools": {"a": {}, "a": {"approval": true}}}"#;
    let e = Policy::from_json_str(src).unwrap_err();
    assert_eq!(
        e.validation_errors(),
        [
            ValidationError {
                path: "/version".to_owned(),
                message: "duplicate field \"version\"".to_owned()
            },
            ValidationError {
                path: "/tools/a".to_owned(),
                message: "duplicate tool \"a\"".to_owned()
            },
        ]
    );
}

#[test]
fn collects_every_error() {
    let src = r#"{
      "version": "2",
      "default": "deny",
      "colour": "blue",
      "all_tools": {"limits": [{"counter": "c", "window": "fortnight", "max": -1}]},
      "tools": {
        "create_charge": {
          "require": ["reason"],
          "deny_if": [
            {"conditions": [{"path": "args.amount", "op": "gt", "value": "10000"},
                            {"path": "args.memo", "op": "regex", "value": "(unclosed"}],
             "on_deny": "no"},
            {"conditions": [{"path": "args.currency", "op": "in", "value": "EUR"}]}
          ],
          "limits": [{"counter": "c", "window": "minute", "max": 1.5, "scope": "planet"}],
          "approval": 1
        }
      }
    }"#;
    let e = Policy::from_json_str(src).unwrap_err();
    let got: Vec<&str> = e
        .validation_errors()
        .iter()
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(
        got,
        [
            "/colour",
            "/version",
            "/all_tools/limits/0/window",
            "/all_tools/limits/0/max",
            "/tools/create_charge/require/0",
            "/tools/create_charge/deny_if/0/conditions/0/value",
            "/tools/create_charge/deny_if/0/conditions/1/value",
            "/tools/create_charge/deny_if/1/conditions/0/value",
            "/tools/create_charge/deny_if/1/on_deny",
            "/tools/create_charge/limits/0/max",
            "/tools/create_charge/limits/0/scope",
            "/tools/create_charge/approval",
        ]
    );
    let text = e.to_string();
    assert!(
        text.starts_with("invalid policy (12 errors):\n  /colour: unknown field"),
        "{text}"
    );
    assert!(
        text.contains("\n  /version: unsupported version \"2\" (expected \"1\")"),
        "{text}"
    );
}

#[test]
fn display_of_the_root_path() {
    let e = Policy::from_json_str("3").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid policy (1 error):\n  (document): expected an object, found a number"
    );
}

#[test]
fn from_path_reads_and_wraps_errors() {
    let dir = std::env::temp_dir().join(format!("verdict-policy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.json");
    std::fs::write(&good, r#"{"version": "1", "default": "allow"}"#).unwrap();
    assert_eq!(
        Policy::from_path(&good).unwrap().default_action(),
        DefaultAction::Allow
    );

    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"version": "1", "default": "sometimes"}"#).unwrap();
    let e = Policy::from_path(&bad).unwrap_err();
    assert!(
        matches!(&e, Error::File { path, .. } if *path == bad),
        "{e:?}"
    );
    assert_eq!(e.validation_errors()[0].path, "/default");
    assert_eq!(
        e.to_string(),
        format!(
            "policy file {}: invalid policy (1 error):\n  /default: unknown default \"sometimes\" \
             (expected one of allow, deny)",
            bad.display()
        )
    );

    let missing = dir.join("missing.json");
    let e = Policy::from_path(&missing).unwrap_err();
    assert!(
        matches!(&e, Error::Io { path, .. } if *path == missing),
        "{e:?}"
    );
    assert!(e
        .to_string()
        .starts_with(&format!("cannot read policy file {}: ", missing.display())));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn policy_is_shareable() {
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<Policy>();
}
