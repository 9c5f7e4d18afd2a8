//! Trust at the door: provenance columns, an authenticated (and TLS) receiver, hostile values
//! quarantined, budgets and timeouts, secrets redacted before anything touches disk, private
//! file modes. Every wait polls with a deadline.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::collect::{exchange, free_port, http, wait_for, Running, TOKEN};
use crate::util::{pl_line, quarantine, read_rows, val, TestDir};

fn csv(t: &TestDir, sql: &str) -> String {
    let out = t.cmd(&["sql", sql, "--format", "csv"]).run();
    assert_exit!(out, 0);
    out.stdout
}

fn line(id: &str, second: u32) -> String {
    pl_line(
        id,
        &format!("2026-11-02T10:00:{second:02}Z"),
        "alice",
        "navigate",
        "allow",
        None,
    )
}

/// Files give null provenance; each HTTP upload is stored with its token's name and peer, and
/// `verdict sql` answers which rows came from which uploader.
#[test]
fn trust_rows_say_who_uploaded_them() {
    let t = TestDir::new();
    t.write("gw.jsonl", format!("{}\n", line("f1", 1)));
    assert_exit!(t.cmd(&["ingest", "gw.jsonl"]).run(), 0);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let tokens = "opa-east:east-token-0123456789, ci:ci-token-01234567890";
    let mut cmd = t
        .cmd(&["collect", "--listen", &listen, "--commit-interval", "50ms"])
        .cmd;
    cmd.env("VERDICT_COLLECT_TOKENS", tokens);
    let run = Running::spawn(&t, cmd).started();
    let body = |ids: &[&str]| {
        ids.iter()
            .enumerate()
            .map(|(i, id)| line(id, 10 + i as u32) + "\n")
            .collect::<String>()
    };
    let east = ("Authorization", "Bearer east-token-0123456789");
    let ci = ("Authorization", "Bearer ci-token-01234567890");
    let (code, _, text) = http(
        port,
        "POST",
        "/ingest?format=policylayer",
        &[east],
        body(&["e1", "e2"]).as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 200, "{text}");
    let (code, _, text) = http(
        port,
        "POST",
        "/ingest?format=policylayer",
        &[ci],
        body(&["c1"]).as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 200, "{text}");
    let (code, _, _) = run.term();
    assert_eq!(code, Some(0));
    assert_eq!(
        csv(&t, "SELECT coalesce(ingest_principal, '(file)') AS who, count(*) AS n FROM decisions GROUP BY 1 ORDER BY 1"),
        "who,n\n(file),1\nci,1\nopa-east,2\n"
    );
    for r in read_rows(t.path().join("verdict-warehouse").as_path()) {
        let id = val(&r, "event_id").unwrap();
        if id == "f1" {
            assert_eq!(
                (val(&r, "ingest_peer"), val(&r, "ingest_file")),
                (None, Some("gw.jsonl"))
            );
        } else {
            let peer = val(&r, "ingest_peer").unwrap();
            assert!(peer.starts_with("127.0.0.1:"), "{peer}");
            assert_eq!(val(&r, "ingest_file"), Some("http"));
        }
        assert_eq!(val(&r, "redacted"), None);
    }
}

