//! The [`Engine`]: one DataFusion `SessionContext` over a warehouse, with the `decisions`,
//! `rollup_minute`, `rollup_hour`, `catalog_entries` and `tools` tables and the catalogue UDFs
//! registered; runs user SQL. Decides whether each rollup covers every decisions part.
//! Reports and timelines are built in `report.rs` and `timeline.rs`; printing is `output.rs`.

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::empty::EmptyTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::logical_expr::ScalarUDF;
use datafusion::physical_plan::SendableRecordBatchStream;
use verdict_schema::{col, decisions_schema, rollup_schema, strings_as};
use verdict_table::{quarantine_schema, Snapshot, Table};

use crate::catalog::Catalog;
use crate::cluster::{CatalogEntries, Cluster, FilesSpec, SnapshotFiles};
use crate::error::{Error, Result};
use crate::udf::{tool_risk_source_udf, tool_risk_udf};

/// Name of the decisions table.
pub const DECISIONS_TABLE: &str = "decisions";
/// Name of the tool catalogue view (`tool, server, risk, risk_source`).
pub const TOOLS_TABLE: &str = "tools";
/// Name of the table of explicit catalogue entries (`tool, server, risk, risk_source`).
pub const CATALOG_ENTRIES_TABLE: &str = "catalog_entries";

/// Name of the per-minute rollup table.
pub const ROLLUP_MINUTE_TABLE: &str = "rollup_minute";
/// Name of the per-hour rollup table.
pub const ROLLUP_HOUR_TABLE: &str = "rollup_hour";
/// Name of the quarantine table.
pub const QUARANTINE_TABLE: &str = "quarantine";

