"""profile-my-data on a CSV larger than a task may hold in memory: read in blocks, never whole.

Chosen by measurement (`bench/RESULTS-bigfiles.md`): DuckDB and Polars reserve more address
space than a task's cap (`SPYGLASS_JOB_MEMORY_MB` is an address-space limit) before they read
a byte, so under a 1 GB cap neither runs; pyarrow's streaming CSV reader on the system
allocator stays within a few blocks of memory. Two passes over the file:

1. Every column, block by block (BLOCK_BYTES of the file at a time): the row count, nulls,
   for numbers the exact minimum, maximum, mean, standard deviation and skewness (from
   shifted power sums), zeros and infinities; for text the shortest and longest value; each
   value's count while a column has at most EXACT_VALUES distinct values (then its top values
   and categories are exact); a 64-bit hash of every row, and of every value of a column
   with more distinct values than that (the first SPILLED_COLUMNS such columns), spilled to
   disk in HASH_BUCKETS files each, from which the duplicate rows and those columns'
   distinct values are counted exactly (up to 64-bit hash collisions: about one in 10¹¹ for
   10 million values); and a uniform sample of rows (at most SAMPLE_ROWS, fewer for
   a wide file: SAMPLE_CELLS cells), kept in file order.
2. The numeric columns again: the exact histogram (ten equal bins between the exact minimum
   and maximum) and the exact number of values beyond Tukey's fences.

From the sample come only what needs the values themselves: the quartiles and median, the
personal-data and date patterns, the points of the KS test, the correlations, and the top
values of a column with more than EXACT_VALUES distinct values (their counts scaled to the
file). The profile agents then read these statistics as they read a loaded file's
(`spyglass.tools.common.memo`: the sample frame stands for the file), so the six agents run
unchanged; the report says the file was streamed, and lists duplicate rows by count only.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from spyglass.tools.common.frames import CONVERT, arrow_to_pandas
from spyglass.tools.common.memo import once
from spyglass.tools.common.sniff import CsvDialect, DataFileError, unreadable
from spyglass.tools.common.stats import BINS, MAX_CATEGORIES, ColumnStats, _top, compute
from spyglass.tools.common.toolkit import report_progress

#: Bytes of the file parsed at a time.
BLOCK_BYTES = 4 << 20
#: Rows kept as the sample (fewer when the file is wide: at most SAMPLE_CELLS cells).
SAMPLE_ROWS = 100_000
SAMPLE_CELLS = 2_000_000
#: A column's values are counted exactly while it has at most this many distinct values.
EXACT_VALUES = 5_000
#: Files the row and value hashes are spread over (each counted on its own at the end).
HASH_BUCKETS = 16
#: Columns whose distinct values are counted from hashes on disk (each holds HASH_BUCKETS
#: open files); past these, a column's distinct count is estimated from the sample.
SPILLED_COLUMNS = 48
#: pyarrow parses each block in this thread: its thread pool's stacks and arenas took more
#: address space than a small cap leaves (700 MB: over the cap with threads, 680 MB without).
THREADS = False
_COLUMN = re.compile(r"In CSV column #(\d+)")
_MIX = np.uint64(0x9E3779B97F4A7C15)


@dataclass
class _Column:
    """What pass 1 keeps of one column."""

    nulls: int = 0
    counts: pd.Series | None = field(default_factory=lambda: pd.Series(dtype="int64"))
    n: int = 0
    shift: float | None = None
    s1: float = 0.0
    s2: float = 0.0
    s3: float = 0.0
    minimum: Any = None
    maximum: Any = None
    zeros: int = 0
    infinite: int = 0
    min_length: int | None = None
    max_length: int | None = None
    #: The hashes of its values, once it has more than EXACT_VALUES of them.
    spill: _Spill | None = None
    #: More than EXACT_VALUES distinct values and no spill left for it: estimated.
    estimated: bool = False

    def bound(self, low: Any, high: Any) -> None:
        if low is not None and (self.minimum is None or low < self.minimum):
            self.minimum = low
        if high is not None and (self.maximum is None or high > self.maximum):
            self.maximum = high


@dataclass
class Streamed:
    """What the two passes found: the sample frame (with the file's statistics attached to
    it for the agents) and the figures the report states."""

    sample: pd.DataFrame
    rows: int
    duplicates: int
    stats: dict[str, ColumnStats]


def _numeric(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))


def _hashes(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A 64-bit hash of each value (nulls hash alike), the same for a value in every block."""
    kind = column.type
    if _numeric(kind):
        values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    elif pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_time(kind):
        values = pc.cast(column, pa.string()).to_numpy(zero_copy_only=False)
    elif pa.types.is_boolean(kind):
        values = pc.cast(column, pa.int8()).to_numpy(zero_copy_only=False)
    else:
        values = column.to_numpy(zero_copy_only=False)
    if values.dtype == object:
        values = np.where(pd.isna(values), "\x00null", values)
    return pd.util.hash_array(values, categorize=False)


