"""What a value looks like: e-mail, phone or (Luhn-valid) card number, a date, a number; and
whether a column identifies rather than measures. Shared by every tool's agents."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

EMAIL = re.compile(r"^[\w.+-]+@[\w-]+(\.[\w-]+)+$")
PHONE = re.compile(r"^\+?[\d\s().-]{7,20}$")
CARD = re.compile(r"^(?:\d[ -]?){13,19}$")
DATE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}([ T].*)?$|^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$")
PII_KINDS = ("email", "phone", "card_number")

#: Name endings of columns that identify rather than measure (keys, codes, numbers).
_ID_LAST = {"id", "uuid", "guid", "key", "code", "number", "no", "nr", "sku", "ean", "isbn", "zip"}
#: Name parts of columns that hold contact or payment details.
_ID_ANY = {
    "id",
    "uuid",
    "guid",
    "phone",
    "mobile",
    "tel",
    "telephone",
    "fax",
    "card",
    "email",
    "mail",
    "iban",
    "ssn",
    "postcode",
}
_TOKENS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def is_identifying(name: object) -> bool:
    """Whether a column identifies (an id, a code, a phone or card number, an e-mail) rather
    than measures: such columns are never averaged into gaps, fenced as outliers or
    compared as distributions, whatever their type."""
    tokens = [t.lower() for t in _TOKENS.findall(str(name))]
    return bool(tokens) and (tokens[-1] in _ID_LAST or any(t in _ID_ANY for t in tokens))


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n * 2 > 9 else n * 2
        total += n
    return total % 10 == 0


def pii_kind(value: str) -> str | None:
    text = value.strip()
    if EMAIL.match(text):
        return "email"
    digits = re.sub(r"\D", "", text)
    if CARD.match(text) and 13 <= len(digits) <= 19 and luhn_ok(digits):
        return "card_number"
    if DATE.match(text):
        return None
    if PHONE.match(text) and 7 <= len(digits) <= 15 and any(c in text for c in "+-() "):
        return "phone"
    return None


def pii_share(values: Sequence[str]) -> tuple[str | None, float]:
    """The PII kind most of these values have, and the share of values that have it."""
    if not values:
        return None, 0.0
    counts: dict[str, int] = {}
    for value in values:
        kind = pii_kind(value)
        if kind is not None:
            counts[kind] = counts.get(kind, 0) + 1
    if not counts:
        return None, 0.0
    kind = max(counts, key=lambda k: counts[k])
    return kind, counts[kind] / len(values)


def date_share(values: Sequence[str]) -> float:
    """Share of these text values written as dates (2024-01-31, 31/01/2024, 2024-01-31 10:00)."""
    if not values:
        return 0.0
    return sum(1 for v in values if DATE.match(v.strip())) / len(values)


def numeric_share(values: Sequence[str]) -> float:
    """Share of these text values that read as numbers."""
    if not values:
        return 0.0
    return float(pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").notna().mean())
