"""profile-my-data's judging agents: risk, drift, readiness, governance (PII), test coverage.

Each is a pure function of DataFrames and parameters, so each is unit-tested on
small frames with known answers and run off the event loop by the tool run.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from spyglass.tools.common.memo import table_rows
from spyglass.tools.common.patterns import is_identifying
from spyglass.tools.common.significance import (
    PSI_SMOOTHING,
    chi2_homogeneity,
    ks_pvalue,
    ks_statistic,
    psi,
)
from spyglass.tools.common.stats import (
    ColumnStats,
    duplicate_rows,
    frame_stats,
    quantile,
    seconds,
    thinned,
)
from spyglass.tools.common.toolkit import report_progress
from spyglass.tools.profile.parameters import DriftDetectorParams, ScoreRiskParams

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


# -- drift-detector ----------------------------------------------------------------
#: A column has drifted only when its test is significant AND the change is material.
#: Significance is family-wise: each compared column's p-value must be below
#: DRIFT_ALPHA / (columns compared) (Bonferroni), so on two samples of one distribution
#: no column at all is flagged in about 19 runs out of 20, however many columns there are.
DRIFT_ALPHA = 0.05
#: Material change: a PSI of 0.2 or more (the usual "significant shift" line) or, for
#: numbers and dates, a KS distance of 0.1 or more (a tenth of the rows moved across some
#: value). A large file makes tiny changes significant; these keep them from being flagged.
PSI_MATERIAL = 0.2
KS_MATERIAL = 0.1
#: Numbers and dates: PSI over the baseline's deciles (ties merge bins).
PSI_BINS = 10
#: Text and booleans are compared as categories only when the baseline has at most this
#: many distinct values (ydata-profiling's high-cardinality line) ...
CATEGORICAL_MAX_DISTINCT = 50
#: ... and at least this many rows per distinct value: with fewer, the PSI of two samples
#: of the same distribution is large by chance alone (about (k − 1)·(1/n + 1/m)).
CATEGORICAL_MIN_ROWS_PER_VALUE = 10
#: Values of the current file absent from the baseline are counted together in one bin.
NEW_VALUES = "(not in the baseline)"

DRIFT_RULES: dict[str, Any] = {
    "drifted_when": "the test is significant and the change is material",
    "significance": f"p < {DRIFT_ALPHA} / columns compared (Bonferroni)",
    "family_alpha": DRIFT_ALPHA,
    "numbers_and_dates": "two-sample Kolmogorov–Smirnov test; PSI over the baseline's "
    f"{PSI_BINS} quantile bins; material when PSI ≥ {PSI_MATERIAL} or KS ≥ {KS_MATERIAL}",
    "categories": "χ² test of homogeneity; PSI over the baseline's values (new values in one "
    f"bin); material when PSI ≥ {PSI_MATERIAL}; only for text and booleans with at most "
    f"{CATEGORICAL_MAX_DISTINCT} distinct values and at least "
    f"{CATEGORICAL_MIN_ROWS_PER_VALUE} baseline rows per value",
    "psi_material": PSI_MATERIAL,
    "ks_material": KS_MATERIAL,
    "psi_bins": PSI_BINS,
    "psi_smoothing": PSI_SMOOTHING,
    "categorical_max_distinct": CATEGORICAL_MAX_DISTINCT,
    "categorical_min_rows_per_value": CATEGORICAL_MIN_ROWS_PER_VALUE,
    "skipped": "identifiers (ids, codes, e-mails, phone and card numbers, by name) and free "
    "text (more distinct values than categories may have)",
}


def _family(col: ColumnStats) -> str:
    return {"integer": "number", "number": "number"}.get(col.kind, col.kind)


_WORDS = {"number": "numbers", "date": "dates", "boolean": "true/false", "string": "text"}


def _shares(ordered: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of sorted values in each bin [e_i, e_i+1) of `edges` (outer edges infinite)."""
    cuts = np.searchsorted(ordered, edges[1:-1], side="left")
    return np.diff(np.concatenate(([0], cuts, [len(ordered)]))) / len(ordered)


