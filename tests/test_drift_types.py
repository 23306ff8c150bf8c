"""drift-detector by column type, on generated customer tables with known answers: two samples
of one distribution flag nothing (in at least 19 of 20 seeded trials), an injected shift in
one number, one date and one categorical column flags exactly those three."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from spyglass.tools.common import significance
from spyglass.tools.profile import quality
from spyglass.tools.profile.parameters import DriftDetectorParams
from tests.driftdata import SHIFTED, customers

TRIALS = 20
PARAMS = DriftDetectorParams()


def by_column(result: dict) -> dict[str, dict]:
    return {c["column"]: c for c in result["columns"]}


def test_each_column_is_compared_by_its_type_or_skipped_with_the_reason() -> None:
    out = quality.drift(customers(1), customers(2), PARAMS)
    cols = by_column(out)
    kinds = {name: (c["type"], c.get("test")) for name, c in cols.items()}
    assert kinds == {
        "customer_id": ("identifier", None),
        "name": ("text", None),
        "email": ("identifier", None),
        "phone": ("identifier", None),
        "country": ("categorical", "chi2"),
        "plan": ("categorical", "chi2"),
        "active": ("categorical", "chi2"),
        "amount": ("numeric", "ks"),
        "age": ("numeric", "ks"),
        "visits": ("numeric", "ks"),
        "score": ("numeric", "ks"),
        "signup_date": ("date", "ks"),
        "last_seen": ("date", "ks"),
    }
    distinct = int(customers(2)["name"].nunique())
    assert cols["name"]["skipped"] == f"free text: {distinct:,} distinct values"
    assert cols["name"]["status"] == "not_comparable" and "psi" not in cols["name"]
    assert cols["email"]["skipped"].startswith("identifier:")
    assert (out["columns_compared"], out["columns_skipped"]) == (9, 4)
    assert out["alpha_per_column"] == round(0.05 / 9, 5)
    rules = out["rules"]
    assert (rules["psi_material"], rules["ks_material"], rules["family_alpha"]) == (0.2, 0.1, 0.05)
    assert rules["categorical_max_distinct"] == 50
    for name in ("amount", "signup_date", "country"):
        c = cols[name]
        assert c["status"] == "stable" and not c["significant"], c
        assert 0 <= c["psi"] < 0.1 and c["p_value"] > 0.01, c


def test_same_distribution_flags_nothing_in_19_of_20_trials() -> None:
    flagged_trials = 0
    flags: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    for seed in range(TRIALS):
        out = quality.drift(customers(seed + 100), customers(seed), PARAMS)
        flagged_trials += bool(out["drifted_columns"])
        flags.update(out["drifted_columns"])
        types = {c["column"]: c["type"] for c in out["columns"]}
        by_type.update(types[c] for c in out["drifted_columns"])
    print(
        f"false drift: {flagged_trials} of {TRIALS} trials;"
        f" by column {dict(flags)}; by type {dict(by_type)}"
    )
    assert flagged_trials <= 1, flags


def test_an_injected_shift_is_flagged_in_exactly_those_columns() -> None:
    for seed in range(TRIALS):
        out = quality.drift(customers(seed + 100, shift=True), customers(seed), PARAMS)
        assert out["drifted_columns"] == SHIFTED, (seed, out["drifted_columns"])
        cols = by_column(out)
        assert cols["amount"]["ks"] >= 0.1 and cols["amount"]["p_value"] < 1e-6
        assert cols["signup_date"]["ks"] >= 0.2  # 180 days of a 730-day window
        assert cols["country"]["psi"] >= 0.2 and cols["country"]["significant"]


def test_a_date_column_drawn_the_same_way_is_not_compared_as_categories() -> None:
    """The false drift of issue 12: 730 distinct days in 1,000 rows, PSI by category 0.7."""
    rng = np.random.default_rng(4)
    start = pd.Timestamp("2022-01-01")
    base, cur = (
        pd.DataFrame({"d": start + pd.to_timedelta(rng.integers(0, 730, 1000), "D")})
        for _ in range(2)
    )
    c = quality.drift(cur, base, PARAMS)["columns"][0]
    assert (c["type"], c["test"], c["status"]) == ("date", "ks", "stable")
    assert c["psi"] < 0.05
    # Dates written as text (not read as dates) are compared as dates too.
    as_text = quality.drift(cur.astype(str), base.astype(str), PARAMS)["columns"][0]
    assert (as_text["type"], as_text["status"]) == ("date", "stable")
    assert as_text["ks"] == c["ks"]


def test_large_samples_do_not_flag_immaterial_changes() -> None:
    """200,000 rows make a shift of 0.02 standard deviations significant; it is not material."""
    rng = np.random.default_rng(5)
    base = pd.DataFrame({"x": rng.normal(0, 1, 200_000)})
    cur = pd.DataFrame({"x": rng.normal(0.02, 1, 200_000)})
    c = quality.drift(cur, base, PARAMS)["columns"][0]
    assert c["significant"] and not c["material"] and c["status"] == "stable", c


def test_new_categories_a_type_change_and_too_few_rows() -> None:
    tags = [f"t{i % 30}" for i in range(200)]
    base = pd.DataFrame({"plan": ["free", "pro"] * 100, "n": list(range(200)), "tag": tags})
    cur = pd.DataFrame(
        {"plan": ["free", "pro", "gold", "gold"] * 50, "n": ["x"] * 200, "tag": ["t1"] * 200}
    )
    cols = by_column(quality.drift(cur, base, PARAMS))
    assert cols["plan"]["status"] == "drifted" and cols["plan"]["psi"] > 1
    assert cols["n"]["type"] == "schema" and cols["n"]["status"] == "drifted"
    assert cols["n"]["detail"] == "the type changed: numbers in the baseline, text now"
    assert cols["tag"]["skipped"] == (
        "too few rows: 30 distinct values in 200 baseline rows (needs 10 rows per value)"
    )


def test_psi_smoothing_keeps_empty_bins_finite() -> None:
    value = significance.psi(np.array([50, 50, 0]), np.array([40, 40, 20]))
    assert np.isfinite(value) and value > 0.2
    assert significance.psi(np.array([10, 20]), np.array([10, 20])) == 0.0
