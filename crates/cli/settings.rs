//! Resolves flags, environment and defaults into the typed options the libraries take.
//! The only place that reads the environment; nothing here does work.

use anyhow::{anyhow, Context, Result};
use std::sync::Arc;

use verdict_ingest::{CommitStep, IngestOptions, InputFormat};
use verdict_schema::formats::{Decoder, Mapping};
use verdict_schema::Format;
use verdict_table::{AsOf, Location};

use verdict_replay::{Gate, ReplayOptions};
use verdict_schema::time::{format_micros, parse_rfc3339_micros};

use verdict_query::{GroupBy, OutputFormat, ReportKind, ReportSpec, TimelineSpec};

use crate::args::{
    Cli, CollectArgs, CompactArgs, IngestArgs, QueryFormat, ReplayArgs, ReportArgs, TimelineArgs,
    TrafficFilter, When,
};

/// Where the warehouse is when neither the flag nor the environment says.
pub const DEFAULT_WAREHOUSE: &str = "verdict-warehouse";

/// The environment variables verdict reads.
#[derive(Debug, Default, Clone)]
pub struct Env {
    /// `VERDICT_WAREHOUSE`.
    pub warehouse: Option<String>,
    /// `VERDICT_ABORT_AT`: a commit step at which to abort (crash tests only).
    pub abort_at: Option<String>,
    /// Now, UTC µs: the system clock, or `VERDICT_NOW` (RFC 3339) to pin relative times.
    pub now: i64,
    /// Object store settings from `AWS_*`, `GOOGLE_*` and `AZURE_*` (keys lowercased).
    pub storage: Vec<(String, String)>,
}

impl Env {
    /// Reads the process environment.
    pub fn from_process() -> Self {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let now = get("VERDICT_NOW")
            .and_then(|s| parse_rfc3339_micros(&s))
            .unwrap_or_else(|| {
                verdict_schema::time::Clock::now_micros(&verdict_schema::time::SystemClock)
            });
        let storage = std::env::vars()
            .filter(|(k, v)| {
                !v.is_empty()
                    && ["AWS_", "GOOGLE_", "AZURE_"]
                        .iter()
                        .any(|p| k.starts_with(p))
            })
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        Self {
            warehouse: get("VERDICT_WAREHOUSE"),
            abort_at: get("VERDICT_ABORT_AT"),
            now,
            storage,
        }
    }
}

/// The warehouse: `--warehouse`, else `VERDICT_WAREHOUSE`, else `./verdict-warehouse`; with the
/// object store settings of the environment, overridden by `--storage-option`.
pub fn warehouse(cli: &Cli, env: &Env) -> Result<Location> {
    let given = cli
        .warehouse
        .clone()
        .or_else(|| env.warehouse.clone())
        .unwrap_or_else(|| DEFAULT_WAREHOUSE.to_string());
    let options = env.storage.iter().cloned().chain(
        cli.storage_options
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone())),
    );
    Ok(Location::parse(&given, options)?)
}

/// `--as-of`, parsed.
pub fn as_of(s: Option<&str>) -> Result<Option<AsOf>> {
    Ok(s.map(str::parse::<AsOf>).transpose()?)
}

/// Options of `verdict ingest`, plus whether to draw a progress bar.
pub fn ingest(
    cli: &Cli,
    args: &IngestArgs,
    env: &Env,
    stderr_is_tty: bool,
) -> Result<(IngestOptions, bool)> {
    let mut o = IngestOptions::new(warehouse(cli, env)?, args.paths.clone());
    o.format = input_format(&args.input_format, args.mapping.as_deref())?;
    o.strict = args.strict;
    o.keep_raw = !args.no_raw;
    if let Some(t) = args.threads {
        o.threads = usize::from(t);
    }
    o.max_line_bytes = usize::try_from(args.max_line_bytes).unwrap_or(usize::MAX);
    o.commit_rows = args.commit_rows;
    o.chunk_bytes = usize::try_from(args.chunk_bytes).unwrap_or(usize::MAX);
    o.row_group_rows = usize::try_from(args.row_group_rows).unwrap_or(usize::MAX);
    o.max_buffered_rows = o.max_buffered_rows.max(o.row_group_rows * 2);
    o.zstd_level = args.zstd_level;
    o.abort_at = env
        .abort_at
        .as_deref()
        .map(|s| {
            s.parse::<CommitStep>()
                .map_err(|e| anyhow!("VERDICT_ABORT_AT: {e}"))
        })
        .transpose()?;
    let progress = match args.progress {
        When::Always => true,
        When::Never => false,
        When::Auto => stderr_is_tty,
    };
    Ok((o, progress))
}

