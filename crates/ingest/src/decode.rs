//! Decoding one chunk of lines into a record batch, on a worker thread: the format's decoder, the
//! dedup keys and day numbers each row needs, and the bad lines with their reasons.
//! Ordering, dedup and writing happen later, in `pipeline`.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::RecordBatch;
use std::collections::BTreeMap;

use verdict_formats::{Decoder, LineError, LineErrorKind, Sink, Skip, UserEnvelope};
use verdict_schema::time::{day_number, format_micros};
use verdict_schema::{DecisionBatchBuilder, DecisionRecord, RowMeta};
use xxhash_rust::xxh3::Xxh3;

use crate::error::Result;
use crate::redact::Redactor;
use crate::source::Chunk;

/// What every decoded row goes through before it is stored, whatever its format: the
/// timestamp window and the latency check (hostile values are quarantined, README
/// "Guarantees"), and secret redaction of `args`, `raw` and quarantined text.
#[derive(Debug, Clone)]
pub struct RowChecks {
    /// Earliest accepted `ts` (UTC microseconds).
    pub ts_min: i64,
    /// Latest accepted `ts`.
    pub ts_max: i64,
    /// Secret redaction; `None`: off.
    pub redactor: Option<Arc<Redactor>>,
    /// Stop decoding a chunk once it holds more bad lines than this (its caller refuses it
    /// whole then: see [`Decoded::bad_overflow`]); `None`: decode everything.
    pub max_bad: Option<usize>,
}

impl RowChecks {
    /// No window and no redaction (tests, previews).
    pub fn none() -> Self {
        Self {
            ts_min: i64::MIN,
            ts_max: i64::MAX,
            redactor: None,
            max_bad: None,
        }
    }

    /// Why a decoded row must not be stored, if it must not.
    fn reject(&self, r: &DecisionRecord<'_>) -> Option<LineError> {
        if r.ts_micros < self.ts_min || r.ts_micros > self.ts_max {
            return Some(LineError::record(
                LineErrorKind::BadTimestamp,
                format!(
                    "time {} is outside the accepted window {} .. {}",
                    format_micros(r.ts_micros),
                    format_micros(self.ts_min),
                    format_micros(self.ts_max)
                ),
            ));
        }
        match r.latency_ms {
            Some(l) if !l.is_finite() || l < 0.0 => Some(LineError::record(
                LineErrorKind::BadLatency,
                format!("latency {l} ms is not a finite, non-negative number"),
            )),
            _ => None,
        }
    }

    /// A rejected line as it may be stored: secrets in its text and message redacted.
    fn bad_line(&self, input: usize, line: u64, mut error: LineError, raw: &[u8]) -> BadLine {
        let raw_len = raw.len() as u64;
        let mut kept = Cow::Borrowed(raw);
        if let Some(red) = &self.redactor {
            let text = String::from_utf8_lossy(raw);
            if let Some(new) = red.redact_any(&text, "raw", &mut Vec::new()) {
                kept = Cow::Owned(new.into_bytes());
            }
            if let Some(m) = red.redact_text(&error.message) {
                error.message = m;
            }
        }
        BadLine {
            input,
            line,
            error,
            raw: kept[..kept.len().min(QUARANTINE_RAW_LIMIT)].to_vec(),
            raw_len,
        }
    }
}

/// Who delivered a run of lines: for an HTTP upload, the authenticated principal and the peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// The token's name or the client certificate's subject.
    pub principal: Option<String>,
    /// The peer address.
    pub peer: Option<String>,
}

/// Raw bytes kept of a quarantined line at most (the rest is counted, not kept).
pub const QUARANTINE_RAW_LIMIT: usize = 64 * 1024;

/// A line that could not become a row.
#[derive(Debug, Clone)]
pub struct BadLine {
    /// Index of the input.
    pub input: usize,
    /// 1-based line number.
    pub line: u64,
    /// Why.
    pub error: LineError,
    /// The raw bytes (at most [`QUARANTINE_RAW_LIMIT`]).
    pub raw: Vec<u8>,
    /// The full length of the line in bytes.
    pub raw_len: u64,
}

/// A decoded chunk.
#[derive(Debug)]
pub struct Decoded {
    /// The chunk's sequence number.
    pub seq: u64,
    /// Index of the input.
    pub input: usize,
    /// The rows.
    pub batch: RecordBatch,
    /// Per row: the dedup key, a hash of (source, event_id).
    pub keys: Vec<u128>,
    /// Per row: the UTC day number of `ts`.
    pub days: Vec<i32>,
    /// Lines that were rejected.
    pub bad: Vec<BadLine>,
    /// Non-blank lines seen.
    pub lines: u64,
    /// Blank lines skipped.
    pub blank: u64,
    /// Records known not to be decisions (a proxy's other messages): no row, no error.
    pub skipped: u64,
    /// [`skipped`](Self::skipped) by reason.
    pub skipped_by: BTreeMap<Skip, u64>,
    /// Bytes in the chunk (oversized lines included).
    pub bytes: u64,
    /// Decoding stopped early past [`RowChecks::max_bad`] bad lines.
    pub bad_overflow: bool,
}

