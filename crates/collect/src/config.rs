//! The collector's configuration: one struct per source and one for commits, each deserialised
//! from `collect.toml` (unknown keys refused) with a documented default on every field, and a
//! `build()` that checks it and returns the typed settings the running code takes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use verdict_formats::{Decoder, UserEnvelope};

use crate::error::{Error, Result};

/// `collect.toml`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CollectConfig {
    /// The warehouse directory (default: the `--warehouse` flag's, else `./verdict-warehouse`).
    pub warehouse: Option<PathBuf>,
    /// Where checkpoints go (default: `<warehouse>/_verdict/collect/checkpoints`).
    pub checkpoints: Option<PathBuf>,
    /// When rows are committed.
    pub commit: CommitConfig,
    /// Files to follow (any number of `[[files]]` tables).
    pub files: Vec<FilesConfig>,
    /// The HTTP receiver (`[http]`); none by default.
    pub http: Option<HttpConfig>,
    /// Secret redaction (`[redaction]`): the built-in rules are on by default.
    pub redaction: RedactionConfig,
    /// An Ed25519 private key file (PKCS#8 PEM, as `verdict keygen` writes) that signs each
    /// commit's link of the integrity chain (default: the `--signing-key` flag's, else none).
    pub signing_key: Option<PathBuf>,
}

/// `[redaction]`: which values are secrets (README "Security").
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RedactionConfig {
    /// Apply the built-in key and value rules (default true).
    pub builtins: bool,
    /// JSON paths whose values are secrets (`args.proxy.url`; `*` one key, `**` any run).
    pub paths: Vec<String>,
    /// Regexes of key names whose values are secrets.
    pub keys: Vec<String>,
    /// Regexes of secret values.
    pub values: Vec<String>,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        Self {
            builtins: true,
            paths: Vec::new(),
            keys: Vec::new(),
            values: Vec::new(),
        }
    }
}

impl RedactionConfig {
    /// The rules to apply (checked when the commit loop opens the warehouse).
    pub fn rules(&self) -> verdict_ingest::RedactionRules {
        verdict_ingest::RedactionRules {
            builtins: self.builtins,
            keys: self.keys.clone(),
            values: self.values.clone(),
            paths: self.paths.clone(),
        }
    }
}

/// `[commit]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CommitConfig {
    /// Commit once this many rows wait (default 50,000).
    pub rows: u64,
    /// Commit at the latest this long after the first waiting row (default `5s`): rows are
    /// queryable within this time.
    pub interval: String,
    /// Records accepted from HTTP but not committed yet, at most (default 200,000); past it,
    /// requests are answered 429 with `Retry-After`.
    pub max_pending_records: u64,
    /// Keep each record verbatim in the `raw` column (default true).
    pub keep_raw: bool,
    /// Rows dated before this (RFC 3339 or `YYYY-MM-DD`) are quarantined as `bad_timestamp`
    /// (default 2000-01-01).
    pub earliest: Option<String>,
    /// Rows dated more than this many days after now are quarantined likewise (default 36,525).
    pub max_future_days: u32,
    /// Keep this period (`400d`) and apply retention (as `verdict retention --keep`) at start-up
    /// and then at most once a UTC day; none by default.
    pub retention: Option<String>,
}

impl Default for CommitConfig {
    fn default() -> Self {
        Self {
            rows: 50_000,
            interval: "5s".into(),
            max_pending_records: 200_000,
            keep_raw: true,
            earliest: None,
            max_future_days: 36_525,
            retention: None,
        }
    }
}

