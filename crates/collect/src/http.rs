//! The HTTP receiver (axum on the caller's tokio runtime): OPA decision-log uploads on
//! `POST /logs[/...]`, JSONL or JSON arrays on `POST /ingest?format=NAME`, `GET /healthz` and
//! `GET /metrics`. A request is answered 200 only after the commit that holds its records;
//! when the buffer of uncommitted records is full it is answered 429 with `Retry-After`.

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use crossbeam_channel::{Sender, TrySendError};
use serde_json::value::RawValue;
use verdict_formats::Format;
use verdict_formats::{detect, Decoder};

use crate::committer::Batch;
use crate::config::HttpSource;
use crate::metrics::Metrics;

/// What the handlers share.
pub struct Shared {
    /// The settings.
    pub src: HttpSource,
    /// Where batches go.
    pub tx: Sender<Batch>,
    /// Counters and the stopping flag.
    pub metrics: Arc<Metrics>,
    /// Records accepted and not committed at most.
    pub max_pending: u64,
}

/// The routes.
pub fn router(shared: Arc<Shared>) -> Router {
    // The limit applies to the body as sent; a gzip body is bounded again once inflated.
    let limit = shared.src.max_body_bytes;
    Router::new()
        .route("/logs", post(opa_logs))
        .route("/logs/{*partition}", post(opa_logs))
        .route("/ingest", post(ingest))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

async fn healthz(State(s): State<Arc<Shared>>) -> Response {
    if s.metrics.stopping.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response();
    }
    if !s.metrics.ready.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response();
    }
    (StatusCode::OK, "ok\n").into_response()
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

async fn opa_logs(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    receive(s, headers, body, Some(Decoder::Builtin(Format::Opa))).await
}

async fn ingest(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let decoder = match q.get("format").map(String::as_str) {
        None | Some("auto") | Some("") => None,
        Some(name) => match name.parse::<Format>() {
            Ok(f) => Some(Decoder::Builtin(f)),
            Err(e) => return refuse(&s, StatusCode::BAD_REQUEST, e),
        },
    };
    receive(s, headers, body, decoder).await
}

fn refuse(s: &Shared, status: StatusCode, message: String) -> Response {
    s.metrics.rejected.fetch_add(1, Ordering::Relaxed);
    let mut r = (status, format!("{message}\n")).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        if let Ok(v) = HeaderValue::from_str(&s.src.retry_after_secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

/// Gives the pending budget back when a request is not handed to the commit loop after all.
struct Reservation<'a> {
    metrics: &'a Metrics,
    records: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.metrics
            .pending
            .fetch_sub(self.records, Ordering::SeqCst);
    }
}

