//! Test helper shared by the adapters (included with `#[path]` by each adapter's tests): decodes
//! every file of `sample-logs/<format>/` line by line through [`Decoder::decode_line`], as the
//! ingest does, and compares the rows, quarantined records and counts with the hand-written
//! oracle `tests/e2e/expected/<format>.json`. Also checks that detection picks the format.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::error::LineError;
use crate::formats::{detect, Decoder, Format, Sink};
use crate::record::DecisionRecord;
use crate::time::format_micros;

#[derive(Default)]
struct Collect {
    rows: Vec<Value>,
    bad: Vec<(String, Option<String>)>,
}

impl Sink for Collect {
    fn row(&mut self, r: &DecisionRecord<'_>, _raw: &str) {
        let s = |v: &Option<std::borrow::Cow<'_, str>>| v.as_deref().map(str::to_string);
        self.rows.push(json!({
            "event_id": r.event_id.as_ref(),
            "ts": format_micros(r.ts_micros),
            "identity": s(&r.identity),
            "identity_id": s(&r.identity_id),
            "session": s(&r.session),
            "server": s(&r.server),
            "method": s(&r.method),
            "tool": s(&r.tool),
            "arg_keys": r.arg_keys.as_ref().map(|k| k.iter().map(|k| k.to_string()).collect::<Vec<_>>()),
            "decision": r.decision.as_str(),
            "rule": s(&r.rule),
            "message": s(&r.message),
            "policy_id": s(&r.policy_id),
            "policy_version": s(&r.policy_version),
            "upstream_status": r.upstream_status,
            "latency_ms": r.latency_ms,
        }));
    }

    fn bad(&mut self, error: LineError, _raw: &str) {
        self.bad.push((error.kind.code().to_string(), error.field));
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &PathBuf) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "gz") {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut s)
            .unwrap();
        s
    } else {
        String::from_utf8(bytes).unwrap()
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
            _ => false,
        },
        _ => a == b,
    }
}

/// Decodes the format's sample logs and asserts they give exactly the oracle's rows.
pub(super) fn check(format: Format) {
    let name = format.name();
    let oracle_path = root().join(format!("tests/e2e/expected/{name}.json"));
    let oracle: Value = serde_json::from_str(&read(&oracle_path)).unwrap();
    assert_eq!(oracle["format"], name);
    let dir = root().join("sample-logs").join(name);
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| {
            [".jsonl", ".jsonl.gz", ".json.gz", ".log"]
                .iter()
                .any(|x| f.ends_with(x))
        })
        .collect();
    let inputs = oracle["inputs"].as_array().unwrap();
    let listed: BTreeSet<String> = inputs
        .iter()
        .map(|i| i["file"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(on_disk, listed, "sample files vs the oracle's inputs");

    let decoder = Decoder::Builtin(format);
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for input in inputs {
        let file = input["file"].as_str().unwrap();
        let text = read(&dir.join(file));
        let lines: Vec<&str> = text.lines().collect();
        let detected = detect(lines.iter().copied(), 1).unwrap();
        assert_eq!(detected.format, format, "{file}: detection");
        let (mut n_lines, mut n_rows, mut n_bad, mut n_skipped) = (0, 0, 0, 0);
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            n_lines += 1;
            let mut c = Collect::default();
            let n = decoder.decode_line(line, &mut c);
            assert_eq!(n, c.rows.len());
            if c.rows.is_empty() && c.bad.is_empty() {
                n_skipped += 1;
            }
            n_rows += c.rows.len();
            n_bad += c.bad.len();
            for mut r in c.rows {
                let obj = r.as_object_mut().unwrap();
                obj.insert("file".into(), json!(file));
                obj.insert("line".into(), json!(i + 1));
                rows.push(r);
            }
            for (error, field) in c.bad {
                bad.push(json!({"file": file, "line": i + 1, "error": error, "field": field}));
            }
        }
        let counts = json!({"file": file, "lines": n_lines, "rows": n_rows,
            "quarantined": n_bad, "skipped": n_skipped});
        assert_eq!(&counts, input, "{file}: counts");
    }
    let key = |r: &Value| {
        (
            r["file"].as_str().unwrap_or("").to_string(),
            r["line"].as_u64().unwrap_or(0),
            r["event_id"].as_str().unwrap_or("").to_string(),
        )
    };
    rows.sort_by_key(key);
    let want = oracle["rows"].as_array().unwrap();
    assert_eq!(rows.len(), want.len(), "row count");
    for (got, want) in rows.iter().zip(want) {
        let (g, w) = (got.as_object().unwrap(), want.as_object().unwrap());
        let keys: BTreeSet<&String> = g.keys().chain(w.keys()).collect();
        for k in keys {
            let (gv, wv) = (g.get(k), w.get(k));
            assert!(
                match (gv, wv) {
                    (Some(a), Some(b)) => same(a, b),
                    _ => false,
                },
                "{}:{} ({}): `{k}` is {gv:?}, the oracle says {wv:?}",
                g["file"],
                g["line"],
                g["event_id"]
            );
        }
    }
    let qkey = |q: &Value| {
        (
            q["file"].as_str().unwrap_or("").to_string(),
            q["line"].as_u64(),
        )
    };
    bad.sort_by_key(qkey);
    let mut want_bad = oracle["quarantined"].as_array().unwrap().clone();
    want_bad.sort_by_key(qkey);
    assert_eq!(bad, want_bad, "quarantined");
}
