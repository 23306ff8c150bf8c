"""`/admins/tasks/`: the admin dashboard (all tasks live, filters, actions, statistics, tokens)."""

from __future__ import annotations

from typing import Any

import reflex as rx

from spyglass.pages.layout import layout
from spyglass.pages.tasks import (
    NAME_WIDTH,
    TEXT_WIDTH,
    cancel_button,
    progress_bar,
    run_cell,
    status_badge,
    time_cell,
)
from spyglass.pages.tokens import token_panel
from spyglass.pages.widgets import (
    choice_select,
    command_line,
    confirm_dialog,
    dialog_description,
    labelled_select,
    loading,
    screen_reader_text,
    scroll_table,
    select,
)
from spyglass.states.admin import (
    AdminRow,
    AdminState,
    JobCommand,
    JobFigures,
    QueueRow,
    WorkerRow,
)
from spyglass.states.auth import AuthState
from spyglass.states.tasks_page import STATUS_OPTIONS

#: Chart colours (Radix indigo, green and red, step 9): readable on white and on gray.
STARTED, COMPLETED, FAILED = "#3e63dd", "#30a46c", "#e5484d"


def _stat(label: str, value: rx.Var | int | str, testid: str) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(label, size="2", color_scheme="gray"),
            rx.text(value, size="6", weight="bold", data_testid=testid),
            spacing="1",
        ),
        min_width="160px",
    )


def _filters() -> rx.Component:
    return rx.hstack(
        choice_select(
            STATUS_OPTIONS,
            label="Status",
            value=AdminState.status_filter,
            on_change=AdminState.set_status_filter,
            testid="filter-status",
        ),
        choice_select(
            AdminState.job_choices,
            label="Job",
            value=AdminState.job_filter,
            on_change=AdminState.set_job_filter,
            testid="filter-job",
        ),
        labelled_select(
            "User",
            AdminState.user_choices,
            value=AdminState.user_filter,
            on_change=AdminState.set_user_filter,
            testid="filter-user",
        ),
        align="center",
        wrap="wrap",
        spacing="2",
    )


def _row(row: AdminRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.link(
                rx.code(rx.Var.create(row.task_id).to(str)[:8]),
                href="/tasks/" + row.task_id,
                aria_label="Open task " + row.task_id,
                data_testid="task-link",
            )
        ),
        rx.table.cell(run_cell(row)),
        rx.table.cell(row.owner, data_testid="task-owner"),
        rx.table.cell(status_badge(row)),
        rx.table.cell(progress_bar(row)),
        rx.table.cell(time_cell(row)),
        rx.table.cell(
            rx.text(
                rx.cond(row.error_message != "", row.error_message, row.message),
                size="2",
                max_width=TEXT_WIDTH,
            )
        ),
        rx.table.cell(
            rx.cond(AdminState.may_act, _actions(row), rx.text("–", color_scheme="gray"))
        ),
        data_testid="admin-task-row",
        data_task_id=row.task_id,
        # React keys a row by its task, not its place: a task arriving on top must not hand
        # an open Cancel or Delete dialog (and what it acts on) to another row.
        key=row.task_id,
        data_status=row.status,
    )


def _actions(row: AdminRow) -> rx.Component:
    """Cancel, retry, delete: for admins and operators (a viewer reads only)."""
    return rx.hstack(
        rx.cond(
            ~row.terminal,
            cancel_button(row, AdminState.cancel(row.task_id)),  # type: ignore[operator]  # @rx.event: see pages/__init__.py
        ),
        rx.cond(
            (row.status == "FAILED") | (row.status == "CANCELLED"),
            rx.button(
                "Retry",
                size="1",
                variant="soft",
                on_click=AdminState.retry(row.task_id),  # type: ignore[operator]  # @rx.event: see pages/__init__.py
            ),
        ),
        confirm_dialog(
            rx.button(
                "Delete",
                size="1",
                variant="soft",
                color_scheme="red",
                aria_label="Delete " + row.title,
            ),
            title="Delete this task?",
            description=rx.vstack(
                rx.text(
                    rx.text.strong(rx.cond(row.input_name != "", row.input_name, row.title)),
                    " of ",
                    row.owner,
                    ", with its timeline and files. This cannot be undone.",
                ),
                rx.cond(
                    ~row.terminal,
                    rx.text(
                        rx.text.strong("It is still running:"),
                        " it is cancelled first.",
                    ),
                ),
                spacing="2",
            ),
            confirm="Delete the task",
            on_confirm=AdminState.delete(row.task_id),  # type: ignore[operator]  # @rx.event: see pages/__init__.py
            testid="delete",
        ),
        spacing="1",
    )


