//! The [`Engine`]: one DataFusion `SessionContext` over a warehouse, with the `decisions`,
//! `rollup_minute`, `rollup_hour`, `catalog_entries` and `tools` tables and the catalogue UDFs
//! registered; runs user SQL. Decides whether each rollup covers every decisions part.
//! Reports and timelines are built in `report.rs` and `timeline.rs`; printing is `output.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::MemTable;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::logical_expr::ScalarUDF;
use datafusion::physical_plan::SendableRecordBatchStream;
use verdict_schema::{col, decisions_schema, rollup_schema};

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::udf::{tool_risk_source_udf, tool_risk_udf};

/// Name of the decisions table.
pub const DECISIONS_TABLE: &str = "decisions";
/// Name of the tool catalogue view (`tool, server, risk, risk_source`).
pub const TOOLS_TABLE: &str = "tools";
/// Name of the table of explicit catalogue entries (`tool, server, risk, risk_source`).
pub const CATALOG_ENTRIES_TABLE: &str = "catalog_entries";

/// Name of the per-minute rollup table (`rollup/minute/`).
pub const ROLLUP_MINUTE_TABLE: &str = "rollup_minute";
/// Name of the per-hour rollup table (`rollup/hour/`).
pub const ROLLUP_HOUR_TABLE: &str = "rollup_hour";

/// A rollup the ingest maintains beside the decisions: the committed rows aggregated per UTC
/// minute or hour x identity x tool x server x decision x rule x message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rollup {
    /// `rollup/minute/day=YYYY-MM-DD/part-<txn>.parquet`, the `rollup_minute` table.
    Minute,
    /// `rollup/hour/day=YYYY-MM-DD/part-<txn>.parquet`, the `rollup_hour` table.
    Hour,
}

impl Rollup {
    /// Both rollups, finest first.
    pub const ALL: [Rollup; 2] = [Rollup::Minute, Rollup::Hour];

    /// The table name.
    pub fn table(self) -> &'static str {
        match self {
            Rollup::Minute => ROLLUP_MINUTE_TABLE,
            Rollup::Hour => ROLLUP_HOUR_TABLE,
        }
    }

    /// The folder under `rollup/`.
    fn dir(self) -> &'static str {
        match self {
            Rollup::Minute => "minute",
            Rollup::Hour => "hour",
        }
    }

    /// The width of a bucket, in microseconds.
    pub fn micros(self) -> i64 {
        match self {
            Rollup::Minute => 60_000_000,
            Rollup::Hour => 3_600_000_000,
        }
    }
}

/// The Arrow type of the `day` partition column.
pub const DAY_TYPE: DataType = DataType::Date32;

/// The result of a query, report or timeline: its schema and its batches.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    /// The schema of the result (also when there is no batch).
    pub schema: SchemaRef,
    /// The rows.
    pub batches: Vec<RecordBatch>,
    /// True when the warehouse held no decisions at all when the engine was opened, so that
    /// the caller can say "no decisions yet" instead of printing an empty table.
    pub warehouse_empty: bool,
}

impl QueryOutput {
    /// Total number of rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Whether the result has no row.
    pub fn is_empty(&self) -> bool {
        self.num_rows() == 0
    }

    /// Arrow's pretty-printed table of the result (as in tests and `arrow::util::pretty`).
    ///
    /// # Errors
    /// [`Error::Arrow`] if a value cannot be formatted.
    pub fn to_pretty_string(&self) -> Result<String> {
        if self.batches.is_empty() {
            let empty = RecordBatch::new_empty(Arc::clone(&self.schema));
            return Ok(arrow::util::pretty::pretty_format_batches(&[empty])?.to_string());
        }
        Ok(arrow::util::pretty::pretty_format_batches(&self.batches)?.to_string())
    }
}

