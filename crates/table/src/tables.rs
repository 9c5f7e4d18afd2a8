//! The tables of a warehouse, their file schemas and their Delta schemas.
//!
//! Under the warehouse root, each table is a Delta table in its own directory:
//! - `decisions/` partitioned by `day` (Date, the UTC day of `ts`);
//! - `rollup_minute/` and `rollup_hour/`, partitioned by `day`: the decisions aggregated per UTC
//!   minute / hour; each commit records (app transaction `verdict.covers`) the `decisions`
//!   version whose rows it holds;
//! - `quarantine/`: rejected input lines with file, line and reason;
//! - `event_keys/` partitioned by `bucket`: the dedup index, one row per stored
//!   `(source, event_id)` with a hash of the record's content; like the rollups it records the
//!   `decisions` version it covers;
//! - `quarantine_keys/` partitioned by `bucket`: the keys of quarantined lines (the same file
//!   schema as `event_keys`, content 0), so that a run quarantining a line reads one bucket, not
//!   the whole quarantine; it records the `quarantine` version it covers.

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::kernel::{ArrayType, DataType as DeltaType, PrimitiveType, StructField};
use verdict_schema::{decisions_schema, rollup_schema};

use crate::error::{Error, Result};

/// A table of the warehouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Every accepted decision.
    Decisions,
    /// Decisions per UTC minute x identity x tool x server x decision x rule x message.
    RollupMinute,
    /// The same per UTC hour.
    RollupHour,
    /// Rejected input lines.
    Quarantine,
    /// The dedup index.
    EventKeys,
    /// The keys of quarantined lines.
    QuarantineKeys,
}

/// Number of partitions (`bucket` values) of the dedup index.
pub const KEY_BUCKETS: u32 = 16;

/// Column names of the quarantine table.
pub mod quarantine_col {
    #![allow(missing_docs)]
    pub const KEY: &str = "key";
    pub const FILE: &str = "file";
    pub const LINE: &str = "line";
    pub const ERROR: &str = "error";
    pub const FIELD: &str = "field";
    pub const MESSAGE: &str = "message";
    pub const RAW: &str = "raw";
    pub const RAW_BASE64: &str = "raw_base64";
    pub const RAW_BYTES: &str = "raw_bytes";
    pub const RAW_TRUNCATED: &str = "raw_truncated";
    pub const TXN: &str = "txn";
    pub const QUARANTINED_AT: &str = "quarantined_at";
}

impl Table {
    /// Every table, `decisions` first.
    pub const ALL: [Table; 6] = [
        Table::Decisions,
        Table::RollupMinute,
        Table::RollupHour,
        Table::Quarantine,
        Table::EventKeys,
        Table::QuarantineKeys,
    ];

    /// The table's name, also its directory under the root.
    pub fn name(self) -> &'static str {
        match self {
            Table::Decisions => "decisions",
            Table::RollupMinute => "rollup_minute",
            Table::RollupHour => "rollup_hour",
            Table::Quarantine => "quarantine",
            Table::EventKeys => "event_keys",
            Table::QuarantineKeys => "quarantine_keys",
        }
    }

    /// The partition column and its type, if the table has one.
    pub fn partition(self) -> Option<(&'static str, DataType)> {
        match self {
            Table::Decisions | Table::RollupMinute | Table::RollupHour => {
                Some(("day", DataType::Date32))
            }
            Table::EventKeys | Table::QuarantineKeys => Some(("bucket", DataType::Int32)),
            Table::Quarantine => None,
        }
    }

    /// The schema of the table's data files (without the partition column).
    pub fn file_schema(self) -> SchemaRef {
        match self {
            Table::Decisions => decisions_schema(),
            Table::RollupMinute | Table::RollupHour => rollup_schema(),
            Table::Quarantine => quarantine_schema(),
            Table::EventKeys | Table::QuarantineKeys => event_keys_schema(),
        }
    }

    /// The path, relative to the table, of a data file written by transaction `txn`
    /// (`day=2026-11-02/part-<txn>-0003.parquet`; without `seq`: `part-<txn>.parquet`).
    pub fn file_path(self, partition: Option<&str>, txn: &str, seq: Option<usize>) -> String {
        let name = match seq {
            Some(n) => format!("part-{txn}-{n:04}.parquet"),
            None => format!("part-{txn}.parquet"),
        };
        match (self.partition(), partition) {
            (Some((col, _)), Some(v)) => format!("{col}={v}/{name}"),
            _ => name,
        }
    }

    /// Whether the table is derived from `decisions` and records the version it covers.
    pub fn is_derived(self) -> bool {
        matches!(
            self,
            Table::RollupMinute | Table::RollupHour | Table::EventKeys
        )
    }

    /// Whether the table's commits are links of the integrity chain (the recorded tables:
    /// `decisions` and `quarantine`; the derived tables can be recomputed from them).
    pub fn is_chained(self) -> bool {
        matches!(self, Table::Decisions | Table::Quarantine)
    }

    /// The Delta schema: the file columns plus the partition column.
    pub(crate) fn delta_fields(self) -> Result<Vec<StructField>> {
        let mut fields = self
            .file_schema()
            .fields()
            .iter()
            .map(|f| delta_field(f))
            .collect::<Result<Vec<_>>>()?;
        if let Some((name, ty)) = self.partition() {
            fields.push(delta_field(&Field::new(name, ty, false))?);
        }
        Ok(fields)
    }
}

