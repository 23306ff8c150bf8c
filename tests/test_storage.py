"""Storage: the local backend's signed URLs on the real server, and S3 against moto's server."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from moto.server import ThreadedMotoServer

from spyglass.storage import StorageError, input_key, output_key, sanitise_filename
from spyglass.storage.base import check_content_type
from spyglass.storage.local import LocalStorage
from spyglass.storage.s3 import S3Storage
from tests.accounts import make_account
from tests.harness import SpyGlassServer, free_port

CSV = b"id,name\n1,Ann\n2,Bo\n"


@pytest.fixture
def local(server: SpyGlassServer) -> LocalStorage:
    """The server's own local store (same folder, same signing key)."""
    secret = (server.data_dir / "secret.key").read_text().strip()
    return LocalStorage(server.data_dir / "files", secret, max_upload_bytes=1024)


def waiting_key(server: SpyGlassServer) -> str:
    """The storage key of a file a real task waits for (uploads go only there)."""
    account = make_account(server, prefix="store")
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {account.token}"}, timeout=10
    ) as c:
        task = c.post("/api/tasks", json={"tool_id": "profile-my-data"}).json()
        r = c.post(
            f"/api/tasks/{task['task_id']}/upload-urls",
            json={"files": {"primary": {"filename": "data.csv", "content_type": "text/csv"}}},
        )
        assert r.status_code == 200, r.text
        return str(r.json()["uploads"]["primary"]["key"])


def test_filenames_are_sanitised() -> None:
    assert sanitise_filename("../../etc/passwd") == "passwd"
    assert sanitise_filename("C:\\Users\\me\\Report 2026 (final).CSV") == "Report_2026_final.csv"
    assert sanitise_filename("données.xlsx") == "donnees.xlsx"
    assert sanitise_filename(".hidden.csv") == "hidden.csv"
    for bad in ("", "..", "///", "...csv"):
        with pytest.raises(StorageError):
            sanitise_filename(bad)
    key = input_key(7, "t-1", "../../../x.csv")
    assert key == "users/7/tasks/t-1/inputs/x.csv"
    assert output_key(7, "t-1", "clean.csv") == "users/7/tasks/t-1/outputs/clean.csv"


def test_content_types_are_checked() -> None:
    assert check_content_type("a.csv", "text/csv; charset=utf-8") == "text/csv"
    for name, ctype in (
        ("a.exe", "application/octet-stream"),
        ("a.csv", "image/png"),
        ("a.xlsx", "text/csv"),
    ):
        with pytest.raises(StorageError) as err:
            check_content_type(name, ctype)
        assert err.value.code == "UNSUPPORTED_FILE_TYPE"


