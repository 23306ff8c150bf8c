"""Realistic customer tables for drift-detector's tests, drawn (seeded) from one distribution,
or with a shift injected in exactly one number, one date and one categorical column.

Each table goes through CSV and `load_table`, as an upload does, so the columns have the
types a user's file would have (dates as dates, integers with gaps as Int64, text as text).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from spyglass.tools.common.frames import load_table

FIRST = [
    "Ada", "Alan", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances", "John",
    "Radia", "Tim", "Hedy", "Guido", "Katherine", "Edsger", "Sophie", "Niklaus", "Mary", "Bjarne",
]  # fmt: skip
LAST = [
    "Smith", "Jones", "Brown", "Wu", "Garcia", "Martin", "Rossi", "Müller", "Dubois", "Silva",
    "Novak", "Kim", "Singh", "Cohen", "Okafor", "Larsen", "Moreau", "Ivanova", "Tanaka", "Haddad",
]  # fmt: skip
COUNTRIES = ["Spain", "France", "Germany", "Italy", "Portugal", "Poland", "Ireland", "Greece"]
WEIGHTS = np.array([0.30, 0.22, 0.15, 0.12, 0.08, 0.06, 0.04, 0.03])
#: The injected shift: Spain and Germany swap places, Greece grows.
SHIFTED_WEIGHTS = np.array([0.12, 0.22, 0.30, 0.08, 0.08, 0.06, 0.04, 0.10])
PLANS = ["free", "pro", "team"]
START = np.datetime64("2022-01-01")
DAYS = 730

#: The columns whose distribution the shift changes, one of each kind.
SHIFTED = ["country", "amount", "signup_date"]


def customers(seed: int, rows: int = 1_000, shift: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = rng.permutation(np.arange(100_000, 100_000 + rows * 10))[:rows]
    first = rng.choice(FIRST, rows)
    last = rng.choice(LAST, rows)
    names = np.char.add(np.char.add(first, " "), last)
    emails = [f"{f.lower()}.{n}@example.com" for f, n in zip(first, ids, strict=True)]
    phones = [f"+33 6 {n % 100:02d} {n // 100 % 100:02d} {n % 97:02d} 17" for n in ids]
    mu = 4.6 if shift else 4.0
    amounts = rng.lognormal(mu, 1.0, rows).round(2)
    ages = np.clip(rng.normal(45, 12, rows).round(), 18, 90)
    offset = 180 if shift else 0
    signup = START + rng.integers(offset, DAYS + offset, rows).astype("timedelta64[D]")
    last_seen = np.datetime64("2024-01-01T00:00:00") + rng.integers(0, 90 * 86_400, rows).astype(
        "timedelta64[s]"
    )
    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "name": names,
            "email": emails,
            "phone": phones,
            "country": rng.choice(COUNTRIES, rows, p=SHIFTED_WEIGHTS if shift else WEIGHTS),
            "plan": rng.choice(PLANS, rows, p=[0.6, 0.3, 0.1]),
            "active": rng.random(rows) < 0.7,
            "amount": amounts,
            "age": ages,
            "visits": rng.poisson(3, rows),
            "score": rng.uniform(0, 100, rows).round(1),
            "signup_date": signup,
            "last_seen": last_seen,
        }
    )
    frame["country"] = frame["country"].where(rng.random(rows) >= 0.02)
    frame["age"] = frame["age"].astype("Int64").where(rng.random(rows) >= 0.04)
    frame["amount"] = frame["amount"].where(rng.random(rows) >= 0.01)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return load_table(buffer.getvalue().encode(), "customers.csv")