/// A result on its way: its schema and the batches as the query produces them. Dropping it
/// stops the query.
pub struct QueryStream {
    /// The schema of the result.
    pub schema: SchemaRef,
    /// The batches, in order.
    pub stream: SendableRecordBatchStream,
    /// As [`QueryOutput::warehouse_empty`].
    pub warehouse_empty: bool,
}

impl std::fmt::Debug for QueryStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryStream")
            .field("schema", &self.schema)
            .field("warehouse_empty", &self.warehouse_empty)
            .finish_non_exhaustive()
    }
}

/// A query engine over one warehouse.
///
/// Registered in its `SessionContext`:
/// - `decisions`: every `decisions/day=YYYY-MM-DD/*.parquet` file (names starting with `.` or `_`
///   ignored) read with the declared schema plus the Hive partition column `day` (Date32), so
///   that a filter on `day` prunes whole partitions; an empty table of the same schema when the
///   warehouse holds no Parquet file yet;
/// - `rollup_minute` and `rollup_hour` (columns of [`verdict_schema::rollup_schema`] plus
///   `day`), each only when its files cover every decisions part: every day partition holds,
///   for each transaction with a decisions part there, exactly one rollup part of that
///   transaction and nothing else. A warehouse written before the rollup existed, one touched
///   by another writer, or a commit cut short does not qualify, and reports read `decisions`;
/// - `catalog_entries`: the explicit catalogue entries (`tool, server, risk, risk_source`);
/// - `tools`: a view of every tool seen in `decisions` plus every explicit entry, with
///   `tool, server, risk, risk_source` (`server` is set only on server-qualified entries);
/// - the UDFs `tool_risk(tool [, server])` and `tool_risk_source(tool [, server])`.
///
/// The engine sees the files present when it was opened.
pub struct Engine {
    ctx: SessionContext,
    warehouse: PathBuf,
    catalog: Arc<Catalog>,
    days: Vec<String>,
    files: usize,
    rollups: Vec<Rollup>,
    tool_risk: Arc<ScalarUDF>,
    tool_risk_source: Arc<ScalarUDF>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("warehouse", &self.warehouse)
            .field("days", &self.days)
            .field("files", &self.files)
            .field("rollups", &self.rollups)
            .finish_non_exhaustive()
    }
}

/// The schema of the `decisions` table as queried: the stored columns plus `day`.
pub fn table_schema() -> SchemaRef {
    let mut fields: Vec<Field> = scan_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new(col::DAY, DAY_TYPE, false));
    Arc::new(Schema::new(fields))
}

/// The declared file schema as the query layer reads it: top-level strings as `Utf8View`, which
/// the Parquet reader fills without copying string bytes and DataFusion groups and compares
/// fastest. The files themselves keep the declared `Utf8` (any reader reads them).
pub fn scan_schema() -> SchemaRef {
    as_views(&decisions_schema())
}

/// The schema of a rollup table as queried: [`rollup_schema`] with `Utf8View` strings, plus
/// `day`.
pub fn rollup_table_schema() -> SchemaRef {
    let mut fields: Vec<Field> = as_views(&rollup_schema())
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new(col::DAY, DAY_TYPE, false));
    Arc::new(Schema::new(fields))
}

