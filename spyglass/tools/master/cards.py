"""master-my-data's results page: golden records and where every row went, the conflicts
(each record and column whose rows disagreed, the values, the rule and the value kept),
what a steward should review, keys, contracts and the meaning of each column."""

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
    columns_table,
    findings_table,
    next_steps,
    number,
    share,
    tone,
)
from spyglass.tools.master.report import TYPE_WORDS

RULE_WORDS = {
    "most_recent": "the newest value",
    "most_frequent": "the most frequent value",
    "longest": "the longest value",
}
MEANING_WORDS = {
    "email": "e-mail address",
    "phone": "phone number",
    "card": "card number",
    "date": "date",
    "identifier": "identifier",
    "name": "name",
    "country": "country",
    "city": "city",
    "amount": "amount",
    "number": "number",
    "text": "text",
}


def _figures(report: Mapping[str, Any]) -> list[Figure]:
    s = report.get("executiveSummary", {})
    return [
        Figure("Rows in", number(s.get("rows_in")), source="executiveSummary.rows_in"),
        Figure(
            "Golden records",
            number(s.get("golden_records")),
            "green",
            "one per entity, in golden_records.csv",
            "executiveSummary.golden_records",
        ),
        Figure(
            "Rows merged",
            number(s.get("merged_rows")),
            "blue",
            "into the golden record of their entity",
            "executiveSummary.merged_rows",
        ),
        Figure(
            "Match key",
            str(s.get("match_key") or "–"),
            "blue",
            "rows with the same value are one entity",
            "executiveSummary.match_key",
        ),
        Figure(
            "Rows without the match key",
            number(s.get("rows_without_key")),
            tone(s.get("rows_without_key")),
            "each kept as a golden record of its own",
            "executiveSummary.rows_without_key",
        ),
        Figure(
            "Conflicts",
            number(s.get("conflicts")),
            tone(s.get("conflicts")),
            "records whose rows disagreed on a column",
            "executiveSummary.conflicts",
        ),
        Figure(
            "For a steward",
            number(s.get("stewardship_flags")),
            tone(s.get("stewardship_flags"), "red"),
            "decisions a person should review",
            "executiveSummary.stewardship_flags",
        ),
    ]


def _conflicts(result: Mapping[str, Any]) -> list[Section]:
    conflicts = result.get("conflicts", [])
    total = int(result.get("total_conflicts") or 0)
    by_column = result.get("conflicts_by_column", {})
    listed = "" if len(conflicts) >= total else f" The first {len(conflicts):,} are listed."
    return [
        Table(
            "conflict",
            "Conflicts",
            ("Record (match key)", "Column", "Values found", "Rule", "Value kept"),
            tuple(
                (
                    str(c.get("key")),
                    str(c.get("column")),
                    " | ".join(str(v) for v in c.get("values", [])),
                    RULE_WORDS.get(c.get("rule"), str(c.get("rule"))),
                    str(c.get("chosen")),
                )
                for c in conflicts
            ),
            tuple(f"{c.get('key')}:{c.get('column')}" for c in conflicts),
            note=f"{total:,} conflicts in {len(by_column):,} column"
            f"{'s' if len(by_column) != 1 else ''}: the rows of one entity disagreed, and the "
            f"survivorship rule chose the value kept.{listed}",
            source="agentResults.survivorship-resolver.conflicts",
            total=total,
            empty="The rows of every entity agreed: no conflict.",
        ),
        Chart(
            "conflicts",
            "Conflicts by column",
            "column",
            "records with conflicting values",
            (Series("conflicts", bars(by_column.items())),),
            color="#f76b15",
            source="agentResults.survivorship-resolver.conflicts_by_column",
        ),
    ]


def _flags(result: Mapping[str, Any]) -> Table:
    flags = result.get("flags", [])
    return Table(
        "flag",
        "For a steward",
        ("Record (match key)", "Column", "Values", "Why"),
        tuple(
            (
                str(f.get("key") or "–"),
                str(f.get("column") or "–"),
                " | ".join(str(v) for v in f.get("values", [])) or "–",
                str(f.get("reason") or ""),
            )
            for f in flags
        ),
        tuple(f"{f.get('key')}:{f.get('column')}" for f in flags),
        source="agentResults.stewardship-flagger.flags",
        total=int(result.get("total") or len(flags)),
        empty="Nothing needs a person's review.",
    )


def _contracts(result: Mapping[str, Any]) -> Table:
    columns = result.get("columns", {})
    return Table(
        "contract",
        "Contracts",
        ("Column", "Expected", "Values that are not", "Empty"),
        tuple(
            (
                name,
                TYPE_WORDS.get(info.get("expected"), str(info.get("expected"))),
                number(info.get("violations")),
                number(info.get("nulls")),
            )
            for name, info in columns.items()
        ),
        tuple(columns),
        note="Each column is expected to hold what most of its values are (or what the "
        "parameters' target schema declares).",
        source="agentResults.contract-enforcer.columns",
        total=len(columns),
    )


def _keys(result: Mapping[str, Any]) -> Table:
    candidates = [*result.get("candidates", []), *result.get("composite", [])]
    return Table(
        "key",
        "Keys",
        ("Columns", "Rows with a value of their own", "Empty", "A key"),
        tuple(
            (
                " + ".join(k.get("columns", [])),
                share(k.get("uniqueness")),
                number(k.get("nulls")),
                "yes" if k.get("is_key") else "no",
            )
            for k in candidates
        ),
        tuple(" + ".join(k.get("columns", [])) for k in candidates),
        source="agentResults.key-identifier.candidates",
        total=len(candidates),
    )


def _meanings(result: Mapping[str, Any]) -> Table:
    mapping = result.get("mapping", {})
    return Table(
        "meaning",
        "What each column holds",
        ("Column", "Holds", "Confidence"),
        tuple(
            (
                name,
                MEANING_WORDS.get(info.get("semantic_type"), str(info.get("semantic_type"))),
                share(info.get("confidence")),
            )
            for name, info in mapping.items()
        ),
        tuple(mapping),
        source="agentResults.semantic-mapper.mapping",
        total=len(mapping),
    )


def cards(report: Mapping[str, Any]) -> ResultCards:
    results = report.get("agentResults", {})
    summary = report.get("executiveSummary", {})
    sections: list[Section] = []
    if "survivorship-resolver" in results:
        sections += _conflicts(results["survivorship-resolver"])
    if "stewardship-flagger" in results:
        sections.append(_flags(results["stewardship-flagger"]))
    sections.append(findings_table(report))
    if "key-identifier" in results:
        sections.append(_keys(results["key-identifier"]))
    if "contract-enforcer" in results:
        sections.append(_contracts(results["contract-enforcer"]))
    if "semantic-mapper" in results:
        sections.append(_meanings(results["semantic-mapper"]))
    sections += [columns_table(report), next_steps(report)]
    return ResultCards(
        tuple(_figures(report)), tuple(sections), balance=str(summary.get("rows_balance") or "")
    )
