//! Renders generated traffic in other proxies' formats (OPA console decision logs and
//! agentgateway request logs, JSON or the default text format), so that adapters are benchmarked and tested on the same traffic
//! as PolicyLayer lines. A decoded PolicyLayer record goes in; one line of the target format comes out.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};
use verdict_schema::time::format_micros;
use verdict_schema::{Decision, DecisionRecord};

/// A target format of [`render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// PolicyLayer itself (the line unchanged).
    PolicyLayer,
    /// OPA console decision log lines in the opa-envoy layout with an MCP `parsed_body`.
    Opa,
    /// agentgateway JSON request logs.
    AgentGateway,
    /// agentgateway's default text format (`<time><TAB>info<TAB>request k=v ...`).
    AgentGatewayText,
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "policylayer" => Ok(Target::PolicyLayer),
            "opa" => Ok(Target::Opa),
            "agentgateway" => Ok(Target::AgentGateway),
            "agentgateway-text" => Ok(Target::AgentGatewayText),
            other => Err(format!(
                "unknown target format `{other}` (policylayer, opa, agentgateway, agentgateway-text)"
            )),
        }
    }
}

fn arguments(r: &DecisionRecord<'_>) -> Value {
    if let Some(args) = r.args.as_deref() {
        if let Ok(v) = serde_json::from_str::<Value>(args) {
            return v;
        }
    }
    let mut m = Map::new();
    for k in r.arg_keys.iter().flatten() {
        m.insert(k.to_string(), Value::from("<redacted>"));
    }
    Value::Object(m)
}

/// Appends `r` rendered as one `target` line (without `\n`) to `out`; `line` is its PolicyLayer text.
pub fn render(target: Target, r: &DecisionRecord<'_>, line: &str, out: &mut String) {
    match target {
        Target::PolicyLayer => out.push_str(line),
        Target::Opa => opa(r, out),
        Target::AgentGateway => agentgateway(r, out),
        Target::AgentGatewayText => agentgateway_text(r, out),
    }
}

fn opa(r: &DecisionRecord<'_>, out: &mut String) {
    let ts = format_micros(r.ts_micros);
    let mut params = Map::new();
    if let Some(t) = r.tool.as_deref() {
        params.insert("name".into(), t.into());
        params.insert("arguments".into(), arguments(r));
    }
    let mut event = json!({
        "decision_id": r.event_id.as_ref(),
        "labels": {"id": "opa-bench", "version": "1.10.0-envoy"},
        "path": "mcp/authz/allow",
        "input": {
            "attributes": {
                "request": {"http": {"method": "POST", "path": "/mcp", "host": r.server.as_deref(),
                    "headers": {"mcp-session-id": r.session.as_deref()}}},
                "metadataContext": {"filterMetadata": {"envoy.filters.http.jwt_authn":
                    {"verified_jwt": {"sub": r.identity.as_deref()}}}}
            },
            "parsed_body": {"jsonrpc": "2.0", "id": 1, "method": r.method.as_deref(), "params": params}
        },
        "bundles": {r.policy_id.as_deref().unwrap_or("bench"): {"revision": r.policy_version.as_deref()}},
        "level": "info",
        "msg": "Decision Log",
        "time": &ts[..19],
        "timestamp": ts,
        "type": "openpolicyagent.org/decision_logs"
    });
    let result = match r.decision {
        Decision::Allow => Some(json!({"allowed": true, "http_status": 200})),
        Decision::Deny => {
            Some(json!({"allowed": false, "http_status": 403, "reason": r.message.as_deref()}))
        }
        Decision::RateLimited => {
            Some(json!({"allowed": false, "http_status": 429, "reason": r.message.as_deref()}))
        }
        Decision::ApprovalRequired => {
            Some(json!({"decision": "approval_required", "reason": r.message.as_deref()}))
        }
        Decision::Error => {
            event["error"] = json!({"code": "internal_error", "message": r.message.as_deref()});
            None
        }
        Decision::Unknown => None,
    };
    if let Some(res) = result {
        event["result"] = res;
    }
    if let Some(ms) = r.latency_ms {
        event["metrics"] = json!({"timer_server_handler_ns": (ms * 1e6).round() as u64});
    }
    out.push_str(&event.to_string());
}

/// The status and `reason` agentgateway answers a decision with.
fn agentgateway_outcome(r: &DecisionRecord<'_>) -> (i32, Option<&'static str>) {
    match r.decision {
        Decision::Allow => (r.upstream_status.unwrap_or(200), None),
        Decision::Deny | Decision::ApprovalRequired => (403, Some("Authorization")),
        Decision::RateLimited => (429, Some("RateLimit")),
        Decision::Error | Decision::Unknown => (500, Some("Internal")),
    }
}

