"""State of `/tasks/[task_id]`: one task live (progress, where its time went, its events)
and its actions.

Only the task's owner (or an admin) sees it; any other id shows "not found".
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import reflex as rx

from spyglass import audit
from spyglass.errors import DomainError
from spyglass.states.auth import READ_ONLY_ROLE, current_user
from spyglass.states.display import (
    NEEDS_NEW_FILE,
    agent_label,
    args_text,
    duration_text,
    remedy,
)
from spyglass.states.live import PUSH_INTERVAL, LiveFeed, supersede_watch
from spyglass.states.tasks_page import Choice, TaskRow, refresh_clocks, row_from, task_row
from spyglass.states.timeline import Bar, Point, build, point
from spyglass.tasks.access import can_act, can_read
from spyglass.tasks.bus import Topic
from spyglass.tasks.engine import get_engine
from spyglass.tasks.messages import iso
from spyglass.tasks.models import utcnow
from spyglass.tasks.view import EventView, FileView, TaskView

#: Events read at a time when the page opens (all are read; the table keeps the latest).
EVENT_PAGE = 1000
#: Lines the event table keeps (the download has every one).
MAX_ROWS = 1000
#: Statuses that end a task without it completing: its timeline says where it stopped.
FAILED = ("FAILED", "UPLOAD_FAILED", "EXPIRED")
#: Event types in words.
EVENT_WORDS = {
    "status": "Status",
    "progress": "Progress",
    "info": "Info",
    "debug": "Debug",
    "success": "Success",
    "warning": "Warning",
    "error": "Error",
    "agent_started": "Agent started",
    "agent_completed": "Agent done",
}
LEVEL_OPTIONS = [
    Choice("all", "Any level"),
    Choice("info", "Info"),
    Choice("success", "Success"),
    Choice("warning", "Warning"),
    Choice("error", "Error"),
    Choice("debug", "Debug"),
]
KIND_OPTIONS = [
    Choice("all", "Any type"),
    Choice("status", "Status changes"),
    Choice("progress", "Progress"),
    Choice("agent", "Agent steps"),
    Choice("message", "Messages"),
]
#: A bar's state in the checklist words the agent list has always used.
AGENT_STATES = {
    "done": "completed",
    "running": "running",
    "waiting": "pending",
    "failed": "failed",
    "stopped": "stopped",
    "not run": "not run",
}
FILE_WORDS = {"primary": "Data file", "baseline": "Baseline", "parameters": "Parameters"}


def clock(timestamp: str | None) -> str:
    """`2026-11-23T03:42:43.586964+00:00` → `03:42:43.586` (UTC, as the timeline shows it)."""
    if not timestamp or "T" not in timestamp:
        return timestamp or ""
    return timestamp.split("T", 1)[1][:12]


def level_of(event_type: str) -> str:
    return event_type if event_type in ("error", "warning", "success", "debug") else "info"


def kind_of(event_type: str, data: Any) -> str:
    if isinstance(data, dict) and "status" in data:
        return "status"
    if event_type == "progress":
        return "progress"
    if event_type.startswith("agent_"):
        return "agent"
    return "message"


@dataclass
class EventRow:
    seq: int = 0
    time: str = ""
    event_type: str = ""
    #: The type in words, its level (info, success, warning, error, debug) and kind
    #: (status, progress, agent, message): what the filters choose by.
    type_label: str = ""
    level: str = ""
    kind: str = ""
    message: str = ""


def event_row(
    seq: int, timestamp: str | None, event_type: str, message: str | None, data: Any
) -> EventRow:
    return EventRow(
        seq=seq,
        time=clock(timestamp),
        event_type=event_type,
        type_label=EVENT_WORDS.get(event_type, event_type.replace("_", " ").capitalize()),
        level=level_of(event_type),
        kind=kind_of(event_type, data),
        message=message or "",
    )


@dataclass
class InputFile:
    label: str = ""
    filename: str = ""
    size: str = ""


def _size(n: int | None) -> str:
    if n is None:
        return ""
    if n < 1024:
        return f"{n} bytes"
    size = float(n)
    for unit in ("KB", "MB", "GB"):
        size /= 1024
        if size < 1024 or unit == "GB":
            break
    return f"{size:.1f} {unit}"


def input_files(files: list[FileView]) -> list[InputFile]:
    return [
        InputFile(FILE_WORDS.get(f.key, f.key.capitalize()), f.filename, _size(f.size_bytes))
        for f in files
        if f.key != "parameters"
    ]


class TaskDetailState(rx.State):
    task: TaskRow = TaskRow()
    #: The event lines the filters let through (the latest MAX_ROWS), and how many there are.
    events: list[EventRow] = []
    event_total: int = 0
    level_filter: str = "all"
    kind_filter: str = "all"
    #: Where the time went: one bar per agent (a data tool) or attempt (a job).
    bars: list[Bar] = []
    total_time: str = ""
    attempts_text: str = ""
    is_tool: bool = False
    inputs: list[InputFile] = []
    #: Why it failed (the message written for people), where, and what to do about it.
    error_text: str = ""
    failed_step: str = ""
    remedy: str = ""
    #: A failure another run of the same file repeats: Retry offers to choose another file.
    needs_new_file: bool = False
    #: The new-task form set up like this run (its tool and agents).
    new_task_href: str = "/"
    not_found: bool = False
    loading: bool = True
    #: How to follow this task from a terminal (with one of the user's client tokens).
    ws_hint: str = ""
    _watch_gen: int = 0
    _all_events: list[EventRow] = []
    _points: list[Point] = []
    _agent_ids: list[str] = []
    _error_code: str = ""

    @rx.var
    def log_jsonl(self) -> str:
        return f"/api/tasks/{self.task.task_id}/log?format=jsonl"

    @rx.var
    def log_csv(self) -> str:
        return f"/api/tasks/{self.task.task_id}/log?format=csv"

    @rx.var
    def events_label(self) -> str:
        shown, total = len(self.events), self.event_total
        if shown == total:
            return f"{total} event{'s' if total != 1 else ''}"
        return f"{shown} of {total} events"

    @rx.var
    def can_retry(self) -> bool:
        return self.task.status in ("FAILED", "CANCELLED")

    def _task_id(self) -> str:
        return (self.router.url.path or "").rstrip("/").rsplit("/", 1)[-1]

    # -- what the page shows ---------------------------------------------------
    def _set_row(self, row: TaskRow, error_code: str | None, *, retime: bool = True) -> None:
        self.task = row
        self._error_code = error_code or ""
        failed = row.status in FAILED
        self.error_text = (row.error_message or row.message) if failed else ""
        self.remedy = remedy(error_code, tool=bool(row.tool_id)) if failed else ""
        self.needs_new_file = bool(row.tool_id) and (error_code or "") in NEEDS_NEW_FILE
        if retime:
            self._retime()

    def _retime(self) -> None:
        """The bars again, from the events so far (a running step grows until now)."""
        labels = {a: agent_label(self.task.tool_id, a) for a in self._agent_ids}
        timeline = build(
            self._points,
            status=self.task.status,
            agents=self._agent_ids,
            labels=labels,
            now=utcnow(),
        )
        self.bars = timeline.bars
        self.total_time = duration_text(timeline.total_ms / 1000) if timeline.total_ms else ""
        retries = max(0, timeline.attempts - 1)
        self.attempts_text = (
            f"{timeline.attempts} attempts ({retries} retr{'y' if retries == 1 else 'ies'})"
            if retries and not self._agent_ids
            else ""
        )
        self.failed_step = timeline.failed_step if self.task.status == "FAILED" else ""

    def _add_event(self, row: EventRow, mark: Point | None) -> None:
        self._all_events = [*self._all_events[-(MAX_ROWS - 1) :], row]
        self.event_total += 1
        if mark is not None and _counts(mark):
            self._points = [*self._points, mark]

    def _refilter(self) -> None:
        self.events = [
            e
            for e in self._all_events
            if (self.level_filter == "all" or e.level == self.level_filter)
            and (self.kind_filter == "all" or e.kind == self.kind_filter)
        ]

    def _set_events(self, events: list[EventView]) -> None:
        self._all_events, self._points, self.event_total = [], [], 0
        for e in events:
            self._add_event(
                event_row(e.seq, iso(e.timestamp), e.event_type, e.message, e.data),
                point(e.seq, e.timestamp, e.event_type, e.data),
            )

    def _load(self, task: TaskView, events: list[EventView], files: list[FileView]) -> None:
        self._agent_ids = list(task.agents)
        self.is_tool = task.is_tool
        self.inputs = input_files(files)
        row = task_row(task)
        if not row.input_name:
            row.input_name = next((f.filename for f in files if f.key == "primary"), "")
        self.new_task_href = "/?" + urlencode(
            {"tool": task.tool_id or "", "agents": ",".join(task.agents)}
        )
        self._set_events(events)
        self._set_row(row, task.error_code)
        if not task.is_tool:
            self.task.detail = args_text(task.input_args)
        self._refilter()

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
            events = await all_events(task_id)
            files = await engine.files(task_id, "input")
            task = await engine.get(task_id) or task
            async with self:
                if self._watch_gen != generation:
                    return
                self.not_found = False
                self.ws_hint = (
                    f"wscat -c ws://{host}/ws/{task.state_name}/tasks/<client_token>/{task_id}"
                )
                self._load(task, events, files)
                last_seq = events[-1].seq if events else 0
                self.loading = False
            engine.catch_up(sub, [task])  # if it runs in another process
            feed = LiveFeed(sub, token)
            while (batch := await feed.next()) is not None:
                async with self:
                    if self._watch_gen != generation:
                        return
                    if not batch:  # nothing new: only a running step's clock moves
                        if not self.task.terminal:
                            clocks = refresh_clocks([self.task])
                            if clocks:
                                self.task = clocks[0]
                            self._retime()
                        continue
                    # A line numbered past the next one means lines are missing (told before
                    # this page listened, but not yet stored when it read them: another
                    # process writes them a moment later), so the page reads them again.
                    gap = False
                    for msg in batch:
                        event = msg.payload.get("event")
                        gap = gap or bool(event and event["seq"] > last_seq + 1)
                        last_seq = self._apply(msg.payload, last_seq)
                    self._retime()
                    self._refilter()
                if gap or any(m.terminal for m in batch):
                    # Its end is written before it is told, with every line before it: the
                    # stored timeline is whole (lines told before this page listened, by
                    # another process, are in it), so the page draws from it.
                    events = await all_events(task_id)
                    async with self:
                        if self._watch_gen != generation:
                            return
                        self._set_events(events)
                        last_seq = max(last_seq, events[-1].seq if events else 0)
                        self._retime()
                        self._refilter()
                await asyncio.sleep(PUSH_INTERVAL)

    def _apply(self, payload: dict[str, Any], last_seq: int) -> int:
        """A bus message: the task's new state, or one more event (those the page read when
        it opened are skipped). Returns the last event number seen."""
        if payload["type"] == "deleted":
            self.not_found = True
            return last_seq
        event = payload.get("event")
        if event and event["seq"] > last_seq:
            self._add_event(
                event_row(
                    event["seq"],
                    event.get("timestamp"),
                    event["event_type"],
                    event.get("message"),
                    event.get("data"),
                ),
                point(event["seq"], event.get("timestamp"), event["event_type"], event.get("data")),
            )
            last_seq = event["seq"]
        data = {**payload, "id": payload["task_id"], "created_at": self.task.created_at}
        row = row_from(data, self.task)
        self._set_row(row, payload.get("error_code"), retime=False)
        return last_seq

    # -- filters -------------------------------------------------------------
    @rx.event
    def set_level_filter(self, value: str) -> None:
        self.level_filter = value if any(c.value == value for c in LEVEL_OPTIONS) else "all"
        self._refilter()

    @rx.event
    def set_kind_filter(self, value: str) -> None:
        self.kind_filter = value if any(c.value == value for c in KIND_OPTIONS) else "all"
        self._refilter()

    # -- actions -------------------------------------------------------------
    async def _refused(self) -> str | None:
        """Why the viewer may not act on this task (None: they may)."""
        user = await current_user(self)
        task = await get_engine().get(self._task_id())
        if not can_read(task, user):
            return "Task not found."
        if not can_act(task, user):
            return READ_ONLY_ROLE
        return None

    @rx.event
    async def cancel(self) -> Any:
        if refused := await self._refused():
            return rx.toast.error(refused)
        if await get_engine().cancel(self._task_id()):
            await audit.record(
                self, await current_user(self), "task.cancel", "task", self._task_id()
            )
            return rx.toast.info("Cancelling…")
        return rx.toast.warning("That task is not running.")

    @rx.event
    async def retry(self) -> Any:
        if refused := await self._refused():
            return rx.toast.error(refused)
        try:
            task = await get_engine().retry(self._task_id())
        except DomainError as exc:
            return rx.toast.error(exc.message)
        detail = {"new_task_id": task.id}
        await audit.record(
            self, await current_user(self), "task.retry", "task", self._task_id(), detail
        )
        return rx.redirect(f"/tasks/{task.id}")

    @rx.event
    async def delete(self) -> Any:
        if refused := await self._refused():
            return rx.toast.error(refused)
        try:
            files = await get_engine().delete(self._task_id())
        except DomainError as exc:
            return rx.toast.error(exc.message)
        detail = {"files_deleted": files}
        await audit.record(
            self, await current_user(self), "task.delete", "task", self._task_id(), detail
        )
        noun = "file" if files == 1 else "files"
        return [rx.toast.success(f"Task deleted with {files} {noun}."), rx.redirect("/tasks")]


async def all_events(task_id: str) -> list[EventView]:
    """Every event of the task, in order (read a page at a time)."""
    events: list[EventView] = []
    while True:
        after = events[-1].seq if events else 0
        page = await get_engine().events(task_id, after_seq=after, limit=EVENT_PAGE)
        events.extend(page)
        if len(page) < EVENT_PAGE:
            return events


def _counts(mark: Point) -> bool:
    """An event the timeline is drawn from: status changes, agent steps, failed attempts."""
    if mark.event_type in ("agent_started", "agent_completed"):
        return True
    return isinstance(mark.data, dict) and ("status" in mark.data or "attempt" in mark.data)
