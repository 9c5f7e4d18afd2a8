//! Command-line syntax (clap derive only). Values are checked for shape here; meaning is given
//! to them in `settings.rs`, which is the only place flags, environment and defaults meet.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// verdict: audit-log and replay analytics for AI-agent tool gateways.
#[derive(Debug, Parser)]
#[command(name = "verdict", version, about, max_term_width = 100)]
pub struct Cli {
    /// The warehouse: a directory, or a URL (s3://bucket/prefix, gs://, az://, abfss://,
    /// file://) [env: VERDICT_WAREHOUSE] [default: ./verdict-warehouse]
    #[arg(long, short = 'w', global = true, value_name = "DIR|URL")]
    pub warehouse: Option<String>,

    /// An object store setting, e.g. aws_endpoint=http://127.0.0.1:9000 (repeatable; the
    /// AWS_*, GOOGLE_* and AZURE_* environment variables are read too, flags win).
    #[arg(long = "storage-option", global = true, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub storage_options: Vec<(String, String)>,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ingest JSONL decision logs into the warehouse.
    Ingest(IngestArgs),
    /// Answer a standard question: volume, denials, rate-limits, identities, tools, destructive.
    Report(ReportArgs),
    /// Run SQL over the `decisions` and `tools` tables (reads the query from stdin without one).
    Sql(SqlArgs),
    /// List one identity's calls in time order, around an instant: the incident view.
    Timeline(TimelineArgs),
    /// Re-evaluate recorded traffic against a candidate policy and show what would change.
    Replay(ReplayArgs),
    /// Work with policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// List the built-in input formats, or print a mapping template for any other proxy.
    Formats(FormatsArgs),
    /// Run as a collector until stopped: follow growing log files, receive HTTP uploads, commit
    /// every N rows or T seconds.
    Collect(CollectArgs),
    /// Merge a day's small part files into one sorted file, atomically.
    Compact(CompactArgs),
    /// List the commits of the warehouse: version, time, operation, rows added, inputs.
    History(HistoryArgs),
    /// Read every file of the warehouse and report each damaged one with how to recover.
    Doctor(DoctorArgs),
    /// Delete files no version younger than the retention period needs.
    Vacuum(VacuumArgs),
    /// Make an earlier version of the decisions the current one (a new, recorded commit).
    Restore(RestoreArgs),
    /// Convert a warehouse of the old layout (manifest) into Delta tables, in place.
    Migrate(MigrateArgs),
}

/// `verdict history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Commits to list, newest first.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 20)]
    pub limit: usize,

    /// How to print the list.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    pub format: SummaryFormat,
}

/// `verdict doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Remove every damaged file from its table with a recorded commit (its rows are lost).
    #[arg(long)]
    pub remove_damaged: bool,

    /// How to print the report.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    pub format: SummaryFormat,
}

/// `verdict vacuum`.
#[derive(Debug, Args)]
pub struct VacuumArgs {
    /// Keep what versions younger than this need (time travel reaches back this far).
    #[arg(long, value_name = "DURATION", default_value = "7d")]
    pub retention: String,

    /// How to print the summary.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    pub format: SummaryFormat,
}

/// `verdict restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The decisions version to go back to (see `verdict history`).
    #[arg(long, value_name = "VERSION")]
    pub to: i64,
}

/// `verdict migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

/// `verdict collect`.
#[derive(Debug, Args)]
pub struct CollectArgs {
    /// A collect.toml; the flags below override its values.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Files or globs to follow (repeatable); quote globs so that new matches are picked up.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub follow: Vec<String>,

    /// The format of the followed files: `auto` (detected per file) or a name from `verdict formats`.
    #[arg(long, short = 'f', value_name = "NAME")]
    pub input_format: Option<String>,

    /// Receive HTTP uploads on this address (IP:PORT, e.g. 127.0.0.1:8181).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,

    /// Commit once this many rows wait [default: 50000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub commit_rows: Option<u64>,

