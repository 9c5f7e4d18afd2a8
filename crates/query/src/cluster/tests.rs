use std::sync::Arc;

use datafusion::physical_plan::collect;
use datafusion::prelude::SessionContext;
use datafusion_proto::bytes::{
    logical_plan_from_bytes_with_extension_codec, logical_plan_to_bytes_with_extension_codec,
    physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::PhysicalExtensionCodec;
use verdict_table::{Table, Warehouse};

use super::*;
use crate::catalog::{Catalog, Risk};
use crate::engine::table_schema;
use crate::testutil::warehouse;
use crate::udaf::weighted_mode_udaf;
use crate::udf::{tool_risk_source_udf, tool_risk_udf};

#[test]
fn cluster_urls() {
    assert_eq!(
        Cluster::parse("df://sched.internal:50051").unwrap().url(),
        "df://sched.internal:50051"
    );
    assert_eq!(
        Cluster::parse("df://127.0.0.1").unwrap().url(),
        "df://127.0.0.1:50050"
    );
    for (bad, why) in [
        ("http://h:1", "a cluster is written df://HOST:PORT"),
        ("df://h:1/x", "a cluster URL has no path (df://HOST:PORT)"),
        ("h:1", "a cluster is written df://HOST:PORT"),
    ] {
        let e = Cluster::parse(bad).unwrap_err().to_string();
        assert_eq!(e, format!("cluster {bad}: {why}"));
    }
}

#[test]
fn the_catalogue_travels_whole() {
    let mut c = Catalog::builtin();
    c.insert(None, "weather", Risk::Destructive);
    c.insert(Some("leapfrog"), "navigate", Risk::Read);
    let back = Catalog::from_wire(&c.to_wire()).unwrap();
    assert_eq!(back, c);
    assert!(Catalog::from_wire(b"{}").is_err());
}

const QUERY: &str = "\
    SELECT tool, tool_risk(tool) AS risk, tool_risk_source(tool, server) AS source, \
           count(*) AS calls, weighted_mode(identity, 1)['value'] AS top, min(day) AS first_day \
    FROM decisions WHERE tool IS NOT NULL GROUP BY tool, server \
    UNION ALL \
    SELECT tool, risk, risk_source, 0, server, NULL FROM catalog_entries WHERE tool = 'weather' \
    ORDER BY tool, calls";

/// A plan over the snapshot's file list, with the user's catalogue, sent as a client sends it
/// and run where neither the tables nor the functions are registered (as on a scheduler and an
/// executor), answers exactly as where it was planned.
#[tokio::test]
async fn a_plan_runs_where_nothing_is_registered() {
    let dir = warehouse();
    let snap = Warehouse::new(dir.path().into())
        .unwrap()
        .snapshot(None)
        .await
        .unwrap();
    let mut catalog = Catalog::builtin();
    catalog.insert(None, "weather", Risk::Destructive);
    let catalog = Arc::new(catalog);

    let client = SessionContext::new();
    let spec = FilesSpec::of(&snap, Table::Decisions, true).unwrap();
    assert_eq!(spec.files.len(), 4, "{spec:?}");
    assert!(
        spec.store == "file:///" && spec.root.ends_with("/decisions"),
        "{spec:?}"
    );
    let decisions = SnapshotFiles::new(spec, table_schema()).unwrap();
    client
        .register_table("decisions", Arc::new(decisions))
        .unwrap();
    client
        .register_table(
            "catalog_entries",
            Arc::new(CatalogEntries::new(Arc::clone(&catalog))),
        )
        .unwrap();
    client.register_udf(tool_risk_udf(Arc::clone(&catalog)));
    client.register_udf(tool_risk_source_udf(Arc::clone(&catalog)));
    client.register_udaf(weighted_mode_udaf());
    let df = client.sql(QUERY).await.unwrap();
    let plan = df.clone().into_optimized_plan().unwrap();
    let expected = arrow::util::pretty::pretty_format_batches(&df.collect().await.unwrap())
        .unwrap()
        .to_string();
    // The user's entry classifies `weather` (seen in the data and listed in the catalogue).
    assert!(
        expected.contains(
            "| weather              | destructive | catalog   | 1     | carol | 2026-11-03 |"
        ),
        "{expected}"
    );
    assert!(
        expected.contains(
            "| weather              | destructive | catalog   | 0     |       |            |"
        ),
        "{expected}"
    );

    // Client -> scheduler: the logical plan.
    let bytes =
        logical_plan_to_bytes_with_extension_codec(&plan, &LogicalCodec::default()).unwrap();
    let scheduler = SessionContext::new();
    let decoded = logical_plan_from_bytes_with_extension_codec(
        &bytes,
        &scheduler.task_ctx(),
        &LogicalCodec::default(),
    )
    .unwrap();
    let physical = scheduler
        .state()
        .create_physical_plan(&decoded)
        .await
        .unwrap();

    // Scheduler -> executor: the physical plan.
    let bytes =
        physical_plan_to_bytes_with_extension_codec(physical, &PhysicalCodec::default()).unwrap();
    let executor = SessionContext::new();
    let task = physical_plan_from_bytes_with_extension_codec(
        &bytes,
        &executor.task_ctx(),
        &PhysicalCodec::default(),
    )
    .unwrap();
    let got = collect(task, executor.task_ctx()).await.unwrap();
    let got = arrow::util::pretty::pretty_format_batches(&got)
        .unwrap()
        .to_string();
    assert_eq!(got, expected);
}

#[test]
fn a_foreign_catalogue_blob_is_a_clear_error() {
    let e = LogicalCodec::default()
        .try_decode_udf("tool_risk", b"verdict-catalog:not json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("verdict tool catalogue in the plan"), "{e}");
    let e = PhysicalCodec::default()
        .try_decode_udf("nope", b"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope"), "{e}");
}
