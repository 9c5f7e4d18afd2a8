//! The integrity chain: every commit to a recorded table (`decisions`, `quarantine`) carries, in
//! its Delta `commitInfo` under [`RECORD_KEY`], a [`ChainRecord`] naming the SHA-256 of every
//! file it adds and the digest of the previous commit's record. Optionally the record's
//! canonical bytes are signed with an Ed25519 key ([`SIGNATURE_KEY`], [`SIGNER_KEY`]). The
//! README's "Integrity" section describes the record for auditors who check it by hand.

use std::path::Path as StdPath;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer as _, Verifier as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// The `commitInfo` field holding a commit's [`ChainRecord`].
pub const RECORD_KEY: &str = "verdict.chain";
/// The `commitInfo` field holding the Ed25519 signature (hex) of the record's canonical bytes.
pub const SIGNATURE_KEY: &str = "verdict.chain_signature";
/// The `commitInfo` field holding the signer's public key (hex), for diagnostics only: a
/// signature is checked against the key the auditor trusts, never against this one.
pub const SIGNER_KEY: &str = "verdict.chain_signer";
/// The record format this version writes.
pub const FORMAT: u32 = 1;

/// One link of the chain.
///
/// Its canonical bytes ([`ChainRecord::canonical_bytes`]) are its compact JSON with the keys of
/// every object in byte order (the fields below are declared in that order, so serde writes
/// them so) and no whitespace: what `jq -cjS` prints of the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainRecord {
    /// The files the commit adds, by path.
    pub adds: Vec<FileDigest>,
    /// The record format ([`FORMAT`]).
    pub format: u32,
    /// What the commit does: `append`, `compact`, `restore`, `remove_damaged`, `erase`,
    /// `retention` ... (the commit's `verdict.operation` when the caller names one).
    pub operation: String,
    /// The hex SHA-256 of the previous commit's record; when the previous commit has none (the
    /// table's creation, or history written before the chain), of that commit's log file bytes.
    pub prev: String,
    /// The paths the commit removes, sorted.
    pub removes: Vec<String>,
    /// The table (`decisions`, `quarantine`).
    pub table: String,
    /// The table version of the commit.
    pub version: i64,
}

/// A file a commit adds, with its digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDigest {
    /// Its partition value (`2026-11-02`), when the table is partitioned.
    pub partition: Option<String>,
    /// Its path relative to the table directory, as the `add` action names it.
    pub path: String,
    /// The hex SHA-256 of its bytes.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// The hex SHA-256 of the `add` action's `stats` string (what query pruning trusts).
    pub stats_sha256: String,
}

impl ChainRecord {
    /// The canonical bytes: compact JSON, keys sorted, no trailing newline.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a record of strings and integers serialises")
    }

    /// The hex SHA-256 of the canonical bytes: what the next record's `prev` names.
    pub fn digest(&self) -> String {
        sha256_hex(&self.canonical_bytes())
    }
}

/// A record found in a commit, with its signature.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub record: ChainRecord,
    pub signature: Option<String>,
    pub signer: Option<String>,
}

/// An `add` action as the log holds it.
#[derive(Debug, Clone)]
pub(crate) struct LoggedAdd {
    pub path: String,
    pub size: u64,
    pub partition: Option<String>,
    pub stats: String,
}

/// What one commit's log file says.
#[derive(Debug, Clone, Default)]
pub(crate) struct ParsedCommit {
    pub found: Option<Found>,
    pub adds: Vec<LoggedAdd>,
    pub removes: Vec<String>,
    pub timestamp_ms: Option<i64>,
}

