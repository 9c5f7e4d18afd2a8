//! `verdict replay`: loads the policies, runs the replay on a blocking thread, prints the report
//! and turns a tripped gate into exit code 1.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use verdict_policy::Policy;
use verdict_query::{Catalog, Risk};
use verdict_replay::{replay, Policies};

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

/// Loads one side of a replay: a policy file, or a grants.toml of policies per grant.
pub fn load_side(
    policy: Option<&Path>,
    grants: Option<&Path>,
) -> Result<Option<(Policies, String)>> {
    match (policy, grants) {
        (Some(p), _) => Ok(Some((load_policy(p)?.into(), p.display().to_string()))),
        (None, Some(g)) => {
            let policies = Policies::from_grants_file(g)
                .with_context(|| format!("policies per grant {}", g.display()))?;
            Ok(Some((policies, g.display().to_string())))
        }
        (None, None) => Ok(None),
    }
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
    let (candidate, candidate_name) = load_side(a.policy.as_deref(), a.policies.as_deref())?
        .context("--policy or --policies is required")?;
    let baseline = load_side(a.baseline.as_deref(), a.baseline_policies.as_deref())?;
    let baseline_name = baseline.as_ref().map(|(_, n)| n.clone());
    let baseline = baseline.map(|(b, _)| b);
    let catalog = Catalog::load(a.catalog.as_deref()).context("--catalog")?;
    let warehouse = opts.warehouse.clone();
    let report = tokio::task::spawn_blocking(move || {
        let is_destructive = |tool: &str| catalog.classify(None, tool).risk == Risk::Destructive;
        replay(&opts, &candidate, baseline.as_ref(), &is_destructive)
    })
    .await
    .context("the replay task stopped")?
    .with_context(|| format!("replay over {warehouse}"))?;
    output::read_version(report.table_version);
    let names = output::ReplayNames {
        candidate: candidate_name,
        baseline: baseline_name,
    };
    // The outcome is decided before printing: a reader that closes the pipe early (`| head -1`)
    // must not turn a tripped gate into exit 0.
    let outcome = if report.gate_tripped() {
        Outcome::GateTripped
    } else {
        Outcome::Ok
    };
    if cli.quiet && a.output.is_none() {
        return Ok(outcome);
    }
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
        ReplayFormat::Markdown => output::replay_ci::markdown(&mut text, &report, &names)?,
        ReplayFormat::Junit => output::replay_ci::junit(&mut text, &report, &names)?,
    }
    let written = match &a.output {
        Some(file) => {
            write_atomic(file, &text)?;
            if cli.quiet {
                return Ok(outcome);
            }
            output::document_written(out, file, text.len() as u64)
        }
        None => out.write_all(&text).map_err(anyhow::Error::from),
    };
    match written {
        Err(e) if output::is_broken_pipe(&e) => Ok(outcome),
        other => other.map(|()| outcome),
    }
}
