"""The password policy (NIST SP 800-63B, 5.1.1.2): the one place that decides what is accepted.

* at least `MIN_LENGTH` characters (Unicode code points) and at most `MAX_LENGTH`;
* not in the common-passwords list that the maintained `zxcvbn` package ships (30,000 entries
  from real breaches), compared case-insensitively;
* not one character repeated, and not only white space.

No composition rules (digits, symbols…) and no expiry, as the guideline advises. The register
form shows `password_rules()` as the user types; the server refuses with `check_password()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from spyglass.errors import DomainError

MIN_LENGTH = 12
MAX_LENGTH = 1024


@dataclass(frozen=True)
class PasswordRule:
    """One rule as the form shows it: its words, and whether the password keeps it."""

    key: str
    text: str
    met: bool


@lru_cache(maxsize=1)
def _common() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(word.lower() for word in FREQUENCY_LISTS["passwords"])


def is_common(password: str) -> bool:
    return password.lower() in _common()


def password_rules(password: str) -> list[PasswordRule]:
    """Every rule with whether `password` keeps it (an empty password keeps none)."""
    size = len(password)
    too_long = size > MAX_LENGTH
    return [
        PasswordRule(
            "length",
            f"At most {MAX_LENGTH} characters" if too_long else f"At least {MIN_LENGTH} characters",
            MIN_LENGTH <= size <= MAX_LENGTH,
        ),
        PasswordRule(
            "common", "Not a commonly used password", bool(password) and not is_common(password)
        ),
        PasswordRule(
            "varied",
            "Not one character repeated, nor only spaces",
            bool(password.strip()) and len(set(password)) > 1,
        ),
    ]


_PROBLEMS = {
    "length": f"Use a password of at least {MIN_LENGTH} characters",
    "common": "That password is too common: choose one that is hard to guess",
    "varied": "Choose a password that is not one character repeated or only spaces",
}


def password_problem(password: object) -> str | None:
    """What is wrong with the password, in the words the form shows, or None when it is fine."""
    if not isinstance(password, str):
        return _PROBLEMS["length"]
    if len(password) > MAX_LENGTH:
        return f"Use a password of at most {MAX_LENGTH} characters"
    for rule in password_rules(password):
        if not rule.met:
            return _PROBLEMS[rule.key]
    return None


def check_password(password: object) -> None:
    """Raise 400 `WEAK_PASSWORD` unless the password keeps every rule."""
    problem = password_problem(password)
    if problem is not None:
        raise DomainError("WEAK_PASSWORD", problem, 400)
