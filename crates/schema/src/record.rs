//! One decision as a borrowed row, and the builder that turns rows into Arrow record batches.
//! The builder owns the table's column order; formats only fill a [`DecisionRecord`].

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, Int32Builder, ListBuilder, RecordBatch, StringBuilder,
    StringDictionaryBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};
use arrow::datatypes::Int32Type;

use crate::columns::{arg_keys_item, decisions_schema};
use crate::error::Result;
use crate::Decision;

/// One row of the decisions table, borrowing from the input line where it can.
/// `raw` (unless [`element`](Self::element) is set), `ingest_file` and `ingest_line` are
/// supplied to the builder separately.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRecord<'a> {
    /// The proxy's id for the decision, or the stable fallback hash.
    pub event_id: Cow<'a, str>,
    /// When the proxy decided, UTC microseconds.
    pub ts_micros: i64,
    /// The format (or mapping) that produced the row.
    pub source: &'a str,
    /// Who called.
    pub identity: Option<Cow<'a, str>>,
    /// A stable id of the identity.
    pub identity_id: Option<Cow<'a, str>>,
    /// Agent/MCP session.
    pub session: Option<Cow<'a, str>>,
    /// Upstream server.
    pub server: Option<Cow<'a, str>>,
    /// JSON-RPC method or `VERB /path`.
    pub method: Option<Cow<'a, str>>,
    /// Tool name of a `tools/call`.
    pub tool: Option<Cow<'a, str>>,
    /// Top-level argument keys, sorted.
    pub arg_keys: Option<Vec<Cow<'a, str>>>,
    /// Argument values as JSON text.
    pub args: Option<Cow<'a, str>>,
    /// The outcome.
    pub decision: Decision,
    /// What decided.
    pub rule: Option<Cow<'a, str>>,
    /// The user-facing message.
    pub message: Option<Cow<'a, str>>,
    /// Policy in force.
    pub policy_id: Option<Cow<'a, str>>,
    /// Its version.
    pub policy_version: Option<Cow<'a, str>>,
    /// Upstream HTTP status.
    pub upstream_status: Option<i32>,
    /// End-to-end latency in milliseconds.
    pub latency_ms: Option<f64>,
    /// The network address of the client the proxy saw (OPA `requested_by`, Envoy's downstream
    /// address ...); never the identity.
    pub client_addr: Option<Cow<'a, str>>,
    /// The element of a fanned-out array this row came from, stored in `raw` instead of the
    /// whole line; `None`: the line is the record.
    pub element: Option<Cow<'a, str>>,
}

impl<'a> DecisionRecord<'a> {
    /// A record with only the required columns set.
    pub fn new(
        event_id: impl Into<Cow<'a, str>>,
        ts_micros: i64,
        source: &'a str,
        decision: Decision,
    ) -> Self {
        Self {
            event_id: event_id.into(),
            ts_micros,
            source,
            identity: None,
            identity_id: None,
            session: None,
            server: None,
            method: None,
            tool: None,
            arg_keys: None,
            args: None,
            decision,
            rule: None,
            message: None,
            policy_id: None,
            policy_version: None,
            upstream_status: None,
            latency_ms: None,
            client_addr: None,
            element: None,
        }
    }
}

/// Where a row came from and what was done to it on the way in: the columns a format does not
/// fill (`ingest_file`, `ingest_line`, `ingest_principal`, `ingest_peer`, `redacted`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RowMeta<'m> {
    /// The input (path, `-`, `http`).
    pub ingest_file: Option<&'m str>,
    /// The 1-based line there.
    pub ingest_line: Option<u64>,
    /// Who delivered it (an HTTP token's name or a client certificate's subject).
    pub principal: Option<&'m str>,
    /// The peer address of an HTTP upload.
    pub peer: Option<&'m str>,
    /// JSON paths whose values were redacted (none: null).
    pub redacted: &'m [String],
}

/// Accumulates [`DecisionRecord`]s into a [`RecordBatch`] of [`decisions_schema`].
pub struct DecisionBatchBuilder {
    keep_raw: bool,
    event_id: StringBuilder,
    ts: TimestampMicrosecondBuilder,
    source: StringDictionaryBuilder<Int32Type>,
    identity: StringBuilder,
    identity_id: StringBuilder,
    session: StringBuilder,
    server: StringBuilder,
    method: StringBuilder,
    tool: StringBuilder,
    arg_keys: ListBuilder<StringBuilder>,
    args: StringBuilder,
    decision: StringDictionaryBuilder<Int32Type>,
    rule: StringBuilder,
    message: StringBuilder,
    policy_id: StringBuilder,
    policy_version: StringBuilder,
    upstream_status: Int32Builder,
    latency_ms: Float64Builder,
    raw: StringBuilder,
    ingest_file: StringBuilder,
    ingest_line: UInt64Builder,
    client_addr: StringBuilder,
    ingest_principal: StringBuilder,
    ingest_peer: StringBuilder,
    redacted: ListBuilder<StringBuilder>,
    rows: usize,
}

