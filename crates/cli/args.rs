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

    /// Create warehouse files 0640 and directories 0750 (readable by the group) instead of
    /// 0600/0700 [env: VERDICT_GROUP_READABLE=1]
    #[arg(long, global = true)]
    pub group_readable: bool,

    /// Sign each commit's link of the integrity chain with this Ed25519 private key (PKCS#8
    /// PEM, made by `verdict keygen`); read by the commands that write [env: VERDICT_SIGNING_KEY]
    #[arg(long, global = true, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,

    /// Colour on a terminal: auto (unless NO_COLOR is set), always, never.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = When::Auto)]
    pub color: When,

    /// Print only the answer and errors: no notes, no progress, no summaries (ingest, compact,
    /// collect), no replay report (the exit code still tells).
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Log what verdict does on stderr (-v debug, -vv trace).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
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
    /// Draft a least-privilege policy.json from what an identity actually did.
    Suggest(SuggestArgs),
    /// Replay one limit of a policy at several values and show what each would rate-limit.
    Tune(TuneArgs),
    /// List the built-in input formats, or print a mapping template for any other proxy.
    Formats(FormatsArgs),
    /// Run as a collector until stopped: follow growing log files, receive HTTP uploads, commit
    /// every N rows or T seconds.
    Collect(CollectArgs),
    /// Merge a day's small part files into one sorted file, atomically.
    Compact(CompactArgs),
    /// Print a shell completion script: `verdict completions bash > ~/.local/share/bash-completion/completions/verdict`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages (verdict.1 and one per subcommand) into a directory, or verdict.1 to stdout.
    Man {
        /// The directory to write the pages into.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
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
    /// Reread every data file and every link of the integrity chain; exit 2 on any mismatch.
    Verify(VerifyArgs),
    /// Write a new Ed25519 key pair for signing commits (`--signing-key`).
    Keygen(KeygenArgs),
    /// Remove whole days older than a period from every table, as one recorded commit per
    /// table (held days stay); `verdict vacuum` then deletes the files.
    Retention(RetentionArgs),
    /// Place, lift or list legal holds: rows retention and erasure must not touch.
    #[command(subcommand)]
    Hold(HoldCommand),
    /// Delete (or pseudonymise) one identity's rows on request, with a recorded trace.
    Erase(EraseArgs),
    /// Run a node of a query cluster (Apache DataFusion Ballista) for `--cluster`.
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

/// `verdict verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Reread only the files added since this time (RFC 3339, a date, or 24h/7d ago); older
    /// files are checked for presence and size, every link is checked.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Every link must be signed by this Ed25519 public key (SPKI PEM, `verdict keygen`'s `.pub`).
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<PathBuf>,

    /// Verify the tables as of this decisions version or instant (RFC 3339).
    #[arg(long, value_name = "VERSION|TIMESTAMP")]
    pub as_of: Option<String>,

    /// How to print the report.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    pub format: SummaryFormat,
}

/// `verdict keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The private key file to create (mode 0600; refused if it exists); the public key goes
    /// beside it as FILE.pub.
    #[arg(long, value_name = "FILE", default_value = "verdict-signing.key")]
    pub out: PathBuf,
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

/// `verdict retention`.
#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// The period kept: a day leaves once all of it is older than this (400d, 52w).
    #[arg(long, value_name = "DURATION")]
    pub keep: String,

    /// Show what would leave; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Why (recorded in the commits).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,

    /// Who asked (recorded in the commits; default: the user running verdict).
    #[arg(long, value_name = "WHO")]
    pub requested_by: Option<String>,

    /// How to print the summary.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    pub format: SummaryFormat,
}

/// `verdict hold ...`.
#[derive(Debug, Subcommand)]
pub enum HoldCommand {
    /// Place a hold on a time range and/or identities.
    Add(HoldAddArgs),
    /// Lift a hold (a copy is kept with when it was lifted).
    Remove {
        /// The hold's name.
        name: String,
    },
    /// List the holds in place.
    List {
        /// How to print the list.
        #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
        format: SummaryFormat,
    },
}

/// `verdict hold add`.
#[derive(Debug, Args)]
pub struct HoldAddArgs {
    /// The hold's name (letters, digits, `.`, `_`, `-`).
    #[arg(long, value_name = "NAME")]
    pub name: String,

