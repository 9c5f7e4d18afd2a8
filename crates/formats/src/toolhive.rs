//! ToolHive audit events (README "Input formats"): slog JSON lines at the audit level
//! (`"level":"INFO+2"`, `"msg":"audit_event"`), one per MCP request the proxy handled, with the
//! outcome ToolHive derived from the HTTP status (403 = Cedar deny). The proxy's other slog lines
//! are skipped as `server_log`, SSE stream openings as `connection`, and the registry API's
//! management events (dotted types such as `source.delete`) as `management`. The event object
//! is also read without the slog envelope (no `msg`), as ToolHive's middleware docs show it.
//! vMCP writes a call's arguments directly under `data.request`; the proxy writes the whole
//! JSON-RPC request there (`data.request.params.arguments`): both fill `arg_keys`.
//! `client_addr` is `source.value` when its `type` is `network`.
//!
//! Outcomes: `success` allow; `denied` deny (401/403, the Cedar authorizer); `error` error (5xx);
//! `failure` error too (a 4xx other than 401/403: the request failed without a policy refusal,
//! and ToolHive does not log the status, so a 429 cannot be told apart); `application_error`
//! (newer versions: a JSON-RPC error inside an HTTP 200) is a deny when its message speaks of
//! authorization (ToolHive vMCP answers a Cedar deny that way, stacklok/toolhive#5827), else error.

use std::borrow::Cow;

use crate::common::{
    args_of, at, duration_ms, event_id, first, text, timestamp, unrecognised, Unit,
};
use crate::error::{LineError, LineErrorKind};
use crate::json::{self, Node};
use crate::{Outcome, Skip};
use verdict_schema::Decision;
use verdict_schema::DecisionRecord;

/// The `source` value of ToolHive rows.
pub const SOURCE: &str = "toolhive";

/// `msg=audit_event` with an `outcome` and a `component` (other programs log `audit_event` too),
/// or the bare event object: `outcome`, `component`, and `source` and `target` objects.
pub fn matches(r: &Node<'_>) -> bool {
    let event = r.get("outcome").and_then(Node::as_str).is_some() && r.get("component").is_some();
    event
        && (r.get("msg").and_then(Node::as_str) == Some("audit_event")
            || (r.get("msg").is_none()
                && r.get("source").and_then(Node::as_object).is_some()
                && r.get("target").and_then(Node::as_object).is_some()))
}

