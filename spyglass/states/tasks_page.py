"""State of the `/tasks` page: the user's tasks, filtered and paged, kept live by the bus.

The page's `watch` event runs in the background for as long as its browser tab is
connected: it loads the current page of tasks once, then applies every change the
bus pushes, sending the browser at most one delta per `PUSH_INTERVAL`. Task data is
never polled; every `CONNECTION_CHECK` seconds it only asks Reflex whether the
tab is still open (and brings running rows' "running for" up to date), and ends when it
is not. A filter or page change restarts it.

The page's on_load (`open`) starts the watch, so it starts again whenever the tab's socket
reconnects (Reflex runs on_load then), e.g. after a server restart.

The filters live in the address (`?q=…&status=…&kind=…&range=…&from=…&to=…&page=…`): a
filtered view can be bookmarked or shared, and opening it shows the same tasks.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import reflex as rx

from spyglass import audit
from spyglass.states.auth import READ_ONLY_ROLE, current_user
from spyglass.states.display import (
    args_text,
    duration_text,
    eta_text,
    human_error,
    parse_time,
    title_of,
    when_text,
)
from spyglass.states.live import (
    CONNECTION_CHECK,
    PUSH_INTERVAL,
    LiveFeed,
    merge_page,
    supersede_watch,
)
from spyglass.tasks.access import Viewer, can_act, can_change_tasks, can_read, owner_scope
from spyglass.tasks.bus import TaskMessage, Topic
from spyglass.tasks.engine import get_engine
from spyglass.tasks.messages import iso
from spyglass.tasks.models import utcnow
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
#: What each bulk choice deletes, in words.
BULK_WORDS = {
    "finished": "finished",
    "COMPLETED": "completed",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
}
#: Time ranges of the "Created" filter: the address's `range=` and how far back.
TIME_RANGES: dict[str, tuple[str, timedelta | None]] = {
    ALL: ("Any time", None),
    "1h": ("Last hour", timedelta(hours=1)),
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
}
#: Longest search text taken (an id is 36 characters; a file name at most 200).
SEARCH_MAX = 200


@dataclass
class Choice:
    """An option of a select: what it means (`value`) and what people read (`label`)."""

    value: str = ""
    label: str = ""


STATUS_OPTIONS = [
    Choice(ALL, "Any status"),
    *(Choice(s.value, s.label) for s in TaskStatus),
]
RANGE_OPTIONS = [Choice(k, label) for k, (label, _) in TIME_RANGES.items()]
BULK_OPTIONS = [Choice(k, f"All {w}") for k, w in BULK_WORDS.items()]


@dataclass
class TaskRow:
    task_id: str = ""
    state_name: str = ""
    task_name: str = ""
    tool_id: str = ""
    #: What people call it: the tool's name or the job's title.
    title: str = ""
    #: The data tool's input file (the run's name), or the job's input in one line.
    input_name: str = ""
    detail: str = ""
    status: str = ""
    status_label: str = ""
    progress: float = 0.0
    percent: int = 0
    message: str = ""
    #: Why it failed, in the words written for people (no exception class), and its code.
    error_message: str = ""
    error_code: str = ""
    result: str = ""
    created_at: str = ""
    #: When it began running (ISO, and as shown), how long it took or has been running or
    #: waiting, and while it runs how long it has left.
    started_at: str = ""
    started: str = ""
    took: str = ""
    eta: str = ""
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


def error_text(message: str | None, code: str | None) -> str:
    """A failure as people read it: a job's own exception without its class name."""
    if not message:
        return ""
    return human_error(message) if code == "JOB_ERROR" else message


def _message(message: str | None, code: str | None) -> str:
    """The latest message (a failure's is its error: the same words as `error_text`)."""
    return error_text(message, code) if code else (message or "")


def _agents_done(data: dict[str, Any], status: str, total: int) -> int:
    checklist = data.get("data", {}).get("agents") if isinstance(data.get("data"), dict) else None
    if isinstance(checklist, dict):
        return sum(1 for state in checklist.values() if state == "completed")
    return total if status == TaskStatus.COMPLETED.value else 0


