"""The webhook tables: endpoints, their deliveries (the outbox) and each delivery's attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from spyglass.tasks.models import UTCDateTime


def _ts(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


class WebhookEndpoint(SQLModel, table=True):
    """Where a user wants task events sent, and which."""

    __tablename__ = "webhook_endpoint"
    __table_args__ = (sa.Index("ix_webhook_endpoint_owner", "owner_id"),)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int
    url: str = Field(max_length=2000)
    description: str = Field(default="", max_length=200)
    #: The event types sent (`task.completed`, …), a JSON list.
    events: list[str] = Field(sa_column=Column(sa.JSON(), nullable=False))
    #: An admin's endpoint that hears every user's tasks (else only its owner's).
    all_tasks: bool = False
    #: `whsec_…`: signs every delivery (Standard Webhooks).
    secret: str = Field(max_length=100)
    enabled: bool = True
    #: Why it was disabled (repeated failure), shown to its owner.
    disabled_reason: str | None = None
    disabled_at: datetime | None = _ts()
    #: Attempts in a row that failed (reset by a success).
    failures_in_a_row: int = 0
    created_at: datetime = _ts(nullable=False)


class WebhookDelivery(SQLModel, table=True):
    """One message to one endpoint: stored first, then sent until it succeeds or its day
    of retries runs out. `id` is the `webhook-id` a receiver deduplicates with."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        sa.Index("ix_webhook_delivery_due", "state", "next_attempt_at"),
        sa.Index("ix_webhook_delivery_endpoint", "endpoint_id", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    endpoint_id: int = Field(
        sa_column=Column(
            sa.Integer(),
            sa.ForeignKey("webhook_endpoint.id", ondelete="CASCADE"),
            nullable=False,
        )
    )
    event_type: str = Field(max_length=40)
    task_id: str | None = Field(default=None, max_length=36)
    #: The exact body sent and signed.
    payload: str
    #: pending (waits for its next attempt; one of an endpoint switched off waits until it
    #: is on again), sending (claimed by a sender until `claimed_until`), succeeded, failed
    #: (its retries ran out).
    state: str = Field(default="pending", max_length=12)
    attempts: int = 0
    next_attempt_at: datetime | None = _ts()
    claimed_until: datetime | None = _ts()
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)


class WebhookAttempt(SQLModel, table=True):
    """One try at sending a delivery: when, what came back and how long it took."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (sa.Index("ix_webhook_attempt_delivery", "delivery_id"),)

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(
        sa_column=Column(
            sa.String(40),
            sa.ForeignKey("webhook_delivery.id", ondelete="CASCADE"),
            nullable=False,
        )
    )
    attempt: int
    at: datetime = _ts(nullable=False)
    status_code: int | None = None
    latency_ms: int | None = None
    response_excerpt: str | None = None
    error: str | None = None
