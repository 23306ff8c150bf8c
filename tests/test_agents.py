"""Each profile-my-data agent on small frames with known answers."""

from __future__ import annotations

from dataclasses import astuple
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spyglass.storage.local import LocalStorage
from spyglass.tools.clean import agents as clean
from spyglass.tools.clean.parameters import CleanParameters
from spyglass.tools.common import patterns
from spyglass.tools.common.frames import DataFileError, load_table
from spyglass.tools.common.toolkit import AgentContext
from spyglass.tools.master import agents as master
from spyglass.tools.master.parameters import MasterParameters
from spyglass.tools.profile import profiler, quality
from spyglass.tools.profile.parameters import (
    DriftDetectorParams,
    ScoreRiskParams,
    UnifiedProfilerParams,
)
from tests.badfiles import (
    not_utf8_in_a_wide_header,
    not_utf8_past_the_first_block,
    not_utf8_past_the_head,
)


def ctx(frames: dict, params: object) -> AgentContext:
    """The context an agent runs in (as the tool run makes it), on these frames."""
    return AgentContext(frames, params)


def test_profiler_counts_and_statistics() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, None, 4.0], "b": ["x", "x", "y", None]})
    out = profiler.run(frame, UnifiedProfilerParams())
    a, b = out["columns"]
    assert (a["nulls"], a["min"], a["max"], a["median"]) == (1, 1.0, 4.0, 2.0)
    assert a["mean"] == round(7 / 3, 6)
    assert (
        b["type"] == "string"
        and b["distinct"] == 2
        and b["top_values"][0] == {"value": "x", "count": 2}
    )
    assert out["total_nulls"] == 2 and out["duplicate_rows"] == 0


def test_outliers_are_found_by_tukeys_fences() -> None:
    mask = quality.outlier_mask(pd.Series([10, 11, 12, 13, 12, 11, 95]))
    assert mask.tolist() == [False] * 6 + [True]


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("ann.lee+news@example.co.uk", "email"),
        ("4111 1111 1111 1111", "card_number"),
        ("4111-1111-1111-1112", None),  # fails the Luhn check
        ("+33 1 42 68 53 00", "phone"),
        ("(555) 010-9999", "phone"),
        ("12345", None),
        ("hello", None),
    ],
)
def test_pii_patterns(value: str, kind: str | None) -> None:
    assert patterns.pii_kind(value) == kind


def test_governance_flags_pii_columns() -> None:
    frame = pd.DataFrame(
        {
            "email": ["a@x.com", "b@y.org", "c@z.net", None],
            "card": ["4111111111111111", "5500000000000004", "n/a", "n/a"],
            "city": ["Paris", "Lyon", "Nice", "Lille"],
        }
    )
    out = quality.governance(frame)
    assert out["pii_columns"] == ["email", "card"]
    assert out["compliant"] is False
    card = next(f for f in out["findings"] if f["column"] == "card")
    assert card["pii"] == "card_number" and card["share"] == 0.5


def test_risk_scores_nulls_pii_and_type_drift() -> None:
    frame = pd.DataFrame(
        {
            "clean": [1, 2, 3, 4],
            "holey": [None, None, None, 1.0],
            "emails": ["a@x.com", "b@x.com", "c@x.com", "d@x.com"],
            "mixed": ["1", "2", "three", "four"],
        }
    )
    out = quality.score_risk(frame, ScoreRiskParams(risk_threshold=0.5))
    scores = {c["column"]: c for c in out["columns"]}
    assert scores["clean"]["score"] == 0.0
    assert scores["holey"]["factors"]["nulls"] == 0.75
    assert scores["emails"]["factors"]["pii"] == 1.0
    assert scores["mixed"]["factors"]["type_drift"] == 0.5
    assert (scores["holey"]["score"], scores["emails"]["score"]) == (0.75, 1.0)
    assert set(out["high_risk_columns"]) == {"holey", "emails", "mixed"}
    lenient = quality.score_risk(frame, ScoreRiskParams(risk_threshold=0.5, weights={"pii": 0}))
    assert "emails" not in lenient["high_risk_columns"]


