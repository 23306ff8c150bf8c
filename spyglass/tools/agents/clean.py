"""clean-my-data's agents: each changes the working frame in turn and reports what it did.

They share `frames["working"]` (a copy of the primary file) and run in catalogue
order; `cleanse-writeback` turns the result into the cleaned CSV output (and a
quarantine CSV when rows were set aside).
"""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from spyglass.tools.agents.patterns import EMAIL, is_identifying
from spyglass.tools.agents.quality import outlier_mask
from spyglass.tools.catalogue import CleanParameters

Frames = dict[str, pd.DataFrame]
#: Result key holding files an agent produced: (filename, bytes, content type, key, kind).
OUTPUTS = "_outputs"


def _working(frames: Frames) -> pd.DataFrame:
    if "working" not in frames:
        frames["working"] = frames["primary"].copy()
        frames["quarantine"] = frames["primary"].iloc[0:0].copy()
    return frames["working"]


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


def null_handler(frames: Frames, params: CleanParameters) -> dict[str, Any]:
    p = params.null_handler
    frame = _working(frames)
    # Guessing an id, a phone number or an e-mail is never right: gaps there stay gaps
    # (quarantine-agent sets such rows aside) unless the parameters name the column.
    columns = _columns(frame, p.columns, measures_only=p.strategy != "drop")
    before = int(frame[columns].isna().sum().sum())
    filled: dict[str, int] = {}
    if p.strategy == "drop":
        kept = frame.dropna(subset=columns)
        dropped = len(frame) - len(kept)
        frames["working"] = kept
        return {"strategy": "drop", "nulls_before": before, "rows_dropped": dropped}
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


def outlier_remover(frames: Frames, params: CleanParameters) -> dict[str, Any]:
    p = params.outlier_remover
    frame = _working(frames)
    numeric = [
        c
        for c in _columns(frame, p.columns, measures_only=True)
        if ptypes.is_numeric_dtype(frame[c]) and not ptypes.is_bool_dtype(frame[c])
    ]
    drop = pd.Series(False, index=frame.index)
    per_column: dict[str, int] = {}
    for col in numeric:
        if p.method == "iqr":
            mask = outlier_mask(frame[col], k=p.threshold).fillna(False)
        else:
            values = frame[col].astype(float)
            std = values.std()
            z = (values - values.mean()).abs() / std if std and not np.isnan(std) else values * 0
            mask = (z > p.threshold).fillna(False)
        per_column[col] = int(mask.sum())
        drop |= mask
    frames["working"] = frame[~drop]
    return {
        "method": p.method,
        "threshold": p.threshold,
        "rows_removed": int(drop.sum()),
        "by_column": per_column,
    }


def type_fixer(frames: Frames, params: CleanParameters) -> dict[str, Any]:
    wanted = params.type_fixer.column_types or {}
    frame = _working(frames)
    changes: dict[str, dict[str, Any]] = {}
    for col in frame.columns:
        series = frame[col]
        target = wanted.get(str(col))
        if target is None:
            if not (ptypes.is_object_dtype(series) or ptypes.is_string_dtype(series)):
                continue
            as_num = pd.to_numeric(series, errors="coerce")
            if series.notna().sum() and as_num.notna().sum() / series.notna().sum() >= 0.9:
                target = "number"
            else:
                continue
        converted, failed = _convert(series, target)
        if converted is None:
            continue
        frame[col] = converted
        changes[str(col)] = {"to": target, "unconvertible": failed}
    return {"converted": changes}


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


def duplicate_resolver(frames: Frames, params: CleanParameters) -> dict[str, Any]:
    p = params.duplicate_resolver
    frame = _working(frames)
    keys = _columns(frame, p.key_columns) if p.key_columns else None
    kept = frame.drop_duplicates(subset=keys, keep=p.keep)
    frames["working"] = kept
    return {
        "key_columns": keys or "all",
        "keep": p.keep,
        "duplicates_removed": int(len(frame) - len(kept)),
    }


_SPACES = re.compile(r"\s+")


def field_standardization(frames: Frames, params: CleanParameters) -> dict[str, Any]:
    """Trim and collapse spaces; lower-case e-mails; spell each other text value the way
    most rows do when it differs only in case (`SPAIN`, `spain` → `Spain`)."""
    frame = _working(frames)
    changed: dict[str, int] = {}
    for col in frame.columns:
        series = frame[col]
        if not (ptypes.is_object_dtype(series) or ptypes.is_string_dtype(series)):
            continue
        text = series.astype("string")
        new = text.str.strip().str.replace(_SPACES, " ", regex=True)
        present = new.dropna()
        emails = present.map(lambda v: bool(EMAIL.match(v)))
        if len(emails) and emails.mean() >= 0.5:
            new = new.str.lower()
        elif len(present):
            counts = present.value_counts()
            folded = counts.index.str.lower()
            if folded.nunique() < len(counts):  # some values differ only in case
                usual = pd.Series(counts.index, index=folded).groupby(level=0).first()
                new = new.str.lower().map(usual).where(new.notna())
        count = int(((new != text) & text.notna()).sum())
        if count:
            frame[col] = new.astype(object).where(new.notna(), None)
            changed[str(col)] = count
    return {"values_changed": changed, "total": sum(changed.values())}


#: Columns empty in more than this share of the original rows are optional: a gap there
#: is normal and does not send a row to quarantine.
OPTIONAL_SHARE = 0.5


def quarantine(frames: Frames, params: CleanParameters) -> dict[str, Any]:
    """Set aside rows still missing a value in a column that is normally filled."""
    frame = _working(frames)
    original = frames["primary"]
    optional = [str(c) for c in frame.columns if original[c].isna().mean() > OPTIONAL_SHARE]
    required = [c for c in frame.columns if str(c) not in optional]
    bad = frame[required].isna().any(axis=1) if required else pd.Series(False, index=frame.index)
    frames["quarantine"] = pd.concat([frames["quarantine"], frame[bad]])
    frames["working"] = frame[~bad]
    reasons = {
        str(c): int(frame.loc[bad, c].isna().sum())
        for c in required
        if frame.loc[bad, c].isna().any()
    }
    return {
        "rows_quarantined": int(bad.sum()),
        "missing_by_column": reasons,
        "optional_columns": optional,
    }


def preview(frames: Frames, params: CleanParameters) -> dict[str, Any]:
    before, after = frames["primary"], _working(frames)
    return {
        "rows_before": len(before),
        "rows_after": len(after),
        "nulls_before": int(before.isna().sum().sum()),
        "nulls_after": int(after.isna().sum().sum()),
        "sample_after": after.head(10)
        .astype(object)
        .where(after.head(10).notna(), None)
        .to_dict(orient="records"),
    }


def writeback(frames: Frames, params: CleanParameters) -> dict[str, Any]:
    after = _working(frames)
    outputs = [("cleaned.csv", _csv(after), "text/csv", "cleaned", "data")]
    if len(frames["quarantine"]):
        outputs.append(
            ("quarantine.csv", _csv(frames["quarantine"]), "text/csv", "quarantine", "data")
        )
    return {"rows_written": len(after), "files": [o[0] for o in outputs], OUTPUTS: outputs}


def _csv(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()