/// No token or a wrong one: 401 and nothing stored; `/healthz` stays open; `/metrics` needs the
/// token unless configured public; a non-loopback address without TLS is refused.
#[test]
fn trust_unauthenticated_uploads_are_refused_and_nothing_is_stored() {
    let t = TestDir::new();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let run = Running::start(&t, &["--listen", &listen, "--commit-interval", "50ms"]).started();
    let body = format!("{}\n", line("forged", 1));
    for auth in [
        "",
        "Bearer wrong-token-0123456789",
        "Basic dGVzdDp0ZXN0",
        "Bearer",
    ] {
        let (code, h, text) = http(
            port,
            "POST",
            "/ingest",
            &[("Authorization", auth)],
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(code, 401, "{auth}: {text}");
        assert_eq!(
            crate::collect::header(&h, "www-authenticate"),
            Some("Bearer realm=\"verdict\"")
        );
    }
    let (code, _, _) = http(port, "POST", "/logs", &[("Authorization", "")], b"[]").unwrap();
    assert_eq!(code, 401);
    wait_for(20, "/healthz to answer 200 without a token", || {
        matches!(
            http(port, "GET", "/healthz", &[("Authorization", "")], b""),
            Ok((200, _, _))
        )
    });
    let (code, _, _) = http(port, "GET", "/metrics", &[("Authorization", "")], b"").unwrap();
    assert_eq!(code, 401);
    assert_eq!(
        crate::collect::metric(port, "verdict_collect_requests_unauthorized_total"),
        Some(6)
    );
    let (code, _, stderr) = run.term();
    assert_eq!(code, Some(0));
    assert!(
        stderr.contains("refused an unauthenticated request"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("wrong-token"),
        "a token reached the log: {stderr}"
    );
    assert!(read_rows(&t.path().join("verdict-warehouse")).is_empty());

    // Refused at start: no token at all, and a public address without TLS.
    let out = t.cmd(&["collect", "--listen", &listen]).run();
    assert_exit!(out, 2);
    assert!(out.stderr.contains("http.auth: no token"), "{}", out.stderr);
    let public = format!("0.0.0.0:{port}");
    let out = t
        .cmd(&["collect", "--listen", &public])
        .env("VERDICT_COLLECT_TOKENS", &format!("test:{TOKEN}"))
        .run();
    assert_exit!(out, 2);
    assert!(
        out.stderr.contains("refusing to listen on 0.0.0.0"),
        "{}",
        out.stderr
    );
}

/// A test CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files.
struct Pki {
    ca_der: Vec<u8>,
    client_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    client_key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn pki(t: &TestDir) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "verdict test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut cp = CertificateParams::new(Vec::<String>::new()).unwrap();
    cp.distinguished_name.push(DnType::CommonName, "agent-7");
    let client = cp.signed_by(&client_key, &issuer).unwrap();
    t.write("ca.pem", ca.pem());
    t.write("server.pem", server.pem());
    t.write("server.key", server_key.serialize_pem());
    Pki {
        ca_der: ca.der().to_vec(),
        client_chain: vec![client.der().clone()],
        client_key: rustls::pki_types::PrivateKeyDer::try_from(client_key.serialize_der()).unwrap(),
    }
}

fn tls_client(p: &Pki, with_cert: bool) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(p.ca_der.clone().into()).unwrap();
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    if with_cert {
        b.with_client_auth_cert(p.client_chain.clone(), p.client_key.clone_key())
            .unwrap()
    } else {
        b.with_no_client_auth()
    }
}

fn https(
    cfg: &rustls::ClientConfig,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<crate::collect::Response> {
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(cfg.clone()), name)
        .map_err(std::io::Error::other)?;
    exchange(
        rustls::StreamOwned::new(conn, tcp),
        "POST",
        path,
        headers,
        body,
    )
}

/// TLS with a test certificate: uploads over HTTPS are stored; plain HTTP on the same port
/// gets no answer. With a client CA, the client certificate's subject is the principal.
#[test]
fn trust_tls_and_client_certificates() {
    let t = TestDir::new();
    let p = pki(&t);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let run = Running::start(
        &t,
        &[
            "--listen",
            &listen,
            "--commit-interval",
            "50ms",
            "--tls-cert",
            "server.pem",
            "--tls-key",
            "server.key",
        ],
    )
    .started();
    let (code, _, text) = https(
        &tls_client(&p, false),
        port,
        "/ingest?format=policylayer",
        &[],
        format!("{}\n", line("tls1", 1)).as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 200, "{text}");
    let (code, _, _) = https(
        &tls_client(&p, false),
        port,
        "/ingest",
        &[("Authorization", "Bearer nope-nope-nope-nope")],
        b"{}\n",
    )
    .unwrap();
    assert_eq!(code, 401);
    assert!(
        http(port, "POST", "/ingest", &[], b"{}\n").is_err(),
        "plain HTTP must not be answered"
    );
    let (code, _, _) = run.term();
    assert_eq!(code, Some(0));

    // Mutual TLS, no tokens: the subject is the principal; a client without a certificate is
    // refused in the handshake.
    let mut cmd = t
        .cmd(&[
            "collect",
            "--listen",
            &listen,
            "--commit-interval",
            "50ms",
            "--tls-cert",
            "server.pem",
            "--tls-key",
            "server.key",
            "--tls-client-ca",
            "ca.pem",
        ])
        .cmd;
    cmd.env_remove("VERDICT_COLLECT_TOKENS");
    let run = Running::spawn(&t, cmd).started();
    let (code, _, text) = https(
        &tls_client(&p, true),
        port,
        "/ingest?format=policylayer",
        &[("Authorization", "")],
        format!("{}\n", line("mtls1", 2)).as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 200, "{text}");
    assert!(https(
        &tls_client(&p, false),
        port,
        "/ingest",
        &[("Authorization", "")],
        b"{}\n"
    )
    .is_err());
    let (code, _, _) = run.term();
    assert_eq!(code, Some(0));
    assert_eq!(
        csv(
            &t,
            "SELECT event_id, ingest_principal FROM decisions ORDER BY event_id"
        ),
        "event_id,ingest_principal\nmtls1,CN=agent-7\ntls1,test\n"
    );
}

/// Idle connections are closed after the idle timeout, connections past the cap at once, a
/// slow body gets 408, and a tiny gzip body of a million `{}` lines is refused whole (422)
/// without a byte of quarantine, while followed files are still committed.
#[test]
fn trust_receiver_limits_hold_and_are_logged() {
    let t = TestDir::new();
    let port = free_port();
    t.write("logs/app.log", "");
    t.write(
        "collect.toml",
        format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\nidle_timeout = \"400ms\"\nheader_timeout = \"1s\"\nbody_timeout = \"700ms\"\nmax_connections = 4\nmax_bad_records = 100\n[commit]\ninterval = \"50ms\"\n[[files]]\npaths = [\"logs/*.log\"]\npoll_interval = \"50ms\"\n"
        ),
    );
    let run = Running::start(&t, &["-c", "collect.toml"]).started();
    let started = Instant::now();
    let idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    // The fifth is closed at once.
    let mut fifth = TcpStream::connect(("127.0.0.1", port)).unwrap();
    fifth
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(fifth.read(&mut buf), Ok(0) | Err(_)));
    // A file line is committed meanwhile.
    std::fs::write(t.join("logs/app.log"), format!("{}\n", line("file1", 1))).unwrap();
    // The idle ones are closed by the server.
    for mut c in idle {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)));
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    // A slow body: 10 of 100 bytes, then nothing.
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    slow.write_all(format!("POST /ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n0123456789").as_bytes()).unwrap();
    let mut resp = String::new();
    let _ = slow.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
    // A million `{}` lines in about 3 KB of gzip.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..1_000_000 {
        gz.write_all(b"{}\n").unwrap();
    }
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 8_000, "{}", gz.len());
    let (code, _, text) = http(
        port,
        "POST",
        "/ingest?format=policylayer",
        &[("Content-Encoding", "gzip")],
        &gz,
    )
    .unwrap();
    assert_eq!(code, 422, "{text}");
    assert!(
        text.contains("refused, nothing stored: the request holds more than 100 bad records"),
        "{text}"
    );
    wait_for(20, "the file line to be committed", || {
        read_rows(&t.path().join("verdict-warehouse")).len() == 1
    });
    let (code, _, stderr) = run.term();
    assert_eq!(code, Some(0));
    for msg in [
        "connection cap reached",
        "idle timeout",
        "body timeout",
        "refused a request past its quarantine budget",
    ] {
        assert!(stderr.contains(msg), "no `{msg}` in\n{stderr}");
    }
    assert!(quarantine(&t.path().join("verdict-warehouse")).is_empty());
}

