"""profile-my-data's judging agents: risk, drift, readiness, governance (PII), test coverage.

Each is a pure function of DataFrames and parameters, so each is unit-tested on
small frames with known answers and run off the event loop by the tool run.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from spyglass.tools.agents.memo import duplicate_mask, value_counts
from spyglass.tools.catalogue import DriftDetectorParams, ScoreRiskParams

EMAIL = re.compile(r"^[\w.+-]+@[\w-]+(\.[\w-]+)+$")
PHONE = re.compile(r"^\+?[\d\s().-]{7,20}$")
CARD = re.compile(r"^(?:\d[ -]?){13,19}$")
DATE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}([ T].*)?$|^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$")
PII_KINDS = ("email", "phone", "card_number")
#: A share of matching values above which a column is taken to hold that PII.
PII_SHARE = 0.5
#: Values checked per column by the pattern matchers (shares are estimated on a sample).
PII_SAMPLE = 2_000


#: Name endings of columns that identify rather than measure (keys, codes, numbers).
_ID_LAST = {"id", "uuid", "guid", "key", "code", "number", "no", "nr", "sku", "ean", "isbn", "zip"}
#: Name parts of columns that hold contact or payment details.
_ID_ANY = {
    "id",
    "uuid",
    "guid",
    "phone",
    "mobile",
    "tel",
    "telephone",
    "fax",
    "card",
    "email",
    "mail",
    "iban",
    "ssn",
    "postcode",
}
_TOKENS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def is_identifying(name: object) -> bool:
    """Whether a column identifies (an id, a code, a phone or card number, an e-mail) rather
    than measures: such columns are never averaged into gaps, fenced as outliers or
    compared as distributions, whatever their type."""
    tokens = [t.lower() for t in _TOKENS.findall(str(name))]
    return bool(tokens) and (tokens[-1] in _ID_LAST or any(t in _ID_ANY for t in tokens))


def _round(value: float) -> float:
    return round(float(value), 4) if math.isfinite(value) else 0.0


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n * 2 > 9 else n * 2
        total += n
    return total % 10 == 0


def pii_kind(value: str) -> str | None:
    text = value.strip()
    if EMAIL.match(text):
        return "email"
    digits = re.sub(r"\D", "", text)
    if CARD.match(text) and 13 <= len(digits) <= 19 and luhn_ok(digits):
        return "card_number"
    if DATE.match(text):
        return None
    if PHONE.match(text) and 7 <= len(digits) <= 15 and any(c in text for c in "+-() "):
        return "phone"
    return None


def outlier_mask(series: pd.Series, k: float = 1.5) -> pd.Series:
    """Tukey's fences on a numeric column: True where a value lies beyond k·IQR."""
    values = pd.to_numeric(series, errors="coerce")
    q1, q3 = values.quantile(0.25), values.quantile(0.75)
    iqr = q3 - q1
    return (values < q1 - k * iqr) | (values > q3 + k * iqr)


