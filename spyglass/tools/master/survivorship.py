"""Golden records by survivorship rules, worked out for every group and column at once.

The rows that share a match key form a group (groups in the order of their keys, rows in
file order within a group). Per column, the surviving value of a group is one of its
present (non-missing) values:

- `most_recent`: the value of the newest row (`newness`, missing dates the oldest; the
  first row on a tie);
- `longest`: the longest value as text (the first on a tie);
- `most_frequent`: the value written most often as text (on a tie, the one that appears
  first), taken from the first row that has it.

A group conflicts on a column when its present values, as text, are not all the same. Each
rule is a few sorts of whole columns (numpy), never a Python loop over groups: a million
rows take about a second where a loop over 960,000 groups took hours. Text is as pandas
writes the group's values (`astype(str)`): for dates, the format the group's own values
call for (`2024-01-31`, or with the time of day to the precision used).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api import types as ptypes


@dataclass(frozen=True)
class Groups:
    """Rows grouped by key: `rows` (frame positions, in file order) and each one's group."""

    rows: np.ndarray
    codes: np.ndarray
    keys: np.ndarray
    #: Each grouped row's recency as int64 (larger is newer; missing: the smallest).
    newness: np.ndarray

    @property
    def count(self) -> int:
        return len(self.keys)

    def sizes(self) -> np.ndarray:
        return np.bincount(self.codes, minlength=self.count)


def group(keys: pd.Series, newness: np.ndarray) -> Groups:
    """The rows with a key (text, not missing), grouped by it, groups in sorted key order.

    One sort of the keys (pyarrow's: text by its UTF-8 bytes, which is the order of code
    points, Python's order of str) both numbers the groups and puts them in order."""
    keyed = keys.notna().to_numpy()
    rows = np.flatnonzero(keyed)
    text = pa.array(keys.array).filter(pa.array(keyed))
    order = np.asarray(pc.array_sort_indices(text), dtype=np.int64)
    ordered = text.take(pa.array(order))
    starts = np.ones(len(order), dtype=bool)
    if len(order) > 1:
        same = pc.equal(ordered.slice(1), ordered.slice(0, len(order) - 1))
        starts[1:] = ~np.asarray(same, dtype=bool)
    codes = np.empty(len(order), dtype=np.int64)
    codes[order] = np.cumsum(starts) - 1
    firsts = ordered.filter(pa.array(starts))
    labels = np.asarray(firsts.to_numpy(zero_copy_only=False), dtype=object)
    return Groups(rows, codes, labels, newness[rows])


#: Ticks of a datetime64 unit in a second.
_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


def ticks(stamps: pd.Series) -> tuple[np.ndarray, int]:
    """Date-times as int64 ticks of their own unit (UTC for a time zone; NaT: int64's
    smallest), and how many ticks make a second."""
    if getattr(stamps.dtype, "tz", None) is not None:
        stamps = stamps.dt.tz_convert(None)
    values = np.asarray(stamps.to_numpy())
    unit = np.datetime_data(values.dtype)[0]
    return values.view(np.int64), _PER_SECOND.get(unit, 1)


def newness(order: pd.Series) -> np.ndarray:
    """Dates (or numbers) as int64 that sort as they do; missing or unreadable: the oldest."""
    if ptypes.is_datetime64_any_dtype(order):
        return ticks(order)[0].copy()
    if ptypes.is_integer_dtype(order) and not ptypes.is_bool_dtype(order):
        return order.to_numpy(dtype=np.int64, na_value=np.iinfo(np.int64).min)
    dates = pd.to_datetime(order, errors="coerce", utc=True, format="mixed")
    return newness(dates)


def value_codes(series: pd.Series) -> np.ndarray:
    """Per row, a code equal for two present values exactly when they read the same as text
    (`astype(str)`); -1 for a missing one."""
    if ptypes.is_datetime64_any_dtype(series):
        codes = pd.factorize(ticks(series)[0])[0]
    elif ptypes.is_float_dtype(series):
        # The bits: 0.0 and -0.0 are equal numbers but read differently.
        bits = series.to_numpy(dtype=np.float64, na_value=np.nan).view(np.int64)
        codes = pd.factorize(bits)[0]
    elif ptypes.is_object_dtype(series) or not (
        ptypes.is_numeric_dtype(series) or ptypes.is_string_dtype(series)
    ):
        codes = pd.factorize(series.astype(str))[0]  # mixed objects: 1 and "1" read alike
    else:
        codes = pd.factorize(series)[0]
    codes = np.asarray(codes, dtype=np.int64)
    codes[~series.notna().to_numpy()] = -1
    return codes


def _first_per_group(ordered: np.ndarray, codes: np.ndarray, count: int) -> np.ndarray:
    """For rows already sorted by group (`ordered` indexes them, `codes` their groups in
    that order): each group's first row, -1 for a group with none."""
    out = np.full(count, -1, dtype=np.int64)
    if len(ordered):
        starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
        out[codes[starts]] = ordered[starts]
    return out