/// Options of `verdict collect`: the config file (if any), overridden by the flags.
pub fn collect(
    cli: &Cli,
    args: &CollectArgs,
    env: &Env,
) -> Result<verdict_collect::CollectOptions> {
    let mut config: verdict_collect::CollectConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?
        }
        None => Default::default(),
    };
    if !args.follow.is_empty() {
        config.files.push(verdict_collect::FilesConfig {
            paths: args.follow.clone(),
            ..Default::default()
        });
    }
    for f in &mut config.files {
        if let Some(name) = &args.input_format {
            f.input_format = name.clone();
        }
        if let Some(p) = &args.poll_interval {
            f.poll_interval = p.clone();
        }
    }
    if let Some(addr) = &args.listen {
        config.http.get_or_insert_with(Default::default).listen = addr.clone();
    }
    if let Some(n) = args.commit_rows {
        config.commit.rows = n;
    }
    if let Some(t) = &args.commit_interval {
        config.commit.interval = t.clone();
    }
    if let Some(n) = args.max_pending {
        config.commit.max_pending_records = n;
    }
    if let Some(dir) = &args.checkpoints {
        config.checkpoints = Some(dir.clone());
    }
    // The flag or environment wins over the file's warehouse, as for every command.
    if cli.warehouse.is_some() || env.warehouse.is_some() {
        config.warehouse = None;
    }
    Ok(config.build(warehouse(cli, env)?, args.reset_checkpoints)?)
}

/// Options of `verdict compact`.
pub fn compact(cli: &Cli, args: &CompactArgs, env: &Env) -> Result<verdict_ingest::CompactOptions> {
    let mut o = verdict_ingest::CompactOptions::new(warehouse(cli, env)?);
    o.day = args.day.clone();
    o.abort_at = env
        .abort_at
        .as_deref()
        .map(|s| {
            s.parse::<CommitStep>()
                .map_err(|e| anyhow!("VERDICT_ABORT_AT: {e}"))
        })
        .transpose()?;
    Ok(o)
}

/// The input format: `auto`, a built-in name, or a mapping file (whose `base`, if any, must
/// agree with a named format).
pub fn input_format(name: &str, mapping: Option<&std::path::Path>) -> Result<InputFormat> {
    let named = if name.eq_ignore_ascii_case("auto") {
        None
    } else {
        Some(
            name.parse::<Format>()
                .map_err(|e| anyhow!("--input-format: {e}"))?,
        )
    };
    let Some(path) = mapping else {
        return Ok(named.map_or(InputFormat::Auto, InputFormat::from));
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the mapping {}", path.display()))?;
    let m = Mapping::from_toml(&text).map_err(|e| anyhow!("mapping {}: {e}", path.display()))?;
    if let Some(f) = named {
        if m.base() != Some(f) {
            return Err(anyhow!(
                "--input-format {f} and the mapping {} (base {}) disagree: name the format in the mapping's `base`",
                path.display(),
                m.base().map_or("none", Format::name)
            ));
        }
    }
    Ok(InputFormat::Use(Decoder::Mapping(Arc::new(m))))
}

/// A duration such as `90s`, `30m`, `24h`, `7d`, `2w`, in microseconds.
pub fn parse_duration(s: &str) -> Result<i64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow!("invalid duration `{s}` (expected e.g. 30m, 24h, 7d)"))?;
    let secs = match unit {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 604_800.0,
        _ => {
            return Err(anyhow!(
                "invalid duration `{s}`: unit must be s, m, h, d or w"
            ))
        }
    };
    Ok((n * secs * 1e6).round() as i64)
}

