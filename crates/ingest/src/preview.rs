//! `ingest --dry-run`: how the first records of each input map onto the decisions table, read
//! with the same detection and decoders as an ingest, without opening or writing a warehouse.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};
use verdict_formats::{Decoder, LineError, Sink, Skip};
use verdict_schema::time::format_micros;
use verdict_schema::DecisionRecord;

use crate::error::{Error, Result};
use crate::pipeline::{IngestOptions, InputFormat};
use crate::source::{self, Chunker};

/// The first records of one input, as they would be ingested.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Preview {
    /// The input name.
    pub file: String,
    /// The format used.
    pub format: String,
    /// Whether it was detected.
    pub detected: bool,
    /// The rows, each with its input line and every column (`raw` left out).
    pub rows: Vec<Map<String, Value>>,
    /// Records that would be quarantined: line, error code, field and message.
    pub rejected: Vec<PreviewReject>,
    /// Records known not to be decisions.
    pub skipped: u64,
    /// [`skipped`](Self::skipped) by reason (`server_log`, `response` ...).
    pub skipped_by: BTreeMap<String, u64>,
}

/// A record that would be quarantined.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PreviewReject {
    /// 1-based line.
    pub line: u64,
    /// The error code.
    pub error: &'static str,
    /// The field at fault.
    pub field: Option<String>,
    /// Why.
    pub message: String,
}

/// The columns of a preview row, in table order (after `line`).
pub const PREVIEW_COLUMNS: [&str; 19] = [
    "event_id",
    "ts",
    "source",
    "identity",
    "identity_id",
    "session",
    "server",
    "method",
    "tool",
    "arg_keys",
    "args",
    "decision",
    "rule",
    "message",
    "policy_id",
    "policy_version",
    "upstream_status",
    "latency_ms",
    "client_addr",
];

/// The record as a JSON object of the table's columns (what `--dry-run` prints).
pub fn record_json(r: &DecisionRecord<'_>, line: u64) -> Map<String, Value> {
    let s = |v: &Option<std::borrow::Cow<'_, str>>| v.as_deref().map_or(Value::Null, Value::from);
    let mut m = Map::new();
    m.insert("line".into(), line.into());
    m.insert("event_id".into(), r.event_id.as_ref().into());
    m.insert("ts".into(), format_micros(r.ts_micros).into());
    m.insert("source".into(), r.source.into());
    m.insert("identity".into(), s(&r.identity));
    m.insert("identity_id".into(), s(&r.identity_id));
    m.insert("session".into(), s(&r.session));
    m.insert("server".into(), s(&r.server));
    m.insert("method".into(), s(&r.method));
    m.insert("tool".into(), s(&r.tool));
    m.insert(
        "arg_keys".into(),
        r.arg_keys.as_ref().map_or(Value::Null, |k| {
            Value::Array(k.iter().map(|x| Value::from(x.as_ref())).collect())
        }),
    );
    m.insert("args".into(), s(&r.args));
    m.insert("decision".into(), r.decision.as_str().into());
    m.insert("rule".into(), s(&r.rule));
    m.insert("message".into(), s(&r.message));
    m.insert("policy_id".into(), s(&r.policy_id));
    m.insert("policy_version".into(), s(&r.policy_version));
    m.insert(
        "upstream_status".into(),
        r.upstream_status.map_or(Value::Null, Value::from),
    );
    m.insert(
        "latency_ms".into(),
        r.latency_ms.map_or(Value::Null, Value::from),
    );
    m.insert("client_addr".into(), s(&r.client_addr));
    m
}

struct PreviewSink<'p> {
    preview: &'p mut Preview,
    line: u64,
    want: usize,
}

impl Sink for PreviewSink<'_> {
    fn row(&mut self, r: &DecisionRecord<'_>, _raw: &str) {
        if self.preview.rows.len() < self.want {
            self.preview.rows.push(record_json(r, self.line));
        }
    }
    fn skipped(&mut self, reason: Skip, _raw: &str) {
        self.preview.skipped += 1;
        *self
            .preview
            .skipped_by
            .entry(reason.code().to_string())
            .or_default() += 1;
    }
    fn bad(&mut self, e: LineError, _raw: &str) {
        if self.preview.rejected.len() < self.want {
            self.preview.rejected.push(PreviewReject {
                line: self.line,
                error: e.kind.code(),
                field: e.field,
                message: e.message,
            });
        }
    }
}

/// Decodes up to `rows` rows of each input (and reports the bad records met on the way).
///
/// # Errors
/// Unreadable inputs and inputs whose format cannot be detected.
pub fn preview(opts: &IngestOptions, rows: usize) -> Result<Vec<Preview>> {
    let inputs = source::resolve(&opts.inputs)?;
    let mut out = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let name = input.name();
        let reader = source::open(input)?;
        let mut chunker = Chunker::new(reader, i, opts.chunk_bytes, opts.max_line_bytes);
        let mut decoder: Option<(Decoder, Option<String>)> = match &opts.format {
            InputFormat::Use(d) => Some((d.clone(), None)),
            InputFormat::Auto => None,
        };
        let mut p = Preview {
            file: name.clone(),
            format: String::new(),
            detected: false,
            rows: Vec::new(),
            rejected: Vec::new(),
            skipped: 0,
            skipped_by: BTreeMap::new(),
        };
        'chunks: while let Some(chunk) = chunker.next_chunk().map_err(|source| Error::Read {
            file: name.clone(),
            source,
        })? {
            let lines: Vec<&[u8]> = chunk.bytes.split(|&b| b == b'\n').collect();
            if decoder.is_none() {
                let d = crate::pipeline::detect_chunk(&chunk, opts.envelope.as_deref()).map_err(
                    |message| Error::Detect {
                        file: name.clone(),
                        message,
                    },
                )?;
                decoder = Some((Decoder::Builtin(d.format), Some(d.label())));
            }
            let Some((dec, _)) = &decoder else { break };
            for (line, raw) in (chunk.first_line..).zip(lines) {
                if p.rows.len() >= rows {
                    break 'chunks;
                }
                let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
                if raw.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let text = String::from_utf8_lossy(raw);
                let mut sink = PreviewSink {
                    preview: &mut p,
                    line,
                    want: rows,
                };
                match opts.envelope.as_deref().map(|e| e.unwrap(&text)) {
                    None => {
                        dec.decode_line(&text, &mut sink);
                    }
                    Some(Ok(inner)) => {
                        dec.decode_line(&inner, &mut sink);
                    }
                    Some(Err(e)) => sink.bad(e, &text),
                }
            }
        }
        if let Some((d, detected)) = decoder {
            p.format = detected.clone().unwrap_or_else(|| d.name().to_string());
            p.detected = detected.is_some();
        }
        out.push(p);
    }
    Ok(out)
}
