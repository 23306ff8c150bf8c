"""clean-my-data's agents: each changes the working frame in turn and reports what it did.

Each is `run(ctx) -> result`. They share `ctx.frames["working"]` (a copy of the primary
file), `quarantine` (rows set aside, with their reason) and `merged` (exact copies merged
into a row kept), and run in the tool's order; `cleanse-writeback` turns the result into
the cleaned CSV output (and a quarantine CSV when rows were set aside).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from spyglass.tools.clean.parameters import CleanParameters
from spyglass.tools.common.patterns import EMAIL, is_identifying
from spyglass.tools.common.toolkit import (
    Agent,
    AgentContext,
    AgentResult,
    Frames,
    report_progress,
)

Context = AgentContext[CleanParameters]


#: The column of quarantine.csv that says, in plain words, why each row was set aside.
REASON = "quarantine_reason"
#: Tukey's "far out" fences: no false alarms on clean normal data, nor on lognormal data
#: judged on its log scale.
FAR_OUT = 3.0


def _working(frames: Frames) -> pd.DataFrame:
    if "working" not in frames:
        frames["working"] = frames["primary"].copy()
        frames["quarantine"] = frames["primary"].iloc[0:0].assign(**{REASON: pd.Series(dtype=str)})
        frames["merged"] = frames["primary"].iloc[0:0].copy()
    return frames["working"]


def _set_aside(frames: Frames, reasons: pd.Series) -> int:
    """Move the working rows that have a reason (text indexed like the working frame; empty
    or missing: keep the row) to the quarantine frame, with that reason."""
    frame = frames["working"]
    reasons = reasons.reindex(frame.index)
    bad = reasons.notna() & (reasons != "")
    if not bad.any():
        return 0
    moved = frame[bad].assign(**{REASON: reasons[bad].astype(str)})
    frames["quarantine"] = pd.concat([frames["quarantine"], moved])
    frames["working"] = frame[~bad]
    return int(bad.sum())


def _why(masks: dict[str, pd.Series], index: pd.Index, words: str) -> pd.Series:
    """Per row, the plain reason built from the columns whose mask is True there."""
    reasons = pd.Series("", index=index, dtype=object)
    for column, mask in masks.items():
        hit = mask.reindex(index, fill_value=False).astype(bool)
        text = f"{column} {words}"
        reasons[hit] = reasons[hit].map(lambda r, t=text: f"{r}; {t}" if r else t)
    return reasons


def accounting(frames: Frames) -> dict[str, int]:
    """Where every input row went: `rows_in = rows_out + rows_quarantined + rows_merged`."""
    _working(frames)
    return {
        "rows_in": len(frames["primary"]),
        "rows_out": len(frames["working"]),
        "rows_quarantined": len(frames["quarantine"]),
        "rows_merged": len(frames["merged"]),
    }


def _columns(
    frame: pd.DataFrame, wanted: list[str] | None, *, measures_only: bool = False
) -> list[str]:
    """The columns named in the parameters, else every column (`measures_only`: every
    column but identifying ones: ids, codes, phone and card numbers, e-mails)."""
    if not wanted:
        return [str(c) for c in frame.columns if not (measures_only and is_identifying(c))]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise ValueError(f"unknown column(s): {', '.join(missing)}")
    return wanted


def null_handler(ctx: Context) -> AgentResult:
    """Gaps stay gaps by default; filling is asked for, and `drop` sets rows aside."""
    frames, p = ctx.frames, ctx.params.null_handler
    frame = _working(frames)
    # Guessing an id, a phone number or an e-mail is never right: gaps there stay gaps
    # (quarantine-agent sets such rows aside) unless the parameters name the column.
    columns = _columns(frame, p.columns, measures_only=p.strategy not in ("drop", "keep"))
    before = int(frame[columns].isna().sum().sum())
    filled: dict[str, int] = {}
    if p.strategy == "keep":
        gaps = {c: int(n) for c, n in frame[columns].isna().sum().items() if n}
        return {"strategy": "keep", "nulls_before": before, "nulls_after": before, "gaps": gaps}
    if p.strategy == "drop":
        masks = {c: frame[c].isna() for c in columns}
        moved = _set_aside(frames, _why(masks, frame.index, "is missing"))
        return {"strategy": "drop", "nulls_before": before, "rows_quarantined": moved}
    for col in columns:
        series = frame[col]
        n = int(series.isna().sum())
        if not n:
            continue
        numeric = ptypes.is_numeric_dtype(series)
        if p.strategy == "fill_value":
            value = p.fill_value
        elif p.strategy == "fill_mode" or not numeric:
            mode = series.mode(dropna=True)
            value = mode.iloc[0] if not mode.empty else None
        elif p.strategy == "fill_mean":
            value = series.mean()
        else:
            value = series.median()
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        if isinstance(value, float):
            value = round(value, 6)  # a mean of 72.48 and 72.5 is 72.49, not 72.49000000000001
            if ptypes.is_integer_dtype(series) and not value.is_integer():
                series = series.astype("Float64")  # a median of 11.5 does not fit integers
        frame[col] = series.fillna(value)
        filled[col] = n
    kept = [str(c) for c in frame.columns if str(c) not in columns and frame[c].isna().any()]
    return {
        "strategy": p.strategy,
        "nulls_before": before,
        "filled": filled,
        "nulls_after": int(frame[columns].isna().sum().sum()),
        "left_for_review": kept,
    }


def _fences(values: pd.Series, k: float) -> pd.Series | None:
    """Tukey's fences at k·IQR; None when the middle half is one value (no spread to judge)."""
    finite = values[np.isfinite(values)]
    q1, q3 = finite.quantile(0.25), finite.quantile(0.75)
    iqr = q3 - q1
    if not iqr > 0:
        return None
    return (values < q1 - k * iqr) | (values > q3 + k * iqr)


