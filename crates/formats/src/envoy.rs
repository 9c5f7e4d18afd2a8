//! Envoy JSON access logs (README "Input formats"): one line per HTTP request, with keys the
//! operator chose in `log_format.json_format`, so every column is read through a table of common
//! aliases ([`TS_KEYS`], [`ID_KEYS`] ...). The decision comes from `%RESPONSE_FLAGS%` and
//! `%RESPONSE_CODE_DETAILS%` first (ext_authz, RBAC, local/global rate limit), from the status
//! code only as a last resort; a response the upstream produced (`via_upstream`) is an allow
//! whatever its status, and that status is the row's `upstream_status`.
//!
//! Envoy writes a missing value as `null` or `"-"`; both count as absent. Lines that are not
//! access-log entries (no status, flags nor details: Envoy's own JSON application log) are
//! skipped as `server_log`, and requests that carry a JSON-RPC *response* (MCP filter method
//! `__jsonrpc_response`: a client answering a server-initiated request, not a call) as
//! `response`.
//!
//! MCP gateways built on Envoy log their own keys and often neither flags nor details: Envoy AI
//! Gateway's MCP routes (`mcp.method.name`, `mcp.provider.name`, `mcp.session.id`) and
//! Kuadrant's MCP gateway (`mcp_method`, `mcp_tool_name`, `mcp_server_name`, `mcp_user_id`). Their
//! records are detected by a status code next to an MCP method, and decided by the status. The RBAC shadow engine's
//! dry-run result goes into `message`, never into `decision`.
//!
//! `rule` of a refusal or error: the ext_authz metadata's rule ([`RULE_KEYS`]), else the RBAC
//! policy named in the details, else the details code (`ext_authz_denied`, `local_rate_limited`
//! ...) or the flags; allows have none. `upstream_status` is set only for a `via_upstream`
//! response, or for an allow by status in a log that has neither flags nor details.

use std::borrow::Cow;

use crate::common::{args_of, at, duration_ms, event_id, status, timestamp, Unit};
use crate::error::LineError;
use crate::json::{self, Node};
use crate::Skip;
use verdict_schema::Decision;
use verdict_schema::DecisionRecord;

/// The `source` value of Envoy rows.
pub const SOURCE: &str = "envoy";

