"""State of the `/tasks` page: the user's tasks, filtered and paged, kept live by the bus.

The page's `watch` event runs in the background for as long as its browser tab is
connected: it loads the current page of tasks once, then applies every change the
bus pushes, sending the browser at most one delta per `PUSH_INTERVAL`. Task data is
never polled; every `CONNECTION_CHECK` seconds it only asks Reflex whether the
tab is still open, and ends when it is not. A filter or page change restarts it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import reflex as rx

from spyglass.states.auth import current_user
from spyglass.states.live import (
    CONNECTION_CHECK,
    PUSH_INTERVAL,
    LiveFeed,
    merge_page,
    supersede_watch,
)
from spyglass.tasks.access import Viewer, can_see, owner_scope
from spyglass.tasks.bus import TaskMessage, Topic
from spyglass.tasks.engine import get_engine
from spyglass.tasks.messages import iso
from spyglass.tasks.registry import registry
from spyglass.tasks.status import TaskStatus
from spyglass.tasks.view import TaskQuery, TaskView
from spyglass.tools.catalogue import TOOLS

PAGE_SIZE = 20
#: Seconds between recounts of the filtered total while tasks change state.
COUNT_INTERVAL = 0.5
ALL = "all"
STATUS_CHOICES = [ALL, *(s.value for s in TaskStatus)]
TERMINAL = {s.value for s in TaskStatus if s.is_terminal}
#: Bulk delete choices: a name and the statuses it deletes.
BULK_DELETE = {
    "finished": sorted(TERMINAL),
    "COMPLETED": ["COMPLETED"],
    "FAILED": ["FAILED", "UPLOAD_FAILED", "EXPIRED"],
    "CANCELLED": ["CANCELLED"],
}


@dataclass
class TaskRow:
    task_id: str = ""
    state_name: str = ""
    task_name: str = ""
    tool_id: str = ""
    status: str = ""
    status_label: str = ""
    progress: float = 0.0
    percent: int = 0
    message: str = ""
    error_message: str = ""
    result: str = ""
    created_at: str = ""
    terminal: bool = False
    agents_total: int = 0
    agents_done: int = 0
    #: "Starts at …" for a run scheduled for later (`start_at` / `start_in`) still waiting.
    scheduled: str = ""


def scheduled_text(status: str, at: datetime | str | None) -> str:
    """What a waiting run scheduled for later says of its start (else nothing)."""
    if status != TaskStatus.PENDING.value or not at:
        return ""
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    return f"Starts at {when.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _label(status: str) -> str:
    try:
        return TaskStatus(status).label
    except ValueError:
        return status


def _result_text(result: Any) -> str:
    if result is None:
        return ""
    if isinstance(result, dict) and "executiveSummary" in result:
        summary = result["executiveSummary"]
        return str(summary.get("headline") or "Report ready")
    text = result if isinstance(result, str) else repr(result)
    return text if len(text) <= 200 else text[:197] + "…"


def _agents_done(data: dict[str, Any], status: str, total: int) -> int:
    checklist = data.get("data", {}).get("agents") if isinstance(data.get("data"), dict) else None
    if isinstance(checklist, dict):
        return sum(1 for state in checklist.values() if state == "completed")
    return total if status == TaskStatus.COMPLETED.value else 0


def task_row(task: TaskView) -> TaskRow:
    """A row of a task as the engine gives it."""
    done = len(task.agents) if task.status is TaskStatus.COMPLETED else 0
    return TaskRow(
        task_id=task.id,
        state_name=task.state_name,
        task_name=task.task_name,
        tool_id=task.tool_id or "",
        status=task.status.value,
        status_label=task.status.label,
        progress=task.progress,
        percent=int(task.progress),
        message=task.message or "",
        error_message=task.error_message or "",
        result=_result_text(task.result),
        created_at=iso(task.created_at) or "",
        terminal=task.is_terminal,
        agents_total=len(task.agents),
        agents_done=done,
        scheduled=scheduled_text(task.status.value, task.scheduled_at),
    )


def row_from(data: dict[str, Any]) -> TaskRow:
    """Build a row from a socket payload (a bus message)."""
    status = data["status"]
    created = data.get("created_at")
    agents = data.get("agents") or []
    return TaskRow(
        task_id=data.get("task_id") or data["id"],
        state_name=data["state_name"],
        task_name=data["task_name"],
        tool_id=data.get("tool_id") or "",
        status=status,
        status_label=_label(status),
        progress=float(data.get("progress") or 0.0),
        percent=int(data.get("progress") or 0),
        message=data.get("message") or "",
        error_message=data.get("error_message") or "",
        result=_result_text(data.get("result")),
        created_at=(iso(created) or "")
        if not isinstance(created, str) and created
        else (created or ""),
        terminal=status in TERMINAL,
        agents_total=len(agents),
        agents_done=_agents_done(data, status, len(agents)),
        scheduled=scheduled_text(status, data.get("scheduled_at")),
    )


def live_row(msg: TaskMessage, old: TaskRow | None) -> TaskRow:
    """A row from a bus message, keeping what only the stored row knows."""
    new = row_from(msg.payload)
    if old is not None:
        new.created_at = old.created_at
        if "data" not in msg.payload and not new.terminal:
            new.agents_done = old.agents_done
    else:
        new.created_at = msg.payload.get("timestamp") or ""
    return new


def kind_choices() -> list[str]:
    """What the kind filter offers: every tool, then every job name."""
    return [ALL, *TOOLS, *sorted({s.task_name for s in registry.all()} - set(TOOLS))]


class TasksPageState(rx.State):
    rows: list[TaskRow] = []
    loading: bool = True
    total: int = 0
    offset: int = 0
    status_filter: str = ALL
    kind_filter: str = ALL
    kinds: list[str] = [ALL]
    bulk_choice: str = "finished"
    confirm_bulk: bool = False
    _watch_gen: int = 0

    @rx.var
    def page_label(self) -> str:
        if self.total == 0:
            return "No tasks"
        last = min(self.offset + len(self.rows), self.total)
        return f"{self.offset + 1}–{last} of {self.total}"

    @rx.var
    def has_prev(self) -> bool:
        return self.offset > 0

    @rx.var
    def has_next(self) -> bool:
        return self.offset + PAGE_SIZE < self.total

    @rx.var
    def filtered(self) -> bool:
        return self.status_filter != ALL or self.kind_filter != ALL

    def _query(self) -> TaskQuery:
        return TaskQuery(
            statuses=(TaskStatus(self.status_filter),) if self.status_filter != ALL else (),
            task_name=self.kind_filter if self.kind_filter != ALL else None,
        )

    def _keeps(self, msg: TaskMessage) -> bool:
        payload = msg.payload
        return (self.status_filter == ALL or payload["status"] == self.status_filter) and (
            self.kind_filter == ALL or payload["task_name"] == self.kind_filter
        )

    @rx.event(background=True)
    async def watch(self) -> None:
        async with self:
            generation, token = supersede_watch(self)
            user = await current_user(self)
            self.kinds = kind_choices()
        if user is None:
            return  # the page's on_load sends the visitor to /login
        engine = get_engine()
        # Users see their own tasks; admins see everyone's.
        sub = engine.subscribe(Topic(owner_id=owner_scope(user)))
        try:
            async with self:
                query, offset = self._query(), self.offset
            page = await engine.list_tasks(user, query, limit=PAGE_SIZE, offset=offset)
            if not page.tasks and offset:  # the page emptied (deletes): back to the first page
                offset = 0
                page = await engine.list_tasks(user, query, limit=PAGE_SIZE)
            rows = [task_row(task) for task in page.tasks]
            async with self:
                if self._watch_gen != generation:
                    return
                self.rows, self.total, self.offset = rows, page.total, offset
                self.loading = False
            await self._follow(sub, token, generation, user, query, offset)
        finally:
            sub.close()

    async def _follow(
        self, sub: Any, token: str, generation: int, user: Viewer, query: TaskQuery, offset: int
    ) -> None:
        engine = get_engine()
        loop = asyncio.get_running_loop()
        feed = LiveFeed(sub, token)
        counted_at, count_due = loop.time(), False
        while True:
            wait = CONNECTION_CHECK
            if count_due:  # a task came, went or changed status: recount within the interval
                wait = max(0.0, counted_at + COUNT_INTERVAL - loop.time())
            batch = await feed.next(wait)
            if batch is None:
                return
            count_due = count_due or any(not m.droppable for m in batch)
            total = None
            if count_due and loop.time() - counted_at >= COUNT_INTERVAL:
                total = (await engine.list_tasks(user, query, limit=1)).total
                counted_at, count_due = loop.time(), False
            if not batch and total is None:
                continue
            async with self:
                if self._watch_gen != generation:
                    return
                self.rows = merge_page(
                    self.rows,
                    batch,
                    make_row=live_row,
                    keeps=self._keeps,
                    add_new=offset == 0,
                    limit=PAGE_SIZE,
                )
                if total is not None:
                    self.total = total
            await asyncio.sleep(PUSH_INTERVAL)

    # -- filters and pages -------------------------------------------------
    @rx.event
    def set_status_filter(self, value: str) -> Any:
        self.status_filter = value if value in STATUS_CHOICES else ALL
        self.offset = 0
        return TasksPageState.watch

    @rx.event
    def set_kind_filter(self, value: str) -> Any:
        self.kind_filter = value if value in kind_choices() else ALL
        self.offset = 0
        return TasksPageState.watch

    @rx.event
    def clear_filters(self) -> Any:
        self.status_filter = self.kind_filter = ALL
        self.offset = 0
        return TasksPageState.watch

    @rx.event
    def next_page(self) -> Any:
        if self.offset + PAGE_SIZE < self.total:
            self.offset += PAGE_SIZE
            return TasksPageState.watch
        return None

    @rx.event
    def prev_page(self) -> Any:
        if self.offset > 0:
            self.offset = max(0, self.offset - PAGE_SIZE)
            return TasksPageState.watch
        return None

    # -- actions -------------------------------------------------------------
    @rx.event
    async def cancel(self, task_id: str) -> Any:
        user = await current_user(self)
        engine = get_engine()
        if not can_see(await engine.get(task_id), user):
            return rx.toast.error("Task not found.")
        if await engine.cancel(task_id):
            return rx.toast.info("Cancelling…")
        return rx.toast.warning("That task is not running any more.")

    @rx.event
    def set_bulk_choice(self, value: str) -> None:
        self.bulk_choice = value if value in BULK_DELETE else "finished"

    @rx.event
    def set_confirm_bulk(self, value: bool) -> None:
        self.confirm_bulk = value

    @rx.event
    async def bulk_delete(self) -> Any:
        """Delete every listed task with the chosen statuses (their files included)."""
        self.confirm_bulk = False
        user = await current_user(self)
        if user is None:
            return rx.redirect("/login")
        statuses = [TaskStatus(s) for s in BULK_DELETE.get(self.bulk_choice, [])]
        # The same tasks the list shows: the user's own (an admin's: everyone's).
        deleted = await get_engine().delete_matching(user, TaskQuery(statuses=statuses))
        noun = "task" if deleted == 1 else "tasks"
        return [rx.toast.success(f"Deleted {deleted} {noun}."), TasksPageState.watch]
