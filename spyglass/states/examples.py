"""The seed's example jobs (S004): `example_task` and `example_task2`."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from pydantic import BaseModel, Field

from spyglass.states.monitor import MonitorState
from spyglass.tasks import TaskContext, TaskStatus, monitored_background_task


class InputArgs(BaseModel):
    """Input arguments for the task."""

    name: str = Field(min_length=1, max_length=200, examples=["Matt"])
    age: int = Field(ge=0, le=200, examples=[25])


DEFAULT_TASK_ARGS = InputArgs(name="John Doe", age=30)


async def three_steps(task: TaskContext) -> str:
    """The seed's task1: three steps of 33 %, half a second apart."""
    for i in range(3):
        await task.update(progress=(i + 1) * 33, status=TaskStatus.PROCESSING)
        await asyncio.sleep(0.5)
    return "<Task1 Result>"


class ExampleTaskState(MonitorState):
    """Example task: three steps, no input."""

    state_alias: ClassVar[str] = "example_task"

    @staticmethod
    @monitored_background_task
    async def task1(task: TaskContext, **kwargs: object) -> str:
        """Example: three steps, half a second apart.

        Background task that updates progress."""
        return await three_steps(task)


class ExampleTaskState2(MonitorState):
    """Example task 2: ten steps, with input arguments."""

    state_alias: ClassVar[str] = "example_task2"

    @staticmethod
    @monitored_background_task
    async def task1(task: TaskContext, **kwargs: object) -> str:
        """Example 2: three steps, half a second apart.

        Background task that updates progress."""
        return await three_steps(task)

    @staticmethod
    @monitored_background_task
    async def task2_with_args(task: TaskContext, task_args: InputArgs = DEFAULT_TASK_ARGS) -> str:
        """Example 2: ten steps for a name and an age.

        Background task that updates progress with input arguments."""
        for i in range(10):
            await task.update(progress=(i + 1) * 10, status=TaskStatus.PROCESSING)
            await asyncio.sleep(0.5)
        return f"Completed task for {task_args.name}, age {task_args.age}"
