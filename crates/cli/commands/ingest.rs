//! `verdict ingest`: runs the ingest pipeline on a blocking thread and prints its summary.

use std::io::{IsTerminal, Write};

use anyhow::{Context, Result};
use verdict_ingest::{ingest, preview, NoProgress, Progress};
use verdict_schema::time::SystemClock;

use crate::args::{Cli, FormatsArgs, IngestArgs};
use crate::output;
use crate::settings::{self, Env};

/// Runs `verdict ingest`.
pub async fn run(cli: &Cli, args: &IngestArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let (opts, show_progress) = settings::ingest(cli, args, env, std::io::stderr().is_terminal())?;
    let show_progress = show_progress && !cli.quiet;
    if args.dry_run {
        let show = args.show;
        let previews = tokio::task::spawn_blocking(move || preview(&opts, show))
            .await
            .context("the preview task stopped")??;
        return output::previews(out, &previews, args.format);
    }
    let warehouse = opts.warehouse.clone();
    let summary = tokio::task::spawn_blocking(move || {
        let progress: Box<dyn Progress> = if show_progress {
            Box::new(output::Bar::new())
        } else {
            Box::new(NoProgress)
        };
        ingest(&opts, &SystemClock, progress.as_ref())
    })
    .await
    .context("the ingest task stopped")?
    .with_context(|| format!("ingest into {}", warehouse))?;
    if !cli.quiet {
        output::ingest_summary(out, &summary, args.format)?;
    }
    // Damaged inputs: what could be read is committed, and the exit code (2) says it was not all.
    if let Some(first) = summary.damaged.first() {
        out.flush()?;
        anyhow::bail!(
            "{} input(s) could not be read to their end (first: {} at byte {}: {}); the lines before the damage were ingested (--strict makes this all-or-nothing)",
            summary.damaged.len(),
            first.file,
            first.offset,
            first.error
        );
    }
    Ok(())
}

/// Runs `verdict formats`: the built-in formats, or the mapping template.
pub fn formats(args: &FormatsArgs, out: &mut dyn Write) -> Result<()> {
    if args.template {
        out.write_all(verdict_formats::mapping::TEMPLATE.as_bytes())?;
        return Ok(());
    }
    output::formats(out, args.format)
}
