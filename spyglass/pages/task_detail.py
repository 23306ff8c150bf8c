"""`/tasks/[task_id]`: one task, live: what it is, where its time went, what happened."""

from __future__ import annotations

import reflex as rx

from spyglass.pages.billing import bill_panel
from spyglass.pages.layout import layout
from spyglass.pages.tasks import TEXT_WIDTH, progress_bar, status_badge
from spyglass.pages.widgets import (
    choice_select,
    command_line,
    confirm_dialog,
    download_link,
    loading,
    not_found,
    screen_reader_text,
    scroll_table,
)
from spyglass.states.auth import AuthState
from spyglass.states.task_detail import (
    KIND_OPTIONS,
    LEVEL_OPTIONS,
    EventRow,
    InputFile,
    TaskDetailState,
)
from spyglass.states.timeline import Bar

#: Each step state: its icon and colour (Radix scales, step 9 on a gray-4 track).
STATE_LOOK = {
    "done": ("circle_check", "green"),
    "running": ("loader", "blue"),
    "waiting": ("circle", "gray"),
    "failed": ("circle_x", "red"),
    "stopped": ("circle_stop", "orange"),
    "not run": ("circle_dashed", "gray"),
}
LEVEL_COLORS = {"error": "red", "warning": "amber", "success": "green", "debug": "gray"}


def _state_icon(state: rx.Var | str) -> rx.Component:
    return rx.match(
        state,
        *[
            (k, rx.icon(icon, size=16, color=f"var(--{color}-11)", aria_hidden="true"))
            for k, (icon, color) in STATE_LOOK.items()
        ],
        rx.icon("circle", size=16, aria_hidden="true"),
    )


def _state_color(state: rx.Var | str) -> rx.Var:
    return rx.match(state, *[(k, c) for k, (_, c) in STATE_LOOK.items()], "gray")


def _bar(bar: Bar) -> rx.Component:
    """One step: its name and state, a bar on the run's time axis, and its figures."""
    return rx.box(
        rx.hstack(
            _state_icon(bar.state),
            rx.text(bar.label, size="2", weight="medium"),
            rx.cond(
                TaskDetailState.is_tool,
                rx.text("(", bar.key, ")", size="1", color_scheme="gray"),
            ),
            rx.badge(
                bar.state,
                color_scheme=_state_color(bar.state),
                variant="soft",
                high_contrast=True,
                size="1",
                data_testid="step-state",
            ),
            rx.spacer(),
            rx.text(
                rx.cond(bar.duration != "", bar.duration, "–"),
                size="2",
                data_testid="step-duration",
            ),
            align="center",
            spacing="2",
            wrap="wrap",
            width="100%",
        ),
        rx.box(
            rx.box(
                position="absolute",
                top="0",
                left=bar.left,
                width=bar.span,
                height="100%",
                border_radius="3px",
                background=rx.match(
                    bar.state,
                    *[(k, f"var(--{c}-9)") for k, (_, c) in STATE_LOOK.items()],
                    "var(--gray-9)",
                ),
                data_testid="timeline-bar",
            ),
            position="relative",
            height="10px",
            width="100%",
            border_radius="3px",
            background="var(--gray-4)",
            margin_y="4px",
            title=bar.summary,
            aria_hidden="true",
        ),
        rx.text(
            rx.cond(bar.wait != "", rx.text("waited ", bar.wait, " before it", as_="span"), ""),
            rx.cond((bar.wait != "") & (bar.retries != ""), " · ", ""),
            rx.cond(bar.retries != "", bar.retries, ""),
            size="1",
            color_scheme="gray",
            data_testid="step-wait",
        ),
        screen_reader_text(bar.summary),
        role="listitem",
        width="100%",
        padding_y="4px",
        data_testid="timeline-row",
        data_key=bar.key,
        data_state=bar.state,
        data_duration_ms=bar.duration_ms,
        data_wait_ms=bar.wait_ms,
        data_attempts=bar.attempts,
    )


def _time_spent() -> rx.Component:
    return rx.vstack(
        rx.heading("Where the time went", size="4", as_="h2"),
        rx.cond(
            rx.Var.create(TaskDetailState.bars).length() == 0,
            rx.text("Nothing has run yet.", size="2", color_scheme="gray", data_testid="no-steps"),
            rx.vstack(
                rx.text(
                    rx.cond(
                        TaskDetailState.total_time != "",
                        rx.text(
                            "From queued to ",
                            rx.cond(TaskDetailState.task.terminal, "the end", "now"),
                            ": ",
                            rx.text.strong(TaskDetailState.total_time),
                            as_="span",
                        ),
                        "",
                    ),
                    rx.cond(
                        TaskDetailState.attempts_text != "",
                        rx.text(" · ", TaskDetailState.attempts_text, as_="span"),
                        "",
                    ),
                    size="2",
                    data_testid="time-total",
                ),
                rx.box(
                    rx.foreach(TaskDetailState.bars, _bar),
                    role="list",
                    aria_label="Steps of the run",
                    width="100%",
                ),
                width="100%",
                spacing="1",
            ),
        ),
        width="100%",
        spacing="2",
        data_testid="time-spent",
    )


