//! verdict-formats: every input format verdict reads, turning one proxy log line into
//! [`DecisionRecord`]s of the `decisions` table (declared in `verdict-schema`).
//!
//! A closed enum and a `match`, so that adding a format is one variant and one module; a user
//! [`Mapping`] covers any other proxy. [`Decoder::decode_line`] is what the ingest runs per line:
//! it unwraps the envelope, fans out JSON arrays, decodes and applies a mapping's overrides.
//!
//! ```
//! use verdict_formats::Format;
//! use verdict_schema::Decision;
//!
//! let line = r#"{"timestamp":"2026-11-02T10:15:02.412+01:00","request_id":"req_1","grant_label":"alice",
//!   "method":"tools/call","tool":"session_create","decision":"deny",
//!   "rule":"/tools/session_create/limits/session_create_rate"}"#;
//! let mut records = Vec::new();
//! Format::PolicyLayer.decode(line, &mut records).unwrap();
//! assert_eq!(records[0].decision, Decision::RateLimited);
//! assert_eq!(verdict_schema::time::format_micros(records[0].ts_micros), "2026-11-02T09:15:02.412000Z");
//! ```
#![deny(missing_docs)]

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde_json::value::RawValue;
use xxhash_rust::xxh3::Xxh3;

use verdict_schema::DecisionRecord;

pub mod agentgateway;
pub mod cedarling;
pub mod cloudflare;
pub mod cloudtrail;
pub mod common;
pub mod contextforge;
mod detect;
pub mod docker;
pub mod envelope;
pub mod envoy;
mod error;
pub mod gatekit;
pub mod json;
pub mod kong;
pub mod lasso;
pub mod mapping;
pub mod mcp_guard;
pub mod opa;
pub mod policylayer;
pub mod pomerium;
#[cfg(test)]
mod samples;
pub mod toolhive;
pub mod tyk;

pub use detect::{detect, DetectError, Detected, DETECT_LINES};
pub use envelope::UserEnvelope;
pub use error::{LineError, LineErrorKind};
pub use mapping::{Mapping, MappingError};

/// Why a record of a known format yields no row: it is positively known not to be a decision.
/// Every other record becomes a row or is quarantined with a named code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Skip {
    /// The product's own operational line: start-up, configuration, debug and server messages.
    ServerLog,
    /// The response (or result) line of a call whose request line already carries the decision.
    Response,
    /// A one-way notification: no call was decided.
    Notification,
    /// A catalogue or tool-list load, not a call.
    CatalogueLoad,
    /// A management event (registry or policy-store administration), not a tool call.
    Management,
    /// A successful authentication with no call attached; the calls that follow are rows.
    Authentication,
    /// Left out by the user mapping's `only` filter.
    MappingOnly,
    /// A transport connection opened (an SSE stream), no call decided.
    Connection,
}

impl Skip {
    /// The stable code shown in summaries (`server_log`, `response` ...).
    pub fn code(self) -> &'static str {
        match self {
            Skip::ServerLog => "server_log",
            Skip::Response => "response",
            Skip::Notification => "notification",
            Skip::CatalogueLoad => "catalogue_load",
            Skip::Management => "management",
            Skip::Authentication => "authentication",
            Skip::MappingOnly => "mapping_only",
            Skip::Connection => "connection",
        }
    }

    /// The reason whose [`code`](Self::code) this is.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "server_log" => Skip::ServerLog,
            "response" => Skip::Response,
            "notification" => Skip::Notification,
            "catalogue_load" => Skip::CatalogueLoad,
            "management" => Skip::Management,
            "authentication" => Skip::Authentication,
            "mapping_only" => Skip::MappingOnly,
            "connection" => Skip::Connection,
            _ => return None,
        })
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What decoding one record gave, besides errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// One or more rows were appended.
    Rows,
    /// No row: the record is known not to be a decision.
    Skipped(Skip),
}

