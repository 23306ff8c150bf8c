"""Work several agents need on the same frame, done once per frame.

Keyed by the frame's identity and forgotten when the frame is collected, so a
run's figures never leak into the next run.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd

from spyglass.tools.common.toolkit import report_progress

T = TypeVar("T")
_memo: dict[tuple[int, str], Any] = {}


def once(frame: pd.DataFrame, name: str, compute: Callable[[], T]) -> T:
    key = (id(frame), name)
    if key not in _memo:
        _memo[key] = compute()
        weakref.finalize(frame, _memo.pop, key, None)
    return _memo[key]


def known(frame: pd.DataFrame, name: str) -> bool:
    """Whether `name` was already worked out for this frame."""
    return (id(frame), name) in _memo


def table_rows(frame: pd.DataFrame) -> int:
    """The rows of the table `frame` stands for: its own, or, for the sample of a file too
    large to load (`spyglass.tools.profile.streaming`), the file's."""
    return once(frame, "rows", lambda: len(frame))


def streamed(frame: pd.DataFrame) -> dict[str, Any] | None:
    """How the file `frame` samples was streamed, or None for a file loaded whole."""
    return _memo.get((id(frame), "streamed"))


#: Rows hashed at a time (a second or so of work), with a progress report after each block.
HASH_BLOCK = 1_000_000


def row_hashes(frame: pd.DataFrame) -> pd.Series:
    """A 64-bit hash of each row (vectorised, no tuples): equal rows, equal hashes."""

    def work() -> pd.Series:
        if len(frame) <= HASH_BLOCK:
            return pd.util.hash_pandas_object(frame, index=False)
        parts = []
        for start in range(0, len(frame), HASH_BLOCK):
            part = frame.iloc[start : start + HASH_BLOCK]
            parts.append(pd.util.hash_pandas_object(part, index=False))
            done = start + len(part)
            report_progress(done / len(frame), f"duplicate rows: {done:,} of {len(frame):,} hashed")
        return pd.concat(parts)

    return once(frame, "row_hashes", work)


def duplicate_mask(frame: pd.DataFrame) -> pd.Series:
    """Rows equal to an earlier row."""
    return once(frame, "duplicates", lambda: row_hashes(frame).duplicated())
