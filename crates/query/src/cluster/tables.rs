//! The tables a cluster plan carries: [`SnapshotFiles`], a Parquet table over the explicit file
//! list of one table snapshot (the files the Delta log shows at the version the client read,
//! addressed in the warehouse's real store, so that any node resolves exactly those files), and
//! [`CatalogEntries`], the explicit catalogue entries built from the catalogue itself.

use std::sync::Arc;

use arrow::datatypes::{FieldRef, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{project_schema, Result as DfResult, ScalarValue};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::ExecutionPlan;
use serde::{Deserialize, Serialize};
use verdict_table::{Snapshot, Table};

use crate::catalog::Catalog;
use crate::error::{Error, Result};

/// What a [`SnapshotFiles`] table is, as shipped in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FilesSpec {
    /// The warehouse table (`decisions`), for messages.
    pub table: String,
    /// Its version read.
    pub version: i64,
    /// The object store holding it (`file:///`, `s3://bucket/`).
    pub store: String,
    /// The table's directory within that store (`srv/wh/decisions`).
    pub root: String,
    /// The partition column (`day`), when the table is partitioned.
    pub partition: Option<String>,
    /// The data files.
    pub files: Vec<FileSpec>,
}

/// One data file of a [`FilesSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileSpec {
    /// Relative to the table's directory (`day=2026-11-02/part-....parquet`).
    pub path: String,
    /// Size in bytes, as the log records it.
    pub size: u64,
    /// The partition value (`2026-11-02`).
    pub value: Option<String>,
}

impl FilesSpec {
    /// The files of `t` in `snapshot`, addressed in the warehouse's store.
    pub(crate) fn of(snapshot: &Snapshot, t: Table, partitioned: bool) -> Result<Self> {
        let s = snapshot.read(t).ok_or_else(|| Error::InvalidSpec {
            what: "table",
            message: format!("{} is not in the snapshot", t.name()),
        })?;
        let url = snapshot.warehouse().table_url(t);
        let store = format!("{}://{}/", url.scheme(), url.host_str().unwrap_or(""));
        let root = object_store::path::Path::from_url_path(url.path())
            .map_err(|e| Error::InvalidSpec {
                what: "table URL",
                message: format!("{url}: {e}"),
            })?
            .to_string();
        let partition = partitioned
            .then(|| t.partition().map(|(name, _)| name.to_string()))
            .flatten();
        Ok(Self {
            table: t.name().to_string(),
            version: s.version,
            store,
            root,
            files: s
                .files
                .iter()
                .map(|f| FileSpec {
                    path: f.path.clone(),
                    size: f.size,
                    value: partition.as_ref().and(f.partition.clone()),
                })
                .collect(),
            partition,
        })
    }
}

/// A Parquet table over an explicit file list (see the module docs). Every filter is left to
/// the plan (`Inexact`): DataFusion pushes it into the Parquet scan where it can.
#[derive(Debug)]
pub(crate) struct SnapshotFiles {
    spec: FilesSpec,
    /// The stored columns then the partition column.
    schema: SchemaRef,
    file_schema: SchemaRef,
    partition: Option<FieldRef>,
}

impl SnapshotFiles {
    /// The table of `spec` whose columns are `schema` (the stored columns, then the partition
    /// column when `spec` names one).
    pub(crate) fn new(spec: FilesSpec, schema: SchemaRef) -> DfResult<Self> {
        let (file_schema, partition) = match &spec.partition {
            Some(name) => {
                let i = schema.index_of(name)?;
                let mut fields: Vec<FieldRef> = schema.fields().iter().cloned().collect();
                let field = fields.remove(i);
                (Arc::new(Schema::new(fields)), Some(field))
            }
            None => (Arc::clone(&schema), None),
        };
        Ok(Self {
            spec,
            schema,
            file_schema,
            partition,
        })
    }

    pub(crate) fn spec(&self) -> &FilesSpec {
        &self.spec
    }

    fn partitioned_file(&self, f: &FileSpec) -> DfResult<PartitionedFile> {
        let file = PartitionedFile::new(format!("{}/{}", self.spec.root, f.path), f.size);
        let Some(field) = &self.partition else {
            return Ok(file);
        };
        let value = match &f.value {
            Some(v) => ScalarValue::try_from_string(v.clone(), field.data_type())?,
            None => ScalarValue::try_from(field.data_type())?,
        };
        Ok(file.with_partition_values(vec![value]))
    }
}

#[async_trait]
impl TableProvider for SnapshotFiles {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if self.spec.files.is_empty() {
            let schema = project_schema(&self.schema, projection)?;
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let files = self
            .spec
            .files
            .iter()
            .map(|f| self.partitioned_file(f))
            .collect::<DfResult<Vec<_>>>()?;
        let groups = FileGroup::new(files).split_files(state.config().target_partitions());
        let table_schema = TableSchema::builder(Arc::clone(&self.file_schema))
            .with_table_partition_cols(self.partition.iter().cloned().collect::<Vec<_>>())
            .build();
        let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
        let source = format.file_source(table_schema);
        let conf = FileScanConfigBuilder::new(ObjectStoreUrl::parse(&self.spec.store)?, source)
            .with_file_groups(groups)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        format.create_physical_plan(state, conf).await
    }
}

/// The `catalog_entries` table of a cluster plan: built from the catalogue where it is read.
#[derive(Debug)]
pub(crate) struct CatalogEntries {
    catalog: Arc<Catalog>,
}

impl CatalogEntries {
    pub(crate) fn new(catalog: Arc<Catalog>) -> Self {
        Self { catalog }
    }

    pub(crate) fn catalog(&self) -> &Catalog {
        &self.catalog
    }
}

#[async_trait]
impl TableProvider for CatalogEntries {
    fn schema(&self) -> SchemaRef {
        crate::engine::catalog_entries_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let batch = crate::engine::catalog_entries_batch(&self.catalog)?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.schema(),
            projection.cloned(),
        )?)
    }
}
