"""Confidence intervals over seeds, without SciPy.

A sweep repeats each point with a handful of seeds (often 5-10), so the interval must use
Student's t, not the normal 1.96: with 5 seeds the 95 % quantile is 2.78. SciPy is not a
dependency of mqttsim, so the t quantile is computed here from the closed-form CDF of the
t distribution for whole degrees of freedom (Abramowitz & Stegun 26.7.3-4), inverted by
bisection.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd


def _central_t_probability(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with ``df`` degrees of freedom (A&S 26.7.3/26.7.4)."""
    theta = math.atan(t / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2:  # odd: (2/pi) (theta + sin(theta) (cos + 2/3 cos^3 + 2.4/3.5 cos^5 ...))
        term, total = math.cos(theta), 0.0
        for j in range(1, (df - 1) // 2 + 1):
            total += term
            term *= c2 * (2 * j) / (2 * j + 1)
        return 2 / math.pi * (theta + s * total)
    term, total = 1.0, 0.0  # even: sin(theta) (1 + 1/2 cos^2 + 1.3/2.4 cos^4 ...)
    for j in range(1, df // 2 + 1):
        total += term
        term *= c2 * (2 * j - 1) / (2 * j)
    return s * total


def _normal_quantile(p: float) -> float:
    """Upper quantile of the standard normal by bisection on erf (only for large df)."""
    lo, hi = 0.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if math.erf(mid / math.sqrt(2)) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def t_quantile(level: float, df: int) -> float:
    """The two-sided critical value: P(|T| <= q) = level. ``t_quantile(0.95, 4)`` = 2.776."""
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be between 0 and 1, got {level}")
    if int(df) != df or df < 1:
        raise ValueError(f"degrees of freedom must be a whole number >= 1, got {df}")
    df = int(df)
    if df > 2000:  # Cornish-Fisher: the series would be long and the answer is z already
        z = _normal_quantile(level)
        return z + (z ** 3 + z) / (4 * df)
    lo, hi = 0.0, 1.0
    while _central_t_probability(hi, df) < level:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        if _central_t_probability(mid, df) < level:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def mean_ci(values: Iterable[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): mean ± t·s/√n over the values (NaNs ignored). With one value the
    interval is unknown, so low and high are NaN; with none, all three are."""
    x = np.asarray([v for v in values if not pd.isna(v)], dtype=float)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) == 1:
        return mean, math.nan, math.nan
    half = t_quantile(level, len(x) - 1) * float(x.std(ddof=1)) / math.sqrt(len(x))
    return mean, mean - half, mean + half


def clip_interval(low: Any, high: Any,
                  bounds: tuple[float | None, float | None]) -> tuple[Any, Any]:
    """``low`` and ``high`` (numbers or arrays) clipped to what the quantity can be: the
    t interval is symmetric around the mean, so near a bound (a latency close to 0, a
    delivery ratio close to 1) it would otherwise reach values no run can have."""
    floor, ceiling = bounds
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    if floor is not None:
        low, high = np.maximum(low, floor), np.maximum(high, floor)
    if ceiling is not None:
        low, high = np.minimum(low, ceiling), np.minimum(high, ceiling)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def ci_table(table: pd.DataFrame, by: list[str], column: str,
             level: float = 0.95,
             bounds: tuple[float | None, float | None] = (None, None)) -> pd.DataFrame:
    """Per group of ``by``: n, mean, low, high of ``column`` (one row per group, sorted);
    low and high clipped to ``bounds`` (``style.metric_bounds``)."""
    rows = []
    for key, group in table.groupby(by, sort=True):
        mean, low, high = mean_ci(group[column], level)
        low, high = clip_interval(low, high, bounds)
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), "n": int(group[column].notna().sum()),
                     "mean": mean, "low": low, "high": high})
    return pd.DataFrame(rows, columns=[*by, "n", "mean", "low", "high"])


__all__ = ["t_quantile", "mean_ci", "ci_table", "clip_interval"]