def judge_outliers(series: pd.Series, method: str, k: float) -> tuple[pd.Series, str]:
    """Where a numeric column's values lie far outside its usual range, and the scale judged.

    `auto`: a column whose values are (nearly) all positive — amounts, prices, counts, ages —
    may be skewed (lognormal, exponential …): a value is far out only when it is beyond the
    k·IQR fences both as it is and on the log scale (zero or less counts as far below on the
    log scale). On simulated normal, lognormal, exponential, gamma and chi-squared columns of
    5,000 values this flags nothing at k = 3, where either scale alone raises false alarms.
    Other columns: the fences as they are. `iqr`: the fences as they are; `zscore`: beyond k
    standard deviations. A column whose middle half is one value flags nothing.
    """
    values = pd.to_numeric(series, errors="coerce").astype(float)
    present = values[np.isfinite(values)]
    none = pd.Series(False, index=series.index)
    if len(present) < 4:
        return none, "too few values"
    if method == "zscore":
        std = present.std()
        if not std or np.isnan(std):
            return none, "no spread"
        return ((values - present.mean()).abs() / std > k).fillna(False), "z-score"
    raw = _fences(values, k)
    if raw is None:
        return none, "no spread"
    if method == "auto" and (present > 0).mean() >= 0.99:
        # numpy's stubs don't know pandas' __array_ufunc__: np.log of a Series is a Series
        on_log = _fences(np.log(values.where(values > 0)), k)  # type: ignore[arg-type]
        if on_log is not None:
            off_scale = values <= 0  # zero or less: far below anything on the log scale
            return (raw & (on_log | off_scale)).fillna(False), "as is and log"
    return raw.fillna(False), "as is"


