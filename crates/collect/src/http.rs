//! The HTTP receiver (axum on the caller's tokio runtime): OPA decision-log uploads on
//! `POST /logs[/...]`, JSONL or JSON arrays on `POST /ingest?format=NAME`, `GET /healthz` and
//! `GET /metrics`. Every route but `/healthz` (and `/metrics` when configured public) needs a
//! valid bearer token or client certificate (401 otherwise, nothing stored). A request is
//! decoded where it arrives and answered 200 only after the commit that holds its records (with
//! a spool: once its rows are synced to the spool, see [`crate::spool`]); when the buffer of uncommitted
//! records or the memory budget for bodies is full it is answered 429 with `Retry-After`; a
//! request that would quarantine more than its budget is refused whole with 422.

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::{Body, HttpBody};
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use crossbeam_channel::{Sender, TrySendError};
use serde_json::value::RawValue;
use verdict_formats::Format;
use verdict_formats::{detect, Decoder};
use verdict_ingest::Delivery;

use crate::committer::{Batch, HttpAck};
use crate::config::HttpSource;
use crate::metrics::Metrics;
use crate::serve::ConnInfo;
use crate::spool::Spooled;

/// What the handlers share.
pub struct Shared {
    /// The settings.
    pub src: HttpSource,
    /// Where batches go.
    pub tx: Sender<Batch>,
    /// Decodes a request's lines where it arrives (the commit loop's decoder of input `http`).
    pub decoder: Arc<verdict_ingest::ChunkDecoder>,
    /// With `ack = "spool"`: the spool thread, which answers a request once it is on disk.
    pub spool: Option<Sender<Spooled>>,
    /// Counters and the stopping flag.
    pub metrics: Arc<Metrics>,
    /// Records accepted and not committed at most.
    pub max_pending: u64,
    /// Bytes of request bodies held now (as sent and inflated), against
    /// [`HttpSource::max_inflight_bytes`].
    pub inflight_bytes: AtomicU64,
}

/// The authenticated principal of a request (`None`: authentication is off).
#[derive(Debug, Clone)]
struct Principal(Option<String>);

/// The routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/logs", post(opa_logs))
        .route("/logs/{*partition}", post(opa_logs))
        .route("/ingest", post(ingest))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(shared.clone(), authorize))
        .with_state(shared)
}

/// Lets `/healthz` (and a public `/metrics`) through; every other request must authenticate.
async fn authorize(State(s): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path == "/healthz" || (path == "/metrics" && s.src.metrics_public) {
        return next.run(req).await;
    }
    let conn = req.extensions().get::<ConnInfo>().cloned();
    let subject = conn.as_ref().and_then(|c| c.cert_subject.as_deref());
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match s.src.auth.check(authorization, subject) {
        Ok(principal) => {
            req.extensions_mut().insert(Principal(principal));
            next.run(req).await
        }
        Err(refusal) => {
            let peer = conn.map(|c| c.peer.to_string()).unwrap_or_default();
            tracing::warn!(peer = %peer, path = %req.uri().path(), reason = refusal.0, "refused an unauthenticated request");
            s.metrics.unauthorized.fetch_add(1, Ordering::Relaxed);
            let mut r = (StatusCode::UNAUTHORIZED, format!("{}\n", refusal.0)).into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"verdict\""),
            );
            r
        }
    }
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

/// Who sent a request, from its extensions.
fn delivery(conn: Option<Extension<ConnInfo>>, who: Option<Extension<Principal>>) -> Delivery {
    Delivery {
        principal: who.and_then(|Extension(p)| p.0),
        peer: conn.map(|Extension(c)| c.peer.to_string()),
    }
}

async fn opa_logs(
    State(s): State<Arc<Shared>>,
    conn: Option<Extension<ConnInfo>>,
    who: Option<Extension<Principal>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let from = delivery(conn, who);
    receive(s, headers, body, Some(Decoder::Builtin(Format::Opa)), from).await
}

async fn ingest(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    conn: Option<Extension<ConnInfo>>,
    who: Option<Extension<Principal>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let from = delivery(conn, who);
    let decoder = match q.get("format").map(String::as_str) {
        None | Some("auto") | Some("") => None,
        Some(name) => match name.parse::<Format>() {
            Ok(f) => Some(Decoder::Builtin(f)),
            Err(e) => return refuse(&s, StatusCode::BAD_REQUEST, e),
        },
    };
    receive(s, headers, body, decoder, from).await
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

/// Bytes held against the memory budget for bodies, given back when dropped.
struct Held<'a> {
    shared: &'a Shared,
    bytes: u64,
}

