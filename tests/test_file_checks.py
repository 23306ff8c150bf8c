"""An uploaded file is checked before its task is charged (encoding, delimiter, emptiness, a
readable workbook), over HTTP on a real server: each bad file is refused with its message and
`BAD_INPUT_FILE`, the task waits for another file and no credit moves; a semicolon CSV, a
Windows-1252 file and a UTF-8 file with a byte-order mark profile as they should."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import Workbook

from spyglass.filetypes import data_type
from spyglass.storage.local import LocalStorage
from spyglass.tools import flow
from spyglass.tools.common.sniff import HEAD_BYTES
from tests.accounts import Account, make_account, set_credits
from tests.harness import SpyGlassServer
from tests.test_tool_flow import wait_end

CREDITS = 50


def auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.token}"}


def _xlsx(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(c: httpx.Client, files: dict[str, tuple[str, bytes]], agents: list[str]) -> str:
    """A profile task with `files` ({key: (name, bytes)}) uploaded; its id."""
    task = c.post("/api/tasks", json={"tool_id": "profile-my-data", "agents": agents}).json()
    wanted = {
        key: {"filename": name, "content_type": _content_type(name)}
        for key, (name, _) in files.items()
    }
    tickets = c.post(f"/api/tasks/{task['task_id']}/upload-urls", json={"files": wanted}).json()
    for key, info in tickets["uploads"].items():
        put = httpx.put(info["url"], content=files[key][1], headers=info["headers"], timeout=30)
        assert put.status_code == 200, put.text
    return str(task["task_id"])


def _content_type(name: str) -> str:
    kind = data_type(name)
    assert kind is not None
    return kind.content_types[0]


def credits(c: httpx.Client) -> int:
    return int(c.get("/api/me").json()["credits"])


BAD_FILES = [
    ("blank.csv", b"\n\n  \n", "'blank.csv' is empty"),
    ("header.csv", b"id;name;amount\n", "'header.csv' has a header but no data rows"),
    ("utf16.csv", "id,name\n1,Ann\n".encode("utf-16"), "'utf16.csv' is UTF-16 text"),
    ("binary.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "'binary.csv' is not a text file"),
    ("undefined.csv", b"id,name\n1,\x81\x8d\n", "is not UTF-8 text (nor Windows-1252)"),
    ("ragged.csv", b"a,b\n1,2\n3,4,5\n", "'ragged.csv' is not a readable table"),
    ("broken.xlsx", b"PK\x03\x04 not really a workbook", "'broken.xlsx' is not a readable table"),
    ("header.xlsx", _xlsx([["id", "name"]]), "'header.xlsx' has a header but no data rows"),
]


@pytest.mark.parametrize(("name", "data", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_a_bad_file_is_refused_before_the_charge(
    server: SpyGlassServer, name: str, data: bytes, message: str
) -> None:
    account = make_account(server, prefix="checks")
    set_credits(server, account, CREDITS)
    with httpx.Client(base_url=server.url, headers=auth(account), timeout=30) as c:
        task_id = upload(c, {"primary": (name, data)}, ["unified-profiler"])
        r = c.post(f"/api/tasks/{task_id}/process")
        assert r.status_code == 422, r.text
        assert r.json()["error_code"] == "BAD_INPUT_FILE"
        assert message in r.json()["detail"] and "Error" not in r.json()["detail"]
        task = c.get(f"/api/tasks/{task_id}").json()
        assert task["status"] == "UPLOAD_FAILED" and task["error_code"] == "BAD_INPUT_FILE"
        assert credits(c) == CREDITS, "nothing charged"


def test_a_bad_baseline_is_refused_and_another_file_is_taken(server: SpyGlassServer) -> None:
    account = make_account(server, prefix="checks")
    set_credits(server, account, CREDITS)
    good = b"id,amount\n1,10\n2,20\n"
    with httpx.Client(base_url=server.url, headers=auth(account), timeout=30) as c:
        agents = ["unified-profiler", "drift-detector"]
        task_id = upload(c, {"primary": ("a.csv", good), "baseline": ("b.csv", b"")}, agents)
        r = c.post(f"/api/tasks/{task_id}/process")
        assert (r.status_code, r.json()["detail"]) == (422, "'b.csv' is empty")
        assert credits(c) == CREDITS
        # The task takes its files again (UPLOAD_FAILED), and then runs and is charged.
        tickets = c.post(
            f"/api/tasks/{task_id}/upload-urls",
            json={
                "files": {
                    "primary": {"filename": "a.csv", "content_type": "text/csv"},
                    "baseline": {"filename": "b.csv", "content_type": "text/csv"},
                }
            },
        ).json()
        for info in tickets["uploads"].values():
            assert httpx.put(info["url"], content=good, headers=info["headers"]).status_code == 200
        assert c.post(f"/api/tasks/{task_id}/process").status_code == 200
        assert wait_end(server, account, "data_tools", task_id)[-1]["status"] == "COMPLETED"
        assert credits(c) == CREDITS - 30


def _profile(server: SpyGlassServer, name: str, data: bytes) -> dict[str, Any]:
    account = make_account(server, prefix="dialects")
    with httpx.Client(base_url=server.url, headers=auth(account), timeout=30) as c:
        task_id = upload(c, {"primary": (name, data)}, ["unified-profiler"])
        assert c.post(f"/api/tasks/{task_id}/process").status_code == 200
        assert wait_end(server, account, "data_tools", task_id)[-1]["status"] == "COMPLETED"
        report: dict[str, Any] = c.get(f"/api/tasks/{task_id}/report").json()["report"]
        return report


def test_a_semicolon_csv_profiles_with_its_columns(server: SpyGlassServer) -> None:
    data = b'id;name;amount;note\n1;Ann;10;"a, b"\n2;Bob;;x\n3;Cy;30;"c; d"\n'
    report = _profile(server, "semicolons.csv", data)
    assert report["executiveSummary"]["rows"] == 3
    assert report["executiveSummary"]["columns"] == 4
    columns = {c["name"]: c for c in report["agentResults"]["unified-profiler"]["columns"]}
    assert list(columns) == ["id", "name", "amount", "note"]
    assert columns["amount"]["type"] == "integer" and columns["amount"]["nulls"] == 1
    assert (columns["amount"]["min"], columns["amount"]["max"]) == (10, 30)
    assert {v["value"] for v in columns["note"]["top_values"]} == {"a, b", "x", "c; d"}


def test_a_windows_1252_csv_profiles_with_its_accents(server: SpyGlassServer) -> None:
    text = "nom,prénom,ville,prix\n1,José,Besançon,10\n2,Zoë,Köln,20\n3,Chloé,Besançon,30 €\n"
    report = _profile(server, "ventes.csv", text.encode("cp1252"))
    columns = {c["name"]: c for c in report["agentResults"]["unified-profiler"]["columns"]}
    assert list(columns) == ["nom", "prénom", "ville", "prix"]
    assert columns["ville"]["top_values"][0] == {"value": "Besançon", "count": 2}
    assert {v["value"] for v in columns["prénom"]["top_values"]} == {"José", "Zoë", "Chloé"}
    assert "30 €" in {v["value"] for v in columns["prix"]["top_values"]}


def test_a_utf8_csv_with_a_byte_order_mark_keeps_its_first_column_name(
    server: SpyGlassServer,
) -> None:
    report = _profile(server, "bom.csv", "\ufeffid\tname\n1\tÅsa\n2\tBo\n".encode())
    columns = [c["name"] for c in report["agentResults"]["unified-profiler"]["columns"]]
    assert columns == ["id", "name"]


def test_the_checks_read_a_bounded_prefix_of_a_large_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 3 MB CSV: the checks read HEAD_BYTES (+1, to know there is more), never the file."""
    storage = _Counting(tmp_path / "files", "secret", 1 << 30)
    monkeypatch.setattr(flow, "get_storage", lambda: storage)
    key = "users/1/tasks/t/inputs/primary-big.csv"
    storage.write(key, b"id;name\n" + b"1;Ann\n" * 500_000, "text/csv")
    asyncio.run(flow.check_stored_file(key, "big.csv"))
    assert storage.prefixes == [HEAD_BYTES + 1]
    storage.write(key, b"id;name\n" + b"1;Ann\n" * 500_000 + b"2;Bob;extra\n", "text/csv")
    asyncio.run(flow.check_stored_file(key, "big.csv"))  # the bad row is past the head


class _Counting(LocalStorage):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.prefixes: list[int] = []

    def read(self, key: str) -> bytes:
        raise AssertionError("the whole file was read")

    def read_prefix(self, key: str, size: int) -> bytes:
        self.prefixes.append(size)
        return super().read_prefix(key, size)