/// One `[[files]]` source: files and globs followed as they grow.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FilesConfig {
    /// Paths and globs (`/var/log/gw/*.jsonl*`); new matches are picked up at each poll. Include
    /// the rotated names (`app.log*`) so that lines written just before a rotation are read
    /// from the rotated file (a renamed or deleted file still open is drained either way).
    pub paths: Vec<String>,
    /// The input format: `auto` (detected per file from its first lines) or a name from
    /// `verdict formats` (default `auto`).
    pub input_format: String,
    /// A TOML mapping (`verdict formats --template`) for a proxy verdict has no built-in format
    /// for, or to override columns of one (with `base`); a path as given (relative to the
    /// collector's working directory).
    pub mapping: Option<PathBuf>,
    /// Take each line's record out of a prefix verdict does not know: a regular expression with
    /// a named group `json`, or `logfmt`; a line that does not match is quarantined as
    /// `envelope_mismatch`.
    pub envelope: Option<String>,
    /// How often the paths are listed and files checked for growth (default `250ms`).
    pub poll_interval: String,
    /// Bytes hashed for a file's fingerprint (default 256); a file is read once it holds that many.
    pub fingerprint_bytes: usize,
    /// Bytes read from one file at a time (default 4 MiB).
    pub read_bytes: usize,
    /// Longest accepted line in bytes (default 1 MiB); longer lines are quarantined.
    pub max_line_bytes: usize,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            paths: Vec::new(),
            input_format: "auto".into(),
            mapping: None,
            envelope: None,
            poll_interval: "250ms".into(),
            fingerprint_bytes: 256,
            read_bytes: 4 << 20,
            max_line_bytes: 1 << 20,
        }
    }
}

/// The spool directory when neither `spool_dir` nor a local warehouse names one.
pub(crate) const DEFAULT_SPOOL: &str = "verdict-collect-spool";

/// `[http]`: the receiver.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// The address to bind, e.g. `127.0.0.1:8181` (default `127.0.0.1:8181`); nothing else is bound.
    pub listen: String,
    /// Largest request body accepted, in bytes after decompression (default 64 MiB).
    pub max_body_bytes: usize,
    /// Seconds sent in `Retry-After` when the buffer is full or the collector stops (default 1).
    pub retry_after_secs: u64,
    /// Require a bearer token (or, without tokens, a client certificate) on every request but
    /// `/healthz` (default true).
    pub auth: bool,
    /// A file of tokens, one `name:token` a line (`#` starts a comment); the name is stored in
    /// `ingest_principal` of the rows a token uploads.
    pub tokens_file: Option<PathBuf>,
    /// More `name:token` entries (the CLI fills this from `VERDICT_COLLECT_TOKENS`; not read
    /// from the file).
    #[serde(skip)]
    pub tokens: Vec<String>,
    /// Serve `/metrics` without authentication (default false).
    pub metrics_public: bool,
    /// PEM certificate chain: with `tls_key`, the receiver speaks TLS only.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: clients must present a certificate they signed (mutual TLS); its
    /// subject is the principal of requests without a token.
    pub tls_client_ca: Option<PathBuf>,
    /// Listen on a non-loopback address without both TLS and authentication (default false).
    pub insecure_listen: bool,
    /// Time for a client to send a request's headers (and the TLS handshake) (default `10s`).
    pub header_timeout: String,
    /// Time for a client to send a request's body (default `60s`).
    pub body_timeout: String,
    /// A connection without a request in flight and without traffic for this long is closed
    /// (default `60s`).
    pub idle_timeout: String,
    /// Open connections at most; more are closed at once (default 256).
    pub max_connections: usize,
    /// Bytes of request bodies (as sent and inflated) held at once across all requests at most;
    /// past it requests are answered 429 (default 256 MiB).
    pub max_inflight_bytes: usize,
    /// Records one request may have quarantined at most; a request with more is refused whole
    /// with 422 (default 1,000).
    pub max_bad_records: u64,
    /// Bytes of quarantined text one request may add at most, likewise (default 1 MiB).
    pub max_bad_bytes: u64,
    /// When a request is answered 200: `commit` (default), once the commit holding its records
    /// is done; `spool`, once its lines are synced to a local spool file, before the commit
    /// (the spool is read back at start-up, see [`crate::spool`]).
    pub ack: String,
    /// The spool's directory with `ack = "spool"` (default: `_verdict/collect/spool` in a local
    /// warehouse, else `verdict-collect-spool`).
    pub spool_dir: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8181".into(),
            max_body_bytes: 64 << 20,
            retry_after_secs: 1,
            auth: true,
            tokens_file: None,
            tokens: Vec::new(),
            metrics_public: false,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            insecure_listen: false,
            header_timeout: "10s".into(),
            body_timeout: "60s".into(),
            idle_timeout: "60s".into(),
            max_connections: 256,
            max_inflight_bytes: 256 << 20,
            max_bad_records: 1_000,
            max_bad_bytes: 1 << 20,
            ack: "commit".into(),
            spool_dir: None,
        }
    }
}

