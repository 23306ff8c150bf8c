"""profile-my-data's judging agents: risk, drift, readiness, governance (PII), test coverage.

Each is a pure function of DataFrames and parameters, so each is unit-tested on
small frames with known answers and run off the event loop by the tool run.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from spyglass.tools.agents.patterns import is_identifying
from spyglass.tools.agents.stats import ColumnStats, duplicate_rows, frame_stats, quantile
from spyglass.tools.catalogue import DriftDetectorParams, ScoreRiskParams

#: A share of matching values above which a column is taken to hold that PII.
PII_SHARE = 0.5


def _round(value: float) -> float:
    return round(float(value), 4) if math.isfinite(value) else 0.0


def outlier_mask(series: pd.Series, k: float = 1.5) -> pd.Series:
    """Tukey's fences on a numeric column: True where a value lies beyond k·IQR."""
    values = pd.to_numeric(series, errors="coerce")
    q1, q3 = values.quantile(0.25), values.quantile(0.75)
    iqr = q3 - q1
    return (values < q1 - k * iqr) | (values > q3 + k * iqr)


def score_risk(frame: pd.DataFrame, params: ScoreRiskParams) -> dict[str, Any]:
    """Per-column risk 0–1 from nulls, outliers, PII and type drift; any strong factor counts.

    score = 1 − Π(1 − min(1, weight · factor)): a column that is 75 % empty is risky
    whatever its other factors, which an average would hide.
    """
    weights = {
        "nulls": 1.0,
        "outliers": 1.0,
        "pii": 1.0,
        "type_drift": 1.0,
        **(params.weights or {}),
    }
    columns = []
    stats = frame_stats(frame)
    for name in frame.columns:
        col = stats[str(name)]
        measure = col.numeric and not is_identifying(name)
        rows = col.count or 1
        parts = {
            "nulls": _round(col.nulls / rows),
            "outliers": _round(col.outliers / rows) if measure else 0.0,
            "pii": 1.0 if col.pii_share >= PII_SHARE else 0.0,
            "type_drift": _round(col.type_drift),
        }
        safe = 1.0
        for factor, value in parts.items():
            safe *= 1.0 - min(1.0, max(0.0, weights.get(factor, 1.0) * value))
        score = _round(1.0 - safe)
        columns.append(
            {
                "column": str(name),
                "score": score,
                "factors": parts,
                "high_risk": bool(score >= params.risk_threshold),
            }
        )
    dataset = _round(float(np.mean([c["score"] for c in columns]))) if columns else 0.0
    level = (
        "high"
        if dataset >= params.risk_threshold
        else ("medium" if dataset >= params.risk_threshold / 2 else "low")
    )
    return {
        "dataset_score": dataset,
        "risk_level": level,
        "threshold": params.risk_threshold,
        "high_risk_columns": [c["column"] for c in columns if c["high_risk"]],
        "columns": columns,
    }


def governance(frame: pd.DataFrame) -> dict[str, Any]:
    findings = []
    stats = frame_stats(frame)
    for name in frame.columns:
        col = stats[str(name)]
        if col.pii is not None and col.pii_share > 0:
            findings.append(
                {
                    "column": str(name),
                    "pii": col.pii,
                    "share": _round(col.pii_share),
                    "values": round(col.pii_share * (col.count - col.nulls)),
                    "flagged": col.pii_share >= PII_SHARE,
                }
            )
    flagged = [f for f in findings if f["flagged"]]
    return {
        "pii_columns": [f["column"] for f in flagged],
        "findings": findings,
        "compliant": not flagged,
        "recommendations": [
            f"Mask or remove {f['pii']} data in column '{f['column']}'" for f in flagged
        ],
    }


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    eps = 1e-6
    e = np.clip(expected, eps, None)
    a = np.clip(actual, eps, None)
    return float(np.sum((a - e) * np.log(a / e)))


#: Text columns whose baseline values are mostly unique (ids, e-mails) have no distribution.
HIGH_CARDINALITY = 0.5


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov–Smirnov statistic: the largest gap between the two ECDFs."""
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.max(np.abs(cdf_a - cdf_b)))


def _shares(ordered: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of sorted values in each bin [e_i, e_i+1) of `edges` (outer edges infinite)."""
    cuts = np.searchsorted(ordered, edges[1:-1], side="left")
    return np.diff(np.concatenate(([0], cuts, [len(ordered)]))) / len(ordered)


