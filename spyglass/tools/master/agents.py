"""master-my-data's agents: keys, contracts, semantic types, lineage, golden records.

Each is `run(ctx) -> result`; what one finds for those after it (keys, semantic types,
golden records, conflicts) is kept in `ctx.state`. Entities are matched on a key (the
parameters' first candidate column, else an e-mail column, else the best key column),
normalised (trimmed, lower-cased); each group of rows becomes one golden record by
per-column survivorship rules.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from itertools import combinations, islice
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from pandas.api.extensions import take

from spyglass.tools.common.memo import once, row_hashes
from spyglass.tools.common.patterns import EMAIL, pii_kind
from spyglass.tools.common.toolkit import Agent, AgentContext, AgentResult, report_progress
from spyglass.tools.master import survivorship
from spyglass.tools.master.parameters import MasterParameters

Context = AgentContext[MasterParameters]
State = dict[str, Any]
#: Conflicts listed in full in survivorship-resolver's result (counts cover them all).
CONFLICTS_LISTED = 1_000

NAME_HINTS = {
    "email": re.compile(r"e-?mail", re.I),
    "phone": re.compile(r"phone|tel|mobile", re.I),
    "date": re.compile(r"date|_at$|time|day", re.I),
    "identifier": re.compile(r"(^id$|_id$|^key$|code$|number$|^no$)", re.I),
    "name": re.compile(r"name", re.I),
    "country": re.compile(r"country|nation", re.I),
    "city": re.compile(r"city|town", re.I),
    "amount": re.compile(r"amount|price|total|cost|revenue|balance", re.I),
}


def key_identifier(ctx: Context) -> AgentResult:
    p = ctx.params.key_identifier
    frame = ctx.primary
    columns = p.candidate_columns or [str(c) for c in frame.columns]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"unknown column(s): {', '.join(missing)}")
    rows = len(frame)
    single = []
    for i, col in enumerate(columns):
        report_progress(i / len(columns), f"uniqueness of {col}")
        series = frame[col]
        ratio = series.nunique(dropna=True) / rows if rows else 0.0
        single.append(
            {
                "columns": [col],
                "uniqueness": round(ratio, 4),
                "nulls": int(series.isna().sum()),
                "is_key": bool(ratio >= p.uniqueness_threshold and not series.isna().any()),
            }
        )
    composite = []
    if not any(k["is_key"] for k in single):
        for a, b in combinations(columns[:10], 2):
            ratio = len(frame[[a, b]].drop_duplicates()) / rows if rows else 0.0
            if ratio >= p.uniqueness_threshold and not frame[[a, b]].isna().any().any():
                composite.append({"columns": [a, b], "uniqueness": round(ratio, 4), "is_key": True})
    keys = [k["columns"] for k in single + composite if k["is_key"]]
    ctx.state["keys"] = keys
    return {"primary_key": keys[0] if keys else None, "candidates": single, "composite": composite}


def semantic_type(name: str, series: pd.Series) -> tuple[str, float]:
    """A column's meaning from its values (e-mail, phone, date, number) and its name."""
    head = series.iloc[:2_000].dropna()  # the first 500 values present, without a copy
    present = head if len(head) >= 500 or len(series) <= 2_000 else series.dropna()
    values = present.head(500).astype(str)
    if len(values):
        kinds = values.map(pii_kind).value_counts(normalize=True)
        if not kinds.empty and kinds.iloc[0] >= 0.8:
            return str(kinds.index[0]).replace("card_number", "card"), round(
                float(kinds.iloc[0]), 4
            )
    for kind, pattern in NAME_HINTS.items():
        if pattern.search(name):
            return kind, 0.7
    if ptypes.is_numeric_dtype(series):
        return "number", 0.6
    if (
        len(values)
        and pd.to_datetime(values, errors="coerce", format="mixed").notna().mean() >= 0.8
    ):
        return "date", 0.8
    return "text", 0.5


def semantic_mapper(ctx: Context) -> AgentResult:
    p = ctx.params.semantic_mapper
    frame = ctx.primary
    columns = p.source_columns or [str(c) for c in frame.columns]
    mapping = {}
    for col in columns:
        kind, confidence = semantic_type(col, frame[col])
        target = (p.target_schema or {}).get(col)
        mapping[col] = {
            "semantic_type": kind,
            "confidence": confidence,
            **({"target": target} if target else {}),
        }
    ctx.state["semantics"] = mapping
    return {"mapping": mapping}


_CHECKS: dict[str, Callable[[pd.Series], pd.Series]] = {
    "number": lambda s: pd.to_numeric(s, errors="coerce").notna(),
    "integer": lambda s: pd.to_numeric(s, errors="coerce").map(
        lambda v: pd.notna(v) and float(v).is_integer()
    ),
    "date": lambda s: pd.to_datetime(s, errors="coerce", format="mixed").notna(),
    "email": lambda s: s.astype(str).str.strip().map(lambda v: bool(EMAIL.match(v))),
    "string": lambda s: s.notna(),
}


