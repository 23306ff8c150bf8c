"""profile-my-data on a generated 1,000,000 × 20 CSV, beside its floor and its peer.

Every measurement runs in a fresh process of its own (its peak memory, max RSS, is its own;
imports are not timed), floor and profile alternated so that both see the same machine:

* the floor: pyarrow read + `describe(include="all")`;
* unified-profiler: the file read as a task reads it (`spyglass.tools.run.read_input`, with
  the default memory cap: loaded whole up to `in_memory_limit()`, streamed beyond), the
  agent, and the JSON report. Target: ≤ 1.3× the floor;
* profile-my-data, all six agents (drift against a 10 % baseline), with the time of each
  agent and the largest gap between two progress reports (target: ≤ 2 s);
* the peer, ydata-profiling `ProfileReport(df, minimal=True).to_json()` after the same
  pyarrow read, on the same file. ydata-profiling needs pandas < 3 (the project pins 3.1),
  so it runs in a virtualenv of its own, `.venv/peers/ydata`, made from PyPI by this bench
  with the pins of `bench/ydata-requirements.txt`. Target: unified-profiler ≥ 10× faster;
* opt-in (`--memory-rows 10000000`, about 6 minutes): the peak RSS of the floor and of
  profile-my-data on a file of that many rows. Target: ≤ 1.1× the floor's.

Usage: python -m bench.profile_bench [ROWS] [--memory-rows N] [--no-peer]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
#: The peer takes about a minute on 1,000,000 rows: measured this many times.
PEER_RUNS = 1
PEER_VENV = ROOT / ".venv" / "peers" / "ydata"
PEER_REQUIREMENTS = ROOT / "bench" / "ydata-requirements.txt"
#: Rows generated at a time (the file is written in blocks, so 10,000,000 rows fit).
GENERATE_BLOCK = 1_000_000

ALL_AGENTS = "unified-profiler,score-risk,drift-detector,readiness-rater," + (
    "governance-checker,test-coverage"
)
TARGET_FLOOR = 1.3
TARGET_PEER = 10.0
TARGET_MEMORY = 1.1
TARGET_GAP = 2.0


def generate(path: Path, rows: int, seed: int, shift: float = 0.0) -> None:
    rng = np.random.default_rng(seed)
    # pyarrow's writer (7× pandas' to_csv); it writes 101.0 as 101, read back the same.
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    with path.open("wb") as out:
        for start in range(0, rows, GENERATE_BLOCK):
            n = min(GENERATE_BLOCK, rows - start)
            ids = np.arange(start, start + n)
            cols: dict[str, object] = {"id": ids}
            for i in range(8):
                values = rng.normal(100 + shift * i, 15, n).round(3)
                values[rng.random(n) < 0.02] = np.nan
                cols[f"num_{i}"] = values
            for i in range(4):
                cols[f"int_{i}"] = rng.integers(0, 1000, n)
            for i in range(4):
                cols[f"cat_{i}"] = rng.choice(["alpha", "beta", "gamma", "delta", None], n)
            cols["email"] = np.char.add(np.char.add("user", ids.astype(str)), "@example.com")
            cols["phone"] = rng.choice(["+33 1 42 68 53 00", "(555) 010-9999", "n/a"], n)
            cols["note"] = rng.choice(["ok", "late", "ok ", " check"], n)
            table = pa.Table.from_pandas(pd.DataFrame(cols), preserve_index=False)
            if start == 0:
                out.write((",".join(table.column_names) + "\n").encode())
            pacsv.write_csv(table, out, options)


_MEASURE = """
import json, resource, time
def _cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
def _done(t, c, **more):
    print(json.dumps({"seconds": time.perf_counter() - t, "cpu": _cpu() - c,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      **more}))
"""

FLOOR = (
    _MEASURE
    + """
import sys
import pandas as pd
t, c = time.perf_counter(), _cpu()
frame = pd.read_csv(sys.argv[1], engine="pyarrow")
frame.describe(include="all")
_done(t, c)
"""
)

#: argv: the file, the baseline ("-": none), the agents (comma-separated).
PROFILE = (
    _MEASURE
    + """
import sys
from pathlib import Path
from spyglass.storage.local import LocalStorage
from spyglass.tools.catalogue import TOOLS
from spyglass.tools.common.memo import streamed
from spyglass.tools.common.report import build_report, to_json
from spyglass.tools.common.toolkit import progress_to, run_agents
from spyglass.tools.run import ToolInput, in_memory_limit, read_input
tool = TOOLS["profile-my-data"]
storage = LocalStorage(Path(sys.argv[1]).parent, "bench", 1 << 40)
inputs = {"primary": Path(sys.argv[1]).name}
if sys.argv[2] != "-":
    inputs["baseline"] = Path(sys.argv[2]).name
