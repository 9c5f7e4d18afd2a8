//! The PolicyLayer proxy log (README "Input formats", section P): field mapping and the
//! decision rules (a deny whose rule points into `limits` is `rate_limited`).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{LineError, LineErrorKind};
use crate::json::Node;
use verdict_schema::time::{epoch_int_to_micros, epoch_to_micros, parse_rfc3339_micros};
use verdict_schema::Decision;
use verdict_schema::DecisionRecord;

/// The `source` value of PolicyLayer rows.
pub const SOURCE: &str = "policylayer";

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow, default)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow, default)]
    request_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    grant_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    grant_label: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    server: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arg_keys: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow, default)]
    args: Option<&'a RawValue>,
    #[serde(borrow, default)]
    policy: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    policy_version: Option<&'a RawValue>,
    #[serde(borrow, default)]
    decision: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    rule: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    upstream_status: Option<&'a RawValue>,
    #[serde(borrow, default)]
    latency_ms: Option<&'a RawValue>,
    #[serde(borrow, default)]
    session_id: Option<Cow<'a, str>>,
}

/// Whether a record looks like a PolicyLayer line: `timestamp` and `decision` plus one of
/// `request_id`, `grant_id`, `grant_label` (and none of Cedarling's `log_kind`/`policystore_id`).
pub fn matches(r: &Node<'_>) -> bool {
    r.get("timestamp").is_some()
        && r.get("decision").is_some()
        && ["request_id", "grant_id", "grant_label"]
            .iter()
            .any(|k| r.get(k).is_some())
        && r.get("log_kind").is_none()
        && r.get("policystore_id").is_none()
}

/// Field names whose JSON type must be a string (or null), for error diagnosis.
const STRING_FIELDS: [&str; 10] = [
    "grant_id",
    "grant_label",
    "server",
    "method",
    "tool",
    "policy",
    "decision",
    "rule",
    "message",
    "session_id",
];

/// Decodes one PolicyLayer line.
///
/// # Errors
/// Invalid JSON, a missing `timestamp` or `decision`, an unparsable timestamp, an unknown
/// decision value, or a field of the wrong JSON type, each naming the field.
pub fn decode(line: &str) -> Result<DecisionRecord<'_>, LineError> {
    if !line.trim_start().starts_with('{') {
        return Err(diagnose(line, None));
    }
    let l: Line<'_> = match serde_json::from_str(line) {
        Ok(l) => l,
        Err(e) => return Err(diagnose(line, Some(e))),
    };
    let ts_micros = match l.timestamp {
        None => {
            return Err(LineError::field(
                LineErrorKind::MissingTimestamp,
                "timestamp",
                "required timestamp is missing",
            ))
        }
        Some(raw) => parse_ts(raw)?,
    };
    let rule = l.rule.filter(|r| !r.is_empty());
    let decision = match l.decision {
        None => {
            return Err(LineError::field(
                LineErrorKind::MissingField,
                "decision",
                "required field is missing",
            ))
        }
        Some(d) => map_decision(&d, rule.as_deref())?,
    };
    let event_id = match l.request_id.map(json_scalar_text).transpose()?.flatten() {
        Some(id) if !id.is_empty() => id,
        _ => Cow::Owned(super::stable_event_id(SOURCE, line)),
    };
    let args = match l.args {
        Some(a) if a.get() != "null" => Some(a),
        _ => None,
    };
    let arg_keys = match (l.arg_keys, args) {
        (Some(mut keys), _) => {
            if !keys.windows(2).all(|w| w[0] <= w[1]) {
                keys.sort();
            }
            Some(keys)
        }
        (None, Some(a)) => keys_of(a)?,
        (None, None) => None,
    };
    let identity = l.grant_label.or_else(|| l.grant_id.clone());
    let mut r = DecisionRecord::new(event_id, ts_micros, SOURCE, decision);
    r.identity = identity;
    r.identity_id = l.grant_id;
    r.session = l.session_id;
    r.server = l.server;
    r.method = l.method;
    r.tool = l.tool;
    r.arg_keys = arg_keys;
    r.args = args.map(|a| Cow::Borrowed(a.get()));
    r.rule = rule;
    r.message = l.message;
    r.policy_id = l.policy;
    r.policy_version = l
        .policy_version
        .map(json_scalar_text)
        .transpose()?
        .flatten();
    r.upstream_status = l
        .upstream_status
        .map(|v| parse_status(v, "upstream_status"))
        .transpose()?
        .flatten();
    r.latency_ms = l
        .latency_ms
        .map(|v| parse_f64(v, "latency_ms"))
        .transpose()?
        .flatten();
    Ok(r)
}

