#!/usr/bin/env python3
"""Cluster benchmark: the same questions answered by one `verdict` process and by a Ballista
cluster of one scheduler and two executors on this machine (`verdict cluster ...`, loopback),
over one warehouse of generated rows, in one run.

    python3 bench/cluster.py [--lines 30000000] [--seed 7] [--work /tmp/verdict-bench-cluster]
                             [--runs 3] [--concurrency 1]

Questions: `report volume --no-rollup` (a scan of every decision), a free SQL group-by over
identity x tool x hour, and a timeline of the busiest identity. Each is timed as a whole process
(best and worst of --runs), local and on the cluster, and the two JSON answers must be equal.
On a machine of two cores the cluster cannot be faster: the figures are the overhead per query.
The scan rate per executor (decisions per second of the cluster's `--no-rollup` volume, divided by
the executors) gives the projection printed at the end: executors needed to scan a year of
100M calls a day in 10 seconds, all else (network, store) scaling with them.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from common import RELEASE, build_release, ensure_warehouse, free_port


def ready(port, want):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"GET /readyz HTTP/1.0\r\n\r\n")
            return want in s.recv(4096).decode(errors="replace")
    except OSError:
        return False


def start_cluster(work, executors, concurrency):
    port = free_port()
    bind = f"127.0.0.1:{port}"
    procs = []
    logs = []
    for name, args in [("scheduler", ["scheduler", "--bind", bind])] + [
        (f"executor-{i}", ["executor", "--scheduler", bind, "--concurrency", str(concurrency)])
        for i in range(executors)
    ]:
        log = open(Path(work) / f"{name}.log", "wb")
        logs.append(log)
        procs.append(subprocess.Popen([str(RELEASE / "verdict"), "cluster", *args],
                                      stdout=subprocess.DEVNULL, stderr=log))
    deadline = time.time() + 60
    while not ready(port, f"ready: {executors} executors registered"):
        if time.time() > deadline:
            stop(procs)
            raise SystemExit(f"the cluster did not start; see {work}/*.log")
        time.sleep(0.2)
    return f"df://{bind}", procs


def stop(procs):
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


def timed(argv, runs):
    best, worst, out = None, 0.0, None
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr.decode(errors="replace"))
            raise SystemExit(f"{' '.join(argv)} exited with {proc.returncode}")
        out = json.loads(proc.stdout)
        best = elapsed if best is None else min(best, elapsed)
        worst = max(worst, elapsed)
    return best, worst, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=30_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work", default="/tmp/verdict-bench-cluster")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--skip-build", action="store_true")
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    if not a.skip_build:
        build_release()
    wh = ensure_warehouse(work / f"wh-{a.lines}-{a.seed}", a.lines, a.seed, work)
    verdict = [str(RELEASE / "verdict"), "-w", str(wh)]
    rows = json.loads(subprocess.run(
        verdict + ["sql", "SELECT count(*) AS n FROM decisions", "--format", "json"],
        stdout=subprocess.PIPE, check=True).stdout)[0]["n"]
    busiest = json.loads(subprocess.run(
        verdict + ["sql", "SELECT identity FROM decisions GROUP BY identity ORDER BY count(*) DESC, identity LIMIT 1",
                   "--format", "json"], stdout=subprocess.PIPE, check=True).stdout)[0]["identity"]
    questions = {
        "volume --no-rollup": ["report", "volume", "--no-rollup"],
        "sql identity x tool x hour": ["sql", "SELECT identity, tool, date_trunc('hour', ts) AS hour, count(*) AS calls "
                                               "FROM decisions GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"],
        f"timeline {busiest}": ["timeline", "--identity", busiest, "--limit", "1000"],
    }
    executors = 2
    url, procs = start_cluster(work, executors, a.concurrency)
    results = []
    try:
        for name, q in questions.items():
            lb, lw, lo = timed(verdict + q + ["--format", "json"], a.runs)
            cb, cw, co = timed(verdict + q + ["--format", "json", "--cluster", url], a.runs)
            if lo != co:
                raise SystemExit(f"{name}: the cluster's answer differs from the local one")
            results.append((name, lb, lw, cb, cw))
    finally:
        stop(procs)
    print(f"{rows:,} decisions, {executors} executors x {a.concurrency} task(s), best / worst of {a.runs}")
    print("| question | local s | cluster s | overhead s |")
    print("|---|---|---|---|")
    for name, lb, lw, cb, cw in results:
        print(f"| {name} | {lb:.2f} / {lw:.2f} | {cb:.2f} / {cw:.2f} | {cb - lb:+.2f} |")
    scan = results[0][3]
    per_executor = rows / scan / executors
    year = 100_000_000 * 365
    need = year / (per_executor * 10)
    print(f"scan rate on the cluster: {rows / scan:,.0f} decisions/s, {per_executor:,.0f} per executor")
    print(f"a year of 100M calls a day ({year:,} decisions) in 10 s: about {need:,.0f} such executors")


if __name__ == "__main__":
    main()