class _Spill:
    """64-bit hashes written to HASH_BUCKETS files by their top bits, counted per file."""

    def __init__(self, folder: Path, name: str) -> None:
        self.paths = [folder / f"{name}-{i}.u64" for i in range(HASH_BUCKETS)]
        self.files = [p.open("wb") for p in self.paths]

    def add(self, hashes: np.ndarray, distinct: bool) -> None:
        if distinct:
            hashes = np.unique(hashes)
        bucket = (hashes >> np.uint64(60)).astype(np.intp) % HASH_BUCKETS
        order = np.argsort(bucket, kind="stable")
        bounds = np.searchsorted(bucket[order], np.arange(HASH_BUCKETS + 1))
        for i in range(HASH_BUCKETS):
            part = hashes[order[bounds[i] : bounds[i + 1]]]
            if len(part):
                self.files[i].write(part.tobytes())

    def count(self, what: str) -> tuple[int, int]:
        """(hashes written, distinct hashes), then the files are removed; `what` is counted
        (for the progress reports)."""
        total = distinct = 0
        for i, (file, path) in enumerate(zip(self.files, self.paths, strict=True), 1):
            file.close()
            values = np.fromfile(path, dtype=np.uint64)
            total += len(values)
            distinct += len(np.unique(values))
            path.unlink()
            report_progress(None, f"counting {what}: part {i} of {HASH_BUCKETS}")
        return total, distinct


def _row_hashes(rows: int, columns: list[np.ndarray]) -> np.ndarray:
    """Each row's hash, from its columns' value hashes."""
    out = np.zeros(rows, dtype=np.uint64)
    for hashes in columns:
        out = out * _MIX + hashes
    return out


def _reader(
    open_file: Callable[[], BinaryIO],
    dialect: CsvDialect,
    types: dict[str, pa.DataType],
    include: list[str] | None = None,
) -> pacsv.CSVStreamingReader:
    convert = pacsv.ConvertOptions(
        strings_can_be_null=True,
        column_types=types,
        include_columns=include or [],
        null_values=CONVERT.null_values,
    )
    return pacsv.open_csv(
        open_file(),
        read_options=dialect.read_options(block_size=BLOCK_BYTES, use_threads=THREADS),
        parse_options=dialect.parse_options(),
        convert_options=convert,
    )


def _count(
    acc: _Column, column: pa.Array, hashes: np.ndarray, spill: Callable[[], _Spill | None]
) -> None:
    """Count the block's values; past EXACT_VALUES distinct ones, hash them to disk (`hashes`:
    the hash of each of the block's values, missing ones too)."""
    if acc.spill is not None:  # mostly distinct: counted once, at the end
        if column.null_count:
            hashes = hashes[column.is_valid().to_numpy(zero_copy_only=False)]
        acc.spill.add(hashes, distinct=False)
        return
    present = column.drop_null()
    if acc.counts is None:
        return
    counted = pc.value_counts(present)
    if not len(counted):
        return
    values = counted.field("values")
    batch = pd.Series(
        counted.field("counts").to_numpy(), index=values.to_numpy(zero_copy_only=False)
    )
    acc.counts = batch if acc.counts.empty else acc.counts.add(batch, fill_value=0)
    if len(acc.counts) > EXACT_VALUES:
        # Every value seen so far is in the counts (this block's too).
        seen = pa.array(acc.counts.index.to_numpy(), type=values.type, from_pandas=True)
        acc.counts = None
        acc.spill = spill()
        if acc.spill is None:
            acc.estimated = True
        else:
            acc.spill.add(_hashes(seen), distinct=False)


