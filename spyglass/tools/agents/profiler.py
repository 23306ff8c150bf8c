"""unified-profiler: types, nulls, distinct values, statistics, top values, correlations."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from spyglass.tools.agents.memo import duplicate_mask, value_counts
from spyglass.tools.catalogue import UnifiedProfilerParams


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else round(number, 6)


def column_kind(series: pd.Series) -> str:
    if ptypes.is_bool_dtype(series):
        return "boolean"
    if ptypes.is_numeric_dtype(series):
        return "integer" if ptypes.is_integer_dtype(series) else "number"
    if ptypes.is_datetime64_any_dtype(series):
        return "date"
    return "string"


def profile_column(series: pd.Series, counts: pd.Series | None = None) -> dict[str, Any]:
    count = int(series.shape[0])
    nulls = int(series.isna().sum())
    non_null = series.dropna()
    kind = column_kind(series)
    out: dict[str, Any] = {
        "name": str(series.name),
        "type": kind,
        "count": count,
        "nulls": nulls,
        "null_pct": round(100.0 * nulls / count, 4) if count else 0.0,
        "distinct": int(len(counts) if counts is not None else non_null.nunique()),
    }
    if kind in ("integer", "number") and not non_null.empty:
        described = non_null.astype("float64")
        q = described.quantile([0.25, 0.5, 0.75])
        out.update(
            min=_num(described.min()),
            max=_num(described.max()),
            mean=_num(described.mean()),
            std=_num(described.std()) if len(described) > 1 else None,
            p25=_num(q.loc[0.25]),
            median=_num(q.loc[0.5]),
            p75=_num(q.loc[0.75]),
        )
        bins, edges = _histogram(described)
        out["histogram"] = {"counts": bins, "edges": edges}
    if kind == "date" and not non_null.empty:
        out.update(min=non_null.min().isoformat(), max=non_null.max().isoformat())
    top = (counts if counts is not None else non_null.value_counts()).head(5)
    out["top_values"] = [{"value": str(k), "count": int(v)} for k, v in top.items()]
    return out


def _histogram(values: pd.Series, bins: int = 10) -> tuple[list[int], list[float | None]]:
    array = values.to_numpy(dtype="float64")
    lo, hi = float(array.min()), float(array.max())
    if lo == hi:
        return [int(array.shape[0])], [_num(lo), _num(hi)]
    counts, edges = np.histogram(array, bins=bins, range=(lo, hi))
    return [int(c) for c in counts], [_num(e) for e in edges]


def run(frame: pd.DataFrame, params: UnifiedProfilerParams) -> dict[str, Any]:
    sampled = frame
    if params.sample_size is not None and params.sample_size < len(frame):
        sampled = frame.sample(n=params.sample_size, random_state=0)
    columns = [profile_column(sampled[c], value_counts(sampled, c)) for c in sampled.columns]
    result: dict[str, Any] = {
        "rows": int(frame.shape[0]),
        "rows_profiled": int(sampled.shape[0]),
        "columns": columns,
        "duplicate_rows": int(duplicate_mask(sampled).sum()),
        "total_nulls": int(sum(c["nulls"] for c in columns)),
    }
    numeric = sampled.select_dtypes(include="number")
    if params.include_correlations and numeric.shape[1] >= 2:
        corr = numeric.corr(method="pearson")
        result["correlations"] = {
            str(a): {str(b): _num(corr.loc[a, b]) for b in corr.columns} for a in corr.index
        }
    return result
