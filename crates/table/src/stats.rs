//! Delta file statistics (`numRecords`, `minValues`, `maxValues`, `nullCount`) of a Parquet
//! file, from its footer: what lets any Delta reader skip files on a filter.

use arrow::datatypes::{DataType, SchemaRef};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::statistics::Statistics;
use serde_json::{Map, Value};
use verdict_schema::time::format_micros;

/// Strings longer than this are left out of min/max (Delta readers compare whole values).
const MAX_STRING_STAT: usize = 64;

/// Columns that may name a person or carry what they sent: no min/max for them, so that the
/// Delta log (kept after `vacuum`) never holds such a value and an erasure leaves none behind
/// (README "Retention, holds and erasure").
pub const PERSONAL_COLUMNS: [&str; 9] = [
    "identity",
    "identity_id",
    "session",
    "args",
    "message",
    "raw",
    "client_addr",
    "ingest_principal",
    "ingest_peer",
];

#[derive(Default)]
struct Acc {
    min: Option<Value>,
    max: Option<Value>,
    nulls: i64,
    complete: bool,
}

/// The statistics JSON of a file with this footer and arrow `schema`, and its row count.
pub fn file_stats(meta: &ParquetMetaData, schema: &SchemaRef) -> (u64, String) {
    let rows: i64 = meta.row_groups().iter().map(|rg| rg.num_rows()).sum();
    let descr = meta.file_metadata().schema_descr();
    let mut accs: Vec<(String, DataType, Acc)> = Vec::new();
    for (i, col) in descr.columns().iter().enumerate() {
        let parts = col.path().parts();
        if parts.len() != 1 {
            continue; // nested (lists): no statistics
        }
        let Ok(field) = schema.field_with_name(&parts[0]) else {
            continue;
        };
        let mut acc = Acc {
            complete: true,
            ..Acc::default()
        };
        for rg in meta.row_groups() {
            let Some(st) = rg.column(i).statistics() else {
                acc.complete = false;
                continue;
            };
            match st.null_count_opt() {
                Some(n) => acc.nulls += n as i64,
                None => acc.complete = false,
            }
            let (lo, hi) = values(st, field.data_type());
            merge(&mut acc.min, lo, true);
            merge(&mut acc.max, hi, false);
        }
        accs.push((parts[0].clone(), field.data_type().clone(), acc));
    }
    let (mut mins, mut maxs, mut nulls) = (Map::new(), Map::new(), Map::new());
    for (name, _, acc) in accs {
        if !acc.complete {
            continue;
        }
        nulls.insert(name.clone(), Value::from(acc.nulls));
        if PERSONAL_COLUMNS.contains(&name.as_str()) {
            continue;
        }
        if let (Some(lo), Some(hi)) = (acc.min, acc.max) {
            mins.insert(name.clone(), lo);
            maxs.insert(name, hi);
        }
    }
    let mut stats = Map::new();
    stats.insert("numRecords".into(), Value::from(rows));
    stats.insert("minValues".into(), Value::Object(mins));
    stats.insert("maxValues".into(), Value::Object(maxs));
    stats.insert("nullCount".into(), Value::Object(nulls));
    (rows as u64, Value::Object(stats).to_string())
}

/// The JSON min and max of one column chunk, in Delta's representation.
fn values(st: &Statistics, ty: &DataType) -> (Option<Value>, Option<Value>) {
    match (st, ty) {
        (Statistics::Int64(s), DataType::Timestamp(_, _)) => (
            s.min_opt().map(|v| Value::from(ts_millis(*v, false))),
            s.max_opt().map(|v| Value::from(ts_millis(*v, true))),
        ),
        (Statistics::Int64(s), DataType::Int64) => (
            s.min_opt().map(|v| Value::from(*v)),
            s.max_opt().map(|v| Value::from(*v)),
        ),
        (Statistics::Int32(s), DataType::Int32) => (
            s.min_opt().map(|v| Value::from(*v)),
            s.max_opt().map(|v| Value::from(*v)),
        ),
        (Statistics::Double(s), DataType::Float64) => (
            s.min_opt()
                .filter(|v| v.is_finite())
                .map(|v| Value::from(*v)),
            s.max_opt()
                .filter(|v| v.is_finite())
                .map(|v| Value::from(*v)),
        ),
        (Statistics::ByteArray(s), DataType::Utf8 | DataType::Dictionary(_, _))
            if s.min_is_exact() && s.max_is_exact() =>
        {
            let text = |b: Option<&parquet::data_type::ByteArray>| {
                b.and_then(|b| std::str::from_utf8(b.data()).ok())
                    .filter(|s| s.len() <= MAX_STRING_STAT)
                    .map(Value::from)
            };
            (text(s.min_opt()), text(s.max_opt()))
        }
        _ => (None, None),
    }
}

/// A timestamp in Delta's statistics form (milliseconds, UTC): rounded down for a minimum and up
/// for a maximum, so that the range always holds every value.
fn ts_millis(micros: i64, up: bool) -> String {
    let ms = if up {
        micros.div_euclid(1000) + i64::from(micros.rem_euclid(1000) != 0)
    } else {
        micros.div_euclid(1000)
    };
    let s = format_micros(ms * 1000);
    // format_micros writes 6 fraction digits; Delta readers expect milliseconds.
    match s.find('.') {
        Some(dot) if s.len() >= dot + 4 => format!("{}Z", &s[..dot + 4]),
        _ => s,
    }
}

fn merge(slot: &mut Option<Value>, v: Option<Value>, min: bool) {
    let Some(v) = v else { return };
    let replace = match slot.as_ref() {
        None => true,
        Some(cur) => {
            let ord = compare(&v, cur);
            if min {
                ord.is_lt()
            } else {
                ord.is_gt()
            }
        }
    };
    if replace {
        *slot = Some(v);
    }
}

fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(std::cmp::Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_outwards_to_milliseconds() {
        assert_eq!(ts_millis(1_000_500, false), "1970-01-01T00:00:01.000Z");
        assert_eq!(ts_millis(1_000_500, true), "1970-01-01T00:00:01.001Z");
        assert_eq!(ts_millis(1_000_000, true), "1970-01-01T00:00:01.000Z");
    }
}

/// Describes a Parquet file written locally for table `t` (size, rows, statistics), to be put
/// at `rel` and committed.
///
/// # Errors
/// When the file cannot be read or its footer parsed.
pub fn describe(
    t: crate::Table,
    rel: &str,
    partition: Option<&str>,
    local: &std::path::Path,
) -> crate::Result<crate::NewFile> {
    let file = std::fs::File::open(local).map_err(crate::Error::io("opening", local.display()))?;
    let size = file
        .metadata()
        .map_err(crate::Error::io("reading", local.display()))?
        .len();
    let meta = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&file)
        .map_err(|source| crate::Error::Parquet {
            path: local.display().to_string(),
            source,
        })?;
    let (rows, stats) = file_stats(&meta, &t.file_schema());
    Ok(crate::NewFile {
        path: rel.to_string(),
        size,
        rows,
        partition: partition.map(str::to_string),
        stats,
    })
}
