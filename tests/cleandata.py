"""A realistic customer table with known faults, generated (seeded) for clean-my-data's tests.

4,960 customers with lognormal amounts, normal ages and some empty cells, 40 exact copies of
clean rows (duplicates) and 5 rows with absurd values (3 amounts of 1e9, 2 ages of −999):
everything else is ordinary data a cleaner must leave as it is.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Known:
    frame: pd.DataFrame
    #: customer_id of the rows with an absurd value, and of the rows copied as duplicates.
    absurd_ids: frozenset[int]
    duplicated_ids: frozenset[int]

    @property
    def csv(self) -> bytes:
        buffer = io.StringIO()
        self.frame.to_csv(buffer, index=False)
        return buffer.getvalue().encode()


ROWS, DUPLICATES, ABSURD_AMOUNTS, ABSURD_AGES = 5_000, 40, 3, 2


def customers(seed: int = 12) -> Known:
    rng = np.random.default_rng(seed)
    n = ROWS - DUPLICATES
    ids = np.arange(1, n + 1)
    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "name": rng.choice(["Ada Smith", "Alan Jones", "Grace Brown", "Linus Wu"], n),
            "email": [f"customer{i}@example.com" for i in ids],
            "country": rng.choice(["Spain", "France", "Germany", "Italy"], n).astype(object),
            "age": np.clip(rng.normal(45, 12, n).round(), 18, 90),
            "amount": rng.lognormal(4.0, 1.0, n).round(2),
        }
    )
    frame.loc[rng.random(n) < 0.04, "age"] = np.nan
    frame.loc[rng.random(n) < 0.05, "country"] = None
    picked = rng.choice(n, ABSURD_AMOUNTS + ABSURD_AGES + DUPLICATES, replace=False)
    bad_amount = picked[:ABSURD_AMOUNTS]
    bad_age = picked[ABSURD_AMOUNTS : ABSURD_AMOUNTS + ABSURD_AGES]
    copied = picked[ABSURD_AMOUNTS + ABSURD_AGES :]
    frame.loc[bad_amount, "amount"] = 1e9
    frame.loc[bad_age, "age"] = -999.0
    frame["age"] = frame["age"].astype("Int64")
    frame = pd.concat([frame, frame.iloc[copied]], ignore_index=True)
    frame = frame.sample(frac=1, random_state=seed).reset_index(drop=True)
    return Known(
        frame=frame,
        absurd_ids=frozenset(int(i) + 1 for i in (*bad_amount, *bad_age)),
        duplicated_ids=frozenset(int(i) + 1 for i in copied),
    )