impl DecisionBatchBuilder {
    /// A builder with room for `capacity` rows; `keep_raw: false` stores `raw` as null.
    pub fn new(capacity: usize, keep_raw: bool) -> Self {
        Self::with_raw_bytes(
            capacity,
            if keep_raw { capacity * 400 } else { 0 },
            keep_raw,
        )
    }

    /// Like [`new`](Self::new), with room for exactly `raw_bytes` of raw text: a decoder that
    /// knows its input size avoids over-allocating the largest column (batches keep their
    /// capacity until they are written, so this bounds an ingest's memory).
    pub fn with_raw_bytes(capacity: usize, raw_bytes: usize, keep_raw: bool) -> Self {
        let s = || StringBuilder::with_capacity(capacity, capacity * 16);
        Self {
            keep_raw,
            event_id: StringBuilder::with_capacity(capacity, capacity * 24),
            ts: TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            source: StringDictionaryBuilder::new(),
            identity: s(),
            identity_id: s(),
            session: s(),
            server: s(),
            method: s(),
            tool: s(),
            arg_keys: ListBuilder::new(StringBuilder::new()).with_field(arg_keys_item()),
            args: StringBuilder::new(),
            decision: StringDictionaryBuilder::new(),
            rule: StringBuilder::new(),
            message: StringBuilder::new(),
            policy_id: s(),
            policy_version: StringBuilder::with_capacity(capacity, capacity * 4),
            upstream_status: Int32Builder::with_capacity(capacity),
            latency_ms: Float64Builder::with_capacity(capacity),
            raw: StringBuilder::with_capacity(capacity, if keep_raw { raw_bytes } else { 0 }),
            ingest_file: s(),
            ingest_line: UInt64Builder::with_capacity(capacity),
            client_addr: s(),
            ingest_principal: StringBuilder::new(),
            ingest_peer: StringBuilder::new(),
            redacted: ListBuilder::new(StringBuilder::new()).with_field(arg_keys_item()),
            rows: 0,
        }
    }

    /// Rows appended since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was appended since the last [`finish`](Self::finish).
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one row with where it came from.
    pub fn append(
        &mut self,
        r: &DecisionRecord<'_>,
        raw: &str,
        ingest_file: Option<&str>,
        ingest_line: Option<u64>,
    ) {
        self.append_row(
            r,
            raw,
            &RowMeta {
                ingest_file,
                ingest_line,
                ..RowMeta::default()
            },
        );
    }

    /// Appends one row with its [`RowMeta`].
    pub fn append_row(&mut self, r: &DecisionRecord<'_>, raw: &str, meta: &RowMeta<'_>) {
        let (ingest_file, ingest_line) = (meta.ingest_file, meta.ingest_line);
        self.event_id.append_value(&r.event_id);
        self.ts.append_value(r.ts_micros);
        self.source.append_value(r.source);
        self.identity.append_option(r.identity.as_deref());
        self.identity_id.append_option(r.identity_id.as_deref());
        self.session.append_option(r.session.as_deref());
        self.server.append_option(r.server.as_deref());
        self.method.append_option(r.method.as_deref());
        self.tool.append_option(r.tool.as_deref());
        match &r.arg_keys {
            Some(keys) => {
                for k in keys {
                    self.arg_keys.values().append_value(k);
                }
                self.arg_keys.append(true);
            }
            None => self.arg_keys.append(false),
        }
        self.args.append_option(r.args.as_deref());
        self.decision.append_value(r.decision.as_str());
        self.rule.append_option(r.rule.as_deref());
        self.message.append_option(r.message.as_deref());
        self.policy_id.append_option(r.policy_id.as_deref());
        self.policy_version
            .append_option(r.policy_version.as_deref());
        self.upstream_status.append_option(r.upstream_status);
        self.latency_ms.append_option(r.latency_ms);
        if self.keep_raw {
            self.raw.append_value(raw);
        } else {
            self.raw.append_null();
        }
        self.ingest_file.append_option(ingest_file);
        self.ingest_line.append_option(ingest_line);
        self.client_addr.append_option(r.client_addr.as_deref());
        self.ingest_principal.append_option(meta.principal);
        self.ingest_peer.append_option(meta.peer);
        if meta.redacted.is_empty() {
            self.redacted.append(false);
        } else {
            for p in meta.redacted {
                self.redacted.values().append_value(p);
            }
            self.redacted.append(true);
        }
        self.rows += 1;
    }

