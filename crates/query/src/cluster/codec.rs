//! The codecs that carry verdict's parts of a plan between the client, the scheduler and the
//! executors, around Ballista's own: the snapshot file tables and the catalogue entries (as
//! [`FilesSpec`] JSON and the catalogue's wire form), `tool_risk()`/`tool_risk_source()` with
//! the catalogue they classify with, and `weighted_mode()` by name. Everything else goes to
//! Ballista's codecs unchanged.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::common::{plan_datafusion_err, Result as DfResult, TableReference};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::datasource::TableProvider;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{AggregateUDF, Extension, LogicalPlan, ScalarUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};

use super::tables::{CatalogEntries, FilesSpec, SnapshotFiles};
use crate::catalog::Catalog;
use crate::udaf::{weighted_mode_udaf, WEIGHTED_MODE};
use crate::udf::{bound_catalog, catalog_udf};

/// Prefix of a [`SnapshotFiles`] table's bytes.
const FILES: &[u8] = b"verdict-files:";
/// Prefix of a catalogue's bytes (the `catalog_entries` table, `tool_risk()`).
const CATALOG: &[u8] = b"verdict-catalog:";

fn tagged(tag: &[u8], body: &[u8], buf: &mut Vec<u8>) {
    buf.extend_from_slice(tag);
    buf.extend_from_slice(body);
}

fn decode_catalog(body: &[u8]) -> DfResult<Arc<Catalog>> {
    Catalog::from_wire(body)
        .map(Arc::new)
        .map_err(|e| plan_datafusion_err!("verdict tool catalogue in the plan: {e}"))
}

fn encode_udf(node: &ScalarUDF, buf: &mut Vec<u8>) {
    if let Some(catalog) = bound_catalog(node) {
        tagged(CATALOG, &catalog.to_wire(), buf);
    }
}

fn decode_udf(name: &str, buf: &[u8]) -> Option<DfResult<Arc<ScalarUDF>>> {
    let body = buf.strip_prefix(CATALOG)?;
    Some(decode_catalog(body).and_then(|catalog| {
        catalog_udf(name, catalog).map(Arc::new).ok_or_else(|| {
            plan_datafusion_err!("{name} carries a tool catalogue but is not a catalogue function")
        })
    }))
}

fn decode_udaf(name: &str) -> Option<Arc<AggregateUDF>> {
    (name == WEIGHTED_MODE).then(|| Arc::new(weighted_mode_udaf()))
}

/// verdict's logical codec (client -> scheduler), over Ballista's.
#[derive(Debug, Default)]
pub struct LogicalCodec {
    inner: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for LogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> DfResult<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> DfResult<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn TableProvider>> {
        if let Some(body) = buf.strip_prefix(FILES) {
            let spec: FilesSpec = serde_json::from_slice(body)
                .map_err(|e| plan_datafusion_err!("verdict table {table_ref} in the plan: {e}"))?;
            return Ok(Arc::new(SnapshotFiles::new(spec, schema)?));
        }
        if let Some(body) = buf.strip_prefix(CATALOG) {
            return Ok(Arc::new(CatalogEntries::new(decode_catalog(body)?)));
        }
        self.inner
            .try_decode_table_provider(buf, table_ref, schema, ctx)
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> DfResult<()> {
        if let Some(t) = node.as_ref().downcast_ref::<SnapshotFiles>() {
            let body = serde_json::to_vec(t.spec())
                .map_err(|e| plan_datafusion_err!("verdict table {table_ref}: {e}"))?;
            tagged(FILES, &body, buf);
            return Ok(());
        }
        if let Some(t) = node.as_ref().downcast_ref::<CatalogEntries>() {
            tagged(CATALOG, &t.catalog().to_wire(), buf);
            return Ok(());
        }
        self.inner.try_encode_table_provider(table_ref, node, buf)
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> DfResult<()> {
        self.inner.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<ScalarUDF>> {
        decode_udf(name, buf).unwrap_or_else(|| self.inner.try_decode_udf(name, buf))
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        encode_udf(node, buf);
        Ok(())
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<AggregateUDF>> {
        decode_udaf(name).map_or_else(|| self.inner.try_decode_udaf(name, buf), Ok)
    }
}

/// verdict's physical codec (scheduler -> executors), over Ballista's.
#[derive(Debug, Default)]
pub struct PhysicalCodec {
    inner: BallistaPhysicalExtensionCodec,
}

impl PhysicalExtensionCodec for PhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.inner.try_decode(buf, inputs, ctx, proto_converter)
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<()> {
        self.inner.try_encode(node, buf, proto_converter)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<ScalarUDF>> {
        decode_udf(name, buf).unwrap_or_else(|| self.inner.try_decode_udf(name, buf))
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        encode_udf(node, buf);
        Ok(())
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<AggregateUDF>> {
        decode_udaf(name).map_or_else(|| self.inner.try_decode_udaf(name, buf), Ok)
    }
}
