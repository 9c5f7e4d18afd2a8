//! Tests of `cond`: every operator on values, missing paths, nulls, and what only `arg_keys` can decide.

use serde_json::{json, Value};

use super::*;
use crate::Policy;

/// Compiles one condition through a real policy document.
fn cond(path: &str, op: &str, value: Option<Value>) -> Condition {
    let mut c = json!({"path": path, "op": op});
    if let Some(v) = value {
        c["value"] = v;
    }
    let doc = json!({"version": "1", "default": "deny",
                     "tools": {"t": {"deny_if": [{"conditions": [c], "on_deny": "no"}]}}});
    let policy = Policy::from_json_str(&doc.to_string()).unwrap();
    policy.tools[0].deny_if[0].conditions[0].clone()
}

/// Evaluates `op value` on `args.x` against logged argument values.
fn on(op: &str, value: Value, args: Value) -> Tri {
    cond("args.x", op, Some(value)).eval(&ArgsKnown {
        values: Values::Full(&args),
        keys: None,
    })
}

/// Evaluates against only the top-level keys.
fn on_keys(path: &str, op: &str, value: Value, keys: &[&str]) -> Tri {
    cond(path, op, Some(value)).eval(&ArgsKnown {
        values: Values::None,
        keys: Some(keys),
    })
}

use Tri::{False as F, True as T, Unknown as U};

#[test]
fn eq_uses_json_equality() {
    assert_eq!(on("eq", json!("a"), json!({"x": "a"})), T);
    assert_eq!(on("eq", json!("a"), json!({"x": "b"})), F);
    assert_eq!(on("eq", json!(5), json!({"x": "5"})), F);
    assert_eq!(on("eq", json!("5"), json!({"x": 5})), F);
    assert_eq!(on("eq", json!(1), json!({"x": 1.0})), T);
    assert_eq!(on("eq", json!(1.0), json!({"x": 1})), T);
    assert_eq!(on("eq", json!(-3), json!({"x": -3.0})), T);
    assert_eq!(on("eq", json!(true), json!({"x": true})), T);
    assert_eq!(on("eq", json!(true), json!({"x": 1})), F);
    assert_eq!(
        on("eq", json!({"a": [1, 2.0]}), json!({"x": {"a": [1.0, 2]}})),
        T
    );
    assert_eq!(on("eq", json!({"a": 1}), json!({"x": {"a": 1, "b": 2}})), F);
    assert_eq!(on("eq", json!([1, 2]), json!({"x": [2, 1]})), F);
}

#[test]
fn missing_or_null_makes_value_ops_false() {
    for (op, value) in [
        ("eq", json!(1)),
        ("neq", json!(1)),
        ("in", json!([1])),
        ("not_in", json!([1])),
        ("lt", json!(1)),
        ("lte", json!(1)),
        ("gt", json!(1)),
        ("gte", json!(1)),
        ("regex", json!(".*")),
        ("contains", json!("a")),
        ("eq", json!(null)),
    ] {
        assert_eq!(on(op, value.clone(), json!({})), F, "{op} on absent");
        assert_eq!(on(op, value.clone(), json!({"x": null})), F, "{op} on null");
        assert_eq!(on(op, value, json!({"y": 1})), F, "{op} on other key");
    }
}

#[test]
fn neq() {
    assert_eq!(on("neq", json!("a"), json!({"x": "b"})), T);
    assert_eq!(on("neq", json!("a"), json!({"x": "a"})), F);
    assert_eq!(on("neq", json!(5), json!({"x": "5"})), T);
    assert_eq!(on("neq", json!(1), json!({"x": 1.0})), F);
    assert_eq!(on("neq", json!(1), json!({})), F);
}

#[test]
fn in_and_not_in() {
    let list = json!([1, "a", [1, 2]]);
    assert_eq!(on("in", list.clone(), json!({"x": 1.0})), T);
    assert_eq!(on("in", list.clone(), json!({"x": "a"})), T);
    assert_eq!(on("in", list.clone(), json!({"x": [1.0, 2]})), T);
    assert_eq!(on("in", list.clone(), json!({"x": "1"})), F);
    assert_eq!(on("in", list.clone(), json!({"x": "b"})), F);
    assert_eq!(on("in", list.clone(), json!({})), F);
    assert_eq!(on("not_in", list.clone(), json!({"x": "b"})), T);
    assert_eq!(on("not_in", list.clone(), json!({"x": "1"})), T);
    assert_eq!(on("not_in", list.clone(), json!({"x": 1})), F);
    assert_eq!(on("not_in", list.clone(), json!({})), F);
    assert_eq!(on("in", json!([]), json!({"x": 1})), F);
    assert_eq!(on("not_in", json!([]), json!({"x": 1})), T);
}

