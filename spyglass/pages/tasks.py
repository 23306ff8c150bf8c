"""`/tasks`: the user's tasks, newest first, searched, filtered and paged, updating live."""

from __future__ import annotations

from typing import Any

import reflex as rx

from spyglass.pages.layout import layout
from spyglass.pages.tokens import token_panel
from spyglass.pages.widgets import (
    confirm_dialog,
    dialog_description,
    first_visit,
    light_code,
    light_table,
    loading,
    native_choice_select,
)
from spyglass.states.auth import AuthState
from spyglass.states.tasks_page import (
    BULK_OPTIONS,
    RANGE_OPTIONS,
    STATUS_OPTIONS,
    TaskRow,
    TasksPageState,
)

#: Tables are as wide as their columns (scrolling sideways on a narrow screen): long texts
#: wrap at these widths.
TEXT_WIDTH = "28em"
NAME_WIDTH = "20em"

STATUS_COLORS = {
    "COMPLETED": "green",
    "FAILED": "red",
    "UPLOAD_FAILED": "red",
    "EXPIRED": "gray",
    "CANCELLED": "gray",
    "PROCESSING": "blue",
    "PENDING": "amber",
    "UPLOADING": "cyan",
    "CREATED": "gray",
}


def status_badge(row: TaskRow) -> rx.Component:
    return rx.badge(
        row.status_label,
        color_scheme=rx.match(
            row.status,
            *[(k, v) for k, v in STATUS_COLORS.items()],
            "gray",
        ),
        high_contrast=True,
        data_testid="task-status",
    )


def progress_bar(row: TaskRow) -> rx.Component:
    return rx.hstack(
        # Radix Themes' progress bar drawn from its classes (its style sheet is on every page):
        # the same bar and the same `progressbar` role and values, without Radix's Progress
        # code on /tasks.
        rx.el.div(
            rx.el.div(class_name="rt-ProgressIndicator"),
            class_name="rt-ProgressRoot rt-r-size-2 rt-variant-surface",
            role="progressbar",
            aria_valuemin=0,
            aria_valuemax=100,
            aria_valuenow=row.percent,
            aria_valuetext=rx.Var.create(row.percent).to_string() + "%",
            aria_label="Progress of " + row.title,
            style={"--progress-value": row.percent, "--progress-max": 100, "width": "120px"},
        ),
        rx.text(row.percent, "%", size="1", data_testid="task-progress"),
        align="center",
    )


def run_cell(row: TaskRow) -> rx.Component:
    """What tells runs apart: the input file (or the job's input), the tool or job title."""
    return rx.vstack(
        rx.cond(
            row.input_name != "",
            rx.hstack(
                rx.icon("file_spreadsheet", size=14, aria_hidden="true"),
                rx.text(rx.text.strong(row.input_name), size="2", data_testid="task-input"),
                align="center",
                spacing="1",
            ),
        ),
        rx.text(row.title, size="2", data_testid="task-title"),
        rx.cond(
            row.detail != "",
            rx.text(row.detail, size="1", color_scheme="gray", data_testid="task-detail"),
        ),
        rx.cond(
            row.agents_total > 0,
            rx.text(
                row.agents_done,
                "/",
                row.agents_total,
                " agents",
                size="1",
                color_scheme="gray",
                data_testid="task-agents",
            ),
        ),
        spacing="0",
        max_width=NAME_WIDTH,
    )


def time_cell(row: TaskRow) -> rx.Component:
    """When it began running, how long it took or has run, and how long it has left."""
    return rx.vstack(
        rx.text(row.started, size="1", data_testid="task-started"),
        rx.text(row.took, size="1", color_scheme="gray", data_testid="task-took"),
        rx.cond(
            row.eta != "",
            rx.text(row.eta, size="1", color_scheme="blue", data_testid="task-eta"),
        ),
        spacing="0",
        min_width="140px",
    )


