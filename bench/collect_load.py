#!/usr/bin/env python3
"""Load test of the HTTP receiver of `verdict collect`, on loopback, bounded in time.

    python3 bench/collect_load.py [--seconds 30] [--clients 4] [--batch 500] [--ack commit|spool]
                                  [--skip-build] [--binary PATH]

Builds the release binary (honouring CARGO_TARGET_DIR), starts `verdict collect --listen
127.0.0.1:PORT` in a fresh warehouse, and has N client threads post batches of PolicyLayer JSONL
(unique ids) for the given time, each on a keep-alive connection, retrying a batch on 429/503
after its Retry-After (capped at 50 ms) or on a connection error. Then it stops the collector
with SIGTERM and reports records/s answered 200, answer latency percentiles (of 200 answers),
and checks that nothing was lost nor doubled: the warehouse's row count and distinct event ids
(through `verdict sql`) must equal the records answered 200. With `--ack spool` the collector
answers once a batch is in its spool, before the commit; the check after the stop covers it. Runs twice in one go (`--modes`):
`plain` (no authentication, plain HTTP) and `secure` (a bearer token and TLS with a self-signed
certificate made by `openssl`), and reports both. Needs the standard library and `openssl`.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import free_port, pct

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
VERDICT = TARGET / "release" / "verdict"

LINE = (
    '{{"timestamp":"2026-11-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z","request_id":"{id}",'
    '"grant_id":"gr_{who}","grant_label":"{who}","server":"leapfrog","method":"tools/call",'
    '"tool":"{tool}","arg_keys":["session_id","url"],"policy":"leapfrog-prod","policy_version":"12",'
    '"decision":"{decision}","rule":null,"message":null,"upstream_status":200,"latency_ms":{lat},'
    '"session_id":"mcp_s_{sess}"}}'
)


def template(client, batch):
    """A client's batch with `@N@` where the batch number goes: each batch's ids are unique
    (`c{client}-{n}-{i}`), and making one costs the client a byte replace, not a thousand
    formatted lines (on two cores the clients' CPU is the collector's)."""
    out = []
    for i in range(batch):
        k = client * batch + i
        out.append(
            LINE.format(
                day=2 + k % 3, h=(k // 3600) % 24, m=(k // 60) % 60, s=k % 60, ms=k % 1000,
                id=f"c{client}-@N@-{i}", who=("alice", "bob", "carol", "ops-bot")[k % 4],
                tool=("navigate", "session_create", "click")[k % 3],
                decision=("allow", "allow", "allow", "deny")[k % 4], lat=k % 97, sess=k % 50,
            )
        )
    return ("\n".join(out) + "\n").encode()


def body(tpl, n):
    return tpl.replace(b"@N@", str(n).encode())


def connect(port, timeout, tls):
    """A connection to the collector: plain, or HTTPS trusting the bench's certificate."""
    if tls:
        ctx = ssl.create_default_context(cafile=tls)
        return http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=ctx)
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)


