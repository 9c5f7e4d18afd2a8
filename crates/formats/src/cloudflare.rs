//! Cloudflare MCP Portal Logs (README "Input formats", Logpush dataset `mcp_portal_logs`):
//! one JSON object per request through an MCP portal. `Datetime` is RFC 3339 or an epoch number
//! whose unit (s, ms, ns) is read from its magnitude. No request id: ids are the stable hash.
//!
//! Decision: `Success:true` allow. `Success:false` has no explicit reason beyond the `Error`
//! text, read case-insensitively: rate limit words (`rate limit`, `ratelimit`, `too many
//! requests`, `429`, `quota`) rate_limited; access words (`access denied`, `denied`,
//! `forbidden`, `unauthorized`/`unauthorised`, `not authorized`, `not allowed`, `permission`,
//! `blocked`, `401`, `403`) deny; anything else, or no text, error. `Success` absent: unknown.
//! `upstream_status` is always null (the dataset has no status); latency is
//! `ServerResponseDurationMs`. An object with neither `PortalID` nor `Method` (the test
//! object Logpush writes when a destination is set up) yields no row.

use std::borrow::Cow;

use crate::common::{duration_ms, event_id, text, timestamp, Unit};
use crate::error::{LineError, LineErrorKind};
use crate::json::{self, Node};
use crate::{Outcome, Skip};
use verdict_schema::Decision;
use verdict_schema::DecisionRecord;

/// The `source` value of Cloudflare rows.
pub const SOURCE: &str = "cloudflare";

/// `PortalID` with `ToolCallName`, or with `Method` and `Datetime` (Logpush may omit empty
/// fields, so a `tools/list` line has no `ToolCallName`).
pub fn matches(r: &Node<'_>) -> bool {
    r.get("PortalID").is_some()
        && (r.get("ToolCallName").is_some()
            || (r.get("Method").is_some() && r.get("Datetime").is_some()))
}

/// The decision of a failed request from its `Error` text.
pub fn decision_of_error(error: Option<&str>) -> Decision {
    let Some(e) = error else {
        return Decision::Error;
    };
    let e = e.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| e.contains(w));
    if has(&[
        "rate limit",
        "ratelimit",
        "rate-limit",
        "too many requests",
        "429",
        "quota",
    ]) {
        Decision::RateLimited
    } else if has(&[
        "access denied",
        "denied",
        "forbidden",
        "unauthorized",
        "unauthorised",
        "not authorized",
        "not allowed",
        "permission",
        "blocked",
        "401",
        "403",
    ]) {
        Decision::Deny
    } else {
        Decision::Error
    }
}