/// Timestamps outside the window, NaN/infinite/negative latencies are quarantined with their
/// codes; a BOM is skipped; every command still reads the warehouse.
#[test]
fn trust_hostile_values_are_quarantined_and_the_warehouse_stays_readable() {
    let t = TestDir::new();
    let base = line("ok1", 1);
    let with = |id: &str, field: &str, value: &str| {
        let mut v: serde_json::Value = serde_json::from_str(&line(id, 2)).unwrap();
        v[field] = serde_json::from_str(value).unwrap_or(serde_json::Value::String(value.into()));
        v.to_string()
    };
    let lines = [
        format!("\u{feff}{base}"),
        with("ts-huge", "timestamp", "1e300"),
        with("ts-1970", "timestamp", "\"1970-01-01T00:00:00Z\""),
        with("ts-far", "timestamp", "\"2999-01-01T00:00:00Z\""),
        with("lat-nan", "latency_ms", "\"NaN\""),
        with("lat-neg", "latency_ms", "-3"),
        r#"{"timestamp":"2026-11-02T10:00:03Z","request_id":"lat-inf","decision":"allow","latency_ms":1e999}"#.to_string(),
        with("ok2", "latency_ms", "12.5"),
    ];
    t.write("hostile.jsonl", lines.join("\n") + "\n");
    let out = t
        .cmd(&["ingest", "hostile.jsonl", "--format", "json"])
        .run();
    assert_exit!(out, 0);
    let wh = t.path().join("verdict-warehouse");
    let mut codes: Vec<(u64, String)> = quarantine(&wh)
        .iter()
        .map(|q| {
            (
                q["line"].as_u64().unwrap(),
                q["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    codes.sort();
    let want: Vec<(u64, String)> = [
        (2, "bad_timestamp"),
        (3, "bad_timestamp"),
        (4, "bad_timestamp"),
        (5, "bad_latency"),
        (6, "bad_latency"),
        (7, "bad_latency"),
    ]
    .iter()
    .map(|(l, c)| (*l, c.to_string()))
    .collect();
    assert_eq!(codes, want, "{}", out.stdout);
    assert_eq!(
        csv(
            &t,
            "SELECT event_id, latency_ms FROM decisions ORDER BY event_id"
        ),
        "event_id,latency_ms\nok1,\nok2,12.5\n"
    );
    assert_exit!(t.cmd(&["report", "volume"]).run(), 0);
    assert_exit!(
        t.cmd(&[
            "timeline",
            "--identity",
            "alice",
            "--around",
            "2026-11-02T10:00:00Z"
        ])
        .run(),
        0
    );
    // The window is configurable.
    let out = t
        .cmd(&[
            "ingest",
            "hostile.jsonl",
            "--earliest",
            "1960-01-01",
            "--format",
            "json",
            "-w",
            "wh2",
        ])
        .run();
    assert_exit!(out, 0);
    assert_eq!(out.json()["rows_written"], 3);
    // A policy file with a BOM is read.
    let policy = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-logs/policies/candidate.json"),
    )
    .unwrap();
    t.write("bom-policy.json", format!("\u{feff}{policy}"));
    assert_exit!(t.cmd(&["policy", "check", "bom-policy.json"]).run(), 0);
}

/// Past `--max-quarantine-records` the ingest stops with a clear error and writes nothing.
#[test]
fn trust_ingest_quarantine_budget() {
    let t = TestDir::new();
    t.write(
        "bad.jsonl",
        format!("{}\nnot json 1\nnot json 2\nnot json 3\n", line("a", 1)),
    );
    let out = t
        .cmd(&["ingest", "bad.jsonl", "--max-quarantine-records", "2"])
        .run();
    assert_exit!(out, 2);
    assert!(out.stderr.contains("bad.jsonl:4: the quarantine budget of this run is spent (3 records, at most 2); nothing was committed"), "{}", out.stderr);
    let wh = t.path().join("verdict-warehouse");
    assert!(read_rows(&wh).is_empty());
    assert!(quarantine(&wh).is_empty());
    assert_exit!(
        t.cmd(&["ingest", "bad.jsonl", "--max-quarantine-records", "3"])
            .run(),
        0
    );
}

/// Every file under a warehouse, decompressed: Parquet files as the text of every value,
/// gzip and zstd files inflated, others as they are.
pub(crate) fn warehouse_text(dir: &Path, out: &mut Vec<(String, String)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            warehouse_text(&p, out);
            continue;
        }
        let name = p.display().to_string();
        let bytes = std::fs::read(&p).unwrap();
        let text = if name.ends_with(".parquet") {
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                std::fs::File::open(&p).unwrap(),
            )
            .unwrap()
            .build()
            .unwrap();
            let mut s = String::new();
            for b in reader {
                let b = b.unwrap();
                for c in b.columns() {
                    for r in 0..b.num_rows() {
                        s.push_str(&arrow::util::display::array_value_to_string(c, r).unwrap());
                        s.push('\n');
                    }
                }
            }
            s
        } else if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut s = String::new();
            flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_string(&mut s)
                .unwrap();
            s
        } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            String::from_utf8_lossy(&zstd::decode_all(&bytes[..]).unwrap()).into_owned()
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        };
        out.push((name, text));
    }
}

