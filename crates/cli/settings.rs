//! Resolves flags, environment and defaults into the typed options the libraries take.
//! The only place that reads the environment; nothing here does work.

use anyhow::{anyhow, Context, Result};
use std::path::PathBuf;
use std::sync::Arc;

use verdict_formats::Decoder;
use verdict_ingest::{CommitStep, IngestOptions, InputFormat, RedactionRules};
use verdict_table::{AsOf, Location};

use verdict_policy::LimitField;
use verdict_replay::{Gate, ReplayOptions, SuggestOptions, TuneOptions, TuneTarget};
use verdict_schema::time::{format_micros, parse_rfc3339_micros};

use verdict_query::{GroupBy, OutputFormat, ReportKind, ReportSpec, TimelineSpec};

use crate::args::{
    Cli, CollectArgs, CompactArgs, ComplianceArgs, IngestArgs, QueryFormat, ReplayArgs, ReportArgs,
    SuggestArgs, TimelineArgs, TrafficFilter, TuneArgs, When,
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
    /// `NO_COLOR` is set to a non-empty value (no-color.org).
    pub no_color: bool,
    /// The user's data directory: `XDG_DATA_HOME`, else `HOME/.local/share`.
    pub data_dir: Option<PathBuf>,
    /// `VERDICT_CHROMIUM`: the browser that prints PDFs.
    pub chromium: Option<String>,
    /// `PATH`, searched for a browser when none is named.
    pub path: Option<std::ffi::OsString>,
    /// `VERDICT_COLLECT_TOKENS`: `name:token` entries for the HTTP receiver.
    pub collect_tokens: Option<String>,
    /// `VERDICT_GROUP_READABLE`: `1` or `true` as `--group-readable`.
    pub group_readable: bool,
    /// Object store settings from `AWS_*`, `GOOGLE_*` and `AZURE_*` (keys lowercased).
    pub storage: Vec<(String, String)>,
    /// `VERDICT_SIGNING_KEY`: the private key file that signs commits.
    pub signing_key: Option<PathBuf>,
    /// `USER` (else `LOGNAME`): who asked for a retention, hold or erasure, unless named.
    pub user: Option<String>,
    /// `VERDICT_CLUSTER`: the cluster queries run on without `--cluster`.
    pub cluster: Option<String>,
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
            no_color: get("NO_COLOR").is_some(),
            data_dir: get("XDG_DATA_HOME")
                .map(PathBuf::from)
                .or_else(|| get("HOME").map(|h| PathBuf::from(h).join(".local/share"))),
            chromium: get("VERDICT_CHROMIUM"),
            path: std::env::var_os("PATH"),
            collect_tokens: get("VERDICT_COLLECT_TOKENS"),
            group_readable: get("VERDICT_GROUP_READABLE")
                .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
            storage,
            signing_key: get("VERDICT_SIGNING_KEY").map(PathBuf::from),
            user: get("USER").or_else(|| get("LOGNAME")),
            cluster: get("VERDICT_CLUSTER"),
        }
    }
}

/// The key that signs commits: `--signing-key`, else `VERDICT_SIGNING_KEY`, else none.
pub fn signing_key(cli: &Cli, env: &Env) -> Result<Option<verdict_table::SigningKey>> {
    let Some(path) = cli.signing_key.as_ref().or(env.signing_key.as_ref()) else {
        return Ok(None);
    };
    Ok(Some(
        verdict_table::SigningKey::from_file(path).context("--signing-key")?,
    ))
}

/// The warehouse, signing what it commits with the key of [`signing_key`].
pub fn writable_warehouse(cli: &Cli, env: &Env) -> Result<verdict_table::Warehouse> {
    Ok(verdict_table::Warehouse::new(warehouse(cli, env)?)?
        .with_signing_key(signing_key(cli, env)?))
}

/// Options of `verdict verify`.
pub fn verify(a: &crate::args::VerifyArgs, env: &Env) -> Result<verdict_table::VerifyOptions> {
    let since = a
        .since
        .as_deref()
        .map(|s| parse_time(s, env.now))
        .transpose()
        .context("--since")?
        .and_then(chrono::DateTime::from_timestamp_micros);
    let public_key = a
        .public_key
        .as_deref()
        .map(verdict_table::PublicKey::from_file)
        .transpose()
        .context("--public-key")?;
    Ok(verdict_table::VerifyOptions { since, public_key })
}

