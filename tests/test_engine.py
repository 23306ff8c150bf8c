"""The engine in one process, on a real SQLite file: store, bus, runner and registry logic."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy import event

from spyglass.config import Settings
from spyglass.tasks import TaskContext, TaskStatus, monitored_background_task
from spyglass.tasks.bus import LocalBus, TaskMessage, Topic
from spyglass.tasks.dbwriter import GroupCommitWriter, Write
from spyglass.tasks.decorator import JOB_MARKER, build_spec
from spyglass.tasks.engine import Engine
from spyglass.tasks.models import utcnow
from spyglass.tasks.registry import JobInputError, JobSpec, Registry, snake_case
from spyglass.tasks.view import TaskView


class Person(BaseModel):
    name: str
    age: int


DEFAULT_PERSON = Person(name="Ada", age=36)
#: What a test compares with when a task it expects is gone.
DEFAULT_VIEW = TaskView(id="", state_name="", task_name="", status=TaskStatus.PENDING)


def spec_of(fn: Any, static: bool = True, state: str = "unit_state") -> JobSpec:
    target = fn.__func__ if isinstance(fn, staticmethod) else fn
    return build_spec(state, (), target.__name__, getattr(target, JOB_MARKER), static)


@contextlib.asynccontextmanager
async def unit_engine(
    folder: Path, flush: float, redis_url: str | None = None
) -> AsyncIterator[Engine]:
    """An engine of its own on a SQLite file, writing coalesced lines every `flush` s (with
    `redis_url`, on a Redis bus: not the only process)."""
    settings = Settings(
        data_dir=folder,
        db_url=f"sqlite:///{folder / f'unit-{flush:g}.db'}",
        port=0,
        secret_key="unit",
        progress_flush_interval=flush,
        redis_url=redis_url,
    )
    eng = Engine(settings, Registry())
    await eng.start()
    try:
        yield eng
    finally:
        await eng.stop()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    async with unit_engine(tmp_path, 0.25) as eng:
        yield eng


def task_row(task_id: str) -> dict[str, Any]:
    """A PENDING task's row as the store takes it, with nothing but what a row must have."""
    now = utcnow()
    return {
        "id": task_id,
        "state_name": "s",
        "task_name": "t",
        "status": "PENDING",
        "progress": 0.0,
        "origin": "direct",
        "attempt": 1,
        "cost": 0,
        "created_at": now,
        "updated_at": now,
    }


async def run_to_end(engine: Engine, spec: JobSpec, args: Any = None) -> TaskView:
    task = await engine.start_job(spec, args, origin="direct")
    await engine.wait(task.id)
    stored = await engine.get(task.id)
    assert stored is not None
    return stored


async def test_chatty_progress_is_coalesced_in_the_database(engine: Engine) -> None:
    @monitored_background_task
    async def chatty(task: TaskContext) -> str:
        for i in range(1, 1001):
            await task.update(progress=i / 10)
            if i % 10 == 0:
                await asyncio.sleep(0.01)
        return "done"

    updates: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE TASK "):
            updates.append(statement)

    event.listen(engine.database, "before_cursor_execute", count)
    spec = spec_of(chatty)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    done = await run_to_end(engine, spec)
    elapsed = loop.time() - t0
    assert done.status is TaskStatus.COMPLETED
    assert done.progress == 100
    # 1,000 progress reports; the database saw PROCESSING, COMPLETED and ≤ 4 flushes a second.
    assert len(updates) <= 2 + int(elapsed / 0.25) + 2, (len(updates), elapsed)
    task = await engine._store.get_task(done.id)
    assert task is not None and task.progress == 100 and task.result == "done"


async def test_a_status_change_shows_the_task_as_it_was_at_the_change(engine: Engine) -> None:
    """Status hooks (metrics, webhooks) get each change with the task's view as it was then,
    even when they read it after the task has moved on."""
    from spyglass.tasks.view import StatusChange

    @monitored_background_task
    async def two_steps(task: TaskContext) -> str:
        await task.update(progress=50, message="half way")
        return "done"

    seen: list[StatusChange] = []
    engine.on_status(seen.append)
    done = await run_to_end(engine, spec_of(two_steps))
    assert done.status is TaskStatus.COMPLETED
    assert [c.status for c in seen] == [TaskStatus.PROCESSING, TaskStatus.COMPLETED]
    processing, completed = seen
    # Read after the end: the first change still shows a task that was processing.
    assert processing.task.status is TaskStatus.PROCESSING and processing.task.result is None
    assert processing.task.completed_at is None and processing.waited is not None
    assert completed.task.status is TaskStatus.COMPLETED and completed.task.result == "done"
    assert completed.ran is not None and completed.task.progress == 100
    for change in seen:
        assert change.task_id == done.id and change.attempt == 1
        assert change.job == f"{done.state_name}.{done.task_name}"
        assert change.task is change.task  # built once


async def test_a_progress_change_shows_the_task_as_it_was_and_builds_its_view_only_when_asked(
    engine: Engine,
) -> None:
    """Progress hooks (webhooks) get each move of a running task's progress or message; the
    task's view is built from a copy of the row at the move, and only for a hook that reads
    it (a hook that throttles costs no view)."""
    from spyglass.tasks.view import TaskChange

    @monitored_background_task
    async def three_steps(task: TaskContext) -> str:
        for step in (25, 50, 75):
            await task.update(progress=step, message=f"step {step}")
        return "done"

    seen: list[TaskChange] = []
    engine.on_progress(seen.append)
    done = await run_to_end(engine, spec_of(three_steps))
    assert done.status is TaskStatus.COMPLETED
    assert len(seen) == 3
    assert all(change._task is None for change in seen)  # nobody asked: no view was built
    # Read after the end: each change shows the task as it was at its move.
    assert [(c.task.progress, c.task.message) for c in seen] == [
        (25, "step 25"), (50, "step 50"), (75, "step 75"),
    ]  # fmt: skip
    for change in seen:
        assert change.task.status is TaskStatus.PROCESSING and change.task.result is None
        assert change.task_id == done.id and change.attempt == 1
        assert change.job == f"{done.state_name}.{done.task_name}"
        assert change.task is change.task  # built once


async def test_a_direct_start_answers_what_the_new_tasks_view_answers(engine: Engine) -> None:
    """`Engine.start_direct` answers from the new task's row, without a view: the same
    fields, in the same order, as the direct API's answer made from its view."""
    from datetime import timedelta

    from spyglass.tasks.messages import direct_view
    from spyglass.tasks.scheduling import Schedule

    @monitored_background_task
    async def later(task: TaskContext, person: Person) -> str:
        return person.name

    spec = spec_of(later)
    at = utcnow() + timedelta(hours=1)
    for schedule in (None, Schedule(queue="slow", priority=5, start_at=at)):
        started = await engine.start_direct(spec, {"name": "Zoë", "age": 2**70}, schedule=schedule)
        view = await engine.get(started.answer["task_id"])
        assert view is not None
        if schedule is not None:  # still waiting: the view is the task as it was started
            assert started.answer == direct_view(view)
            assert list(started.answer) == list(direct_view(view))
            assert started.answer["scheduled_at"] == at.isoformat()
            await engine.cancel(view.id)
        assert started.answer["status"] == "PENDING" and started.answer["progress"] == 0.0
        assert (started.state_name, started.owner_id) == (view.state_name, None)
        await engine.wait(view.id)
    with pytest.raises(JobInputError):
        await engine.start_direct(spec, {"name": "no age"})


