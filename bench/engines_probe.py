"""The out-of-core engines considered for profiling a file over the task memory cap, on the
same generated CSV: DuckDB (`SUMMARIZE`) and Polars (lazy, streaming engine), each in a
process of its own, without a cap and under a task's address-space cap (RLIMIT_AS, as
`SPYGLASS_JOB_MEMORY_MB` sets it in a task's child, after the app's imports). Neither is a
dependency of SpyGlass: install them to run this (`pip install duckdb polars`).
Usage: python -m bench.engines_probe [ROWS] [CAP_MB]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.bigfiles_bench import run_script, write_csv

RUN = """
import json, resource, sys, time
from pathlib import Path
import spyglass.tools.run  # the task child's imports, as it is forked
path, engine, cap = sys.argv[1], sys.argv[2], int(sys.argv[3])
if engine == "duckdb":
    import duckdb
else:
    import polars as pl
if cap:
    resource.setrlimit(resource.RLIMIT_AS, (cap << 20, cap << 20))
def peak():
    status = dict(l.split(":", 1) for l in Path("/proc/self/status").read_text().splitlines())
    return {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "peak_vm_mb": round(int(status["VmPeak"].split()[0]) / 1024)}
t = time.perf_counter()
try:
    if engine == "duckdb":
        db = duckdb.connect(config={"threads": 2, "memory_limit": f"{max(cap // 2, 100)}MB"})
        rows = db.execute(f"SUMMARIZE SELECT * FROM read_csv('{path}')").fetchall()
    else:
        frame = pl.scan_csv(path)
        exprs = []
        for name in frame.collect_schema().names():
            col = pl.col(name)
            exprs += [col.null_count().alias(name + ":nulls"),
                      col.n_unique().alias(name + ":distinct"),
                      col.min().cast(pl.String).alias(name + ":min"),
                      col.max().cast(pl.String).alias(name + ":max")]
        rows = frame.select(exprs).collect(engine="streaming").rows()
    print(json.dumps({"ok": True, "seconds": round(time.perf_counter() - t, 1), **peak()}))
except Exception as exc:
    print(json.dumps({"ok": False, "failed": str(exc).splitlines()[0][:100], **peak()}))
"""


def probe(path: Path, engine: str, cap: int) -> dict[str, Any]:
    env = {"POLARS_MAX_THREADS": "2", "PATH": "/usr/bin:/bin"}
    return run_script(RUN, str(path), engine, str(cap), env=env)


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    cap = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.csv"
        known = write_csv(path, rows)
        print(f"{rows:,} rows × 10 columns, {known['bytes'] / 1e6:,.0f} MB")
        for engine in ("duckdb", "polars"):
            for limit in (0, cap):
                where = f"cap {limit} MB" if limit else "no cap"
                print(f"  {engine:7} {where:12} {json.dumps(probe(path, engine, limit))}")


if __name__ == "__main__":
    main()