def outlier_remover(ctx: Context) -> AgentResult:
    """Flag values far outside a column's usual range and set their rows aside (never drop)."""
    frames, p = ctx.frames, ctx.params.outlier_remover
    k = p.threshold if p.threshold is not None else FAR_OUT
    frame = _working(frames)
    numeric = [
        c
        for c in _columns(frame, p.columns, measures_only=True)
        if ptypes.is_numeric_dtype(frame[c]) and not ptypes.is_bool_dtype(frame[c])
    ]
    masks: dict[str, pd.Series] = {}
    scales: dict[str, str] = {}
    for col in numeric:
        masks[col], scales[col] = judge_outliers(frame[col], p.method, k)
    moved = _set_aside(frames, _why(masks, frame.index, "is far outside the usual range"))
    return {
        "method": p.method,
        "threshold": k,
        "rows_quarantined": moved,
        "by_column": {c: int(m.sum()) for c, m in masks.items()},
        "scale_by_column": scales,
    }


def type_fixer(ctx: Context) -> AgentResult:
    """Convert the columns named in `column_types`; of the others, turn a text column into
    numbers only when every value in it reads as a number (a column where most do is only
    suggested: converting it would empty the cells that do not)."""
    frames, wanted = ctx.frames, ctx.params.type_fixer.column_types or {}
    frame = _working(frames)
    changes: dict[str, dict[str, Any]] = {}
    suggestions: dict[str, dict[str, Any]] = {}
    for col in frame.columns:
        series = frame[col]
        target = wanted.get(str(col))
        if target is None:
            if not (ptypes.is_object_dtype(series) or ptypes.is_string_dtype(series)):
                continue
            present = int(series.notna().sum())
            if not _may_be_numbers(series, present):
                continue
            parsed = int(pd.to_numeric(series, errors="coerce").notna().sum())
            if not present or parsed / present < 0.9:
                continue
            if parsed < present:
                suggestions[str(col)] = {"to": "number", "unconvertible": present - parsed}
                continue
            target = "number"
        converted, failed = _convert(series, target)
        if converted is None:
            continue
        frame[col] = converted
        changes[str(col)] = {"to": target, "unconvertible": failed}
    return {"converted": changes, "suggested": suggestions}


#: Values of a long text column read as numbers first: when fewer than half of them do, the
#: column cannot have the 90 % a conversion needs (for a column where 90 % do, a random
#: sample of 2,000 with under half is a chance below 1e-270, by Hoeffding's bound).
NUMBER_SAMPLE = 2_000


def _may_be_numbers(series: pd.Series, present: int) -> bool:
    """Whether a text column may be mostly numbers, judged on a seeded sample of its values
    (parsing a million values as numbers takes seconds; a sample, milliseconds)."""
    if present <= 10 * NUMBER_SAMPLE:
        return True
    sample = series.dropna().sample(NUMBER_SAMPLE, random_state=0)
    return bool(pd.to_numeric(sample, errors="coerce").notna().mean() >= 0.5)


def _convert(series: pd.Series, target: str) -> tuple[pd.Series | None, int]:
    present = series.notna()
    if target == "number":
        out = pd.to_numeric(series, errors="coerce")
    elif target == "date":
        out = pd.to_datetime(series, errors="coerce", format="mixed")
    elif target == "boolean":
        mapping = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
        out = series.astype(str).str.strip().str.lower().map(mapping).where(present)
    else:
        out = series.astype("string")
    failed = int((present & out.isna()).sum())
    return out, failed


def duplicate_resolver(ctx: Context) -> AgentResult:
    """Merge duplicate rows (exact copies by default) into the one kept."""
    frames, p = ctx.frames, ctx.params.duplicate_resolver
    frame = _working(frames)
    keys = _columns(frame, p.key_columns) if p.key_columns else None
    repeated = frame.duplicated(subset=keys, keep=p.keep)
    frames["merged"] = pd.concat([frames["merged"], frame[repeated]])
    frames["working"] = frame[~repeated]
    return {
        "key_columns": keys or "all",
        "keep": p.keep,
        "rows_merged": int(repeated.sum()),
    }


