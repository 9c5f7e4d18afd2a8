#!/usr/bin/env python3
"""Ingest benchmark: verdict vs DuckDB on the same generated PolicyLayer file, in one run.

    python3 bench/ingest.py [--lines 1000000] [--seed 42] [--work /tmp/verdict-bench] [--redaction]

Needs `pip install duckdb`; the reader check also uses `duckdb-extension-delta` and `deltalake`. Builds the release binaries, generates the input with
verdict-gen (deterministic), then measures wall time and peak RSS of:
  - verdict ingest (raw kept, zstd, sorted, partitioned by day);
  - DuckDB: COPY (SELECT *, day FROM read_json(...) ORDER BY ts) TO dir (FORMAT parquet,
    COMPRESSION zstd, PARTITION_BY (day)), in a child process with its default 2 threads;
and checks that DuckDB (`delta_scan`) and the Python `deltalake` package read verdict's Delta
table without help, counts exact.
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

from common import RELEASE, build_release, generate, run_measured, warm_cache

DUCKDB_COPY = """
import duckdb, sys
src, dst = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute(f'''COPY (SELECT *, CAST(CAST("timestamp" AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS DATE) AS day
    FROM read_json('{src}', format='newline_delimited') ORDER BY "timestamp")
    TO '{dst}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (day))''')
"""


def read_as_outsiders(table, rows):
    """Counts the `decisions` Delta table with DuckDB's delta extension and the Python
    `deltalake` package, when they are installed (`pip install duckdb-extension-delta deltalake`),
    and checks that both see exactly the rows ingest wrote."""
    out = {}
    try:
        import duckdb
        import duckdb_extension_delta
        ext_dir = Path(duckdb_extension_delta.__file__).parent / "extensions" / ("v" + duckdb.__version__)
        ext = next(ext_dir.glob("*.duckdb_extension"))
        con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
        con.execute(f"LOAD '{ext}'")
        out["duckdb_rows"], out["duckdb_days"] = con.execute(
            f"SELECT count(*), count(DISTINCT day) FROM delta_scan('{table}')").fetchone()
    except (ImportError, StopIteration) as e:
        out["duckdb"] = f"not checked: {e!r}"
    try:
        import deltalake
        dt = deltalake.DeltaTable(str(table))
        n = deltalake.QueryBuilder().register("t", dt).execute("SELECT count(*) AS n FROM t").read_all()
        out["deltalake_rows"] = int(n.column("n")[0].as_py())
    except ImportError as e:
        out["deltalake"] = f"not checked: {e!r}"
    for k in ("duckdb_rows", "deltalake_rows"):
        assert out.get(k, rows) == rows, (k, out, rows)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--format", default="policylayer", help="input format (for adapters)")
    ap.add_argument("--input", help="use this file instead of generating one")
    ap.add_argument("--work", default="/tmp/verdict-bench")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--skip-duckdb", action="store_true")
    ap.add_argument("--redaction", action="store_true",
                    help="also ingest with --no-builtin-redaction and report redaction's cost")
    args = ap.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if not args.skip_build:
        build_release()
    src = Path(args.input) if args.input else generate(args.lines, args.seed, work / f"pl-{args.lines}-{args.seed}.jsonl")
    size_mb = src.stat().st_size / 1e6
    lines = sum(1 for _ in open(src, "rb"))

    # Warm the page cache so that neither tool pays for the first read of the file.
    warm_cache(src)
    wh = work / "wh"
    shutil.rmtree(wh, ignore_errors=True)
    secs, rss, out = run_measured(
        [str(RELEASE / "verdict"), "ingest", str(src), "--warehouse", str(wh), "--format", "json",
         "--input-format", args.format, "--progress", "never"],
        stdout=__import__("subprocess").PIPE,
    )
    summary = json.loads(out)
    assert summary["rows_written"] + summary["quarantined"] + summary["duplicates"] >= lines * 0.99, summary
    results = {"input_mb": round(size_mb, 1), "lines": lines,
               "verdict": {"secs": secs, "events_per_s": lines / secs, "mb_per_s": size_mb / secs, "peak_rss_mib": rss,
                           "rows": summary["rows_written"]}}

    if args.redaction:
        # The same input without the built-in rules, best of two runs each way.
        off_wh = work / "wh-noredact"
        best_off = None
        for _ in range(2):
            shutil.rmtree(off_wh, ignore_errors=True)
            osecs, orss, _ = run_measured(
                [str(RELEASE / "verdict"), "ingest", str(src), "--warehouse", str(off_wh), "--format", "json",
                 "--input-format", args.format, "--progress", "never", "--no-builtin-redaction"],
                stdout=__import__("subprocess").PIPE,
            )
            best_off = osecs if best_off is None else min(best_off, osecs)
        shutil.rmtree(wh, ignore_errors=True)
        again, _, _ = run_measured(
            [str(RELEASE / "verdict"), "ingest", str(src), "--warehouse", str(wh), "--format", "json",
             "--input-format", args.format, "--progress", "never"],
            stdout=__import__("subprocess").PIPE,
        )
        best_on = min(secs, again)
        results["redaction"] = {"builtins_on_secs": best_on, "builtins_off_secs": best_off,
                                "cost_pct": round((best_on / best_off - 1) * 100, 1)}

    import duckdb
    results["readers"] = read_as_outsiders(wh / "decisions", summary["rows_written"])

    if not args.skip_duckdb:
        dst = work / "duck"
        shutil.rmtree(dst, ignore_errors=True)
        dsecs, drss, _ = run_measured([sys.executable, "-c", DUCKDB_COPY, str(src), str(dst)])
        results["duckdb"] = {"secs": dsecs, "events_per_s": lines / dsecs, "mb_per_s": size_mb / dsecs, "peak_rss_mib": drss,
                             "version": duckdb.__version__}
        results["throughput_ratio_verdict_over_duckdb"] = dsecs / secs

    print(json.dumps(results, indent=2))
    v = results["verdict"]
    print(f"\n| tool | time (s) | events/s | MB/s | peak RSS (MiB) |\n|---|---|---|---|---|")
    print(f"| verdict ingest | {v['secs']:.2f} | {v['events_per_s']:,.0f} | {v['mb_per_s']:.1f} | {v['peak_rss_mib']:.0f} |")
    if "redaction" in results:
        r = results["redaction"]
        print(f"\nredaction (built-in rules on vs off, best of 2): {r['builtins_on_secs']:.2f} s vs {r['builtins_off_secs']:.2f} s: {r['cost_pct']:+.1f}%")
    if "duckdb" in results:
        d = results["duckdb"]
        print(f"| DuckDB {d['version']} COPY | {d['secs']:.2f} | {d['events_per_s']:,.0f} | {d['mb_per_s']:.1f} | {d['peak_rss_mib']:.0f} |")
        print(f"\nthroughput ratio verdict/DuckDB: {results['throughput_ratio_verdict_over_duckdb']:.2f}")


if __name__ == "__main__":
    main()