    /// The first instant held (RFC 3339 or a date); default: no lower bound.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// The first instant after the hold (exclusive); default: no upper bound.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// An identity held (matched on identity or identity_id; repeatable); default: everyone.
    #[arg(long, value_name = "ID")]
    pub identity: Vec<String>,

    /// Why (required).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,

    /// Who placed it (default: the user running verdict).
    #[arg(long, value_name = "WHO")]
    pub requested_by: Option<String>,
}

/// `verdict erase`.
#[derive(Debug, Args)]
pub struct EraseArgs {
    /// The identity whose rows go (matched on identity or identity_id).
    #[arg(long, value_name = "ID")]
    pub identity: String,

    /// Only rows at or after this time (RFC 3339, a date, or 7d for 7 days ago).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only rows before this time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Why (required; recorded in the commits).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,

    /// Who asked (recorded in the commits; default: the user running verdict).
    #[arg(long, value_name = "WHO")]
    pub requested_by: Option<String>,

    /// Replace the identity by a keyed pseudonym (pseudonym:<16 hex>) instead of deleting,
    /// keeping every count.
    #[arg(long)]
    pub pseudonymise: bool,

    /// Show what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// How to print the summary.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    pub format: SummaryFormat,
}

/// `verdict cluster`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Run the scheduler: clients send it their plans, it splits them into stages and hands
    /// the tasks to the executors. Runs until SIGTERM or Ctrl-C.
    Scheduler(SchedulerArgs),
    /// Run an executor: it registers with the scheduler and runs the tasks it is given. Runs
    /// until SIGTERM or Ctrl-C.
    Executor(ExecutorArgs),
}

/// `verdict cluster scheduler`.
#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Where to listen for clients and executors.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:50050")]
    pub bind: std::net::SocketAddr,
    /// Serve Prometheus metrics on `/metrics` (jobs submitted, completed, failed, cancelled,
    /// their planning and run times, tasks waiting) and `/healthz` here [default: not served].
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_bind: Option<std::net::SocketAddr>,
    /// Listen on an address off the loopback interface although the cluster has no
    /// authentication nor TLS: only on a private network that holds nothing but the cluster.
    #[arg(long)]
    pub insecure_bind: bool,
}

/// `verdict cluster executor`.
#[derive(Debug, Args)]
pub struct ExecutorArgs {
    /// The scheduler to register with.
    #[arg(long, value_name = "HOST:PORT")]
    pub scheduler: String,
    /// Where to listen for shuffle and result fetches (port 0: a free port; the executor's
    /// task service takes the next port, or another free one).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:0")]
    pub bind: std::net::SocketAddr,
    /// The host name the scheduler and the other executors reach this executor by [default:
    /// the bind address].
    #[arg(long, value_name = "HOST")]
    pub advertise: Option<String>,
    /// Tasks run at once [default: one per core].
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub concurrency: usize,
    /// Directory for shuffle files [default: a temporary directory removed on exit].
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Serve Prometheus metrics on `/metrics` (tasks by outcome, running, their durations, rows
    /// and bytes written), `/healthz` and `/readyz` here [default: not served].
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_bind: Option<std::net::SocketAddr>,
    /// Listen on an address off the loopback interface although the cluster has no
    /// authentication nor TLS (see `verdict cluster scheduler --insecure-bind`).
    #[arg(long)]
    pub insecure_bind: bool,
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

    /// A TOML mapping for the followed files (a proxy verdict has no built-in format for, or
    /// columns of one overridden with `base = "NAME"`); `verdict formats --template` prints one.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,

    /// Take each followed line's record out of a prefix verdict does not know: a regular
    /// expression with a named group `json`, or `logfmt` for `key=value` lines.
    #[arg(long, value_name = "REGEX|logfmt")]
    pub envelope: Option<String>,

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

    /// A file of upload tokens, one `name:token` a line; more come from
    /// VERDICT_COLLECT_TOKENS (`name:token`, comma-separated).
    #[arg(long, value_name = "FILE")]
    pub tokens_file: Option<PathBuf>,

    /// Accept uploads without a token (a trusted host only).
    #[arg(long)]
    pub no_auth: bool,

    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA certificates: require client certificates they signed (mutual TLS).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// Allow listening on a non-loopback address without both TLS and authentication.
    #[arg(long)]
    pub insecure_listen: bool,

    /// Serve /metrics without authentication.
    #[arg(long)]
    pub metrics_public: bool,

    /// When an upload is answered 200: `commit` (once the commit holding it is done) or `spool`
    /// (once it is synced to a local spool file, committed after) [default: commit].
    #[arg(long, value_name = "WHEN", value_parser = ["commit", "spool"])]
    pub ack: Option<String>,

    /// The spool directory of `--ack spool` [default: WAREHOUSE/_verdict/collect/spool].
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,

    /// Quarantine rows dated before this time (RFC 3339 or YYYY-MM-DD) [default: 2000-01-01].
    #[arg(long, value_name = "TIME")]
    pub earliest: Option<String>,

    /// Quarantine rows dated more than this many days ahead of now [default: 36525].
    #[arg(long, value_name = "DAYS")]
    pub max_future_days: Option<u32>,

    /// Redaction: a JSON path whose value is a secret, e.g. `args.proxy.url` (repeatable).
    #[arg(long, value_name = "PATH")]
    pub redact_path: Vec<String>,

    /// Redaction: a regex of key names whose values are secrets (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub redact_key: Vec<String>,

    /// Redaction: a regex of secret values (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub redact_value: Vec<String>,

    /// Turn the built-in redaction rules off (user rules still apply).
    #[arg(long)]
    pub no_builtin_redaction: bool,

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
    /// Compare two policies tool by tool: access, require and deny_if rules, limits; with
    /// --warehouse (or VERDICT_WAREHOUSE), how many recorded calls each change touches.
    Diff(PolicyDiffArgs),
}

/// `verdict policy diff`.
#[derive(Debug, Args)]
pub struct PolicyDiffArgs {
    /// The policy before the edit.
    #[arg(value_name = "OLD")]
    pub old: PathBuf,