/// Who asked for a change: `--requested-by`, else the user running verdict.
pub fn requested_by(flag: Option<&String>, env: &Env) -> Option<String> {
    flag.cloned().or_else(|| env.user.clone())
}

/// Options of `verdict retention`.
pub fn retention(
    cli: &Cli,
    a: &crate::args::RetentionArgs,
    env: &Env,
) -> Result<verdict_ingest::lifecycle::RetentionOptions> {
    Ok(verdict_ingest::lifecycle::RetentionOptions {
        warehouse: warehouse(cli, env)?,
        keep_micros: parse_duration(&a.keep).context("--keep")?,
        dry_run: a.dry_run,
        signing_key: signing_key(cli, env)?,
        trace: verdict_ingest::lifecycle::Trace {
            requested_by: requested_by(a.requested_by.as_ref(), env),
            reason: a.reason.clone(),
        },
    })
}

/// Options of `verdict erase`.
pub fn erase(
    cli: &Cli,
    a: &crate::args::EraseArgs,
    env: &Env,
) -> Result<verdict_ingest::lifecycle::EraseOptions> {
    let (since, until) = time_range(a.since.as_deref(), a.until.as_deref(), env)?;
    if a.reason.trim().is_empty() {
        return Err(anyhow!("--reason must say why"));
    }
    Ok(verdict_ingest::lifecycle::EraseOptions {
        warehouse: warehouse(cli, env)?,
        identity: a.identity.clone(),
        since,
        until,
        pseudonymise: a.pseudonymise,
        dry_run: a.dry_run,
        signing_key: signing_key(cli, env)?,
        trace: verdict_ingest::lifecycle::Trace {
            requested_by: requested_by(a.requested_by.as_ref(), env),
            reason: Some(a.reason.clone()),
        },
    })
}

/// The hold `verdict hold add` places.
pub fn hold(a: &crate::args::HoldAddArgs, env: &Env) -> Result<verdict_table::Hold> {
    let (since, until) = time_range(a.since.as_deref(), a.until.as_deref(), env)?;
    Ok(verdict_table::Hold {
        name: a.name.clone(),
        since: since.map(format_micros),
        until: until.map(format_micros),
        identities: a.identity.clone(),
        reason: a.reason.clone(),
        placed_by: requested_by(a.requested_by.as_ref(), env),
        placed_at: format_micros(env.now),
        lifted_at: None,
    })
}

/// The warehouse: `--warehouse`, else `VERDICT_WAREHOUSE`, else `./verdict-warehouse`; with the
/// object store settings of the environment, overridden by `--storage-option`.
pub fn warehouse(cli: &Cli, env: &Env) -> Result<Location> {
    let given = cli
        .warehouse
        .clone()
        .or_else(|| env.warehouse.clone())
        .unwrap_or_else(|| DEFAULT_WAREHOUSE.to_string());
    Ok(Location::parse(&given, storage(cli, env))?)
}

/// The object store settings: the environment's, overridden by `--storage-option`.
pub fn storage(cli: &Cli, env: &Env) -> Vec<(String, String)> {
    env.storage
        .iter()
        .cloned()
        .chain(
            cli.storage_options
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone())),
        )
        .collect()
}

