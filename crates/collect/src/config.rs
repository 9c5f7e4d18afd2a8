//! The collector's configuration: one struct per source and one for commits, each deserialised
//! from `collect.toml` (unknown keys refused) with a documented default on every field, and a
//! `build()` that checks it and returns the typed settings the running code takes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use verdict_formats::Decoder;
use verdict_formats::Format;

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
}

impl Default for CommitConfig {
    fn default() -> Self {
        Self {
            rows: 50_000,
            interval: "5s".into(),
            max_pending_records: 200_000,
            keep_raw: true,
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
            poll_interval: "250ms".into(),
            fingerprint_bytes: 256,
            read_bytes: 4 << 20,
            max_line_bytes: 1 << 20,
        }
    }
}

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
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8181".into(),
            max_body_bytes: 64 << 20,
            retry_after_secs: 1,
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

/// Parses `auto` or a built-in format name.
///
/// # Errors
/// An unknown name, with the known ones.
pub fn format_choice(name: &str, setting: &str) -> Result<FormatChoice> {
    if name.eq_ignore_ascii_case("auto") {
        return Ok(FormatChoice::Auto);
    }
    name.parse::<Format>()
        .map(|f| FormatChoice::Use(Decoder::Builtin(f)))
        .map_err(|message| Error::Config {
            setting: setting.into(),
            message,
        })
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
        })
    }
}

/// A checked `[[files]]` source.
#[derive(Debug, Clone)]
pub struct FilesSource {
    /// See [`FilesConfig::paths`].
    pub paths: Vec<String>,
    /// See [`FilesConfig::input_format`].
    pub format: FormatChoice,
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
            format: format_choice(&self.input_format, "files.input_format")?,
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
}

impl HttpConfig {
    /// Checks the settings and returns the receiver to run.
    ///
    /// # Errors
    /// An address that is not `IP:PORT`.
    pub fn build(&self) -> Result<HttpSource> {
        let listen = self.listen.parse().map_err(|e| Error::Config {
            setting: "http.listen".into(),
            message: format!("`{}` is not IP:PORT ({e})", self.listen),
        })?;
        Ok(HttpSource {
            listen,
            max_body_bytes: self.max_body_bytes.max(1024),
            retry_after_secs: self.retry_after_secs.max(1),
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
"#;
        let c: CollectConfig = toml::from_str(text).unwrap();
        assert_eq!(c.files[0].fingerprint_bytes, 128);
        let f = c.files[0].build().unwrap();
        assert_eq!(f.poll_interval, Duration::from_millis(100));
        let k = c.commit.build().unwrap();
        assert_eq!((k.rows, k.interval), (10, Duration::from_secs(2)));
        let h = c.http.as_ref().unwrap().build().unwrap();
        assert_eq!(h.listen.to_string(), "127.0.0.1:0");
        let e = toml::from_str::<CollectConfig>("[commit]\nrowz = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `rowz`"), "{e}");
        let d: CollectConfig = toml::from_str("").unwrap();
        assert_eq!(d, CollectConfig::default());
        assert_eq!(d.commit.build().unwrap().interval, Duration::from_secs(5));
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
}
