//! Gatekit `audit_jsonl` events (README "Input formats"): one line per request, response and
//! notification, the event type saying what the pipeline did: `REQUEST` (passed unchanged),
//! `REQUEST_MODIFIED` (a plugin redacted or rewrote it and forwarded it) and `SECURITY_BLOCK`
//! (refused) carry a request's decision and become rows. A `SECURITY_BLOCK` of a response (it
//! has a `response_status`) is a refusal too: the result was withheld, a deny row. `RESPONSE`,
//! `RESPONSE_MODIFIED` and `UPSTREAM_ERROR` lines follow a request already decided (skipped as
//! `response`), `NOTIFICATION` lines are one-way messages (skipped as `notification`); any
//! other event type is quarantined as `unrecognised_event`.
//! `upstream_status` and `latency_ms` are filled only where a decision line itself carries
//! `response_status` / `duration_ms`. Current releases name the tool `tool_name` and log the
//! request's `params`; older ones wrote `tool` and `request_body`: both are read.
//!
//! Outcomes: `allowed` allow; `blocked` deny; `modified` allow (a plugin redacted or rewrote the
//! request and forwarded it; the plugin is the rule); `completed_by_middleware` allow (a
//! middleware plugin answered the call itself, nothing was refused; the plugin is the rule);
//! `no_security` allow (forwarded without any security plugin evaluating it); `error` error.
//! The rule is the plugin of the pipeline stage whose outcome made the decision, else the
//! `[Plugin]` prefix of `reason`; `message` is `reason`.
//!
//! The JSON-RPC id repeats across sessions and restarts, so it cannot be the `event_id`: rows
//! get the stable hash of the line; the id stays in `raw`.

use std::borrow::Cow;

use crate::common::{
    args_of, at, duration_ms, event_id, first, status, text, timestamp, unrecognised, Unit,
};
use crate::error::{LineError, LineErrorKind};
use crate::json::{self, Node};
use crate::{Outcome, Skip};
use verdict_schema::Decision;
use verdict_schema::DecisionRecord;

/// The `source` value of Gatekit rows.
pub const SOURCE: &str = "gatekit";

/// `pipeline_outcome`.
pub fn matches(r: &Node<'_>) -> bool {
    r.get("pipeline_outcome").and_then(Node::as_str).is_some()
}