fn as_views(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 => f.as_ref().clone().with_data_type(DataType::Utf8View),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

impl Engine {
    /// Opens the warehouse at `warehouse` and registers its tables and functions.
    ///
    /// # Errors
    /// [`Error::WarehouseNotFound`] when the path does not exist, [`Error::NotADirectory`],
    /// [`Error::Io`] when `decisions/` cannot be listed, [`Error::InvalidSpec`] for a partition
    /// directory whose day is not a date, and [`Error::DataFusion`] if registration fails.
    pub async fn open(warehouse: &Path, catalog: Catalog) -> Result<Engine> {
        let meta = match std::fs::metadata(warehouse) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::WarehouseNotFound {
                    path: warehouse.to_path_buf(),
                })
            }
            Err(e) => return Err(Error::io("reading", warehouse)(e)),
        };
        if !meta.is_dir() {
            return Err(Error::NotADirectory {
                path: warehouse.to_path_buf(),
            });
        }
        let decisions_dir = warehouse.join(DECISIONS_TABLE);
        let (days, files) = scan_partitions(&decisions_dir)?;

        let config = SessionConfig::new()
            .with_information_schema(true)
            .set_bool(
                "datafusion.execution.listing_table_ignore_subdirectory",
                true,
            )
            .set_bool("datafusion.execution.parquet.pruning", true)
            // Reports filter on decision first (denials, rate limits): decode the other columns
            // only for the rows that pass.
            .set_bool("datafusion.execution.parquet.pushdown_filters", true)
            .set_bool("datafusion.execution.parquet.reorder_filters", true);
        let ctx = SessionContext::new_with_config(config);

        if files > 0 {
            ctx.register_table(
                DECISIONS_TABLE,
                listing_table(&decisions_dir, scan_schema())?,
            )?;
        } else {
            let empty = MemTable::try_new(table_schema(), vec![vec![]])?;
            ctx.register_table(DECISIONS_TABLE, Arc::new(empty))?;
        }

        let mut rollups = Vec::new();
        let decision_txns = part_txns(&decisions_dir, PartName::Decisions)?;
        for rollup in Rollup::ALL {
            let dir = warehouse.join("rollup").join(rollup.dir());
            if part_txns(&dir, PartName::Rollup)? != decision_txns
                || decision_txns.values().flatten().any(Option::is_none)
            {
                continue;
            }
            if files > 0 {
                let schema = as_views(&rollup_schema());
                ctx.register_table(rollup.table(), listing_table(&dir, schema)?)?;
            } else {
                let empty = MemTable::try_new(rollup_table_schema(), vec![vec![]])?;
                ctx.register_table(rollup.table(), Arc::new(empty))?;
            }
            rollups.push(rollup);
        }

        let catalog = Arc::new(catalog);
        let tool_risk = Arc::new(tool_risk_udf(Arc::clone(&catalog)));
        ctx.register_udf(tool_risk.as_ref().clone());
        let tool_risk_source = Arc::new(tool_risk_source_udf(Arc::clone(&catalog)));
        ctx.register_udf(tool_risk_source.as_ref().clone());
        ctx.register_udaf(crate::udaf::weighted_mode_udaf());
        ctx.register_table(CATALOG_ENTRIES_TABLE, catalog_entries_table(&catalog)?)?;
        ctx.sql(
            "CREATE VIEW tools AS \
             SELECT tool, server, tool_risk(tool, server) AS risk, \
                    tool_risk_source(tool, server) AS risk_source \
             FROM (SELECT DISTINCT tool, CAST(NULL AS VARCHAR) AS server \
                   FROM decisions WHERE tool IS NOT NULL \
                   UNION \
                   SELECT tool, server FROM catalog_entries) AS t",
        )
        .await?;

        Ok(Engine {
            ctx,
            warehouse: warehouse.to_path_buf(),
            catalog,
            days,
            files,
            rollups,
            tool_risk,
            tool_risk_source,
        })
    }

    /// The warehouse root.
    pub fn warehouse(&self) -> &Path {
        &self.warehouse
    }

    /// The catalogue the engine classifies tools with.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Whether the warehouse held no Parquet file when opened.
    pub fn is_empty(&self) -> bool {
        self.files == 0
    }

    /// The days (`YYYY-MM-DD`) that hold at least one Parquet file, sorted.
    pub fn days(&self) -> &[String] {
        &self.days
    }

    /// The number of Parquet files in `decisions/`.
    pub fn file_count(&self) -> usize {
        self.files
    }

    /// The rollups that cover every decisions part of the warehouse (and are registered as
    /// tables), finest first.
    pub fn rollups(&self) -> &[Rollup] {
        &self.rollups
    }

    /// The underlying DataFusion context, for callers that need more than SQL text.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Runs one read-only SQL statement (a query, `EXPLAIN`, `SHOW TABLES`, `DESCRIBE` ...).
    /// DDL, DML (`INSERT`, `COPY`) and `SET` are refused.
    ///
    /// # Errors
    /// [`Error::Sql`] with DataFusion's message when the statement does not parse, plan or run.
    pub async fn sql(&self, sql: &str) -> Result<QueryOutput> {
        let df = self.sql_frame(sql).await?;
        let schema = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await.map_err(Error::sql)?;
        Ok(self.output(schema, batches))
    }

    /// [`Engine::sql`] as a stream of batches, produced as the query runs (DataFusion's
    /// `execute_stream`): a caller that stops reading early stops the query.
    ///
    /// # Errors
    /// As [`Engine::sql`], for what is known before the first batch; later failures come
    /// through the stream.
    pub async fn sql_stream(&self, sql: &str) -> Result<QueryStream> {
        let df = self.sql_frame(sql).await?;
        let schema = Arc::new(df.schema().as_arrow().clone());
        let stream = df.execute_stream().await.map_err(Error::sql)?;
        Ok(QueryStream {
            schema,
            stream,
            warehouse_empty: self.is_empty(),
        })
    }

    async fn sql_frame(&self, sql: &str) -> Result<DataFrame> {
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        self.ctx
            .sql_with_options(sql, options)
            .await
            .map_err(Error::sql)
    }

    pub(crate) fn output(&self, schema: SchemaRef, batches: Vec<RecordBatch>) -> QueryOutput {
        QueryOutput {
            schema,
            batches,
            warehouse_empty: self.is_empty(),
        }
    }

    pub(crate) async fn collect(&self, df: DataFrame) -> Result<QueryOutput> {
        let schema = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await?;
        Ok(self.output(schema, batches))
    }

    pub(crate) async fn stream(&self, df: DataFrame) -> Result<QueryStream> {
        let schema = Arc::new(df.schema().as_arrow().clone());
        Ok(QueryStream {
            schema,
            stream: df.execute_stream().await?,
            warehouse_empty: self.is_empty(),
        })
    }

    pub(crate) async fn decisions(&self) -> Result<DataFrame> {
        self.table(DECISIONS_TABLE).await
    }

    pub(crate) async fn table(&self, name: &str) -> Result<DataFrame> {
        Ok(self.ctx.table(name).await?)
    }

    pub(crate) fn tool_risk_udf(&self) -> &ScalarUDF {
        &self.tool_risk
    }

    pub(crate) fn tool_risk_source_udf(&self) -> &ScalarUDF {
        &self.tool_risk_source
    }
}

