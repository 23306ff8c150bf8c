"""Retention rules and their sweep, bulk actions over a filter, and the search of event
messages, over HTTP against a real server (SQLite with FTS5 here; PostgreSQL at the end)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from spyglass.tasks.store import make_engine
from tests.accounts import Account, db_url, make_account
from tests.harness import SpyGlassServer, wait_for

#: The periodic sweep stays out of the way (its first run is 10 minutes after start): these
#: tests sweep when they ask (it once removed aged tasks between new rules and their preview).
ENV = {
    "SPYGLASS_SHUTDOWN_GRACE": "0",
    "SPYGLASS_RETENTION_BATCH": "2",
    "SPYGLASS_RETENTION_INTERVAL": "86400",
}
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpyGlassServer]:
    server = SpyGlassServer(tmp_path_factory.mktemp("retention"), env=ENV).start()
    yield server
    server.stop()


def auth(who: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {who.token}"}


def start(srv: SpyGlassServer, who: Account, job: str, params: Any = None) -> str:
    r = httpx.post(
        f"{srv.url}/api/tasks",
        json={"task_type": f"testjobs.{job}", "input_params": params},
        headers=auth(who),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["task_id"])


def task(srv: SpyGlassServer, who: Account, task_id: str) -> httpx.Response:
    return httpx.get(f"{srv.url}/api/tasks/{task_id}", headers=auth(who), timeout=30)


def finished(srv: SpyGlassServer, who: Account, *ids: str) -> None:
    wait_for(lambda: all(task(srv, who, i).json()["status"] in TERMINAL for i in ids))


def age(srv: SpyGlassServer, ids: list[str], days: float) -> None:
    """Make these tasks look as if they ended `days` ago (as time would)."""
    engine = make_engine(db_url(srv))
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE task SET updated_at = :at WHERE id IN :ids").bindparams(
                    sa.bindparam("ids", expanding=True)
                ),
                {"at": (datetime.now(UTC) - timedelta(days=days)).replace(tzinfo=None), "ids": ids},
            )
    finally:
        engine.dispose()


def bulk(
    srv: SpyGlassServer, who: Account, action: str, confirm: str | None = None, **filters: str
) -> httpx.Response:
    params = {**filters, **({"confirm": confirm} if confirm else {})}
    return httpx.post(
        f"{srv.url}/api/tasks/bulk/{action}", params=params, headers=auth(who), timeout=60
    )


# -- retention ------------------------------------------------------------------------------
def test_retention_is_for_admins(srv: SpyGlassServer) -> None:
    user = make_account(srv, prefix="ret-user")
    for method, path in (
        ("GET", "/api/admin/retention"),
        ("GET", "/api/admin/retention/preview"),
        ("POST", "/api/admin/retention/sweep"),
    ):
        r = httpx.request(method, f"{srv.url}{path}", headers=auth(user))
        assert r.status_code == 403 and r.json()["error_code"] == "FORBIDDEN", path
    r = httpx.put(
        f"{srv.url}/api/admin/retention",
        json={"rules": [{"status": "COMPLETED", "days": 1}]},
        headers=auth(user),
    )
    assert r.status_code == 403
    admin = make_account(srv, admin=True, prefix="ret-admin-refusals")
    for rules in (
        [{"status": "PENDING", "days": 1}],
        [{"status": "COMPLETED", "days": 1}, {"status": "COMPLETED", "days": 2}],
    ):
        r = httpx.put(f"{srv.url}/api/admin/retention", json={"rules": rules}, headers=auth(admin))
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_RETENTION_RULE"
    r = httpx.put(
        f"{srv.url}/api/admin/retention",
        json={"rules": [{"status": "COMPLETED", "days": -1}]},
        headers=auth(admin),
    )
    assert r.status_code == 422


def test_the_sweep_deletes_what_the_rules_say_and_counts_it(srv: SpyGlassServer) -> None:
    admin = make_account(srv, admin=True, prefix="ret-admin")
    user = make_account(srv, prefix="ret-owner")
    old_done = [start(srv, user, "steps", {"steps": 1, "delay": 0}) for _ in range(5)]
    kept_job = start(srv, user, "logs")  # a job whose completions are kept for ever
    old_failed = start(srv, user, "boom")
    young_done = start(srv, user, "steps", {"steps": 1, "delay": 0})
    finished(srv, user, *old_done, kept_job, old_failed, young_done)
    age(srv, [*old_done, kept_job], days=40)
    age(srv, [old_failed], days=60)  # FAILED is kept 90 days
    # A stored file of one of them, where the storage keeps task files.
    owner_files = srv.data_dir / "files" / "users" / str(user.id) / "tasks" / old_done[0]
    (owner_files / "outputs").mkdir(parents=True)
    (owner_files / "outputs" / "report.json").write_text("{}")
    rules = [
        {"status": "COMPLETED", "days": 30},
        {"status": "COMPLETED", "job": "probe_jobs_state.logs", "days": None},
        {"status": "FAILED", "days": 90},
    ]
    r = httpx.put(f"{srv.url}/api/admin/retention", json={"rules": rules}, headers=auth(admin))
    assert r.status_code == 200, r.text
    assert {(x["status"], x["job"], x["days"]) for x in r.json()["rules"]} == {
        ("COMPLETED", "", 30),
        ("COMPLETED", "probe_jobs_state.logs", None),
        ("FAILED", "", 90),
    }
    preview = httpx.get(f"{srv.url}/api/admin/retention/preview", headers=auth(admin)).json()
    assert preview["by_status"].get("COMPLETED", 0) >= 5
    assert preview["by_status"].get("FAILED", 0) == 0
    before = metric(srv, "COMPLETED")
    r = httpx.post(f"{srv.url}/api/admin/retention/sweep", headers=auth(admin), timeout=60)
    assert r.status_code == 200 and r.json()["swept"], r.text
    assert r.json()["deleted"]["COMPLETED"] == preview["by_status"]["COMPLETED"]
    for task_id in old_done:
        assert task(srv, user, task_id).status_code == 404
        events = httpx.get(f"{srv.url}/api/tasks/{task_id}/events", headers=auth(user))
        assert events.status_code == 404
    assert not owner_files.exists()
    for task_id in (kept_job, old_failed, young_done):
        assert task(srv, user, task_id).status_code == 200
    after = httpx.get(f"{srv.url}/api/admin/retention/preview", headers=auth(admin)).json()
    assert after["total"] == 0
    assert metric(srv, "COMPLETED") - before == r.json()["deleted"]["COMPLETED"]
    # Their timeline lines are gone from the search index too.
    hits = httpx.get(
        f"{srv.url}/api/events/search", params={"q": "step"}, headers=auth(user)
    ).json()
    assert {h["task_id"] for h in hits["results"]} <= {young_done}
    httpx.put(f"{srv.url}/api/admin/retention", json={"rules": []}, headers=auth(admin))


def metric(srv: SpyGlassServer, status: str) -> float:
    text = httpx.get(f"{srv.url}/metrics", timeout=30).text
    for line in text.splitlines():
        if line.startswith(f'spyglass_retention_deleted_total{{status="{status}"}}'):
            return float(line.split()[-1])
    return 0.0


# -- bulk actions ---------------------------------------------------------------------------
def test_bulk_actions_count_then_confirm(srv: SpyGlassServer) -> None:
    alice = make_account(srv, prefix="bulk-alice")
    bob = make_account(srv, prefix="bulk-bob")
    failed = [start(srv, alice, "boom") for _ in range(3)]
    done = [start(srv, alice, "steps", {"steps": 1, "delay": 0}) for _ in range(2)]
    bobs = start(srv, bob, "boom")
    finished(srv, alice, *failed, *done)
    finished(srv, bob, bobs)
    # Retry every FAILED task of alice's: counted first, nothing done.
    counted = bulk(srv, alice, "retry", status="FAILED")
    assert counted.status_code == 200, counted.text
    body = counted.json()
    assert body["matched"] == 3 and not body["executed"] and body["confirm"]
    assert total(srv, alice) == 5
    # A confirmation is bound to its caller, action and filter.
    assert bulk(srv, bob, "retry", body["confirm"], status="FAILED").status_code == 400
    wrong = bulk(srv, alice, "delete", body["confirm"], status="FAILED")
    assert wrong.status_code == 400
    assert wrong.json()["error_code"] == "BULK_CONFIRMATION_INVALID"
    acted = bulk(srv, alice, "retry", body["confirm"], status="FAILED")
    assert acted.status_code == 200, acted.text
    assert acted.json()["executed"] and acted.json()["done"] == 3
    assert total(srv, alice) == 8
    assert task(srv, bob, bobs).json()["status"] == "FAILED"  # bob's untouched
    # Cancel what runs: only the active ones count.
    running = [start(srv, alice, "slow") for _ in range(2)]
    counted = bulk(srv, alice, "cancel", task_type="slow").json()
    assert counted["matched"] == 2 and counted["statuses"] == ["PENDING", "PROCESSING"]
    acted = bulk(srv, alice, "cancel", counted["confirm"], task_type="slow").json()
    assert acted["done"] == 2
    wait_for(lambda: all(task(srv, alice, t).json()["status"] == "CANCELLED" for t in running))
    assert bulk(srv, alice, "cancel", status="COMPLETED").json()["matched"] == 0
    # Delete: the count changed between the two calls → 409 with the new count.
    counted = bulk(srv, alice, "delete", status="COMPLETED").json()
    extra = start(srv, alice, "steps", {"steps": 1, "delay": 0})
    finished(srv, alice, extra)
    changed = bulk(srv, alice, "delete", counted["confirm"], status="COMPLETED")
    assert changed.status_code == 409 and changed.json()["error_code"] == "BULK_COUNT_CHANGED"
    context = changed.json()["context"]
    assert context["matched"] == counted["matched"] + 1
    acted = bulk(srv, alice, "delete", context["confirm"], status="COMPLETED").json()
    assert acted["done"] == context["matched"]
    assert bulk(srv, alice, "delete", status="COMPLETED").json()["matched"] == 0
    # An admin acts on everyone's.
    admin = make_account(srv, admin=True, prefix="bulk-admin")
    everyone = bulk(srv, admin, "delete", status="FAILED").json()
    assert everyone["matched"] >= 1 + 3  # bob's and alice's first failures
    assert bulk(srv, alice, "delete", "1.2.3").status_code == 422


def total(srv: SpyGlassServer, who: Account) -> int:
    r = httpx.get(f"{srv.url}/api/tasks", headers=auth(who), timeout=30)
    return int(r.json()["pagination"]["total"])


# -- search -----------------------------------------------------------------------------------
def test_search_finds_ones_own_event_messages(srv: SpyGlassServer) -> None:
    carol = make_account(srv, prefix="search-carol")
    dave = make_account(srv, prefix="search-dave")
    mine = start(srv, carol, "logs")
    theirs = start(srv, dave, "logs")
    finished(srv, carol, mine)
    finished(srv, dave, theirs)

    def search(who: Account, q: str) -> dict[str, Any]:
        r = httpx.get(f"{srv.url}/api/events/search", params={"q": q}, headers=auth(who))
        assert r.status_code == 200, r.text
        return dict(r.json())

    found = search(carol, "hello job")
    assert [h["task_id"] for h in found["results"]] == [mine]
    hit = found["results"][0]
    assert hit["message"] == "hello from the job" and hit["event_type"] == "info"
    assert hit["task_url"] == f"/tasks/{mine}#event-{hit['seq']}"
    timeline = httpx.get(f"{srv.url}{hit['events_url']}", headers=auth(carol)).json()
    assert timeline["events"][0]["seq"] == hit["seq"]
    assert timeline["events"][0]["message"] == "hello from the job"
    assert search(carol, "jobs")["total"] >= 1  # stemmed: jobs finds job
    assert search(carol, "nothing-like-this")["total"] == 0
    assert search(carol, '"hello" (job*:')["total"] >= 1  # no query syntax leaks
    admin = make_account(srv, admin=True, prefix="search-admin")
    assert {mine, theirs} <= {h["task_id"] for h in search(admin, "hello")["results"]}
    r = httpx.get(f"{srv.url}/api/events/search", params={"q": ""}, headers=auth(carol))
    assert r.status_code == 422


# -- PostgreSQL ---------------------------------------------------------------------------------
def test_on_postgresql(new_server: Callable[..., SpyGlassServer], tmp_path: Path) -> None:
    """The same on PostgreSQL: full-text search with its GIN index, idempotency, retention."""
    from tests.services import new_database, postgres_server

    with postgres_server() as pg:
        url = new_database(pg)
        srv = new_server(env={**ENV, "SPYGLASS_DB_URL": url})
        user = make_account(srv, prefix="pg-user")
        admin = make_account(srv, admin=True, prefix="pg-admin")
        logs = start(srv, user, "logs")
        finished(srv, user, logs)
        r = httpx.get(
            f"{srv.url}/api/events/search", params={"q": "jobs hello"}, headers=auth(user)
        )
        assert r.status_code == 200 and [h["task_id"] for h in r.json()["results"]] == [logs]
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                index = conn.execute(
                    sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"),
                    {"n": "ix_task_event_search"},
                ).scalar_one()
        finally:
            engine.dispose()
        assert "gin" in index.lower() and "to_tsvector" in index
        headers = {**auth(user), "Idempotency-Key": "pg-key"}
        body = {"task_type": "testjobs.steps", "input_params": {"steps": 1}}
        first = httpx.post(f"{srv.url}/api/tasks", json=body, headers=headers, timeout=30)
        again = httpx.post(f"{srv.url}/api/tasks", json=body, headers=headers, timeout=30)
        assert first.status_code == again.status_code == 201 and first.content == again.content
        finished(srv, user, first.json()["task_id"])
        age(srv, [logs, first.json()["task_id"]], days=10)
        rules = {"rules": [{"status": "COMPLETED", "days": 5}]}
        httpx.put(f"{srv.url}/api/admin/retention", json=rules, headers=auth(admin))
        swept = httpx.post(f"{srv.url}/api/admin/retention/sweep", headers=auth(admin)).json()
        assert swept["deleted"] == {"COMPLETED": 2}
        assert task(srv, user, logs).status_code == 404