#[test]
fn numeric_ops_compare_numbers_only() {
    let cases = [
        // (value of args.x, lt 10, lte 10, gt 10, gte 10)
        (json!(9), [T, T, F, F]),
        (json!(10), [F, T, F, T]),
        (json!(10.0), [F, T, F, T]),
        (json!(10.5), [F, F, T, T]),
        (json!(11), [F, F, T, T]),
        (json!(-20), [T, T, F, F]),
        (json!(u64::MAX), [F, F, T, T]),
        (json!("5"), [F, F, F, F]),
        (json!("20"), [F, F, F, F]),
        (json!(true), [F, F, F, F]),
        (json!([5]), [F, F, F, F]),
    ];
    for (x, expect) in cases {
        let got = ["lt", "lte", "gt", "gte"].map(|op| on(op, json!(10), json!({"x": x.clone()})));
        assert_eq!(got, expect, "args.x = {x}");
    }
    assert_eq!(on("gt", json!(9.5), json!({"x": 10})), T);
    assert_eq!(on("lt", json!(-1), json!({"x": -2})), T);
    assert_eq!(on("gte", json!(u64::MAX), json!({"x": u64::MAX})), T);
    assert_eq!(on("gt", json!(i64::MAX), json!({"x": u64::MAX})), T);
}

#[test]
fn regex_is_unanchored_and_on_strings_only() {
    assert_eq!(on("regex", json!("b"), json!({"x": "abc"})), T);
    assert_eq!(on("regex", json!("^b"), json!({"x": "abc"})), F);
    assert_eq!(on("regex", json!("^a.c$"), json!({"x": "abc"})), T);
    assert_eq!(
        on("regex", json!("(?i)DROP"), json!({"x": "drop table"})),
        T
    );
    assert_eq!(on("regex", json!("1"), json!({"x": 123})), F);
    assert_eq!(on("regex", json!("true"), json!({"x": true})), F);
    assert_eq!(on("regex", json!("a"), json!({"x": ["a"]})), F);
}

#[test]
fn contains_on_strings_and_arrays() {
    assert_eq!(on("contains", json!("bc"), json!({"x": "abcd"})), T);
    assert_eq!(on("contains", json!("x"), json!({"x": "abcd"})), F);
    assert_eq!(on("contains", json!(""), json!({"x": "abcd"})), T);
    assert_eq!(on("contains", json!(1), json!({"x": "a1"})), F);
    assert_eq!(on("contains", json!("a"), json!({"x": ["a", "b"]})), T);
    assert_eq!(on("contains", json!("ab"), json!({"x": ["a", "b"]})), F);
    assert_eq!(on("contains", json!(1), json!({"x": [1.0, 2]})), T);
    assert_eq!(on("contains", json!("1"), json!({"x": [1, 2]})), F);
    assert_eq!(
        on("contains", json!({"k": 1}), json!({"x": [{"k": 1.0}]})),
        T
    );
    assert_eq!(on("contains", json!("k"), json!({"x": {"k": 1}})), F);
    assert_eq!(on("contains", json!(1), json!({"x": 12})), F);
}

#[test]
fn exists_with_true_and_false() {
    assert_eq!(on("exists", json!(true), json!({"x": 0})), T);
    assert_eq!(on("exists", json!(true), json!({"x": ""})), T);
    assert_eq!(on("exists", json!(true), json!({})), F);
    assert_eq!(on("exists", json!(true), json!({"x": null})), F);
    assert_eq!(on("exists", json!(false), json!({"x": 0})), F);
    assert_eq!(on("exists", json!(false), json!({})), T);
    assert_eq!(on("exists", json!(false), json!({"x": null})), T);
    let implicit = cond("args.x", "exists", None);
    let args = json!({"x": 1});
    let known = ArgsKnown {
        values: Values::Full(&args),
        keys: None,
    };
    assert_eq!(implicit.eval(&known), T);
}

#[test]
fn nested_paths() {
    let args = json!({"a": {"b": {"c": 5}}, "list": [{"b": 1}], "s": "text", "n": null});
    let known = ArgsKnown {
        values: Values::Full(&args),
        keys: None,
    };
    let at = |p: &str| known.lookup(&ArgPath::parse(p).unwrap());
    assert_eq!(at("args.a.b.c"), Found::Value(&json!(5)));
    assert_eq!(at("args.a.b"), Found::Value(&json!({"c": 5})));
    assert_eq!(at("args.a.x"), Found::Missing);
    assert_eq!(at("args.a.b.c.d"), Found::Missing);
    assert_eq!(at("args.s.len"), Found::Missing);
    assert_eq!(at("args.n.x"), Found::Missing);
    assert_eq!(at("args.list.0"), Found::Missing);
    assert_eq!(at("args.list.0.b"), Found::Missing);
    let c = cond("args.a.b.c", "gte", Some(json!(5)));
    assert_eq!(c.eval(&known), T);
}