#: A run of white space as Python's `\s` knows it, spelt out so that pyarrow's regular
#: expressions (RE2, whose `\s` is narrower) run it on the whole column at once.
_SPACES = "[" + "".join(c for c in map(chr, range(0x3001)) if re.match(r"\s", c)) + "]+"


def field_standardization(ctx: Context) -> AgentResult:
    """Trim and collapse spaces; lower-case e-mails; spell each other text value the way
    most rows do when it differs only in case (`SPAIN`, `spain` → `Spain`)."""
    frame = _working(ctx.frames)
    changed: dict[str, int] = {}
    for i, col in enumerate(frame.columns):
        report_progress(i / frame.shape[1], f"tidying {col}")
        series = frame[col]
        if not (ptypes.is_object_dtype(series) or ptypes.is_string_dtype(series)):
            continue
        text = series.astype("string")
        new = text.str.strip().str.replace(_SPACES, " ", regex=True)
        present = new.dropna()
        emails = present.str.match(EMAIL.pattern)
        if len(emails) and emails.mean() >= 0.5:
            new = new.str.lower()
        elif len(present) and (present.str.lower() != present).any():
            # (values already all lower case, phone numbers or codes, cannot differ in case)
            counts = present.value_counts()
            folded = counts.index.str.lower()
            if folded.nunique() < len(counts):  # some values differ only in case
                usual = pd.Series(counts.index, index=folded).groupby(level=0).first()
                new = new.str.lower().map(usual).where(new.notna())
        count = int(((new != text) & text.notna()).sum())
        if count:
            # Text stays pandas' text type (pyarrow's, as read); other columns become objects.
            plain_text = (
                isinstance(series.dtype, pd.StringDtype) and series.dtype.na_value is np.nan
            )
            frame[col] = (
                new.astype(series.dtype)
                if plain_text
                else new.astype(object).where(new.notna(), None)
            )
            changed[str(col)] = count
    return {"values_changed": changed, "total": sum(changed.values())}


#: Columns empty in more than this share of the original rows are optional: a gap there
#: is normal and does not send a row to quarantine.
OPTIONAL_SHARE = 0.5


def quarantine(ctx: Context) -> AgentResult:
    """Set aside rows missing an identifying value (an id, an e-mail, a phone number …) in a
    column that is normally filled: such a record cannot be told apart or reached. Gaps in
    other columns stay as they are."""
    frames = ctx.frames
    frame = _working(frames)
    original = frames["primary"]
    optional = [str(c) for c in frame.columns if original[c].isna().mean() > OPTIONAL_SHARE]
    required = [c for c in frame.columns if str(c) not in optional and is_identifying(c)]
    masks = {str(c): frame[c].isna() for c in required}
    reasons = {name: int(m.sum()) for name, m in masks.items() if m.any()}
    moved = _set_aside(frames, _why(masks, frame.index, "is missing"))
    return {
        "rows_quarantined": moved,
        "missing_by_column": reasons,
        "optional_columns": optional,
    }


#: Sample rows shown per column and per kind of change.
SAMPLES = 3


def _records(frame: pd.DataFrame) -> list[dict[Hashable, Any]]:
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def _same(before: pd.Series, after: pd.Series) -> pd.Series:
    """Cell by cell, whether two present values are the same (as numbers when both read as
    numbers: `12` and `12.0` are the same value)."""
    left, right = pd.to_numeric(before, errors="coerce"), pd.to_numeric(after, errors="coerce")
    numeric = left.notna() & right.notna()
    as_text = before.astype(str) == after.astype(str)
    return (numeric & (left == right)) | (~numeric & as_text)


def _names(reason: str, column: str) -> bool:
    """Whether a quarantine reason ("a is missing; b is far outside …") names the column."""
    return any(part.startswith(f"{column} is ") for part in str(reason).split("; "))