/// A point in time: RFC 3339, a date (`2026-11-02`, midnight UTC), or a duration before `now`.
pub fn parse_time(s: &str, now: i64) -> Result<i64> {
    let t = s.trim();
    if let Some(v) = parse_rfc3339_micros(t) {
        return Ok(v);
    }
    if t.len() == 10 {
        if let Some(v) = parse_rfc3339_micros(&format!("{t}T00:00:00Z")) {
            return Ok(v);
        }
    }
    parse_duration(t)
        .map(|d| now - d)
        .map_err(|_| anyhow!("invalid time `{s}` (expected RFC 3339, a date like 2026-11-02, or a relative time like 24h or 7d)"))
}

/// The `[since, until)` range of a filter, checked to be non-empty.
pub fn range(f: &TrafficFilter, env: &Env) -> Result<(Option<i64>, Option<i64>)> {
    let time = |v: &Option<String>, flag: &'static str| {
        v.as_deref()
            .map(|s| parse_time(s, env.now))
            .transpose()
            .context(flag)
    };
    let (since, until) = (time(&f.since, "--since")?, time(&f.until, "--until")?);
    if let (Some(s), Some(u)) = (since, until) {
        if u <= s {
            return Err(anyhow!(
                "--until ({}) must be after --since ({})",
                format_micros(u),
                format_micros(s)
            ));
        }
    }
    Ok((since, until))
}

/// Options of `verdict replay`, with the gates parsed.
pub fn replay(cli: &Cli, a: &ReplayArgs, env: &Env) -> Result<ReplayOptions> {
    let (since, until) = range(&a.filter, env)?;
    let gates = a
        .fail_on
        .iter()
        .map(|g| g.parse::<Gate>())
        .collect::<Result<Vec<_>, _>>()
        .context("--fail-on")?;
    Ok(ReplayOptions {
        warehouse: warehouse(cli, env)?,
        as_of: as_of(a.as_of.as_deref())?,
        since,
        until,
        warmup: a
            .warmup
            .as_deref()
            .map(parse_duration)
            .transpose()
            .context("--warmup")?,
        identities: a.filter.identity.clone(),
        tools: a.filter.tool.clone(),
        servers: a.filter.server.clone(),
        samples: a.samples,
        changes: a.changes.clone(),
        gates,
    })
}

/// The printer format: `auto` is a table on a terminal and CSV when piped. `None` means Parquet.
pub fn query_format(f: QueryFormat, stdout_is_tty: bool) -> Option<OutputFormat> {
    match f {
        QueryFormat::Auto if stdout_is_tty => Some(OutputFormat::Table),
        QueryFormat::Auto | QueryFormat::Csv => Some(OutputFormat::Csv),
        QueryFormat::Table => Some(OutputFormat::Table),
        QueryFormat::Json => Some(OutputFormat::Json),
        QueryFormat::Ndjson => Some(OutputFormat::Ndjson),
        QueryFormat::Parquet => None,
    }
}

/// The report a `verdict report` asks for.
pub fn report(a: &ReportArgs, env: &Env) -> Result<ReportSpec> {
    let kind: ReportKind = a.kind.parse().map_err(|e: String| anyhow!(e))?;
    let mut spec = ReportSpec::new(kind);
    spec.by =
        a.by.iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.parse::<GroupBy>().map_err(|e| anyhow!("--by: {e}")))
            .collect::<Result<_>>()?;
    (spec.since, spec.until) = range(&a.filter, env)?;
    spec.identities = a.filter.identity.clone();
    spec.tools = a.filter.tool.clone();
    spec.servers = a.filter.server.clone();
    spec.sessions = a.session.clone();
    spec.decisions = a
        .decision
        .iter()
        .map(|d| {
            d.parse::<verdict_schema::Decision>()
                .map_err(|e| anyhow!("--decision: {e}"))
        })
        .collect::<Result<_>>()?;
    spec.top = a.top;
    spec.raw = a.no_rollup;
    Ok(spec)
}

