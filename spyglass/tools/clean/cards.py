"""clean-my-data's results page: where every row went, what changed per column (filled,
fixed, set aside), why rows were set aside, and the findings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spyglass.tools.common.cards import (
    Chart,
    Figure,
    ResultCards,
    Section,
    Series,
    Table,
    bars,
    cell,
    columns_table,
    duplicates_table,
    findings_table,
    next_steps,
    number,
    tone,
)


def _figures(report: Mapping[str, Any]) -> list[Figure]:
    s = report.get("executiveSummary", {})
    set_aside = (
        f"{number(s.get('rows_set_aside_as_outliers'))} far outside the usual range, "
        f"{number(s.get('rows_set_aside_for_gaps'))} missing an identifying value"
    )
    return [
        Figure("Rows in", number(s.get("rows_in")), source="executiveSummary.rows_in"),
        Figure(
            "Rows written",
            number(s.get("rows_written")),
            "green",
            "in cleaned.csv",
            "executiveSummary.rows_written",
        ),
        Figure(
            "Rows set aside",
            number(s.get("rows_quarantined")),
            tone(s.get("rows_quarantined")),
            set_aside + " (quarantine.csv)",
            "executiveSummary.rows_quarantined",
        ),
        Figure(
            "Duplicates merged",
            number(s.get("duplicates_merged")),
            "blue",
            "exact copies of a row written",
            "executiveSummary.duplicates_merged",
        ),
        Figure(
            "Empty cells filled",
            number(s.get("nulls_filled")),
            "blue",
            "only when asked for",
            "executiveSummary.nulls_filled",
        ),
        Figure(
            "Values tidied",
            number(s.get("values_standardized")),
            "blue",
            "spaces, case and spelling",
            "executiveSummary.values_standardized",
        ),
        Figure(
            "Empty cells",
            number(s.get("missing_cells")),
            tone(s.get("missing_cells")),
            "in the file read",
            "executiveSummary.missing_cells",
        ),
    ]


def _example(sample: Mapping[str, Any]) -> str:
    row, kind = sample.get("row"), sample.get("change")
    if kind == "set aside":
        return f"row {row}: {cell(sample.get('before'))} set aside ({sample.get('after')})"
    return f"row {row}: {cell(sample.get('before'))} → {cell(sample.get('after'))}"


def _changes(preview: Mapping[str, Any]) -> Table:
    changes = preview.get("changes", [])
    return Table(
        "change",
        "What changed",
        ("Column", "Filled", "Fixed or tidied", "Emptied", "Set aside", "Example"),
        tuple(
            (
                str(c.get("column")),
                number(c.get("filled")),
                number(c.get("changed")),
                number(c.get("emptied")),
                number(c.get("quarantined")),
                _example(c["samples"][0]) if c.get("samples") else "",
            )
            for c in changes
        ),
        tuple(str(c.get("column")) for c in changes),
        note="Per column, of the rows written: cells filled, values fixed or tidied, values "
        "a type fix could not read (emptied); and the rows set aside for that column.",
        source="agentResults.cleanse-previewer.changes",
        total=len(changes),
        empty="No value was changed.",
    )


def _reasons(report: Mapping[str, Any]) -> Table:
    reasons = report.get("quarantineReasons") or []
    return Table(
        "reason",
        "Why rows were set aside",
        ("Reason", "Rows", "First row"),
        tuple((str(r["reason"]), number(r["rows"]), str(r["first_row"])) for r in reasons),
        tuple(str(r["reason"]) for r in reasons),
        note="Each row set aside is in quarantine.csv with its reason; rows are numbered from "
        "1 as in the file.",
        source="quarantineReasons",
        total=len(reasons),
        empty="No row was set aside.",
    )


def _where_rows_went(summary: Mapping[str, Any]) -> Chart:
    return Chart(
        "rows",
        "Where the rows went",
        "outcome",
        "rows",
        (
            Series(
                "rows",
                bars(
                    (
                        ("written", summary.get("rows_out")),
                        ("set aside", summary.get("rows_quarantined")),
                        ("merged as duplicates", summary.get("rows_merged")),
                    )
                ),
            ),
        ),
        caption=str(summary.get("rows_balance") or ""),
        color="#30a46c",
        source="executiveSummary",
    )


def cards(report: Mapping[str, Any]) -> ResultCards:
    summary = report.get("executiveSummary", {})
    preview = report.get("agentResults", {}).get("cleanse-previewer")
    sections: list[Section] = [_changes(preview)] if preview is not None else []
    sections += [
        _reasons(report),
        _where_rows_went(summary),
        findings_table(report),
        columns_table(report),
        duplicates_table(report),
        next_steps(report),
    ]
    return ResultCards(
        tuple(_figures(report)),
        tuple(sections),
        balance=str(summary.get("rows_balance") or ""),
    )
