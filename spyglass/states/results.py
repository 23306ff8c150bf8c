"""State of `/task/[task_id]/results`: a tool task's report, as its tool's result cards.

The tool turns its report into typed cards (`Tool.cards`: figures, tables, charts; see
`spyglass.tools.common.cards`); this state renders any of them the same way: tables a page
at a time, charts with one series shown (a chooser for the others). A task that is still
running is followed on the bus and its report loads the moment it completes; only its
owner (or an admin) sees it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import reflex as rx

from spyglass.errors import DomainError
from spyglass.states.auth import current_user
from spyglass.states.live import LiveFeed, supersede_watch
from spyglass.tasks.access import can_read
from spyglass.tasks.bus import Topic
from spyglass.tasks.engine import get_engine
from spyglass.tasks.status import TaskStatus
from spyglass.tasks.view import TaskView
from spyglass.tools import flow
from spyglass.tools.catalogue import TOOLS
from spyglass.tools.common.cards import Chart, ResultCards, Section, Table, plain_error


@dataclass
class FigureView:
    label: str = ""
    value: str = ""
    tone: str = "gray"
    detail: str = ""
    source: str = ""


@dataclass
class SectionView:
    """A table or a chart, as the page shows it now (a table: its current page only)."""

    kind: str = "table"
    id: str = ""
    title: str = ""
    note: str = ""
    source: str = ""
    empty: str = ""
    # tables
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    row_keys: list[str] = field(default_factory=list)
    total: int = 0
    page: int = 0
    pages: int = 1
    range_text: str = ""
    # charts
    points: list[dict[str, Any]] = field(default_factory=list)
    x_label: str = ""
    y_label: str = ""
    color: str = ""
    caption: str = ""
    choices: list[str] = field(default_factory=list)
    choice: str = ""
    choice_label: str = ""


@dataclass
class Download:
    filename: str = ""
    url: str = ""
    size: str = ""
    kind: str = ""


def _size(n: Any) -> str:
    if not isinstance(n, int):
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return ""


def table_view(table: Table, page: int) -> SectionView:
    count = len(table.rows)
    pages = max(1, math.ceil(count / table.page_size))
    page = min(max(0, page), pages - 1)
    start = page * table.page_size
    shown = table.rows[start : start + table.page_size]
    total = table.total if table.total is not None else count
    if not count:
        range_text = ""
    elif pages == 1 and total == count:
        range_text = f"{count:,} row{'s' if count != 1 else ''}"
    else:
        range_text = f"{start + 1:,}–{start + len(shown):,} of {count:,}"
        if total > count:
            range_text += f" listed ({total:,} in all)"
    keys = table.keys[start : start + table.page_size] if table.keys else ()
    return SectionView(
        kind="table",
        id=table.id,
        title=table.title,
        note=table.note,
        source=table.source,
        empty=table.empty,
        headers=list(table.headers),
        rows=[list(r) for r in shown],
        row_keys=list(keys) or [str(start + i + 1) for i in range(len(shown))],
        total=total,
        page=page,
        pages=pages,
        range_text=range_text,
    )


def chart_view(chart: Chart, choice: str | None) -> SectionView:
    names = [s.name for s in chart.series]
    wanted = choice if choice in names else (chart.default if chart.default in names else "")
    series = next((s for s in chart.series if s.name == wanted), None) or (
        chart.series[0] if chart.series else None
    )
    points = [{"label": p.label, "value": p.value} for p in series.points] if series else []
    return SectionView(
        kind="chart",
        id=chart.id,
        title=chart.title,
        source=chart.source,
        empty="Nothing to chart.",
        points=points,
        x_label=(series.x_label if series and series.x_label else chart.x_label),
        y_label=chart.y_label,
        color=chart.color,
        caption=chart.caption,
        choices=names if len(names) > 1 else [],
        choice=series.name if series else "",
        choice_label=chart.choice_label,
    )


def section_view(section: Section, pages: dict[str, int], choices: dict[str, str]) -> SectionView:
    if isinstance(section, Table):
        return table_view(section, pages.get(section.id, 0))
    return chart_view(section, choices.get(section.id))


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
    #: Where every row went (clean, master), in one sentence.
    balance: str = ""
    figures: list[FigureView] = []
    sections: list[SectionView] = []
    downloads: list[Download] = []
    report_json: str = ""
    _cards: ResultCards | None = None
    _pages: dict[str, int] = {}
    _choices: dict[str, str] = {}
    _watch_gen: int = 0

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
        if task is None or not can_read(task, user) or not task.is_tool:
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
                    self.problem = plain_error(task.error_message) or "This task did not complete."
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
        tool = TOOLS.get(tool_id)
        summary = report.get("executiveSummary", {})
        self.task_id, self.tool_id = task_id, tool_id
        self.tool_name = tool.name if tool is not None else tool_id
        self.waiting_status = ""
        self.headline = str(summary.get("headline") or "")
        cards = tool.cards(report) if tool is not None else ResultCards((), ())
        self._cards, self._pages, self._choices = cards, {}, {}
        self.balance = cards.balance
        self.figures = [
            FigureView(f.label, f.value, f.tone, f.detail, f.source) for f in cards.figures
        ]
        self._render()
        self.downloads = [
            Download(d["filename"], d["url"], _size(d.get("size_bytes")), str(d.get("type") or ""))
            for d in downloads
        ]
        self.report_json = json.dumps(report, indent=2, default=str)[:200_000]

    def _render(self) -> None:
        cards = self._cards
        self.sections = (
            [section_view(s, self._pages, self._choices) for s in cards.sections] if cards else []
        )

    @rx.event
    def turn_page(self, section_id: str, page: int) -> None:
        self._pages = {**self._pages, section_id: int(page)}
        self._render()

    @rx.event
    def choose(self, section_id: str, choice: str) -> None:
        self._choices = {**self._choices, section_id: choice}
        self._render()