/// `no slog envelope` for a bare event object; `vMCP data.request` for arguments written
/// directly under `data.request`.
pub fn shape(r: &Node<'_>) -> Option<&'static str> {
    if r.get("msg").is_none() {
        Some("no slog envelope")
    } else if vmcp_args(r).is_some() {
        Some("vMCP data.request")
    } else {
        None
    }
}

/// vMCP's `data.request`: the call's arguments themselves, not a JSON-RPC request.
fn vmcp_args<'n, 'a>(r: &'n Node<'a>) -> Option<&'n Node<'a>> {
    at(r, "data.request").filter(|req| {
        req.as_object().is_some()
            && ["jsonrpc", "method", "params", "arguments"]
                .iter()
                .all(|k| req.get(k).is_none())
    })
}

/// Maps a ToolHive `outcome` (with the JSON-RPC error message of an `application_error`).
pub fn decision_of_outcome(outcome: &str, rpc_message: Option<&str>) -> Option<Decision> {
    Some(match outcome.to_ascii_lowercase().as_str() {
        "success" => Decision::Allow,
        "denied" => Decision::Deny,
        "error" | "failure" => Decision::Error,
        "application_error" => {
            if rpc_message.is_some_and(speaks_of_authorization) {
                Decision::Deny
            } else {
                Decision::Error
            }
        }
        _ => return None,
    })
}

fn speaks_of_authorization(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "unauthorized",
        "not authorized",
        "forbidden",
        "denied",
        "permission",
        "not allowed",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// The first of `keys` (dotted paths) holding a value, with the key.
fn pick<'n, 'a>(r: &'n Node<'a>, keys: &[&'static str]) -> Option<(&'static str, &'n Node<'a>)> {
    keys.iter().find_map(|k| at(r, k).map(|v| (*k, v)))
}

const HTTP_VERBS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Decodes one ToolHive slog line.
///
/// # Errors
/// Invalid JSON, a missing or bad `logged_at`, a missing or unknown `outcome`, or a field of the
/// wrong type, each naming the field.
pub fn decode<'a>(line: &'a str, out: &mut Vec<DecisionRecord<'a>>) -> Result<Outcome, LineError> {
    let r = json::object(line)?;
    match r.get("msg").and_then(Node::as_str) {
        Some("audit_event") => {}
        // ToolHive's other slog lines (startup, proxy, authz debug) are not decisions.
        Some(_) => return Ok(Outcome::Skipped(Skip::ServerLog)),
        None if matches(&r) => {}
        None => {
            return Err(unrecognised(
                &r,
                "neither a ToolHive slog line (`msg`) nor an audit event (`outcome`, \
                 `component`, `source`, `target`)",
            ))
        }
    }
    let kind = text(r.get("type"), "type")?;
    if kind.as_deref() == Some("sse_connection") {
        // Opening an SSE stream is logged at once and always `success`: not a decision.
        return Ok(Outcome::Skipped(Skip::Connection));
    }
    if kind.as_deref().is_some_and(|k| k.contains('.')) {
        // The registry API's management events (`source.delete` ...): not tool calls.
        return Ok(Outcome::Skipped(Skip::Management));
    }
    // `logged_at` is when the event happened; older builds wrote `loggedAt`; slog's `time`
    // (when the line was written) is the last resort.
    let ts = match pick(&r, &["logged_at", "loggedAt", "time"]) {
        Some((key, t)) => timestamp(Some(t), key, Unit::Auto)?,
        None => timestamp(None, "logged_at", Unit::Auto)?,
    };
    let rpc_message = text(
        at(&r, "metadata.extra.jsonrpc_error_message"),
        "metadata.extra.jsonrpc_error_message",
    )?;
    let outcome = match text(r.get("outcome"), "outcome")? {
        Some(o) => o,
        None => {
            return Err(LineError::field(
                LineErrorKind::MissingField,
                "outcome",
                "an audit event without an outcome",
            ))
        }
    };
    let Some(decision) = decision_of_outcome(&outcome, rpc_message.as_deref()) else {
        return Err(LineError::field(
            LineErrorKind::UnknownDecision,
            "outcome",
            format!("unknown outcome `{outcome}` (expected success, failure, error or denied)"),
        ));
    };
    let id = match text(at(&r, "source.extra.request_id"), "source.extra.request_id")? {
        Some(id) => Some(id),
        None => match pick(&r, &["audit_id", "metadata.auditId"]) {
            Some((key, n)) => text(Some(n), key)?,
            None => None,
        },
    };
    let mut rec = DecisionRecord::new(event_id(id, SOURCE, line), ts, SOURCE, decision);
    rec.identity = text(at(&r, "subjects.user"), "subjects.user")?;
    rec.identity_id = text(at(&r, "subjects.user_id"), "subjects.user_id")?;
    rec.session = text(at(&r, "source.extra.session_id"), "source.extra.session_id")?;
    if at(&r, "source.type").and_then(Node::as_str) == Some("network") {
        rec.client_addr = text(at(&r, "source.value"), "source.value")?;
    }
    rec.server = text(r.get("component"), "component")?;
    let method = text(at(&r, "target.method"), "target.method")?;
    rec.method = match method {
        // The event type says it was a tool call even where the HTTP verb stands in `method`.
        Some(m) if HTTP_VERBS.contains(&m.as_ref()) && kind.as_deref() == Some("mcp_tool_call") => {
            Some(Cow::Borrowed("tools/call"))
        }
        // Without a parsed MCP method ToolHive leaves the HTTP verb there.
        Some(m) if HTTP_VERBS.contains(&m.as_ref()) => {
            match text(at(&r, "target.endpoint"), "target.endpoint")? {
                Some(p) => Some(Cow::Owned(format!("{m} {p}"))),
                None => Some(m),
            }
        }
        m => m,
    };
    if rec.method.as_deref() == Some("tools/call") || kind.as_deref() == Some("mcp_tool_call") {
        rec.tool = match text(at(&r, "target.name"), "target.name")? {
            Some(t) => Some(t),
            None => text(at(&r, "target.resource_id"), "target.resource_id")?,
        };
    }
    let (keys, args) = args_of(vmcp_args(&r).or_else(|| {
        first(
            &r,
            &["data.request.params.arguments", "data.request.arguments"],
        )
    }));
    rec.arg_keys = keys;
    rec.args = args;
    if outcome == "application_error" {
        rec.message = rpc_message;
        rec.rule = text(
            at(&r, "metadata.extra.jsonrpc_error_code"),
            "metadata.extra.jsonrpc_error_code",
        )?
        .map(|c| Cow::Owned(format!("jsonrpc_error_code {c}")));
    }
    rec.latency_ms = duration_ms(
        at(&r, "metadata.extra.duration_ms"),
        "metadata.extra.duration_ms",
        Unit::Millis,
    )?;
    out.push(rec);
    Ok(Outcome::Rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"{"time":"2026-11-05T09:00:00.1234567Z","level":"INFO+2","msg":"audit_event","audit_id":"9b1e","type":"mcp_tool_call","logged_at":"2026-11-05T09:00:00.123456Z","outcome":"denied","component":"github","source":{"type":"network","value":"10.0.0.5","extra":{"request_id":"r1","session_id":"s1"}},"subjects":{"user":"alice","user_id":"u-1"},"target":{"type":"tool","name":"delete_repo","method":"tools/call","endpoint":"/mcp"},"metadata":{"extra":{"duration_ms":12,"transport":"http"}},"data":{"request":{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"delete_repo","arguments":{"repo":"x","force":true}}}}}"#;

    fn one(line: &str) -> DecisionRecord<'static> {
        crate::decode_one(crate::Format::ToolHive, line)
    }

    #[test]
    fn the_spec_example_maps_every_column() {
        let r = one(SPEC);
        assert_eq!(r.event_id, "r1");
        assert_eq!(r.ts_micros, 1_793_869_200_123_456);
        assert_eq!(r.identity.as_deref(), Some("alice"));
        assert_eq!(r.identity_id.as_deref(), Some("u-1"));
        assert_eq!(r.session.as_deref(), Some("s1"));
        assert_eq!(r.server.as_deref(), Some("github"));
        assert_eq!(r.method.as_deref(), Some("tools/call"));
        assert_eq!(r.tool.as_deref(), Some("delete_repo"));
        assert_eq!(
            r.arg_keys,
            Some(vec![Cow::Borrowed("force"), Cow::Borrowed("repo")])
        );
        assert_eq!(r.args.as_deref(), Some(r#"{"repo":"x","force":true}"#));
        assert_eq!(r.decision, Decision::Deny);
        assert_eq!(r.latency_ms, Some(12.0));
        assert_eq!(r.upstream_status, None);
        assert!(matches(&json::parse(SPEC).unwrap()));
    }

    #[test]
    fn outcomes_map_to_decisions() {
        let with = |o: &str| SPEC.replace("\"denied\"", &format!("\"{o}\""));
        assert_eq!(one(&with("success")).decision, Decision::Allow);
        assert_eq!(one(&with("failure")).decision, Decision::Error);
        assert_eq!(one(&with("error")).decision, Decision::Error);
        let app = with("application_error").replace(
            "\"transport\":\"http\"",
            "\"jsonrpc_error_code\":-32602,\"jsonrpc_error_message\":\"Unauthorized: tool call denied by policy\"",
        );
        let r = one(&app);
        assert_eq!(r.decision, Decision::Deny);
        assert_eq!(r.rule.as_deref(), Some("jsonrpc_error_code -32602"));
        let e = decode(&with("maybe"), &mut Vec::new()).unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (LineErrorKind::UnknownDecision, Some("outcome"))
        );
    }

    #[test]
    fn other_lines_are_skipped_and_ids_fall_back() {
        let sse = SPEC.replace("\"mcp_tool_call\"", "\"sse_connection\"");
        let mut out = Vec::new();
        decode(
            r#"{"time":"2026-11-05T09:00:00Z","level":"INFO","msg":"MCP server started","port":8080}"#,
            &mut out,
        )
        .unwrap();
        decode(&sse, &mut out).unwrap();
        assert!(out.is_empty());
        let line = SPEC.replace("\"request_id\":\"r1\",", "");
        let r = one(&line);
        assert_eq!(r.event_id, "9b1e");
        let line = SPEC
            .replace("\"method\":\"tools/call\"", "\"method\":\"GET\"")
            .replace("\"mcp_tool_call\"", "\"http_request\"");
        let r = one(&line);
        assert_eq!((r.method.as_deref(), r.tool), (Some("GET /mcp"), None));
        let e = decode(
            &SPEC.replace("2026-11-05T09:00:00.123456Z", "yesterday"),
            &mut out,
        )
        .unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (LineErrorKind::BadTimestamp, Some("logged_at"))
        );
    }
}