def _header(*names: str) -> rx.Component:
    return rx.table.header(rx.table.row(*[rx.table.column_header_cell(n) for n in names]))


def _worker(worker: WorkerRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(worker.host),
        rx.table.cell(worker.pid),
        rx.table.cell(worker.started),
        rx.table.cell(worker.last_heartbeat, data_testid="worker-heartbeat"),
        rx.table.cell(worker.concurrency),
        rx.table.cell(worker.queues),
        rx.table.cell(
            rx.text(
                worker.running, " ", rx.text(worker.running_ids, size="1", color_scheme="gray")
            ),
            data_testid="worker-running",
        ),
        data_testid="worker-row",
        data_pid=worker.pid,
    )


def _activity_chart(title: str, data: Any, totals: Any, step: str, testid: str) -> rx.Component:
    """Started, completed and failed per bucket: bars side by side, their totals in words."""
    return rx.card(
        rx.vstack(
            rx.heading(title, size="3", as_="h3"),
            rx.text(totals, " (", step, ")", size="2", data_testid=f"{testid}-totals"),
            rx.box(
                rx.recharts.bar_chart(
                    rx.recharts.cartesian_grid(stroke_dasharray="3 3"),
                    rx.recharts.x_axis(data_key="time", tick={"fontSize": 11}, min_tick_gap=16),
                    rx.recharts.y_axis(allow_decimals=False, tick={"fontSize": 11}, width=32),
                    rx.recharts.graphing_tooltip(),
                    rx.recharts.legend(),
                    rx.recharts.bar(data_key="started", name="Started", fill=STARTED),
                    rx.recharts.bar(data_key="completed", name="Completed", fill=COMPLETED),
                    rx.recharts.bar(data_key="failed", name="Failed", fill=FAILED),
                    data=data,
                    width="100%",
                    height=220,
                ),
                screen_reader_text(title, ": ", totals),
                width="100%",
                aria_hidden="false",
            ),
            width="100%",
            spacing="2",
        ),
        width="100%",
        min_width="280px",
        flex="1 1 420px",
        data_testid=testid,
    )


def _job_row(job: JobFigures) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.text(job.job, max_width=NAME_WIDTH)),
        rx.table.cell(job.ended, data_testid="job-ended"),
        rx.table.cell(job.failed, data_testid="job-failed"),
        rx.table.cell(job.failure_rate, data_testid="job-failure-rate"),
        rx.table.cell(job.p50, data_testid="job-p50"),
        rx.table.cell(job.p95, data_testid="job-p95"),
        data_testid="job-figures",
        data_task_name=job.task_name,
    )


def _activity() -> rx.Component:
    """At a glance: what started, completed and failed lately, and how each job runs."""
    return rx.vstack(
        rx.heading("Activity", size="4", as_="h2"),
        rx.flex(
            _activity_chart(
                "Last hour",
                AdminState.activity_hour,
                AdminState.hour_totals,
                "per minute",
                "chart-hour",
            ),
            _activity_chart(
                "Last 24 hours",
                AdminState.activity_day,
                AdminState.day_totals,
                "per 15 minutes",
                "chart-day",
            ),
            wrap="wrap",
            gap="3",
            width="100%",
        ),
        rx.heading("Jobs over the last 24 hours", size="3", as_="h3"),
        rx.cond(
            rx.Var.create(AdminState.jobs).length() == 0,
            rx.text("No run has ended in the last 24 hours.", size="2", data_testid="jobs-empty"),
            scroll_table(
                _header(
                    "Job",
                    "Runs ended",
                    "Failed",
                    "Failure rate",
                    "p50 run time",
                    "p95 run time",
                ),
                rx.table.body(rx.foreach(AdminState.jobs, _job_row)),
                label="Jobs over the last 24 hours",
            ),
        ),
        width="100%",
        spacing="3",
        data_testid="activity",
    )