/// The dedup key of a row: a 128-bit hash of its source and event id.
pub fn dedup_key(source: &str, event_id: &str) -> u128 {
    let mut h = Xxh3::new();
    h.update(source.as_bytes());
    h.update(&[0]);
    h.update(event_id.as_bytes());
    h.digest128()
}

/// Where one line's rows and rejected records go.
struct ChunkSink<'c> {
    builder: &'c mut DecisionBatchBuilder,
    keys: &'c mut Vec<u128>,
    days: &'c mut Vec<i32>,
    bad: &'c mut Vec<BadLine>,
    input: usize,
    line: u64,
    file_name: &'c str,
    skipped_by: &'c mut BTreeMap<Skip, u64>,
    rejected: bool,
    keep_raw: bool,
    checks: &'c RowChecks,
    delivery: &'c Delivery,
}

impl Sink for ChunkSink<'_> {
    fn row(&mut self, r: &DecisionRecord<'_>, raw: &str) {
        if let Some(e) = self.checks.reject(r) {
            return self.bad(e, raw);
        }
        let mut paths = Vec::new();
        let mut record = Cow::Borrowed(r);
        let mut raw = Cow::Borrowed(raw);
        if let Some(red) = &self.checks.redactor {
            if let Some(args) = r.args.as_deref() {
                if let Some(new) = red.redact_any(args, "args", &mut paths) {
                    record.to_mut().args = Some(Cow::Owned(new));
                }
            }
            if self.keep_raw {
                if let Some(new) = red.redact_any(&raw, "raw", &mut paths) {
                    raw = Cow::Owned(new);
                }
            }
        }
        self.keys.push(dedup_key(r.source, &r.event_id));
        self.days.push(day_number(r.ts_micros));
        self.builder.append_row(
            &record,
            &raw,
            &RowMeta {
                ingest_file: Some(self.file_name),
                ingest_line: Some(self.line),
                principal: self.delivery.principal.as_deref(),
                peer: self.delivery.peer.as_deref(),
                redacted: &paths,
            },
        );
    }

    fn skipped(&mut self, reason: Skip, _raw: &str) {
        *self.skipped_by.entry(reason).or_default() += 1;
    }

    fn bad(&mut self, error: LineError, raw: &str) {
        self.rejected = true;
        let b = self
            .checks
            .bad_line(self.input, self.line, error, raw.as_bytes());
        self.bad.push(b);
    }
}

/// Decodes every line of a chunk with the input's decoder.
///
/// # Errors
/// Only if building the Arrow batch fails (a bug); bad lines are returned in [`Decoded::bad`].
pub fn decode_chunk(
    chunk: Chunk,
    decoder: &Decoder,
    envelope: Option<&UserEnvelope>,
    file_name: &str,
    keep_raw: bool,
    max_line: usize,
    checks: &RowChecks,
    delivery: &Delivery,
) -> Result<Decoded> {
    let est = chunk.bytes.len() / 350 + 16;
    let mut builder = DecisionBatchBuilder::with_raw_bytes(est, chunk.bytes.len(), keep_raw);
    let mut keys = Vec::with_capacity(est);
    let mut days = Vec::with_capacity(est);
    let mut bad = Vec::new();
    let (mut lines, mut blank) = (0u64, 0u64);
    let mut skipped_by = BTreeMap::new();
    let bytes = chunk.bytes.len() as u64 + chunk.oversized.iter().map(|o| o.2).sum::<u64>();
    for (line, prefix, len) in chunk.oversized {
        lines += 1;
        let error = LineError::record(
            LineErrorKind::TooLong,
            format!("line of {len} bytes is longer than the bound of {max_line} bytes"),
        );
        let mut b = checks.bad_line(chunk.input, line, error, &prefix);
        b.raw_len = len;
        bad.push(b);
    }
    let mut line_no = chunk.first_line;
    let data = &chunk.bytes[..];
    let mut start = 0;
    let mut bad_overflow = false;
    while start < data.len() {
        if checks.max_bad.is_some_and(|max| bad.len() > max) {
            bad_overflow = true;
            break;
        }
        let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |p| start + p);
        let mut raw = &data[start..end];
        start = end + 1;
        let this_line = line_no;
        line_no += 1;
        if raw.last() == Some(&b'\r') {
            raw = &raw[..raw.len() - 1];
        }
        if let Some(rest) = raw.strip_prefix(crate::source::UTF8_BOM) {
            raw = rest;
        }
        if raw.iter().all(u8::is_ascii_whitespace) {
            blank += 1;
            continue;
        }
        lines += 1;
        let reject = |error: LineError, bad: &mut Vec<BadLine>| {
            bad.push(checks.bad_line(chunk.input, this_line, error, raw))
        };
        if raw.len() > max_line {
            let msg = format!(
                "line of {} bytes is longer than the bound of {max_line} bytes",
                raw.len()
            );
            reject(LineError::record(LineErrorKind::TooLong, msg), &mut bad);
            continue;
        }
        let text = match std::str::from_utf8(raw) {
            Ok(t) => t,
            Err(e) => {
                let msg = format!("invalid UTF-8 at byte {}", e.valid_up_to());
                reject(LineError::record(LineErrorKind::InvalidUtf8, msg), &mut bad);
                continue;
            }
        };
        let mut sink = ChunkSink {
            builder: &mut builder,
            keys: &mut keys,
            days: &mut days,
            bad: &mut bad,
            input: chunk.input,
            line: this_line,
            file_name,
            skipped_by: &mut skipped_by,
            rejected: false,
            keep_raw,
            checks,
            delivery,
        };
        match envelope.map(|e| e.unwrap(text)) {
            None => {
                decoder.decode_line(text, &mut sink);
            }
            Some(Ok(inner)) => {
                decoder.decode_line(&inner, &mut sink);
            }
            Some(Err(e)) => sink.bad(e, text),
        }
    }
    let skipped = skipped_by.values().sum();
    Ok(Decoded {
        seq: chunk.seq,
        input: chunk.input,
        batch: builder.finish()?,
        keys,
        days,
        bad,
        lines,
        blank,
        skipped,
        skipped_by,
        bytes,
        bad_overflow,
    })
}

