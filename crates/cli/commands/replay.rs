//! `verdict replay`: loads the policies, runs the replay on a blocking thread, prints the report
//! and turns a tripped gate into exit code 1.

use std::io::Write;

use anyhow::{Context, Result};
use verdict_policy::Policy;
use verdict_query::{Catalog, Risk};
use verdict_replay::replay;

use crate::args::{Cli, ReplayArgs};
use crate::output;
use crate::settings::{self, Env};
use crate::Outcome;

/// Loads and validates a policy file; the error lists every problem with its JSON path.
pub fn load_policy(path: &std::path::Path) -> Result<Policy> {
    Policy::from_path(path).with_context(|| format!("policy {}", path.display()))
}

/// Runs `verdict replay`.
pub async fn run(cli: &Cli, a: &ReplayArgs, env: &Env, out: &mut dyn Write) -> Result<Outcome> {
    let opts = settings::replay(cli, a, env)?;
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
    .with_context(|| format!("replay over {warehouse}"))?;
    output::read_version(report.table_version);
    let names = output::ReplayNames {
        candidate: a.policy.display().to_string(),
        baseline: a.baseline.as_ref().map(|b| b.display().to_string()),
    };
    output::replay_report(out, &report, &names, a.format)?;
    Ok(if report.gate_tripped() {
        Outcome::GateTripped
    } else {
        Outcome::Ok
    })
}
