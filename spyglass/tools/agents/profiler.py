"""unified-profiler: types, nulls, distinct values, statistics, top values, correlations."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from pandas.api import types as ptypes

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


def profile_column(series: pd.Series) -> dict[str, Any]:
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
        "distinct": int(non_null.nunique()),
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
        counts, edges = _histogram(described)
        out["histogram"] = {"counts": counts, "edges": edges}
    top = non_null.astype(str).value_counts().head(5)
    out["top_values"] = [{"value": str(k), "count": int(v)} for k, v in top.items()]
    return out


def _histogram(values: pd.Series, bins: int = 10) -> tuple[list[int], list[float | None]]:
    lo, hi = float(values.min()), float(values.max())
    if lo == hi:
        return [int(values.shape[0])], [_num(lo), _num(hi)]
    cut = pd.cut(values, bins=bins, include_lowest=True)
    counts = cut.value_counts(sort=False)
    edges = [_num(iv.left) for iv in counts.index] + [_num(counts.index[-1].right)]
    return [int(c) for c in counts.tolist()], edges


def run(frame: pd.DataFrame, params: UnifiedProfilerParams) -> dict[str, Any]:
    sampled = frame
    if params.sample_size is not None and params.sample_size < len(frame):
        sampled = frame.sample(n=params.sample_size, random_state=0)
    columns = [profile_column(sampled[c]) for c in sampled.columns]
    result: dict[str, Any] = {
        "rows": int(frame.shape[0]),
        "rows_profiled": int(sampled.shape[0]),
        "columns": columns,
        "duplicate_rows": int(sampled.duplicated().sum()),
        "total_nulls": int(sum(c["nulls"] for c in columns)),
    }
    numeric = sampled.select_dtypes(include="number")
    if params.include_correlations and numeric.shape[1] >= 2:
        corr = numeric.corr(method="pearson")
        result["correlations"] = {
            str(a): {str(b): _num(corr.loc[a, b]) for b in corr.columns} for a in corr.index
        }
    return result