/// A proxy log format verdict reads natively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// The PolicyLayer MCP gateway's JSONL decision log (the home format).
    PolicyLayer,
    /// OPA decision logs: console lines or the gzip JSON arrays its plugin uploads.
    Opa,
    /// Envoy JSON access logs with ext_authz / RBAC / rate-limit flags and details.
    Envoy,
    /// agentgateway JSON request logs.
    AgentGateway,
    /// Kong File Log entries with `ai.mcp` (AI MCP Proxy).
    Kong,
    /// Docker MCP Gateway policy audit events.
    Docker,
    /// Gatekit `audit_jsonl` events.
    Gatekit,
    /// mcp-guard audit lines.
    McpGuard,
    /// ToolHive audit events (slog JSON).
    ToolHive,
    /// Tyk MCP access-log lines.
    Tyk,
    /// Cloudflare MCP portal logs (Logpush).
    Cloudflare,
    /// Cedarling (Janssen) decision logs.
    Cedarling,
    /// CloudTrail `IsAuthorized` events of Amazon Verified Permissions.
    CloudTrail,
    /// IBM ContextForge (mcp-context-forge) structured logs and plugin violations.
    ContextForge,
    /// Pomerium authorize logs (`authorize check`, MCP-aware).
    Pomerium,
    /// Lasso MCP gateway tracing events (xetrack `events` rows).
    Lasso,
}

impl Format {
    /// Every built-in format, in the order detection tries them.
    pub const ALL: [Format; 16] = [
        Format::PolicyLayer,
        Format::Opa,
        Format::Envoy,
        Format::AgentGateway,
        Format::Kong,
        Format::Docker,
        Format::Gatekit,
        Format::McpGuard,
        Format::ToolHive,
        Format::Tyk,
        Format::Cloudflare,
        Format::Cedarling,
        Format::CloudTrail,
        Format::ContextForge,
        Format::Pomerium,
        Format::Lasso,
    ];