def test_drift_detects_a_shift_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    baseline = pd.DataFrame({"x": rng.normal(0, 1, 2000), "c": rng.choice(["a", "b"], 2000)})
    same = pd.DataFrame({"x": rng.normal(0, 1, 2000), "c": rng.choice(["a", "b"], 2000)})
    shifted = pd.DataFrame({"x": rng.normal(2, 1, 2000), "c": rng.choice(["a", "b", "z"], 2000)})
    stable = quality.drift(same, baseline, DriftDetectorParams())
    assert stable["drifted_columns"] == []
    moved = quality.drift(shifted, baseline, DriftDetectorParams())
    assert moved["drifted_columns"] == ["x", "c"]
    x = moved["columns"][0]
    assert x["ks"] > 0.6 and x["psi"] > 1


def test_drift_column_mapping_and_missing_columns() -> None:
    base = pd.DataFrame({"amount_eur": [1.0, 2.0, 3.0]})
    cur = pd.DataFrame({"amount": [1.0, 2.0, 3.0], "new": [1, 2, 3]})
    out = quality.drift(
        cur, base, DriftDetectorParams(baseline_column_mapping={"amount": "amount_eur"})
    )
    statuses = {c["column"]: c["status"] for c in out["columns"]}
    assert statuses == {"amount": "stable", "new": "missing_in_baseline"}


def test_readiness_grades() -> None:
    perfect = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    assert quality.readiness(perfect)["grade"] == "A"
    assert quality.readiness(perfect)["score"] == 100.0
    poor = pd.DataFrame({"a": [None, None, 1.0, 1.0], "b": [None, "1", "x", "x"]})
    out = quality.readiness(poor)
    assert out["ready"] is False and out["dimensions"]["completeness"] == 0.625


def test_test_coverage_suggests_passing_tests() -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "status": ["a", "b", "a"], "note": [None, None, None]})
    out = quality.coverage_of_tests(frame)
    tests = {c["column"]: c["passing_tests"] for c in out["columns"]}
    assert tests["id"] == ["not_null", "unique", "accepted_values", "range"]
    assert tests["status"] == ["not_null", "accepted_values"]
    assert tests["note"] == []
    assert out["coverage"] == round(2 / 3, 4)


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"", "a.csv", "is empty"),
        (b"a,b\n", "a.csv", "no data rows"),
        (not_utf8_past_the_head(), "a.csv", "not UTF-8 text; save it"),
        (not_utf8_past_the_first_block(), "a.csv", "not UTF-8 text; save it"),
        (not_utf8_in_a_wide_header(), "a.csv", "not UTF-8 text; save it"),
        (b" \n\t\n", "a.csv", "is empty"),
        (b"a,b\n\x81,2\n", "a.csv", "nor Windows-1252"),
        ("a,b\n1,2\n".encode("utf-16"), "a.csv", "UTF-16"),
        (b"\x00\x01garbage", "a.xlsx", "not a readable table"),
        (b"a,b\n1,2\n", "a.txt", "not a CSV or Excel"),
    ],
)
def test_bad_files_have_clear_messages(
    data: bytes, name: str, message: str, tmp_path: Path
) -> None:
    """Read as bytes, and as the tools read a stored file (memory-mapped)."""
    with pytest.raises(DataFileError, match=message):
        load_table(data, name)
    storage = LocalStorage(tmp_path, "secret", 1 << 30)
    storage.write("in/" + name, data, "text/csv")
    with pytest.raises(DataFileError, match=message):
        load_table(storage.read_whole("in/" + name), name)


def test_a_stored_file_is_read_in_place_with_the_same_answer(tmp_path: Path) -> None:
    """A local file is memory-mapped, not copied into the process, and reads as its bytes do
    (Windows-1252 transcoded, accents kept, every row)."""
    import mmap

    storage = LocalStorage(tmp_path, "secret", 1 << 30)
    rows = "".join(f"{i},Zoë {i},{i * 0.5}\n" for i in range(50_000))
    for name, data in (
        ("u.csv", ("id,name,score\n" + rows).encode()),
        ("w.csv", ("id,name,score\n" + rows).encode("cp1252")),
    ):
        storage.write("in/" + name, data, "text/csv")
        mapped = storage.read_whole("in/" + name)
        assert isinstance(mapped, mmap.mmap)
        frame = load_table(mapped, name)
        pd.testing.assert_frame_equal(frame, load_table(data, name))
        assert len(frame) == 50_000 and frame["name"].iloc[-1] == "Zoë 49999"


# -- clean-my-data ----------------------------------------------------------------
def _params(**kwargs: object) -> CleanParameters:
    return CleanParameters.model_validate(kwargs)


