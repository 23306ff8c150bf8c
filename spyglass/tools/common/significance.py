"""The few statistical tests the profile agents need, in plain numpy and `math`.

Two-sample Kolmogorov–Smirnov (statistic and asymptotic p-value), the χ² survival
function (for the χ² test of homogeneity and the "uniform" alert), the population
stability index with a smoothing constant for empty bins, and the class-imbalance
score. No scipy: these are the textbook formulas (Numerical Recipes §6.2, §14.3).
"""

from __future__ import annotations

import math

import numpy as np

#: Added to every bin's count before shares are taken for the PSI, so an empty bin
#: (a category absent from one side) gives a large but finite term, not log(0).
PSI_SMOOTHING = 0.5


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """The largest gap between the empirical CDFs of two sorted samples.

    One merge instead of two binary searches per value: the values of both in order (a
    stable sort of two sorted runs is a merge), each side's count so far, and the CDFs
    compared at the last of each run of equal values (where `searchsorted(..., "right")`
    would count them), so the figure is the same, five times sooner."""
    grid = np.concatenate([a, b])
    order = np.argsort(grid, kind="stable")
    ordered = grid[order]
    count_a = np.cumsum(order < len(a))
    count_b = np.arange(1, len(ordered) + 1) - count_a
    last = np.empty(len(ordered), dtype=bool)
    last[:-1] = ordered[1:] != ordered[:-1]
    last[-1] = True
    return float(np.max(np.abs(count_a[last] / len(a) - count_b[last] / len(b))))


def _kolmogorov_q(lam: float) -> float:
    """P(K > λ) for the Kolmogorov distribution: 2 Σ (−1)^(j−1) exp(−2 j² λ²)."""
    if lam < 0.2:
        return 1.0
    total, sign = 0.0, 1.0
    for j in range(1, 101):
        term = sign * math.exp(-2.0 * j * j * lam * lam)
        total += term
        if abs(term) < 1e-12 * max(total, 1e-300):
            break
        sign = -sign
    return min(1.0, max(0.0, 2.0 * total))


def ks_pvalue(d: float, n: int, m: int) -> float:
    """Asymptotic p-value of a two-sample KS statistic `d` on samples of sizes n and m
    (Stephens' small-sample correction). Conservative for discrete data (ties)."""
    if n == 0 or m == 0:
        return 1.0
    en = math.sqrt(n * m / (n + m))
    return _kolmogorov_q((en + 0.12 + 0.11 / en) * d)


def _gamma_series(a: float, x: float) -> float:
    """Regularised lower incomplete gamma P(a, x) by its series (x < a + 1)."""
    term = total = 1.0 / a
    ap = a
    for _ in range(10_000):
        ap += 1
        term *= x / ap
        total += term
        if abs(term) < abs(total) * 1e-15:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_fraction(a: float, x: float) -> float:
    """Regularised upper incomplete gamma Q(a, x) by Lentz's continued fraction (x ≥ a + 1)."""
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def chi2_sf(x: float, df: int) -> float:
    """P(χ²_df > x): the p-value of a χ² statistic."""
    if df <= 0:
        return 1.0
    if x <= 0:
        return 1.0
    a, half = df / 2.0, x / 2.0
    if half < a + 1:
        return max(0.0, 1.0 - _gamma_series(a, half))
    return min(1.0, _gamma_fraction(a, half))


def chi2_homogeneity(first: np.ndarray, second: np.ndarray) -> tuple[float, float]:
    """χ² test that two vectors of counts over the same bins come from one distribution:
    the statistic and its p-value. Bins empty on both sides are left out."""
    table = np.vstack([first, second]).astype("float64")
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    return statistic, chi2_sf(statistic, table.shape[1] - 1)


def chi2_uniform(counts: np.ndarray) -> float:
    """p-value of the χ² goodness-of-fit test of counts against equal counts in every bin
    (near 1 when the values are spread more evenly than chance would, as sequences are)."""
    counts = np.asarray(counts, dtype="float64")
    if len(counts) < 2 or counts.sum() == 0:
        return 0.0
    expected = counts.sum() / len(counts)
    statistic = float(((counts - expected) ** 2).sum() / expected)
    return chi2_sf(statistic, len(counts) - 1)


def psi(expected_counts: np.ndarray, actual_counts: np.ndarray) -> float:
    """Population stability index Σ (a − e)·ln(a / e) over bins, on shares smoothed by
    adding PSI_SMOOTHING to every bin's count."""
    e = np.asarray(expected_counts, dtype="float64") + PSI_SMOOTHING
    a = np.asarray(actual_counts, dtype="float64") + PSI_SMOOTHING
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def imbalance(counts: np.ndarray) -> float:
    """1 − entropy / log2(classes): 0 for equal classes, towards 1 when one class dominates
    (ydata-profiling's class-imbalance score)."""
    counts = np.asarray(counts, dtype="float64")
    counts = counts[counts > 0]
    if len(counts) < 2:
        return 0.0
    p = counts / counts.sum()
    entropy = float(-(p * np.log2(p)).sum())
    return 1.0 - entropy / math.log2(len(counts))
