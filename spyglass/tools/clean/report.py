"""clean-my-data's part of the report: where every row went, what each agent did, each
finding in plain words with its number, the rows set aside and why."""

from __future__ import annotations

from typing import Any

import pandas as pd

from spyglass.tools.clean.agents import REASON, accounting
from spyglass.tools.common.report import ROW_ISSUES
from spyglass.tools.common.stats import kind_of
from spyglass.tools.common.toolkit import AgentContext, ReportSections

Context = AgentContext[Any]


def summary(ctx: Context) -> dict[str, Any]:
    """Where every row went (`rows_in = rows_out + rows_quarantined + rows_merged`) and what
    each agent did."""
    results = ctx.results
    nulls = results.get("null-handler", {})
    rows = accounting(ctx.frames)
    return {
        **rows,
        "rows_balance": f"{rows['rows_in']:,} rows in = {rows['rows_out']:,} written"
        f" + {rows['rows_quarantined']:,} set aside + {rows['rows_merged']:,} duplicates merged",
        "nulls_filled": sum(nulls.get("filled", {}).values()),
        "rows_set_aside_for_gaps": nulls.get("rows_quarantined", 0)
        + results.get("quarantine-agent", {}).get("rows_quarantined", 0),
        "rows_set_aside_as_outliers": results.get("outlier-remover", {}).get("rows_quarantined", 0),
        "duplicates_merged": results.get("duplicate-resolver", {}).get("rows_merged", 0),
        "values_standardized": results.get("field-standardization", {}).get("total", 0),
        "rows_written": results.get("cleanse-writeback", {}).get("rows_written"),
    }


def _issue(kind: str, column: str | None, count: int, severity: str, message: str) -> dict:
    found: dict[str, Any] = {"type": kind, "count": count, "severity": severity}
    if column is not None:
        found["column"] = column
    found["message"] = message
    return found


def issues(ctx: Context) -> list[dict[str, Any]]:
    """What clean-my-data found (and fixed or set aside)."""
    results = ctx.results
    out: list[dict[str, Any]] = []
    for column, n in results.get("null-handler", {}).get("filled", {}).items():
        out.append(
            _issue("missing_values_filled", column, n, "low", f"{column}: {n:,} empty cells filled")
        )
    for column, n in results.get("outlier-remover", {}).get("by_column", {}).items():
        if n:
            words = f"{column}: {n:,} rows set aside, their value far outside the usual range"
            out.append(_issue("outliers_set_aside", column, n, "medium", words))
    merged = results.get("duplicate-resolver", {}).get("rows_merged", 0)
    if merged:
        words = f"{merged:,} duplicate rows merged into the row they copy"
        out.append(_issue("duplicates_merged", None, merged, "medium", words))
    for column, info in results.get("type-fixer", {}).get("suggested", {}).items():
        n = info["unconvertible"]
        words = f"{column}: all but {n:,} values read as numbers (left as text; ask to convert)"
        out.append(_issue("mostly_numbers", column, n, "low", words))
    for column, n in results.get("field-standardization", {}).get("values_changed", {}).items():
        words = f"{column}: {n:,} values tidied (spaces, case, spelling)"
        out.append(_issue("values_standardized", column, n, "low", words))
    for column, n in results.get("quarantine-agent", {}).get("missing_by_column", {}).items():
        words = f"{column}: {n:,} rows set aside because it is missing"
        out.append(_issue("rows_quarantined", column, n, "high", words))
    return out


def columns(ctx: Context) -> list[dict[str, Any]]:
    """Each column's type and its empty cells in the file read and in the file written."""
    before = ctx.primary
    after = ctx.frames.get("working", before)
    rows = len(before) or 1
    gaps_before, gaps_after = before.isna().sum(), after.isna().sum()
    out = []
    for i, name in enumerate(before.columns):
        out.append(
            {
                "name": str(name),
                "type": kind_of(after[name] if name in after.columns else before[name]),
                "nulls": int(gaps_before.iloc[i]),
                "null_pct": round(100.0 * float(gaps_before.iloc[i]) / rows, 4),
                "nulls_after": int(gaps_after.get(name, 0)),
            }
        )
    return out


def row_issues(ctx: Context) -> list[dict[str, Any]]:
    held = ctx.frames.get("quarantine")
    if held is None or not len(held):
        return []
    return [
        {"row": int(i) + 1, "issue": "set aside", "detail": str(reason)}  # type: ignore[call-overload]
        for i, reason in held[REASON].head(ROW_ISSUES).items()
    ]


def extra(ctx: Context) -> dict[str, Any]:
    """`quarantineReasons`: every reason rows were set aside for, with how many rows."""
    held = ctx.frames.get("quarantine")
    if held is None or not len(held):
        return {"quarantineReasons": []}
    reasons = held[REASON].astype(str)
    counts = reasons.value_counts()
    first = pd.Series(held.index, index=reasons.to_numpy()).groupby(level=0).min().to_dict()
    return {
        "quarantineReasons": [
            {"reason": str(reason), "rows": int(n), "first_row": int(first[str(reason)]) + 1}
            for reason, n in counts.items()
        ]
    }


def routing(ctx: Context, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"next_tool": "master-my-data", "reason": "clean data is ready for golden records"}]


SECTIONS = ReportSections(
    summary=summary,
    issues=issues,
    columns=columns,
    row_issues=row_issues,
    routing=routing,
    extra=extra,
)