/// Parses a commit's log file (one JSON action a line); an error says which line is not an
/// action or which record is malformed.
pub(crate) fn parse_commit(bytes: &[u8], partition: Option<&str>) -> Result<ParsedCommit, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let mut out = ParsedCommit::default();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let a: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        if let Some(ci) = a.get("commitInfo") {
            out.timestamp_ms = ci.get("timestamp").and_then(serde_json::Value::as_i64);
            if let Some(r) = ci.get(RECORD_KEY) {
                let record = ChainRecord::deserialize(r)
                    .map_err(|e| format!("line {}: `{RECORD_KEY}`: {e}", i + 1))?;
                let text = |k: &str| ci.get(k).and_then(|v| v.as_str()).map(str::to_string);
                out.found = Some(Found {
                    record,
                    signature: text(SIGNATURE_KEY),
                    signer: text(SIGNER_KEY),
                });
            }
        } else if let Some(add) = a.get("add") {
            let path = add.get("path").and_then(|v| v.as_str());
            let size = add.get("size").and_then(serde_json::Value::as_u64);
            let (Some(path), Some(size)) = (path, size) else {
                return Err(format!("line {}: an add without path or size", i + 1));
            };
            out.adds.push(LoggedAdd {
                path: path.to_string(),
                size,
                partition: partition.and_then(|p| {
                    add.pointer(&format!("/partitionValues/{p}"))
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                }),
                stats: add
                    .get("stats")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string(),
            });
        } else if let Some(p) = a.pointer("/remove/path").and_then(|v| v.as_str()) {
            out.removes.push(p.to_string());
        }
    }
    Ok(out)
}

/// The record of a commit's log file, if it has one.
pub(crate) fn record_in(bytes: &[u8]) -> Result<Option<Found>, String> {
    parse_commit(bytes, None).map(|p| p.found)
}

/// The hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// An Ed25519 private key that signs each link a writer commits.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(public {})", self.public_key().hex())
    }
}

/// An Ed25519 public key that checks signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl SigningKey {
    /// A new random key.
    ///
    /// # Errors
    /// When the system gives no random bytes.
    pub fn generate() -> Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| Error::Internal(format!("no random bytes for a signing key: {e}")))?;
        Ok(Self(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// Reads a PKCS#8 PEM private key file (as `verdict keygen` and `openssl genpkey -algorithm
    /// ed25519` write).
    ///
    /// # Errors
    /// When the file cannot be read or holds no Ed25519 private key.
    pub fn from_file(path: &StdPath) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(Error::io("reading", path.display()))?;
        ed25519_dalek::SigningKey::from_pkcs8_pem(&text)
            .map(Self)
            .map_err(|e| Error::Key {
                path: path.display().to_string(),
                message: format!("not an Ed25519 private key in PKCS#8 PEM: {e}"),
            })
    }

    /// The key as PKCS#8 PEM.
    pub fn to_pem(&self) -> String {
        self.0
            .to_pkcs8_pem(LineEnding::LF)
            .expect("an Ed25519 key encodes as PKCS#8")
            .to_string()
    }

    /// Its public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The hex signature of `bytes`.
    pub fn sign_hex(&self, bytes: &[u8]) -> String {
        hex::encode(self.0.sign(bytes).to_bytes())
    }
}

