//! Decoding one chunk of lines into a record batch, on a worker thread: the format's decoder, the
//! dedup keys and day numbers each row needs, and the bad lines with their reasons.
//! Ordering, dedup and writing happen later, in `pipeline`.

use arrow::array::RecordBatch;
use std::collections::BTreeMap;

use verdict_formats::{Decoder, LineError, LineErrorKind, Sink, Skip, UserEnvelope};
use verdict_schema::{time::day_number, DecisionBatchBuilder, DecisionRecord};
use xxhash_rust::xxh3::Xxh3;

use crate::error::Result;
use crate::source::Chunk;

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
}

impl Sink for ChunkSink<'_> {
    fn row(&mut self, r: &DecisionRecord<'_>, raw: &str) {
        self.keys.push(dedup_key(r.source, &r.event_id));
        self.days.push(day_number(r.ts_micros));
        self.builder
            .append(r, raw, Some(self.file_name), Some(self.line));
    }

    fn skipped(&mut self, reason: Skip, _raw: &str) {
        *self.skipped_by.entry(reason).or_default() += 1;
    }

    fn bad(&mut self, error: LineError, raw: &str) {
        let raw = raw.as_bytes();
        self.bad.push(BadLine {
            input: self.input,
            line: self.line,
            error,
            raw: raw[..raw.len().min(QUARANTINE_RAW_LIMIT)].to_vec(),
            raw_len: raw.len() as u64,
        });
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
        bad.push(BadLine {
            input: chunk.input,
            line,
            error: LineError::record(
                LineErrorKind::TooLong,
                format!("line of {len} bytes is longer than the bound of {max_line} bytes"),
            ),
            raw: prefix,
            raw_len: len,
        });
    }
    let mut line_no = chunk.first_line;
    let data = &chunk.bytes[..];
    let mut start = 0;
    while start < data.len() {
        let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |p| start + p);
        let mut raw = &data[start..end];
        start = end + 1;
        let this_line = line_no;
        line_no += 1;
        if raw.last() == Some(&b'\r') {
            raw = &raw[..raw.len() - 1];
        }
        if raw.iter().all(u8::is_ascii_whitespace) {
            blank += 1;
            continue;
        }
        lines += 1;
        let reject = |error: LineError, bad: &mut Vec<BadLine>| {
            bad.push(BadLine {
                input: chunk.input,
                line: this_line,
                error,
                raw: raw[..raw.len().min(QUARANTINE_RAW_LIMIT)].to_vec(),
                raw_len: raw.len() as u64,
            })
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
    })
}

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
        let d = decode_chunk(c, &Format::PolicyLayer.into(), None, "f", true, 50).unwrap();
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