    /// The name used on the command line and stored in the `source` column.
    pub fn name(self) -> &'static str {
        match self {
            Format::PolicyLayer => policylayer::SOURCE,
            Format::Opa => opa::SOURCE,
            Format::Envoy => envoy::SOURCE,
            Format::AgentGateway => agentgateway::SOURCE,
            Format::Kong => kong::SOURCE,
            Format::Docker => docker::SOURCE,
            Format::Gatekit => gatekit::SOURCE,
            Format::McpGuard => mcp_guard::SOURCE,
            Format::ToolHive => toolhive::SOURCE,
            Format::Tyk => tyk::SOURCE,
            Format::Cloudflare => cloudflare::SOURCE,
            Format::Cedarling => cedarling::SOURCE,
            Format::CloudTrail => cloudtrail::SOURCE,
            Format::ContextForge => contextforge::SOURCE,
            Format::Pomerium => pomerium::SOURCE,
            Format::Lasso => lasso::SOURCE,
        }
    }

    /// One line describing the format.
    pub fn description(self) -> &'static str {
        match self {
            Format::PolicyLayer => "PolicyLayer MCP gateway decision log (one JSON object a line)",
            Format::Opa => {
                "OPA decision logs: console lines, or the gzip JSON arrays of its upload plugin"
            }
            Format::Envoy => {
                "Envoy JSON access log (ext_authz, RBAC, local/global rate limit, MCP filter)"
            }
            Format::AgentGateway => "agentgateway request log (JSON, or the default text format)",
            Format::Kong => {
                "Kong File Log / HTTP Log entries (one row per audited tool call with ai.mcp, else per request)"
            }
            Format::Docker => "Docker MCP Gateway policy audit events",
            Format::Gatekit => {
                "Gatekit audit_jsonl events (REQUEST, REQUEST_MODIFIED and SECURITY_BLOCK carry decisions)"
            }
            Format::McpGuard => "mcp-guard audit log lines",
            Format::ToolHive => "ToolHive audit events (slog JSON, msg=audit_event)",
            Format::Tyk => "Tyk access-log lines (logrus JSON or text)",
            Format::Cloudflare => "Cloudflare MCP portal logs (Logpush mcp_portal_logs)",
            Format::Cedarling => "Cedarling (Janssen) decision logs (log_kind=Decision)",
            Format::CloudTrail => {
                "CloudTrail IsAuthorized / BatchIsAuthorized events of Amazon Verified Permissions"
            }
            Format::ContextForge => {
                "IBM ContextForge JSON logs (security events, plugin violations, audit records)"
            }
            Format::Pomerium => "Pomerium authorize logs (authorize check, MCP method and tool)",
            Format::Lasso => "Lasso MCP gateway tracing events (xetrack rows, JSON)",
        }
    }

    /// The fields that identify the format's records in auto-detection.
    pub fn signature(self) -> &'static str {
        match self {
            Format::PolicyLayer => {
                "timestamp + decision + one of request_id, grant_id, grant_label"
            }
            Format::Opa => {
                "decision_id + path (or query), or type=openpolicyagent.org/decision_logs"
            }
            Format::Envoy => {
                "response_flags, response_flags_long or response_code_details, or response_code + an MCP method key"
            }
            Format::AgentGateway => "scope=request + http.status",
            Format::Kong => "started_at + latencies, or an ai.mcp object",
            Format::Docker => "trigger + target_type + result",
            Format::Gatekit => "pipeline_outcome",
            Format::McpGuard => "event_type + identity_id",
            Format::ToolHive => {
                "msg=audit_event + outcome + component, or outcome + component + source + target"
            }
            Format::Tyk => "prefix=access-log + mcp_method or api_id",
            Format::Cloudflare => "PortalID + ToolCallName, or PortalID + Method + Datetime",
            Format::Cedarling => "log_kind (or log_type) + pdp_id, decision or policystore_id",
            Format::CloudTrail => {
                "eventSource=verifiedpermissions.amazonaws.com + additionalEventData, or Records[] holding one"
            }
            Format::ContextForge => contextforge::SIGNATURE,
            Format::Pomerium => pomerium::SIGNATURE,
            Format::Lasso => lasso::SIGNATURE,
        }
    }

    /// Whether one (unwrapped) record looks like this format.
    pub fn matches(self, record: &json::Node<'_>) -> bool {
        match self {
            Format::PolicyLayer => policylayer::matches(record),
            Format::Opa => opa::matches(record),
            Format::Envoy => envoy::matches(record),
            Format::AgentGateway => agentgateway::matches(record),
            Format::Kong => kong::matches(record),
            Format::Docker => docker::matches(record),
            Format::Gatekit => gatekit::matches(record),
            Format::McpGuard => mcp_guard::matches(record),
            Format::ToolHive => toolhive::matches(record),
            Format::Tyk => tyk::matches(record),
            Format::Cloudflare => cloudflare::matches(record),
            Format::Cedarling => cedarling::matches(record),
            Format::CloudTrail => cloudtrail::matches(record),
            Format::ContextForge => contextforge::matches(record),
            Format::Pomerium => pomerium::matches(record),
            Format::Lasso => lasso::matches(record),
        }
    }

    /// The name of the shape (version or variant) of one record of this format, where the
    /// format has several (`2024 log_type`, `text`, `OTel keys` ...); `None` for the current
    /// default shape.
    pub fn shape(self, record: &json::Node<'_>) -> Option<&'static str> {
        match self {
            Format::Opa => opa::shape(record),
            Format::Envoy => envoy::shape(record),
            Format::AgentGateway => agentgateway::shape(record),
            Format::Kong => kong::shape(record),
            Format::Gatekit => gatekit::shape(record),
            Format::McpGuard => mcp_guard::shape(record),
            Format::ToolHive => toolhive::shape(record),
            Format::Tyk => tyk::shape(record),
            Format::Cedarling => cedarling::shape(record),
            Format::ContextForge => contextforge::shape(record),
            _ => None,
        }
    }

    /// Decodes one record (a JSON object, out of its envelope) into records appended to `out`.
    /// Most records yield one row; formats that fan out may yield several, and a line the proxy
    /// wrote that is not a decision (a startup message) yields none.
    ///
    /// # Errors
    /// A [`LineError`] naming the field at fault; nothing is appended then.
    pub fn decode<'a>(
        self,
        text: &'a str,
        out: &mut Vec<DecisionRecord<'a>>,
    ) -> Result<Outcome, LineError> {
        match self {
            Format::PolicyLayer => {
                out.push(policylayer::decode(text)?);
                Ok(Outcome::Rows)
            }
            Format::Opa => opa::decode(text, out),
            Format::Envoy => envoy::decode(text, out),
            Format::AgentGateway => agentgateway::decode(text, out),
            Format::Kong => kong::decode(text, out),
            Format::Docker => docker::decode(text, out),
            Format::Gatekit => gatekit::decode(text, out),
            Format::McpGuard => mcp_guard::decode(text, out),
            Format::ToolHive => toolhive::decode(text, out),
            Format::Tyk => tyk::decode(text, out),
            Format::Cloudflare => cloudflare::decode(text, out),
            Format::Cedarling => cedarling::decode(text, out),
            Format::CloudTrail => cloudtrail::decode(text, out),
            Format::ContextForge => contextforge::decode(text, out),
            Format::Pomerium => pomerium::decode(text, out),
            Format::Lasso => lasso::decode(text, out),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let want = s.trim().to_ascii_lowercase().replace('_', "-");
        Format::ALL
            .into_iter()
            .find(|f| f.name() == want || (want == "mcpguard" && *f == Format::McpGuard))
            .ok_or_else(|| {
                let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
                format!("unknown format `{s}` (known: auto, {})", names.join(", "))
            })
    }
}

