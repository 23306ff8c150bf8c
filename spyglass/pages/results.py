"""`/task/[task_id]/results`: a tool task's report as cards, tables and charts, and its files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import reflex as rx

from spyglass.pages.layout import layout
from spyglass.pages.widgets import command, loading, not_found, select
from spyglass.states.results import (
    AgentSummary,
    Card,
    ChangeRow,
    ColumnRow,
    Download,
    Finding,
    IssueRow,
    ResultsState,
)

SEVERITY_COLORS = {"high": "red", "medium": "amber", "low": "gray"}


def _card(card: Card) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(card.label, size="2", color_scheme="gray"),
            rx.text(
                card.value,
                size="5",
                weight="bold",
                color=rx.match(
                    card.tone,
                    ("red", "var(--red-11)"),
                    ("amber", "var(--amber-11)"),
                    ("green", "var(--green-11)"),
                    ("blue", "var(--blue-11)"),
                    "var(--gray-12)",
                ),
                data_testid="card-value",
            ),
            spacing="1",
        ),
        min_width="170px",
        data_testid="summary-card",
        data_label=card.label,
    )


def _bar_chart(
    data: rx.Var[Sequence[dict[str, Any]]] | Sequence[dict[str, Any]],
    x: str,
    y: str,
    color: str,
    testid: str,
) -> rx.Component:
    return rx.box(
        rx.recharts.bar_chart(
            rx.recharts.cartesian_grid(stroke_dasharray="3 3"),
            rx.recharts.x_axis(data_key=x, tick={"fontSize": 11}),
            rx.recharts.y_axis(tick={"fontSize": 11}),
            rx.recharts.graphing_tooltip(),
            rx.recharts.bar(data_key=y, fill=color),
            data=data,
            width="100%",
            height=260,
        ),
        width="100%",
        data_testid=testid,
    )


def _chart_card(title: str, chart: rx.Component) -> rx.Component:
    return rx.card(
        rx.vstack(rx.heading(title, size="3", as_="h3"), chart, width="100%"), width="100%"
    )


def _optional_chart(title: str, data: Any, x: str, y: str, color: str, testid: str) -> rx.Component:
    """A bar chart card, shown only when the report has its data (e.g. drift: a baseline)."""
    return rx.cond(
        data.length() > 0,
        _chart_card(title, _bar_chart(data, x, y, color, testid)),
    )


def _charts() -> rx.Component:
    return rx.grid(
        rx.cond(
            rx.Var.create(ResultsState.histogram_columns).length() > 0,
            _chart_card(
                "Distribution",
                rx.vstack(
                    select(
                        ResultsState.histogram_columns,
                        value=ResultsState.histogram_column,
                        on_change=ResultsState.choose_histogram,
                        testid="histogram-column",
                        label="Column to show",
                    ),
                    _bar_chart(
                        ResultsState.histogram, "bin", "rows", "var(--accent-9)", "chart-histogram"
                    ),
                    width="100%",
                ),
            ),
        ),
        _chart_card(
            "Empty cells by column (%)",
            _bar_chart(ResultsState.nulls_chart, "column", "empty %", "#e5484d", "chart-nulls"),
        ),
        _optional_chart(
            "Issues by kind", ResultsState.issues_chart, "type", "count", "#f76b15", "chart-issues"
        ),
        _optional_chart(
            "Risk by column (0–1)",
            ResultsState.risk_chart,
            "column",
            "risk",
            "#ffc53d",
            "chart-risk",
        ),
        _optional_chart(
            "Drift from the baseline (PSI; above 0.2 has drifted)",
            ResultsState.drift_chart,
            "column",
            "PSI",
            "#8e4ec6",
            "chart-drift",
        ),
        columns=rx.breakpoints(initial="1", md="2"),
        spacing="3",
        width="100%",
    )


def _table(headers: list[str], body: rx.Component, testid: str) -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in headers])),
            rx.table.body(body),
            width="100%",
            size="1",
        ),
        width="100%",
        overflow_x="auto",
        data_testid=testid,
    )


def _column_row(c: ColumnRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text.strong(c.name)),
        rx.table.cell(c.type),
        rx.table.cell(c.null_pct),
        rx.table.cell(c.distinct),
        rx.table.cell(c.minimum),
        rx.table.cell(c.maximum),
        rx.table.cell(c.mean),
        data_testid="column-row",
        data_column=c.name,
    )


def _finding(f: Finding) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.badge(
                f.severity,
                color_scheme=rx.match(
                    f.severity, *[(k, v) for k, v in SEVERITY_COLORS.items()], "gray"
                ),
            )
        ),
        rx.table.cell(f.kind),
        rx.table.cell(f.column),
        rx.table.cell(f.count),
        data_testid="finding",
    )


def _row_issue(r: IssueRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(r.row),
        rx.table.cell(r.issue),
        rx.table.cell(r.detail),
        data_testid="row-issue",
    )


def _change_row(c: ChangeRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text.strong(c.column)),
        rx.table.cell(c.filled),
        rx.table.cell(c.changed),
        rx.table.cell(c.emptied),
        rx.table.cell(c.set_aside),
        rx.table.cell(c.example),
        data_testid="change-row",
        data_column=c.column,
    )


def _what_changed() -> rx.Component:
    """clean-my-data: where every row went and, per column, what the run changed."""
    return rx.cond(
        ResultsState.tool_id == "clean-my-data",
        rx.vstack(
            rx.heading("What changed", size="4", as_="h2"),
            rx.cond(
                rx.Var.create(ResultsState.changes).length() == 0,
                rx.text("No value was changed.", color_scheme="gray"),
                _table(
                    [
                        "Column",
                        "Filled",
                        "Fixed or standardised",
                        "Emptied",
                        "Set aside",
                        "Example",
                    ],
                    rx.foreach(ResultsState.changes, _change_row),
                    "changes-table",
                ),
            ),
            width="100%",
            spacing="2",
        ),
    )


def _download(d: Download) -> rx.Component:
    return rx.hstack(
        rx.icon("file_down", size=18),
        rx.link(
            d.filename,
            href=d.url,
            is_external=True,
            data_testid="download-link",
            data_filename=d.filename,
        ),
        rx.text(d.size, size="1", color_scheme="gray"),
        rx.badge(d.kind, variant="soft"),
        align="center",
    )


def _agent(a: AgentSummary) -> rx.Component:
    return rx.vstack(
        rx.text(rx.code(a.agent)),
        rx.text(a.facts, size="2", color_scheme="gray"),
        spacing="1",
        data_testid="agent-summary",
    )


def _report() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.heading(ResultsState.tool_name, size="5", as_="h2"),
            rx.link("Task details", href="/tasks/" + ResultsState.task_id),
            align="center",
            spacing="4",
        ),
        rx.text(ResultsState.headline, data_testid="headline"),
        rx.cond(
            ResultsState.balance != "",
            rx.text(ResultsState.balance, data_testid="rows-balance", weight="medium"),
        ),
        rx.flex(rx.foreach(ResultsState.cards, _card), wrap="wrap", gap="12px"),
        rx.heading("Downloads", size="4", as_="h2"),
        rx.cond(
            rx.Var.create(ResultsState.downloads).length() == 0,
            rx.text("This run wrote no files.", color_scheme="gray"),
            rx.vstack(rx.foreach(ResultsState.downloads, _download), spacing="2"),
        ),
        _what_changed(),
        _charts(),
        rx.heading("Columns", size="4", as_="h2"),
        _table(
            ["Column", "Type", "Empty %", "Distinct", "Min", "Max", "Mean"],
            rx.foreach(ResultsState.columns, _column_row),
            "columns-table",
        ),
        rx.heading("Findings", size="4", as_="h2"),
        rx.cond(
            rx.Var.create(ResultsState.findings).length() == 0,
            rx.callout("No issues found.", icon="circle_check", color_scheme="green"),
            _table(
                ["Severity", "Kind", "Column", "Count"],
                rx.foreach(ResultsState.findings, _finding),
                "findings-table",
            ),
        ),
        rx.heading("Rows to look at", size="4", as_="h2"),
        rx.cond(
            rx.Var.create(ResultsState.row_issues).length() == 0,
            rx.text("No row-level issues.", color_scheme="gray"),
            _table(
                ["Row", "Issue", "Detail"],
                rx.foreach(ResultsState.row_issues, _row_issue),
                "row-issues-table",
            ),
        ),
        rx.heading("Agents", size="4", as_="h2"),
        rx.vstack(rx.foreach(ResultsState.agents, _agent), spacing="3"),
        rx.accordion.root(
            rx.accordion.item(
                header="The whole report (JSON)",
                content=command(ResultsState.report_json, language="json", can_copy=False),
            ),
            collapsible=True,
            width="100%",
        ),
        width="100%",
        spacing="4",
    )


def _not_ready() -> rx.Component:
    return rx.callout(
        rx.vstack(
            rx.cond(
                ResultsState.problem != "",
                rx.text(
                    "No results: the task ended ",
                    ResultsState.waiting_status,
                    ". ",
                    ResultsState.problem,
                ),
                rx.hstack(
                    rx.spinner(),
                    rx.text(
                        "The task is ",
                        ResultsState.waiting_status,
                        ": its results appear here the moment it completes.",
                    ),
                ),
            ),
            rx.link("Follow it on its details page", href="/tasks/" + ResultsState.task_id),
        ),
        icon="hourglass",
        color_scheme=rx.cond(ResultsState.problem != "", "red", "blue"),
        data_testid="results-not-ready",
    )


def results_page() -> rx.Component:
    return layout(
        rx.cond(
            ResultsState.loading,
            loading("Loading the report…"),
            rx.cond(
                ResultsState.not_found,
                not_found("No such task.", "results-not-found"),
                rx.cond(
                    (ResultsState.waiting_status != "") | (ResultsState.problem != ""),
                    _not_ready(),
                    _report(),
                ),
            ),
        ),
        title="Results",
    )
