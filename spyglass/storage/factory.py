"""The process's storage, chosen by SPYGLASS_STORAGE (`local` or `s3`)."""

from __future__ import annotations

import os

from spyglass.config import get_settings
from spyglass.storage.base import Storage

_storage: Storage | None = None


def build_storage() -> Storage:
    settings = get_settings()
    limit = int(float(os.environ.get("SPYGLASS_MAX_UPLOAD_MB", "100")) * 1024 * 1024)
    kind = os.environ.get("SPYGLASS_STORAGE", "local").lower()
    if kind == "s3":
        from spyglass.storage.s3 import S3Storage

        storage = S3Storage(
            os.environ.get("SPYGLASS_S3_BUCKET", "spyglass"),
            endpoint_url=os.environ.get("SPYGLASS_S3_ENDPOINT") or None,
            region=os.environ.get("SPYGLASS_S3_REGION") or "us-east-1",
            access_key=os.environ.get("SPYGLASS_S3_ACCESS_KEY") or None,
            secret_key=os.environ.get("SPYGLASS_S3_SECRET_KEY") or None,
            max_upload_bytes=limit,
        )
        if os.environ.get("SPYGLASS_S3_CREATE_BUCKET", "").lower() in {"1", "true", "yes"}:
            storage.ensure_bucket()
        return storage
    if kind != "local":
        raise ValueError(f"SPYGLASS_STORAGE must be 'local' or 's3', not {kind!r}")
    from spyglass.storage.local import LocalStorage

    return LocalStorage(settings.data_dir / "files", settings.secret_key, limit)


def get_storage() -> Storage:
    global _storage
    if _storage is None:
        _storage = build_storage()
    return _storage


def set_storage(storage: Storage | None) -> None:
    global _storage
    _storage = storage