def test_null_handler_strategies() -> None:
    frame = pd.DataFrame({"a": [1.0, None, 3.0, 10.0], "b": ["x", None, "x", "y"]})
    frames = {"primary": frame}
    out = clean.null_handler(ctx(frames, _params(**{"null-handler": {"strategy": "fill_median"}})))
    assert out["filled"] == {"a": 1, "b": 1} and out["nulls_after"] == 0
    assert frames["working"]["a"].tolist() == [1.0, 3.0, 3.0, 10.0]
    assert frames["working"]["b"].tolist() == ["x", "x", "x", "y"]
    # By default gaps stay gaps; `drop` sets the rows aside with a reason, never deletes them.
    frames = {"primary": frame}
    out = clean.null_handler(ctx(frames, _params()))
    assert out["gaps"] == {"a": 1, "b": 1} and frames["working"].equals(frame)
    frames = {"primary": frame}
    out = clean.null_handler(
        ctx(frames, _params(**{"null-handler": {"strategy": "drop", "columns": ["a"]}}))
    )
    assert out["rows_quarantined"] == 1 and len(frames["working"]) == 3
    assert frames["quarantine"][clean.REASON].tolist() == ["a is missing"]
    with pytest.raises(ValueError, match="unknown column"):
        wrong = _params(**{"null-handler": {"columns": ["zz"]}})
        clean.null_handler(ctx({"primary": frame}, wrong))


def test_outliers_duplicates_types_and_standardization() -> None:
    frame = pd.DataFrame(
        {
            "n": ["1", "2", "2", "3", "x"],
            "v": [10.0, 11.0, 11.0, 12.0, 500.0],
            "e": [" A@B.com ", "c@d.com", "c@d.com", "e@f.com  ", "g@h.com"],
        }
    )
    frames = {"primary": frame}
    p = _params()
    assert clean.outlier_remover(ctx(frames, p))["rows_quarantined"] == 1
    assert frames["quarantine"]["v"].tolist() == [500.0]
    # Row 5 ("x") is set aside with its outlier: every other value reads as a number.
    fixed = clean.type_fixer(ctx(frames, p))["converted"]
    assert fixed == {"n": {"to": "number", "unconvertible": 0}}
    assert clean.duplicate_resolver(ctx(frames, p))["rows_merged"] == 1
    std = clean.field_standardization(ctx(frames, p))
    assert std["values_changed"] == {"e": 2}
    assert frames["working"]["e"].tolist() == ["a@b.com", "c@d.com", "e@f.com"]


def test_quarantine_preview_and_writeback() -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "email": ["a@x.com", None, "c@x.com"]})
    frames = {"primary": frame}
    p = _params()
    assert clean.quarantine(ctx(frames, p))["rows_quarantined"] == 1
    assert clean.preview(ctx(frames, p))["rows_after"] == 2
    context = ctx(frames, p)
    out = clean.writeback(context)
    files = {o.filename: o.data for o in context.outputs}
    assert files["cleaned.csv"] == b"id,email\n1,a@x.com\n3,c@x.com\n"
    assert files["quarantine.csv"] == b"id,email,quarantine_reason\n2,,email is missing\n"
    assert (out["rows_in"], out["rows_out"], out["rows_quarantined"], out["rows_merged"]) == (
        3,
        2,
        1,
        0,
    )


@pytest.mark.parametrize("value", ["2024-01-01", "01/02/2024", "2024-01-01 10:00"])
def test_dates_are_not_phone_numbers(value: str) -> None:
    assert patterns.pii_kind(value) is None


# -- master-my-data ---------------------------------------------------------------
CUSTOMERS = pd.DataFrame(
    {
        "customer_id": [1, 2, 3, 4, 5],
        "email": ["Ann@x.com", "ann@x.com ", "bob@y.com", "bob@y.com", None],
        "name": ["Ann Lee", "Ann Lee", "Bob", "Robert Smith", "Zed"],
        "signup_date": ["2024-01-01", "2025-03-01", "2023-05-05", "2024-07-07", "2024-01-01"],
        "amount": [10, 12, 5, 5, 7],
    }
)


