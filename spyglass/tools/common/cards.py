"""What a results page shows, as typed records: figures (summary cards), tables and charts.

Each tool's `cards.py` turns its report (the JSON as stored) into a `ResultCards`; the
results page renders any of them the same way (`spyglass/states/results.py`): tables
paginated, charts with labelled axes and, where a chart has several series (one per
column), a chooser that opens on the first. Every shown value is text written here, in
plain words: human type names, numbers with thousands separators, no Python booleans, no
exception class names. Each figure and table names its `source`, the place in the report
its number comes from, so the page can be checked against the report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spyglass.tools.common.patterns import is_identifying


@dataclass(frozen=True)
class Figure:
    """A summary card: a label, its value, a line of detail."""

    label: str
    value: str
    tone: str = "gray"
    detail: str = ""
    #: Where the number comes from in the report: a dotted path (`executiveSummary.rows`).
    source: str = ""


@dataclass(frozen=True)
class Table:
    id: str
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    #: One per row: what the row is about (a column name, a row number …).
    keys: tuple[str, ...] = ()
    note: str = ""
    #: The report's list this table shows (a dotted path), and how many entries it has
    #: (the rows may be fewer: the report lists the first ones of a long list).
    source: str = ""
    total: int | None = None
    empty: str = "Nothing to show."
    page_size: int = 20


@dataclass(frozen=True)
class Point:
    label: str
    value: float


@dataclass(frozen=True)
class Series:
    name: str
    points: tuple[Point, ...]
    #: The x axis's label when this series is shown (e.g. the column's name and unit).
    x_label: str = ""


@dataclass(frozen=True)
class Chart:
    """A bar chart; with several series (one per column), a chooser opening on `default`."""

    id: str
    title: str
    x_label: str
    y_label: str
    series: tuple[Series, ...]
    caption: str = ""
    color: str = "var(--accent-9)"
    source: str = ""
    default: str = ""
    choice_label: str = ""


Section = Table | Chart


@dataclass(frozen=True)
class ResultCards:
    figures: tuple[Figure, ...]
    sections: tuple[Section, ...]
    #: One sentence that accounts for every row (clean, master), shown under the headline.
    balance: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


# -- words ------------------------------------------------------------------------
HUMAN_TYPES = {
    "integer": "whole number",
    "number": "decimal",
    "numeric": "number",
    "float": "decimal",
    "date": "date",
    "datetime": "date",
    "string": "text",
    "text": "text",
    "boolean": "true/false",
    "categorical": "categories",
    "identifier": "identifier",
    "schema": "type changed",
    "unknown": "–",
}


def human_type(kind: Any) -> str:
    """`integer` → `whole number`, `string` → `text`, a pandas dtype → its family."""
    if kind is None:
        return "–"
    text = str(kind)
    if text in HUMAN_TYPES:
        return HUMAN_TYPES[text]
    lowered = text.lower()
    for prefix, word in (
        ("datetime", "date"),
        ("int", "whole number"),
        ("uint", "whole number"),
        ("float", "decimal"),
        ("bool", "true/false"),
        ("object", "text"),
        ("str", "text"),
    ):
        if lowered.startswith(prefix):
            return word
    return text.replace("_", " ")


def words(identifier: Any) -> str:
    """`high_correlation` → `high correlation`."""
    return str(identifier).replace("_", " ").replace("-", " ")


def number(value: Any) -> str:
    """A number as people read it: `12,345`, `99.27`, `0.0123`, `1.2e-05`; yes/no; – for none."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        size = abs(value)
        if size == 0:
            return "0"
        if size >= 1e15 or size < 1e-4:
            return f"{value:.3g}"
        if value == int(value):
            return f"{int(value):,}"
        digits = 1 if size >= 100 else 2 if size >= 1 else 4
        text = f"{value:,.{digits}f}" if size >= 1 else f"{value:.{digits}g}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def percent(value: Any) -> str:
    """A percentage already in percent (`12.5` → `12.5 %`)."""
    return "–" if value is None else f"{number(float(value))} %"


def share(value: Any) -> str:
    """A share 0–1 as a percentage (`0.125` → `12.5 %`)."""
    return "–" if value is None else percent(100.0 * float(value))


def cell(value: Any) -> str:
    """A value of the data as shown in a table: empty for none, text as it is."""
    if value is None:
        return "(empty)"
    if isinstance(value, float | int | bool):
        return number(value)
    return str(value)


_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit|Warning): ")


def plain_error(message: str | None) -> str:
    """An error message without the exception class a run prefixed it with."""
    return _EXCEPTION.sub("", (message or "").strip())


