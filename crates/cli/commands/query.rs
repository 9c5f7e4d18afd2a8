//! `verdict report`, `verdict sql` and `verdict timeline`: open the query engine over the
//! warehouse, run the question, hand the result to the printer.

use std::io::{IsTerminal, Read, Write};

use anyhow::{anyhow, Context, Result};
use verdict_ingest::Warehouse;
use verdict_query::{Catalog, Engine, QueryStream};

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

/// Prints a result as the query produces it; returns what was printed.
async fn emit(
    result: QueryStream,
    o: &QueryOutputArgs,
    out: &mut dyn Write,
) -> Result<verdict_query::Printed> {
    let tty = std::io::stdout().is_terminal() && o.output.is_none();
    let format = settings::query_format(o.format, tty);
    let width = tty
        .then(|| terminal_size::terminal_size().map(|(w, _)| w.0))
        .flatten();
    let mut opts = settings::print_options(o.max_rows, width);
    opts.color = output::style().color && o.output.is_none();
    output::query_result(result, format, o.output.as_deref(), out, &opts).await
}

/// Runs `verdict report KIND`.
pub async fn report(cli: &Cli, a: &ReportArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let spec = settings::report(a, env)?;
    let engine = engine(cli, env, &a.out).await?;
    let result = engine.report_stream(&spec).await?;
    let printed = emit(result, &a.out, out).await?;
    if printed.rows == 0 && !engine.is_empty() {
        output::note(&super::empty::report(&engine, &spec).await?);
    }
    Ok(())
}

/// Runs `verdict sql [QUERY]`.
pub async fn sql(cli: &Cli, a: &SqlArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let query = match &a.query {
        Some(q) => q.clone(),
        None if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() => {
            let engine = engine(cli, env, &a.out).await?;
            return super::shell::run(&engine, settings::history_file(env), out).await;
        }
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
    let result = engine.sql_stream(&query).await?;
    emit(result, &a.out, out).await.map(|_| ())
}

/// Runs `verdict timeline --identity X`.
pub async fn timeline(cli: &Cli, a: &TimelineArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let spec = settings::timeline(a, env)?;
    let engine = engine(cli, env, &a.out).await?;
    let result = engine.timeline_stream(&spec).await?;
    let printed = emit(result, &a.out, out).await?;
    if printed.rows == 0 && !engine.is_empty() {
        output::note(&super::empty::timeline(&engine, &spec).await?);
    }
    Ok(())
}
