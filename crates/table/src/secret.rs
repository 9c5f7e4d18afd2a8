//! The warehouse's redaction key, kept beside its tables (`_verdict/redaction.key`): created on
//! first use, read afterwards, never replaced.

use object_store::{path::Path, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::error::{Error, Result};
use crate::warehouse::Warehouse;

const KEY_DIR: &str = "_verdict";
const KEY_FILE: &str = "redaction.key";

impl Warehouse {
    /// The warehouse's redaction key: 32 random bytes created on first use under
    /// `_verdict/redaction.key` (on local disk with file mode 0600), read afterwards. Two writers
    /// racing to create it agree on one key: the second keeps the first's (an exclusive create,
    /// a conditional put on object stores). Whoever holds it can test a guess of a secret
    /// against a marker, so it is as private as the warehouse.
    ///
    /// # Errors
    /// The key cannot be read or created, or the stored file is not a key.
    pub async fn redaction_key(&self) -> Result<Vec<u8>> {
        if let Some(dir) = self.location().state_dir("") {
            // `state_dir("")` is `<root>/_verdict/`.
            return local_key(&dir);
        }
        let store = self.root_store();
        let path = Path::from(KEY_DIR).join(KEY_FILE);
        let shown = format!("{}{KEY_DIR}/{KEY_FILE}", self.location().url());
        if let Some(k) = remote_key(&store, &path, &shown).await? {
            return Ok(k);
        }
        let key = fresh_key()?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match store
            .put_opts(&path, PutPayload::from(hex(&key).into_bytes()), opts)
            .await
        {
            Ok(_) => Ok(key),
            // Another writer made it first: use theirs.
            Err(object_store::Error::AlreadyExists { .. }) => remote_key(&store, &path, &shown)
                .await?
                .ok_or_else(|| Error::Internal(format!("{shown} vanished"))),
            Err(e) => Err(Error::store("creating", &shown)(e)),
        }
    }
}

fn fresh_key() -> Result<Vec<u8>> {
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key)
        .map_err(|e| Error::Internal(format!("no random bytes for the redaction key: {e}")))?;
    Ok(key)
}

fn hex(key: &[u8]) -> String {
    let mut s: String = key.iter().map(|b| format!("{b:02x}")).collect();
    s.push('\n');
    s
}

fn parse(text: &str, shown: &str) -> Result<Vec<u8>> {
    let t = text.trim();
    let bytes: Option<Vec<u8>> = (0..t.len())
        .step_by(2)
        .map(|i| t.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    match bytes {
        Some(b) if b.len() >= 16 => Ok(b),
        _ => Err(Error::Internal(format!(
            "{shown}: not a redaction key (expected hex digits)"
        ))),
    }
}

async fn remote_key(
    store: &std::sync::Arc<dyn object_store::ObjectStore>,
    path: &Path,
    shown: &str,
) -> Result<Option<Vec<u8>>> {
    match store.get(path).await {
        Ok(got) => {
            let bytes = got.bytes().await.map_err(Error::store("reading", shown))?;
            parse(&String::from_utf8_lossy(&bytes), shown).map(Some)
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(Error::store("reading", shown)(e)),
    }
}

fn read_local(path: &std::path::Path) -> Result<Option<Vec<u8>>> {
    let shown = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(t) => parse(&t, &shown).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("reading", &shown)(e)),
    }
}

fn local_key(dir: &std::path::Path) -> Result<Vec<u8>> {
    use std::io::Write;
    let path = dir.join(KEY_FILE);
    if let Some(key) = read_local(&path)? {
        return Ok(key);
    }
    std::fs::create_dir_all(dir).map_err(Error::io("creating", dir.display()))?;
    let key = fresh_key()?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".redaction.key")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(Error::io("creating a file in", dir.display()))?;
    tmp.write_all(hex(&key).as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(Error::io("writing", path.display()))?;
    match tmp.persist_noclobber(&path) {
        Ok(_) => Ok(key),
        // Another process made it first: use theirs.
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => read_local(&path)?
            .ok_or_else(|| Error::Internal(format!("{} vanished", path.display()))),
        Err(e) => Err(Error::io("creating", path.display())(e.error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Location;

    #[test]
    fn the_key_is_made_once_private_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::new(Location::from(dir.path())).unwrap();
        let k1 = crate::block_on(wh.redaction_key()).unwrap();
        let k2 = crate::block_on(wh.redaction_key()).unwrap();
        assert_eq!(k1, k2);
        assert_eq!(k1.len(), 32);
        let file = dir.path().join("_verdict/redaction.key");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(&file, "zz\n").unwrap();
        let err = crate::block_on(wh.redaction_key()).unwrap_err().to_string();
        assert!(err.contains("redaction.key: not a redaction key"), "{err}");
    }

    #[test]
    fn an_object_store_key_is_created_once_and_kept() {
        let wh = Warehouse::new(Location::parse("memory:///wh", []).unwrap()).unwrap();
        let k1 = crate::block_on(wh.redaction_key()).unwrap();
        let k2 = crate::block_on(wh.redaction_key()).unwrap();
        assert_eq!(k1, k2);
        assert_eq!(k1.len(), 32);
    }
}