agents = sys.argv[3].split(",")
events = []  # (time, what): every progress report, agent start and end
def progress(agent, share, what):
    events.append((time.perf_counter(), f"{agent or 'reading'}: {what}"))
timings, clock = {}, {}
def started(agent):
    clock[agent] = time.perf_counter()
    events.append((clock[agent], f"{agent} started"))
def done(agent, result, outputs):
    now = time.perf_counter()
    timings[agent] = round(now - clock[agent], 3)
    events.append((now, f"{agent} completed"))
t, c = time.perf_counter(), _cpu()
events.append((t, "reading started"))
with progress_to(lambda share, what: progress("", share, what)):
    frames = {key: read_input(tool, storage, ToolInput(storage_key=name, filename=name),
                              in_memory_limit()) for key, name in inputs.items()}
ctx = run_agents(tool, agents, frames, on_start=started, on_done=done, on_progress=progress)
report = to_json(build_report(tool, ctx))
# The gaps while agents run (reading a file loaded whole is one pyarrow call).
running = [e for e in events if e[0] >= min(clock.values())]
gap, after = max((b[0] - a[0], a[1]) for a, b in zip(running, running[1:]))
# And while reading (a streamed file reports its blocks; one loaded whole is one step).
reading = [e for e in events if e[0] <= min(clock.values())]
read_gap, read_after = max((b[0] - a[0], a[1]) for a, b in zip(reading, reading[1:]))
_done(t, c, agents=timings, gap=gap, gap_after=after, reports=len(events), read_gap=read_gap,
      read_gap_after=read_after,
      read=min(clock.values()) - t,
      path="streamed" if streamed(frames["primary"]) else "loaded whole")
"""
)

PEER = (
    _MEASURE
    + """
import sys, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from ydata_profiling import ProfileReport
t, c = time.perf_counter(), _cpu()
frame = pd.read_csv(sys.argv[1], engine="pyarrow")
ProfileReport(frame, minimal=True, progress_bar=False).to_json()
_done(t, c)
"""
)


def measure(code: str, *args: str, python: str = sys.executable) -> dict[str, Any]:
    out = subprocess.run(
        [python, "-c", code, *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def peer_python() -> str:
    """The peer's interpreter: `.venv/peers/ydata`, made from PyPI the first time (pinned)."""
    python = PEER_VENV / "bin" / "python"
    stamp = PEER_VENV / ".installed"
    if not stamp.exists() or stamp.stat().st_mtime < PEER_REQUIREMENTS.stat().st_mtime:
        print(f"  (installing ydata-profiling into {PEER_VENV.relative_to(ROOT)} from PyPI)")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEER_VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "-r", str(PEER_REQUIREMENTS)]
        done = subprocess.run(pip, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"installing ydata-profiling failed:\n{done.stderr}")
        stamp.touch()
    return str(python)


def median(runs: list[dict[str, Any]], key: str = "seconds") -> float:
    return statistics.median(r[key] for r in runs)


