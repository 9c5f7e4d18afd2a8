#!/usr/bin/env python3
"""Adapter benchmark: the same generated traffic as PolicyLayer, agentgateway and OPA lines,
each ingested by the release `verdict ingest` in one run (agentgateway both as JSON and in its
default text format, `<time><TAB>info<TAB>request k=v ...`), so that the adapters' cost shows as a
throughput ratio against the home format.

    python3 bench/adapters.py [--lines 1000000] [--seed 42] [--runs 3] [--work /tmp/verdict-bench]

The traffic is verdict-gen's (one seed), rendered per format by verdict-testkit; the OPA lines
are console decision logs in the opa-envoy layout with an MCP parsed_body. Each ingest starts
from an empty warehouse with the page cache warm; the best of --runs is reported. The target
(issues 5 and 18): agentgateway (JSON and text) and OPA within 1.5x of PolicyLayer's records
per second.
"""

import argparse
import json
import shutil
import subprocess
from pathlib import Path

from common import RELEASE, build_release, generate, run_measured, warm_cache

# Each benchmark file: (name, verdict-gen target, --input-format).
FORMATS = [
    ("policylayer", "policylayer", "policylayer"),
    ("agentgateway", "agentgateway", "agentgateway"),
    ("agentgateway-text", "agentgateway-text", "agentgateway"),
    ("opa", "opa", "opa"),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", default="/tmp/verdict-bench")
    ap.add_argument("--skip-build", action="store_true")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if not args.skip_build:
        build_release()
    results = {}
    for fmt, target, input_format in FORMATS:
        ext = "log" if fmt.endswith("-text") else "jsonl"
        src = generate(args.lines, args.seed, work / f"{fmt}-{args.lines}-{args.seed}.{ext}", fmt=target)
        warm_cache(src)
        best = None
        for _ in range(args.runs):
            wh = work / f"wh-{fmt}"
            shutil.rmtree(wh, ignore_errors=True)
            secs, rss, out = run_measured(
                [str(RELEASE / "verdict"), "ingest", str(src), "--warehouse", str(wh), "--format", "json",
                 "--input-format", input_format, "--progress", "never"],
                stdout=subprocess.PIPE,
            )
            s = json.loads(out)
            assert s["rows_written"] == args.lines, (fmt, s["rows_written"])
            assert s["quarantined"] == 0, (fmt, s["quarantined"])
            if best is None or secs < best[0]:
                best = (secs, rss, src.stat().st_size)
        results[fmt] = best
    base = args.lines / results["policylayer"][0]
    print(f"{args.lines:,} records per format, best of {args.runs}, release build")
    print("| format | bytes/record | seconds | records/s | MB/s | peak RSS | time per record vs policylayer |")
    print("|---|---|---|---|---|---|---|")
    for fmt, _, _ in FORMATS:
        secs, rss, size = results[fmt]
        eps = args.lines / secs
        print(f"| {fmt} | {size // args.lines} | {secs:.2f} | {eps:,.0f} | {size / 1e6 / secs:.1f} | {rss:.0f} MiB | {base / eps:.2f} |")


if __name__ == "__main__":
    main()