def took_text(
    status: str,
    *,
    started: datetime | str | None,
    ended: datetime | str | None = None,
    run_ms: int | None = None,
    created: datetime | str | None = None,
    now: datetime | None = None,
) -> str:
    """`took 12 s` (ended), `running 1 min 03 s`, `waiting 4 s` (queued), else nothing."""
    began = parse_time(started)
    if status in TERMINAL:
        if run_ms is not None:
            return f"took {duration_text(run_ms / 1000)}"
        stop = parse_time(ended)
        return f"took {duration_text((stop - began).total_seconds())}" if began and stop else ""
    moment = now or utcnow()
    if status == TaskStatus.PROCESSING.value and began is not None:
        return f"running {duration_text((moment - began).total_seconds())}"
    queued = parse_time(created)
    if status == TaskStatus.PENDING.value and queued is not None:
        return f"waiting {duration_text((moment - queued).total_seconds())}"
    return ""


def task_row(task: TaskView) -> TaskRow:
    """A row of a task as the engine gives it."""
    done = len(task.agents) if task.status is TaskStatus.COMPLETED else 0
    ended = task.completed_at or task.failed_at or task.cancelled_at
    return TaskRow(
        task_id=task.id,
        state_name=task.state_name,
        task_name=task.task_name,
        tool_id=task.tool_id or "",
        title=title_of(task.state_name, task.task_name, task.tool_id),
        input_name=task.input_filename or "",
        detail="" if task.tool_id else args_text(task.input_args),
        status=task.status.value,
        status_label=task.status.label,
        progress=task.progress,
        percent=int(task.progress),
        message=_message(task.message, task.error_code),
        error_message=error_text(task.error_message, task.error_code),
        error_code=task.error_code or "",
        result=_result_text(task.result),
        created_at=iso(task.created_at) or "",
        started_at=iso(task.processing_started_at) or "",
        started=when_text(task.processing_started_at),
        took=took_text(
            task.status.value,
            started=task.processing_started_at,
            ended=ended,
            run_ms=task.execution_time_ms,
            created=task.created_at,
        ),
        terminal=task.is_terminal,
        agents_total=len(task.agents),
        agents_done=done,
        scheduled=scheduled_text(task.status.value, task.scheduled_at),
    )


def _eta(data: dict[str, Any], status: str, old: TaskRow | None) -> str:
    """While it runs: the ETA the message brings, or (a message without a rate, such as a
    timeline line) the last one shown."""
    if status != TaskStatus.PROCESSING.value:
        return ""
    if "eta_seconds" in data:
        return eta_text(data["eta_seconds"])
    return old.eta if old is not None and old.status == status else ""


def row_from(data: dict[str, Any], old: TaskRow | None = None) -> TaskRow:
    """Build a row from a socket payload (a bus message), keeping from `old` what only the
    stored row knows (its input file, when it began running)."""
    status = data["status"]
    created = data.get("created_at")
    agents = data.get("agents") or []
    started = old.started_at if old is not None else ""
    if not started and status == TaskStatus.PROCESSING.value:
        started = data.get("timestamp") or ""  # this message tells of its start
    terminal = status in TERMINAL
    created_iso = (
        (iso(created) or "") if not isinstance(created, str) and created else (created or "")
    )
    return TaskRow(
        task_id=data.get("task_id") or data["id"],
        state_name=data["state_name"],
        task_name=data["task_name"],
        tool_id=data.get("tool_id") or "",
        title=old.title
        if old is not None and old.title
        else title_of(data["state_name"], data["task_name"], data.get("tool_id")),
        input_name=old.input_name if old is not None else "",
        detail=old.detail if old is not None else "",
        status=status,
        status_label=_label(status),
        progress=float(data.get("progress") or 0.0),
        percent=int(data.get("progress") or 0),
        message=_message(data.get("message"), data.get("error_code")),
        error_message=error_text(data.get("error_message"), data.get("error_code")),
        error_code=data.get("error_code") or "",
        result=_result_text(data.get("result")),
        created_at=created_iso,
        started_at=started,
        started=when_text(started),
        took=took_text(
            status,
            started=started,
            ended=data.get("timestamp") if terminal else None,
            created=created_iso,
        ),
        eta=_eta(data, status, old),
        terminal=terminal,
        agents_total=len(agents),
        agents_done=_agents_done(data, status, len(agents)),
        scheduled=scheduled_text(status, data.get("scheduled_at")),
    )