/// One `key=value` of the text format, the value quoted when it holds a space, quote or `=`.
fn text_pair(out: &mut String, key: &str, value: Option<&str>) {
    let Some(v) = value else { return };
    if v.is_empty() || v.contains([' ', '"', '=', '\t', '\\']) {
        let _ = write!(
            out,
            " {key}=\"{}\"",
            v.replace('\\', "\\\\").replace('"', "\\\"")
        );
    } else {
        let _ = write!(out, " {key}={v}");
    }
}

fn agentgateway_text(r: &DecisionRecord<'_>, out: &mut String) {
    let (status, reason) = agentgateway_outcome(r);
    let _ = write!(
        out,
        "{}\tinfo\trequest gateway=bench/agw route=bench/mcp src.addr=10.0.0.7:40112 http.method=POST http.path=/mcp http.status={status}",
        format_micros(r.ts_micros)
    );
    text_pair(out, "trace.id", Some(&r.event_id));
    text_pair(out, "jwt.sub", r.identity.as_deref());
    text_pair(out, "mcp.method", r.method.as_deref());
    text_pair(out, "mcp.target", r.server.as_deref());
    if r.tool.is_some() {
        text_pair(out, "mcp.resource.type", Some("tool"));
        text_pair(out, "mcp.resource.name", r.tool.as_deref());
    }
    text_pair(out, "mcp.session.id", r.session.as_deref());
    text_pair(out, "reason", reason);
    let _ = write!(
        out,
        " duration={}ms",
        r.latency_ms.unwrap_or(1.0).round() as u64
    );
}

fn agentgateway(r: &DecisionRecord<'_>, out: &mut String) {
    let (status, reason) = agentgateway_outcome(r);
    let s = |v: Option<&str>| serde_json::to_string(&v).unwrap_or_else(|_| "null".into());
    let _ = write!(
        out,
        r#"{{"level":"info","time":"{}","scope":"request","gateway":"bench/agw","route":"bench/mcp","src.addr":"10.0.0.7:40112","http.method":"POST","http.path":"/mcp","http.status":{status},"trace.id":{},"jwt.sub":{},"mcp.method":{},"mcp.target":{}"#,
        format_micros(r.ts_micros),
        s(Some(&r.event_id)),
        s(r.identity.as_deref()),
        s(r.method.as_deref()),
        s(r.server.as_deref()),
    );
    if let Some(t) = r.tool.as_deref() {
        let _ = write!(
            out,
            r#","mcp.resource.type":"tool","mcp.resource.name":{}"#,
            s(Some(t))
        );
    }
    let _ = write!(out, r#","mcp.session.id":{}"#, s(r.session.as_deref()));
    if let Some(reason) = reason {
        let _ = write!(out, r#","reason":"{reason}""#);
    }
    let _ = write!(
        out,
        r#","duration":"{}ms"}}"#,
        r.latency_ms.unwrap_or(1.0).round() as u64
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GenOptions, Generator};
    use verdict_formats::Format;

    /// Generated traffic rendered in each format decodes back to the same calls and outcomes.
    #[test]
    fn rendered_traffic_round_trips_through_the_adapters() {
        let mut buf = Vec::new();
        Generator::new(GenOptions {
            seed: 5,
            ..GenOptions::default()
        })
        .write_lines(2000, &mut buf)
        .unwrap();
        let text = String::from_utf8(buf).unwrap();
        for (target, format) in [
            (Target::Opa, Format::Opa),
            (Target::AgentGateway, Format::AgentGateway),
            (Target::AgentGatewayText, Format::AgentGateway),
        ] {
            let mut denied = 0;
            for line in text.lines() {
                let mut src = Vec::new();
                Format::PolicyLayer.decode(line, &mut src).unwrap();
                let r = &src[0];
                let mut rendered = String::new();
                render(target, r, line, &mut rendered);
                let mut back = Vec::new();
                let (record, _) = verdict_formats::envelope::unwrap(&rendered).unwrap();
                format
                    .decode(&record, &mut back)
                    .unwrap_or_else(|e| panic!("{format}: {e}: {rendered}"));
                let b = &back[0];
                assert_eq!(
                    (&b.event_id, b.ts_micros),
                    (&r.event_id, r.ts_micros),
                    "{rendered}"
                );
                assert_eq!(
                    (&b.identity, &b.session, &b.server),
                    (&r.identity, &r.session, &r.server)
                );
                assert_eq!((&b.method, &b.tool), (&r.method, &r.tool));
                let want = match (target, r.decision) {
                    (
                        Target::AgentGateway | Target::AgentGatewayText,
                        Decision::ApprovalRequired,
                    ) => Decision::Deny,
                    (_, d) => d,
                };
                assert_eq!(b.decision, want, "{format}: {rendered}");
                if format == Format::Opa && r.tool.is_some() {
                    assert_eq!(b.arg_keys, r.arg_keys, "{rendered}");
                }
                denied += usize::from(b.decision == Decision::Deny);
            }
            assert!(denied > 0, "{format}: the mix has denials");
        }
    }
}
