"""`/admins/tasks/`: the admin dashboard (all tasks live, filters, actions, statistics, tokens)."""

from __future__ import annotations

import reflex as rx

from spyglass.pages.layout import layout
from spyglass.pages.tasks import progress_bar, status_badge
from spyglass.pages.tokens import token_panel
from spyglass.pages.widgets import command, labelled_select, loading, select
from spyglass.states.admin import (
    STATUS_CHOICES,
    AdminRow,
    AdminState,
    JobCommand,
    QueueRow,
    WorkerRow,
)
from spyglass.states.auth import AuthState


def _stat(label: str, value: rx.Var | int | str, testid: str) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(label, size="2", color_scheme="gray"),
            rx.heading(value, size="6", data_testid=testid),
            spacing="1",
        ),
        min_width="160px",
    )


def _filters() -> rx.Component:
    return rx.hstack(
        labelled_select(
            "Status",
            STATUS_CHOICES,
            value=AdminState.status_filter,
            on_change=AdminState.set_status_filter,
            testid="filter-status",
        ),
        labelled_select(
            "Job",
            AdminState.job_choices,
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
        rx.table.cell(rx.code(rx.Var.create(row.task_id).to(str)[:8])),
        rx.table.cell(rx.text(row.state_name, " · ", rx.text.strong(row.task_name))),
        rx.table.cell(row.owner, data_testid="task-owner"),
        rx.table.cell(status_badge(row)),
        rx.table.cell(progress_bar(row)),
        rx.table.cell(
            rx.text(rx.cond(row.error_message != "", row.error_message, row.message), size="2")
        ),
        rx.table.cell(
            rx.hstack(
                rx.cond(
                    ~row.terminal,
                    rx.button(
                        "Cancel",
                        size="1",
                        variant="soft",
                        color_scheme="orange",
                        on_click=AdminState.cancel(row.task_id),  # type: ignore[operator]  # @rx.event: see pages/__init__.py
                    ),
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
                rx.button(
                    "Delete",
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    on_click=AdminState.delete(row.task_id),  # type: ignore[operator]  # @rx.event: see pages/__init__.py
                ),
                spacing="1",
            )
        ),
        data_testid="admin-task-row",
        data_task_id=row.task_id,
        data_status=row.status,
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
        rx.heading("Workers", size="4"),
        rx.cond(
            AdminState.worker_mode,
            rx.cond(
                AdminState.has_workers,
                rx.box(
                    rx.table.root(
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
                        width="100%",
                    ),
                    overflow_x="auto",
                    width="100%",
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
        rx.heading("Waiting to run", size="3"),
        rx.cond(
            AdminState.has_waiting,
            rx.box(
                rx.table.root(
                    _header("Job", "Queue", "Waiting"),
                    rx.table.body(rx.foreach(AdminState.queues, _queue)),
                    width="100%",
                ),
                overflow_x="auto",
                width="100%",
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
        command(cmd.curl),
        command(cmd.wscat),
        width="100%",
        spacing="1",
    )


def _credits() -> rx.Component:
    return rx.vstack(
        rx.heading("Credits", size="4"),
        rx.form(
            rx.hstack(
                select(
                    AdminState.credit_emails,
                    name="email",
                    placeholder="User",
                    testid="credits-user",
                    label="User to grant credits to",
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
        on_mount=AdminState.load_credits,
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
        _workers_and_queues(),
        _filters(),
        rx.cond(
            AdminState.loading,
            loading("Loading…"),
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[
                            rx.table.column_header_cell(h)
                            for h in (
                                "Task",
                                "Job",
                                "User",
                                "Status",
                                "Progress",
                                "Message",
                                "Actions",
                            )
                        ]
                    )
                ),
                rx.table.body(rx.foreach(AdminState.rows, _row)),
                width="100%",
                class_name="sg-cards",
            ),
        ),
        rx.divider(),
        token_panel(admin=True),
        rx.divider(),
        _credits(),
        rx.divider(),
        rx.heading("Start jobs from a terminal", size="4"),
        rx.foreach(AdminState.commands, _command),
        rx.link(
            "Model portal (tasks, events, users, tokens)", href="/admin/task/list", is_external=True
        ),
        width="100%",
        spacing="4",
    )


def admin_page() -> rx.Component:
    page = layout(
        rx.cond(
            AdminState.forbidden | (AuthState.checked & ~AuthState.is_admin),
            rx.callout(
                "Forbidden: this page is for admins only.",
                icon="shield_alert",
                color_scheme="red",
                data_testid="forbidden",
            ),
            rx.cond(AuthState.is_admin, _dashboard()),
        ),
        title="Admin · tasks",
    )
    return rx.box(page, on_mount=AdminState.watch)
