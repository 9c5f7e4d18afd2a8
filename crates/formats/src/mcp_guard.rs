//! mcp-guard audit lines (README "Input formats"): JSON lines keyed by `event_type`, which
//! the code writes in snake_case (`tool_call`) and the documentation in CamelCase (`ToolCall`);
//! both are read. `tool_call` is an allowed call (`success:false` only says the tool failed:
//! still an allow, its `message` kept); `authz_denied` and `auth_failure` deny; `rate_limited`;
//! `error`. The rule is the `message` of a refusal or error; allows have none.
//!
//! `tool_response` lines carry only the `duration_ms` of a call already recorded by its
//! `tool_call` line (same `request_id`): a line-by-line ingest cannot join them, and a row for
//! them would count every call twice, so they are skipped as `response`; `auth_success` lines
//! (a key or token accepted, no call yet) as `authentication`, the gateway's lifecycle
//! (`server_started` ...) as `server_log`. Any other event type
//! is quarantined as `unrecognised_event`. mcp-guard logs no server, session, arguments, policy
//! or upstream status. The docs' examples write the HTTP verb in `method` next to a `tool`: such
//! a record is a `tools/call`.

use std::borrow::Cow;

use crate::common::{duration_ms, event_id, text, timestamp, unrecognised, Unit};
use crate::error::LineError;
use crate::json::{self, Node};
use crate::{Outcome, Skip};
use verdict_schema::Decision;
use verdict_schema::DecisionRecord;

/// The `source` value of mcp-guard rows.
pub const SOURCE: &str = "mcp-guard";

/// `event_type` and an `identity_id` key (null for unauthenticated calls).
pub fn matches(r: &Node<'_>) -> bool {
    r.get("event_type").and_then(Node::as_str).is_some() && r.get("identity_id").is_some()
}