def type_drift(series: pd.Series) -> float:
    """Share of a text column's values that are numbers while most are not (or the reverse)."""
    if not (ptypes.is_object_dtype(series) or ptypes.is_string_dtype(series)):
        return 0.0
    values = series.dropna()
    if values.empty:
        return 0.0
    if len(values) > PII_SAMPLE:  # a share: estimated on a fixed sample
        values = values.sample(n=PII_SAMPLE, random_state=0)
    numeric = pd.to_numeric(values.astype(str), errors="coerce").notna().mean()
    return _round(min(numeric, 1 - numeric))


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
    for name in frame.columns:
        series = frame[name]
        numeric = (
            ptypes.is_numeric_dtype(series)
            and not ptypes.is_bool_dtype(series)
            and not is_identifying(name)
        )
        parts = {
            "nulls": _round(series.isna().mean()),
            "outliers": _round(outlier_mask(series).mean()) if numeric else 0.0,
            "pii": 1.0 if _pii_share(series)[1] >= PII_SHARE else 0.0,
            "type_drift": type_drift(series),
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


def _pii_share(series: pd.Series) -> tuple[str | None, float]:
    """The PII kind most of a column's values have, and their share (card numbers may have
    been read as integers, so integer columns are checked too)."""
    if ptypes.is_bool_dtype(series) or (
        ptypes.is_numeric_dtype(series) and not ptypes.is_integer_dtype(series)
    ):
        return None, 0.0
    values = series.dropna()
    if values.empty:
        return None, 0.0
    if len(values) > PII_SAMPLE:  # a share, so a fixed random sample estimates it well
        values = values.sample(n=PII_SAMPLE, random_state=0)
    kinds = values.astype(str).map(pii_kind).value_counts()
    if kinds.empty:
        return None, 0.0
    kind = str(kinds.index[0])
    return kind, _round(kinds.iloc[0] / len(values))


def governance(frame: pd.DataFrame) -> dict[str, Any]:
    findings = []
    for name in frame.columns:
        kind, share = _pii_share(frame[name])
        if kind is not None and share > 0:
            matches = round(share * frame[name].notna().sum())
            findings.append(
                {
                    "column": str(name),
                    "pii": kind,
                    "share": share,
                    "values": matches,
                    "flagged": share >= PII_SHARE,
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
#: Values per side for the KS statistic: its estimate is within ~0.005 at this size.
KS_SAMPLE = 100_000


def _sample(values: np.ndarray) -> np.ndarray:
    if len(values) <= KS_SAMPLE:
        return values
    return np.random.default_rng(0).choice(values, KS_SAMPLE, replace=False)


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov–Smirnov statistic: the largest gap between the two ECDFs."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.max(np.abs(cdf_a - cdf_b)))


def drift(
    current: pd.DataFrame, baseline: pd.DataFrame, params: DriftDetectorParams
) -> dict[str, Any]:
    mapping = params.baseline_column_mapping or {}
    results = []
    for name in current.columns:
        base_name = mapping.get(str(name), name)
        if base_name not in baseline.columns:
            results.append({"column": str(name), "status": "missing_in_baseline"})
            continue
        cur, base = current[name].dropna(), baseline[base_name].dropna()
        if cur.empty or base.empty:
            results.append({"column": str(name), "status": "empty"})
            continue
        numeric = ptypes.is_numeric_dtype(cur) and ptypes.is_numeric_dtype(base)
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
        if not numeric and base.nunique() > HIGH_CARDINALITY * len(base):
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
            c, b = cur.to_numpy(dtype=float), base.to_numpy(dtype=float)
            edges = np.unique(np.quantile(b, np.linspace(0, 1, 11)))
            if len(edges) < 2:
                edges = np.array([b.min() - 0.5, b.max() + 0.5])
            edges[0], edges[-1] = -np.inf, np.inf
            psi = _psi(np.histogram(b, edges)[0] / len(b), np.histogram(c, edges)[0] / len(c))
            ks = _ks(_sample(c), _sample(b))
            kind = "numeric"
        else:
            bv = base.value_counts(normalize=True)
            cv = cur.value_counts(normalize=True)
            bv.index, cv.index = bv.index.astype(str), cv.index.astype(str)
            cats = bv.index.union(cv.index)
            bc, cc = bv.reindex(cats, fill_value=0), cv.reindex(cats, fill_value=0)
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
    cells = frame.size or 1
    completeness = 1 - frame.isna().sum().sum() / cells
    uniqueness = 1 - (duplicate_mask(frame).sum() / len(frame) if len(frame) else 0)
    validity = (
        1 - float(np.mean([type_drift(frame[c]) for c in frame.columns])) if frame.shape[1] else 1
    )
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
    columns = []
    for name in frame.columns:
        series = frame[name]
        tests = []
        if series.notna().all():
            tests.append("not_null")
        counts = value_counts(frame, name)
        distinct = len(counts)
        if series.notna().all() and distinct == len(series):
            tests.append("unique")
        if 0 < distinct <= 10 and not ptypes.is_float_dtype(series):
            tests.append("accepted_values")
        if ptypes.is_numeric_dtype(series) and series.notna().any():
            tests.append("range")
        columns.append({"column": str(name), "passing_tests": tests})
    covered = sum(1 for c in columns if c["passing_tests"])
    return {
        "coverage": _round(covered / len(columns)) if columns else 0.0,
        "tests": sum(len(c["passing_tests"]) for c in columns),
        "columns": columns,
    }
