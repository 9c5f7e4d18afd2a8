//! A [`Decoded`] chunk as bytes and back, exactly: what a collector spools between answering a
//! request and committing it. Everything in it has been through the row checks and redaction
//! already, so nothing of a request reaches the disk before its secrets are replaced.
//!
//! Layout: `[u32 header length][header JSON][u64 rows][rows x 16-byte keys][rows x 4-byte
//! days][Arrow IPC stream of the rows]`, little endian. The header holds the counters and the
//! bad lines (their raw bytes in base64).

use std::collections::BTreeMap;

use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use verdict_formats::{LineError, LineErrorKind, Skip};

use super::{BadLine, Decoded};
use crate::error::{Error, Result};

#[derive(Serialize, Deserialize)]
struct Header {
    lines: u64,
    blank: u64,
    skipped: u64,
    skipped_by: BTreeMap<String, u64>,
    bytes: u64,
    bad: Vec<Bad>,
}

#[derive(Serialize, Deserialize)]
struct Bad {
    line: u64,
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    message: String,
    raw: String,
    raw_len: u64,
}

fn bad_bytes(what: &str) -> Error {
    Error::Internal(format!("a stored decoded chunk is damaged: {what}"))
}

impl Decoded {
    /// The chunk as bytes (see the module docs); its input and sequence number are left out.
    ///
    /// # Errors
    /// The rows cannot be written as Arrow IPC.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let header = Header {
            lines: self.lines,
            blank: self.blank,
            skipped: self.skipped,
            skipped_by: self
                .skipped_by
                .iter()
                .map(|(s, n)| (s.code().to_string(), *n))
                .collect(),
            bytes: self.bytes,
            bad: self
                .bad
                .iter()
                .map(|b| Bad {
                    line: b.line,
                    kind: b.error.kind.code().to_string(),
                    field: b.error.field.clone(),
                    message: b.error.message.clone(),
                    raw: b64.encode(&b.raw),
                    raw_len: b.raw_len,
                })
                .collect(),
        };
        let header = serde_json::to_vec(&header).map_err(|e| Error::Internal(e.to_string()))?;
        let rows = self.keys.len();
        let mut out = Vec::with_capacity(header.len() + rows * 420 + 64);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&(rows as u64).to_le_bytes());
        for k in &self.keys {
            out.extend_from_slice(&k.to_le_bytes());
        }
        for d in &self.days {
            out.extend_from_slice(&d.to_le_bytes());
        }
        let mut w = StreamWriter::try_new(&mut out, &self.batch.schema())?;
        w.write(&self.batch)?;
        w.finish()?;
        drop(w);
        Ok(out)
    }

    /// The chunk [`Decoded::to_bytes`] wrote, as lines of `input`.
    ///
    /// # Errors
    /// Bytes that are not such a chunk.
    pub fn from_bytes(input: usize, bytes: &[u8]) -> Result<Decoded> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let take = |at: &mut usize, n: usize| -> Result<&[u8]> {
            let end = at
                .checked_add(n)
                .filter(|&e| e <= bytes.len())
                .ok_or_else(|| bad_bytes("cut short"))?;
            let s = &bytes[*at..end];
            *at = end;
            Ok(s)
        };
        let mut at = 0;
        let hlen = u32::from_le_bytes(
            take(&mut at, 4)?
                .try_into()
                .map_err(|_| bad_bytes("length"))?,
        );
        let header: Header = serde_json::from_slice(take(&mut at, hlen as usize)?)
            .map_err(|e| bad_bytes(&format!("header: {e}")))?;
        let rows = u64::from_le_bytes(
            take(&mut at, 8)?
                .try_into()
                .map_err(|_| bad_bytes("rows"))?,
        );
        let rows = usize::try_from(rows).map_err(|_| bad_bytes("rows"))?;
        let keys = take(
            &mut at,
            rows.checked_mul(16).ok_or_else(|| bad_bytes("rows"))?,
        )?
        .chunks_exact(16)
        .map(|c| u128::from_le_bytes(c.try_into().unwrap_or_default()))
        .collect::<Vec<_>>();
        let days = take(&mut at, rows * 4)?
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect::<Vec<_>>();
        let mut reader = StreamReader::try_new(&bytes[at..], None)?;
        let batch = reader.next().ok_or_else(|| bad_bytes("no rows"))??;
        if batch.num_rows() != rows {
            return Err(bad_bytes("row count"));
        }
        let mut skipped_by = BTreeMap::new();
        for (code, n) in header.skipped_by {
            let s = Skip::from_code(&code).ok_or_else(|| bad_bytes(&format!("skip `{code}`")))?;
            skipped_by.insert(s, n);
        }
        let mut bad = Vec::with_capacity(header.bad.len());
        for b in header.bad {
            let kind = LineErrorKind::from_code(&b.kind)
                .ok_or_else(|| bad_bytes(&format!("error kind `{}`", b.kind)))?;
            bad.push(BadLine {
                input,
                line: b.line,
                error: LineError {
                    kind,
                    field: b.field,
                    message: b.message,
                },
                raw: b64
                    .decode(&b.raw)
                    .map_err(|e| bad_bytes(&format!("raw: {e}")))?,
                raw_len: b.raw_len,
            });
        }
        Ok(Decoded {
            seq: 0,
            input,
            batch,
            keys,
            days,
            bad,
            lines: header.lines,
            blank: header.blank,
            skipped: header.skipped,
            skipped_by,
            bytes: header.bytes,
            bad_overflow: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode_chunk, Delivery, RowChecks};
    use crate::source::Chunk;
    use verdict_formats::{Decoder, Format};

    #[test]
    fn a_decoded_chunk_comes_back_the_same() {
        let text = concat!(
            r#"{"timestamp":"2026-11-02T09:15:02.412Z","request_id":"r1","grant_label":"alice","method":"tools/call","tool":"navigate","decision":"allow","args":{"password":"hunter2"}}"#,
            "\n",
            "not json\n",
            "\n",
            r#"{"timestamp":"2026-11-03T09:15:03.100Z","request_id":"r2","grant_label":"bob","method":"tools/call","tool":"click","decision":"deny"}"#,
            "\n",
        );
        let chunk = Chunk {
            seq: 7,
            input: 3,
            first_line: 10,
            bytes: text.as_bytes().to_vec(),
            oversized: Vec::new(),
        };
        let who = Delivery {
            principal: Some("gw".into()),
            peer: Some("127.0.0.1:1".into()),
        };
        let d = decode_chunk(
            chunk,
            &Decoder::Builtin(Format::PolicyLayer),
            None,
            "http",
            true,
            1 << 20,
            &RowChecks::none(),
            &who,
        )
        .unwrap();
        assert_eq!((d.batch.num_rows(), d.bad.len(), d.blank), (2, 1, 1));
        let back = Decoded::from_bytes(3, &d.to_bytes().unwrap()).unwrap();
        assert_eq!(back.batch, d.batch);
        assert_eq!((back.keys, back.days), (d.keys.clone(), d.days.clone()));
        assert_eq!(back.bad.len(), 1);
        let (a, b) = (&back.bad[0], &d.bad[0]);
        assert_eq!(
            (a.input, a.line, &a.error, &a.raw, a.raw_len),
            (b.input, b.line, &b.error, &b.raw, b.raw_len)
        );
        assert_eq!(
            (
                back.lines,
                back.blank,
                back.skipped,
                back.bytes,
                &back.skipped_by
            ),
            (d.lines, d.blank, d.skipped, d.bytes, &d.skipped_by)
        );
        // Cut anywhere: never a panic; an error wherever the rows are not whole (the last 8
        // bytes are the IPC stream's end marker).
        let bytes = d.to_bytes().unwrap();
        for cut in 0..bytes.len() {
            let r = Decoded::from_bytes(3, &bytes[..cut]);
            if cut < bytes.len() - 8 {
                assert!(r.is_err(), "cut at {cut}");
            }
        }
    }
}