/// Secrets in every input format, in args, raw, envelopes and quarantined lines: none of
/// their bytes is anywhere under the warehouse, and rows still correlate by the marker.
#[test]
fn trust_secrets_never_reach_the_warehouse() {
    let t = TestDir::new();
    let samples = t.copy_sample_logs();
    let mut secrets: Vec<String> = Vec::new();
    let mut corpus = String::new();
    let mut n = 0;
    for dir in [
        "agentgateway",
        "cedarling",
        "docker",
        "envoy",
        "gatekit",
        "kong",
        "mcp-guard",
        "opa",
        "policylayer",
        "toolhive",
        "tyk",
        "cloudflare",
        "cloudtrail",
    ] {
        let mut files: Vec<_> = std::fs::read_dir(samples.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        // Plain JSONL first: a container log's envelope is not the format's own record.
        files.sort_by_key(|f| (!f.display().to_string().ends_with(".jsonl"), f.clone()));
        let mut done = false;
        for f in files {
            let name = f.display().to_string();
            if !(name.ends_with(".jsonl") || name.ends_with(".log")) || done {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            let mut out = String::new();
            for l in text.lines() {
                let Ok(serde_json::Value::Object(mut o)) =
                    serde_json::from_str::<serde_json::Value>(l)
                else {
                    continue;
                };
                if o.contains_key("log") && o.contains_key("stream") {
                    continue;
                }
                n += 1;
                let pw = format!("pw-{dir}-{n}-Zq9");
                let bearer = format!("tok{n}abcdefghijklmnop");
                o.insert("client_secret".into(), pw.clone().into());
                o.insert(
                    "debug".into(),
                    serde_json::json!({"headers": {"X-Trace": format!("Bearer {bearer}")}}),
                );
                secrets.push(pw);
                secrets.push(bearer);
                out.push_str(&serde_json::Value::Object(o).to_string());
                out.push('\n');
            }
            if !out.is_empty() {
                t.write(&format!("corpus/{dir}.jsonl"), &out);
                done = true;
            }
        }
        assert!(done, "no plain sample for {dir}");
    }
    // Arguments with a nested password (twice: the rows must correlate), a GitHub token, a
    // container log envelope, and lines that end up in the quarantine.
    let gh = "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (id, s) in [("args1", 3), ("args2", 4)] {
        corpus.push_str(&format!(r#"{{"timestamp":"2026-11-02T10:00:0{s}Z","request_id":"{id}","grant_label":"alice","method":"tools/call","tool":"connect","decision":"allow","args":{{"proxy":{{"password":"hunter2-Zq9"}},"note":"{gh}"}}}}"#));
        corpus.push('\n');
    }
    let inner = r#"{"timestamp":"2026-11-02T10:00:05Z","request_id":"env1","decision":"deny","args":{"client_secret":"cs-in-envelope-Zq9"}}"#;
    corpus.push_str(&serde_json::json!({"log": format!("{inner}\n"), "stream": "stdout", "time": "2026-11-02T10:00:05Z"}).to_string());
    corpus.push('\n');
    corpus.push_str(r#"{"timestamp":"not a time","request_id":"q1","decision":"allow","password":"pw-quarantined-Zq9"}"#);
    corpus.push('\n');
    corpus.push_str(r#"{"request_id":"q2","authorization":"Bearer qtokenabcdefghij12345","cookie":"sid=cookie-Zq9"#);
    corpus.push('\n');
    t.write("corpus/args.jsonl", &corpus);
    secrets.extend(
        [
            "hunter2-Zq9",
            gh,
            "cs-in-envelope-Zq9",
            "pw-quarantined-Zq9",
            "qtokenabcdefghij12345",
            "cookie-Zq9",
        ]
        .map(String::from),
    );
    let out = t.cmd(&["ingest", "corpus", "--format", "json"]).run();
    assert_exit!(out, 0);
    let s = out.json();
    assert!(s["rows_written"].as_u64().unwrap() > 20, "{}", out.stdout);
    // The samples' own bad lines are quarantined too (with the secrets injected into them).
    let args_file = s["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == "corpus/args.jsonl")
        .unwrap();
    assert_eq!(args_file["quarantined"], 2, "{}", out.stdout);
    assert!(s["quarantined"].as_u64().unwrap() > 10, "{}", out.stdout);
    let mut files = Vec::new();
    warehouse_text(&t.path().join("verdict-warehouse"), &mut files);
    assert!(files.len() > 5);
    for (name, text) in &files {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{secret} found in {name}");
        }
    }
    // Equal secrets correlate: both rows hold the same marker where the password was.
    let rows = csv(&t, "SELECT event_id, args, array_to_string(redacted, ' ') AS redacted FROM decisions WHERE event_id IN ('args1', 'args2', 'env1') ORDER BY event_id");
    let lines: Vec<&str> = rows.lines().collect();
    assert_eq!(lines.len(), 4, "{rows}");
    let marker = |l: &str| l.split("[redacted:").nth(1).unwrap()[..16].to_string();
    assert_eq!(marker(lines[1]), marker(lines[2]));
    assert!(
        lines[1].ends_with("args.proxy.password args.note raw.args.proxy.password raw.args.note"),
        "{rows}"
    );
    assert!(lines[3].contains("raw.log.args.client_secret"), "{rows}");
    assert_eq!(
        csv(&t, "SELECT count(*) AS n FROM decisions WHERE args LIKE '%hunter2%' OR raw LIKE '%hunter2%'"),
        "n\n0\n"
    );
    // The key is private to the user.
    use std::os::unix::fs::PermissionsExt;
    let key = std::fs::metadata(t.path().join("verdict-warehouse/_verdict/redaction.key")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
}

/// Files and directories under the warehouse are 0600/0700 whatever the umask, 0640/0750 with
/// `--group-readable`.
#[test]
fn trust_warehouse_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestDir::new();
    t.write("gw.jsonl", format!("{}\nnot json\n", line("a", 1)));
    let bin = env!("CARGO_BIN_EXE_verdict");
    for (flag, file_mode, dir_mode) in [("", 0o600, 0o700), ("--group-readable", 0o640, 0o750)] {
        let wh = format!("wh{}", flag.len());
        let status = std::process::Command::new("sh")
            .current_dir(t.path())
            .arg("-c")
            .arg(format!(
                "umask 000; exec {bin} ingest gw.jsonl -w {wh} {flag} --progress never"
            ))
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        let mut seen = 0;
        let mut stack = vec![t.join(&wh)];
        while let Some(d) = stack.pop() {
            let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, dir_mode, "{}", d.display());
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
                    // The redaction key (made when a secret is first found) is 0600 either way.
                    let want = if p.ends_with("redaction.key") {
                        0o600
                    } else {
                        file_mode
                    };
                    assert_eq!(mode, want, "{}", p.display());
                    seen += 1;
                }
            }
        }
        assert!(seen >= 4, "{seen}");
    }
}

/// A truncated gzip and zstd file and an entry that cannot be opened no longer abort a
/// multi-file ingest: the lines before the damage are kept, each damage is reported with its
/// byte offset, the exit code is 2; `--strict` keeps all-or-nothing.
#[test]
fn trust_ingest_keeps_going_past_damaged_inputs() {
    let t = TestDir::new();
    let lines = |prefix: &str, n: usize| -> String {
        (0..n)
            .map(|i| {
                pl_line(
                    &format!("{prefix}{i}"),
                    &format!("2026-11-02T10:{:02}:{:02}Z", i / 60, i % 60),
                    "alice",
                    "navigate",
                    "allow",
                    None,
                ) + "\n"
            })
            .collect()
    };
    t.write("in/a-good.jsonl", lines("good", 10));
    // 3,000 lines compressed, cut well into the stream.
    let gz = t.write_gz("in/b-cut.jsonl.gz", &lines("gz", 3000));
    let bytes = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let zst = t.write_zst("in/c-cut.jsonl.zst", &lines("zst", 3000));
    let bytes = std::fs::read(&zst).unwrap();
    std::fs::write(&zst, &bytes[..bytes.len() * 2 / 3]).unwrap();
    std::os::unix::fs::symlink("d-loop.jsonl", t.join("in/d-loop.jsonl")).unwrap();
    let strict = t.cmd(&["ingest", "in", "--strict"]).run();
    assert_exit!(strict, 2);
    assert!(read_rows(&t.path().join("verdict-warehouse")).is_empty());
    let out = t.cmd(&["ingest", "in", "--format", "json"]).run();
    assert_exit!(out, 2);
    assert!(
        out.stderr.contains(
            "3 input(s) could not be read to their end (first: in/b-cut.jsonl.gz at byte"
        ),
        "{}",
        out.stderr
    );
    let s: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let damaged = s["damaged"].as_array().unwrap();
    let files: Vec<&str> = damaged
        .iter()
        .map(|d| d["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        ["in/b-cut.jsonl.gz", "in/c-cut.jsonl.zst", "in/d-loop.jsonl"]
    );
    assert!(damaged[0]["offset"].as_u64().unwrap() > 0);
    let rows = read_rows(&t.path().join("verdict-warehouse"));
    let count = |p: &str| {
        rows.iter()
            .filter(|r| val(r, "event_id").unwrap().starts_with(p))
            .count()
    };
    assert_eq!(count("good"), 10);
    let (g, z) = (count("gz"), count("zst"));
    assert!(g > 100 && g < 3000, "{g}");
    assert!(z > 100 && z < 3000, "{z}");
    // The kept lines are exactly the first ones, none cut.
    let offset = damaged[0]["offset"].as_u64().unwrap() as usize;
    assert!(offset >= g * 100, "{offset} {g}");
    // The table says it too.
    let again = t.cmd(&["ingest", "in"]).run();
    assert_exit!(again, 2);
    assert!(
        again.stdout.contains("damaged: in/c-cut.jsonl.zst at byte"),
        "{}",
        again.stdout
    );
}
