//! OPA decision logs (README "Input formats"): EventV1 objects, from the console logger (one
//! logrus line each, `msg=Decision Log`) or from the upload plugin (gzip JSON arrays, fanned out
//! by the caller). Who called and which tool live inside `input`, wherever the policy's author put
//! them: the defaults below cover opa-envoy `input.attributes`, MCP `parsed_body` and common flat
//! layouts, and a user mapping (`base = "opa"`) overrides any column.
//!
//! `requested_by` is the address of the client that asked OPA (`127.0.0.1:34396`), never an
//! identity: it goes to `client_addr`. The identity is the principal in `input` (a JWT `sub`
//! in Envoy's metadata, `input.user` ...) or, when the policy resolved it, in `result`
//! (`result.user_key` ...). opa-envoy builds before the `path` field log only `query`
//! (`data.envoy.authz.allow`), which becomes the rule as a path (`envoy/authz/allow`). Deny
//! reasons the policy returns (a non-empty `deny`/`reasons` set, the `x-ext-auth-deny-reason`
//! header opa-envoy policies set) go into the rule. OPA's other console lines (server start,
//! bundle activation, debug messages, all with a `msg`) are skipped as `server_log`.

use std::borrow::Cow;
use std::sync::LazyLock;

use crate::common::{
    args_of, at, duration_ms, event_id, text, text_or_json, timestamp, unrecognised, Unit,
};
use crate::error::LineError;
use crate::json::{self, Node, Path};
use crate::{Outcome, Skip};
use verdict_schema::Decision;
use verdict_schema::DecisionRecord;

/// The `source` value of OPA rows.
pub const SOURCE: &str = "opa";

/// Where the caller may be, tried in order.
pub const IDENTITY_PATHS: &[&str] = &[
    r#"input.attributes.metadataContext.filterMetadata["envoy.filters.http.jwt_authn"].*.sub"#,
    r#"input.attributes.metadata_context.filter_metadata["envoy.filters.http.jwt_authn"].*.sub"#,
    "input.identity",
    "input.principal",
    "input.user",
    "input.subject",
    "input.token.sub",
    "input.token.payload.sub",
    "input.parsed_token.sub",
    "input.jwt.sub",
    "input.claims.sub",
    "result.user_key",
    "result.user",
    "result.username",
    "result.subject",
    "result.principal",
    "result.identity",
];
/// Where the MCP session may be.
pub const SESSION_PATHS: &[&str] = &[
    r#"input.attributes.request.http.headers["mcp-session-id"]"#,
    "input.session_id",
    "input.session",
];
/// Where the upstream server may be.
pub const SERVER_PATHS: &[&str] = &[
    "input.server",
    "input.mcp_server",
    "input.attributes.request.http.host",
];
/// Where the JSON-RPC method may be.
pub const METHOD_PATHS: &[&str] = &[
    "input.parsed_body.method",
    "input.method",
    "input.mcp.method",
];
/// Where the tool name may be.
pub const TOOL_PATHS: &[&str] = &[
    "input.parsed_body.params.name",
    "input.tool_calls[0].tool",
    "input.tool",
    "input.tool_name",
    "input.mcp.tool",
];
/// Where the tool's arguments may be.
pub const ARGS_PATHS: &[&str] = &[
    "input.parsed_body.params.arguments",
    "input.tool_calls[0].arguments",
    "input.arguments",
    "input.args",
];

static PATHS: LazyLock<[Vec<Path>; 6]> = LazyLock::new(|| {
    let p = |list: &[&str]| {
        list.iter()
            .filter_map(|s| Path::parse(s).ok())
            .collect::<Vec<_>>()
    };
    [
        p(IDENTITY_PATHS),
        p(SESSION_PATHS),
        p(SERVER_PATHS),
        p(METHOD_PATHS),
        p(TOOL_PATHS),
        p(ARGS_PATHS),
    ]
});

fn first<'n, 'a>(r: &'n Node<'a>, paths: &[Path]) -> Option<&'n Node<'a>> {
    paths.iter().find_map(|p| p.get(r))
}

/// `decision_id` and `path` (or opa-envoy's older `query`), or
/// `type=openpolicyagent.org/decision_logs`.
pub fn matches(r: &Node<'_>) -> bool {
    (r.get("decision_id").is_some() && (r.get("path").is_some() || r.get("query").is_some()))
        || r.get("type").and_then(Node::as_str) == Some("openpolicyagent.org/decision_logs")
}

