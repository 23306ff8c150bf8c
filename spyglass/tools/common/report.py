"""The report of a tool run (S000 `TaskReportResponse`): summaries first, then every agent's
full result. The parts every tool has are made here, from the uploaded table; each tool adds
its own through its `ReportSections` (its package's `report.py`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import numpy as np
import pandas as pd

from spyglass.tools.common.memo import duplicate_mask, known, row_hashes, streamed, table_rows
from spyglass.tools.common.stats import duplicate_rows, frame_stats, kind_of
from spyglass.tools.common.toolkit import AgentContext, Tool

#: Row-level issues listed at most (the counts in issueSummary cover all rows).
ROW_ISSUES = 100
#: Groups of duplicate rows listed at most (the most repeated first), and rows named per group.
DUPLICATE_GROUPS = 100
ROWS_PER_GROUP = 20
#: Columns of a duplicate row shown as its preview.
PREVIEW_COLUMNS = 6


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


def count_duplicates(frame: pd.DataFrame) -> int:
    """Rows equal to an earlier row (with the profile's shortcut when its statistics exist)."""
    if known(frame, "stats"):
        return duplicate_rows(frame)
    return int(duplicate_mask(frame).sum())


def build_report(tool: Tool, ctx: AgentContext[Any]) -> dict[str, Any]:
    """The report of a finished run of `tool` (its agents' results are in `ctx`)."""
    primary = ctx.primary
    rows, columns = table_rows(primary), int(primary.shape[1])
    # A file too large to load is a sample here: its figures are the file's statistics.
    whole = streamed(primary) is None
    if whole:
        nulls = int(primary.isna().sum().sum())
    else:
        nulls = sum(s.nulls for s in frame_stats(primary).values())
    duplicates = count_duplicates(primary)
    sections = tool.report
    issues = sections.issues(ctx)
    cells = rows * columns
    column_list = sections.columns(ctx) if sections.columns is not None else None
    return {
        "analysis_id": ctx.task_id,
        "tool": tool.id,
        "executiveSummary": {
            "rows": rows,
            "columns": columns,
            "agents": list(ctx.agents),
            "issues": len(issues),
            "missing_cells": nulls,
            "missing_pct": round(100.0 * nulls / cells, 4) if cells else 0.0,
            "duplicate_rows": duplicates,
            "headline": f"{rows} rows × {columns} columns; {nulls} empty cells, "
            f"{duplicates} duplicate rows",
            **sections.summary(ctx),
        },
        "analysisSummary": {
            "columns": column_list if column_list is not None else column_summary(primary)
        },
        # Rows are numbered as in the file: a streamed file's are counted, not listed.
        "rowLevelIssues": _row_issues(primary, duplicates, sections.row_issues(ctx))
        if whole
        else [],
        "duplicateGroups": duplicate_groups(primary) if duplicates and whole else [],
        "issueSummary": {
            "total": len(issues),
            "by_severity": {
                s: sum(1 for i in issues if i["severity"] == s) for s in ("high", "medium", "low")
            },
            "by_type": _count_by(issues, "type"),
            "issues": issues,
        },
        "routingDecisions": sections.routing(ctx, issues),
        "agentResults": ctx.results,
        **sections.extra(ctx),
    }


def column_summary(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Each column's type (`integer`, `number`, `boolean`, `date`, `string`) and gaps."""
    rows = table_rows(frame) or 1
    if streamed(frame) is not None:
        stats = frame_stats(frame)
        nulls = pd.Series([stats[str(c)].nulls for c in frame.columns])
    else:
        nulls = frame.isna().sum()
    return [
        {
            "name": str(c),
            "type": kind_of(frame[c]),
            "nulls": int(nulls.iloc[i]),
            "null_pct": round(100.0 * float(nulls.iloc[i]) / rows, 4),
        }
        for i, c in enumerate(frame.columns)
    ]


def duplicate_groups(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows that repeat, as groups: the first row (numbered from 1 as in the file), how many
    copies follow it, which rows they are (the first ROWS_PER_GROUP), and a preview of the
    row's first columns. The most repeated first; at most DUPLICATE_GROUPS groups."""
    hashes = row_hashes(frame).to_numpy()
    repeated = pd.Series(hashes).duplicated(keep=False).to_numpy()
    positions = np.flatnonzero(repeated)
    if not len(positions):
        return []
    table = pd.DataFrame({"hash": hashes[positions], "position": positions})
    grouped = table.groupby("hash", sort=False)["position"]
    sizes = pd.DataFrame({"first": grouped.min(), "size": grouped.size()})
    sizes = sizes.sort_values(["size", "first"], ascending=[False, True]).head(DUPLICATE_GROUPS)
    members = table[table["hash"].isin(sizes.index)].groupby("hash", sort=False)["position"]
    listed: dict[Any, list[int]] = {h: sorted(p)[: ROWS_PER_GROUP + 1] for h, p in members}
    shown = [str(c) for c in frame.columns[:PREVIEW_COLUMNS]]
    out = []
    for digest, first, size in zip(sizes.index, sizes["first"], sizes["size"], strict=True):
        first = int(first)
        values = frame.iloc[first, :PREVIEW_COLUMNS]
        out.append(
            {
                "row": first + 1,
                "copies": int(size) - 1,
                "rows": [int(p) + 1 for p in listed[digest][1:]],
                "values": {name: values.iloc[j] for j, name in enumerate(shown)},
            }
        )
    return out


def _row_issues(
    primary: pd.DataFrame, duplicates: int, others: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Rows to look at, numbered from 1 as in the file (header not counted)."""
    out: list[dict[str, Any]] = []
    if duplicates:
        dup = duplicate_mask(primary)
        out += [
            {"row": int(i) + 1, "issue": "duplicate_row", "detail": "same as an earlier row"}
            for i in np.flatnonzero(dup.to_numpy())[:ROW_ISSUES]
        ]
    out += others[:ROW_ISSUES]
    return sorted(out, key=lambda r: r["row"])[:ROW_ISSUES]


def _count_by(items: list[dict[str, Any]], key: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item[key]] = counts.get(item[key], 0) + 1
    return counts
