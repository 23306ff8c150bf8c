"""master-my-data keeps every input row: on a generated customer table where some rows have
no e-mail (the match key), `rows_in = golden records + rows merged`, and each row without the
key is a golden record of its own."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spyglass.tools.catalogue import TOOLS
from spyglass.tools.common.frames import load_table
from spyglass.tools.common.report import build_report, plain
from spyglass.tools.common.toolkit import run_agents

TOOL = TOOLS["master-my-data"]
MASTER = [a.id for a in TOOL.agents]
PEOPLE, REPEATS, WITHOUT_EMAIL = 400, 80, 37


def test_rows_without_the_match_key_are_golden_records_of_their_own() -> None:
    rng = np.random.default_rng(3)
    people = pd.DataFrame(
        {
            "customer_id": np.arange(1, PEOPLE + 1),
            "email": [f"person{i}@example.com" for i in range(1, PEOPLE + 1)],
            "name": rng.choice(["Ada", "Alan", "Grace"], PEOPLE),
            "amount": rng.integers(1, 500, PEOPLE),
        }
    )
    # 80 more rows for people already listed (same e-mail, other case and spaces), and 37 of
    # the people with no e-mail at all.
    repeated = rng.choice(PEOPLE, REPEATS, replace=False)
    again = people.iloc[repeated].copy()
    again["email"] = " " + again["email"].str.upper()
    again["customer_id"] = np.arange(PEOPLE + 1, PEOPLE + REPEATS + 1)
    frame = pd.concat([people, again], ignore_index=True)
    alone = np.setdiff1d(np.arange(PEOPLE), repeated)
    missing = sorted(rng.choice(alone, WITHOUT_EMAIL, replace=False))
    frame.loc[missing, "email"] = None
    data = frame.to_csv(index=False).encode()
    source = load_table(data, "crm.csv")

    ctx = run_agents(TOOL, MASTER, {"primary": source})
    results = ctx.results
    files = {o.filename: o.data for o in ctx.outputs}
    report = plain(build_report(TOOL, ctx))

    built = results["golden-record-builder"]
    rows_in = PEOPLE + REPEATS
    assert built["match_key"] == "email"
    assert (built["rows_in"], built["golden_records"], built["merged_rows"]) == (
        rows_in,
        PEOPLE,
        REPEATS,
    )
    assert built["rows_without_key"] == len(missing) == WITHOUT_EMAIL
    assert built["rows_in"] == built["golden_records"] + built["merged_rows"]
    summary = report["executiveSummary"]
    assert summary["rows_in"] == summary["golden_records"] + summary["merged_rows"]
    assert summary["rows_balance"] == "480 rows in = 400 golden records + 80 rows merged into them"

    golden = load_table(files["golden_records.csv"], "golden.csv")
    assert len(golden) == PEOPLE and golden["_source_rows"].sum() == rows_in
    # Each person once; those without an e-mail kept as they were read.
    lone = golden[golden["email"].isna()].set_index("customer_id").sort_index()
    expected = source.loc[missing].set_index("customer_id").sort_index()
    assert list(lone.index) == list(expected.index)
    pd.testing.assert_frame_equal(lone.drop(columns="_source_rows"), expected, check_dtype=False)
    assert (lone["_source_rows"] == 1).all()
    assert f"{len(missing)} row(s) have no match key" in {
        f["reason"] for f in results["stewardship-flagger"]["flags"]
    }