async def test_json_columns_are_written_by_one_encoder_and_read_back_the_same(
    engine: Engine,
) -> None:
    """A task's JSON columns (its inputs, its result, its timeline lines' data) are written
    with `json_text` (pydantic-core's encoder) on every path, and read back as they were
    given: integers past 2⁶³, text that is not ASCII, floats, nulls, nesting."""
    import json

    from spyglass.tasks.store import json_text

    given = {"n": 2**70, "text": "é ☃ 漢", "list": [1.5, None, True, -0.0], "nested": {"k": []}}

    @monitored_background_task
    async def echo(task: TaskContext) -> dict[str, Any]:
        await task.log("noted", "info", data=given)
        return given

    done = await run_to_end(engine, spec_of(echo))
    assert done.status is TaskStatus.COMPLETED and done.result == given
    path = engine.database.url.database
    assert path is not None
    with contextlib.closing(sqlite3.connect(path)) as conn:
        (result,) = conn.execute("SELECT result FROM task WHERE id = ?", (done.id,)).fetchone()
        lines = conn.execute(
            "SELECT event_type, data FROM task_event WHERE task_id = ? ORDER BY seq", (done.id,)
        ).fetchall()
    assert result == json_text(given) and json.loads(result) == given
    assert [kind for kind, _ in lines] == ["status", "status", "info", "success"]
    for _, data in lines:
        assert data == json_text(json.loads(data))
    assert json.loads(lines[2][1]) == given


async def test_coalesced_writes_are_flushed_by_a_timer_armed_only_while_they_wait(
    tmp_path: Path,
) -> None:
    """Nothing coalesced, no flush timer (an idle server never wakes for it); the first
    coalesced write arms one, it writes everything waiting within `flush_interval`, and
    then none is armed until the next."""
    async with unit_engine(tmp_path, 0.2) as eng:
        store = eng._store
        assert store._flush_timer is None
        go, reported = asyncio.Event(), asyncio.Event()

        @monitored_background_task
        async def reports(task: TaskContext) -> int:
            await task.update(progress=40, message="forty")
            reported.set()
            await go.wait()
            return 1

        started = await eng.start_job(spec_of(reports), None, origin="direct")
        await asyncio.wait_for(reported.wait(), 30)
        assert started.id in store._pending and store._flush_timer is not None
        since = time.monotonic()

        path = eng.database.url.database
        assert path is not None

        def stored() -> tuple[float, str] | None:
            with contextlib.closing(sqlite3.connect(path)) as conn:
                query = "SELECT progress, message FROM task WHERE id = ?"
                return conn.execute(query, (started.id,)).fetchone()

        async def written() -> None:
            while await asyncio.to_thread(stored) != (40.0, "forty"):
                await asyncio.sleep(0.02)

        await asyncio.wait_for(written(), 30)
        assert time.monotonic() - since < 5  # the timer's 0.2 s, with room for a slow box
        assert not store._pending and store._flush_timer is None
        go.set()
        await eng.wait(started.id)
        ended = await eng.get(started.id)
        assert ended is not None and ended.status is TaskStatus.COMPLETED
        assert not store._pending and store._flush_timer is None


@pytest.fixture
async def slow_flush(tmp_path: Path) -> AsyncIterator[Engine]:
    """An engine whose coalesced writes wait 30 s (a test decides when they are written)."""
    async with unit_engine(tmp_path, 30) as eng:
        yield eng


async def test_starts_and_ends_are_durable_before_they_are_announced(slow_flush: Engine) -> None:
    """A start is committed before it is answered, an end before it is announced; PROCESSING
    is announced at once and written coalesced, with the end when that comes first (a short
    job costs one write for both), and the timeline keeps every line in order."""

    @monitored_background_task
    async def short(task: TaskContext) -> int:
        await asyncio.sleep(0.05)
        return 7

    spec = spec_of(short)
    sub = slow_flush.subscribe(Topic())
    writes: list[str] = []
    event.listen(
        slow_flush.database,
        "before_cursor_execute",
        lambda conn, cursor, statement, *args: (
            writes.append(statement)
            if statement.lstrip().upper().startswith("UPDATE TASK ")
            else None
        ),
    )
    started = await slow_flush.start_job(spec, None, origin="direct")
    stored = await slow_flush._store.get_task(started.id)
    assert stored is not None, "the row is committed before start_job returns"
    seen = []
    async for msg in sub:
        seen.append(msg.payload["status"])
        if msg.terminal:
            task = await slow_flush._store.get_task(started.id)
            assert task is not None and task.status == "COMPLETED", "the end was written first"
            break
    sub.close()
    assert seen[-2:] == ["PROCESSING", "COMPLETED"]
    assert len(writes) == 1, "PROCESSING and COMPLETED of a 50 ms job: one write"
    events = await slow_flush.events(started.id)
    assert [(e.seq, e.event_type) for e in events] == [(1, "status"), (2, "status"), (3, "success")]
    stored = await slow_flush._store.get_task(started.id)
    assert stored is not None and stored.processing_started_at is not None


async def test_a_timeline_read_waits_for_lines_the_flusher_has_queued(
    slow_flush: Engine,
) -> None:
    """The periodic flush hands a task's coalesced lines to the writer without waiting; a
    timeline read that comes before they are committed waits for them (it once returned
    without the PROCESSING line, and the task page drew no run)."""
    import sqlite3

    go = asyncio.Event()

    @monitored_background_task
    async def held(task: TaskContext) -> int:
        await go.wait()
        return 1

    started = await slow_flush.start_job(spec_of(held), None, origin="direct")
    store = slow_flush._store
    while started.id not in store._pending:  # its PROCESSING line, coalesced
        await asyncio.sleep(0.01)
    path = slow_flush.database.url.database
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the writer waits for this lock
        store.flush_pending()  # what the periodic flush does: queued, not awaited
        reading = asyncio.create_task(slow_flush.events(started.id))
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert not reading.done(), "the read did not wait for the queued lines"
        holder.execute("COMMIT")
        events = await asyncio.wait_for(reading, 30)
    finally:
        holder.close()
    assert [(e.event_type, e.data) for e in events] == [
        ("status", {"status": "PENDING"}),
        ("status", {"status": "PROCESSING"}),
    ]
    go.set()
    await slow_flush.wait(started.id)


