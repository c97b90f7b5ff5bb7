"""Statistics for experiment reports: Wilson intervals, the two-proportion z-test, Holm.

Plain functions over counts (checked against scipy.stats in the unit tests); scipy is used
only for the normal distribution's tail.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import norm

#: z for a two-sided 95% interval.
Z95 = float(norm.ppf(0.975))


def _check_counts(successes: int, trials: int) -> None:
    if trials < 0 or successes < 0:
        raise ValueError(f"counts must be non-negative, got {successes}/{trials}")
    if successes > trials:
        raise ValueError(f"successes ({successes}) cannot exceed trials ({trials})")


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion; (0, 1) when there are no trials."""
    _check_counts(successes, trials)
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = z * z
    denom = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class ZTest:
    """A two-sided two-proportion z-test (pooled variance) of arm B against control A."""

    z: float
    p_value: float
    difference: float  # rate(B) - rate(A)


def two_proportion_z(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int
) -> ZTest | None:
    """Pooled two-proportion z-test; ``None`` when either arm has no trials or the pooled
    rate is 0 or 1 (no variance: nothing can be concluded)."""
    _check_counts(successes_a, trials_a)
    _check_counts(successes_b, trials_b)
    if trials_a == 0 or trials_b == 0:
        return None
    pa, pb = successes_a / trials_a, successes_b / trials_b
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    var = pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b)
    if var <= 0:
        return None
    z = (pb - pa) / math.sqrt(var)
    return ZTest(z=z, p_value=float(2 * norm.sf(abs(z))), difference=pb - pa)


def holm(p_values: Sequence[float | None], alpha: float = 0.05) -> list[tuple[float | None, bool]]:
    """Holm-Bonferroni step-down over a family of tests: for each input p-value (``None`` =
    no test), the adjusted p-value and whether it is rejected at ``alpha``."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(present)
    out: list[tuple[float | None, bool]] = [(None, False)] * len(p_values)
    running = 0.0
    stopped = False
    for rank, (p, i) in enumerate(present):
        adjusted = min(1.0, max(running, (m - rank) * p))
        running = adjusted
        rejected = not stopped and p <= alpha / (m - rank)
        stopped = stopped or not rejected
        out[i] = (adjusted, rejected)
    return out


def mean_ci(values: Sequence[float], z: float = Z95) -> tuple[float, float, float] | None:
    """Mean and its normal-approximation 95% interval; ``None`` without values."""
    n = len(values)
    if n == 0:
        return None
    mean = sum(values) / n
    if n == 1:
        return mean, mean, mean
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    half = z * math.sqrt(var / n)
    return mean, mean - half, mean + half