impl Held<'_> {
    /// Takes `n` more bytes; `false` when that would pass the budget (nothing taken then).
    fn take(&mut self, n: u64) -> bool {
        let max = self.shared.src.max_inflight_bytes as u64;
        let before = self.shared.inflight_bytes.fetch_add(n, Ordering::SeqCst);
        if before + n > max {
            self.shared.inflight_bytes.fetch_sub(n, Ordering::SeqCst);
            return false;
        }
        self.bytes += n;
        true
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.shared
            .inflight_bytes
            .fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// Reads a body within the size limit, the memory budget and the body timeout.
async fn read_body(s: &Shared, mut body: Body, held: &mut Held<'_>) -> Result<Vec<u8>, Response> {
    let limit = s.src.max_body_bytes;
    let deadline = tokio::time::Instant::now() + s.src.body_timeout;
    let mut out = Vec::new();
    loop {
        let frame = match tokio::time::timeout_at(
            deadline,
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)),
        )
        .await
        {
            Err(_) => {
                tracing::warn!(timeout = ?s.src.body_timeout, received = out.len(), "body timeout: refusing a request");
                return Err(refuse(
                    s,
                    StatusCode::REQUEST_TIMEOUT,
                    format!("the body did not arrive within {:?}", s.src.body_timeout),
                ));
            }
            Ok(None) => return Ok(out),
            Ok(Some(Err(e))) => {
                return Err(refuse(
                    s,
                    StatusCode::BAD_REQUEST,
                    format!("reading the body: {e}"),
                ))
            }
            Ok(Some(Ok(f))) => f,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if out.len() + data.len() > limit {
            tracing::warn!(limit, "body size limit: refusing a request");
            return Err(refuse(
                s,
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {limit} bytes"),
            ));
        }
        if !held.take(data.len() as u64) {
            return Err(over_budget(s));
        }
        out.extend_from_slice(&data);
    }
}

fn over_budget(s: &Shared) -> Response {
    tracing::warn!(
        max_inflight_bytes = s.src.max_inflight_bytes,
        "memory budget for request bodies reached: refusing a request"
    );
    refuse(
        s,
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "the receiver holds {} bytes of request bodies at most; retry later",
            s.src.max_inflight_bytes
        ),
    )
}