/// The id of a record whose proxy wrote none: a stable hash of the source and the raw record,
/// so that ingesting the same record twice yields the same id.
pub fn stable_event_id(source: &str, raw: &str) -> String {
    let mut h = Xxh3::new();
    h.update(source.as_bytes());
    h.update(&[0]);
    h.update(raw.trim().as_bytes());
    format!("h{:032x}", h.digest128())
}

/// Receives what one input line became: rows with their raw text, records skipped with their
/// reason, and rejected records. Every record reaches exactly one of the three.
pub trait Sink {
    /// A decoded row; `raw` is the text kept in the `raw` column (the line, or the element of a
    /// fanned-out array).
    fn row(&mut self, record: &DecisionRecord<'_>, raw: &str);
    /// A record known not to be a decision, with the reason.
    fn skipped(&mut self, reason: Skip, raw: &str);
    /// A record that could not become a row, with its raw text.
    fn bad(&mut self, error: LineError, raw: &str);
}

/// How one input is decoded: a built-in format, a user mapping (which may extend a built-in
/// format), or a format still to be detected from the input's first records.
#[derive(Debug, Clone)]
pub enum Decoder {
    /// A built-in format.
    Builtin(Format),
    /// A user mapping.
    Mapping(Arc<Mapping>),
}

impl Decoder {
    /// The `source` name rows get.
    pub fn name(&self) -> &str {
        match self {
            Decoder::Builtin(f) => f.name(),
            Decoder::Mapping(m) => m.name(),
        }
    }

    /// The decoder the user chose: a format name (`auto`: none, detect it per input) and
    /// perhaps a mapping, given as (its file's name, its TOML text). A mapping with a `base`
    /// must agree with a named format.
    ///
    /// # Errors
    /// An unknown name, a malformed mapping, or a name and a mapping that disagree; the message
    /// names the mapping's file.
    pub fn choose(name: &str, mapping: Option<(&str, &str)>) -> Result<Option<Decoder>, String> {
        let named = if name.trim().eq_ignore_ascii_case("auto") {
            None
        } else {
            Some(name.parse::<Format>()?)
        };
        let Some((file, text)) = mapping else {
            return Ok(named.map(Decoder::Builtin));
        };
        let m = Mapping::from_toml(text).map_err(|e| format!("mapping {file}: {e}"))?;
        if let Some(f) = named {
            if m.base() != Some(f) {
                return Err(format!(
                    "input format {f} and the mapping {file} (base {}) disagree: name the format in the mapping's `base`",
                    m.base().map_or("none", Format::name)
                ));
            }
        }
        Ok(Some(Decoder::Mapping(Arc::new(m))))
    }

