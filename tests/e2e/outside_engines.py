"""Reads a verdict warehouse with engines that know nothing of verdict: the Python `deltalake`
package and DuckDB's delta extension (loaded from the `duckdb-extension-delta` package's file,
for the installed DuckDB version). Prints the counts as JSON for the end-to-end test."""
import glob
import json
import os
import sys

import deltalake
import duckdb
import duckdb_extension_delta

wh = sys.argv[1]
out = {}

for table in ("decisions", "rollup_minute", "quarantine"):
    dt = deltalake.DeltaTable(os.path.join(wh, table))
    rows = deltalake.QueryBuilder().register("t", dt).execute("SELECT count(*) AS n FROM t").read_all()
    out[f"deltalake_{table}"] = int(rows.column("n")[0].as_py())
    out[f"deltalake_{table}_version"] = dt.version()

dt = deltalake.DeltaTable(os.path.join(wh, "decisions"))
per_day = deltalake.QueryBuilder().register("t", dt).execute(
    "SELECT CAST(day AS VARCHAR) AS day, count(*) AS n FROM t GROUP BY 1 ORDER BY 1"
).read_all()
out["deltalake_per_day"] = {
    str(d.as_py()): int(n.as_py()) for d, n in zip(per_day.column("day"), per_day.column("n"))
}

ext_dir = os.path.join(os.path.dirname(duckdb_extension_delta.__file__), "extensions", "v" + duckdb.__version__)
ext = glob.glob(os.path.join(ext_dir, "*.duckdb_extension"))[0]
con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
con.execute(f"LOAD '{ext}'")
path = os.path.join(wh, "decisions")
out["duckdb_decisions"] = con.execute(f"SELECT count(*) FROM delta_scan('{path}')").fetchone()[0]
out["duckdb_per_day"] = {
    str(d): n
    for d, n in con.execute(
        f"SELECT CAST(day AS VARCHAR), count(*) FROM delta_scan('{path}') GROUP BY 1 ORDER BY 1"
    ).fetchall()
}
out["duckdb_denials"] = con.execute(
    f"SELECT count(*) FROM delta_scan('{path}') WHERE decision = 'deny'"
).fetchone()[0]
q = os.path.join(wh, "quarantine")
out["duckdb_quarantine"] = con.execute(f"SELECT count(*) FROM delta_scan('{q}')").fetchone()[0]
print(json.dumps(out, sort_keys=True))
