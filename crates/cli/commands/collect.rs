//! `verdict collect` (runs the collector until SIGINT or SIGTERM, logging to stderr with
//! tracing) and `verdict compact` (merges a day's part files); both print their summary.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};
use verdict_schema::time::SystemClock;

use crate::args::{Cli, CollectArgs, CompactArgs};
use crate::output;
use crate::settings::{self, Env};

/// Runs `verdict collect`.
pub async fn run(cli: &Cli, args: &CollectArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    // Listen for signals first, so that a stop asked during start-up is a clean stop too.
    let shutdown = shutdown_signal().context("installing the signal handlers")?;
    let opts = settings::collect(cli, args, env)?;
    // Logs go to stderr; a second subscriber (in tests) is not an error.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .with_max_level(if cli.quiet {
            tracing::Level::WARN
        } else {
            tracing::Level::INFO
        })
        .try_init();
    let warehouse = opts.warehouse.clone();
    let summary = verdict_collect::run(opts, Arc::new(SystemClock), shutdown)
        .await
        .with_context(|| format!("collect into {}", warehouse))?;
    if cli.quiet {
        return Ok(());
    }
    output::collect_summary(out, &warehouse, &summary, args.format)
}

/// A future that completes on the first SIGINT or SIGTERM; the handlers are installed at once.
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// Runs `verdict compact`.
pub async fn compact(cli: &Cli, args: &CompactArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let opts = settings::compact(cli, args, env)?;
    let warehouse = opts.warehouse.clone();
    let summary = tokio::task::spawn_blocking(move || verdict_ingest::compact(&opts, &SystemClock))
        .await
        .context("the compaction task stopped")?
        .with_context(|| format!("compact {}", warehouse))?;
    if cli.quiet {
        return Ok(());
    }
    output::compact_summary(out, &summary, args.format)
}
