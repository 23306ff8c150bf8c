"""State of the admin dashboard `/admins/tasks/`: every task of every user, live, with actions.

Every event checks on the server that the browser's user is an admin; a
non-admin's dashboard never loads any data.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import reflex as rx

from spyglass import audit
from spyglass.auth.service import UserInfo, get_auth
from spyglass.errors import DomainError
from spyglass.states.auth import current_user
from spyglass.states.display import duration_text, title_of
from spyglass.states.live import (
    CONNECTION_CHECK,
    LiveFeed,
    merge_page,
    supersede_watch,
)
from spyglass.states.tasks_page import (
    MOVING,
    Choice,
    TaskRow,
    input_names_needed,
    live_row,
    look_up_input_names,
    refresh_clocks,
    task_row,
    with_input_names,
)
from spyglass.tasks.access import acts_on_every_task, can_manage_users, reads_every_task
from spyglass.tasks.bus import TaskMessage, Topic
from spyglass.tasks.engine import TaskNotFound, get_engine
from spyglass.tasks.models import utcnow
from spyglass.tasks.registry import registry
from spyglass.tasks.status import ACTIVE_STATUSES, TERMINAL_STATUSES, TaskStatus
from spyglass.tasks.view import (
    ActivitySeries,
    JobRunStats,
    QueueDepth,
    Stats,
    TaskQuery,
    TaskView,
    WorkerView,
)
from spyglass.tools.catalogue import TOOLS

PAGE_SIZE = 100
#: Seconds between refreshes of the statistics while tasks change state.
STATS_INTERVAL = 0.5
#: Seconds between refreshes of the charts and per-job figures while tasks change state.
CHARTS_INTERVAL = 5.0
#: At most one delta per tab per this many seconds: the dashboard follows every user's
#: tasks, so it batches more than a user's page does (and answers clicks sooner).
ADMIN_PUSH_INTERVAL = 0.25
ALL = "all"
STATUS_CHOICES = [ALL, *(s.value for s in TaskStatus)]
#: The admin's bulk actions: what each does to the tasks the filters show.
BULK_ACTIONS = {
    "cancel": sorted(s.value for s in ACTIVE_STATUSES),
    "delete": sorted(s.value for s in TERMINAL_STATUSES),
}


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
        job=title_of(depth.state_name, depth.task_name), queue=depth.queue, pending=depth.pending
    )


@dataclass
class JobFigures:
    """One job's runs that ended in the last 24 hours."""

    job: str = ""
    task_name: str = ""
    ended: int = 0
    failed: int = 0
    failure_rate: str = ""
    p50: str = ""
    p95: str = ""


def activity_points(series: ActivitySeries, fmt: str = "%H:%M") -> list[dict[str, Any]]:
    """One chart point per bucket: when it begins (UTC) and what happened in it."""
    return [
        {"time": when.strftime(fmt), "started": s, "completed": c, "failed": f}
        for when, s, c, f in zip(
            series.buckets, series.started, series.completed, series.failed, strict=True
        )
    ]


def totals_text(series: ActivitySeries) -> str:
    return (
        f"{sum(series.started)} started, {sum(series.completed)} completed, "
        f"{sum(series.failed)} failed"
    )


def job_figures(stats: JobRunStats) -> JobFigures:
    rate = stats.failure_rate
    return JobFigures(
        job=title_of(stats.state_name, stats.task_name),
        task_name=stats.task_name,
        ended=stats.ended,
        failed=stats.failed,
        failure_rate="–" if rate is None else f"{rate:.0%}",
        p50="–" if stats.p50_ms is None else duration_text(stats.p50_ms / 1000),
        p95="–" if stats.p95_ms is None else duration_text(stats.p95_ms / 1000),
    )


@dataclass(frozen=True)
class Figures:
    """What the dashboard shows above the list, read together."""

    stats: Stats
    workers: list[WorkerRow]
    queues: list[QueueRow]


