//! Macro benchmark of the three report queries over a large warehouse, in-process.
//! Run by `bench/reports.py`, which builds the warehouse (10M generated rows) and times DuckDB
//! on the same files in the same run: `VERDICT_BENCH_WAREHOUSE=DIR cargo bench -p verdict-query
//! --bench reports`. Prints one JSON object: per report, the best of `VERDICT_BENCH_RUNS`
//! (default 5) wall times as verdict answers it (`secs`, from `source`, the rollup when it
//! covers the warehouse) and from the decisions table (`raw_secs`, as `--no-rollup`), with row
//! counts. Criterion is not used here: the input is an external multi-GB warehouse and the
//! comparison with DuckDB needs plain best-of-N seconds.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Instant;

use verdict_query::{Catalog, Engine, GroupBy, ReportKind, ReportSpec};

fn main() {
    let Ok(wh) = std::env::var("VERDICT_BENCH_WAREHOUSE") else {
        eprintln!("reports bench: set VERDICT_BENCH_WAREHOUSE to a warehouse (bench/reports.py does); skipping");
        return;
    };
    let runs: usize = std::env::var("VERDICT_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let specs = [
        (
            "volume --by identity,tool",
            ReportKind::Volume,
            vec![GroupBy::Identity, GroupBy::Tool],
        ),
        (
            "denials --by identity,tool",
            ReportKind::Denials,
            vec![GroupBy::Identity, GroupBy::Tool],
        ),
        (
            "rate-limits --by identity,tool,minute",
            ReportKind::RateLimits,
            vec![GroupBy::Identity, GroupBy::Tool, GroupBy::Minute],
        ),
    ];
    let mut out = serde_json::Map::new();
    rt.block_on(async {
        let wh =
            verdict_table::Warehouse::new(std::path::Path::new(&wh).into()).expect("warehouse");
        let snapshot = wh.snapshot(None).await.expect("open warehouse");
        let engine = Engine::open(&snapshot, Catalog::builtin())
            .await
            .expect("open warehouse");
        for (name, kind, by) in specs {
            let mut spec = ReportSpec::new(kind);
            spec.by = by;
            let source = engine.report_source(&spec).await.expect("report source");
            let (secs, rows) = best_of(&engine, &spec, runs).await;
            spec.raw = true;
            let (raw_secs, raw_rows) = best_of(&engine, &spec, runs).await;
            out.insert(
                name.to_string(),
                serde_json::json!({
                    "secs": secs,
                    "rows": rows,
                    "source": source.table(),
                    "raw_secs": raw_secs,
                    "raw_rows": raw_rows,
                }),
            );
        }
    });
    println!("{}", serde_json::Value::Object(out));
}

/// The best wall time of `runs` runs of a report, and its row count.
async fn best_of(engine: &Engine, spec: &ReportSpec, runs: usize) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut rows = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let r = engine.report(spec).await.expect("report");
        best = best.min(t.elapsed().as_secs_f64());
        rows = r.num_rows();
    }
    (best, rows)
}