/// The schema of a quarantine file.
pub fn quarantine_schema() -> SchemaRef {
    use quarantine_col as q;
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new(q::KEY, DataType::Utf8, false),
                Field::new(q::FILE, DataType::Utf8, false),
                Field::new(q::LINE, DataType::Int64, false),
                Field::new(q::ERROR, DataType::Utf8, false),
                Field::new(q::FIELD, DataType::Utf8, true),
                Field::new(q::MESSAGE, DataType::Utf8, false),
                Field::new(q::RAW, DataType::Utf8, false),
                Field::new(q::RAW_BASE64, DataType::Utf8, true),
                Field::new(q::RAW_BYTES, DataType::Int64, false),
                Field::new(q::RAW_TRUNCATED, DataType::Boolean, false),
                Field::new(q::TXN, DataType::Utf8, false),
                Field::new(
                    q::QUARANTINED_AT,
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                    false,
                ),
            ]))
        })
        .clone()
}

/// The schema of a dedup index file: the 128-bit key of `(source, event_id)` as two halves, and
/// a 64-bit hash of the record's content.
pub fn event_keys_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("key_hi", DataType::Int64, false),
                Field::new("key_lo", DataType::Int64, false),
                Field::new("content", DataType::Int64, false),
            ]))
        })
        .clone()
}

/// The dedup bucket of a key.
pub fn key_bucket(key: u128) -> i32 {
    ((key >> 124) as u32 % KEY_BUCKETS) as i32
}

fn delta_type(ty: &DataType) -> Option<DeltaType> {
    Some(match ty {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            DeltaType::Primitive(PrimitiveType::String)
        }
        DataType::Dictionary(_, v) => return delta_type(v),
        DataType::Int32 => DeltaType::Primitive(PrimitiveType::Integer),
        // Delta has no unsigned type: readers see the file's UInt64 as a long.
        DataType::Int64 | DataType::UInt64 => DeltaType::Primitive(PrimitiveType::Long),
        DataType::Float64 => DeltaType::Primitive(PrimitiveType::Double),
        DataType::Boolean => DeltaType::Primitive(PrimitiveType::Boolean),
        DataType::Date32 => DeltaType::Primitive(PrimitiveType::Date),
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => {
            DeltaType::Primitive(PrimitiveType::Timestamp)
        }
        DataType::List(item) => DeltaType::Array(Box::new(ArrayType::new(
            delta_type(item.data_type())?,
            item.is_nullable(),
        ))),
        _ => return None,
    })
}

fn delta_field(f: &Field) -> Result<StructField> {
    let ty = delta_type(f.data_type()).ok_or_else(|| {
        Error::Internal(format!(
            "column {} has type {} with no Delta equivalent",
            f.name(),
            f.data_type()
        ))
    })?;
    Ok(StructField::new(f.name(), ty, f.is_nullable()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_a_delta_schema() {
        for t in Table::ALL {
            let fields = t.delta_fields().unwrap();
            assert_eq!(
                fields.len(),
                t.file_schema().fields().len() + usize::from(t.partition().is_some())
            );
        }
        assert_eq!(key_bucket(u128::MAX), 15);
        assert_eq!(key_bucket(0), 0);
    }
}