def _ordered_drift(base: np.ndarray, cur: np.ndarray, n_base: int, n_cur: int) -> dict[str, float]:
    """KS (statistic, p-value) and the PSI over the baseline's quantile bins, from each
    side's sorted (thinned) values; n_base and n_cur are the true numbers of values."""
    inner = np.unique([quantile(base, q) for q in np.linspace(0, 1, PSI_BINS + 1)[1:-1]])
    edges = np.concatenate(([-np.inf], inner, [np.inf]))
    psi_value = psi(_shares(base, edges) * n_base, _shares(cur, edges) * n_cur)
    d = ks_statistic(cur, base)
    return {"psi": psi_value, "ks": d, "p_value": ks_pvalue(d, n_base, n_cur)}


def _text_dates(series: pd.Series) -> np.ndarray | None:
    """Text written as dates, as sorted seconds; None when some values do not read as dates."""
    present = series.dropna()
    parsed = pd.to_datetime(present.astype(str), errors="coerce")
    if len(parsed) == 0 or parsed.isna().any():
        return None
    return np.sort(seconds(parsed))


def _categories(frame: pd.DataFrame, name: Any, col: ColumnStats) -> pd.Series:
    if col.categories is not None:
        return pd.Series(col.categories, dtype="float64")
    counts = frame[name].dropna().astype(str).value_counts()  # many categories: count them all
    return counts.astype("float64")


def _categorical_drift(bv: pd.Series, cv: pd.Series) -> dict[str, float]:
    """χ² test of homogeneity and PSI over the baseline's values plus one bin of new values."""
    known = bv.index
    current = cv.reindex(known, fill_value=0.0).to_numpy()
    new = float(cv.sum() - current.sum())
    base_counts = np.append(bv.to_numpy(), 0.0)
    cur_counts = np.append(current, new)
    if new == 0:
        base_counts, cur_counts = base_counts[:-1], cur_counts[:-1]
    statistic, p = chi2_homogeneity(base_counts, cur_counts)
    return {"psi": psi(base_counts, cur_counts), "chi2": statistic, "p_value": p}


def _skip(column: str, kind: str, status: str, reason: str) -> dict[str, Any]:
    return {"column": column, "type": kind, "status": status, "skipped": reason, "reason": reason}


