//! `verdict cluster scheduler` and `verdict cluster executor`: a node of the query cluster,
//! logging to stderr with tracing (Ballista's own log lines included) until SIGTERM or Ctrl-C.

use anyhow::{Context, Result};
use verdict_cluster::{ExecutorOptions, SchedulerOptions};

use crate::args::{Cli, ClusterCommand};
use crate::commands::collect::shutdown_signal;
use crate::settings::{self, Env};

/// Runs `verdict cluster ...`.
pub async fn run(cli: &Cli, command: &ClusterCommand, env: &Env) -> Result<()> {
    let storage = settings::storage(cli, env);
    match command {
        ClusterCommand::Scheduler(a) => {
            verdict_cluster::check_bind(a.bind, a.insecure_bind)?;
            if let Some(m) = a.metrics_bind {
                verdict_cluster::check_bind(m, a.insecure_bind)?;
            }
            let shutdown = shutdown_signal().context("installing the signal handlers")?;
            init_logging(cli);
            let options = SchedulerOptions {
                bind: a.bind,
                storage,
                metrics: a.metrics_bind,
            };
            verdict_cluster::run_scheduler(options, shutdown).await?;
        }
        ClusterCommand::Executor(a) => {
            verdict_cluster::check_bind(a.bind, a.insecure_bind)?;
            if let Some(m) = a.metrics_bind {
                verdict_cluster::check_bind(m, a.insecure_bind)?;
            }
            let scheduler = verdict_cluster::host_port("--scheduler", &a.scheduler)?;
            init_logging(cli);
            let options = ExecutorOptions {
                scheduler,
                bind: a.bind,
                advertise: a.advertise.clone(),
                concurrency: a.concurrency,
                work_dir: a.work_dir.clone(),
                storage,
                metrics: a.metrics_bind,
            };
            verdict_cluster::run_executor(options).await?;
        }
    }
    Ok(())
}

/// Logs to stderr: verdict's events and Ballista's `log` records, at INFO (WARN with `-q`).
fn init_logging(cli: &Cli) {
    let level = if cli.quiet {
        tracing::Level::WARN
    } else if cli.verbose > 0 {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    // A subscriber already installed (`-v`) is kept.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(true)
        .with_max_level(level)
        .try_init();
}
