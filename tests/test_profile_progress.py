"""The profile agents report progress from within their long steps (issue 12: progress moves at
least every 2 s on a long agent; `bench/profile_bench.py` measures the gaps on 1,000,000 rows),
and the faster statistics give the same figures as numpy and pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spyglass.tools.catalogue import TOOLS
from spyglass.tools.common import memo, significance, stats, toolkit
from spyglass.tools.common.toolkit import progress_to, report_progress, run_agents

TOOL = TOOLS["profile-my-data"]


def table(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3, 1, rows).round(2)
    amount[rng.random(rows) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "amount": amount,
            "qty": rng.integers(0, 50, rows),
            "country": rng.choice(["FR", "DE", "ES", None], rows),
        }
    )


def test_each_column_of_the_statistics_and_the_drift_report_progress(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(toolkit, "PROGRESS_EVERY", 0.0)  # every report, not one per 0.5 s
    reports: list[tuple[str, float | None, str]] = []
    frames = {"primary": table(500), "baseline": table(500, seed=1)}
    run_agents(
        TOOL,
        ["unified-profiler", "drift-detector"],
        frames,
        on_progress=lambda agent, share, what: reports.append((agent, share, what)),
    )
    columns = [r for r in reports if r[2].startswith("statistics of column")]
    # The primary's statistics in unified-profiler, the baseline's in drift-detector.
    assert [(a, s) for a, s, _ in columns] == [
        ("unified-profiler", 1 / 3),
        ("unified-profiler", 2 / 3),
        ("unified-profiler", 1.0),
        ("drift-detector", 1 / 3),
        ("drift-detector", 2 / 3),
        ("drift-detector", 1.0),
    ]
    assert columns[0][2] == "statistics of column 1 of 3"
    assert any(a == "unified-profiler" and w.startswith("correlations") for a, _, w in reports)
    compared = [s for a, s, w in reports if a == "drift-detector" and w.startswith("comparing")]
    assert compared == [1 / 3, 2 / 3, 1.0]


def test_reports_are_throttled_and_go_nowhere_without_a_reporter() -> None:
    report_progress(0.5, "no reporter: nothing happens")
    got: list[tuple[float | None, str]] = []
    with progress_to(lambda share, what: got.append((share, what))):
        for i in range(1_000):
            report_progress(i / 1_000, f"step {i}")
    assert got[0] == (0.0, "step 0")
    assert len(got) < 10  # one per PROGRESS_EVERY (0.5 s): a thousand quick steps, a few


def test_row_hashes_in_blocks_are_the_hashes_of_the_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pd.concat([table(1_000), table(1_000).iloc[:250]], ignore_index=True)
    whole = pd.util.hash_pandas_object(frame, index=False)
    monkeypatch.setattr(memo, "HASH_BLOCK", 300)
    blocks = memo.row_hashes(frame)
    assert blocks.equals(whole)
    duplicates = int(memo.duplicate_mask(frame).sum())
    assert duplicates == int(whole.duplicated().sum()) and duplicates >= 250


@pytest.mark.parametrize("rows", [1, 2, 3, 10_000])
def test_mean_std_and_skewness_are_numpys_and_pandas(rows: int) -> None:
    values = np.sort(np.random.default_rng(rows).lognormal(2, 1, rows))
    mean, std, skew = stats.moments(values)
    assert mean == values.mean()
    if rows > 1:
        assert std == values.std(ddof=1)  # the same operations: bit for bit
    else:
        assert std is None
    if rows > 2:
        assert skew == pytest.approx(pd.Series(values).skew(), rel=1e-9)
    else:
        assert skew is None
    assert stats.moments(np.full(5, 7.0))[1:] == (0.0, 0.0)  # constant: no spread, no skew


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            np.random.default_rng(1).normal(0, 1, 5_000),
            np.random.default_rng(2).normal(0.2, 1, 700),
        ),
        (
            np.random.default_rng(3).integers(0, 20, 3_000),
            np.random.default_rng(4).integers(0, 25, 900),
        ),
        (np.array([1.0]), np.array([1.0, 2.0])),
    ],
)
def test_ks_statistic_is_the_largest_gap_between_the_cdfs(a: np.ndarray, b: np.ndarray) -> None:
    a, b = np.sort(a.astype("float64")), np.sort(b.astype("float64"))
    grid = np.concatenate([a, b])  # the definition: both CDFs at every value
    gaps = np.searchsorted(a, grid, side="right") / len(a) - np.searchsorted(
        b, grid, side="right"
    ) / len(b)
    assert significance.ks_statistic(a, b) == float(np.max(np.abs(gaps)))
