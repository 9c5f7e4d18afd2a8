//! Every built-in format end to end: `verdict ingest` detects each `sample-logs/<format>/` and
//! writes exactly the rows of `tests/e2e/expected/<format>.json` (worked out by hand from the
//! records); detection refuses unrelated and mixed files; user mappings; `--dry-run`; `formats`.

use std::path::Path;

use serde_json::{json, Value};

use crate::util::{quarantine, read_rows, Row, TestDir};

/// The columns an expectation file lists, in its order.
const COLUMNS: [&str; 16] = [
    "event_id",
    "ts",
    "identity",
    "identity_id",
    "session",
    "server",
    "method",
    "tool",
    "arg_keys",
    "decision",
    "rule",
    "message",
    "policy_id",
    "policy_version",
    "upstream_status",
    "client_addr",
];

fn expected_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/expected")
}

/// A warehouse row in the expectation file's shape (file relative to the sample directory).
fn as_expected(row: &Row, dir: &str) -> Value {
    let text = |c: &str| row[c].clone().map_or(Value::Null, Value::from);
    let mut m = serde_json::Map::new();
    let file = row["ingest_file"].clone().unwrap_or_default();
    let file = file
        .strip_prefix(&format!("{dir}/"))
        .unwrap_or(&file)
        .to_string();
    m.insert("file".into(), file.into());
    let line: u64 = row["ingest_line"]
        .as_deref()
        .unwrap_or("0")
        .parse()
        .unwrap();
    m.insert("line".into(), line.into());
    for c in COLUMNS {
        let v = match c {
            "ts" => {
                let shown = row["ts"].clone().unwrap();
                let t = chrono::DateTime::parse_from_rfc3339(&shown)
                    .unwrap_or_else(|e| panic!("ts `{shown}`: {e}"));
                Value::from(
                    t.with_timezone(&chrono::Utc)
                        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                        .to_string(),
                )
            }
            "arg_keys" => match &row["arg_keys"] {
                None => Value::Null,
                Some(s) if s.is_empty() => json!([]),
                Some(s) => Value::Array(s.split(',').map(Value::from).collect()),
            },
            "upstream_status" => row[c]
                .as_deref()
                .map_or(Value::Null, |s| json!(s.parse::<i64>().unwrap())),
            _ => text(c),
        };
        m.insert(c.into(), v);
    }
    let latency = row["latency_ms"]
        .as_deref()
        .map(|s| s.parse::<f64>().unwrap());
    m.insert(
        "latency_ms".into(),
        latency.map_or(Value::Null, Value::from),
    );
    Value::Object(m)
}

fn sort_key(v: &Value) -> (String, u64, String) {
    (
        v["file"].as_str().unwrap().to_string(),
        v["line"].as_u64().unwrap(),
        v["event_id"].as_str().unwrap().to_string(),
    )
}

/// Compares rows field by field (latency with a tolerance), naming the first difference.
fn assert_rows_eq(format: &str, got: &[Value], want: &[Value]) {
    for (g, w) in got.iter().zip(want) {
        for (k, wv) in w.as_object().unwrap() {
            let gv = &g[k];
            let same = match (gv.as_f64(), wv.as_f64()) {
                (Some(a), Some(b)) if k == "latency_ms" => (a - b).abs() < 1e-9,
                _ => gv == wv,
            };
            assert!(
                same,
                "{format}: row {} line {}: `{k}` is {gv}, expected {wv}",
                w["file"], w["line"]
            );
        }
    }
    assert_eq!(got.len(), want.len(), "{format}: number of rows");
}

