"""unified-profiler's alerts (ydata-profiling's, with its default thresholds) and the profile's
counts, on generated data with known answers; governance's PII on generated columns."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from spyglass.tools.catalogue import TOOLS
from spyglass.tools.common import patterns
from spyglass.tools.common.frames import load_table
from spyglass.tools.common.report import build_report, plain
from spyglass.tools.common.toolkit import run_agents
from spyglass.tools.profile import alerts, profiler, quality
from spyglass.tools.profile.parameters import UnifiedProfilerParams

ROWS = 1_000
PARAMS = UnifiedProfilerParams()


def profile(frame: pd.DataFrame) -> dict:
    return profiler.run(frame, PARAMS)


def found(result: dict) -> dict[tuple[str, str | None], dict]:
    return {(a["type"], a["column"]): a for a in result["alerts"]}


def faulty() -> pd.DataFrame:
    """One column per alert; each raises that alert and no other."""
    rng = np.random.default_rng(7)
    x = rng.normal(10, 2, ROWS).round(1)
    zeros = rng.normal(50, 10, ROWS)
    zeros[:100] = 0.0
    spike = np.ones(ROWS)
    spike[0] = 1e6
    gappy = rng.normal(0, 1, ROWS)
    gappy[rng.choice(ROWS, 50, replace=False)] = np.nan
    ratio = rng.normal(5, 1, ROWS)
    ratio[rng.choice(ROWS, 20, replace=False)] = np.inf
    dates = [f"2024-{m}-{d}" for m in range(1, 13) for d in (1, 15)]
    return pd.DataFrame(
        {
            "const": ["x"] * ROWS,
            "zeros": zeros,
            "x": x,
            "y": (3 * x + rng.normal(0, 0.05, ROWS)).round(1),
            "city": [f"city {i}" for i in rng.integers(0, 60, ROWS)],
            "spike": spike,
            "flag": rng.random(ROWS) < 0.95,
            "gappy": gappy,
            "ratio": ratio,
            "serial": rng.normal(0, 1, ROWS),
            "step": np.arange(ROWS) % 100 + 1,
            "code": rng.choice(["ABC", "XYZ", "DEF"], ROWS, p=[0.5, 0.3, 0.2]),
            "when": rng.choice(dates, ROWS),
        }
    )


EXPECTED = {
    ("constant", "const"): 1,
    ("zeros", "zeros"): 0.1,
    ("high_correlation", "x"): None,
    ("high_correlation", "y"): None,
    ("high_cardinality", "city"): 60,
    ("skewed", "spike"): None,
    ("imbalance", "flag"): None,
    ("missing", "gappy"): 0.05,
    ("infinite", "ratio"): 0.02,
    ("unique", "serial"): 1,
    ("uniform", "step"): None,
    ("constant_length", "code"): 0,
    ("date_typed_text", "when"): 1,
}


def test_each_alert_on_the_column_made_for_it_and_nowhere_else() -> None:
    out = profile(faulty())
    got = found(out)
    assert set(got) == set(EXPECTED), sorted(set(got) ^ set(EXPECTED))
    for key, value in EXPECTED.items():
        if value is not None:
            assert got[key]["value"] == value, got[key]
    rules = alerts.ALERT_RULES
    for alert in out["alerts"]:
        rule = rules[alert["type"]]
        assert alert["threshold"] == rule.threshold and alert["rule"] == rule.text()
        assert rule.holds(alert["value"]) and alert["detail"]
    assert got[("skewed", "spike")]["value"] > 20
    assert got[("imbalance", "flag")]["value"] > 0.5
    assert got[("uniform", "step")]["value"] > 0.999
    assert got[("high_correlation", "x")]["with"] == ["y"]
    assert got[("high_correlation", "x")]["value"] > 0.99
    assert out["alerts_by_type"]["high_correlation"] == 2


def test_table_alerts_duplicates_and_empty() -> None:
    rng = np.random.default_rng(8)
    frame = pd.DataFrame({"a": rng.integers(0, 1000, 500), "b": rng.normal(0, 1, 500)})
    frame = pd.concat([frame, frame.iloc[:12]], ignore_index=True)
    got = found(profile(frame))
    assert got[("duplicates", None)]["value"] == 12
    assert got[("duplicates", None)]["detail"] == "12 rows repeat an earlier row (2.3%)"
    empty = profile(pd.DataFrame({"a": pd.Series([], dtype="float64")}))
    assert [a["type"] for a in empty["alerts"]] == ["empty"]


def clean() -> pd.DataFrame:
    rng = np.random.default_rng(9)
    n = 2_000
    countries = ["Spain", "France", "Germany", "Italy"]
    days = pd.to_timedelta(rng.integers(0, 365, n), "D")
    return pd.DataFrame(
        {
            "amount": rng.lognormal(4, 0.5, n).round(2),
            "age": np.clip(rng.normal(45, 12, n).round(), 18, 90).astype(int),
            "score": rng.normal(70, 10, n).round(1),
            "country": rng.choice(countries, n, p=[0.4, 0.3, 0.2, 0.1]),
            "plan": rng.choice(["free", "pro", "team"], n, p=[0.5, 0.3, 0.2]),
            "active": rng.random(n) < 0.7,
            "signup": pd.Timestamp("2023-01-01") + days,
        }
    )


def test_no_alert_on_clean_data() -> None:
    out = profile(clean())
    assert out["alerts"] == [] and out["alerts_by_type"] == {}
    # Through a CSV, as an upload: the same (dates are read as dates, not date-typed text).
    buffer = io.StringIO()
    clean().to_csv(buffer, index=False)
    assert profile(load_table(buffer.getvalue().encode(), "clean.csv"))["alerts"] == []


def test_the_rules_table_is_in_the_result_and_the_report() -> None:
    out = profile(faulty())
    table = {r["type"]: r for r in out["alert_rules"]}
    assert set(table) == {
        "constant", "zeros", "high_correlation", "high_cardinality", "duplicates", "skewed",
        "imbalance", "missing", "infinite", "unique", "uniform", "empty", "constant_length",
        "date_typed_text",
    }  # fmt: skip
    assert table["missing"]["rule"] == "share of values missing > 0.01"
    assert table["skewed"]["threshold"] == 20 and table["high_cardinality"]["threshold"] == 50
    assert table["uniform"]["threshold"] == 0.999 and table["high_correlation"]["threshold"] == 0.9
    tool = TOOLS["profile-my-data"]
    report = plain(
        build_report(tool, run_agents(tool, ["unified-profiler"], {"primary": faulty()}))
    )
    assert report["executiveSummary"]["alerts"]["constant"] == 1
    assert report["agentResults"]["unified-profiler"]["alert_rules"] == plain(out["alert_rules"])


def test_exact_null_duplicate_and_outlier_counts() -> None:
    rng = np.random.default_rng(10)
    n = 2_000
    value = rng.integers(40, 61, n).astype("float64")  # quartiles 45 and 55: fences 30 and 70
    far = rng.choice(n, 10, replace=False)
    value[far[:7]], value[far[7:]] = 1_000.0, -500.0
    gap = rng.normal(0, 1, n)
    gap[rng.choice(n, 37, replace=False)] = np.nan
    noise = rng.normal(0, 1, n)  # no two original rows alike
    frame = pd.DataFrame(
        {"value": value, "gap": gap, "noise": noise, "label": rng.choice(["a", "b"], n)}
    )
    frame = pd.concat([frame, frame.iloc[100:125]], ignore_index=True)  # 25 exact copies
    out = profile(frame)
    cols = {c["name"]: c for c in out["columns"]}
    q1, q3 = frame["value"].quantile([0.25, 0.75])
    fences = (q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1))
    assert fences == (30.0, 70.0)
    copied_far = int(np.isin(np.arange(100, 125), far).sum())
    assert cols["value"]["outliers"] == 10 + copied_far
    copied_nan = int(np.isnan(gap[100:125]).sum())
    assert cols["gap"]["nulls"] == 37 + copied_nan
    assert out["total_nulls"] == 37 + copied_nan
    assert out["duplicate_rows"] == 25


def luhn(body: str) -> str:
    """`body` with its Luhn check digit appended."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        n = int(ch)
        if i % 2 == 0:
            n = n * 2 - 9 if n * 2 > 9 else n * 2
        total += n
    return body + str((10 - total % 10) % 10)


