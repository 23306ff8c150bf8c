"""State of `/tasks/[task_id]`: one task live (progress, agent checklist, timeline) and its actions.

Only the task's owner (or an admin) sees it; any other id shows "not found".
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import reflex as rx

from spyglass.errors import DomainError
from spyglass.states.auth import current_user
from spyglass.states.live import PUSH_INTERVAL, LiveFeed, supersede_watch
from spyglass.states.tasks_page import TaskRow, row_from, task_row
from spyglass.tasks.access import can_see
from spyglass.tasks.bus import Topic
from spyglass.tasks.engine import get_engine
from spyglass.tasks.messages import iso

#: What to do next, by error code.
REMEDIES = {
    "INTERRUPTED": "The server stopped while this task ran. Retry it.",
    "TIMEOUT": "The job ran out of time. Retry it, or give it smaller input.",
    "JOB_ERROR": "The job stopped on an error; check the input file and parameters, then retry.",
    "BILLING_INSUFFICIENT_CREDITS": "Not enough credits: ask an admin for more, then retry.",
    "FILES_NOT_FOUND": "A file never arrived: start a new task and upload it again.",
    "UPLOAD_FAILED": "The upload did not finish: start a new task and upload the file again.",
    "UPLOAD_EXPIRED": "The upload links expired: start a new task and upload the files again.",
    "RESULT_NOT_SERIALIZABLE": "The job returned something that is not JSON; fix the job.",
}


def clock(timestamp: str | None) -> str:
    """`2026-11-23T03:42:43.586964+00:00` → `03:42:43.586` (UTC, as the timeline shows it)."""
    if not timestamp or "T" not in timestamp:
        return timestamp or ""
    return timestamp.split("T", 1)[1][:12]


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
    #: How to follow this task from a terminal (with one of the user's client tokens).
    ws_hint: str = ""
    _watch_gen: int = 0

    def _task_id(self) -> str:
        return (self.router.url.path or "").rstrip("/").rsplit("/", 1)[-1]

    def _set_row(self, row: TaskRow, error_code: str | None) -> None:
        self.task = row
        self.remedy = (
            REMEDIES.get(error_code or "", "")
            if self.task.status in ("FAILED", "UPLOAD_FAILED", "EXPIRED")
            else ""
        )

    @rx.event(background=True)
    async def watch(self) -> None:
        async with self:
            generation, token = supersede_watch(self)
            task_id = self._task_id()
            user = await current_user(self)
            self.loading = True
            host = self.router.headers.host or "localhost:3000"
        engine = get_engine()
        try:
            task = await engine.get_visible(task_id, user)
        except DomainError:
            async with self:
                self.not_found, self.loading = True, False
            return
        with engine.subscribe(Topic(task_id=task_id)) as sub:
            events = await engine.events(task_id)
            task = await engine.get(task_id) or task
            async with self:
                if self._watch_gen != generation:
                    return
                self.not_found = False
                self.ws_hint = (
                    f"wscat -c ws://{host}/ws/{task.state_name}/tasks/<client_token>/{task_id}"
                )
                self._set_row(task_row(task), task.error_code)
                self.events = [
                    EventRow(e.seq, clock(iso(e.timestamp)), e.event_type, e.message or "")
                    for e in events
                ]
                self.agents = [AgentItem(a, "pending") for a in task.agents]
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
        self._set_row(row_from(data), payload.get("error_code"))
        event = payload.get("event")
        if event:
            self.events = [
                *self.events,
                EventRow(
                    event["seq"],
                    clock(event.get("timestamp")),
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
        return can_see(await get_engine().get(self._task_id()), await current_user(self))

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
            task = await get_engine().retry(self._task_id())
        except DomainError as exc:
            return rx.toast.error(exc.message)
        return rx.redirect(f"/tasks/{task.id}")

    @rx.event
    async def delete(self) -> Any:
        if not await self._allowed():
            return rx.toast.error("Task not found.")
        try:
            files = await get_engine().delete(self._task_id())
        except DomainError as exc:
            return rx.toast.error(exc.message)
        noun = "file" if files == 1 else "files"
        return [rx.toast.success(f"Task deleted with {files} {noun}."), rx.redirect("/tasks")]
