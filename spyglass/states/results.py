"""State of `/task/[task_id]/results`: a tool task's report, shaped for cards, tables and charts.

A task that is still running is followed on the bus and its report loads the
moment it completes; only its owner (or an admin) sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import reflex as rx

from spyglass.errors import DomainError
from spyglass.states.auth import current_user
from spyglass.states.live import LiveFeed, supersede_watch
from spyglass.tasks.access import can_see
from spyglass.tasks.bus import Topic
from spyglass.tasks.engine import get_engine
from spyglass.tasks.status import TaskStatus
from spyglass.tasks.view import TaskView
from spyglass.tools import flow
from spyglass.tools.catalogue import TOOLS


@dataclass
class Card:
    label: str = ""
    value: str = ""
    tone: str = "gray"


@dataclass
class ColumnRow:
    name: str = ""
    type: str = ""
    null_pct: str = ""
    distinct: str = ""
    minimum: str = ""
    maximum: str = ""
    mean: str = ""


@dataclass
class IssueRow:
    row: int = 0
    issue: str = ""
    detail: str = ""


@dataclass
class Finding:
    severity: str = ""
    kind: str = ""
    column: str = ""
    count: str = ""


@dataclass
class ChangeRow:
    """clean-my-data's "what changed" for one column, with an example."""

    column: str = ""
    filled: str = ""
    changed: str = ""
    emptied: str = ""
    set_aside: str = ""
    example: str = ""


def _example(sample: dict[str, Any]) -> str:
    row, kind = sample.get("row"), sample.get("change")
    if kind == "set aside":
        return f"row {row}: {_text(sample.get('before'))} set aside ({sample.get('after')})"
    before = "empty" if sample.get("before") is None else _text(sample.get("before"))
    after = "empty" if sample.get("after") is None else _text(sample.get("after"))
    return f"row {row}: {before} → {after}"


def change_rows(preview: dict[str, Any]) -> list[ChangeRow]:
    """The previewer's per-column changes as table rows."""
    return [
        ChangeRow(
            str(c.get("column")),
            _text(c.get("filled")),
            _text(c.get("changed")),
            _text(c.get("emptied")),
            _text(c.get("quarantined")),
            _example(c["samples"][0]) if c.get("samples") else "",
        )
        for c in preview.get("changes", [])
    ]


@dataclass
class Download:
    filename: str = ""
    url: str = ""
    size: str = ""
    kind: str = ""


@dataclass
class AgentSummary:
    agent: str = ""
    facts: str = ""


