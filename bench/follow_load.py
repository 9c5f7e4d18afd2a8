#!/usr/bin/env python3
"""Can `verdict collect --follow` keep up with a gateway writing its log fast? Bounded in time.

    python3 bench/follow_load.py [--rate 100000] [--seconds 60] [--skip-build]

Builds the release binaries (honouring CARGO_TARGET_DIR), generates rate x seconds PolicyLayer
lines with verdict-gen (unique ids), starts `verdict collect --follow FILE` on an empty file in a
fresh warehouse (with `--listen 127.0.0.1:PORT --no-auth` only to read its /metrics), and has a
writer append those lines to the file at the given rate, in steps of 10 ms, for the given time.
Every 250 ms it samples the rows the collector has committed (/metrics) and its resident memory
(/proc). It reports:
  - the rate the writer reached;
  - the lag: at each sample, how long ago the oldest line not yet committed was written
    (0 when everything written is committed); median, p99 and max;
  - the drain: from the writer's last line to the commit that holds it;
  - the collector's peak RSS (VmHWM) and its RSS at the end;
  - exactness: the warehouse's row count and distinct event ids (through `verdict sql`) must
    both equal the lines written.
The collector then stops with SIGTERM. Needs the standard library only.
"""

import argparse
import bisect
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from common import RELEASE, build_release, free_port, generate, pct

SAMPLE_S = 0.25
TICK_S = 0.01


def committed_rows(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("verdict_collect_rows_committed_total "):
                return int(line.split()[1])
    raise SystemExit("the collector's /metrics has no verdict_collect_rows_committed_total")


def proc_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Writer:
    """Appends the source's lines to `dst` at `rate` lines/s; records (time, lines written)."""

    def __init__(self, src, dst, rate, seconds):
        self.src, self.dst, self.rate, self.seconds = src, dst, rate, seconds
        self.times, self.counts = [], []
        self.written = 0
        self.done_at = None

    def run(self):
        fd = os.open(self.dst, os.O_WRONLY | os.O_APPEND)
        pending = []
        with open(self.src, "rb") as src:
            start = time.monotonic()
            end = start + self.seconds
            while True:
                now = time.monotonic()
                if now >= end:
                    break
                due = int(self.rate * (now - start))
                want = due - self.written
                out = []
                while want > 0:
                    if not pending:
                        block = src.read(4 << 20)
                        if not block:
                            break
                        cut = block.rfind(b"\n") + 1
                        if cut == 0:
                            break  # a last line without its newline is not written
                        if cut < len(block):
                            src.seek(cut - len(block), os.SEEK_CUR)
                        pending = block[:cut].splitlines(keepends=True)
                        pending.reverse()
                    take = min(want, len(pending))
                    out.extend(pending[-take:][::-1])
                    del pending[-take:]
                    want -= take
                if out:
                    os.write(fd, b"".join(out))
                    self.written += len(out)
                    self.times.append(time.monotonic())
                    self.counts.append(self.written)
                elif not pending and want > 0:
                    break  # the source ran out
                time.sleep(max(0.0, TICK_S - (time.monotonic() - now)))
        os.close(fd)
        self.done_at = time.monotonic()

    def written_at(self, n):
        """When the writer had written at least n lines."""
        i = bisect.bisect_left(self.counts, n)
        return self.times[i] if i < len(self.times) else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=100_000, help="lines per second")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work", default=None, help="where the generated lines are kept between runs")
    ap.add_argument("--commit-rows", type=int, default=None, help="passed on (default: verdict's)")
    ap.add_argument("--commit-interval", default=None, help="passed on (default: verdict's)")
    ap.add_argument("--drain-limit", type=float, default=120, help="seconds to wait for the last commit")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--binary", help="run this verdict binary instead of the release build")
    a = ap.parse_args()
    if not a.skip_build:
        build_release()
    verdict = Path(a.binary) if a.binary else RELEASE / "verdict"
    total = int(a.rate * a.seconds)
    keep = Path(a.work or tempfile.gettempdir()) / "verdict-follow-bench"
    keep.mkdir(parents=True, exist_ok=True)
    src = generate(total, a.seed, keep / f"pl-{total}-{a.seed}.jsonl", gap_ms=5)
    work = Path(tempfile.mkdtemp(prefix="verdict-follow-"))
    followed = work / "logs" / "gateway.jsonl"
    followed.parent.mkdir()
    followed.touch()
    port = free_port()
    cmd = [str(verdict), "collect", "-w", str(work / "wh"), "--follow", str(followed),
           "--input-format", "policylayer", "--listen", f"127.0.0.1:{port}", "--no-auth",
           "--checkpoints", str(work / "checkpoints"), "--format", "json"]
    if a.commit_rows:
        cmd += ["--commit-rows", str(a.commit_rows)]
    if a.commit_interval:
        cmd += ["--commit-interval", a.commit_interval]
    log = open(work / "collect.err", "wb")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log)
    samples = []  # (t, written, committed, rss KiB)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                committed_rows(port)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("the collector did not start")
                time.sleep(0.05)
        w = Writer(src, followed, a.rate, a.seconds)
        t = threading.Thread(target=w.run)
        t.start()
        drain_deadline = time.monotonic() + a.seconds + a.drain_limit
        drained_at = None
        while time.monotonic() < drain_deadline:
            time.sleep(SAMPLE_S)
            now = time.monotonic()
            written = w.written
            committed = committed_rows(port)
            samples.append((now, written, committed, proc_kib(proc.pid, "VmRSS")))
            if w.done_at is not None and committed >= w.written:
                drained_at = now
                break
            if proc.poll() is not None:
                raise SystemExit("the collector exited early")
        t.join()
        peak = proc_kib(proc.pid, "VmHWM")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
        log.close()
    if proc.returncode != 0:
        sys.stderr.write((work / "collect.err").read_text())
        raise SystemExit(f"collect exited with {proc.returncode}")
    lags = []
    for now, _, committed, _ in samples:
        if now > w.done_at + SAMPLE_S:
            continue  # the drain is reported on its own
        oldest = w.written_at(committed + 1)
        lags.append(0.0 if oldest is None or oldest > now else now - oldest)
    q = subprocess.run(
        [str(verdict), "sql", "-w", str(work / "wh"), "--format", "json",
         "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM decisions"],
        capture_output=True, check=True,
    )
    counts = json.loads(q.stdout)[0]
    writer_secs = w.done_at - w.times[0] if w.times else 0
    report = {
        "lines_written": w.written,
        "writer_seconds": round(writer_secs, 2),
        "writer_lines_per_s": round(w.written / writer_secs) if writer_secs else None,
        "bytes_per_line": round(src.stat().st_size / total),
        "lag_s_p50": round(pct(lags, 50), 3),
        "lag_s_p99": round(pct(lags, 99), 3),
        "lag_s_max": round(max(lags), 3) if lags else None,
        "drain_s": round(drained_at - w.done_at, 3) if drained_at else None,
        "collector_peak_rss_mib": round(peak / 1024),
        "collector_rss_at_end_mib": round(samples[-1][3] / 1024) if samples else None,
        "commits": json.loads(out)["commits"],
        "warehouse_rows": counts["n"],
        "distinct_event_ids": counts["d"],
        "lost": w.written - counts["d"],
        "doubled": counts["n"] - counts["d"],
    }
    print(json.dumps(report, indent=2))
    shutil.rmtree(work)
    if drained_at is None:
        raise SystemExit(f"the collector did not catch up within {a.drain_limit} s of the writer's end")
    if report["lost"] or report["doubled"]:
        raise SystemExit("lines were lost or doubled")


if __name__ == "__main__":
    main()