def drift(
    current: pd.DataFrame, baseline: pd.DataFrame, params: DriftDetectorParams
) -> dict[str, Any]:
    """Each column of `current` against the same column of `baseline`, by its type: numbers
    and dates by KS and binned PSI, low-cardinality text and booleans by χ² and PSI;
    identifiers and free text are skipped with the reason. See DRIFT_RULES."""
    mapping = params.baseline_column_mapping or {}
    cur_stats, base_stats = frame_stats(current), frame_stats(baseline)
    results: list[dict[str, Any]] = []
    planned: list[tuple[int, str, Any]] = []  # (index in results, kind, work)
    for name in current.columns:
        column = str(name)
        report_progress(None, f"column {column}")
        base_name = mapping.get(column, name)
        if base_name not in baseline.columns:
            results.append(_skip(column, "unknown", "missing_in_baseline", "not in the baseline"))
            continue
        cur, base = cur_stats[column], base_stats[str(base_name)]
        if is_identifying(name):
            results.append(
                _skip(
                    column,
                    "identifier",
                    "not_comparable",
                    "identifier: identifies rows, has no distribution to compare",
                )
            )
            continue
        if base.count == base.nulls or cur.count == cur.nulls:
            where = "the baseline" if base.count == base.nulls else "this file"
            results.append(_skip(column, cur.kind, "empty", f"empty: no values in {where}"))
            continue
        if _family(cur) != _family(base):
            results.append(
                {
                    "column": column,
                    "type": "schema",
                    "status": "drifted",
                    "psi": None,
                    "ks": None,
                    "detail": f"the type changed: {_WORDS[_family(base)]} in the baseline, "
                    f"{_WORDS[_family(cur)]} now",
                }
            )
            continue
        if cur.numeric or cur.kind == "date":
            if base.measured == 0 or cur.measured == 0:
                results.append(_skip(column, cur.kind, "empty", "empty: no finite values"))
                continue
            kind = "numeric" if cur.numeric else "date"
            work = (base.ks_points, cur.ks_points, base.measured, cur.measured)
            planned.append((len(results), kind, work))
            results.append({"column": column, "type": kind})
            continue
        if cur.kind == "string" and cur.date_like == 1.0 and base.date_like == 1.0:
            b_dates = _text_dates(baseline[base_name])
            c_dates = _text_dates(current[name])
            if b_dates is not None and c_dates is not None:
                work = (thinned(b_dates), thinned(c_dates), len(b_dates), len(c_dates))
                planned.append((len(results), "date", work))
                results.append({"column": column, "type": "date"})
                continue
        values = base.count - base.nulls
        if base.distinct > CATEGORICAL_MAX_DISTINCT:
            results.append(
                _skip(
                    column,
                    "text",
                    "not_comparable",
                    f"free text: {base.distinct:,} distinct values",
                )
            )
            continue
        if values < CATEGORICAL_MIN_ROWS_PER_VALUE * base.distinct:
            results.append(
                _skip(
                    column,
                    "categorical",
                    "not_comparable",
                    f"too few rows: {base.distinct:,} distinct values in {values:,} baseline "
                    f"rows (needs {CATEGORICAL_MIN_ROWS_PER_VALUE} rows per value)",
                )
            )
            continue
        counts = (_categories(baseline, base_name, base), _categories(current, name, cur))
        planned.append((len(results), "categorical", counts))
        results.append({"column": column, "type": "categorical"})

    alpha = DRIFT_ALPHA / max(1, len(planned))
    for done, (index, kind, work) in enumerate(planned, 1):
        report_progress(done / len(planned), f"comparing column {done:,} of {len(planned):,}")
        if kind == "categorical":
            figures = _categorical_drift(*work)
            material = figures["psi"] >= PSI_MATERIAL
            test = "chi2"
        else:
            figures = _ordered_drift(*work)
            material = figures["psi"] >= PSI_MATERIAL or figures["ks"] >= KS_MATERIAL
            test = "ks"
        significant = figures["p_value"] < alpha
        entry = results[index]
        entry.update(
            test=test,
            psi=_round(figures["psi"]),
            ks=_round(figures["ks"]) if "ks" in figures else None,
            p_value=float(f"{figures['p_value']:.3g}"),
            significant=bool(significant),
            material=bool(material),
            status="drifted" if significant and material else "stable",
        )
        if "chi2" in figures:
            entry["chi2"] = _round(figures["chi2"])
    drifted_cols = [r["column"] for r in results if r.get("status") == "drifted"]
    return {
        "drifted_columns": drifted_cols,
        "columns": results,
        "baseline_rows": table_rows(baseline),
        "current_rows": table_rows(current),
        "columns_compared": len(planned),
        "columns_skipped": len(results)
        - len(planned)
        - sum(1 for r in results if r.get("type") == "schema"),
        "alpha_per_column": float(f"{alpha:.3g}"),
        "rules": DRIFT_RULES,
    }


def readiness(frame: pd.DataFrame) -> dict[str, Any]:
    stats = frame_stats(frame)
    rows = table_rows(frame)
    cells = rows * frame.shape[1] or 1
    completeness = 1 - sum(c.nulls for c in stats.values()) / cells
    uniqueness = 1 - (duplicate_rows(frame) / rows if rows else 0)
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
