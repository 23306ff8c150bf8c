"""`/tasks/[task_id]`: one task, live."""

from __future__ import annotations

import reflex as rx

from spyglass.pages.billing import bill_panel
from spyglass.pages.layout import layout
from spyglass.pages.tasks import progress_bar, status_badge
from spyglass.pages.widgets import command, loading, not_found
from spyglass.states.task_detail import AgentItem, EventRow, TaskDetailState

AGENT_ICONS = {"completed": "circle_check", "running": "loader", "pending": "circle"}


def _agent(item: AgentItem) -> rx.Component:
    return rx.hstack(
        rx.match(
            item.state,
            *[(k, rx.icon(v, size=16)) for k, v in AGENT_ICONS.items()],
            rx.icon("circle", size=16),
        ),
        rx.text(item.name, size="2"),
        rx.badge(item.state, variant="soft", size="1"),
        align="center",
        data_testid="agent-item",
        data_agent=item.name,
        data_state=item.state,
    )


def _event(row: EventRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.seq),
        rx.table.cell(rx.text(row.time, size="1")),
        rx.table.cell(rx.badge(row.event_type, variant="outline")),
        rx.table.cell(row.message),
        data_testid="timeline-event",
    )


def _details() -> rx.Component:
    task = TaskDetailState.task
    return rx.vstack(
        rx.hstack(
            rx.heading(task.state_name, " · ", task.task_name, size="5"),
            status_badge(task),
            align="center",
        ),
        rx.code(task.task_id),
        progress_bar(task),
        rx.text(
            rx.cond(task.error_message != "", task.error_message, task.message),
            data_testid="task-message",
        ),
        rx.cond(
            task.scheduled != "", rx.text(task.scheduled, size="2", data_testid="task-scheduled")
        ),
        rx.cond(
            TaskDetailState.remedy != "",
            rx.callout(TaskDetailState.remedy, icon="lightbulb", data_testid="remedy"),
        ),
        rx.cond(
            task.tool_id != "",
            rx.cond(
                task.status == "COMPLETED",
                rx.link(
                    rx.button("Open the results", data_testid="open-results"),
                    href="/task/" + task.task_id + "/results",
                ),
            ),
            rx.cond(task.result != "", rx.text("Result: ", rx.code(task.result))),
        ),
        rx.hstack(
            rx.cond(
                ~task.terminal,
                rx.button("Cancel", color_scheme="orange", on_click=TaskDetailState.cancel),
            ),
            rx.cond(
                (task.status == "FAILED") | (task.status == "CANCELLED"),
                rx.button("Retry", on_click=TaskDetailState.retry),
            ),
            rx.button(
                "Delete", color_scheme="red", variant="soft", on_click=TaskDetailState.delete
            ),
        ),
        rx.cond(
            rx.Var.create(TaskDetailState.agents).length() > 0,
            rx.vstack(rx.heading("Agents", size="3"), rx.foreach(TaskDetailState.agents, _agent)),
        ),
        bill_panel(),
        rx.heading("Timeline", size="3"),
        rx.cond(
            rx.Var.create(TaskDetailState.events).length() == 0,
            rx.text("No events yet.", color_scheme="gray"),
            rx.table.root(rx.table.body(rx.foreach(TaskDetailState.events, _event)), width="100%"),
        ),
        rx.heading("Follow it from a terminal", size="3"),
        rx.text(
            "With one of your client tokens (see the Tasks page), every change arrives "
            "as one JSON line:",
            size="2",
            color_scheme="gray",
        ),
        command(TaskDetailState.ws_hint),
        width="100%",
        spacing="3",
    )


def task_detail_page() -> rx.Component:
    page = layout(
        rx.cond(
            TaskDetailState.not_found,
            not_found("Task not found.", "task-not-found"),
            rx.cond(
                TaskDetailState.loading,
                loading("Loading the task…"),
                _details(),
            ),
        ),
        title="Task",
    )
    return page
