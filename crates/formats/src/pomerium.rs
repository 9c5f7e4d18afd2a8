//! Pomerium authorize logs: the `authorize` service writes one zerolog JSON line per request it
//! checks (`"message":"authorize check"`), with the policy's result as two booleans and their
//! reasons: `allow` with `allow-why-true`/`allow-why-false`, `deny` with `deny-why-true`/
//! `deny-why-false`. MCP-aware releases add `mcp-method`, `mcp-tool` and
//! `mcp-tool-parameters`; the other keys are those of `authorize_log_fields` (`request-id`,
//! `user`, `email`, `ip`, `host`, `path`, `method` ...).
//!
//! Mapping: decision ← `deny` true: deny (the deny reasons are the rule); else `allow` true:
//! allow (the allow reasons); else deny (Pomerium denies what no rule allows; the rule is the
//! `allow-why-false` reasons). identity ← `email`, else `user` (the user id, also
//! `identity_id`), else `service-account-id`; client_addr ← `ip`; event_id ← `request-id`;
//! method ← `mcp-method`, else `VERB /path`; tool ← `mcp-tool`; args ← `mcp-tool-parameters`;
//! server ← `host`, else `route-id`. The same stream carries the `envoy` service's access line
//! of each request (skipped as `response`: the authorize line holds the decision) and
//! Pomerium's own messages (skipped as `server_log`).

use std::borrow::Cow;

use crate::common::{args_of, event_id, text, timestamp, Unit};
use crate::error::LineError;
use crate::json::{self, Node};
use crate::{Outcome, Skip};
use verdict_schema::Decision;
use verdict_schema::DecisionRecord;

/// The `source` value of Pomerium rows.
pub const SOURCE: &str = "pomerium";

/// The fields that identify Pomerium's records.
pub const SIGNATURE: &str = "service=authorize + allow, or service + server-name";

/// `service=authorize` with an `allow` result, or any Pomerium service line (`service` next to
/// `server-name`).
pub fn matches(r: &Node<'_>) -> bool {
    let service = r.get("service").and_then(Node::as_str);
    (service == Some("authorize") && r.get("allow").is_some())
        || (service.is_some() && r.get("server-name").is_some())
}

/// A reason list (`["email-ok","mcp-tool-ok"]`) as `email-ok, mcp-tool-ok`.
fn reasons<'a>(r: &Node<'a>, key: &str) -> Option<Cow<'a, str>> {
    let items = r.get(key)?.as_array()?;
    let texts: Vec<String> = items
        .iter()
        .filter_map(Node::scalar_text)
        .map(Cow::into_owned)
        .collect();
    (!texts.is_empty()).then(|| Cow::Owned(texts.join(", ")))
}

