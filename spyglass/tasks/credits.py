"""Credits: what a task costs its owner, charged with its start, refunded by one rule.

A task's `cost` is what its owner was charged for it: the agents of a data tool, or
the `cost` of a job declared `@monitored_background_task(cost=…)`. The charge is made
in the same database transaction as the start (see `TaskStore.insert_charged` and
`TaskStore.claim_waiting`), so a start that is refused or loses a race charges nothing,
and a charge never goes without its task.

The refund rule is the one below, for data tools and costed jobs alike: a charged task
that ends without completing (failed, cancelled or interrupted) gets back what the units
of its work that did not finish cost. A unit of work is an `agent_completed` event on
its timeline: each agent of a tool logs one with its own `cost` (so a run cancelled
after two of five agents keeps the two agents' credits and refunds the other three),
and a job may log one (`task.log(..., level="agent_completed")`) once it has done work
worth keeping; a unit that names no cost earns the whole task's cost. The refund is
written in the same transaction as the task's end, and its timeline line says how much
came back (`refunded`).

This module is the one place billing is decided: what a start costs is charged with the
start (`charge`, the 402 of `insufficient`), what comes back with the end (`refund_due`),
and what a task's owner is shown (`bill`: charged, kept by each finished unit, refunded),
read off the task's cost and its timeline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from spyglass.errors import DomainError
from spyglass.tasks.status import TaskStatus
from spyglass.tasks.view import TaskView

#: The timeline event that marks a finished unit of paid work (an agent of a tool).
WORK_DONE = "agent_completed"
#: How a task ends when its refund is due (COMPLETED keeps the charge).
REFUNDABLE = frozenset({TaskStatus.FAILED.value, TaskStatus.CANCELLED.value})


def earned(data: Any, cost: int) -> int:
    """What one finished unit of work (the data of an `agent_completed` event) earned,
    of a task that cost `cost`: its own `cost`, or all of it when it names none."""
    unit = data.get("cost") if isinstance(data, Mapping) else None
    if isinstance(unit, int) and not isinstance(unit, bool) and unit >= 0:
        return min(unit, cost)
    return cost


def refund_due(row: Mapping[str, Any], status: str, spent: int) -> int:
    """The credits to give back to a task's owner as it ends `status` (0: none).

    `spent`: what the units of its work that finished earned (see `earned`).
    """
    if status not in REFUNDABLE or row.get("owner_id") is None:
        return 0
    return max(0, int(row.get("cost") or 0) - spent)


def refund_note(refund: int, agents: Any, finished: Any) -> str:
    """The plain words of a refund on a task's last timeline line."""
    words = f"{refund} credit{'s' if refund != 1 else ''} refunded"
    unfinished = [a for a in (agents or []) if a not in set(finished or [])]
    if unfinished:
        words += f" for the agents that did not finish ({', '.join(unfinished)})"
    return words


@dataclass(frozen=True)
class Bill:
    """What a task's owner was charged for it, and what of that was kept or given back."""

    charged: int
    #: Earned by the units of work that finished (kept whatever happens next).
    kept: int
    refunded: int
    #: The task ended: nothing more will be kept or refunded.
    settled: bool
    #: The finished units, in order: (agent, credits kept); a job's unit is named "work".
    finished: tuple[tuple[str, int], ...] = ()
    #: Agents that did not finish (refunded once the task ends without completing).
    unfinished: tuple[str, ...] = ()

    @property
    def outstanding(self) -> int:
        """Charged, neither kept nor refunded yet (the work still running or waiting)."""
        return max(0, self.charged - self.kept - self.refunded)


#: Statuses of a task that was charged when it started (unless refused for its credits).
_STARTED = frozenset(
    {
        TaskStatus.PENDING,
        TaskStatus.PROCESSING,
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
    }
)
REFUSED = "BILLING_INSUFFICIENT_CREDITS"


def bill(task: TaskView, events: Iterable[tuple[str, Any]]) -> Bill:
    """A task's bill from the task and its timeline, given as (event type, data) pairs:
    each `agent_completed` line keeps its unit's cost (see `earned`), the end's line says
    what was `refunded`; once the task has ended, what was not refunded was kept."""
    started = task.status in _STARTED and task.error_code != REFUSED
    cost = int(task.cost or 0) if started and task.owner_id is not None else 0
    finished: list[tuple[str, int]] = []
    refunded = 0
    for event_type, data in events:
        if event_type == WORK_DONE:
            name = data.get("agent") if isinstance(data, Mapping) else None
            finished.append((str(name or "work"), earned(data, cost)))
        elif isinstance(data, Mapping):
            amount = data.get("refunded")
            if isinstance(amount, int) and not isinstance(amount, bool):
                refunded += amount
    refunded = min(refunded, cost)
    kept = cost - refunded if task.is_terminal else min(cost, sum(n for _, n in finished))
    done = {name for name, _ in finished}
    return Bill(
        charged=cost,
        kept=kept,
        refunded=refunded,
        settled=task.is_terminal,
        finished=tuple(finished),
        unfinished=tuple(a for a in task.agents if a not in done),
    )


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
