"""`GET /api/health`: is the database reachable, the storage usable, the bus up (503 if not),
and which worker answered; `GET /metrics` for Prometheus (with `SPYGLASS_METRICS_TOKEN` set,
only for `Authorization: Bearer <that token>`)."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from spyglass import metrics
from spyglass.api.auth import Bearer
from spyglass.config import get_settings
from spyglass.errors import DomainError
from spyglass.storage import get_storage
from spyglass.tasks.engine import get_engine

router = APIRouter()


@router.get("/api/health", tags=["system"], summary="Health of the database, storage and bus")
async def health() -> Any:
    engine = get_engine()
    report = await engine.health()
    storage = await asyncio.to_thread(get_storage().health)
    ok = (
        report["database"]["status"] == "ok"
        and storage["status"] == "ok"
        and report["bus"]["status"] == "ok"
    )
    body = {
        "status": "ok" if ok else "degraded",
        "timestamp": datetime.now(UTC).isoformat(),
        "database": report["database"],
        "storage": storage,
        "bus": report["bus"],
        "running_tasks": report["running_tasks"],
        "worker": engine.worker_id,
    }
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get(
    "/metrics",
    tags=["system"],
    summary="Prometheus metrics: tasks by status, run time, queue wait, sockets, bus lag",
    response_class=Response,
    responses={401: {"description": "SPYGLASS_METRICS_TOKEN is set and was not sent as Bearer"}},
)
async def prometheus(credentials: Bearer) -> Response:
    check_metrics_token(credentials.credentials if credentials else None)
    store = get_engine().store
    body, content_type = await asyncio.to_thread(metrics.render, store.status_counts)
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
