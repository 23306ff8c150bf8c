"""Per-column statistics of a frame, computed once and shared by the profile agents.

One pass per column gives what unified-profiler, score-risk, drift-detector,
readiness-rater, governance-checker and test-coverage all read: counts, nulls,
distinct values and the most frequent ones, and for numbers a single sort that
yields min/max, exact quantiles, the histogram, Tukey's outlier count and a
thinned copy for the KS test. Text is counted by pyarrow's hash kernels. Columns
are worked on in parallel threads (numpy's sort and pyarrow release the GIL).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api import types as ptypes

from spyglass.tools.agents.memo import duplicate_mask, once
from spyglass.tools.agents.patterns import numeric_share, pii_share

#: Values per column the pattern checks (PII, numbers in text) look at.
SAMPLE = 2_000
#: Order statistics kept per numeric column for the Kolmogorov–Smirnov test.
KS_POINTS = 100_000
#: Categories kept in full (for the drift PSI); bigger columns keep only their top values.
MAX_CATEGORIES = 1_000
TOP = 5
BINS = 10


@dataclass
class ColumnStats:
    name: str
    kind: str  # integer, number, boolean, date, string
    count: int
    nulls: int
    distinct: int
    #: The most frequent values as text, with their counts (most frequent first).
    top: list[tuple[str, int]]
    #: Every value's count when there are at most MAX_CATEGORIES of them, else None.
    categories: dict[str, int] | None = None
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    std: float | None = None
    quartiles: tuple[float, float, float] | None = None
    histogram: tuple[list[int], list[float]] | None = None
    #: Values beyond Tukey's fences (1.5 × IQR).
    outliers: int = 0
    #: Sorted values, thinned to at most KS_POINTS order statistics.
    ks_points: np.ndarray | None = field(default=None, repr=False)
    #: A fixed sample of the non-null values as text (for pattern checks).
    sample: list[str] = field(default_factory=list, repr=False)
    date_range: tuple[str, str] | None = None
    #: The PII kind most sampled values have (text and integer columns), and its share.
    pii: str | None = None
    pii_share: float = 0.0
    #: Text columns: the share of values whose type differs from most (numbers among text).
    type_drift: float = 0.0

    @property
    def numeric(self) -> bool:
        return self.kind in ("integer", "number")


def kind_of(series: pd.Series) -> str:
    if ptypes.is_bool_dtype(series):
        return "boolean"
    if ptypes.is_numeric_dtype(series):
        return "integer" if ptypes.is_integer_dtype(series) else "number"
    if ptypes.is_datetime64_any_dtype(series):
        return "date"
    return "string"


def quantile(ordered: np.ndarray, q: float) -> float:
    """Linear interpolation between order statistics (numpy's and pandas' default)."""
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))


def _sample_positions(n: int, size: int) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, size, replace=False))


def _runs(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a sorted array and how often each occurs."""
    if len(ordered) == 0:
        return ordered, np.array([], dtype=np.int64)
    starts = np.concatenate(([0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1))
    counts = np.diff(np.concatenate((starts, [len(ordered)])))
    return ordered[starts], counts


def _top(values: Any, counts: np.ndarray, text: Any) -> list[tuple[str, int]]:
    """The TOP most frequent values; ties go to the earlier value (sorted numbers, or text in
    the order it first appears). Linear time, even when a million values tie."""
    if len(counts) == 0:
        return []
    k = min(TOP, len(counts))
    kth = np.partition(counts, len(counts) - k)[len(counts) - k]
    above = np.flatnonzero(counts > kth)
    tied = np.flatnonzero(counts == kth)[: k - len(above)]
    best = np.concatenate((above, tied))
    best = best[np.lexsort((best, -counts[best]))]
    return [(text(values[i]), int(counts[i])) for i in best]


def _numeric(series: pd.Series, stats: ColumnStats) -> None:
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    present = values[~np.isnan(values)]
    if len(present) == 0:
        return
    ordered = np.sort(present)
    n = len(ordered)
    uniq, counts = _runs(ordered)
    integral = stats.kind == "integer"
    stats.distinct = len(uniq)
    stats.top = _top(uniq, counts, (lambda v: str(int(v))) if integral else (lambda v: str(v)))
    if len(uniq) <= MAX_CATEGORIES:
        name = (lambda v: str(int(v))) if integral else str
        stats.categories = {name(v): int(c) for v, c in zip(uniq, counts, strict=True)}
    lo, hi = float(ordered[0]), float(ordered[-1])
    q1, q2, q3 = (quantile(ordered, q) for q in (0.25, 0.5, 0.75))
    stats.minimum, stats.maximum, stats.quartiles = lo, hi, (q1, q2, q3)
    stats.mean = float(present.mean())
    stats.std = float(present.std(ddof=1)) if n > 1 else None
    if lo == hi:
        stats.histogram = ([n], [lo, hi])
    else:
        edges = np.linspace(lo, hi, BINS + 1)
        cuts = np.searchsorted(ordered, edges[1:-1], side="left")
        bounds = np.concatenate(([0], cuts, [n]))
        stats.histogram = ([int(c) for c in np.diff(bounds)], [float(e) for e in edges])
    iqr = q3 - q1
    low = np.searchsorted(ordered, q1 - 1.5 * iqr, side="left")
    high = n - np.searchsorted(ordered, q3 + 1.5 * iqr, side="right")
    stats.outliers = int(low + high)
    points = np.linspace(0, n - 1, min(n, KS_POINTS)).round().astype(np.int64)
    stats.ks_points = ordered[points]
    stats.sample = [
        str(int(v)) if integral else str(v) for v in present[_sample_positions(n, SAMPLE)]
    ]


def _text(series: pd.Series, stats: ColumnStats) -> None:
    array = pa.array(series.array, from_pandas=True)  # zero-copy for pyarrow-backed text
    if not isinstance(array, pa.ChunkedArray):
        array = pa.chunked_array([array])
    counted = pc.value_counts(array.filter(pc.is_valid(array)))
    values = counted.field("values").to_numpy(zero_copy_only=False)
    counts = counted.field("counts").to_numpy()
    stats.distinct = len(counts)
    stats.top = _top(values, counts, str)
    if len(counts) <= MAX_CATEGORIES:
        stats.categories = {str(v): int(c) for v, c in zip(values, counts, strict=True)}
    present = array.drop_null()
    positions = _sample_positions(len(present), SAMPLE)
    stats.sample = [str(v) for v in present.take(pa.array(positions)).to_pylist()]


def _other(series: pd.Series, stats: ColumnStats) -> None:
    """Booleans and dates: few enough distinct values for pandas to count."""
    present = series.dropna()
    counts = present.value_counts()
    stats.distinct = len(counts)
    stats.top = [(str(v), int(c)) for v, c in counts.head(TOP).items()]
    if len(counts) <= MAX_CATEGORIES:
        stats.categories = {str(v): int(c) for v, c in counts.items()}
    if stats.kind == "date" and len(present):
        stats.date_range = (present.min().isoformat(), present.max().isoformat())
    sample = present.iloc[_sample_positions(len(present), SAMPLE)]
    stats.sample = [str(v) for v in sample]


def compute(series: pd.Series) -> ColumnStats:
    kind = kind_of(series)
    stats = ColumnStats(
        name=str(series.name),
        kind=kind,
        count=len(series),
        nulls=int(series.isna().sum()),
        distinct=0,
        top=[],
    )
    if stats.numeric:
        _numeric(series, stats)
    elif kind == "string" and not ptypes.is_object_dtype(series):
        _text(series, stats)
    elif kind == "string":
        _text(series.astype("string[pyarrow]"), stats)
    else:
        _other(series, stats)
    if kind in ("string", "integer"):
        stats.pii, stats.pii_share = pii_share(stats.sample)
    if kind == "string" and stats.sample:
        share = numeric_share(stats.sample)
        stats.type_drift = min(share, 1.0 - share)
    return stats


def frame_stats(frame: pd.DataFrame) -> dict[str, ColumnStats]:
    """Statistics of every column, by column name (computed once per frame)."""

    def work() -> dict[str, ColumnStats]:
        columns = [frame.iloc[:, i] for i in range(frame.shape[1])]
        workers = min(len(columns), os.cpu_count() or 1) or 1
        with ThreadPoolExecutor(workers) as pool:
            return {s.name: s for s in pool.map(compute, columns)}

    return once(frame, "stats", work)


def duplicate_rows(frame: pd.DataFrame) -> int:
    """Rows equal to an earlier row; none at all when some column is a complete unique key."""
    stats = frame_stats(frame)
    if any(s.nulls == 0 and s.distinct == s.count for s in stats.values()):
        return 0
    return int(duplicate_mask(frame).sum())
