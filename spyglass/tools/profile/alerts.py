"""unified-profiler's alerts: what ydata-profiling warns about, with its default thresholds.

Each alert names its column (none for the table-wide ones), the figure behind it and the
rule it broke, so a reader can check it. The one table below holds every threshold; the
report carries it as `alert_rules`. Thresholds are ydata-profiling's defaults
(`config_default.yaml` and `model/alerts.py`: shares "above 1 %" are its `alert_value`,
skewness 20, cardinality 50, imbalance 0.5, χ² p-value 0.999, correlation 0.9).
Every check reads the shared per-column statistics, so alerts cost one step per column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from spyglass.tools.common.significance import chi2_uniform, imbalance
from spyglass.tools.common.stats import ColumnStats

#: The χ² test behind "uniform" needs some values in each bin (the usual rule of thumb: an
#: expected count of 5); below that, nearly unique text (e-mails) would look evenly spread.
UNIFORM_MIN_EXPECTED = 5


@dataclass(frozen=True)
class Rule:
    figure: str
    #: How the figure compares with the threshold for the alert to be raised.
    op: str
    threshold: float
    applies_to: str

    def holds(self, value: float) -> bool:
        compare: dict[str, Callable[[float, float], bool]] = {
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
            "==": lambda a, b: a == b,
        }
        return compare[self.op](value, self.threshold)

    def text(self) -> str:
        return f"{self.figure} {self.op} {self.threshold:g}"


#: Every alert, its figure and its threshold (ydata-profiling's defaults).
ALERT_RULES: dict[str, Rule] = {
    "constant": Rule("distinct values (missing left out)", "==", 1, "every column"),
    "zeros": Rule("share of values that are 0", ">", 0.01, "numbers"),
    "high_correlation": Rule(
        "largest |Pearson r| with another column", ">", 0.9, "numbers (correlated set)"
    ),
    "high_cardinality": Rule("distinct values", ">", 50, "text"),
    "duplicates": Rule("rows equal to an earlier row", ">", 0, "the table"),
    "skewed": Rule("|skewness| (adjusted Fisher–Pearson)", ">", 20, "numbers"),
    "imbalance": Rule("1 − entropy / log2(distinct values)", ">", 0.5, "text, true/false"),
    "missing": Rule("share of values missing", ">", 0.01, "every column"),
    "infinite": Rule("share of values ±infinity", ">", 0.01, "numbers"),
    "unique": Rule("share of rows with a value of their own", "==", 1, "every column"),
    "uniform": Rule(
        "χ² p-value of the counts against equal counts",
        ">",
        0.999,
        f"numbers (histogram), text; {UNIFORM_MIN_EXPECTED}+ values per bin on average",
    ),
    "empty": Rule("rows", "==", 0, "the table"),
    "constant_length": Rule("longest − shortest value, in characters", "==", 0, "text"),
    "date_typed_text": Rule("share of sampled values written as dates", "==", 1, "text"),
}


def rules_table() -> list[dict[str, Any]]:
    """ALERT_RULES as the report shows them."""
    return [
        {
            "type": name,
            "figure": rule.figure,
            "rule": rule.text(),
            "threshold": rule.threshold,
            "applies_to": rule.applies_to,
        }
        for name, rule in ALERT_RULES.items()
    ]


def _pct(share: float) -> str:
    return f"{100 * share:.1f}%"


def _alert(kind: str, column: str | None, value: float, detail: str) -> dict[str, Any]:
    rule = ALERT_RULES[kind]
    return {
        "type": kind,
        "column": column,
        "value": round(float(value), 6),
        "threshold": rule.threshold,
        "rule": rule.text(),
        "detail": detail,
    }


def column_alerts(col: ColumnStats) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    name, rows = col.name, col.count
    if rows == 0:
        return out
    present = rows - col.nulls
    check = ALERT_RULES

    missing = col.nulls / rows
    if check["missing"].holds(missing):
        out.append(_alert("missing", name, missing, f"{col.nulls:,} of {rows:,} values missing"))
    if present == 0:
        return out
    if check["constant"].holds(col.distinct):
        value = col.top[0][0] if col.top else ""
        out.append(_alert("constant", name, col.distinct, f"every value is {value!r}"))
    unique = col.distinct / rows
    if check["unique"].holds(unique):
        out.append(_alert("unique", name, unique, f"{rows:,} rows, {col.distinct:,} values"))
    if col.numeric:
        zeros = col.zeros / rows
        if check["zeros"].holds(zeros):
            out.append(_alert("zeros", name, zeros, f"{col.zeros:,} zeros ({_pct(zeros)})"))
        infinite = col.infinite / rows
        if check["infinite"].holds(infinite):
            detail = f"{col.infinite:,} values are ±infinity ({_pct(infinite)})"
            out.append(_alert("infinite", name, infinite, detail))
        if col.skewness is not None and check["skewed"].holds(abs(col.skewness)):
            detail = f"skewness {col.skewness:.1f}"
            out.append(_alert("skewed", name, abs(col.skewness), detail))
        counts = col.histogram[0] if col.histogram is not None else []
        bins = len(counts)
        if bins > 1 and col.measured >= UNIFORM_MIN_EXPECTED * bins:
            p = chi2_uniform(np.asarray(counts))
            if check["uniform"].holds(p):
                detail = f"the histogram's {bins} bins hold equal counts"
                out.append(_alert("uniform", name, p, detail))
    if col.kind == "string":
        if check["high_cardinality"].holds(col.distinct):
            detail = f"{col.distinct:,} distinct values"
            out.append(_alert("high_cardinality", name, col.distinct, detail))
        if col.categories is not None and 1 < col.distinct <= present / UNIFORM_MIN_EXPECTED:
            p = chi2_uniform(np.fromiter(col.categories.values(), dtype="float64"))
            if check["uniform"].holds(p):
                detail = f"its {col.distinct:,} values occur equally often"
                out.append(_alert("uniform", name, p, detail))
        if col.min_length is not None and col.max_length is not None and col.distinct > 1:
            spread = col.max_length - col.min_length
            if check["constant_length"].holds(spread):
                detail = f"every value is {col.max_length} characters long"
                out.append(_alert("constant_length", name, spread, detail))
        if col.sample and check["date_typed_text"].holds(col.date_like):
            detail = "the values are dates written as text: read them as dates"
            out.append(_alert("date_typed_text", name, col.date_like, detail))
    if col.kind in ("string", "boolean") and col.categories is not None and col.distinct > 1:
        score = imbalance(np.fromiter(col.categories.values(), dtype="float64"))
        if check["imbalance"].holds(score):
            common, count = col.top[0]
            detail = f"{common!r} is {_pct(count / present)} of the values"
            out.append(_alert("imbalance", name, score, detail))
    return out


def correlation_alerts(names: list[str], corr: np.ndarray) -> list[dict[str, Any]]:
    """One alert per column with |r| above the threshold with some other column."""
    rule = ALERT_RULES["high_correlation"]
    strength = np.abs(np.nan_to_num(corr, nan=0.0))
    np.fill_diagonal(strength, 0.0)
    out = []
    for i, name in enumerate(names):
        partners = np.flatnonzero(strength[i] > rule.threshold)
        if len(partners):
            best = float(strength[i, partners].max())
            alert = _alert(
                "high_correlation",
                name,
                best,
                f"|r| above {rule.threshold:g} with " + ", ".join(names[j] for j in partners),
            )
            alert["with"] = [names[j] for j in partners]
            out.append(alert)
    return out


def table_alerts(rows: int, duplicates: int) -> list[dict[str, Any]]:
    out = []
    if ALERT_RULES["empty"].holds(rows):
        out.append(_alert("empty", None, rows, "the table has no rows"))
    if ALERT_RULES["duplicates"].holds(duplicates):
        share = _pct(duplicates / rows) if rows else "0%"
        detail = f"{duplicates:,} rows repeat an earlier row ({share})"
        out.append(_alert("duplicates", None, duplicates, detail))
    return out


def all_alerts(
    rows: int,
    duplicates: int,
    columns: Iterable[ColumnStats],
    correlated: tuple[list[str], np.ndarray] | None,
) -> list[dict[str, Any]]:
    out = table_alerts(rows, duplicates)
    for col in columns:
        out += column_alerts(col)
    if correlated is not None:
        out += correlation_alerts(*correlated)
    return out