def live_row(msg: TaskMessage, old: TaskRow | None) -> TaskRow:
    """A row from a bus message, keeping what only the stored row knows."""
    new = row_from(msg.payload, old)
    if old is not None:
        new.created_at = old.created_at
        if not new.terminal:
            new.took = took_text(new.status, started=new.started_at, created=old.created_at)
        if "data" not in msg.payload and not new.terminal:
            new.agents_done = old.agents_done
    else:
        new.created_at = msg.payload.get("timestamp") or ""
    return new


#: Statuses whose clock moves ("running 12 s", "waiting 3 s").
MOVING = (TaskStatus.PROCESSING.value, TaskStatus.PENDING.value)


def refresh_clocks(rows: list[Any]) -> list[Any] | None:
    """Rows whose "running for" / "waiting for" moved on since they were written (None if
    no row runs or waits)."""
    if not any(r.status in MOVING for r in rows):
        return None
    now = utcnow()
    return [
        dataclasses.replace(
            r, took=took_text(r.status, started=r.started_at, created=r.created_at, now=now)
        )
        if r.status in MOVING
        else r
        for r in rows
    ]


def input_names_needed(batch: list[TaskMessage], known: dict[str, str]) -> list[str]:
    """Data-tool runs in `batch` whose input file's name the page has not looked up yet
    (a run that arrives live: the bus does not carry it)."""
    return sorted(
        {
            m.task_id
            for m in batch
            if m.payload.get("tool_id")
            and m.payload.get("status") != TaskStatus.CREATED.value
            and m.task_id not in known
        }
    )


async def look_up_input_names(task_ids: list[str], known: dict[str, str]) -> None:
    """Remember in `known` the main input file's name of each task (once per task)."""
    engine = get_engine()
    for task_id in task_ids:
        files = await engine.files(task_id, "input")
        known[task_id] = next((f.filename for f in files if f.key == "primary"), "")


def with_input_names(rows: list[Any], known: dict[str, str]) -> list[Any]:
    """Rows that lack their input file's name, with it where `known` has it."""
    return [
        dataclasses.replace(r, input_name=known[r.task_id])
        if not r.input_name and known.get(r.task_id)
        else r
        for r in rows
    ]


def kind_choices() -> list[Choice]:
    """What the kind filter offers: every tool, then every job, by the names people use."""
    tools = [Choice(t.id, t.name) for t in TOOLS.values()]
    jobs: dict[str, str] = {}
    for spec in registry.all():
        if spec.task_name not in TOOLS:
            jobs.setdefault(spec.task_name, spec.title)
    return [
        Choice(ALL, "Any tool or job"),
        *tools,
        *sorted((Choice(k, v) for k, v in jobs.items()), key=lambda c: c.label.lower()),
    ]


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


#: The watches this process runs, by tab (client token): (generation, view). A tab's
#: `_watch_gen` lives in its state (which outlives a server), this only in the process that
#: runs the watch: a restarted server has none, so a reconnecting page starts its watch again.
_LIVE_WATCHES: dict[str, tuple[int, tuple[Any, ...]]] = {}