def _bulk_actions() -> rx.Component:
    """Cancel or delete every task the filters show, after a confirmation with the count."""
    return rx.hstack(
        rx.button(
            "Cancel active…",
            size="2",
            variant="soft",
            color_scheme="orange",
            high_contrast=True,
            on_click=AdminState.ask_bulk("cancel"),  # type: ignore[operator]  # @rx.event: see pages/__init__.py
            data_testid="bulk-cancel",
        ),
        rx.button(
            "Delete finished…",
            size="2",
            variant="soft",
            color_scheme="red",
            on_click=AdminState.ask_bulk("delete"),  # type: ignore[operator]  # @rx.event: see pages/__init__.py
            data_testid="bulk-delete",
        ),
        rx.alert_dialog.root(
            rx.alert_dialog.content(
                rx.alert_dialog.title(
                    rx.cond(AdminState.bulk_action == "cancel", "Cancel tasks", "Delete tasks")
                ),
                dialog_description(
                    rx.cond(
                        AdminState.bulk_count > 0,
                        rx.text(
                            rx.cond(AdminState.bulk_action == "cancel", "Cancel ", "Delete "),
                            rx.text.strong(
                                AdminState.bulk_count,
                                rx.cond(
                                    AdminState.bulk_action == "cancel",
                                    " queued or running ",
                                    " finished ",
                                ),
                                rx.cond(AdminState.bulk_count == 1, "task", "tasks"),
                                data_testid="bulk-count",
                            ),
                            " of every user that the filters show",
                            rx.cond(
                                AdminState.bulk_action == "cancel",
                                "? They stop where they are.",
                                ", with their timelines and files? This cannot be undone.",
                            ),
                        ),
                        rx.text("No task the filters show is affected.", data_testid="bulk-none"),
                    )
                ),
                rx.hstack(
                    rx.alert_dialog.cancel(
                        rx.button(
                            "Keep them",
                            variant="soft",
                            color_scheme="gray",
                            data_testid="bulk-keep",
                        )
                    ),
                    rx.alert_dialog.action(
                        rx.button(
                            rx.cond(
                                AdminState.bulk_action == "cancel", "Cancel them", "Delete them"
                            ),
                            color_scheme="red",
                            disabled=AdminState.bulk_count == 0,
                            on_click=AdminState.run_bulk,
                            data_testid="bulk-confirm",
                        )
                    ),
                    justify="end",
                    spacing="2",
                    margin_top="12px",
                ),
            ),
            open=AdminState.bulk_action != "",
            on_open_change=AdminState.close_bulk,
        ),
        spacing="2",
        wrap="wrap",
    )


def _queue(queue: QueueRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(queue.job),
        rx.table.cell(queue.queue),
        rx.table.cell(queue.pending, data_testid="queue-pending"),
        data_testid="queue-row",
    )


def _workers_and_queues() -> rx.Component:
    """Where jobs run and what waits: each worker (worker mode) and the runs waiting per job
    and queue (both modes)."""
    return rx.vstack(
        rx.heading("Workers", size="4", as_="h2"),
        rx.cond(
            AdminState.worker_mode,
            rx.cond(
                AdminState.has_workers,
                scroll_table(
                    _header(
                        "Host",
                        "Process",
                        "Started",
                        "Last heartbeat",
                        "Slots",
                        "Queues",
                        "Running",
                    ),
                    rx.table.body(rx.foreach(AdminState.workers, _worker)),
                    label="Workers",
                ),
                rx.callout(
                    "No worker is running: queued tasks wait until one starts (spyglass worker).",
                    icon="triangle_alert",
                    color_scheme="orange",
                    data_testid="no-workers",
                ),
            ),
            rx.text(
                "Jobs run inside the web server (the inline executor).",
                size="2",
                data_testid="inline-executor",
            ),
        ),
        rx.heading("Waiting to run", size="3", as_="h3"),
        rx.cond(
            AdminState.has_waiting,
            scroll_table(
                _header("Job", "Queue", "Waiting"),
                rx.table.body(rx.foreach(AdminState.queues, _queue)),
                label="Runs waiting per job and queue",
            ),
            rx.text("Nothing is waiting.", size="2", data_testid="queues-empty"),
        ),
        width="100%",
        spacing="2",
        data_testid="workers-panel",
    )


