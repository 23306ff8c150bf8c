"""Credits: what a task costs its owner, charged with its start, refunded by one rule.

A task's `cost` is what its owner was charged for it: the agents of a data tool, or
the `cost` of a job declared `@monitored_background_task(cost=…)`. The charge is made
in the same database transaction as the start (see `TaskStore.insert_charged` and
`TaskStore.claim_waiting`), so a start that is refused or loses a race charges nothing,
and a charge never goes without its task.

The refund rule is the one below, for data tools and costed jobs alike: a charged task
that ends without completing (failed, cancelled or interrupted) before any unit of its
work finished gets its whole cost back. A unit of work is an `agent_completed` event on
its timeline: each agent of a tool logs one, and a job may log one
(`task.log(..., level="agent_completed")`) once it has done work worth keeping. The
refund is written in the same transaction as the task's end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from spyglass.errors import DomainError
from spyglass.tasks.status import TaskStatus

#: The timeline event that marks a finished unit of paid work (an agent of a tool).
WORK_DONE = "agent_completed"
#: How a task ends when its refund is due (COMPLETED keeps the charge).
REFUNDABLE = frozenset({TaskStatus.FAILED.value, TaskStatus.CANCELLED.value})


def refund_due(row: Mapping[str, Any], status: str, work_done: bool) -> int:
    """The credits to give back to a task's owner as it ends `status` (0: none).

    `work_done`: whether any unit of its work (an `agent_completed` event) finished.
    """
    if status not in REFUNDABLE or work_done or row.get("owner_id") is None:
        return 0
    return max(0, int(row.get("cost") or 0))


def insufficient(available: int, breakdown: Mapping[str, int], what: str) -> DomainError:
    """The 402 of a start the owner's credits do not cover (all or nothing)."""
    required = sum(breakdown.values())
    return DomainError(
        "BILLING_INSUFFICIENT_CREDITS",
        f"Insufficient credits for {what}. Required: {required}, Available: {available}",
        402,
        context={
            "available": available,
            "required": required,
            "shortfall": max(0, required - available),
            "breakdown": dict(breakdown),
        },
    )


def needs_account(state_name: str, task_name: str, cost: int) -> DomainError:
    """The 403 of a costed job asked for on the token-free API: nobody could pay for it."""
    return DomainError(
        "JOB_NEEDS_ACCOUNT",
        f"Job '{task_name}' of state '{state_name}' costs {cost} credits, so it runs only for "
        "an account: start it with a client token (the token API or the REST API) or from "
        "its page",
        403,
    )


def _users() -> sa.Table:
    from spyglass.auth.models import User  # imported late: it imports this package

    return User.__table__  # type: ignore[attr-defined,no-any-return]


def charge(owner_id: int, amount: int) -> sa.Update:
    """Take `amount` credits only if the balance covers all of it (matches no row otherwise)."""
    users = _users()
    return (
        sa.update(users)
        .where(users.c.id == owner_id, users.c.credits >= amount)
        .values(credits=users.c.credits - amount)
    )


def give_back(owner_id: int, amount: int) -> sa.Update:
    """Return `amount` credits to their owner."""
    users = _users()
    return sa.update(users).where(users.c.id == owner_id).values(credits=users.c.credits + amount)


def balance(conn: Connection, owner_id: int) -> int:
    users = _users()
    value = conn.execute(
        sa.select(users.c.credits).where(users.c.id == owner_id)
    ).scalar_one_or_none()
    return int(value or 0)
