//! Docker MCP Gateway policy audit events (README "Input formats"): `policy.AuditEvent` JSON,
//! as a policy client or a container's json-file log writes it. `result` is `allowed`/`denied`;
//! `outcome_reason=policy_error` means the policy could not be evaluated and the gateway failed
//! closed, so it is an `error` whatever `result` says. Docker logs no rate limits, latency,
//! arguments nor upstream status.
//!
//! `trigger` tells what was evaluated: `invoke` is a tool call (`tools/call`), `prompt` a prompt
//! fetch (`prompts/get`; `tool` stays null, the prompt name is kept in `raw`). `load` events are
//! the gateway deciding which servers and tools it exposes when it (re)loads its catalogue: no
//! agent called anything, so they yield no row (counting them would report denials of calls that
//! never happened). Events with another or no trigger are kept as rows without a method.

use std::borrow::Cow;

use crate::common::{event_id, text, timestamp, Unit};
use crate::error::{LineError, LineErrorKind};
use crate::json::{self, Node};
use crate::{Outcome, Skip};
use verdict_schema::Decision;
use verdict_schema::DecisionRecord;

/// The `source` value of Docker MCP Gateway rows.
pub const SOURCE: &str = "docker";

/// `trigger`, `target_type` and `result`.
pub fn matches(r: &Node<'_>) -> bool {
    ["trigger", "target_type", "result"]
        .iter()
        .all(|k| r.get(k).and_then(Node::as_str).is_some())
}

/// Decodes one Docker MCP Gateway audit event.
///
/// # Errors
/// Invalid JSON, a missing or bad `timestamp`, a missing or unknown `result`, or a field of the
/// wrong type, each naming the field.
pub fn decode<'a>(line: &'a str, out: &mut Vec<DecisionRecord<'a>>) -> Result<Outcome, LineError> {
    let r = json::object(line)?;
    let trigger = text(r.get("trigger"), "trigger")?;
    if trigger.as_deref() == Some("load") {
        return Ok(Outcome::Skipped(Skip::CatalogueLoad));
    }
    if r.get("result").is_none() && r.get("trigger").is_none() {
        // Not an audit event (the gateway's other log lines).
        return Ok(Outcome::Skipped(Skip::ServerLog));
    }
    let ts = timestamp(r.get("timestamp"), "timestamp", Unit::Auto)?;
    let outcome_reason = text(r.get("outcome_reason"), "outcome_reason")?;
    let result = text(r.get("result"), "result")?;
    let decision = if outcome_reason.as_deref() == Some("policy_error") {
        Decision::Error
    } else {
        match result.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("allowed" | "allow") => Decision::Allow,
            Some("denied" | "deny") => Decision::Deny,
            Some(other) => {
                return Err(LineError::field(
                    LineErrorKind::UnknownDecision,
                    "result",
                    format!("unknown result `{other}` (expected allowed or denied)"),
                ))
            }
            None => {
                return Err(LineError::field(
                    LineErrorKind::MissingField,
                    "result",
                    "audit event without a result",
                ))
            }
        }
    };
    let id = text(r.get("trace_id"), "trace_id")?;
    let mut rec = DecisionRecord::new(event_id(id, SOURCE, line), ts, SOURCE, decision);
    let actor_id = text(r.get("actor_id"), "actor_id")?;
    rec.identity = match text(r.get("actor_name"), "actor_name")? {
        Some(n) => Some(n),
        None => actor_id.clone(),
    };
    rec.identity_id = actor_id;
    rec.session = text(r.get("session_id"), "session_id")?;
    rec.server = text(r.get("server_name"), "server_name")?;
    let target = text(r.get("target_type"), "target_type")?;
    rec.method = match (trigger.as_deref(), target.as_deref()) {
        (Some("prompt"), _) | (Some("invoke"), Some("prompt")) => Some("prompts/get"),
        (Some("invoke"), Some("resource")) => Some("resources/read"),
        (Some("invoke"), _) => Some("tools/call"),
        _ => None,
    }
    .map(Cow::Borrowed);
    if rec.method.as_deref() == Some("tools/call") {
        rec.tool = text(r.get("tool_name"), "tool_name")?;
    }
    rec.rule = text(r.get("reason"), "reason")?;
    rec.message = outcome_reason;
    rec.policy_id = text(r.get("policy_id"), "policy_id")?;
    rec.policy_version = text(r.get("policy_version"), "policy_version")?;
    out.push(rec);
    Ok(Outcome::Rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leak;

    const SPEC: &str = r#"{"actor_id":"u1","actor_name":"alice","org_id":"o1","trigger":"invoke","target_type":"tool","server_name":"github","tool_name":"create_issue","result":"denied","outcome_reason":"policy_rule","reason":"blocked by org policy","policy_id":"p-7","policy_version":"3","session_id":"s-9","trace_id":"t-1","timestamp":"2025-10-01T12:00:00Z"}"#;

    fn one(line: &str) -> DecisionRecord<'static> {
        crate::decode_one(crate::Format::Docker, line)
    }

    #[test]
    fn the_spec_example_maps_every_column() {
        let r = one(SPEC);
        assert_eq!(r.event_id, "t-1");
        assert_eq!(r.ts_micros, 1_759_320_000_000_000);
        assert_eq!(r.identity.as_deref(), Some("alice"));
        assert_eq!(r.identity_id.as_deref(), Some("u1"));
        assert_eq!(r.session.as_deref(), Some("s-9"));
        assert_eq!(r.server.as_deref(), Some("github"));
        assert_eq!(r.method.as_deref(), Some("tools/call"));
        assert_eq!(r.tool.as_deref(), Some("create_issue"));
        assert_eq!(r.decision, Decision::Deny);
        assert_eq!(r.rule.as_deref(), Some("blocked by org policy"));
        assert_eq!(r.message.as_deref(), Some("policy_rule"));
        assert_eq!(r.policy_id.as_deref(), Some("p-7"));
        assert_eq!(r.policy_version.as_deref(), Some("3"));
        assert!(matches(&json::parse(SPEC).unwrap()));
    }

    #[test]
    fn triggers_and_errors() {
        let r = one(&SPEC.replace("policy_rule", "policy_error"));
        assert_eq!(r.decision, Decision::Error);
        let r = one(&SPEC.replace(r#""trigger":"invoke""#, r#""trigger":"prompt""#));
        assert_eq!((r.method.as_deref(), r.tool), (Some("prompts/get"), None));
        let mut out = Vec::new();
        decode(
            leak(SPEC.replace(r#""trigger":"invoke""#, r#""trigger":"load""#)),
            &mut out,
        )
        .unwrap();
        assert!(out.is_empty());
        let e = decode(leak(SPEC.replace("denied", "maybe")), &mut out).unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (LineErrorKind::UnknownDecision, Some("result"))
        );
        let e = decode(leak(SPEC.replace("2025-10-01T12:00:00Z", "noon")), &mut out).unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (LineErrorKind::BadTimestamp, Some("timestamp"))
        );
        for bad in [
            "[]",
            r#"{"trigger":[],"result":{}}"#,
            r#"{"result":"allowed"}"#,
        ] {
            let _ = decode(bad, &mut out);
        }
    }
}