/// `%START_TIME%`.
pub const TS_KEYS: &[&str] = &["start_time", "@timestamp", "timestamp"];
/// `%REQ(X-REQUEST-ID)%`.
pub const ID_KEYS: &[&str] = &["x_request_id", "request_id", "x-request-id"];
/// `%RESPONSE_CODE%`.
pub const STATUS_KEYS: &[&str] = &["response_code", "status", "status_code"];
/// `%RESPONSE_FLAGS%` (short or long form).
pub const FLAGS_KEYS: &[&str] = &["response_flags", "response_flags_long"];
/// `%RESPONSE_CODE_DETAILS%`.
pub const DETAILS_KEYS: &[&str] = &["response_code_details"];
/// `%DURATION%` (milliseconds).
pub const DURATION_KEYS: &[&str] = &["duration", "duration_ms"];
/// The MCP server (Envoy AI Gateway's `mcp.provider.name`, Kuadrant's `mcp_server_name`), then
/// `%UPSTREAM_CLUSTER%` and `%ROUTE_NAME%`.
pub const SERVER_KEYS: &[&str] = &[
    "mcp.provider.name",
    "mcp_server_name",
    "upstream_cluster",
    "route_name",
];
/// The MCP method: Envoy AI Gateway's `mcp.method.name`, then the MCP filter's `method`
/// (namespace `envoy.filters.http.mcp`, `mcp_proxy` before 1.38) under common aliases.
pub const MCP_METHOD_KEYS: &[&str] = &[
    "mcp.method.name",
    "mcp_method",
    "mcp.method",
    "envoy.filters.http.mcp.method",
    "mcp_proxy.method",
];
/// The MCP filter's `params`.
pub const MCP_PARAMS_KEYS: &[&str] = &[
    "mcp_params",
    "mcp.params",
    "envoy.filters.http.mcp.params",
    "mcp_proxy.params",
];
/// A tool name logged on its own (else `params.name`).
pub const MCP_TOOL_KEYS: &[&str] = &[
    "mcp_tool",
    "mcp_tool_name",
    "mcp.tool",
    "mcp.tool.name",
    "gen_ai.tool.name",
];
/// Tool arguments logged on their own (else `params.arguments`).
pub const MCP_ARGS_KEYS: &[&str] = &["mcp_arguments", "mcp_args", "mcp.arguments"];
/// The HTTP verb and path, for `VERB /path` when there is no MCP method.
pub const VERB_KEYS: &[&str] = &["method", "request_method"];
/// See [`VERB_KEYS`].
pub const PATH_KEYS: &[&str] = &["path", "request_path", "x_envoy_original_path"];
/// Who called: jwt_authn `payload_in_metadata`, `%DOWNSTREAM_PEER_URI_SAN%`, ext_authz metadata.
pub const IDENTITY_KEYS: &[&str] = &[
    "jwt_sub",
    "jwt.sub",
    "jwt_payload.sub",
    "jwt.payload.sub",
    "authz.user",
    "authz.principal",
    "ext_authz.user",
    "ext_authz.principal",
    "downstream_peer_uri_san",
    "peer_uri_san",
    "mcp_user_id",
];
/// The address of the client Envoy saw (`%DOWNSTREAM_REMOTE_ADDRESS%`, else the forwarded one).
pub const CLIENT_ADDR_KEYS: &[&str] = &[
    "downstream_remote_address",
    "downstream_direct_remote_address",
    "x_forwarded_for",
    "x-forwarded-for",
    "client_ip",
];
/// The MCP session (`%REQ(MCP-SESSION-ID)%`).
pub const SESSION_KEYS: &[&str] = &[
    "mcp.session.id",
    "mcp_session_id",
    "mcp-session-id",
    "session_id",
];
/// What decided, from ext_authz dynamic metadata or the RBAC filter's metadata.
pub const RULE_KEYS: &[&str] = &[
    "authz.rule",
    "authz.policy",
    "ext_authz.rule",
    "ext_authz.policy",
    "authz_rule",
    "rbac_policy",
];
/// The reason text, from ext_authz dynamic metadata.
pub const MESSAGE_KEYS: &[&str] = &[
    "authz.reason",
    "authz.message",
    "ext_authz.reason",
    "ext_authz.message",
    "authz_reason",
];
/// `%DYNAMIC_METADATA(envoy.filters.http.rbac:shadow_engine_result)%`.
pub const SHADOW_RESULT_KEYS: &[&str] = &[
    "shadow_engine_result",
    "rbac_shadow_result",
    "rbac.shadow_engine_result",
    "envoy.filters.http.rbac.shadow_engine_result",
];
/// `%DYNAMIC_METADATA(envoy.filters.http.rbac:shadow_effective_policy_id)%`.
pub const SHADOW_POLICY_KEYS: &[&str] = &[
    "shadow_effective_policy_id",
    "rbac_shadow_policy",
    "rbac.shadow_effective_policy_id",
    "envoy.filters.http.rbac.shadow_effective_policy_id",
];

/// `response_flags` or `response_code_details`, or a response code next to an MCP method (MCP
/// gateways built on Envoy); never a Tyk access-log record (`prefix=access-log`), which borrows
/// Envoy's key names.
pub fn matches(r: &Node<'_>) -> bool {
    if r.get("prefix").and_then(Node::as_str) == Some("access-log") {
        return false;
    }
    FLAGS_KEYS
        .iter()
        .chain(DETAILS_KEYS)
        .any(|k| at(r, k).is_some())
        || (r.get("response_code").is_some() && found(r, MCP_METHOD_KEYS).is_some())
}

