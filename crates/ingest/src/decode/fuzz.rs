//! Property tests (a fuzzer on a budget): the decoders of every built-in format and a user
//! mapping, fed generated records with hostile values, never panic, account for every line,
//! and store no row outside the timestamp window or with a latency that is not a finite,
//! non-negative number. `past_crashers` keeps inputs that once broke something as plain tests.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, TimestampMicrosecondType};
use proptest::prelude::*;
use verdict_formats::{Decoder, Format, Mapping};
use verdict_schema::idx;

use super::*;

/// Values that have broken parsers elsewhere: huge, negative and non-finite numbers, numbers
/// as strings, odd times, deep and empty containers, escapes.
const HOSTILE: &[&str] = &[
    "1e300",
    "-1e300",
    "1e999",
    "-1e999",
    "\"NaN\"",
    "\"nan\"",
    "\"inf\"",
    "\"-Infinity\"",
    "-3",
    "0",
    "-0",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "1.5e-320",
    "\"\"",
    "null",
    "true",
    "[]",
    "{}",
    "[[[[[[[[]]]]]]]]",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"2026-11-02T10:00:00Z\"",
    "\"2026-13-45T99:99:99Z\"",
    "\"294247-01-10T04:00:54Z\"",
    "\"0000-01-01T00:00:00Z\"",
    "\"1970-01-01T00:00:00+25:00\"",
    "1762077600",
    "1762077600000",
    "1762077600000000",
    "1762077600000000000",
    "\"1762077600\"",
    "\"12ms\"",
    "\"1.5s\"",
    "\"Bearer abcdefghijklmnop\"",
    "{\"password\":\"x\"}",
    "\"allow\"",
    "\"deny\"",
    "429",
    "\"\u{feff}\"",
];

const KEYS: &[&str] = &[
    "timestamp",
    "time",
    "ts",
    "@timestamp",
    "request_id",
    "decision_id",
    "decision",
    "result",
    "latency_ms",
    "duration",
    "latency",
    "path",
    "input",
    "tool",
    "method",
    "args",
    "arguments",
    "status",
    "response_code",
    "response_flags",
    "started_at",
    "latencies",
    "grant_label",
    "event_type",
    "identity_id",
    "msg",
    "outcome",
    "component",
    "PortalID",
    "Datetime",
    "log_kind",
    "policystore_id",
    "eventSource",
    "additionalEventData",
    "scope",
    "http",
    "trigger",
    "target_type",
    "pipeline_outcome",
    "prefix",
    "mcp_method",
    "log",
    "stream",
    "Records",
];

fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        prop::sample::select(HOSTILE).prop_map(str::to_string),
        any::<f64>().prop_map(|f| if f.is_finite() {
            format!("{f}")
        } else {
            "1e999".into()
        }),
        any::<i64>().prop_map(|i| i.to_string()),
        "[a-z0-9 :._-]{0,12}".prop_map(|s| format!("\"{s}\"")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(|kv| {
                let body: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", body.join(","))
            }),
        ]
    })
}

fn object() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(KEYS), value()), 0..10).prop_map(|kv| {
        let body: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(","))
    })
}

fn record() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => object(),
        1 => prop::collection::vec(object(), 0..3).prop_map(|v| format!("[{}]", v.join(","))),
        1 => any::<String>(),
        1 => prop::collection::vec(any::<u8>(), 0..40)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

fn decoders() -> Vec<Decoder> {
    let mut all: Vec<Decoder> = Format::ALL.iter().map(|f| Decoder::Builtin(*f)).collect();
    let mapping = r#"
name = "fuzz-proxy"
[columns]
event_id = "request_id"
ts = ["time", "timestamp"]
tool = "tool"
args = "args"
latency_ms = "duration"
[timestamp]
unit = "auto"
[latency]
unit = "ms"
[decision]
path = "decision"
status = "status"
default = "unknown"
"#;
    all.push(Decoder::Mapping(Arc::new(
        Mapping::from_toml(mapping).unwrap(),
    )));
    all
}

fn checks() -> RowChecks {
    let red = crate::redact::Redactor::new(&Default::default(), b"fuzz").unwrap();
    RowChecks {
        ts_min: crate::pipeline::DEFAULT_EARLIEST_MICROS,
        ts_max: 4_000_000_000_000_000,
        redactor: Some(Arc::new(red)),
        max_bad: None,
    }
}

/// Decodes `lines` with `decoder` and checks what every stored row must satisfy.
fn run(decoder: &Decoder, lines: &[String]) {
    let lines: Vec<String> = lines.iter().map(|l| l.replace(['\n', '\r'], " ")).collect();
    let mut text = lines.join("\n");
    text.push('\n');
    let n = lines.len() as u64;
    let chunk = Chunk {
        seq: 0,
        input: 0,
        first_line: 1,
        bytes: text.into_bytes(),
        oversized: vec![],
    };
    let checks = checks();
    let d = decode_chunk(
        chunk,
        decoder,
        None,
        "fuzz",
        true,
        1 << 16,
        &checks,
        &Delivery::default(),
    )
    .unwrap();
    assert_eq!(d.lines + d.blank, n, "every line is counted once");
    assert_eq!(d.keys.len(), d.batch.num_rows());
    assert_eq!(d.days.len(), d.batch.num_rows());
    let ts = d
        .batch
        .column(idx::TS)
        .as_primitive::<TimestampMicrosecondType>();
    let lat = d
        .batch
        .column(idx::LATENCY_MS)
        .as_primitive::<Float64Type>();
    for i in 0..d.batch.num_rows() {
        let t = ts.value(i);
        assert!(
            (checks.ts_min..=checks.ts_max).contains(&t),
            "{}: ts {t}",
            decoder.name()
        );
        if !lat.is_null(i) {
            let l = lat.value(i);
            assert!(l.is_finite() && l >= 0.0, "{}: latency {l}", decoder.name());
        }
    }
    for b in &d.bad {
        assert!(b.line >= 1, "{}", decoder.name());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn decoders_survive_generated_records(lines in prop::collection::vec(record(), 1..12)) {
        for d in decoders() {
            run(&d, &lines);
        }
    }
}

/// Inputs that once produced a partition nobody could read, a NaN average, or a panic.
#[test]
fn past_crashers() {
    let crashers = [
        r#"{"timestamp":1e300,"request_id":"a","decision":"allow"}"#,
        r#"{"timestamp":"294247-01-10T04:00:54Z","request_id":"a","decision":"allow"}"#,
        r#"{"timestamp":"2026-11-02T10:00:00Z","request_id":"a","decision":"allow","latency_ms":"NaN"}"#,
        r#"{"timestamp":"2026-11-02T10:00:00Z","request_id":"a","decision":"allow","latency_ms":1e999}"#,
        r#"{"timestamp":"2026-11-02T10:00:00Z","request_id":"a","decision":"allow","latency_ms":-3}"#,
        r#"{"timestamp":-9223372036854775808,"request_id":"a","decision":"allow"}"#,
        r#"{"timestamp":9223372036854775807,"request_id":"a","decision":"allow"}"#,
        r#"{"time":18446744073709551616,"request_id":"a","decision":"allow","duration":"1e999s"}"#,
        "\u{feff}{}",
        "{}",
    ];
    let lines: Vec<String> = crashers.iter().map(|s| s.to_string()).collect();
    for d in decoders() {
        run(&d, &lines);
    }
}