def _event(row: EventRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.seq),
        rx.table.cell(rx.text(row.time, size="1")),
        rx.table.cell(
            rx.badge(
                row.type_label,
                variant="outline",
                color_scheme=rx.match(row.level, *LEVEL_COLORS.items(), "indigo"),
            )
        ),
        rx.table.cell(rx.text(row.message, max_width=TEXT_WIDTH)),
        data_testid="timeline-event",
        data_level=row.level,
        data_kind=row.kind,
        data_event_type=row.event_type,
    )


def _events() -> rx.Component:
    return rx.vstack(
        rx.heading("Events", size="4", as_="h2"),
        rx.hstack(
            choice_select(
                LEVEL_OPTIONS,
                label="Level",
                value=TaskDetailState.level_filter,
                on_change=TaskDetailState.set_level_filter,
                testid="filter-level",
            ),
            choice_select(
                KIND_OPTIONS,
                label="Type",
                value=TaskDetailState.kind_filter,
                on_change=TaskDetailState.set_kind_filter,
                testid="filter-type",
            ),
            rx.text(TaskDetailState.events_label, size="2", data_testid="events-count"),
            rx.spacer(),
            rx.hstack(
                rx.icon("download", size=16, aria_hidden="true"),
                rx.text("Download the whole log:", size="2"),
                download_link("JSON Lines", TaskDetailState.log_jsonl, testid="download-jsonl"),
                download_link("CSV", TaskDetailState.log_csv, testid="download-csv"),
                align="center",
                spacing="2",
            ),
            align="center",
            wrap="wrap",
            spacing="3",
            width="100%",
        ),
        rx.cond(
            rx.Var.create(TaskDetailState.events).length() == 0,
            rx.text("No events to show.", color_scheme="gray", data_testid="events-empty"),
            scroll_table(
                rx.table.header(
                    rx.table.row(
                        *[
                            rx.table.column_header_cell(h)
                            for h in ("#", "Time (UTC)", "Type", "Message")
                        ]
                    )
                ),
                rx.table.body(rx.foreach(TaskDetailState.events, _event)),
                label="Events",
            ),
        ),
        width="100%",
        spacing="2",
    )


def _input_file(f: InputFile) -> rx.Component:
    return rx.hstack(
        rx.icon("file_spreadsheet", size=16, aria_hidden="true"),
        rx.text(f.label, ": ", size="2", color_scheme="gray"),
        rx.text(rx.text.strong(f.filename), size="2", data_testid="input-file"),
        rx.text(f.size, size="1", color_scheme="gray"),
        align="center",
        spacing="1",
        wrap="wrap",
    )


def _identity() -> rx.Component:
    """What this run is: its tool or job, its input, its id and its times."""
    task = TaskDetailState.task
    return rx.vstack(
        rx.hstack(
            rx.heading(
                rx.cond(task.input_name != "", task.input_name, task.title),
                size="5",
                as_="h2",
                data_testid="task-heading",
            ),
            status_badge(task),
            align="center",
            wrap="wrap",
        ),
        rx.cond(task.input_name != "", rx.text(task.title, size="2", data_testid="task-title")),
        rx.foreach(TaskDetailState.inputs, _input_file),
        rx.cond(
            task.detail != "", rx.text("Input: ", task.detail, size="2", data_testid="task-detail")
        ),
        rx.text("Task ", rx.code(task.task_id), size="2"),
        progress_bar(task),
        rx.hstack(
            rx.cond(
                task.started != "",
                rx.text("Started ", task.started, " UTC", size="2", data_testid="task-started"),
            ),
            rx.cond(task.took != "", rx.text(task.took, size="2", data_testid="task-took")),
            rx.cond(
                task.eta != "",
                rx.text(task.eta, size="2", color_scheme="blue", data_testid="task-eta"),
            ),
            rx.cond(
                task.scheduled != "",
                rx.text(task.scheduled, size="2", data_testid="task-scheduled"),
            ),
            spacing="3",
            wrap="wrap",
        ),
        width="100%",
        spacing="2",
    )


