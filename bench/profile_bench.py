"""profile-my-data on a generated 1,000,000 × 20 CSV, beside pyarrow read + describe().

Each measurement runs in its own process so that its peak memory (max RSS) is its own; the
profile run includes reading both files, all six agents and the JSON report.
Usage: python -m bench.profile_bench [ROWS]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
RUNS = 3


def generate(path: Path, rows: int, seed: int, shift: float = 0.0) -> None:
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {"id": np.arange(rows)}
    for i in range(8):
        values = rng.normal(100 + shift * i, 15, rows).round(3)
        values[rng.random(rows) < 0.02] = np.nan
        cols[f"num_{i}"] = values
    for i in range(4):
        cols[f"int_{i}"] = rng.integers(0, 1000, rows)
    for i in range(4):
        cols[f"cat_{i}"] = rng.choice(["alpha", "beta", "gamma", "delta", None], rows)
    cols["email"] = np.char.add(np.char.add("user", np.arange(rows).astype(str)), "@example.com")
    cols["phone"] = rng.choice(["+33 1 42 68 53 00", "(555) 010-9999", "n/a"], rows)
    cols["note"] = rng.choice(["ok", "late", "ok ", " check"], rows)
    pd.DataFrame(cols).to_csv(path, index=False)


FLOOR = """
import sys, time, resource, json
import pandas as pd
t = time.perf_counter()
frame = pd.read_csv(sys.argv[1], engine="pyarrow")
frame.describe(include="all")
print(json.dumps({"seconds": time.perf_counter() - t,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

PROFILE = """
import sys, time, resource, json
from pathlib import Path
from spyglass.tools.catalogue import TOOLS
from spyglass.tools.common.frames import load_table
from spyglass.tools.common.report import build_report, to_json
from spyglass.tools.common.toolkit import run_agents
t = time.perf_counter()
frames = {"primary": load_table(Path(sys.argv[1]).read_bytes(), "primary.csv"),
          "baseline": load_table(Path(sys.argv[2]).read_bytes(), "baseline.csv")}
tool = TOOLS["profile-my-data"]
timings, clock = {}, {}
def started(agent):
    clock[agent] = time.perf_counter()
def done(agent, result, outputs):
    timings[agent] = round(time.perf_counter() - clock[agent], 3)
ctx = run_agents(tool, [a.id for a in tool.agents], frames, on_start=started, on_done=done)
report = to_json(build_report(tool, ctx))
print(json.dumps({"seconds": time.perf_counter() - t, "agents": timings,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(code: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(rows: int = 1_000_000) -> None:
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
        floors, profiles = [], []
        for _ in range(RUNS):  # alternated, so both see the same machine
            floors.append(measure(FLOOR, str(primary)))
            profiles.append(measure(PROFILE, str(primary), str(baseline)))
        floor = sorted(floors, key=lambda r: r["seconds"])[RUNS // 2]
        profile = sorted(profiles, key=lambda r: r["seconds"])[RUNS // 2]
        ratio = profile["seconds"] / floor["seconds"]
        print(f"  median of {RUNS} runs each, every run in a fresh process:")
        print(
            f"  pyarrow read + describe()   {floor['seconds']:6.2f} s   "
            f"peak {floor['peak_mb']:7.0f} MB   (floor)"
        )
        print(
            f"  profile-my-data, 6 agents   {profile['seconds']:6.2f} s   "
            f"peak {profile['peak_mb']:7.0f} MB   = {ratio:.2f}× the floor "
            "(targets: ≤ 10 s, ≤ 1.5×)"
        )
        print("  per agent: " + ", ".join(f"{k} {v:.2f} s" for k, v in profile["agents"].items()))
        print(
            "  all runs: floor "
            + ", ".join(f"{r['seconds']:.2f}" for r in floors)
            + " s; profile "
            + ", ".join(f"{r['seconds']:.2f}" for r in profiles)
            + " s"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
