"""Reading an uploaded file into a DataFrame, with a clear message for each way it can be wrong."""

from __future__ import annotations

import io
from pathlib import PurePosixPath

import pandas as pd


class DataFileError(ValueError):
    """The file cannot be read as a table; the message says why, in the user's terms."""


def load_table(data: bytes, filename: str) -> pd.DataFrame:
    ext = PurePosixPath(filename).suffix.lower()
    if not data.strip():
        raise DataFileError(f"'{filename}' is empty")
    try:
        if ext == ".csv":
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                raise DataFileError(
                    f"'{filename}' is not UTF-8 text; save it as a UTF-8 CSV and upload it again"
                ) from None
            frame = pd.read_csv(io.BytesIO(data), engine="pyarrow")
        elif ext in (".xlsx", ".xls"):
            frame = pd.read_excel(io.BytesIO(data))
        else:
            raise DataFileError(f"'{filename}' is not a CSV or Excel file")
    except DataFileError:
        raise
    except Exception as exc:  # pandas/pyarrow/openpyxl: many error types, one meaning
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise DataFileError(f"'{filename}' is not a readable table ({reason})") from None
    if frame.shape[1] == 0 or frame.empty:
        raise DataFileError(f"'{filename}' has a header but no data rows")
    return frame