#[cfg(test)]
mod fuzz;
mod stored;

#[cfg(test)]
mod tests {
    use super::*;
    use verdict_formats::Format;

    fn chunk(text: &str) -> Chunk {
        Chunk {
            seq: 7,
            input: 0,
            first_line: 10,
            bytes: text.as_bytes().to_vec(),
            oversized: vec![],
        }
    }

    #[test]
    fn dedup_keys_keep_their_stored_value() {
        // Keys are stored in every warehouse's event_keys: a change of hash (or of the crate
        // computing it) would let every record already stored in again.
        assert_eq!(
            dedup_key("policylayer", "r1"),
            0x05d6_43a0_cd35_b0d1_4ddd_83a2_48e6_6240
        );
    }

    #[test]
    fn good_bad_and_blank_lines() {
        let text = concat!(
            r#"{"timestamp":"2026-11-02T09:15:02Z","request_id":"r1","decision":"allow"}"#,
            "\n\n",
            "{broken\n",
            r#"{"timestamp":"2026-11-03T00:00:00Z","request_id":"r2","decision":"deny"}"#,
            "\r\n",
        );
        let d = decode_chunk(
            chunk(text),
            &Format::PolicyLayer.into(),
            None,
            "f.jsonl",
            true,
            1 << 20,
            &RowChecks::none(),
            &Delivery::default(),
        )
        .unwrap();
        assert_eq!((d.seq, d.lines, d.blank), (7, 3, 1));
        assert_eq!(d.batch.num_rows(), 2);
        assert_eq!(d.bad.len(), 1);
        assert_eq!(d.bad[0].line, 12);
        assert_eq!(d.bad[0].error.kind, LineErrorKind::InvalidJson);
        assert_eq!(d.bad[0].raw, b"{broken");
        assert_eq!(d.days, [20759, 20760]);
        assert_eq!(d.keys[0], dedup_key("policylayer", "r1"));
        let lines = d.batch.column(verdict_schema::idx::INGEST_LINE);
        let lines = arrow::array::AsArray::as_primitive::<arrow::datatypes::UInt64Type>(lines);
        assert_eq!(lines.values().to_vec(), vec![10, 13]);
    }

    #[test]
    fn invalid_utf8_and_too_long() {
        let mut bytes = b"\xff\xfe{}\n".to_vec();
        bytes.extend_from_slice(&[b'{'; 100]);
        bytes.push(b'\n');
        let c = Chunk {
            seq: 0,
            input: 1,
            first_line: 1,
            bytes,
            oversized: vec![(5, b"xx".to_vec(), 9999)],
        };
        let d = decode_chunk(
            c,
            &Format::PolicyLayer.into(),
            None,
            "f",
            true,
            50,
            &RowChecks::none(),
            &Delivery::default(),
        )
        .unwrap();
        let kinds: Vec<_> = d
            .bad
            .iter()
            .map(|b| (b.line, b.error.kind.clone()))
            .collect();
        assert_eq!(
            kinds,
            [
                (5, LineErrorKind::TooLong),
                (1, LineErrorKind::InvalidUtf8),
                (2, LineErrorKind::TooLong)
            ]
        );
        assert_eq!(d.batch.num_rows(), 0);
    }
}