async def test_a_start_commits_the_row_alone_and_its_queued_line_rides_with_the_next_write(
    slow_flush: Engine,
) -> None:
    """A job that runs in this process numbers its own lines, so its Queued line is written
    with the task's next write, as its PROCESSING line is: the start commits the task row
    alone, and a short job's three lines are one statement with its end. A timeline read
    before that write still has the line (it writes what is coalesced first)."""
    go = asyncio.Event()

    @monitored_background_task
    async def held(task: TaskContext) -> int:
        await go.wait()
        return 3

    sent: list[tuple[str, Any]] = []
    event.listen(
        slow_flush.database,
        "before_cursor_execute",
        lambda conn, cursor, statement, parameters, *args: sent.append((statement, parameters)),
    )

    def lines_written() -> list[list[int]]:
        """The timeline lines of each INSERT into the timeline sent so far (their seq)."""
        return [
            [row[1] for row in (params if isinstance(params, list) else [params])]
            for statement, params in sent
            if statement.lstrip().upper().startswith("INSERT INTO TASK_EVENT ")
        ]

    started = await slow_flush.start_job(spec_of(held), None, origin="direct")
    assert await slow_flush._store.get_task(started.id) is not None, "the row is committed"
    assert lines_written() == [], "the start commits the row alone"
    events = await slow_flush.events(started.id)
    assert [(e.seq, e.event_type, e.message) for e in events] == [
        (1, "status", "Queued"),
        (2, "status", "Processing"),
    ], "a read has every line so far"
    go.set()
    await slow_flush.wait(started.id)
    events = await slow_flush.events(started.id)
    assert [(e.seq, e.message) for e in events] == [
        (1, "Queued"),
        (2, "Processing"),
        (3, "Completed"),
    ]
    assert lines_written() == [[1, 2], [3]]

    @monitored_background_task
    async def short(task: TaskContext) -> int:
        return 4

    sent.clear()
    done = await run_to_end(slow_flush, spec_of(short))
    assert done.status is TaskStatus.COMPLETED
    assert lines_written() == [[1, 2, 3]], "a short job's lines: one statement, with its end"
    events = await slow_flush.events(done.id)
    assert [(e.seq, e.message) for e in events] == [
        (1, "Queued"),
        (2, "Processing"),
        (3, "Completed"),
    ]


async def test_progress_never_goes_back_and_is_clamped(engine: Engine) -> None:
    @monitored_background_task
    async def wobbly(task: TaskContext) -> None:
        await task.update(progress=50)
        await task.update(progress=30)
        assert task.progress == 50
        await task.update(progress=-5)
        assert task.progress == 50

    done = await run_to_end(engine, spec_of(wobbly))
    assert done.status is TaskStatus.COMPLETED
    events = await engine.events(done.id)
    warnings = [e for e in events if e.event_type == "warning"]
    assert len(warnings) == 1 and "clamped to 0" in (warnings[0].message or "")


@pytest.mark.parametrize("progress", [1e-6, 1e-305])
async def test_progress_too_slow_for_a_rate_is_told_with_a_finite_eta(
    engine: Engine, progress: float
) -> None:
    """A job that creeps (a millionth of a percent after a while: a rate that rounds to 0
    per second) is told to its readers like any other, with an ETA; it used to divide by
    the rounded rate, and the update failed the job. At a pace that would take longer than
    any ETA means (or than a float holds), it is told with none."""

    @monitored_background_task
    async def creeping(task: TaskContext) -> str:
        await asyncio.sleep(0.05)
        await task.update(progress=progress, data={"step": 1})
        return "done"

    with engine.subscribe(Topic()) as sub:
        done = await run_to_end(engine, spec_of(creeping))
        told = [m.payload for m in await sub.get_batch()]
    assert done.status is TaskStatus.COMPLETED, done.error_message
    update = next(p for p in told if p.get("data") == {"step": 1})
    assert update["progress"] == progress and update["rate"] == 0.0
    if progress > 1e-12:
        assert 1e6 < update["eta_seconds"] < 1e15  # 100 % at this pace: months
    else:
        assert update["eta_seconds"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status": "COMPLETED"}, "a job cannot set status COMPLETED"),
        ({"status": "nonsense"}, "unknown task status 'nonsense'"),
        ({"progress": "ten"}, "progress must be a number from 0 to 100, got 'ten'"),
        ({"progress": float("nan")}, "got NaN"),
    ],
)
async def test_bad_updates_fail_the_task_with_a_clear_message(
    engine: Engine, kwargs: dict[str, Any], message: str
) -> None:
    @monitored_background_task
    async def bad(task: TaskContext) -> None:
        await task.update(**kwargs)

    ended = await run_to_end(engine, spec_of(bad))
    assert ended.status is TaskStatus.FAILED
    assert message in (ended.error_message or "")


async def test_update_after_cancel_raises_so_the_job_cannot_go_on(engine: Engine) -> None:
    reached: list[int] = []

    @monitored_background_task
    async def stubborn(task: TaskContext) -> None:
        for i in range(1000):
            try:  # noqa: SIM105 (swallowing on purpose)
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                pass  # a job that swallows cancellation...
            await task.update(progress=i / 10)  # ...is stopped at its next update
            reached.append(i)

    spec = spec_of(stubborn)
    started = await engine.start_job(spec, None, origin="direct")
    while not reached:
        await asyncio.sleep(0.01)
    assert await engine.cancel_and_wait(started.id)
    count = len(reached)
    await asyncio.sleep(0.1)  # time in which a job that went on would report again
    assert len(reached) == count
    final = await engine.get(started.id)
    assert final is not None and final.status is TaskStatus.CANCELLED


async def test_a_timeout_kills_the_run_sync_child(engine: Engine, tmp_path: Path) -> None:
    import os
    import time

    import psutil

    from spyglass.tasks.child import run_in_child
    from tests.cpu_work import burn, nap

    pid_file = tmp_path / "burn.pid"

    # The timeout must strike while the child runs: with the fork server up first (the first
    # child of a process starts it, importing pandas: that took over 10 s of the job's time
    # limit at a load average of 10 on 2 cores, and the job timed out before its child was
    # started), 10 s is ample for one fork at a load average of 15-20.
    assert await run_in_child(nap, 0, "warm") == "warm"

    @monitored_background_task(timeout=10)
    async def cpu(task: TaskContext) -> object:
        return await task.run_sync(burn, str(pid_file), 60)

    started = await engine.start_job(spec_of(cpu), None, origin="direct")
    await engine.wait(started.id)
    ended = time.monotonic()
    final = await engine.get(started.id)
    assert final is not None and (final.status, final.error_code) == ("FAILED", "TIMEOUT")
    pid = int(pid_file.read_text())
    assert pid != os.getpid(), "the CPU work ran in this process"

    def running() -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    while running():
        assert time.monotonic() - ended < 1, "the child outlived its timeout"
        await asyncio.sleep(0.01)