def cancel_button(row: TaskRow, on_confirm: Any) -> rx.Component:
    """Cancel, after asking (the run stops where it is)."""
    return confirm_dialog(
        rx.button(
            "Cancel",
            size="1",
            variant="soft",
            color_scheme="orange",
            high_contrast=True,
            aria_label="Cancel " + row.title,
        ),
        title="Cancel this task?",
        description=rx.text(
            rx.text.strong(rx.cond(row.input_name != "", row.input_name, row.title)),
            " stops where it is; what it did so far is kept. Retry it later to start again.",
        ),
        confirm="Cancel the task",
        keep="Keep it running",
        on_confirm=on_confirm,
        testid="cancel",
        color_scheme="orange",
    )


def _task_row(row: TaskRow) -> rx.Component:
    return light_table.row(
        light_table.cell(
            rx.link(
                light_code(rx.Var.create(row.task_id).to(str)[:8]),
                href="/tasks/" + row.task_id,
                aria_label="Open task " + row.task_id,
                data_testid="task-link",
            )
        ),
        light_table.cell(run_cell(row)),
        light_table.cell(status_badge(row)),
        light_table.cell(progress_bar(row)),
        light_table.cell(time_cell(row)),
        light_table.cell(
            rx.cond(
                row.error_message != "",
                rx.text(row.error_message, color="var(--red-11)", size="2", max_width=TEXT_WIDTH),
                rx.text(
                    rx.cond(row.result != "", row.result, row.message),
                    size="2",
                    max_width=TEXT_WIDTH,
                ),
            ),
            rx.cond(
                row.scheduled != "",
                rx.text(row.scheduled, size="1", data_testid="task-scheduled"),
            ),
        ),
        light_table.cell(
            rx.hstack(
                rx.cond(
                    (row.status == "COMPLETED") & (row.tool_id != ""),
                    rx.link(
                        rx.button("Results", size="1", variant="soft"),
                        href="/task/" + row.task_id + "/results",
                    ),
                ),
                rx.cond(
                    row.terminal | ~AuthState.can_change,
                    rx.fragment(),
                    cancel_button(row, TasksPageState.cancel(row.task_id)),  # type: ignore[operator]  # @rx.event: see pages/__init__.py
                ),
                spacing="1",
            )
        ),
        data_testid="task-row",
        data_task_id=row.task_id,
        key=row.task_id,  # by task, not place: an open dialog stays with its row (admin.py)
        data_task_name=row.task_name,
        data_status=row.status,
    )


def _search() -> rx.Component:
    return rx.input(
        value=TasksPageState.search,
        on_change=TasksPageState.set_search,
        placeholder="Task id or file name",
        aria_label="Search by task id or file name",
        type="search",
        max_length=200,
        width="240px",
        data_testid="search",
    )


def _dates() -> rx.Component:
    return rx.hstack(
        rx.text("From", size="2", as_="span"),
        rx.input(
            type="date",
            value=TasksPageState.date_from,
            on_change=TasksPageState.set_date_from,
            aria_label="Created from (date, UTC)",
            data_testid="date-from",
        ),
        rx.text("to", size="2", as_="span"),
        rx.input(
            type="date",
            value=TasksPageState.date_to,
            on_change=TasksPageState.set_date_to,
            aria_label="Created up to (date, UTC)",
            data_testid="date-to",
        ),
        align="center",
        spacing="2",
        wrap="wrap",
    )


def _filters() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            _search(),
            native_choice_select(
                STATUS_OPTIONS,
                label="Status",
                value=TasksPageState.status_filter,
                on_change=TasksPageState.set_status_filter,
                testid="filter-status",
            ),
            native_choice_select(
                TasksPageState.kinds,
                label="Tool or job",
                value=TasksPageState.kind_filter,
                on_change=TasksPageState.set_kind_filter,
                testid="filter-kind",
            ),
            align="center",
            wrap="wrap",
            spacing="3",
        ),
        rx.hstack(
            native_choice_select(
                RANGE_OPTIONS,
                label="Created",
                value=TasksPageState.time_range,
                on_change=TasksPageState.set_time_range,
                testid="filter-range",
            ),
            _dates(),
            rx.cond(
                TasksPageState.filtered,
                rx.button(
                    "Clear filters",
                    size="1",
                    variant="soft",
                    color_scheme="gray",
                    on_click=TasksPageState.clear_filters,
                ),
            ),
            rx.spacer(),
            rx.cond(AuthState.can_change, _bulk_delete()),
            align="center",
            wrap="wrap",
            spacing="3",
            width="100%",
        ),
        width="100%",
        spacing="2",
    )


