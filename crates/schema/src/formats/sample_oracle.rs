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

fn sample_lines(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
    files.sort();
    for path in files {
        let name = path.to_string_lossy().to_string();
        if ![".jsonl", ".jsonl.gz", ".json.gz", ".log"]
            .iter()
            .any(|x| name.ends_with(x))
        {
            continue;
        }
        for line in read(&path).lines().filter(|l| !l.trim().is_empty()) {
            out.push((name.clone(), line.to_string()));
        }
    }
    out
}

/// No record of another format's sample logs matches `format`'s signature.
pub(super) fn foreign_samples_do_not_match(format: Format) {
    let Ok(dirs) = std::fs::read_dir(root().join("sample-logs")) else {
        return;
    };
    for dir in dirs.filter_map(|e| Some(e.ok()?.path())) {
        if !dir.is_dir() || dir.file_name().is_some_and(|n| n == format.name()) {
            continue;
        }
        for (file, line) in sample_lines(&dir) {
            let Ok((text, _)) = crate::formats::envelope::unwrap(&line) else {
                continue;
            };
            let Ok(node) = crate::formats::json::parse(&text) else {
                continue;
            };
            let records = match &node {
                crate::formats::json::Node::Arr(items) => items.iter().collect::<Vec<_>>(),
                other => vec![other],
            };
            for r in records {
                assert!(!format.matches(r), "{file}: {format} matches {line}");
            }
        }
    }
}

/// Decoding never panics: every leaf of every sample record is replaced in turn by values of
/// other types, and every line is cut at many places.
pub(super) fn mutations_never_panic(format: Format) {
    let decoder = Decoder::Builtin(format);
    let mut sink = Collect::default();
    let swaps = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1e300),
        json!(18446744073709551615u64),
        json!(""),
        json!("-"),
        json!("x::\""),
        json!([]),
        json!({}),
        json!([[{"a": [1]}]]),
    ];
    for (_, line) in sample_lines(&root().join("sample-logs").join(format.name())) {
        let cuts = line
            .char_indices()
            .map(|(i, _)| i)
            .step_by((line.len() / 300).max(7));
        for cut in cuts {
            decoder.decode_line(&line[..cut], &mut sink);
        }
        let (text, _) = match crate::formats::envelope::unwrap(&line) {
            Ok(t) => t,
            Err(_) => continue,
        };
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let mut paths = Vec::new();
        leaves(&value, &mut Vec::new(), &mut paths);
        for path in paths {
            for swap in &swaps {
                let mut v = value.clone();
                if let Some(slot) = pointer(&mut v, &path) {
                    *slot = swap.clone();
                }
                decoder.decode_line(&v.to_string(), &mut sink);
            }
        }
    }
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    decoder.decode_line(&deep, &mut sink);
    let deep = format!("{}1{}", "{\"a\":".repeat(5000), "}".repeat(5000));
    decoder.decode_line(&deep, &mut sink);
    decoder.decode_line("\u{0}\u{7f}\u{fffd}{\"", &mut sink);
}

fn leaves(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                at.push(k.clone());
                out.push(at.clone());
                leaves(c, at, out);
                at.pop();
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                at.push(i.to_string());
                out.push(at.clone());
                leaves(c, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn pointer<'v>(v: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
    let mut cur = v;
    for step in path {
        cur = match cur {
            Value::Object(m) => m.get_mut(step)?,
            Value::Array(a) => a.get_mut(step.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}
