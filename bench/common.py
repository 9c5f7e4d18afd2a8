"""Shared helpers of verdict's bench scripts: timing a child process with its peak RSS."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Cargo's target directory: CARGO_TARGET_DIR when set (a shared one), else ./target.
RELEASE = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "release"


def build_release():
    """Builds the release binaries the benches run."""
    subprocess.run(
        ["cargo", "build", "--release", "-p", "verdict-testkit", "--bin", "verdict-gen"],
        cwd=ROOT,
        check=True,
    )
    subprocess.run(["cargo", "build", "--release", "--bin", "verdict"], cwd=ROOT, check=True)


def run_measured(argv, stdout=subprocess.DEVNULL, env=None, cwd=None):
    """Runs argv; returns (seconds, peak RSS in MiB, stdout bytes or None)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, env=env, cwd=cwd)
    out = None
    if stdout == subprocess.PIPE:
        out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.stderr.write(err.decode(errors="replace"))
        raise SystemExit(f"{argv[0]} exited with {code}")
    return elapsed, usage.ru_maxrss / 1024.0, out


def warm_cache(path):
    """Reads a file once so that no measured tool pays for its first read from disk."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def generate(lines, seed, path, gap_ms=250, fmt="policylayer"):
    """Writes synthetic traffic with verdict-gen (PolicyLayer lines, or rendered as `opa` /
    `agentgateway` lines), unless the file is already there."""
    path = Path(path)
    if path.exists() and path.stat().st_size > 0:
        return path
    with open(path, "wb") as f:
        subprocess.run([str(RELEASE / "verdict-gen"), str(lines), str(seed), str(gap_ms), fmt], stdout=f, check=True)
    return path


def ensure_warehouse(wh, lines, seed, work, gap_ms=60):
    """Generates and ingests `lines` lines into `wh` unless it already holds a warehouse; the
    generated file is deleted afterwards (it is large and reproducible)."""
    wh = Path(wh)
    if (wh / "decisions").exists():
        return wh
    src = generate(lines, seed, Path(work) / f"pl-{lines}-{seed}.jsonl", gap_ms=gap_ms)
    run_measured([str(RELEASE / "verdict"), "ingest", str(src), "--warehouse", str(wh), "--progress", "never"])
    src.unlink()
    return wh


def free_port():
    """A TCP port free on 127.0.0.1 at the moment of asking."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, p):
    """The p-th percentile of values (nearest rank), NaN when there are none."""
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]