def _text(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def _size(n: Any) -> str:
    if not isinstance(n, int):
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return ""


def summary_cards(tool_id: str, summary: dict[str, Any]) -> list[Card]:
    """The headline figures of a report, by tool."""
    cards = [
        Card("Rows", _text(summary.get("rows"))),
        Card("Columns", _text(summary.get("columns"))),
        Card(
            "Empty cells",
            f"{_text(summary.get('missing_cells'))} ({_text(summary.get('missing_pct'))} %)",
        ),
        Card("Duplicate rows", _text(summary.get("duplicate_rows"))),
        Card("Issues", _text(summary.get("issues")), "red" if summary.get("issues") else "green"),
    ]
    if tool_id == "profile-my-data":
        level = summary.get("risk_level")
        cards += [
            Card(
                "Risk", _text(level), {"high": "red", "medium": "amber"}.get(level or "", "green")
            ),
            Card("Readiness", _text(summary.get("readiness")), "blue"),
            Card(
                "PII columns",
                _text(summary.get("pii_columns")),
                "red" if summary.get("pii_columns") else "green",
            ),
            Card(
                "Drifted columns",
                _text(summary.get("drifted_columns")),
                "amber" if summary.get("drifted_columns") else "green",
            ),
        ]
    elif tool_id == "clean-my-data":
        cards += [
            Card("Rows written", _text(summary.get("rows_written")), "green"),
            Card(
                "Rows set aside",
                _text(summary.get("rows_quarantined")),
                "amber" if summary.get("rows_quarantined") else "green",
            ),
            Card(
                "Rows set aside (outliers)",
                _text(summary.get("rows_set_aside_as_outliers")),
                "amber" if summary.get("rows_set_aside_as_outliers") else "green",
            ),
            Card(
                "Rows set aside (missing values)",
                _text(summary.get("rows_set_aside_for_gaps")),
                "amber" if summary.get("rows_set_aside_for_gaps") else "green",
            ),
            Card("Duplicates merged", _text(summary.get("duplicates_merged")), "blue"),
            Card("Empty cells filled", _text(summary.get("nulls_filled")), "blue"),
            Card("Values standardized", _text(summary.get("values_standardized")), "blue"),
        ]
    elif tool_id == "master-my-data":
        cards += [
            Card("Match key", _text(summary.get("match_key")), "blue"),
            Card("Golden records", _text(summary.get("golden_records")), "green"),
            Card("Rows merged", _text(summary.get("merged_rows")), "blue"),
            Card(
                "Records without the match key",
                _text(summary.get("rows_without_key")),
                "amber" if summary.get("rows_without_key") else "green",
            ),
            Card("Conflicts", _text(summary.get("conflicts")), "amber"),
            Card(
                "For a steward",
                _text(summary.get("stewardship_flags")),
                "red" if summary.get("stewardship_flags") else "green",
            ),
        ]
    return cards


def _facts(result: dict[str, Any]) -> str:
    """An agent's scalar figures (and lists of names) on one line."""
    parts = []
    for key, value in result.items():
        names = isinstance(value, list) and all(isinstance(v, str) for v in value)
        if names or value is None or isinstance(value, bool | int | float | str):
            parts.append(f"{key.replace('_', ' ')}: {_text(value)}")
    return " · ".join(parts) or "see the JSON report"


class ResultsState(rx.State):
    loading: bool = True
    not_found: bool = False
    #: Set while the task has not completed (its status, as a word), or on failure.
    waiting_status: str = ""
    problem: str = ""
    task_id: str = ""
    tool_id: str = ""
    tool_name: str = ""
    headline: str = ""
    cards: list[Card] = []
    columns: list[ColumnRow] = []
    findings: list[Finding] = []
    row_issues: list[IssueRow] = []
    downloads: list[Download] = []
    agents: list[AgentSummary] = []
    #: clean-my-data: where every row went, and what changed per column.
    balance: str = ""
    changes: list[ChangeRow] = []
    nulls_chart: list[dict[str, Any]] = []
    issues_chart: list[dict[str, Any]] = []
    risk_chart: list[dict[str, Any]] = []
    drift_chart: list[dict[str, Any]] = []
    histograms: dict[str, list[dict[str, Any]]] = {}
    histogram_columns: list[str] = []
    histogram_column: str = ""
    report_json: str = ""
    _watch_gen: int = 0

    @rx.var
    def histogram(self) -> list[dict[str, Any]]:
        return self.histograms.get(self.histogram_column, [])

    def _task_id(self) -> str:
        parts = [p for p in (self.router.url.path or "").split("/") if p]
        return parts[1] if len(parts) >= 3 else ""

    @rx.event(background=True)
    async def load(self) -> None:
        async with self:
            generation, token = supersede_watch(self)
            task_id = self._task_id()
            user = await current_user(self)
            self.loading, self.not_found, self.problem, self.waiting_status = True, False, "", ""
        engine = get_engine()
        task = await engine.get(task_id) if task_id else None
        if task is None or not can_see(task, user) or not task.is_tool:
            async with self:
                self.not_found, self.loading = True, False
            return
        if not task.is_terminal:
            async with self:
                self.waiting_status, self.loading = task.status.label, False
                self.task_id = task_id
            ended = await self._wait_for_end(task_id, token, generation)
            if ended is None:
                return
            task = ended
        if task.status is not TaskStatus.COMPLETED:
            async with self:
                if self._watch_gen == generation:
                    self.task_id, self.loading = task_id, False
                    self.waiting_status = task.status.label
                    self.problem = task.error_message or "This task did not complete."
            return
        try:
            report = await flow.read_report(task)
            downloads = await flow.download_list(task_id, base_url="")
        except DomainError as exc:
            async with self:
                self.problem, self.loading = exc.message, False
            return
        async with self:
            if self._watch_gen != generation:
                return
            self._show(task_id, task.tool_id or "", report, downloads)
            self.loading = False

    async def _wait_for_end(self, task_id: str, token: str, generation: int) -> TaskView | None:
        """Follow the task until it ends, or None if the tab closed or moved on."""
        engine = get_engine()
        with engine.subscribe(Topic(task_id=task_id)) as sub:
            task = await engine.get(task_id)  # it may have ended before we subscribed
            feed = LiveFeed(sub, token)
            while task is not None and not task.is_terminal:
                batch = await feed.next()
                if batch is None:
                    return None
                if any(m.payload["type"] == "deleted" for m in batch):
                    task = None
                    break
                if batch:
                    task = await engine.get(task_id)
                    async with self:
                        if self._watch_gen != generation:
                            return None
                        if task is not None:
                            self.waiting_status = task.status.label
        if task is None:
            async with self:
                self.not_found = True
        return task

    def _show(
        self, task_id: str, tool_id: str, report: dict[str, Any], downloads: list[dict[str, Any]]
    ) -> None:
        import json

        summary = report.get("executiveSummary", {})
        results = report.get("agentResults", {})
        self.task_id, self.tool_id = task_id, tool_id
        self.tool_name = TOOLS[tool_id].name if tool_id in TOOLS else tool_id
        self.waiting_status = ""
        self.headline = str(summary.get("headline") or "")
        self.cards = summary_cards(tool_id, summary)
        self.balance = str(summary.get("rows_balance") or "")
        self.changes = change_rows(results.get("cleanse-previewer", {}))
        cols = report.get("analysisSummary", {}).get("columns", [])
        self.columns = [
            ColumnRow(
                _text(c.get("name")),
                _text(c.get("type")),
                _text(c.get("null_pct")),
                _text(c.get("distinct")),
                _text(c.get("min")),
                _text(c.get("max")),
                _text(c.get("mean")),
            )
            for c in cols
        ]
        self.nulls_chart = [
            {"column": str(c.get("name")), "empty %": float(c.get("null_pct") or 0)} for c in cols
        ]
        issues = report.get("issueSummary", {})
        self.issues_chart = [
            {"type": t.replace("_", " "), "count": n} for t, n in issues.get("by_type", {}).items()
        ]
        self.findings = [
            Finding(
                i["severity"],
                i["type"].replace("_", " "),
                _text(i.get("column")),
                _text(i.get("count")),
            )
            for i in issues.get("issues", [])
        ]
        self.row_issues = [
            IssueRow(int(r["row"]), str(r["issue"]).replace("_", " "), str(r.get("detail") or ""))
            for r in report.get("rowLevelIssues", [])
        ]
        self.risk_chart = [
            {"column": c["column"], "risk": c["score"]}
            for c in results.get("score-risk", {}).get("columns", [])
        ]
        self.drift_chart = [
            {"column": c["column"], "PSI": c["psi"]}
            for c in results.get("drift-detector", {}).get("columns", [])
            if c.get("psi") is not None
        ]
        histograms: dict[str, list[dict[str, Any]]] = {}
        for col in results.get("unified-profiler", {}).get("columns", []):
            hist = col.get("histogram")
            if not hist:
                continue
            edges, counts = hist["edges"], hist["counts"]
            histograms[col["name"]] = [
                {"bin": f"{_text(edges[i])}–{_text(edges[i + 1])}", "rows": counts[i]}
                for i in range(len(counts))
            ]
        self.histograms = histograms
        self.histogram_columns = list(histograms)
        if self.histogram_column not in histograms:
            self.histogram_column = next(iter(histograms), "")
        self.downloads = [
            Download(d["filename"], d["url"], _size(d.get("size_bytes")), str(d.get("type") or ""))
            for d in downloads
        ]
        self.agents = [AgentSummary(agent, _facts(result)) for agent, result in results.items()]
        self.report_json = json.dumps(report, indent=2, default=str)[:200_000]

    @rx.event
    def choose_histogram(self, column: str) -> None:
        if column in self.histograms:
            self.histogram_column = column