#[test]
fn arguments_that_are_not_an_object_have_no_paths() {
    for args in [json!(null), json!([1]), json!("x"), json!(3)] {
        assert_eq!(on("exists", json!(true), args.clone()), F, "{args}");
        assert_eq!(on("exists", json!(false), args), T);
    }
}

#[test]
fn only_top_level_keys_known() {
    let keys = ["amount", "reason"];
    // Presence of a top-level key is known; its value is not.
    assert_eq!(on_keys("args.amount", "exists", json!(true), &keys), T);
    assert_eq!(on_keys("args.amount", "exists", json!(false), &keys), F);
    assert_eq!(on_keys("args.amount", "gt", json!(1), &keys), U);
    assert_eq!(on_keys("args.amount", "eq", json!(1), &keys), U);
    assert_eq!(on_keys("args.amount", "neq", json!(1), &keys), U);
    assert_eq!(on_keys("args.amount", "regex", json!("x"), &keys), U);
    // An absent key is determinately missing, and so is everything under it.
    assert_eq!(on_keys("args.memo", "exists", json!(true), &keys), F);
    assert_eq!(on_keys("args.memo", "exists", json!(false), &keys), T);
    assert_eq!(on_keys("args.memo", "eq", json!(1), &keys), F);
    assert_eq!(on_keys("args.memo", "neq", json!(1), &keys), F);
    assert_eq!(on_keys("args.memo.x", "exists", json!(true), &keys), F);
    assert_eq!(on_keys("args.memo.x", "gt", json!(1), &keys), F);
    // Under a present key, nested presence is unknown.
    assert_eq!(on_keys("args.amount.x", "exists", json!(true), &keys), U);
    assert_eq!(on_keys("args.amount.x", "exists", json!(false), &keys), U);
    assert_eq!(on_keys("args.amount.x", "eq", json!(1), &keys), U);
    // Nothing logged: nothing is known.
    let none = ArgsKnown {
        values: Values::None,
        keys: None,
    };
    assert_eq!(cond("args.a", "exists", Some(json!(true))).eval(&none), U);
    assert_eq!(cond("args.a", "exists", Some(json!(false))).eval(&none), U);
    assert_eq!(cond("args.a", "eq", Some(json!(1))).eval(&none), U);
}

#[test]
fn values_take_precedence_over_keys() {
    let args = json!({"x": null});
    let known = ArgsKnown {
        values: Values::Full(&args),
        keys: Some(&["x"]),
    };
    assert_eq!(cond("args.x", "exists", Some(json!(true))).eval(&known), F);
}

#[test]
fn parses_paths() {
    let p = ArgPath::parse("args.a.b").unwrap();
    assert_eq!(&*p.text, "args.a.b");
    assert_eq!(p.segments.len(), 2);
    assert_eq!(
        ArgPath::parse("amount").unwrap_err(),
        "path \"amount\" does not start with \"args.\""
    );
    assert_eq!(
        ArgPath::parse("args").unwrap_err(),
        "path \"args\" does not start with \"args.\""
    );
    assert_eq!(
        ArgPath::parse("args.").unwrap_err(),
        "path \"args.\" has an empty segment"
    );
    assert_eq!(
        ArgPath::parse("args.a..b").unwrap_err(),
        "path \"args.a..b\" has an empty segment"
    );
}

#[test]
fn op_names() {
    let names: Vec<&str> = OP_NAMES
        .iter()
        .map(|&op| {
            let value = match op {
                "in" | "not_in" => json!([]),
                "exists" => json!(true),
                "regex" => json!("x"),
                _ => json!(1),
            };
            cond("args.x", op, Some(value)).op.name()
        })
        .collect();
    assert_eq!(names, OP_NAMES);
}

#[test]
fn a_redacted_value_is_unknown_never_the_marker_string() {
    let marker = "[redacted:0123456789abcdef]";
    assert_eq!(on("eq", json!(marker), json!({"x": marker})), U);
    assert_eq!(on("neq", json!("a"), json!({"x": marker})), U);
    assert_eq!(on("exists", json!(true), json!({"x": marker})), U);
    // A redacted object hides whatever was below it.
    let deep = cond("args.x.y", "eq", Some(json!(1))).eval(&ArgsKnown {
        values: Values::Full(&json!({"x": marker})),
        keys: None,
    });
    assert_eq!(deep, U);
    // A string that merely mentions the word is a value.
    assert_eq!(on("eq", json!("[redacted]"), json!({"x": "[redacted]"})), T);
}