def _numeric_drift(cur: ColumnStats, base: ColumnStats) -> tuple[float, float]:
    """PSI over the baseline's deciles, and KS, from each column's sorted order statistics."""
    b, c = base.ks_points, cur.ks_points
    assert b is not None and c is not None
    edges = np.unique([quantile(b, q) for q in np.linspace(0, 1, 11)])
    if len(edges) < 2:
        edges = np.array([b[0] - 0.5, b[-1] + 0.5])
    edges[0], edges[-1] = -np.inf, np.inf
    return _psi(_shares(b, edges), _shares(c, edges)), _ks(c, b)


def _categories(frame: pd.DataFrame, name: Any, col: ColumnStats) -> pd.Series:
    if col.categories is not None:
        return pd.Series(col.categories, dtype="float64")
    counts = frame[name].dropna().astype(str).value_counts()  # many categories: count them all
    return counts.astype("float64")


def drift(
    current: pd.DataFrame, baseline: pd.DataFrame, params: DriftDetectorParams
) -> dict[str, Any]:
    mapping = params.baseline_column_mapping or {}
    cur_stats, base_stats = frame_stats(current), frame_stats(baseline)
    results: list[dict[str, Any]] = []
    for name in current.columns:
        base_name = mapping.get(str(name), name)
        if base_name not in baseline.columns:
            results.append({"column": str(name), "status": "missing_in_baseline"})
            continue
        cur, base = cur_stats[str(name)], base_stats[str(base_name)]
        if cur.count == cur.nulls or base.count == base.nulls:
            results.append({"column": str(name), "status": "empty"})
            continue
        if is_identifying(name):
            results.append(
                {
                    "column": str(name),
                    "type": "identifier",
                    "status": "not_comparable",
                    "reason": "identifies rows; has no distribution to compare",
                }
            )
            continue
        numeric = cur.numeric and base.numeric
        if not numeric and base.distinct > HIGH_CARDINALITY * (base.count - base.nulls):
            results.append(
                {
                    "column": str(name),
                    "type": "categorical",
                    "status": "not_comparable",
                    "reason": "mostly unique values",
                }
            )
            continue
        if numeric:
            psi, ks = _numeric_drift(cur, base)
            kind = "numeric"
        else:
            bv = _categories(baseline, base_name, base)
            cv = _categories(current, name, cur)
            cats = bv.index.union(cv.index)
            bc = bv.reindex(cats, fill_value=0) / bv.sum()
            cc = cv.reindex(cats, fill_value=0) / cv.sum()
            psi, ks, kind = _psi(bc.to_numpy(), cc.to_numpy()), None, "categorical"
        drifted = psi > 0.2 or (ks is not None and ks > 0.2)
        results.append(
            {
                "column": str(name),
                "type": kind,
                "psi": _round(psi),
                "ks": _round(ks) if ks is not None else None,
                "status": "drifted" if drifted else "stable",
            }
        )
    drifted_cols = [r["column"] for r in results if r.get("status") == "drifted"]
    return {
        "drifted_columns": drifted_cols,
        "columns": results,
        "baseline_rows": int(baseline.shape[0]),
        "current_rows": int(current.shape[0]),
    }


def readiness(frame: pd.DataFrame) -> dict[str, Any]:
    stats = frame_stats(frame)
    cells = frame.size or 1
    completeness = 1 - sum(c.nulls for c in stats.values()) / cells
    uniqueness = 1 - (duplicate_rows(frame) / len(frame) if len(frame) else 0)
    validity = 1 - float(np.mean([c.type_drift for c in stats.values()])) if stats else 1
    score = 100 * (0.5 * completeness + 0.25 * uniqueness + 0.25 * validity)
    grade = next(
        g for limit, g in ((90, "A"), (80, "B"), (70, "C"), (60, "D"), (-1, "F")) if score >= limit
    )
    return {
        "score": _round(score),
        "grade": grade,
        "ready": bool(score >= 80),
        "dimensions": {
            "completeness": _round(completeness),
            "uniqueness": _round(uniqueness),
            "validity": _round(validity),
        },
    }


def coverage_of_tests(frame: pd.DataFrame) -> dict[str, Any]:
    """Data tests each column passes today (candidates for a test suite) and the coverage."""
    stats = frame_stats(frame)
    columns = []
    for name in frame.columns:
        col = stats[str(name)]
        tests = []
        if col.nulls == 0:
            tests.append("not_null")
        if col.nulls == 0 and col.distinct == col.count:
            tests.append("unique")
        if 0 < col.distinct <= 10 and col.kind != "number":
            tests.append("accepted_values")
        if col.numeric and col.nulls < col.count:
            tests.append("range")
        columns.append({"column": str(name), "passing_tests": tests})
    covered = sum(1 for c in columns if c["passing_tests"])
    return {
        "coverage": _round(covered / len(columns)) if columns else 0.0,
        "tests": sum(len(c["passing_tests"]) for c in columns),
        "columns": columns,
    }
