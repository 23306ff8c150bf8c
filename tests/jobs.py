"""Jobs the tests start through the public interfaces (loaded with SPYGLASS_JOB_MODULES)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, Field

from spyglass.states.monitor import MonitorState
from spyglass.tasks import TaskContext, monitored_background_task
from tests import cpu_work


class StepArgs(BaseModel):
    steps: int = 10
    delay: float = 0.1
    #: A file the job appends a line to at every step: proof of whether the body still runs.
    marker: str | None = None


class BurnArgs(BaseModel):
    #: The file the child process writes its pid to.
    pid_file: str
    seconds: float = Field(default=120.0, gt=0, le=300)


class FlakyArgs(BaseModel):
    fail_times: int = 1


class TallyArgs(BaseModel):
    #: A file every run appends "<task id> <attempt>" to (O_APPEND: atomic across processes).
    path: str
    delay: float = 0.0


class HoldArgs(BaseModel):
    #: A file the job waits for after its one report, before it ends.
    go: str
    #: A file the job waits for before it reports (None: it reports at once).
    ready: str | None = None
    progress: float = 40.0


class FloodArgs(BaseModel):
    #: A file the job waits for before its first update (the test's readers are connected).
    go: str
    updates: int = Field(default=60, ge=1, le=1000)
    #: Characters of padding in each update's data: what fills a slow reader's buffers.
    size: int = Field(default=200_000, ge=0, le=1_000_000)
    delay: float = 0.05
    #: A timeline line (never dropped) after every this many updates.
    line_every: int = 10


DEFAULT_STEPS = StepArgs()
SLOW_STEPS = StepArgs(steps=100, delay=0.05)
LIMITED_STEPS = StepArgs(steps=5, delay=0.1)
ONE_FAILURE = FlakyArgs()
PAID_STEPS = StepArgs(steps=3, delay=0.05)
#: Cost of each of the paid jobs below, in credits.
PAID_COST = 5


async def _step_loop(task: TaskContext, args: StepArgs) -> dict[str, int]:
    for i in range(args.steps):
        if args.marker:
            with Path(args.marker).open("a") as fh:
                fh.write(f"{i}\n")
        await task.update(progress=(i + 1) * 100 / args.steps, message=f"step {i + 1}")
        await asyncio.sleep(args.delay)
    return {"steps": args.steps}


class ProbeJobsState(MonitorState):
    state_alias: ClassVar[str] = "testjobs"

    @staticmethod
    @monitored_background_task
    async def steps(task: TaskContext, args: StepArgs = DEFAULT_STEPS) -> dict[str, int]:
        """Counts through `steps` steps, `delay` seconds apart."""
        return await _step_loop(task, args)

    @staticmethod
    @monitored_background_task(timeout=1.0)
    async def slow(task: TaskContext, args: StepArgs = SLOW_STEPS) -> dict:
        """Takes 5 s against a 1 s time limit."""
        return await _step_loop(task, args)

    @staticmethod
    @monitored_background_task(max_concurrency=2)
    async def limited(task: TaskContext, args: StepArgs = LIMITED_STEPS) -> dict:
        """At most two run at once."""
        return await _step_loop(task, args)

    @staticmethod
    @monitored_background_task
    async def burn(task: TaskContext, args: BurnArgs) -> int:
        """Burns CPU in `task.run_sync` for `seconds` (its process writes its pid first)."""
        return await task.run_sync(cpu_work.burn, args.pid_file, args.seconds)

    @staticmethod
    @monitored_background_task
    async def boom(task: TaskContext) -> None:
        """Fails half-way."""
        await task.update(progress=50, message="about to fail")
        raise RuntimeError("the job broke on purpose")

    @staticmethod
    @monitored_background_task(retries=2, retry_backoff=0.1)
    async def flaky(task: TaskContext, args: FlakyArgs = ONE_FAILURE) -> dict[str, int]:
        """Fails on its first `fail_times` attempts, then succeeds."""
        await asyncio.sleep(0.3)  # let the test's socket connect first
        await task.update(progress=40)
        if task.attempt <= args.fail_times:
            raise ValueError(f"attempt {task.attempt} fails")
        return {"attempt": task.attempt}

    @staticmethod
    @monitored_background_task(retries=1, retry_backoff=0.1)
    async def durable(task: TaskContext, args: StepArgs = SLOW_STEPS) -> dict[str, int]:
        """Steps through; may run once more if its first attempt (or its worker) fails."""
        result = await _step_loop(task, args)
        return {**result, "attempt": task.attempt}

    @staticmethod
    @monitored_background_task(retries=1, retry_backoff=0.1)
    async def stall(task: TaskContext, args: StepArgs = SLOW_STEPS) -> dict[str, int]:
        """On its first attempt, blocks its worker's event loop for `delay` seconds (a stalled
        process); then steps through `steps` steps."""
        await task.update(progress=5, message="about to stall")
        if task.attempt == 1:
            time.sleep(args.delay)  # blocks the whole worker, on purpose
        for i in range(args.steps):
            await task.update(progress=10 + 90 * (i + 1) / args.steps, message=f"step {i + 1}")
            await asyncio.sleep(0.05)
        return {"attempt": task.attempt}

    @staticmethod
    @monitored_background_task
    async def tally(task: TaskContext, args: TallyArgs) -> str:
        """Records that it ran, and where (which task, which attempt)."""
        with Path(args.path).open("a") as fh:
            fh.write(f"{task.task_id} {task.attempt}\n")
        await asyncio.sleep(args.delay)
        return task.task_id

    @staticmethod
    @monitored_background_task
    async def where(task: TaskContext, args: TallyArgs) -> str:
        """Records which task, attempt and process ran it."""
        _append(args.path, f"{task.task_id} {task.attempt} {os.getpid()}")
        await asyncio.sleep(args.delay)
        return task.task_id

    @staticmethod
    @monitored_background_task(max_concurrency=1)
    async def serial(task: TaskContext, args: TallyArgs) -> str:
        """One run at a time, anywhere: records the order runs start in."""
        _append(args.path, task.task_id)
        await asyncio.sleep(args.delay)
        return task.task_id

    @staticmethod
    @monitored_background_task(max_concurrency=2)
    async def pair(task: TaskContext, args: TallyArgs) -> str:
        """At most two runs at once, anywhere: records when each starts and ends."""
        _append(args.path, f"start {time.time():.6f} {task.task_id}")
        await asyncio.sleep(args.delay)
        _append(args.path, f"end {time.time():.6f} {task.task_id}")
        return task.task_id

    @staticmethod
    @monitored_background_task
    async def logs(task: TaskContext) -> str:
        """Writes timeline lines of each level and an out-of-range progress."""
        await asyncio.sleep(0.5)  # let the test's socket connect first
        await task.log("hello from the job", data={"k": 1})
        await task.log("careful", level="warning")
        await task.update(progress=150)
        return "ok"

    @staticmethod
    @monitored_background_task
    async def flood(task: TaskContext, args: FloodArgs) -> int:
        """Large progress updates (`data.i` numbers them), a timeline line and a new message
        every `line_every`, once the file `go` exists."""
        while not Path(args.go).exists():
            await asyncio.sleep(0.01)
        pad = "x" * args.size
        for i in range(args.updates):
            message = f"part {i // args.line_every + 1}" if i % args.line_every == 0 else None
            await task.update(
                progress=(i + 1) * 100 / args.updates, message=message, data={"i": i, "pad": pad}
            )
            if i % args.line_every == args.line_every - 1:
                await task.log(f"line {i}")
            await asyncio.sleep(args.delay)
        return args.updates

    @staticmethod
    @monitored_background_task
    async def hold(task: TaskContext, args: HoldArgs) -> float:
        """Reports once (once the file `ready` exists), then says nothing until the file
        `go` exists."""
        while args.ready and not Path(args.ready).exists():
            await asyncio.sleep(0.01)
        await task.update(progress=args.progress, message="half way")
        while not Path(args.go).exists():
            await asyncio.sleep(0.01)
        return args.progress

    @staticmethod
    @monitored_background_task
    async def not_json(task: TaskContext) -> object:
        """Returns something JSON cannot hold."""
        return object()

    @monitored_background_task
    async def page_only(self, task: TaskContext) -> str:
        """An instance job: started from its page, not by the direct API."""
        await task.update(progress=100)
        return "page"

    # -- costed jobs: charged to whoever starts them, refunded by the credits rule ----------
    @staticmethod
    @monitored_background_task(cost=PAID_COST)
    async def paid(task: TaskContext, args: StepArgs = PAID_STEPS) -> dict[str, int]:
        """Costs 5 credits; steps through and completes."""
        return await _step_loop(task, args)

    @staticmethod
    @monitored_background_task(cost=PAID_COST)
    async def paid_boom(task: TaskContext) -> None:
        """Costs 5 credits; fails before doing any work."""
        await asyncio.sleep(0.3)  # let the test's socket connect first
        raise RuntimeError("the paid job broke on purpose")

    @staticmethod
    @monitored_background_task(cost=PAID_COST)
    async def paid_partial(task: TaskContext) -> None:
        """Costs 5 credits; finishes one unit of work (as an agent does), then fails."""
        await asyncio.sleep(0.3)
        await task.log("first unit done", level="agent_completed", data={"agent": "unit-1"})
        raise RuntimeError("failed after doing paid work")

    @staticmethod
    @monitored_background_task(cost=PAID_COST)
    async def paid_units(task: TaskContext) -> None:
        """Costs 5 credits; finishes a unit of work worth 2, then takes a long while."""
        await task.log("unit 1 done", level="agent_completed", data={"agent": "u1", "cost": 2})
        await asyncio.sleep(120)

    @staticmethod
    @monitored_background_task(cost=PAID_COST)
    async def paid_sleep(task: TaskContext, args: StepArgs = SLOW_STEPS) -> dict[str, int]:
        """Costs 5 credits; takes a while (to be cancelled or interrupted)."""
        return await _step_loop(task, args)


def _append(path: str, line: str) -> None:
    with Path(path).open("a") as fh:  # O_APPEND: whole lines, across processes
        fh.write(line + "\n")
