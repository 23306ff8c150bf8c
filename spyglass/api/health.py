"""`GET /api/health`: is the database reachable, the storage usable, the bus up (503 if not),
and which worker answered; `GET /metrics` for Prometheus."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from spyglass import metrics
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
)
async def prometheus() -> Response:
    store = get_engine().store
    body, content_type = await asyncio.to_thread(metrics.render, store.status_counts)
    return Response(body, media_type=content_type)
