//! verdict-cluster: `verdict cluster scheduler` and `verdict cluster executor`, Apache
//! DataFusion Ballista's scheduler and executor run in verdict's own process with what a verdict
//! plan needs everywhere: the codecs of `verdict_query::cluster` (the snapshot's file lists, the
//! tool catalogue, `tool_risk()`, `tool_risk_source()`, `weighted_mode()`) and the object
//! stores of any warehouse URL a plan names ([`Stores`], configured like every verdict command).
//!
//! Ballista's servers have neither authentication nor TLS: both refuse an address off the
//! loopback interface unless the caller passes `insecure_bind` ([`check_bind`]).

mod error;
pub mod metrics;
mod stores;

use std::future::Future;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;

use ballista_core::error::BallistaError;
use ballista_core::utils::default_session_builder;
use ballista_executor::execution_engine::{DefaultExecutionEngine, ExecutionEngine};
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use ballista_executor::health::ExecutorHealth;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionConfig;
use verdict_query::cluster::{LogicalCodec, PhysicalCodec, GRPC_MAX_MESSAGE_BYTES};

/// [`GRPC_MAX_MESSAGE_BYTES`] as Ballista's configurations take it.
const GRPC_MAX: u32 = GRPC_MAX_MESSAGE_BYTES as u32;

pub use error::{Error, Result};
pub use stores::Stores;

/// Refuses `addr` off the loopback interface unless `insecure_bind` (see the crate docs).
///
/// # Errors
/// [`Error::InsecureBind`].
pub fn check_bind(addr: SocketAddr, insecure_bind: bool) -> Result<()> {
    if addr.ip().is_loopback() || insecure_bind {
        Ok(())
    } else {
        Err(Error::InsecureBind { addr })
    }
}

/// Parses `HOST:PORT` where HOST is a name or an address (`scheduler:50050`, `127.0.0.1:50050`).
///
/// # Errors
/// [`Error::Address`] naming `what`.
pub fn host_port(what: &'static str, given: &str) -> Result<(String, u16)> {
    let err = |message: &str| Error::Address {
        what,
        given: given.to_string(),
        message: message.to_string(),
    };
    let (host, port) = given
        .rsplit_once(':')
        .ok_or_else(|| err("expected HOST:PORT"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(err("no host"));
    }
    let port = port
        .parse::<u16>()
        .map_err(|e| err(&format!("port: {e}")))?;
    Ok((host.to_string(), port))
}

/// How to run a scheduler.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Where to listen (gRPC for clients and executors, and `/api/...` health routes).
    pub bind: SocketAddr,
    /// Object store settings (`aws_endpoint`, ...), for planning scans of object-store tables.
    pub storage: Vec<(String, String)>,
    /// Where to serve `/metrics` and `/healthz` ([`metrics`]); `None`: nowhere.
    pub metrics: Option<SocketAddr>,
}

/// Runs a scheduler until `shutdown` resolves (the caller's SIGTERM or Ctrl-C).
///
/// # Errors
/// [`Error::Ballista`] when it cannot start (the port is taken ...) or stops with an error.
pub async fn run_scheduler(
    options: SchedulerOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let ballista = |source| Error::Ballista {
        role: "scheduler",
        source: Box::new(source),
    };
    let stores = Arc::new(Stores::new(options.storage));
    let mut config = SchedulerConfig {
        bind_host: options.bind.ip().to_string(),
        bind_port: options.bind.port(),
        external_host: options.bind.ip().to_string(),
        // Executors beat every 5 s (see `run_executor`): one silent for 30 s is gone, and its
        // tasks are run elsewhere instead of waiting Ballista's default 3 minutes.
        executor_timeout_seconds: 30,
        expire_dead_executor_interval_seconds: 5,
        no_executors_grace_period_seconds: 30,
        grpc_server_max_decoding_message_size: GRPC_MAX,
        grpc_server_max_encoding_message_size: GRPC_MAX,
        grpc_client_max_message_size: GRPC_MAX,
        ..SchedulerConfig::default()
    };
    config.override_session_builder = Some(Arc::new(move |config: SessionConfig| {
        let state = default_session_builder(config)?;
        let runtime = RuntimeEnvBuilder::new()
            .with_object_store_registry(Arc::clone(&stores) as _)
            .build_arc()?;
        Ok(SessionStateBuilder::new_from_existing(state)
            .with_runtime_env(runtime)
            .build())
    }));
    config.override_logical_codec = Some(Arc::new(LogicalCodec::default()));
    config.override_physical_codec = Some(Arc::new(PhysicalCodec::default()));
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(ballista)?;
    if let Some(bind) = options.metrics {
        // Ballista's collector fills the default registry (jobs, planning and run times).
        metrics::serve(bind, prometheus::default_registry().clone(), None).await?;
    }
    tracing::info!(bind = %options.bind, "verdict cluster scheduler listening");
    tokio::select! {
        r = start_server(cluster, options.bind, Arc::new(config)) => r.map_err(ballista),
        () = shutdown => {
            tracing::info!("scheduler stopping");
            Ok(())
        }
    }
}