/// Lists `decisions/day=*/` and counts the Parquet files DataFusion will read, with the same
/// rules: names starting with `.` or `_` are ignored, and so are files of size zero.
fn scan_partitions(dir: &Path) -> Result<(Vec<String>, usize)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(Error::io("listing", dir)(e)),
    };
    let mut days = Vec::new();
    let mut files = 0;
    for entry in entries {
        let entry = entry.map_err(Error::io("listing", dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(['.', '_']) || !entry.path().is_dir() {
            continue;
        }
        let Some(day) = name.strip_prefix("day=") else {
            continue;
        };
        if chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").is_err() || day.len() != 10 {
            return Err(Error::InvalidSpec {
                what: "warehouse partition",
                message: format!(
                    "`{}` is not named day=YYYY-MM-DD; move it out of decisions/ or rename it",
                    entry.path().display()
                ),
            });
        }
        let mut n = 0;
        let path = entry.path();
        for file in std::fs::read_dir(&path).map_err(Error::io("listing", &path))? {
            let file = file.map_err(Error::io("listing", &path))?;
            let fname = file.file_name();
            let fname = fname.to_string_lossy();
            let meta = file.metadata().map_err(Error::io("reading", file.path()))?;
            if meta.is_file()
                && meta.len() > 0
                && fname.ends_with(".parquet")
                && !fname.starts_with(['.', '_'])
            {
                n += 1;
            }
        }
        if n > 0 {
            days.push(day.to_string());
            files += n;
        }
    }
    days.sort();
    Ok((days, files))
}

