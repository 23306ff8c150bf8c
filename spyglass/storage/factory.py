"""The process's storage, chosen by SPYGLASS_STORAGE (`local` or `s3`)."""

from __future__ import annotations

from spyglass.config import get_settings
from spyglass.storage.base import Storage

_storage: Storage | None = None


def build_storage() -> Storage:
    settings = get_settings()
    limit = settings.max_upload_bytes
    if settings.storage == "s3":
        from spyglass.storage.s3 import S3Storage

        storage = S3Storage(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint or None,
            region=settings.s3_region or "us-east-1",
            access_key=settings.s3_access_key or None,
            secret_key=settings.s3_secret_key or None,
            max_upload_bytes=limit,
        )
        if settings.s3_create_bucket:
            storage.ensure_bucket()
        return storage
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
