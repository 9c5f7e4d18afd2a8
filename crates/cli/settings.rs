//! Resolves flags, environment and defaults into the typed options the libraries take.
//! The only place that reads the environment; nothing here does work.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use verdict_ingest::{CommitStep, IngestOptions};
use verdict_schema::Format;

use crate::args::{Cli, IngestArgs, When};

/// Where the warehouse is when neither the flag nor the environment says.
pub const DEFAULT_WAREHOUSE: &str = "verdict-warehouse";

/// The environment variables verdict reads.
#[derive(Debug, Default, Clone)]
pub struct Env {
    /// `VERDICT_WAREHOUSE`.
    pub warehouse: Option<String>,
    /// `VERDICT_ABORT_AT`: a commit step at which to abort (crash tests only).
    pub abort_at: Option<String>,
}

impl Env {
    /// Reads the process environment.
    pub fn from_process() -> Self {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Self {
            warehouse: get("VERDICT_WAREHOUSE"),
            abort_at: get("VERDICT_ABORT_AT"),
        }
    }
}

/// The warehouse root: `--warehouse`, else `VERDICT_WAREHOUSE`, else `./verdict-warehouse`.
pub fn warehouse(cli: &Cli, env: &Env) -> PathBuf {
    cli.warehouse
        .clone()
        .or_else(|| env.warehouse.as_ref().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_WAREHOUSE))
}

/// Options of `verdict ingest`, plus whether to draw a progress bar.
pub fn ingest(
    cli: &Cli,
    args: &IngestArgs,
    env: &Env,
    stderr_is_tty: bool,
) -> Result<(IngestOptions, bool)> {
    let mut o = IngestOptions::new(warehouse(cli, env), args.paths.clone());
    o.format = args
        .input_format
        .parse::<Format>()
        .map_err(|e| anyhow!("--input-format: {e}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).unwrap()
    }

    #[test]
    fn warehouse_flag_beats_env_beats_default() {
        let env = Env {
            warehouse: Some("from-env".into()),
            abort_at: None,
        };
        assert_eq!(
            warehouse(&cli(&["verdict", "-w", "flag", "ingest", "x"]), &env),
            PathBuf::from("flag")
        );
        assert_eq!(
            warehouse(&cli(&["verdict", "ingest", "x"]), &env),
            PathBuf::from("from-env")
        );
        assert_eq!(
            warehouse(&cli(&["verdict", "ingest", "x"]), &Env::default()),
            PathBuf::from(DEFAULT_WAREHOUSE)
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
        let crate::args::Command::Ingest(a) = &c.command;
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
        let crate::args::Command::Ingest(a) = &c.command;
        let e = ingest(&c, a, &Env::default(), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--input-format: unknown format `nope`"),
            "{e}"
        );
    }
}
