//! Lasso MCP gateway tracing events: the `xetrack` plugin stores one row per content item of
//! each tool result in an `events` table, which `xt tail --json` (or an export) prints as JSON:
//! `timestamp` (`YYYY-MM-DD HH:MM:SS.ffffff`, no zone, read as UTC), `track_id`, `call_id`,
//! `server_name`, `capability_type`, `capability_name`, `response_type`, `isError`,
//! `content_type`, `content_text`, with the call's arguments flattened beside them.
//!
//! Every row is a call the gateway let through (allow), unless its content is the `lasso`
//! guardrail's refusal (`[ERROR] Response blocked by security guardrail: ...`), a deny with the
//! rule `lasso guardrail`. A tool that returned an error (`isError`) was still allowed; the
//! message says so. event_id ← `call_id`: the content rows of one call share it, so the first
//! is the row and the others count as duplicates. The arguments are the keys that are not
//! xetrack's own columns (null values left out). Lasso logs no identity or policy.

use std::borrow::Cow;

use crate::common::{event_id, naive_utc_timestamp, text};
use crate::error::LineError;
use crate::json::{self, Node};
use crate::Outcome;
use verdict_schema::Decision;
use verdict_schema::DecisionRecord;

/// The `source` value of Lasso rows.
pub const SOURCE: &str = "lasso";

/// The fields that identify Lasso's records.
pub const SIGNATURE: &str = "call_id + capability_name + server_name";

/// xetrack's and the tracing plugin's own columns; every other key is an argument.
const OWN_COLUMNS: &[&str] = &[
    "timestamp",
    "track_id",
    "meta",
    "call_id",
    "capability_name",
    "capability_type",
    "content_type",
    "content_annotations",
    "content_text",
    "response_type",
    "server_name",
    "isError",
];

/// The refusal text of the `lasso` guardrail plugin.
const GUARDRAIL_BLOCK: &str = "[ERROR] Response blocked by security guardrail";

/// See [`SIGNATURE`].
pub fn matches(r: &Node<'_>) -> bool {
    r.get("call_id").is_some()
        && r.get("capability_name").is_some()
        && r.get("server_name").is_some()
}

/// Decodes one xetrack event row.
///
/// # Errors
/// Invalid JSON, a missing or bad `timestamp`, or a field of the wrong type, naming the field.
pub fn decode<'a>(line: &'a str, out: &mut Vec<DecisionRecord<'a>>) -> Result<Outcome, LineError> {
    let r = json::object(line)?;
    let ts = naive_utc_timestamp(r.get("timestamp"), "timestamp")?;
    let content = text(r.get("content_text"), "content_text")?;
    let blocked = content
        .as_deref()
        .is_some_and(|c| c.trim_start().starts_with(GUARDRAIL_BLOCK));
    let decision = if blocked {
        Decision::Deny
    } else {
        Decision::Allow
    };
    let id = text(r.get("call_id"), "call_id")?;
    let mut rec = DecisionRecord::new(event_id(id, SOURCE, line), ts, SOURCE, decision);
    rec.server = text(r.get("server_name"), "server_name")?;
    rec.method = match r.get("capability_type").and_then(Node::as_str) {
        Some("prompt") => Some(Cow::Borrowed("prompts/get")),
        Some("resource") => Some(Cow::Borrowed("resources/read")),
        _ => Some(Cow::Borrowed("tools/call")),
    };
    let name = text(r.get("capability_name"), "capability_name")?;
    if rec.method.as_deref() == Some("tools/call") {
        rec.tool = name;
    }
    let args: Vec<(Cow<'a, str>, Node<'a>)> = r
        .as_object()
        .unwrap_or_default()
        .iter()
        .filter(|(k, v)| !OWN_COLUMNS.contains(&k.as_ref()) && !v.is_null())
        .cloned()
        .collect();
    if !args.is_empty() {
        let obj = Node::Obj(args);
        rec.arg_keys = obj
            .sorted_keys()
            .map(|ks| ks.into_iter().map(|k| Cow::Owned(k.into_owned())).collect());
        rec.args = Some(Cow::Owned(obj.to_json()));
    }
    if blocked {
        rec.rule = Some(Cow::Borrowed("lasso guardrail"));
        rec.message = content;
    } else if matches!(
        r.get("isError"),
        Some(Node::Bool(true)) | Some(Node::UInt(1))
    ) {
        rec.message = Some(Cow::Borrowed("the tool returned an error"));
    }
    out.push(rec);
    Ok(Outcome::Rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_and_a_guardrail_block() {
        let row = r#"{"timestamp":"2026-11-09 10:00:00.500000","track_id":"t-1","call_id":"c-1","capability_name":"read_file","capability_type":"tool","server_name":"files","response_type":"CallToolResult","isError":0,"content_type":"text","content_text":"hello","path":"/tmp/a","mode":null}"#;
        let r = crate::decode_one(crate::Format::Lasso, row);
        assert_eq!(r.decision, Decision::Allow);
        assert_eq!(r.event_id, "c-1");
        assert_eq!(r.tool.as_deref(), Some("read_file"));
        assert_eq!(r.arg_keys, Some(vec![Cow::Borrowed("path")]));
        assert_eq!(
            verdict_schema::time::format_micros(r.ts_micros),
            "2026-11-09T10:00:00.500000Z"
        );
        let blocked = row.replace(
            r#""content_text":"hello""#,
            r#""content_text":"[ERROR] Response blocked by security guardrail: secret found""#,
        );
        let r = crate::decode_one(crate::Format::Lasso, &blocked);
        assert_eq!(r.decision, Decision::Deny);
        assert_eq!(r.rule.as_deref(), Some("lasso guardrail"));
    }
}
