//! Tyk MCP proxy access logs (README "Input formats"): logrus JSON lines with
//! `prefix=access-log`, the base fields (`status`, `latency_total`, `upstream_latency`,
//! `api_id`, `api_name`, `api_key` hashed) and, for MCP APIs, `api_type=mcp`, `mcp_method`,
//! `mcp_primitive_type`, `mcp_primitive_name` and `mcp_error_code`. Tyk's default access log is
//! logrus *text* (`time="..." level=info api_id=... prefix=access-log status=200`), which the
//! envelope step turns into the same flat object. Application-log lines are skipped as
//! `server_log`; access-log lines of other APIs are requests Tyk decided too (`VERB /path`), a
//! `429` with `response_code_details=session_rate_limited` (flag `RLT`) a rate limit.
//!
//! Decision: `mcp_error_code` is present only when the gateway itself failed the request:
//! `-32001` (authentication required) and `-32002` (access denied) deny, `-32003` (rate limit)
//! rate_limited, `-32004` (upstream error), `-32600` and `-32603` error; the gateway answered, so
//! `upstream_status` is null. Any other code falls back on the status. Without a code the
//! upstream answered: `upstream_status` is `status`, and the decision is the status fallback
//! (2xx/3xx allow, 401/403 deny, 429 rate_limited, 5xx error) for Tyk builds that write no code.
//! `latency_total` is in milliseconds; Tyk writes no request id, so ids are the stable hash. The
//! identity is the (obfuscated) `api_key`, except Tyk's all-zero placeholder of keyless APIs.

use std::borrow::Cow;

use crate::common::{decision_from_status, duration_ms, event_id, status, text, timestamp, Unit};
use crate::error::{LineError, LineErrorKind};
use crate::json::{self, Node};
use crate::{Outcome, Skip};
use verdict_schema::Decision;
use verdict_schema::DecisionRecord;

/// The `source` value of Tyk rows.
pub const SOURCE: &str = "tyk";

/// `prefix=access-log` and an `mcp_method` or an `api_id`.
pub fn matches(r: &Node<'_>) -> bool {
    r.get("prefix").and_then(Node::as_str) == Some("access-log")
        && (r.get("mcp_method").is_some_and(|m| !m.is_null()) || r.get("api_id").is_some())
}

