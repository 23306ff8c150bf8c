"""unified-profiler: types, nulls, distinct values, statistics, top values, correlations, and
alerts (see `alerts`).

Every step is one pass per column, so a file with 10,000 columns costs 100 times one with
100. The one step that would grow with the square of the columns, the correlation matrix,
runs over a bounded set: at most MAX_CORRELATED numeric columns, chosen by CORRELATION_RULE.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from spyglass.tools.common.memo import streamed, table_rows
from spyglass.tools.common.patterns import is_identifying
from spyglass.tools.common.stats import ColumnStats, duplicate_rows, frame_stats
from spyglass.tools.common.toolkit import report_progress
from spyglass.tools.profile import alerts
from spyglass.tools.profile.parameters import UnifiedProfilerParams

#: Rows per block when summing the correlation products (bounds the extra memory).
CORR_BLOCK = 131_072
#: At most this many columns enter the correlation matrix (its cost grows with the square).
MAX_CORRELATED = 100
CORRELATION_RULE = (
    f"Pearson correlations over the first {MAX_CORRELATED} numeric columns in file order "
    "that measure (identifiers left out) and vary (more than one distinct value)"
)


STREAMED_RULE = (
    "read in blocks, never whole (larger than a task may hold in memory): counts, missing "
    "values, distinct values, duplicate rows, minimum, maximum, mean, standard deviation, "
    "skewness, zeros, histograms and outliers are of every row; quartiles, correlations, "
    "patterns (personal data, dates) and the top values of columns with over 5,000 distinct "
    "values are of a uniform sample of rows"
)


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else round(number, 6)


def profile_column(stats: ColumnStats) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": stats.name,
        "type": stats.kind,
        "count": stats.count,
        "nulls": stats.nulls,
        "null_pct": round(100.0 * stats.nulls / stats.count, 4) if stats.count else 0.0,
        "distinct": stats.distinct,
    }
    if stats.numeric and stats.quartiles is not None:
        q1, q2, q3 = stats.quartiles
        out.update(
            min=_num(stats.minimum),
            max=_num(stats.maximum),
            mean=_num(stats.mean),
            std=_num(stats.std),
            p25=_num(q1),
            median=_num(q2),
            p75=_num(q3),
        )
        if stats.histogram is not None:
            counts, edges = stats.histogram
            out["histogram"] = {"counts": counts, "edges": [_num(e) for e in edges]}
        out.update(
            outliers=stats.outliers,
            zeros=stats.zeros,
            infinite=stats.infinite,
            skewness=_num(stats.skewness) if stats.skewness is not None else None,
        )
    if stats.min_length is not None:
        out.update(min_length=stats.min_length, max_length=stats.max_length)
    if stats.date_range is not None:
        out.update(min=stats.date_range[0], max=stats.date_range[1])
    out["top_values"] = [{"value": value, "count": count} for value, count in stats.top]
    return out


def correlations(numeric: pd.DataFrame, means: list[float]) -> np.ndarray:
    """Pearson correlations over pairwise-complete rows (as pandas' `corr`), by blocks of
    rows: four small matrix products per block instead of a pass per pair of columns."""
    k = numeric.shape[1]
    sxy, sx, sxx, n = (np.zeros((k, k)) for _ in range(4))
    centre = np.asarray(means, dtype="float64")
    for start in range(0, len(numeric), CORR_BLOCK):
        rows = numeric.iloc[start : start + CORR_BLOCK].to_numpy(dtype="float64", na_value=np.nan)
        # Centred sums keep the subtraction below well-conditioned. (A new array: `rows` may
        # be a read-only view of the frame's own block.)
        block = rows - centre
        mask = np.isfinite(block)  # ±infinity counts as missing, as NaN does
        values = np.where(mask, block, 0.0)
        weights = mask.astype("float64")
        sxy += values.T @ values
        sx += values.T @ weights  # sx[i, j]: sum of column i where i and j are present
        sxx += (values * values).T @ weights
        n += weights.T @ weights
        done = min(len(numeric), start + CORR_BLOCK)
        report_progress(done / len(numeric), f"correlations: {done:,} of {len(numeric):,} rows")
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = n * sxy - sx * sx.T
        var = (n * sxx - sx * sx) * (n * sxx - sx * sx).T
        return cov / np.sqrt(var)


def correlated_columns(frame: pd.DataFrame, stats: dict[str, ColumnStats]) -> list[Any]:
    """The columns the correlation matrix covers (CORRELATION_RULE), in file order."""
    chosen = []
    for name in frame.columns:
        col = stats[str(name)]
        if col.numeric and col.distinct > 1 and not is_identifying(name):
            chosen.append(name)
            if len(chosen) == MAX_CORRELATED:
                break
    return chosen


def run(frame: pd.DataFrame, params: UnifiedProfilerParams) -> dict[str, Any]:
    sampled = frame
    stream = streamed(frame)  # a file too large to load: its statistics are the whole file's
    if stream is None and params.sample_size is not None and params.sample_size < len(frame):
        sampled = frame.sample(n=params.sample_size, random_state=0)
    stats = frame_stats(sampled)
    columns = [profile_column(stats[str(c)]) for c in sampled.columns]
    duplicates = duplicate_rows(sampled)
    result: dict[str, Any] = {
        "rows": table_rows(frame),
        "rows_profiled": table_rows(sampled),
        "columns": columns,
        "duplicate_rows": duplicates,
        "total_nulls": int(sum(c["nulls"] for c in columns)),
    }
    correlated: tuple[list[str], np.ndarray] | None = None
    if stream is not None:
        result["streamed"] = {**stream, "rule": STREAMED_RULE}
    if params.include_correlations:
        chosen = correlated_columns(sampled, stats)
        measuring = sum(
            1 for c in sampled.columns if stats[str(c)].numeric and not is_identifying(c)
        )
        result["correlation_columns"] = {
            "rule": CORRELATION_RULE,
            "limit": MAX_CORRELATED,
            "columns": [str(c) for c in chosen],
            "numeric_columns": measuring,
            "left_out": measuring - len(chosen),
        }
        result["correlations"] = {}
        if chosen:
            means = [stats[str(c)].mean or 0.0 for c in chosen]
            corr = correlations(sampled[chosen], means)
            names = [str(c) for c in chosen]
            correlated = (names, corr)
            result["correlations"] = {
                a: {b: _num(corr[i, j]) for j, b in enumerate(names)} for i, a in enumerate(names)
            }
    found = alerts.all_alerts(
        table_rows(sampled), duplicates, (stats[str(c)] for c in sampled.columns), correlated
    )
    result["alerts"] = found
    result["alerts_by_type"] = {
        kind: n for kind in alerts.ALERT_RULES if (n := sum(1 for a in found if a["type"] == kind))
    }
    result["alert_rules"] = alerts.rules_table()
    return result
