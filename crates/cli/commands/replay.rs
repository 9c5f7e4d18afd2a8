//! `verdict replay`: loads the policies, runs the replay on a blocking thread, prints the report
//! and turns a tripped gate into exit code 1.

use std::io::Write;

use anyhow::{Context, Result};
use verdict_policy::Policy;
use verdict_query::{Catalog, Risk};
use verdict_replay::replay;

use verdict_document::WhatIfOptions;

use crate::args::{Cli, ReplayArgs, ReplayFormat, SummaryFormat};
use crate::commands::document::write_atomic;
use crate::output;
use crate::settings::{self, Env};
use crate::Outcome;

/// Loads and validates a policy file; the error lists every problem with its JSON path.
pub fn load_policy(path: &std::path::Path) -> Result<Policy> {
    Policy::from_path(path).with_context(|| format!("policy {}", path.display()))
}

/// Runs `verdict replay`.
pub async fn run(cli: &Cli, a: &ReplayArgs, env: &Env, out: &mut dyn Write) -> Result<Outcome> {
    let mut opts = settings::replay(cli, a, env)?;
    // The HTML report charts the changes over time: it needs the changes file.
    let scratch = tempfile::tempdir().context("creating a temporary directory")?;
    if a.format == ReplayFormat::Html && opts.changes.is_none() {
        opts.changes = Some(scratch.path().join("changes.parquet"));
    }
    let changes = opts.changes.clone();
    let candidate = load_policy(&a.policy)?;
    let baseline = a.baseline.as_deref().map(load_policy).transpose()?;
    let catalog = Catalog::load(a.catalog.as_deref()).context("--catalog")?;
    let warehouse = opts.warehouse.clone();
    let report = tokio::task::spawn_blocking(move || {
        let is_destructive = |tool: &str| catalog.classify(None, tool).risk == Risk::Destructive;
        replay(&opts, &candidate, baseline.as_ref(), &is_destructive)
    })
    .await
    .context("the replay task stopped")?
    .with_context(|| format!("replay over {}", warehouse.display()))?;
    let names = output::ReplayNames {
        candidate: a.policy.display().to_string(),
        baseline: a.baseline.as_ref().map(|b| b.display().to_string()),
    };
    let mut text = Vec::new();
    match a.format {
        ReplayFormat::Html => {
            let path = changes.expect("set above for html");
            let events = verdict_document::read_changes(&path)?;
            let opts = WhatIfOptions {
                title: "What-if report".into(),
                candidate: names.candidate.clone(),
                baseline: names.baseline.clone(),
            };
            text = verdict_document::whatif(&report, &events, &opts)?.into_bytes();
        }
        ReplayFormat::Table => {
            output::replay_report(&mut text, &report, &names, SummaryFormat::Table)?
        }
        ReplayFormat::Json => {
            output::replay_report(&mut text, &report, &names, SummaryFormat::Json)?
        }
    }
    match &a.output {
        Some(file) => {
            write_atomic(file, &text)?;
            output::document_written(out, file, text.len() as u64)?;
        }
        None => out.write_all(&text)?,
    }
    Ok(if report.gate_tripped() {
        Outcome::GateTripped
    } else {
        Outcome::Ok
    })
}
