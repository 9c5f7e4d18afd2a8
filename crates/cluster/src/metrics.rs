//! What a node tells a monitoring system: `GET /metrics` (Prometheus text) and `GET /healthz` on
//! its own port (`--metrics-bind`), and `GET /readyz` for an executor (its last heartbeat to the
//! scheduler was answered).
//!
//! The scheduler's figures are Ballista's own collector (jobs submitted, completed, failed and
//! cancelled, their planning and run times, tasks waiting for a slot). An executor's are counted
//! here, around Ballista's execution engine: every task it runs, how it ended, how long it took,
//! and the rows and bytes it wrote for the next stage or the client.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use ballista_core::serde::protobuf::{
    RuntimeStatsReport, ShuffleWritePartition, TaskColumnStats, WindowStateReport,
};
use ballista_core::JobId;
use ballista_executor::execution_engine::{ExecutionEngine, QueryStageExecutor};
use datafusion::error::Result as DfResult;
use datafusion::execution::context::TaskContext;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::error::{Error, Result};

/// An executor's counters.
pub struct ExecutorMetrics {
    tasks: IntCounterVec,
    running: IntGauge,
    seconds: Histogram,
    rows: IntCounter,
    bytes: IntCounter,
}

impl ExecutorMetrics {
    /// The counters, registered in `registry`.
    ///
    /// # Errors
    /// [`Error::Metrics`] when a name is already registered there.
    pub fn new(registry: &Registry) -> Result<Self> {
        let m = Self {
            tasks: IntCounterVec::new(
                Opts::new(
                    "verdict_executor_tasks_total",
                    "Tasks this executor ran, by outcome (succeeded, failed).",
                ),
                &["outcome"],
            )?,
            running: IntGauge::new(
                "verdict_executor_tasks_running",
                "Tasks running on this executor now.",
            )?,
            seconds: Histogram::with_opts(HistogramOpts::new(
                "verdict_executor_task_seconds",
                "How long a task took, from its start to its last output row.",
            ))?,
            rows: IntCounter::new(
                "verdict_executor_output_rows_total",
                "Rows the tasks wrote for the next stage or the client.",
            )?,
            bytes: IntCounter::new(
                "verdict_executor_output_bytes_total",
                "Bytes (Arrow IPC) the tasks wrote for the next stage or the client.",
            )?,
        };
        registry.register(Box::new(m.tasks.clone()))?;
        registry.register(Box::new(m.running.clone()))?;
        registry.register(Box::new(m.seconds.clone()))?;
        registry.register(Box::new(m.rows.clone()))?;
        registry.register(Box::new(m.bytes.clone()))?;
        // Both outcomes are shown from the start, at 0.
        m.tasks.with_label_values(&["succeeded"]);
        m.tasks.with_label_values(&["failed"]);
        Ok(m)
    }
}

/// Ballista's execution engine with every task counted in [`ExecutorMetrics`].
pub struct MeteredEngine {
    inner: Arc<dyn ExecutionEngine>,
    metrics: Arc<ExecutorMetrics>,
}

impl MeteredEngine {
    /// Counts the tasks of `inner`'s stages.
    pub fn new(inner: Arc<dyn ExecutionEngine>, metrics: Arc<ExecutorMetrics>) -> Self {
        Self { inner, metrics }
    }
}

impl ExecutionEngine for MeteredEngine {
    fn create_query_stage_exec(
        &self,
        job_id: JobId,
        stage_id: usize,
        task_id: usize,
        global_output_partition_ids: Vec<usize>,
        plan: Arc<dyn ExecutionPlan>,
        work_dir: &str,
        config: &SessionConfig,
    ) -> DfResult<Arc<dyn QueryStageExecutor>> {
        let inner = self.inner.create_query_stage_exec(
            job_id,
            stage_id,
            task_id,
            global_output_partition_ids,
            plan,
            work_dir,
            config,
        )?;
        Ok(Arc::new(MeteredStage {
            inner,
            metrics: Arc::clone(&self.metrics),
        }))
    }
}

/// One stage of [`MeteredEngine`]: the inner stage, counted.
struct MeteredStage {
    inner: Arc<dyn QueryStageExecutor>,
    metrics: Arc<ExecutorMetrics>,
}

impl fmt::Debug for MeteredStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl fmt::Display for MeteredStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

