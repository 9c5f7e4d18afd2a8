//! IBM ContextForge (`mcp-context-forge`) JSON logs. The gateway logs through python-json-logger
//! (`asctime`, `name`, `levelname`, `message`, plus the structured logger's extras); four kinds
//! of record carry a decision, each detected by its keys:
//! - `access log` (`name=uvicorn.access`): `"<addr> - \"GET /path HTTP/1.1\" 401"` in
//!   `message`, a request the gateway answered: decided by the status (401/403 deny, 429
//!   rate-limited, 5xx error, else allow); the address goes to `client_addr`.
//! - `security event` (content security, auth failures): `action` `blocked` (deny) or an
//!   allowing action, `violation_type` (the rule), `user_hash` (the identity, pseudonymous),
//!   `correlation_id` (the event id).
//! - `structured event` (the structured logger's `category`/`security_event_type` with
//!   `correlation_id`): `category=authorization`, a 401/403 `response_status_code` or
//!   `success:false` deny, a 429 rate-limited; `user_email` is the identity, a tool
//!   `resource_name` the tool.
//! - `plugin violation` (the webhook notification plugin's payloads): `event` `violation` deny,
//!   or rate-limited when `violation.code` is `RATE_LIMIT`; `tool_success` allow, `tool_error`
//!   error; `user` is the identity, `metadata.tool_name` the tool, `server_id` the server.
//!
//! Every other line (`Registered gateway ...`) is the gateway's own message, skipped as
//! `server_log`. `asctime` has no zone and is read as UTC.

use std::borrow::Cow;

use crate::common::{
    at, decision_from_status, duration_ms, event_id, first, naive_utc_timestamp, status, text,
    unrecognised, Unit,
};
use crate::error::LineError;
use crate::json::{self, Node};
use crate::{Outcome, Skip};
use verdict_schema::Decision;
use verdict_schema::DecisionRecord;

/// The `source` value of ContextForge rows.
pub const SOURCE: &str = "contextforge";

/// The fields that identify ContextForge's records.
pub const SIGNATURE: &str =
    "asctime + levelname + name mcpgateway.*/uvicorn.*, or plugin=*Plugin + event, \
     or violation_type + action + correlation_id, or correlation_id + category/security_event_type";

/// Which kind of ContextForge record one line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Access,
    Security,
    Structured,
    Plugin,
    Other,
}

fn kind(r: &Node<'_>) -> Option<Kind> {
    let name = r.get("name").and_then(Node::as_str);
    if r.get("plugin")
        .and_then(Node::as_str)
        .is_some_and(|p| p.ends_with("Plugin"))
        && r.get("event").is_some()
    {
        return Some(Kind::Plugin);
    }
    if r.get("violation_type").is_some()
        && r.get("action").is_some()
        && r.get("correlation_id").is_some()
    {
        return Some(Kind::Security);
    }
    if r.get("correlation_id").is_some()
        && (r.get("security_event_type").is_some() || r.get("category").is_some())
    {
        return Some(Kind::Structured);
    }
    if r.get("asctime").is_some() && r.get("levelname").is_some() {
        return match name {
            Some("uvicorn.access") => Some(Kind::Access),
            Some(n) if n.starts_with("mcpgateway") || n.starts_with("uvicorn") => Some(Kind::Other),
            _ => None,
        };
    }
    None
}

/// See [`SIGNATURE`].
pub fn matches(r: &Node<'_>) -> bool {
    kind(r).is_some()
}

/// The kind of record, as named in the module documentation.
pub fn shape(r: &Node<'_>) -> Option<&'static str> {
    Some(match kind(r)? {
        Kind::Access => "access log",
        Kind::Security => "security event",
        Kind::Structured => "structured event",
        Kind::Plugin => "plugin violation",
        Kind::Other => return None,
    })
}

/// Decodes one ContextForge log line.
///
/// # Errors
/// Invalid JSON, a decision without a timestamp, an access line whose message is not an access
/// line, or a field of the wrong type, each naming the field.
pub fn decode<'a>(line: &'a str, out: &mut Vec<DecisionRecord<'a>>) -> Result<Outcome, LineError> {
    let r = json::object(line)?;
    let rec = match kind(&r) {
        Some(Kind::Access) => access(&r, line)?,
        Some(Kind::Security) => security(&r, line)?,
        Some(Kind::Structured) => structured(&r, line)?,
        Some(Kind::Plugin) => match plugin(&r, line)? {
            Some(rec) => rec,
            None => return Ok(Outcome::Skipped(Skip::ServerLog)),
        },
        Some(Kind::Other) => return Ok(Outcome::Skipped(Skip::ServerLog)),
        None => {
            return Err(unrecognised(
                &r,
                "not a ContextForge record (access line, security event, structured event, \
                 plugin payload or gateway message)",
            ))
        }
    };
    out.push(rec);
    Ok(Outcome::Rows)
}

