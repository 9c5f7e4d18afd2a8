//! `verdict report`, `verdict sql` and `verdict timeline`: open the query engine over the
//! warehouse, run the question, hand the result to the printer.

use std::io::{IsTerminal, Read, Write};

use anyhow::{anyhow, Context, Result};
use verdict_query::{Catalog, Cluster, Engine, QueryStream};
use verdict_table::{Snapshot, Warehouse};

use crate::args::{Cli, QueryOutputArgs, ReportArgs, SqlArgs, TimelineArgs};
use crate::output;
use crate::settings::{self, Env};

async fn engine(cli: &Cli, env: &Env, o: &QueryOutputArgs) -> Result<(Snapshot, Engine)> {
    let cluster = settings::cluster(o.cluster.as_deref(), env).context("--cluster")?;
    open_engine_on(
        cli,
        env,
        o.catalog.as_deref(),
        o.as_of.as_deref(),
        cluster.as_ref(),
    )
    .await
}

/// The snapshot every question of the command reads (one `decisions` version: the latest, or
/// the one `--as-of` names), and an engine over it with the catalogue file, if any. Reading
/// never writes.
pub async fn open_engine(
    cli: &Cli,
    env: &Env,
    catalog: Option<&std::path::Path>,
    as_of: Option<&str>,
) -> Result<(Snapshot, Engine)> {
    open_engine_on(cli, env, catalog, as_of, None).await
}

/// [`open_engine`], with every query of the engine run on `cluster` when one is given.
async fn open_engine_on(
    cli: &Cli,
    env: &Env,
    catalog: Option<&std::path::Path>,
    as_of: Option<&str>,
    cluster: Option<&Cluster>,
) -> Result<(Snapshot, Engine)> {
    let loc = settings::warehouse(cli, env)?;
    let as_of = settings::as_of(as_of)?;
    let wh = Warehouse::new(loc)?;
    let snapshot = wh.snapshot(as_of.as_ref()).await?;
    let catalog = Catalog::load(catalog).context("--catalog")?;
    let engine = Engine::open_on(&snapshot, catalog, cluster).await?;
    Ok((snapshot, engine))
}

/// A failed question over a damaged table names the damaged files and the versions that added
/// them (every file of the snapshot is checked), never only the reader's message.
pub async fn explain(snapshot: &Snapshot, e: impl Into<anyhow::Error>) -> anyhow::Error {
    let e: anyhow::Error = e.into();
    let text = format!("{e:#}");
    let report = match snapshot.warehouse().doctor().await {
        Ok(r) if !r.problems.is_empty() => r,
        _ => return e,
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

/// Prints a result as the query produces it; returns what was printed.
async fn emit(
    engine_version: Option<i64>,
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
    let printed = output::query_result(result, format, o.output.as_deref(), out, &opts).await;
    output::read_version(engine_version);
    printed
}

/// Runs `verdict report KIND`.
pub async fn report(cli: &Cli, a: &ReportArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let spec = settings::report(a, env)?;
    let (snapshot, engine) = engine(cli, env, &a.out).await?;
    let result = match engine.report_stream(&spec).await {
        Ok(r) => r,
        Err(e) => return Err(explain(&snapshot, e).await),
    };
    let printed = match emit(engine.version(), result, &a.out, out).await {
        Ok(p) => p,
        Err(e) => return Err(explain(&snapshot, e).await),
    };
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
            let (_snapshot, engine) = engine(cli, env, &a.out).await?;
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
    let (snapshot, engine) = engine(cli, env, &a.out).await?;
    let result = match engine.sql_stream(&query).await {
        Ok(r) => r,
        Err(e) => return Err(explain(&snapshot, e).await),
    };
    match emit(engine.version(), result, &a.out, out).await {
        Ok(_) => Ok(()),
        Err(e) => Err(explain(&snapshot, e).await),
    }
}

/// Runs `verdict timeline --identity X`.
pub async fn timeline(cli: &Cli, a: &TimelineArgs, env: &Env, out: &mut dyn Write) -> Result<()> {
    let spec = settings::timeline(a, env)?;
    let (snapshot, engine) = engine(cli, env, &a.out).await?;
    let result = match engine.timeline_stream(&spec).await {
        Ok(r) => r,
        Err(e) => return Err(explain(&snapshot, e).await),
    };
    let printed = match emit(engine.version(), result, &a.out, out).await {
        Ok(p) => p,
        Err(e) => return Err(explain(&snapshot, e).await),
    };
    if printed.rows == 0 && !engine.is_empty() {
        output::note(&super::empty::timeline(&engine, &spec).await?);
    }
    Ok(())
}
