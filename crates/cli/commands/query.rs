//! `verdict report`, `verdict sql` and `verdict timeline`: open the query engine over the
//! warehouse, run the question, hand the result to the printer.

use std::io::{IsTerminal, Read, Write};

use anyhow::{anyhow, Context, Result};
use verdict_ingest::Warehouse;
use verdict_query::{Catalog, Engine, QueryOutput};

use crate::args::{Cli, QueryOutputArgs, ReportArgs, SqlArgs, TimelineArgs};
use crate::output;
use crate::settings::{self, Env};

async fn engine(cli: &Cli, env: &Env, o: &QueryOutputArgs) -> Result<Engine> {
    open_engine(cli, env, o.catalog.as_deref()).await
}

/// Opens the query engine over the warehouse with the catalogue file, if any.
pub async fn open_engine(
    cli: &Cli,
    env: &Env,
    catalog: Option<&std::path::Path>,
) -> Result<Engine> {
    let wh = settings::warehouse(cli, env);
    // Finish an interrupted commit first, so queries see whole commits only.
    if wh.is_dir() {
        Warehouse::open_for_read(&wh).with_context(|| format!("opening {}", wh.display()))?;
    }
    let catalog = Catalog::load(catalog).context("--catalog")?;
    Ok(Engine::open(&wh, catalog).await?)
}

fn emit(result: &QueryOutput, o: &QueryOutputArgs, out: &mut dyn Write) -> Result<()> {
    let format = settings::query_format(
        o.format,
        std::io::stdout().is_terminal() && o.output.is_none(),
    );
    output::query_result(result, format, o.output.as_deref(), out)
}

/// Runs `verdict report KIND`.
pub async fn report(cli: &Cli, a: &ReportArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let spec = settings::report(a, env)?;
    let engine = engine(cli, env, &a.out).await?;
    let result = engine.report(&spec).await?;
    emit(&result, &a.out, out)
}

/// Runs `verdict sql [QUERY]`.
pub async fn sql(cli: &Cli, a: &SqlArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let query = match &a.query {
        Some(q) => q.clone(),
        None => {
            let mut q = String::new();
            std::io::stdin()
                .read_to_string(&mut q)
                .context("reading SQL from stdin")?;
            q
        }
    };
    if query.trim().is_empty() {
        return Err(anyhow!("no SQL given: pass a query or pipe one on stdin"));
    }
    let engine = engine(cli, env, &a.out).await?;
    let result = engine.sql(&query).await?;
    emit(&result, &a.out, out)
}

/// Runs `verdict timeline --identity X`.
pub async fn timeline(cli: &Cli, a: &TimelineArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let spec = settings::timeline(a, env)?;
    let engine = engine(cli, env, &a.out).await?;
    let result = engine.timeline(&spec).await?;
    emit(&result, &a.out, out)
}
