//! The verdict binary: parses the command line, builds the tokio runtime, runs the command and
//! maps the outcome to an exit code (0 ok, 1 a replay gate tripped, 2 error; a broken pipe is 0).

mod alloc;
mod args;
mod commands;
mod output;
mod settings;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use crate::args::{Cli, Command, PolicyCommand, ReportDocument};

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
        Command::Report(a) => match &a.document {
            Some(ReportDocument::Compliance(c)) => {
                commands::document::compliance(&cli, c, &env, out).await
            }
            None => commands::query::report(&cli, a, &env, out).await,
        }
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
        Command::Verify(a) => commands::table::verify(&cli, a, &env, out)
            .await
            .map(|()| Outcome::Ok),
        Command::Keygen(a) => commands::table::keygen(a, out).map(|()| Outcome::Ok),
        Command::Retention(a) => commands::lifecycle::retention(&cli, a, &env, out)
            .await
            .map(|()| Outcome::Ok),
        Command::Hold(h) => commands::lifecycle::hold(&cli, h, &env, out)
            .await
            .map(|()| Outcome::Ok),
        Command::Erase(a) => commands::lifecycle::erase(&cli, a, &env, out)
            .await
            .map(|()| Outcome::Ok),
        Command::Cluster(c) => commands::cluster::run(&cli, c, &env)
            .await
            .map(|()| Outcome::Ok),
        Command::Formats(a) => commands::ingest::formats(a, out).map(|()| Outcome::Ok),
        Command::Policy(PolicyCommand::Check { file }) => {
            commands::policy::check(file, out).map(|()| Outcome::Ok)
        }
        Command::Policy(PolicyCommand::Diff(a)) => commands::policy::diff(&cli, a, &env, out).await,
        Command::Suggest(a) => commands::suggest::run(&cli, a, &env, out).await,
        Command::Tune(a) => commands::tune::run(&cli, a, &env, out).await,
        Command::Completions { shell } => {
            commands::docs::completions(*shell, out).map(|()| Outcome::Ok)
        }
        Command::Man { out: dir } => commands::docs::man(dir.as_deref(), out).map(|()| Outcome::Ok),
    }
}

/// Files and directories the process creates are private to the user (0600/0700), or readable
/// by the group too (0640/0750), whatever the umask it was started with: the warehouse holds
/// evidence and the redaction key (README "Security").
fn private_umask(group_readable: bool) {
    let mask = if group_readable { 0o027 } else { 0o077 };
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(mask));
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
    let env = Env::from_process();
    private_umask(settings::group_readable(&cli, &env));
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
    output::set_style(settings::style(&cli, &env, std::io::stdout().is_terminal()));
    if cli.verbose > 0 {
        let level = if cli.verbose > 1 {
            tracing::Level::TRACE
        } else {
            tracing::Level::DEBUG
        };
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .with_max_level(level)
            .try_init();
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = runtime
        .block_on(run(cli, env, &mut out))
        .and_then(|o| match out.flush() {
            // The reader left after the answer was decided: the answer's code stands.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(o),
            Err(e) => Err(anyhow::Error::new(e).context("writing output")),
            Ok(()) => Ok(o),
        });
    exit_code(result, &mut out)
}

/// The exit code of a finished command. A closed stdout (`| head`) ends the command quietly
/// with the code its answer deserves: commands that gate (replay) decide their outcome before
/// printing and keep it when the reader goes away, so only a broken pipe left over at the
/// final flush is mapped here (to the outcome already known, or 0).
fn exit_code(result: Result<Outcome>, out: &mut dyn Write) -> ExitCode {
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::GateTripped) => ExitCode::from(1),
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = out.flush();
            output::error(&e);
            ExitCode::from(2)
        }
    }
}
