//! `verdict report compliance` and the HTML of `verdict replay --format html`: build the
//! document with verdict-document, write it atomically, print PDFs through a headless Chromium.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use verdict_document::{compliance as build, ComplianceOptions, Fidelity, Integrity};
use verdict_query::{Catalog, Risk};
use verdict_replay::{replay, ReplayOptions};

use crate::args::{Cli, ComplianceArgs, DocumentFormat};
use crate::commands::query::open_engine;
use crate::commands::replay::load_policy;
use crate::output;
use crate::settings::{self, Env};

/// Writes `bytes` to `path` atomically (a temporary file beside it, then a rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Replays the period against the live policy, keeping the changes file in `dir`.
async fn fidelity(
    cli: &Cli,
    a: &ComplianceArgs,
    env: &Env,
    (since, until): (i64, i64),
    dir: &Path,
) -> Result<Option<Fidelity>> {
    let Some(path) = &a.policy else {
        return Ok(None);
    };
    let policy: verdict_replay::Policies = load_policy(path)?.into();
    let catalog = Catalog::load(a.catalog.as_deref()).context("--catalog")?;
    let changes = dir.join("changes.parquet");
    let opts = ReplayOptions {
        warehouse: settings::warehouse(cli, env)?,
        since: Some(since),
        until: Some(until),
        changes: Some(changes.clone()),
        as_of: settings::as_of(a.as_of.as_deref())?,
        ..ReplayOptions::default()
    };
    let report = tokio::task::spawn_blocking(move || {
        let is_destructive = |tool: &str| catalog.classify(None, tool).risk == Risk::Destructive;
        replay(&opts, &policy, None, &is_destructive)
    })
    .await
    .context("the replay task stopped")?
    .context("replaying the period against --policy")?;
    Ok(Some(Fidelity {
        policy: path.display().to_string(),
        report,
        changes,
    }))
}

/// Runs `verdict report compliance`.
pub async fn compliance(
    cli: &Cli,
    a: &ComplianceArgs,
    env: &Env,
    out: &mut dyn Write,
) -> Result<()> {
    let period = settings::compliance_period(a, env)?;
    // Find the browser before any work, so that a missing one fails fast.
    let browser = match a.format {
        DocumentFormat::Pdf => Some(settings::browser(a.browser.as_deref(), env)?),
        DocumentFormat::Html => None,
    };
    let scratch = tempfile::tempdir().context("creating a temporary directory")?;
    let fidelity = fidelity(cli, a, env, period, scratch.path()).await?;
    let (snapshot, engine) =
        open_engine(cli, env, a.catalog.as_deref(), a.as_of.as_deref()).await?;
    let verify = snapshot
        .warehouse()
        .verify(&snapshot, &verdict_table::VerifyOptions::default())
        .await
        .context("verifying the warehouse for the integrity section")?;
    let opts = ComplianceOptions {
        integrity: Some(Integrity {
            version: snapshot.version(),
            verify,
        }),
        since: period.0,
        until: period.1,
        title: a.title.clone(),
        generated_at: a.generated_at.clone(),
        fidelity,
    };
    let html = build(&engine, &opts)
        .await
        .context("building the compliance report")?;
    match browser {
        None => write_atomic(&a.output, html.as_bytes())?,
        Some(browser) => {
            let page = scratch.path().join("report.html");
            std::fs::write(&page, &html).with_context(|| format!("writing {}", page.display()))?;
            let pdf = scratch.path().join("report.pdf");
            verdict_document::print_pdf(&browser, &page, &pdf)?;
            let bytes =
                std::fs::read(&pdf).with_context(|| format!("reading {}", pdf.display()))?;
            write_atomic(&a.output, &bytes)?;
        }
    }
    let size = std::fs::metadata(&a.output).map(|m| m.len()).unwrap_or(0);
    output::document_written(out, &a.output, size)
}