#: Values of a long text column read as numbers before the whole column is: when fewer than
#: half of a seeded sample of 2,000 do, 80 % of the column cannot (Hoeffding's bound puts the
#: chance below 1e-150); parsing a million values takes seconds, the sample milliseconds.
NUMBER_SAMPLE = 2_000


def _mostly_numbers(series: pd.Series) -> bool:
    """Whether at least 80 % of the column's cells (gaps included) read as numbers."""
    if not ptypes.is_numeric_dtype(series) and len(series) > 10 * NUMBER_SAMPLE:
        sample = series.sample(NUMBER_SAMPLE, random_state=0)
        if pd.to_numeric(sample, errors="coerce").notna().mean() < 0.5:
            return False
    return bool(pd.to_numeric(series, errors="coerce").notna().mean() >= 0.8)


def contract_enforcer(ctx: Context) -> AgentResult:
    """Check each column against its contract: the declared target schema, else the type
    most of its values have (so stray values of another type are violations)."""
    frame = ctx.primary
    declared = ctx.params.semantic_mapper.target_schema or {}
    results = {}
    bad_rows = pd.Series(False, index=frame.index)
    for i, col in enumerate(frame.columns):
        report_progress(i / frame.shape[1], f"checking {col}")
        expected = declared.get(str(col))
        if expected is None and ptypes.is_datetime64_any_dtype(frame[col]):
            expected = "date"
        elif expected is None:
            expected = "number" if _mostly_numbers(frame[col]) else "string"
        check = _CHECKS.get(expected, _CHECKS["string"])
        present = frame[col].notna()
        ok = check(frame[col]).fillna(False).astype(bool)
        violations = present & ~ok
        bad_rows |= violations
        results[str(col)] = {
            "expected": expected,
            "violations": int(violations.sum()),
            "nulls": int((~present).sum()),
        }
    return {
        "columns": results,
        "rows_violating": int(bad_rows.sum()),
        "compliant": not bool(bad_rows.any()),
    }


def _match_key(frame: pd.DataFrame, params: MasterParameters, state: State) -> str:
    if params.key_identifier.candidate_columns:
        return params.key_identifier.candidate_columns[0]
    semantics = state.get("semantics", {})
    for col, info in semantics.items():
        if info["semantic_type"] == "email":
            return col
    keys = state.get("keys") or []
    if keys:
        return keys[0][0]
    return str(frame.columns[0])


_RECENCY = re.compile(r"updat|modif|chang|last|recent|as_of|timestamp", re.I)


def _recency_column(state: State) -> str | None:
    """The date column that says when a row last changed (`updated_at` …), else the last
    date column; None when the table has no dates."""
    dates = [c for c, i in state.get("semantics", {}).items() if i["semantic_type"] == "date"]
    recency = [c for c in dates if _RECENCY.search(c)]
    return (recency or dates[-1:] or [None])[0]


def golden_record_builder(ctx: Context) -> AgentResult:
    """One golden record per match key (rows grouped by it, each column's value chosen by its
    survivorship rule) and one per row without the key; every conflict, by column."""
    frame = ctx.primary
    state = ctx.state
    key = _match_key(frame, ctx.params, state)
    rules = ctx.params.golden_record_builder.survivorship_rules or {}
    order_col = _recency_column(state)
    order = (
        pd.to_datetime(frame[order_col], errors="coerce", format="mixed")
        if order_col
        else pd.Series(range(len(frame)), index=frame.index)  # later rows are newer
    )
    # Without a rule, the newest value survives when the table says when rows changed.
    default_rule = "most_recent" if order_col else "most_frequent"
    normal = frame[key].astype(str).str.strip().str.lower().where(frame[key].notna())
    report_progress(0.05, "grouping rows by their key")
    groups = survivorship.group(normal, survivorship.newness(order))
    report_progress(0.1, "grouping rows by their key")
    recent_first = np.lexsort((~groups.newness, groups.codes))  # stable: file order on a tie
    report_progress(0.15, "ordering rows by date")
    # A row without the match key cannot be matched to any other: it is its own golden
    # record (and stewardship-flagger lists it), never dropped.
    alone = np.flatnonzero(normal.isna().to_numpy())
    found: list[tuple[int, int, str, list[dict[str, Any]]]] = []
    columns: dict[str, Any] = {}
    for i, col in enumerate(frame.columns):
        rule = rules.get(str(col), default_rule)
        series = frame[col]
        survivors = survivorship.survive(series, groups, rule, recent_first)
        rows = np.concatenate((survivors.winners, alone))
        columns[str(col)] = take(series.array, rows, allow_fill=True)
        listed = survivorship.conflicts(series, groups, survivors, rule)
        if listed:
            found.append((int(np.argmax(survivors.conflict)), i, str(col), listed))
        report_progress(0.15 + 0.8 * (i + 1) / frame.shape[1], f"golden values of {col}")
    # Columns in the order their first conflict comes (records in key order, then columns).
    conflicts = {name: listed for _, _, name, listed in sorted(found, key=lambda f: f[:2])}
    sizes = np.concatenate((groups.sizes(), np.ones(len(alone), dtype=np.int64)))
    golden = pd.DataFrame({**columns, "_source_rows": sizes})
    for col in frame.columns:  # whole numbers stay whole (no `5.0` for a gap elsewhere)
        if ptypes.is_integer_dtype(frame[col]) and not ptypes.is_bool_dtype(frame[col]):
            golden[str(col)] = pd.to_numeric(golden[str(col)]).astype("Int64")
    merged = int(golden["_source_rows"].sum() - len(golden))
    state.update(golden=golden, conflicts=conflicts, match_key=key, unmatched=len(alone))
    return {
        "match_key": key,
        "recency_column": order_col,
        "default_rule": default_rule,
        "input_rows": len(frame),
        "rows_in": len(frame),
        "golden_records": len(golden),
        "merged_rows": merged,
        "rows_without_key": len(alone),
        "rows_balance": f"{len(frame):,} rows in = {len(golden):,} golden records"
        f" + {merged:,} rows merged into them",
    }


