"""Webhook endpoints over REST (`Authorization: Bearer`): register, list, change, delete,
the delivery log, "send again" and "send test event". Users manage their own endpoints
(another's is a 404); admins all, and only admins register an endpoint for every task.
Every route needs a token with `tasks:read`: endpoints only tell about tasks one may read."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from spyglass import audit
from spyglass.api.auth import Reader
from spyglass.api.bounds import IdPath, OffsetQuery
from spyglass.api.errors import TOKEN_ERRORS, error_answer, responses
from spyglass.webhooks.service import (
    EVENT_TYPES,
    DeliveryView,
    EndpointView,
    get_webhooks,
)

EventType = Literal[
    "task.started", "task.progress", "task.completed", "task.failed", "task.cancelled"
]
assert set(EventType.__args__) == set(EVENT_TYPES)  # type: ignore[attr-defined]
URL_PATTERN = r"^[hH][tT][tT][pP][sS]?://[^\s]+$"
URL_EXAMPLE = "https://hooks.example.com/spyglass"


class EndpointIn(BaseModel):
    url: str = Field(min_length=8, max_length=2000, pattern=URL_PATTERN, examples=[URL_EXAMPLE])
    events: list[EventType] = Field(min_length=1, max_length=5, examples=[["task.completed"]])
    description: str = Field(default="", max_length=200)
    all_tasks: bool = Field(
        default=False,
        strict=True,
        description="Admins only: hear every user's tasks (else only yours)",
    )


class EndpointPatch(BaseModel):
    url: str | None = Field(
        default=None, min_length=8, max_length=2000, pattern=URL_PATTERN, examples=[URL_EXAMPLE]
    )
    events: list[EventType] | None = Field(default=None, min_length=1, max_length=5)
    description: str | None = Field(default=None, max_length=200)
    enabled: bool | None = Field(
        default=None,
        strict=True,
        description="true enables it again (after it was disabled for failures)",
    )


class EndpointOut(BaseModel):
    id: int
    owner_id: int
    url: str
    description: str
    events: list[str]
    all_tasks: bool
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    failures_in_a_row: int
    created_at: datetime


class NewEndpoint(EndpointOut):
    secret: str = Field(
        description="`whsec_…`: verify deliveries with it (Standard Webhooks); shown once"
    )


class AttemptOut(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: int | None
    response_excerpt: str | None
    error: str | None


class DeliveryOut(BaseModel):
    id: str = Field(description="The `webhook-id` header of every attempt")
    endpoint_id: int
    event_type: str
    task_id: str | None
    payload: str = Field(description="The body sent (and signed)")
    state: str = Field(description="pending, sending, succeeded or failed")
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    log: list[AttemptOut]


class DeliveryPage(BaseModel):
    deliveries: list[DeliveryOut]
    total: int


class EndpointDeleted(BaseModel):
    id: int
    deleted: bool


def endpoint_out(view: EndpointView) -> dict[str, Any]:
    return {
        "id": view.id,
        "owner_id": view.owner_id,
        "url": view.url,
        "description": view.description,
        "events": list(view.events),
        "all_tasks": view.all_tasks,
        "enabled": view.enabled,
        "disabled_reason": view.disabled_reason,
        "disabled_at": view.disabled_at,
        "failures_in_a_row": view.failures_in_a_row,
        "created_at": view.created_at,
    }


def audit_detail(view: EndpointView) -> dict[str, Any]:
    """What the audit log keeps of an endpoint: its host, not the whole URL (a URL's path or
    query may hold a secret), its events and reach."""
    return {
        "host": urlsplit(view.url).hostname or "",
        "events": list(view.events),
        "all_tasks": view.all_tasks,
        "enabled": view.enabled,
    }


def delivery_out(view: DeliveryView) -> dict[str, Any]:
    return {
        "id": view.id,
        "endpoint_id": view.endpoint_id,
        "event_type": view.event_type,
        "task_id": view.task_id,
        "payload": view.payload,
        "state": view.state,
        "attempts": view.attempts,
        "next_attempt_at": view.next_attempt_at,
        "last_status_code": view.last_status_code,
        "last_error": view.last_error,
        "created_at": view.created_at,
        "updated_at": view.updated_at,
        "log": [
            {
                "attempt": a.attempt,
                "at": a.at,
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "response_excerpt": a.response_excerpt,
                "error": a.error,
            }
            for a in view.log
        ],
    }


DeliveryId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^msg_[0-9a-f]{32}$")]
ONE = responses(404)
REFUSED = error_answer(
    400,
    "WEBHOOK_TARGET_REFUSED: the URL is not http(s), or its host resolves to an internal "
    "address (loopback, link-local, private …) and SPYGLASS_WEBHOOK_ALLOW_PRIVATE is off",
)

router = APIRouter(
    prefix="/api/webhooks", tags=["webhooks"], responses=responses(*TOKEN_ERRORS, 422)
)


@router.get("", response_model=list[EndpointOut], summary="Your webhook endpoints (admins: all)")
async def list_endpoints(user: Reader) -> Any:
    return [endpoint_out(e) for e in await get_webhooks().list_endpoints(user)]


@router.post(
    "",
    status_code=201,
    response_model=NewEndpoint,
    summary="Register an endpoint for the events you choose",
    responses={400: REFUSED, **responses(403)},
)
async def create_endpoint(body: EndpointIn, request: Request, user: Reader) -> Any:
    created, secret = await get_webhooks().create(
        user,
        body.url,
        list(body.events),
        description=body.description,
        all_tasks=body.all_tasks,
    )
    await audit.record(
        request, user, "webhook.create", "webhook", created.id, audit_detail(created)
    )
    return {**endpoint_out(created), "secret": secret}


@router.get("/{endpoint_id}", response_model=EndpointOut, summary="One endpoint", responses=ONE)
async def get_endpoint(endpoint_id: IdPath, user: Reader) -> Any:
    return endpoint_out(await get_webhooks().get(endpoint_id, user))


@router.patch(
    "/{endpoint_id}",
    response_model=EndpointOut,
    summary="Change an endpoint, or enable it again",
    responses={**ONE, 400: REFUSED},
)
async def update_endpoint(
    endpoint_id: IdPath, body: EndpointPatch, request: Request, user: Reader
) -> Any:
    updated = await get_webhooks().update(
        endpoint_id,
        user,
        events=list(body.events) if body.events is not None else None,
        enabled=body.enabled,
        description=body.description,
        url=body.url,
    )
    changed = sorted(body.model_dump(exclude_none=True))
    action = audit.webhook_action(changed, body.enabled)
    detail = {**audit_detail(updated), "changed": changed}
    await audit.record(request, user, action, "webhook", endpoint_id, detail)
    return endpoint_out(updated)


@router.delete(
    "/{endpoint_id}",
    response_model=EndpointDeleted,
    summary="Delete an endpoint and its delivery log",
    responses=ONE,
)
async def delete_endpoint(endpoint_id: IdPath, request: Request, user: Reader) -> Any:
    await get_webhooks().delete(endpoint_id, user)
    await audit.record(request, user, "webhook.delete", "webhook", endpoint_id)
    return {"id": endpoint_id, "deleted": True}


@router.get(
    "/{endpoint_id}/deliveries",
    response_model=DeliveryPage,
    summary="The delivery log: each message, its state and every attempt",
    responses=ONE,
)
async def list_deliveries(
    endpoint_id: IdPath,
    user: Reader,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: OffsetQuery = 0,
) -> Any:
    found, total = await get_webhooks().deliveries(endpoint_id, user, limit=limit, offset=offset)
    return {"deliveries": [delivery_out(d) for d in found], "total": total}


@router.post(
    "/{endpoint_id}/test",
    status_code=202,
    response_model=DeliveryOut,
    summary="Send a test event (`webhook.test`) to the endpoint",
    responses=ONE,
)
async def send_test(endpoint_id: IdPath, user: Reader) -> Any:
    return delivery_out(await get_webhooks().send_test(endpoint_id, user))


@router.get(
    "/deliveries/{delivery_id}",
    response_model=DeliveryOut,
    summary="One delivery and its attempts",
    responses=ONE,
)
async def get_delivery(delivery_id: DeliveryId, user: Reader) -> Any:
    return delivery_out(await get_webhooks().delivery(delivery_id, user))


@router.post(
    "/deliveries/{delivery_id}/resend",
    status_code=202,
    response_model=DeliveryOut,
    summary="Send a delivery again (same webhook-id and body)",
    responses={**ONE, **responses(409)},
)
async def resend(delivery_id: DeliveryId, user: Reader) -> Any:
    return delivery_out(await get_webhooks().resend(delivery_id, user))
