#!/usr/bin/env python3
"""Compliance report benchmark: `verdict report compliance` over a month of generated traffic.

    python3 bench/compliance.py [--lines 2000000] [--seed 7] [--work /tmp/verdict-bench-compliance]

Generates LINES PolicyLayer lines with verdict-gen spread over 30 days (from 2026-11-02), ingests
them (release build), then times the whole report (best of --runs wall time, one process each)
and, to show where the time goes, each section's query alone through `verdict sql` (the queries
are taken from the report's own collapsed SQL). The remainder (report minus the sum of the
queries) is process start, opening the warehouse, reading the quarantine and rendering the HTML
and charts; each `verdict sql` run also pays a process start and a warehouse open, measured with
a trivial query and subtracted.
"""

import argparse
import html
import re
import subprocess
import time
from pathlib import Path

from common import RELEASE, build_release, ensure_warehouse

MONTH_MS = 30 * 86_400_000
PERIOD = ["--since", "2026-11-02", "--until", "2026-12-02"]


def best(argv, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", default="/tmp/verdict-bench-compliance")
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    if not a.no_build:
        build_release()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    wh = work / f"wh-{a.lines}-{a.seed}"
    gap = max(1, MONTH_MS // a.lines)
    ensure_warehouse(wh, a.lines, a.seed, work, gap_ms=gap)
    verdict = str(RELEASE / "verdict")
    out = work / "report.html"
    argv = [verdict, "-w", str(wh), "report", "compliance", *PERIOD, "--output", str(out)]
    total = best(argv, a.runs)
    page = out.read_text()
    queries = [html.unescape(q) for q in re.findall(r'<pre class="sql">(.*?)</pre>', page, re.S)]
    base = best([verdict, "-w", str(wh), "sql", "--format", "csv", "SELECT 1"], a.runs)
    print(f"rows: {a.lines:,} over 30 days (mean gap {gap} ms); report {out.stat().st_size:,} bytes")
    print(f"compliance report: {total:.2f} s (best of {a.runs})")
    print(f"verdict sql process + warehouse open (SELECT 1): {base:.3f} s, subtracted below")
    spent = 0.0
    for q in queries:
        t = best([verdict, "-w", str(wh), "sql", "--format", "csv", q], a.runs) - base
        spent += max(t, 0.0)
        first = " ".join(q.split())[:90]
        print(f"  {t:6.2f} s  {first}")
    print(f"queries: {spent:.2f} s; the rest (start, open, quarantine, HTML, charts): {total - spent:.2f} s")


if __name__ == "__main__":
    main()