    /// Builds the batch of every row appended so far and resets the builder.
    ///
    /// # Errors
    /// Only if Arrow rejects the columns, which would be a bug in this builder.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.event_id.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.identity.finish()),
            Arc::new(self.identity_id.finish()),
            Arc::new(self.session.finish()),
            Arc::new(self.server.finish()),
            Arc::new(self.method.finish()),
            Arc::new(self.tool.finish()),
            Arc::new(self.arg_keys.finish()),
            Arc::new(self.args.finish()),
            Arc::new(self.decision.finish()),
            Arc::new(self.rule.finish()),
            Arc::new(self.message.finish()),
            Arc::new(self.policy_id.finish()),
            Arc::new(self.policy_version.finish()),
            Arc::new(self.upstream_status.finish()),
            Arc::new(self.latency_ms.finish()),
            Arc::new(self.raw.finish()),
            Arc::new(self.ingest_file.finish()),
            Arc::new(self.ingest_line.finish()),
            Arc::new(self.client_addr.finish()),
            Arc::new(self.ingest_principal.finish()),
            Arc::new(self.ingest_peer.finish()),
            Arc::new(self.redacted.finish()),
        ];
        self.rows = 0;
        Ok(RecordBatch::try_new(decisions_schema(), columns)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::TimestampMicrosecondType;

    #[test]
    fn builds_a_batch_of_the_declared_schema() {
        let mut b = DecisionBatchBuilder::new(4, true);
        let mut r = DecisionRecord::new("req_1", 1_000_000, "policylayer", Decision::Deny);
        r.tool = Some("session_destroy".into());
        r.arg_keys = Some(vec!["session_id".into()]);
        r.rule = Some("(hidden)".into());
        r.client_addr = Some("10.0.0.5:41234".into());
        b.append(&r, "{\"raw\":1}", Some("a.jsonl"), Some(3));
        let r2 = DecisionRecord::new("req_2", 2_000_000, "policylayer", Decision::Allow);
        b.append(&r2, "{}", None, None);
        assert_eq!(b.len(), 2);
        let batch = b.finish().unwrap();
        assert!(b.is_empty());
        assert_eq!(batch.schema(), decisions_schema());
        assert_eq!(batch.num_rows(), 2);
        let ts = batch.column(1).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(ts.value(1), 2_000_000);
        let keys = batch.column(9).as_list::<i32>();
        assert_eq!(keys.value(0).as_string::<i32>().value(0), "session_id");
        assert!(keys.is_null(1));
        assert_eq!(batch.column(18).as_string::<i32>().value(0), "{\"raw\":1}");
        assert_eq!(
            batch
                .column(20)
                .as_primitive::<arrow::datatypes::UInt64Type>()
                .value(0),
            3
        );
        let addr = batch.column(crate::idx::CLIENT_ADDR).as_string::<i32>();
        assert_eq!(addr.value(0), "10.0.0.5:41234");
        assert!(addr.is_null(1));
    }

    #[test]
    fn provenance_and_redacted_paths() {
        let mut b = DecisionBatchBuilder::new(2, true);
        let r = DecisionRecord::new("e", 0, "opa", Decision::Allow);
        let paths = vec!["raw.input.token".to_string()];
        b.append_row(
            &r,
            "{}",
            &RowMeta {
                ingest_file: Some("http"),
                ingest_line: Some(1),
                principal: Some("opa-east"),
                peer: Some("127.0.0.1:5000"),
                redacted: &paths,
            },
        );
        b.append(&r, "{}", Some("f"), Some(2));
        let batch = b.finish().unwrap();
        let p = batch
            .column(crate::idx::INGEST_PRINCIPAL)
            .as_string::<i32>();
        assert_eq!((p.value(0), p.is_null(1)), ("opa-east", true));
        let peer = batch.column(crate::idx::INGEST_PEER).as_string::<i32>();
        assert_eq!((peer.value(0), peer.is_null(1)), ("127.0.0.1:5000", true));
        let red = batch.column(crate::idx::REDACTED).as_list::<i32>();
        assert_eq!(red.value(0).as_string::<i32>().value(0), "raw.input.token");
        assert!(red.is_null(1));
    }

    #[test]
    fn raw_can_be_dropped() {
        let mut b = DecisionBatchBuilder::new(1, false);
        b.append(
            &DecisionRecord::new("e", 0, "policylayer", Decision::Allow),
            "line",
            None,
            None,
        );
        let batch = b.finish().unwrap();
        assert!(batch.column(18).is_null(0));
    }
}