def _command(cmd: JobCommand) -> rx.Component:
    return rx.vstack(
        rx.text(rx.text.strong(cmd.state_name, " · ", cmd.task_name), size="2"),
        command_line(cmd.curl),
        command_line(cmd.wscat),
        width="100%",
        spacing="1",
    )


def _credits() -> rx.Component:
    return rx.vstack(
        rx.heading("Credits", size="4", as_="h2"),
        rx.form(
            rx.hstack(
                select(
                    AdminState.credit_emails,
                    name="email",
                    placeholder="User",
                    label="User to grant credits to",
                    testid="credits-user",
                    on_open_change=AdminState.load_credits,
                ),
                rx.input(
                    name="amount",
                    type="number",
                    min=1,
                    placeholder="Credits",
                    aria_label="Credits to grant",
                    required=True,
                ),
                rx.button("Grant credits", type="submit"),
                align="center",
                wrap="wrap",
            ),
            on_submit=AdminState.grant_credits,
            reset_on_submit=True,
        ),
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    rx.table.column_header_cell("User"), rx.table.column_header_cell("Credits")
                )
            ),
            rx.table.body(
                rx.foreach(
                    AdminState.balances,
                    lambda b: rx.table.row(
                        rx.table.cell(b.email),
                        rx.table.cell(b.credits, data_testid="credits-balance"),
                        data_testid="credits-row",
                        data_email=b.email,
                    ),
                )
            ),
        ),
        width="100%",
        spacing="3",
    )


def _dashboard() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            _stat("Running", AdminState.running, "stat-running"),
            _stat("Queued", AdminState.queued, "stat-queued"),
            _stat("Failed (24 h)", AdminState.failed_24h, "stat-failed"),
            _stat("Mean run time (24 h)", AdminState.mean_run, "stat-mean"),
            wrap="wrap",
        ),
        _activity(),
        _workers_and_queues(),
        rx.heading("Tasks", size="4", as_="h2"),
        rx.hstack(
            _filters(),
            rx.spacer(),
            rx.cond(AdminState.may_act, _bulk_actions()),
            wrap="wrap",
            width="100%",
        ),
        rx.cond(
            AdminState.loading,
            loading("Loading…"),
            # On a phone each row becomes a card (class sg-cards, assets/spyglass.css).
            rx.table.root(
                _header(
                    "Task",
                    "Run",
                    "User",
                    "Status",
                    "Progress",
                    "Started (UTC)",
                    "Message",
                    "Actions",
                ),
                rx.table.body(rx.foreach(AdminState.rows, _row)),
                width="100%",
                class_name="sg-cards",
                aria_label="Tasks",
            ),
        ),
        # Users' tokens and credits, and the portal: admins only (operators and viewers
        # manage their own tokens on /tasks).
        rx.cond(
            AdminState.may_manage_users,
            rx.vstack(
                rx.divider(),
                token_panel(admin=True),
                rx.divider(),
                _credits(),
                width="100%",
                spacing="4",
            ),
        ),
        rx.divider(),
        rx.heading("Start jobs from a terminal", size="4", as_="h2"),
        rx.foreach(AdminState.commands, _command),
        rx.cond(
            AdminState.may_manage_users,
            rx.link(
                "Model portal (tasks, events, users, tokens)",
                href="/admin/task/list",
                is_external=True,
            ),
        ),
        rx.cond(
            AdminState.may_manage_users,
            rx.link("Audit log: who did what, when, from where", href="/admins/audit"),
        ),
        width="100%",
        spacing="4",
    )


def admin_page() -> rx.Component:
    page = layout(
        rx.cond(
            AdminState.forbidden | (AuthState.checked & ~AuthState.is_staff),
            rx.callout(
                "Forbidden: this page is for admins, operators and viewers.",
                icon="shield_alert",
                color_scheme="red",
                data_testid="forbidden",
            ),
            rx.cond(AuthState.is_staff, _dashboard()),
        ),
        title="Admin · tasks",
    )
    return rx.box(page)  # its data: `AdminState.watch`, the page's on_load