    /// Commit at the latest this long after the first waiting row, e.g. 5s, 500ms [default: 5s].
    #[arg(long, value_name = "DURATION")]
    pub commit_interval: Option<String>,

    /// HTTP records accepted but not committed at most; past it requests get 429 [default: 200000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_pending: Option<u64>,

    /// How often followed paths are checked, e.g. 250ms [default: 250ms].
    #[arg(long, value_name = "DURATION")]
    pub poll_interval: Option<String>,

    /// The checkpoint directory [default: WAREHOUSE/_verdict/collect/checkpoints].
    #[arg(long, value_name = "DIR")]
    pub checkpoints: Option<PathBuf>,

    /// Delete every checkpoint first: files are read from their start again (rows already in
    /// the warehouse are dropped as duplicates).
    #[arg(long)]
    pub reset_checkpoints: bool,

    /// How to print the summary at exit.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    pub format: SummaryFormat,
}

/// `verdict compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Only this UTC day (YYYY-MM-DD); every day by default.
    #[arg(long, value_name = "DAY", value_parser = parse_day)]
    pub day: Option<String>,

    /// How to print the summary.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    pub format: SummaryFormat,
}

fn parse_day(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if shape {
        Ok(s.to_string())
    } else {
        Err(format!("`{s}` is not a day (YYYY-MM-DD)"))
    }
}

/// `verdict formats`.
#[derive(Debug, Args)]
pub struct FormatsArgs {
    /// Print a commented mapping template (TOML) for `verdict ingest --mapping`.
    #[arg(long)]
    pub template: bool,

    /// How to print the list.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    pub format: SummaryFormat,
}

/// `verdict policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy.json: every error names its JSON path (and line/column for syntax errors).
    Check {
        /// The policy file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// `verdict replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The candidate policy.json.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,

    /// Compare with this policy simulated the same way, instead of the recorded decisions.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Also run the calls of this period before --since, to warm the counters up (e.g. 1h).
    #[arg(long, value_name = "DURATION", requires = "since")]
    pub warmup: Option<String>,

    /// Which calls are reported; the counters still see all traffic, so no outcome changes.
    #[command(flatten)]
    pub filter: TrafficFilter,

    /// Example events per transition.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub samples: usize,

    /// How to print the report.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    pub format: SummaryFormat,

    /// Write every changed or indeterminate event to this Parquet file.
    #[arg(long, value_name = "FILE.parquet")]
    pub changes: Option<PathBuf>,

    /// Exit 1 when this holds: deny->allow (any transition), destructive-allowed, changed>N%, any-change.
    #[arg(long = "fail-on", value_name = "GATE")]
    pub fail_on: Vec<String>,

    /// A tool catalogue (JSON or TOML) that classifies destructive tools.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,

    /// Read the warehouse as it was at this decisions version or instant (RFC 3339).
    #[arg(long, value_name = "VERSION|TIMESTAMP")]
    pub as_of: Option<String>,
}

/// How a summary is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SummaryFormat {
    /// Aligned text for people.
    Table,
    /// One JSON object.
    Json,
}

/// How query results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueryFormat {
    /// A table on a terminal, CSV when piped.
    Auto,
    /// An aligned table with thousands separators.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON array of row objects.
    Json,
    /// One JSON object a line.
    Ndjson,
    /// A Parquet file (needs --output).
    Parquet,
}

/// Where and how query results go.
#[derive(Debug, Args)]
pub struct QueryOutputArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = QueryFormat::Auto)]
    pub format: QueryFormat,

    /// Write to this file instead of stdout (required for parquet).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// A tool catalogue (JSON or TOML) classifying tools as destructive, write, read or unknown.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,

    /// Read the warehouse as it was at this decisions version or instant (RFC 3339).
    #[arg(long, value_name = "VERSION|TIMESTAMP")]
    pub as_of: Option<String>,
}

/// The time range and the identity, tool and server filters that `report` and `replay` share.
#[derive(Debug, Args)]
pub struct TrafficFilter {
    /// From this time, inclusive: RFC 3339, a date, or relative to now (24h, 7d).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Until this time, exclusive.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Only these identities (repeatable).
    #[arg(long, value_name = "NAME")]
    pub identity: Vec<String>,

