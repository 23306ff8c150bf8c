"""The storage interface, key layout, filename and content-type rules."""

from __future__ import annotations

import io
import mmap
import re
import unicodedata
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from spyglass.errors import DomainError
from spyglass.filetypes import ALLOWED_TYPES

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_KEY = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


class StorageError(DomainError):
    """A file name, type, key, size or signed URL that cannot be accepted."""


@dataclass(frozen=True)
class UploadTicket:
    """A presigned PUT: send the file body to `url` with these headers before `expires_at`."""

    url: str
    key: str
    method: str
    headers: dict[str, str]
    expires_at: datetime


def sanitise_filename(name: str) -> str:
    """A safe base name: no folders, no `..`, only letters, digits, `.`, `_` and `-`."""
    name = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode()
    name = PurePosixPath(name.replace("\\", "/")).name
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    stem = _UNSAFE.sub("_", stem).strip("._-")[:100]
    ext = _UNSAFE.sub("", ext)[:10].lower()
    if not stem:
        raise StorageError("INVALID_FILENAME", f"'{name}' is not a usable file name")
    return f"{stem}.{ext}" if ext else stem


def check_content_type(filename: str, content_type: str) -> str:
    """The upload's content type if the extension and type are allowed together."""
    ext = Path(filename).suffix.lower()
    allowed = ALLOWED_TYPES.get(ext)
    if allowed is None:
        kinds = ", ".join(sorted(ALLOWED_TYPES))
        raise StorageError(
            "UNSUPPORTED_FILE_TYPE", f"'{filename}': only {kinds} files are accepted"
        )
    base = (content_type or "").split(";")[0].strip().lower()
    if base not in allowed:
        raise StorageError(
            "UNSUPPORTED_FILE_TYPE",
            f"'{filename}' must be sent as {' or '.join(allowed)}, not '{content_type}'",
        )
    return base


def check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key.split("/"):
        raise StorageError("INVALID_KEY", "Invalid storage key", 404)
    return key


def task_prefix(owner_id: int | None, task_id: str) -> str:
    return f"users/{owner_id if owner_id is not None else 'direct'}/tasks/{task_id}/"


def input_key(owner_id: int | None, task_id: str, filename: str) -> str:
    return task_prefix(owner_id, task_id) + "inputs/" + sanitise_filename(filename)


def output_key(owner_id: int | None, task_id: str, filename: str) -> str:
    return task_prefix(owner_id, task_id) + "outputs/" + sanitise_filename(filename)


class Storage(ABC):
    """Blocking calls (boto3 is blocking): call them through `asyncio.to_thread`."""

    kind: str = "storage"
    max_upload_bytes: int

    @abstractmethod
    def upload_ticket(
        self, key: str, content_type: str, expires_in: int, base_url: str
    ) -> UploadTicket: ...

    @abstractmethod
    def download_url(self, key: str, filename: str, expires_in: int, base_url: str) -> str: ...

    @abstractmethod
    def size(self, key: str) -> int | None:
        """Bytes stored under `key`, or None if there is nothing."""

    @abstractmethod
    def read(self, key: str) -> bytes: ...

    def read_prefix(self, key: str, size: int) -> bytes:
        """The first `size` bytes stored under `key` (all of them when it is shorter)."""
        return self.read(key)[:size]

    def read_whole(self, key: str) -> bytes | mmap.mmap:
        """The bytes stored under `key`, to be read whole: a local file's read-only memory map
        (its pages are the system's file cache, not copied into the process), else `read`."""
        return self.read(key)

    def open(self, key: str) -> BinaryIO:
        """The bytes stored under `key` as a stream read from the start (a large file is
        never held in memory whole)."""
        return io.BytesIO(self.read(key))

    @abstractmethod
    def write(self, key: str, data: bytes, content_type: str) -> None: ...

    @abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix`; returns how many there were."""

    @abstractmethod
    def health(self) -> dict[str, Any]: ...

    def sweep_partial_uploads(self, older_than: float) -> int:
        """Remove parts of uploads nobody has written to for `older_than` seconds (a killed
        upload or server leaves them); returns how many. Nothing to do where the backend
        keeps no such parts (S3 discards an unfinished PUT itself)."""
        return 0
