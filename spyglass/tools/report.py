"""The report of a tool run (S000 `TaskReportResponse`): summaries first, then every agent's
full result. What it says is read off the agents' results and the uploaded table.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import numpy as np
import pandas as pd

from spyglass.tools.agents.clean import REASON, accounting
from spyglass.tools.agents.memo import duplicate_mask

#: Row-level issues listed at most (the counts in issueSummary cover all rows).
ROW_ISSUES = 100


def plain(value: Any) -> Any:
    """JSON-ready copy of what agents hand back: dates as ISO text, numpy scalars as Python
    numbers, NaN, infinities and NA as null (browsers reject NaN in JSON)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, dt.date | dt.datetime | pd.Timestamp):
        return value.isoformat()
    return str(value)


def to_json(report: dict[str, Any]) -> bytes:
    return json.dumps(plain(report), allow_nan=False).encode()


def build_report(
    task_id: str,
    tool_id: str,
    agents: list[str],
    frames: dict[str, pd.DataFrame],
    results: dict[str, Any],
) -> dict[str, Any]:
    primary = frames["primary"]
    rows, columns = int(primary.shape[0]), int(primary.shape[1])
    profile = results.get("unified-profiler", {})
    nulls = int(profile["total_nulls"]) if profile else int(primary.isna().sum().sum())
    duplicates = int(profile["duplicate_rows"]) if profile else int(duplicate_mask(primary).sum())
    issues = _profile_issues(results) + _clean_issues(results) + _master_issues(results)
    cells = rows * columns
    return {
        "analysis_id": task_id,
        "tool": tool_id,
        "executiveSummary": {
            "rows": rows,
            "columns": columns,
            "agents": agents,
            "issues": len(issues),
            "missing_cells": nulls,
            "missing_pct": round(100.0 * nulls / cells, 4) if cells else 0.0,
            "duplicate_rows": duplicates,
            "headline": f"{rows} rows × {columns} columns; {nulls} empty cells, "
            f"{duplicates} duplicate rows",
            "risk_level": results.get("score-risk", {}).get("risk_level"),
            "readiness": results.get("readiness-rater", {}).get("grade"),
            "pii_columns": results.get("governance-checker", {}).get("pii_columns"),
            "drifted_columns": results.get("drift-detector", {}).get("drifted_columns"),
            "alerts": profile.get("alerts_by_type"),
            **(_cleaning_summary(frames, results) if tool_id == "clean-my-data" else {}),
            **(_mastering_summary(results) if tool_id == "master-my-data" else {}),
        },
        "analysisSummary": {"columns": _column_summary(primary, profile)},
        "rowLevelIssues": _row_issues(frames, results, duplicates),
        "issueSummary": {
            "total": len(issues),
            "by_severity": {
                s: sum(1 for i in issues if i["severity"] == s) for s in ("high", "medium", "low")
            },
            "by_type": _count_by(issues, "type"),
            "issues": issues,
        },
        "routingDecisions": _routing(tool_id, results, issues),
        "agentResults": results,
    }


def _column_summary(primary: pd.DataFrame, profile: dict[str, Any]) -> list[dict[str, Any]]:
    if profile:
        keys = ("name", "type", "null_pct", "distinct", "min", "max", "mean")
        return [{k: c.get(k) for k in keys} for c in profile.get("columns", [])]
    rows = len(primary) or 1
    return [
        {
            "name": str(c),
            "type": str(primary[c].dtype),
            "null_pct": round(100.0 * float(primary[c].isna().sum()) / rows, 4),
        }
        for c in primary.columns
    ]


def _profile_issues(results: dict[str, Any]) -> list[dict[str, Any]]:
    issues: list[dict[str, Any]] = []
    profile = results.get("unified-profiler", {})
    for col in profile.get("columns", []):
        if col["nulls"]:
            issues.append(
                {
                    "type": "missing_values",
                    "column": col["name"],
                    "count": col["nulls"],
                    "severity": "high" if col["null_pct"] > 20 else "low",
                }
            )
    if profile.get("duplicate_rows"):
        issues.append(
            {"type": "duplicate_rows", "count": profile["duplicate_rows"], "severity": "medium"}
        )
    for column in results.get("governance-checker", {}).get("pii_columns", []):
        issues.append({"type": "pii", "column": column, "severity": "high"})
    for column in results.get("score-risk", {}).get("high_risk_columns", []):
        issues.append({"type": "high_risk_column", "column": column, "severity": "medium"})
    for column in results.get("drift-detector", {}).get("drifted_columns", []):
        issues.append({"type": "drift", "column": column, "severity": "medium"})
    return issues


