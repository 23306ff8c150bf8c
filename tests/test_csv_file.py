"""The fast CSV writer of tool outputs writes what pandas' `to_csv(index=False)` writes, byte
for byte, on awkward frames: quotes, commas, line breaks, accents, gaps of every kind, whole
numbers with gaps, booleans, dates that are dates in one block of rows and date-times in
another, mixed objects, one column, no rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spyglass.tools.common.csvfile import csv_bytes

TEXT = ["plain", 'say "hi"', "a,b", "two\nlines", "cr\r", "", " spaced ", "Zoë", None, "12"]


def awkward(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    stamps = pd.Timestamp("2024-01-31") + pd.to_timedelta(rng.integers(0, 900, rows), unit="D")
    stamps = pd.Series(stamps).astype("datetime64[ms]")
    if rows > 3:  # only the last block of rows has a time of day
        stamps.iloc[rows - 3] += pd.Timedelta("10:30:00.250")
    floats = rng.lognormal(3, 2, rows)
    floats[::7] = np.nan
    floats[-1:] = 1e20
    floats[:1] = -0.0
    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "text": pd.Series(rng.choice(np.array(TEXT, dtype=object), rows), dtype="str"),
            "pytext": pd.Series(rng.choice(np.array(TEXT, dtype=object), rows), dtype="string"),
            "amount": floats,
            "age": pd.array(
                np.where(rng.random(rows) < 0.1, None, rng.integers(0, 99, rows))
            ).astype("Int64"),
            "active": rng.random(rows) < 0.5,
            "maybe": pd.array(
                np.where(rng.random(rows) < 0.2, None, rng.random(rows) < 0.5)
            ).astype("boolean"),
            "when": stamps,
            "zoned": pd.Series(stamps).dt.tz_localize("UTC"),
            "ratio": pd.array(np.where(rng.random(rows) < 0.2, None, rng.random(rows))).astype(
                "Float64"
            ),
        }
    )


@pytest.mark.parametrize("rows", [1, 5, 25_000])
def test_the_bytes_are_pandas_to_csv(rows: int) -> None:
    frame = awkward(rows)
    assert csv_bytes(frame) == frame.to_csv(index=False).encode()
    part = frame.iloc[1::2]  # a filtered frame, as the tools write
    assert csv_bytes(part) == part.to_csv(index=False).encode()


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"only": ["a", None, 'q"']}),
        pd.DataFrame({"a": [1, "x", 2.5, None], "b": ["p", "q", "r", "s"]}, dtype=object),
        pd.DataFrame({"a": pd.Series([], dtype="int64"), "b": pd.Series([], dtype="str")}),
        pd.DataFrame({"with, comma": [1, 2], 'quote "q"': ["x", "y"]}),
    ],
)
def test_other_frames_are_written_as_pandas_writes_them(frame: pd.DataFrame) -> None:
    assert csv_bytes(frame) == frame.to_csv(index=False).encode()
