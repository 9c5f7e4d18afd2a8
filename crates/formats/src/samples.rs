//! Tests of every adapter against the sample logs: decodes each file of `sample-logs/<format>/`
//! named by `tests/e2e/expected/<format>.json` line by line through [`Decoder::decode_line`], the
//! way the ingest does, and compares counts, rows and quarantined records with that hand-written
//! oracle; checks that detection picks the format and that no signature matches another format's
//! records; and fuzzes every adapter (and a user mapping) with mutated and random records.

use std::io::Read;
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::error::LineError;
use crate::{detect, Decoder, Format, Sink, Skip};
use verdict_schema::time::format_micros;
use verdict_schema::DecisionRecord;

struct Collect<'f> {
    file: &'f str,
    line: u64,
    rows: Vec<Value>,
    bad: Vec<Value>,
    skipped: std::collections::BTreeMap<&'static str, u64>,
}

impl Sink for Collect<'_> {
    fn row(&mut self, r: &DecisionRecord<'_>, _raw: &str) {
        let t = |v: &Option<std::borrow::Cow<'_, str>>| v.as_deref().map(str::to_string);
        self.rows.push(json!({
            "file": self.file, "line": self.line, "event_id": r.event_id, "ts": format_micros(r.ts_micros),
            "identity": t(&r.identity), "identity_id": t(&r.identity_id), "session": t(&r.session),
            "server": t(&r.server), "method": t(&r.method), "tool": t(&r.tool),
            "arg_keys": r.arg_keys.as_ref().map(|k| k.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
            "decision": r.decision.as_str(), "rule": t(&r.rule), "message": t(&r.message),
            "policy_id": t(&r.policy_id), "policy_version": t(&r.policy_version),
            "upstream_status": r.upstream_status, "latency_ms": r.latency_ms,
            "client_addr": t(&r.client_addr),
        }));
    }
    fn skipped(&mut self, reason: Skip, _raw: &str) {
        *self.skipped.entry(reason.code()).or_default() += 1;
    }
    fn bad(&mut self, e: LineError, _raw: &str) {
        self.bad.push(
            json!({"file": self.file, "line": self.line, "error": e.kind.code(), "field": e.field}),
        );
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read_text(path: &PathBuf) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.extension().is_some_and(|x| x == "gz") {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut s)
            .unwrap();
        s
    } else {
        String::from_utf8(bytes).unwrap()
    }
}

/// `VERDICT_BLESS=1`: rewrite the oracles from the adapters' output (to review with `git diff`).
fn blessing() -> bool {
    std::env::var_os("VERDICT_BLESS").is_some()
}

/// Row values compare exactly, except `latency_ms` (numerically, so `4` equals `4.0`).
fn same_row(got: &Value, want: &Value) -> bool {
    let (Some(g), Some(w)) = (got.as_object(), want.as_object()) else {
        return false;
    };
    g.len() == w.len()
        && g.iter().all(|(k, v)| match (k.as_str(), w.get(k)) {
            ("latency_ms", Some(x)) => match (v.as_f64(), x.as_f64()) {
                (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                _ => v.is_null() && x.is_null(),
            },
            (_, Some(x)) => v == x,
            (_, None) => false,
        })
}

/// Decodes the format's sample files and asserts they give exactly the oracle's rows.
fn check(format: Format) {
    let name = format.name();
    let oracle_path = root().join(format!("tests/e2e/expected/{name}.json"));
    let oracle: Value = serde_json::from_str(&read_text(&oracle_path)).unwrap();
    assert_eq!(oracle["format"], name);
    let decoder = Decoder::Builtin(format);
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    let inputs = oracle["inputs"].as_array().expect("inputs");
    assert!(!inputs.is_empty());
    let mut counted = Vec::new();
    for input in inputs {
        let file = input["file"].as_str().expect("file");
        let text = read_text(&root().join(format!("sample-logs/{name}/{file}")));
        let lines: Vec<&str> = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        let d = detect(lines.iter().copied(), 1).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(d.format, format, "{file}: detected {}", d.format);
        let mut c = Collect {
            file,
            line: 0,
            rows: Vec::new(),
            bad: Vec::new(),
            skipped: Default::default(),
        };
        let mut n_lines = 0;
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            n_lines += 1;
            c.line = i as u64 + 1;
            decoder.decode_line(line, &mut c);
        }
        let counts = json!({"file": file, "detected": d.label(), "lines": n_lines,
            "rows": c.rows.len(), "quarantined": c.bad.len(), "skipped": c.skipped});
        if blessing() {
            counted.push(counts);
        } else {
            assert_eq!(&counts, input, "counts of {file}");
        }
        rows.extend(c.rows);
        bad.extend(c.bad);
    }
    let key = |v: &Value| {
        (
            v["file"].as_str().unwrap_or_default().to_string(),
            v["line"].as_u64().unwrap_or_default(),
            v["event_id"].as_str().unwrap_or_default().to_string(),
        )
    };
    rows.sort_by_key(key);
    if blessing() {
        // Writes what the adapter gives, for review row by row before it becomes the oracle.
        let out = json!({"format": name, "inputs": counted, "rows": rows, "quarantined": bad});
        std::fs::write(
            &oracle_path,
            serde_json::to_string_pretty(&out).unwrap() + "\n",
        )
        .unwrap();
        return;
    }
    let want = oracle["rows"].as_array().expect("rows");
    for (g, w) in rows.iter().zip(want) {
        assert!(
            same_row(g, w),
            "row differs from the oracle:\n got  {g}\n want {w}"
        );
    }
    assert_eq!(rows.len(), want.len(), "number of rows");
    assert_eq!(&Value::Array(bad), &oracle["quarantined"], "quarantined");
}

