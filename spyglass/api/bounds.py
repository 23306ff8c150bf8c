"""Bounds of every number a client sends: out of range is a 422, never a database error.

The upper bound is the largest value a 32-bit signed SQL `INTEGER` holds (PostgreSQL's ids
and sequence numbers are that wide), far beyond any real offset, id or sequence number.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

#: The largest id, offset or sequence number the API accepts.
DB_INT_MAX = 2**31 - 1

#: A row id in a path (`/api/tokens/{token_id}`).
IdPath = Annotated[int, Path(ge=1, le=DB_INT_MAX, description="The row's id")]
#: How many rows to skip.
OffsetQuery = Annotated[int, Query(ge=0, le=DB_INT_MAX, description="Rows to skip")]
#: Events after this sequence number (0: from the start).
SeqQuery = Annotated[
    int, Query(ge=0, le=DB_INT_MAX, description="Only events after this sequence number")
]