    /// Only these tools (repeatable).
    #[arg(long, value_name = "NAME")]
    pub tool: Vec<String>,

    /// Only these servers (repeatable).
    #[arg(long, value_name = "NAME")]
    pub server: Vec<String>,
}

/// `verdict report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// volume, denials, rate-limits, identities, tools or destructive.
    #[arg(value_name = "KIND")]
    pub kind: String,

    /// Group by these (comma-separated): identity,tool,server,session,decision,rule,day,hour,minute.
    #[arg(long, value_name = "COLS", value_delimiter = ',')]
    pub by: Vec<String>,

    #[command(flatten)]
    pub filter: TrafficFilter,

    /// Only these sessions (repeatable).
    #[arg(long, value_name = "ID")]
    pub session: Vec<String>,

    /// Only these decisions (repeatable): allow, deny, rate_limited, approval_required, error, unknown.
    #[arg(long, value_name = "DECISION")]
    pub decision: Vec<String>,

    /// Only the first N rows.
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,

    /// Read every decision even when the ingest-time rollup could answer (same result, slower).
    #[arg(long)]
    pub no_rollup: bool,

    #[command(flatten)]
    pub out: QueryOutputArgs,
}

/// `verdict sql`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The query; read from stdin when absent.
    #[arg(value_name = "SQL")]
    pub query: Option<String>,

    #[command(flatten)]
    pub out: QueryOutputArgs,
}

/// `verdict timeline`.
#[derive(Debug, Args)]
pub struct TimelineArgs {
    /// The identity (grant label or id).
    #[arg(long, value_name = "NAME")]
    pub identity: String,

    /// Only this session.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,

    /// Centre the view on this instant (RFC 3339, or relative to now).
    #[arg(long, value_name = "TIME")]
    pub around: Option<String>,

    /// How far before and after --around to look.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "30m",
        requires = "around"
    )]
    pub window: String,

    /// At most this many calls.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    #[command(flatten)]
    pub out: QueryOutputArgs,
}