def _run_master(**params: object) -> tuple[dict, AgentContext]:
    context = ctx({"primary": CUSTOMERS.copy()}, MasterParameters.model_validate(params))
    results = {}
    for name, fn in [
        ("keys", master.key_identifier),
        ("contract", master.contract_enforcer),
        ("semantic", master.semantic_mapper),
        ("lineage", master.lineage_tracer),
        ("golden", master.golden_record_builder),
        ("survivorship", master.survivorship_resolver),
        ("writeback", master.master_writeback),
        ("stewardship", master.stewardship_flagger),
    ]:
        results[name] = fn(context)
    return results, context


def test_keys_semantics_and_contracts() -> None:
    results, _ = _run_master()
    assert results["keys"]["primary_key"] == ["customer_id"]
    mapping = results["semantic"]["mapping"]
    assert mapping["email"]["semantic_type"] == "email"
    assert mapping["signup_date"]["semantic_type"] == "date"
    assert mapping["amount"]["semantic_type"] == "amount"
    assert results["contract"]["compliant"] is True
    strict = MasterParameters.model_validate(
        {"semantic-mapper": {"target_schema": {"name": "email"}}}
    )
    out = master.contract_enforcer(ctx({"primary": CUSTOMERS}, strict))
    assert out["columns"]["name"]["violations"] == 5 and out["rows_violating"] == 5


def test_golden_records_by_survivorship_rules() -> None:
    rules = {"name": "longest", "amount": "most_recent", "customer_id": "most_recent"}
    results, context = _run_master(**{"golden-record-builder": {"survivorship_rules": rules}})
    assert results["golden"]["match_key"] == "email"
    # Ann and Bob merged from two rows each; Zed, without an e-mail, is a record of his own.
    built = results["golden"]
    assert (built["golden_records"], built["merged_rows"], built["rows_without_key"]) == (3, 2, 1)
    assert built["rows_in"] == built["golden_records"] + built["merged_rows"] == len(CUSTOMERS)
    golden = context.state["golden"].set_index("customer_id")
    assert golden["_source_rows"].sum() == len(CUSTOMERS)
    # Ann: the 2025 row is the most recent; Bob: "Robert Smith" is the longest name.
    assert golden.loc[2, "amount"] == 12 and golden.loc[4, "name"] == "Robert Smith"
    assert golden.loc[5, "name"] == "Zed" and pd.isna(golden.loc[5, "email"])
    assert results["survivorship"]["conflicts_by_column"]["name"] == 1
    (name, data, ctype, key, _kind) = astuple(context.outputs[0])
    assert name == "golden_records.csv" and data.decode().count("\n") == 4
    assert "5,,Zed,2024-01-01,7,1" in data.decode()  # written as read, integers as integers
    assert (ctype, key) == ("text/csv", "golden")
    reasons = {f["reason"] for f in results["stewardship"]["flags"]}
    assert "1 row(s) have no match key" in reasons
    assert len(results["lineage"]["source"]["fingerprint"]) == 64


def test_every_catalogue_agent_is_implemented() -> None:
    from spyglass.tools.catalogue import TOOLS

    listed = {agent.id for tool in TOOLS.values() for agent in tool.agents}
    assert len(listed) == 22
    assert all(callable(agent.run) for tool in TOOLS.values() for agent in tool.agents)


def test_integer_columns_with_gaps_stay_integral() -> None:
    frame = load_table(
        b"id,card_number,n\n1,4111111111111111,1\n2,,2\n3,5500005555555559,\n", "a.csv"
    )
    assert frame["card_number"].tolist()[0] == 4111111111111111
    assert quality.governance(frame)["pii_columns"] == ["card_number"]
    frames = {"primary": frame}
    out = clean.null_handler(ctx(frames, _params(**{"null-handler": {"strategy": "fill_mean"}})))
    # Card numbers are never invented; a mean of 1.5 turns the integers into decimals.
    assert out["filled"] == {"n": 1} and out["left_for_review"] == ["card_number"]
    assert frames["working"]["n"].tolist() == [1.0, 2.0, 1.5]
    context = ctx(frames, _params())
    clean.writeback(context)
    written = context.outputs[0].data.decode()
    assert "4111111111111111," in written and "4111111111111111.0" not in written


def test_identifying_columns_are_not_measures() -> None:
    assert patterns.is_identifying("customer_id") and patterns.is_identifying("card_number")
    assert patterns.is_identifying("customerId") and patterns.is_identifying("email")
    assert not patterns.is_identifying("num_0") and not patterns.is_identifying("number_of_items")
    frame = pd.DataFrame({"order_id": [1, 2, 3, 4, 5, 6, 900], "amount": [5, 6, 5, 6, 5, 6, 7]})
    assert clean.outlier_remover(ctx({"primary": frame}, _params()))["by_column"] == {"amount": 0}