/// The timeline a `verdict timeline` asks for.
pub fn timeline(a: &TimelineArgs, env: &Env) -> Result<TimelineSpec> {
    let mut spec = TimelineSpec::new(a.identity.clone());
    spec.session = a.session.clone();
    spec.around = a
        .around
        .as_deref()
        .map(|s| parse_time(s, env.now))
        .transpose()
        .context("--around")?;
    spec.window = if spec.around.is_some() {
        Some(parse_duration(&a.window).context("--window")?)
    } else {
        None
    };
    spec.limit = a.limit;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).unwrap()
    }

    fn cli_err(args: &[&str]) -> String {
        Cli::try_parse_from(args).unwrap_err().to_string()
    }

    #[test]
    fn warehouse_flag_beats_env_beats_default() {
        let env = Env {
            warehouse: Some("from-env".into()),
            ..Env::default()
        };
        let w = |c: &Cli, e: &Env| warehouse(c, e).unwrap().to_string();
        assert_eq!(
            w(&cli(&["verdict", "-w", "flag", "ingest", "x"]), &env),
            "flag"
        );
        assert_eq!(w(&cli(&["verdict", "ingest", "x"]), &env), "from-env");
        assert_eq!(
            w(&cli(&["verdict", "ingest", "x"]), &Env::default()),
            DEFAULT_WAREHOUSE
        );
        let s3 = warehouse(
            &cli(&[
                "verdict",
                "-w",
                "s3://b/p",
                "--storage-option",
                "AWS_REGION=eu",
                "sql",
                "x",
            ]),
            &Env::default(),
        )
        .unwrap();
        assert_eq!(s3.url().as_str(), "s3://b/p/");
        assert!(
            cli_err(&["verdict", "--storage-option", "novalue", "sql", "x"]).contains("KEY=VALUE")
        );
    }

    #[test]
    fn ingest_options_and_progress() {
        let c = cli(&[
            "verdict",
            "ingest",
            "x",
            "--no-raw",
            "--threads",
            "3",
            "--commit-rows",
            "10",
        ]);
        let crate::args::Command::Ingest(a) = &c.command else {
            panic!()
        };
        let (o, p) = ingest(&c, a, &Env::default(), true).unwrap();
        assert!(!o.keep_raw);
        assert_eq!((o.threads, o.commit_rows, p), (3, Some(10), true));
        let (_, p) = ingest(&c, a, &Env::default(), false).unwrap();
        assert!(!p);
        let bad = Env {
            abort_at: Some("nowhere".into()),
            ..Env::default()
        };
        assert!(ingest(&c, a, &bad, false)
            .unwrap_err()
            .to_string()
            .contains("VERDICT_ABORT_AT"));
    }

    #[test]
    fn unknown_input_format_is_named() {
        let c = cli(&["verdict", "ingest", "x", "-f", "nope"]);
        let crate::args::Command::Ingest(a) = &c.command else {
            panic!()
        };
        let e = ingest(&c, a, &Env::default(), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--input-format: unknown format `nope`"),
            "{e}"
        );
    }

    #[test]
    fn durations_and_times() {
        assert_eq!(parse_duration("30m").unwrap(), 1_800_000_000);
        assert_eq!(parse_duration("1.5h").unwrap(), 5_400_000_000);
        assert_eq!(parse_duration("7d").unwrap(), 604_800_000_000);
        assert!(parse_duration("7y").is_err());
        let now = parse_rfc3339_micros("2026-11-05T00:00:00Z").unwrap();
        assert_eq!(
            format_micros(parse_time("24h", now).unwrap()),
            "2026-11-04T00:00:00.000000Z"
        );
        assert_eq!(
            format_micros(parse_time("2026-11-02", now).unwrap()),
            "2026-11-02T00:00:00.000000Z"
        );
        assert_eq!(
            parse_time("2026-11-02T01:00:00+01:00", now).unwrap(),
            parse_time("2026-11-02", now).unwrap()
        );
        assert!(parse_time("yesterday", now)
            .unwrap_err()
            .to_string()
            .contains("invalid time `yesterday`"));
    }
}