def _first_pass(
    batch: pa.RecordBatch,
    columns: list[_Column],
    rows_spill: _Spill,
    spill: Callable[[], _Spill | None],
) -> None:
    hashes = [_hashes(column) for column in batch.columns]
    rows_spill.add(_row_hashes(batch.num_rows, hashes), distinct=False)
    for acc, column, column_hashes in zip(columns, batch.columns, hashes, strict=True):
        acc.nulls += column.null_count
        _count(acc, column, column_hashes, spill)
        kind = column.type
        if _numeric(kind):
            values = pc.cast(column.drop_null(), pa.float64()).to_numpy(zero_copy_only=False)
            finite = values[np.isfinite(values)]
            acc.infinite += len(values) - len(finite)
            if not len(finite):
                continue
            if acc.shift is None:
                acc.shift = float(finite.mean())
            centred = finite - acc.shift
            squares = centred * centred
            acc.n += len(finite)
            acc.s1 += float(centred.sum())
            acc.s2 += float(squares.sum())
            acc.s3 += float((squares * centred).sum())
            acc.zeros += int(np.count_nonzero(finite == 0))
            acc.bound(float(finite.min()), float(finite.max()))
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            lengths = pc.min_max(pc.utf8_length(column))
            low, high = lengths["min"].as_py(), lengths["max"].as_py()
            if low is not None:
                acc.min_length = low if acc.min_length is None else min(acc.min_length, low)
                acc.max_length = high if acc.max_length is None else max(acc.max_length, high)
        elif pa.types.is_timestamp(kind) or pa.types.is_date(kind):
            bounds = pc.min_max(column)
            acc.bound(bounds["min"].as_py(), bounds["max"].as_py())


