//! A table's Parquet file read by byte range, on local disk and object stores alike: the footer
//! first, then only the column chunks a projection needs. For readers that want a few columns of
//! large files (the quarantine's keys, not its raw text).

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt as _;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

use crate::tables::Table;
use crate::warehouse::Warehouse;

/// One data file of a table, readable by range with parquet's async reader
/// (`ParquetRecordBatchStreamBuilder::new(file)`).
#[derive(Debug, Clone)]
pub struct RangedFile {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
}

impl Warehouse {
    /// The file `rel` of table `t`, of `size` bytes (as its commit recorded), read by range.
    pub fn ranged_file(&self, t: Table, rel: &str, size: u64) -> RangedFile {
        RangedFile {
            store: self.table_store(t),
            path: Path::from(rel),
            size,
        }
    }
}

fn external(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for RangedFile {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes>> {
        async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(external)
        }
        .boxed()
    }

    fn get_byte_ranges(&mut self, ranges: Vec<Range<u64>>) -> BoxFuture<'_, Result<Vec<Bytes>>> {
        async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(external)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}