/// Decodes one Pomerium log line.
///
/// # Errors
/// Invalid JSON, an authorize check with a missing or bad `time`, or a field of the wrong type,
/// each naming the field.
pub fn decode<'a>(line: &'a str, out: &mut Vec<DecisionRecord<'a>>) -> Result<Outcome, LineError> {
    let r = json::object(line)?;
    match r.get("service").and_then(Node::as_str) {
        Some("authorize") if r.get("allow").is_some() || r.get("deny").is_some() => {}
        Some("envoy") => return Ok(Outcome::Skipped(Skip::Response)),
        _ => return Ok(Outcome::Skipped(Skip::ServerLog)),
    }
    let ts = timestamp(r.get("time"), "time", Unit::Auto)?;
    let deny = r.get("deny").and_then(Node::as_bool) == Some(true);
    let allow = r.get("allow").and_then(Node::as_bool) == Some(true);
    let (decision, rule) = if deny {
        (Decision::Deny, reasons(&r, "deny-why-true"))
    } else if allow {
        (Decision::Allow, reasons(&r, "allow-why-true"))
    } else {
        (Decision::Deny, reasons(&r, "allow-why-false"))
    };
    let id = match text(r.get("request-id"), "request-id")? {
        Some(id) => Some(id),
        None => text(r.get("check-request-id"), "check-request-id")?,
    };
    let mut rec = DecisionRecord::new(event_id(id, SOURCE, line), ts, SOURCE, decision);
    let user = text(r.get("user"), "user")?;
    rec.identity = match text(r.get("email"), "email")? {
        Some(e) => Some(e),
        None => match user.clone() {
            Some(u) => Some(u),
            None => text(r.get("service-account-id"), "service-account-id")?,
        },
    };
    rec.identity_id = user;
    rec.client_addr = text(r.get("ip"), "ip")?;
    rec.server = match text(r.get("host"), "host")? {
        Some(h) => Some(h),
        None => text(r.get("route-id"), "route-id")?,
    };
    rec.method = match text(r.get("mcp-method"), "mcp-method")? {
        Some(m) => Some(m),
        None => {
            let verb = text(r.get("method"), "method")?;
            let path = text(r.get("path"), "path")?;
            match (verb, path) {
                (Some(v), Some(p)) => Some(Cow::Owned(format!("{v} {p}"))),
                (v, p) => v.or(p),
            }
        }
    };
    rec.tool = text(r.get("mcp-tool"), "mcp-tool")?;
    let (keys, args) = args_of(r.get("mcp-tool-parameters"));
    rec.arg_keys = keys;
    rec.args = args;
    rec.rule = rule;
    out.push(rec);
    Ok(Outcome::Rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOW: &str = r#"{"level":"info","server-name":"all","service":"authorize","request-id":"r-7","user":"u-42","email":"dana@example.net","ip":"198.51.100.4","host":"mcp.example.net","mcp-method":"tools/call","mcp-tool":"list_tables","mcp-tool-parameters":{"schema":"public"},"allow":true,"allow-why-true":["email-ok","mcp-tool-ok"],"deny":false,"deny-why-false":[],"time":"2026-11-10T09:00:00-05:00","message":"authorize check"}"#;

    #[test]
    fn an_allowed_tool_call() {
        let r = crate::decode_one(crate::Format::Pomerium, ALLOW);
        assert_eq!(r.decision, Decision::Allow);
        assert_eq!(r.event_id, "r-7");
        assert_eq!(r.identity.as_deref(), Some("dana@example.net"));
        assert_eq!(r.identity_id.as_deref(), Some("u-42"));
        assert_eq!(r.client_addr.as_deref(), Some("198.51.100.4"));
        assert_eq!(r.tool.as_deref(), Some("list_tables"));
        assert_eq!(r.arg_keys, Some(vec![Cow::Borrowed("schema")]));
        assert_eq!(r.rule.as_deref(), Some("email-ok, mcp-tool-ok"));
        assert_eq!(
            verdict_schema::time::format_micros(r.ts_micros),
            "2026-11-10T14:00:00.000000Z"
        );
    }

    #[test]
    fn a_denied_check_and_the_envoy_line() {
        let deny = ALLOW.replace(
            r#""allow":true,"allow-why-true":["email-ok","mcp-tool-ok"]"#,
            r#""allow":false,"allow-why-false":["mcp-tool-unauthorized"]"#,
        );
        let r = crate::decode_one(crate::Format::Pomerium, &deny);
        assert_eq!(r.decision, Decision::Deny);
        assert_eq!(r.rule.as_deref(), Some("mcp-tool-unauthorized"));
        let envoy = r#"{"level":"info","server-name":"all","service":"envoy","method":"POST","path":"/mcp","response-code":403,"time":"2026-11-10T14:00:00Z","message":"http-request"}"#;
        let mut out = Vec::new();
        assert_eq!(
            Format::Pomerium.decode(envoy, &mut out).unwrap(),
            Outcome::Skipped(Skip::Response)
        );
    }

    use crate::Format;
}
