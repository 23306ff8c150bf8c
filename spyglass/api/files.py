"""`PUT`/`GET /api/storage/{key}`: the local backend's presigned-style URLs.

The signed query string is the only credential, as with S3. An upload is streamed
to a temporary file and moved into place only when complete and within the size
limit, so a refused or broken upload leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from spyglass.api.errors import ApiError
from spyglass.storage import get_storage
from spyglass.storage.local import LocalStorage


def _local() -> LocalStorage:
    storage = get_storage()
    if not isinstance(storage, LocalStorage):
        raise ApiError(404, "Not found", "NOT_FOUND")
    return storage


def build_router() -> APIRouter:
    router = APIRouter(tags=["storage"])

    @router.put("/api/storage/{key:path}", summary="Upload to a signed URL (local storage)")
    async def put_file(
        key: str, request: Request, exp: str = "", ct: str = "", max: str = "", sig: str = ""
    ) -> Any:
        storage = _local()
        _, limit = storage.verify("PUT", key, exp, ct, max, sig)
        path = storage.path(key)
        sent_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if sent_type != ct:
            raise ApiError(400, f"Send this file with Content-Type: {ct}", "CONTENT_TYPE_MISMATCH")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"Files are limited to {limit} bytes", "FILE_TOO_LARGE")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        tmp = Path(tmp_name)
        received = 0
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in request.stream():
                    received += len(chunk)
                    if received > limit:
                        raise ApiError(413, f"Files are limited to {limit} bytes", "FILE_TOO_LARGE")
                    await asyncio.to_thread(out.write, chunk)
            storage.save_stream_file(key, tmp)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return {"key": key, "size_bytes": received}

    @router.get("/api/storage/{key:path}", summary="Download from a signed URL (local storage)")
    async def get_file(key: str, exp: str = "", sig: str = "") -> Any:
        storage = _local()
        storage.verify("GET", key, exp, "", "0", sig)
        path = storage.path(key)
        if not path.is_file():
            raise ApiError(404, "No such file", "FILE_NOT_FOUND")
        return FileResponse(path, filename=PurePosixPath(key).name)

    return router
