//! Queries on an Apache DataFusion Ballista cluster (`--cluster df://HOST:PORT`). The client
//! reads the Delta snapshot and plans; the plan it sends to the scheduler names every data file
//! of the snapshot explicitly ([`tables`]), and carries the tool catalogue with the functions
//! and the `catalog_entries` table ([`codec`]), so that the scheduler and each executor read
//! exactly the files the client would and classify tools as it would. The scheduler and the
//! executors are started with the same codecs (crate `verdict-cluster`).

mod codec;
mod tables;

use std::sync::Arc;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use datafusion::execution::context::{SessionConfig, SessionContext};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionStateBuilder;

pub use codec::{LogicalCodec, PhysicalCodec};
pub(crate) use tables::{CatalogEntries, FilesSpec, SnapshotFiles};

use crate::error::{Error, Result};

/// The scheduler port when a cluster URL names none (Ballista's default).
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// A Ballista scheduler to run queries on, written `df://HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    host: String,
    port: u16,
}

impl Cluster {
    /// Parses `df://HOST[:PORT]` (port 50050 when left out).
    ///
    /// # Errors
    /// [`Error::Cluster`] for another scheme, a path, or no host.
    pub fn parse(url: &str) -> Result<Self> {
        let err = |message: &str| Error::Cluster {
            url: url.to_string(),
            message: message.to_string(),
        };
        let parsed = url::Url::parse(url).map_err(|e| err(&e.to_string()))?;
        if parsed.scheme() != "df" {
            return Err(err("a cluster is written df://HOST:PORT"));
        }
        if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
            return Err(err("a cluster URL has no path (df://HOST:PORT)"));
        }
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| err("the URL names no host"))?;
        Ok(Self {
            host: host.to_string(),
            port: parsed.port().unwrap_or(DEFAULT_SCHEDULER_PORT),
        })
    }

    /// `df://HOST:PORT`.
    pub fn url(&self) -> String {
        format!("df://{}:{}", self.host, self.port)
    }

    /// A context whose queries run on the cluster: Ballista's planner sends every plan to the
    /// scheduler (only `information_schema` questions are answered by the client itself).
    pub(crate) async fn context(
        &self,
        config: SessionConfig,
        runtime: Arc<RuntimeEnv>,
    ) -> Result<SessionContext> {
        let config = config
            // Ballista 55's adaptive planner can leave a job waiting forever after an executor
            // is lost mid-stage; the static planner runs the lost tasks again elsewhere.
            .with_ballista_adaptive_query_planner(false)
            // Its static planner swaps hash join inputs after DataFusion built the join's
            // dynamic filter, which fails the job: no dynamic filters on a cluster (the master
            // switch; the join's own switch is reset by it when the settings reach the nodes).
            .set_bool("datafusion.optimizer.enable_dynamic_filter_pushdown", false)
            // Results and shuffled partitions travel as gRPC messages of one record batch each;
            // Ballista's default cap of 16 MiB refuses a large group-by's final batch (a free
            // identity x tool x hour query over 30M rows sent one of 38 MB).
            .with_ballista_grpc_client_max_message_size(GRPC_MAX_MESSAGE_BYTES)
            .with_ballista_logical_extension_codec(Arc::new(LogicalCodec::default()))
            .with_ballista_physical_extension_codec(Arc::new(PhysicalCodec::default()));
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .build();
        SessionContext::remote_with_state(&self.url(), state)
            .await
            .map_err(|e| Error::Cluster {
                url: self.url(),
                message: e.to_string(),
            })
    }
}

/// The largest gRPC message a cluster's client, scheduler and executors send or accept (a record
/// batch of a result or a shuffled partition, a plan with its file lists).
pub const GRPC_MAX_MESSAGE_BYTES: usize = 512 * 1024 * 1024;

impl std::fmt::Display for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url())
    }
}

#[cfg(test)]
mod tests;
