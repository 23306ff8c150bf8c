"""Shared fixtures: one full server for the session, fresh servers on demand, HTTP clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.harness import SpyGlassServer

#: The admin the shared server creates at start-up from its environment.
BOOTSTRAP_ADMIN = ("root@example.com", "bootstrap-admin-pw")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpyGlassServer]:
    """Pages and API on one port, as `make run` serves them."""
    srv = SpyGlassServer(
        tmp_path_factory.mktemp("shared-server"),
        full=True,
        env={
            "SPYGLASS_ADMIN_EMAIL": BOOTSTRAP_ADMIN[0],
            "SPYGLASS_ADMIN_PASSWORD": BOOTSTRAP_ADMIN[1],
            # The webhooks page's test sends to a receiver on loopback.
            "SPYGLASS_WEBHOOK_ALLOW_PRIVATE": "1",
            "SPYGLASS_WEBHOOK_RETRY_BASE": "0.5",
        },
    ).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def seeded(server: SpyGlassServer) -> Iterator[Any]:
    """An admin and a user with a task in every state the pages show (`tests/tour.py`), for
    the accessibility and small-screen tours; the running task is cancelled at the end."""
    from tests.tour import cancel, seed

    data = seed(server)
    yield data
    cancel(server, data.user, data.running)


@pytest.fixture
def new_server(tmp_path: Path) -> Iterator[Callable[..., SpyGlassServer]]:
    """Start backend-only servers on a data folder of this test's own; all stopped at the end."""
    started: list[SpyGlassServer] = []

    def start(data_dir: Path | None = None, **kwargs: Any) -> SpyGlassServer:
        srv = SpyGlassServer(data_dir or tmp_path / "data", **kwargs).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
async def client(server: SpyGlassServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        yield c


async def start_job(
    client: httpx.AsyncClient, state: str, job: str, body: Any = None
) -> dict[str, Any]:
    kwargs = {} if body is None else {"json": body}
    response = await client.post(f"/api/{state}/task/start/{job}", **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


async def wait_terminal(
    client: httpx.AsyncClient, state: str, task_id: str, timeout: float = 30
) -> dict[str, Any]:
    """Follow the task's socket to its end (no polling), then read the result endpoint."""
    async with asyncio.timeout(timeout):
        async with websockets.connect(f"{ws_base(client)}/ws/{state}/task/ws/{task_id}") as ws:
            async for raw in ws:
                if json.loads(raw)["status"] in TERMINAL:
                    break
    response = await client.get(f"/api/{state}/task/result/{task_id}")
    assert response.status_code == 200, response.text
    return response.json()


def ws_base(client: httpx.AsyncClient) -> str:
    return str(client.base_url).replace("http://", "ws://").rstrip("/")


TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "UPLOAD_FAILED", "EXPIRED"}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3 API (moto's server) on loopback for the storage tests."""
    from moto.server import ThreadedMotoServer

    from tests.harness import free_port

    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    moto.start()
    yield f"http://127.0.0.1:{port}"
    moto.stop()


def s3_env(endpoint: str, bucket: str) -> dict[str, str]:
    """A SpyGlass server's environment for S3 storage on moto."""
    return {
        "SPYGLASS_STORAGE": "s3",
        "SPYGLASS_S3_ENDPOINT": endpoint,
        "SPYGLASS_S3_BUCKET": bucket,
        "SPYGLASS_S3_ACCESS_KEY": "testing",
        "SPYGLASS_S3_SECRET_KEY": "testing",
        "SPYGLASS_S3_CREATE_BUCKET": "1",
    }


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