class _Sample:
    """A uniform sample of rows without replacement (the `size` smallest random keys)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.rng = np.random.default_rng(0)
        self.keys = np.empty(0)
        self.order = np.empty(0, dtype=np.int64)
        self.parts: list[pa.RecordBatch] = []
        self.table: pa.Table | None = None

    def add(self, batch: pa.RecordBatch, first_row: int) -> None:
        keys = self.rng.random(batch.num_rows)
        if len(self.keys) >= self.size:
            cutoff = np.partition(self.keys, self.size - 1)[self.size - 1]
            keep = np.flatnonzero(keys < cutoff)
        else:
            keep = np.arange(batch.num_rows)
        if not len(keep):
            return
        self.parts.append(batch.take(pa.array(keep)))
        self.keys = np.concatenate((self.keys, keys[keep]))
        self.order = np.concatenate((self.order, first_row + keep))
        if len(self.keys) > 2 * self.size:
            self._trim()

    def _trim(self) -> None:
        if not self.parts and self.table is None:  # no rows yet
            return
        table = pa.Table.from_batches(self.parts) if self.parts else self.table
        if self.table is not None and self.parts:
            table = pa.concat_tables([self.table, pa.Table.from_batches(self.parts)])
        assert table is not None
        self.parts = []
        best = np.argsort(self.keys, kind="stable")[: self.size]
        best = best[np.argsort(self.order[best], kind="stable")]  # in file order
        self.table = table.take(pa.array(best))
        self.keys, self.order = self.keys[best], self.order[best]

    def result(self, schema: pa.Schema) -> pa.Table:
        self._trim()
        return self.table if self.table is not None else schema.empty_table()


def _moments(acc: _Column) -> tuple[float | None, float | None, float | None]:
    """Mean, standard deviation (n − 1) and adjusted Fisher–Pearson skewness."""
    n = acc.n
    if n == 0 or acc.shift is None:
        return None, None, None
    m1 = acc.s1 / n
    mean = acc.shift + m1
    m2 = max(0.0, acc.s2 / n - m1 * m1)
    m3 = acc.s3 / n - 3 * m1 * acc.s2 / n + 2 * m1**3
    std = math.sqrt(m2 * n / (n - 1)) if n > 1 else None
    if n < 3:
        skew = None
    elif m2 <= 1e-14 * max(1.0, mean * mean):
        skew = 0.0
    else:
        skew = math.sqrt(n * (n - 1)) / (n - 2) * m3 / m2**1.5
    return mean, std, skew


def _iso(value: Any) -> str:
    return pd.Timestamp(value).isoformat()


def _stats(
    name: str,
    acc: _Column,
    sampled: ColumnStats,
    rows: int,
    distinct: int,
) -> ColumnStats:
    """The sample's statistics of a column, with every figure pass 1 knows exactly put in."""
    out = sampled
    present = rows - acc.nulls
    in_sample = max(1, sampled.count - sampled.nulls)
    if acc.estimated:  # unique in the sample: unique in the file, as far as it tells
        share = sampled.distinct / in_sample
        distinct = present if share == 1 else max(sampled.distinct, round(share * present))
    out.name, out.count, out.nulls, out.distinct = name, rows, acc.nulls, distinct
    integral = out.kind == "integer"
    if acc.counts is not None:
        counts = acc.counts.sort_index(kind="stable") if out.numeric else acc.counts
        values, numbers = counts.index.to_numpy(), counts.to_numpy().astype(np.int64)
        out.distinct = len(values)
        text: Callable[[Any], str] = (lambda v: str(int(v))) if integral else str
        if out.kind == "boolean":
            text = lambda v: str(bool(v))  # noqa: E731 (as pandas writes True/False)
        elif out.kind == "date":
            text = lambda v: str(pd.Timestamp(v))  # noqa: E731
        out.top = _top(values, numbers, text)
        if len(values) <= MAX_CATEGORIES:
            out.categories = {text(v): int(c) for v, c in zip(values, numbers, strict=True)}
        else:
            out.categories = None
    else:  # the sample's most frequent values, their counts scaled to the file
        out.top = [(v, round(c * present / in_sample)) for v, c in out.top]
        out.categories = None
    if out.numeric:
        out.minimum, out.maximum = acc.minimum, acc.maximum
        out.mean, out.std, out.skewness = _moments(acc)
        out.zeros, out.infinite = acc.zeros, acc.infinite
    elif out.kind == "string":
        out.min_length, out.max_length = acc.min_length, acc.max_length
    elif out.kind == "date" and acc.minimum is not None:
        out.date_range = (_iso(acc.minimum), _iso(acc.maximum))
    return out


def _second_pass(
    open_file: Callable[[], BinaryIO],
    dialect: CsvDialect,
    types: dict[str, pa.DataType],
    names: list[str],
    stats: dict[str, ColumnStats],
) -> None:
    """The exact histogram and outlier count of every numeric column."""
    work: dict[int, tuple[np.ndarray, float, float]] = {}
    for i, name in enumerate(names):
        col = stats[name]
        if not col.numeric or col.minimum is None or col.maximum is None:
            continue
        lo, hi = float(col.minimum), float(col.maximum)
        edges = np.linspace(lo, hi, BINS + 1) if hi > lo else np.array([lo, hi])
        q1, _, q3 = col.quartiles or (lo, lo, hi)
        iqr = q3 - q1
        work[i] = (edges, q1 - 1.5 * iqr, q3 + 1.5 * iqr)
    if not work:
        return
    histograms = {i: np.zeros(max(1, len(e) - 1), dtype=np.int64) for i, (e, _, _) in work.items()}
    outliers = dict.fromkeys(work, 0)
    raw = list(types)
    include = [raw[i] for i in work] if len(set(raw)) == len(raw) else None
    reader = _reader(open_file, dialect, types, include)
    position = {i: (j if include else i) for j, i in enumerate(work)}
    read = 0
    for batch in reader:
        read += batch.num_rows
        report_progress(None, f"histograms and outliers: {read:,} rows read again")
        for i, (edges, low, high) in work.items():
            values = pc.cast(batch.column(position[i]), pa.float64()).to_numpy(zero_copy_only=False)
            values = values[np.isfinite(values)]
            outliers[i] += int(np.count_nonzero((values < low) | (values > high)))
            if len(edges) == 2:
                histograms[i][0] += len(values)
                continue
            bins = np.searchsorted(edges[1:-1], values, side="right")
            histograms[i] += np.bincount(bins, minlength=BINS)
    for i, (edges, _, _) in work.items():
        col = stats[names[i]]
        col.histogram = ([int(c) for c in histograms[i]], [float(e) for e in edges])
        col.outliers = outliers[i]