    /// The policy after the edit.
    #[arg(value_name = "NEW")]
    pub new: PathBuf,

    /// Count history from this time, inclusive (with a warehouse).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Count history until this time, exclusive.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Exit 1 when this holds: new-access (any tool gets access it did not have), destructive-access
    /// (a destructive tool becomes allowed without approval). Repeatable.
    #[arg(long = "fail-on", value_name = "GATE")]
    pub fail_on: Vec<String>,

    /// How to print the diff.
    #[arg(long, value_enum, default_value_t = DiffFormat::Table)]
    pub format: DiffFormat,

    /// A tool catalogue (JSON or TOML) that classifies destructive tools.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
}

/// How `policy diff` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// Aligned text for people.
    Table,
    /// One JSON object.
    Json,
    /// A Markdown table, for a pull-request comment.
    Markdown,
}

/// `verdict suggest`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("who").required(true).args(["identity", "all"]))]
pub struct SuggestArgs {
    /// The identity (label or id) to draft for; repeatable.
    #[arg(long, value_name = "NAME")]
    pub identity: Vec<String>,

    /// Draft one policy per identity into --out DIR, with the grants.toml that maps them.
    #[arg(long, requires = "out")]
    pub all: bool,

    /// Draft from this time, inclusive.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Draft until this time, exclusive.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Hold the period's last part out (e.g. 7d): draft from the rest, replay the draft on it and
    /// print what would have broken.
    #[arg(long, value_name = "DURATION")]
    pub holdout: Option<String>,

    /// Limits are the observed peak per window times this, rounded up.
    #[arg(long, value_name = "FACTOR", default_value_t = 2.0)]
    pub headroom: f64,

    /// List destructive tools the identity used without `approval: true`.
    #[arg(long)]
    pub allow_destructive: bool,

    /// Write the policy to this file (with --all: the directory for the policies and grants.toml).
    #[arg(long, short = 'o', value_name = "PATH")]
    pub out: Option<PathBuf>,

    /// How to print the report.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    pub format: SummaryFormat,

    /// A tool catalogue (JSON or TOML) that classifies destructive tools.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
}

/// `verdict tune`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("values").required(true).args(["max", "window"]))]
pub struct TuneArgs {
    /// The policy.json holding the limit.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,

    /// The limit: /tools/<tool>/limits/<counter or index>, or /all_tools/limits/<counter or index>.
    #[arg(long, value_name = "POINTER")]
    pub limit: String,