/// The records of every sample file of `dir` (envelopes unwrapped, arrays fanned out).
fn sample_records(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = path.to_string_lossy().to_string();
        if !(name.ends_with(".jsonl") || name.ends_with(".gz") || name.ends_with(".log")) {
            continue;
        }
        for line in read_text(&path).lines() {
            let Ok((text, _)) = crate::envelope::unwrap(line) else {
                continue;
            };
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Array(items)) => out.extend(items.iter().map(Value::to_string)),
                Ok(v) => out.push(v.to_string()),
                Err(_) => {}
            }
        }
    }
    out
}

/// The format's signature matches no record of another format's sample logs.
fn foreign_records_do_not_match(format: Format) {
    let base = root().join("sample-logs");
    for dir in std::fs::read_dir(&base).unwrap().flatten() {
        // `broken/` holds damaged PolicyLayer lines.
        let owner = match dir.file_name().to_string_lossy().as_ref() {
            "broken" => "policylayer".to_string(),
            other => other.to_string(),
        };
        if owner == format.name() {
            continue;
        }
        for rec in sample_records(&dir.path()) {
            let node = crate::json::parse(&rec).unwrap();
            assert!(
                !format.matches(&node),
                "{} matches a record of {:?}: {rec}",
                format.name(),
                dir.file_name()
            );
        }
    }
}

/// Every value of every sample record, replaced in turn by each JSON type, never makes the
/// adapter panic; nor do truncated records and random bytes.
fn mutations_never_panic(decoder: &Decoder, samples: &str) {
    fn paths(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if let Value::Object(m) = v {
            for (k, child) in m {
                at.push(k.clone());
                out.push(at.clone());
                paths(child, at, out);
                at.pop();
            }
        }
    }
    fn set(v: &mut Value, path: &[String], to: &Value) {
        match path {
            [] => *v = to.clone(),
            [k, rest @ ..] => {
                if let Some(child) = v.get_mut(k) {
                    set(child, rest, to);
                }
            }
        }
    }
    let swaps = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1e300),
        json!(18446744073709551615u64),
        json!(""),
        json!("-"),
        json!("x"),
        json!([]),
        json!([{}]),
        json!({}),
    ];
    let mut sink = Collect {
        file: "",
        line: 0,
        rows: Vec::new(),
        bad: Vec::new(),
        skipped: Default::default(),
    };
    for rec in sample_records(&root().join("sample-logs").join(samples)) {
        let value: Value = serde_json::from_str(&rec).unwrap();
        let mut all = Vec::new();
        paths(&value, &mut Vec::new(), &mut all);
        for p in &all {
            for s in &swaps {
                let mut v = value.clone();
                set(&mut v, p, s);
                decoder.decode_line(&v.to_string(), &mut sink);
            }
        }
        for cut in (0..rec.len()).step_by(5) {
            if rec.is_char_boundary(cut) {
                decoder.decode_line(&rec[..cut], &mut sink);
            }
        }
    }
    const ALPHABET: &[u8] = b"{}[]\":,0123456789.-eE truenalfsx\\";
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        let len = (seed % 64) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                ALPHABET[(seed % ALPHABET.len() as u64) as usize]
            })
            .collect();
        decoder.decode_line(&String::from_utf8_lossy(&bytes), &mut sink);
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    decoder.decode_line(&deep, &mut sink);
    let deep = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    decoder.decode_line(&deep, &mut sink);
}