fn check_format(expectation: &Path) {
    let want: Value = serde_json::from_str(&std::fs::read_to_string(expectation).unwrap()).unwrap();
    let format = want["format"].as_str().unwrap();
    let t = TestDir::new();
    t.copy_sample_logs();
    let dir = format!("sample-logs/{format}");
    let out = t.cmd(&["ingest", &dir, "--format", "json"]).run();
    assert_exit!(out, 0);
    let s = out.json();
    let inputs = want["inputs"].as_array().unwrap();
    let files = s["files"].as_array().unwrap();
    assert_eq!(
        files.len(),
        inputs.len(),
        "{format}: inputs read: {files:?}"
    );
    for w in inputs {
        let name = format!("{dir}/{}", w["file"].as_str().unwrap());
        let f = files
            .iter()
            .find(|f| f["file"] == name.as_str())
            .unwrap_or_else(|| panic!("{format}: {name} was not read: {files:?}"));
        assert_eq!(
            f["format"], w["detected"],
            "{format}: {name} detected as {}",
            f["format"]
        );
        assert_eq!(f["detected"], true);
        for k in ["lines", "rows", "quarantined"] {
            assert_eq!(f[k], w[k], "{format}: {name}: `{k}`");
        }
        // Every skipped record has a named reason.
        assert_eq!(f["skipped_by"], w["skipped"], "{format}: {name}: skipped");
        let by_reason: u64 = w["skipped"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(f["skipped"], by_reason, "{format}: {name}: skipped");
    }
    let mut got: Vec<Value> = read_rows(&t.join("verdict-warehouse"))
        .iter()
        .map(|r| {
            assert_eq!(r["source"].as_deref(), Some(format));
            as_expected(r, &dir)
        })
        .collect();
    got.sort_by_key(sort_key);
    let mut rows = want["rows"].as_array().unwrap().clone();
    rows.sort_by_key(sort_key);
    assert_rows_eq(format, &got, &rows);
    let q: Vec<Value> = quarantine(&t.join("verdict-warehouse"))
        .iter()
        .map(|e| {
            let file = e["file"]
                .as_str()
                .unwrap()
                .strip_prefix(&format!("{dir}/"))
                .unwrap()
                .to_string();
            json!({"file": file, "line": e["line"], "error": e["error"], "field": e["field"]})
        })
        .collect();
    let by_place = |v: &Value| (v["file"].to_string(), v["line"].as_u64());
    let mut q = q;
    q.sort_by_key(by_place);
    let mut want_q = want["quarantined"].as_array().unwrap().clone();
    want_q.sort_by_key(by_place);
    assert_eq!(q, want_q, "{format}: quarantine");
    // Naming the format gives the same rows; ingesting again adds none.
    let again = t
        .cmd(&["ingest", &dir, "-f", format, "--format", "json"])
        .run();
    assert_exit!(again, 0);
    assert_eq!(again.json()["rows_written"], 0);
}

#[test]
fn every_format_sample_maps_to_its_expected_rows() {
    let mut checked = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(expected_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        check_format(&p);
        checked.push(p.file_stem().unwrap().to_string_lossy().into_owned());
    }
    let listed = TestDir::new().cmd(&["formats", "--format", "json"]).run();
    assert_exit!(listed, 0);
    let mut names: Vec<String> = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .filter(|n| n != "policylayer")
        .collect();
    names.sort();
    assert_eq!(
        checked, names,
        "every built-in format has samples and expected rows"
    );
}

#[test]
fn detection_refuses_unrelated_json_and_mixed_files() {
    let t = TestDir::new();
    t.write(
        "catalog.jsonl",
        "{\"sku\":\"a-1\",\"price\":3}\n{\"sku\":\"a-2\",\"price\":4}\n",
    );
    let out = t.cmd(&["ingest", "catalog.jsonl"]).run();
    assert_exit!(out, 2);
    assert!(
        out.stderr.contains(
            "catalog.jsonl: cannot detect the format: no record matches a known format \
             (line 1: an object with keys sku, price)"
        ),
        "{}",
        out.stderr
    );
    assert!(
        crate::util::parquet_files(&t.join("verdict-warehouse")).is_empty(),
        "nothing may be written"
    );
    let pl = r#"{"timestamp":"2026-11-05T10:00:00Z","request_id":"r1","grant_label":"a","decision":"allow"}"#;
    let opa = r#"{"decision_id":"d1","path":"mcp/allow","result":true,"timestamp":"2026-11-05T10:00:01Z"}"#;
    t.write("mixed.jsonl", format!("{pl}\n{opa}\n"));
    let out = t.cmd(&["ingest", "mixed.jsonl"]).run();
    assert_exit!(out, 2);
    assert!(
        out.stderr.contains("mixed.jsonl: cannot detect the format: records of several formats: policylayer (line 1), opa (line 2)"),
        "{}",
        out.stderr
    );
    // Named, the same file ingests: the OPA line is quarantined as a bad PolicyLayer line.
    let out = t
        .cmd(&[
            "ingest",
            "mixed.jsonl",
            "-f",
            "policylayer",
            "--format",
            "json",
        ])
        .run();
    assert_exit!(out, 0);
    let s = out.json();
    assert_eq!(
        (s["rows_written"].as_u64(), s["quarantined"].as_u64()),
        (Some(1), Some(1))
    );
}

const MAPPING: &str = r#"
name = "acme-gw"
records = "calls[]"

[columns]
event_id = "call_id"
ts = "$.sent_at"
identity = "$.who.email"
session = "$.session"
server = "upstream"
method = "$.rpc"
tool = "tool"
args = "params"
rule = "policy.rule"
message = "policy.why"
latency_ms = "took_us"

[timestamp]
unit = "ms"

[latency]
unit = "us"

[decision]
path = "verdict"
map = { ok = "allow", blocked = "deny", slow_down = "rate_limited" }
status = "http"
"#;

#[test]
fn a_user_mapping_reads_any_proxy() {
    let t = TestDir::new();
    t.write("acme.toml", MAPPING);
    t.write(
        "acme.jsonl",
        concat!(
            r#"{"sent_at":1793872800000,"who":{"email":"erin@acme.test"},"session":"s-1","rpc":"tools/call","calls":["#,
            r#"{"call_id":"c1","upstream":"files","tool":"read_file","params":{"path":"/a","mode":"r"},"verdict":"OK","took_us":1500},"#,
            r#"{"call_id":"c2","upstream":"files","tool":"rm_rf","verdict":"blocked","policy":{"rule":"no-destroy","why":"destructive"}},"#,
            r#"{"call_id":"c3","upstream":"files","tool":"read_file","http":429}"#,
            "]}\n",
            r#"{"sent_at":1793872801000,"who":{"email":"erin@acme.test"},"calls":[{"call_id":"c4","tool":"x","verdict":"maybe"}]}"#,
            "\n",
        ),
    );
    let out = t
        .cmd(&[
            "ingest",
            "acme.jsonl",
            "--mapping",
            "acme.toml",
            "--format",
            "json",
        ])
        .run();
    assert_exit!(out, 0);
    let s = out.json();
    assert_eq!(s["files"][0]["format"], "acme-gw");
    assert_eq!(
        (s["rows_written"].as_u64(), s["quarantined"].as_u64()),
        (Some(3), Some(1))
    );
    let mut rows = read_rows(&t.join("verdict-warehouse"));
    rows.sort_by_key(|r| r["event_id"].clone());
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            let v = |c: &str| r[c].clone().unwrap_or_default();
            [
                v("event_id"),
                v("source"),
                v("identity"),
                v("session"),
                v("server"),
                v("method"),
                v("tool"),
                v("arg_keys"),
                v("decision"),
                v("rule"),
                v("message"),
                v("latency_ms"),
            ]
        })
        .collect();
    let row = |a: [&str; 12]| a.map(String::from);
    assert_eq!(
        got,
        [
            row([
                "c1",
                "acme-gw",
                "erin@acme.test",
                "s-1",
                "files",
                "tools/call",
                "read_file",
                "mode,path",
                "allow",
                "",
                "",
                "1.5"
            ]),
            row([
                "c2",
                "acme-gw",
                "erin@acme.test",
                "s-1",
                "files",
                "tools/call",
                "rm_rf",
                "",
                "deny",
                "no-destroy",
                "destructive",
                ""
            ]),
            row([
                "c3",
                "acme-gw",
                "erin@acme.test",
                "s-1",
                "files",
                "tools/call",
                "read_file",
                "",
                "rate_limited",
                "",
                "",
                ""
            ]),
        ]
    );
    assert!(
        rows.iter().all(|r| r["ts"]
            .as_deref()
            .unwrap()
            .starts_with("2026-11-05T10:00:00")),
        "{rows:?}"
    );
    let q = quarantine(&t.join("verdict-warehouse"));
    assert_eq!(q.len(), 1);
    assert_eq!(
        (
            q[0]["line"].as_u64(),
            q[0]["error"].as_str(),
            q[0]["field"].as_str()
        ),
        (Some(2), Some("unknown_decision"), Some("verdict"))
    );
}