/// `opa-envoy query, no path` for opa-envoy builds that log the query instead of the path;
/// `opa-envoy` for the Envoy plugin's events; `None` for plain OPA.
pub fn shape(r: &Node<'_>) -> Option<&'static str> {
    if r.get("path").is_none() && r.get("query").is_some() {
        return Some("opa-envoy query, no path");
    }
    at(r, "labels.version")
        .and_then(Node::as_str)
        .filter(|v| v.ends_with("-envoy") || v.contains("-envoy-"))
        .map(|_| "opa-envoy")
}

/// Decodes one OPA decision event.
///
/// # Errors
/// Invalid JSON, a missing `decision_id` on a decision event, a missing or bad `timestamp`, or
/// a field of the wrong type, each naming the field.
pub fn decode<'a>(line: &'a str, out: &mut Vec<DecisionRecord<'a>>) -> Result<Outcome, LineError> {
    let r = json::object(line)?;
    if !matches(&r) && r.get("decision_id").is_none() {
        // OPA's other console lines (server start, bundle activation ...) carry a `msg`.
        if r.get("msg").is_some() {
            return Ok(Outcome::Skipped(Skip::ServerLog));
        }
        return Err(unrecognised(
            &r,
            "not an OPA decision event (no `decision_id`, no decision-log `type`)",
        ));
    }
    let ts = match r.get("timestamp") {
        Some(t) if !t.is_null() => timestamp(Some(t), "timestamp", Unit::Auto)?,
        _ => timestamp(r.get("time"), "timestamp", Unit::Seconds)?,
    };
    let (decision, rule_extra, message) = decide(&r)?;
    let path = match text(r.get("path"), "path")? {
        Some(p) => Some(p),
        None => text(r.get("query"), "query")?.map(|q| {
            let q = q.strip_prefix("data.").unwrap_or(&q);
            Cow::Owned(q.replace('.', "/"))
        }),
    };
    let id = text(r.get("decision_id"), "decision_id")?;
    let mut rec = DecisionRecord::new(event_id(id, SOURCE, line), ts, SOURCE, decision);
    let p = &*PATHS;
    rec.identity = first(&r, &p[0]).and_then(|v| text_or_json(Some(v)));
    rec.client_addr = text(r.get("requested_by"), "requested_by")?;
    rec.session = first(&r, &p[1]).and_then(|v| text_or_json(Some(v)));
    rec.server = first(&r, &p[2]).and_then(|v| text_or_json(Some(v)));
    rec.method = first(&r, &p[3]).and_then(Node::as_cow);
    if rec.method.is_none() {
        let verb = at(&r, "input.attributes.request.http.method").and_then(Node::as_cow);
        let hpath = at(&r, "input.attributes.request.http.path").and_then(Node::as_cow);
        rec.method = match (verb, hpath) {
            (Some(v), Some(p)) => Some(Cow::Owned(format!("{v} {p}"))),
            (v, p) => v.or(p),
        };
    }
    rec.tool = first(&r, &p[4]).and_then(Node::as_cow);
    let (keys, args) = args_of(first(&r, &p[5]));
    rec.arg_keys = keys;
    rec.args = args;
    rec.rule = match (path, rule_extra) {
        (Some(p), Some(extra)) => Some(Cow::Owned(format!("{p}: {extra}"))),
        (p, e) => p.or(e.map(Cow::Owned)),
    };
    rec.message = message;
    if let Some(bundles) = r.get("bundles").and_then(Node::as_object) {
        if let Some((name, b)) = bundles.first() {
            rec.policy_id = Some(name.clone());
            rec.policy_version = text(b.get("revision"), "bundles.*.revision")?;
        }
    }
    if rec.policy_version.is_none() {
        rec.policy_version = text(r.get("revision"), "revision")?;
    }
    rec.latency_ms = duration_ms(
        at(&r, "metrics.timer_server_handler_ns"),
        "metrics.timer_server_handler_ns",
        Unit::Nanos,
    )?;
    out.push(rec);
    Ok(Outcome::Rows)
}

/// What `error` and `result` say: the decision, reasons that go into the rule, and a message.
type Verdict<'a> = (Decision, Option<String>, Option<Cow<'a, str>>);

