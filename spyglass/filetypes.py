"""The one list of the files SpyGlass takes: each extension, the content types it may be sent
with, and which reader reads it as a table.

Everything that judges a file reads this list: storage's content-type check
(`spyglass.storage.base.check_content_type`), the upload flow and the New task form
(`spyglass.tools.flow`, `spyglass.states.new_task`, the page's `accept`), and the loader of
tables (`spyglass.tools.common.frames`). A new format is one entry here (and, for a data
file, its reader in `frames`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal


@dataclass(frozen=True)
class FileType:
    extension: str
    #: Accepted content types; the first is the one a browser's upload is sent with.
    content_types: tuple[str, ...]
    #: `csv` and `excel` are tables a tool reads; `parameters` is a tool's parameters.json.
    reader: Literal["csv", "excel", "parameters"]
    name: str


FILE_TYPES: tuple[FileType, ...] = (
    FileType(".csv", ("text/csv", "application/csv", "text/plain"), "csv", "CSV"),
    FileType(
        ".xlsx",
        ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",),
        "excel",
        "Excel",
    ),
    FileType(".xls", ("application/vnd.ms-excel",), "excel", "Excel (97–2003)"),
    FileType(".json", ("application/json",), "parameters", "JSON parameters"),
)

#: Content types accepted for uploads, by file extension.
ALLOWED_TYPES: dict[str, tuple[str, ...]] = {t.extension: t.content_types for t in FILE_TYPES}
#: The tables a tool reads (every type but the parameters).
DATA_TYPES: dict[str, FileType] = {t.extension: t for t in FILE_TYPES if t.reader != "parameters"}
DATA_EXTENSIONS: tuple[str, ...] = tuple(DATA_TYPES)
#: The file input's `accept` attribute.
ACCEPT = ",".join(DATA_EXTENSIONS)
#: How the data files are named to people: "CSV or Excel (.csv, .xlsx, .xls)".
DATA_WORDS = "CSV or Excel (" + ", ".join(DATA_EXTENSIONS) + ")"


def extension(filename: str) -> str:
    return PurePosixPath(filename).suffix.lower()


def data_type(filename: str) -> FileType | None:
    """The table type of `filename` by its extension, or None when no tool reads it."""
    return DATA_TYPES.get(extension(filename))