@dataclass(frozen=True)
class Survivors:
    """One column's survivorship: per group, the surviving row (a position in the frame,
    -1 when the group has no value there) and whether its values conflict."""

    winners: np.ndarray
    conflict: np.ndarray


def survive(
    series: pd.Series, groups: Groups, rule: str, recent_first: np.ndarray | None
) -> Survivors:
    """Apply `rule` to one column (`series`, the frame's column) over `groups`.
    `recent_first`: the grouped rows (indexes into `groups.rows`) by group, newest first."""
    codes_all = value_codes(series)[groups.rows]
    present = codes_all >= 0
    index = np.flatnonzero(present)  # grouped rows with a value, in file order
    codes, vcodes = groups.codes[index], codes_all[index]
    # A group conflicts when a value differs from one of its values (any one will do).
    one = np.full(groups.count, -1, dtype=np.int64)
    one[codes] = vcodes
    conflict = np.bincount(codes[vcodes != one[codes]], minlength=groups.count) > 0
    if rule == "most_recent" and recent_first is not None:
        ordered = recent_first[present[recent_first]]
        chosen = _first_per_group(ordered, groups.codes[ordered], groups.count)
    elif rule == "longest":
        values = series.iloc[groups.rows[index]]
        lengths = values.astype(str).str.len().to_numpy(dtype=np.int64)
        order = np.lexsort((-lengths, codes))
        chosen = _first_per_group(index[order], codes[order], groups.count)
    else:  # most_frequent: the most rows, then the value seen first
        width = int(vcodes.max()) + 1 if len(vcodes) else 1
        pairs, first, counts = np.unique(
            codes * width + vcodes, return_index=True, return_counts=True
        )
        owner = pairs // width
        order = np.lexsort((first, -counts, owner))
        chosen = _first_per_group(index[first[order]], owner[order], groups.count)
    winners = np.where(chosen >= 0, groups.rows[np.maximum(chosen, 0)], -1)
    return Survivors(winners, conflict)


def _levels(stamps: pd.Series) -> np.ndarray:
    """How much of a date-time pandas writes (0: the date only; 1: to the second; 2, 3, 4:
    to the milli-, micro-, nanosecond) for each value: a group of values is written to the
    highest level among them."""
    floor = 1 if getattr(stamps.dtype, "tz", None) is not None else 0  # zoned: with the time
    values, second = ticks(stamps)
    level = np.full(len(values), floor, dtype=np.int64)
    steps = [(86_400 * second, 1), (second, 2), (second // 10**3, 3), (second // 10**6, 4)]
    for step, lvl in steps:
        if step >= 1:
            level[values % step != 0] = np.maximum(level[values % step != 0], lvl)
    return level


def as_text(values: pd.Series, owners: np.ndarray) -> np.ndarray:
    """Each value as text the way `astype(str)` writes its group (`owners`: the group of
    each value): dates to the precision their group's values need; anything else value by
    value."""
    if not ptypes.is_datetime64_any_dtype(values) and not ptypes.is_timedelta64_dtype(values):
        return np.asarray(values.astype(str).to_numpy(dtype=object))
    out = np.empty(len(values), dtype=object)
    if ptypes.is_timedelta64_dtype(values):  # rare: each group written on its own
        for g in np.unique(owners):
            where = np.flatnonzero(owners == g)
            out[where] = values.iloc[where].astype(str).to_numpy(dtype=object)
        return out
    level = _levels(values)
    group_level = np.zeros(int(owners.max()) + 1 if len(owners) else 0, dtype=np.int64)
    np.maximum.at(group_level, owners, level)
    row_level = group_level[owners]
    for lvl in np.unique(row_level):
        where = np.flatnonzero(row_level == lvl)
        out[where] = values.iloc[where].astype(str).to_numpy(dtype=object)
    return out


def conflicts(
    series: pd.Series, groups: Groups, survivors: Survivors, rule: str
) -> list[dict[str, Any]]:
    """The column's conflicts, one per conflicting group in key order: the group's key, its
    different values (as text, sorted), the rule and the value chosen (as text)."""
    conflicting = np.flatnonzero(survivors.conflict)
    if not len(conflicting):
        return []
    member = survivors.conflict[groups.codes] & series.notna().to_numpy()[groups.rows]
    rows = groups.rows[member]
    owners = groups.codes[member]
    text = as_text(series.iloc[rows], owners)
    table = pd.DataFrame({"group": owners, "text": pd.Series(text, dtype=object)})
    table = table.drop_duplicates().sort_values(["group", "text"], kind="stable")
    bounds = np.flatnonzero(np.diff(table["group"].to_numpy())) + 1
    listed = np.split(table["text"].to_numpy(dtype=object), bounds)
    chosen = series.iloc[survivors.winners[conflicting]].tolist()
    keys = groups.keys[conflicting].tolist()
    return [
        {"key": key, "values": values.tolist(), "rule": rule, "chosen": str(value)}
        for key, values, value in zip(keys, listed, chosen, strict=True)
    ]