/// `REST API access log` for lines without MCP fields.
pub fn shape(r: &Node<'_>) -> Option<&'static str> {
    (r.get("mcp_method").is_none() && r.get("api_type").and_then(Node::as_str) != Some("mcp"))
        .then_some("REST API access log")
}

/// The decision and Tyk's meaning of a gateway `mcp_error_code`; `None` for codes Tyk does not
/// document.
pub fn decision_of_error_code(code: i64) -> Option<(Decision, &'static str)> {
    Some(match code {
        -32001 => (Decision::Deny, "Authentication required"),
        -32002 => (Decision::Deny, "Access denied"),
        -32003 => (Decision::RateLimited, "Rate limit exceeded"),
        -32004 => (Decision::Error, "Upstream error"),
        -32600 => (Decision::Error, "Invalid request"),
        -32601 => (Decision::Error, "Method not found"),
        -32602 => (Decision::Error, "Invalid params"),
        -32700 => (Decision::Error, "Parse error"),
        -32603 => (Decision::Error, "Internal error"),
        _ => return None,
    })
}

/// Decodes one Tyk log line.
///
/// # Errors
/// Invalid JSON, a missing or bad `time`, an `mcp_error_code` that is not an integer, or a field
/// of the wrong type, each naming the field.
pub fn decode<'a>(line: &'a str, out: &mut Vec<DecisionRecord<'a>>) -> Result<Outcome, LineError> {
    let r = json::object(line)?;
    if r.get("prefix").and_then(Node::as_str) != Some("access-log") {
        // Tyk's application log (startup, API loading, errors) shares the stream.
        return Ok(Outcome::Skipped(Skip::ServerLog));
    }
    let ts = timestamp(r.get("time"), "time", Unit::Auto)?;
    let http_status = status(r.get("status"), "status")?;
    let code = match r.get("mcp_error_code") {
        None | Some(Node::Null) => None,
        Some(Node::Str(s)) if s.trim().is_empty() => None,
        Some(n) => match n.as_f64() {
            Some(v) if v.fract() == 0.0 && v.abs() < 1e9 => Some(v as i64),
            _ => {
                return Err(LineError::field(
                    LineErrorKind::WrongType,
                    "mcp_error_code",
                    format!("expected a JSON-RPC error code, got {}", n.to_json()),
                ))
            }
        },
    };
    let (decision, rule, message, upstream) = match code {
        Some(c) => {
            let rule = Some(Cow::Owned(format!("mcp_error_code {c}")));
            match decision_of_error_code(c) {
                Some((d, meaning)) => (d, rule, Some(Cow::Borrowed(meaning)), None),
                None => (decision_from_status(http_status), rule, None, None),
            }
        }
        None => {
            let decision = decision_from_status(http_status);
            let details = text(r.get("response_code_details"), "response_code_details")?;
            match details {
                Some(d) if decision != Decision::Allow => (decision, Some(d), None, None),
                _ => (decision, None, None, http_status),
            }
        }
    };
    let mut rec = DecisionRecord::new(event_id(None, SOURCE, line), ts, SOURCE, decision);
    // Tyk writes the key obfuscated; all zeros is its placeholder for a keyless API.
    rec.identity = text(r.get("api_key"), "api_key")?.filter(|k| !k.bytes().all(|b| b == b'0'));
    rec.client_addr = match text(r.get("client_ip"), "client_ip")? {
        Some(ip) => Some(ip),
        None => text(r.get("remote_addr"), "remote_addr")?,
    };
    rec.server = match text(r.get("api_name"), "api_name")? {
        Some(name) => Some(name),
        None => text(r.get("api_id"), "api_id")?,
    };
    rec.method = text(r.get("mcp_method"), "mcp_method")?;
    let primitive = text(r.get("mcp_primitive_type"), "mcp_primitive_type")?;
    if rec.method.as_deref() == Some("tools/call")
        || (rec.method.is_none() && primitive.as_deref() == Some("tool"))
    {
        rec.tool = text(r.get("mcp_primitive_name"), "mcp_primitive_name")?;
    }
    if rec.method.is_none() {
        let verb = text(r.get("method"), "method")?;
        let path = text(r.get("path"), "path")?;
        rec.method = match (verb, path) {
            (Some(v), Some(p)) => Some(Cow::Owned(format!("{v} {p}"))),
            (v, p) => v.or(p),
        };
    }
    rec.rule = rule;
    rec.message = message;
    rec.upstream_status = upstream;
    rec.latency_ms = duration_ms(r.get("latency_total"), "latency_total", Unit::Millis)?;
    out.push(rec);
    Ok(Outcome::Rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"{"level":"info","msg":"","prefix":"access-log","time":"2026-11-05T10:00:00Z","api_id":"a1","api_name":"weather-mcp","api_key":"00000000e3b0c442","api_type":"mcp","client_ip":"10.0.0.7","host":"gw","method":"POST","path":"/mcp","status":200,"latency_total":41,"upstream_latency":37,"mcp_method":"tools/call","mcp_primitive_type":"tool","mcp_primitive_name":"get_forecast"}"#;

    fn one(line: &str) -> DecisionRecord<'static> {
        crate::decode_one(crate::Format::Tyk, line)
    }

    #[test]
    fn a_forwarded_call_is_an_allow_with_the_upstream_status() {
        let r = one(OK);
        assert_eq!(r.event_id, crate::stable_event_id(SOURCE, OK));
        assert_eq!(r.ts_micros, 1_793_872_800_000_000);
        assert_eq!(r.identity.as_deref(), Some("00000000e3b0c442"));
        assert_eq!(r.server.as_deref(), Some("weather-mcp"));
        assert_eq!(r.method.as_deref(), Some("tools/call"));
        assert_eq!(r.tool.as_deref(), Some("get_forecast"));
        assert_eq!(r.decision, Decision::Allow);
        assert_eq!(r.upstream_status, Some(200));
        assert_eq!(r.latency_ms, Some(41.0));
        assert!(matches(&json::parse(OK).unwrap()));
    }

    #[test]
    fn gateway_error_codes_win_over_the_status() {
        let with = |code: i64, st: u16| {
            OK.replace(
                "\"status\":200",
                &format!("\"status\":{st},\"mcp_error_code\":{code}"),
            )
        };
        let line = with(-32002, 403);
        let r = one(&line);
        assert_eq!(
            (
                r.decision,
                r.upstream_status,
                r.rule.as_deref(),
                r.message.as_deref()
            ),
            (
                Decision::Deny,
                None,
                Some("mcp_error_code -32002"),
                Some("Access denied")
            )
        );
        assert_eq!(one(&with(-32001, 401)).decision, Decision::Deny);
        assert_eq!(one(&with(-32003, 429)).decision, Decision::RateLimited);
        assert_eq!(one(&with(-32004, 502)).decision, Decision::Error);
        assert_eq!(one(&with(-32600, 400)).decision, Decision::Error);
        assert_eq!(one(&with(-32603, 500)).decision, Decision::Error);
        // An undocumented code falls back on the status.
        assert_eq!(one(&with(-32099, 429)).decision, Decision::RateLimited);
        let e = decode(
            &OK.replace("\"status\":200", "\"mcp_error_code\":\"x\""),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("mcp_error_code"));
    }

    #[test]
    fn other_lines_are_skipped() {
        let mut out = Vec::new();
        decode(
            r#"{"level":"info","msg":"API loaded","prefix":"main","time":"2026-11-05T10:00:00Z"}"#,
            &mut out,
        )
        .unwrap();
        assert!(out.is_empty());
        // A REST API's access line is a request Tyk decided too.
        let r = one(
            r#"{"level":"info","prefix":"access-log","time":"2026-11-05T10:00:00Z","api_id":"rest","method":"POST","path":"/orders","status":429,"response_code_details":"session_rate_limited"}"#,
        );
        assert_eq!(r.decision, Decision::RateLimited);
        assert_eq!(r.method.as_deref(), Some("POST /orders"));
        assert_eq!(r.rule.as_deref(), Some("session_rate_limited"));
        let e = decode(&OK.replace("2026-11-05T10:00:00Z", "10:00"), &mut out).unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (LineErrorKind::BadTimestamp, Some("time"))
        );
    }
}
