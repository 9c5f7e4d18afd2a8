//! `verdict policy check` (validates a policy file and says what it holds) and `verdict policy
//! diff` (the semantic difference of two, with history from the warehouse when one is named).

use std::io::Write;

use anyhow::{Context, Result};
use verdict_query::{Catalog, Risk};
use verdict_replay::{usage, DiffGate, DiffReport};

use crate::args::{Cli, PolicyDiffArgs};
use crate::commands::replay::load_policy;
use crate::output;
use crate::settings::{self, Env};
use crate::Outcome;

/// Runs `verdict policy check FILE`: exit 0 when valid, an error (exit 2) listing every problem.
pub fn check(file: &std::path::Path, out: &mut dyn Write) -> Result<()> {
    let policy = load_policy(file)?;
    let tools = policy.tool_names().count();
    let counters = policy.counter_names().count();
    writeln!(
        out,
        "{}: valid policy (default {}, {tools} tools listed, {counters} counters)",
        file.display(),
        match policy.default_action() {
            verdict_policy::DefaultAction::Allow => "allow",
            verdict_policy::DefaultAction::Deny => "deny",
        }
    )?;
    Ok(())
}

/// Runs `verdict policy diff OLD NEW`: exit 1 when a `--fail-on` gate holds.
pub async fn diff(
    cli: &Cli,
    a: &PolicyDiffArgs,
    env: &Env,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let old = load_policy(&a.old)?;
    let new = load_policy(&a.new)?;
    let gates = a
        .fail_on
        .iter()
        .map(|g| g.parse::<DiffGate>())
        .collect::<Result<Vec<_>, _>>()
        .context("--fail-on")?;
    let catalog = Catalog::load(a.catalog.as_deref()).context("--catalog")?;
    // History only when a warehouse is named: by the flag or the environment.
    let history = if cli.warehouse.is_some() || env.warehouse.is_some() {
        let (since, until) = settings::time_range(a.since.as_deref(), a.until.as_deref(), env)?;
        let wh = settings::warehouse(cli, env)?;
        let counted = tokio::task::spawn_blocking({
            let wh = wh.clone();
            move || usage(&wh, since, until)
        })
        .await
        .context("the history task stopped")?
        .with_context(|| format!("history of {wh}"))?;
        Some(counted)
    } else {
        None
    };
    let is_destructive = |tool: &str| catalog.classify(None, tool).risk == Risk::Destructive;
    let d = verdict_policy::diff(&old, &new);
    let report = DiffReport::new(&d, history.as_ref(), &is_destructive, &gates);
    let names = (a.old.display().to_string(), a.new.display().to_string());
    output::policy::diff_report(out, &report, &names, a.format)?;
    Ok(if report.gate_tripped() {
        Outcome::GateTripped
    } else {
        Outcome::Ok
    })
}
