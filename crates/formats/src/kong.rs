//! Kong File Log / HTTP Log entries with the AI MCP Proxy's `ai.mcp` block (README "Input formats").
//! One entry is one HTTP request, which may carry several JSON-RPC calls, so it fans out:
//! - one row per `ai.mcp.audit[]` entry (the ACL decision: `action` allow/deny, rule
//!   `<scope>/<primitive_name>`), joined with the `ai.mcp.rpc[]` entry of the same tool name for
//!   the method, arguments, latency and error;
//! - one allow row per `rpc[]` entry that no audit entry claims (calls proxied without an ACL
//!   audit, e.g. `tools/list` or a deployment without `log_audits`);
//! - with neither (an SSE stream `GET`, a notification's 202, a refusal before any call was
//!   read): one row for the request, like a plain entry.
//!
//! Entries without `ai.mcp` (plain File Log traffic, any Kong version) are requests Kong decided
//! too: one row each, `VERB /path`. A request Kong proxied to the upstream (a non-negative
//! `latencies.proxy`, `source` not `kong`) is an allow whatever the upstream answered (its status is the
//! row's `upstream_status`); one Kong answered itself decides by its status (401/403 deny, 429
//! rate-limited, 5xx error).
//! The caller is `consumer.username` (`consumer.id`), else the consumer an audit entry names
//! (not a `consumer_group`, whose `name` is the group), for every row of the entry.
//! Rows of one entry are ids `<x-kong-request-id>:<index>` when there are several, the bare id
//! when there is one. `latencies.proxy = -1` means the request never reached the upstream: no
//! `upstream_status` then, nor on deny rows. `started_at` is epoch milliseconds.

use std::borrow::Cow;

use crate::common::{at, decision_from_status, duration_ms, status, text, timestamp, Unit};
use crate::error::{LineError, LineErrorKind};
use crate::json::{self, Node};
use crate::Outcome;
use verdict_schema::Decision;
use verdict_schema::DecisionRecord;

/// The `source` value of Kong rows.
pub const SOURCE: &str = "kong";

/// `started_at` and a `latencies` object, or an `ai.mcp` object (a partial entry, which then
/// lacks its timestamp).
pub fn matches(r: &Node<'_>) -> bool {
    (r.get("started_at").is_some_and(|v| !v.is_null())
        && r.get("latencies").and_then(Node::as_object).is_some())
        || at(r, "ai.mcp").and_then(Node::as_object).is_some()
}

/// `plain File Log` for entries without `ai.mcp`.
pub fn shape(r: &Node<'_>) -> Option<&'static str> {
    at(r, "ai.mcp").is_none().then_some("plain File Log")
}

/// The JSON-RPC method of an audited primitive.
fn method_of_primitive(primitive: Option<&str>) -> Option<&'static str> {
    match primitive? {
        "tool" => Some("tools/call"),
        "prompt" => Some("prompts/get"),
        "resource" => Some("resources/read"),
        _ => None,
    }
}

/// Argument keys and values from `rpc[].payload.request`, the JSON-RPC request as text (or an
/// object): its `params.arguments`.
fn args_of_payload<'a>(
    payload: Option<&Node<'a>>,
) -> (Option<Vec<Cow<'a, str>>>, Option<Cow<'a, str>>) {
    let owned = |n: &Node<'_>| {
        let keys = n
            .sorted_keys()
            .map(|ks| ks.into_iter().map(|k| Cow::Owned(k.into_owned())).collect());
        (keys, Some(Cow::Owned(n.to_json())))
    };
    match payload {
        Some(Node::Str(s)) => match json::parse(s) {
            Ok(req) => match at(&req, "params.arguments") {
                Some(a @ Node::Obj(_)) => owned(a),
                _ => (None, None),
            },
            Err(_) => (None, None),
        },
        Some(req @ Node::Obj(_)) => match at(req, "params.arguments") {
            Some(a @ Node::Obj(_)) => owned(a),
            _ => (None, None),
        },
        _ => (None, None),
    }
}

