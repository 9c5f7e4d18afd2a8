"""A collector's hour: 3,600 small commits (one line each, as a collector committing every
second writes them), then the time to open the warehouse and answer `report volume`, and the
size of the Delta log. Target: under 1 s to answer. Also ingest into a local S3 server
(`moto_server`, when installed) against local disk, same lines, and reports the ratio.

    python3 bench/commits.py [--commits 3600] [--work DIR]
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from common import RELEASE, build_release, run_measured


def line(i):
    return json.dumps({
        "timestamp": f"2026-11-02T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}Z",
        "request_id": f"c{i:07d}",
        "grant_label": ["alice", "bob", "carol"][i % 3],
        "method": "tools/call",
        "tool": "navigate",
        "decision": ["allow", "deny"][i % 2],
    })


def dir_size(p):
    return sum(f.stat().st_size for f in Path(p).rglob("*") if f.is_file())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=3600)
    ap.add_argument("--work", help="keep the warehouses in this directory (default: a temporary one, removed)")
    ap.add_argument("--skip-build", action="store_true")
    args = ap.parse_args()
    if not args.skip_build:
        build_release()
    verdict = str(RELEASE / "verdict")
    keep = args.work is not None
    work = Path(args.work) if keep else Path(tempfile.mkdtemp(prefix="verdict-commits-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        wh = work / "wh"
        for old in (wh, work / "local"):
            shutil.rmtree(old, ignore_errors=True)
        src = work / "one.jsonl"
        started = time.perf_counter()
        for i in range(args.commits):
            src.write_text(line(i) + "\n")
            subprocess.run([verdict, "-w", str(wh), "ingest", str(src)], check=True,
                           stdout=subprocess.DEVNULL)
        commit_secs = time.perf_counter() - started
        secs, rss, _ = run_measured([verdict, "-w", str(wh), "report", "volume", "--format", "csv"])
        log = dir_size(wh / "decisions" / "_delta_log")
        print(f"{args.commits} commits in {commit_secs:.1f} s ({commit_secs / args.commits * 1000:.0f} ms each)")
        print(f"report volume after them: {secs:.3f} s, peak RSS {rss:.0f} MiB (target < 1 s)")
        print(f"decisions log: {log / 1e6:.2f} MB")

        big = work / "big.jsonl"
        big.write_text("".join(line(i) + "\n" for i in range(200_000)))
        local_secs, _, _ = run_measured([verdict, "-w", str(work / "local"), "ingest", str(big)])
        if shutil.which("moto_server"):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            moto = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                for _ in range(100):
                    try:
                        urllib.request.urlopen(urllib.request.Request(
                            f"http://127.0.0.1:{port}/bench", method="PUT"))
                        break
                    except OSError:
                        time.sleep(0.1)
                env = dict(os.environ, AWS_ENDPOINT=f"http://127.0.0.1:{port}", AWS_ALLOW_HTTP="true",
                           AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_REGION="us-east-1")
                s3_secs, _, _ = run_measured([verdict, "-w", "s3://bench/wh", "ingest", str(big)], env=env)
                print(f"ingest 200,000 lines: local {local_secs:.2f} s, local S3 server {s3_secs:.2f} s "
                      f"(ratio {s3_secs / local_secs:.2f})")
            finally:
                moto.kill()
        else:
            print(f"ingest 200,000 lines: local {local_secs:.2f} s (moto_server not installed: no S3 figure)")
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
