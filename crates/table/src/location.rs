//! Where a warehouse lives: a local directory or an object store URL (`s3://`, `gs://`,
//! `az://`/`abfss://`, `file://`), with the store's options (`KEY=VALUE`, as the CLI collects
//! them from `--storage-option` and the `AWS_*`/`GOOGLE_*`/`AZURE_*` environment).

use std::collections::BTreeMap;
use std::path::{Path as StdPath, PathBuf};
use std::sync::Arc;

use object_store::path::Path;
use object_store::ObjectStore;
use url::Url;

use crate::error::{Error, Result};

/// A warehouse root and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The root, always ending with `/`.
    url: Url,
    /// As the user wrote it (for messages).
    given: String,
    options: BTreeMap<String, String>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.given)
    }
}

impl Location {
    /// Parses a local path or a URL; `options` configure the object store (keys as in the
    /// store's documentation, e.g. `aws_endpoint`, `aws_region`, `aws_allow_http`).
    ///
    /// # Errors
    /// An unknown scheme, a URL without a bucket, or a path that cannot be made absolute.
    pub fn parse(given: &str, options: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let err = |message: String| Error::Location {
            location: given.to_string(),
            message,
        };
        let mut url = if given.contains("://") {
            let url = Url::parse(given).map_err(|e| err(e.to_string()))?;
            match url.scheme() {
                "file" => {
                    let path = url
                        .to_file_path()
                        .map_err(|()| err("not an absolute file path".into()))?;
                    dir_url(&path).map_err(err)?
                }
                "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" | "azure" | "memory" => {
                    if url.host_str().is_none_or(str::is_empty) && url.scheme() != "memory" {
                        return Err(err("the URL names no bucket or container".into()));
                    }
                    url
                }
                other => {
                    return Err(err(format!(
                        "unknown scheme `{other}` (use a path, file://, s3://, gs://, az:// or abfss://)"
                    )))
                }
            }
        } else {
            let path = absolute(StdPath::new(given)).map_err(|e| err(e.to_string()))?;
            dir_url(&path).map_err(err)?
        };
        if !url.path().ends_with('/') {
            let p = format!("{}/", url.path());
            url.set_path(&p);
        }
        Ok(Self {
            url,
            given: given.to_string(),
            options: options
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
        })
    }

    /// The root URL (ending with `/`).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The local directory, when the warehouse is on local disk.
    pub fn local_root(&self) -> Option<PathBuf> {
        (self.url.scheme() == "file")
            .then(|| self.url.to_file_path().ok())
            .flatten()
    }

    /// A directory for a tool's own local state beside the tables (`_verdict/<name>`), when the
    /// warehouse is on local disk.
    pub fn state_dir(&self, name: &str) -> Option<PathBuf> {
        // As the user wrote it, so that messages show the path they know.
        let base = if self.given.contains("://") {
            self.local_root()?
        } else {
            PathBuf::from(&self.given)
        };
        Some(base.join("_verdict").join(name))
    }

    /// The URL of a directory under the root (`decisions/`).
    pub(crate) fn child_url(&self, name: &str) -> Url {
        let mut u = self.url.clone();
        u.set_path(&format!("{}{name}/", self.url.path()));
        u
    }

    /// The object store path of the root within the root store.
    pub(crate) fn root_path(&self) -> Path {
        match self.url.scheme() {
            "file" => Path::from_url_path(self.url.path()).unwrap_or_default(),
            _ => Path::from_url_path(self.url.path()).unwrap_or_default(),
        }
    }