impl PublicKey {
    /// Reads an SPKI PEM public key file (`verdict keygen`'s `.pub`, or `openssl pkey -pubout`).
    ///
    /// # Errors
    /// When the file cannot be read or holds no Ed25519 public key.
    pub fn from_file(path: &StdPath) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(Error::io("reading", path.display()))?;
        ed25519_dalek::VerifyingKey::from_public_key_pem(&text)
            .map(Self)
            .map_err(|e| Error::Key {
                path: path.display().to_string(),
                message: format!("not an Ed25519 public key in SPKI PEM: {e}"),
            })
    }

    /// The key as SPKI PEM.
    pub fn to_pem(&self) -> String {
        self.0
            .to_public_key_pem(LineEnding::LF)
            .expect("an Ed25519 key encodes as SPKI")
    }

    /// The 32 key bytes in hex.
    pub fn hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// Whether `sig_hex` is this key's signature of `bytes`.
    pub fn verifies(&self, bytes: &[u8], sig_hex: &str) -> bool {
        let Ok(raw) = hex::decode(sig_hex.trim()) else {
            return false;
        };
        let Ok(sig) = ed25519_dalek::Signature::from_slice(&raw) else {
            return false;
        };
        self.0.verify(bytes, &sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ChainRecord {
        ChainRecord {
            adds: vec![FileDigest {
                partition: Some("2026-11-02".into()),
                path: "day=2026-11-02/part-t1-0000.parquet".into(),
                sha256: "ab".repeat(32),
                size: 1234,
                stats_sha256: "cd".repeat(32),
            }],
            format: FORMAT,
            operation: "append".into(),
            prev: "00".repeat(32),
            removes: vec!["day=2026-11-01/part-t0.parquet".into()],
            table: "decisions".into(),
            version: 3,
        }
    }

    #[test]
    fn canonical_bytes_are_sorted_compact_json() {
        let expected = format!(
            concat!(
                r#"{{"adds":[{{"partition":"2026-11-02","path":"day=2026-11-02/part-t1-0000.parquet","#,
                r#""sha256":"{ab}","size":1234,"stats_sha256":"{cd}"}}],"format":1,"#,
                r#""operation":"append","prev":"{zero}","removes":["day=2026-11-01/part-t0.parquet"],"#,
                r#""table":"decisions","version":3}}"#
            ),
            ab = "ab".repeat(32),
            cd = "cd".repeat(32),
            zero = "00".repeat(32)
        );
        let bytes = record().canonical_bytes();
        assert_eq!(String::from_utf8(bytes.clone()).unwrap(), expected);
        // Keys in byte order at every level, as `jq -S` sorts them.
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys.len(), 7);
        let text = String::from_utf8(bytes).unwrap();
        let positions: Vec<usize> = sorted
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    }

    #[test]
    fn the_digest_is_sha256_of_the_canonical_bytes() {
        // `printf '%s' "$BYTES" | sha256sum` of the empty-record bytes below.
        let r = ChainRecord {
            adds: vec![],
            format: 1,
            operation: "append".into(),
            prev: String::new(),
            removes: vec![],
            table: "decisions".into(),
            version: 1,
        };
        assert_eq!(
            String::from_utf8(r.canonical_bytes()).unwrap(),
            r#"{"adds":[],"format":1,"operation":"append","prev":"","removes":[],"table":"decisions","version":1}"#
        );
        assert_eq!(
            r.digest(),
            "5f78c8e6fecada608e6427dc537ba3bac8678cc9be7d731e32694eecd5a58b7b"
        );
    }

    #[test]
    fn a_record_reads_back_and_refuses_unknown_fields() {
        let r = record();
        let back: ChainRecord = serde_json::from_slice(&r.canonical_bytes()).unwrap();
        assert_eq!(back, r);
        let mut v = serde_json::to_value(&r).unwrap();
        v["extra"] = serde_json::Value::from(1);
        assert!(serde_json::from_value::<ChainRecord>(v).is_err());
    }

    #[test]
    fn keys_sign_verify_and_round_trip_through_pem() {
        let k = SigningKey::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (priv_path, pub_path) = (dir.path().join("k"), dir.path().join("k.pub"));
        std::fs::write(&priv_path, k.to_pem()).unwrap();
        std::fs::write(&pub_path, k.public_key().to_pem()).unwrap();
        let k2 = SigningKey::from_file(&priv_path).unwrap();
        let p = PublicKey::from_file(&pub_path).unwrap();
        assert_eq!(p, k.public_key());
        let sig = k2.sign_hex(b"link");
        assert_eq!(sig.len(), 128);
        assert!(p.verifies(b"link", &sig));
        assert!(!p.verifies(b"other", &sig));
        assert!(!SigningKey::generate()
            .unwrap()
            .public_key()
            .verifies(b"link", &sig));
        let err = PublicKey::from_file(&priv_path).unwrap_err().to_string();
        assert!(err.contains("not an Ed25519 public key"), "{err}");
    }
}
