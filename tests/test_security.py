"""What another site may do with SpyGlass, over HTTP and real sockets, as curl and scripts see it.

Allowed origins (CORS and cross-origin writes and sockets), the security headers on every kind
of answer, the `/metrics` token and the address `make run` listens on.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import InvalidStatus

from tests.conftest import s3_env
from tests.harness import ROOT, SpyGlassServer, free_port, separate_checkout

EVIL = "http://evil.example"
PARTNER = "http://partner.example"
PARTNER_TLS = "https://partner2.example:8443"
METRICS_TOKEN = "metrics-secret-3f9a"


@pytest.fixture(scope="module")
def hardened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpyGlassServer]:
    """A backend configured with two allowed origins and a metrics token."""
    srv = SpyGlassServer(
        tmp_path_factory.mktemp("hardened"),
        env={
            # Spelled loosely on purpose: upper case, a trailing slash.
            "SPYGLASS_ALLOWED_ORIGINS": f"{PARTNER}, HTTPS://Partner2.example:8443/",
            "SPYGLASS_METRICS_TOKEN": METRICS_TOKEN,
        },
    ).start()
    yield srv
    srv.stop()


def own_origin(server: SpyGlassServer) -> str:
    return server.url  # http://127.0.0.1:<port>, the origin its own pages have


# -- CORS -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/health", "/admin/task/list", "/api/tools", "/tasks/"])
def test_another_origin_gets_no_cors_answer(server: SpyGlassServer, path: str) -> None:
    cookies = {"spyglass_session": "x"}
    r = httpx.get(f"{server.url}{path}", headers={"Origin": EVIL}, cookies=cookies)
    assert "access-control-allow-origin" not in r.headers, r.headers
    preflight = httpx.options(
        f"{server.url}{path}",
        headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_allowed_origins_get_cors_answers_others_none(hardened: SpyGlassServer) -> None:
    for origin in (PARTNER, PARTNER_TLS):
        r = httpx.get(f"{hardened.url}/api/health", headers={"Origin": origin})
        assert r.headers.get("access-control-allow-origin") == origin
        assert r.headers.get("access-control-allow-credentials") == "true"
        preflight = httpx.options(
            f"{hardened.url}/api/tasks",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 200
        assert preflight.headers.get("access-control-allow-origin") == origin
    for origin in (EVIL, "http://partner.example:8080", "https://partner.example", "null"):
        r = httpx.get(f"{hardened.url}/api/health", headers={"Origin": origin})
        assert "access-control-allow-origin" not in r.headers, origin


def test_allowed_origin_may_write_and_use_sockets(hardened: SpyGlassServer) -> None:
    r = httpx.post(
        f"{hardened.url}/api/testjobs/task/start/steps",
        json={"steps": 1, "delay": 0.01},
        headers={"Origin": PARTNER},
    )
    assert r.status_code == 200, r.text
    task_id = r.json()["task_id"]
    for origin in (PARTNER, PARTNER_TLS, own_origin(hardened)):
        # Reflex's own socket: engine.io must accept the app's origin even with a list set.
        with ws_client.connect(f"{hardened.ws_url}{EVENT_SOCKET}", origin=origin) as ws:
            assert ws.recv(timeout=10).startswith("0{")  # engine.io's open packet
        with ws_client.connect(
            f"{hardened.ws_url}/ws/testjobs/task/ws/{task_id}", origin=origin
        ) as ws:
            assert '"task_id"' in ws.recv(timeout=10)
    refused = refused_socket(f"{hardened.ws_url}{EVENT_SOCKET}", EVIL)
    assert refused.status_code == 403


# -- cross-origin writes and sockets ----------------------------------------------------------

EVENT_SOCKET = "/_event/?EIO=4&transport=websocket"


def refused_socket(url: str, origin: str) -> httpx.Response:
    with pytest.raises(InvalidStatus) as caught, ws_client.connect(url, origin=origin):
        pass
    response = caught.value.response
    return httpx.Response(response.status_code, content=bytes(response.body or b""))


@pytest.mark.parametrize(
    "method,path",
    [
        ("POST", "/api/testjobs/task/start/steps"),
        ("POST", "/admin/user/edit?pk=1"),
        ("POST", "/api/session"),  # the sign-in and register routes, present or to come
        ("DELETE", "/api/session"),
        ("POST", "/api/register"),
        ("POST", "/api/tasks"),
        ("DELETE", "/api/tasks/some-id"),
        ("PUT", "/api/storage/users/1/tasks/x/inputs/a.csv"),
        ("POST", "/_upload"),
    ],
)
def test_cross_origin_writes_are_refused(server: SpyGlassServer, method: str, path: str) -> None:
    for headers in (
        {"Origin": EVIL},
        {"Origin": "http://127.0.0.1:1"},  # another port of the same host
        {"Origin": "null"},  # sandboxed frames, data: pages
        {"Referer": "http://evil.example/attack.html"},  # no Origin: the Referer tells
    ):
        r = httpx.request(
            method,
            f"{server.url}{path}",
            headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
            content=b"is_admin=on&credits=777777",
            cookies={"spyglass_session": "anything"},
        )
        assert r.status_code == 403, (headers, r.status_code, r.text)
        assert r.json()["error_code"] == "ORIGIN_NOT_ALLOWED"
        assert "content-security-policy" in r.headers


def test_same_origin_and_script_writes_still_work(server: SpyGlassServer) -> None:
    url = f"{server.url}/api/testjobs/task/start/steps"
    for headers in (
        {},  # a script: neither Origin nor Referer
        {"Origin": own_origin(server)},
        {"Origin": own_origin(server).upper()},
        {"Referer": f"{own_origin(server)}/tasks"},
    ):
        r = httpx.post(url, json={"steps": 1, "delay": 0.01}, headers=headers)
        assert r.status_code == 200, (headers, r.text)
    # Safe methods are not checked (a link from another site still opens a page).
    assert httpx.get(f"{server.url}/api/health", headers={"Origin": EVIL}).status_code == 200


def test_socket_handshakes_from_other_origins_are_refused(server: SpyGlassServer) -> None:
    started = httpx.post(f"{server.url}/api/testjobs/task/start/steps", json={"steps": 1})
    task_id = started.json()["task_id"]
    for path in (EVENT_SOCKET, f"/ws/testjobs/task/ws/{task_id}"):
        for origin in (EVIL, "http://127.0.0.1:1", "null"):
            refused = refused_socket(f"{server.ws_url}{path}", origin)
            assert refused.status_code == 403
            assert refused.json()["error_code"] == "ORIGIN_NOT_ALLOWED"
        for origin in (own_origin(server), None):  # its own pages; wscat and scripts
            with ws_client.connect(f"{server.ws_url}{path}", origin=origin) as ws:
                assert ws.recv(timeout=10)


# -- security headers -------------------------------------------------------------------------

STATIC = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
    "cross-origin-opener-policy": "same-origin",
}


def directives(policy: str) -> dict[str, list[str]]:
    parts = (p.split() for p in policy.split(";") if p.strip())
    return {words[0]: words[1:] for words in parts}


def test_every_answer_carries_the_security_headers(server: SpyGlassServer) -> None:
    page = httpx.get(f"{server.url}/login/")
    asset = re.search(r'src="(/assets/[^"]+\.js)"|href="(/assets/[^"]+\.js)"', page.text)
    assert asset
    paths = {
        "/login/": 200,  # a page
        "/tasks/": 303,  # private pages (signed out: sent to /login)
        "/admins/tasks/": 303,
        asset.group(1) or asset.group(2): 200,  # a static asset
        "/api/health": 200,  # the API
        "/openapi.json": 200,
        "/docs": 200,
        "/admin/task/list": 303,  # the portal (signed out: sent to /login)
        "/api/tasks": 401,  # errors
        "/api/no-such-route": 404,
        "/no-such-page/really": 404,
        "/ping": 200,  # Reflex's own routes
    }
    for path, status in paths.items():
        r = httpx.get(f"{server.url}{path}")
        assert r.status_code == status, (path, r.status_code)
        for name, value in STATIC.items():
            assert r.headers.get(name) == value, (path, name, r.headers.get(name))
        policy = directives(r.headers["content-security-policy"])
        assert policy["frame-ancestors"] == ["'none'"], path
        assert policy["object-src"] == ["'none'"], path
        assert "'unsafe-inline'" not in policy["script-src"], path
        assert not any(s.startswith("http") or s == "*" for s in policy["script-src"]), path


def test_docs_load_nothing_from_another_site(server: SpyGlassServer) -> None:
    docs = httpx.get(f"{server.url}/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text and "https://" not in docs.text
    assert "<script>" not in docs.text  # no inline script: the policy needs none
    for ref in re.findall(r'(?:src|href)="([^"]+)"', docs.text):
        assert ref.startswith("/docs/"), ref
        assert httpx.get(f"{server.url}{ref}").status_code == 200, ref
    policy = directives(docs.headers["content-security-policy"])
    assert policy["script-src"] == ["'self'"]


def test_pages_may_upload_straight_to_the_s3_endpoint(new_server: Any, moto_endpoint: str) -> None:
    srv: SpyGlassServer = new_server(env=s3_env(moto_endpoint, "csp-bucket"))
    policy = directives(httpx.get(f"{srv.url}/api/health").headers["content-security-policy"])
    assert policy["connect-src"] == ["'self'", moto_endpoint]


# -- /metrics ---------------------------------------------------------------------------------


def test_metrics_answer_only_the_metrics_token_when_one_is_set(hardened: SpyGlassServer) -> None:
    url = f"{hardened.url}/metrics"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": METRICS_TOKEN}):
        r = httpx.get(url, headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["error_code"] in {"NOT_AUTHENTICATED", "INVALID_TOKEN"}
        assert r.headers["www-authenticate"] == "Bearer"
        assert "spyglass_tasks" not in r.text
    ok = httpx.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert ok.status_code == 200 and "spyglass_tasks" in ok.text


def test_metrics_stay_open_without_a_token(server: SpyGlassServer) -> None:
    assert httpx.get(f"{server.url}/metrics").status_code == 200


# -- make run's address -----------------------------------------------------------------------


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def make_run(folder: os.PathLike[str], port: int, host: str | None) -> subprocess.Popen[bytes]:
    """`make run` of this checkout's Makefile, building its pages in `folder` (a copy)."""
    env = {
        **os.environ,
        "SPYGLASS_PORT": str(port),
        "SPYGLASS_DATA_DIR": str(folder) + "/data",
        "PYTHONPATH": str(ROOT),
        "PATH": f"{ROOT}/.tools/node_modules/.bin:{os.environ['PATH']}",
    }
    env.pop("SPYGLASS_HOST", None)
    if host is not None:
        env["SPYGLASS_HOST"] = host
    command = [
        "make",
        "-f",
        str(ROOT / "Makefile"),
        f"VENV={ROOT}/.venv",
        f"TOOLS={ROOT}/.tools",
        # Installed already (this test runs in that venv): never reinstall from the copy.
        f"--old-file={ROOT}/.venv/.installed",
        f"--old-file={ROOT}/.tools/node_modules/.bin/bun",
    ]
    log = open(f"{folder}/make-run-{port}.log", "ab")  # noqa: SIM115  (the child keeps it)
    return subprocess.Popen(
        [*command, "run"],
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_healthy(proc: subprocess.Popen[bytes], url: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "make run exited early"
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"make run did not serve {url} in {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def test_make_run_listens_where_spyglass_host_says(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = separate_checkout(tmp_path_factory.mktemp("make-run"))
    port = free_port()
    other_address = "127.0.0.2"  # this machine too, but not the address asked for
    for host, elsewhere in (("127.0.0.1", False), (None, True)):  # None: the default
        proc = make_run(folder, port, host)
        try:
            wait_healthy(proc, f"http://127.0.0.1:{port}")
            assert reachable(other_address, port) is elsewhere, host
        finally:
            stop(proc)