/// The decision, the reasons that go into the rule, and a message, from `error` and `result`.
fn decide<'a>(r: &Node<'a>) -> Result<Verdict<'a>, LineError> {
    if let Some(err) = r.get("error").filter(|e| !e.is_null()) {
        let msg = match err {
            Node::Str(s) => Some(s.clone()),
            Node::Obj(_) => at(err, "message")
                .and_then(Node::as_cow)
                .or_else(|| Some(Cow::Owned(err.to_json()))),
            other => Some(Cow::Owned(other.to_json())),
        };
        return Ok((Decision::Error, None, msg));
    }
    let Some(result) = r.get("result").filter(|v| !v.is_null()) else {
        // Without a result Envoy denies by default, but the log itself says nothing.
        return Ok((Decision::Unknown, None, None));
    };
    Ok(match result {
        Node::Bool(true) => (Decision::Allow, None, None),
        Node::Bool(false) => (Decision::Deny, None, None),
        Node::Arr(reasons) => {
            if reasons.is_empty() {
                (Decision::Allow, None, None)
            } else {
                let texts: Vec<String> = reasons
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_json(), str::to_string))
                    .collect();
                (Decision::Deny, Some(texts.join("; ")), None)
            }
        }
        Node::Obj(_) => {
            let message = ["reason", "message", "body"]
                .iter()
                .find_map(|k| result.get(k).and_then(|v| text_or_json(Some(v))));
            let status = result.get("http_status").and_then(Node::as_f64);
            let explicit = result
                .get("decision")
                .and_then(Node::as_str)
                .and_then(vocabulary);
            let allowed = result
                .get("allowed")
                .or_else(|| result.get("allow"))
                .and_then(Node::as_bool);
            let reasons = deny_reasons(result);
            let decision = match (explicit, allowed) {
                (Some(d), _) => d,
                (None, Some(true)) => Decision::Allow,
                (None, Some(false)) if status == Some(429.0) => Decision::RateLimited,
                (None, Some(false)) => Decision::Deny,
                (None, None) => match result.get("deny").and_then(Node::as_array) {
                    Some([]) => Decision::Allow,
                    Some(_) => Decision::Deny,
                    None => Decision::Unknown,
                },
            };
            let reasons = (decision != Decision::Allow).then_some(reasons).flatten();
            (decision, reasons, message)
        }
        Node::Str(s) => (vocabulary(s).unwrap_or(Decision::Unknown), None, None),
        _ => (Decision::Unknown, None, None),
    })
}

/// The deny reasons a result object carries: a non-empty `deny` or `reasons` set, or the
/// `x-ext-auth-deny-reason` header an opa-envoy policy returns (`-` means none).
fn deny_reasons(result: &Node<'_>) -> Option<String> {
    for key in ["deny", "reasons", "violations"] {
        if let Some(items) = result.get(key).and_then(Node::as_array) {
            if !items.is_empty() {
                let texts: Vec<String> = items
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_json(), str::to_string))
                    .collect();
                return Some(texts.join("; "));
            }
        }
    }
    at(result, "headers.x-ext-auth-deny-reason")
        .and_then(Node::as_str)
        .filter(|r| !r.is_empty() && *r != "-")
        .map(str::to_string)
}