def test_pii_in_email_phone_and_card_columns_and_not_in_dates() -> None:
    rng = np.random.default_rng(11)
    n = 500
    cards = [luhn(f"5{rng.integers(10**13, 10**14 - 1)}") for _ in range(n)]
    months, days = rng.integers(1, 13, n), rng.integers(1, 29, n)
    phones = rng.integers([100, 10**5], [999, 10**6], (n, 2))
    frame = pd.DataFrame(
        {
            "contact": [f"user{i}@example.org" for i in range(n)],
            "mobile": [f"+44 7{a} {b}" for a, b in phones],
            "card": [luhn(f"4{rng.integers(10**13, 10**14 - 1)}") for _ in range(n)],
            "card_spaced": [" ".join(c[i : i + 4] for i in range(0, 16, 4)) for c in cards],
            "when": [f"2024-{m:02d}-{d:02d}" for m, d in zip(months, days, strict=True)],
            "day": [f"{d:02d}/{m:02d}/2024" for m, d in zip(months, days, strict=True)],
            "amount": rng.lognormal(4, 1, n).round(2),
        }
    )
    assert all(patterns.luhn_ok(c) for c in frame["card"])
    out = quality.governance(frame)
    assert out["pii_columns"] == ["contact", "mobile", "card", "card_spaced"]
    kinds = {f["column"]: (f["pii"], f["share"]) for f in out["findings"]}
    assert kinds == {
        "contact": ("email", 1.0),
        "mobile": ("phone", 1.0),
        "card": ("card_number", 1.0),
        "card_spaced": ("card_number", 1.0),
    }
    # Card numbers read from a CSV as integers are found too; the dates never are.
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    loaded = load_table(buffer.getvalue().encode(), "people.csv")
    assert str(loaded["card"].dtype) == "int64" and str(loaded["when"].dtype).startswith("datetime")
    assert quality.governance(loaded)["pii_columns"] == ["contact", "mobile", "card", "card_spaced"]


@pytest.mark.parametrize("kind", sorted(alerts.ALERT_RULES))
def test_every_rule_reads_as_a_sentence(kind: str) -> None:
    rule = alerts.ALERT_RULES[kind]
    assert rule.text().startswith(rule.figure) and rule.op in (">", ">=", "==")
