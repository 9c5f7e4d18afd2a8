//! `verdict tune`: one limit of a policy replayed at several values in one pass.

use std::io::Write;

use anyhow::{Context, Result};
use verdict_policy::{LimitField, LimitTarget};
use verdict_replay::tune;

use crate::args::{Cli, SummaryFormat, TuneArgs, TuneFormat};
use crate::commands::document::write_atomic;
use crate::commands::replay::load_policy;
use crate::output;
use crate::settings::{self, Env};
use crate::Outcome;

/// Runs `verdict tune`.
pub async fn run(cli: &Cli, a: &TuneArgs, env: &Env, out: &mut dyn Write) -> Result<Outcome> {
    let s = settings::tune(cli, a, env)?;
    let policy = load_policy(&a.policy)?;
    let target = LimitTarget::resolve(&policy, &a.limit).context("--limit")?;
    let mut values = Vec::with_capacity(s.values.len());
    for v in &s.values {
        let label = match v {
            LimitField::Max(n) => n.to_string(),
            LimitField::Window(w) => w.clone(),
        };
        let edited = target
            .apply(&policy, v)
            .with_context(|| format!("--{} {label}", s.field))?;
        values.push((label, edited));
    }
    let current = if s.field == "max" {
        target.max.to_string()
    } else {
        target.window.clone()
    };
    let warehouse = s.opts.warehouse.clone();
    let rule = target.rule.clone();
    let report = tokio::task::spawn_blocking(move || {
        tune(&s.opts, &values, &rule, s.field, current, s.target.as_ref())
    })
    .await
    .context("the tune task stopped")?
    .with_context(|| format!("tune over {}", warehouse))?;
    let policy_name = a.policy.display().to_string();
    let mut text = Vec::new();
    match a.format {
        TuneFormat::Html => {
            text = verdict_document::tune_report(&report, &policy_name)?.into_bytes();
        }
        TuneFormat::Table => {
            output::policy::tune_report(&mut text, &report, &policy_name, SummaryFormat::Table)?
        }
        TuneFormat::Json => {
            output::policy::tune_report(&mut text, &report, &policy_name, SummaryFormat::Json)?
        }
    }
    match &a.output {
        Some(file) => {
            write_atomic(file, &text)?;
            if !cli.quiet {
                output::document_written(out, file, text.len() as u64)?;
            }
        }
        None => out.write_all(&text)?,
    }
    Ok(Outcome::Ok)
}
