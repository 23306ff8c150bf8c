"""Real Redis and PostgreSQL servers on loopback for the multi-worker tests.

Debian's `redis-server` and `postgresql` (installed by `make test` when missing) are
started from their binaries on free ports, with throw-away data folders, and stopped
at the end of the session. PostgreSQL refuses to run as root, so as root it runs as
the `postgres` user that Debian's package creates.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import redis

from tests.harness import free_port


def _wait(check: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up in {timeout} s")
        time.sleep(0.1)


@contextlib.contextmanager
def redis_server(port: int | None = None) -> Iterator[str]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = port or free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait(lambda: redis.Redis.from_url(url).ping(), "redis-server")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is missing: run `make test` to install it")
    return found[-1]


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yields a server URL without a database name (`postgresql+psycopg://…:port/`)."""
    root = Path(tempfile.mkdtemp(prefix="spyglass-pg-"))
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    as_root = os.geteuid() == 0
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        root.chmod(0o755)
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    subprocess.run(
        [*run_as, _pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "spyglass"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            *run_as,
            _pg_bin("postgres"),
            "-D", str(data),
            "-p", str(port),
            "-k", str(sockets),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "max_connections=300",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"postgresql://spyglass@127.0.0.1:{port}/postgres"
    try:
        _wait(lambda: psycopg.connect(url, connect_timeout=2).close() or True, "postgres")
        yield f"postgresql+psycopg://spyglass@127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(root, ignore_errors=True)


def new_database(server_url: str) -> str:
    """A fresh, empty database on the server; returns its SQLAlchemy URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    plain = server_url.replace("postgresql+psycopg://", "postgresql://") + "postgres"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url + name
