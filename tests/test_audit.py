"""The audit log over HTTP against a real server: each admin or destructive action writes
exactly one row (who, with which credential, what, to what, from where); a refused action
writes none; admins filter it, page it and export it as CSV; nobody else reads it, and no
route (nor the database) changes a row."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from spyglass.tasks.store import make_engine
from tests.accounts import Account, db_url, make_account, session_cookie
from tests.harness import SpyGlassServer, wait_for

ENV = {"SPYGLASS_SHUTDOWN_GRACE": "0", "SPYGLASS_WEBHOOK_ALLOW_PRIVATE": "1"}
AGENT = "audit-tests/1.0"
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}
LONG = {"steps": 2000, "delay": 0.02}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpyGlassServer]:
    server = SpyGlassServer(tmp_path_factory.mktemp("audit"), env=ENV).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin(srv: SpyGlassServer) -> Account:
    return make_account(srv, admin=True, prefix="audit-admin")


def auth(who: Account, agent: str = AGENT) -> dict[str, str]:
    return {"Authorization": f"Bearer {who.token}", "User-Agent": agent}


def start(srv: SpyGlassServer, who: Account, job: str, params: Any = None) -> str:
    r = httpx.post(
        f"{srv.url}/api/tasks",
        json={"task_type": f"testjobs.{job}", "input_params": params},
        headers=auth(who),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["task_id"])


def status(srv: SpyGlassServer, who: Account, task_id: str) -> str:
    r = httpx.get(f"{srv.url}/api/tasks/{task_id}", headers=auth(who), timeout=30)
    return str(r.json()["status"])


def running(srv: SpyGlassServer, who: Account, task_id: str) -> None:
    wait_for(lambda: status(srv, who, task_id) == "PROCESSING")


def finished(srv: SpyGlassServer, who: Account, *ids: str) -> None:
    wait_for(lambda: all(status(srv, who, i) in TERMINAL for i in ids))


def rows(srv: SpyGlassServer, admin: Account, **filters: Any) -> list[dict[str, Any]]:
    r = httpx.get(f"{srv.url}/api/admin/audit", params=filters, headers=auth(admin), timeout=30)
    assert r.status_code == 200, r.text
    return list(r.json()["events"])


def one(srv: SpyGlassServer, admin: Account, **filters: Any) -> dict[str, Any]:
    found = rows(srv, admin, **filters)
    assert len(found) == 1, found
    return found[0]


def by(who: Account | None, found: dict[str, Any], credential: str = "token") -> None:
    """The row names the actor, their credential, and where the request came from."""
    if who is None:
        assert found["actor_id"] is None and found["actor_email"] == "anonymous"
        assert found["credential_type"] == ""
    else:
        assert (found["actor_id"], found["actor_email"]) == (who.id, who.email)
        assert found["credential_type"] == credential
        if credential == "token":
            assert found["credential_id"] == who.token_id
    assert found["ip"] == "127.0.0.1"
    assert found["user_agent"] == AGENT
    assert datetime.fromisoformat(found["at"]) > datetime.now(UTC) - timedelta(minutes=5)


# -- one row per action ------------------------------------------------------------------
def test_cancel_retry_delete_over_rest_each_record_one_row(
    srv: SpyGlassServer, admin: Account
) -> None:
    user = make_account(srv, prefix="audit-rest")
    task_id = start(srv, user, "steps", LONG)
    running(srv, user, task_id)
    r = httpx.post(f"{srv.url}/api/tasks/{task_id}/cancel", headers=auth(user), timeout=30)
    assert r.status_code == 200, r.text
    cancelled = one(srv, admin, target_id=task_id, action="task.cancel")
    by(user, cancelled)
    assert cancelled["target_type"] == "task"

    r = httpx.post(f"{srv.url}/api/tasks/{task_id}/retry", headers=auth(user), timeout=30)
    assert r.status_code == 201, r.text
    retried = one(srv, admin, target_id=task_id, action="task.retry")
    by(user, retried)
    new_id = r.json()["task_id"]
    assert retried["detail"] == {"new_task_id": new_id}

    # An admin deletes the user's task: the admin is the actor.
    r = httpx.delete(f"{srv.url}/api/tasks/{new_id}", headers=auth(admin), timeout=30)
    assert r.status_code == 200, r.text
    deleted = one(srv, admin, target_id=new_id)
    by(admin, deleted)
    assert deleted["action"] == "task.delete"
    assert deleted["detail"] == {"files_deleted": r.json()["files_deleted"]}
    assert len(rows(srv, admin, target_id=task_id)) == 2  # cancel and retry, nothing else


def test_refused_actions_record_nothing(srv: SpyGlassServer, admin: Account) -> None:
    owner = make_account(srv, prefix="audit-owner")
    other = make_account(srv, prefix="audit-other")
    task_id = start(srv, owner, "steps", LONG)
    running(srv, owner, task_id)
    for method, path in (
        ("POST", f"/api/tasks/{task_id}/cancel"),
        ("POST", f"/api/tasks/{task_id}/retry"),
        ("DELETE", f"/api/tasks/{task_id}"),
    ):
        r = httpx.request(method, f"{srv.url}{path}", headers=auth(other), timeout=30)
        assert r.status_code == 404, (path, r.text)
    r = httpx.delete(f"{srv.url}/api/tokens/{owner.token_id}", headers=auth(other), timeout=30)
    assert r.status_code == 404
    # Retrying a running task is refused (400): nothing recorded either.
    r = httpx.post(f"{srv.url}/api/tasks/{task_id}/retry", headers=auth(owner), timeout=30)
    assert r.status_code == 400
    assert rows(srv, admin, target_id=task_id) == []
    assert rows(srv, admin, actor=other.email) == []
    assert rows(srv, admin, target_type="token", target_id=str(owner.token_id)) == []
    httpx.post(f"{srv.url}/api/tasks/{task_id}/cancel", headers=auth(owner), timeout=30)
    finished(srv, owner, task_id)
    # Cancelling what has ended is refused (400), and recorded no second time.
    r = httpx.post(f"{srv.url}/api/tasks/{task_id}/cancel", headers=auth(owner), timeout=30)
    assert r.status_code == 400
    assert [x["action"] for x in rows(srv, admin, target_id=task_id)] == ["task.cancel"]


def test_a_token_free_cancel_is_recorded_as_anonymous(srv: SpyGlassServer, admin: Account) -> None:
    r = httpx.post(
        f"{srv.url}/api/testjobs/task/start/steps", json=LONG, headers={"User-Agent": AGENT}
    )
    assert r.status_code == 200, r.text
    task_id = r.json()["task_id"]
    r = httpx.post(
        f"{srv.url}/api/testjobs/task/cancel/{task_id}", headers={"User-Agent": AGENT}, timeout=30
    )
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED", r.text
    by(None, one(srv, admin, target_id=task_id, action="task.cancel"))
    r = httpx.post(f"{srv.url}/api/testjobs/task/cancel/{task_id}", timeout=30)
    assert r.status_code == 400
    assert len(rows(srv, admin, target_id=task_id)) == 1


def test_bulk_actions_record_one_row_with_the_count(srv: SpyGlassServer, admin: Account) -> None:
    user = make_account(srv, prefix="audit-bulk")
    ids = [start(srv, user, "steps", {"steps": 1, "delay": 0}) for _ in range(3)]
    finished(srv, user, *ids)

    def bulk(action: str, confirm: str | None = None) -> httpx.Response:
        params = {"status": "COMPLETED", **({"confirm": confirm} if confirm else {})}
        return httpx.post(
            f"{srv.url}/api/tasks/bulk/{action}", params=params, headers=auth(user), timeout=60
        )

    counted = bulk("delete")
    assert counted.status_code == 200 and counted.json()["matched"] == 3, counted.text
    assert rows(srv, admin, actor=user.email) == []  # counting acts on nothing
    done = bulk("delete", counted.json()["confirm"])
    assert done.status_code == 200 and done.json()["done"] == 3, done.text
    row = one(srv, admin, actor=user.email, action="tasks.bulk_delete")
    by(user, row)
    assert row["target_type"] == "tasks"
    assert row["detail"]["count"] == 3 and row["detail"]["statuses"] == ["COMPLETED"]

    # The older bulk delete by status: one row too.
    more = [start(srv, user, "boom") for _ in range(2)]
    finished(srv, user, *more)
    r = httpx.delete(
        f"{srv.url}/api/tasks", params={"status": "FAILED"}, headers=auth(user), timeout=30
    )
    assert r.status_code == 200 and r.json()["deleted_count"] == 2
    found = rows(srv, admin, actor=user.email, action="tasks.bulk_delete")
    assert len(found) == 2 and found[0]["detail"] == {"count": 2, "statuses": ["FAILED"]}


def test_bulk_cancel_and_retry_record_one_row_each(srv: SpyGlassServer, admin: Account) -> None:
    user = make_account(srv, prefix="audit-bulk-cr")
    ids = [start(srv, user, "steps", LONG) for _ in range(2)]
    for task_id in ids:
        running(srv, user, task_id)

    def bulk(action: str) -> dict[str, Any]:
        url = f"{srv.url}/api/tasks/bulk/{action}"
        counted = httpx.post(url, headers=auth(user), timeout=60).json()
        r = httpx.post(url, params={"confirm": counted["confirm"]}, headers=auth(user), timeout=60)
        assert r.status_code == 200, r.text
        return dict(r.json())

    assert bulk("cancel")["done"] == 2
    finished(srv, user, *ids)
    assert bulk("retry")["done"] == 2
    found = rows(srv, admin, actor=user.email, action="tasks.*")
    assert [x["action"] for x in found] == ["tasks.bulk_retry", "tasks.bulk_cancel"]
    for row in found:
        by(user, row)
        assert row["detail"]["count"] == 2 and row["detail"]["failed"] == 0
    assert rows(srv, admin, actor=user.email, action="task.*") == []  # one row, not one a task
    httpx.post(  # the retried runs: stopped
        f"{srv.url}/api/tasks/bulk/cancel",
        params={
            "confirm": httpx.post(f"{srv.url}/api/tasks/bulk/cancel", headers=auth(user)).json()[
                "confirm"
            ]
        },
        headers=auth(user),
        timeout=60,
    )


def test_tokens_issued_and_revoked_are_recorded(srv: SpyGlassServer, admin: Account) -> None:
    user = make_account(srv, prefix="audit-tokens")
    r = httpx.post(
        f"{srv.url}/api/tokens",
        json={"name": "for the user", "owner_email": user.email},
        headers=auth(admin),
    )
    assert r.status_code == 201, r.text
    token = r.json()
    issued = one(srv, admin, action="token.issue", target_id=str(token["id"]))
    by(admin, issued)
    assert issued["detail"] == {
        "owner": user.email,
        "name": "for the user",
        "prefix": token["prefix"],
    }
    assert token["token"] not in str(issued)  # never the secret
    r = httpx.delete(f"{srv.url}/api/tokens/{token['id']}", headers=auth(user))
    assert r.status_code == 200 and r.json()["changed"] is True
    by(user, one(srv, admin, action="token.revoke", target_id=str(token["id"])))
    r = httpx.delete(f"{srv.url}/api/tokens/{token['id']}", headers=auth(user))
    assert r.status_code == 200 and r.json()["changed"] is False  # already: nothing recorded
    assert len(rows(srv, admin, target_type="token", target_id=str(token["id"]))) == 2


def test_retention_changes_and_sweeps_are_recorded(srv: SpyGlassServer, admin: Account) -> None:
    url = f"{srv.url}/api/admin/retention"
    first = [{"status": "COMPLETED", "job": "", "days": 30.0}]
    r = httpx.put(url, json={"rules": first}, headers=auth(admin))
    assert r.status_code == 200, r.text
    second = [{"status": "FAILED", "job": "", "days": 90.0}]
    r = httpx.put(url, json={"rules": second}, headers=auth(admin))
    assert r.status_code == 200, r.text
    changes = rows(srv, admin, action="retention.change")
    assert len(changes) == 2
    by(admin, changes[0])
    assert changes[0]["detail"] == {"old": first, "new": second}
    r = httpx.post(f"{url}/sweep", headers=auth(admin), timeout=60)
    assert r.status_code == 200 and r.json()["swept"], r.text
    swept = one(srv, admin, action="retention.sweep")
    by(admin, swept)
    assert swept["detail"]["count"] == sum(r.json()["deleted"].values())
    httpx.put(url, json={"rules": []}, headers=auth(admin))


def test_webhook_changes_are_recorded(srv: SpyGlassServer, admin: Account) -> None:
    user = make_account(srv, prefix="audit-hooks")
    base = f"{srv.url}/api/webhooks"
    r = httpx.post(
        base,
        json={"url": "http://127.0.0.1:9/hook?key=secret", "events": ["task.completed"]},
        headers=auth(user),
    )
    assert r.status_code == 201, r.text
    endpoint = r.json()["id"]
    r = httpx.patch(f"{base}/{endpoint}", json={"events": ["task.failed"]}, headers=auth(user))
    assert r.status_code == 200, r.text
    r = httpx.patch(f"{base}/{endpoint}", json={"enabled": True}, headers=auth(user))
    assert r.status_code == 200, r.text
    other = make_account(srv, prefix="audit-hooks-other")
    r = httpx.delete(f"{base}/{endpoint}", headers=auth(other))
    assert r.status_code == 404  # not theirs: nothing recorded
    r = httpx.delete(f"{base}/{endpoint}", headers=auth(user))
    assert r.status_code == 200, r.text
    found = rows(srv, admin, target_type="webhook", target_id=str(endpoint))
    assert [x["action"] for x in found] == [
        "webhook.delete",
        "webhook.enable",
        "webhook.update",
        "webhook.create",
    ]
    for row in found:
        by(user, row)
    assert found[3]["detail"]["host"] == "127.0.0.1"
    assert "secret" not in str(found)  # the URL's query is not kept
    assert found[2]["detail"]["changed"] == ["events"]
    assert found[2]["detail"]["events"] == ["task.failed"]


def test_portal_user_edits_record_old_and_new(srv: SpyGlassServer, admin: Account) -> None:
    user = make_account(srv, prefix="audit-portal")
    cookies = session_cookie(srv, admin)
    with httpx.Client(
        base_url=srv.url, cookies=cookies, headers={"User-Agent": AGENT}, timeout=30
    ) as c:
        form = c.get("/admin/user/edit", params={"pk": user.id})
        assert form.status_code == 200, form.text
        token = re.search(r'name="csrftoken" value="([^"]+)"', form.text)
        assert token, form.text[:500]
        fields = {"csrftoken": token.group(1)}
        data = {**fields, "email": user.email, "credits": "4321", "role": "operator"}
        r = c.post("/admin/user/edit", params={"pk": user.id}, data=data)
        assert r.status_code in (200, 303), r.text[:500]
        found = rows(srv, admin, target_type="user", target_id=str(user.id))
        assert sorted(x["action"] for x in found) == ["user.credit_change", "user.role_change"]
        for row in found:
            by(admin, row, credential="session")
        role = next(x for x in found if x["action"] == "user.role_change")
        assert (role["detail"]["old"], role["detail"]["new"]) == ("user", "operator")
        credit = next(x for x in found if x["action"] == "user.credit_change")
        assert credit["detail"]["new"] == 4321
        # Saving again without a change records nothing.
        c.post("/admin/user/edit", params={"pk": user.id}, data=data)
        assert len(rows(srv, admin, target_type="user", target_id=str(user.id))) == 2
        # The portal shows the log read-only: no edit, no delete, no create.
        listing = c.get("/admin/audit-event/list")
        assert listing.status_code == 200
        for path in ("/admin/audit-event/create", f"/admin/audit-event/edit?pk={found[0]['id']}"):
            assert c.get(path).status_code in (403, 404), path
        r = c.post(
            "/admin/_api/audit-event/action",
            params={"name": "delete", "pks": [found[0]["id"]]},
            headers={"X-CSRFToken": fields["csrftoken"]},
        )
        assert r.status_code >= 400, r.text[:300]
        assert len(rows(srv, admin, target_type="user", target_id=str(user.id))) == 2


# -- reading it ---------------------------------------------------------------------------
def test_filters_and_paging(srv: SpyGlassServer, admin: Account) -> None:
    user = make_account(srv, prefix="audit-filters")
    since = datetime.now(UTC) - timedelta(seconds=1)
    ids = []
    for _ in range(3):
        task_id = start(srv, user, "steps", {"steps": 1, "delay": 0})
        finished(srv, user, task_id)
        assert httpx.delete(f"{srv.url}/api/tasks/{task_id}", headers=auth(user)).status_code == 200
        ids.append(task_id)
    mine = rows(srv, admin, actor=user.email.upper())
    assert [x["target_id"] for x in mine] == ids[::-1]  # newest first, any case of the email
    assert rows(srv, admin, actor=user.email, action="task.*") == mine
    assert rows(srv, admin, actor=user.email, action="token.*") == []
    assert rows(srv, admin, actor=user.email, since=since.isoformat()) == mine
    assert rows(srv, admin, actor=user.email, until=since.isoformat()) == []
    middle = mine[1]["at"]
    assert [x["target_id"] for x in rows(srv, admin, actor=user.email, until=middle)] == [ids[0]]
    r = httpx.get(
        f"{srv.url}/api/admin/audit",
        params={"actor": user.email, "limit": 2, "offset": 0},
        headers=auth(admin),
    )
    page = r.json()
    assert (page["total"], page["has_more"], len(page["events"])) == (3, True, 2)
    r = httpx.get(
        f"{srv.url}/api/admin/audit",
        params={"actor": user.email, "limit": 2, "offset": 2},
        headers=auth(admin),
    )
    assert r.json()["events"] == mine[2:] and r.json()["has_more"] is False
    for params, code in (
        ({"action": "task.explode"}, 400),
        ({"action": "DROP TABLE"}, 400),
        ({"action": "x" * 41}, 422),
        ({"target_type": "planet"}, 400),
        ({"since": "yesterday"}, 422),
        ({"limit": 0}, 422),
    ):
        r = httpx.get(f"{srv.url}/api/admin/audit", params=params, headers=auth(admin))
        assert r.status_code == code, (params, r.text)


def test_csv_export_defuses_formulas(srv: SpyGlassServer, admin: Account) -> None:
    sly = make_account(srv, email="=cmd@example.com")
    task_id = start(srv, sly, "steps", {"steps": 1, "delay": 0})
    finished(srv, sly, task_id)
    r = httpx.delete(f"{srv.url}/api/tasks/{task_id}", headers=auth(sly, "@SUM(1+1)*cmd"))
    assert r.status_code == 200
    r = httpx.get(
        f"{srv.url}/api/admin/audit.csv", params={"target_id": task_id}, headers=auth(admin)
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert len(table) == 1
    line = table[0]
    assert line["action"] == "task.delete" and line["target_id"] == task_id
    assert line["actor_email"] == "'=cmd@example.com"
    assert line["user_agent"] == "'@SUM(1+1)*cmd"
    assert line["credential_type"] == "token" and line["ip"] == "127.0.0.1"
    # Every row, with the filters of the list.
    every = httpx.get(f"{srv.url}/api/admin/audit.csv", headers=auth(admin))
    total = httpx.get(f"{srv.url}/api/admin/audit", headers=auth(admin)).json()["total"]
    assert len(list(csv.DictReader(io.StringIO(every.text)))) == total


def test_only_admins_read_it(srv: SpyGlassServer, admin: Account) -> None:
    user = make_account(srv, prefix="audit-nosy")
    for path in ("/api/admin/audit", "/api/admin/audit.csv"):
        r = httpx.get(f"{srv.url}{path}", headers=auth(user))
        assert r.status_code == 403 and r.json()["error_code"] == "FORBIDDEN", path
        r = httpx.get(f"{srv.url}{path}", cookies=session_cookie(srv, user))
        assert r.status_code == 403, path
        assert httpx.get(f"{srv.url}{path}").status_code == 401, path
        r = httpx.get(f"{srv.url}{path}", cookies=session_cookie(srv, admin))
        assert r.status_code == 200, path  # the admin's browser, for the page's download


def test_no_route_changes_a_row(srv: SpyGlassServer, admin: Account) -> None:
    issued = httpx.post(f"{srv.url}/api/tokens", json={"name": "kept"}, headers=auth(admin))
    assert issued.status_code == 201
    first = one(srv, admin, action="token.issue", target_id=str(issued.json()["id"]))
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path in ("/api/admin/audit", f"/api/admin/audit/{first['id']}", "/api/admin/audit.csv"):
            r = httpx.request(method, f"{srv.url}{path}", headers=auth(admin), json={})
            expected = 404 if path.endswith(str(first["id"])) else 405
            assert r.status_code == expected, (method, path, r.status_code)
    document = httpx.get(f"{srv.url}/openapi.json").json()
    audit_paths = {p: ops for p, ops in document["paths"].items() if "audit" in p}
    assert set(audit_paths) == {"/api/admin/audit", "/api/admin/audit.csv"}
    assert all(set(ops) == {"get"} for ops in audit_paths.values())
    for ops in audit_paths.values():
        assert {"401", "403", "422"} <= set(ops["get"]["responses"])
    # The database itself refuses, whoever asks.
    engine = make_engine(db_url(srv))
    try:
        for statement in ("UPDATE audit_event SET actor_email = 'x'", "DELETE FROM audit_event"):
            with pytest.raises(sa.exc.DBAPIError), engine.begin() as conn:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()
    assert rows(srv, admin, action="token.issue", target_id=first["target_id"]) == [first]


def test_the_servers_own_sweep_is_recorded_as_system(
    new_server: Callable[..., SpyGlassServer],
) -> None:
    srv = new_server(env={**ENV, "SPYGLASS_RETENTION_INTERVAL": "1"})
    admin = make_account(srv, admin=True, prefix="audit-sweep-admin")
    user = make_account(srv, prefix="audit-sweep")
    task_id = start(srv, user, "steps", {"steps": 1, "delay": 0})
    finished(srv, user, task_id)
    engine = make_engine(db_url(srv))
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE task SET updated_at = :at WHERE id = :id"),
                {
                    "at": (datetime.now(UTC) - timedelta(days=40)).replace(tzinfo=None),
                    "id": task_id,
                },
            )
    finally:
        engine.dispose()
    rules = [{"status": "COMPLETED", "days": 30}]
    r = httpx.put(f"{srv.url}/api/admin/retention", json={"rules": rules}, headers=auth(admin))
    assert r.status_code == 200
    swept = wait_for(lambda: rows(srv, admin, action="retention.sweep"), timeout=60)
    assert swept[0]["actor_email"] == "system" and swept[0]["actor_id"] is None
    assert swept[0]["detail"] == {"count": 1, "by_status": {"COMPLETED": 1}}
    assert swept[0]["ip"] == "" and swept[0]["credential_type"] == ""


def test_on_postgresql(new_server: Callable[..., SpyGlassServer]) -> None:
    """On PostgreSQL too: rows recorded and read, the CSV, and the database's refusal (a
    statement trigger: UPDATE, DELETE and TRUNCATE)."""
    from tests.services import new_database, postgres_server

    with postgres_server() as pg:
        url = new_database(pg)
        srv = new_server(env={**ENV, "SPYGLASS_DB_URL": url})
        admin = make_account(srv, admin=True, prefix="pg-audit-admin")
        user = make_account(srv, prefix="pg-audit")
        task_id = start(srv, user, "steps", {"steps": 1, "delay": 0})
        finished(srv, user, task_id)
        r = httpx.delete(f"{srv.url}/api/tasks/{task_id}", headers=auth(user), timeout=30)
        assert r.status_code == 200, r.text
        row = one(srv, admin, actor=user.email.upper(), action="task.*")
        by(user, row)
        assert (row["action"], row["target_id"]) == ("task.delete", task_id)
        since = (datetime.fromisoformat(row["at"]) - timedelta(seconds=1)).isoformat()
        assert rows(srv, admin, since=since, target_id=task_id) == [row]
        csv_text = httpx.get(f"{srv.url}/api/admin/audit.csv", headers=auth(admin)).text
        assert task_id in csv_text
        engine = make_engine(url)
        try:
            for statement in (
                "UPDATE audit_event SET actor_email = 'x'",
                "DELETE FROM audit_event",
                "TRUNCATE audit_event",
            ):
                with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as c:
                    c.execute(sa.text(statement))
        finally:
            engine.dispose()
        assert rows(srv, admin, target_id=task_id) == [row]


async def test_a_bulk_action_that_breaks_off_is_recorded_with_what_it_did(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from spyglass import audit

    seen: list[tuple[Any, ...]] = []

    async def record(*args: Any) -> None:
        seen.append(args)

    monkeypatch.setattr(audit, "record", record)
    detail: dict[str, Any] = {"count": 0}
    with pytest.raises(RuntimeError, match="went away"):
        async with audit.recording(None, None, "tasks.bulk_delete", "tasks", detail) as d:
            d["count"] = 3
            raise RuntimeError("the database went away")
    assert seen == [
        (None, None, "tasks.bulk_delete", "tasks", "", {"count": 3, "interrupted": True})
    ]
    async with audit.recording(None, None, "tasks.bulk_cancel", "tasks", {"count": 0}) as d:
        d["count"] = 2
    assert seen[1] == (None, None, "tasks.bulk_cancel", "tasks", "", {"count": 2})
