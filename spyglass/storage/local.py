"""Files in the data folder, reached through URLs signed like S3's presigned ones.

The app serves `PUT`/`GET /api/storage/{key}` for these URLs: the signature (HMAC
over method, key, expiry, content type and size limit) is the only credential, so
a script uploads exactly as it would to S3, with no auth header.
"""

from __future__ import annotations

import hashlib
import hmac
import mmap
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode

from spyglass.storage.base import Storage, StorageError, UploadTicket, check_key

#: Name prefix of every file being written (uploads and server writes) before its atomic move.
PARTIAL_PREFIX = ".upload-"


class LocalStorage(Storage):
    kind = "local"

    def __init__(self, root: Path, secret: str, max_upload_bytes: int) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._secret = secret.encode()
        self.max_upload_bytes = max_upload_bytes

    # -- signing -----------------------------------------------------------
    def _sign(self, method: str, key: str, expires: int, content_type: str, limit: int) -> str:
        message = f"{method}\n{key}\n{expires}\n{content_type}\n{limit}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def verify(
        self, method: str, key: str, expires: str, content_type: str, limit: str, signature: str
    ) -> tuple[int, int]:
        """Check a signed URL; returns (expiry, size limit) or raises StorageError."""
        try:
            exp, lim = int(expires), int(limit)
        except ValueError:
            raise StorageError("INVALID_SIGNATURE", "Invalid or expired URL", 403) from None
        expected = self._sign(method, key, exp, content_type, lim)
        if not hmac.compare_digest(expected, signature or ""):
            raise StorageError("INVALID_SIGNATURE", "Invalid or expired URL", 403)
        if exp < time.time():
            raise StorageError("URL_EXPIRED", "This URL has expired", 403)
        return exp, lim

    def _url(
        self, base_url: str, method: str, key: str, expires_in: int, ct: str, limit: int
    ) -> str:
        expires = int(time.time()) + expires_in
        query = urlencode(
            {
                "exp": expires,
                "ct": ct,
                "max": limit,
                "sig": self._sign(method, key, expires, ct, limit),
            }
        )
        return f"{base_url.rstrip('/')}/api/storage/{quote(key)}?{query}"

    # -- Storage -----------------------------------------------------------
    def upload_ticket(
        self, key: str, content_type: str, expires_in: int, base_url: str
    ) -> UploadTicket:
        url = self._url(
            base_url, "PUT", check_key(key), expires_in, content_type, self.max_upload_bytes
        )
        return UploadTicket(
            url=url,
            key=key,
            method="PUT",
            headers={"Content-Type": content_type},
            expires_at=datetime.fromtimestamp(time.time() + expires_in, UTC),
        )

    def download_url(self, key: str, filename: str, expires_in: int, base_url: str) -> str:
        return self._url(base_url, "GET", check_key(key), expires_in, "", 0)

    def path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root.resolve() not in path.parents:
            raise StorageError("INVALID_KEY", "Invalid storage key", 404)
        return path

    def size(self, key: str) -> int | None:
        path = self.path(key)
        return path.stat().st_size if path.is_file() else None

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def read_whole(self, key: str) -> bytes | mmap.mmap:
        with self.path(key).open("rb") as file:
            if os.fstat(file.fileno()).st_size == 0:
                return b""  # an empty file cannot be mapped
            # Files are put in place whole (a rename) and never written again: the map's
            # bytes do not change under it.
            return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)

    def read_prefix(self, key: str, size: int) -> bytes:
        with self.path(key).open("rb") as file:
            return file.read(size)

    def open(self, key: str) -> BinaryIO:
        return self.path(key).open("rb")

    def write(self, key: str, data: bytes, content_type: str) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=PARTIAL_PREFIX, delete=False
        ) as tmp:
            tmp.write(data)
        os.replace(tmp.name, path)

    def partial_file(self, key: str) -> tuple[int, Path]:
        """A new hidden file beside `key`'s place, for an upload to stream into."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=PARTIAL_PREFIX)
        return fd, Path(name)

    def save_stream_file(self, key: str, source: Path) -> None:
        """Move a fully received upload into place (atomic: never a half-written file)."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source), path)

    def delete_prefix(self, prefix: str) -> int:
        folder = self.path(prefix.rstrip("/"))
        if not folder.exists():
            return 0
        count = sum(1 for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder)
        return count

    def sweep_partial_uploads(self, older_than: float) -> int:
        cutoff = time.time() - older_than
        removed = 0
        for part in self.root.rglob(PARTIAL_PREFIX + "*"):
            try:
                if part.is_file() and part.stat().st_mtime < cutoff:
                    part.unlink()
                    removed += 1
            except FileNotFoundError:  # finished or swept by another worker meanwhile
                continue
        return removed

    def health(self) -> dict[str, Any]:
        ok = os.access(self.root, os.W_OK)
        return {"status": "ok" if ok else "error", "backend": self.kind}