def _line(label: str, runs: list[dict[str, Any]], note: str) -> str:
    return (
        f"  {label:<34} {median(runs):6.2f} s  (CPU {median(runs, 'cpu'):6.2f} s)   "
        f"peak {median(runs, 'peak_mb'):6.0f} MB   {note}"
    )


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def speed(primary: Path, baseline: Path, rows: int, peer: bool) -> None:
    agents = ALL_AGENTS
    floors, unified, full = [], [], []
    for _ in range(RUNS):  # alternated, so all see the same machine
        floors.append(measure(FLOOR, str(primary)))
        unified.append(measure(PROFILE, str(primary), "-", "unified-profiler"))
        full.append(measure(PROFILE, str(primary), str(baseline), agents))
    peers = [
        measure(PEER, str(primary), python=peer_python()) for _ in range(PEER_RUNS if peer else 0)
    ]
    # The ratio of each run to the floor beside it (paired), then their median.
    ratio = statistics.median(
        u["seconds"] / f["seconds"] for u, f in zip(unified, floors, strict=True)
    )
    cpu_ratio = statistics.median(u["cpu"] / f["cpu"] for u, f in zip(unified, floors, strict=True))
    full_ratio = statistics.median(
        p["seconds"] / f["seconds"] for p, f in zip(full, floors, strict=True)
    )
    full_cpu = statistics.median(p["cpu"] / f["cpu"] for p, f in zip(full, floors, strict=True))
    print(
        f"  median of {RUNS} runs each, every run in a fresh process "
        f"(load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}):"
    )
    print(_line("pyarrow read + describe(all)", floors, "(floor)"))
    print(
        _line(
            "unified-profiler",
            unified,
            f"= {ratio:.2f}× the floor (CPU {cpu_ratio:.2f}×; target ≤ {TARGET_FLOOR}×: "
            f"{_verdict(ratio <= TARGET_FLOOR)}); read {unified[0]['path']}",
        )
    )
    print(
        _line(
            "profile-my-data, 6 agents",
            full,
            f"= {full_ratio:.2f}× the floor (CPU {full_cpu:.2f}×; the baseline's read and "
            "drift included)",
        )
    )
    middle = sorted(full, key=lambda r: r["seconds"])[RUNS // 2]
    print("  per agent: " + ", ".join(f"{k} {v:.2f} s" for k, v in middle["agents"].items()))
    gap = max(r["gap"] for r in full + unified)
    worst = max(full + unified, key=lambda r: r["gap"])
    print(
        f"  largest gap between progress reports, any run: {gap:.2f} s "
        f"(after '{worst['gap_after']}'; target ≤ {TARGET_GAP:.0f} s: "
        f"{_verdict(gap <= TARGET_GAP)})"
    )
    print(
        "  all runs (s): floor "
        + ", ".join(f"{r['seconds']:.2f}" for r in floors)
        + "; unified-profiler "
        + ", ".join(f"{r['seconds']:.2f}" for r in unified)
        + "; 6 agents "
        + ", ".join(f"{r['seconds']:.2f}" for r in full)
    )
    if peers:
        faster = median(peers) / median(unified)
        print(
            _line(
                "ydata-profiling minimal=True",
                peers,
                f"(peer, {len(peers)} run) = unified-profiler {faster:.1f}× faster "
                f"(CPU {median(peers, 'cpu') / median(unified, 'cpu'):.1f}×; target ≥ "
                f"{TARGET_PEER:.0f}×: {_verdict(faster >= TARGET_PEER)}); "
                f"6 agents {median(peers) / median(full):.1f}× faster",
            )
        )


def memory(path: Path, baseline: Path, rows: int) -> None:
    """Peak RSS of the floor and of the six agents on one file (one run each)."""
    agents = ALL_AGENTS
    floor = measure(FLOOR, str(path))
    profile = measure(PROFILE, str(path), str(baseline), agents)
    ratio = profile["peak_mb"] / floor["peak_mb"]
    print(
        f"  floor      peak {floor['peak_mb']:7.0f} MB   {floor['seconds']:6.1f} s\n"
        f"  6 agents   peak {profile['peak_mb']:7.0f} MB   {profile['seconds']:6.1f} s   "
        f"= {ratio:.2f}× the floor's peak (target ≤ {TARGET_MEMORY}×: "
        f"{_verdict(ratio <= TARGET_MEMORY)}); file read {profile['path']} in "
        f"{profile['read']:.0f} s; largest progress gap while reading "
        f"{profile['read_gap']:.2f} s (after '{profile['read_gap_after']}'), while the agents "
        f"run {profile['gap']:.2f} s"
    )


def main(rows: int = 1_000_000, memory_rows: int = 0, peer: bool = True) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        primary, baseline = Path(tmp) / "primary.csv", Path(tmp) / "baseline.csv"
        t = time.perf_counter()
        generate(primary, rows, seed=1, shift=0.5)
        generate(baseline, rows // 10, seed=2)
        size = primary.stat().st_size / 1e6
        print(
            f"profile-my-data on {rows:,} rows × 20 columns ({size:.0f} MB CSV, "
            f"baseline {rows // 10:,} rows; generated in {time.perf_counter() - t:.1f} s):"
        )
        speed(primary, baseline, rows, peer)
        if memory_rows:
            big = Path(tmp) / "big.csv"
            t = time.perf_counter()
            generate(big, memory_rows, seed=3, shift=0.5)
            print(
                f"peak memory on {memory_rows:,} rows × 20 columns "
                f"({big.stat().st_size / 1e6:,.0f} MB CSV, generated in "
                f"{time.perf_counter() - t:.0f} s; the baseline above):"
            )
            memory(big, baseline, memory_rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rows", type=int, nargs="?", default=1_000_000)
    parser.add_argument("--memory-rows", type=int, default=0, help="e.g. 10000000 (opt-in)")
    parser.add_argument("--no-peer", action="store_true", help="leave ydata-profiling out")
    args = parser.parse_args()
    main(args.rows, args.memory_rows, not args.no_peer)