/// Maps PolicyLayer's decision vocabulary (any case) onto the table's values.
///
/// # Errors
/// [`LineErrorKind::UnknownDecision`] for any other value.
pub fn map_decision(d: &str, rule: Option<&str>) -> Result<Decision, LineError> {
    let is = |s: &str| d.eq_ignore_ascii_case(s);
    if is("allow") || is("allowed") {
        Ok(Decision::Allow)
    } else if is("deny") || is("denied") {
        Ok(if rule.is_some_and(is_limit_rule) {
            Decision::RateLimited
        } else {
            Decision::Deny
        })
    } else if is("rate_limited") || is("ratelimited") || is("rate-limited") {
        Ok(Decision::RateLimited)
    } else if is("approval_required") || is("pending_approval") {
        Ok(Decision::ApprovalRequired)
    } else if is("error") {
        Ok(Decision::Error)
    } else if is("unknown") {
        Ok(Decision::Unknown)
    } else {
        Err(LineError::field(
            LineErrorKind::UnknownDecision,
            "decision",
            format!("unknown decision `{d}` (expected allow, deny, approval_required, error)"),
        ))
    }
}

/// Whether a rule pointer names a limit (`/tools/<t>/limits/<c>` or `/all_tools/limits/<c>`).
pub fn is_limit_rule(rule: &str) -> bool {
    if rule.starts_with("/all_tools/limits/") {
        return true;
    }
    match rule.strip_prefix("/tools/") {
        Some(rest) => {
            let mut parts = rest.split('/');
            parts.next();
            parts.next() == Some("limits")
        }
        None => false,
    }
}

fn parse_ts(raw: &RawValue) -> Result<i64, LineError> {
    let text = raw.get();
    let bad = |why: &str| {
        LineError::field(
            LineErrorKind::BadTimestamp,
            "timestamp",
            format!("cannot parse timestamp {text}: {why}"),
        )
    };
    if let Some(s) = text.strip_prefix('"') {
        let s: Cow<'_, str> = if s.contains('\\') {
            serde_json::from_str::<String>(text)
                .map(Cow::Owned)
                .map_err(|_| bad("invalid string"))?
        } else {
            Cow::Borrowed(s.strip_suffix('"').unwrap_or(s))
        };
        if let Some(t) = parse_rfc3339_micros(&s) {
            return Ok(t);
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            if let Some(t) = s.parse::<i64>().ok().and_then(epoch_int_to_micros) {
                return Ok(t);
            }
        }
        Err(bad("expected RFC 3339 or an epoch number"))
    } else if text == "null" {
        Err(LineError::field(
            LineErrorKind::MissingField,
            "timestamp",
            "required field is null",
        ))
    } else if let Ok(i) = text.parse::<i64>() {
        epoch_int_to_micros(i).ok_or_else(|| bad("negative epoch"))
    } else if let Ok(f) = text.parse::<f64>() {
        epoch_to_micros(f).ok_or_else(|| bad("not a valid epoch"))
    } else {
        Err(bad("expected a string or a number"))
    }
}

/// A JSON string or number as text; null as `None`.
fn json_scalar_text(raw: &RawValue) -> Result<Option<Cow<'_, str>>, LineError> {
    let text = raw.get();
    if text == "null" {
        return Ok(None);
    }
    if let Some(s) = text.strip_prefix('"') {
        if !s.contains('\\') {
            return Ok(Some(Cow::Borrowed(s.strip_suffix('"').unwrap_or(s))));
        }
        return serde_json::from_str::<String>(text)
            .map(|s| Some(Cow::Owned(s)))
            .map_err(|e| LineError::record(LineErrorKind::InvalidJson, e.to_string()));
    }
    if text.starts_with(['{', '[']) || text == "true" || text == "false" {
        return Err(LineError::record(
            LineErrorKind::WrongType,
            format!("expected a string or a number, got {text}"),
        ));
    }
    Ok(Some(Cow::Borrowed(text)))
}

fn parse_f64(raw: &RawValue, field: &str) -> Result<Option<f64>, LineError> {
    let text = raw.get();
    let inner = text.trim_matches('"');
    if text == "null" || inner.is_empty() || inner == "-" {
        return Ok(None);
    }
    inner.parse::<f64>().map(Some).map_err(|_| {
        LineError::field(
            LineErrorKind::WrongType,
            field,
            format!("expected a number, got {text}"),
        )
    })
}