def _bulk_delete() -> rx.Component:
    return rx.hstack(
        native_choice_select(
            BULK_OPTIONS,
            label="Tasks to delete",
            value=TasksPageState.bulk_choice,
            on_change=TasksPageState.set_bulk_choice,
            testid="bulk-choice",
        ),
        rx.button(
            "Delete…",
            color_scheme="red",
            variant="soft",
            on_click=TasksPageState.ask_bulk_delete,
            data_testid="bulk-delete",
        ),
        rx.alert_dialog.root(
            rx.alert_dialog.content(
                rx.alert_dialog.title("Delete tasks"),
                dialog_description(
                    rx.cond(
                        TasksPageState.bulk_count > 0,
                        rx.text(
                            "Delete ",
                            rx.text.strong(
                                TasksPageState.bulk_count,
                                " ",
                                TasksPageState.bulk_words,
                                " ",
                                TasksPageState.bulk_noun,
                                data_testid="bulk-count",
                            ),
                            rx.cond(TasksPageState.filtered, " that match the filters", ""),
                            ", with their timelines and files? This cannot be undone.",
                        ),
                        rx.text(
                            "No ",
                            TasksPageState.bulk_words,
                            " task matches: there is nothing to delete.",
                            data_testid="bulk-none",
                        ),
                    ),
                ),
                rx.hstack(
                    rx.alert_dialog.cancel(
                        rx.button(
                            "Keep them",
                            variant="soft",
                            color_scheme="gray",
                            data_testid="bulk-delete-keep",
                        )
                    ),
                    rx.alert_dialog.action(
                        rx.button(
                            "Delete",
                            color_scheme="red",
                            disabled=TasksPageState.bulk_count == 0,
                            on_click=TasksPageState.bulk_delete,
                            data_testid="bulk-delete-confirm",
                        )
                    ),
                    justify="end",
                    spacing="2",
                    margin_top="12px",
                ),
            ),
            open=TasksPageState.confirm_bulk,
            on_open_change=TasksPageState.set_confirm_bulk,
        ),
        align="center",
        spacing="2",
    )


def _pager() -> rx.Component:
    return rx.hstack(
        rx.text(TasksPageState.page_label, size="2", data_testid="page-label"),
        rx.button(
            "Previous",
            size="1",
            variant="soft",
            disabled=~TasksPageState.has_prev,
            on_click=TasksPageState.prev_page,
            data_testid="page-prev",
        ),
        rx.button(
            "Next",
            size="1",
            variant="soft",
            disabled=~TasksPageState.has_next,
            on_click=TasksPageState.next_page,
            data_testid="page-next",
        ),
        align="center",
        justify="end",
        width="100%",
    )


def _table() -> rx.Component:
    # On a phone each row becomes a card (class sg-cards, assets/spyglass.css).
    return light_table.root(
        light_table.header(
            light_table.row(
                *[
                    light_table.column_header_cell(h)
                    for h in (
                        "Task",
                        "Run",
                        "Status",
                        "Progress",
                        "Started (UTC)",
                        "Message / result",
                        "Actions",
                    )
                ]
            )
        ),
        light_table.body(rx.foreach(TasksPageState.rows, _task_row)),
        width="100%",
        class_name="sg-cards",
        aria_label="Tasks",
    )


def tasks_page() -> rx.Component:
    page = layout(
        _filters(),
        rx.cond(
            TasksPageState.loading,
            loading("Loading tasks…"),
            rx.cond(
                rx.Var.create(TasksPageState.rows).length() == 0,
                rx.cond(
                    TasksPageState.filtered,
                    rx.callout(
                        "No task matches these filters.", icon="info", data_testid="tasks-empty"
                    ),
                    first_visit(),
                ),
                rx.vstack(_table(), _pager(), width="100%"),
            ),
        ),
        rx.divider(),
        token_panel(admin=False),
        title="Tasks",
    )
    return rx.box(page)  # its data: `TasksPageState.open`, the page's on_load