async fn receive(
    s: Arc<Shared>,
    headers: HeaderMap,
    body: Bytes,
    decoder: Option<Decoder>,
) -> Response {
    if s.metrics.stopping.load(Ordering::SeqCst) {
        return refuse(
            &s,
            StatusCode::SERVICE_UNAVAILABLE,
            "the collector is stopping".into(),
        );
    }
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"))
        || body.starts_with(&[0x1f, 0x8b]);
    let text = if gzip {
        let mut out = Vec::new();
        let limit = s.src.max_body_bytes as u64;
        let r = flate2::read::MultiGzDecoder::new(&body[..])
            .take(limit + 1)
            .read_to_end(&mut out);
        match r {
            Ok(n) if n as u64 > limit => {
                return refuse(
                    &s,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body inflates past {limit} bytes"),
                )
            }
            Ok(_) => out,
            Err(e) => {
                return refuse(
                    &s,
                    StatusCode::BAD_REQUEST,
                    format!("invalid gzip body: {e}"),
                )
            }
        }
    } else {
        body.to_vec()
    };
    let (lines, records) = match to_lines(&text) {
        Ok(v) => v,
        Err(e) => return refuse(&s, StatusCode::BAD_REQUEST, e),
    };
    let decoder = match decoder {
        Some(d) => d,
        None => {
            let text = String::from_utf8_lossy(&lines);
            match detect(text.lines(), 1) {
                Ok(d) => Decoder::Builtin(d.format),
                Err(e) => {
                    return refuse(
                        &s,
                        StatusCode::BAD_REQUEST,
                        format!("cannot detect the format (name it with ?format=NAME): {e}"),
                    )
                }
            }
        }
    };
    if records == 0 {
        return (
            StatusCode::OK,
            "{\"records\":0,\"rows\":0,\"duplicates\":0,\"quarantined\":0}\n",
        )
            .into_response();
    }
    // Reserve room in the buffer of uncommitted records; a request alone larger than the
    // buffer is taken when the buffer is empty, so that it is never refused forever.
    let before = s.metrics.pending.fetch_add(records, Ordering::SeqCst);
    let reservation = Reservation {
        metrics: &s.metrics,
        records,
    };
    if before > 0 && before + records > s.max_pending {
        drop(reservation);
        return refuse(
            &s,
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "the buffer holds {before} uncommitted records (at most {}); retry later",
                s.max_pending
            ),
        );
    }
    let (ack_tx, ack_rx) = tokio::sync::oneshot::channel();
    let bytes_len = lines.len() as u64;
    let batch = Batch {
        input: "http".into(),
        first_line: 1,
        bytes: lines,
        decoder,
        checkpoint: None,
        ack: Some((records, ack_tx)),
    };
    match s.tx.try_send(batch) {
        Ok(()) => std::mem::forget(reservation),
        Err(TrySendError::Full(_)) => {
            drop(reservation);
            return refuse(
                &s,
                StatusCode::TOO_MANY_REQUESTS,
                "the commit queue is full; retry later".into(),
            );
        }
        Err(TrySendError::Disconnected(_)) => {
            drop(reservation);
            return refuse(
                &s,
                StatusCode::SERVICE_UNAVAILABLE,
                "the collector is stopping".into(),
            );
        }
    }
    s.metrics.received.fetch_add(records, Ordering::Relaxed);
    s.metrics.bytes.fetch_add(bytes_len, Ordering::Relaxed);
    match ack_rx.await {
        Ok(a) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            format!(
                "{{\"records\":{records},\"rows\":{},\"duplicates\":{},\"quarantined\":{}}}\n",
                a.rows, a.duplicates, a.quarantined
            ),
        )
            .into_response(),
        // The commit loop stopped on an error before committing these records.
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the commit failed; nothing of this request is stored\n",
        )
            .into_response(),
    }
}

/// A body as `\n`-separated records: JSONL as it is, a JSON array one element a line (raw
/// newlines inside an element are JSON whitespace and become spaces). Returns the lines and
/// the number of records.
///
/// # Errors
/// A body that starts like an array and is not one.
pub fn to_lines(body: &[u8]) -> Result<(Vec<u8>, u64), String> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else {
        return Ok((Vec::new(), 0));
    };
    if body[start] == b'[' {
        let text = std::str::from_utf8(body).map_err(|e| format!("invalid UTF-8: {e}"))?;
        let elements: Vec<&RawValue> =
            serde_json::from_str(text).map_err(|e| format!("invalid JSON array: {e}"))?;
        let mut out = Vec::with_capacity(body.len() + elements.len());
        for el in &elements {
            out.extend(
                el.get()
                    .bytes()
                    .map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
            );
            out.push(b'\n');
        }
        return Ok((out, elements.len() as u64));
    }
    let mut out = body.to_vec();
    if out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    let records = out
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .count() as u64;
    Ok((out, records))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_become_one_element_a_line() {
        let (lines, n) = to_lines(b" [{\"a\":\n1}, {\"b\":\"x\"}]").unwrap();
        assert_eq!(
            (lines.as_slice(), n),
            (&b"{\"a\": 1}\n{\"b\":\"x\"}\n"[..], 2)
        );
        let (lines, n) = to_lines(b"{\"a\":1}\n\n{\"b\":2}").unwrap();
        assert_eq!((lines.as_slice(), n), (&b"{\"a\":1}\n\n{\"b\":2}\n"[..], 2));
        assert_eq!(to_lines(b"  ").unwrap().1, 0);
        assert!(to_lines(b"[{\"a\":1}")
            .unwrap_err()
            .starts_with("invalid JSON array"));
    }
}
