"""`/tasks`: every task, newest first, updating live; a button per example job."""

from __future__ import annotations

import reflex as rx

from spyglass.pages.layout import layout
from spyglass.pages.tokens import token_panel
from spyglass.states.examples import ExampleTaskState, ExampleTaskState2
from spyglass.states.tasks_page import TaskRow, TasksPageState

STATUS_COLORS = {
    "COMPLETED": "green",
    "FAILED": "red",
    "CANCELLED": "gray",
    "PROCESSING": "blue",
    "PENDING": "amber",
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
        rx.progress(value=row.percent, max=100, width="120px"),
        rx.text(row.percent, "%", size="1", data_testid="task-progress"),
        align="center",
    )


def _task_row(row: TaskRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(rx.code(row.task_id.to(str)[:8]), href="/tasks/" + row.task_id)),
        rx.table.cell(rx.text(row.state_name, " · ", rx.text.strong(row.task_name))),
        rx.table.cell(status_badge(row)),
        rx.table.cell(progress_bar(row)),
        rx.table.cell(
            rx.cond(
                row.error_message != "",
                rx.text(row.error_message, color="var(--red-11)", size="2"),
                rx.text(rx.cond(row.result != "", row.result, row.message), size="2"),
            )
        ),
        rx.table.cell(
            rx.cond(
                row.terminal,
                rx.fragment(),
                rx.button(
                    "Cancel",
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    on_click=TasksPageState.cancel(row.task_id),
                ),
            )
        ),
        data_testid="task-row",
        data_task_id=row.task_id,
        data_task_name=row.task_name,
        data_status=row.status,
    )


def _job_buttons() -> rx.Component:
    return rx.hstack(
        rx.button(
            "Run example_task · task1",
            on_click=ExampleTaskState.task1,
            data_testid="start-example_task-task1",
        ),
        rx.button(
            "Run example_task2 · task1",
            on_click=ExampleTaskState2.task1,
            variant="soft",
            data_testid="start-example_task2-task1",
        ),
        rx.button(
            "Run example_task2 · task2_with_args",
            on_click=ExampleTaskState2.task2_with_args({"name": "Browser", "age": 7}),
            variant="soft",
            data_testid="start-example_task2-task2_with_args",
        ),
        wrap="wrap",
        spacing="3",
    )


def tasks_page() -> rx.Component:
    page = layout(
        _job_buttons(),
        rx.cond(
            TasksPageState.loading,
            rx.hstack(rx.spinner(), rx.text("Loading tasks…")),
            rx.cond(
                TasksPageState.rows.length() == 0,
                rx.callout("No tasks yet: start one above, or through the API.", icon="info"),
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            rx.table.column_header_cell("Task"),
                            rx.table.column_header_cell("Job"),
                            rx.table.column_header_cell("Status"),
                            rx.table.column_header_cell("Progress"),
                            rx.table.column_header_cell("Message / result"),
                            rx.table.column_header_cell(""),
                        )
                    ),
                    rx.table.body(rx.foreach(TasksPageState.rows, _task_row)),
                    width="100%",
                ),
            ),
        ),
        rx.divider(),
        token_panel(admin=False),
        title="Tasks",
    )
    return rx.box(page, on_mount=TasksPageState.watch)
