"""`/task/[task_id]/results`: a tool task's report as its tool's cards, and its files.

Rendered the same way for every tool: figures, then each section (a table a page at a
time, or a bar chart with labelled axes and, for several series, a chooser), downloads, the
bill and the whole report. What is shown comes from the tool's `cards.py`.
"""

from __future__ import annotations

import reflex as rx

from spyglass.pages.billing import bill_panel
from spyglass.pages.layout import layout
from spyglass.pages.widgets import loading, not_found, select
from spyglass.states.results import Download, FigureView, ResultsState, SectionView

TONES = {
    "red": "var(--red-11)",
    "amber": "var(--amber-11)",
    "green": "var(--green-11)",
    "blue": "var(--blue-11)",
}


def _figure(card: FigureView) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(card.label, size="2", color_scheme="gray"),
            rx.heading(
                card.value,
                size="5",
                color=rx.match(card.tone, *TONES.items(), "var(--gray-12)"),
                data_testid="card-value",
            ),
            rx.cond(
                card.detail != "",
                rx.text(card.detail, size="1", color_scheme="gray", data_testid="card-detail"),
            ),
            spacing="1",
        ),
        min_width="170px",
        max_width="320px",
        data_testid="summary-card",
        data_label=card.label,
        data_source=card.source,
    )


def _table(section: SectionView) -> rx.Component:
    def row(cells: rx.Var, index: rx.vars.NumberVar) -> rx.Component:
        return rx.table.row(
            rx.foreach(cells, lambda value: rx.table.cell(value)),
            data_testid=section.id + "-row",
            data_key=rx.Var.create(section.row_keys)[index],
        )

    pager = rx.cond(
        section.pages > 1,
        rx.hstack(
            rx.button(
                "Previous",
                size="1",
                variant="soft",
                disabled=section.page <= 0,
                on_click=ResultsState.turn_page(section.id, section.page - 1),  # type: ignore[operator]  # @rx.event: see pages/__init__.py
                data_testid="page-previous",
            ),
            rx.text("Page ", section.page + 1, " of ", section.pages, size="1", data_testid="page"),
            rx.button(
                "Next",
                size="1",
                variant="soft",
                disabled=section.page >= section.pages - 1,
                on_click=ResultsState.turn_page(section.id, section.page + 1),  # type: ignore[operator]
                data_testid="page-next",
            ),
            align="center",
        ),
    )
    return rx.cond(
        rx.Var.create(section.rows).length() == 0,
        rx.text(section.empty, color_scheme="gray", data_testid="table-empty"),
        rx.vstack(
            rx.box(
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            rx.foreach(section.headers, lambda h: rx.table.column_header_cell(h))
                        )
                    ),
                    rx.table.body(rx.foreach(section.rows, row)),
                    width="100%",
                    size="1",
                ),
                width="100%",
                overflow_x="auto",
            ),
            rx.hstack(
                rx.text(section.range_text, size="1", color_scheme="gray", data_testid="range"),
                pager,
                justify="between",
                width="100%",
                align="center",
            ),
            width="100%",
            spacing="2",
        ),
    )


def _chart(section: SectionView) -> rx.Component:
    chart = rx.recharts.bar_chart(
        rx.recharts.cartesian_grid(stroke_dasharray="3 3"),
        rx.recharts.x_axis(
            data_key="label",
            tick={"fontSize": 11},
            height=50,
            label={"value": section.x_label, "position": "insideBottom", "offset": 0},
        ),
        rx.recharts.y_axis(
            tick={"fontSize": 11},
            label={"value": section.y_label, "angle": -90, "position": "insideLeft"},
            width=70,
        ),
        rx.recharts.graphing_tooltip(),
        rx.recharts.bar(data_key="value", name=section.y_label, fill=section.color),
        data=section.points,
        width="100%",
        height=300,
    )
    return rx.vstack(
        rx.cond(
            rx.Var.create(section.choices).length() > 0,
            rx.hstack(
                rx.text(section.choice_label, size="2"),
                select(
                    section.choices,
                    value=section.choice,
                    on_change=lambda value: ResultsState.choose(section.id, value),  # type: ignore[operator]
                    testid="chart-choice",
                    label=section.choice_label,
                ),
                align="center",
            ),
        ),
        rx.cond(
            rx.Var.create(section.points).length() == 0,
            rx.text(section.caption, color_scheme="gray"),
            rx.vstack(
                rx.box(chart, width="100%"),
                rx.text(section.caption, size="1", color_scheme="gray", data_testid="caption"),
                width="100%",
            ),
        ),
        width="100%",
    )


def _section(section: SectionView) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(section.title, size="4"),
            rx.cond(
                section.note != "",
                rx.text(section.note, size="2", color_scheme="gray", data_testid="note"),
            ),
            rx.cond(section.kind == "table", _table(section), _chart(section)),
            width="100%",
            spacing="2",
        ),
        width="100%",
        data_testid=section.kind + "-" + section.id,
        data_source=section.source,
        data_total=section.total,
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


def _report() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.heading(ResultsState.tool_name, size="5"),
            rx.link("Task details", href="/tasks/" + ResultsState.task_id),
            align="center",
            spacing="4",
        ),
        rx.text(ResultsState.headline, data_testid="headline"),
        rx.cond(
            ResultsState.balance != "",
            rx.text(ResultsState.balance, data_testid="rows-balance", weight="medium"),
        ),
        rx.flex(rx.foreach(ResultsState.figures, _figure), wrap="wrap", gap="12px"),
        rx.heading("Downloads", size="4"),
        rx.cond(
            rx.Var.create(ResultsState.downloads).length() == 0,
            rx.text("This run wrote no files.", color_scheme="gray"),
            rx.vstack(rx.foreach(ResultsState.downloads, _download), spacing="2"),
        ),
        rx.foreach(ResultsState.sections, _section),
        bill_panel(),
        rx.accordion.root(
            rx.accordion.item(
                header="The whole report (JSON)",
                content=rx.code_block(ResultsState.report_json, language="json", width="100%"),
            ),
            collapsible=True,
            width="100%",
        ),
        width="100%",
        spacing="4",
    )


def _not_ready() -> rx.Component:
    return rx.vstack(
        rx.callout(
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
            width="100%",
        ),
        bill_panel(),
        width="100%",
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