fn parse_status(raw: &RawValue, field: &str) -> Result<Option<i32>, LineError> {
    match parse_f64(raw, field)? {
        None => Ok(None),
        Some(v) if v.fract() == 0.0 && (0.0..=999.0).contains(&v) => Ok(Some(v as i32)),
        Some(_) => Err(LineError::field(
            LineErrorKind::WrongType,
            field,
            format!("expected an HTTP status code, got {}", raw.get()),
        )),
    }
}

fn keys_of(args: &RawValue) -> Result<Option<Vec<Cow<'_, str>>>, LineError> {
    let text = args.get();
    if !text.starts_with('{') {
        return Ok(None);
    }
    let map: std::collections::BTreeMap<Cow<'_, str>, &RawValue> = serde_json::from_str(text)
        .map_err(|e| LineError::field(LineErrorKind::InvalidJson, "args", e.to_string()))?;
    Ok(Some(map.into_keys().collect()))
}

/// Explains why the typed decode failed: invalid JSON, not an object, or which field has the wrong type.
fn diagnose(line: &str, err: Option<serde_json::Error>) -> LineError {
    let value: serde_json::Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return LineError::record(LineErrorKind::InvalidJson, e.to_string()),
    };
    let Some(obj) = value.as_object() else {
        return LineError::record(LineErrorKind::WrongType, "expected a JSON object per line");
    };
    for f in STRING_FIELDS {
        if let Some(v) = obj.get(f) {
            if !v.is_string() && !v.is_null() {
                return LineError::field(
                    LineErrorKind::WrongType,
                    f,
                    format!("expected a string, got {v}"),
                );
            }
        }
    }
    if let Some(v) = obj.get("arg_keys") {
        match v {
            serde_json::Value::Null => {}
            serde_json::Value::Array(items) => {
                if let Some((i, item)) = items.iter().enumerate().find(|(_, x)| !x.is_string()) {
                    return LineError::field(
                        LineErrorKind::WrongType,
                        format!("arg_keys[{i}]"),
                        format!("expected a string, got {item}"),
                    );
                }
            }
            other => {
                return LineError::field(
                    LineErrorKind::WrongType,
                    "arg_keys",
                    format!("expected an array of strings, got {other}"),
                )
            }
        }
    }
    let why = err.map_or_else(|| "unexpected record shape".to_string(), |e| e.to_string());
    LineError::record(LineErrorKind::WrongType, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"timestamp":"2026-11-02T09:15:02.412Z","request_id":"req_01JD4Q8W2M","grant_id":"gr_7f3a","grant_label":"alice-laptop","server":"leapfrog","method":"tools/call","tool":"session_destroy","arg_keys":["session_id"],"policy":"leapfrog-prod","policy_version":"12","decision":"deny","rule":"(hidden)","message":"Tool \"session_destroy\" is hidden by policy","upstream_status":null,"latency_ms":null,"session_id":"mcp_s_k3m7x1"}"#;

    #[test]
    fn maps_every_column_of_the_spec_example() {
        let r = decode(LINE).unwrap();
        assert_eq!(r.event_id, "req_01JD4Q8W2M");
        assert_eq!(
            r.ts_micros,
            parse_rfc3339_micros("2026-11-02T09:15:02.412Z").unwrap()
        );
        assert_eq!(r.source, "policylayer");
        assert_eq!(r.identity.as_deref(), Some("alice-laptop"));
        assert_eq!(r.identity_id.as_deref(), Some("gr_7f3a"));
        assert_eq!(r.session.as_deref(), Some("mcp_s_k3m7x1"));
        assert_eq!(r.server.as_deref(), Some("leapfrog"));
        assert_eq!(r.method.as_deref(), Some("tools/call"));
        assert_eq!(r.tool.as_deref(), Some("session_destroy"));
        assert_eq!(r.arg_keys, Some(vec![Cow::Borrowed("session_id")]));
        assert_eq!(r.args, None);
        assert_eq!(r.decision, Decision::Deny);
        assert_eq!(r.rule.as_deref(), Some("(hidden)"));
        assert_eq!(
            r.message.as_deref(),
            Some("Tool \"session_destroy\" is hidden by policy")
        );
        assert_eq!(r.policy_id.as_deref(), Some("leapfrog-prod"));
        assert_eq!(r.policy_version.as_deref(), Some("12"));
        assert_eq!(r.upstream_status, None);
        assert_eq!(r.latency_ms, None);
    }

    #[test]
    fn limit_denials_are_rate_limited() {
        for (rule, want) in [
            (
                "/tools/session_create/limits/session_create_rate",
                Decision::RateLimited,
            ),
            ("/all_tools/limits/calls-per-minute", Decision::RateLimited),
            (
                "/tools/create_charge/deny_if/args.amount-gt",
                Decision::Deny,
            ),
            ("(default deny)", Decision::Deny),
            ("/tools/limits/deny_if/0", Decision::Deny),
        ] {
            assert_eq!(map_decision("deny", Some(rule)).unwrap(), want, "{rule}");
        }
        assert_eq!(map_decision("DENIED", None).unwrap(), Decision::Deny);
        assert_eq!(map_decision("Allowed", None).unwrap(), Decision::Allow);
        assert_eq!(
            map_decision("pending_approval", None).unwrap(),
            Decision::ApprovalRequired
        );
        let e = map_decision("maybe", None).unwrap_err();
        assert_eq!(e.kind, LineErrorKind::UnknownDecision);
        assert_eq!(e.field.as_deref(), Some("decision"));
    }

    #[test]
    fn numbers_and_strings_for_version_status_latency() {
        let line = r#"{"timestamp":1762074902412,"request_id":17,"decision":"allow","policy_version":12,"upstream_status":"502","latency_ms":"41.5"}"#;
        let r = decode(line).unwrap();
        assert_eq!(r.ts_micros, 1_762_074_902_412_000);
        assert_eq!(r.event_id, "17");
        assert_eq!(r.policy_version.as_deref(), Some("12"));
        assert_eq!(r.upstream_status, Some(502));
        assert_eq!(r.latency_ms, Some(41.5));
    }

    #[test]
    fn arg_keys_are_sorted_and_derived_from_args() {
        let r = decode(
            r#"{"timestamp":"2026-11-02T09:15:02Z","decision":"allow","arg_keys":["b","a"]}"#,
        )
        .unwrap();
        assert_eq!(
            r.arg_keys,
            Some(vec![Cow::Borrowed("a"), Cow::Borrowed("b")])
        );
        let r = decode(r#"{"timestamp":"2026-11-02T09:15:02Z","decision":"allow","args":{"z":1,"amount":{"v":2}}}"#)
            .unwrap();
        assert_eq!(
            r.arg_keys,
            Some(vec![Cow::Borrowed("amount"), Cow::Borrowed("z")])
        );
        assert_eq!(r.args.as_deref(), Some(r#"{"z":1,"amount":{"v":2}}"#));
    }

    #[test]
    fn missing_request_id_gets_a_stable_hash() {
        let line = r#"{"timestamp":"2026-11-02T09:15:02Z","decision":"allow"}"#;
        let a = decode(line).unwrap().event_id.into_owned();
        assert_eq!(a, decode(line).unwrap().event_id);
        assert!(a.starts_with('h'));
    }

    #[test]
    fn bad_lines_name_the_field() {
        let cases = [
            ("not json", LineErrorKind::InvalidJson, None),
            ("[1,2]", LineErrorKind::WrongType, None),
            (
                r#"{"decision":"allow"}"#,
                LineErrorKind::MissingTimestamp,
                Some("timestamp"),
            ),
            (
                r#"{"timestamp":"2026-11-02T09:15:02Z"}"#,
                LineErrorKind::MissingField,
                Some("decision"),
            ),
            (
                r#"{"timestamp":"yesterday","decision":"allow"}"#,
                LineErrorKind::BadTimestamp,
                Some("timestamp"),
            ),
            (
                r#"{"timestamp":"2026-11-02T09:15:02Z","decision":"perhaps"}"#,
                LineErrorKind::UnknownDecision,
                Some("decision"),
            ),
            (
                r#"{"timestamp":"2026-11-02T09:15:02Z","decision":"allow","tool":42}"#,
                LineErrorKind::WrongType,
                Some("tool"),
            ),
            (
                r#"{"timestamp":"2026-11-02T09:15:02Z","decision":"allow","arg_keys":["a",3]}"#,
                LineErrorKind::WrongType,
                Some("arg_keys[1]"),
            ),
            (
                r#"{"timestamp":"2026-11-02T09:15:02Z","decision":"allow","upstream_status":"oops"}"#,
                LineErrorKind::WrongType,
                Some("upstream_status"),
            ),
        ];
        for (line, kind, field) in cases {
            let e = decode(line).unwrap_err();
            assert_eq!(e.kind, kind, "{line}: {e}");
            assert_eq!(e.field.as_deref(), field, "{line}: {e}");
        }
    }

    #[test]
    fn offsets_normalise_to_utc() {
        let a =
            decode(r#"{"timestamp":"2026-11-02T10:15:02.412+01:00","decision":"allow"}"#).unwrap();
        let b =
            decode(r#"{"timestamp":"2026-11-02T09:15:02.412000Z","decision":"allow"}"#).unwrap();
        assert_eq!(a.ts_micros, b.ts_micros);
    }
}
