//! Tests of the printer: every format into a `Vec<u8>`, on a batch of every kind of value and
//! on a real report; Parquet round trip; broken pipes.

use std::sync::Arc;

use arrow::array::{
    BooleanArray, Date32Array, Float64Array, Int64Array, ListBuilder, RecordBatch, StringArray,
    StringBuilder, StringDictionaryBuilder, TimestampMicrosecondArray, UInt64Array,
};
use arrow::datatypes::{Field, Schema};

use super::*;
use crate::testutil::{engine, micros};
use crate::{ReportKind, ReportSpec};

fn sample() -> QueryOutput {
    let mut keys = ListBuilder::new(StringBuilder::new());
    keys.values().append_value("a");
    keys.values().append_value("b\"c");
    keys.append(true);
    keys.append(true);
    keys.append(false);
    let mut dict = StringDictionaryBuilder::<arrow::datatypes::Int32Type>::new();
    dict.append_value("deny");
    dict.append_value("allow");
    dict.append_null();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![
            Some("alice"),
            Some("a, \"quoted\"\nname"),
            None,
        ])),
        Arc::new(Int64Array::from(vec![Some(1_234_567), Some(-1_000), None])),
        Arc::new(UInt64Array::from(vec![
            Some(999),
            Some(1_000),
            Some(u64::MAX),
        ])),
        Arc::new(Float64Array::from(vec![Some(12.5), Some(f64::NAN), None])),
        Arc::new(
            TimestampMicrosecondArray::from(vec![
                Some(micros("2026-11-02T09:15:02.412Z")),
                Some(micros("2026-11-02T09:15:02.000001Z")),
                None,
            ])
            .with_timezone("UTC"),
        ),
        Arc::new(Date32Array::from(vec![Some(20_759), None, Some(0)])),
        Arc::new(keys.finish()),
        Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
        Arc::new(dict.finish()),
    ];
    let fields: Vec<Field> = [
        "name",
        "calls",
        "big",
        "latency_ms",
        "ts",
        "day",
        "keys",
        "ok",
        "decision",
    ]
    .iter()
    .zip(&columns)
    .map(|(n, c)| Field::new(*n, c.data_type().clone(), true))
    .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap();
    QueryOutput {
        schema,
        batches: vec![batch],
        warehouse_empty: false,
    }
}

fn render(out: &QueryOutput, format: OutputFormat, opts: &PrintOptions) -> String {
    let mut buf = Vec::new();
    write_output(out, format, &mut buf, opts).unwrap();
    String::from_utf8(buf).unwrap()
}

