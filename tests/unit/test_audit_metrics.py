"""Bias-audit metrics checked against brute force, scipy and hand computations."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency

from tailor.evaluation.audit import (
    CustomerExposure,
    _analyse,
    audit_queries,
    bootstrap_ci,
    chi_square,
    gini,
    js_divergence,
    permutation_p,
    price_level,
    rarefied_richness,
    relative_difference,
    top_share,
    total_variation,
)


def brute_gini(x: list[float]) -> float:
    n = len(x)
    mean = sum(x) / n
    return sum(abs(a - b) for a in x for b in x) / (2 * n * n * mean)


@pytest.mark.parametrize("seed", range(5))
def test_gini_matches_the_mean_absolute_difference_definition(seed: int) -> None:
    rng = random.Random(seed)
    x = [float(rng.randint(0, 20)) for _ in range(rng.randint(1, 30))] + [1.0]
    assert gini(x) == pytest.approx(brute_gini(x), abs=1e-12)


def test_gini_edge_cases() -> None:
    assert gini([5, 5, 5]) == 0.0
    assert gini([]) == 0.0
    assert gini([0, 0]) == 0.0
    assert gini([0, 0, 0, 10]) == pytest.approx(0.75)  # (n-1)/n for one holder
    with pytest.raises(ValueError, match="non-negative"):
        gini([-1, 2])


def test_top_share_by_hand() -> None:
    assert top_share([5, 3, 2], k=1) == pytest.approx(0.5)
    assert top_share([1] * 20, k=10) == pytest.approx(0.5)
    assert top_share([0, 0], k=10) == 0.0


@pytest.mark.parametrize(("counts", "n"), [([3, 1, 2], 3), ([1, 1, 1, 1], 2), ([4, 2], 4)])
def test_rarefaction_matches_enumerating_every_subsample(counts: list[int], n: int) -> None:
    items = [i for i, c in enumerate(counts) for _ in range(c)]
    subsets = list(itertools.combinations(range(len(items)), n))
    expected = sum(len({items[j] for j in s}) for s in subsets) / len(subsets)
    assert rarefied_richness(counts, n) == pytest.approx(expected, abs=1e-9)


def test_rarefaction_bounds() -> None:
    assert rarefied_richness([2, 3, 0, 1], 6) == pytest.approx(3.0)  # everything drawn
    assert rarefied_richness([2, 3], 0) == 0.0
    assert rarefied_richness([2, 3], 1) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="between 0 and the total count 5"):
        rarefied_richness([2, 3], 6)


def test_divergences_against_scipy_and_by_hand() -> None:
    rng = np.random.default_rng(1)
    for _ in range(10):
        p, q = rng.random(6), rng.random(6)
        p[rng.integers(6)] = 0.0
        assert js_divergence(p, q) == pytest.approx(jensenshannon(p, q, base=2) ** 2, abs=1e-12)
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)
    assert js_divergence([2, 2], [1, 1]) == 0.0
    assert total_variation([1, 0, 0], [0, 0, 5]) == pytest.approx(1.0)
    assert total_variation([3, 1], [1, 1]) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="differ in length"):
        total_variation([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="positive sum"):
        js_divergence([0, 0], [1, 1])


@pytest.mark.parametrize("seed", range(5))
def test_chi_square_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    table = rng.integers(1, 60, size=(2, 5))
    stat, dof, p = chi_square(table)
    ref = chi2_contingency(table, correction=False)
    assert stat == pytest.approx(ref.statistic)
    assert dof == ref.dof
    assert p == pytest.approx(ref.pvalue)


def test_chi_square_drops_empty_columns_and_degenerate_tables() -> None:
    with_empty = np.array([[10, 0, 5], [4, 0, 9]])
    assert chi_square(with_empty)[:2] == pytest.approx(chi_square(np.array([[10, 5], [4, 9]]))[:2])
    assert chi_square([[3, 4]]) == (0.0, 0, 1.0)
    with pytest.raises(ValueError, match="non-negative"):
        chi_square([[1, -1], [2, 2]])


def test_relative_difference_edges() -> None:
    assert relative_difference(1.2, 1.0) == pytest.approx(0.2)
    assert relative_difference(0.5, 1.0) == pytest.approx(-0.5)
    assert relative_difference(0.0, 0.0) is None
    assert relative_difference(0.3, 0.0) == math.inf


def test_price_level_quintiles() -> None:
    assert [price_level(p) for p in (0.0, 0.19, 0.2, 0.5, 0.79, 0.8, 1.0)] == [1, 1, 2, 3, 4, 5, 5]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        price_level(1.5)


def _mean_diff_stat(a: np.ndarray, b: np.ndarray) -> Callable[[np.ndarray, np.ndarray], float]:
    def stat(wg: np.ndarray, wr: np.ndarray) -> float:
        return float(wg @ a / wg.sum() - wr @ b / wr.sum())

    return stat


def test_bootstrap_is_seeded_and_agrees_with_normal_theory_on_a_large_sample() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.normal(1.0, 1.0, 2000), rng.normal(0.8, 1.0, 2000)
    stat = _mean_diff_stat(a, b)
    ci = bootstrap_ci(stat, a.size, b.size, n_boot=800, seed=3)
    assert ci == bootstrap_ci(stat, a.size, b.size, n_boot=800, seed=3)
    assert ci != bootstrap_ci(stat, a.size, b.size, n_boot=800, seed=4)
    assert ci is not None
    diff = a.mean() - b.mean()
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert ci[0] == pytest.approx(diff - 1.96 * se, abs=0.015)
    assert ci[1] == pytest.approx(diff + 1.96 * se, abs=0.015)


def test_bootstrap_of_identical_groups_covers_zero_and_drops_undefined_replicates() -> None:
    x = np.arange(30, dtype=float)
    ci = bootstrap_ci(_mean_diff_stat(x, x), 30, 30, n_boot=500, seed=1)
    assert ci is not None and ci[0] < 0 < ci[1]
    assert bootstrap_ci(lambda wg, wr: None, 5, 5, n_boot=50) is None
    assert bootstrap_ci(lambda wg, wr: 1.0, 0, 5) is None


def test_permutation_p_matches_the_exact_permutation_distribution() -> None:
    values = np.array([3.1, 2.7, 4.0, 3.8, 1.0, 1.5, 2.2, 0.9])
    labels = np.array([True, True, True, True, False, False, False, False])

    def stat(mask: np.ndarray) -> float:
        return float(values[mask].mean() - values[~mask].mean())

    observed = stat(labels)
    exact = []
    for chosen in itertools.combinations(range(8), 4):
        mask = np.zeros(8, dtype=bool)
        mask[list(chosen)] = True
        exact.append(stat(mask) >= observed - 1e-12)
    p_exact = sum(exact) / len(exact)
    assert permutation_p(stat, labels.copy(), n_perm=20000, seed=5) == pytest.approx(
        p_exact, abs=0.01
    )


def test_queries_take_each_departments_most_stocked_leaf() -> None:
    counts = {
        "Shoes > Running Shoes": 40,
        "Shoes > Boots": 40,
        "Shoes > Sandals": 10,
        "Baby > Strollers": 5,
        "Audio > Headphones": 30,
        "Audio > Speakers": 31,
    }
    qs = audit_queries(counts)
    assert [q.label for q in qs] == ["for you", "speakers", "strollers", "boots"]
    assert qs[0].criteria.is_empty()
    assert qs[3].criteria.category == "Shoes > Boots"
    assert qs[3].criteria.product_type == "boots"
    assert [q.label for q in audit_queries(counts, departments=2)] == [
        "for you",
        "speakers",
        "boots",
    ]
    with pytest.raises(ValueError, match="no categories"):
        audit_queries({})


def _exposure(cid: int, gender: str, levels: list[int], depts: dict[str, int]) -> CustomerExposure:
    row = CustomerExposure(cid, {"age_band": "25-34", "gender": gender, "country": "Spain"})
    row.levels = list(levels)
    row.suggestions = sum(levels)
    row.positioned = sum(levels)
    row.position_sum = sum(n * (q + 0.5) / 5 for q, n in enumerate(levels))
    row.departments = Counter(depts)
    row.products = Counter({cid * 100 + i: 1 for i in range(sum(levels))})
    return row


def test_analysis_flags_a_large_real_difference_but_not_noise_or_small_groups() -> None:
    rng = random.Random(0)
    rows = []
    for cid in range(40):  # women: mostly dear
        rows.append(_exposure(cid, "female", [0, 1, 2, 3, 4], {"Shoes": 5, "Home": 5}))
    for cid in range(40, 80):  # men: mostly cheap
        rows.append(_exposure(cid, "male", [4, 3, 2, 1, 0], {"Shoes": 5, "Home": 5}))
    for cid in range(80, 84):  # a tiny group with an extreme difference
        rows.append(_exposure(cid, "other", [0, 0, 0, 0, 10], {"Shoes": 10}))
    quality = {cid: (float(rng.random() < 0.3), 0.2, 0.1) for cid in range(84)}
    _, disp = _analyse(rows, quality, threshold=0.2, min_group=10, n_boot=300, seed=1)
    flags = {(d.group, d.metric) for d in disp if d.flagged}
    assert ("female", "mean price position") in flags
    assert ("male", "price level 1 share") in flags
    assert not any(g == "other" for g, _ in flags)
    tiny = next(d for d in disp if d.group == "other" and d.metric == "price level 5 share")
    assert tiny.difference is not None and tiny.difference > 1 and "fewer than 10" in tiny.note
    # Same distribution for everyone: nothing is flagged.
    same = [
        _exposure(c, "female" if c % 2 else "male", [2, 2, 2, 2, 2], {"A": 10}) for c in range(60)
    ]
    _, disp = _analyse(same, {}, threshold=0.2, min_group=10, n_boot=300, seed=1)
    assert not [d for d in disp if d.flagged]


def test_coverage_disparity_is_checked_by_permutation() -> None:
    rows = []
    for cid in range(30):  # women all see the same ten products
        row = _exposure(cid, "female", [2, 2, 2, 2, 2], {"A": 10})
        row.products = Counter({p: 1 for p in range(10)})
        rows.append(row)
    rows += [_exposure(cid, "male", [2, 2, 2, 2, 2], {"A": 10}) for cid in range(30, 60)]
    _, disp = _analyse(rows, {}, threshold=0.2, min_group=10, n_boot=200, seed=1)
    cov = {d.group: d for d in disp if d.metric.startswith("coverage")}
    assert cov["female"].flagged and cov["male"].flagged
    assert cov["female"].difference is not None and cov["female"].difference < -0.5
    assert cov["female"].p_value is not None and cov["female"].p_value < 0.05
    assert cov["female"].group_value == pytest.approx(rarefied_richness([30] * 10, 300) / 300)
