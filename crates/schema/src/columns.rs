//! The Arrow schema of the `decisions` table (README "Data layout"), declared once here.
//! Every writer and reader takes it from this file; nothing infers it.

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Column names, in table order.
pub mod col {
    #![allow(missing_docs)]
    pub const EVENT_ID: &str = "event_id";
    pub const TS: &str = "ts";
    pub const SOURCE: &str = "source";
    pub const IDENTITY: &str = "identity";
    pub const IDENTITY_ID: &str = "identity_id";
    pub const SESSION: &str = "session";
    pub const SERVER: &str = "server";
    pub const METHOD: &str = "method";
    pub const TOOL: &str = "tool";
    pub const ARG_KEYS: &str = "arg_keys";
    pub const ARGS: &str = "args";
    pub const DECISION: &str = "decision";
    pub const RULE: &str = "rule";
    pub const MESSAGE: &str = "message";
    pub const POLICY_ID: &str = "policy_id";
    pub const POLICY_VERSION: &str = "policy_version";
    pub const UPSTREAM_STATUS: &str = "upstream_status";
    pub const LATENCY_MS: &str = "latency_ms";
    pub const RAW: &str = "raw";
    pub const INGEST_FILE: &str = "ingest_file";
    pub const INGEST_LINE: &str = "ingest_line";
    pub const CLIENT_ADDR: &str = "client_addr";
    pub const INGEST_PRINCIPAL: &str = "ingest_principal";
    pub const INGEST_PEER: &str = "ingest_peer";
    pub const REDACTED: &str = "redacted";
    /// The Hive partition column (not stored inside the files).
    pub const DAY: &str = "day";
}

/// Index of each column in [`decisions_schema`].
pub mod idx {
    #![allow(missing_docs)]
    pub const EVENT_ID: usize = 0;
    pub const TS: usize = 1;
    pub const SOURCE: usize = 2;
    pub const IDENTITY: usize = 3;
    pub const IDENTITY_ID: usize = 4;
    pub const SESSION: usize = 5;
    pub const SERVER: usize = 6;
    pub const METHOD: usize = 7;
    pub const TOOL: usize = 8;
    pub const ARG_KEYS: usize = 9;
    pub const ARGS: usize = 10;
    pub const DECISION: usize = 11;
    pub const RULE: usize = 12;
    pub const MESSAGE: usize = 13;
    pub const POLICY_ID: usize = 14;
    pub const POLICY_VERSION: usize = 15;
    pub const UPSTREAM_STATUS: usize = 16;
    pub const LATENCY_MS: usize = 17;
    pub const RAW: usize = 18;
    pub const INGEST_FILE: usize = 19;
    pub const INGEST_LINE: usize = 20;
    pub const CLIENT_ADDR: usize = 21;
    pub const INGEST_PRINCIPAL: usize = 22;
    pub const INGEST_PEER: usize = 23;
    pub const REDACTED: usize = 24;
}

/// The Arrow type of a timestamp column: microseconds, UTC.
pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The Arrow type of the dictionary-encoded string columns (`source`, `decision`).
pub fn dict_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The item field of `arg_keys` (and of `redacted`).
pub fn arg_keys_item() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Utf8, true))
}

/// The fields of `schema` with every string column of type `from` read as `to` (`Utf8` as
/// `Utf8View`, or back); with `in_lists`, the items of list columns too. One mapping for every
/// reader that asks Parquet for another string layout than the one declared.
pub fn strings_as(schema: &Schema, from: &DataType, to: &DataType, in_lists: bool) -> Vec<Field> {
    schema
        .fields()
        .iter()
        .map(|f| {
            let t = string_type_as(f.data_type(), from, to, in_lists);
            f.as_ref().clone().with_data_type(t)
        })
        .collect()
}

fn string_type_as(t: &DataType, from: &DataType, to: &DataType, in_lists: bool) -> DataType {
    match t {
        t if t == from => to.clone(),
        DataType::List(item) if in_lists => {
            let inner = string_type_as(item.data_type(), from, to, false);
            DataType::List(Arc::new(item.as_ref().clone().with_data_type(inner)))
        }
        other => other.clone(),
    }
}

/// The schema of the `decisions` table as stored in each Parquet file (without `day`).
pub fn decisions_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new(col::EVENT_ID, DataType::Utf8, false),
                Field::new(col::TS, ts_type(), false),
                Field::new(col::SOURCE, dict_type(), false),
                Field::new(col::IDENTITY, DataType::Utf8, true),
                Field::new(col::IDENTITY_ID, DataType::Utf8, true),
                Field::new(col::SESSION, DataType::Utf8, true),
                Field::new(col::SERVER, DataType::Utf8, true),
                Field::new(col::METHOD, DataType::Utf8, true),
                Field::new(col::TOOL, DataType::Utf8, true),
                Field::new(col::ARG_KEYS, DataType::List(arg_keys_item()), true),
                Field::new(col::ARGS, DataType::Utf8, true),
                Field::new(col::DECISION, dict_type(), false),
                Field::new(col::RULE, DataType::Utf8, true),
                Field::new(col::MESSAGE, DataType::Utf8, true),
                Field::new(col::POLICY_ID, DataType::Utf8, true),
                Field::new(col::POLICY_VERSION, DataType::Utf8, true),
                Field::new(col::UPSTREAM_STATUS, DataType::Int32, true),
                Field::new(col::LATENCY_MS, DataType::Float64, true),
                Field::new(col::RAW, DataType::Utf8, true),
                Field::new(col::INGEST_FILE, DataType::Utf8, true),
                Field::new(col::INGEST_LINE, DataType::UInt64, true),
                Field::new(col::CLIENT_ADDR, DataType::Utf8, true),
                Field::new(col::INGEST_PRINCIPAL, DataType::Utf8, true),
                Field::new(col::INGEST_PEER, DataType::Utf8, true),
                Field::new(col::REDACTED, DataType::List(arg_keys_item()), true),
            ]))
        })
        .clone()
}