    /// Values of `max` to try: a range FROM..TO[/STEP] (5..60/5) or a list (5,10,20).
    #[arg(long, value_name = "VALUES")]
    pub max: Option<String>,

    /// Windows to try, a list (minute,hour); every limit of the counter gets the window.
    #[arg(long, value_name = "WINDOWS", conflicts_with = "max")]
    pub window: Option<String>,

    /// Pick the first value meeting this: rate_limited<0.1%, limited<=5, allow->rate_limited<10 ...
    #[arg(long, value_name = "TARGET")]
    pub target: Option<String>,

    /// From this time, inclusive (counters start empty there).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Until this time, exclusive.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// How to print the report: table, json, or html (a self-contained page with a chart of
    /// the calls each value rate-limits).
    #[arg(long, value_enum, default_value_t = TuneFormat::Table)]
    pub format: TuneFormat,

    /// Write the report to this file (atomically) instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// How a tuning report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TuneFormat {
    /// Aligned text for people.
    Table,
    /// One JSON object.
    Json,
    /// A self-contained HTML page with a chart of the calls limited per value.
    Html,
}

/// `verdict replay`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("candidate").required(true).args(["policy", "policies"]))]
pub struct ReplayArgs {
    /// The candidate policy.json, for every grant.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// A policy per grant: a grants.toml mapping identity ids or labels to policy files (a
    /// `default` entry optional); a grant without one is denied every call, rule `(no policy)`.
    #[arg(long, value_name = "GRANTS.toml", conflicts_with = "policy")]
    pub policies: Option<PathBuf>,

    /// Compare with this policy simulated the same way, instead of the recorded decisions.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Compare with a policy per grant (a grants.toml) simulated the same way.
    #[arg(long, value_name = "GRANTS.toml", conflicts_with = "baseline")]
    pub baseline_policies: Option<PathBuf>,

    /// Also run the calls of this period before --since, to warm the counters up (e.g. 1h).
    #[arg(long, value_name = "DURATION", requires = "since")]
    pub warmup: Option<String>,

    /// Which calls are reported; the counters still see all traffic, so no outcome changes.
    #[command(flatten)]
    pub filter: TrafficFilter,

    /// Example events per transition.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub samples: usize,

    /// How to print the report: table, json, or html (a what-if report with charts).
    #[arg(long, value_enum, default_value_t = ReplayFormat::Table)]
    pub format: ReplayFormat,

    /// Write the report to this file instead of stdout (for --format html).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

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

/// How a replay report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReplayFormat {
    /// Aligned text for people.
    Table,
    /// One JSON object.
    Json,
    /// A self-contained HTML what-if report with charts.
    Html,
    /// GitHub-flavoured markdown for a pull-request comment or a step summary.
    Markdown,
    /// JUnit XML: one test case per gate, for CI systems that show test reports.
    Junit,
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