async def test_starting_the_fork_server_keeps_the_loop_free(engine: Engine) -> None:
    """The first child of a process starts the fork server, which imports pandas (a second or
    more): other jobs and pages of the process run meanwhile."""
    import time
    from multiprocessing import forkserver

    from tests.cpu_work import nap

    forkserver._forkserver._stop()  # type: ignore[attr-defined]  # cold, as in a new process

    @monitored_background_task
    async def cpu(task: TaskContext) -> object:
        return await task.run_sync(nap, 0, 42)

    gaps: list[float] = []

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    began = time.monotonic()
    started = await engine.start_job(spec_of(cpu), None, origin="direct")
    await engine.wait(started.id)
    took = time.monotonic() - began
    ticker.cancel()
    final = await engine.get(started.id)
    assert final is not None and final.result == 42
    # Blocked, the loop stood still nearly the whole start (9.3 s of 9.4 s at a load of 12).
    assert max(gaps) < took / 2, f"the loop stood still {max(gaps):.2f} s of {took:.2f} s"


async def test_run_sync_keeps_the_loop_free(engine: Engine) -> None:
    from tests.cpu_work import nap

    @monitored_background_task
    async def cpu(task: TaskContext) -> object:
        return await task.run_sync(nap, 0.3, 42)  # in a child process

    started = await engine.start_job(spec_of(cpu), None, origin="direct")
    ticks = 0
    while not (await engine.get(started.id) or started).is_terminal:
        await asyncio.sleep(0.01)
        ticks += 1
    assert ticks >= 10, "the event loop was blocked"
    final = await engine.get(started.id)
    assert final is not None and final.result == 42


def test_input_parsing_uses_the_declared_default() -> None:
    @monitored_background_task
    async def greet(task: TaskContext, person: Person = DEFAULT_PERSON) -> str:
        return person.name

    spec = spec_of(greet)
    assert spec.input_model is Person
    assert spec.parse_args(None) == DEFAULT_PERSON
    assert spec.parse_args({}) == DEFAULT_PERSON
    assert spec.parse_args({"name": "Bo", "age": 3}) == Person(name="Bo", age=3)
    with pytest.raises(JobInputError) as err:
        spec.parse_args({"name": "Bo"})
    assert err.value.errors[0]["loc"] == ["body", "age"]


def test_required_input_without_default_is_required() -> None:
    @monitored_background_task
    async def greet(task: TaskContext, person: Person) -> str:
        return person.name

    with pytest.raises(JobInputError):
        spec_of(greet).parse_args(None)


def test_declaration_mistakes_are_caught_when_the_class_is_built() -> None:
    async def untyped(task: TaskContext, args: dict) -> None: ...
    async def two_args(task: TaskContext, a: Person, b: Person) -> None: ...
    def not_async(task: TaskContext) -> None: ...

    with pytest.raises(TypeError, match="pydantic BaseModel"):
        spec_of(monitored_background_task(untyped))
    with pytest.raises(TypeError, match="at most one argument"):
        spec_of(monitored_background_task(two_args))
    with pytest.raises(TypeError, match="async def"):
        monitored_background_task(not_async)
    with pytest.raises(ValueError, match="timeout"):
        monitored_background_task(timeout=0)


def test_state_names_follow_reflex() -> None:
    assert snake_case("ExampleTaskState2") == "example_task_state2"
    assert snake_case("ExampleTaskState") == "example_task_state"
    assert snake_case("HTTPJobsState") == "http_jobs_state"


def test_status_words() -> None:
    assert TaskStatus.parse("Processing") is TaskStatus.PROCESSING
    assert TaskStatus.UPLOAD_FAILED.label == "Upload failed"
    assert TaskStatus.CANCELLED.is_terminal and not TaskStatus.PENDING.is_terminal


def _msg(version: int, *, droppable: bool, terminal: bool = False) -> TaskMessage:
    return TaskMessage("t", "s", None, None, version, terminal, droppable, {"v": version})


@pytest.mark.parametrize("keeps_on", [False, True])
async def test_a_feed_stopped_with_a_write_in_flight_writes_nothing_more(keeps_on: bool) -> None:
    """A socket's feed cancelled (its token revoked, its client gone) while a write is in
    flight and messages wait behind it: when that write completes, nothing more is sent."""
    from types import SimpleNamespace

    from spyglass.api.front import RAW_SEND
    from spyglass.api.sockets import Feed

    loop = asyncio.get_running_loop()
    sent: list[str] = []
    writes: list[asyncio.Future[None]] = []

    def send(frame: dict[str, str]) -> asyncio.Future[None]:
        sent.append(frame["text"])
        writes.append(loop.create_future())
        return writes[-1]

    bus = LocalBus()
    sub = bus.subscribe(Topic(task_id="t"))
    ws: Any = SimpleNamespace(scope={RAW_SEND: send})
    run = asyncio.create_task(
        Feed(ws, sub, lambda m: m.version > 0, end_at_terminal=True, keeps_on=keeps_on).run()
    )
    await asyncio.sleep(0)
    bus.publish(_msg(1, droppable=False))  # written at once, and still being written
    bus.publish(_msg(2, droppable=True))
    bus.publish(_msg(3, droppable=False))  # these two wait behind it
    assert len(sent) == 1
    run.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await run
    writes[0].set_result(None)
    bus.publish(_msg(4, droppable=False))
    for _ in range(3):
        await asyncio.sleep(0)
    assert len(sent) == 1
    sub.close()


async def test_a_slow_subscriber_loses_only_intermediate_progress() -> None:
    bus = LocalBus()
    sub = bus.subscribe(Topic(task_id="t"))
    sub.maxsize = 10
    bus.publish(_msg(1, droppable=False))
    for v in range(2, 100):
        bus.publish(_msg(v, droppable=True))
    bus.publish(_msg(100, droppable=False, terminal=True))
    got = [m.version for m in await sub.get_batch()]
    assert got[0] == 1 and got[-1] == 100
    assert len(got) <= 11
    assert got == sorted(got)
    assert sub.dropped == 100 - len(got)
    sub.close()
    assert bus.subscriber_count == 0


@pytest.mark.parametrize("inline", [False, True], ids=["thread", "loop"])
async def test_group_commit_isolates_a_failing_write(tmp_path: Path, inline: bool) -> None:
    """A group with a bad write commits its other writes (on the loop, the group fails
    there and the thread finds the bad unit)."""
    from spyglass.tasks.store import EVENT_TABLE, TASK_TABLE, make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    migrate(engine)
    writer = GroupCommitWriter(engine, TASK_TABLE, EVENT_TABLE, inline=inline)
    writer.start()

    def task(task_id: str) -> Write:
        return Write(insert_task=task_row(task_id))

    futures = [writer.submit(task(i)) for i in ("a", "b", "b", "c")]
    futures.append(writer.submit(Write(task_id="a", values={"status": "PROCESSING"})))
    futures.append(writer.submit(Write(task_id="a", values={"progress": 5.0})))
    results = await asyncio.gather(*futures, return_exceptions=True)
    writer.stop()
    assert [isinstance(r, Exception) for r in results] == [False, False, True, False, False, False]
    assert writer._loop_commits == 0  # the loop's try rolled back
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, status, progress FROM task ORDER BY id")).all()
    assert rows == [("a", "PROCESSING", 5.0), ("b", "PENDING", 0.0), ("c", "PENDING", 0.0)]


