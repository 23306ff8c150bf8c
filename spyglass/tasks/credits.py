"""Credits: what a task costs its owner, charged in the same transaction as its start.

A task's `cost` is what its owner was charged for it (the agents of a data tool). The
charge is made in the database transaction that starts the task (see
`TaskStore.claim_waiting`), so a start that is refused or loses a race charges nothing,
and a charge never goes without its task.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy import Connection

from spyglass.errors import DomainError


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


def balance(conn: Connection, owner_id: int) -> int:
    users = _users()
    value = conn.execute(
        sa.select(users.c.credits).where(users.c.id == owner_id)
    ).scalar_one_or_none()
    return int(value or 0)
