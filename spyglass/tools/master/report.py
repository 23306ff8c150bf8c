"""master-my-data's part of the report: keys, golden records and where every row went, the
conflicts and what a steward should look at, each finding in plain words with its number."""

from __future__ import annotations

from typing import Any

from spyglass.tools.common.toolkit import AgentContext, ReportSections

Context = AgentContext[Any]

TYPE_WORDS = {
    "number": "numbers",
    "integer": "whole numbers",
    "date": "dates",
    "email": "e-mail addresses",
    "string": "text",
}


def summary(ctx: Context) -> dict[str, Any]:
    results = ctx.results
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


def issues(ctx: Context) -> list[dict[str, Any]]:
    results = ctx.results
    out: list[dict[str, Any]] = []
    for column, info in results.get("contract-enforcer", {}).get("columns", {}).items():
        n = info.get("violations")
        if n:
            expected = TYPE_WORDS.get(info["expected"], info["expected"])
            out.append(
                {
                    "type": "contract_violation",
                    "column": column,
                    "count": n,
                    "severity": "high",
                    "message": f"{column}: {n:,} values are not {expected} as the others are",
                }
            )
    golden = results.get("golden-record-builder", {})
    if golden.get("rows_without_key"):
        n, key = golden["rows_without_key"], golden.get("match_key")
        out.append(
            {
                "type": "no_match_key",
                "column": key,
                "count": n,
                "severity": "high",
                "message": f"{n:,} rows have no {key} to match on: each is a golden record "
                "of its own",
            }
        )
    conflicts = results.get("survivorship-resolver", {}).get("conflicts_by_column", {})
    for column, n in conflicts.items():
        out.append(
            {
                "type": "conflicting_values",
                "column": column,
                "count": n,
                "severity": "medium",
                "message": f"{column}: {n:,} golden records were built from rows that disagree "
                "(decided by the survivorship rule)",
            }
        )
    return out


def routing(ctx: Context, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if ctx.results.get("stewardship-flagger", {}).get("total"):
        return [{"next_tool": None, "reason": "conflicts need a data steward"}]
    return []


SECTIONS = ReportSections(summary=summary, issues=issues, routing=routing)