/// Decodes one MCP portal log record.
///
/// # Errors
/// Invalid JSON, a missing or bad `Datetime`, or a field of the wrong type, naming the field.
pub fn decode<'a>(line: &'a str, out: &mut Vec<DecisionRecord<'a>>) -> Result<Outcome, LineError> {
    let r = json::object(line)?;
    if r.get("PortalID").is_none() && r.get("Method").is_none() {
        // Not a portal request: Logpush's destination check (`{"content":"test",...}`).
        return Ok(Outcome::Skipped(Skip::ServerLog));
    }
    let ts = timestamp(r.get("Datetime"), "Datetime", Unit::Auto)?;
    let error = text(r.get("Error"), "Error")?;
    let success = match r.get("Success") {
        None | Some(Node::Null) => None,
        Some(Node::Bool(b)) => Some(*b),
        Some(Node::Str(s)) if s.eq_ignore_ascii_case("true") => Some(true),
        Some(Node::Str(s)) if s.eq_ignore_ascii_case("false") => Some(false),
        Some(other) => {
            return Err(LineError::field(
                LineErrorKind::WrongType,
                "Success",
                format!("expected a bool, got {}", other.to_json()),
            ))
        }
    };
    let decision = match success {
        Some(true) => Decision::Allow,
        Some(false) => decision_of_error(error.as_deref()),
        None => Decision::Unknown,
    };
    let mut rec = DecisionRecord::new(event_id(None, SOURCE, line), ts, SOURCE, decision);
    rec.identity = text(r.get("UserEmail"), "UserEmail")?;
    rec.identity_id = text(r.get("UserID"), "UserID")?;
    rec.session = text(r.get("SessionID"), "SessionID")?;
    rec.client_addr = text(r.get("ClientIP"), "ClientIP")?;
    rec.server = match text(r.get("ServerID"), "ServerID")? {
        Some(s) => Some(s),
        None => text(r.get("ServerURL"), "ServerURL")?,
    };
    rec.method = text(r.get("Method"), "Method")?;
    let tool = text(r.get("ToolCallName"), "ToolCallName")?;
    if rec.method.as_deref() == Some("tools/call") || (rec.method.is_none() && tool.is_some()) {
        rec.tool = tool;
        if rec.method.is_none() {
            rec.method = Some(Cow::Borrowed("tools/call"));
        }
    }
    rec.message = error;
    rec.latency_ms = duration_ms(
        r.get("ServerResponseDurationMs"),
        "ServerResponseDurationMs",
        Unit::Millis,
    )?;
    out.push(rec);
    Ok(Outcome::Rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: &str = r#"{"ClientCountry":"de","ClientIP":"203.0.113.9","ColoCode":"FRA","Datetime":"2026-11-05T10:00:00.25Z","Error":"","Method":"tools/call","PortalID":"p-1","PromptGetName":"","ResourceReadURI":"","ServerID":"github","ServerResponseDurationMs":87,"ServerURL":"https://mcp.github.example/mcp","SessionID":"sess-9","Success":true,"ToolCallName":"create_issue","UserEmail":"alice@example.com","UserID":"u-1"}"#;

    fn one(line: &str) -> DecisionRecord<'static> {
        crate::decode_one(crate::Format::Cloudflare, line)
    }

    #[test]
    fn a_successful_call_maps_every_column() {
        let r = one(CALL);
        assert_eq!(r.event_id, crate::stable_event_id(SOURCE, CALL));
        assert_eq!(r.ts_micros, 1_793_872_800_250_000);
        assert_eq!(r.identity.as_deref(), Some("alice@example.com"));
        assert_eq!(r.identity_id.as_deref(), Some("u-1"));
        assert_eq!(r.session.as_deref(), Some("sess-9"));
        assert_eq!(r.server.as_deref(), Some("github"));
        assert_eq!(r.method.as_deref(), Some("tools/call"));
        assert_eq!(r.tool.as_deref(), Some("create_issue"));
        assert_eq!((r.decision, r.message), (Decision::Allow, None));
        assert_eq!(r.latency_ms, Some(87.0));
        assert!(matches(&json::parse(CALL).unwrap()));
    }

    #[test]
    fn epochs_in_every_unit() {
        for t in ["1793872800", "1793872800000", "1793872800000000000"] {
            let line = CALL.replace("\"2026-11-05T10:00:00.25Z\"", t);
            assert_eq!(one(&line).ts_micros, 1_793_872_800_000_000, "{t}");
        }
        let e = decode(
            &CALL.replace("\"2026-11-05T10:00:00.25Z\"", "\"soon\""),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (LineErrorKind::BadTimestamp, Some("Datetime"))
        );
    }

    #[test]
    fn failures_are_read_from_the_error_text() {
        let fail = |err: &str| {
            CALL.replace("\"Success\":true", "\"Success\":false")
                .replace("\"Error\":\"\"", &format!("\"Error\":\"{err}\""))
        };
        assert_eq!(
            one(&fail("Access denied by portal policy")).decision,
            Decision::Deny
        );
        assert_eq!(one(&fail("Unauthorized")).decision, Decision::Deny);
        assert_eq!(
            one(&fail("rate limit exceeded")).decision,
            Decision::RateLimited
        );
        assert_eq!(
            one(&fail("upstream returned 429")).decision,
            Decision::RateLimited
        );
        assert_eq!(one(&fail("upstream timeout")).decision, Decision::Error);
        assert_eq!(one(&fail("")).decision, Decision::Error);
        let line = CALL.replace("\"Success\":true,", "");
        let r = one(&line);
        assert_eq!(r.decision, Decision::Unknown);
    }
}