/// The cluster a query runs on: `--cluster`, else `VERDICT_CLUSTER`, else none (a local run).
pub fn cluster(given: Option<&str>, env: &Env) -> Result<Option<verdict_query::Cluster>> {
    Ok(given
        .or(env.cluster.as_deref())
        .map(verdict_query::Cluster::parse)
        .transpose()?)
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
    o.signing_key = signing_key(cli, env)?;
    o.format = input_format(&args.input_format, args.mapping.as_deref())?;
    o.envelope = match &args.envelope {
        Some(spec) => Some(Arc::new(
            verdict_formats::UserEnvelope::parse(spec).map_err(|e| anyhow!(e))?,
        )),
        None => None,
    };
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
    o.earliest_micros = earliest(args.earliest.as_deref(), env)?;
    o.max_future_days = args.max_future_days;
    o.max_quarantine_records = args.max_quarantine_records;
    o.max_quarantine_bytes = args.max_quarantine_bytes;
    o.redaction = RedactionRules {
        builtins: !args.no_builtin_redaction,
        keys: args.redact_key.clone(),
        values: args.redact_value.clone(),
        paths: args.redact_path.clone(),
    };
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

/// The earliest accepted row time: `--earliest`, else 2000-01-01.
fn earliest(flag: Option<&str>, env: &Env) -> Result<i64> {
    match flag {
        None => Ok(verdict_ingest::DEFAULT_EARLIEST_MICROS),
        Some(s) => parse_time(s, env.now).map_err(|e| anyhow!("--earliest: {e}")),
    }
}

/// Whether warehouse files are created group-readable (`--group-readable` or the environment).
pub fn group_readable(cli: &Cli, env: &Env) -> bool {
    cli.group_readable || env.group_readable
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
        if let Some(m) = &args.mapping {
            f.mapping = Some(m.clone());
        }
        if let Some(e) = &args.envelope {
            f.envelope = Some(e.clone());
        }
        if let Some(p) = &args.poll_interval {
            f.poll_interval = p.clone();
        }
    }
    if let Some(addr) = &args.listen {
        config.http.get_or_insert_with(Default::default).listen = addr.clone();
    }
    if config.http.is_none() && (args.ack.is_some() || args.spool_dir.is_some()) {
        return Err(anyhow!(
            "--ack and --spool-dir are about HTTP uploads: give --listen (or [http] in the config)"
        ));
    }
    if let Some(http) = &mut config.http {
        if let Some(t) = &env.collect_tokens {
            http.tokens.push(t.clone());
        }
        if let Some(f) = &args.tokens_file {
            http.tokens_file = Some(f.clone());
        }
        if args.no_auth {
            http.auth = false;
        }
        if args.tls_cert.is_some() {
            http.tls_cert = args.tls_cert.clone();
            http.tls_key = args.tls_key.clone();
        }
        if args.tls_client_ca.is_some() {
            http.tls_client_ca = args.tls_client_ca.clone();
        }
        http.insecure_listen |= args.insecure_listen;
        http.metrics_public |= args.metrics_public;
        if let Some(a) = &args.ack {
            http.ack = a.clone();
        }
        if args.spool_dir.is_some() {
            http.spool_dir = args.spool_dir.clone();
        }
    }
    if let Some(t) = &args.earliest {
        config.commit.earliest = Some(t.clone());
    }
    if let Some(d) = args.max_future_days {
        config.commit.max_future_days = d;
    }
    let r = &mut config.redaction;
    r.paths.extend(args.redact_path.iter().cloned());
    r.keys.extend(args.redact_key.iter().cloned());
    r.values.extend(args.redact_value.iter().cloned());
    if args.no_builtin_redaction {
        r.builtins = false;
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
    let mut o = config.build(warehouse(cli, env)?, args.reset_checkpoints)?;
    if o.signing_key.is_none() {
        o.signing_key = signing_key(cli, env)?;
    }
    Ok(o)
}

/// Options of `verdict compact`.
pub fn compact(cli: &Cli, args: &CompactArgs, env: &Env) -> Result<verdict_ingest::CompactOptions> {
    let mut o = verdict_ingest::CompactOptions::new(warehouse(cli, env)?);
    o.signing_key = signing_key(cli, env)?;
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
    let text = match mapping {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the mapping {}", path.display()))?,
        ),
        None => None,
    };
    let file = mapping.map(|p| p.display().to_string());
    let chosen = Decoder::choose(name, file.as_deref().zip(text.as_deref()))
        .map_err(|e| anyhow!("--input-format: {e}"))?;
    Ok(chosen.map_or(InputFormat::Auto, InputFormat::Use))
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
    time_range(f.since.as_deref(), f.until.as_deref(), env)
}

/// The `[since, until)` range of `--since` and `--until`, checked to be non-empty.
pub fn time_range(
    since: Option<&str>,
    until: Option<&str>,
    env: &Env,
) -> Result<(Option<i64>, Option<i64>)> {
    let time = |v: Option<&str>, flag: &'static str| {
        v.map(|s| parse_time(s, env.now)).transpose().context(flag)
    };
    let (since, until) = (time(since, "--since")?, time(until, "--until")?);
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

/// Options of `verdict suggest`.
pub fn suggest(cli: &Cli, a: &SuggestArgs, env: &Env) -> Result<SuggestOptions> {
    let (since, until) = time_range(a.since.as_deref(), a.until.as_deref(), env)?;
    Ok(SuggestOptions {
        warehouse: warehouse(cli, env)?,
        since,
        until,
        identities: if a.all {
            Vec::new()
        } else {
            a.identity.clone()
        },
        holdout: a
            .holdout
            .as_deref()
            .map(parse_duration)
            .transpose()
            .context("--holdout")?,
        headroom: a.headroom,
        allow_destructive: a.allow_destructive,
    })
}