/// How a source decodes its records.
#[derive(Debug, Clone)]
pub enum FormatChoice {
    /// Detected per file (or request) from its first records.
    Auto,
    /// This decoder.
    Use(Decoder),
}

/// Parses `auto` or a built-in format name, and reads the mapping, if any.
///
/// # Errors
/// An unknown name (with the known ones), an unreadable or malformed mapping, or a name and a
/// mapping that disagree.
pub fn format_choice(
    name: &str,
    mapping: Option<&std::path::Path>,
    setting: &str,
) -> Result<FormatChoice> {
    let error = |message: String| Error::Config {
        setting: setting.into(),
        message,
    };
    let text = match mapping {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| error(format!("reading the mapping {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let file = mapping.map(|p| p.display().to_string());
    let chosen = Decoder::choose(name, file.as_deref().zip(text.as_deref())).map_err(error)?;
    Ok(chosen.map_or(FormatChoice::Auto, FormatChoice::Use))
}

/// A duration such as `250ms`, `5s`, `2m`, `1h`.
///
/// # Errors
/// A malformed value, naming the setting.
pub fn parse_duration(s: &str, setting: &str) -> Result<Duration> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || Error::Config {
        setting: setting.into(),
        message: format!("invalid duration `{s}` (expected e.g. 250ms, 5s, 2m)"),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        "w" => n * 604_800.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Checked commit settings.
#[derive(Debug, Clone)]
pub struct CommitSettings {
    /// See [`CommitConfig::rows`].
    pub rows: u64,
    /// See [`CommitConfig::interval`].
    pub interval: Duration,
    /// See [`CommitConfig::max_pending_records`].
    pub max_pending_records: u64,
    /// See [`CommitConfig::keep_raw`].
    pub keep_raw: bool,
    /// See [`CommitConfig::earliest`], in UTC microseconds.
    pub earliest_micros: i64,
    /// See [`CommitConfig::max_future_days`].
    pub max_future_days: u32,
    /// See [`CommitConfig::retention`].
    pub retention: Option<Duration>,
}

impl CommitConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// A zero count or a malformed interval.
    pub fn build(&self) -> Result<CommitSettings> {
        if self.rows == 0 {
            return Err(Error::Config {
                setting: "commit.rows".into(),
                message: "must be at least 1".into(),
            });
        }
        Ok(CommitSettings {
            rows: self.rows,
            interval: parse_duration(&self.interval, "commit.interval")?,
            max_pending_records: self.max_pending_records.max(1),
            keep_raw: self.keep_raw,
            earliest_micros: match &self.earliest {
                None => verdict_ingest::DEFAULT_EARLIEST_MICROS,
                Some(t) => {
                    let full = if t.len() == 10 {
                        format!("{t}T00:00:00Z")
                    } else {
                        t.clone()
                    };
                    verdict_schema::time::parse_rfc3339_micros(&full).ok_or_else(|| {
                        Error::Config {
                            setting: "commit.earliest".into(),
                            message: format!("`{t}` is not a time (RFC 3339 or YYYY-MM-DD)"),
                        }
                    })?
                }
            },
            max_future_days: self.max_future_days,
            retention: match &self.retention {
                None => None,
                Some(r) => {
                    let d = parse_duration(r, "commit.retention")?;
                    if d < Duration::from_secs(86_400) {
                        return Err(Error::Config {
                            setting: "commit.retention".into(),
                            message: format!("`{r}` is shorter than a day"),
                        });
                    }
                    Some(d)
                }
            },
        })
    }
}

/// A checked `[[files]]` source.
#[derive(Debug, Clone)]
pub struct FilesSource {
    /// See [`FilesConfig::paths`].
    pub paths: Vec<String>,
    /// See [`FilesConfig::input_format`] and [`FilesConfig::mapping`].
    pub format: FormatChoice,
    /// See [`FilesConfig::envelope`].
    pub envelope: Option<Arc<UserEnvelope>>,
    /// See [`FilesConfig::poll_interval`].
    pub poll_interval: Duration,
    /// See [`FilesConfig::fingerprint_bytes`].
    pub fingerprint_bytes: usize,
    /// See [`FilesConfig::read_bytes`].
    pub read_bytes: usize,
    /// See [`FilesConfig::max_line_bytes`].
    pub max_line_bytes: usize,
}

impl FilesConfig {
    /// Checks the settings and returns the source to run.
    ///
    /// # Errors
    /// No path, an invalid glob, an unknown format or a malformed duration.
    pub fn build(&self) -> Result<FilesSource> {
        if self.paths.is_empty() {
            return Err(Error::Config {
                setting: "files.paths".into(),
                message: "give at least one path or glob".into(),
            });
        }
        for p in &self.paths {
            glob::Pattern::new(p).map_err(|e| Error::Config {
                setting: "files.paths".into(),
                message: format!("{p}: {e}"),
            })?;
        }
        Ok(FilesSource {
            paths: self.paths.clone(),
            format: format_choice(
                &self.input_format,
                self.mapping.as_deref(),
                "files.input_format",
            )?,
            envelope: match &self.envelope {
                Some(spec) => Some(Arc::new(UserEnvelope::parse(spec).map_err(|message| {
                    Error::Config {
                        setting: "files.envelope".into(),
                        message,
                    }
                })?)),
                None => None,
            },
            poll_interval: parse_duration(&self.poll_interval, "files.poll_interval")?,
            fingerprint_bytes: self.fingerprint_bytes.clamp(16, 1 << 20),
            read_bytes: self.read_bytes.max(4096),
            max_line_bytes: self.max_line_bytes.max(64),
        })
    }
}

/// A checked `[http]` receiver.
#[derive(Debug, Clone)]
pub struct HttpSource {
    /// See [`HttpConfig::listen`].
    pub listen: SocketAddr,
    /// See [`HttpConfig::max_body_bytes`].
    pub max_body_bytes: usize,
    /// See [`HttpConfig::retry_after_secs`].
    pub retry_after_secs: u64,
    /// Who may upload.
    pub auth: crate::auth::Auth,
    /// See [`HttpConfig::metrics_public`].
    pub metrics_public: bool,
    /// The TLS certificate, key and client CA files, when TLS is on.
    pub tls: Option<TlsFiles>,
    /// See [`HttpConfig::header_timeout`].
    pub header_timeout: Duration,
    /// See [`HttpConfig::body_timeout`].
    pub body_timeout: Duration,
    /// See [`HttpConfig::idle_timeout`].
    pub idle_timeout: Duration,
    /// See [`HttpConfig::max_connections`].
    pub max_connections: usize,
    /// See [`HttpConfig::max_inflight_bytes`].
    pub max_inflight_bytes: usize,
    /// See [`HttpConfig::max_bad_records`] and [`HttpConfig::max_bad_bytes`].
    pub max_bad: (u64, u64),
    /// With `ack = "spool"`: the spool's directory (the warehouse's default filled in by
    /// `CollectConfig::build`, else an explicit `spool_dir`).
    pub spool: Option<PathBuf>,
}

/// The PEM files of the receiver's TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
    /// CA certificates of client certificates (mutual TLS), if required.
    pub client_ca: Option<PathBuf>,
}

impl HttpConfig {
    /// Checks the settings, reads the tokens file and returns the receiver to run.
    ///
    /// # Errors
    /// An address that is not `IP:PORT`, a malformed duration or token entry, authentication on
    /// without any token or client CA, half a TLS pair, or a non-loopback address without TLS
    /// and authentication (unless `insecure_listen`).
    pub fn build(&self) -> Result<HttpSource> {
        let listen: SocketAddr = self.listen.parse().map_err(|e| Error::Config {
            setting: "http.listen".into(),
            message: format!("`{}` is not IP:PORT ({e})", self.listen),
        })?;
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
            }),
            (None, None) if self.tls_client_ca.is_none() => None,
            _ => {
                return Err(Error::Config {
                    setting: "http.tls_cert".into(),
                    message: "TLS needs both tls_cert and tls_key (and tls_client_ca needs them)"
                        .into(),
                })
            }
        };
        let auth = crate::auth::Auth::build(
            self.auth,
            self.tokens_file.as_deref(),
            &self.tokens,
            tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
        )?;
        if !listen.ip().is_loopback() && !self.insecure_listen && (tls.is_none() || !auth.is_on()) {
            return Err(Error::Config {
                setting: "http.listen".into(),
                message: format!(
                    "refusing to listen on {listen} without both TLS and authentication: \
                     give tls_cert and tls_key and tokens, or say --insecure-listen"
                ),
            });
        }
        Ok(HttpSource {
            listen,
            max_body_bytes: self.max_body_bytes.max(1024),
            retry_after_secs: self.retry_after_secs.max(1),
            auth,
            metrics_public: self.metrics_public,
            tls,
            header_timeout: parse_duration(&self.header_timeout, "http.header_timeout")?,
            body_timeout: parse_duration(&self.body_timeout, "http.body_timeout")?,
            idle_timeout: parse_duration(&self.idle_timeout, "http.idle_timeout")?,
            max_connections: self.max_connections.max(1),
            max_inflight_bytes: self.max_inflight_bytes.max(1024),
            max_bad: (self.max_bad_records, self.max_bad_bytes),
            spool: match self.ack.as_str() {
                "commit" => None,
                "spool" => Some(
                    self.spool_dir
                        .clone()
                        .unwrap_or_else(|| PathBuf::from(DEFAULT_SPOOL)),
                ),
                other => {
                    return Err(Error::Config {
                        setting: "http.ack".into(),
                        message: format!("`{other}` is neither `commit` nor `spool`"),
                    })
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses_and_unknown_keys_are_refused() {
        let text = r#"
warehouse = "wh"
checkpoints = "cp"
[commit]
rows = 10
interval = "2s"
max_pending_records = 100
keep_raw = false
[[files]]
paths = ["logs/*.jsonl*"]
input_format = "opa"
poll_interval = "100ms"
fingerprint_bytes = 128
read_bytes = 65536
max_line_bytes = 4096
[http]
listen = "127.0.0.1:0"
max_body_bytes = 2048
retry_after_secs = 3
auth = false
metrics_public = true
header_timeout = "2s"
body_timeout = "3s"
idle_timeout = "4s"
max_connections = 5
max_inflight_bytes = 4096
max_bad_records = 7
max_bad_bytes = 8
ack = "spool"
spool_dir = "sp"
"#;
        let c: CollectConfig = toml::from_str(text).unwrap();
        assert_eq!(c.files[0].fingerprint_bytes, 128);
        let f = c.files[0].build().unwrap();
        assert_eq!(f.poll_interval, Duration::from_millis(100));
        let k = c.commit.build().unwrap();
        assert_eq!((k.rows, k.interval), (10, Duration::from_secs(2)));
        let h = c.http.as_ref().unwrap().build().unwrap();
        assert_eq!(h.listen.to_string(), "127.0.0.1:0");
        assert_eq!(
            (
                h.header_timeout,
                h.idle_timeout,
                h.max_connections,
                h.max_bad
            ),
            (Duration::from_secs(2), Duration::from_secs(4), 5, (7, 8))
        );
        assert!(!h.auth.is_on());
        assert_eq!(h.spool, Some(PathBuf::from("sp")));
        // The spool's default directory is the warehouse's when it is local.
        let mut no_dir = c.clone();
        no_dir.http.as_mut().unwrap().spool_dir = None;
        let o = no_dir
            .build(PathBuf::from("ignored").into(), false)
            .unwrap();
        assert_eq!(
            o.http.unwrap().spool,
            Some(PathBuf::from("wh/_verdict/collect/spool"))
        );
        let mut wrong = c.http.clone().unwrap();
        wrong.ack = "later".into();
        let e = wrong.build().unwrap_err().to_string();
        assert_eq!(e, "http.ack: `later` is neither `commit` nor `spool`");
        let plain = HttpConfig {
            auth: false,
            ..HttpConfig::default()
        };
        assert_eq!(plain.build().unwrap().spool, None);
        let e = toml::from_str::<CollectConfig>("[commit]\nrowz = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `rowz`"), "{e}");
        let d: CollectConfig = toml::from_str("").unwrap();
        assert_eq!(d, CollectConfig::default());
        assert_eq!(d.commit.build().unwrap().interval, Duration::from_secs(5));
    }

    #[test]
    fn the_signing_key_is_read_at_build_and_a_bad_one_names_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.key");
        let signer = verdict_table::SigningKey::generate().unwrap();
        std::fs::write(&key, signer.to_pem()).unwrap();
        let text = format!(
            "signing_key = {:?}\n[[files]]\npaths = [\"x.log\"]\n",
            key.display().to_string()
        );
        let mut c: CollectConfig = toml::from_str(&text).unwrap();
        let wh = verdict_table::Location::from(dir.path().join("wh").as_path());
        let o = c.build(wh.clone(), false).unwrap();
        assert_eq!(
            o.signing_key.map(|k| k.public_key()),
            Some(signer.public_key())
        );
        c.signing_key = Some(dir.path().join("missing.key"));
        let e = c.build(wh, false).unwrap_err().to_string();
        assert!(e.starts_with("signing_key: reading "), "{e}");
    }

    #[test]
    fn retention_is_a_period_of_a_day_or_more() {
        let c: CollectConfig = toml::from_str("[commit]\nretention = \"400d\"\n").unwrap();
        assert_eq!(
            c.commit.build().unwrap().retention,
            Some(Duration::from_secs(400 * 86_400))
        );
        assert_eq!(
            CollectConfig::default().commit.build().unwrap().retention,
            None
        );
        let c: CollectConfig = toml::from_str("[commit]\nretention = \"12h\"\n").unwrap();
        let e = c.commit.build().unwrap_err().to_string();
        assert!(
            e.contains("commit.retention") && e.contains("shorter than a day"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_name_their_setting() {
        let e = parse_duration("5 parsecs", "commit.interval")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "commit.interval: invalid duration `5 parsecs` (expected e.g. 250ms, 5s, 2m)"
        );
        let f = FilesConfig {
            input_format: "nope".into(),
            paths: vec!["x".into()],
            ..Default::default()
        };
        assert!(f
            .build()
            .unwrap_err()
            .to_string()
            .starts_with("files.input_format: unknown format `nope`"));
        let h = HttpConfig {
            listen: "localhost".into(),
            ..Default::default()
        };
        assert!(h
            .build()
            .unwrap_err()
            .to_string()
            .starts_with("http.listen: `localhost` is not IP:PORT"));
    }

    #[test]
    fn a_files_source_takes_a_mapping_and_an_envelope() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("m.toml");
        std::fs::write(&m, verdict_formats::mapping::TEMPLATE).unwrap();
        let f = FilesConfig {
            paths: vec!["x".into()],
            mapping: Some(m.clone()),
            envelope: Some("logfmt".into()),
            ..Default::default()
        };
        let s = f.build().unwrap();
        assert!(matches!(s.format, FormatChoice::Use(Decoder::Mapping(_))));
        assert!(matches!(s.envelope.as_deref(), Some(UserEnvelope::Logfmt)));
        let e = FilesConfig {
            envelope: Some("(no group)".into()),
            ..f.clone()
        }
        .build()
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("files.envelope: --envelope `(no group)` has no named group `json`"),
            "{e}"
        );
        let e = FilesConfig {
            mapping: Some(dir.path().join("missing.toml")),
            ..f.clone()
        }
        .build()
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("files.input_format: reading the mapping "),
            "{e}"
        );
        std::fs::write(&m, "columns = 3\n").unwrap();
        let e = f.build().unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("files.input_format: mapping {}: ", m.display())),
            "{e}"
        );
    }

    #[test]
    fn authentication_and_tls_are_required_where_they_matter() {
        let e = HttpConfig::default().build().unwrap_err().to_string();
        assert!(e.starts_with("http.auth: no token"), "{e}");
        let open = HttpConfig {
            tokens: vec!["opa:s3cret-token-0123456789".into()],
            listen: "0.0.0.0:8181".into(),
            ..Default::default()
        };
        let e = open.build().unwrap_err().to_string();
        assert!(
            e.starts_with("http.listen: refusing to listen on 0.0.0.0:8181 without both TLS"),
            "{e}"
        );
        let insecure = HttpConfig {
            insecure_listen: true,
            ..open.clone()
        };
        assert!(insecure.build().unwrap().auth.is_on());
        let half = HttpConfig {
            tls_cert: Some("c.pem".into()),
            ..open
        };
        assert!(half
            .build()
            .unwrap_err()
            .to_string()
            .starts_with("http.tls_cert: TLS needs both"));
    }
}
