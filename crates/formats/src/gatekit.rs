//! Gatekit `audit_jsonl` events (spec/proxy-formats.md 3.5): one line per REQUEST, RESPONSE and
//! NOTIFICATION. Only REQUEST lines become rows: they carry the pipeline's decision
//! (`pipeline_outcome`). RESPONSE lines pair with the REQUEST of the same JSON-RPC id and
//! NOTIFICATION lines are one-way messages: neither is a decision, so they yield no row. The
//! same holds for UPSTREAM_ERROR events: the upstream failed after the REQUEST was decided
//! (allowed), and that decision is already its REQUEST's row; any other event type is skipped too.
//! `upstream_status` and `latency_ms` are filled only where a REQUEST line itself carries
//! `response_status` / `duration_ms`.
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

use crate::common::{args_of, at, duration_ms, event_id, status, text, timestamp, Unit};
use crate::error::{LineError, LineErrorKind};
use crate::json::{self, Node};
use verdict_schema::Decision;
use verdict_schema::DecisionRecord;

/// The `source` value of Gatekit rows.
pub const SOURCE: &str = "gatekit";

/// `pipeline_outcome`.
pub fn matches(r: &Node<'_>) -> bool {
    r.get("pipeline_outcome").and_then(Node::as_str).is_some()
}

/// Decodes one Gatekit audit line.
///
/// # Errors
/// Invalid JSON, a REQUEST with a missing or bad `timestamp` or an unknown `pipeline_outcome`,
/// or a field of the wrong type, each naming the field.
pub fn decode<'a>(line: &'a str, out: &mut Vec<DecisionRecord<'a>>) -> Result<(), LineError> {
    let r = json::parse(line)?;
    if r.as_object().is_none() {
        return Err(LineError::record(
            LineErrorKind::WrongType,
            "expected a JSON object",
        ));
    }
    let event_type = text(r.get("event_type"), "event_type")?;
    if !event_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("REQUEST"))
    {
        return Ok(());
    }
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
        None => Decision::Unknown,
    };
    let mut rec = DecisionRecord::new(event_id(None, SOURCE, line), ts, SOURCE, decision);
    rec.server = text(r.get("server_name"), "server_name")?;
    rec.method = text(r.get("method"), "method")?;
    if rec.method.as_deref() == Some("tools/call") {
        rec.tool = match text(r.get("tool"), "tool")? {
            Some(t) => Some(t),
            None => at(&r, "request_body.name").and_then(Node::as_cow),
        };
        let (keys, args) = args_of(at(&r, "request_body.arguments"));
        rec.arg_keys = keys;
        rec.args = args;
    }
    let reason = text(r.get("reason"), "reason")?;
    if outcome
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
                    .is_some_and(|o| Some(o.to_ascii_lowercase()) == outcome)
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
    rec.upstream_status = status(r.get("response_status"), "response_status")?;
    rec.latency_ms = duration_ms(r.get("duration_ms"), "duration_ms", Unit::Millis)?;
    out.push(rec);
    Ok(())
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
