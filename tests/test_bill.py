"""A task's bill (`spyglass.tasks.credits.bill`), read off its cost and its timeline: what was
charged, what each finished agent kept, what was refunded."""

from __future__ import annotations

from typing import Any

from spyglass.tasks.credits import WORK_DONE, bill
from spyglass.tasks.status import TaskStatus
from spyglass.tasks.view import TaskView

AGENTS = ("a", "b", "c")


def task(status: TaskStatus, error_code: str | None = None, owner: int | None = 1) -> TaskView:
    return TaskView(
        id="t",
        state_name="data_tools",
        task_name="tool",
        status=status,
        tool_id="tool",
        agents=AGENTS,
        cost=30,
        owner_id=owner,
        error_code=error_code,
    )


def done(agent: str, cost: int = 10) -> tuple[str, Any]:
    return (WORK_DONE, {"agent": agent, "cost": cost})


def test_a_completed_run_keeps_its_charge() -> None:
    b = bill(task(TaskStatus.COMPLETED), [done("a"), done("b"), done("c"), ("success", {})])
    assert (b.charged, b.kept, b.refunded, b.settled, b.unfinished) == (30, 30, 0, True, ())
    assert b.finished == (("a", 10), ("b", 10), ("c", 10))


def test_a_cancelled_run_refunds_the_agents_that_did_not_finish() -> None:
    events = [done("a"), ("status", {"status": "CANCELLED", "refunded": 20})]
    b = bill(task(TaskStatus.CANCELLED), events)
    assert (b.charged, b.kept, b.refunded, b.unfinished) == (30, 10, 20, ("b", "c"))
    assert b.outstanding == 0


def test_a_running_task_keeps_what_finished_so_far() -> None:
    b = bill(task(TaskStatus.PROCESSING), [done("a")])
    assert (b.charged, b.kept, b.refunded, b.settled, b.outstanding) == (30, 10, 0, False, 20)


def test_nothing_is_charged_before_a_start_or_when_the_credits_fell_short() -> None:
    for status in (TaskStatus.CREATED, TaskStatus.UPLOADING, TaskStatus.EXPIRED):
        assert bill(task(status), []).charged == 0
    refused = task(TaskStatus.FAILED, error_code="BILLING_INSUFFICIENT_CREDITS")
    assert bill(refused, []).charged == 0
    assert bill(task(TaskStatus.COMPLETED, owner=None), []).charged == 0