/// How to run an executor.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler's `HOST:PORT`.
    pub scheduler: (String, u16),
    /// Where to listen for Arrow Flight (shuffle and results); port 0 picks a free port. The
    /// executor's gRPC service listens on the next port (or another free one with port 0).
    pub bind: SocketAddr,
    /// The host the scheduler and the other executors reach this one by (default: the bind
    /// address, or the address the scheduler sees when that is 0.0.0.0).
    pub advertise: Option<String>,
    /// Tasks run at once (0: one per core).
    pub concurrency: usize,
    /// Shuffle files (default: a temporary directory removed on exit).
    pub work_dir: Option<PathBuf>,
    /// Object store settings (`aws_endpoint`, ...), for reading object-store tables.
    pub storage: Vec<(String, String)>,
    /// Where to serve `/metrics`, `/healthz` and `/readyz` ([`metrics`]); `None`: nowhere.
    pub metrics: Option<SocketAddr>,
}

/// Two free ports on `ip` (both listeners are held until both are known, so they differ).
fn free_ports(ip: IpAddr) -> Result<(u16, u16)> {
    let io = |source| Error::Io {
        what: format!("finding a free port on {ip}"),
        source,
    };
    let a = TcpListener::bind((ip, 0)).map_err(io)?;
    let b = TcpListener::bind((ip, 0)).map_err(io)?;
    let port = |l: &TcpListener| l.local_addr().map(|a| a.port()).map_err(io);
    Ok((port(&a)?, port(&b)?))
}

/// Attempts at starting an executor on ports it chose itself: a port found free can be taken by
/// another process (another executor starting at the same moment) before Ballista binds it.
const PORT_ATTEMPTS: usize = 5;