/// Column names of the rollup tables (`rollup/minute/`, `rollup/hour/`): one row per time
/// bucket x identity x tool x server x decision x rule x message of the rows an ingest committed.
pub mod rollup_col {
    #![allow(missing_docs)]
    pub const BUCKET: &str = "bucket";
    pub const IDENTITY: &str = super::col::IDENTITY;
    pub const TOOL: &str = super::col::TOOL;
    pub const SERVER: &str = super::col::SERVER;
    pub const DECISION: &str = super::col::DECISION;
    pub const RULE: &str = super::col::RULE;
    pub const MESSAGE: &str = super::col::MESSAGE;
    pub const CALLS: &str = "calls";
    pub const FIRST_TS: &str = "first_ts";
    pub const LAST_TS: &str = "last_ts";
}

/// The schema of a rollup file (without the `day` partition column):
/// `bucket` (the UTC minute or hour, required), `identity`, `tool`, `server` (nullable Utf8),
/// `decision` (required Utf8, plain so that row-group statistics prune on it), `rule`, `message`
/// (nullable Utf8), `calls` (required Int64, the rows of the group), `first_ts` and `last_ts`
/// (required, the smallest and largest `ts` of the group).
pub fn rollup_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new(rollup_col::BUCKET, ts_type(), false),
                Field::new(rollup_col::IDENTITY, DataType::Utf8, true),
                Field::new(rollup_col::TOOL, DataType::Utf8, true),
                Field::new(rollup_col::SERVER, DataType::Utf8, true),
                Field::new(rollup_col::DECISION, DataType::Utf8, false),
                Field::new(rollup_col::RULE, DataType::Utf8, true),
                Field::new(rollup_col::MESSAGE, DataType::Utf8, true),
                Field::new(rollup_col::CALLS, DataType::Int64, false),
                Field::new(rollup_col::FIRST_TS, ts_type(), false),
                Field::new(rollup_col::LAST_TS, ts_type(), false),
            ]))
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_as_maps_top_level_strings_and_list_items_only_when_asked() {
        let schema = decisions_schema();
        let views = |in_lists| {
            Schema::new(strings_as(
                &schema,
                &DataType::Utf8,
                &DataType::Utf8View,
                in_lists,
            ))
        };
        let top = views(false);
        assert_eq!(top.field(idx::EVENT_ID).data_type(), &DataType::Utf8View);
        assert_eq!(top.field(idx::SOURCE).data_type(), &dict_type());
        assert_eq!(top.field(idx::TS).data_type(), &ts_type());
        assert_eq!(
            top.field(idx::ARG_KEYS).data_type(),
            &DataType::List(arg_keys_item())
        );
        let all = views(true);
        let DataType::List(item) = all.field(idx::ARG_KEYS).data_type() else {
            panic!("arg_keys is a list")
        };
        assert_eq!(item.data_type(), &DataType::Utf8View);
        assert_eq!(item.name(), "item");
        // And back.
        let back = strings_as(&all, &DataType::Utf8View, &DataType::Utf8, true);
        assert_eq!(Schema::new(back), *schema.as_ref());
    }

    #[test]
    fn indexes_match_names() {
        let s = decisions_schema();
        let pairs = [
            (idx::EVENT_ID, col::EVENT_ID),
            (idx::TS, col::TS),
            (idx::SOURCE, col::SOURCE),
            (idx::ARG_KEYS, col::ARG_KEYS),
            (idx::DECISION, col::DECISION),
            (idx::UPSTREAM_STATUS, col::UPSTREAM_STATUS),
            (idx::RAW, col::RAW),
            (idx::INGEST_LINE, col::INGEST_LINE),
            (idx::CLIENT_ADDR, col::CLIENT_ADDR),
            (idx::INGEST_PRINCIPAL, col::INGEST_PRINCIPAL),
            (idx::INGEST_PEER, col::INGEST_PEER),
            (idx::REDACTED, col::REDACTED),
        ];
        for (i, name) in pairs {
            assert_eq!(s.field(i).name(), name);
        }
        assert_eq!(s.fields().len(), 25);
    }

    #[test]
    fn required_columns_are_not_nullable() {
        let s = decisions_schema();
        let required: Vec<_> = s
            .fields()
            .iter()
            .filter(|f| !f.is_nullable())
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(required, ["event_id", "ts", "source", "decision"]);
    }
}