def _fixed_types(reader: pacsv.CSVStreamingReader) -> dict[str, pa.DataType]:
    return {f.name: f.type for f in reader.schema}


def _widen(types: dict[str, pa.DataType], message: str) -> bool:
    """A later block did not fit a column's type guessed from the first: integers become
    decimals, anything else text. False when the message names no column."""
    match = _COLUMN.search(message)
    if match is None:
        return False
    name = list(types)[int(match.group(1))]
    was = types[name]
    types[name] = pa.float64() if pa.types.is_integer(was) else pa.large_string()
    return types[name] != was


def stream_profile(
    open_file: Callable[[], BinaryIO], dialect: CsvDialect, filename: str
) -> pd.DataFrame:
    """Read the CSV that `open_file` opens in blocks; the sample frame, standing for the file
    (its statistics, row and duplicate counts attached: see the module)."""
    try:
        found = _profile(open_file, dialect)
    except DataFileError:
        raise
    except (MemoryError, pa.ArrowMemoryError):  # over the task's memory cap
        raise MemoryError from None
    except (pa.ArrowException, ValueError) as exc:
        raise DataFileError(unreadable(filename, exc)) from None
    if found.rows == 0:
        raise DataFileError(f"'{filename}' has a header but no data rows")
    frame = found.sample
    once(frame, "stats", lambda: found.stats)
    once(frame, "rows", lambda: found.rows)
    once(frame, "duplicate_rows", lambda: found.duplicates)
    once(frame, "streamed", lambda: {"sample_rows": len(frame), "block_bytes": BLOCK_BYTES})
    return frame


def _profile(open_file: Callable[[], BinaryIO], dialect: CsvDialect) -> Streamed:
    types = _fixed_types(_reader(open_file, dialect, {}))
    for _ in range(2 * len(types) + 1):
        try:
            return _passes(open_file, dialect, dict(types))
        except pa.ArrowInvalid as exc:
            if not _widen(types, str(exc)):
                raise
    raise DataFileError("the file's columns change type too often to be read")


def _passes(
    open_file: Callable[[], BinaryIO], dialect: CsvDialect, types: dict[str, pa.DataType]
) -> Streamed:
    reader = _reader(open_file, dialect, types)
    schema = reader.schema
    names = list(arrow_to_pandas(schema.empty_table()).columns)
    width = max(1, len(names))
    sample = _Sample(max(1_000, min(SAMPLE_ROWS, SAMPLE_CELLS // width)))
    columns = [_Column() for _ in names]
    rows = 0
    with tempfile.TemporaryDirectory(prefix="spyglass-stream-") as folder:
        rows_spill = _Spill(Path(folder), "rows")
        spills: list[_Spill] = []

        def spill() -> _Spill | None:
            if len(spills) == SPILLED_COLUMNS:
                return None
            spills.append(_Spill(Path(folder), f"c{len(spills)}"))
            return spills[-1]

        for batch in reader:
            _first_pass(batch, columns, rows_spill, spill)
            sample.add(batch, rows)
            rows += batch.num_rows
            report_progress(None, f"{rows:,} rows read")
        total, distinct_rows = rows_spill.count("duplicate rows")
        distinct = [
            acc.spill.count(f"the distinct values of {name}")[1] if acc.spill is not None else 0
            for acc, name in zip(columns, names, strict=True)
        ]
    frame = arrow_to_pandas(sample.result(schema))
    stats = {}
    for i, name in enumerate(names):
        report_progress(None, f"statistics of the sample's column {i + 1:,} of {len(names):,}")
        sampled = compute(frame[name])
        stats[name] = _stats(name, columns[i], sampled, rows, distinct[i])
    _second_pass(open_file, dialect, types, names, stats)
    return Streamed(frame, rows, total - distinct_rows, stats)
