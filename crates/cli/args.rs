//! Command-line syntax (clap derive only). Values are checked for shape here; meaning is given
//! to them in `settings.rs`, which is the only place flags, environment and defaults meet.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// verdict: audit-log and replay analytics for AI-agent tool gateways.
#[derive(Debug, Parser)]
#[command(name = "verdict", version, about, max_term_width = 100)]
pub struct Cli {
    /// The warehouse directory [env: VERDICT_WAREHOUSE] [default: ./verdict-warehouse]
    #[arg(long, short = 'w', global = true, value_name = "DIR")]
    pub warehouse: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ingest JSONL decision logs into the warehouse.
    Ingest(IngestArgs),
}

/// How a summary is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SummaryFormat {
    /// Aligned text for people.
    Table,
    /// One JSON object.
    Json,
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

    /// The format of the input logs.
    #[arg(long, short = 'f', value_name = "NAME", default_value = "policylayer")]
    pub input_format: String,

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
    #[arg(long, value_name = "N", default_value_t = 131_072, value_parser = clap::value_parser!(u64).range(1..))]
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
        let Command::Ingest(a) = cli.command;
        assert_eq!(a.paths, ["a.jsonl", "-"]);
        assert!(a.strict);
        assert_eq!(a.format, SummaryFormat::Json);
        assert_eq!(cli.warehouse, Some(PathBuf::from("wh")));
        assert_eq!(a.input_format, "policylayer");
    }

    #[test]
    fn ranges_are_checked() {
        assert!(Cli::try_parse_from(["verdict", "ingest", "a", "--threads", "0"]).is_err());
        assert!(Cli::try_parse_from(["verdict", "ingest", "a", "--zstd-level", "30"]).is_err());
    }
}
