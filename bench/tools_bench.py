"""clean-my-data and master-my-data on a generated 1,000,000-row customers CSV, beside a
pyarrow read + write of the same CSV (the floor), each in a fresh process.

Each run is what a task's child does (`spyglass.tools.run._tool_body`): read the file, run
the tool's default agents (all of them, as a new task ticks them) with the same start/done
hooks, write every output file (cleaned.csv, quarantine.csv, golden_records.csv) to disk,
build the JSON report. Prints the median of RUNS runs (alternated with the floor, so both
see the same machine), peak RSS, seconds per agent and the longest time the task's progress
stood still (between the updates a task sends: the start, each agent's start and end, and
any progress an agent reports itself, until the report is written). Every run checks that
each input row is accounted for (`rows_in = rows_out + rows_quarantined + rows_merged`;
master: `rows_in = golden records + rows merged`, one golden record per customer) and
fails loudly if not.
Usage: python -m bench.tools_bench [ROWS]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
RUNS = 3
TARGET_SECONDS = 10.0
TARGET_GAP = 2.0
TOOLS = ("clean-my-data", "master-my-data")

FIRST = ["Ada", "Alan", "Grace", "Linus", "Marie", "Ines", "Jorge", "Yuki", "Omar", "Lena"]
LAST = ["Smith", "Jones", "Brown", "Wu", "Curie", "Garcia", "Silva", "Sato", "Haddad", "Berg"]
COUNTRIES = ["Spain", "France", "Germany", "Italy", "Portugal", "Japan", "Brazil", "Canada"]
#: Shares of the rows: exact copies of an earlier row; further rows of a customer already
#: listed (same e-mail written in other case and spaces, other id, phone, country, amount
#: and a later `updated_at`); rows with no e-mail; empty phone, country and age cells.
EXACT_SHARE, REPEAT_SHARE, NO_EMAIL_SHARE = 0.01, 0.03, 0.015
NULL_SHARES = {"phone": 0.05, "country": 0.03, "age": 0.04}


@dataclass(frozen=True)
class Known:
    """What the generated file is made of (the bench checks the tools' counts against it)."""

    rows: int
    exact_copies: int
    repeats: int
    without_email: int
    #: Customers with an e-mail (each one golden record) plus rows without one.
    golden_records: int


def customers(rows: int, seed: int = 7) -> tuple[pd.DataFrame, Known]:
    """A customer table of `rows` rows with known duplicates, repeats and gaps (seeded)."""
    rng = np.random.default_rng(seed)
    exact = int(rows * EXACT_SHARE)
    repeats = int(rows * REPEAT_SHARE)
    people = rows - exact - repeats
    ids = np.arange(1, people + 1)
    first = np.array(FIRST)[rng.integers(0, len(FIRST), people)]
    last = np.array(LAST)[rng.integers(0, len(LAST), people)]
    email = pd.Series(first).str.lower() + "." + pd.Series(last).str.lower()
    email = email + ids.astype(str) + "@example.com"
    no_email = rng.random(people) < NO_EMAIL_SHARE
    start = np.datetime64("2018-01-01")
    signup = start + rng.integers(0, 2000, people).astype("timedelta64[D]")
    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "name": pd.Series(first) + " " + pd.Series(last),
            "email": email.where(~no_email, None),
            "phone": _phones(rng, people),
            "country": np.array(COUNTRIES, dtype=object)[rng.integers(0, len(COUNTRIES), people)],
            "age": np.clip(rng.normal(45, 12, people).round(), 18, 90),
            "amount": rng.lognormal(4.0, 1.0, people).round(2),
            "signup_date": signup,
            "updated_at": signup + rng.integers(0, 300, people).astype("timedelta64[D]"),
        }
    )
    for column, share in NULL_SHARES.items():
        frame.loc[rng.random(people) < share, column] = None
    frame["age"] = frame["age"].astype("Int64")
    # Further rows of customers with an e-mail: another id, conflicting fields, newer.
    again = frame.iloc[rng.choice(np.flatnonzero(~no_email), repeats, replace=False)].copy()
    again["customer_id"] = np.arange(people + 1, people + repeats + 1)
    again["email"] = " " + again["email"].str.upper()
    again["phone"] = _phones(rng, repeats)
    again["country"] = np.array(COUNTRIES, dtype=object)[rng.integers(0, len(COUNTRIES), repeats)]
    again["amount"] = rng.lognormal(4.0, 1.0, repeats).round(2)
    again["updated_at"] = again["updated_at"] + np.timedelta64(30, "D")
    frame = pd.concat([frame, again], ignore_index=True)
    copies = frame.iloc[rng.choice(len(frame), exact, replace=False)]
    frame = pd.concat([frame, copies], ignore_index=True)
    frame = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    without = int(frame["email"].isna().sum())
    emails = frame["email"].dropna().str.strip().str.lower().nunique()
    return frame, Known(rows, exact, repeats, without, int(emails) + without)


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    area = rng.integers(200, 999, n).astype(str)
    local = rng.integers(1_000_000, 9_999_999, n).astype(str)
    return np.char.add(np.char.add(np.char.add("+1 (", area), ") "), local).astype(object)