    /// Decodes one input line (without its terminator): takes the record out of its envelope,
    /// fans a JSON array out into one record per element, decodes each, and hands rows, skipped
    /// and rejected records to `sink`. Returns how many rows it emitted.
    pub fn decode_line(&self, line: &str, sink: &mut dyn Sink) -> usize {
        let (text, _) = match envelope::unwrap(line) {
            Ok(t) => t,
            Err(e) => {
                sink.bad(e, line);
                return 0;
            }
        };
        if text.trim_start().starts_with('[') {
            let elements: Vec<&RawValue> = match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(e) => {
                    sink.bad(
                        LineError::record(LineErrorKind::InvalidJson, e.to_string()),
                        line,
                    );
                    return 0;
                }
            };
            return elements
                .iter()
                .enumerate()
                .map(|(i, el)| self.deliver(el.get(), el.get(), Some(i), sink))
                .sum();
        }
        self.deliver(&text, line, None, sink)
    }

    /// Decodes one record and hands what it became to `sink` (`raw` is the text stored for it;
    /// `element` the index within a fanned-out array). A record that yields no row without
    /// saying why is quarantined as `unrecognised_event`: nothing vanishes.
    fn deliver(&self, text: &str, raw: &str, element: Option<usize>, sink: &mut dyn Sink) -> usize {
        let mut out = Vec::new();
        let result = match self.decode_record(text, &mut out) {
            Ok(Outcome::Rows) if out.is_empty() => Err(match json::parse(text) {
                Ok(node) => common::unrecognised(&node, "no row came of this record"),
                Err(e) => e,
            }),
            other => other,
        };
        match result {
            Ok(Outcome::Rows) => {
                for r in &out {
                    sink.row(r, r.element.as_deref().unwrap_or(raw));
                }
                out.len()
            }
            Ok(Outcome::Skipped(reason)) => {
                sink.skipped(reason, raw);
                0
            }
            Err(mut e) => {
                if let Some(i) = element {
                    e.field = Some(match e.field.take() {
                        Some(f) => format!("[{i}].{f}"),
                        None => format!("[{i}]"),
                    });
                }
                sink.bad(e, raw);
                0
            }
        }
    }

    /// Decodes one JSON record (no envelope, no array).
    ///
    /// # Errors
    /// The record's [`LineError`]; nothing is appended then.
    pub fn decode_record<'a>(
        &'a self,
        text: &'a str,
        out: &mut Vec<DecisionRecord<'a>>,
    ) -> Result<Outcome, LineError> {
        match self {
            Decoder::Builtin(f) => f.decode(text, out),
            Decoder::Mapping(m) => m.decode(text, out),
        }
    }
}

impl From<Format> for Decoder {
    fn from(f: Format) -> Self {
        Decoder::Builtin(f)
    }
}

/// Test helper: a `'static` copy of a test line (leaked), so its rows may outlive a temporary.
#[cfg(test)]
pub(crate) fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Test helper: every row of one line of `format` (the line is leaked so rows outlive it).
#[cfg(test)]
pub(crate) fn decode_all(format: Format, line: &str) -> Vec<DecisionRecord<'static>> {
    let line = leak(line.to_string());
    let mut out = Vec::new();
    format
        .decode(line, &mut out)
        .unwrap_or_else(|e| panic!("{format}: {e}: {line}"));
    out
}