/// When to draw a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum When {
    /// Only when stderr is a terminal.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// `verdict ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files, directories (every *.jsonl, *.jsonl.gz, *.jsonl.zst under them), globs, or - for stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,

    /// The format of the input logs: `auto` detects it per file from its first records; see
    /// `verdict formats` for the names.
    #[arg(long, short = 'f', value_name = "NAME", default_value = "auto")]
    pub input_format: String,

    /// A TOML mapping for a proxy verdict has no built-in format for (or to override columns
    /// of one, with `base = "NAME"`); `verdict formats --template` prints one.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,

    /// Print how the first records of each input map onto the table; write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Records per input shown by --dry-run.
    #[arg(long, value_name = "N", default_value_t = 5, requires = "dry_run")]
    pub show: usize,

    /// How to print the summary.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    pub format: SummaryFormat,

    /// Fail (exit 2) on the first bad line and commit nothing.
    #[arg(long)]
    pub strict: bool,

    /// Do not keep the original record in the `raw` column.
    #[arg(long)]
    pub no_raw: bool,

    /// Decoder threads [default: the number of cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,

    /// Longest accepted line in bytes; longer lines are quarantined.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(64..))]
    pub max_line_bytes: u64,

    /// Commit every N accepted rows instead of once at the end (large inputs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub commit_rows: Option<u64>,

    /// Bytes of input handed to a decoder thread at a time.
    #[arg(long, value_name = "BYTES", default_value_t = 2 << 20, value_parser = clap::value_parser!(u64).range(1024..))]
    pub chunk_bytes: u64,

    /// Rows per Parquet row group.
    #[arg(long, value_name = "N", default_value_t = 65_536, value_parser = clap::value_parser!(u64).range(1..))]
    pub row_group_rows: u64,

    /// zstd compression level of the Parquet files.
    #[arg(long, value_name = "LEVEL", default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=22))]
    pub zstd_level: i32,

    /// Draw a progress bar on stderr.
    #[arg(long, value_enum, default_value_t = When::Auto)]
    pub progress: When,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_needs_a_path() {
        assert!(Cli::try_parse_from(["verdict", "ingest"]).is_err());
    }

    #[test]
    fn ingest_flags_parse() {
        let cli = Cli::try_parse_from([
            "verdict", "ingest", "a.jsonl", "-", "--strict", "--format", "json", "-w", "wh",
        ])
        .unwrap();
        let Command::Ingest(a) = cli.command else {
            panic!("not ingest")
        };
        assert_eq!(a.paths, ["a.jsonl", "-"]);
        assert!(a.strict);
        assert_eq!(a.format, SummaryFormat::Json);
        assert_eq!(cli.warehouse.as_deref(), Some("wh"));
        assert_eq!(a.input_format, "auto");
        assert!(!a.dry_run);
        let cli = Cli::try_parse_from([
            "verdict",
            "ingest",
            "x",
            "-f",
            "opa",
            "--mapping",
            "m.toml",
            "--dry-run",
            "--show",
            "2",
        ])
        .unwrap();
        let Command::Ingest(a) = cli.command else {
            panic!("not ingest")
        };
        assert_eq!(
            (a.input_format.as_str(), a.show, a.dry_run),
            ("opa", 2, true)
        );
        assert_eq!(a.mapping, Some(PathBuf::from("m.toml")));
        assert!(Cli::try_parse_from(["verdict", "ingest", "x", "--show", "2"]).is_err());
    }

    #[test]
    fn replay_flags_parse() {
        let cli = Cli::try_parse_from([
            "verdict",
            "replay",
            "--policy",
            "c.json",
            "--fail-on",
            "deny->allow",
            "--fail-on",
            "changed>5%",
            "--identity",
            "alice",
            "--samples",
            "2",
            "--format",
            "json",
        ])
        .unwrap();
        let Command::Replay(a) = cli.command else {
            panic!("not replay")
        };
        assert_eq!(a.fail_on, ["deny->allow", "changed>5%"]);
        assert_eq!((a.samples, a.format), (2, SummaryFormat::Json));
        assert!(
            Cli::try_parse_from(["verdict", "replay"]).is_err(),
            "--policy is required"
        );
        assert!(
            Cli::try_parse_from(["verdict", "replay", "--policy", "p", "--warmup", "1h"]).is_err(),
            "--warmup needs --since"
        );
    }

    #[test]
    fn collect_and_compact_flags_parse() {
        let cli = Cli::try_parse_from([
            "verdict",
            "collect",
            "--follow",
            "a.log",
            "logs/*.jsonl",
            "--listen",
            "127.0.0.1:0",
            "--commit-interval",
            "1s",
            "--reset-checkpoints",
        ])
        .unwrap();
        let Command::Collect(a) = cli.command else {
            panic!("not collect")
        };
        assert_eq!(a.follow, ["a.log", "logs/*.jsonl"]);
        assert_eq!(a.listen.as_deref(), Some("127.0.0.1:0"));
        assert_eq!(a.commit_interval.as_deref(), Some("1s"));
        assert!(a.reset_checkpoints);
        let cli = Cli::try_parse_from(["verdict", "compact", "--day", "2026-11-02"]).unwrap();
        let Command::Compact(a) = cli.command else {
            panic!("not compact")
        };
        assert_eq!(a.day.as_deref(), Some("2026-11-02"));
        assert!(Cli::try_parse_from(["verdict", "compact", "--day", "2026-1-2"]).is_err());
        assert!(Cli::try_parse_from(["verdict", "collect", "--commit-rows", "0"]).is_err());
    }

    #[test]
    fn ranges_are_checked() {
        assert!(Cli::try_parse_from(["verdict", "ingest", "a", "--threads", "0"]).is_err());
        assert!(Cli::try_parse_from(["verdict", "ingest", "a", "--zstd-level", "30"]).is_err());
    }
}
