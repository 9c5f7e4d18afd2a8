"""`verdict verify` throughput: a generated warehouse is ingested once, then `verdict verify`
rereads every link and every data file; the peer is `sha256sum` over the same Parquet files
(one process, and two in parallel: this machine has two cores). Prints MB/s of Parquet checked
(whole-process times, files in the page cache for both) and the ratio. Target: 500 MB/s.

    python3 bench/verify.py [--lines 4000000] [--runs 3]
    python3 bench/verify.py --lines 20000 --bin-dir target/debug   # a quick check of the script
"""

import argparse
import json
import shlex
import subprocess
import tempfile
from pathlib import Path

import common
from common import build_release, ensure_warehouse, run_measured, warm_cache


def parquet_files(wh):
    out = []
    for table in ("decisions", "quarantine"):
        out += sorted(p for p in (Path(wh) / table).rglob("*.parquet") if p.is_file())
    return out


def best(argv, runs):
    times = []
    out = None
    for _ in range(runs):
        secs, rss, out = run_measured(argv, stdout=subprocess.PIPE)
        times.append((secs, rss))
    return min(times), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=4_000_000)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", default=None, help="keep the warehouse here between runs")
    ap.add_argument("--bin-dir", default=None,
                    help="use the binaries of this directory and build nothing")
    args = ap.parse_args()
    if args.bin_dir:
        common.RELEASE = Path(args.bin_dir).resolve()
    else:
        build_release()
    verdict = str(common.RELEASE / "verdict")
    work = Path(args.work or tempfile.mkdtemp(prefix="verdict-verify-"))
    work.mkdir(parents=True, exist_ok=True)
    wh = ensure_warehouse(work / f"wh-{args.lines}-{args.seed}", args.lines, args.seed, work)
    files = parquet_files(wh)
    total = sum(f.stat().st_size for f in files)
    for f in files:
        warm_cache(f)
    mb = total / 1e6
    print(f"warehouse: {len(files)} Parquet files, {mb:.1f} MB ({args.lines:,} lines)")

    (secs, rss), out = best([verdict, "-w", str(wh), "verify", "--format", "json"], args.runs)
    report = json.loads(out)
    hashed = sum(t["bytes_hashed"] for t in report["tables"])
    assert report["ok"], "the generated warehouse does not verify"
    assert hashed == total, f"verify hashed {hashed} bytes of {total}"
    print(f"verdict verify: {secs:.3f} s, {mb / secs:.0f} MB/s, peak RSS {rss:.0f} MiB")

    names = [str(f) for f in files]
    (one, _), _ = best(["sha256sum", *names], args.runs)
    # Two sha256sum processes at once, each on every other file.
    halves = [" ".join(shlex.quote(n) for n in names[i::2]) for i in (0, 1)]
    script = f"sha256sum {halves[0]} >/dev/null & sha256sum {halves[1]} >/dev/null; wait"
    (two, _), _ = best(["sh", "-c", script], args.runs) if len(names) > 1 else ((one, 0), None)
    print(f"sha256sum (one process): {one:.3f} s, {mb / one:.0f} MB/s")
    print(f"sha256sum (two processes): {two:.3f} s, {mb / two:.0f} MB/s")
    print(f"ratio verify / sha256sum: {one / secs:.2f} (one process), {two / secs:.2f} (two)")
    print(f"target 500 MB/s: {'met' if mb / secs >= 500 else 'not met'}")


if __name__ == "__main__":
    main()