/// `AI Gateway MCP keys` (Envoy AI Gateway's `mcp.method.name` ...), `MCP keys, no flags`
/// (Kuadrant's MCP gateway and other MCP `json_format`s without flags or details).
pub fn shape(r: &Node<'_>) -> Option<&'static str> {
    if r.get("mcp.method.name").is_some() || r.get("mcp.provider.name").is_some() {
        Some("AI Gateway MCP keys")
    } else if found(r, FLAGS_KEYS).is_none()
        && found(r, DETAILS_KEYS).is_none()
        && found(r, MCP_METHOD_KEYS).is_some()
    {
        Some("MCP keys, no flags")
    } else {
        None
    }
}

/// The first alias holding a value other than null, `""` or `"-"`, with the key it was found at.
fn found<'n, 'a>(r: &'n Node<'a>, keys: &[&'static str]) -> Option<(&'static str, &'n Node<'a>)> {
    keys.iter().find_map(|k| {
        at(r, k)
            .filter(|v| !matches!(v.as_str(), Some("" | "-")))
            .map(|v| (*k, v))
    })
}

/// A text column from the first alias present; a number is rendered, anything else is skipped.
fn text_of<'a>(r: &Node<'a>, keys: &[&'static str]) -> Option<Cow<'a, str>> {
    keys.iter().find_map(|k| {
        at(r, k)
            .and_then(Node::scalar_text)
            .filter(|s| !s.is_empty() && s != "-")
    })
}

/// What the flags and details say, before the status code is looked at.
#[derive(Debug, Clone, PartialEq)]
struct Verdict {
    decision: Decision,
    rule: Option<String>,
    /// The response was produced by the upstream (`via_upstream`, or nothing says otherwise).
    upstream: bool,
}

/// Envoy's short and long flag names for the conditions that decide.
fn has_flag(flags: &[&str], short: &str, long: &str) -> bool {
    flags.iter().any(|f| *f == short || *f == long)
}

/// The decision from `%RESPONSE_FLAGS%`, `%RESPONSE_CODE_DETAILS%` and the status (last).
fn decide(flags: &[&str], details: Option<&str>, code: Option<i32>) -> Verdict {
    let d = details.unwrap_or("");
    let out = |decision, rule: Option<&str>| Verdict {
        decision,
        rule: rule.map(str::to_string),
        upstream: false,
    };
    if d == "ext_authz_error" {
        return out(Decision::Error, Some(d));
    }
    if has_flag(flags, "RLSE", "RateLimitServiceError") || d == "rate_limiter_error" {
        return out(Decision::Error, Some(details.unwrap_or("RLSE")));
    }
    if has_flag(flags, "RL", "RateLimited")
        || d == "request_rate_limited"
        || d == "local_rate_limited"
    {
        return out(Decision::RateLimited, Some(details.unwrap_or("RL")));
    }
    if has_flag(flags, "UAEX", "UnauthorizedExternalService") || d == "ext_authz_denied" {
        return out(Decision::Deny, Some(details.unwrap_or("UAEX")));
    }
    if let Some(rest) = d.strip_prefix("rbac_access_denied_matched_policy") {
        let policy = rest
            .strip_prefix('[')
            .and_then(|p| p.strip_suffix(']'))
            .filter(|p| !p.is_empty())
            .unwrap_or(d);
        return out(Decision::Deny, Some(policy));
    }
    if d == "via_upstream" {
        return Verdict {
            decision: Decision::Allow,
            rule: None,
            upstream: true,
        };
    }
    // Envoy answered itself for some other reason (no route, upstream reset, timeout ...), or the
    // log has no details: the status is all there is.
    let decision = crate::common::decision_from_status(code);
    let local = !flags.is_empty() || details.is_some();
    Verdict {
        decision,
        rule: if decision == Decision::Allow {
            None
        } else {
            details
                .map(str::to_string)
                .or_else(|| (!flags.is_empty()).then(|| flags.join(",")))
        },
        upstream: !local && decision == Decision::Allow,
    }
}

/// Decodes one Envoy access-log line.
///
/// # Errors
/// Invalid JSON, a missing or bad `start_time` (or alias), or a status/duration of the wrong
/// type, each naming the key.
pub fn decode<'a>(
    line: &'a str,
    out: &mut Vec<DecisionRecord<'a>>,
) -> Result<crate::Outcome, LineError> {
    let r = json::object(line)?;
    let status_at = found(&r, STATUS_KEYS);
    let flags_at = found(&r, FLAGS_KEYS);
    let details_at = found(&r, DETAILS_KEYS);
    if status_at.is_none() && flags_at.is_none() && details_at.is_none() {
        // Envoy's application log, or anything else that is not an access-log entry.
        return Ok(crate::Outcome::Skipped(Skip::ServerLog));
    }
    let mcp_method = text_of(&r, MCP_METHOD_KEYS);
    if mcp_method.as_deref() == Some("__jsonrpc_response") {
        // A client's answer to a server-initiated request: no call was decided.
        return Ok(crate::Outcome::Skipped(Skip::Response));
    }
    let ts = match found(&r, TS_KEYS) {
        Some((key, v)) => timestamp(Some(v), key, Unit::Auto)?,
        None => timestamp(None, TS_KEYS[0], Unit::Auto)?,
    };
    let code = match status_at {
        Some((key, v)) => status(Some(v), key)?,
        None => None,
    };
    let flags_text = flags_at.and_then(|(_, v)| v.as_str()).unwrap_or("");
    let flags: Vec<&str> = flags_text
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty() && *f != "-")
        .collect();
    let details = details_at.and_then(|(_, v)| v.as_str());
    let outcome = decide(&flags, details, code);

    let id = text_of(&r, ID_KEYS);
    let mut rec = DecisionRecord::new(event_id(id, SOURCE, line), ts, SOURCE, outcome.decision);
    rec.identity = text_of(&r, IDENTITY_KEYS);
    rec.client_addr = text_of(&r, CLIENT_ADDR_KEYS);
    rec.session = text_of(&r, SESSION_KEYS);
    rec.server = text_of(&r, SERVER_KEYS);
    rec.method = match mcp_method {
        Some(m) => Some(m),
        None => match (
            text_of(&r, VERB_KEYS),
            text_of(&r, PATH_KEYS).or_else(|| text_of(&r, &["x-envoy-origin-path"])),
        ) {
            (Some(v), Some(p)) => {
                let p = p.split('?').next().unwrap_or_default().to_string();
                Some(Cow::Owned(format!("{v} {p}")))
            }
            (v, p) => v.or(p),
        },
    };
    if rec.method.as_deref() == Some("tools/call") {
        let params = found(&r, MCP_PARAMS_KEYS).map(|(_, v)| v);
        rec.tool = text_of(&r, MCP_TOOL_KEYS).or_else(|| {
            params
                .and_then(|p| at(p, "name"))
                .and_then(Node::as_cow)
                .filter(|s| !s.is_empty())
        });
        let args = found(&r, MCP_ARGS_KEYS)
            .map(|(_, v)| v)
            .or_else(|| params.and_then(|p| at(p, "arguments")));
        let (keys, values) = args_of(args);
        rec.arg_keys = keys;
        rec.args = values;
    }
    rec.rule = match outcome.decision {
        Decision::Allow => None,
        _ => text_of(&r, RULE_KEYS).or(outcome.rule.map(Cow::Owned)),
    };
    let message = text_of(&r, MESSAGE_KEYS);
    let shadow =
        text_of(&r, SHADOW_RESULT_KEYS).map(|result| match text_of(&r, SHADOW_POLICY_KEYS) {
            Some(p) => format!("dry-run: {result} ({p})"),
            None => format!("dry-run: {result}"),
        });
    rec.message = match (message, shadow) {
        (Some(m), Some(s)) => Some(Cow::Owned(format!("{m}; {s}"))),
        (m, s) => m.or(s.map(Cow::Owned)),
    };
    if outcome.upstream {
        rec.upstream_status = code;
    }
    rec.latency_ms = match found(&r, DURATION_KEYS) {
        Some((key, v)) => duration_ms(Some(v), key, Unit::Millis)?,
        None => None,
    };
    out.push(rec);
    Ok(crate::Outcome::Rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::LineErrorKind;
    use crate::leak;

    const SPEC: &str = r#"{"start_time":"2025-06-01T10:00:00.123Z","x_request_id":"a4ca","method":"POST","path":"/mcp","response_code":403,"response_flags":"UAEX","response_code_details":"ext_authz_denied","duration":4,"upstream_host":null,"mcp_method":"tools/call","authz":{"reason":"tool not allowed"}}"#;

    fn one(line: &str) -> DecisionRecord<'static> {
        crate::decode_one(crate::Format::Envoy, line)
    }

    #[test]
    fn the_spec_example_is_an_ext_authz_deny() {
        let r = one(SPEC);
        assert_eq!(r.event_id, "a4ca");
        assert_eq!(r.ts_micros, 1_748_772_000_123_000);
        assert_eq!(r.method.as_deref(), Some("tools/call"));
        assert_eq!(r.decision, Decision::Deny);
        assert_eq!(r.rule.as_deref(), Some("ext_authz_denied"));
        assert_eq!(r.message.as_deref(), Some("tool not allowed"));
        assert_eq!(r.upstream_status, None);
        assert_eq!(r.latency_ms, Some(4.0));
        assert!(matches(&json::parse(SPEC).unwrap()));
    }

    #[test]
    fn flags_and_details_decide_before_the_status() {
        let with = |flags: &str, details: &str, code: &str| {
            SPEC.replace(r#""UAEX""#, flags)
                .replace(r#""ext_authz_denied""#, details)
                .replace("403", code)
        };
        let d = |l: String| {
            let r = one(&l);
            (
                r.decision,
                r.rule.map(|c| c.into_owned()),
                r.upstream_status,
            )
        };
        assert_eq!(
            d(with(r#""-""#, r#""via_upstream""#, "403")),
            (Decision::Allow, None, Some(403))
        );
        assert_eq!(
            d(with(r#""UAEX""#, r#""ext_authz_error""#, "403")),
            (Decision::Error, Some("ext_authz_error".into()), None)
        );
        assert_eq!(
            d(with(
                r#""-""#,
                r#""rbac_access_denied_matched_policy[deny-writes]""#,
                "403"
            )),
            (Decision::Deny, Some("deny-writes".into()), None)
        );
        assert_eq!(
            d(with(r#""RL""#, r#""local_rate_limited""#, "429")),
            (
                Decision::RateLimited,
                Some("local_rate_limited".into()),
                None
            )
        );
        assert_eq!(
            d(with(r#""RLSE""#, "null", "500")),
            (Decision::Error, Some("RLSE".into()), None)
        );
        // A 429 from the upstream is the upstream's business.
        assert_eq!(
            d(with(r#""-""#, r#""via_upstream""#, "429")),
            (Decision::Allow, None, Some(429))
        );
        // Neither flags nor details: the status, as a last resort.
        assert_eq!(
            d(with("null", "null", "429")),
            (Decision::RateLimited, None, None)
        );
        assert_eq!(
            d(with("null", "null", "200")),
            (Decision::Allow, None, Some(200))
        );
        assert_eq!(
            d(with(r#""NR""#, r#""route_not_found""#, "404")),
            (Decision::Unknown, Some("route_not_found".into()), None)
        );
    }

    #[test]
    fn mcp_metadata_aliases_and_the_dry_run() {
        let line = r#"{"@timestamp":"2026-11-05T10:00:00Z","request_id":"r1","response_code":200,"response_flags":"-","response_code_details":"via_upstream","envoy.filters.http.mcp":{"method":"tools/call","params":{"name":"run_sql","arguments":{"q":"x","db":"y"}}},"shadow_engine_result":"denied","shadow_effective_policy_id":"no-sql","duration":"-","jwt_payload":{"sub":"alice"}}"#;
        let r = one(line);
        assert_eq!(r.tool.as_deref(), Some("run_sql"));
        assert_eq!(
            r.arg_keys,
            Some(vec![Cow::Borrowed("db"), Cow::Borrowed("q")])
        );
        assert_eq!(r.decision, Decision::Allow);
        assert_eq!(r.message.as_deref(), Some("dry-run: denied (no-sql)"));
        assert_eq!(r.identity.as_deref(), Some("alice"));
        assert_eq!(r.latency_ms, None);
    }

    #[test]
    fn non_decisions_are_skipped_and_bad_times_named() {
        let mut out = Vec::new();
        decode(r#"{"timestamp":"2026-11-05T10:00:00Z","level":"info","msg":"starting main dispatch loop"}"#, &mut out).unwrap();
        decode(
            leak(SPEC.replace(r#""tools/call""#, r#""__jsonrpc_response""#)),
            &mut out,
        )
        .unwrap();
        assert!(out.is_empty());
        let e = decode(
            leak(SPEC.replace("2025-06-01T10:00:00.123Z", "yesterday")),
            &mut out,
        )
        .unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (LineErrorKind::BadTimestamp, Some("start_time"))
        );
        let e = decode(
            leak(SPEC.replace(r#""start_time":"2025-06-01T10:00:00.123Z","#, "")),
            &mut out,
        )
        .unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (LineErrorKind::MissingTimestamp, Some("start_time"))
        );
        for bad in [
            "[]",
            "1",
            r#"{"response_code":{"a":[]},"start_time":7}"#,
            r#"{"response_flags":7}"#,
        ] {
            let _ = decode(bad, &mut out);
        }
    }
}