class TasksPageState(rx.State):
    rows: list[TaskRow] = []
    loading: bool = True
    total: int = 0
    offset: int = 0
    status_filter: str = ALL
    kind_filter: str = ALL
    #: An id prefix or part of an input file's name.
    search: str = ""
    #: A time range of `TIME_RANGES`, and/or dates (YYYY-MM-DD, UTC) the run was created
    #: between, both included.
    time_range: str = ALL
    date_from: str = ""
    date_to: str = ""
    kinds: list[Choice] = [Choice(ALL, "Any tool or job")]
    bulk_choice: str = "finished"
    confirm_bulk: bool = False
    #: How many tasks the bulk delete being confirmed removes.
    bulk_count: int = 0
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
        return bool(
            self.status_filter != ALL
            or self.kind_filter != ALL
            or self.search
            or self.time_range != ALL
            or self.date_from
            or self.date_to
        )

    @rx.var
    def bulk_words(self) -> str:
        return BULK_WORDS.get(self.bulk_choice, "finished")

    @rx.var
    def bulk_noun(self) -> str:
        return "task" if self.bulk_count == 1 else "tasks"

    def _narrowed(self) -> bool:
        """A search or a time range: whether a task matches needs the database to say."""
        return bool(self.search or self.time_range != ALL or self.date_from or self.date_to)

    def _query(self, statuses: list[str] | None = None) -> TaskQuery:
        after = before = None
        span = TIME_RANGES.get(self.time_range, ("", None))[1]
        if span is not None:
            after = utcnow() - span
        first, last = _day(self.date_from), _day(self.date_to)
        if first is not None:
            after = max(after, _midnight(first)) if after else _midnight(first)
        if last is not None:
            before = _midnight(last) + timedelta(days=1)
        if statuses is None:
            statuses = [self.status_filter] if self.status_filter != ALL else []
        return TaskQuery(
            statuses=tuple(TaskStatus(s) for s in statuses),
            task_name=self.kind_filter if self.kind_filter != ALL else None,
            search=self.search or None,
            created_after=after,
            created_before=before,
        )

    def _keeps(self, msg: TaskMessage) -> bool:
        payload = msg.payload
        return (self.status_filter == ALL or payload["status"] == self.status_filter) and (
            self.kind_filter == ALL or payload["task_name"] == self.kind_filter
        )

    def _address(self) -> str:
        """This view's address: the filters and page as query parameters."""
        params = {
            "q": self.search,
            "status": self.status_filter if self.status_filter != ALL else "",
            "kind": self.kind_filter if self.kind_filter != ALL else "",
            "range": self.time_range if self.time_range != ALL else "",
            "from": self.date_from,
            "to": self.date_to,
            "page": str(self.offset // PAGE_SIZE + 1) if self.offset else "",
        }
        query = urlencode({k: v for k, v in params.items() if v})
        return "/tasks" + (f"?{query}" if query else "")

    def _moved(self) -> Any:
        """After a filter or page change: the address says so, and the list reloads (the new
        address runs the page's on_load, `open`, which reads the filters back and watches)."""
        return rx.redirect(self._address(), replace=True)

    def _view(self) -> tuple[Any, ...]:
        """What the list shows: the filters and the page (a live watch follows one view)."""
        return (
            self.status_filter,
            self.kind_filter,
            self.search,
            self.time_range,
            self.date_from,
            self.date_to,
            self.offset,
        )

    def _watching(self) -> bool:
        """Whether this process runs this tab's latest watch, of the view now chosen."""
        token = self.router.session.client_token
        return _LIVE_WATCHES.get(token) == (self._watch_gen, self._view())

    @rx.event
    def follow_new(self) -> Any:
        """New task has created a run and will send the tab to `/tasks` (no filters) once it
        starts: watch that view from now on, so that when the page is drawn the new row and
        its first progress are already in the tab's state (no list to read after landing)."""
        self.status_filter = self.kind_filter = self.time_range = ALL
        self.search = self.date_from = self.date_to = ""
        self.offset = 0
        return TasksPageState.watch

    @rx.event
    def open(self) -> Any:
        """The page opened: its filters and page come from the address. A watch of that very
        view already running here (started by New task, `follow_new`) goes on; otherwise (a
        first visit, other filters, a reconnect to a restarted server) one starts."""
        params = self.router.url.query_parameters
        status = str(params.get("status") or ALL)
        self.status_filter = status if status in STATUS_CHOICES else ALL
        kind = str(params.get("kind") or ALL)
        self.kind_filter = kind if any(c.value == kind for c in kind_choices()) else ALL
        self.search = str(params.get("q") or "").strip()[:SEARCH_MAX]
        span = str(params.get("range") or ALL)
        self.time_range = span if span in TIME_RANGES else ALL
        self.date_from = (
            str(params.get("from") or "") if _day(str(params.get("from") or "")) else ""
        )
        self.date_to = str(params.get("to") or "") if _day(str(params.get("to") or "")) else ""
        try:
            page = max(1, min(int(str(params.get("page") or "1")), 100_000))
        except ValueError:
            page = 1
        self.offset = (page - 1) * PAGE_SIZE
        if self._watching():
            return None
        return TasksPageState.watch

    @rx.event(background=True)
    async def watch(self) -> None:
        async with self:
            generation, token = supersede_watch(self)
            user = await current_user(self)
            self.kinds = kind_choices()
            _LIVE_WATCHES[token] = (generation, self._view())
        try:
            await self._watch(generation, token, user)
        finally:
            if _LIVE_WATCHES.get(token, (None,))[0] == generation:
                del _LIVE_WATCHES[token]

    async def _watch(self, generation: int, token: str, user: Viewer | None) -> None:
        if user is None:
            return  # the page's on_load sends the visitor to /login
        engine = get_engine()
        # Users see their own tasks; admins see everyone's.
        sub = engine.subscribe(Topic(owner_id=owner_scope(user)))
        try:
            async with self:
                query, offset, narrowed = self._query(), self.offset, self._narrowed()
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
            engine.catch_up(sub, page.tasks)  # those running in another process
            await self._follow(sub, token, generation, user, query, offset, narrowed)
        finally:
            sub.close()

    async def _follow(
        self,
        sub: Any,
        token: str,
        generation: int,
        user: Viewer,
        query: TaskQuery,
        offset: int,
        narrowed: bool,
    ) -> None:
        engine = get_engine()
        loop = asyncio.get_running_loop()
        feed = LiveFeed(sub, token)
        counted_at, count_due = loop.time(), False
        names: dict[str, str] = {}
        running = any(r.status in MOVING for r in self.rows)
        while True:
            wait = CONNECTION_CHECK
            if count_due:  # a task came, went or changed status: recount within the interval
                wait = max(0.0, counted_at + COUNT_INTERVAL - loop.time())
            batch = await feed.next(wait)
            if batch is None:
                return
            count_due = count_due or any(not m.droppable for m in batch)
            total = None
            fresh: list[TaskRow] | None = None
            if count_due and loop.time() - counted_at >= COUNT_INTERVAL:
                if narrowed:  # only the database knows which tasks match: read the page again
                    page = await engine.list_tasks(user, query, limit=PAGE_SIZE, offset=offset)
                    fresh, total = [task_row(t) for t in page.tasks], page.total
                    engine.catch_up(sub, page.tasks)
                else:
                    total = (await engine.list_tasks(user, query, limit=1)).total
                counted_at, count_due = loop.time(), False
            if not batch and total is None and not running:
                continue  # nothing changed, and no clock to move on
            await look_up_input_names(input_names_needed(batch, names), names)
            async with self:
                if self._watch_gen != generation:
                    return
                if fresh is not None:
                    rows = fresh
                elif batch:
                    rows = merge_page(
                        self.rows,
                        batch,
                        make_row=live_row,
                        keeps=self._keeps,
                        add_new=offset == 0 and not narrowed,
                        limit=PAGE_SIZE,
                    )
                else:  # the tab is open and nothing changed: running rows' clocks move on
                    rows = refresh_clocks(self.rows) or self.rows
                self.rows = with_input_names(rows, names)
                running = any(r.status in MOVING for r in self.rows)
                if total is not None:
                    self.total = total
            await asyncio.sleep(PUSH_INTERVAL)

    # -- filters and pages -------------------------------------------------
    @rx.event
    def set_status_filter(self, value: str) -> Any:
        self.status_filter = value if value in STATUS_CHOICES else ALL
        self.offset = 0
        return self._moved()

    @rx.event
    def set_kind_filter(self, value: str) -> Any:
        self.kind_filter = value if any(c.value == value for c in kind_choices()) else ALL
        self.offset = 0
        return self._moved()

    @rx.event
    def set_search(self, value: str) -> Any:
        value = str(value or "").strip()[:SEARCH_MAX]
        if value == self.search:
            return None
        self.search = value
        self.offset = 0
        return self._moved()

    @rx.event
    def set_time_range(self, value: str) -> Any:
        self.time_range = value if value in TIME_RANGES else ALL
        self.offset = 0
        return self._moved()

    @rx.event
    def set_date_from(self, value: str) -> Any:
        self.date_from = value if _day(value) else ""
        self.offset = 0
        return self._moved()

    @rx.event
    def set_date_to(self, value: str) -> Any:
        self.date_to = value if _day(value) else ""
        self.offset = 0
        return self._moved()

    @rx.event
    def clear_filters(self) -> Any:
        self.status_filter = self.kind_filter = self.time_range = ALL
        self.search = self.date_from = self.date_to = ""
        self.offset = 0
        return self._moved()

    @rx.event
    def next_page(self) -> Any:
        if self.offset + PAGE_SIZE < self.total:
            self.offset += PAGE_SIZE
            return self._moved()
        return None

    @rx.event
    def prev_page(self) -> Any:
        if self.offset > 0:
            self.offset = max(0, self.offset - PAGE_SIZE)
            return self._moved()
        return None

    # -- actions -------------------------------------------------------------
    @rx.event
    async def cancel(self, task_id: str) -> Any:
        user = await current_user(self)
        engine = get_engine()
        task = await engine.get(task_id)
        if not can_read(task, user):
            return rx.toast.error("Task not found.")
        if not can_act(task, user):
            return rx.toast.error(READ_ONLY_ROLE)
        if await engine.cancel(task_id):
            await audit.record(self, user, "task.cancel", "task", task_id)
            return rx.toast.info("Cancelling…")
        return rx.toast.warning("That task is not running any more.")

    @rx.event
    def set_bulk_choice(self, value: str) -> None:
        self.bulk_choice = value if value in BULK_DELETE else "finished"

    def _bulk_query(self) -> TaskQuery | None:
        """The tasks a bulk delete removes: the chosen ones among those the filters show
        (None: the status filter leaves none of them)."""
        statuses = BULK_DELETE.get(self.bulk_choice, BULK_DELETE["finished"])
        if self.status_filter != ALL:
            statuses = [s for s in statuses if s == self.status_filter]
        return self._query(statuses=statuses) if statuses else None

    @rx.event
    async def ask_bulk_delete(self) -> Any:
        """Count what a bulk delete would remove, then ask."""
        user = await current_user(self)
        if user is None:
            return rx.redirect("/login")
        query = self._bulk_query()
        count = 0
        if query is not None:
            count = (await get_engine().list_tasks(user, query, limit=1)).total
        self.bulk_count = count
        self.confirm_bulk = True
        return None

    @rx.event
    def set_confirm_bulk(self, value: bool) -> None:
        self.confirm_bulk = value

    @rx.event
    async def bulk_delete(self) -> Any:
        """Delete every task the confirmation counted: the chosen statuses among those the
        filters show (their files included)."""
        self.confirm_bulk = False
        user = await current_user(self)
        if user is None:
            return rx.redirect("/login")
        # The same tasks the list shows: the user's own (an admin's: everyone's).
        if not can_change_tasks(user):
            return rx.toast.error(READ_ONLY_ROLE)
        query = self._bulk_query()
        deleted = 0
        if query is not None:
            detail: dict[str, Any] = {"statuses": [s.value for s in query.statuses]}
            async with audit.recording(self, user, "tasks.bulk_delete", "tasks", detail):
                detail["count"] = deleted = await get_engine().delete_matching(user, query)
        noun = "task" if deleted == 1 else "tasks"
        return [rx.toast.success(f"Deleted {deleted} {noun}."), TasksPageState.watch]
