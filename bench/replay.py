#!/usr/bin/env python3
"""Replay benchmark: `verdict replay` end to end (reading the warehouse included) over at least
10M generated tool calls, with peak RSS at two sizes to show memory follows the counter buckets,
not the number of events; and, when built, the peer engine comparison of bench/peer.

    python3 bench/replay.py [--lines 11500000] [--work /tmp/verdict-bench-10m]

Shares its warehouse with bench/reports.py (same --work): 11.5M lines hold about 10.1M tools/call.
"""

import argparse
import json
import subprocess
from pathlib import Path

from common import RELEASE, ROOT, build_release, ensure_warehouse, generate, run_measured

POLICY = ROOT / "bench" / "policies" / "bench.json"


def replay(wh):
    secs, rss, out = run_measured(
        [str(RELEASE / "verdict"), "replay", "--warehouse", str(wh), "--policy", str(POLICY), "--format", "json"],
        stdout=subprocess.PIPE,
    )
    r = json.loads(out)
    calls = r["counts"]["tool_calls"]
    return {"secs": secs, "tool_calls": calls, "events": r["counts"]["events"], "calls_per_s": calls / secs,
            "peak_rss_mib": rss, "transitions": {k: v for k, v in r["transitions"].items() if v}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=11_500_000)
    ap.add_argument("--small", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work", default="/tmp/verdict-bench-10m")
    ap.add_argument("--skip-build", action="store_true")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if not args.skip_build:
        build_release()
    results = {}
    for label, lines, wh in [("small", args.small, work / "wh-small"), ("large", args.lines, work / "wh")]:
        ensure_warehouse(wh, lines, args.seed, work)
        results[label] = replay(wh)
    peer = ROOT / "bench" / "peer"
    peer_bin = Path("/tmp/target-peer/release/peer-bench")
    if peer_bin.exists():
        src = generate(1_000_000, args.seed, work / "pl-1000000-peer.jsonl", gap_ms=60)
        out = subprocess.run([str(peer_bin), str(src), "1000000"], check=True, capture_output=True, text=True, cwd=peer)
        results["peer"] = out.stdout
    print(json.dumps({k: v for k, v in results.items() if k != "peer"}, indent=2))
    print("\n| warehouse | tool calls | seconds | calls/s | peak RSS (MiB) |\n|---|---|---|---|---|")
    for label in ("small", "large"):
        r = results[label]
        print(f"| {label} | {r['tool_calls']:,} | {r['secs']:.2f} | {r['calls_per_s']:,.0f} | {r['peak_rss_mib']:.0f} |")
    if "peer" in results:
        print("\npeer comparison (bench/peer, evaluation only, 1M calls in memory):\n")
        print(results["peer"])


if __name__ == "__main__":
    main()