/// How part files are named: `part-<txn>-<n>.parquet` for decisions, `part-<txn>.parquet` for
/// rollups.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PartName {
    Decisions,
    Rollup,
}

/// For each `day=` directory under `dir` holding Parquet files that DataFusion reads (the rules
/// of [`scan_partitions`]), the transactions of those files; `None` for a file whose name does
/// not carry one. Other directories are skipped (`scan_partitions` reports them).
type PartTxns = BTreeMap<String, BTreeSet<Option<String>>>;

fn part_txns(dir: &Path, naming: PartName) -> Result<PartTxns> {
    let mut out = PartTxns::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io("listing", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(Error::io("listing", dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        if name.starts_with(['.', '_']) || !path.is_dir() {
            continue;
        }
        let Some(day) = name.strip_prefix("day=") else {
            continue;
        };
        let mut txns = BTreeSet::new();
        for file in std::fs::read_dir(&path).map_err(Error::io("listing", &path))? {
            let file = file.map_err(Error::io("listing", &path))?;
            let fname = file.file_name();
            let fname = fname.to_string_lossy();
            let meta = file.metadata().map_err(Error::io("reading", file.path()))?;
            if !(meta.is_file()
                && meta.len() > 0
                && fname.ends_with(".parquet")
                && !fname.starts_with(['.', '_']))
            {
                continue;
            }
            let stem = fname
                .strip_prefix("part-")
                .and_then(|f| f.strip_suffix(".parquet"));
            let txn = match naming {
                PartName::Rollup => stem.map(str::to_string),
                PartName::Decisions => stem
                    .and_then(|s| s.rsplit_once('-'))
                    .filter(|(t, n)| {
                        !t.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
                    })
                    .map(|(t, _)| t.to_string()),
            };
            txns.insert(txn);
        }
        if !txns.is_empty() {
            out.insert(day.to_string(), txns);
        }
    }
    Ok(out)
}

fn listing_table(dir: &Path, schema: SchemaRef) -> Result<Arc<ListingTable>> {
    // A file URL needs an absolute path without `..` (the object store rejects it).
    let dir = std::fs::canonicalize(dir).map_err(Error::io("resolving", dir))?;
    let url = url::Url::from_directory_path(&dir).map_err(|()| Error::InvalidSpec {
        what: "warehouse path",
        message: format!("`{}` cannot be turned into a URL", dir.display()),
    })?;
    // Only file names not starting with `.` or `_`; with `ignore_subdirectory` the glob is
    // matched against the file name, so `day=.../_staging/x.parquet` is skipped too.
    let glob = glob::Pattern::new("[!._]*.parquet").map_err(|e| Error::InvalidSpec {
        what: "glob",
        message: e.to_string(),
    })?;
    let table_url = ListingTableUrl::try_new(url, Some(glob))?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(vec![(col::DAY.to_string(), DAY_TYPE)]);
    let config = ListingTableConfig::new(table_url)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

fn catalog_entries_table(catalog: &Catalog) -> Result<Arc<MemTable>> {
    let entries = catalog.entries();
    let schema = Arc::new(Schema::new(vec![
        Field::new("tool", DataType::Utf8, false),
        Field::new("server", DataType::Utf8, true),
        Field::new("risk", DataType::Utf8, false),
        Field::new("risk_source", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from_iter_values(
                entries.iter().map(|e| e.tool.as_str()),
            )),
            Arc::new(StringArray::from_iter(
                entries.iter().map(|e| e.server.as_deref()),
            )),
            Arc::new(StringArray::from_iter_values(
                entries.iter().map(|e| e.risk.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                entries.iter().map(|e| e.source.as_str()),
            )),
        ],
    )?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

#[cfg(test)]
mod tests;
