#!/usr/bin/env python3
"""Policy-intelligence benchmark: `verdict suggest --all` (one draft per identity and the grants.toml)
and `verdict tune` over 10 values of one limit, end to end from the warehouse (release build).

    python3 bench/policy_intel.py [--lines 11500000] [--work /tmp/verdict-bench-10m]

Shares its warehouse with bench/replay.py and bench/reports.py (same --work): 11.5M lines hold
about 10.1M tools/call. Targets: suggest --all under 5 s, tune over 10 values under 10 s.
"""

import argparse
import json
import shutil
import subprocess
from pathlib import Path

from common import RELEASE, ROOT, build_release, ensure_warehouse, run_measured

POLICY = ROOT / "bench" / "policies" / "bench.json"
LIMIT = "/tools/session_create/limits/session_create_rate"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=11_500_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work", default="/tmp/verdict-bench-10m")
    ap.add_argument("--skip-build", action="store_true")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if not args.skip_build:
        build_release()
    wh = ensure_warehouse(work / ("wh" if args.lines == 11_500_000 else f"wh-{args.lines}"), args.lines, args.seed, work)
    verdict = str(RELEASE / "verdict")
    out = work / "drafts"
    shutil.rmtree(out, ignore_errors=True)
    secs, rss, text = run_measured(
        [verdict, "suggest", "--warehouse", str(wh), "--all", "--out", str(out), "--format", "json"],
        stdout=subprocess.PIPE,
    )
    drafts = json.loads(text)["suggestions"]
    calls = sum(d["tool_calls"] for d in drafts)
    suggest = {"secs": secs, "peak_rss_mib": rss, "identities": len(drafts), "tool_calls": calls}
    secs, rss, text = run_measured(
        [verdict, "tune", "--warehouse", str(wh), "--policy", str(POLICY), "--limit", LIMIT,
         "--max", "1..10", "--format", "json"],
        stdout=subprocess.PIPE,
    )
    rows = json.loads(text)["tune"]["rows"]
    tune = {"secs": secs, "peak_rss_mib": rss, "values": len(rows), "tool_calls": rows[0]["tool_calls"],
            "limited": [r["limited"] for r in rows]}
    print(json.dumps({"suggest_all": suggest, "tune": tune}, indent=2))
    print("\n| command | tool calls | seconds | calls/s | peak RSS (MiB) |\n|---|---|---|---|---|")
    for name, r in [("suggest --all", suggest), ("tune, 10 values", tune)]:
        print(f"| {name} | {r['tool_calls']:,} | {r['secs']:.2f} | {r['tool_calls'] / r['secs']:,.0f} | {r['peak_rss_mib']:.0f} |")


if __name__ == "__main__":
    main()