async def test_a_loop_connection_that_cannot_roll_back_is_replaced(tmp_path: Path) -> None:
    """When the loop's commit fails and so does its rollback, that connection is dropped
    (closing it drops the open transaction): the write goes to the thread, and the loop's
    next write opens a connection of its own again."""
    from spyglass.tasks.store import EVENT_TABLE, TASK_TABLE, make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path / 'b.db'}")
    migrate(engine)
    writer = GroupCommitWriter(engine, TASK_TABLE, EVENT_TABLE, inline=True)
    writer.start()
    first = writer._loop_connection()

    class Broken:
        def __init__(self, raw: Any) -> None:
            self.raw = raw

        def __getattr__(self, name: str) -> Any:
            return getattr(self.raw, name)

        def commit(self) -> None:
            raise sqlite3.OperationalError("disk I/O error")

        def rollback(self) -> None:
            raise sqlite3.OperationalError("disk I/O error")

    writer._loop_raw = Broken(writer._loop_raw)
    await writer.submit(Write(insert_task=task_row("a")))  # the thread commits it
    assert writer._loop_commits == 0 and first.invalidated
    await writer.submit(Write(insert_task=task_row("b")))
    assert writer._loop_commits == 1 and writer._loop_conn is not first
    writer.stop()
    with engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT id FROM task ORDER BY id")).scalars().all()
    assert ids == ["a", "b"]


async def test_listeners_added_after_the_loops_connection_opened_hear_its_writes(
    tmp_path: Path,
) -> None:
    """The loop's writes skip SQLAlchemy's per-statement work while nothing listens to its
    connection events, and take SQLAlchemy's way once something does, even when the
    listener comes after the loop's connection was opened (on the engine, or on that
    connection): cursor listeners see the statements, transaction listeners the commit."""
    from spyglass.tasks.store import EVENT_TABLE, TASK_TABLE, make_engine, migrate

    for target in ("engine", "connection"):
        engine = make_engine(f"sqlite:///{tmp_path / f'{target}.db'}")
        migrate(engine)
        writer = GroupCommitWriter(engine, TASK_TABLE, EVENT_TABLE, inline=True)
        writer.start()
        await writer.submit(Write(insert_task=task_row("a")))  # the loop's connection opens
        assert writer._loop_commits == 1
        listened = engine if target == "engine" else writer._loop_connection()
        statements: list[str] = []
        commits: list[object] = []

        def heard(*args: Any, statements: list[str] = statements) -> None:
            statements.append(args[2].split()[0])

        event.listen(listened, "before_cursor_execute", heard)
        event.listen(listened, "commit", commits.append)
        await writer.submit(Write(insert_task=task_row("b")))
        await writer.submit(Write(task_id="a", values={"status": "PROCESSING"}))
        assert writer._loop_commits == 3, target
        assert statements == ["INSERT", "UPDATE"], target
        assert len(commits) == 2, target
        writer.stop()
        engine.dispose()


async def test_the_loop_commits_its_own_writes_never_waits_for_a_lock_and_keeps_order(
    tmp_path: Path,
) -> None:
    """On a SQLite file the writes of one turn of the loop commit together, on the loop.
    While another connection holds SQLite's write lock, the loop does not wait: its writes
    go to the writer thread, and so do the writes after them until the thread has committed
    them, so the last write of a task is the one that stands."""
    import sqlite3
    import threading

    from spyglass.tasks.dbwriter import CHECKPOINT_EVERY
    from spyglass.tasks.store import TaskStore

    path = tmp_path / "l.db"
    store = TaskStore(f"sqlite:///{path}")
    store.migrate()
    await store.start()
    committed_in: list[int] = []
    event.listen(store.engine, "commit", lambda _conn: committed_in.append(threading.get_ident()))
    loop_thread = threading.get_ident()

    async def row(task_id: str) -> dict[str, Any]:
        found = await store.get_row(task_id)
        assert found is not None
        return found

    try:
        # Three writes in one turn: one transaction, on the loop.
        await asyncio.gather(*(store.insert_task(task_row(f"t{i}"), []) for i in range(3)))
        assert committed_in == [loop_thread]

        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")  # SQLite's write lock, held elsewhere
        first = asyncio.create_task(store.update_task("t0", {"message": "first"}))
        ticks = 0
        while ticks < 20:  # the loop keeps running while the write waits for the lock
            await asyncio.sleep(0)
            ticks += 1
        assert not first.done()
        holder.execute("COMMIT")
        holder.close()
        # The lock is free, but the first write is still with the thread (asleep in
        # SQLite's busy wait): the second goes after it, not past it on the loop.
        second = asyncio.create_task(store.update_task("t0", {"message": "second"}))
        await asyncio.wait_for(asyncio.gather(first, second), 30)
        assert (await row("t0"))["message"] == "second"
        assert loop_thread not in committed_in[1:]  # the thread committed both

        # The thread has nothing in hand again: the next write is the loop's.
        committed_in.clear()
        await store.update_task("t1", {"message": "back"})
        assert committed_in == [loop_thread]
        assert (await row("t1"))["message"] == "back"

        # The loop's commits never checkpoint the WAL; the thread does, while the loop's
        # writes wait behind it, so SQLite starts the WAL over and it stays small (without
        # that, 1,000 one-page commits leave 1,000 pages in it).
        for i in range(5 * CHECKPOINT_EVERY):
            await store.update_task("t2", {"progress": float(i)})
        assert (await row("t2"))["progress"] == 5 * CHECKPOINT_EVERY - 1
        pages = path.with_name(path.name + "-wal").stat().st_size / 4096
        assert pages < 3 * CHECKPOINT_EVERY, f"{pages:.0f} pages in the WAL"
    finally:
        await store.close()


async def test_a_task_whose_worker_is_gone_is_taken_over(engine: Engine) -> None:
    """Leases: a task held by a worker that stopped renewing is recovered (re-run where the
    job allows retries, else FAILED/INTERRUPTED); cancelling such a task records CANCELLED."""
    from datetime import timedelta

    from spyglass.tasks.models import new_task_id, utcnow

    @monitored_background_task(retries=1)
    async def again(task: TaskContext) -> int:
        return task.attempt

    @monitored_background_task
    async def once(task: TaskContext) -> int:
        return task.attempt

    for fn in (again, once):
        engine.registry.register(spec_of(staticmethod(fn)))

    async def orphan(job: str) -> str:
        now = utcnow()
        row = {
            "id": new_task_id(),
            "state_name": "unit_state",
            "task_name": job,
            "status": TaskStatus.PROCESSING.value,
            "progress": 40.0,
            "origin": "direct",
            "attempt": 1,
            "created_at": now,
            "updated_at": now,
            "worker_id": "a-worker-that-died",
            "lease_expires_at": now - timedelta(seconds=1),
        }
        await engine._store.insert_task(row, [])
        return row["id"]

    rerun, interrupted, cancelled = (
        await orphan("again"),
        await orphan("once"),
        await orphan("once"),
    )
    assert await engine.cancel_and_wait(cancelled)
    assert (await engine.get(cancelled) or DEFAULT_VIEW).status is TaskStatus.CANCELLED
    taken = await engine.recover(everyone=False)
    assert set(taken) == {rerun, interrupted}
    await engine.wait(rerun)
    done = await engine.get(rerun)
    assert done is not None and (done.status, done.result) == ("COMPLETED", 2)
    failed = await engine.get(interrupted)
    assert failed is not None and failed.error_code == "INTERRUPTED"
    # A live lease is left alone.
    fresh = await orphan("once")
    lease = {"lease_expires_at": utcnow() + timedelta(seconds=60)}
    await engine._store.update_task(fresh, lease)
    assert await engine.recover(everyone=False) == []


