//! agentgateway JSON request logs (spec/proxy-formats.md 3.1): flat keys with literal dots
//! (`"mcp.method"`, `"http.status"`), one line per request; `reason` says why the gateway itself
//! answered. Lines that are not request logs (startup messages) yield no row.

use std::borrow::Cow;

use crate::common::{at, duration_ms, event_id, status, text, timestamp, Unit};
use crate::error::{LineError, LineErrorKind};
use crate::json::{self, Node};
use verdict_schema::Decision;
use verdict_schema::DecisionRecord;

/// The `source` value of agentgateway rows.
pub const SOURCE: &str = "agentgateway";

/// `scope=request` and an `http.status`.
pub fn matches(r: &Node<'_>) -> bool {
    at(r, "scope").and_then(Node::as_str) == Some("request") && at(r, "http.status").is_some()
}

/// Maps agentgateway's `reason` (set only when the gateway answered instead of the upstream).
pub fn decision_of_reason(reason: &str) -> Decision {
    match reason {
        "Authorization" | "JwtAuth" | "BasicAuth" | "APIKeyAuth" | "ExtAuth" | "Oidc"
        | "Guardrail" | "Authentication" => Decision::Deny,
        "RateLimit" => Decision::RateLimited,
        _ => Decision::Error,
    }
}

/// Decodes one agentgateway line.
///
/// # Errors
/// Invalid JSON, a missing or bad `time`, or a field of the wrong type, naming the field.
pub fn decode<'a>(line: &'a str, out: &mut Vec<DecisionRecord<'a>>) -> Result<(), LineError> {
    let r = json::parse(line)?;
    if r.as_object().is_none() {
        return Err(LineError::record(
            LineErrorKind::WrongType,
            "expected a JSON object",
        ));
    }
    if at(&r, "scope").and_then(Node::as_str) != Some("request") {
        // Startup, config and connection messages are not decisions.
        if at(&r, "http.status").is_none() && at(&r, "mcp.method").is_none() {
            return Ok(());
        }
    }
    let ts = timestamp(at(&r, "time"), "time", Unit::Auto)?;
    let reason = text(at(&r, "reason"), "reason")?;
    let decision = reason
        .as_deref()
        .map_or(Decision::Allow, decision_of_reason);
    let http_status = status(at(&r, "http.status"), "http.status")?;
    let trace = text(at(&r, "trace.id"), "trace.id")?;
    let span = text(at(&r, "span.id"), "span.id")?;
    let id = match (trace, span) {
        (Some(t), Some(s)) => Some(Cow::Owned(format!("{t}/{s}"))),
        (t, _) => t,
    };
    let mut rec = DecisionRecord::new(event_id(id, SOURCE, line), ts, SOURCE, decision);
    rec.identity = text(at(&r, "jwt.sub"), "jwt.sub")?;
    rec.session = text(at(&r, "mcp.session.id"), "mcp.session.id")?;
    rec.server = match text(at(&r, "mcp.target"), "mcp.target")? {
        Some(t) => Some(t),
        None => text(at(&r, "route"), "route")?,
    };
    let mcp_method = text(at(&r, "mcp.method"), "mcp.method")?;
    rec.method = match mcp_method {
        Some(m) => Some(match m.as_ref() {
            "call_tool" => Cow::Borrowed("tools/call"),
            "list_tools" => Cow::Borrowed("tools/list"),
            _ => m,
        }),
        None => {
            let verb = text(at(&r, "http.method"), "http.method")?;
            let path = text(at(&r, "http.path"), "http.path")?;
            match (verb, path) {
                (Some(v), Some(p)) => Some(Cow::Owned(format!("{v} {p}"))),
                (v, p) => v.or(p),
            }
        }
    };
    let resource_type = text(at(&r, "mcp.resource.type"), "mcp.resource.type")?;
    if rec.method.as_deref() == Some("tools/call") || resource_type.as_deref() == Some("tool") {
        rec.tool = text(at(&r, "mcp.resource.name"), "mcp.resource.name")?;
    }
    rec.rule = reason;
    rec.message = text(at(&r, "error"), "error")?;
    // `http.status` is the upstream's only when the gateway did not answer itself.
    if decision == Decision::Allow {
        rec.upstream_status = http_status;
    } else if rec.message.is_none() {
        rec.message = http_status.map(|s| Cow::Owned(format!("gateway answered HTTP {s}")));
    }
    rec.latency_ms = duration_ms(at(&r, "duration"), "duration", Unit::Millis)?;
    out.push(rec);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DENY: &str = r#"{"level":"info","time":"2025-09-04T20:01:40.493Z","scope":"request","gateway":"ns/agw","route":"ns/mcp","src.addr":"10.0.9.76:38655","http.method":"POST","http.path":"/mcp","http.status":403,"trace.id":"4bf92f3577b34da6a3ce929d0e0e4736","jwt.sub":"alice","mcp.method":"tools/call","mcp.target":"everything","mcp.resource.type":"tool","mcp.resource.name":"echo","mcp.session.id":"6b49","reason":"Authorization","duration":"3ms"}"#;

    fn one(line: &str) -> DecisionRecord<'static> {
        crate::decode_one(crate::Format::AgentGateway, line)
    }

    #[test]
    fn the_spec_example_is_a_deny() {
        let r = one(DENY);
        assert_eq!(r.event_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(r.ts_micros, 1_757_016_100_493_000);
        assert_eq!(r.identity.as_deref(), Some("alice"));
        assert_eq!(r.session.as_deref(), Some("6b49"));
        assert_eq!(r.server.as_deref(), Some("everything"));
        assert_eq!(r.method.as_deref(), Some("tools/call"));
        assert_eq!(r.tool.as_deref(), Some("echo"));
        assert_eq!(r.decision, Decision::Deny);
        assert_eq!(r.rule.as_deref(), Some("Authorization"));
        assert_eq!(r.upstream_status, None);
        assert_eq!(r.latency_ms, Some(3.0));
        let n = json::parse(DENY).unwrap();
        assert!(matches(&n));
    }

    #[test]
    fn reasons_map_to_decisions() {
        let with = |reason: &str| DENY.replace("\"Authorization\"", &format!("\"{reason}\""));
        assert_eq!(one(&with("RateLimit")).decision, Decision::RateLimited);
        assert_eq!(one(&with("Timeout")).decision, Decision::Error);
        let allowed = DENY
            .replace(",\"reason\":\"Authorization\"", "")
            .replace("403", "200");
        let r = one(&allowed);
        assert_eq!(
            (r.decision, r.upstream_status, r.rule),
            (Decision::Allow, Some(200), None)
        );
    }

    #[test]
    fn startup_lines_are_skipped_and_bad_times_named() {
        let mut out = Vec::new();
        decode(
            r#"{"level":"info","time":"2025-09-04T20:01:40Z","msg":"started"}"#,
            &mut out,
        )
        .unwrap();
        assert!(out.is_empty());
        let e = decode(&DENY.replace("2025-09-04T20:01:40.493Z", "later"), &mut out).unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (LineErrorKind::BadTimestamp, Some("time"))
        );
    }
}