#[test]
fn every_format_decodes_its_samples_to_the_expected_rows() {
    let mut checked = Vec::new();
    for f in Format::ALL {
        if root()
            .join(format!("tests/e2e/expected/{}.json", f.name()))
            .exists()
        {
            check(f);
            checked.push(f);
        }
    }
    assert_eq!(
        checked.len(),
        Format::ALL.len() - 1,
        "all but policylayer (its own oracle) have expected rows"
    );
}

#[test]
fn no_signature_matches_another_formats_records() {
    for f in Format::ALL {
        foreign_records_do_not_match(f);
    }
}

/// The fuzz target: every adapter, and a user mapping, on every sample record with each value
/// replaced by each JSON type, on truncated records, random bytes and deep nesting.
#[test]
fn no_adapter_panics_on_mutated_or_random_input() {
    for f in Format::ALL {
        mutations_never_panic(&Decoder::Builtin(f), f.name());
    }
    let mapping = crate::Mapping::from_toml(crate::mapping::TEMPLATE).unwrap();
    mutations_never_panic(&Decoder::Mapping(std::sync::Arc::new(mapping)), "opa");
    let fanout = crate::Mapping::from_toml(
        "name = \"k\"\nrecords = \"ai.mcp.audit[]\"\n[columns]\nts = \"$.started_at\"\ntool = \"primitive_name\"\n[decision]\npath = \"action\"\n",
    )
    .unwrap();
    mutations_never_panic(&Decoder::Mapping(std::sync::Arc::new(fanout)), "kong");
}

/// Counts what each line of a file became.
#[derive(Default)]
struct Tally {
    events: u64,
    rows: u64,
    skipped: u64,
    bad: u64,
}

impl Sink for Tally {
    fn row(&mut self, _r: &DecisionRecord<'_>, _raw: &str) {
        self.events += 1;
        self.rows += 1;
    }
    fn skipped(&mut self, reason: Skip, _raw: &str) {
        assert!(!reason.code().is_empty());
        self.events += 1;
        self.skipped += 1;
    }
    fn bad(&mut self, e: LineError, _raw: &str) {
        assert!(!e.kind.code().is_empty());
        self.events += 1;
        self.bad += 1;
    }
}

/// Nothing vanishes: every record of every file in `sample-logs/` (each format's folder, old
/// shapes and text formats included) becomes a row, is skipped with a named reason, or is
/// quarantined with a named code; and every file is detected as the format of its folder.
#[test]
fn every_sample_record_becomes_a_row_a_skip_or_a_quarantine() {
    let base = root().join("sample-logs");
    let mut files = 0;
    for dir in std::fs::read_dir(&base).unwrap().flatten() {
        let folder = dir.file_name().to_string_lossy().into_owned();
        if folder == "policies" || !dir.path().is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let path = entry.path();
            let name = path.to_string_lossy().into_owned();
            if !(name.ends_with(".jsonl") || name.ends_with(".gz") || name.ends_with(".log")) {
                continue;
            }
            let text = read_text(&path);
            let lines: Vec<&str> = text.lines().collect();
            let format = if folder == "broken" {
                Format::PolicyLayer
            } else {
                let d = detect(lines.iter().copied(), 1).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(d.format.name(), folder, "{name} detected as {}", d.label());
                d.format
            };
            let decoder = Decoder::Builtin(format);
            let mut total = Tally::default();
            for (i, line) in lines.iter().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let mut t = Tally::default();
                decoder.decode_line(line, &mut t);
                assert!(
                    t.events >= 1,
                    "{name}:{}: the record vanished: {line}",
                    i + 1
                );
                assert!(
                    t.rows > 0 || t.skipped + t.bad == 1,
                    "{name}:{}: a record without rows has exactly one fate",
                    i + 1
                );
                total.rows += t.rows;
                total.skipped += t.skipped;
                total.bad += t.bad;
            }
            assert!(total.rows + total.skipped + total.bad > 0, "{name}");
            files += 1;
        }
    }
    assert!(files >= 40, "only {files} sample files");
}