    /// The store whose `/` is the filesystem root, the bucket or the container.
    pub(crate) fn root_store(&self) -> Result<Arc<dyn ObjectStore>> {
        let err = |e: object_store::Error| Error::Location {
            location: self.given.clone(),
            message: e.to_string(),
        };
        // Every store ignores the keys it does not know.
        let opts = |_store: &[&str]| self.options.clone();
        Ok(match self.url.scheme() {
            "file" => Arc::new(object_store::local::LocalFileSystem::new()),
            "memory" => Arc::new(object_store::memory::InMemory::new()),
            "s3" | "s3a" => {
                use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
                let mut b = AmazonS3Builder::new().with_url(self.url.as_str());
                let mut http = false;
                for (k, v) in opts(&["aws_"]) {
                    if let Ok(key) = k.parse::<AmazonS3ConfigKey>() {
                        if matches!(key, AmazonS3ConfigKey::Endpoint) && v.starts_with("http://") {
                            http = true;
                        }
                        b = b.with_config(key, v);
                    }
                }
                if http {
                    b = b.with_allow_http(true);
                }
                Arc::new(b.build().map_err(err)?)
            }
            "gs" => {
                use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
                let mut b = GoogleCloudStorageBuilder::new().with_url(self.url.as_str());
                for (k, v) in opts(&["google_"]) {
                    if let Ok(key) = k.parse::<GoogleConfigKey>() {
                        b = b.with_config(key, v);
                    }
                }
                Arc::new(b.build().map_err(err)?)
            }
            _ => {
                use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
                let mut b = MicrosoftAzureBuilder::new().with_url(self.url.as_str());
                for (k, v) in opts(&["azure_"]) {
                    if let Ok(key) = k.parse::<AzureConfigKey>() {
                        b = b.with_config(key, v);
                    }
                }
                Arc::new(b.build().map_err(err)?)
            }
        })
    }
}

impl From<&StdPath> for Location {
    /// A local directory (relative paths are taken from the current directory).
    fn from(p: &StdPath) -> Self {
        let abs = absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let url = Url::from_directory_path(&abs)
            .unwrap_or_else(|()| Url::parse("file:///").expect("a constant URL parses"));
        Self {
            url,
            given: p.display().to_string(),
            options: BTreeMap::new(),
        }
    }
}

impl Default for Location {
    /// `./verdict-warehouse`, the warehouse every command uses unless told otherwise.
    fn default() -> Self {
        Location::from(StdPath::new("verdict-warehouse"))
    }
}

impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Self {
        Location::from(p.as_path())
    }
}

impl From<&PathBuf> for Location {
    fn from(p: &PathBuf) -> Self {
        Location::from(p.as_path())
    }
}

/// `p` made absolute, with `.` and `..` resolved by name (as the shell's `cd -L` does): a URL
/// keeps `..` segments, which object store paths refuse, so `../wh` would otherwise name no
/// table at all.
fn absolute(p: &StdPath) -> std::io::Result<PathBuf> {
    let abs = std::path::absolute(p)?;
    let mut norm = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                norm.pop();
            }
            std::path::Component::CurDir => {}
            other => norm.push(other),
        }
    }
    Ok(norm)
}

fn dir_url(path: &StdPath) -> std::result::Result<Url, String> {
    Url::from_directory_path(path).map_err(|()| format!("`{}` cannot be a URL", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_urls() {
        let l = Location::parse("/tmp/wh", []).unwrap();
        assert_eq!(l.url().as_str(), "file:///tmp/wh/");
        assert_eq!(l.local_root().unwrap(), PathBuf::from("/tmp/wh/"));
        assert_eq!(
            l.child_url("decisions").as_str(),
            "file:///tmp/wh/decisions/"
        );
        let s = Location::parse("s3://bucket/audit", [("AWS_REGION".into(), "x".into())]).unwrap();
        assert_eq!(s.url().as_str(), "s3://bucket/audit/");
        assert_eq!(s.root_path().as_ref(), "audit");
        assert!(s.local_root().is_none());
        let e = Location::parse("ftp://x/y", []).unwrap_err().to_string();
        assert!(e.contains("unknown scheme `ftp`"), "{e}");
        let e = Location::parse("s3:///y", []).unwrap_err().to_string();
        assert!(e.contains("no bucket"), "{e}");
    }
}
