"""`PUT`/`GET /api/storage/{key}`: the local backend's presigned-style URLs.

The signed query string is the only credential, as with S3. An upload is taken only
while its task waits for that file; it is streamed to a hidden partial file and moved
into place only when complete and within the size limit, so a refused upload leaves
nothing behind (and a killed one leaves a part that the upload sweeper removes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import PurePosixPath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel

from spyglass.api.errors import responses
from spyglass.errors import DomainError
from spyglass.storage import get_storage
from spyglass.storage.local import LocalStorage
from spyglass.tools.uploads import check_upload_target


def _local() -> LocalStorage:
    storage = get_storage()
    if not isinstance(storage, LocalStorage):
        raise DomainError("NOT_FOUND", "Not found", 404)
    return storage


class Stored(BaseModel):
    key: str
    size_bytes: int


#: A bad, expired or foreign signature is 403; local storage only (else 404).
router = APIRouter(tags=["storage"], responses=responses(403, 404))


@router.put(
    "/api/storage/{key:path}",
    summary="Upload to a signed URL (local storage)",
    response_model=Stored,
    responses=responses(400, 409, 413),
)
async def put_file(
    key: str, request: Request, exp: str = "", ct: str = "", max: str = "", sig: str = ""
) -> Any:
    storage = _local()
    _, limit = storage.verify("PUT", key, exp, ct, max, sig)
    sent_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if sent_type != ct:
        raise DomainError("CONTENT_TYPE_MISMATCH", f"Send this file with Content-Type: {ct}", 400)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise DomainError("FILE_TOO_LARGE", f"Files are limited to {limit} bytes", 413)
    await check_upload_target(key)
    fd, tmp = storage.partial_file(key)
    received = 0
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise DomainError("FILE_TOO_LARGE", f"Files are limited to {limit} bytes", 413)
                await asyncio.to_thread(out.write, chunk)
        await check_upload_target(key)  # processing may have started while the bytes came
        storage.save_stream_file(key, tmp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return {"key": key, "size_bytes": received}


@router.get(
    "/api/storage/{key:path}",
    summary="Download from a signed URL (local storage)",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def get_file(key: str, exp: str = "", sig: str = "") -> Any:
    storage = _local()
    storage.verify("GET", key, exp, "", "0", sig)
    path = storage.path(key)
    if not path.is_file():
        raise DomainError("FILE_NOT_FOUND", "No such file", 404)
    return FileResponse(path, filename=PurePosixPath(key).name)