def test_local_signed_put_then_get(local: LocalStorage, server: SpyGlassServer) -> None:
    key = waiting_key(server)
    ticket = local.upload_ticket(key, "text/csv", 900, server.url)
    r = httpx.put(ticket.url, content=CSV, headers=ticket.headers, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json() == {"key": key, "size_bytes": len(CSV)}
    assert local.size(key) == len(CSV)
    got = httpx.get(local.download_url(key, "data.csv", 3600, server.url), timeout=10)
    assert got.status_code == 200 and got.content == CSV
    assert 'filename="primary-data.csv"' in got.headers["content-disposition"]


def test_local_urls_refuse_tampering_expiry_and_misuse(
    local: LocalStorage, server: SpyGlassServer
) -> None:
    key = waiting_key(server)
    task_id = key.split("/")[3]
    ticket = local.upload_ticket(key, "text/csv", 900, server.url)
    cases = [
        (ticket.url.replace("sig=", "sig=0"), ticket.headers, 403, "INVALID_SIGNATURE"),
        (ticket.url.replace(task_id, "other-task"), ticket.headers, 403, "INVALID_SIGNATURE"),
        (ticket.url.replace("max=1024", "max=99999999"), ticket.headers, 403, "INVALID_SIGNATURE"),
        (ticket.url, {"Content-Type": "application/json"}, 400, "CONTENT_TYPE_MISMATCH"),
    ]
    for url, headers, status, code in cases:
        r = httpx.put(url, content=CSV, headers=headers, timeout=10)
        assert (r.status_code, r.json()["error_code"]) == (status, code), url
    expired = local.upload_ticket(key, "text/csv", -1, server.url)
    r = httpx.put(expired.url, content=CSV, headers=expired.headers, timeout=10)
    assert (r.status_code, r.json()["error_code"]) == (403, "URL_EXPIRED")
    # A download URL cannot be used to upload, nor an upload URL to download.
    r = httpx.put(local.download_url(key, "data.csv", 60, server.url), content=CSV, timeout=10)
    assert r.status_code == 403
    assert httpx.get(ticket.url, timeout=10).status_code == 403
    assert local.size(key) is None, "nothing was stored"


def test_local_too_large_upload_stores_nothing(local: LocalStorage, server: SpyGlassServer) -> None:
    key = waiting_key(server)
    ticket = local.upload_ticket(key, "text/csv", 900, server.url)
    r = httpx.put(ticket.url, content=b"x" * 2048, headers=ticket.headers, timeout=10)
    assert (r.status_code, r.json()["error_code"]) == (413, "FILE_TOO_LARGE")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        for _ in range(8):
            yield b"y" * 256

    r = httpx.put(ticket.url, content=chunks(), headers=ticket.headers, timeout=10)
    assert (r.status_code, r.json()["error_code"]) == (413, "FILE_TOO_LARGE")
    assert local.size(key) is None
    leftovers = list((server.data_dir / "files").rglob(".upload-*"))
    assert leftovers == []


def test_local_keys_cannot_escape_the_store(local: LocalStorage, server: SpyGlassServer) -> None:
    for key in ("../secret.key", "users/1/../../secret.key", "/etc/passwd"):
        with pytest.raises(StorageError):
            local.path(key)
    secret = (server.data_dir / "secret.key").read_text().strip()
    for path in ("..%2Fsecret.key", "users/..%2F..%2Fsecret.key"):
        r = httpx.get(f"{server.url}/api/storage/{path}?exp=9999999999&sig=x", timeout=10)
        assert r.status_code in {403, 404}
        assert secret not in r.text and r.json()["error_code"]


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Storage]:
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    moto.start()
    try:
        storage = S3Storage(
            "spyglass-test",
            endpoint_url=f"http://127.0.0.1:{port}",
            region="us-east-1",
            access_key="testing",
            secret_key="testing",
            max_upload_bytes=1024 * 1024,
        )
        storage.ensure_bucket()
        yield storage
    finally:
        moto.stop()


def test_s3_presigned_put_get_and_delete(s3: S3Storage) -> None:
    key = input_key(3, "task-s3", "data.csv")
    ticket = s3.upload_ticket(key, "text/csv", 900, "unused")
    r = httpx.put(ticket.url, content=CSV, headers=ticket.headers, timeout=10)
    assert r.status_code == 200, r.text
    assert s3.size(key) == len(CSV)
    got = httpx.get(s3.download_url(key, "data.csv", 3600, "unused"), timeout=10)
    assert got.status_code == 200 and got.content == CSV
    s3.write(output_key(3, "task-s3", "report.json"), b"{}", "application/json")
    assert s3.delete_prefix("users/3/tasks/task-s3/") == 2
    assert s3.size(key) is None
    assert s3.health()["status"] == "ok"


def test_s3_upload_url_signs_the_content_type_and_expiry(s3: S3Storage) -> None:
    """S3 itself refuses a mismatched type or a late PUT; moto does not check signatures,
    so what is checked here is that the URL asks S3 to."""
    ticket = s3.upload_ticket(input_key(3, "task-s3b", "data.csv"), "text/csv", 900, "unused")
    query = parse_qs(urlsplit(ticket.url).query)
    assert "content-type" in query["X-Amz-SignedHeaders"][0].split(";")
    assert query["X-Amz-Expires"] == ["900"]
    assert ticket.headers == {"Content-Type": "text/csv"}
    download = parse_qs(urlsplit(s3.download_url("users/3/x.csv", "x.csv", 3600, "")).query)
    assert download["X-Amz-Expires"] == ["3600"]


def test_health_reports_storage(server: SpyGlassServer) -> None:
    body = httpx.get(f"{server.url}/api/health", timeout=10).json()
    assert body["storage"] == {"status": "ok", "backend": "local"}