/// Kong's `upstream_status`: a number, `""`, or `"502, 502"` after retries (the last counts).
fn upstream_status(node: Option<&Node<'_>>) -> Result<Option<i32>, LineError> {
    match node {
        Some(Node::Str(s)) if s.contains(',') => {
            let last = s.rsplit(',').next().unwrap_or_default().trim();
            status(Some(&Node::Str(Cow::Borrowed(last))), "upstream_status")
        }
        other => status(other, "upstream_status"),
    }
}

/// What one row is built from.
struct Call<'n, 'a> {
    audit: Option<(usize, &'n Node<'a>)>,
    rpc: Option<(usize, &'n Node<'a>)>,
}

/// Decodes one Kong log entry into a row per audited or proxied call.
///
/// # Errors
/// Invalid JSON, a missing or bad `started_at`, an `audit[].action` other than allow/deny, or
/// a field of the wrong type, each naming the JSON path.
pub fn decode<'a>(line: &'a str, out: &mut Vec<DecisionRecord<'a>>) -> Result<Outcome, LineError> {
    let r = json::object(line)?;
    let empty = Node::Obj(Vec::new());
    let mcp = at(&r, "ai.mcp").unwrap_or(&empty);
    if mcp.as_object().is_none() {
        return Err(LineError::field(
            LineErrorKind::WrongType,
            "ai.mcp",
            format!("expected an object, got {}", mcp.type_name()),
        ));
    }
    let list = |key: &str| -> Result<&[Node<'a>], LineError> {
        match mcp.get(key) {
            None | Some(Node::Null) => Ok(&[]),
            Some(Node::Arr(items)) => Ok(items),
            Some(other) => Err(LineError::field(
                LineErrorKind::WrongType,
                format!("ai.mcp.{key}"),
                format!("expected an array, got {}", other.type_name()),
            )),
        }
    };
    let audits = list("audit")?;
    let rpcs = list("rpc")?;
    let ts = timestamp(r.get("started_at"), "started_at", Unit::Millis)?;
    let response_status = status(at(&r, "response.status"), "response.status")?;
    let never_proxied = at(&r, "latencies.proxy")
        .and_then(Node::as_f64)
        .is_some_and(|p| p < 0.0)
        || r.get("source").and_then(Node::as_str) == Some("kong");

    // Pair each audit entry with the first unclaimed rpc entry of the same tool name.
    let mut claimed = vec![false; rpcs.len()];
    let mut calls: Vec<Call<'_, 'a>> = Vec::new();
    for (i, a) in audits.iter().enumerate() {
        let name = a.get("primitive_name").and_then(Node::as_str);
        let rpc = name.and_then(|n| {
            rpcs.iter().enumerate().find(|(j, rpc)| {
                !claimed[*j] && rpc.get("tool_name").and_then(Node::as_str) == Some(n)
            })
        });
        if let Some((j, _)) = rpc {
            claimed[j] = true;
        }
        calls.push(Call {
            audit: Some((i, a)),
            rpc,
        });
    }
    for (j, rpc) in rpcs.iter().enumerate() {
        if !claimed[j] {
            calls.push(Call {
                audit: None,
                rpc: Some((j, rpc)),
            });
        }
    }
    let fallback = match response_status {
        Some(c) if (200..400).contains(&c) => None,
        code => Some(decision_from_status(code)),
    };
    if calls.is_empty() {
        // A plain request, or a transport request (SSE stream, notification) with no
        // JSON-RPC call in it: one row for the request.
        calls.push(Call {
            audit: None,
            rpc: None,
        });
    }

    let request_id = text(
        at(&r, "response.headers.x-kong-request-id"),
        "response.headers.x-kong-request-id",
    )?
    .or(text(
        at(&r, "request.headers.x-kong-request-id"),
        "request.headers.x-kong-request-id",
    )?);
    let base_id = request_id.unwrap_or_else(|| Cow::Owned(super::stable_event_id(SOURCE, line)));
    let session = text(mcp.get("mcp_session_id"), "ai.mcp.mcp_session_id")?;
    let server = match text(mcp.get("mcp_server_id"), "ai.mcp.mcp_server_id")? {
        Some(s) => Some(s),
        None => text(at(&r, "service.name"), "service.name")?,
    };
    let username = text(at(&r, "consumer.username"), "consumer.username")?;
    let consumer_id = text(at(&r, "consumer.id"), "consumer.id")?;
    // The consumer an audit entry names (unless it names a consumer group) stands for the
    // whole request when Kong logged no top-level consumer.
    let audit_consumer = |a: &Node<'a>| -> (Option<Cow<'a, str>>, Option<Cow<'a, str>>) {
        let c = a.get("consumer");
        let group =
            c.and_then(|c| c.get("identifier")).and_then(Node::as_str) == Some("consumer_group");
        let name = c
            .filter(|_| !group)
            .and_then(|c| c.get("name"))
            .and_then(Node::as_cow);
        (name, c.and_then(|c| c.get("id")).and_then(Node::as_cow))
    };
    let (any_name, any_id) = audits
        .iter()
        .map(audit_consumer)
        .fold((None, None), |(n, i), (n2, i2)| (n.or(n2), i.or(i2)));
    let upstream = if never_proxied {
        None
    } else {
        upstream_status(r.get("upstream_status"))?.or(response_status)
    };
    let client_addr = text(r.get("client_ip"), "client_ip")?;
    let request_latency = duration_ms(
        at(&r, "latencies.request"),
        "latencies.request",
        Unit::Millis,
    )?;
    let http_method = {
        let verb = text(at(&r, "request.method"), "request.method")?;
        let uri = text(at(&r, "request.uri"), "request.uri")?;
        match (verb, uri) {
            (Some(v), Some(u)) => Some(Cow::Owned(format!(
                "{v} {}",
                u.split('?').next().unwrap_or_default()
            ))),
            (v, u) => v.or(u),
        }
    };

    let several = calls.len() > 1;
    let mut rows = Vec::with_capacity(calls.len());
    for (n, call) in calls.iter().enumerate() {
        let id = if several {
            Cow::Owned(format!("{base_id}:{n}"))
        } else {
            base_id.clone()
        };
        let mut rule = None;
        let mut audit_identity = None;
        let mut audit_identity_id = None;
        let decision = match (call.audit, call.rpc) {
            (Some((i, a)), _) => {
                let field = format!("ai.mcp.audit[{i}].action");
                let action = text(a.get("action"), &field)?;
                let scope = text(a.get("scope"), &format!("ai.mcp.audit[{i}].scope"))?;
                let name = text(
                    a.get("primitive_name"),
                    &format!("ai.mcp.audit[{i}].primitive_name"),
                )?;
                rule = match (scope, name) {
                    (Some(s), Some(p)) => Some(Cow::Owned(format!("{s}/{p}"))),
                    (s, p) => s.or(p),
                };
                (audit_identity, audit_identity_id) = audit_consumer(a);
                match action.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    Some("allow" | "allowed") => Decision::Allow,
                    Some("deny" | "denied") => Decision::Deny,
                    Some(other) => {
                        return Err(LineError::field(
                            LineErrorKind::UnknownDecision,
                            field,
                            format!("unknown audit action `{other}` (expected allow or deny)"),
                        ))
                    }
                    None => {
                        return Err(LineError::field(
                            LineErrorKind::MissingField,
                            field,
                            "audit entry without an action",
                        ))
                    }
                }
            }
            // Proxied (the MCP proxy logs rpc[] for calls it let through) unless Kong says it
            // never reached the upstream and answered with a refusal.
            (None, Some(_)) if never_proxied => fallback.unwrap_or(Decision::Allow),
            (None, Some(_)) => Decision::Allow,
            (None, None) if never_proxied => fallback.unwrap_or(Decision::Allow),
            (None, None) => Decision::Allow,
        };
        let mut rec = DecisionRecord::new(id, ts, SOURCE, decision);
        rec.identity = username.clone().or(audit_identity).or(any_name.clone());
        rec.identity_id = consumer_id.clone().or(audit_identity_id).or(any_id.clone());
        rec.session = session.clone();
        rec.server = server.clone();
        rec.client_addr = client_addr.clone();
        rec.rule = rule;
        match call.rpc {
            Some((j, rpc)) => {
                let p = |k: &str| format!("ai.mcp.rpc[{j}].{k}");
                rec.method = text(rpc.get("method"), &p("method"))?;
                let (keys, args) = args_of_payload(at(rpc, "payload.request"));
                rec.arg_keys = keys;
                rec.args = args;
                rec.latency_ms = duration_ms(rpc.get("latency"), &p("latency"), Unit::Millis)?
                    .or(request_latency);
                rec.message = rpc
                    .get("error")
                    .and_then(|e| super::common::text_or_json(Some(e)));
                if rec.method.is_none() && rpc.get("tool_name").is_some() {
                    rec.method = Some(Cow::Borrowed("tools/call"));
                }
                if rec.method.as_deref() == Some("tools/call") {
                    rec.tool = text(rpc.get("tool_name"), &p("tool_name"))?;
                }
            }
            None => rec.latency_ms = request_latency,
        }
        if let Some((i, a)) = call.audit {
            if rec.method.is_none() {
                rec.method = method_of_primitive(a.get("primitive").and_then(Node::as_str))
                    .map(Cow::Borrowed);
            }
            if rec.tool.is_none() && rec.method.as_deref() == Some("tools/call") {
                rec.tool = text(
                    a.get("primitive_name"),
                    &format!("ai.mcp.audit[{i}].primitive_name"),
                )?;
            }
        }
        if call.audit.is_none() && call.rpc.is_none() {
            rec.method = http_method.clone();
            if never_proxied {
                rec.message =
                    response_status.map(|s| Cow::Owned(format!("Kong answered HTTP {s}")));
            }
        }
        if decision == Decision::Allow {
            rec.upstream_status = upstream;
        }
        rows.push(rec);
    }
    out.extend(rows);
    Ok(Outcome::Rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leak;

    const SPEC: &str = r#"{"started_at":1767000000000,"response":{"status":403,"headers":{"x-kong-request-id":"2f69"}},"upstream_status":"","latencies":{"request":2,"proxy":-1},"consumer":{"id":"b2f6","username":"bob"},"ai":{"mcp":{"mcp_server_id":"3710","mcp_session_id":"s-123","audit":[{"primitive_name":"list_users","primitive":"tool","scope":"primitive","action":"deny","consumer":{"id":"b2f6","name":"developer","identifier":"consumer_group"}}]}}}"#;

    fn rows(line: &str) -> Vec<DecisionRecord<'static>> {
        crate::decode_all(crate::Format::Kong, line)
    }

    #[test]
    fn the_spec_example_is_one_deny() {
        let r = rows(SPEC);
        assert_eq!(r.len(), 1);
        let r = &r[0];
        assert_eq!(r.event_id, "2f69");
        assert_eq!(r.ts_micros, 1_767_000_000_000_000);
        assert_eq!(r.identity.as_deref(), Some("bob"));
        assert_eq!(r.identity_id.as_deref(), Some("b2f6"));
        assert_eq!(r.session.as_deref(), Some("s-123"));
        assert_eq!(r.server.as_deref(), Some("3710"));
        assert_eq!(r.method.as_deref(), Some("tools/call"));
        assert_eq!(r.tool.as_deref(), Some("list_users"));
        assert_eq!(r.decision, Decision::Deny);
        assert_eq!(r.rule.as_deref(), Some("primitive/list_users"));
        assert_eq!(r.upstream_status, None);
        assert_eq!(r.latency_ms, Some(2.0));
        assert!(matches(&json::parse(SPEC).unwrap()));
    }

    #[test]
    fn audits_join_rpcs_and_fan_out() {
        let line = r#"{"started_at":1767000000123,"response":{"status":200,"headers":{"x-kong-request-id":"k1"}},"upstream_status":200,"latencies":{"request":40,"proxy":31,"kong":9},"ai":{"mcp":{"rpc":[{"method":"tools/list","id":1,"latency":5},{"method":"tools/call","id":2,"tool_name":"echo","latency":30,"payload":{"request":"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\"hi\",\"loud\":true}}}"}}],"audit":[{"primitive_name":"echo","primitive":"tool","scope":"primitive","action":"allow","consumer":{"id":"c9","name":"carol","identifier":"consumer"}}]}}}"#;
        let r = rows(line);
        assert_eq!(r.len(), 2);
        assert_eq!(
            (
                r[0].event_id.as_ref(),
                r[0].tool.as_deref(),
                r[0].latency_ms
            ),
            ("k1:0", Some("echo"), Some(30.0))
        );
        assert_eq!(r[0].identity.as_deref(), Some("carol"));
        assert_eq!(
            r[0].arg_keys,
            Some(vec![Cow::Borrowed("loud"), Cow::Borrowed("text")])
        );
        assert_eq!(r[0].upstream_status, Some(200));
        assert_eq!(
            (
                r[1].event_id.as_ref(),
                r[1].method.as_deref(),
                r[1].tool.as_deref()
            ),
            ("k1:1", Some("tools/list"), None)
        );
        assert_eq!(r[1].decision, Decision::Allow);
    }

    #[test]
    fn fallbacks_without_audit() {
        let no_audit = SPEC.replace(r#","audit":[{"primitive_name":"list_users","primitive":"tool","scope":"primitive","action":"deny","consumer":{"id":"b2f6","name":"developer","identifier":"consumer_group"}}]"#, "");
        let r = rows(&no_audit);
        assert_eq!((r.len(), r[0].decision), (1, Decision::Deny));
        let r = rows(&no_audit.replace("403", "429"));
        assert_eq!(r[0].decision, Decision::RateLimited);
        // A request with no JSON-RPC call (an SSE stream) and a plain File Log entry Kong
        // proxied are allows.
        let r = rows(
            &no_audit
                .replace("403", "202")
                .replace("\"proxy\":-1", "\"proxy\":3"),
        );
        assert_eq!((r.len(), r[0].decision), (1, Decision::Allow));
        let r = rows(
            r#"{"started_at":1767000000000,"latencies":{"request":1,"proxy":0},"client_ip":"10.0.0.9","request":{"method":"GET","uri":"/x?y=1"},"response":{"status":404}}"#,
        );
        assert_eq!((r.len(), r[0].decision), (1, Decision::Allow));
        assert_eq!(r[0].method.as_deref(), Some("GET /x"));
        assert_eq!(r[0].upstream_status, Some(404));
        assert_eq!(r[0].client_addr.as_deref(), Some("10.0.0.9"));
        let mut out = Vec::new();
        let e = decode(leak(SPEC.replace(r#""deny""#, r#""maybe""#)), &mut out).unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (
                LineErrorKind::UnknownDecision,
                Some("ai.mcp.audit[0].action")
            )
        );
        let e = decode(leak(SPEC.replace("1767000000000", r#""soon""#)), &mut out).unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (LineErrorKind::BadTimestamp, Some("started_at"))
        );
        for bad in [
            r#"{"ai":{"mcp":[]}}"#,
            r#"{"ai":{"mcp":{"audit":{},"rpc":7}}}"#,
            r#"{"started_at":-5,"ai":{"mcp":{"rpc":[1,{"payload":{"request":"[}"}}]}}"#,
        ] {
            let _ = decode(bad, &mut out);
        }
    }
}