@dataclass(frozen=True)
class Charts:
    """The activity charts and the per-job figures, read together."""

    hour: ActivitySeries
    day: ActivitySeries
    jobs: list[JobFigures]


async def read_charts() -> Charts:
    engine = get_engine()
    now = utcnow()
    return Charts(
        hour=await engine.activity(since=now - timedelta(hours=1), until=now, bucket_seconds=60),
        day=await engine.activity(since=now - timedelta(days=1), until=now, bucket_seconds=900),
        jobs=[job_figures(j) for j in await engine.job_run_stats(since=now - timedelta(days=1))],
    )


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


#: What a viewer is told when the dashboard is asked to change a task.
ACTORS_ONLY = "Only admins and operators change tasks here."


class AdminState(rx.State):
    rows: list[AdminRow] = []
    loading: bool = True
    forbidden: bool = False
    #: Admins and operators get the action buttons; only admins credits and users.
    may_act: bool = False
    may_manage_users: bool = False
    status_filter: str = ALL
    job_filter: str = ALL
    user_filter: str = ALL
    job_choices: list[Choice] = [Choice(ALL, "Any job")]
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
    #: Started, completed and failed per minute over the last hour, per 15 minutes over the
    #: last day; per job over the day: runs, failures, run time at p50 and p95.
    activity_hour: list[dict[str, Any]] = []
    activity_day: list[dict[str, Any]] = []
    hour_totals: str = ""
    day_totals: str = ""
    jobs: list[JobFigures] = []
    #: A bulk action being confirmed (`cancel` | `delete`, or ""), and how many it affects.
    bulk_action: str = ""
    bulk_count: int = 0
    commands: list[JobCommand] = []
    balances: list[UserCredits] = []
    credit_emails: list[str] = []
    _watch_gen: int = 0
    _emails: dict[int, str] = {}

    async def _admin(self) -> UserInfo | None:
        """An admin: credits and users."""
        user = await current_user(self)
        return user if can_manage_users(user) else None

    async def _staff(self) -> UserInfo | None:
        """Who may watch the dashboard: admins, operators and viewers (they read every task)."""
        user = await current_user(self)
        return user if reads_every_task(user) else None

    async def _actor(self) -> UserInfo | None:
        """Who may cancel, retry and delete from here: admins and operators."""
        user = await current_user(self)
        return user if acts_on_every_task(user) else None

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

    def _apply_charts(self, charts: Charts) -> None:
        self.activity_hour = activity_points(charts.hour)
        self.activity_day = activity_points(charts.day)
        self.hour_totals = totals_text(charts.hour)
        self.day_totals = totals_text(charts.day)
        self.jobs = charts.jobs

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
            admin = await self._staff()
            if admin is None:
                self.forbidden = True
                self.loading = False
                self.rows = []
                return
            self.forbidden = False
            self.may_act = acts_on_every_task(admin)
            self.may_manage_users = can_manage_users(admin)
            emails = {u.id: u.email for u in await get_auth().list_users()}
            self._set_emails(emails)
            self.job_choices = job_choices()
            self.commands = _commands(host)
            query = self._query()
        engine = get_engine()
        sub = engine.subscribe(Topic())
        try:
            page = await engine.list_tasks(admin, query, limit=PAGE_SIZE)
            first = await self._refresh_stats()
            charts = await read_charts()
            async with self:
                if self._watch_gen != generation:
                    return
                self.rows = [self._row(task) for task in page.tasks]
                self._apply_stats(first)
                self._apply_charts(charts)
                self.loading = False
            engine.catch_up(sub, page.tasks)  # those running in another process
            loop = asyncio.get_running_loop()
            feed = LiveFeed(sub, token)
            stats_at = charts_at = loop.time()
            stats_due = charts_due = False
            names: dict[str, str] = {}
            running = any(r.status in MOVING for r in self.rows)
            while True:
                wait = CONNECTION_CHECK
                if stats_due:  # a status changed: refresh the counters within STATS_INTERVAL
                    wait = max(0.0, stats_at + STATS_INTERVAL - loop.time())
                elif charts_due:
                    wait = max(0.0, charts_at + CHARTS_INTERVAL - loop.time())
                batch = await feed.next(wait)
                if batch is None:
                    return
                changed = any(m.payload.get("type") != "event" and not m.droppable for m in batch)
                stats_due = (
                    stats_due
                    or changed
                    # Workers beat without any task changing: their list stays fresh too.
                    or (engine.worker_mode and loop.time() - stats_at >= CONNECTION_CHECK)
                )
                charts_due = charts_due or changed
                stats: Figures | None = None
                if stats_due and loop.time() - stats_at >= STATS_INTERVAL:
                    stats = await self._refresh_stats()
                    stats_at = loop.time()
                    stats_due = False
                fresh_charts: Charts | None = None
                if charts_due and loop.time() - charts_at >= CHARTS_INTERVAL:
                    fresh_charts = await read_charts()
                    charts_at = loop.time()
                    charts_due = False
                new_owners = {m.owner_id for m in batch if m.owner_id is not None} - set(emails)
                if new_owners:  # a user registered since the page loaded
                    emails = {u.id: u.email for u in await get_auth().list_users()}
                if not batch and stats is None and fresh_charts is None and not running:
                    continue  # nothing changed, and no clock to move on
                await look_up_input_names(input_names_needed(batch, names), names)
                async with self:
                    if self._watch_gen != generation:
                        return
                    if new_owners:
                        self._set_emails(emails)
                    if batch:
                        rows = self._merged(self.rows, batch)
                    else:  # nothing changed: running rows' clocks move on
                        rows = refresh_clocks(self.rows) or self.rows
                    self.rows = with_input_names(rows, names)
                    running = any(r.status in MOVING for r in self.rows)
                    if stats is not None:
                        self._apply_stats(stats)
                    if fresh_charts is not None:
                        self._apply_charts(fresh_charts)
                await asyncio.sleep(ADMIN_PUSH_INTERVAL)
        finally:
            sub.close()

    def _set_emails(self, emails: dict[int, str]) -> None:
        self._emails = emails
        self.user_choices = [ALL, *sorted(emails.values())]

    def _merged(self, rows: list[AdminRow], batch: list[Any]) -> list[AdminRow]:
        def make_row(msg: TaskMessage, old: AdminRow | None) -> AdminRow:
            return self._owned(live_row(msg, old), msg.owner_id, old.origin if old else "")

        return merge_page(
            rows,
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
        admin = await self._admin()
        if admin is None:
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
        detail = {"old": balance - amount, "new": balance, "granted": amount}
        await audit.record(self, admin, "user.credit_change", "user", user.id, detail)
        await self._load_credits()
        return rx.toast.success(f"{email} now has {balance} credits.")

    # -- filters -----------------------------------------------------------
    @rx.event
    def set_status_filter(self, value: str) -> Any:
        self.status_filter = value if value in STATUS_CHOICES else ALL
        return AdminState.watch

    @rx.event
    def set_job_filter(self, value: str) -> Any:
        self.job_filter = value if any(c.value == value for c in job_choices()) else ALL
        return AdminState.watch

    @rx.event
    def set_user_filter(self, value: str) -> Any:
        self.user_filter = value
        return AdminState.watch

    # -- actions -------------------------------------------------------------
    @rx.event
    async def cancel(self, task_id: str) -> Any:
        admin = await self._actor()
        if admin is None:
            return rx.toast.error(ACTORS_ONLY)
        if await get_engine().cancel(task_id):
            await audit.record(self, admin, "task.cancel", "task", task_id)
            return rx.toast.info("Cancelling…")
        return rx.toast.warning("That task is not running.")

    @rx.event
    async def retry(self, task_id: str) -> Any:
        admin = await self._actor()
        if admin is None:
            return rx.toast.error(ACTORS_ONLY)
        try:
            task = await get_engine().retry(task_id)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        await audit.record(self, admin, "task.retry", "task", task_id, {"new_task_id": task.id})
        return rx.toast.success(f"Retrying as {task.id[:8]}")

    @rx.event
    async def delete(self, task_id: str) -> Any:
        admin = await self._actor()
        if admin is None:
            return rx.toast.error(ACTORS_ONLY)
        try:
            files = await get_engine().delete(task_id)
        except TaskNotFound:
            return rx.toast.error("Not found.")
        await audit.record(self, admin, "task.delete", "task", task_id, {"files_deleted": files})
        return rx.toast.success("Deleted.")

    # -- bulk actions: on what the filters show, after a confirmation with the count -------
    def _bulk_query(self, action: str) -> TaskQuery | None:
        wanted = BULK_ACTIONS.get(action, [])
        flt = self._query()
        if flt.statuses:
            wanted = [s for s in wanted if s in {st.value for st in flt.statuses}]
        if not wanted:
            return None
        return TaskQuery(
            statuses=tuple(TaskStatus(s) for s in wanted),
            task_name=flt.task_name,
            owner_id=flt.owner_id,
        )

    @rx.event
    async def ask_bulk(self, action: str) -> Any:
        """Count what the bulk action would affect, then ask."""
        admin = await self._actor()
        if admin is None:
            return rx.toast.error(ACTORS_ONLY)
        if action not in BULK_ACTIONS:
            return None
        query = self._bulk_query(action)
        count = 0
        if query is not None:
            count = (await get_engine().list_tasks(admin, query, limit=1)).total
        self.bulk_count, self.bulk_action = count, action
        return None

    @rx.event
    def close_bulk(self, is_open: bool = False) -> None:
        if not is_open:
            self.bulk_action = ""

    @rx.event
    async def run_bulk(self) -> Any:
        action, self.bulk_action = self.bulk_action, ""
        admin = await self._actor()
        if admin is None:
            return rx.toast.error(ACTORS_ONLY)
        query = self._bulk_query(action)
        if query is None:
            return None
        engine = get_engine()
        detail: dict[str, Any] = {
            "statuses": [s.value for s in query.statuses],
            "owner_id": query.owner_id,
        }
        if action == "delete":
            async with audit.recording(self, admin, "tasks.bulk_delete", "tasks", detail):
                detail["count"] = deleted = await engine.delete_matching(admin, query)
            return rx.toast.success(f"Deleted {deleted} task{'s' if deleted != 1 else ''}.")
        ids: list[str] = []
        while True:  # every one first: the list changes as they end
            page = await engine.list_tasks(admin, query, limit=100, offset=len(ids))
            ids.extend(task.id for task in page.tasks)
            if not page.has_more or not page.tasks:
                break
        cancelled = 0
        detail.update(count=0, matched=len(ids))
        # One row when the loop ends, with what it did, even if it broke off half-way.
        async with audit.recording(self, admin, "tasks.bulk_cancel", "tasks", detail):
            for task_id in ids:  # asks each to stop; they end CANCELLED as their runners unwind
                cancelled += bool(await engine.cancel(task_id))
                detail["count"] = cancelled
        return rx.toast.info(f"Cancelling {cancelled} task{'s' if cancelled != 1 else ''}…")


def job_choices() -> list[Choice]:
    """The job filter's options: every tool and job by the name people use."""
    names: dict[str, str] = {t.id: t.name for t in TOOLS.values()}
    for spec in registry.all():
        names.setdefault(spec.task_name, spec.title)
    return [
        Choice(ALL, "Any job"),
        *sorted((Choice(k, v) for k, v in names.items()), key=lambda c: c.label.lower()),
    ]


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