    /// Table format: show at most N rows and say how many were left out; 0 shows every row
    /// [default: 40 on a terminal, every row otherwise].
    #[arg(long, value_name = "N")]
    pub max_rows: Option<usize>,
    /// Read the warehouse as it was at this decisions version or instant (RFC 3339).
    #[arg(long, value_name = "VERSION|TIMESTAMP")]
    pub as_of: Option<String>,
    /// Run the query on this cluster (`verdict cluster scheduler`), with the answers of a local
    /// run [env: VERDICT_CLUSTER].
    #[arg(long, value_name = "df://HOST:PORT")]
    pub cluster: Option<String>,
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
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ReportArgs {
    /// A document instead of a table: `verdict report compliance ...`.
    #[command(subcommand)]
    pub document: Option<ReportDocument>,

    /// volume, denials, rate-limits, identities, tools or destructive (or `compliance`).
    #[arg(value_name = "KIND", required = true)]
    pub kind: Option<String>,

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

/// Reports written as documents.
#[derive(Debug, Subcommand)]
pub enum ReportDocument {
    /// A self-contained HTML (or PDF) compliance report of a period: completeness, calls,
    /// denials, rate limits, destructive calls, new identities and tools, policy versions.
    Compliance(ComplianceArgs),
}

/// `verdict report compliance`.
#[derive(Debug, Args)]
pub struct ComplianceArgs {
    /// Start of the period, inclusive: RFC 3339, a date (midnight UTC), or relative (30d).
    #[arg(long, value_name = "TIME")]
    pub since: String,

    /// End of the period, exclusive.
    #[arg(long, value_name = "TIME")]
    pub until: String,

    /// The file to write.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,

    /// html (self-contained) or pdf (printed by a headless Chromium).
    #[arg(long, value_enum, default_value_t = DocumentFormat::Html)]
    pub format: DocumentFormat,

    /// The live policy.json: adds the share of decisions it reproduces, per policy version.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// A tool catalogue (JSON or TOML) classifying tools as destructive, write, read or unknown.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,

    /// The report's title.
    #[arg(long, value_name = "TEXT", default_value = "Compliance report")]
    pub title: String,

    /// A generation time to print in the header (none by default: the same warehouse gives
    /// the same bytes).
    #[arg(long, value_name = "TEXT")]
    pub generated_at: Option<String>,

    /// Read the warehouse as it was at this decisions version or instant (RFC 3339): the same
    /// `--as-of` gives the same document.
    #[arg(long, value_name = "VERSION|TIMESTAMP")]
    pub as_of: Option<String>,

    /// The Chromium binary for --format pdf [env: VERDICT_CHROMIUM] [default: chromium,
    /// chromium-browser, google-chrome or google-chrome-stable on PATH].
    #[arg(long, value_name = "FILE")]
    pub browser: Option<PathBuf>,
}

/// How a document is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DocumentFormat {
    /// One self-contained HTML file.
    Html,
    /// A PDF printed from that HTML by a headless Chromium.
    Pdf,
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

/// When to draw a progress bar, or to colour.
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

    /// Take each line's record out of a prefix verdict does not know: a regular expression
    /// with a named group `json` (`'^\S+ \S+ (?P<json>\{.*\})$'`), or `logfmt` for
    /// `key=value` lines.
    #[arg(long, value_name = "REGEX|logfmt")]
    pub envelope: Option<String>,

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

    /// Quarantine rows dated before this time (RFC 3339 or YYYY-MM-DD) [default: 2000-01-01].
    #[arg(long, value_name = "TIME")]
    pub earliest: Option<String>,

    /// Quarantine rows dated more than this many days ahead of now.
    #[arg(long, value_name = "DAYS", default_value_t = 36_525)]
    pub max_future_days: u32,

    /// Lines this run may quarantine at most; past it the run stops and commits nothing.
    #[arg(long, value_name = "N")]
    pub max_quarantine_records: Option<u64>,

    /// Bytes of quarantined text this run may write at most, likewise.
    #[arg(long, value_name = "BYTES")]
    pub max_quarantine_bytes: Option<u64>,

    /// Redaction: a JSON path whose value is a secret, e.g. `args.proxy.url`, `raw.**.note`
    /// (repeatable; `*` one key, `**` any run of keys).
    #[arg(long, value_name = "PATH")]
    pub redact_path: Vec<String>,

    /// Redaction: a regex of key names whose values are secrets (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub redact_key: Vec<String>,

    /// Redaction: a regex of secret values (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub redact_value: Vec<String>,

    /// Turn the built-in redaction rules off (user rules still apply).
    #[arg(long)]
    pub no_builtin_redaction: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The verdict command lines of a deployment example: every flow sequence after `command:`
    /// or `args:` (JSON-compatible, possibly over several lines).
    fn example_commands(text: &str) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(at) = ["command: [", "args: ["]
            .iter()
            .filter_map(|k| rest.find(k).map(|i| i + k.len() - 1))
            .min()
        {
            let tail = &rest[at..];
            let end = tail.find(']').expect("a closed sequence") + 1;
            let one_line: String = tail[..end]
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ");
            let args: Vec<String> =
                serde_json::from_str(&one_line).unwrap_or_else(|e| panic!("{one_line}: {e}"));
            out.push(args);
            rest = &tail[end..];
        }
        out
    }

