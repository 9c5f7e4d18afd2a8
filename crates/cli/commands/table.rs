//! `verdict history`, `doctor`, `vacuum`, `restore` and `migrate`: keeping the warehouse's
//! tables.

use std::io::Write;

use anyhow::{anyhow, Context, Result};
use verdict_table::{Table, Warehouse};

use crate::args::{Cli, DoctorArgs, HistoryArgs, MigrateArgs, RestoreArgs, VacuumArgs};
use crate::output;
use crate::settings::{self, Env};

fn open(cli: &Cli, env: &Env) -> Result<Warehouse> {
    Ok(Warehouse::new(settings::warehouse(cli, env)?)?)
}

/// Runs `verdict history`.
pub async fn history(cli: &Cli, a: &HistoryArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let wh = open(cli, env)?;
    let h = wh.history(Table::Decisions, a.limit).await?;
    output::history(out, &h, a.format)
}

/// Runs `verdict doctor`: exit 0 when every file reads, else an error after the report.
pub async fn doctor(cli: &Cli, a: &DoctorArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let wh = open(cli, env)?;
    let report = wh.doctor().await?;
    let mut removed = None;
    if a.remove_damaged && !report.problems.is_empty() {
        for t in Table::ALL {
            let paths: Vec<String> = report
                .problems
                .iter()
                .filter(|p| p.table == t.name())
                .map(|p| p.path.clone())
                .collect();
            if paths.is_empty() {
                continue;
            }
            let v = wh.remove_files(t, &paths).await?;
            if t == Table::Decisions {
                removed = v;
            }
        }
    }
    output::doctor(out, &report, removed, a.format)?;
    if !report.problems.is_empty() && !a.remove_damaged {
        return Err(anyhow!(
            "{} damaged file(s) in {}",
            report.problems.len(),
            wh.location()
        ));
    }
    Ok(())
}

/// Runs `verdict vacuum`.
pub async fn vacuum(cli: &Cli, a: &VacuumArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let wh = open(cli, env)?;
    let micros = settings::parse_duration(&a.retention).context("--retention")?;
    let retention = std::time::Duration::from_micros(u64::try_from(micros).unwrap_or(0));
    let deleted = wh.vacuum(retention).await?;
    if a.format == crate::args::SummaryFormat::Json {
        let m: serde_json::Map<String, serde_json::Value> = deleted
            .iter()
            .map(|(t, n)| (t.to_string(), serde_json::Value::from(*n)))
            .collect();
        serde_json::to_writer_pretty(&mut *out, &m)?;
        writeln!(out)?;
        return Ok(());
    }
    for (t, n) in deleted {
        writeln!(out, "{t}: {n} file(s) deleted")?;
    }
    Ok(())
}

/// Runs `verdict restore --to VERSION`.
pub async fn restore(cli: &Cli, a: &RestoreArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let wh = open(cli, env)?;
    let v = wh
        .restore(a.to)
        .await
        .with_context(|| format!("restore {} to version {}", wh.location(), a.to))?;
    writeln!(out, "restored decisions to version {} as version {v}", a.to)?;
    Ok(())
}

/// Runs `verdict migrate`.
pub async fn migrate(cli: &Cli, _a: &MigrateArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let loc = settings::warehouse(cli, env)?;
    let summary = tokio::task::spawn_blocking(move || verdict_ingest::migrate(&loc))
        .await
        .context("the migration task stopped")??;
    writeln!(out, "{summary}")?;
    Ok(())
}
