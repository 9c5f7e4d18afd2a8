#!/usr/bin/env python3
"""Report benchmark: verdict's report queries (in-process, DataFusion) vs DuckDB on the same
Parquet files, in one run.

    python3 bench/reports.py [--lines 11500000] [--seed 7] [--work /tmp/verdict-bench-10m]

Generates the traffic with verdict-gen, ingests it with `verdict ingest` (release), then times
best-of-N wall time of volume/denials/rate-limits grouped as the issue asks, with
`cargo bench -p verdict-query --bench reports` (as verdict answers them: from the ingest-time
rollup; and from the decisions table, as `--no-rollup`), and DuckDB running equivalent SQL over
`read_parquet(.../decisions/*/*.parquet, hive_partitioning=true)` with its default threads: the
headline ratio. As an extra, DuckDB also runs the same questions on verdict's rollup files.
"""

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

from common import RELEASE, ROOT, build_release, ensure_warehouse

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

# The same questions over verdict's rollup files (`calls` per group, `first_ts`/`last_ts`).
DUCK_ROLLUP_SQL = {
    "volume --by identity,tool": """
        SELECT identity, tool, sum(calls) AS calls,
          coalesce(sum(calls) FILTER (WHERE decision = 'allow'), 0) AS allow,
          coalesce(sum(calls) FILTER (WHERE decision = 'deny'), 0) AS deny,
          coalesce(sum(calls) FILTER (WHERE decision = 'rate_limited'), 0) AS rate_limited,
          coalesce(sum(calls) FILTER (WHERE decision = 'approval_required'), 0) AS approval_required,
          coalesce(sum(calls) FILTER (WHERE decision = 'error'), 0) AS error,
          coalesce(sum(calls) FILTER (WHERE decision = 'unknown'), 0) AS unknown
        FROM rh GROUP BY identity, tool ORDER BY calls DESC, identity, tool""",
    "denials --by identity,tool": """
        WITH d AS (SELECT identity, tool, rule, message, calls, first_ts, last_ts FROM rh WHERE decision = 'deny'),
        r AS (SELECT identity, tool, rule, sum(calls) AS n, arg_max(message, calls) AS msg FROM d GROUP BY ALL),
        top AS (SELECT identity, tool, arg_max(rule, n) AS top_rule, max(n) AS top_rule_calls,
                       arg_max(msg, n) AS top_message FROM r GROUP BY ALL)
        SELECT identity, tool, sum(calls) AS denied, count(DISTINCT d.rule) AS rules,
               any_value(top.top_rule), any_value(top.top_rule_calls), any_value(top.top_message),
               min(first_ts) AS first_seen, max(last_ts) AS last_seen
        FROM d JOIN top USING (identity, tool) GROUP BY identity, tool ORDER BY denied DESC, identity, tool""",
    "rate-limits --by identity,tool,minute": """
        SELECT bucket AS minute, identity, tool, sum(calls) AS rate_limited, arg_max(rule, calls) AS counter,
               sum(calls) AS peak_per_minute, min(first_ts) AS first_seen, max(last_ts) AS last_seen
        FROM rm WHERE decision = 'rate_limited'
        GROUP BY identity, tool, bucket ORDER BY minute, rate_limited DESC, identity, tool""",
}


CLI_ARGS = {
    "volume --by identity,tool": ["volume", "--by", "identity,tool"],
    "denials --by identity,tool": ["denials", "--by", "identity,tool"],
    "rate-limits --by identity,tool,minute": ["rate-limits", "--by", "identity,tool,minute"],
}


def time_cli(wh, runs):
    """Best wall time of `runs` runs of the release `verdict report` per question, from the
    rollup and with --no-rollup, in the in-process bench's shape. The source is inferred: the
    rollup tables exist (`SHOW TABLES`) and the question is one the rollup answers."""
    out = {}
    tables = subprocess.run([str(RELEASE / "verdict"), "-w", str(wh), "sql", "SHOW TABLES", "--format", "csv"],
                            check=True, capture_output=True, text=True).stdout
    has_rollup = "rollup_hour" in tables and "rollup_minute" in tables
    for name, argv in CLI_ARGS.items():
        res = {}
        for key, extra in [("", []), ("raw_", ["--no-rollup"])]:
            best, rows = float("inf"), 0
            for _ in range(runs):
                t = time.perf_counter()
                p = subprocess.run([str(RELEASE / "verdict"), "-w", str(wh), "report", *argv, "--format", "csv", *extra],
                                   check=True, capture_output=True, text=True)
                best = min(best, time.perf_counter() - t)
                rows = len(p.stdout.splitlines()) - 1
            res[key + "secs"], res[key + "rows"] = best, rows
        minute = "minute" in name or name.startswith("rate-limits")
        res["source"] = ("rollup_minute" if minute else "rollup_hour") if has_rollup else "decisions"
        out[name] = res
    return out


