"""What a data file is before anyone pays to read it: its encoding, its delimiter, whether it
has rows. Judged from the first HEAD_BYTES of the file (never the whole file), at upload time
(`spyglass.tools.flow.start_processing`, before the task is charged) and again by the loader
(`spyglass.tools.common.frames`), so both read the file the same way.

* **Encoding**: UTF-8 (with or without a byte-order mark) or, when the head is not UTF-8 but
  reads as Windows-1252 (Latin-1's superset, what Excel on Windows writes as "CSV"), that.
  UTF-16 text and binary content (NUL bytes) are refused with a message saying what to do.
  A file whose head is UTF-8 and whose later bytes are not fails when it is read.
* **Delimiter**: `,` `;` tab or `|`: the one that splits the header and the lines below it
  into the same number of fields (more than one), the most fields first, `,` on a tie; a
  file where none does is read with `,` (one column).
* **Emptiness**: no bytes, only blank lines, or a header and no data row.
* **Excel**: the workbook opens and its first sheet has a header and a row.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass

import pandas as pd
import pyarrow.csv as pacsv

from spyglass.filetypes import DATA_WORDS, data_type

#: Bytes of a file the checks read: enough for a few thousand lines of most files.
HEAD_BYTES = 256 * 1024
#: Lines of the head the delimiter is judged and the rows checked on.
SNIFF_LINES = 100
DELIMITERS = (",", ";", "\t", "|")
#: Encodings as pyarrow and Python name them, and as people know them.
ENCODING_WORDS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 (with BOM)", "cp1252": "Windows-1252"}


class DataFileError(ValueError):
    """The file cannot be read as a table; the message says why, in the user's terms.

    The task ends FAILED with `error_code=BAD_INPUT_FILE` and this message as it is (or, when
    found at upload time, the upload is refused with it before anything is charged)."""

    error_code = "BAD_INPUT_FILE"


@dataclass(frozen=True)
class CsvDialect:
    #: `utf-8`, `utf-8-sig` (a byte-order mark first) or `cp1252`.
    encoding: str = "utf-8"
    delimiter: str = ","

    def read_options(self, **more: object) -> pacsv.ReadOptions:
        # pyarrow skips a UTF-8 byte-order mark itself; others are transcoded as read.
        encoding = "utf8" if self.encoding.startswith("utf-8") else self.encoding
        return pacsv.ReadOptions(encoding=encoding, **more)

    def parse_options(self) -> pacsv.ParseOptions:
        return pacsv.ParseOptions(delimiter=self.delimiter)


def _whole_lines(head: bytes, complete: bool) -> bytes:
    """The head cut after its last line break (a cut line, or character, is left out)."""
    if complete:
        return head
    cut = head.rfind(b"\n")
    return head[: cut + 1] if cut >= 0 else head


def sniff_encoding(head: bytes, filename: str) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataFileError(
            f"'{filename}' is UTF-16 text; save it as a UTF-8 CSV and upload it again"
        )
    if b"\x00" in head:
        raise DataFileError(f"'{filename}' is not a text file; upload a {DATA_WORDS} file")
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        raise DataFileError(
            f"'{filename}' is not UTF-8 text (nor Windows-1252); save it as a UTF-8 CSV and "
            "upload it again"
        ) from None


def _fields(lines: list[str], delimiter: str) -> list[int]:
    try:
        return [len(row) for row in csv.reader(lines, delimiter=delimiter)]
    except csv.Error:
        return []


def sniff_delimiter(lines: list[str]) -> str:
    """The delimiter that splits the header and the lines below it alike (see the module)."""
    best: tuple[float, int, int] = (0.0, 1, 0)
    chosen = ","
    for rank, delimiter in enumerate(DELIMITERS):
        counts = _fields(lines, delimiter)
        if not counts or counts[0] < 2:
            continue
        body = counts[1:] or counts
        agree = sum(1 for c in body if c == counts[0]) / len(body)
        score = (agree, counts[0], -rank)
        if agree >= 0.5 and score > best:
            best, chosen = score, delimiter
    return chosen


def sniff_csv(head: bytes, filename: str, complete: bool) -> CsvDialect:
    """The encoding and delimiter of a CSV file from its first bytes (`complete`: the whole
    file); raises DataFileError when it is empty or cannot be read as text."""
    if not head.strip():
        raise DataFileError(f"'{filename}' is empty")
    head = _whole_lines(head, complete)
    encoding = sniff_encoding(head, filename)
    text = head.decode(encoding)
    lines = [line for line in text.splitlines() if line.strip()][:SNIFF_LINES]
    if not lines:
        raise DataFileError(f"'{filename}' is empty")
    return CsvDialect(encoding, sniff_delimiter(lines))


def check_csv(head: bytes, filename: str, complete: bool) -> CsvDialect:
    """`sniff_csv`, then its first SNIFF_LINES lines split as the loader will: a row with more
    fields than the header, or a header with no row below it, is found here. (Python's csv
    module, not pyarrow: this runs in the web process, which a wide file must not grow.)"""
    dialect = sniff_csv(head, filename, complete)
    every = _whole_lines(head, complete).decode(dialect.encoding).splitlines()
    lines = every[: SNIFF_LINES + 1]
    # The last row read may be cut (the head ends inside a quoted field that spans lines).
    whole = complete and len(lines) == len(every)
    reader = csv.reader(lines, delimiter=dialect.delimiter)
    width = rows = 0
    wrong: tuple[int, int] | None = None
    try:
        for row in reader:
            if not any(field.strip() for field in row):
                continue
            if not width:
                width = len(row)
                continue
            if wrong is not None:
                break
            rows += 1
            if len(row) != width:
                wrong = (reader.line_num, len(row))
    except csv.Error as exc:
        raise DataFileError(unreadable(filename, exc)) from None
    if wrong is not None and (whole or (rows > 1 and wrong[0] < len(lines))):
        line, fields = wrong
        raise DataFileError(
            f"'{filename}' is not a readable table (line {line} has {fields} "
            f"field{'s' if fields != 1 else ''}, the header {width})"
        )
    if not rows and complete:
        raise DataFileError(f"'{filename}' has a header but no data rows")
    return dialect


def check_excel(data: bytes, filename: str) -> None:
    """The workbook opens and its first sheet has a header and at least one row."""
    try:
        frame = pd.read_excel(io.BytesIO(data), engine="calamine", nrows=1)
    except Exception as exc:  # calamine: many error types, one meaning
        raise DataFileError(unreadable(filename, exc)) from None
    if frame.shape[1] == 0 or frame.empty:
        raise DataFileError(f"'{filename}' has a header but no data rows")


def check_file(head: bytes, filename: str, complete: bool) -> CsvDialect | None:
    """Every check of an uploaded data file (`head`: its first bytes, or all of an Excel
    file); the CSV dialect it will be read with (None for Excel)."""
    kind = data_type(filename)
    if kind is None:
        raise DataFileError(f"'{filename}' is not a {DATA_WORDS} file")
    if not head.strip():
        raise DataFileError(f"'{filename}' is empty")
    if kind.reader == "csv":
        return check_csv(head, filename, complete)
    check_excel(head, filename)
    return None


def unreadable(filename: str, exc: Exception) -> str:
    reason = str(exc).splitlines()[0][:200] if str(exc) else "its content could not be read"
    return f"'{filename}' is not a readable table ({reason})"