/// Options of `verdict tune`: the range, the values to try (`field`, labels and edits), the target.
pub fn tune(cli: &Cli, a: &TuneArgs, env: &Env) -> Result<TuneSettings> {
    let (since, until) = time_range(a.since.as_deref(), a.until.as_deref(), env)?;
    let (field, values) = match (&a.max, &a.window) {
        (Some(m), _) => ("max", max_values(m).context("--max")?),
        (None, Some(w)) => (
            "window",
            w.split(',')
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .map(|s| LimitField::Window(s.to_string()))
                .collect(),
        ),
        (None, None) => return Err(anyhow!("--max or --window is required")),
    };
    if values.is_empty() {
        return Err(anyhow!("--{field}: no value to try"));
    }
    Ok(TuneSettings {
        opts: TuneOptions {
            warehouse: warehouse(cli, env)?,
            since,
            until,
        },
        field,
        values,
        target: a
            .target
            .as_deref()
            .map(str::parse::<TuneTarget>)
            .transpose()?,
    })
}

/// What `verdict tune` runs.
pub struct TuneSettings {
    /// The range.
    pub opts: TuneOptions,
    /// `max` or `window`.
    pub field: &'static str,
    /// The edits to try, in order.
    pub values: Vec<LimitField>,
    /// `--target`.
    pub target: Option<TuneTarget>,
}