def _clean_issues(results: dict[str, Any]) -> list[dict[str, Any]]:
    """What clean-my-data found (and fixed or set aside)."""
    issues: list[dict[str, Any]] = []
    for column, count in results.get("null-handler", {}).get("filled", {}).items():
        issues.append(
            {"type": "missing_values_filled", "column": column, "count": count, "severity": "low"}
        )
    for column, count in results.get("outlier-remover", {}).get("by_column", {}).items():
        if count:
            issues.append(
                {
                    "type": "outliers_set_aside",
                    "column": column,
                    "count": count,
                    "severity": "medium",
                }
            )
    merged = results.get("duplicate-resolver", {}).get("rows_merged", 0)
    if merged:
        issues.append({"type": "duplicates_merged", "count": merged, "severity": "medium"})
    for column, count in results.get("type-fixer", {}).get("suggested", {}).items():
        issues.append(
            {
                "type": "mostly_numbers",
                "column": column,
                "count": count["unconvertible"],
                "severity": "low",
            }
        )
    for column, count in results.get("field-standardization", {}).get("values_changed", {}).items():
        issues.append(
            {"type": "values_standardized", "column": column, "count": count, "severity": "low"}
        )
    for column, count in results.get("quarantine-agent", {}).get("missing_by_column", {}).items():
        issues.append(
            {"type": "rows_quarantined", "column": column, "count": count, "severity": "high"}
        )
    return issues


def _master_issues(results: dict[str, Any]) -> list[dict[str, Any]]:
    issues: list[dict[str, Any]] = []
    for column, info in results.get("contract-enforcer", {}).get("columns", {}).items():
        if info.get("violations"):
            issues.append(
                {
                    "type": "contract_violation",
                    "column": column,
                    "count": info["violations"],
                    "severity": "high",
                }
            )
    golden = results.get("golden-record-builder", {})
    if golden.get("rows_without_key"):
        issues.append(
            {
                "type": "no_match_key",
                "column": golden.get("match_key"),
                "count": golden["rows_without_key"],
                "severity": "high",
            }
        )
    conflicts = results.get("survivorship-resolver", {}).get("conflicts_by_column", {})
    for column, count in conflicts.items():
        issues.append(
            {"type": "conflicting_values", "column": column, "count": count, "severity": "medium"}
        )
    return issues


def _cleaning_summary(frames: dict[str, pd.DataFrame], results: dict[str, Any]) -> dict[str, Any]:
    """Where every row went (`rows_in = rows_out + rows_quarantined + rows_merged`) and what
    each agent did."""
    nulls = results.get("null-handler", {})
    rows = accounting(frames)
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


def _mastering_summary(results: dict[str, Any]) -> dict[str, Any]:
    golden = results.get("golden-record-builder", {})
    return {
        "primary_key": results.get("key-identifier", {}).get("primary_key"),
        "match_key": golden.get("match_key"),
        "rows_in": golden.get("rows_in"),
        "golden_records": golden.get("golden_records"),
        "merged_rows": golden.get("merged_rows"),
        "rows_without_key": golden.get("rows_without_key"),
        "rows_balance": golden.get("rows_balance"),
        "conflicts": results.get("survivorship-resolver", {}).get("total_conflicts"),
        "stewardship_flags": results.get("stewardship-flagger", {}).get("total"),
    }


def _row_issues(
    frames: dict[str, pd.DataFrame], results: dict[str, Any], duplicates: int
) -> list[dict[str, Any]]:
    """Rows to look at, numbered from 1 as in the file (header not counted)."""
    primary = frames["primary"]
    out: list[dict[str, Any]] = []
    if duplicates:
        dup = duplicate_mask(primary)
        out += [
            {"row": int(i) + 1, "issue": "duplicate_row", "detail": "same as an earlier row"}
            for i in primary.index[dup.to_numpy()][:ROW_ISSUES]
        ]
    quarantined = frames.get("quarantine")
    if quarantined is not None and len(quarantined):
        for i, reason in quarantined[REASON].head(ROW_ISSUES).items():
            out.append(
                {
                    "row": int(i) + 1,  # type: ignore[call-overload]
                    "issue": "set aside",
                    "detail": str(reason),
                }
            )
    return sorted(out, key=lambda r: r["row"])[:ROW_ISSUES]


def _count_by(items: list[dict[str, Any]], key: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item[key]] = counts.get(item[key], 0) + 1
    return counts


def _routing(tool_id: str, results: dict[str, Any], issues: list[dict[str, Any]]) -> list[Any]:
    """Where the data should go next, as S000's routing decisions."""
    decisions: list[dict[str, str | None]] = []
    if tool_id == "profile-my-data":
        fixable = {"missing_values", "duplicate_rows", "high_risk_column"}
        if any(i["type"] in fixable for i in issues):
            decisions.append(
                {"next_tool": "clean-my-data", "reason": "missing values or duplicates to fix"}
            )
        if results.get("governance-checker", {}).get("pii_columns"):
            decisions.append(
                {"next_tool": None, "reason": "personal data found: review before sharing"}
            )
    elif tool_id == "clean-my-data":
        decisions.append(
            {"next_tool": "master-my-data", "reason": "clean data is ready for golden records"}
        )
    elif tool_id == "master-my-data" and results.get("stewardship-flagger", {}).get("total"):
        decisions.append({"next_tool": None, "reason": "conflicts need a data steward"})
    return decisions
