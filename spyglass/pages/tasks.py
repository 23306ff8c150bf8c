"""`/tasks`: the user's tasks, newest first, filtered and paged, updating live."""

from __future__ import annotations

import reflex as rx

from spyglass.pages.layout import layout
from spyglass.pages.tokens import token_panel
from spyglass.pages.widgets import first_visit, labelled_select, loading, select
from spyglass.states.tasks_page import BULK_DELETE, STATUS_CHOICES, TaskRow, TasksPageState

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
        data_testid="task-status",
    )


def progress_bar(row: TaskRow) -> rx.Component:
    return rx.hstack(
        rx.progress(value=row.percent, max=100, width="120px", aria_label="Progress"),
        rx.text(row.percent, "%", size="1", data_testid="task-progress"),
        align="center",
    )


def _job_cell(row: TaskRow) -> rx.Component:
    return rx.vstack(
        rx.cond(
            row.tool_id != "",
            rx.text(rx.text.strong(row.tool_id)),
            rx.text(row.state_name, " · ", rx.text.strong(row.task_name)),
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
    )


def _task_row(row: TaskRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.link(
                rx.code(rx.Var.create(row.task_id).to(str)[:8]),
                href="/tasks/" + row.task_id,
                data_testid="task-link",
            )
        ),
        rx.table.cell(_job_cell(row)),
        rx.table.cell(status_badge(row)),
        rx.table.cell(progress_bar(row)),
        rx.table.cell(
            rx.cond(
                row.error_message != "",
                rx.text(row.error_message, color="var(--red-11)", size="2"),
                rx.text(rx.cond(row.result != "", row.result, row.message), size="2"),
            ),
            rx.cond(
                row.scheduled != "",
                rx.text(row.scheduled, size="1", data_testid="task-scheduled"),
            ),
        ),
        rx.table.cell(
            rx.hstack(
                rx.cond(
                    (row.status == "COMPLETED") & (row.tool_id != ""),
                    rx.link(
                        rx.button("Results", size="1", variant="soft"),
                        href="/task/" + row.task_id + "/results",
                    ),
                ),
                rx.cond(
                    row.terminal,
                    rx.fragment(),
                    rx.button(
                        "Cancel",
                        size="1",
                        variant="soft",
                        color_scheme="red",
                        on_click=TasksPageState.cancel(row.task_id),  # type: ignore[operator]  # @rx.event: see pages/__init__.py
                    ),
                ),
                spacing="1",
            )
        ),
        data_testid="task-row",
        data_task_id=row.task_id,
        data_task_name=row.task_name,
        data_status=row.status,
    )


def _filters() -> rx.Component:
    return rx.hstack(
        labelled_select(
            "Status",
            STATUS_CHOICES,
            value=TasksPageState.status_filter,
            on_change=TasksPageState.set_status_filter,
            testid="filter-status",
        ),
        labelled_select(
            "Tool or job",
            TasksPageState.kinds,
            value=TasksPageState.kind_filter,
            on_change=TasksPageState.set_kind_filter,
            testid="filter-kind",
        ),
        rx.cond(
            TasksPageState.filtered,
            rx.button(
                "Clear filters", size="1", variant="ghost", on_click=TasksPageState.clear_filters
            ),
        ),
        rx.spacer(),
        _bulk_delete(),
        align="center",
        wrap="wrap",
        spacing="2",
        width="100%",
    )


def _bulk_delete() -> rx.Component:
    return rx.hstack(
        select(
            list(BULK_DELETE),
            value=TasksPageState.bulk_choice,
            on_change=TasksPageState.set_bulk_choice,
            testid="bulk-choice",
            label="Which tasks to delete",
        ),
        rx.alert_dialog.root(
            rx.alert_dialog.trigger(
                rx.button("Delete…", color_scheme="red", variant="soft", data_testid="bulk-delete")
            ),
            rx.alert_dialog.content(
                rx.alert_dialog.title("Delete tasks"),
                rx.alert_dialog.description(
                    "Delete every ",
                    rx.text.strong(TasksPageState.bulk_choice),
                    " task in this list, with its timeline and files? This cannot be undone.",
                ),
                rx.hstack(
                    rx.alert_dialog.cancel(rx.button("Keep them", variant="soft")),
                    rx.alert_dialog.action(
                        rx.button(
                            "Delete",
                            color_scheme="red",
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
    return rx.table.root(
        rx.table.header(
            rx.table.row(
                *[
                    rx.table.column_header_cell(h)
                    for h in (
                        "Task",
                        "Tool / job",
                        "Status",
                        "Progress",
                        "Message / result",
                        "Actions",
                    )
                ]
            )
        ),
        rx.table.body(rx.foreach(TasksPageState.rows, _task_row)),
        width="100%",
        class_name="sg-cards",
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
    return rx.box(page, on_mount=TasksPageState.watch)
