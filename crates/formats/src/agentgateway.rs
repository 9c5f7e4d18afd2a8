//! agentgateway request logs (README "Input formats"): flat keys with literal dots
//! (`"mcp.method"`, `"http.status"`), one record per request; `reason` says why the gateway itself
//! answered. Three shapes are read: the JSON of releases up to 1.3 (`mcp.method`,
//! `mcp.resource.name`), the OpenTelemetry-style keys of later releases (`mcp.method.name`,
//! `gen_ai.tool.name`), and the default text format (`TS<TAB>info<TAB>request k=v ...`), which the
//! envelope step turns into the same flat object. Lines that are not request logs (start-up
//! messages) are skipped as `server_log`.

use std::borrow::Cow;

use crate::common::{
    at, decision_from_status, duration_ms, event_id, first, status, text, timestamp, Unit,
};
use crate::error::LineError;
use crate::json::{self, Node};
use crate::{Outcome, Skip};
use verdict_schema::Decision;
use verdict_schema::DecisionRecord;

/// The `source` value of agentgateway rows.
pub const SOURCE: &str = "agentgateway";

/// `scope=request` and an `http.status`.
pub fn matches(r: &Node<'_>) -> bool {
    at(r, "scope").and_then(Node::as_str) == Some("request") && at(r, "http.status").is_some()
}

/// `OTel keys` for the OpenTelemetry-style key names of current releases.
pub fn shape(r: &Node<'_>) -> Option<&'static str> {
    (r.get("mcp.method.name").is_some() || r.get("gen_ai.tool.name").is_some())
        .then_some("OTel keys")
}

/// Maps agentgateway's `reason` (set only when the gateway answered instead of the upstream),
/// with the status it answered: a `DirectResponse` (a configured answer, also what a rate limit
/// policy answers in some releases) is read from its status.
pub fn decision_of_reason(reason: &str, status: Option<i32>) -> Decision {
    match reason {
        "Authorization" | "JwtAuth" | "BasicAuth" | "APIKeyAuth" | "ExtAuth" | "Oidc"
        | "Guardrail" | "Authentication" | "CSRF" => Decision::Deny,
        "RateLimit" => Decision::RateLimited,
        "DirectResponse" => match decision_from_status(status) {
            Decision::Unknown => Decision::Error,
            d => d,
        },
        _ => Decision::Error,
    }
}

/// Decodes one agentgateway request record.
///
/// # Errors
/// Invalid JSON, a missing or bad `time`, or a field of the wrong type, naming the field.
pub fn decode<'a>(line: &'a str, out: &mut Vec<DecisionRecord<'a>>) -> Result<Outcome, LineError> {
    let r = json::object(line)?;
    if at(&r, "scope").and_then(Node::as_str) != Some("request")
        && at(&r, "http.status").is_none()
        && first(&r, &["mcp.method", "mcp.method.name"]).is_none()
    {
        // Start-up, config and connection messages are not decisions.
        return Ok(Outcome::Skipped(Skip::ServerLog));
    }
    let ts = timestamp(at(&r, "time"), "time", Unit::Auto)?;
    let reason = text(at(&r, "reason"), "reason")?;
    let http_status = status(at(&r, "http.status"), "http.status")?;
    let decision = reason
        .as_deref()
        .map_or(Decision::Allow, |why| decision_of_reason(why, http_status));
    let trace = text(at(&r, "trace.id"), "trace.id")?;
    let span = text(at(&r, "span.id"), "span.id")?;
    let id = match (trace, span) {
        (Some(t), Some(s)) => Some(Cow::Owned(format!("{t}/{s}"))),
        (t, _) => t,
    };
    let mut rec = DecisionRecord::new(event_id(id, SOURCE, line), ts, SOURCE, decision);
    rec.identity = text(at(&r, "jwt.sub"), "jwt.sub")?;
    rec.client_addr = text(r.get("src.addr"), "src.addr")?;
    rec.session = match text(r.get("mcp.session.id"), "mcp.session.id")? {
        Some(s) => Some(s),
        None => at(&r, "rq.headers.all.mcp-session-id").and_then(Node::as_cow),
    };
    rec.server = match text(at(&r, "mcp.target"), "mcp.target")? {
        Some(t) => Some(t),
        None => text(at(&r, "route"), "route")?,
    };
    let mcp_method = match text(r.get("mcp.method.name"), "mcp.method.name")? {
        Some(m) => Some(m),
        None => text(r.get("mcp.method"), "mcp.method")?,
    };
    rec.method = match mcp_method.or(text(r.get("a2a.method"), "a2a.method")?) {
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
    let resource_type = match text(r.get("mcp.resource.type"), "mcp.resource.type")? {
        Some(t) => Some(t),
        None => text(r.get("mcp.resource"), "mcp.resource")?,
    };
    if rec.method.as_deref() == Some("tools/call") || resource_type.as_deref() == Some("tool") {
        rec.tool = match text(r.get("gen_ai.tool.name"), "gen_ai.tool.name")? {
            Some(t) => Some(t),
            None => text(r.get("mcp.resource.name"), "mcp.resource.name")?,
        };
    }
    rec.rule = reason;
    rec.message = text(at(&r, "error"), "error")?;
    // `http.status` is the upstream's only when the gateway did not answer itself.
    if rec.rule.is_none() {
        rec.upstream_status = http_status;
    } else if rec.message.is_none() {
        rec.message = http_status.map(|s| Cow::Owned(format!("gateway answered HTTP {s}")));
    }
    rec.latency_ms = duration_ms(at(&r, "duration"), "duration", Unit::Millis)?;
    out.push(rec);
    Ok(Outcome::Rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::LineErrorKind;

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
