"""Where task files live: the local data folder (default) or any S3 API, behind one interface."""

from spyglass.storage.base import (
    Storage,
    StorageError,
    UploadTicket,
    input_key,
    output_key,
    sanitise_filename,
)
from spyglass.storage.factory import get_storage, set_storage

__all__ = [
    "Storage",
    "StorageError",
    "UploadTicket",
    "get_storage",
    "input_key",
    "output_key",
    "sanitise_filename",
    "set_storage",
]
