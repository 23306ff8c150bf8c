"""Writes the sample files of `assets/samples/` (the New task page links them).

Deterministic (seeded): `python -m tests.data.make_samples` rewrites the same bytes.
`customers.csv` shows every tool off: missing values, outliers, exact duplicate rows,
the same customer entered twice with differing details, untidy text, e-mails,
phone and card numbers (PII). `customers_baseline.csv` is an earlier sample of the
same table whose spend and plans have since drifted. `orders.xlsx` is an Excel file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parents[2] / "assets" / "samples"
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson"]
COUNTRIES = ["France", "Germany", "Spain", "Italy", "Portugal"]
PLANS = ["free", "basic", "pro", "enterprise"]
CARDS = ["4111111111111111", "5500005555555559", "340000000000009", "6011000000000004"]


def customers(
    rng: np.random.Generator, n: int, *, spend_mean: float, plans: list[float]
) -> pd.DataFrame:
    ids = np.arange(1001, 1001 + n)
    first = rng.choice(FIRST, n)
    last = rng.choice(LAST, n)
    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "name": [f"{f} {s}" for f, s in zip(first, last, strict=True)],
            "email": [
                f"{f.lower()}.{s.lower()}{i}@example.com"
                for f, s, i in zip(first, last, ids, strict=True)
            ],
            "phone": [
                f"+33 6 {rng.integers(10, 99)} {rng.integers(10, 99)} {rng.integers(10, 99)} {rng.integers(10, 99)}"
                for _ in range(n)
            ],
            "country": rng.choice(COUNTRIES, n),
            "plan": rng.choice(PLANS, n, p=plans),
            "age": rng.normal(41, 11, n).round().clip(18, 90).astype(int),
            "monthly_spend": rng.gamma(4.0, spend_mean / 4.0, n).round(2),
            "signup_date": pd.to_datetime("2022-01-01")
            + pd.to_timedelta(rng.integers(0, 1000, n), unit="D"),
            "updated_at": pd.to_datetime("2025-06-01")
            + pd.to_timedelta(rng.integers(0, 500, n), unit="D"),
            "card_number": "",
        }
    )
    frame["signup_date"] = frame["signup_date"].dt.strftime("%Y-%m-%d")
    frame["updated_at"] = frame["updated_at"].dt.strftime("%Y-%m-%d")
    return frame


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    frame = customers(rng, 480, spend_mean=80.0, plans=[0.2, 0.4, 0.3, 0.1])
    frame["card_number"] = [CARDS[i % 4] if i % 9 == 0 else "" for i in range(len(frame))]
    # Missing values.
    frame.loc[rng.choice(len(frame), 40, replace=False), "age"] = np.nan
    frame.loc[rng.choice(len(frame), 25, replace=False), "phone"] = None
    frame.loc[rng.choice(len(frame), 12, replace=False), "email"] = None
    frame.loc[rng.choice(len(frame), 18, replace=False), "monthly_spend"] = np.nan
    # Outliers.
    frame.loc[[5, 77, 200], "age"] = [160, 3, 245]
    frame.loc[[9, 150, 300, 420], "monthly_spend"] = [25_000.0, 18_500.0, -400.0, 99_999.0]
    # Untidy text: stray spaces, capitals.
    for i in range(0, len(frame), 13):
        frame.loc[i, "country"] = f"  {str(frame.loc[i, 'country']).upper()} "
    for i in range(3, len(frame), 17):
        if isinstance(frame.loc[i, "email"], str):
            frame.loc[i, "email"] = str(frame.loc[i, "email"]).upper()
    # The same customer entered again later, with newer details.
    again = frame.iloc[[11, 42, 63, 99, 128, 250]].copy()
    again["phone"] = [
        "+33 7 11 22 33 44",
        None,
        "+33 7 55 66 77 88",
        None,
        None,
        "+33 7 00 00 00 01",
    ]
    again["plan"] = "enterprise"
    again["updated_at"] = "2026-10-01"
    # Exact duplicate rows (an import that ran twice).
    dupes = frame.iloc[[20, 21, 22, 23, 300, 301, 302, 303]]
    frame = pd.concat([frame, again, dupes], ignore_index=True)
    frame.to_csv(OUT / "customers.csv", index=False)

    rng = np.random.default_rng(11)
    base = customers(rng, 300, spend_mean=55.0, plans=[0.45, 0.35, 0.15, 0.05])
    base["card_number"] = ""
    base.to_csv(OUT / "customers_baseline.csv", index=False)

    rng = np.random.default_rng(13)
    n = 120
    orders = pd.DataFrame(
        {
            "order_id": np.arange(50001, 50001 + n),
            "customer_id": rng.integers(1001, 1481, n),
            "order_date": (
                pd.to_datetime("2026-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")
            ).strftime("%Y-%m-%d"),
            "amount": rng.gamma(3.0, 40.0, n).round(2),
            "status": rng.choice(["paid", "refunded", "pending"], n, p=[0.8, 0.1, 0.1]),
        }
    )
    orders.loc[[4, 40, 90], "amount"] = np.nan
    orders.loc[7, "amount"] = 12_000.0
    with pd.ExcelWriter(OUT / "orders.xlsx", engine="openpyxl") as writer:
        orders.to_excel(writer, index=False, sheet_name="orders")


if __name__ == "__main__":
    main()
