"""State of the `/tasks` page: the newest tasks, kept live by a subscription to the engine's bus.

The page's `watch` event runs in the background for as long as its browser tab is
connected: it loads the newest tasks once, then applies every change the bus
pushes, sending the browser at most one delta per `PUSH_INTERVAL`. Task data is
never polled; every `CONNECTION_CHECK` seconds it only asks Reflex whether the
tab is still open, and ends when it is not.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import reflex as rx

from spyglass.states.auth import current_user
from spyglass.states.live import PUSH_INTERVAL, LiveFeed
from spyglass.tasks.bus import Topic
from spyglass.tasks.engine import get_engine
from spyglass.tasks.messages import iso
from spyglass.tasks.status import TaskStatus
from spyglass.tasks.store import TaskFilter

PAGE_SIZE = 50


@dataclass
class TaskRow:
    task_id: str = ""
    state_name: str = ""
    task_name: str = ""
    status: str = ""
    status_label: str = ""
    progress: float = 0.0
    percent: int = 0
    message: str = ""
    error_message: str = ""
    result: str = ""
    created_at: str = ""
    terminal: bool = False


def _label(status: str) -> str:
    try:
        return TaskStatus(status).label
    except ValueError:
        return status


def _result_text(result: Any) -> str:
    if result is None:
        return ""
    text = result if isinstance(result, str) else repr(result)
    return text if len(text) <= 200 else text[:197] + "…"


def row_from(data: dict[str, Any]) -> TaskRow:
    """Build a row from a task row dict or a socket payload."""
    status = data["status"]
    created = data.get("created_at")
    return TaskRow(
        task_id=data.get("task_id") or data["id"],
        state_name=data["state_name"],
        task_name=data["task_name"],
        status=status,
        status_label=_label(status),
        progress=float(data.get("progress") or 0.0),
        percent=int(data.get("progress") or 0),
        message=data.get("message") or "",
        error_message=data.get("error_message") or "",
        result=_result_text(data.get("result")),
        created_at=iso(created) if not isinstance(created, str) and created else (created or ""),
        terminal=status in {s.value for s in TaskStatus if s.is_terminal},
    )


class TasksPageState(rx.State):
    rows: list[TaskRow] = []
    loading: bool = True
    _watch_gen: int = 0

    @rx.event(background=True)
    async def watch(self) -> None:
        async with self:
            self._watch_gen += 1
            generation = self._watch_gen
            token = self.router.session.client_token
            user = await current_user(self)
        if user is None:
            return  # the page's on_load sends the visitor to /login
        engine = get_engine()
        # Users see their own tasks; admins see everyone's.
        owner = None if user.is_admin else user.id
        sub = engine.bus.subscribe(Topic(owner_id=owner))
        try:
            tasks, _ = await engine.store.list_tasks(TaskFilter(owner_id=owner), limit=PAGE_SIZE)
            rows = []
            for task in tasks:
                row = await engine.get_row(task.id) if task.id in engine.runner.live else None
                rows.append(row_from(row) if row else row_from(task.model_dump()))
            async with self:
                if self._watch_gen != generation:
                    return
                self.rows = rows
                self.loading = False
            feed = LiveFeed(sub, token)
            while (batch := await feed.next()) is not None:
                if not batch:
                    continue
                async with self:
                    if self._watch_gen != generation:
                        return
                    self._apply([m.payload for m in batch if m.payload["type"] != "event"])
                await asyncio.sleep(PUSH_INTERVAL)
        finally:
            sub.close()

    def _apply(self, payloads: list[dict[str, Any]]) -> None:
        if not payloads:
            return
        latest: dict[str, dict[str, Any]] = {}
        for payload in payloads:
            latest[payload["task_id"]] = payload
        gone = {task_id for task_id, p in latest.items() if p["type"] == "deleted"}
        rows = [row for row in self.rows if row.task_id not in gone]
        index = {row.task_id: i for i, row in enumerate(rows)}
        fresh: list[TaskRow] = []
        for task_id, payload in latest.items():
            if task_id in gone:
                continue
            new = row_from(payload)
            if task_id in index:
                old = rows[index[task_id]]
                new.created_at = old.created_at
                rows[index[task_id]] = new
            else:
                new.created_at = payload.get("timestamp") or ""
                fresh.append(new)
        fresh.reverse()
        self.rows = (fresh + rows)[:PAGE_SIZE]

    @rx.event
    async def cancel(self, task_id: str) -> Any:
        user = await current_user(self)
        engine = get_engine()
        row = await engine.get_row(task_id)
        if user is None or row is None or not (user.is_admin or row["owner_id"] == user.id):
            return rx.toast.error("Task not found.")
        if await engine.cancel(task_id):
            return rx.toast.info("Cancelling…")
        return rx.toast.warning("That task is not running any more.")
