"""Webhooks through HTTP, with a real receiving HTTP server started by each test: signed
deliveries that verify with the Standard Webhooks reference algorithm, retries, a restart
between attempts, the delivery log, send again, test events, disabling, and the refusal of
internal targets (loopback, private …) unless SPYGLASS_WEBHOOK_ALLOW_PRIVATE is set."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from spyglass.webhooks.guard import is_internal
from tests.accounts import Account, make_account
from tests.harness import SpyGlassServer, wait_for
from tests.test_workers import deployment, infra  # noqa: F401  (worker-mode fixtures)

#: Receivers run on 127.0.0.1, so these servers allow internal targets; quick retries.
ALLOW = {
    "SPYGLASS_WEBHOOK_ALLOW_PRIVATE": "1",
    "SPYGLASS_WEBHOOK_RETRY_BASE": "0.5",
    "SPYGLASS_WEBHOOK_POLL": "0.2",
    "SPYGLASS_WEBHOOK_PROGRESS_INTERVAL": "1",
    "SPYGLASS_WEBHOOK_DISABLE_AFTER": "4",
    "SPYGLASS_SHUTDOWN_GRACE": "0",
}


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """A real HTTP server on loopback answering each POST with the next planned status."""

    plan: list[int] = field(default_factory=list)
    default: int = 200
    got: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.got.append(Received(dict(self.headers.items()), body, time.time()))
                status = receiver.plan.pop(0) if receiver.plan else receiver.default
                payload = json.dumps({"answer": status}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.got if json.loads(r.body)["type"] == event_type]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def hooks_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpyGlassServer]:
    srv = SpyGlassServer(tmp_path_factory.mktemp("hooks"), env=ALLOW).start()
    yield srv
    srv.stop()


def auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.token}"}


def register(
    server: SpyGlassServer, who: Account, url: str, events: list[str], **extra: Any
) -> dict[str, Any]:
    r = httpx.post(
        f"{server.url}/api/webhooks",
        json={"url": url, "events": events, **extra},
        headers=auth(who),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return r.json()


def deliveries(server: SpyGlassServer, who: Account, endpoint_id: int) -> list[dict[str, Any]]:
    r = httpx.get(
        f"{server.url}/api/webhooks/{endpoint_id}/deliveries", headers=auth(who), timeout=30
    )
    assert r.status_code == 200, r.text
    return r.json()["deliveries"]


def spec_signature(secret: str, headers: dict[str, str], body: bytes) -> str:
    """The specification's algorithm, written out: HMAC-SHA256 keyed by the base64-decoded
    secret (after `whsec_`) over `{webhook-id}.{webhook-timestamp}.{body}`, base64."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def test_a_delivery_is_signed_as_the_specification_says(
    hooks_server: SpyGlassServer, receiver: Receiver
) -> None:
    alice = make_account(hooks_server, prefix="hook-alice")
    endpoint = register(
        hooks_server, alice, receiver.url, ["task.started", "task.completed", "task.progress"]
    )
    assert endpoint["secret"].startswith("whsec_")
    r = httpx.post(
        f"{hooks_server.url}/api/tasks",
        json={"task_type": "testjobs.steps", "input_params": {"steps": 30, "delay": 0.1}},
        headers=auth(alice),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    task_id = r.json()["task_id"]
    wait_for(lambda: receiver.of_type("task.completed"), what="task.completed")
    verifier = Webhook(endpoint["secret"])  # the reference library's verification
    for got in receiver.got:
        headers = {k.lower(): v for k, v in got.headers.items()}
        message = verifier.verify(got.body, headers)
        assert message["data"]["task_id"] == task_id
        assert headers["webhook-signature"] == spec_signature(endpoint["secret"], headers, got.body)
        assert headers["webhook-id"].startswith("msg_")
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
        assert headers["content-type"] == "application/json"
    started = receiver.of_type("task.started")
    completed = json.loads(receiver.of_type("task.completed")[0].body)
    assert len(started) == 1 and completed["data"]["status"] == "COMPLETED"
    assert completed["data"]["result"] == {"steps": 30}
    # Progress over 3 s, at most one message a second (throttled), and some were sent.
    progress = receiver.of_type("task.progress")
    assert 1 <= len(progress) <= 5, len(progress)
    tampered = dict(receiver.got[0].headers)
    with pytest.raises(Exception, match="signature"):
        verifier.verify(receiver.got[0].body + b" ", tampered)
    # Another user's endpoints hear nothing of alice's tasks, and cannot see hers.
    bob = make_account(hooks_server, prefix="hook-bob")
    other = Receiver().start()
    try:
        register(hooks_server, bob, other.url, ["task.completed"])
        r = httpx.post(
            f"{hooks_server.url}/api/tasks",
            json={"task_type": "testjobs.steps", "input_params": {"steps": 1}},
            headers=auth(alice),
            timeout=30,
        )
        wait_for(lambda: len(receiver.of_type("task.completed")) == 2, what="second end")
        time.sleep(0.5)
        assert other.got == []
    finally:
        other.stop()
    r = httpx.get(f"{hooks_server.url}/api/webhooks/{endpoint['id']}", headers=auth(bob))
    assert r.status_code == 404 and r.json()["error_code"] == "WEBHOOK_NOT_FOUND"
    assert [
        e["id"] for e in httpx.get(f"{hooks_server.url}/api/webhooks", headers=auth(bob)).json()
    ]
    assert endpoint["id"] not in [
        e["id"] for e in httpx.get(f"{hooks_server.url}/api/webhooks", headers=auth(bob)).json()
    ]


def test_a_receiver_that_fails_twice_gets_three_attempts_logged(
    hooks_server: SpyGlassServer, receiver: Receiver
) -> None:
    who = make_account(hooks_server, prefix="hook-retry")
    receiver.plan = [500, 500, 200]
    endpoint = register(hooks_server, who, receiver.url, ["task.completed"])
    r = httpx.post(
        f"{hooks_server.url}/api/webhooks/{endpoint['id']}/test", headers=auth(who), timeout=30
    )
    assert r.status_code == 202, r.text
    delivery_id = r.json()["id"]

    def done() -> dict[str, Any] | None:
        found = deliveries(hooks_server, who, endpoint["id"])[0]
        return found if found["state"] == "succeeded" else None

    delivery = wait_for(done, what="the third attempt")
    assert delivery["id"] == delivery_id and delivery["attempts"] == 3
    assert [a["status_code"] for a in delivery["log"]] == [500, 500, 200]
    assert all(a["latency_ms"] is not None for a in delivery["log"])
    assert delivery["log"][0]["error"] == "HTTP 500"
    assert delivery["log"][2]["response_excerpt"] == '{"answer": 200}'
    assert len(receiver.got) == 3
    ids = {r.headers["webhook-id"] for r in receiver.got}
    assert ids == {delivery_id}  # one message, three attempts
    gaps = [b.at - a.at for a, b in zip(receiver.got, receiver.got[1:], strict=False)]
    assert gaps[0] >= 0.4 and gaps[1] >= 0.9  # 0.5 s, then 1 s: exponential backoff
    assert json.loads(receiver.got[0].body)["type"] == "webhook.test"
    # Send again: the same message once more, logged as a fourth attempt.
    r = httpx.post(
        f"{hooks_server.url}/api/webhooks/deliveries/{delivery_id}/resend",
        headers=auth(who),
        timeout=30,
    )
    assert r.status_code == 202, r.text
    wait_for(lambda: len(receiver.got) == 4, what="the resend")
    again = wait_for(
        lambda: (d := deliveries(hooks_server, who, endpoint["id"])[0])["attempts"] == 4 and d
    )
    assert again["state"] == "succeeded"
    other = make_account(hooks_server, prefix="hook-other")
    r = httpx.post(
        f"{hooks_server.url}/api/webhooks/deliveries/{delivery_id}/resend", headers=auth(other)
    )
    assert r.status_code == 404


def test_an_endpoint_that_keeps_failing_is_disabled_with_a_notice(
    hooks_server: SpyGlassServer, receiver: Receiver
) -> None:
    who = make_account(hooks_server, prefix="hook-disable")
    receiver.default = 503
    endpoint = register(hooks_server, who, receiver.url, ["task.completed"])
    url = f"{hooks_server.url}/api/webhooks/{endpoint['id']}"

    def disabled() -> dict[str, Any] | None:
        found = httpx.get(url, headers=auth(who)).json()
        return found if not found["enabled"] else None

    httpx.post(f"{url}/test", headers=auth(who))
    httpx.post(f"{url}/test", headers=auth(who))
    found = wait_for(disabled, what="disabling")
    assert "Disabled after 4 failed attempts in a row" in found["disabled_reason"]
    seen = len(receiver.got)
    time.sleep(2)
    assert len(receiver.got) == seen  # nothing more goes to a disabled endpoint
    receiver.default = 200
    r = httpx.patch(url, json={"enabled": True}, headers=auth(who))
    assert r.status_code == 200 and r.json()["enabled"] and r.json()["disabled_reason"] is None
    wait_for(
        lambda: all(
            d["state"] == "succeeded" for d in deliveries(hooks_server, who, endpoint["id"])
        ),
        what="the waiting deliveries after enabling",
    )


def test_only_admins_register_for_every_task(hooks_server: SpyGlassServer) -> None:
    user = make_account(hooks_server, prefix="hook-user")
    r = httpx.post(
        f"{hooks_server.url}/api/webhooks",
        json={"url": "https://example.com/x", "events": ["task.failed"], "all_tasks": True},
        headers=auth(user),
    )
    assert r.status_code == 403 and r.json()["error_code"] == "FORBIDDEN"
    r = httpx.post(
        f"{hooks_server.url}/api/webhooks",
        json={"url": "https://example.com/x", "events": ["task.exploded"]},
        headers=auth(user),
    )
    assert r.status_code == 422


def test_an_admin_endpoint_for_every_task_hears_other_users_and_direct_tasks(
    hooks_server: SpyGlassServer, receiver: Receiver
) -> None:
    admin = make_account(hooks_server, admin=True, prefix="hook-admin")
    user = make_account(hooks_server, prefix="hook-someone")
    register(hooks_server, admin, receiver.url, ["task.failed"], all_tasks=True)
    r = httpx.post(
        f"{hooks_server.url}/api/tasks",
        json={"task_type": "testjobs.boom"},
        headers=auth(user),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    failed = wait_for(lambda: receiver.of_type("task.failed"), what="task.failed")
    body = json.loads(failed[0].body)
    assert body["data"]["task_id"] == r.json()["task_id"]
    assert body["data"]["error_message"]


def test_a_restart_between_attempts_loses_no_delivery(
    tmp_path: Path, receiver: Receiver, new_server: Callable[..., SpyGlassServer]
) -> None:
    env = {**ALLOW, "SPYGLASS_WEBHOOK_RETRY_BASE": "4"}
    data = tmp_path / "restart"
    srv = new_server(data, env=env)
    who = make_account(srv, prefix="hook-restart")
    receiver.plan = [500]
    endpoint = register(srv, who, receiver.url, ["task.completed"])
    r = httpx.post(f"{srv.url}/api/webhooks/{endpoint['id']}/test", headers=auth(who))
    delivery_id = r.json()["id"]
    wait_for(
        lambda: (
            (d := deliveries(srv, who, endpoint["id"])[0])["attempts"] == 1
            and d["state"] == "pending"
        ),
        what="the first attempt, answered and logged",
    )
    srv.kill()  # between the logged failed attempt and its retry, 4 s later
    assert len(receiver.got) == 1
    again = new_server(data, env=env)
    done = wait_for(
        lambda: (d := deliveries(again, who, endpoint["id"])[0])["state"] == "succeeded" and d,
        what="the retry after the restart",
    )
    assert done["id"] == delivery_id and done["attempts"] == 2
    assert [a["status_code"] for a in done["log"]] == [500, 200]
    assert [g.headers["webhook-id"] for g in receiver.got] == [delivery_id, delivery_id]


def test_internal_targets_are_refused_by_default(
    new_server: Callable[..., SpyGlassServer], receiver: Receiver
) -> None:
    srv = new_server(env={"SPYGLASS_SHUTDOWN_GRACE": "0"})
    who = make_account(srv, prefix="hook-ssrf")
    for url in (
        receiver.url,
        f"http://localhost:{receiver.url.split(':')[2]}",
        "http://[::1]/x",
        "http://169.254.169.254/latest/meta-data",
        "http://10.1.2.3/x",
        "http://192.168.0.1/x",
        "http://[fd00::1]/x",
        "http://0.0.0.0/x",
        "ftp://example.com/x",
    ):
        r = httpx.post(
            f"{srv.url}/api/webhooks",
            json={"url": url, "events": ["task.completed"]},
            headers=auth(who),
        )
        assert r.status_code in (400, 422), (url, r.text)
        if r.status_code == 400:
            assert r.json()["error_code"] == "WEBHOOK_TARGET_REFUSED", url
    assert receiver.got == []
    assert httpx.get(f"{srv.url}/api/webhooks", headers=auth(who)).json() == []


@pytest.mark.parametrize(
    ("address", "internal"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("169.254.169.254", True),
        ("fe80::1", True),
        ("10.0.0.1", True),
        ("172.16.5.4", True),
        ("192.168.1.1", True),
        ("100.64.0.1", True),
        ("fc00::1", True),
        ("fd12:3456::1", True),
        ("0.0.0.0", True),
        ("::", True),
        ("::ffff:127.0.0.1", True),
        ("224.0.0.1", True),
        ("93.184.216.34", False),
        ("2606:2800:220:1:248:1893:25c8:1946", False),
    ],
)
def test_which_addresses_are_internal(address: str, internal: bool) -> None:
    assert is_internal(ipaddress.ip_address(address)) is internal


def test_worker_mode_sends_the_events_of_jobs_run_on_workers(
    deployment: Any,  # noqa: F811
    receiver: Receiver,
) -> None:
    """`SPYGLASS_EXECUTOR=procrastinate`: the job runs on a `spyglass worker`, whose status
    hook stores the deliveries; the same outbox and retry rule send them."""
    dep = deployment
    dep.env.update(ALLOW)
    dep.start_web()
    dep.start_worker(2)
    who = make_account(dep.web, prefix="hook-worker")
    receiver.plan = [500]
    endpoint = register(dep.web, who, receiver.url, ["task.started", "task.completed"])
    r = httpx.post(
        f"{dep.web.url}/api/tasks",
        json={"task_type": "testjobs.where", "input_params": {"path": str(dep.data / "w.log")}},
        headers=auth(who),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    task_id = r.json()["task_id"]
    wait_for(lambda: len(receiver.got) >= 3, what="both events from a worker, one retried")
    ran_on = (dep.data / "w.log").read_text().split()[-1]
    assert ran_on in {str(p.pid) for p in dep.workers}
    verifier = Webhook(endpoint["secret"])
    for got in receiver.got:
        message = verifier.verify(got.body, {k.lower(): v for k, v in got.headers.items()})
        assert message["data"]["task_id"] == task_id
    assert receiver.of_type("task.started") and receiver.of_type("task.completed")
    assert len({g.headers["webhook-id"] for g in receiver.got}) == 2  # one answered 500 first


async def test_names_are_resolved_and_checked_at_each_use() -> None:
    """Registration and every attempt call `guard.resolve`: a name that resolves to an
    internal address is refused; an attempt connects to the address that was checked."""
    from spyglass.webhooks import guard

    for url in ("http://localhost:8080/x", "http://127.0.0.1/x", "https://[::1]:8443/"):
        with pytest.raises(guard.TargetRefused, match="internal address"):
            await guard.resolve(url, allow_private=False)
    allowed = await guard.resolve("http://localhost:8080/x", allow_private=True)
    assert allowed.address is None  # the client resolves it itself
    public = await guard.resolve("https://93.184.216.34/hook", allow_private=False)
    assert public.address == "93.184.216.34"
    with pytest.raises(guard.TargetRefused, match="no user name"):
        await guard.resolve("https://u:p@93.184.216.34/", allow_private=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def hooks_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hooks.db'}"
    else:
        from tests.services import new_database, postgres_server

        with postgres_server() as url:
            yield new_database(url)


async def test_the_sender_waits_for_what_it_can_send_and_never_spins(
    tmp_path: Path, hooks_db: str
) -> None:
    """The sender sleeps until the next delivery it may claim is due: a delivery waiting
    for an endpoint that is switched off (by its owner, or after failing) is not one, so
    it does not make the sender ask the database again at once, forever (it once burnt a
    whole core: the next-due query counted the delivery the claim skipped). A delivery due
    in a second is tried in about a second, though the poll is 30 s; the switched-off
    endpoint's is tried once its owner switches it on."""
    import asyncio
    from datetime import timedelta
    from types import SimpleNamespace

    import sqlalchemy as sa

    from spyglass.config import Settings
    from spyglass.tasks.models import utcnow
    from spyglass.tasks.store import TaskStore
    from spyglass.webhooks.service import DELIVERIES, ENDPOINTS, Webhooks

    settings = Settings(
        data_dir=tmp_path,
        db_url=hooks_db,
        port=0,
        secret_key="unit",
        webhook_poll=30.0,
        webhook_allow_private=True,
        webhook_timeout=2.0,
    )
    store = TaskStore(settings.db_url)
    store.migrate()
    now = utcnow()
    refused = "http://127.0.0.1:9/hook"  # nothing listens: each try fails at once

    def add(enabled: bool, delivery: str, due_in: float) -> int:
        with store.engine.begin() as conn:
            endpoint_id = int(
                conn.execute(
                    sa.insert(ENDPOINTS).values(
                        owner_id=1, url=refused, events=["task.completed"],
                        secret="whsec_dW5pdA==", enabled=enabled, created_at=now,
                    )
                ).inserted_primary_key[0]
            )  # fmt: skip
            conn.execute(
                sa.insert(DELIVERIES).values(
                    id=delivery, endpoint_id=endpoint_id, event_type="task.completed",
                    payload="{}", state="pending",
                    next_attempt_at=now + timedelta(seconds=due_in),
                    created_at=now, updated_at=now,
                )
            )  # fmt: skip
        return endpoint_id

    switched_off = add(False, "msg_waiting", -5.0)
    add(True, "msg_soon", 1.0)

    def attempts(delivery: str) -> int:
        with store.engine.connect() as conn:
            query = sa.select(DELIVERIES.c.attempts).where(DELIVERIES.c.id == delivery)
            return int(conn.execute(query).scalar_one())

    async def tried(delivery: str) -> float:
        began = time.monotonic()
        async with asyncio.timeout(20):
            while await asyncio.to_thread(attempts, delivery) < 1:
                await asyncio.sleep(0.05)
        return time.monotonic() - began

    hooks = Webhooks(store.engine, settings)
    rounds = 0
    send_due = hooks.send_due

    async def counted() -> int:
        nonlocal rounds
        rounds += 1
        return await send_due()

    hooks.send_due = counted  # type: ignore[method-assign]
    sender = asyncio.create_task(hooks.run_forever())
    try:
        assert await tried("msg_soon") < 10  # its time, not the 30 s poll
        assert rounds <= 5, rounds  # a round at the start, one when it is due: no spin
        assert attempts("msg_waiting") == 0  # its endpoint is off
        owner = SimpleNamespace(id=1, role="user")
        assert (await hooks.update(switched_off, owner, enabled=True)).enabled
        await tried("msg_waiting")
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        store.engine.dispose()