#[test]
fn table() {
    let got = render(&sample(), OutputFormat::Table, &PrintOptions::default());
    assert_eq!(
        got,
        "\
| name        |     calls |                        big | latency_ms | ts                      | day        | keys     | ok    | decision |
|-------------|-----------|----------------------------|------------|-------------------------|------------|----------|-------|----------|
| alice       | 1,234,567 |                        999 |       12.5 | 2026-11-02 09:15:02.412 | 2026-11-02 | [a, b\"c] | true  | deny     |
| a, \"quoted\" |    -1,000 |                      1,000 |        NaN | 2026-11-02 09:15:02.000 |            | []       | false | allow    |
| name        |           |                            |            |                         |            |          |       |          |
|             |           | 18,446,744,073,709,551,615 |            |                         | 1970-01-01 |          |       |          |
"
    );
}

#[test]
fn table_options() {
    let opts = PrintOptions {
        thousands_separators: false,
        max_cell_width: Some(4),
        ..PrintOptions::default()
    };
    let got = render(&sample(), OutputFormat::Table, &opts);
    assert_eq!(
        got,
        "\
| name |   calls |                  big | latency_ms | ts                      | day        | keys | ok    | decision |
|------|---------|----------------------|------------|-------------------------|------------|------|-------|----------|
| ali… | 1234567 |                  999 |       12.5 | 2026-11-02 09:15:02.412 | 2026-11-02 | [a,… | true  | deny     |
| a, … |   -1000 |                 1000 |        NaN | 2026-11-02 09:15:02.000 |            | []   | false | all…     |
|      |         | 18446744073709551615 |            |                         | 1970-01-01 |      |       |          |
"
    );
    // Wrapping to a width keeps every value.
    let opts = PrintOptions {
        width: Some(60),
        ..PrintOptions::default()
    };
    let got = render(&sample(), OutputFormat::Table, &opts);
    for whole in [
        "1,234,567",
        "18,446,744,073,709,551,615",
        "2026-11-02 09:15:02.412",
        "false",
    ] {
        assert!(got.contains(whole), "{got}");
    }
}

#[test]
fn csv() {
    let got = render(&sample(), OutputFormat::Csv, &PrintOptions::default());
    assert_eq!(
        got,
        "\
name,calls,big,latency_ms,ts,day,keys,ok,decision
alice,1234567,999,12.5,2026-11-02T09:15:02.412000Z,2026-11-02,\"[\"\"a\"\",\"\"b\\\"\"c\"\"]\",true,deny
\"a, \"\"quoted\"\"
name\",-1000,1000,NaN,2026-11-02T09:15:02.000001Z,,[],false,allow
,,18446744073709551615,,,1970-01-01,,,
"
    );
    let opts = PrintOptions {
        csv_header: false,
        ..PrintOptions::default()
    };
    let got = render(&sample(), OutputFormat::Csv, &opts);
    assert!(got.starts_with("alice,1234567,"), "{got}");
}

#[test]
fn json() {
    let got = render(&sample(), OutputFormat::Json, &PrintOptions::default());
    assert_eq!(
        got,
        r#"[
{"name":"alice","calls":1234567,"big":999,"latency_ms":12.5,"ts":"2026-11-02T09:15:02.412000Z","day":"2026-11-02","keys":["a","b\"c"],"ok":true,"decision":"deny"},
{"name":"a, \"quoted\"\nname","calls":-1000,"big":1000,"latency_ms":null,"ts":"2026-11-02T09:15:02.000001Z","day":null,"keys":[],"ok":false,"decision":"allow"},
{"name":null,"calls":null,"big":18446744073709551615,"latency_ms":null,"ts":null,"day":"1970-01-01","keys":null,"ok":null,"decision":null}
]
"#
    );
    let parsed: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(parsed.as_array().unwrap().len(), 3);
    assert_eq!(parsed[0]["calls"], serde_json::json!(1_234_567));
}

#[test]
fn ndjson() {
    let got = render(&sample(), OutputFormat::Ndjson, &PrintOptions::default());
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[0],
        r#"{"name":"alice","calls":1234567,"big":999,"latency_ms":12.5,"ts":"2026-11-02T09:15:02.412000Z","day":"2026-11-02","keys":["a","b\"c"],"ok":true,"decision":"deny"}"#
    );
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v.is_object());
    }
    assert!(got.ends_with("}\n"));
}

#[test]
fn empty_results() {
    let mut out = sample();
    out.batches.clear();
    let opts = PrintOptions::default();
    assert_eq!(render(&out, OutputFormat::Json, &opts), "[]\n");
    assert_eq!(render(&out, OutputFormat::Ndjson, &opts), "");
    assert_eq!(
        render(&out, OutputFormat::Csv, &opts),
        "name,calls,big,latency_ms,ts,day,keys,ok,decision\n"
    );
    assert_eq!(
        render(&out, OutputFormat::Table, &opts),
        "\
| name | calls | big | latency_ms | ts | day | keys | ok | decision |
|------|-------|-----|------------|----|-----|------|----|----------|
"
    );
}

#[tokio::test]
async fn a_report_in_every_format() {
    let (_dir, e) = engine().await;
    let spec = ReportSpec {
        top: Some(2),
        ..ReportSpec::new(ReportKind::RateLimits)
    };
    let out = e.report(&spec).await.unwrap();
    let opts = PrintOptions::default();
    assert_eq!(
        render(&out, OutputFormat::Table, &opts),
        "\
| identity | tool           | rate_limited | counter                                          | counter_calls | peak_per_minute | peak_minute             | first_seen              | last_seen               |
|----------|----------------|--------------|--------------------------------------------------|---------------|-----------------|-------------------------|-------------------------|-------------------------|
| bob      | session_create |            4 | /tools/session_create/limits/session_create_rate |             4 |               3 | 2026-11-02 09:15:00.000 | 2026-11-02 09:15:10.000 | 2026-11-02 09:16:05.000 |
| bob      | send_message   |            1 | /all_tools/limits/calls-per-minute               |             1 |               1 | 2026-11-03 08:00:00.000 | 2026-11-03 08:00:00.000 | 2026-11-03 08:00:00.000 |
"
    );
    assert_eq!(
        render(&out, OutputFormat::Csv, &opts),
        "\
identity,tool,rate_limited,counter,counter_calls,peak_per_minute,peak_minute,first_seen,last_seen
bob,session_create,4,/tools/session_create/limits/session_create_rate,4,3,2026-11-02T09:15:00.000000Z,2026-11-02T09:15:10.000000Z,2026-11-02T09:16:05.000000Z
bob,send_message,1,/all_tools/limits/calls-per-minute,1,1,2026-11-03T08:00:00.000000Z,2026-11-03T08:00:00.000000Z,2026-11-03T08:00:00.000000Z
"
    );
    let json: serde_json::Value =
        serde_json::from_str(&render(&out, OutputFormat::Json, &opts)).unwrap();
    assert_eq!(
        json,
        serde_json::json!([
            {"identity": "bob", "tool": "session_create", "rate_limited": 4,
             "counter": "/tools/session_create/limits/session_create_rate", "counter_calls": 4,
             "peak_per_minute": 3, "peak_minute": "2026-11-02T09:15:00.000000Z",
             "first_seen": "2026-11-02T09:15:10.000000Z", "last_seen": "2026-11-02T09:16:05.000000Z"},
            {"identity": "bob", "tool": "send_message", "rate_limited": 1,
             "counter": "/all_tools/limits/calls-per-minute", "counter_calls": 1,
             "peak_per_minute": 1, "peak_minute": "2026-11-03T08:00:00.000000Z",
             "first_seen": "2026-11-03T08:00:00.000000Z", "last_seen": "2026-11-03T08:00:00.000000Z"}
        ])
    );
    let ndjson = render(&out, OutputFormat::Ndjson, &opts);
    let rows: Vec<serde_json::Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(serde_json::Value::Array(rows), json);
}