def pick(report: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of the report (`agentResults.score-risk.columns`)."""
    node: Any = report
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def tone(bad: Any, level: str = "amber") -> str:
    return level if bad else "green"


# -- the parts every tool's page has ---------------------------------------------------
def summary_figures(report: Mapping[str, Any]) -> list[Figure]:
    s = report.get("executiveSummary", {})
    return [
        Figure("Rows", number(s.get("rows")), source="executiveSummary.rows"),
        Figure("Columns", number(s.get("columns")), source="executiveSummary.columns"),
        Figure(
            "Empty cells",
            number(s.get("missing_cells")),
            tone(s.get("missing_cells")),
            f"{percent(s.get('missing_pct'))} of all cells",
            "executiveSummary.missing_cells",
        ),
        Figure(
            "Duplicate rows",
            number(s.get("duplicate_rows")),
            tone(s.get("duplicate_rows")),
            "rows that repeat an earlier row",
            "executiveSummary.duplicate_rows",
        ),
        Figure(
            "Findings",
            number(s.get("issues")),
            tone(s.get("issues"), "red"),
            "listed under Findings",
            "executiveSummary.issues",
        ),
    ]


SEVERITY_WORDS = {"high": "high", "medium": "medium", "low": "low"}


def findings_table(report: Mapping[str, Any]) -> Table:
    issues = report.get("issueSummary", {}).get("issues", [])
    rank = {"high": 0, "medium": 1, "low": 2}
    rows, keys = [], []
    for i in sorted(issues, key=lambda i: rank.get(i.get("severity"), 3)):
        message = i.get("message") or " ".join(
            str(p) for p in (i.get("column"), words(i.get("type"))) if p
        )
        rows.append((SEVERITY_WORDS.get(i.get("severity"), "–"), message, number(i.get("count"))))
        keys.append(str(i.get("type")))
    return Table(
        "finding",
        "Findings",
        ("Severity", "Finding", "Count"),
        tuple(rows),
        tuple(keys),
        note="What needs a look, most serious first; the count is the number of values or "
        "rows concerned.",
        source="issueSummary.issues",
        total=len(issues),
        empty="No issues found.",
    )


def columns_table(report: Mapping[str, Any]) -> Table:
    columns = report.get("analysisSummary", {}).get("columns", [])
    present = {k for c in columns for k, v in c.items() if v is not None}
    spec: list[tuple[str, str, Any]] = [
        ("Type", "type", human_type),
        ("Empty", "nulls", number),
        ("Empty %", "null_pct", percent),
    ]
    if "nulls_after" in present:
        spec.append(("Empty after cleaning", "nulls_after", number))
    for header, key in (("Distinct", "distinct"), ("Min", "min"), ("Max", "max"), ("Mean", "mean")):
        if key in present:
            spec.append((header, key, _value))
    shown = [s for s in spec if s[1] in present]
    rows = tuple((str(c.get("name")), *(fmt(c.get(key)) for _, key, fmt in shown)) for c in columns)
    return Table(
        "column",
        "Columns",
        ("Column", *(h for h, _, _ in shown)),
        rows,
        tuple(str(c.get("name")) for c in columns),
        source="analysisSummary.columns",
        total=len(columns),
    )


def _value(value: Any) -> str:
    """A figure that may be a number or a date (min and max of a date column)."""
    if isinstance(value, str) and "T" in value and value[:4].isdigit():
        return value.split("T")[0] if value.endswith("T00:00:00") else value.replace("T", " ")
    return number(value) if not isinstance(value, str) else value


def duplicates_table(report: Mapping[str, Any]) -> Table:
    groups = report.get("duplicateGroups") or []
    total = report.get("executiveSummary", {}).get("duplicate_rows") or 0
    rows = []
    for g in groups:
        copies = g.get("rows") or []
        more = g.get("copies", 0) - len(copies)
        at = ", ".join(str(r) for r in copies) + (f" and {more:,} more" if more > 0 else "")
        preview = " · ".join(cell(v) for v in (g.get("values") or {}).values())
        rows.append((str(g.get("row")), number(g.get("copies")), at, preview))
    return Table(
        "duplicate",
        "Duplicate rows",
        ("First row", "Copies", "Copies at rows", "Values (first columns)"),
        tuple(rows),
        tuple(str(g.get("row")) for g in groups),
        note=f"{total:,} rows repeat an earlier row exactly, in {len(groups):,} group"
        f"{'s' if len(groups) != 1 else ''}; rows are numbered from 1 as in the file."
        if total
        else "",
        source="duplicateGroups",
        total=len(groups),
        empty="No row repeats another.",
    )


def nulls_chart(report: Mapping[str, Any]) -> Chart:
    columns = report.get("analysisSummary", {}).get("columns", [])
    points = tuple(
        Point(str(c.get("name")), float(c.get("null_pct") or 0))
        for c in columns
        if c.get("null_pct")
    )
    return Chart(
        "nulls",
        "Empty cells by column",
        "column",
        "% of rows empty",
        (Series("empty", points),),
        caption="Only columns with empty cells are shown." if points else "No cell is empty.",
        color="#e5484d",
        source="analysisSummary.columns",
    )


def next_steps(report: Mapping[str, Any]) -> Table:
    decisions = report.get("routingDecisions") or []
    rows = tuple(
        (str(d.get("next_tool") or "a person"), str(d.get("reason") or "")) for d in decisions
    )
    return Table(
        "next",
        "What next",
        ("Next", "Why"),
        rows,
        tuple(r[0] for r in rows),
        source="routingDecisions",
        total=len(rows),
        empty="Nothing further is suggested.",
    )


def bars(items: Iterable[tuple[str, Any]]) -> tuple[Point, ...]:
    return tuple(Point(str(label), float(value or 0)) for label, value in items)


def measuring_first(names: Sequence[str]) -> list[str]:
    """Columns that measure (not ids, codes, phone or card numbers) before those that don't."""
    return [n for n in names if not is_identifying(n)] + [n for n in names if is_identifying(n)]
