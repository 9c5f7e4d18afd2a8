//! `verdict retention`, `hold` and `erase`: the data's lifecycle (README "Retention, holds and
//! erasure").

use std::io::Write;

use anyhow::{Context, Result};
use verdict_schema::time::FixedClock;
use verdict_table::Warehouse;

use crate::args::{Cli, EraseArgs, HoldCommand, RetentionArgs};
use crate::output;
use crate::settings::{self, Env};

/// Runs `verdict retention`.
pub async fn retention(cli: &Cli, a: &RetentionArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let opts = settings::retention(cli, a, env)?;
    let now = env.now;
    let summary = tokio::task::spawn_blocking(move || {
        verdict_ingest::lifecycle::retention(&opts, &FixedClock(now))
    })
    .await
    .context("the retention task stopped")??;
    output::retention(out, &summary, a.format)
}

/// Runs `verdict erase`.
pub async fn erase(cli: &Cli, a: &EraseArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let opts = settings::erase(cli, a, env)?;
    let now = env.now;
    let summary = tokio::task::spawn_blocking(move || {
        verdict_ingest::lifecycle::erase(&opts, &FixedClock(now))
    })
    .await
    .context("the erasure task stopped")??;
    output::erase(out, &summary, a.format)
}

/// Runs `verdict hold add|remove|list`.
pub async fn hold(cli: &Cli, h: &HoldCommand, env: &Env, out: &mut dyn Write) -> Result<()> {
    let wh = Warehouse::new(settings::warehouse(cli, env)?)?;
    match h {
        HoldCommand::Add(a) => {
            let hold = settings::hold(a, env)?;
            wh.add_hold(&hold).await?;
            writeln!(out, "hold {} placed", hold.name)?;
        }
        HoldCommand::Remove { name } => {
            let now = verdict_schema::time::format_micros(env.now);
            let hold = wh.remove_hold(name, &now).await?;
            writeln!(out, "hold {} lifted (placed {})", hold.name, hold.placed_at)?;
        }
        HoldCommand::List { format } => output::holds(out, &wh.holds().await?, *format)?,
    }
    Ok(())
}