FLOOR = """
import json, resource, sys, time
import pyarrow as pa, pyarrow.csv as pacsv
from spyglass.tools.run import _reserve_what_is_used
_reserve_what_is_used()
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
t, c = time.perf_counter(), cpu()
table = pacsv.read_csv(pa.BufferReader(open(sys.argv[1], "rb").read()))
pacsv.write_csv(table, sys.argv[2] + "/copy.csv")
print(json.dumps({"seconds": time.perf_counter() - t, "cpu": cpu() - c,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

#: A task's child, as `spyglass.tools.run._tool_body` runs it (its outputs written to disk).
TOOL = """
import json, resource, sys, time
from pathlib import Path
from spyglass.tools.catalogue import TOOLS
from spyglass.tools.common.frames import load_table
from spyglass.tools.common.report import build_report, to_json
from spyglass.tools.common.toolkit import run_agents
from spyglass.tools.run import _reserve_what_is_used
_reserve_what_is_used()
path, out, tool = Path(sys.argv[1]), Path(sys.argv[2]), TOOLS[sys.argv[3]]
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
t, c = time.perf_counter(), cpu()
events = [0.0]  # when progress moved (s since the start): what the task page sees
clock, timings, sizes = {}, {}, {}
def mark():
    events.append(time.perf_counter() - t)
frames = {"primary": load_table(path.read_bytes(), path.name)}
read = time.perf_counter() - t
def started(agent):
    clock[agent] = time.perf_counter()
    mark()
def done(agent, result, outputs):
    for o in outputs:
        (out / o.filename).write_bytes(o.data)
        sizes[o.filename] = len(o.data)
    timings[agent] = round(time.perf_counter() - clock[agent], 3)
    mark()
def progress(agent, share, what):
    mark()
ctx = run_agents(tool, [a.id for a in tool.agents], frames, on_start=started, on_done=done,
                 on_progress=progress)
body = to_json(build_report(tool, ctx))
(out / "report.json").write_bytes(body)
mark()
report = json.loads(body)
gaps = [b - a for a, b in zip(events, events[1:])]
print(json.dumps({"seconds": time.perf_counter() - t, "cpu": cpu() - c, "read": read,
                  "agents": timings,
                  "max_gap": max(gaps), "outputs": sizes,
                  "summary": report["executiveSummary"],
                  "results": {k: {n: v for n, v in r.items() if isinstance(v, (int, float, str))}
                              for k, r in report["agentResults"].items()},
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(code: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"a measured run failed (exit {done.returncode}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def check_rows(tool: str, run: dict[str, Any], known: Known) -> str:
    """Every input row accounted for; raises (the bench fails) when not."""
    s = run["summary"]
    if tool == "clean-my-data":
        balance = (s["rows_in"], s["rows_out"] + s["rows_quarantined"] + s["rows_merged"])
        ok = s["rows_in"] == known.rows == balance[1] and s["rows_written"] == s["rows_out"]
        ok = ok and s["duplicates_merged"] == s["rows_merged"] <= known.exact_copies
    else:
        golden = s["golden_records"]
        ok = s["rows_in"] == known.rows == golden + s["merged_rows"]
        ok = ok and golden == known.golden_records
        ok = ok and s["rows_without_key"] == known.without_email
        ok = ok and run["results"]["master-writeback"]["rows_written"] == golden
    if not ok:
        raise SystemExit(f"{tool}: rows not accounted for: {s} (generated: {asdict(known)})")
    return str(s["rows_balance"])


def median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]


def main(rows: int = 1_000_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "customers.csv"
        t = time.perf_counter()
        frame, known = customers(rows)
        frame.to_csv(path, index=False)
        del frame
        size = path.stat().st_size / 1e6
        print(
            f"clean-my-data and master-my-data on {rows:,} customers × 9 columns ({size:.0f} MB "
            f"CSV: {known.exact_copies:,} exact copies, {known.repeats:,} repeated customers "
            f"with conflicting fields, {known.without_email:,} rows without an e-mail; "
            f"generated in {time.perf_counter() - t:.1f} s):"
        )
        floors: list[dict[str, Any]] = []
        runs: dict[str, list[dict[str, Any]]] = {tool: [] for tool in TOOLS}
        for _ in range(RUNS):  # alternated, so all see the same machine
            floors.append(measure(FLOOR, str(path), tmp))
            for tool in TOOLS:
                out = folder / tool
                out.mkdir(exist_ok=True)
                run = measure(TOOL, str(path), str(out), tool)
                check_rows(tool, run, known)
                runs[tool].append(run)
        floor = median(floors)
        print(
            f"  median of {RUNS} runs each, every run in a fresh process (default agents); "
            f"load average {os.getloadavg()[0]:.1f}:"
        )
        print(
            f"  pyarrow read + write CSV  {floor['seconds']:6.2f} s   "
            f"(CPU {floor['cpu']:5.2f} s)   peak {floor['peak_mb']:6.0f} MB   (floor)"
        )
        for tool in TOOLS:
            run = median(runs[tool])
            print(
                f"  {tool:<24}  {run['seconds']:6.2f} s   (CPU {run['cpu']:5.2f} s)   "
                f"peak {run['peak_mb']:6.0f} MB   "
                f"= {run['seconds'] / floor['seconds']:.1f}× the floor   "
                f"(target ≤ {TARGET_SECONDS:.0f} s)"
            )
            print(
                f"    progress stood still at most {run['max_gap']:.2f} s "
                f"(target ≤ {TARGET_GAP:.0f} s); read {run['read']:.2f} s; per agent: "
                + ", ".join(f"{k} {v:.2f}" for k, v in run["agents"].items())
            )
            print(f"    {check_rows(tool, run, known)}")
        print(
            "  all runs (s): floor "
            + ", ".join(f"{r['seconds']:.2f}" for r in floors)
            + "; "
            + "; ".join(
                f"{tool} " + ", ".join(f"{r['seconds']:.2f}" for r in runs[tool]) for tool in TOOLS
            )
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