/// The record's time: RFC 3339 `timestamp`, else `asctime` (no zone, UTC).
fn ts(r: &Node<'_>) -> Result<i64, LineError> {
    match r.get("timestamp") {
        Some(t) if !t.is_null() => naive_utc_timestamp(Some(t), "timestamp"),
        _ => naive_utc_timestamp(r.get("asctime"), "asctime"),
    }
}

/// `127.0.0.1:43926 - "GET /version HTTP/1.1" 401`.
fn access<'a>(r: &Node<'a>, line: &'a str) -> Result<DecisionRecord<'a>, LineError> {
    let ts = ts(r)?;
    let message = text(r.get("message"), "message")?.unwrap_or_default();
    let parsed = (|| {
        let (addr, rest) = message.split_once(" - \"")?;
        let (request, tail) = rest.rsplit_once('"')?;
        let code: i32 = tail.trim().parse().ok()?;
        let mut parts = request.split(' ');
        let verb = parts.next()?;
        let path = parts.next()?;
        Some((addr.to_string(), format!("{verb} {path}"), code))
    })();
    let Some((addr, method, code)) = parsed else {
        return Err(unrecognised(
            r,
            "a uvicorn.access line whose message is not `<addr> - \"VERB /path HTTP/x\" status`",
        ));
    };
    let decision = match decision_from_status(Some(code)) {
        Decision::Unknown => Decision::Allow,
        d => d,
    };
    let mut rec = DecisionRecord::new(event_id(None, SOURCE, line), ts, SOURCE, decision);
    rec.client_addr = Some(Cow::Owned(addr));
    rec.method = Some(Cow::Owned(method));
    if decision == Decision::Allow {
        rec.upstream_status = Some(code);
    } else {
        rec.message = Some(Cow::Owned(format!("gateway answered HTTP {code}")));
    }
    Ok(rec)
}

/// A content-security or authentication event with an `action`.
fn security<'a>(r: &Node<'a>, line: &'a str) -> Result<DecisionRecord<'a>, LineError> {
    let ts = ts(r)?;
    let action = text(r.get("action"), "action")?;
    let decision = match action.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("blocked" | "block" | "denied" | "deny" | "rejected") => Decision::Deny,
        Some("allowed" | "allow" | "logged" | "warned" | "warn") => Decision::Allow,
        Some("rate_limited") => Decision::RateLimited,
        _ => Decision::Unknown,
    };
    let id = text(r.get("correlation_id"), "correlation_id")?;
    let mut rec = DecisionRecord::new(event_id(id, SOURCE, line), ts, SOURCE, decision);
    rec.identity = match text(r.get("user_email"), "user_email")? {
        Some(u) => Some(u),
        None => text(r.get("user_hash"), "user_hash")?,
    };
    rec.rule = text(r.get("violation_type"), "violation_type")?;
    rec.message = text(r.get("message"), "message")?;
    Ok(rec)
}

