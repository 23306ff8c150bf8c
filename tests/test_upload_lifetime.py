"""Signed upload URLs write only while their task waits for files; killed uploads leave nothing
behind for long (issue 10, items 7 and 8)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.accounts import Account, make_account
from tests.conftest import TERMINAL
from tests.harness import SpyGlassServer

CSV = b"id,amount\n1,10\n2,12\n3,15\n"


def auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.token}"}


def wait_for(condition: Callable[[], object], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def new_upload(c: httpx.Client) -> tuple[str, dict[str, str]]:
    task = c.post(
        "/api/tasks", json={"tool_id": "profile-my-data", "agents": ["unified-profiler"]}
    ).json()
    r = c.post(
        f"/api/tasks/{task['task_id']}/upload-urls",
        json={"files": {"primary": {"filename": "data.csv", "content_type": "text/csv"}}},
    )
    assert r.status_code == 200, r.text
    return task["task_id"], r.json()["uploads"]["primary"]


def stored(server: SpyGlassServer, key: str) -> Path:
    return server.data_dir / "files" / key


def partial_uploads(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "files").rglob(".upload-*") if p.is_file()]


def test_upload_url_dies_with_the_wait(server: SpyGlassServer) -> None:
    alice = make_account(server, prefix="uplife")
    with httpx.Client(base_url=server.url, headers=auth(alice), timeout=30) as c:
        task_id, ticket = new_upload(c)
        put = httpx.put(ticket["url"], content=CSV, headers=ticket["headers"], timeout=30)
        assert put.status_code == 200, put.text
        assert c.post(f"/api/tasks/{task_id}/process").status_code == 200
        wait_for(
            lambda: c.get(f"/api/tasks/{task_id}").json()["status"] in TERMINAL, what="the run"
        )
        assert c.get(f"/api/tasks/{task_id}").json()["status"] == "COMPLETED"

        # The same URL, still within its expiry, after the task has run: refused, input kept.
        again = httpx.put(ticket["url"], content=b"id\n666\n", headers=ticket["headers"])
        assert again.status_code == 409, again.text
        assert again.json()["error_code"] == "UPLOAD_CLOSED"
        assert "Traceback" not in again.text
        assert stored(server, ticket["key"]).read_bytes() == CSV

        # A URL of a task deleted before its upload: 404, and no file appears.
        task_id, ticket = new_upload(c)
        assert c.delete(f"/api/tasks/{task_id}").status_code == 200
        orphan = httpx.put(ticket["url"], content=CSV, headers=ticket["headers"])
        assert orphan.status_code == 404, orphan.text
        assert orphan.json()["error_code"] == "UPLOAD_NOT_FOUND"
        assert not stored(server, ticket["key"]).exists()
        assert not stored(server, ticket["key"]).parent.exists()
    assert not partial_uploads(server.data_dir)


def start_hanging_upload(url: str, headers: dict[str, str], sent: int) -> socket.socket:
    """A PUT that announces 10 MB and sends only `sent` bytes, as a client killed mid-way."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    head = (
        f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: {headers['Content-Type']}\r\nContent-Length: {10 * 1024 * 1024}\r\n\r\n"
    )
    sock.sendall(head.encode() + b"x" * sent)
    return sock


def test_killed_upload_parts_are_swept(
    new_server: Callable[..., SpyGlassServer], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    srv = new_server(data)
    alice = make_account(srv, prefix="sweep")
    with httpx.Client(base_url=srv.url, headers=auth(alice), timeout=30) as c:
        _, ticket = new_upload(c)
    sock = start_hanging_upload(ticket["url"], ticket["headers"], 256 * 1024)
    try:
        wait_for(
            lambda: any(p.stat().st_size > 0 for p in partial_uploads(data)),
            what="the partial upload on disk",
        )
        srv.kill()  # the server dies mid-upload, as with kill -9
    finally:
        sock.close()
    (left,) = partial_uploads(data)
    # Later: nobody has written to it for an hour. The next start sweeps it.
    hour_ago = time.time() - 3600
    os.utime(left, (hour_ago, hour_ago))
    srv = new_server(data)
    wait_for(lambda: not left.exists(), what="the start-up sweep")

    # While serving, the periodic sweeper clears idle parts and leaves fresh ones alone.
    srv.stop()
    srv = new_server(data, env={"SPYGLASS_UPLOAD_EXPIRY": "2"})  # sweeps every 0.5 s
    folder = left.parent
    idle, fresh = folder / ".upload-idle", folder / ".upload-fresh"
    idle.write_bytes(b"abandoned")
    fresh.write_bytes(b"being written")
    os.utime(idle, (hour_ago, hour_ago))
    wait_for(lambda: not idle.exists(), what="the periodic sweep")
    os.utime(fresh, (hour_ago, hour_ago))
    wait_for(lambda: not fresh.exists(), what="the next sweep, once the part went idle")