async def test_health_counts_running_tasks_without_a_scan(engine: Engine) -> None:
    """The running count health reports is a counter kept with every status change: right
    while jobs run, after they complete, fail or are cancelled."""
    release = asyncio.Event()

    @monitored_background_task
    async def hold(task: TaskContext) -> None:
        await release.wait()

    @monitored_background_task
    async def fail(task: TaskContext) -> None:
        raise ValueError("no")

    held = [await engine.start_job(spec_of(hold), None, origin="direct") for _ in range(5)]
    failed = await engine.start_job(spec_of(fail), None, origin="direct")
    await engine.wait(failed.id)

    async def running() -> int:
        return (await engine.health()).running_tasks

    async with asyncio.timeout(10):
        while await running() != 5:
            await asyncio.sleep(0.01)
    assert await engine.cancel_and_wait(held[0].id)
    assert await running() == 4
    release.set()
    for task in held[1:]:
        await engine.wait(task.id)
    assert await running() == 0


async def test_a_subscriber_is_told_nothing_stale() -> None:
    """Nothing of a task follows its end but its deletion, and an older attempt's message
    that arrives late (a stalled process's) is not told after a newer attempt's."""
    bus = LocalBus()
    sub = bus.subscribe(Topic())

    def msg(attempt: int, status: str, *, terminal: bool = False, kind: str = "update") -> None:
        payload = {"type": kind, "status": status}
        bus.publish(TaskMessage("t", "s", None, None, 0, terminal, False, payload, attempt=attempt))

    msg(1, "PROCESSING")
    msg(2, "PENDING")  # another worker runs it again
    msg(1, "PROCESSING")  # the stalled one, late
    msg(2, "PROCESSING")
    msg(2, "COMPLETED", terminal=True)
    msg(1, "PENDING")  # later still
    msg(2, "PROCESSING")
    msg(0, "COMPLETED", kind="deleted", terminal=True)
    got = [(m.attempt, m.payload["status"], m.payload["type"]) for m in await sub.get_batch()]
    assert got == [
        (1, "PROCESSING", "update"),
        (2, "PENDING", "update"),
        (2, "PROCESSING", "update"),
        (2, "COMPLETED", "update"),
        (0, "COMPLETED", "deleted"),
    ]
    assert sub.stale == 3
    sub.close()


async def test_the_readers_of_one_task_are_told_the_same_and_nothing_stale() -> None:
    """A task's own subscribers are judged together: one that came after a newer attempt's
    message is not told an older attempt's either, and a wide one keeps its own record."""
    bus = LocalBus()
    first, wide = bus.subscribe(Topic(task_id="t")), bus.subscribe(Topic())
    other = bus.subscribe(Topic(task_id="u"))

    def msg(task: str, attempt: int, status: str, *, terminal: bool = False) -> None:
        payload = {"type": "update", "status": status}
        message = TaskMessage(task, "s", None, None, 0, terminal, False, payload, attempt=attempt)
        bus.publish(message)

    msg("t", 2, "PROCESSING")  # another worker runs it again
    late = bus.subscribe(Topic(task_id="t"))
    msg("t", 1, "PROCESSING")  # the stalled one, late: for no one
    msg("u", 1, "PROCESSING")  # another task's first attempt: told
    msg("t", 2, "COMPLETED", terminal=True)
    msg("t", 2, "PROCESSING")  # after the end: for no one

    def told(sub: Any) -> list[tuple[str, int, str]]:
        return [(m.task_id, m.attempt, m.payload["status"]) for m in sub._buffer]

    assert told(first) == [("t", 2, "PROCESSING"), ("t", 2, "COMPLETED")]
    assert told(late) == [("t", 2, "COMPLETED")]
    assert told(other) == [("u", 1, "PROCESSING")]
    assert told(wide) == [("t", 2, "PROCESSING"), ("u", 1, "PROCESSING"), ("t", 2, "COMPLETED")]
    assert (first.stale, late.stale, other.stale, wide.stale) == (2, 2, 0, 2)
    for sub in (first, wide, other, late):
        sub.close()
    assert bus.subscriber_count == 0 and bus.followed_tasks() == []


async def test_a_reader_behind_gets_the_newest_progress_and_every_status_in_order() -> None:
    bus = LocalBus()
    slow, fast = bus.subscribe(Topic()), bus.subscribe(Topic())
    told: list[tuple[str, str, bool]] = []
    fast_got: list[tuple[str, str]] = []

    def publish(task: str, what: str, *, droppable: bool, terminal: bool = False) -> None:
        payload = {"type": "update", "what": what}
        bus.publish(TaskMessage(task, "s", None, None, 0, terminal, droppable, payload))
        told.append((task, what, droppable))

    async def keep_up() -> None:
        for m in await fast.get_batch():
            fast_got.append((m.task_id, m.payload["what"]))

    publish("a", "PROCESSING", droppable=False)
    for i in range(1, 51):
        publish("a", f"a {i}%", droppable=True)
        publish("b", f"b {i}%", droppable=True)
        await keep_up()
        if i == 20:
            publish("a", "a log line", droppable=False)
            await keep_up()
    publish("a", "COMPLETED", droppable=False, terminal=True)
    publish("b", "b 51%", droppable=True)
    await keep_up()

    got = [(m.task_id, m.payload["what"]) for m in await slow.get_batch()]
    # Every status change, line and end, in order; between them only each task's newest
    # progress, in the place of its first unread one.
    assert got == [
        ("a", "PROCESSING"),
        ("a", "a 20%"),
        ("b", "b 20%"),
        ("a", "a log line"),
        ("a", "a 50%"),
        ("b", "b 50%"),
        ("a", "COMPLETED"),
        ("b", "b 51%"),
    ]
    assert slow.dropped == len(told) - len(got)
    # The reader that kept up was told everything, in order.
    assert fast_got == [(task, what) for task, what, _ in told]
    assert fast.dropped == 0


async def test_a_message_of_no_known_attempt_is_never_judged_stale_by_it() -> None:
    bus = LocalBus()
    sub = bus.subscribe(Topic())
    for attempt in (2, 0):
        payload = {"type": "update", "attempt": attempt}
        bus.publish(TaskMessage("t", "s", None, None, 0, False, False, payload, attempt=attempt))
    assert [m.payload["attempt"] for m in await sub.get_batch()] == [2, 0]
    assert sub.stale == 0