#[tokio::test]
async fn parquet_round_trip() {
    let (dir, e) = engine().await;
    let out = e
        .report(&ReportSpec::new(ReportKind::Identities))
        .await
        .unwrap();
    let path = dir.path().join("identities.parquet");
    write_parquet(&out, &path).unwrap();
    let file = File::open(&path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let read = QueryOutput {
        schema: batches[0].schema(),
        batches,
        warehouse_empty: false,
    };
    assert_eq!(
        read.to_pretty_string().unwrap(),
        out.to_pretty_string().unwrap()
    );
    let err = write_parquet(&out, &dir.path().join("no/such/dir/x.parquet")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Io {
                action: "creating",
                ..
            }
        ),
        "{err}"
    );
}

struct ClosedPipe;

impl Write for ClosedPipe {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::BrokenPipe.into())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_closed_pipe_is_reported_as_such() {
    for format in [
        OutputFormat::Table,
        OutputFormat::Csv,
        OutputFormat::Json,
        OutputFormat::Ndjson,
    ] {
        let err =
            write_output(&sample(), format, &mut ClosedPipe, &PrintOptions::default()).unwrap_err();
        assert!(err.is_broken_pipe(), "{format:?}: {err}");
    }
}

#[test]
fn formats_parse() {
    assert_eq!("NDJSON".parse::<OutputFormat>(), Ok(OutputFormat::Ndjson));
    assert_eq!("table".parse::<OutputFormat>(), Ok(OutputFormat::Table));
    assert!("xml".parse::<OutputFormat>().is_err());
    assert_eq!(group_thousands("-1234"), "-1,234");
    assert_eq!(group_thousands("123"), "123");
    assert_eq!(group_thousands("1000000"), "1,000,000");
}

#[test]
fn timestamps_print_as_rfc3339_with_the_unit_s_digits_for_any_instant() {
    let patterns = [
        (TimeUnit::Second, "%Y-%m-%dT%H:%M:%SZ"),
        (TimeUnit::Millisecond, "%Y-%m-%dT%H:%M:%S%.3fZ"),
        (TimeUnit::Microsecond, "%Y-%m-%dT%H:%M:%S%.6fZ"),
        (TimeUnit::Nanosecond, "%Y-%m-%dT%H:%M:%S%.9fZ"),
    ];
    let instants = [
        (0, 0),
        (1_793_870_102, 412_000_000),
        (1_793_870_102, 870_500_123),
        (-1, 999_999_999),
        (-62_135_596_800, 0), // 0001-01-01
        (253_402_300_799, 1), // 9999-12-31T23:59:59
    ];
    for (secs, nanos) in instants {
        let t = DateTime::<Utc>::from_timestamp(secs, nanos).unwrap();
        for (unit, pattern) in patterns {
            assert_eq!(
                rfc3339(&t, unit),
                t.format(pattern).to_string(),
                "{secs}.{nanos:09} as {unit:?}"
            );
        }
    }
    assert_eq!(
        rfc3339(
            &DateTime::<Utc>::from_timestamp(1_793_870_102, 870_500_000).unwrap(),
            TimeUnit::Microsecond
        ),
        "2026-11-05T09:15:02.870500Z"
    );
}
