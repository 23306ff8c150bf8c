"""profile-my-data's part of the report: the judgements in the executive summary, each
finding in plain words with the number behind it, the columns as the profiler saw them."""

from __future__ import annotations

from typing import Any

from spyglass.tools.common.toolkit import AgentContext, ReportSections

Context = AgentContext[Any]

PII_WORDS = {"email": "e-mail addresses", "phone": "phone numbers", "card_number": "card numbers"}
FACTOR_WORDS = {
    "nulls": "empty values",
    "outliers": "outliers",
    "pii": "personal data",
    "type_drift": "values of another type",
}
TEST_WORDS = {"ks": "Kolmogorov–Smirnov", "chi2": "χ²"}


def summary(ctx: Context) -> dict[str, Any]:
    results = ctx.results
    risk = results.get("score-risk", {})
    ready = results.get("readiness-rater", {})
    return {
        "risk_level": risk.get("risk_level"),
        "risk_score": risk.get("dataset_score"),
        "readiness": ready.get("grade"),
        "readiness_score": ready.get("score"),
        "pii_columns": results.get("governance-checker", {}).get("pii_columns"),
        "drifted_columns": results.get("drift-detector", {}).get("drifted_columns"),
        "alerts": results.get("unified-profiler", {}).get("alerts_by_type"),
    }


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "0 %"


def issues(ctx: Context) -> list[dict[str, Any]]:
    results = ctx.results
    out: list[dict[str, Any]] = []
    profile = results.get("unified-profiler", {})
    for col in profile.get("columns", []):
        if col["nulls"]:
            out.append(
                {
                    "type": "missing_values",
                    "column": col["name"],
                    "count": col["nulls"],
                    "severity": "high" if col["null_pct"] > 20 else "low",
                    "message": f"{col['name']}: {col['nulls']:,} of {col['count']:,} values "
                    f"are empty ({_pct(col['nulls'], col['count'])})",
                }
            )
    if profile.get("duplicate_rows"):
        n = profile["duplicate_rows"]
        out.append(
            {
                "type": "duplicate_rows",
                "count": n,
                "severity": "medium",
                "message": f"{n:,} rows repeat an earlier row exactly",
            }
        )
    governance = results.get("governance-checker", {})
    for finding in governance.get("findings", []):
        if not finding.get("flagged"):
            continue
        kind = PII_WORDS.get(finding["pii"], finding["pii"])
        out.append(
            {
                "type": "pii",
                "column": finding["column"],
                "count": finding["values"],
                "severity": "high",
                "message": f"{finding['column']} holds {kind}: {finding['values']:,} values "
                f"({100 * finding['share']:.0f} % of those sampled)",
            }
        )
    risk = results.get("score-risk", {})
    for col in risk.get("columns", []):
        if not col.get("high_risk"):
            continue
        factor = max(col["factors"], key=lambda f: col["factors"][f])
        out.append(
            {
                "type": "high_risk_column",
                "column": col["column"],
                "score": col["score"],
                "severity": "medium",
                "message": f"{col['column']} has a risk score of {col['score']:.2f} (at or "
                f"above {risk['threshold']:g}), mostly from {FACTOR_WORDS.get(factor, factor)}",
            }
        )
    for col in results.get("drift-detector", {}).get("columns", []):
        if col.get("status") != "drifted":
            continue
        if col.get("test") is None:
            detail = col.get("detail") or "its type changed"
        else:
            detail = (
                f"{TEST_WORDS.get(col['test'], col['test'])} p-value {col['p_value']:.3g}, "
                f"PSI {col['psi']:.3g}"
                + (f", KS {col['ks']:.3g}" if col.get("ks") is not None else "")
            )
        out.append(
            {
                "type": "drift",
                "column": col["column"],
                "severity": "medium",
                "message": f"{col['column']} has drifted from the baseline ({detail})",
            }
        )
    return out


def columns(ctx: Context) -> list[dict[str, Any]] | None:
    profile = ctx.results.get("unified-profiler")
    if not profile:
        return None
    keys = ("name", "type", "nulls", "null_pct", "distinct", "min", "max", "mean")
    return [{k: c.get(k) for k in keys} for c in profile.get("columns", [])]


def routing(ctx: Context, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where the data should go next, as S000's routing decisions."""
    decisions: list[dict[str, Any]] = []
    fixable = {"missing_values", "duplicate_rows", "high_risk_column"}
    if any(i["type"] in fixable for i in found):
        decisions.append(
            {"next_tool": "clean-my-data", "reason": "missing values or duplicates to fix"}
        )
    if ctx.results.get("governance-checker", {}).get("pii_columns"):
        decisions.append(
            {"next_tool": None, "reason": "personal data found: review before sharing"}
        )
    return decisions


SECTIONS = ReportSections(summary=summary, issues=issues, columns=columns, routing=routing)