    #[test]
    fn the_cluster_examples_run_commands_this_binary_accepts() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/cluster");
        let mut seen = Vec::new();
        for (file, want) in [("docker-compose.yml", 3), ("k8s.yaml", 3)] {
            let text = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
            let commands = example_commands(&text);
            assert_eq!(commands.len(), want, "{file}: {commands:?}");
            for args in commands {
                let argv = std::iter::once("verdict".to_string()).chain(args.iter().cloned());
                if let Err(e) = Cli::try_parse_from(argv) {
                    panic!("{file}: `{}` is refused: {e}", args.join(" "));
                }
                seen.push(args.iter().take(2).cloned().collect::<Vec<_>>().join(" "));
            }
        }
        // Both node kinds are in each example, with their metrics port.
        assert_eq!(
            seen.iter().filter(|s| *s == "cluster scheduler").count(),
            2,
            "{seen:?}"
        );
        assert_eq!(
            seen.iter().filter(|s| *s == "cluster executor").count(),
            3,
            "{seen:?}"
        );
        assert!(
            example_commands(&std::fs::read_to_string(format!("{dir}/k8s.yaml")).unwrap())
                .iter()
                .filter(|a| a[0] == "cluster")
                .all(|a| a.iter().any(|x| x == "--metrics-bind"))
        );
    }

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
        assert_eq!((a.samples, a.format), (2, ReplayFormat::Json));
        assert!(
            Cli::try_parse_from(["verdict", "replay"]).is_err(),
            "--policy or --policies is required"
        );
        assert!(
            Cli::try_parse_from(["verdict", "replay", "--policy", "a", "--policies", "g"]).is_err()
        );
        let cli = Cli::try_parse_from([
            "verdict",
            "replay",
            "--policies",
            "g.toml",
            "--baseline-policies",
            "b.toml",
        ])
        .unwrap();
        let Command::Replay(a) = cli.command else {
            panic!("not replay")
        };
        assert_eq!(a.policies, Some(PathBuf::from("g.toml")));
        assert_eq!(a.baseline_policies, Some(PathBuf::from("b.toml")));
        assert!(Cli::try_parse_from([
            "verdict",
            "replay",
            "--policy",
            "a",
            "--baseline",
            "b",
            "--baseline-policies",
            "c"
        ])
        .is_err());
        assert!(
            Cli::try_parse_from(["verdict", "replay", "--policy", "p", "--warmup", "1h"]).is_err(),
            "--warmup needs --since"
        );
    }

    #[test]
    fn intelligence_flags_parse() {
        let cli = Cli::try_parse_from([
            "verdict",
            "suggest",
            "--identity",
            "bob",
            "--holdout",
            "7d",
            "--headroom",
            "1.5",
        ])
        .unwrap();
        let Command::Suggest(a) = cli.command else {
            panic!("not suggest")
        };
        assert_eq!(
            (a.identity, a.headroom, a.holdout.as_deref()),
            (vec!["bob".to_string()], 1.5, Some("7d"))
        );
        assert!(
            Cli::try_parse_from(["verdict", "suggest"]).is_err(),
            "--identity or --all"
        );
        assert!(
            Cli::try_parse_from(["verdict", "suggest", "--all"]).is_err(),
            "--all needs --out"
        );
        let cli = Cli::try_parse_from([
            "verdict",
            "policy",
            "diff",
            "a.json",
            "b.json",
            "--fail-on",
            "new-access",
            "--format",
            "markdown",
        ])
        .unwrap();
        let Command::Policy(PolicyCommand::Diff(d)) = cli.command else {
            panic!("not policy diff")
        };
        assert_eq!(
            (d.fail_on, d.format),
            (vec!["new-access".to_string()], DiffFormat::Markdown)
        );
        let cli = Cli::try_parse_from([
            "verdict",
            "tune",
            "--policy",
            "p.json",
            "--limit",
            "/all_tools/limits/0",
            "--max",
            "5..60/5",
        ])
        .unwrap();
        let Command::Tune(t) = cli.command else {
            panic!("not tune")
        };
        assert_eq!(t.max.as_deref(), Some("5..60/5"));
        assert!(
            Cli::try_parse_from(["verdict", "tune", "--policy", "p", "--limit", "/x"]).is_err(),
            "--max or --window"
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
    fn global_flags_parse_anywhere() {
        let cli =
            Cli::try_parse_from(["verdict", "report", "volume", "-q", "--color", "never"]).unwrap();
        assert!(cli.quiet);
        assert_eq!((cli.color, cli.verbose), (When::Never, 0));
        let cli = Cli::try_parse_from(["verdict", "-vv", "sql", "SELECT 1"]).unwrap();
        assert_eq!((cli.color, cli.verbose), (When::Auto, 2));
        assert!(Cli::try_parse_from(["verdict", "-q", "-v", "sql"]).is_err());
        let cli = Cli::try_parse_from(["verdict", "completions", "zsh"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Completions {
                shell: clap_complete::Shell::Zsh
            }
        ));
        assert!(Cli::try_parse_from(["verdict", "completions", "tcsh"]).is_err());
    }

    #[test]
    fn report_compliance_is_a_document_and_kinds_still_parse() {
        let cli = Cli::try_parse_from([
            "verdict",
            "report",
            "compliance",
            "--since",
            "2026-11-01",
            "--until",
            "2026-12-01",
            "-o",
            "r.pdf",
            "--format",
            "pdf",
            "--policy",
            "live.json",
        ])
        .unwrap();
        let Command::Report(a) = cli.command else {
            panic!("report")
        };
        let Some(ReportDocument::Compliance(c)) = a.document else {
            panic!("compliance")
        };
        assert_eq!(
            (c.format, c.output.to_str()),
            (DocumentFormat::Pdf, Some("r.pdf"))
        );
        assert_eq!(c.policy.unwrap().to_str(), Some("live.json"));
        assert!(c.generated_at.is_none());
        let cli = Cli::try_parse_from(["verdict", "report", "volume", "--by", "identity"]).unwrap();
        let Command::Report(a) = cli.command else {
            panic!("report")
        };
        assert_eq!(
            (a.kind.as_deref(), a.document.is_none()),
            (Some("volume"), true)
        );
        // A kind is required, and compliance needs its period and output.
        assert!(Cli::try_parse_from(["verdict", "report"]).is_err());
        assert!(Cli::try_parse_from(["verdict", "report", "compliance", "-o", "x.html"]).is_err());
        let cli = Cli::try_parse_from([
            "verdict", "replay", "--policy", "p.json", "--format", "html", "-o", "w.html",
        ])
        .unwrap();
        let Command::Replay(r) = cli.command else {
            panic!("replay")
        };
        assert_eq!(r.format, ReplayFormat::Html);
    }

    #[test]
    fn ranges_are_checked() {
        assert!(Cli::try_parse_from(["verdict", "ingest", "a", "--threads", "0"]).is_err());
        assert!(Cli::try_parse_from(["verdict", "ingest", "a", "--zstd-level", "30"]).is_err());
    }

    #[test]
    fn verify_keygen_and_the_signing_key() {
        let cli = Cli::try_parse_from([
            "verdict",
            "verify",
            "--public-key",
            "k.pub",
            "--since",
            "7d",
            "--as-of",
            "3",
            "--format",
            "json",
        ])
        .unwrap();
        let Command::Verify(a) = cli.command else {
            panic!("not verify")
        };
        assert_eq!(a.public_key, Some(PathBuf::from("k.pub")));
        assert_eq!(a.since.as_deref(), Some("7d"));
        assert_eq!(a.as_of.as_deref(), Some("3"));
        assert_eq!(a.format, SummaryFormat::Json);
        let cli = Cli::try_parse_from(["verdict", "keygen"]).unwrap();
        let Command::Keygen(k) = cli.command else {
            panic!("not keygen")
        };
        assert_eq!(k.out, PathBuf::from("verdict-signing.key"));
        // Global: before or after the subcommand.
        let cli = Cli::try_parse_from(["verdict", "ingest", "x.jsonl", "--signing-key", "s.key"])
            .unwrap();
        assert_eq!(cli.signing_key, Some(PathBuf::from("s.key")));
        let cli = Cli::try_parse_from(["verdict", "--signing-key", "s.key", "compact"]).unwrap();
        assert_eq!(cli.signing_key, Some(PathBuf::from("s.key")));
        let cli = Cli::try_parse_from([
            "verdict",
            "report",
            "compliance",
            "--since",
            "2026-11-01",
            "--until",
            "2026-11-02",
            "-o",
            "r.html",
            "--as-of",
            "2026-11-05T00:00:00Z",
        ])
        .unwrap();
        let Command::Report(r) = cli.command else {
            panic!("not report")
        };
        let Some(ReportDocument::Compliance(c)) = r.document else {
            panic!("not compliance")
        };
        assert_eq!(c.as_of.as_deref(), Some("2026-11-05T00:00:00Z"));
    }
}
