"""clean-my-data's defaults on a generated customer table with known faults: nothing deleted,
nothing invented, every input row accounted for (`rows_in = out + quarantined + merged`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spyglass.tools.catalogue import TOOLS
from spyglass.tools.clean import agents as clean
from spyglass.tools.clean.parameters import CleanParameters
from spyglass.tools.common.frames import load_table
from spyglass.tools.common.report import build_report, plain
from spyglass.tools.common.toolkit import AgentContext, run_agents
from tests.cleandata import ABSURD_AGES, ABSURD_AMOUNTS, DUPLICATES, ROWS, customers

TOOL = TOOLS["clean-my-data"]
CLEAN = [a.id for a in TOOL.agents]


def run_clean(
    frame: pd.DataFrame, parameters: dict[str, object] | None = None
) -> tuple[dict[str, pd.DataFrame], dict[str, dict], dict]:
    """Every clean-my-data agent in catalogue order, as the tool run does, and its report."""
    frames: dict[str, pd.DataFrame] = {"primary": frame}
    ctx = run_agents(TOOL, CLEAN, frames, parameters)
    files = {o.filename: o.data for o in ctx.outputs}
    report = plain(build_report(TOOL, ctx))
    return frames, {**ctx.results, "_files": files}, report


def read(data: bytes) -> pd.DataFrame:
    return load_table(data, "x.csv")


def test_defaults_set_aside_only_absurd_values_and_merge_exact_duplicates() -> None:
    known = customers()
    source = load_table(known.csv, "customers.csv")
    frames, results, report = run_clean(source)
    cleaned = read(results["_files"]["cleaned.csv"])
    held = read(results["_files"]["quarantine.csv"])
    merged = frames["merged"]

    # The known answers: 5,000 in = 4,955 written + 5 set aside + 40 duplicates merged.
    rows = (ROWS, ROWS - DUPLICATES - ABSURD_AMOUNTS - ABSURD_AGES, 5, DUPLICATES)
    for figures in (
        results["cleanse-writeback"],
        results["cleanse-previewer"],
        report["executiveSummary"],
    ):
        got = tuple(figures[k] for k in ("rows_in", "rows_out", "rows_quarantined", "rows_merged"))
        assert got == rows
        assert figures["rows_in"] == (
            figures["rows_out"] + figures["rows_quarantined"] + figures["rows_merged"]
        )
    summary = report["executiveSummary"]
    assert summary["rows_balance"] == (
        "5,000 rows in = 4,955 written + 5 set aside + 40 duplicates merged"
    )
    assert (summary["rows_set_aside_as_outliers"], summary["duplicates_merged"]) == (5, 40)
    assert (summary["nulls_filled"], summary["rows_set_aside_for_gaps"]) == (0, 0)
    assert summary["rows_written"] == len(cleaned) == rows[1]

    # Exactly the rows with an absurd value are set aside (no false alarm on the lognormal
    # amounts or the ages), each with its reason in plain words.
    assert set(held["customer_id"]) == known.absurd_ids
    reasons = dict(zip(held["customer_id"], held[clean.REASON], strict=True))
    assert sorted(reasons.values()) == sorted(
        ["age is far outside the usual range"] * ABSURD_AGES
        + ["amount is far outside the usual range"] * ABSURD_AMOUNTS
    )
    assert results["outlier-remover"]["by_column"] == {
        "age": ABSURD_AGES,
        "amount": ABSURD_AMOUNTS,
    }
    assert results["outlier-remover"]["scale_by_column"]["amount"] == "as is and log"

    # Merged rows are exact copies of a row written; every input row is in exactly one place.
    assert set(merged["customer_id"]) == known.duplicated_ids and len(merged) == DUPLICATES
    ids = pd.concat([cleaned["customer_id"], held["customer_id"], merged["customer_id"]])
    assert sorted(ids) == sorted(source["customer_id"])
    assert cleaned["customer_id"].is_unique and not set(cleaned["customer_id"]) & set(
        held["customer_id"]
    )

    # Nothing invented or changed: each written row is its input row, gaps included.
    expected = (
        source.drop_duplicates()
        .loc[lambda f: ~f["customer_id"].isin(known.absurd_ids)]
        .reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(cleaned, expected, check_dtype=False)
    assert cleaned.isna().sum().to_dict() == expected.isna().sum().to_dict()
    assert cleaned["age"].isna().sum() > 150 and cleaned["country"].isna().sum() > 150
    # The held rows are their input rows plus the reason.
    original = source.set_index("customer_id").loc[held["customer_id"]].reset_index()
    pd.testing.assert_frame_equal(held.drop(columns=clean.REASON), original, check_dtype=False)

    # The preview says what changed: per column only the rows set aside, with samples.
    changes = {c["column"]: c for c in results["cleanse-previewer"]["changes"]}
    assert set(changes) == {"age", "amount"}
    assert (changes["amount"]["quarantined"], changes["amount"]["filled"]) == (3, 0)
    sample = changes["amount"]["samples"][0]
    assert sample["change"] == "set aside" and sample["before"] == 1e9
    assert sample["after"] == "amount is far outside the usual range"


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(
    "draw",
    [
        lambda rng: rng.normal(0, 1, ROWS),
        lambda rng: rng.normal(100, 15, ROWS),
        lambda rng: rng.lognormal(4, 1, ROWS),
        lambda rng: rng.lognormal(0, 1.5, ROWS),
    ],
    ids=["normal", "normal-positive", "lognormal", "lognormal-wide"],
)
def test_clean_normal_and_lognormal_data_raise_no_false_alarm(seed: int, draw: object) -> None:
    values = draw(np.random.default_rng(seed))  # type: ignore[operator]
    frames, results, _ = run_clean(pd.DataFrame({"value": values}))
    assert results["outlier-remover"]["by_column"] == {"value": 0}
    assert clean.accounting(frames) == {
        "rows_in": ROWS,
        "rows_out": ROWS,
        "rows_quarantined": 0,
        "rows_merged": 0,
    }
    # The same values with three absurd ones: exactly those three are set aside.
    values = np.concatenate([values, [1e9, 2e9, 5e9]])
    frames, results, _ = run_clean(pd.DataFrame({"value": values}))
    assert results["outlier-remover"]["by_column"] == {"value": 3}
    assert sorted(frames["quarantine"]["value"]) == [1e9, 2e9, 5e9]


def test_the_old_fixed_fences_would_have_set_aside_real_customers() -> None:
    """Tukey's 1.5·IQR on the raw amounts (the old default) flags hundreds of ordinary
    lognormal amounts; asked for explicitly it still works, and still deletes nothing."""
    source = load_table(customers().csv, "customers.csv")
    frames, results, report = run_clean(
        source, {"outlier-remover": {"method": "iqr", "threshold": 1.5}}
    )
    held = results["outlier-remover"]["rows_quarantined"]
    assert held > 300
    summary = report["executiveSummary"]
    # Copies of a row set aside are set aside with it, so fewer duplicates are left to merge.
    assert summary["rows_merged"] == len(frames["merged"]) < DUPLICATES
    assert summary["rows_in"] == (
        summary["rows_out"] + summary["rows_quarantined"] + summary["rows_merged"]
    )
    assert summary["rows_quarantined"] == held == len(frames["quarantine"])


def test_explicit_fills_still_fill_and_drop_sets_rows_aside() -> None:
    known = customers()
    source = load_table(known.csv, "customers.csv")
    frames, results, report = run_clean(source, {"null-handler": {"strategy": "fill_median"}})
    cleaned = read(results["_files"]["cleaned.csv"])
    assert cleaned["age"].notna().all()
    assert results["null-handler"]["filled"]["age"] == source["age"].isna().sum()
    changes = {c["column"]: c for c in results["cleanse-previewer"]["changes"]}
    # The filled counts are of rows written (duplicates of a row with a gap are merged).
    assert changes["age"]["filled"] == int(
        frames["primary"].loc[frames["working"].index, "age"].isna().sum()
    )
    assert changes["age"]["samples"][0]["change"] == "filled"
    assert report["executiveSummary"]["nulls_filled"] > 0

    frames, results, report = run_clean(
        source, {"null-handler": {"strategy": "drop", "columns": ["age"]}}
    )
    held = read(results["_files"]["quarantine.csv"])
    gaps = int(source["age"].isna().sum())
    assert (held[clean.REASON] == "age is missing").sum() == gaps
    summary = report["executiveSummary"]
    assert summary["rows_set_aside_for_gaps"] == gaps
    assert summary["rows_in"] == (
        summary["rows_out"] + summary["rows_quarantined"] + summary["rows_merged"]
    )


def test_text_columns_become_numbers_only_when_every_value_reads_as_one() -> None:
    frame = pd.DataFrame(
        {
            "whole": ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"],
            "mostly": ["1", "2", "3", "4", "5", "6", "7", "8", "9", "n/a?"],
        }
    )
    frames = {"primary": frame}
    out = clean.type_fixer(AgentContext(frames, CleanParameters()))
    assert out["converted"] == {"whole": {"to": "number", "unconvertible": 0}}
    assert out["suggested"] == {"mostly": {"to": "number", "unconvertible": 1}}
    assert frames["working"]["mostly"].tolist()[-1] == "n/a?"
    # Asked for, the conversion is made and the values it could not read are counted.
    frames = {"primary": frame}
    params = CleanParameters.model_validate({"type-fixer": {"column_types": {"mostly": "number"}}})
    out = clean.type_fixer(AgentContext(frames, params))
    assert out["converted"]["mostly"] == {"to": "number", "unconvertible": 1}
    emptied = {c["column"]: c for c in clean.changes(frames)}["mostly"]
    assert emptied["emptied"] == 1 and emptied["samples"][0]["before"] == "n/a?"


def test_a_column_without_spread_flags_nothing() -> None:
    frame = pd.DataFrame({"active": [1] * 90 + [0] * 10, "visits": [3] * 80 + list(range(20))})
    frames, results, _ = run_clean(frame)
    assert results["outlier-remover"]["by_column"] == {"active": 0, "visits": 0}
    assert clean.accounting(frames)["rows_quarantined"] == 0