def test_standardization_spells_case_variants_the_usual_way() -> None:
    frame = pd.DataFrame({"country": ["Spain", "Spain", " SPAIN ", "spain", "France"]})
    frames = {"primary": frame}
    out = clean.field_standardization(ctx(frames, _params()))
    assert out["values_changed"] == {"country": 2}
    assert frames["working"]["country"].tolist() == ["Spain"] * 4 + ["France"]


def test_xls_and_xlsx_files_are_read() -> None:
    import io

    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("data")
    for j, head in enumerate(["id", "city"]):
        sheet.write(0, j, head)
    for i, (n, city) in enumerate([(1, "Paris"), (2, "Lyon")], start=1):
        sheet.write(i, 0, n)
        sheet.write(i, 1, city)
    buffer = io.BytesIO()
    book.save(buffer)
    frame = load_table(buffer.getvalue(), "old.xls")
    assert frame["city"].tolist() == ["Paris", "Lyon"] and frame["id"].tolist() == [1, 2]
    xlsx = io.BytesIO()
    frame.to_excel(xlsx, index=False)
    assert load_table(xlsx.getvalue(), "new.xlsx")["city"].tolist() == ["Paris", "Lyon"]
    with pytest.raises(DataFileError, match="not a readable table"):
        load_table(b"PK\x03\x04 not really a workbook", "broken.xlsx")


def test_shared_statistics_match_pandas() -> None:
    from spyglass.tools.common import stats

    rng = np.random.default_rng(3)
    a = rng.normal(0, 1, 5000)
    a[rng.random(5000) < 0.1] = np.nan
    b = np.where(np.isnan(a), 1.0, a * 2 + rng.normal(0, 0.5, 5000))
    b[rng.random(5000) < 0.1] = np.nan
    frame = pd.DataFrame({"a": a, "b": b, "c": rng.integers(0, 5, 5000)})
    col = stats.frame_stats(frame)["a"]
    series = frame["a"]
    assert col.nulls == int(series.isna().sum()) and col.distinct == series.nunique()
    q = series.quantile([0.25, 0.5, 0.75]).tolist()
    assert np.allclose(col.quartiles, q)
    assert np.isclose(col.std, series.std()) and np.isclose(col.mean, series.mean())
    assert col.outliers == int(quality.outlier_mask(series).sum())
    assert col.histogram[0] == np.histogram(series.dropna(), bins=10)[0].tolist()
    corr = profiler.correlations(frame, [0.0, 0.0, 0.0])
    assert np.allclose(corr, frame.corr().to_numpy())
    top = stats.frame_stats(frame)["c"].top
    counts = frame["c"].value_counts()
    assert [n for _, n in top] == counts.tolist()[:5]


def test_a_unique_column_rules_out_duplicate_rows() -> None:
    from spyglass.tools.common import stats

    unique = pd.DataFrame({"id": [1, 2, 3], "v": ["x", "x", "x"]})
    assert stats.duplicate_rows(unique) == 0
    repeated = pd.DataFrame({"id": [1, 1, 2], "v": ["x", "x", "y"]})
    assert stats.duplicate_rows(repeated) == 1


def test_excel_whole_numbers_with_gaps_stay_integers() -> None:
    """As the CSV path does: an Excel column of whole numbers with empty cells is written
    back as `5`, not `5.0`; real decimals and huge values stay as they are."""
    import io

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    rows = [
        ("qty", "price", "card", "city"),
        (5, 2.5, 4111111111111111, "Paris"),
        (None, 3.0, None, "Lyon"),
        (20, None, 5500000000000004, "Nice"),
        (7, 4.25, 2**60, None),
    ]
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    frame = load_table(buffer.getvalue(), "orders.xlsx")
    assert str(frame["qty"].dtype) == "Int64"
    assert frame["qty"].tolist()[0] == 5 and frame["qty"].isna().sum() == 1
    assert frame["price"].dtype.kind == "f", "decimals are not integers"
    assert frame["card"].dtype.kind == "f", "past 2**53 a float is not an exact integer"
    lines = frame.to_csv(index=False).splitlines()
    assert [line.split(",")[0] for line in lines] == ["qty", "5", "", "20", "7"]