/// A rollup the ingest maintains beside the decisions: the committed rows aggregated per UTC
/// minute or hour x identity x tool x server x decision x rule x message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rollup {
    /// The `rollup_minute` table.
    Minute,
    /// The `rollup_hour` table.
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

    /// The warehouse table it reads.
    fn stored(self) -> Table {
        match self {
            Rollup::Minute => Table::RollupMinute,
            Rollup::Hour => Table::RollupHour,
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

/// A query engine over one snapshot of a warehouse (one `decisions` version for every
/// question it answers).
///
/// Registered in its `SessionContext`:
/// - `decisions`: the data files of the snapshot's `decisions` version, read with the declared
///   schema plus the partition column `day` (Date32), so that a filter on `day` prunes whole
///   partitions; an empty table of the same schema when the warehouse holds no decision yet;
/// - `rollup_minute` and `rollup_hour` (columns of [`verdict_schema::rollup_schema`] plus
///   `day`), each only when it holds exactly the rows of that `decisions` version (its commits
///   record the version they cover); otherwise reports read `decisions`;
/// - `quarantine`: the rejected lines (`key, file, line, error, field, message, raw, ...`);
/// - `catalog_entries`: the explicit catalogue entries (`tool, server, risk, risk_source`);
/// - `tools`: a view of every tool seen in `decisions` plus every explicit entry, with
///   `tool, server, risk, risk_source` (`server` is set only on server-qualified entries);
/// - the UDFs `tool_risk(tool [, server])` and `tool_risk_source(tool [, server])`.
pub struct Engine {
    ctx: SessionContext,
    warehouse: String,
    version: Option<i64>,
    catalog: Arc<Catalog>,
    days: Vec<String>,
    files: usize,
    /// The snapshot read, for the tables registered on first use (see [`Engine::ensure`]).
    snapshot: Snapshot,
    tables: Tables,
    tool_risk: Arc<ScalarUDF>,
    tool_risk_source: Arc<ScalarUDF>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("warehouse", &self.warehouse)
            .field("version", &self.version)
            .field("days", &self.days)
            .field("files", &self.files)
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
    Arc::new(Schema::new(strings_as(
        schema,
        &DataType::Utf8,
        &DataType::Utf8View,
        false,
    )))
}

impl Engine {
    /// Registers the tables of `snapshot` and the functions.
    ///
    /// # Errors
    /// [`Error::DataFusion`] if registration fails.
    pub async fn open(snapshot: &Snapshot, catalog: Catalog) -> Result<Engine> {
        Self::open_on(snapshot, catalog, None).await
    }

    /// As [`Engine::open`]; with a [`Cluster`], every query runs on it (see [`crate::cluster`]):
    /// the tables name the snapshot's files explicitly and the catalogue travels with the plan,
    /// so the answers are those of a local run. A query the cluster cannot run fails; it never
    /// falls back to a local run.
    ///
    /// # Errors
    /// As [`Engine::open`]; [`Error::Cluster`] when the cluster's session cannot be set up.
    pub async fn open_on(
        snapshot: &Snapshot,
        catalog: Catalog,
        cluster: Option<&Cluster>,
    ) -> Result<Engine> {
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
        // The tables list their files from the snapshot in memory: no listing cache (keyed by
        // path within a store, it would also serve one table's listing for another's).
        let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_cache_manager(
                datafusion::execution::cache::cache_manager::CacheManagerConfig::default()
                    .with_list_files_cache(None)
                    .with_list_files_cache_limit(0),
            )
            .build_arc()?;
        let ctx = match cluster {
            Some(c) => c.context(config, runtime).await?,
            None => SessionContext::new_with_config_rt(config, runtime),
        };
        let tables = Tables {
            cluster: cluster.is_some(),
        };

        let (mut days, files) = match &snapshot.decisions {
            Some(d) => (
                d.files
                    .iter()
                    .filter_map(|f| f.partition.clone())
                    .collect::<Vec<_>>(),
                d.files.len(),
            ),
            None => (Vec::new(), 0),
        };
        days.sort();
        days.dedup();
        let version = snapshot.version();
        let tag = version.unwrap_or(-1);

        if files > 0 {
            let t = tables.data(&ctx, snapshot, Table::Decisions, tag, scan_schema(), true)?;
            ctx.register_table(DECISIONS_TABLE, t)?;
        } else {
            ctx.register_table(DECISIONS_TABLE, tables.empty(table_schema())?)?;
        }

        let catalog = Arc::new(catalog);
        let tool_risk = Arc::new(tool_risk_udf(Arc::clone(&catalog)));
        ctx.register_udf(tool_risk.as_ref().clone());
        let tool_risk_source = Arc::new(tool_risk_source_udf(Arc::clone(&catalog)));
        ctx.register_udf(tool_risk_source.as_ref().clone());
        ctx.register_udaf(crate::udaf::weighted_mode_udaf());
        ctx.register_table(CATALOG_ENTRIES_TABLE, tables.catalog_entries(&catalog)?)?;
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
            warehouse: snapshot.warehouse().location().to_string(),
            version,
            catalog,
            days,
            files,
            snapshot: snapshot.clone(),
            tables,
            tool_risk,
            tool_risk_source,
        })
    }

    /// The `decisions` version read (`None`: nothing was ever committed).
    pub fn version(&self) -> Option<i64> {
        self.version
    }

    /// The warehouse, as given.
    pub fn warehouse(&self) -> &str {
        &self.warehouse
    }

    /// The catalogue the engine classifies tools with.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Whether the snapshot holds no decisions file.
    pub fn is_empty(&self) -> bool {
        self.files == 0
    }

    /// The days (`YYYY-MM-DD`) that hold at least one Parquet file, sorted.
    pub fn days(&self) -> &[String] {
        &self.days
    }

    /// The number of `decisions` data files in the snapshot.
    pub fn file_count(&self) -> usize {
        self.files
    }

    /// The rollups that cover every decisions part of the warehouse (and are registered as
    /// tables), finest first.
    ///
    /// # Errors
    /// As [`Engine::ensure`].
    pub async fn rollups(&self) -> Result<Vec<Rollup>> {
        let mut out = Vec::new();
        for r in Rollup::ALL {
            if self.ensure(r.table()).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Whether rollup `r` answers counts over `[since, until)` exactly: it covers every decisions
    /// part, and each bound given falls on one of its bucket boundaries (a bucket then lies wholly
    /// inside the range or wholly outside it).
    ///
    /// # Errors
    /// As [`Engine::ensure`].
    pub async fn rollup_answers(
        &self,
        r: Rollup,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<bool> {
        let aligned = |t: Option<i64>| t.is_none_or(|t| t.rem_euclid(r.micros()) == 0);
        Ok(aligned(since) && aligned(until) && self.ensure(r.table()).await?)
    }

    /// Registers the table `name` if it is one read on first use (the quarantine, the rollups)
    /// and not registered yet; returns whether `name` is registered now. A rollup that does not
    /// hold exactly the rows of the snapshot's `decisions` is not registered (a query naming it
    /// fails as for an unknown table), except in an empty warehouse where an empty rollup
    /// answers exactly.
    ///
    /// # Errors
    /// When the quarantine's log cannot be read, or the table cannot be registered.
    pub(crate) async fn ensure(&self, name: &str) -> Result<bool> {
        let t = match name {
            QUARANTINE_TABLE => Table::Quarantine,
            _ => match Rollup::ALL.into_iter().find(|r| r.table() == name) {
                Some(r) => r.stored(),
                None => return Ok(self.ctx.table_exist(name)?),
            },
        };
        if self.ctx.table_exist(name)? {
            return Ok(true);
        }
        let quarantine = t == Table::Quarantine;
        let provider = match self.snapshot.table(t).await? {
            Some(s) if !s.files.is_empty() => {
                let (schema, partitioned) = if quarantine {
                    (quarantine_schema(), false)
                } else {
                    (as_views(&rollup_schema()), true)
                };
                let tag = self.version.unwrap_or(-1);
                self.tables
                    .data(&self.ctx, &self.snapshot, t, tag, schema, partitioned)?
            }
            None if !quarantine && self.snapshot.decisions.is_some() => return Ok(false),
            _ if quarantine => self.tables.empty(quarantine_schema())?,
            _ => self.tables.empty(rollup_table_schema())?,
        };
        self.ctx.register_table(name, provider)?;
        Ok(true)
    }

    /// Registers every table read on first use (for `SHOW TABLES`, `information_schema`).
    async fn ensure_all(&self) -> Result<()> {
        self.ensure(QUARANTINE_TABLE).await?;
        for r in Rollup::ALL {
            self.ensure(r.table()).await?;
        }
        Ok(())
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
        // The tables the statement names are registered first (those read on first use).
        // A statement that does not parse is left for `sql_with_options` to report.
        let state = self.ctx.state();
        let dialect = state.config().options().sql_parser.dialect;
        let statement = state.sql_to_statement(sql, &dialect);
        if let Ok(refs) = statement.and_then(|s| state.resolve_table_references(&s)) {
            for r in refs {
                if r.schema() == Some("information_schema") {
                    self.ensure_all().await?;
                } else {
                    self.ensure(r.table()).await?;
                }
            }
        }
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
        self.ensure(name).await?;
        Ok(self.ctx.table(name).await?)
    }

    pub(crate) fn tool_risk_udf(&self) -> &ScalarUDF {
        &self.tool_risk
    }

    pub(crate) fn tool_risk_source_udf(&self) -> &ScalarUDF {
        &self.tool_risk_source
    }
}

/// A listing table over the files of `t` in the snapshot: an object store that lists exactly
/// those files (from the Delta log) is registered under a URL of its own.
fn snapshot_table(
    ctx: &SessionContext,
    snapshot: &Snapshot,
    t: Table,
    version: i64,
    schema: SchemaRef,
    partitioned: bool,
) -> Result<Arc<ListingTable>> {
    let store = snapshot.store(t).ok_or_else(|| Error::InvalidSpec {
        what: "table",
        message: format!("{} is not in the snapshot", t.name()),
    })?;
    let scheme = format!("verdict-{}", t.name().replace('_', "-"));
    let url =
        url::Url::parse(&format!("{scheme}://v{version}/")).map_err(|e| Error::InvalidSpec {
            what: "table URL",
            message: e.to_string(),
        })?;
    ctx.register_object_store(&url, store);
    let table_url = ListingTableUrl::parse(url.as_str())?;
    let mut options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    if partitioned {
        if let Some((name, ty)) = t.partition() {
            options = options.with_table_partition_cols(vec![(name.to_string(), ty)]);
        }
    }
    let config = ListingTableConfig::new(table_url)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// How the engine's tables are made: over the snapshot's own store for a local run, or as
/// tables a cluster plan can carry (see [`crate::cluster`]).
#[derive(Debug, Clone, Copy)]
struct Tables {
    cluster: bool,
}

impl Tables {
    /// The data files of `t` in the snapshot, read with `schema` (plus the partition column).
    fn data(
        self,
        ctx: &SessionContext,
        snapshot: &Snapshot,
        t: Table,
        version: i64,
        schema: SchemaRef,
        partitioned: bool,
    ) -> Result<Arc<dyn TableProvider>> {
        if !self.cluster {
            return Ok(snapshot_table(
                ctx,
                snapshot,
                t,
                version,
                schema,
                partitioned,
            )?);
        }
        let spec = FilesSpec::of(snapshot, t, partitioned)?;
        // Plain strings on a cluster: batches cross the network as Arrow IPC, and Arrow Flight
        // splits a large batch into slices that each carried every data buffer of a string
        // view column (an identity x tool x hour group-by over 30M rows spent minutes
        // compressing the same 38 MB again per slice). Offsets slice cleanly.
        let mut fields = strings_as(&schema, &DataType::Utf8View, &DataType::Utf8, false);
        if let (Some(name), Some((_, ty))) = (&spec.partition, t.partition()) {
            fields.push(Field::new(name, ty, false));
        }
        Ok(Arc::new(SnapshotFiles::new(
            spec,
            Arc::new(Schema::new(fields)),
        )?))
    }

    /// A table of `schema` with no row.
    fn empty(self, schema: SchemaRef) -> Result<Arc<dyn TableProvider>> {
        Ok(if self.cluster {
            Arc::new(EmptyTable::new(schema))
        } else {
            Arc::new(MemTable::try_new(schema, vec![vec![]])?)
        })
    }

    /// The `catalog_entries` table.
    fn catalog_entries(self, catalog: &Arc<Catalog>) -> Result<Arc<dyn TableProvider>> {
        Ok(if self.cluster {
            Arc::new(CatalogEntries::new(Arc::clone(catalog)))
        } else {
            let batch = catalog_entries_batch(catalog)?;
            Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]])?)
        })
    }
}

/// The columns of `catalog_entries`.
pub(crate) fn catalog_entries_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("tool", DataType::Utf8, false),
        Field::new("server", DataType::Utf8, true),
        Field::new("risk", DataType::Utf8, false),
        Field::new("risk_source", DataType::Utf8, false),
    ]))
}

/// The rows of `catalog_entries`: the catalogue's explicit entries.
pub(crate) fn catalog_entries_batch(catalog: &Catalog) -> arrow::error::Result<RecordBatch> {
    let entries = catalog.entries();
    RecordBatch::try_new(
        catalog_entries_schema(),
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
    )
}

#[cfg(test)]
mod tests;