/// Test helper: the single row of one line of `format`.
#[cfg(test)]
pub(crate) fn decode_one(format: Format, line: &str) -> DecisionRecord<'static> {
    let mut rows = decode_all(format, line);
    assert_eq!(rows.len(), 1, "{format}: {line}");
    rows.remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>().unwrap(), f);
        }
        assert_eq!("MCP_GUARD".parse::<Format>().unwrap(), Format::McpGuard);
        assert!("nope"
            .parse::<Format>()
            .unwrap_err()
            .contains("policylayer"));
    }

    #[test]
    fn skip_and_error_codes_round_trip() {
        use crate::error::LineErrorKind as K;
        // The matches fail to compile when a variant is added and not listed here.
        let skips = [
            Skip::ServerLog,
            Skip::Response,
            Skip::Notification,
            Skip::CatalogueLoad,
            Skip::Management,
            Skip::Authentication,
            Skip::MappingOnly,
            Skip::Connection,
        ];
        for s in skips {
            match s {
                Skip::ServerLog
                | Skip::Response
                | Skip::Notification
                | Skip::CatalogueLoad
                | Skip::Management
                | Skip::Authentication
                | Skip::MappingOnly
                | Skip::Connection => {}
            }
            assert_eq!(Skip::from_code(s.code()), Some(s));
        }
        let kinds = [
            K::InvalidJson,
            K::InvalidUtf8,
            K::TooLong,
            K::MissingField,
            K::BadTimestamp,
            K::UnknownDecision,
            K::WrongType,
            K::UnrecognisedEvent,
            K::MissingTimestamp,
            K::EnvelopeMismatch,
            K::BadLatency,
        ];
        for k in kinds {
            match k {
                K::InvalidJson
                | K::InvalidUtf8
                | K::TooLong
                | K::MissingField
                | K::BadTimestamp
                | K::UnknownDecision
                | K::WrongType
                | K::UnrecognisedEvent
                | K::MissingTimestamp
                | K::EnvelopeMismatch
                | K::BadLatency => {}
            }
            assert_eq!(K::from_code(k.code()).as_ref(), Some(&k));
        }
        assert_eq!(Skip::from_code("nope"), None);
        assert_eq!(K::from_code("nope"), None);
    }

    #[test]
    fn stable_ids_depend_on_source_and_content_only() {
        let a = stable_event_id("policylayer", "{\"a\":1}");
        assert_eq!(a, stable_event_id("policylayer", "{\"a\":1}  "));
        assert_ne!(a, stable_event_id("opa", "{\"a\":1}"));
        assert_eq!(a.len(), 33);
    }

    struct Collect(Vec<(String, String)>, Vec<(String, String)>);
    impl Sink for Collect {
        fn row(&mut self, r: &DecisionRecord<'_>, raw: &str) {
            self.0.push((r.event_id.to_string(), raw.to_string()));
        }
        fn skipped(&mut self, reason: Skip, raw: &str) {
            self.1.push((format!("skipped {reason}"), raw.to_string()));
        }
        fn bad(&mut self, e: LineError, raw: &str) {
            self.1.push((e.to_string(), raw.to_string()));
        }
    }

    #[test]
    fn arrays_fan_out_with_each_element_as_raw() {
        let line = r#"[{"timestamp":"2026-11-02T09:15:02Z","request_id":"a","decision":"allow"}, {"request_id":"b","decision":"deny"}]"#;
        let mut c = Collect(Vec::new(), Vec::new());
        let n = Decoder::Builtin(Format::PolicyLayer).decode_line(line, &mut c);
        assert_eq!(n, 1);
        assert_eq!(
            c.0,
            [(
                "a".to_string(),
                r#"{"timestamp":"2026-11-02T09:15:02Z","request_id":"a","decision":"allow"}"#
                    .to_string()
            )]
        );
        assert_eq!(c.1.len(), 1);
        assert!(
            c.1[0].0.starts_with(
                "missing_timestamp: field `[1].timestamp`: required timestamp is missing"
            ),
            "{}",
            c.1[0].0
        );
        assert_eq!(c.1[0].1, r#"{"request_id":"b","decision":"deny"}"#);
    }

    #[test]
    fn envelopes_keep_the_whole_line_as_raw() {
        let line = r#"{"log":"{\"timestamp\":\"2026-11-02T09:15:02Z\",\"request_id\":\"a\",\"decision\":\"allow\"}\n","stream":"stdout","time":"2026-11-02T09:15:02.1Z"}"#;
        let mut c = Collect(Vec::new(), Vec::new());
        assert_eq!(
            Decoder::Builtin(Format::PolicyLayer).decode_line(line, &mut c),
            1
        );
        assert_eq!(c.0[0].1, line);
    }
}
