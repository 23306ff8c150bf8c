"""State of the admin dashboard `/admins/tasks/`: every task of every user, live, with actions.

Every event checks on the server that the browser's user is an admin; a
non-admin's dashboard never loads any data.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import reflex as rx

from spyglass.auth.service import UserInfo, get_auth
from spyglass.errors import DomainError
from spyglass.states.auth import current_user
from spyglass.states.live import (
    CONNECTION_CHECK,
    LiveFeed,
    merge_page,
    supersede_watch,
)
from spyglass.states.tasks_page import TaskRow, live_row, task_row
from spyglass.tasks.access import is_admin
from spyglass.tasks.bus import TaskMessage, Topic
from spyglass.tasks.engine import TaskNotFound, get_engine
from spyglass.tasks.registry import registry
from spyglass.tasks.status import TaskStatus
from spyglass.tasks.view import QueueDepth, Stats, TaskQuery, TaskView, WorkerView

PAGE_SIZE = 100
#: At most one delta per ADMIN_PUSH_INTERVAL: the dashboard shows every user's tasks, and at
#: the tasks page's pace (0.05 s) an admin's clicks waited seconds behind the deltas while
#: jobs ran.
ADMIN_PUSH_INTERVAL = 0.25
#: Seconds between refreshes of the statistics while tasks change state.
STATS_INTERVAL = 0.5
ALL = "all"
STATUS_CHOICES = [ALL, *(s.value for s in TaskStatus)]


@dataclass
class AdminRow(TaskRow):
    owner: str = ""
    origin: str = ""


@dataclass
class WorkerRow:
    """A `spyglass worker` as the dashboard lists it."""

    name: str = ""
    host: str = ""
    pid: str = ""
    started: str = ""
    last_heartbeat: str = ""
    concurrency: str = ""
    queues: str = ""
    running: int = 0
    running_ids: str = ""


@dataclass
class QueueRow:
    """How many runs of one job wait in one queue."""

    job: str = ""
    queue: str = ""
    pending: int = 0


def _clock(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "–"


def worker_row(worker: WorkerView) -> WorkerRow:
    return WorkerRow(
        name=f"{worker.host or '?'}:{worker.pid or '?'}",
        host=worker.host or "–",
        pid=str(worker.pid or "–"),
        started=_clock(worker.started_at),
        last_heartbeat=_clock(worker.last_heartbeat),
        concurrency=str(worker.concurrency or "–"),
        queues=", ".join(worker.queues) or "all",
        running=len(worker.running),
        running_ids=", ".join(task_id[:8] for task_id in worker.running),
    )


def queue_row(depth: QueueDepth) -> QueueRow:
    return QueueRow(
        job=f"{depth.state_name} · {depth.task_name}", queue=depth.queue, pending=depth.pending
    )


@dataclass(frozen=True)
class Figures:
    """What the dashboard shows above the list, read together."""

    stats: Stats
    workers: list[WorkerRow]
    queues: list[QueueRow]


@dataclass
class UserCredits:
    email: str = ""
    credits: int = 0


@dataclass
class JobCommand:
    state_name: str = ""
    task_name: str = ""
    direct: bool = False
    curl: str = ""
    wscat: str = ""


class AdminState(rx.State):
    rows: list[AdminRow] = []
    loading: bool = True
    forbidden: bool = False
    status_filter: str = ALL
    job_filter: str = ALL
    user_filter: str = ALL
    job_choices: list[str] = [ALL]
    user_choices: list[str] = [ALL]
    running: int = 0
    queued: int = 0
    failed_24h: int = 0
    mean_run: str = "–"
    #: Worker mode: the `spyglass worker` processes that beat, and what waits per queue.
    worker_mode: bool = False
    workers: list[WorkerRow] = []
    queues: list[QueueRow] = []
    has_workers: bool = False
    has_waiting: bool = False
    commands: list[JobCommand] = []
    balances: list[UserCredits] = []
    credit_emails: list[str] = []
    _watch_gen: int = 0
    _emails: dict[int, str] = {}

    async def _admin(self) -> UserInfo | None:
        user = await current_user(self)
        return user if is_admin(user) else None

    def _query(self) -> TaskQuery:
        owner = None
        if self.user_filter != ALL:
            owner = next((i for i, e in self._emails.items() if e == self.user_filter), -1)
        return TaskQuery(
            statuses=(TaskStatus(self.status_filter),) if self.status_filter != ALL else (),
            task_name=self.job_filter if self.job_filter != ALL else None,
            owner_id=owner,
        )

    def _matches(self, payload: dict[str, Any], owner_id: int | None) -> bool:
        flt = self._query()
        return (
            (not flt.statuses or payload["status"] in flt.statuses)
            and (flt.task_name is None or payload["task_name"] == flt.task_name)
            and (flt.owner_id is None or owner_id == flt.owner_id)
        )

    def _row(self, task: TaskView) -> AdminRow:
        return self._owned(task_row(task), task.owner_id, task.origin)

    def _owned(self, base: TaskRow, owner_id: int | None, origin: str) -> AdminRow:
        owner = self._emails.get(owner_id, f"user {owner_id}") if owner_id else "(direct)"
        return AdminRow(**vars(base), owner=owner, origin=origin)

    async def _refresh_stats(self) -> Figures:
        engine = get_engine()
        return Figures(
            stats=await engine.stats(),
            workers=[worker_row(w) for w in await engine.workers()],
            queues=[queue_row(d) for d in await engine.queue_depth()],
        )

    def _apply_stats(self, figures: Figures) -> None:
        stats = figures.stats
        self.worker_mode = get_engine().worker_mode
        self.workers, self.queues = figures.workers, figures.queues
        self.has_workers, self.has_waiting = bool(figures.workers), bool(figures.queues)
        self.running = stats.running
        self.queued = stats.queued
        self.failed_24h = stats.failed_24h
        mean = stats.mean_run_ms
        self.mean_run = "–" if mean is None else f"{mean / 1000:.2f} s"

    @rx.event(background=True)
    async def watch(self) -> None:
        async with self:
            generation, token = supersede_watch(self)
            host = self.router.headers.host or "localhost:3000"
            admin = await self._admin()
            if admin is None:
                self.forbidden = True
                self.loading = False
                self.rows = []
                return
            self.forbidden = False
            emails = {u.id: u.email for u in await get_auth().list_users()}
            self._set_emails(emails)
            self.job_choices = [ALL, *sorted({s.task_name for s in registry.all()})]
            self.commands = _commands(host)
            query = self._query()
        engine = get_engine()
        sub = engine.subscribe(Topic())
        try:
            page = await engine.list_tasks(admin, query, limit=PAGE_SIZE)
            first = await self._refresh_stats()
            async with self:
                if self._watch_gen != generation:
                    return
                self.rows = [self._row(task) for task in page.tasks]
                self._apply_stats(first)
                self.loading = False
            loop = asyncio.get_running_loop()
            feed = LiveFeed(sub, token)
            stats_at = loop.time()
            stats_due = False
            while True:
                wait = CONNECTION_CHECK
                if stats_due:  # a status changed: refresh the counters within STATS_INTERVAL
                    wait = max(0.0, stats_at + STATS_INTERVAL - loop.time())
                batch = await feed.next(wait)
                if batch is None:
                    return
                stats_due = (
                    stats_due
                    or any(m.payload.get("type") != "event" and not m.droppable for m in batch)
                    # Workers beat without any task changing: their list stays fresh too.
                    or (engine.worker_mode and loop.time() - stats_at >= CONNECTION_CHECK)
                )
                stats: Figures | None = None
                if stats_due and loop.time() - stats_at >= STATS_INTERVAL:
                    stats = await self._refresh_stats()
                    stats_at = loop.time()
                    stats_due = False
                if not batch and stats is None:
                    continue
                new_owners = {m.owner_id for m in batch if m.owner_id is not None} - set(emails)
                if new_owners:  # a user registered since the page loaded
                    emails = {u.id: u.email for u in await get_auth().list_users()}
                async with self:
                    if self._watch_gen != generation:
                        return
                    if new_owners:
                        self._set_emails(emails)
                    self._apply_batch(batch)
                    if stats is not None:
                        self._apply_stats(stats)
                await asyncio.sleep(ADMIN_PUSH_INTERVAL)
        finally:
            sub.close()

    def _set_emails(self, emails: dict[int, str]) -> None:
        self._emails = emails
        self.user_choices = [ALL, *sorted(emails.values())]

    def _apply_batch(self, batch: list[Any]) -> None:
        def make_row(msg: TaskMessage, old: AdminRow | None) -> AdminRow:
            return self._owned(live_row(msg, old), msg.owner_id, old.origin if old else "")

        self.rows = merge_page(
            self.rows,
            batch,
            make_row=make_row,
            keeps=lambda msg: self._matches(msg.payload, msg.owner_id),
            add_new=True,
            limit=PAGE_SIZE,
        )

    # -- credits -----------------------------------------------------------
    @rx.event
    async def load_credits(self, _open: bool = True) -> None:
        await self._load_credits()

    async def _load_credits(self) -> None:
        if await self._admin() is None:
            self.balances = []
            return
        users = await get_auth().list_users()
        self.balances = [UserCredits(email=u.email, credits=u.credits) for u in users]
        self.credit_emails = [u.email for u in users]

    @rx.event
    async def grant_credits(self, form: dict[str, Any]) -> Any:
        if await self._admin() is None:
            return rx.toast.error("Admins only.")
        email = str(form.get("email") or "").strip().lower()
        try:
            amount = int(str(form.get("amount") or "0"))
        except ValueError:
            amount = 0
        if not 1 <= amount <= 1_000_000:
            return rx.toast.error("Grant between 1 and 1,000,000 credits.")
        user = await get_auth().find_user(email)
        if user is None:
            return rx.toast.error("No user with that email.")
        balance = await get_auth().add_credits(user.id, amount)
        await self._load_credits()
        return rx.toast.success(f"{email} now has {balance} credits.")

    # -- filters -----------------------------------------------------------
    @rx.event
    def set_status_filter(self, value: str) -> Any:
        self.status_filter = value if value in STATUS_CHOICES else ALL
        return AdminState.watch

    @rx.event
    def set_job_filter(self, value: str) -> Any:
        self.job_filter = value
        return AdminState.watch

    @rx.event
    def set_user_filter(self, value: str) -> Any:
        self.user_filter = value
        return AdminState.watch

    # -- actions -------------------------------------------------------------
    @rx.event
    async def cancel(self, task_id: str) -> Any:
        if await self._admin() is None:
            return rx.toast.error("Admins only.")
        if await get_engine().cancel(task_id):
            return rx.toast.info("Cancelling…")
        return rx.toast.warning("That task is not running.")

    @rx.event
    async def retry(self, task_id: str) -> Any:
        if await self._admin() is None:
            return rx.toast.error("Admins only.")
        try:
            task = await get_engine().retry(task_id)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        return rx.toast.success(f"Retrying as {task.id[:8]}")

    @rx.event
    async def delete(self, task_id: str) -> Any:
        if await self._admin() is None:
            return rx.toast.error("Admins only.")
        try:
            await get_engine().delete(task_id)
        except TaskNotFound:
            return rx.toast.error("Not found.")
        return rx.toast.success("Deleted.")


def _commands(host: str) -> list[JobCommand]:
    """Ready-to-copy curl and wscat lines for every job (token lines use a placeholder)."""
    out = []
    for spec in registry.all():
        name = spec.aliases[0] if spec.aliases else spec.state_name
        body = ""
        if spec.default_args is not None:
            args = json.dumps(spec.default_args.model_dump(mode="json"))
            body = f" -H 'Content-Type: application/json' -d '{args}'"
        if spec.direct and not spec.needs_account:
            curl = f"curl -X POST http://{host}/api/{name}/task/start/{spec.task_name}{body}"
            wscat = f"wscat -c ws://{host}/ws/{name}/task/ws/<task_id>"
        elif spec.is_static:
            curl = (
                f"curl -X POST http://{host}/api/{name}/tasks/<client_token>/start/"
                f"{spec.task_name}{body}"
            )
            wscat = f"wscat -c ws://{host}/ws/{name}/tasks/<client_token>"
        else:
            curl = "(an instance job: start it from its page)"
            wscat = f"wscat -c ws://{host}/ws/{name}/tasks/<client_token>"
        out.append(JobCommand(spec.state_name, spec.task_name, spec.direct, curl, wscat))
    return out