/// `older tool/request_body` for the key names of early releases.
pub fn shape(r: &Node<'_>) -> Option<&'static str> {
    (r.get("tool").is_some() || r.get("request_body").is_some())
        .then_some("older tool/request_body")
}

/// Decodes one Gatekit audit line.
///
/// # Errors
/// Invalid JSON, a decision line with a missing or bad `timestamp` or an unknown
/// `pipeline_outcome`, an unknown event type, or a field of the wrong type, each naming the field.
pub fn decode<'a>(line: &'a str, out: &mut Vec<DecisionRecord<'a>>) -> Result<Outcome, LineError> {
    let r = json::object(line)?;
    let event_type = text(r.get("event_type"), "event_type")?;
    let upper = event_type.as_deref().map(str::to_ascii_uppercase);
    match upper.as_deref() {
        Some("REQUEST" | "REQUEST_MODIFIED" | "SECURITY_BLOCK") => {}
        Some("RESPONSE" | "RESPONSE_MODIFIED" | "UPSTREAM_ERROR") => {
            return Ok(Outcome::Skipped(Skip::Response))
        }
        Some("NOTIFICATION" | "NOTIFICATION_MODIFIED") => {
            return Ok(Outcome::Skipped(Skip::Notification))
        }
        _ => {
            return Err(unrecognised(
                &r,
                "unknown Gatekit event_type (expected REQUEST, REQUEST_MODIFIED, SECURITY_BLOCK, \
                 RESPONSE, NOTIFICATION ...)",
            ))
        }
    }
    let blocked_event = upper.as_deref() == Some("SECURITY_BLOCK");
    let ts = timestamp(r.get("timestamp"), "timestamp", Unit::Auto)?;
    let outcome = text(r.get("pipeline_outcome"), "pipeline_outcome")?;
    let outcome = outcome.as_deref().map(str::to_ascii_lowercase);
    let decision = match outcome.as_deref() {
        Some("allowed" | "modified" | "completed_by_middleware" | "no_security") => Decision::Allow,
        Some("blocked") => Decision::Deny,
        Some("error") => Decision::Error,
        Some(other) => {
            return Err(LineError::field(
                LineErrorKind::UnknownDecision,
                "pipeline_outcome",
                format!("unknown pipeline outcome `{other}`"),
            ))
        }
        None if blocked_event => Decision::Deny,
        None if upper.as_deref() == Some("REQUEST_MODIFIED") => Decision::Allow,
        None => Decision::Unknown,
    };
    let mut rec = DecisionRecord::new(event_id(None, SOURCE, line), ts, SOURCE, decision);
    rec.server = text(r.get("server_name"), "server_name")?;
    rec.method = text(r.get("method"), "method")?;
    if rec.method.as_deref() == Some("tools/call") {
        rec.tool = match text(r.get("tool_name"), "tool_name")? {
            Some(t) => Some(t),
            None => match text(r.get("tool"), "tool")? {
                Some(t) => Some(t),
                None => first(&r, &["params.name", "request_body.name"]).and_then(Node::as_cow),
            },
        };
        let (keys, args) = args_of(first(&r, &["params.arguments", "request_body.arguments"]));
        rec.arg_keys = keys;
        rec.args = args;
    }
    let reason = text(r.get("reason"), "reason")?;
    // A REQUEST_MODIFIED line's outcome is `allowed`; the plugin that modified it is the rule.
    let rule_outcome = match upper.as_deref() {
        Some("REQUEST_MODIFIED") => Some("modified".to_string()),
        _ => outcome.clone(),
    };
    if rule_outcome
        .as_deref()
        .is_some_and(|o| o != "allowed" && o != "no_security")
    {
        let stage = at(&r, "pipeline.stages")
            .and_then(Node::as_array)
            .unwrap_or_default()
            .iter()
            .find(|s| {
                s.get("outcome")
                    .and_then(Node::as_str)
                    .is_some_and(|o| Some(o.to_ascii_lowercase()) == rule_outcome)
            })
            .and_then(|s| s.get("plugin"))
            .and_then(Node::as_cow);
        rec.rule = stage.or_else(|| {
            let r = reason.as_deref()?.strip_prefix('[')?;
            let end = r.find(']')?;
            Some(Cow::Owned(r[..end].to_string()))
        });
    }
    rec.message = reason;
    // Current releases write `response_status` as `success`/`error` (the JSON-RPC outcome),
    // not an HTTP status: only a number is one.
    rec.upstream_status = match r.get("response_status") {
        Some(Node::Str(s)) if s.parse::<i32>().is_err() => None,
        other => status(other, "response_status")?,
    };
    rec.latency_ms = duration_ms(r.get("duration_ms"), "duration_ms", Unit::Millis)?;
    out.push(rec);
    Ok(Outcome::Rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leak;

    const SPEC: &str = r#"{"timestamp":"2025-01-15T10:00:01Z","event_type":"REQUEST","request_id":"124","server_name":"filesystem","method":"tools/call","tool":"write_file","pipeline_outcome":"blocked","reason":"[ToolAllowlist] Tool not in allowlist","pipeline":{"stages":[{"plugin":"ToolAllowlist","outcome":"blocked","time_ms":2.0}]},"request_body":{"arguments":{"path":"/x"}}}"#;

    fn one(line: &str) -> DecisionRecord<'static> {
        crate::decode_one(crate::Format::Gatekit, line)
    }

    #[test]
    fn the_spec_example_is_a_deny() {
        let r = one(SPEC);
        assert_eq!(r.event_id, crate::stable_event_id(SOURCE, SPEC));
        assert_eq!(r.ts_micros, 1_736_935_201_000_000);
        assert_eq!(r.server.as_deref(), Some("filesystem"));
        assert_eq!(r.method.as_deref(), Some("tools/call"));
        assert_eq!(r.tool.as_deref(), Some("write_file"));
        assert_eq!(r.arg_keys, Some(vec![Cow::Borrowed("path")]));
        assert_eq!(r.decision, Decision::Deny);
        assert_eq!(r.rule.as_deref(), Some("ToolAllowlist"));
        assert_eq!(
            r.message.as_deref(),
            Some("[ToolAllowlist] Tool not in allowlist")
        );
        assert!(matches(&json::parse(SPEC).unwrap()));
    }

    #[test]
    fn outcomes_and_skipped_events() {
        let with = |o: &str| {
            SPEC.replace(
                r#""pipeline_outcome":"blocked""#,
                &format!(r#""pipeline_outcome":"{o}""#),
            )
        };
        assert_eq!(one(&with("allowed")).decision, Decision::Allow);
        assert_eq!(one(&with("allowed")).rule, None);
        assert_eq!(one(&with("no_security")).decision, Decision::Allow);
        assert_eq!(one(&with("error")).decision, Decision::Error);
        // No stage with that outcome: the rule comes from the reason's prefix.
        let m = one(&with("modified"));
        assert_eq!(
            (m.decision, m.rule.as_deref()),
            (Decision::Allow, Some("ToolAllowlist"))
        );
        let mut out = Vec::new();
        for t in ["RESPONSE", "NOTIFICATION", "UPSTREAM_ERROR"] {
            decode(leak(SPEC.replace("REQUEST", t)), &mut out).unwrap();
        }
        assert!(out.is_empty());
        let e = decode(leak(with("perhaps")), &mut out).unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (LineErrorKind::UnknownDecision, Some("pipeline_outcome"))
        );
        let e = decode(leak(SPEC.replace("2025-01-15T10:00:01Z", "x")), &mut out).unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (LineErrorKind::BadTimestamp, Some("timestamp"))
        );
        for bad in [
            "7",
            r#"{"event_type":"REQUEST","timestamp":1,"pipeline":{"stages":7},"reason":"["}"#,
        ] {
            let _ = decode(bad, &mut out);
        }
    }
}
