"""Reading an uploaded file into a DataFrame, with a clear message for each way it can be wrong.

The file types are those of `spyglass.filetypes`: CSV is parsed by pyarrow
(multi-threaded) in the encoding and with the delimiter `spyglass.tools.common.sniff` finds
in its first bytes (as the upload's checks did); Excel (.xlsx and .xls) by calamine. An
integer column with empty cells stays integral (pandas' nullable `Int64`), so card
numbers and ids are not turned into floats and written back as `4111….0`.

The file is read in place (a local file memory-mapped, see `Storage.read_whole`), and a
UTF-8 file is checked by pyarrow's own parse, not decoded a second time: pyarrow reads a
column with bytes that are not UTF-8 as binary, and stops on them in a column it had found
to be text (or in the header).
"""

from __future__ import annotations

import io
import mmap

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from spyglass.filetypes import DATA_WORDS, data_type
from spyglass.tools.common.sniff import (
    HEAD_BYTES,
    CsvDialect,
    DataFileError,
    sniff_csv,
    unreadable,
)

__all__ = ["DataFileError", "arrow_to_pandas", "load_table", "read_csv"]


def _unique_names(names: list[str]) -> list[str]:
    """`a, a, b` → `a, a.1, b` (as pandas names repeated headers)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        name = name if name.strip() else "unnamed"
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        seen.setdefault(name, 0)
        out.append(name)
    return out


#: Empty cells and the usual markers (NA, N/A, null …) are missing values in every column.
CONVERT = pacsv.ConvertOptions(strings_can_be_null=True)


#: How pyarrow says a column it had found to be text holds bytes that are not UTF-8.
_ARROW_NOT_UTF8 = "invalid utf8"


def read_csv(
    data: bytes | mmap.mmap, filename: str, dialect: CsvDialect | None = None
) -> pd.DataFrame:
    """Raises DataFileError when a file read as UTF-8 is not."""
    # BufferReader reads the bytes in place (a BytesIO would be read through Python, 2× slower).
    dialect = dialect or CsvDialect()
    not_utf8 = DataFileError(
        f"'{filename}' is not UTF-8 text; save it as a UTF-8 CSV and upload it again"
    )
    try:
        table = pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(data)),
            read_options=dialect.read_options(),
            parse_options=dialect.parse_options(),
            convert_options=CONVERT,
        )
        table.column_names  # noqa: B018 (the header's names are decoded when first read)
    except UnicodeDecodeError:
        raise not_utf8 from None
    except pa.ArrowInvalid as exc:
        if _ARROW_NOT_UTF8 in str(exc).lower():
            raise not_utf8 from None
        raise
    if any(pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type) for f in table.schema):
        raise not_utf8  # a transcoded file (Windows-1252) has none
    return arrow_to_pandas(table)


def arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """A table read from a CSV as the frame the agents read (names made unique, integers with
    gaps as `Int64`, dates as datetime64)."""
    table = table.rename_columns(_unique_names(table.column_names))
    integral = {
        i: column.to_pandas(types_mapper={column.type: pd.Int64Dtype()}.get)
        for i, column in enumerate(table.columns)
        if pa.types.is_integer(column.type) and column.null_count
    }
    # Dates as datetime64, not Python objects; Arrow buffers freed as the columns convert.
    frame = table.to_pandas(date_as_object=False, split_blocks=True, self_destruct=True)
    del table
    for i, column in integral.items():
        frame.isetitem(i, column)
    return frame


#: Beyond this, a float cannot hold every whole number exactly (2⁵³).
_EXACT_FLOAT_INTEGERS = 2**53


def whole_numbers_stay_integers(frame: pd.DataFrame) -> pd.DataFrame:
    """Excel stores every number as a float, so a whole-number column with empty cells comes
    back as floats (`5.0`); make it the nullable `Int64` a CSV's integer column with gaps is."""
    for i in range(frame.shape[1]):
        series = frame.iloc[:, i]
        if series.dtype.kind != "f" or not series.isna().any():
            continue
        present = series.dropna()
        if present.empty or not (present == present.round()).all():
            continue
        if present.abs().max() >= _EXACT_FLOAT_INTEGERS:
            continue
        # pandas-stubs leave Series out of isetitem's values (pandas takes any array-like)
        frame.isetitem(i, series.astype("Int64"))  # type: ignore[arg-type]
    return frame


def load_table(data: bytes | mmap.mmap, filename: str) -> pd.DataFrame:
    """`data`: the file's bytes, or its memory map (never copied whole here)."""
    kind = data_type(filename)
    head = data[:HEAD_BYTES]
    if not head.strip() and (len(data) <= HEAD_BYTES or not bytes(data).strip()):
        raise DataFileError(f"'{filename}' is empty")
    try:
        if kind is None:
            raise DataFileError(f"'{filename}' is not a {DATA_WORDS} file")
        if kind.reader == "csv":
            frame = read_csv(data, filename, sniff_csv(head, filename, len(data) <= HEAD_BYTES))
        else:
            frame = whole_numbers_stay_integers(pd.read_excel(io.BytesIO(data), engine="calamine"))
    except DataFileError:
        raise
    except (MemoryError, pa.ArrowMemoryError):  # over the task's memory cap: not the file's fault
        raise MemoryError from None
    except Exception as exc:  # pyarrow/calamine: many error types, one meaning
        raise DataFileError(unreadable(filename, exc)) from None
    if frame.shape[1] == 0 or frame.empty:
        raise DataFileError(f"'{filename}' has a header but no data rows")
    return frame