async def test_a_listening_reader_is_called_at_each_message_and_takes_them_in_order() -> None:
    """A reader that writes on callbacks (`listen`, `take`): told at each delivery and at the
    close; what it has not taken yet is coalesced as for any reader behind."""
    bus = LocalBus()
    sub = bus.subscribe(Topic(task_id="t"))
    calls: list[int] = []
    sub.listen(lambda: calls.append(sub.waiting))
    assert sub.take() is None
    bus.publish(_msg(1, droppable=False))
    assert calls == [1]
    taken = sub.take()
    assert taken is not None and taken.version == 1 and sub.take() is None
    for v in range(2, 6):  # not taken as they come: only the newest progress stays
        bus.publish(_msg(v, droppable=True))
    bus.publish(_msg(6, droppable=False, terminal=True))
    assert len(calls) == 6
    assert [m.version for m in iter(sub.take, None)] == [5, 6]
    assert sub.dropped == 3
    sub.close()
    assert len(calls) == 7 and sub.closed
    sub.listen(None)


async def test_a_reader_that_keeps_up_takes_messages_at_once_and_order_is_kept() -> None:
    """`listen(..., direct)`: a message that comes while nothing is buffered is offered to
    the reader first; one it refuses (its last write still going) is buffered, and nothing is
    offered while anything is buffered, so the reader gets every message in order and older
    progress is still coalesced behind a write that takes long."""
    bus = LocalBus()
    sub = bus.subscribe(Topic(task_id="t"))
    written: list[int] = []
    busy = False
    wakes: list[int] = []

    def direct(msg: TaskMessage) -> bool:
        if busy:
            return False
        written.append(msg.version)
        return True

    sub.listen(lambda: wakes.append(sub.waiting), direct)
    bus.publish(_msg(1, droppable=False))
    bus.publish(_msg(2, droppable=True))
    assert written == [1, 2] and sub.waiting == 0 and wakes == []  # taken at once
    busy = True
    for v in range(3, 7):
        bus.publish(_msg(v, droppable=True))
    bus.publish(_msg(7, droppable=False))
    busy = False
    bus.publish(_msg(8, droppable=True))  # not offered: older ones wait
    assert written == [1, 2] and wakes == [1, 1, 1, 1, 2, 3]  # buffered, coalesced
    written.extend(m.version for m in iter(sub.take, None))
    assert written == [1, 2, 6, 7, 8] and sub.dropped == 3
    bus.publish(_msg(9, droppable=False, terminal=True))  # nothing waits: offered again
    assert written[-1] == 9 and sub.waiting == 0
    sub.close()
    sub.listen(None)


def test_a_socket_message_is_encoded_as_the_standard_library_would_read_it() -> None:
    """A message's JSON (pydantic-core's encoder) reads back as the payload; what that
    encoder refuses (bytes that are not UTF-8) is written by the standard library's."""
    import json
    import math

    payload = {
        "type": "update",
        "message": "déjà ☃",
        "progress": 12.5,
        "data": {"big": 2**70, "neg": -(2**100), "list": [1, None, True], "nested": {"a": ""}},
    }
    msg = _msg(1, droppable=True)
    msg.payload = payload
    assert json.loads(msg.json()) == payload
    assert msg.json() is msg.json() and msg.frame()["text"] is msg.json()  # encoded once
    odd = _msg(2, droppable=True)
    odd.payload = {"nan": math.nan, "raw": b"\xff"}
    back = json.loads(odd.json())
    assert math.isnan(back["nan"]) and back["raw"] == "b'\\xff'"


