"""Per-column statistics of a frame, computed once and shared by the profile agents.

One pass per column gives what unified-profiler, score-risk, drift-detector,
readiness-rater, governance-checker and test-coverage all read: counts, nulls,
distinct values and the most frequent ones, and for numbers a single sort that
yields min/max, exact quantiles, the histogram, Tukey's outlier count, zeros,
infinities, skewness and a thinned copy for the KS test (dates get the thinned copy
too, in seconds). Text is counted by pyarrow's hash kernels, with its shortest and
longest lengths. Every figure is one pass over one column: the work is linear in rows
and in columns. Columns are worked on in parallel threads (numpy's sort and pyarrow
release the GIL).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api import types as ptypes

from spyglass.tools.common.memo import duplicate_mask, once
from spyglass.tools.common.patterns import date_share, numeric_share, pii_share
from spyglass.tools.common.toolkit import report_progress

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
    #: Numbers: values that are ±infinity (left out of every other figure), and zeros.
    infinite: int = 0
    zeros: int = 0
    #: Numbers: adjusted Fisher–Pearson skewness (pandas' `skew`); None below 3 values.
    skewness: float | None = None
    #: Text: the shortest and longest value, in characters.
    min_length: int | None = None
    max_length: int | None = None
    #: Text: the share of sampled values written as dates (2024-01-31, 31/01/2024).
    date_like: float = 0.0
    #: Sorted finite values (dates: seconds since 1970), thinned to at most KS_POINTS
    #: order statistics.
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

    @property
    def measured(self) -> int:
        """Values the order statistics describe: not missing and (numbers) finite."""
        return self.count - self.nulls - self.infinite


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


def _most_frequent(counts: np.ndarray) -> np.ndarray:
    """Positions of the TOP largest counts, most frequent first; ties go to the earlier
    position. Linear time, even when a million values tie."""
    if len(counts) == 0:
        return np.array([], dtype=np.intp)
    k = min(TOP, len(counts))
    kth = np.partition(counts, len(counts) - k)[len(counts) - k]
    above = np.flatnonzero(counts > kth)
    tied = np.flatnonzero(counts == kth)[: k - len(above)]
    best = np.concatenate((above, tied))
    return best[np.lexsort((best, -counts[best]))]


def _top(values: Any, counts: np.ndarray, text: Any) -> list[tuple[str, int]]:
    """The TOP most frequent values; ties go to the earlier value (sorted numbers, or text in
    the order it first appears)."""
    return [(text(values[i]), int(counts[i])) for i in _most_frequent(counts)]


def moments(values: np.ndarray) -> tuple[float, float | None, float | None]:
    """Mean, standard deviation (n − 1, as numpy's `std(ddof=1)`) and adjusted
    Fisher–Pearson skewness G1 (as pandas' `Series.skew`; None below 3 values), from one
    centred copy. Sums are numpy's pairwise sums: no BLAS call, whose threads spin and
    cost ten times the arithmetic on a busy machine."""
    n = len(values)
    mean = float(values.mean())
    if n < 2:
        return mean, None, None
    centred = values - mean
    squares = centred * centred
    sum2 = float(squares.sum())
    std = math.sqrt(sum2 / (n - 1))
    if n < 3:
        return mean, std, None
    m2 = sum2 / n
    if m2 <= 1e-14 * max(1.0, mean * mean):
        return mean, std, 0.0
    squares *= centred
    m3 = float(squares.sum()) / n
    return mean, std, math.sqrt(n * (n - 1)) / (n - 2) * m3 / m2**1.5


def _numeric(series: pd.Series, stats: ColumnStats) -> None:
    if isinstance(series.dtype, np.dtype):  # plain numpy: no mask to read
        values = series.to_numpy().astype("float64", copy=False)
    else:
        values = series.to_numpy(dtype="float64", na_value=np.nan)
    # A plain integer column has no missing values: nothing to filter.
    plain_integers = isinstance(series.dtype, np.dtype) and series.dtype.kind in "iub"
    present = values if plain_integers else values[~np.isnan(values)]
    if len(present) == 0:
        return
    everything = np.sort(present)
    uniq, counts = _runs(everything)
    integral = stats.kind == "integer"
    stats.distinct = len(uniq)
    stats.top = _top(uniq, counts, (lambda v: str(int(v))) if integral else (lambda v: str(v)))
    if len(uniq) <= MAX_CATEGORIES:
        name = (lambda v: str(int(v))) if integral else str
        stats.categories = {name(v): int(c) for v, c in zip(uniq, counts, strict=True)}
    # ±infinity sort to the ends: every other figure is of the finite values between them.
    first = int(np.searchsorted(everything, -np.inf, side="right"))
    last = int(np.searchsorted(everything, np.inf, side="left"))
    stats.infinite = first + len(everything) - last
    ordered = everything[first:last]
    n = len(ordered)
    if n == 0:
        return
    stats.zeros = int(
        np.searchsorted(ordered, 0.0, side="right") - np.searchsorted(ordered, 0.0, side="left")
    )
    lo, hi = float(ordered[0]), float(ordered[-1])
    q1, q2, q3 = (quantile(ordered, q) for q in (0.25, 0.5, 0.75))
    stats.minimum, stats.maximum, stats.quartiles = lo, hi, (q1, q2, q3)
    stats.mean, stats.std, stats.skewness = moments(ordered)
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
    stats.ks_points = thinned(ordered)
    sample = present[_sample_positions(len(present), SAMPLE)]
    stats.sample = [str(int(v)) if integral else str(v) for v in sample]


def thinned(ordered: np.ndarray) -> np.ndarray:
    """At most KS_POINTS evenly spaced order statistics of a sorted array."""
    points = np.linspace(0, len(ordered) - 1, min(len(ordered), KS_POINTS)).round()
    return ordered[points.astype(np.int64)]


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind)) or (
        pa.types.is_string_view(kind)
    )


def _text(series: pd.Series, stats: ColumnStats) -> None:
    array = pa.array(series.array, from_pandas=True)  # zero-copy for pyarrow-backed text
    if not isinstance(array, pa.ChunkedArray):
        array = pa.chunked_array([array])
    present = array.drop_null()  # the same array when nothing is missing
    counted = pc.value_counts(present)
    values = counted.field("values")
    counts = counted.field("counts").to_numpy()
    stats.distinct = len(counts)
    # Only the values shown become Python objects (a million e-mails would take 80 ms).
    best = _most_frequent(counts)
    shown = values.take(pa.array(best)).to_numpy(zero_copy_only=False)
    stats.top = [(str(v), int(counts[i])) for v, i in zip(shown, best, strict=True)]
    if len(counts) <= MAX_CATEGORIES:
        every = values.to_numpy(zero_copy_only=False)
        stats.categories = {str(v): int(c) for v, c in zip(every, counts, strict=True)}
    if len(present):
        with contextlib.suppress(pa.ArrowException):  # categories, durations: cast to text
            text = present if _is_text(present.type) else present.cast(pa.large_string())
            lengths = pc.min_max(pc.utf8_length(text))
            stats.min_length = lengths["min"].as_py()
            stats.max_length = lengths["max"].as_py()
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
        stats.ks_points = thinned(np.sort(seconds(present)))
    sample = present.iloc[_sample_positions(len(present), SAMPLE)]
    stats.sample = [str(v) for v in sample]


def seconds(dates: pd.Series) -> np.ndarray:
    """Dates (no missing values) as seconds since 1970-01-01 UTC, as floats."""
    if getattr(dates.dtype, "tz", None) is not None:
        dates = dates.dt.tz_convert(None)
    return dates.to_numpy(dtype="datetime64[s]").astype("int64").astype("float64")


def _may_be_card(stats: ColumnStats) -> bool:
    """Of the PII kinds only card numbers (13 digits or more) can be written as integers."""
    lo, hi = stats.minimum or 0.0, stats.maximum or 0.0
    return max(abs(lo), abs(hi)) >= 1e12


def compute(series: pd.Series) -> ColumnStats:
    kind = kind_of(series)
    stats = ColumnStats(
        name=str(series.name),
        kind=kind,
        count=len(series),
        nulls=len(series) - int(series.count()),
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
    if kind == "string" or (kind == "integer" and _may_be_card(stats)):
        stats.pii, stats.pii_share = pii_share(stats.sample)
    if kind == "string" and stats.sample:
        share = numeric_share(stats.sample)
        stats.type_drift = min(share, 1.0 - share)
        stats.date_like = date_share(stats.sample)
    return stats


#: Rows from which a column's work (a sort of its values) is worth a thread of its own.
#: Short frames, however wide, are worked on in this thread: their columns take
#: microseconds each, and starting threads late in a memory-capped child can fail.
PARALLEL_ROWS = 50_000


def frame_stats(frame: pd.DataFrame) -> dict[str, ColumnStats]:
    """Statistics of every column, by column name (computed once per frame)."""

    def work() -> dict[str, ColumnStats]:
        columns = [series for _, series in frame.items()]
        workers = min(len(columns), os.cpu_count() or 1)
        with contextlib.ExitStack() as stack:
            done: Iterator[ColumnStats]
            if workers <= 1 or len(frame) < PARALLEL_ROWS:
                done = map(compute, columns)
            else:
                done = stack.enter_context(ThreadPoolExecutor(workers)).map(compute, columns)
            out = {}
            for i, stats in enumerate(done, 1):
                out[stats.name] = stats
                report_progress(i / len(columns), f"statistics of column {i:,} of {len(columns):,}")
            return out

    return once(frame, "stats", work)


def duplicate_rows(frame: pd.DataFrame) -> int:
    """Rows equal to an earlier row; none at all when some column is a complete unique key."""

    def work() -> int:
        stats = frame_stats(frame)
        if any(s.nulls == 0 and s.distinct == s.count for s in stats.values()):
            return 0
        return int(duplicate_mask(frame).sum())

    return once(frame, "duplicate_rows", work)
