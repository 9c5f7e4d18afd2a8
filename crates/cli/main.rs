//! The verdict binary: parses the command line, builds the tokio runtime, runs the command and
//! maps the outcome to an exit code (0 ok, 1 a replay gate tripped, 2 error; a broken pipe is 0).

mod args;
mod commands;
mod output;
mod settings;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use crate::args::{Cli, Command, PolicyCommand};

/// mimalloc returns freed memory to the OS far more eagerly than glibc's per-thread arenas, which
/// keeps ingest's peak RSS bounded by its batch sizes, and is faster for its many small strings.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use crate::settings::Env;

/// What a successful command asks the process to exit with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Ok,
    /// Exit 1: a gate the user asked for tripped.
    GateTripped,
}

async fn run(cli: Cli, env: Env, out: &mut dyn Write) -> Result<Outcome> {
    match &cli.command {
        Command::Ingest(a) => commands::ingest::run(&cli, a, &env, out)
            .await
            .map(|()| Outcome::Ok),
        Command::Report(a) => commands::query::report(&cli, a, &env, out)
            .await
            .map(|()| Outcome::Ok),
        Command::Sql(a) => commands::query::sql(&cli, a, &env, out)
            .await
            .map(|()| Outcome::Ok),
        Command::Timeline(a) => commands::query::timeline(&cli, a, &env, out)
            .await
            .map(|()| Outcome::Ok),
        Command::Replay(a) => commands::replay::run(&cli, a, &env, out).await,
        Command::Collect(a) => commands::collect::run(&cli, a, &env, out)
            .await
            .map(|()| Outcome::Ok),
        Command::Compact(a) => commands::collect::compact(&cli, a, &env, out)
            .await
            .map(|()| Outcome::Ok),
        Command::History(a) => commands::table::history(&cli, a, &env, out)
            .await
            .map(|()| Outcome::Ok),
        Command::Doctor(a) => commands::table::doctor(&cli, a, &env, out)
            .await
            .map(|()| Outcome::Ok),
        Command::Vacuum(a) => commands::table::vacuum(&cli, a, &env, out)
            .await
            .map(|()| Outcome::Ok),
        Command::Restore(a) => commands::table::restore(&cli, a, &env, out)
            .await
            .map(|()| Outcome::Ok),
        Command::Migrate(a) => commands::table::migrate(&cli, a, &env, out)
            .await
            .map(|()| Outcome::Ok),
        Command::Formats(a) => commands::ingest::formats(a, out).map(|()| Outcome::Ok),
        Command::Policy(PolicyCommand::Check { file }) => {
            commands::policy::check(file, out).map(|()| Outcome::Ok)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            output::error(&anyhow::Error::new(e).context("starting the runtime"));
            return ExitCode::from(2);
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = runtime
        .block_on(run(cli, Env::from_process(), &mut out))
        .and_then(|o| {
            out.flush()?;
            Ok(o)
        });
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::GateTripped) => ExitCode::from(1),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = out.flush();
            output::error(&e);
            ExitCode::from(2)
        }
    }
}
