//! `verdict report`, `verdict sql` and `verdict timeline`: open the query engine over the
//! warehouse, run the question, hand the result to the printer.

use std::io::{IsTerminal, Read, Write};

use anyhow::{anyhow, Context, Result};
use verdict_query::{Catalog, Engine, QueryOutput};
use verdict_table::{Snapshot, Warehouse};

use crate::args::{Cli, QueryOutputArgs, ReportArgs, SqlArgs, TimelineArgs};
use crate::output;
use crate::settings::{self, Env};

/// The snapshot every question of the command reads (one `decisions` version), and an engine
/// over it. Reading never writes.
async fn engine(cli: &Cli, env: &Env, o: &QueryOutputArgs) -> Result<(Snapshot, Engine)> {
    let loc = settings::warehouse(cli, env)?;
    let as_of = settings::as_of(o.as_of.as_deref())?;
    let wh = Warehouse::new(loc)?;
    let snapshot = wh.snapshot(as_of.as_ref()).await?;
    let catalog = Catalog::load(o.catalog.as_deref()).context("--catalog")?;
    let engine = Engine::open(&snapshot, catalog).await?;
    Ok((snapshot, engine))
}

/// A failed question over a damaged table names the damaged files and the versions that added
/// them (every file of the snapshot is checked), never only the reader's message.
async fn explain(snapshot: &Snapshot, e: verdict_query::Error) -> anyhow::Error {
    let text = e.to_string();
    let report = match snapshot.warehouse().doctor().await {
        Ok(r) if !r.problems.is_empty() => r,
        _ => return e.into(),
    };
    let list: Vec<String> = report
        .problems
        .iter()
        .map(|p| {
            format!(
                "{}/{}/{} (added in version {}): {}",
                snapshot.warehouse().location(),
                p.table,
                p.path,
                p.added_in.map_or("?".into(), |v| v.to_string()),
                p.message
            )
        })
        .collect();
    anyhow!(
        "damaged data file(s): {}; run `verdict doctor` for how to recover ({text})",
        list.join("; ")
    )
}

/// Prints the result, then says on stderr which version it was read from.
fn emit(
    engine: &Engine,
    result: &QueryOutput,
    o: &QueryOutputArgs,
    out: &mut dyn Write,
) -> Result<()> {
    emit_result(result, o, out)?;
    output::read_version(engine.version());
    Ok(())
}

fn emit_result(result: &QueryOutput, o: &QueryOutputArgs, out: &mut dyn Write) -> Result<()> {
    let format = settings::query_format(
        o.format,
        std::io::stdout().is_terminal() && o.output.is_none(),
    );
    output::query_result(result, format, o.output.as_deref(), out)
}

/// Runs `verdict report KIND`.
pub async fn report(cli: &Cli, a: &ReportArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let spec = settings::report(a, env)?;
    let (snapshot, engine) = engine(cli, env, &a.out).await?;
    let result = match engine.report(&spec).await {
        Ok(r) => r,
        Err(e) => return Err(explain(&snapshot, e).await),
    };
    emit(&engine, &result, &a.out, out)
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
    let (snapshot, engine) = engine(cli, env, &a.out).await?;
    let result = match engine.sql(&query).await {
        Ok(r) => r,
        Err(e) => return Err(explain(&snapshot, e).await),
    };
    emit(&engine, &result, &a.out, out)
}

/// Runs `verdict timeline --identity X`.
pub async fn timeline(cli: &Cli, a: &TimelineArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let spec = settings::timeline(a, env)?;
    let (snapshot, engine) = engine(cli, env, &a.out).await?;
    let result = match engine.timeline(&spec).await {
        Ok(r) => r,
        Err(e) => return Err(explain(&snapshot, e).await),
    };
    emit(&engine, &result, &a.out, out)
}