def changes(
    frames: Frames, progress: Callable[[float], None] | None = None
) -> list[dict[str, Any]]:
    """Per column: cells filled, values changed (fixed or standardised), values emptied by a
    type fix, rows set aside for it, with a few sample rows (numbered from 1 as in the file)."""
    before, after = frames["primary"], _working(frames)
    held = frames["quarantine"]
    reasons = held[REASON].unique()
    kept = before.index.get_indexer(after.index)  # the rows written, in the file
    out = []
    for i, col in enumerate(before.columns):
        if progress is not None:
            progress(i / before.shape[1])
        name = str(col)
        old = before[col].iloc[kept]
        new = after[col] if col in after.columns else old
        filled = old.isna() & new.notna()
        emptied = old.notna() & new.isna()
        changed = pd.Series(False, index=old.index)
        if old.dtype != new.dtype:  # a converted column: values compared as they read
            changed = old.notna() & new.notna() & ~_same(old, new)
        else:
            try:
                differ = old.notna() & new.notna() & ~old.eq(new)
            except TypeError:  # values that do not compare (mixed types): as they read
                differ = old.notna() & new.notna()
            if differ.any():
                changed[differ] = ~_same(old[differ], new[differ])
        named = {r: _names(r, name) for r in reasons}  # a few reasons, many rows
        set_aside = held[REASON].map(named).astype(bool)
        samples = []
        for kind, mask in (("filled", filled), ("changed", changed), ("emptied", emptied)):
            for i in mask[mask].index[:SAMPLES]:
                samples.append(
                    {"row": int(i) + 1, "change": kind, "before": old[i], "after": new[i]}
                )
        for i in set_aside[set_aside].index[:SAMPLES]:
            samples.append(
                {
                    "row": int(i) + 1,
                    "change": "set aside",
                    "before": before.at[i, col],
                    "after": held.at[i, REASON],
                }
            )
        row = {
            "column": name,
            "filled": int(filled.sum()),
            "changed": int(changed.sum()),
            "emptied": int(emptied.sum()),
            "quarantined": int(set_aside.sum()),
        }
        if any(v for k, v in row.items() if k != "column"):
            out.append({**row, "samples": samples})
    return out


def preview(ctx: Context) -> AgentResult:
    """What the run changed, before anything is written: row counts, per-column changes with
    sample rows, and a few of the rows set aside with their reasons."""
    frames = ctx.frames
    before, after = frames["primary"], _working(frames)
    held = frames["quarantine"]
    return {
        **accounting(frames),
        "rows_before": len(before),
        "rows_after": len(after),
        "nulls_before": int(before.isna().sum().sum()),
        "nulls_after": int(after.isna().sum().sum()),
        "changes": changes(frames, lambda share: report_progress(share, "comparing columns")),
        "sample_quarantined": _records(held.head(SAMPLES * 2)),
        "sample_after": _records(after.head(10)),
    }


def writeback(ctx: Context) -> AgentResult:
    frames = ctx.frames
    after = _working(frames)
    ctx.write_csv("cleaned.csv", after, "cleaned")
    files = ["cleaned.csv"]
    if len(frames["quarantine"]):
        ctx.write_csv("quarantine.csv", frames["quarantine"], "quarantine")
        files.append("quarantine.csv")
    return {**accounting(frames), "rows_written": len(after), "files": files}


AGENTS = (
    Agent("null-handler", "Handle null/missing values", 10, null_handler),
    Agent("outlier-remover", "Set outliers aside", 10, outlier_remover),
    Agent("type-fixer", "Fix data types", 10, type_fixer),
    Agent("duplicate-resolver", "Resolve duplicates", 10, duplicate_resolver),
    Agent("field-standardization", "Standardize fields", 10, field_standardization),
    Agent("quarantine-agent", "Quarantine bad records", 10, quarantine),
    Agent("cleanse-previewer", "Preview changes", 5, preview),
    Agent("cleanse-writeback", "Write cleaned data", 5, writeback),
)