/// Lowers the running gauge however the task ends (an error, a panic, a cancelled future).
struct Running<'a>(&'a IntGauge);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[async_trait::async_trait]
impl QueryStageExecutor for MeteredStage {
    async fn execute_query_stage(
        &self,
        task_id: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<Vec<ShuffleWritePartition>> {
        let m = &self.metrics;
        m.running.inc();
        let _running = Running(&m.running);
        let started = Instant::now();
        let out = self.inner.execute_query_stage(task_id, context).await;
        m.seconds.observe(started.elapsed().as_secs_f64());
        match &out {
            Ok(parts) => {
                m.tasks.with_label_values(&["succeeded"]).inc();
                m.rows.inc_by(parts.iter().map(|p| p.num_rows).sum());
                m.bytes.inc_by(parts.iter().map(|p| p.num_bytes).sum());
            }
            Err(_) => m.tasks.with_label_values(&["failed"]).inc(),
        }
        out
    }

    fn collect_plan_metrics(&self) -> Vec<MetricsSet> {
        self.inner.collect_plan_metrics()
    }

    fn collect_runtime_stats_reports(&self) -> Vec<RuntimeStatsReport> {
        self.inner.collect_runtime_stats_reports()
    }

    fn collect_window_state_reports(&self) -> DfResult<Vec<WindowStateReport>> {
        self.inner.collect_window_state_reports()
    }

    fn collect_column_stats(&self) -> Vec<TaskColumnStats> {
        self.inner.collect_column_stats()
    }
}

/// What the metrics port answers from.
#[derive(Clone)]
struct Served {
    registry: Registry,
    /// `/readyz`: `None` where the node has no readiness of its own here (the scheduler answers
    /// `/readyz` on its main port).
    ready: Option<Arc<dyn Fn() -> bool + Send + Sync>>,
}

/// Listens on `bind` and serves `/metrics` (the registry's metrics in Prometheus text),
/// `/healthz` and, given `ready`, `/readyz`, until the process ends.
///
/// # Errors
/// [`Error::Io`] when `bind` cannot be listened on.
pub async fn serve(
    bind: SocketAddr,
    registry: Registry,
    ready: Option<Arc<dyn Fn() -> bool + Send + Sync>>,
) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| Error::Io {
            what: format!("listening for metrics on {bind}"),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| Error::Io {
        what: format!("listening for metrics on {bind}"),
        source,
    })?;
    let mut app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }));
    if ready.is_some() {
        app = app.route("/readyz", get(readyz));
    }
    let app = app.with_state(Served { registry, ready });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics server stopped");
        }
    });
    tracing::info!(bind = %local, "metrics on /metrics");
    Ok(local)
}

async fn metrics(State(s): State<Served>) -> impl IntoResponse {
    match prometheus::TextEncoder::new().encode_to_string(&s.registry.gather()) {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
            text,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{e}\n"),
        ),
    }
}

async fn readyz(State(s): State<Served>) -> impl IntoResponse {
    if s.ready.as_ref().is_some_and(|r| r()) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no heartbeat answered by the scheduler yet\n",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::error::DataFusionError;

    #[derive(Debug)]
    struct Fixed(Option<Vec<(u64, u64)>>);

    impl fmt::Display for Fixed {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "fixed")
        }
    }

    #[async_trait::async_trait]
    impl QueryStageExecutor for Fixed {
        async fn execute_query_stage(
            &self,
            _task_id: usize,
            _context: Arc<TaskContext>,
        ) -> DfResult<Vec<ShuffleWritePartition>> {
            match &self.0 {
                Some(parts) => Ok(parts
                    .iter()
                    .enumerate()
                    .map(|(i, &(rows, bytes))| ShuffleWritePartition {
                        partition_id: i as u64,
                        num_rows: rows,
                        num_bytes: bytes,
                        ..Default::default()
                    })
                    .collect()),
                None => Err(DataFusionError::Execution("lost".into())),
            }
        }

        fn collect_plan_metrics(&self) -> Vec<MetricsSet> {
            Vec::new()
        }
    }

    fn stage(inner: Fixed, m: &Arc<ExecutorMetrics>) -> MeteredStage {
        MeteredStage {
            inner: Arc::new(inner),
            metrics: Arc::clone(m),
        }
    }

    #[tokio::test]
    async fn tasks_are_counted_by_outcome_with_their_output() {
        let registry = Registry::new();
        let m = Arc::new(ExecutorMetrics::new(&registry).unwrap());
        let ctx = Arc::new(TaskContext::default());
        let ok = stage(Fixed(Some(vec![(10, 1000), (5, 700)])), &m);
        assert_eq!(
            ok.execute_query_stage(0, ctx.clone()).await.unwrap().len(),
            2
        );
        ok.execute_query_stage(1, ctx.clone()).await.unwrap();
        let bad = stage(Fixed(None), &m);
        assert!(bad.execute_query_stage(2, ctx).await.is_err());
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap();
        for line in [
            "verdict_executor_tasks_total{outcome=\"succeeded\"} 2",
            "verdict_executor_tasks_total{outcome=\"failed\"} 1",
            "verdict_executor_tasks_running 0",
            "verdict_executor_output_rows_total 30",
            "verdict_executor_output_bytes_total 3400",
            "verdict_executor_task_seconds_count 3",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        assert_eq!(ok.to_string(), "fixed");
    }

    #[test]
    fn the_counters_cannot_be_registered_twice_in_one_registry() {
        let registry = Registry::new();
        ExecutorMetrics::new(&registry).unwrap();
        let e = ExecutorMetrics::new(&registry).err().unwrap();
        assert!(e.to_string().contains("metrics"), "{e}");
    }
}
