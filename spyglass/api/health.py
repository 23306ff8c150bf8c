"""`GET /api/health`: is the database reachable, the storage usable, the bus up (503 if not),
and which worker answered; `GET /metrics` for Prometheus (with `SPYGLASS_METRICS_TOKEN` set,
only for `Authorization: Bearer <that token>`)."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict

from spyglass import metrics
from spyglass.api.auth import Bearer
from spyglass.api.errors import error_answer
from spyglass.config import get_settings
from spyglass.errors import DomainError
from spyglass.storage import get_storage
from spyglass.tasks.engine import get_engine


class Component(BaseModel):
    """One dependency: `status` ok or error, and what the backend reports about itself."""

    model_config = ConfigDict(extra="allow")

    status: str


class Health(BaseModel):
    status: str
    timestamp: str
    database: Component
    storage: Component
    bus: Component
    running_tasks: int
    worker: str
    #: `inline` (jobs run in the web processes) or `procrastinate` (worker mode).
    executor: str
    #: Worker mode: `spyglass worker` processes whose heartbeat is recent (None: unknown).
    workers: int | None = None


def add_routes(router: APIRouter) -> None:
    """`/api/health` and `/metrics`, on the app's own router: an included router's routes
    are matched twice for each request FastAPI serves, and every request to a route after
    these would pay for matching them so."""
    router.add_api_route(
        "/api/health",
        health,
        methods=["GET"],
        tags=["system"],
        summary="Health of the database, storage and bus",
        response_model=Health,
        responses={503: {"model": Health, "description": "A dependency is down (`degraded`)"}},
    )
    router.add_api_route(
        "/metrics",
        prometheus,
        methods=["GET"],
        tags=["system"],
        summary="Prometheus metrics: tasks by status, run time, queue wait, sockets, bus lag",
        response_class=PlainTextResponse,
        responses={401: error_answer(401, "SPYGLASS_METRICS_TOKEN is set and was not sent")},
        # The Bearer token is asked for only when SPYGLASS_METRICS_TOKEN is set: optional.
        openapi_extra={"security": [{}]},
    )


async def health() -> Any:
    report = await get_engine().health()
    storage = await asyncio.to_thread(get_storage().health)
    ok = report.ok and storage["status"] == "ok"
    body = {
        "status": "ok" if ok else "degraded",
        "timestamp": datetime.now(UTC).isoformat(),
        "database": dict(report.database),
        "storage": storage,
        "bus": dict(report.bus),
        "running_tasks": report.running_tasks,
        "worker": report.worker,
        "executor": report.executor,
        "workers": report.workers,
    }
    return JSONResponse(body, status_code=200 if ok else 503)


async def prometheus(credentials: Bearer) -> Response:
    check_metrics_token(credentials.credentials if credentials else None)
    engine = get_engine()
    queues = metrics.QueueFigures(
        depth=[
            (f"{d.state_name}.{d.task_name}", d.queue, d.pending)
            for d in await engine.queue_depth()
        ],
        workers=len(await engine.workers()) if engine.worker_mode else None,
    )
    body, content_type = await asyncio.to_thread(metrics.render, engine.status_counts, queues)
    return Response(body, media_type=content_type)


class MetricsTokenError(DomainError):
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


def check_metrics_token(sent: str | None) -> None:
    """With SPYGLASS_METRICS_TOKEN set, /metrics answers only that Bearer token (401 else)."""
    expected = get_settings().metrics_token
    if not expected:
        return
    if sent is None:
        raise MetricsTokenError(
            "NOT_AUTHENTICATED", "Send the metrics token as `Authorization: Bearer <token>`", 401
        )
    if not secrets.compare_digest(sent.encode(), expected.encode()):
        raise MetricsTokenError("INVALID_TOKEN", "Wrong metrics token", 401)