/// Runs an executor until SIGTERM, Ctrl-C or the scheduler's stop request (Ballista's executor
/// watches for those itself and tells the scheduler it is leaving).
///
/// # Errors
/// [`Error::Ballista`] when it cannot start or stops with an error; [`Error::Io`] for the work
/// directory or a port.
pub async fn run_executor(options: ExecutorOptions) -> Result<()> {
    let ip = options.bind.ip();
    let chosen = options.bind.port() == 0;
    let temp;
    let work_dir = match &options.work_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("verdict-executor-")
                .tempdir()
                .map_err(|source| Error::Io {
                    what: "creating the executor's work directory".into(),
                    source,
                })?;
            temp.path().to_path_buf()
        }
    };
    let stores = Arc::new(Stores::new(options.storage));
    let temp_dir = work_dir.display().to_string();
    let advertise = options
        .advertise
        .or_else(|| (!ip.is_unspecified()).then(|| ip.to_string()));
    let health = ExecutorHealth::new();
    // With metrics, tasks run through Ballista's default engine wrapped to be counted. That
    // engine, built here, fetches shuffle data without Ballista's connection pool (which it
    // does not export): one connection per fetch. Without metrics, Ballista builds its own.
    let mut engine: Option<Arc<dyn ExecutionEngine>> = None;
    if let Some(bind) = options.metrics {
        // The default registry also holds the process's own figures (memory, CPU, files).
        let registry = prometheus::default_registry().clone();
        let counters = Arc::new(metrics::ExecutorMetrics::new(&registry)?);
        engine = Some(Arc::new(metrics::MeteredEngine::new(
            Arc::new(DefaultExecutionEngine::new()),
            counters,
        )));
        let h = health.clone();
        metrics::serve(bind, registry, Some(Arc::new(move || h.is_ready()))).await?;
    }
    let mut attempt = 1;
    loop {
        let (port, grpc_port) = match options.bind.port() {
            0 => free_ports(ip)?,
            p => (p, p.checked_add(1).unwrap_or(p - 1)),
        };
        let (stores, temp_dir) = (Arc::clone(&stores), temp_dir.clone());
        let config = ExecutorProcessConfig {
            bind_host: ip.to_string(),
            external_host: advertise.clone(),
            port,
            grpc_port,
            scheduler_host: options.scheduler.0.clone(),
            scheduler_port: options.scheduler.1,
            scheduler_connect_timeout_seconds: 30,
            vcores: options.concurrency,
            work_dir: Some(temp_dir.clone()),
            executor_heartbeat_interval_seconds: 5,
            // Ballista's 16 MiB default refuses to send a large group-by's result batch (38 MB for
            // identity x tool x hour over 30M rows).
            grpc_max_encoding_message_size: GRPC_MAX,
            grpc_max_decoding_message_size: GRPC_MAX,
            override_runtime_producer: Some(Arc::new(move |_: &SessionConfig| {
                RuntimeEnvBuilder::new()
                    .with_temp_file_path(temp_dir.clone())
                    .with_object_store_registry(Arc::clone(&stores) as _)
                    .build_arc()
            })),
            override_logical_codec: Some(Arc::new(LogicalCodec::default())),
            override_physical_codec: Some(Arc::new(PhysicalCodec::default())),
            override_execution_engine: engine.clone(),
            health: health.clone(),
            ..ExecutorProcessConfig::default()
        };
        tracing::info!(
            flight = port,
            grpc = grpc_port,
            scheduler = %format!("{}:{}", options.scheduler.0, options.scheduler.1),
            "verdict cluster executor starting"
        );
        match start_executor_process(Arc::new(config)).await {
            Err(BallistaError::IoError(e))
                if chosen
                    && e.kind() == std::io::ErrorKind::AddrInUse
                    && attempt < PORT_ATTEMPTS =>
            {
                tracing::warn!(
                    flight = port,
                    grpc = grpc_port,
                    "a port chosen for the executor was taken before it could bind; choosing again"
                );
                attempt += 1;
            }
            done => {
                return done.map_err(|source| Error::Ballista {
                    role: "executor",
                    source: Box::new(source),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only_unless_insecure() {
        let lo: SocketAddr = "127.0.0.1:50050".parse().unwrap();
        let lo6: SocketAddr = "[::1]:50050".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:50050".parse().unwrap();
        assert!(check_bind(lo, false).is_ok());
        assert!(check_bind(lo6, false).is_ok());
        let e = check_bind(any, false).unwrap_err().to_string();
        assert!(e.starts_with("refusing to listen on 0.0.0.0:50050"), "{e}");
        assert!(e.contains("--insecure-bind"), "{e}");
        assert!(check_bind(any, true).is_ok());
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(
            host_port("--scheduler", "scheduler:50050").unwrap(),
            ("scheduler".to_string(), 50050)
        );
        assert_eq!(
            host_port("--scheduler", "[::1]:7").unwrap(),
            ("::1".to_string(), 7)
        );
        let e = host_port("--scheduler", "nohost").unwrap_err().to_string();
        assert_eq!(e, "invalid --scheduler `nohost`: expected HOST:PORT");
        let e = host_port("--scheduler", "h:99999").unwrap_err().to_string();
        assert!(e.starts_with("invalid --scheduler `h:99999`: port:"), "{e}");
    }
}