/// A structured-logger event (`category`, `security_event_type`, `response_status_code` ...).
fn structured<'a>(r: &Node<'a>, line: &'a str) -> Result<DecisionRecord<'a>, LineError> {
    let ts = ts(r)?;
    let code = status(r.get("response_status_code"), "response_status_code")?;
    let category = text(r.get("category"), "category")?;
    let succeeded = r.get("success").and_then(Node::as_bool);
    let access_check = matches!(
        category.as_deref(),
        Some("authorization" | "authentication")
    );
    let decision = match code {
        Some(429) => Decision::RateLimited,
        Some(401 | 403) => Decision::Deny,
        Some(c) if c >= 500 => Decision::Error,
        Some(c) if c < 400 && succeeded != Some(false) => Decision::Allow,
        _ if succeeded == Some(false) => Decision::Deny,
        _ if access_check && succeeded != Some(true) => Decision::Deny,
        _ => Decision::Allow,
    };
    let id = text(r.get("correlation_id"), "correlation_id")?;
    let mut rec = DecisionRecord::new(event_id(id, SOURCE, line), ts, SOURCE, decision);
    rec.identity = match text(r.get("user_email"), "user_email")? {
        Some(u) => Some(u),
        None => text(r.get("user_id"), "user_id")?,
    };
    rec.identity_id = text(r.get("user_id"), "user_id")?;
    let resource_type = text(r.get("resource_type"), "resource_type")?;
    if resource_type.as_deref() == Some("tool") {
        rec.method = Some(Cow::Borrowed("tools/call"));
        rec.tool = text(first(r, &["resource_name", "resource_id"]), "resource_name")?;
    } else {
        let verb = text(r.get("request_method"), "request_method")?;
        let path = text(r.get("request_path"), "request_path")?;
        rec.method = match (verb, path) {
            (Some(v), Some(p)) => Some(Cow::Owned(format!("{v} {p}"))),
            (v, p) => v.or(p),
        };
    }
    rec.rule = match text(r.get("security_event_type"), "security_event_type")? {
        Some(t) => Some(t),
        None => text(r.get("error_type"), "error_type")?,
    };
    rec.message = match text(r.get("error_message"), "error_message")? {
        Some(m) => Some(m),
        None => text(r.get("message"), "message")?,
    };
    rec.latency_ms = duration_ms(r.get("duration_ms"), "duration_ms", Unit::Millis)?;
    if decision == Decision::Allow {
        rec.upstream_status = code;
    }
    Ok(rec)
}

/// A plugin notification payload; `None` for events that decide nothing.
fn plugin<'a>(r: &Node<'a>, line: &'a str) -> Result<Option<DecisionRecord<'a>>, LineError> {
    let event = text(r.get("event"), "event")?;
    let code = text(at(r, "violation.code"), "violation.code")?;
    let decision = match event.as_deref() {
        Some("violation") if code.as_deref().is_some_and(|c| c.contains("RATE_LIMIT")) => {
            Decision::RateLimited
        }
        Some("violation") => Decision::Deny,
        Some("tool_success") => Decision::Allow,
        Some("tool_error") => Decision::Error,
        _ => return Ok(None),
    };
    let ts = naive_utc_timestamp(r.get("timestamp"), "timestamp")?;
    let id = text(r.get("request_id"), "request_id")?;
    let mut rec = DecisionRecord::new(event_id(id, SOURCE, line), ts, SOURCE, decision);
    rec.identity = text(r.get("user"), "user")?;
    rec.server = text(r.get("server_id"), "server_id")?;
    rec.tool = text(at(r, "metadata.tool_name"), "metadata.tool_name")?;
    if rec.tool.is_some() {
        rec.method = Some(Cow::Borrowed("tools/call"));
    }
    rec.rule = code;
    rec.message = text(at(r, "violation.reason"), "violation.reason")?;
    Ok(Some(rec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;

    #[test]
    fn each_kind_of_record() {
        let access = r#"{"asctime":"2026-11-09 08:00:01,250","name":"uvicorn.access","levelname":"INFO","message":"10.1.2.3:5050 - \"POST /rpc HTTP/1.1\" 403"}"#;
        let r = crate::decode_one(Format::ContextForge, access);
        assert_eq!(r.decision, Decision::Deny);
        assert_eq!(r.method.as_deref(), Some("POST /rpc"));
        assert_eq!(r.client_addr.as_deref(), Some("10.1.2.3:5050"));
        assert_eq!(
            verdict_schema::time::format_micros(r.ts_micros),
            "2026-11-09T08:00:01.250000Z"
        );
        let violation = r#"{"event":"violation","plugin":"WebhookNotificationPlugin","timestamp":"2026-11-09T08:00:02Z","request_id":"q-1","user":"lee@example.org","server_id":"srv-a","violation":{"reason":"Too many calls","code":"RATE_LIMIT"},"metadata":{"tool_name":"search"}}"#;
        let r = crate::decode_one(Format::ContextForge, violation);
        assert_eq!(r.decision, Decision::RateLimited);
        assert_eq!(r.rule.as_deref(), Some("RATE_LIMIT"));
        assert_eq!(r.tool.as_deref(), Some("search"));
        let chatter = r#"{"asctime":"2026-11-09 08:00:00,000","name":"mcpgateway.gateway_service","levelname":"INFO","message":"Registered gateway: a"}"#;
        let mut out = Vec::new();
        assert_eq!(
            Format::ContextForge.decode(chatter, &mut out).unwrap(),
            Outcome::Skipped(Skip::ServerLog)
        );
    }
}