/// `5..60/5` (from, to inclusive, step; step 1 by default) or `5,10,20`, as `max` edits.
pub fn max_values(s: &str) -> Result<Vec<LimitField>> {
    let num = |t: &str| {
        t.trim().parse::<u64>().map_err(|_| {
            anyhow!("`{t}` is not a whole number (expected FROM..TO[/STEP] or a list)")
        })
    };
    let values: Vec<u64> = match s.split_once("..") {
        Some((from, rest)) => {
            let (to, step) = match rest.split_once('/') {
                Some((to, step)) => (num(to)?, num(step)?),
                None => (num(rest)?, 1),
            };
            let from = num(from)?;
            if step == 0 || to < from {
                return Err(anyhow!(
                    "`{s}`: the range must rise and the step be above 0"
                ));
            }
            let n = (to - from) / step + 1;
            if n > 1000 {
                return Err(anyhow!("`{s}` is {n} values; at most 1000"));
            }
            (0..n).map(|i| from + i * step).collect()
        }
        None => s.split(',').map(num).collect::<Result<_>>()?,
    };
    Ok(values.into_iter().map(LimitField::Max).collect())
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

/// Whether to colour stdout: `--color always|never`, else (auto) on a terminal unless
/// `NO_COLOR` is set.
pub fn color(when: When, env: &Env, stdout_is_tty: bool) -> bool {
    match when {
        When::Always => true,
        When::Never => false,
        When::Auto => stdout_is_tty && !env.no_color,
    }
}

/// The printer's style for this run.
pub fn style(cli: &Cli, env: &Env, stdout_is_tty: bool) -> crate::output::Style {
    crate::output::Style {
        color: color(cli.color, env, stdout_is_tty),
        quiet: cli.quiet,
    }
}

/// The SQL shell's history file: `DATA_DIR/verdict/sql_history`.
pub fn history_file(env: &Env) -> Option<PathBuf> {
    env.data_dir
        .as_ref()
        .map(|d| d.join("verdict").join("sql_history"))
}

/// Rows a table shows on a terminal unless `--max-rows` says otherwise (as DuckDB's shell).
pub const TERMINAL_MAX_ROWS: usize = 40;

/// How a query result is laid out: `--max-rows` (0: all) or 40 rows on a terminal, every row
/// elsewhere; on a terminal the table fits its `width`, one line per row (wide text cut).
pub fn print_options(
    max_rows: Option<usize>,
    terminal_width: Option<u16>,
) -> verdict_query::PrintOptions {
    let mut o = verdict_query::PrintOptions::default();
    o.max_rows = match max_rows {
        Some(0) => None,
        Some(n) => Some(n),
        None => terminal_width.map(|_| TERMINAL_MAX_ROWS),
    };
    o.width = terminal_width;
    o
}

/// The `[since, until)` period of `verdict report compliance`.
pub fn compliance_period(a: &ComplianceArgs, env: &Env) -> Result<(i64, i64)> {
    let since = parse_time(&a.since, env.now).context("--since")?;
    let until = parse_time(&a.until, env.now).context("--until")?;
    if until <= since {
        return Err(anyhow!(
            "--until ({}) must be after --since ({})",
            format_micros(until),
            format_micros(since)
        ));
    }
    Ok((since, until))
}

/// Browsers that can print a PDF headless, looked for on `PATH` in this order.
pub const BROWSERS: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// The Chromium that prints PDFs: `--browser`, else `VERDICT_CHROMIUM`, else the first of
/// [`BROWSERS`] on `PATH`; an error saying how to get one when there is none.
pub fn browser(flag: Option<&std::path::Path>, env: &Env) -> Result<PathBuf> {
    if let Some(b) = flag
        .map(PathBuf::from)
        .or_else(|| env.chromium.as_ref().map(PathBuf::from))
    {
        return Ok(b);
    }
    let dirs: Vec<PathBuf> = env
        .path
        .as_deref()
        .map(|p| std::env::split_paths(p).collect())
        .unwrap_or_default();
    for name in BROWSERS {
        for d in &dirs {
            let candidate = d.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(anyhow!(
        "--format pdf needs a headless Chromium and none was found ({} are not on PATH). \
         Install one (Debian/Ubuntu: `apt-get install chromium`; Fedora: `dnf install chromium`; \
         macOS: `brew install --cask chromium`) or name it with --browser or VERDICT_CHROMIUM; \
         or write --format html and print that file from any browser",
        BROWSERS.join(", ")
    ))
}

/// The report a `verdict report` asks for.
pub fn report(a: &ReportArgs, env: &Env) -> Result<ReportSpec> {
    let kind: ReportKind = a
        .kind
        .as_deref()
        .unwrap_or_default()
        .parse()
        .map_err(|e: String| anyhow!(e))?;
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
    fn the_browser_is_the_flag_then_the_env_then_path_else_a_how_to() {
        let dir = tempfile::tempdir().unwrap();
        let on_path = dir.path().join("chromium-browser");
        std::fs::write(&on_path, "").unwrap();
        let env = Env {
            path: Some(dir.path().as_os_str().to_owned()),
            ..Env::default()
        };
        assert_eq!(browser(None, &env).unwrap(), on_path);
        let named = Env {
            chromium: Some("/opt/chrome".into()),
            ..env.clone()
        };
        assert_eq!(browser(None, &named).unwrap(), PathBuf::from("/opt/chrome"));
        let flag = std::path::Path::new("/usr/bin/x");
        assert_eq!(browser(Some(flag), &named).unwrap(), PathBuf::from(flag));
        let e = browser(None, &Env::default()).unwrap_err().to_string();
        assert!(
            e.contains("apt-get install chromium") && e.contains("--browser"),
            "{e}"
        );
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
    fn tune_values() {
        let m = |s: &str| -> Vec<u64> {
            max_values(s)
                .unwrap()
                .into_iter()
                .map(|f| match f {
                    LimitField::Max(n) => n,
                    LimitField::Window(_) => panic!("not max"),
                })
                .collect()
        };
        assert_eq!(
            m("5..60/5"),
            [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60]
        );
        assert_eq!(m("3..5"), [3, 4, 5]);
        assert_eq!(m("1..10/4"), [1, 5, 9]);
        assert_eq!(m("7, 3,9"), [7, 3, 9]);
        for bad in ["5..1", "5..10/0", "a..b", "1.5", "0..5000"] {
            assert!(max_values(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn colour_follows_the_flag_then_no_color_then_the_terminal() {
        let plain = Env::default();
        let no_color = Env {
            no_color: true,
            ..Env::default()
        };
        assert!(color(When::Auto, &plain, true));
        assert!(!color(When::Auto, &plain, false));
        assert!(!color(When::Auto, &no_color, true));
        assert!(color(When::Always, &no_color, false));
        assert!(!color(When::Never, &plain, true));
    }

    #[test]
    fn max_rows_and_width_follow_the_terminal() {
        let tty = print_options(None, Some(120));
        assert_eq!((tty.max_rows, tty.width), (Some(40), Some(120)));
        let piped = print_options(None, None);
        assert_eq!((piped.max_rows, piped.width), (None, None));
        assert_eq!(print_options(Some(0), Some(80)).max_rows, None);
        assert_eq!(print_options(Some(5), None).max_rows, Some(5));
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