/// Inflates a gzip body within the size limit and the memory budget.
fn gunzip(s: &Shared, body: &[u8], held: &mut Held<'_>) -> Result<Vec<u8>, Response> {
    let limit = s.src.max_body_bytes as u64;
    let mut out = Vec::new();
    let mut reader = flate2::read::MultiGzDecoder::new(body).take(limit + 1);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) => {
                return Err(refuse(
                    s,
                    StatusCode::BAD_REQUEST,
                    format!("invalid gzip body: {e}"),
                ))
            }
        };
        if out.len() as u64 + n as u64 > limit {
            tracing::warn!(
                limit,
                "body size limit: refusing a request that inflates past it"
            );
            return Err(refuse(
                s,
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body inflates past {limit} bytes"),
            ));
        }
        if !held.take(n as u64) {
            return Err(over_budget(s));
        }
        out.extend_from_slice(&buf[..n]);
    }
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
    body: Body,
    decoder: Option<Decoder>,
    from: Delivery,
) -> Response {
    if s.metrics.stopping.load(Ordering::SeqCst) {
        return refuse(
            &s,
            StatusCode::SERVICE_UNAVAILABLE,
            "the collector is stopping".into(),
        );
    }
    let mut held = Held {
        shared: &s,
        bytes: 0,
    };
    let body = match read_body(&s, body, &mut held).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"))
        || body.starts_with(&[0x1f, 0x8b]);
    let text = if gzip {
        match gunzip(&s, &body, &mut held) {
            Ok(t) => t,
            Err(r) => return r,
        }
    } else {
        body
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
    // Decoded here, on the blocking pool, so that the commit loop only deduplicates and
    // stages; a request past its quarantine budget is refused before anything is kept. With a
    // spool, the decoded (and redacted) rows are also written out as bytes here.
    let bytes_len = lines.len() as u64;
    let spool = s.spool.is_some();
    let decoded = {
        let dec = s.decoder.clone();
        let from = from.clone();
        let decoder = decoder.clone();
        let max_bad = s.src.max_bad;
        tokio::task::spawn_blocking(move || {
            let d = dec.decode(1, lines, &decoder, &from, Some(max_bad))?;
            let stored = if spool { d.to_bytes()? } else { Vec::new() };
            Ok::<_, verdict_ingest::Error>((d, stored))
        })
        .await
    };
    let (decoded, stored) = match decoded {
        Ok(Ok(d)) => d,
        Ok(Err(verdict_ingest::Error::QuarantineBudget { what, .. })) => {
            tracing::warn!(principal = ?from.principal, peer = ?from.peer, reason = %what, "refused a request past its quarantine budget");
            return refuse(
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("refused, nothing stored: the request holds {what}"),
            );
        }
        Ok(Err(e)) => {
            return refuse(
                &s,
                StatusCode::BAD_REQUEST,
                format!("cannot decode the request: {e}"),
            )
        }
        Err(e) => {
            return refuse(
                &s,
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("decoding the request failed: {e}"),
            )
        }
    };
    if let Some(spool) = &s.spool {
        let quarantined = decoded.bad.len();
        let (answer, answered) = tokio::sync::oneshot::channel();
        let r = Spooled {
            decoder,
            delivery: from,
            decoded,
            stored,
            reserved: records,
            answer,
        };
        if let Err(refused) = handed(&s, spool.try_send(r), reservation, "spool") {
            return refused;
        }
        s.metrics.received.fetch_add(records, Ordering::Relaxed);
        s.metrics.bytes.fetch_add(bytes_len, Ordering::Relaxed);
        return match answered.await {
            Ok(Ok(())) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                format!(
                    "{{\"records\":{records},\"quarantined\":{quarantined},\"spooled\":true}}\n"
                ),
            )
                .into_response(),
            Ok(Err(reason)) => refuse(&s, StatusCode::INTERNAL_SERVER_ERROR, reason),
            Err(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the spool stopped; nothing of this request is stored\n",
            )
                .into_response(),
        };
    }
    let (ack_tx, ack_rx) = tokio::sync::oneshot::channel();
    let batch = Batch {
        input: "http".into(),
        first_line: 1,
        bytes: Vec::new(),
        decoder,
        envelope: None,
        decoded: Some(decoded),
        checkpoint: None,
        ack: Some(HttpAck {
            reserved: records,
            tx: Some(ack_tx),
            delivery: from,
            spool_seq: None,
        }),
        queued: None,
    };
    if let Err(refused) = handed(&s, s.tx.try_send(batch), reservation, "commit") {
        return refused;
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

/// Keeps the reservation of a request handed on (the commit releases it), or releases it and
/// says why the request is refused: its `queue` is full (429) or gone (503).
fn handed<T>(
    s: &Shared,
    sent: Result<(), TrySendError<T>>,
    reservation: Reservation<'_>,
    queue: &str,
) -> Result<(), Response> {
    match sent {
        Ok(()) => {
            std::mem::forget(reservation);
            Ok(())
        }
        Err(TrySendError::Full(_)) => Err(refuse(
            s,
            StatusCode::TOO_MANY_REQUESTS,
            format!("the {queue} queue is full; retry later"),
        )),
        Err(TrySendError::Disconnected(_)) => Err(refuse(
            s,
            StatusCode::SERVICE_UNAVAILABLE,
            "the collector is stopping".into(),
        )),
    }
}

/// A body as `\n`-separated records: JSONL as it is, a JSON array one element a line (raw
/// newlines inside an element are JSON whitespace and become spaces). Returns the lines and
/// the number of records.
///
/// # Errors
/// A body that starts like an array and is not one.
pub fn to_lines(body: &[u8]) -> Result<(Vec<u8>, u64), String> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
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
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any body: no panic; JSONL keeps its bytes and counts its non-blank lines; a valid
        /// array becomes one element a line.
        #[test]
        fn bodies_of_any_shape(body in prop::collection::vec(any::<u8>(), 0..300)) {
            if let Ok((lines, n)) = to_lines(&body) {
                let counted = lines
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
                    .count() as u64;
                prop_assert_eq!(counted, n);
            }
        }

        #[test]
        fn arrays_of_records(items in prop::collection::vec("[a-z\n ]{0,8}", 0..20)) {
            let values: Vec<serde_json::Value> = items
                .iter()
                .map(|s| serde_json::json!({"k": s, "n": [1, {"x": "\n"}]}))
                .collect();
            let body = serde_json::to_vec_pretty(&values).unwrap();
            let (lines, n) = to_lines(&body).unwrap();
            prop_assert_eq!(n, items.len() as u64);
            let back: Vec<serde_json::Value> = lines
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice(l).unwrap())
                .collect();
            prop_assert_eq!(back, values);
        }
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let (lines, n) = to_lines(b"\xEF\xBB\xBF{\"a\":1}\n").unwrap();
        assert_eq!((lines.as_slice(), n), (&b"{\"a\":1}\n"[..], 1));
        let (_, n) = to_lines(b"\xEF\xBB\xBF[{\"a\":1}]").unwrap();
        assert_eq!(n, 1);
    }

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