def test_a_task_id_is_a_random_version_4_uuid_in_its_usual_text() -> None:
    import uuid

    from spyglass.tasks.models import new_task_id

    ids = [new_task_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    # every bit but the version's and the variant's varies
    ints = [uuid.UUID(text).int for text in ids]
    fixed = (0xF << 76) | (0x3 << 62)
    assert all(any(n >> bit & 1 for n in ints) for bit in range(128) if not fixed >> bit & 1)
    assert all(any(not n >> bit & 1 for n in ints) for bit in range(128) if not fixed >> bit & 1)


def test_a_task_s_readers_are_given_each_message_in_the_order_they_subscribed() -> None:
    """One message, many sockets: the first to subscribe is written to first (a fan-out
    in a fixed order, like a plain broadcast's, not in the order of a set's hashes), also
    after some of them left."""
    bus = LocalBus()
    order: list[int] = []
    subs = [bus.subscribe(Topic(task_id="t")) for _ in range(50)]

    def reader(i: int) -> Any:
        return lambda msg: order.append(i) is None

    for i, sub in enumerate(subs):
        sub.listen(lambda: None, reader(i))
    bus.publish(_msg(1, droppable=True))
    assert order == list(range(50))
    for sub in subs[10:20]:
        sub.close()
    late = bus.subscribe(Topic(task_id="t"))
    late.listen(lambda: None, reader(50))
    order.clear()
    bus.publish(_msg(2, droppable=True))
    assert order == [*range(10), *range(20, 51)]


def test_a_live_task_s_socket_message_is_the_same_as_from_its_view() -> None:
    """A job's progress message is made straight from its live row (`direct_row`); it is
    field for field what the task's view gives (`direct_view`), whatever the row holds."""
    from datetime import UTC, datetime, timedelta

    from spyglass.tasks.messages import direct_row, direct_view, socket_payload

    now = datetime(2026, 12, 7, 12, 0, 0, 123456, tzinfo=UTC)
    base: dict[str, Any] = {
        "id": "a1", "state_name": "s", "task_name": "job", "status": "PROCESSING",
        "progress": 12, "updated_at": now,
    }  # fmt: skip
    rows = [
        base,
        {**base, "progress": None, "updated_at": None},
        {**base, "tool_id": "profile", "agents": ["quality", "drift"], "message": "Reading"},
        {**base, "tool_id": None, "agents": ["ignored"], "result": {"n": 2**70}},
        {**base, "tool_id": "clean", "agents": None, "status": "FAILED"},
        {
            **base, "status": "PENDING", "scheduled_at": now + timedelta(hours=1),
            "error_code": "JOB_ERROR", "error_message": "boom", "progress": 99.5,
        },
    ]  # fmt: skip
    for row in rows:
        assert direct_row(row) == direct_view(TaskView.of(row)), row
        seen = socket_payload("update", row, eta_seconds=1.0, rate=2.0, data={"t": 1})
        told = socket_payload("update", TaskView.of(row), eta_seconds=1.0, rate=2.0, data={"t": 1})
        assert list(seen.items()) == list(told.items())  # the same keys in the same order


def test_the_subscriber_count_is_kept_with_each_subscribe_and_close() -> None:
    bus = LocalBus()
    one = [bus.subscribe(Topic(task_id=f"t{i % 3}")) for i in range(5)]
    wide = [bus.subscribe(Topic(state_name="s")) for _ in range(2)]
    assert bus.subscriber_count == 7
    one[0].close()
    one[0].close()
    bus.unsubscribe(wide[0])
    wide[0].close()  # unsubscribed already: counted once
    assert bus.subscriber_count == 5
    for sub in [*one, *wide]:
        sub.close()
    assert bus.subscriber_count == 0 and bus.followed_tasks() == []


async def test_the_writers_direct_sqlite_path_stores_what_sqlalchemy_stores(
    tmp_path: Path,
) -> None:
    """On SQLite the writer runs its task and event writes on the cursor directly: the rows
    stored (each value and its SQLite type) are those SQLAlchemy's statements store, column
    defaults included."""
    from datetime import UTC, datetime, timedelta, timezone

    from spyglass.tasks.store import EVENT_TABLE, TASK_TABLE, make_engine, migrate

    when = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    writes = [
        Write(
            insert_task={
                "id": "t1",
                "state_name": "s",
                "task_name": "j",
                "status": "PENDING",
                "input_args": {"a": [1, 2.5, None], "é": "☃"},
                "result": None,
                "created_at": when,
                "updated_at": when.astimezone(timezone(timedelta(hours=2))),
                "scheduled_at": None,
            },
            events=[
                {
                    "task_id": "t1",
                    "seq": 1,
                    "timestamp": when,
                    "event_type": "status",
                    "message": "Queued",
                    "data": {"status": "PENDING"},
                }
            ],
        ),
        Write(
            task_id="t1",
            values={"status": "COMPLETED", "result": [1, "x"], "progress": 100, "message": None},
            events=[
                {
                    "task_id": "t1",
                    "seq": 2,
                    "timestamp": when + timedelta(seconds=1),
                    "event_type": "success",
                    "message": "Completed",
                    "data": None,
                }
            ],
        ),
        Write(task_id="t1", values={"completed_at": when, "error_code": None}),
    ]
    stored = []
    # Direct in the writer's thread, direct on the loop (its own commits), SQLAlchemy's.
    for way in ("thread", "loop", "sqlalchemy"):
        engine = make_engine(f"sqlite:///{tmp_path / f'{way}.db'}")
        migrate(engine)
        writer = GroupCommitWriter(engine, TASK_TABLE, EVENT_TABLE, inline=way == "loop")
        assert writer._direct is not None
        if way == "sqlalchemy":
            writer._direct = None
        writer.start()
        for write in writes:
            await writer.submit(write)
        writer.end_turn()
        assert writer._loop_commits == (len(writes) if way == "loop" else 0)
        writer.stop()
        with engine.connect() as conn:
            rows = []
            for table in ("task", "task_event"):
                names = [c[1] for c in conn.exec_driver_sql(f"PRAGMA table_info({table})")]
                typed = ", ".join(f"{n}, typeof({n})" for n in names)
                rows.append(conn.exec_driver_sql(f"SELECT {typed} FROM {table}").all())
        stored.append(rows)
        engine.dispose()
    assert stored[0] == stored[1] == stored[2]
    assert stored[0][0][0][1] == "text"  # the id, and the defaults filled in


async def test_a_row_read_in_the_loop_never_waits_for_sqlites_locks(tmp_path: Path) -> None:
    """On a SQLite file a task's row is read in the event loop (no thread hand-off) when
    SQLite gives it at once; while another connection holds a lock that makes readers
    wait, the read waits in a thread and the loop goes on."""
    import sqlite3
    from datetime import UTC, timedelta, timezone

    from spyglass.tasks.models import utcnow
    from spyglass.tasks.store import TASK_TABLE, TaskStore

    path = tmp_path / "r.db"
    store = TaskStore(f"sqlite:///{path}")
    store.migrate()
    await store.start()
    now = utcnow()
    row = {"id": "r1", "state_name": "s", "task_name": "t", "status": "PENDING"}
    row.update(input_args={"a": [1, None]}, result={"x": "☃"}, progress=12.5, priority=3)
    await store.insert_task({**row, "created_at": now, "updated_at": now}, [])
    # JSON nulls, times of another zone and on a whole second, read back as SQLAlchemy does.
    other = {**row, "id": "r2", "input_args": None, "result": None, "agents": ["a"]}
    whole = now.replace(microsecond=0).astimezone(timezone(timedelta(hours=-5)))
    other.update(created_at=whole, updated_at=now, completed_at=whole, scheduled_at=None)
    await store.insert_task(other, [])
    for task_id in ("r1", "r2"):
        quick = await store.get_row(task_id)
        assert store._quick is not None  # read in the loop
        with store.engine.connect() as conn:
            table = TASK_TABLE  # the row as SQLAlchemy reads it
            found = conn.execute(sa.select(table).where(table.c.id == task_id)).one()
        assert quick is not None and quick["status"] == "PENDING"
        assert quick == dict(found._mapping)
    assert quick["created_at"] == whole and quick["created_at"].tzinfo is UTC
    assert quick["result"] is None and quick["agents"] == ["a"]
    assert await store.get_row("nope") is None
    await store.close()

    # In WAL mode no writer makes a reader wait; with a rollback journal a writer's
    # exclusive lock does: the read then waits in a thread, not in the loop.
    plain = sqlite3.connect(path, isolation_level=None)
    plain.execute("PRAGMA journal_mode=DELETE")
    plain.close()
    store = TaskStore(f"sqlite:///{path}")
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE task SET status = 'PROCESSING'")
        reading = asyncio.create_task(store.get_row("r1"))
        ticks = 0
        while ticks < 20:  # the loop keeps running while the read waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert not reading.done()
        holder.execute("COMMIT")
        found = await asyncio.wait_for(reading, 30)
        assert found is not None and found["status"] == "PROCESSING"
    finally:
        holder.close()
        await store.close()


async def test_no_status_is_restated_to_another_process_before_it_is_told(
    tmp_path: Path,
) -> None:
    """Among several processes (a Redis bus) a status change is written, then told. Asked
    for the task's current state meanwhile (`Runner.current`, answering another process's
    reader), the runner restates only what it has told: never a status still being written,
    which a reader would then be told twice, or told although its write failed."""
    from tests.services import redis_server

    @monitored_background_task
    async def brief(task: TaskContext) -> str:
        await task.update(progress=50, message="half way")
        return "done"

    with redis_server() as redis_url:
        async with unit_engine(tmp_path, 0.25, redis_url) as eng:
            assert not eng._runner.alone  # the mode where changes are written before told
            restated: list[tuple[str | None, str]] = []  # (status told by then, restated)
            withheld = 0  # asked while it ran, and nothing restated
            with eng.subscribe(Topic()) as sub:  # before the start: told everything
                task = await eng.start_job(spec_of(brief), None, origin="direct")
                told: str | None = None
                while True:
                    while (msg := sub.take()) is not None:
                        told = msg.payload["status"]
                    if told == "COMPLETED":
                        break
                    answer = eng._runner.current(task.id)
                    if answer is not None:
                        restated.append((told, answer.payload["status"]))
                    elif task.id in eng._runner.live:
                        withheld += 1
                    await asyncio.sleep(0)  # every turn of the loop, the writes' included
    assert restated, "the runner was never asked while the job ran"
    assert withheld, "never asked while a status change was being written"
    assert all(told == status for told, status in restated), restated