/// `CamelCase event types` for the spelling of the documentation's examples.
pub fn shape(r: &Node<'_>) -> Option<&'static str> {
    r.get("event_type")
        .and_then(Node::as_str)
        .filter(|t| t.bytes().any(|b| b.is_ascii_uppercase()))
        .map(|_| "CamelCase event types")
}

/// `ToolCall` -> `tool_call`; snake_case stays as it is.
fn snake(event_type: &str) -> String {
    let mut out = String::with_capacity(event_type.len() + 4);
    for (i, c) in event_type.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Decodes one mcp-guard audit line.
///
/// # Errors
/// Invalid JSON, a missing or bad `timestamp` on a decision, an unknown event type, or a field
/// of the wrong type, each naming the field.
pub fn decode<'a>(line: &'a str, out: &mut Vec<DecisionRecord<'a>>) -> Result<Outcome, LineError> {
    let r = json::object(line)?;
    let event_type = text(r.get("event_type"), "event_type")?;
    let decision =
        match event_type.as_deref().map(snake).as_deref() {
            Some("tool_call") => Decision::Allow,
            Some("authz_denied" | "auth_failure") => Decision::Deny,
            Some("rate_limited") => Decision::RateLimited,
            Some("error") => Decision::Error,
            Some("tool_response") => return Ok(Outcome::Skipped(Skip::Response)),
            Some("auth_success") => return Ok(Outcome::Skipped(Skip::Authentication)),
            // The gateway's lifecycle (`server_started` ...): not a call.
            Some(t) if t.starts_with("server_") || t == "startup" || t == "shutdown" => {
                return Ok(Outcome::Skipped(Skip::ServerLog))
            }
            _ => return Err(unrecognised(
                &r,
                "unknown mcp-guard event_type (expected tool_call, tool_response, auth_success, \
                 auth_failure, authz_denied, rate_limited or error)",
            )),
        };
    let ts = timestamp(r.get("timestamp"), "timestamp", Unit::Auto)?;
    let id = text(r.get("request_id"), "request_id")?;
    let mut rec = DecisionRecord::new(event_id(id, SOURCE, line), ts, SOURCE, decision);
    rec.identity = text(r.get("identity_id"), "identity_id")?;
    rec.method = text(r.get("method"), "method")?;
    let tool = text(r.get("tool"), "tool")?;
    if tool.is_some() && !rec.method.as_deref().is_some_and(|m| m.contains('/')) {
        rec.method = Some(Cow::Borrowed("tools/call"));
    }
    if rec.method.as_deref() == Some("tools/call") {
        rec.tool = tool;
    }
    rec.message = text(r.get("message"), "message")?;
    if decision != Decision::Allow {
        rec.rule = rec.message.clone();
    }
    rec.latency_ms = duration_ms(r.get("duration_ms"), "duration_ms", Unit::Millis)?;
    out.push(rec);
    Ok(Outcome::Rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::LineErrorKind;
    use crate::leak;

    const SPEC: &str = r#"{"timestamp":"2025-12-14T10:00:00Z","event_type":"rate_limited","identity_id":"key:ci-bot","method":"tools/call","tool":"run_sql","success":false,"message":"rate limit exceeded","duration_ms":null,"request_id":"req-5f1"}"#;

    fn one(line: &str) -> DecisionRecord<'static> {
        crate::decode_one(crate::Format::McpGuard, line)
    }

    #[test]
    fn the_spec_example_is_rate_limited() {
        let r = one(SPEC);
        assert_eq!(r.event_id, "req-5f1");
        assert_eq!(r.ts_micros, 1_765_706_400_000_000);
        assert_eq!(r.identity.as_deref(), Some("key:ci-bot"));
        assert_eq!(r.method.as_deref(), Some("tools/call"));
        assert_eq!(r.tool.as_deref(), Some("run_sql"));
        assert_eq!(r.decision, Decision::RateLimited);
        assert_eq!(r.rule.as_deref(), Some("rate limit exceeded"));
        assert_eq!(r.message.as_deref(), Some("rate limit exceeded"));
        assert_eq!(r.latency_ms, None);
        assert!(matches(&json::parse(SPEC).unwrap()));
    }

    #[test]
    fn event_types() {
        let with = |t: &str| SPEC.replace("\"rate_limited\"", &format!("\"{t}\""));
        let a = one(&with("tool_call"));
        assert_eq!((a.decision, a.rule), (Decision::Allow, None));
        assert_eq!(one(&with("authz_denied")).decision, Decision::Deny);
        assert_eq!(one(&with("auth_failure")).decision, Decision::Deny);
        assert_eq!(one(&with("error")).decision, Decision::Error);
        let mut out = Vec::new();
        assert_eq!(
            decode(leak(with("tool_response")), &mut out).unwrap(),
            Outcome::Skipped(Skip::Response)
        );
        assert_eq!(
            decode(leak(with("AuthSuccess")), &mut out).unwrap(),
            Outcome::Skipped(Skip::Authentication)
        );
        assert_eq!(one(&with("RateLimited")).decision, Decision::RateLimited);
        assert_eq!(one(&with("ToolCall")).decision, Decision::Allow);
        assert_eq!(
            decode(leak(with("server_started")), &mut out).unwrap(),
            Outcome::Skipped(Skip::ServerLog)
        );
        let e = decode(leak(with("frobnicate")), &mut out).unwrap_err();
        assert_eq!(e.kind, LineErrorKind::UnrecognisedEvent);
        assert!(out.is_empty());
        let e = decode(leak(SPEC.replace("2025-12-14T10:00:00Z", "")), &mut out).unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (LineErrorKind::BadTimestamp, Some("timestamp"))
        );
        for bad in [
            "null",
            r#"{"event_type":"error","timestamp":{}}"#,
            r#"{"event_type":"error","timestamp":1,"duration_ms":[]}"#,
        ] {
            let _ = decode(bad, &mut out);
        }
    }
}
