"""profile-my-data on a CSV larger than a task's memory: the pandas path (the file loaded
whole) beside the streamed path (`spyglass.tools.profile.streaming`), each in a process of its
own under the task's address-space cap, as a task's child runs (`SPYGLASS_JOB_MEMORY_MB`).

Prints, per path: the file's size, rows × columns, seconds, peak RSS and peak address space,
or how it failed. The figures of record are in `bench/RESULTS-bigfiles.md`.
Usage: python -m bench.bigfiles_bench [ROWS] [CAP_MB]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 200_000
COUNTRIES = ["FR", "DE", "ES", "IT", "NL", "BE", "PT", "SE"]
#: Every DUPLICATE_EVERY-th row repeats the row before it.
DUPLICATE_EVERY = 1_000


def write_csv(path: Path, rows: int, seed: int = 0) -> dict[str, Any]:
    """A customers-like CSV of `rows` × 10 written in chunks; its known answers (row count,
    nulls per column, minimum and maximum of the numbers, duplicate rows)."""
    rng = np.random.default_rng(seed)
    nulls = dict.fromkeys(
        ["id", "amount", "qty", "country", "email", "created", "active", "note", "score", "zip"], 0
    )
    low: dict[str, float] = {}
    high: dict[str, float] = {}
    duplicates = 0
    with pacsv.CSVWriter(path, _schema()) as writer:
        for start in range(0, rows, CHUNK):
            n = min(CHUNK, rows - start)
            ids = np.arange(start, start + n)
            amount = np.round(rng.lognormal(3.5, 1.0, n), 2)
            amount_null = rng.random(n) < 0.05
            qty = rng.integers(0, 100, n)
            qty_null = rng.random(n) < 0.10
            email_null = rng.random(n) < 0.01
            score = np.round(rng.normal(50, 10, n), 3)
            columns = {
                "id": ids,
                "amount": amount,
                "qty": qty,
                "country": np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), n)],
                "email": np.char.add(np.char.add("user", ids.astype(str)), "@example.com"),
                "created": np.datetime64("2020-01-01")
                + rng.integers(0, 2000, n).astype("timedelta64[D]"),
                "active": rng.random(n) < 0.7,
                "note": np.array(["ok", "late payment", "vip", "call back"])[rng.integers(0, 4, n)],
                "score": score,
                "zip": rng.integers(10000, 99999, n),
            }
            # Every DUPLICATE_EVERY-th row (of the file) repeats the row before it.
            repeat = np.flatnonzero((ids % DUPLICATE_EVERY == DUPLICATE_EVERY - 1) & (ids > start))
            for values in columns.values():
                values[repeat] = values[repeat - 1]
            amount_null[repeat] = amount_null[repeat - 1]
            qty_null[repeat] = qty_null[repeat - 1]
            email_null[repeat] = email_null[repeat - 1]
            duplicates += len(repeat)
            masks = {"amount": amount_null, "qty": qty_null, "email": email_null}
            for name, mask in masks.items():
                nulls[name] += int(mask.sum())
            for name in ("amount", "qty", "score"):
                present = columns[name][~masks.get(name, np.zeros(n, bool))]
                low[name] = min(low.get(name, np.inf), float(present.min()))
                high[name] = max(high.get(name, -np.inf), float(present.max()))
            arrays = [
                pa.array(columns[f.name], type=f.type, mask=masks.get(f.name)) for f in _schema()
            ]
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=_schema()))
    return {
        "rows": rows,
        "columns": 10,
        "nulls": nulls,
        "min": low,
        "max": high,
        "duplicates": duplicates,
        "bytes": path.stat().st_size,
    }


def _schema() -> pa.Schema:
    return pa.schema(
        [
            ("id", pa.int64()),
            ("amount", pa.float64()),
            ("qty", pa.int64()),
            ("country", pa.string()),
            ("email", pa.string()),
            ("created", pa.date32()),
            ("active", pa.bool_()),
            ("note", pa.string()),
            ("score", pa.float64()),
            ("zip", pa.int64()),
        ]
    )


#: One path in a process of its own, capped as a task's child is (after its imports).
RUN = """
import json, resource, sys, time
from pathlib import Path
import spyglass.tools.run as run
from spyglass.tools.catalogue import TOOLS
from spyglass.tools.common.frames import load_table
from spyglass.tools.common.report import build_report, to_json
from spyglass.tools.common.sniff import HEAD_BYTES, sniff_csv
from spyglass.tools.common.toolkit import run_agents
from spyglass.tools.profile.streaming import stream_profile

path, mode, cap = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
run._reserve_what_is_used()
if cap:
    resource.setrlimit(resource.RLIMIT_AS, (cap << 20, cap << 20))
def peak():
    # VmHWM, not ru_maxrss: that keeps the parent's peak across exec (a big pytest's).
    status = dict(l.split(":", 1) for l in Path("/proc/self/status").read_text().splitlines())
    return {"peak_rss_mb": round(int(status["VmHWM"].split()[0]) / 1024),
            "peak_vm_mb": round(int(status["VmPeak"].split()[0]) / 1024)}
t = time.perf_counter()
try:
    if mode == "pandas":
        frame = load_table(path.read_bytes(), path.name)
    else:
        with path.open("rb") as f:
            dialect = sniff_csv(f.read(HEAD_BYTES), path.name, False)
        frame = stream_profile(lambda: path.open("rb"), dialect, path.name)
    tool = TOOLS["profile-my-data"]
    agents = [a.id for a in tool.agents if not a.requires]
    ctx = run_agents(tool, agents, {"primary": frame})
    report = json.loads(to_json(build_report(tool, ctx)))
    summary = report["executiveSummary"]
    print(json.dumps({"ok": True, "seconds": round(time.perf_counter() - t, 1), **peak(),
                      "rows": summary["rows"], "missing_cells": summary["missing_cells"],
                      "duplicate_rows": summary["duplicate_rows"]}))
except MemoryError:
    print(json.dumps({"ok": False, "failed": "MemoryError", **peak(),
                      "seconds": round(time.perf_counter() - t, 1)}))
"""


def run_script(script: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `script` in a fresh interpreter (its own memory cap and peak); its last line of
    output is its JSON result, or the failure's last line."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True, env=env
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"ok": False, "failed": f"exit {done.returncode}: {tail[:120]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def measure(path: Path, mode: str, cap_mb: int) -> dict[str, Any]:
    return run_script(RUN, str(path), mode, str(cap_mb))


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000_000
    cap = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.csv"
        known = write_csv(path, rows)
        size = known["bytes"] / 1e6
        print(f"{rows:,} rows × 10 columns, {size:,.0f} MB; cap {cap} MB (address space)")
        for mode in ("pandas", "streamed"):
            for limit in (0, cap):
                result = measure(path, mode, limit)
                where = f"cap {limit} MB" if limit else "no cap"
                print(f"  {mode:8} {where:12} {json.dumps(result)}")


if __name__ == "__main__":
    main()