def best_of(con, sql, runs):
    """Best wall time of `runs` runs of `sql`, and its row count."""
    best, n = float("inf"), 0
    for _ in range(runs):
        t = time.perf_counter()
        n = con.execute(sql).to_arrow_table().num_rows
        best = min(best, time.perf_counter() - t)
    return best, n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=11_500_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--work", default="/tmp/verdict-bench-10m")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--cli", action="store_true",
                    help="time the release `verdict report` process (start-up and warehouse open "
                         "included) instead of the in-process cargo bench")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if not args.skip_build:
        build_release()
    # 60 ms between calls on average: 11.5M calls span 9 day partitions.
    wh = ensure_warehouse(work / "wh", args.lines, args.seed, work)
    if args.cli:
        verdict = time_cli(wh, args.runs)
    else:
        env = dict(os.environ, VERDICT_BENCH_WAREHOUSE=str(wh), VERDICT_BENCH_RUNS=str(args.runs))
        out = subprocess.run(["cargo", "bench", "-q", "-p", "verdict-query", "--bench", "reports"],
                             cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
        verdict = json.loads(out.strip().splitlines()[-1])

    import duckdb
    con = duckdb.connect()
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{wh}/decisions/*/*.parquet', hive_partitioning=true)")
    con.execute(f"CREATE VIEW rm AS SELECT * FROM read_parquet('{wh}/rollup/minute/*/*.parquet', hive_partitioning=true)")
    con.execute(f"CREATE VIEW rh AS SELECT * FROM read_parquet('{wh}/rollup/hour/*/*.parquet', hive_partitioning=true)")
    rows = con.execute("SELECT count(*) FROM t").fetchone()[0]
    rollup_rows = {g: con.execute(f"SELECT count(*), sum(calls) FROM {v}").fetchone() for g, v in [("minute", "rm"), ("hour", "rh")]}
    for g, (_, calls) in rollup_rows.items():
        assert calls == rows, f"the {g} rollup counts {calls} calls for {rows} rows"
    results = {"rows": rows, "duckdb_version": duckdb.__version__,
               "rollup_rows": {g: n for g, (n, _) in rollup_rows.items()}, "reports": {}}
    for name, sql in DUCK_SQL.items():
        best, n = best_of(con, sql, args.runs)
        rbest, rn = best_of(con, DUCK_ROLLUP_SQL[name], args.runs)
        v = verdict[name]
        assert v["rows"] == v["raw_rows"] == n == rn, f"{name}: row counts differ: {v}, DuckDB {n}, {rn}"
        results["reports"][name] = {
            "verdict_source": v["source"], "verdict_secs": v["secs"], "verdict_rows": v["rows"],
            "verdict_raw_secs": v["raw_secs"], "duckdb_secs": best, "duckdb_rows": n,
            "duckdb_rollup_secs": rbest, "ratio_verdict_over_duckdb": v["secs"] / best,
            "ratio_verdict_raw_over_duckdb": v["raw_secs"] / best,
            "ratio_verdict_over_duckdb_rollup": v["secs"] / rbest,
        }
    print(json.dumps(results, indent=2))
    print(f"\n{rows:,} rows ({rollup_rows['minute'][0]:,} minute-rollup rows, {rollup_rows['hour'][0]:,} hour-rollup rows); "
          f"best of {args.runs}; DuckDB {duckdb.__version__}\n")
    print("| report | verdict (source) | DuckDB on decisions | ratio verdict/DuckDB | verdict --no-rollup | ratio | DuckDB on the rollup | result rows |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results["reports"].items():
        print(f"| `{name}` | {r['verdict_secs']:.3f} s ({r['verdict_source']}) | {r['duckdb_secs']:.3f} s | "
              f"{r['ratio_verdict_over_duckdb']:.2f} | {r['verdict_raw_secs']:.3f} s | {r['ratio_verdict_raw_over_duckdb']:.2f} | "
              f"{r['duckdb_rollup_secs']:.3f} s | {r['verdict_rows']:,} |")

if __name__ == "__main__":
    main()