def _outcome() -> rx.Component:
    """The latest message; for a failure: what went wrong, where, and what to do."""
    task = TaskDetailState.task
    return rx.cond(
        TaskDetailState.error_text != "",
        rx.callout.root(
            rx.callout.icon(rx.icon("triangle_alert")),
            rx.vstack(
                rx.text(rx.text.strong(TaskDetailState.error_text), data_testid="task-message"),
                rx.cond(
                    TaskDetailState.failed_step != "",
                    rx.text(
                        "Where it stopped: ",
                        TaskDetailState.failed_step,
                        size="2",
                        data_testid="failed-step",
                    ),
                ),
                rx.text(TaskDetailState.remedy, size="2", data_testid="remedy"),
                spacing="1",
            ),
            color_scheme="red",
            width="100%",
            data_testid="failure",
        ),
        rx.text(task.message, data_testid="task-message"),
    )


def _actions() -> rx.Component:
    """The results link for anyone who reads the task; the changes (cancel, retry, delete)
    for anyone but a viewer (the server checks each again: `access.can_act`)."""
    task = TaskDetailState.task
    return rx.hstack(
        rx.cond(
            (task.tool_id != "") & (task.status == "COMPLETED"),
            rx.link(
                rx.button("Open the results", data_testid="open-results"),
                href="/task/" + task.task_id + "/results",
            ),
        ),
        rx.cond(AuthState.can_change, _changes()),
        wrap="wrap",
        spacing="2",
    )


def _changes() -> rx.Component:
    task = TaskDetailState.task
    return rx.hstack(
        rx.cond(
            ~task.terminal,
            confirm_dialog(
                rx.button(
                    "Cancel",
                    color_scheme="orange",
                    variant="soft",
                    high_contrast=True,
                    data_testid="cancel",
                ),
                title="Cancel this task?",
                description=(
                    "It stops where it is; what it did so far is kept. Retry it later to start "
                    "again."
                ),
                confirm="Cancel the task",
                keep="Keep it running",
                on_confirm=TaskDetailState.cancel,
                testid="cancel",
                color_scheme="orange",
            ),
        ),
        rx.cond(
            TaskDetailState.can_retry,
            rx.cond(
                TaskDetailState.needs_new_file,
                confirm_dialog(
                    rx.button("Retry…", data_testid="retry"),
                    title="Run it again with another file?",
                    description=rx.vstack(
                        rx.text(TaskDetailState.error_text),
                        rx.text("Running it again on the same file fails the same way."),
                        spacing="2",
                    ),
                    confirm="Retry with the same file",
                    keep="Keep as it is",
                    on_confirm=TaskDetailState.retry,
                    testid="retry",
                    color_scheme="gray",
                    extra=rx.link(
                        rx.button("Choose another file", data_testid="choose-file"),
                        href=TaskDetailState.new_task_href,
                    ),
                ),
                rx.button("Retry", on_click=TaskDetailState.retry, data_testid="retry"),
            ),
        ),
        rx.cond(
            (task.status == "UPLOAD_FAILED") | (task.status == "EXPIRED"),
            rx.link(
                rx.button("Start a new task", data_testid="start-again"),
                href=TaskDetailState.new_task_href,
            ),
        ),
        confirm_dialog(
            rx.button("Delete", color_scheme="red", variant="soft", data_testid="delete"),
            title="Delete this task?",
            description=rx.vstack(
                rx.cond(
                    ~task.terminal,
                    rx.text(
                        rx.text.strong("It is still running:"),
                        " it is cancelled first.",
                        data_testid="delete-running",
                    ),
                ),
                rx.text(
                    "Its timeline and its files (inputs and results) are deleted too. This "
                    "cannot be undone."
                ),
                spacing="2",
            ),
            confirm="Delete the task",
            keep="Keep it",
            on_confirm=TaskDetailState.delete,
            testid="delete",
        ),
        wrap="wrap",
        spacing="2",
    )


def _details() -> rx.Component:
    return rx.vstack(
        _identity(),
        _outcome(),
        _actions(),
        rx.divider(),
        _time_spent(),
        bill_panel(),
        rx.divider(),
        _events(),
        rx.heading("Follow it from a terminal", size="3", as_="h2"),
        rx.text(
            "With one of your client tokens (see the Tasks page), every change arrives "
            "as one JSON line:",
            size="2",
            color_scheme="gray",
        ),
        command_line(TaskDetailState.ws_hint, testid="ws-hint"),
        width="100%",
        spacing="4",
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