#[test]
fn mapping_errors_name_the_key() {
    let t = TestDir::new();
    t.write("log.jsonl", "{}\n");
    for (toml, want) in [
        ("name = \"x\"\n[columns]\nts = \"t\"\nwho = \"u\"\n", "unknown field `who`"),
        ("name = \"x\"\n[columns]\nts = \"t\"\n[decision]\npath = \"d\"\nmap = { ok = \"fine\" }\n", "`decision.map.ok`: unknown decision `fine`"),
        ("name = \"x\"\n[decision]\npath = \"d\"\n", "`columns.ts`: required"),
        ("base = \"nope\"\n", "`base`: unknown format `nope`"),
        ("name = \"x\"\n[columns]\nts = \"a..b\"\n[decision]\npath = \"d\"\n", "`columns.ts`: path `a..b`: empty part"),
    ] {
        t.write("m.toml", toml);
        let out = t.cmd(&["ingest", "log.jsonl", "--mapping", "m.toml"]).run();
        assert_exit!(out, 2);
        assert!(out.stderr.contains("mapping m.toml: ") && out.stderr.contains(want), "{toml}: {}", out.stderr);
    }
}

#[test]
fn a_mapping_on_a_built_in_format_overrides_columns() {
    let t = TestDir::new();
    t.copy_sample_logs();
    t.write("opa.toml", "base = \"opa\"\n[columns]\nidentity = \"input.parsed_body.params.arguments.repo\"\nserver = \"labels.id\"\n");
    let out = t
        .cmd(&[
            "ingest",
            "sample-logs/opa/console.jsonl",
            "--mapping",
            "opa.toml",
            "--dry-run",
            "--show",
            "2",
            "--format",
            "json",
        ])
        .run();
    assert_exit!(out, 0);
    let p = out.json();
    let rows = p[0]["rows"].as_array().unwrap();
    assert_eq!(p[0]["format"], "opa");
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (
            rows[0]["event_id"].as_str(),
            rows[0]["identity"].as_str(),
            rows[0]["server"].as_str()
        ),
        (Some("d-0001"), Some("verdict"), Some("opa-1"))
    );
    // Columns the mapping does not name keep the built-in values.
    assert_eq!(
        (rows[1]["identity"].as_str(), rows[1]["server"].as_str()),
        (Some("verdict"), Some("github-mcp.internal"))
    );
    assert_eq!(rows[1]["decision"], "deny");
    assert!(
        !t.join("verdict-warehouse").exists(),
        "--dry-run writes nothing"
    );
}