fn vocabulary(s: &str) -> Option<Decision> {
    let s = s.to_ascii_lowercase();
    Some(match s.as_str() {
        // A `"true"` string is what some policies (and OPA's own docs example) return.
        "allow" | "allowed" | "permit" | "true" => Decision::Allow,
        "deny" | "denied" | "forbid" | "false" => Decision::Deny,
        "rate_limited" | "ratelimited" => Decision::RateLimited,
        "approval_required" | "pending_approval" => Decision::ApprovalRequired,
        "error" => Decision::Error,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"{"decision_id":"c2da69a1-2b6c-4b2b-9cf1-1d5c0d6f5f3a","labels":{"id":"42c3","version":"0.40.0-envoy-1"},"path":"envoy/authz/allow","input":{"attributes":{"request":{"http":{"method":"POST","path":"/mcp","host":"envoy.domain.com","headers":{"mcp-session-id":"s-77"}}},"metadataContext":{"filterMetadata":{"envoy.filters.http.jwt_authn":{"verified_jwt":{"sub":"alice@domain.com"}}}}},"parsed_body":{"method":"tools/call","params":{"name":"run_sql","arguments":{"q":"select 1","db":"main"}}}},"result":{"allowed":false,"http_status":403},"bundles":{"authz":{"revision":"r42"}},"metrics":{"timer_server_handler_ns":4795661},"level":"info","msg":"Decision Log","time":"2022-05-19T19:14:04Z","timestamp":"2022-05-19T19:14:04.183258064Z","type":"openpolicyagent.org/decision_logs"}"#;

    fn one(line: &str) -> DecisionRecord<'static> {
        crate::decode_one(crate::Format::Opa, line)
    }

    #[test]
    fn default_paths_parse() {
        let p = &*PATHS;
        assert_eq!(p[0].len(), IDENTITY_PATHS.len());
        assert_eq!(p[4].len(), TOOL_PATHS.len());
        assert_eq!(
            p.iter().map(Vec::len).sum::<usize>(),
            17 + 3 + 3 + 3 + 5 + 4
        );
    }

    #[test]
    fn the_opa_envoy_envelope_maps_every_column() {
        let r = one(SPEC);
        assert_eq!(r.event_id, "c2da69a1-2b6c-4b2b-9cf1-1d5c0d6f5f3a");
        assert_eq!(r.ts_micros, 1_652_987_644_183_258);
        assert_eq!(r.identity.as_deref(), Some("alice@domain.com"));
        assert_eq!(r.session.as_deref(), Some("s-77"));
        assert_eq!(r.server.as_deref(), Some("envoy.domain.com"));
        assert_eq!(r.method.as_deref(), Some("tools/call"));
        assert_eq!(r.tool.as_deref(), Some("run_sql"));
        assert_eq!(
            r.arg_keys,
            Some(vec![Cow::Borrowed("db"), Cow::Borrowed("q")])
        );
        assert_eq!(r.args.as_deref(), Some(r#"{"q":"select 1","db":"main"}"#));
        assert_eq!(r.decision, Decision::Deny);
        assert_eq!(r.rule.as_deref(), Some("envoy/authz/allow"));
        assert_eq!(r.policy_id.as_deref(), Some("authz"));
        assert_eq!(r.policy_version.as_deref(), Some("r42"));
        assert_eq!(r.latency_ms, Some(4.795661));
        assert_eq!(r.upstream_status, None);
    }

    #[test]
    fn result_shapes() {
        let with = |result: &str| SPEC.replace(r#"{"allowed":false,"http_status":403}"#, result);
        assert_eq!(one(&with("true")).decision, Decision::Allow);
        assert_eq!(one(&with("false")).decision, Decision::Deny);
        assert_eq!(one(&with("[]")).decision, Decision::Allow);
        let line = with(r#"["tool run_sql is blocked","no grant"]"#);
        let r = one(&line);
        assert_eq!(r.decision, Decision::Deny);
        assert_eq!(
            r.rule.as_deref(),
            Some("envoy/authz/allow: tool run_sql is blocked; no grant")
        );
        assert_eq!(
            one(&with(r#"{"allowed":false,"http_status":429}"#)).decision,
            Decision::RateLimited
        );
        assert_eq!(
            one(&with(r#"{"decision":"approval_required"}"#)).decision,
            Decision::ApprovalRequired
        );
        assert_eq!(one(&with("null")).decision, Decision::Unknown);
        let line = SPEC.replace(
            r#""level":"info""#,
            r#""error":{"code":"eval_error","message":"boom"},"level":"info""#,
        );
        let e = one(&line);
        assert_eq!(
            (e.decision, e.message.as_deref()),
            (Decision::Error, Some("boom"))
        );
    }

    #[test]
    fn console_chatter_is_skipped_but_not_other_objects() {
        let mut out = Vec::new();
        decode(
            r#"{"level":"info","msg":"Initializing server.","time":"2022-05-19T19:14:04Z"}"#,
            &mut out,
        )
        .unwrap();
        assert!(out.is_empty());
        let e = decode(r#"{"path":"x"}"#, &mut out).unwrap_err();
        assert_eq!(e.kind, crate::error::LineErrorKind::UnrecognisedEvent);
        assert!(
            e.message.ends_with("the record's keys: path"),
            "{}",
            e.message
        );
        // Without `timestamp`, the second-precision `time` is used.
        let r = one(r#"{"decision_id":"d","path":"p","result":true,"time":1652987644}"#);
        assert_eq!(r.ts_micros, 1_652_987_644_000_000);
    }
}
