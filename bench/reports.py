#!/usr/bin/env python3
"""Report benchmark: verdict's report queries (in-process, DataFusion) vs DuckDB on the same
Parquet files, in one run.

    python3 bench/reports.py [--lines 10000000] [--seed 7] [--work /tmp/verdict-bench-reports]

Generates the traffic with verdict-gen, ingests it with `verdict ingest` (release), then times
best-of-N wall time of volume/denials/rate-limits grouped as the issue asks, with
`cargo bench -p verdict-query --bench reports`, and DuckDB running equivalent SQL over
`read_parquet(.../decisions/*/*.parquet, hive_partitioning=true)` with its default threads.
"""

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

from common import ROOT, build_release, ensure_warehouse

DUCK_SQL = {
    "volume --by identity,tool": """
        SELECT identity, tool, count(*) AS calls,
          count(*) FILTER (WHERE decision = 'allow') AS allow,
          count(*) FILTER (WHERE decision = 'deny') AS deny,
          count(*) FILTER (WHERE decision = 'rate_limited') AS rate_limited,
          count(*) FILTER (WHERE decision = 'approval_required') AS approval_required,
          count(*) FILTER (WHERE decision = 'error') AS error,
          count(*) FILTER (WHERE decision = 'unknown') AS unknown
        FROM t GROUP BY identity, tool ORDER BY calls DESC, identity, tool""",
    "denials --by identity,tool": """
        WITH d AS (SELECT identity, tool, rule, message, ts FROM t WHERE decision = 'deny'),
        r AS (SELECT identity, tool, rule, count(*) AS n, arg_max(message, ts) AS msg FROM d GROUP BY ALL),
        top AS (SELECT identity, tool, arg_max(rule, n) AS top_rule, max(n) AS top_rule_calls,
                       arg_max(msg, n) AS top_message FROM r GROUP BY ALL)
        SELECT identity, tool, count(*) AS denied, count(DISTINCT d.rule) AS rules,
               any_value(top.top_rule), any_value(top.top_rule_calls), any_value(top.top_message),
               min(ts) AS first_seen, max(ts) AS last_seen
        FROM d JOIN top USING (identity, tool) GROUP BY identity, tool ORDER BY denied DESC, identity, tool""",
    "rate-limits --by identity,tool,minute": """
        WITH r AS (SELECT identity, tool, date_trunc('minute', ts) AS minute, rule, ts FROM t
                   WHERE decision = 'rate_limited')
        SELECT minute, identity, tool, count(*) AS rate_limited, arg_max(rule, ts) AS counter,
               count(*) AS peak_per_minute, min(ts) AS first_seen, max(ts) AS last_seen
        FROM r GROUP BY identity, tool, minute ORDER BY minute, rate_limited DESC, identity, tool""",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=11_500_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--work", default="/tmp/verdict-bench-10m")
    ap.add_argument("--skip-build", action="store_true")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if not args.skip_build:
        build_release()
    # 60 ms between calls on average: 11.5M calls span 9 day partitions.
    wh = ensure_warehouse(work / "wh", args.lines, args.seed, work)
    env = dict(os.environ, VERDICT_BENCH_WAREHOUSE=str(wh), VERDICT_BENCH_RUNS=str(args.runs))
    out = subprocess.run(["cargo", "bench", "-q", "-p", "verdict-query", "--bench", "reports"],
                         cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    verdict = json.loads(out.strip().splitlines()[-1])

    import duckdb
    con = duckdb.connect()
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{wh}/decisions/*/*.parquet', hive_partitioning=true)")
    rows = con.execute("SELECT count(*) FROM t").fetchone()[0]
    results = {"rows": rows, "duckdb_version": duckdb.__version__, "reports": {}}
    for name, sql in DUCK_SQL.items():
        best = float("inf")
        n = 0
        for _ in range(args.runs):
            t = time.perf_counter()
            n = con.execute(sql).to_arrow_table().num_rows
            best = min(best, time.perf_counter() - t)
        v = verdict[name]
        results["reports"][name] = {"verdict_secs": v["secs"], "verdict_rows": v["rows"], "duckdb_secs": best,
                                    "duckdb_rows": n, "ratio_verdict_over_duckdb": v["secs"] / best}
    print(json.dumps(results, indent=2))
    print(f"\n{rows:,} rows; best of {args.runs}; DuckDB {duckdb.__version__}\n")
    print("| report | verdict (s) | DuckDB (s) | time ratio verdict/DuckDB | result rows |\n|---|---|---|---|---|")
    for name, r in results["reports"].items():
        print(f"| {name} | {r['verdict_secs']:.3f} | {r['duckdb_secs']:.3f} | {r['ratio_verdict_over_duckdb']:.2f} | {r['verdict_rows']:,} / {r['duckdb_rows']:,} |")


if __name__ == "__main__":
    main()