#[test]
fn dry_run_shows_detection_mapping_and_rejects() {
    let t = TestDir::new();
    t.copy_sample_logs();
    let out = t
        .cmd(&[
            "ingest",
            "sample-logs/agentgateway/agentgateway.log",
            "--dry-run",
            "--show",
            "8",
        ])
        .run();
    assert_exit!(out, 0);
    let text = &out.stdout;
    assert!(text.starts_with("sample-logs/agentgateway/agentgateway.log: agentgateway (detected), nothing written\n  line 2\n    event_id        t-0001/s-01\n    ts              2026-11-05T08:01:00.120000Z\n    source          agentgateway\n    identity        alice\n"), "{text}");
    assert!(text.contains("  line 8: would be quarantined: bad_timestamp: field `time`: cannot parse timestamp `soon`"), "{text}");
    assert!(
        text.contains("  1 record(s) hold no decision and would be skipped: server_log 1"),
        "{text}"
    );
    assert_eq!(
        text.matches("\n  line ").count(),
        8,
        "7 rows and 1 reject: {text}"
    );
    assert!(!t.join("verdict-warehouse").exists());
}

#[test]
fn formats_lists_every_format_and_the_template_is_a_valid_mapping() {
    let t = TestDir::new();
    let out = t.cmd(&["formats", "--format", "json"]).run();
    assert_exit!(out, 0);
    let names: Vec<String> = out
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "policylayer",
            "opa",
            "envoy",
            "agentgateway",
            "kong",
            "docker",
            "gatekit",
            "mcp-guard",
            "toolhive",
            "tyk",
            "cloudflare",
            "cedarling",
            "cloudtrail",
            "contextforge",
            "pomerium",
            "lasso"
        ]
    );
    let tmpl = t.cmd(&["formats", "--template"]).run();
    assert_exit!(tmpl, 0);
    t.write("my-proxy.toml", &tmpl.stdout);
    t.write(
        "p.jsonl",
        r#"{"id":"e1","time":"2026-11-05T10:00:00Z","user":{"email":"a@b.c","id":"u1"},"session_id":"s","upstream":"srv","rpc":{"method":"tools/call","params":{"name":"t","arguments":{"k":1}}},"outcome":"throttled","duration":"5ms"}"#,
    );
    let out = t
        .cmd(&[
            "ingest",
            "p.jsonl",
            "--mapping",
            "my-proxy.toml",
            "--dry-run",
            "--format",
            "json",
        ])
        .run();
    assert_exit!(out, 0);
    let row = &out.json()[0]["rows"][0];
    assert_eq!(
        (
            row["event_id"].as_str(),
            row["identity"].as_str(),
            row["tool"].as_str(),
            row["decision"].as_str(),
            row["latency_ms"].as_f64()
        ),
        (
            Some("e1"),
            Some("a@b.c"),
            Some("t"),
            Some("rate_limited"),
            Some(5.0)
        )
    );
    assert_eq!(row["source"], "my-proxy");
}

