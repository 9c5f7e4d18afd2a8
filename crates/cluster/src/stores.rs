//! [`Stores`]: the object stores a scheduler plans with and an executor reads through. Plans
//! name the warehouse's real store (`file:///`, `s3://bucket/`), so each node builds the store
//! of any URL it meets with the node's own store settings (`AWS_*`, `GOOGLE_*`, `AZURE_*`,
//! `--storage-option`), exactly as every other verdict command reaches a warehouse.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::ObjectStoreRegistry;
use object_store::local::LocalFileSystem;
use object_store::ObjectStore;
use url::Url;
use verdict_table::{Location, Warehouse};

/// A registry that makes the store of a URL on first use and keeps it.
#[derive(Debug, Default)]
pub struct Stores {
    options: Vec<(String, String)>,
    stores: RwLock<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl Stores {
    /// Stores configured with `options` (keys as `verdict --storage-option` takes them).
    pub fn new(options: Vec<(String, String)>) -> Self {
        Self {
            options,
            stores: RwLock::default(),
        }
    }

    fn make(&self, key: &str) -> DfResult<Arc<dyn ObjectStore>> {
        if key == "file:///" {
            return Ok(Arc::new(LocalFileSystem::new()));
        }
        let err = |e: verdict_table::Error| DataFusionError::External(Box::new(e));
        let location = Location::parse(key, self.options.clone()).map_err(err)?;
        Ok(Warehouse::new(location).map_err(err)?.root_store())
    }
}

/// `scheme://host[:port]/`: one store per bucket, container or file system.
fn key(url: &Url) -> String {
    format!(
        "{}://{}/",
        url.scheme(),
        &url[url::Position::BeforeHost..url::Position::AfterPort]
    )
}

impl ObjectStoreRegistry for Stores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.stores
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key(url), store)
    }

    fn deregister_store(&self, url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
        self.stores
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&key(url))
            .ok_or_else(|| DataFusionError::Execution(format!("no object store for {url}")))
    }

    fn get_store(&self, url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
        let k = key(url);
        if let Some(s) = self
            .stores
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&k)
        {
            return Ok(Arc::clone(s));
        }
        let store = self.make(&k)?;
        let mut stores = self
            .stores
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(Arc::clone(stores.entry(k).or_insert(store)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_store_per_bucket_and_local_files() {
        let stores = Stores::new(vec![("aws_region".into(), "us-east-1".into())]);
        assert_eq!(
            key(&Url::parse("s3://b/audit/decisions/").unwrap()),
            "s3://b/"
        );
        assert_eq!(key(&Url::parse("file:///srv/wh/").unwrap()), "file:///");
        let a = stores.get_store(&Url::parse("s3://b/x").unwrap()).unwrap();
        let b = stores
            .get_store(&Url::parse("s3://b/y/z").unwrap())
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let c = stores
            .get_store(&Url::parse("s3://other/").unwrap())
            .unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        let f = stores.get_store(&Url::parse("file:///").unwrap()).unwrap();
        assert!(f.to_string().contains("LocalFileSystem"), "{f}");
        let e = stores
            .get_store(&Url::parse("ftp://host/").unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown scheme `ftp`"), "{e}");
    }
}
