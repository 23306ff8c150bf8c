"""State of `/tasks/[task_id]`: one task live (progress, agent checklist, timeline) and its actions.

Only the task's owner (or an admin) sees it; any other id shows "not found".
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import reflex as rx

from spyglass.states.auth import current_user
from spyglass.states.live import PUSH_INTERVAL, LiveFeed
from spyglass.states.tasks_page import TaskRow, row_from
from spyglass.tasks.bus import Topic
from spyglass.tasks.engine import TaskNotFound, TaskStateError, get_engine
from spyglass.tasks.messages import iso

#: What to do next, by error code.
REMEDIES = {
    "INTERRUPTED": "The server stopped while this task ran. Retry it.",
    "TIMEOUT": "The job ran out of time. Retry it, or give it smaller input.",
    "JOB_ERROR": "The job stopped on an error; check the input file and parameters, then retry.",
    "BILLING_INSUFFICIENT_CREDITS": "Not enough credits: ask an admin for more, then retry.",
    "FILES_NOT_FOUND": "A file never arrived: upload it again.",
    "UPLOAD_EXPIRED": "The upload links expired: create the task again.",
    "RESULT_NOT_SERIALIZABLE": "The job returned something that is not JSON; fix the job.",
}


@dataclass
class EventRow:
    seq: int = 0
    time: str = ""
    event_type: str = ""
    message: str = ""


@dataclass
class AgentItem:
    name: str = ""
    state: str = "pending"


class TaskDetailState(rx.State):
    task: TaskRow = TaskRow()
    events: list[EventRow] = []
    agents: list[AgentItem] = []
    remedy: str = ""
    not_found: bool = False
    loading: bool = True
    _watch_gen: int = 0

    def _task_id(self) -> str:
        return (self.router.url.path or "").rstrip("/").rsplit("/", 1)[-1]

    def _set_row(self, data: dict[str, Any]) -> None:
        self.task = row_from(data)
        self.remedy = (
            REMEDIES.get(data.get("error_code") or "", "")
            if self.task.status in ("FAILED", "UPLOAD_FAILED", "EXPIRED")
            else ""
        )

    @rx.event(background=True)
    async def watch(self) -> None:
        async with self:
            self._watch_gen += 1
            generation = self._watch_gen
            token = self.router.session.client_token
            task_id = self._task_id()
            user = await current_user(self)
            self.loading = True
        engine = get_engine()
        row = await engine.get_row(task_id) if user else None
        if row is None or user is None or not (user.is_admin or row["owner_id"] == user.id):
            async with self:
                self.not_found, self.loading = True, False
            return
        sub = engine.bus.subscribe(Topic(task_id=task_id))
        try:
            engine.store.flush_pending()
            events = await engine.store.get_events(task_id)
            row = await engine.get_row(task_id) or row
            async with self:
                if self._watch_gen != generation:
                    return
                self.not_found = False
                self._set_row(row)
                self.events = [
                    EventRow(e.seq, iso(e.timestamp) or "", e.event_type, e.message or "")
                    for e in events
                ]
                self.agents = [AgentItem(a, "pending") for a in row.get("agents") or []]
                for e in events:
                    self._agent_event(e.event_type, e.data)
                self.loading = False
            feed = LiveFeed(sub, token)
            while (batch := await feed.next()) is not None:
                if not batch:
                    continue
                async with self:
                    if self._watch_gen != generation:
                        return
                    for msg in batch:
                        self._apply(msg.payload)
                await asyncio.sleep(PUSH_INTERVAL)
        finally:
            sub.close()

    def _agent_event(self, event_type: str, data: Any) -> None:
        if event_type not in ("agent_started", "agent_completed") or not isinstance(data, dict):
            return
        state = "running" if event_type == "agent_started" else "completed"
        self.agents = [
            AgentItem(a.name, state if a.name == data.get("agent") else a.state)
            for a in self.agents
        ]

    def _apply(self, payload: dict[str, Any]) -> None:
        if payload["type"] == "deleted":
            self.not_found = True
            return
        data = {**payload, "id": payload["task_id"], "created_at": self.task.created_at}
        self._set_row(data)
        event = payload.get("event")
        if event:
            self.events = [
                *self.events,
                EventRow(
                    event["seq"],
                    event.get("timestamp") or "",
                    event["event_type"],
                    event.get("message") or "",
                ),
            ]
            self._agent_event(event["event_type"], event.get("data"))
        agents = (
            (payload.get("data") or {}).get("agents")
            if isinstance(payload.get("data"), dict)
            else None
        )
        if agents:
            self.agents = [AgentItem(name, state) for name, state in agents.items()]

    async def _allowed(self) -> bool:
        user = await current_user(self)
        row = await get_engine().get_row(self._task_id())
        return bool(user and row and (user.is_admin or row["owner_id"] == user.id))

    @rx.event
    async def cancel(self) -> Any:
        if not await self._allowed():
            return rx.toast.error("Task not found.")
        if await get_engine().cancel(self._task_id()):
            return rx.toast.info("Cancelling…")
        return rx.toast.warning("That task is not running.")

    @rx.event
    async def retry(self) -> Any:
        if not await self._allowed():
            return rx.toast.error("Task not found.")
        try:
            row = await get_engine().retry(self._task_id())
        except (TaskNotFound, TaskStateError) as exc:
            return rx.toast.error(str(exc) or "Cannot retry this task.")
        return rx.redirect(f"/tasks/{row['id']}")

    @rx.event
    async def delete(self) -> Any:
        if not await self._allowed():
            return rx.toast.error("Task not found.")
        await get_engine().delete(self._task_id())
        return rx.redirect("/tasks")