#[test]
fn a_user_envelope_unwraps_an_unknown_prefix_and_names_lines_that_do_not_match() {
    let t = TestDir::new();
    t.write(
        "syslog.log",
        concat!(
            "Nov 13 10:00:01 gw-1 opa[311]: {\"decision_id\":\"env-1\",\"path\":\"mcp/allow\",\"input\":{\"user\":\"ada\"},\"result\":true,\"requested_by\":\"10.0.0.4:5511\",\"timestamp\":\"2026-11-13T10:00:01Z\"}\n",
            "Nov 13 10:00:02 gw-1 opa[311]: {\"decision_id\":\"env-2\",\"path\":\"mcp/allow\",\"input\":{\"user\":\"bob\"},\"result\":{\"allowed\":false,\"deny\":[\"NOT_ON_CALL\"]},\"timestamp\":\"2026-11-13T10:00:02Z\"}\n",
            "Nov 13 10:00:03 gw-1 systemd[1]: Started OPA.\n",
        ),
    );
    let out = t
        .cmd(&[
            "ingest",
            "syslog.log",
            "--envelope",
            r"^\S+ \d+ [\d:]+ \S+ \S+: (?P<json>\{.*\})$",
            "--format",
            "json",
        ])
        .run();
    assert_exit!(out, 0);
    let s = out.json();
    assert_eq!(s["files"][0]["format"], "opa");
    assert_eq!(
        (s["rows_written"].as_u64(), s["quarantined"].as_u64()),
        (Some(2), Some(1))
    );
    let rows = read_rows(&t.join("verdict-warehouse"));
    let mut got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r["event_id"].clone().unwrap(),
                r["identity"].clone(),
                r["client_addr"].clone(),
                r["decision"].clone().unwrap(),
                r["rule"].clone(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                "env-1".to_string(),
                Some("ada".to_string()),
                Some("10.0.0.4:5511".to_string()),
                "allow".to_string(),
                Some("mcp/allow".to_string())
            ),
            (
                "env-2".to_string(),
                Some("bob".to_string()),
                None,
                "deny".to_string(),
                Some("mcp/allow: NOT_ON_CALL".to_string())
            ),
        ]
    );
    let q = quarantine(&t.join("verdict-warehouse"));
    assert_eq!(
        (q[0]["line"].as_u64(), q[0]["error"].as_str()),
        (Some(3), Some("envelope_mismatch"))
    );
    // A regex without the `json` group is refused up front.
    let bad = t
        .cmd(&["ingest", "syslog.log", "--envelope", r"^(.*)$"])
        .run();
    assert_exit!(bad, 2);
    assert!(
        bad.stderr.contains("no named group `json`"),
        "{}",
        bad.stderr
    );
}

#[test]
fn the_summary_breaks_skipped_down_by_reason() {
    let t = TestDir::new();
    t.copy_sample_logs();
    let out = t
        .cmd(&[
            "ingest",
            "sample-logs/gatekit/audit-current-2026-11-13.jsonl",
        ])
        .run();
    assert_exit!(out, 0);
    assert!(
        out.stdout
            .contains("skipped 2 (not decisions): notification 1, response 1\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("gatekit (detected)"), "{}", out.stdout);
}