def client_loop(cid, port, batch, deadline, stats, lock, tls, headers):
    conn = None
    n = 0
    acked = refused = errors = 0
    latencies = []
    tpl = template(cid, batch)
    while time.monotonic() < deadline:
        data = body(tpl, n)
        while True:
            if conn is None:
                conn = connect(port, 60, tls)
            start = time.perf_counter()
            try:
                conn.request("POST", "/ingest?format=policylayer", body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
                conn = None
                time.sleep(0.01)
                continue
            took = time.perf_counter() - start
            if resp.status == 200:
                got = json.loads(payload)
                assert got["records"] == batch, got
                acked += batch
                latencies.append(took)
                break
            if resp.status in (429, 503):
                refused += 1
                retry = float(resp.getheader("Retry-After", "1"))
                time.sleep(min(retry, 0.05))
                continue
            raise SystemExit(f"unexpected answer {resp.status}: {payload[:200]!r}")
        n += 1
    if conn is not None:
        conn.close()
    with lock:
        stats["acked"] += acked
        stats["refused"] += refused
        stats["errors"] += errors
        stats["latencies"].extend(latencies)


def make_cert(work):
    """A self-signed certificate for 127.0.0.1 (openssl), for the TLS run."""
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-days", "1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def run_once(a, work, mode):
    """One collector run under load; mode is `plain` (no auth, HTTP) or `secure` (token + TLS)."""
    wh = work / f"wh-{mode}"
    port = free_port()
    log = open(work / f"collect-{mode}.err", "wb")
    cmd = [str(VERDICT), "collect", "-w", str(wh), "--listen", f"127.0.0.1:{port}",
           "--commit-interval", a.commit_interval, "--commit-rows", str(a.commit_rows),
           "--max-pending", str(a.max_pending), "--format", "json"]
    if a.ack != "commit":
        cmd += ["--ack", a.ack]
    env = dict(os.environ)
    tls, headers = None, {}
    if mode == "plain":
        cmd.append("--no-auth")
    else:
        cert, key = make_cert(work)
        cmd += ["--tls-cert", str(cert), "--tls-key", str(key)]
        env["VERDICT_COLLECT_TOKENS"] = f"bench:{a.token}"
        tls, headers = str(cert), {"Authorization": f"Bearer {a.token}"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                c = connect(port, 2, tls)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the collector did not become healthy")
            time.sleep(0.05)
        stats = {"acked": 0, "refused": 0, "errors": 0, "latencies": []}
        lock = threading.Lock()
        start = time.monotonic()
        end = start + a.seconds
        threads = [
            threading.Thread(target=client_loop, args=(i, port, a.batch, end, stats, lock, tls, headers))
            for i in range(a.clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
        c = connect(port, 5, tls)
        c.request("GET", "/metrics", headers=headers)
        metrics = c.getresponse().read().decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    log.close()
    if proc.returncode != 0:
        sys.stderr.write((work / f"collect-{mode}.err").read_text())
        raise SystemExit(f"collect exited with {proc.returncode}")
    summary = json.loads(out)
    q = subprocess.run(
        [str(VERDICT), "sql", "-w", str(wh), "--format", "json",
         "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM decisions"],
        capture_output=True, check=True,
    )
    counts = json.loads(q.stdout)[0]
    commits = [l for l in metrics.splitlines() if l.startswith("verdict_collect_commit_seconds_")]
    commit_sum = float(next(l.split()[1] for l in commits if l.startswith("verdict_collect_commit_seconds_sum")))
    commit_n = int(next(l.split()[1] for l in commits if l.startswith("verdict_collect_commit_seconds_count")))
    lat = stats["latencies"]
    return {
        "mode": "token + TLS" if mode == "secure" else "no auth, plain HTTP",
        "ack": a.ack,
        "seconds": round(elapsed, 2),
        "clients": a.clients,
        "batch": a.batch,
        "records_acked": stats["acked"],
        "records_per_s": round(stats["acked"] / elapsed),
        "requests_200": len(lat),
        "refused_429_503": stats["refused"],
        "connection_errors": stats["errors"],
        "latency_ms_p50": round(pct(lat, 50) * 1000, 1),
        "latency_ms_p99": round(pct(lat, 99) * 1000, 1),
        "latency_ms_max": round(max(lat) * 1000, 1) if lat else None,
        "commits": summary["commits"],
        "mean_commit_ms": round(commit_sum / max(commit_n, 1) * 1000, 1),
        "warehouse_rows": counts["n"],
        "distinct_event_ids": counts["d"],
        "lost": stats["acked"] - counts["d"],
        "doubled": counts["n"] - counts["d"],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--commit-interval", default="1s")
    ap.add_argument("--commit-rows", type=int, default=50_000)
    ap.add_argument("--max-pending", type=int, default=200_000)
    ap.add_argument("--ack", default="commit", choices=["commit", "spool"],
                    help="when the collector answers: after the commit, or once spooled")
    ap.add_argument("--modes", default="plain,secure",
                    help="comma-separated: plain (no auth, HTTP), secure (bearer token + TLS)")
    ap.add_argument("--token", default="bench-token-0123456789abcdef", help="the secure run's token")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--binary", help="run this verdict binary instead of the release build")
    a = ap.parse_args()
    global VERDICT
    if a.binary:
        VERDICT = Path(a.binary)
    elif not a.skip_build:
        subprocess.run(["cargo", "build", "--release", "--bin", "verdict"], cwd=ROOT, check=True)
    work = Path(tempfile.mkdtemp(prefix="verdict-collect-load-"))
    reports = [run_once(a, work, m.strip()) for m in a.modes.split(",") if m.strip()]
    print(json.dumps(reports, indent=2))
    if not a.keep:
        shutil.rmtree(work)
    if any(r["lost"] != 0 or r["doubled"] != 0 for r in reports):
        raise SystemExit("records were lost or doubled")


if __name__ == "__main__":
    main()
