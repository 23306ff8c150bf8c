"""Jobs the benchmarks start (loaded with SPYGLASS_JOB_MODULES=bench.jobs)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, Field

from spyglass.states.monitor import MonitorState
from spyglass.tasks import TaskContext, monitored_background_task


class PulseArgs(BaseModel):
    updates: int = 200
    interval: float = 0.02
    #: Seconds to wait before the first update, so that every subscriber is connected.
    start_delay: float = 2.0


class ChattyArgs(BaseModel):
    rate: int = 1000
    seconds: float = 5.0


class SleepArgs(BaseModel):
    seconds: float = Field(default=600.0, gt=0, le=3600)


class SpinArgs(BaseModel):
    #: The file the child process writes its pid to (the cancel benchmark watches it).
    pid_file: str
    seconds: float = Field(default=60.0, gt=0, le=300)


def spin_cpu(pid_file: str, seconds: float) -> int:
    """CPU work for `task.run_sync`: write this process's pid, then spin for `seconds`."""
    Path(pid_file).write_text(str(os.getpid()))
    deadline = time.monotonic() + seconds
    spins = 0
    while time.monotonic() < deadline:
        spins += sum(range(1000)) > 0
    return spins


DEFAULT_PULSE = PulseArgs()
DEFAULT_CHATTY = ChattyArgs()


class BenchState(MonitorState):
    state_alias: ClassVar[str] = "bench"

    @staticmethod
    @monitored_background_task
    async def noop(task: TaskContext) -> None:
        """Does nothing: measures the engine's own cost per task."""
        return None

    @staticmethod
    @monitored_background_task
    async def stamp(task: TaskContext) -> float:
        """A no-op that returns the time its body began (`time.time()`): the executor
        benchmark's job, for throughput and for dispatch latency."""
        return time.time()

    @staticmethod
    @monitored_background_task
    async def sleeper(task: TaskContext, args: SleepArgs) -> None:
        """Runs and sleeps (the health benchmark keeps thousands of them running)."""
        await asyncio.sleep(args.seconds)

    @staticmethod
    @monitored_background_task
    async def spin(task: TaskContext, args: SpinArgs) -> int:
        """CPU-bound: spins in a `task.run_sync` child process (the cancel benchmark)."""
        return await task.run_sync(spin_cpu, args.pid_file, args.seconds)

    @staticmethod
    @monitored_background_task
    async def pulse(task: TaskContext, args: PulseArgs = DEFAULT_PULSE) -> int:
        """Reports progress `updates` times, stamping each with the monotonic clock (ns)."""
        await asyncio.sleep(args.start_delay)
        for i in range(args.updates):
            await task.update(
                progress=(i + 1) * 100 / args.updates, data={"t": time.monotonic_ns()}
            )
            await asyncio.sleep(args.interval)
        return args.updates

    @staticmethod
    @monitored_background_task
    async def chatty(task: TaskContext, args: ChattyArgs = DEFAULT_CHATTY) -> int:
        """Reports progress `rate` times a second for `seconds` seconds."""
        total = int(args.rate * args.seconds)
        batch = max(1, args.rate // 100)  # sleep every 10 ms
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(total):
            await task.update(progress=(i + 1) * 100 / total)
            if i % batch == batch - 1:
                target = start + (i + 1) / args.rate
                await asyncio.sleep(max(0.0, target - loop.time()))
        return total
