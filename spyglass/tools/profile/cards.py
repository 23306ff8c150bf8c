"""profile-my-data's results page: its judgements as figures, its findings, alerts and drift
as tables (each skipped column with its reason, each compared one with its test and
p-value), the distribution of a measuring column, empty cells, risk and drift as charts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spyglass.tools.common.cards import (
    Chart,
    Figure,
    Point,
    ResultCards,
    Section,
    Series,
    Table,
    bars,
    columns_table,
    duplicates_table,
    findings_table,
    human_type,
    measuring_first,
    next_steps,
    nulls_chart,
    number,
    share,
    summary_figures,
    tone,
    words,
)
from spyglass.tools.profile.report import PII_WORDS, TEST_WORDS

ALERT_WORDS = {
    "constant": "one value only",
    "zeros": "many zeros",
    "high_correlation": "highly correlated",
    "high_cardinality": "many distinct values",
    "duplicates": "duplicate rows",
    "skewed": "skewed",
    "imbalance": "one value dominates",
    "missing": "missing values",
    "infinite": "infinite values",
    "unique": "every value unique",
    "uniform": "evenly spread",
    "empty": "no rows",
    "constant_length": "values of one length",
    "date_typed_text": "dates written as text",
}
RISK_TONES = {"high": "red", "medium": "amber", "low": "green"}


def _figures(report: Mapping[str, Any]) -> list[Figure]:
    s = report.get("executiveSummary", {})
    out = summary_figures(report)
    if s.get("risk_level") is not None:
        out.append(
            Figure(
                "Risk",
                str(s["risk_level"]),
                RISK_TONES.get(s["risk_level"], "gray"),
                f"score {number(s.get('risk_score'))} of 1",
                "executiveSummary.risk_level",
            )
        )
    if s.get("readiness") is not None:
        out.append(
            Figure(
                "Readiness",
                str(s["readiness"]),
                "blue",
                f"score {number(s.get('readiness_score'))} of 100",
                "executiveSummary.readiness",
            )
        )
    if s.get("pii_columns") is not None:
        names = s["pii_columns"]
        out.append(
            Figure(
                "PII columns",
                number(len(names)),
                tone(names, "red"),
                ", ".join(names) or "no personal data found",
                "executiveSummary.pii_columns",
            )
        )
    if s.get("drifted_columns") is not None:
        names = s["drifted_columns"]
        compared = report.get("agentResults", {}).get("drift-detector", {})
        out.append(
            Figure(
                "Drifted columns",
                number(len(names)),
                tone(names),
                ", ".join(names)
                or f"none of {number(compared.get('columns_compared'))} columns compared",
                "executiveSummary.drifted_columns",
            )
        )
    stream = report.get("agentResults", {}).get("unified-profiler", {}).get("streamed")
    if stream:
        out.append(
            Figure(
                "Read in blocks",
                "yes",
                "blue",
                "the file is larger than a task may hold in memory: counts, gaps, ranges and "
                "duplicates are of every row; quartiles, correlations and patterns of a "
                f"sample of {number(stream.get('sample_rows'))} rows",
                "agentResults.unified-profiler.streamed",
            )
        )
    if s.get("alerts") is not None:
        alerts = s["alerts"]
        out.append(
            Figure(
                "Alerts",
                number(sum(alerts.values())),
                tone(alerts),
                " · ".join(f"{ALERT_WORDS.get(k, words(k))} {number(n)}" for k, n in alerts.items())
                or "none raised",
                "executiveSummary.alerts",
            )
        )
    return out


def _histograms(profile: Mapping[str, Any]) -> Chart | None:
    by_name: dict[str, Series] = {}
    distinct: dict[str, int] = {}
    for col in profile.get("columns", []):
        hist = col.get("histogram")
        if not hist:
            continue
        edges, counts = hist["edges"], hist["counts"]
        name = str(col["name"])
        points = tuple(
            Point(f"{number(edges[i])}–{number(edges[i + 1])}", counts[i])
            for i in range(len(counts))
        )
        by_name[name] = Series(name, points, f"{name} (ranges of values)")
        distinct[name] = int(col.get("distinct") or 0)
    if not by_name:
        return None
    names = measuring_first(list(by_name))
    # Open on a column that measures and varies: never an id, a code or a constant.
    names = [n for n in names if distinct[n] > 1] + [n for n in names if distinct[n] <= 1]
    return Chart(
        "histogram",
        "Distribution",
        "ranges of values",
        "rows",
        tuple(by_name[n] for n in names),
        caption="Rows in each of ten equal ranges between the column's smallest and largest value.",
        source="agentResults.unified-profiler.columns",
        default=names[0],
        choice_label="Column",
    )


def _alerts(profile: Mapping[str, Any]) -> Table:
    alerts = profile.get("alerts", [])
    return Table(
        "alert",
        "Alerts",
        ("Alert", "Column", "What was found", "Rule"),
        tuple(
            (
                ALERT_WORDS.get(a["type"], words(a["type"])),
                a.get("column") or "the whole table",
                str(a.get("detail") or ""),
                str(a.get("rule") or ""),
            )
            for a in alerts
        ),
        tuple(f"{a['type']}:{a.get('column') or ''}" for a in alerts),
        note="ydata-profiling's warnings with its default thresholds; each names the figure "
        "found and the rule it broke.",
        source="agentResults.unified-profiler.alerts",
        total=len(alerts),
        empty="No alert was raised.",
    )


def _verdict(col: Mapping[str, Any]) -> str:
    if col.get("skipped"):
        return f"skipped: {col['skipped']}"
    if col.get("test") is None:
        return f"drifted: {col.get('detail') or 'its type changed'}"
    if col.get("status") == "drifted":
        return "drifted: significant and material"
    if col.get("significant"):
        return "stable: significant, but the change is too small to matter"
    if col.get("material"):
        return "stable: a visible change, but within chance"
    return "stable"


def _drift(result: Mapping[str, Any]) -> list[Section]:
    columns = result.get("columns", [])
    rules = result.get("rules", {})
    rows = []
    for c in columns:
        test = c.get("test")
        rows.append(
            (
                str(c["column"]),
                human_type(c.get("type")),
                TEST_WORDS.get(test, "–") if test else "–",
                f"{c['p_value']:.3g}" if c.get("p_value") is not None else "–",
                number(c.get("psi")),
                number(c.get("ks")),
                _verdict(c),
            )
        )
    rule = (
        f"A column has drifted when its test is significant (p-value below "
        f"{number(result.get('alpha_per_column'))}: {number(rules.get('family_alpha'))} shared "
        f"by the {number(result.get('columns_compared'))} columns compared) and the change is "
        f"material (PSI ≥ {number(rules.get('psi_material'))}, or for numbers and dates "
        f"KS ≥ {number(rules.get('ks_material'))})."
    )
    compared = [c for c in columns if c.get("psi") is not None]
    return [
        Table(
            "drift",
            "Drift from the baseline",
            ("Column", "Compared as", "Test", "p-value", "PSI", "KS", "Verdict"),
            tuple(rows),
            tuple(str(c["column"]) for c in columns),
            note=rule + " Identifiers and free text are skipped, with the reason.",
            source="agentResults.drift-detector.columns",
            total=len(columns),
        ),
        Chart(
            "psi",
            "Population stability index (PSI) by column",
            "column",
            "PSI",
            (Series("PSI", bars((c["column"], c["psi"]) for c in compared)),),
            caption=f"PSI alone does not make drift. {rule}",
            color="#8e4ec6",
            source="agentResults.drift-detector.columns",
        ),
    ]


def _risk(result: Mapping[str, Any]) -> Chart:
    return Chart(
        "risk",
        "Risk by column",
        "column",
        "risk score (0–1)",
        (Series("risk", bars((c["column"], c["score"]) for c in result.get("columns", []))),),
        caption="Empty values, outliers, personal data and values of another type each raise "
        f"the score; at or above {number(result.get('threshold'))} a column is high risk.",
        color="#ffc53d",
        source="agentResults.score-risk.columns",
    )


def _pii(result: Mapping[str, Any]) -> Table:
    findings = result.get("findings", [])
    return Table(
        "pii",
        "Personal data",
        ("Column", "Holds", "Share of values", "Values", "Flagged"),
        tuple(
            (
                str(f["column"]),
                PII_WORDS.get(f["pii"], words(f["pii"])),
                share(f.get("share")),
                number(f.get("values")),
                "yes" if f.get("flagged") else "no: under half the values",
            )
            for f in findings
        ),
        tuple(str(f["column"]) for f in findings),
        source="agentResults.governance-checker.findings",
        total=len(findings),
        empty="No e-mail address, phone or card number was found.",
    )


def cards(report: Mapping[str, Any]) -> ResultCards:
    results = report.get("agentResults", {})
    profile = results.get("unified-profiler")
    sections: list[Section] = [findings_table(report)]
    if profile:
        histogram = _histograms(profile)
        if histogram is not None:
            sections.append(histogram)
    sections += [nulls_chart(report), columns_table(report)]
    if profile:
        sections.append(_alerts(profile))
    if "drift-detector" in results:
        sections += _drift(results["drift-detector"])
    if "score-risk" in results:
        sections.append(_risk(results["score-risk"]))
    if "governance-checker" in results:
        sections.append(_pii(results["governance-checker"]))
    sections += [duplicates_table(report), next_steps(report)]
    return ResultCards(tuple(_figures(report)), tuple(sections))
