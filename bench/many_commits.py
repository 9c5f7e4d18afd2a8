#!/usr/bin/env python3
"""A long-running collector's many small commits, on loopback, bounded in time.

    python3 bench/many_commits.py [--seconds 120] [--every 40] [--skip-build] [--binary PATH]

Builds the release binary (honouring CARGO_TARGET_DIR), starts `verdict collect --listen
127.0.0.1:PORT --commit-interval 20ms` in a fresh warehouse, and posts one PolicyLayer line at a
time, each answered after its commit: every request is one commit to each table. Every
`--every` commits it notes the seconds since the start and the collector's resident memory
(VmRSS). The question it answers: do commits stay as fast, and memory stay flat, as a collector
makes thousands of them (each adds a file to every table, so part of the growth is the tables'
file count, which `verdict compact` takes back). Then it stops the collector with SIGTERM and
checks the warehouse holds exactly one row per answered request (through `verdict sql`).
Prints one JSON object. Needs the standard library.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import free_port

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
VERDICT = TARGET / "release" / "verdict"


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


def line(i):
    return json.dumps(
        {
            "timestamp": "2026-11-02T10:%02d:%02d.%03dZ" % (i // 60 % 60, i % 60, i % 1000),
            "request_id": f"m{i}",
            "grant_label": ("alice", "bob", "ops-bot")[i % 3],
            "tool": ("navigate", "click")[i % 2],
            "method": "tools/call",
            "decision": ("allow", "allow", "deny")[i % 3],
        }
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--every", type=int, default=40, help="note time and memory every N commits")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--binary", default=str(VERDICT))
    a = ap.parse_args()
    if not a.skip_build:
        subprocess.run(["cargo", "build", "--release", "--bin", "verdict"], cwd=ROOT, check=True)
    work = Path(tempfile.mkdtemp(prefix="verdict-many-commits-"))
    wh = work / "wh"
    port = free_port()
    log = open(work / "collect.log", "wb")
    proc = subprocess.Popen(
        [a.binary, "collect", "--warehouse", str(wh), "--listen", f"127.0.0.1:{port}", "--no-auth",
         "--commit-interval", "20ms"],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        conn = None
        for _ in range(200):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", "/healthz")
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    break
            except OSError:
                pass
            conn = None
            time.sleep(0.05)
        if conn is None:
            raise SystemExit("the collector did not answer /healthz")
        marks = []
        t0 = time.perf_counter()
        i = 0
        while time.perf_counter() - t0 < a.seconds:
            conn.request("POST", "/ingest?format=policylayer", body=(line(i) + "\n").encode())
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise SystemExit(f"request {i}: HTTP {r.status}")
            i += 1
            if i % a.every == 0:
                marks.append({"commits": i, "seconds": round(time.perf_counter() - t0, 2), "rss_mib": rss_mib(proc.pid)})
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    out = subprocess.run(
        [a.binary, "sql", "--warehouse", str(wh), "--format", "json",
         "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM decisions"],
        capture_output=True, check=True,
    )
    row = json.loads(out.stdout)[0]
    laps = [m["seconds"] - p["seconds"] for p, m in zip([{"seconds": 0}] + marks, marks)]
    result = {
        "commits": i,
        "seconds": round(a.seconds, 1),
        "every": a.every,
        "first_lap_s": laps[0] if laps else None,
        "last_lap_s": round(laps[-1], 2) if laps else None,
        "rss_mib_last": marks[-1]["rss_mib"] if marks else None,
        "rss_mib_max": max((m["rss_mib"] for m in marks), default=None),
        "rows": row["n"],
        "distinct_event_ids": row["d"],
        "lost": i - row["d"],
        "doubled": row["n"] - row["d"],
        "marks": marks,
    }
    print(json.dumps(result, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    if result["lost"] or result["doubled"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