def survivorship_resolver(ctx: Context) -> AgentResult:
    """Every conflict (a golden record whose rows disagree on a column) and how it was
    decided: in `conflicts`, one entry per record and column (the first CONFLICTS_LISTED)."""
    conflicts = ctx.state.get("conflicts", {})
    every = ({"column": column, **item} for column, items in conflicts.items() for item in items)
    listed = list(islice(every, CONFLICTS_LISTED))
    total = sum(len(v) for v in conflicts.values())
    return {
        "conflicts_by_column": {c: len(v) for c, v in conflicts.items()},
        "total_conflicts": total,
        "conflicts": listed,
        "conflicts_listed": len(listed),
        "examples": {c: v[:5] for c, v in conflicts.items()},
    }


def _row_hashes(frame: pd.DataFrame) -> pd.Series:
    """`memo.row_hashes` (pandas' `hash_pandas_object(frame, index=False)`, which the report
    reads too), worked out column by column with pandas' own way of combining them, so that
    the agent can say how far it has got (a million rows: about a second)."""
    if frame.shape[1] == 0:
        return row_hashes(frame)

    def work() -> pd.Series:
        count = frame.shape[1]
        out = np.full(len(frame), 0x345678, dtype=np.uint64)
        mult = np.uint64(1000003)
        for i, (_, series) in enumerate(frame.items()):
            out ^= pd.util.hash_pandas_object(series, index=False).to_numpy(dtype=np.uint64)
            out *= mult
            mult += np.uint64(82520 + 2 * (count - i))
            report_progress((i + 1) / count, f"hashing rows: {series.name}")
        out += np.uint64(97531)
        return pd.Series(out, index=frame.index, dtype="uint64")

    return once(frame, "row_hashes", work)


def lineage_tracer(ctx: Context) -> AgentResult:
    frame = ctx.primary
    digest = hashlib.sha256(_row_hashes(frame).to_numpy().tobytes())  # the report's too
    state = ctx.state
    return {
        "source": {
            "rows": len(frame),
            "columns": [str(c) for c in frame.columns],
            "fingerprint": digest.hexdigest(),
        },
        "steps": [
            "read primary file",
            "identify keys",
            "enforce contracts",
            "map semantics",
            "match on key",
            "apply survivorship",
            "write golden records",
        ],
        "golden_fields_from": {str(c): [str(c)] for c in frame.columns},
        "match_key": state.get("match_key"),
    }


def master_writeback(ctx: Context) -> AgentResult:
    golden = ctx.state.get("golden")
    if golden is None:
        golden_record_builder(ctx)
        golden = ctx.state["golden"]
    ctx.write_csv("golden_records.csv", golden, "golden")
    return {"rows_written": len(golden), "files": ["golden_records.csv"]}


def stewardship_flagger(ctx: Context) -> AgentResult:
    state = ctx.state
    flags = []
    for col, items in state.get("conflicts", {}).items():
        for item in items:
            if len(item["values"]) > 2 or item["rule"] == "most_frequent":
                flags.append(
                    {
                        "key": item["key"],
                        "column": col,
                        "values": item["values"],
                        "reason": "conflicting values decided by rule",
                    }
                )
    if state.get("unmatched"):
        flags.append(
            {
                "key": None,
                "column": state.get("match_key"),
                "reason": f"{state['unmatched']} row(s) have no match key",
            }
        )
    return {"flags": flags[:200], "total": len(flags), "needs_review": bool(flags)}


AGENTS = (
    Agent("key-identifier", "Identify keys", 10, key_identifier),
    Agent("contract-enforcer", "Enforce contracts", 10, contract_enforcer),
    Agent("semantic-mapper", "Map semantics", 10, semantic_mapper),
    Agent("lineage-tracer", "Trace lineage", 5, lineage_tracer),
    Agent("golden-record-builder", "Build golden records", 15, golden_record_builder),
    Agent("survivorship-resolver", "Resolve survivorship", 10, survivorship_resolver),
    Agent("master-writeback", "Write master data", 5, master_writeback),
    Agent("stewardship-flagger", "Flag for stewardship", 5, stewardship_flagger),
)
