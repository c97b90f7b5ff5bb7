"""The offline evaluation of personalisation: metrics by hand, the time split's guarantees,
the pipeline on a fake search, and (slow) end to end on a tiny real demo."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tailor.profiles.rfm import NO_PURCHASES
from tailor.recommend.evaluation import (
    ABLATIONS,
    METHODS,
    EvalCustomer,
    EvalData,
    EvalEvent,
    evaluate,
    hit_at,
    leaf_query,
    ndcg_at,
    paired_comparison,
    prepare,
    rank_of,
    render_markdown,
    sign_test,
    summarise,
    time_split,
    training_segments,
)
from tailor.retrieval.filters import Filter

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


# ------------------------------------------------------------------------------ metrics
def test_rank_of_is_one_based_and_none_when_missing() -> None:
    assert rank_of([7, 3, 9], 7) == 1
    assert rank_of([7, 3, 9], 9) == 3
    assert rank_of([7, 3, 9], 4) is None


@pytest.mark.parametrize(
    ("rank", "hit", "ndcg"),
    [
        (1, 1.0, 1.0),
        (2, 1.0, 1 / math.log2(3)),
        (3, 1.0, 0.5),
        (7, 1.0, 1 / 3),
        (10, 1.0, 1 / math.log2(11)),
        (11, 0.0, 0.0),
        (None, 0.0, 0.0),
    ],
)
def test_hit_and_ndcg_for_known_ranks(rank: int | None, hit: float, ndcg: float) -> None:
    assert hit_at(rank, 10) == hit
    assert ndcg_at(rank, 10) == pytest.approx(ndcg)


def test_summarise_matches_hand_computation() -> None:
    r = summarise("m", [1, 3, None, 11], k=10, n_boot=500, seed=1)
    assert r.n == 4
    assert r.hit == pytest.approx(0.5)
    assert r.ndcg == pytest.approx((1 + 0.5 + 0 + 0) / 4)
    # Standard error of the mean of [1, 1, 0, 0]: sample sd / sqrt(n).
    assert r.hit_se == pytest.approx(np.std([1, 1, 0, 0], ddof=1) / 2)
    assert r.hit_ci[0] <= r.hit <= r.hit_ci[1]
    assert 0.0 <= r.ndcg_ci[0] <= r.ndcg <= r.ndcg_ci[1] <= 1.0
    assert summarise("m", [1, 3, None, 11], k=10, n_boot=500, seed=1) == r  # seeded


def test_summarise_rejects_no_cases() -> None:
    with pytest.raises(ValueError, match="no held-out cases"):
        summarise("full", [])


def test_sign_test_by_hand() -> None:
    assert sign_test(0, 0) == 1.0
    assert sign_test(5, 0) == pytest.approx(2 / 32)
    assert sign_test(0, 5) == pytest.approx(2 / 32)
    assert sign_test(3, 2) == pytest.approx(1.0)
    # 8 of 10: 2 * (1 + 10 + 45) / 1024
    assert sign_test(8, 2) == pytest.approx(2 * 56 / 1024)
    assert 0 < sign_test(400, 330) < 1  # large n: exact integers, no overflow


def test_paired_comparison_counts_a_miss_as_below_any_hit() -> None:
    a = [1, 2, None, 5, 12]
    b = [3, 2, 4, None, None]
    p = paired_comparison("a", a, "b", b, k=10, n_boot=300, seed=0)
    # case 1: a better; 2: tie; 3: b better; 4: a better; 5: both miss (12 > k) → tie
    assert (p.wins, p.losses, p.ties) == (2, 1, 2)
    diff = [ndcg_at(x, 10) - ndcg_at(y, 10) for x, y in zip(a, b, strict=True)]
    assert p.ndcg_diff == pytest.approx(sum(diff) / 5)
    assert p.ndcg_diff_ci[0] <= p.ndcg_diff <= p.ndcg_diff_ci[1]
    with pytest.raises(ValueError, match="equal, non-empty"):
        paired_comparison("a", [1], "b", [1, 2])


def test_leaf_query_is_the_lower_case_leaf() -> None:
    assert leaf_query("Shoes > Running Shoes") == "running shoes"
    assert leaf_query("Clothing > T-Shirts") == "t-shirts"
    assert leaf_query("Gadgets") == "gadgets"


# ------------------------------------------------------------------------------ split
def ev(cid: int, pid: int, kind: str, day: float, value: float | None = None) -> EvalEvent:
    return EvalEvent(cid, pid, kind, at(day), value)


EVENTS = [
    # customer 1: two purchases; a view at the very time of the last one and one after
    ev(1, 10, "view", 1),
    ev(1, 10, "purchase", 2, 20.0),
    ev(1, 11, "view", 3),
    ev(1, 12, "view", 4),  # same time as the last purchase: not training
    ev(1, 12, "purchase", 4, 30.0),
    ev(1, 13, "view", 5),
    # customer 2: one purchase only (not evaluated, its purchase never trains)
    ev(2, 11, "view", 0.5),
    ev(2, 11, "purchase", 1, 25.0),
    ev(2, 13, "view", 9),
    # customer 3: browsing only
    ev(3, 10, "view", 6),
    ev(3, 13, "view", 7),
    # customer 4: three purchases, given out of time order
    ev(4, 13, "purchase", 8, 40.0),
    ev(4, 10, "purchase", 3, 20.0),
    ev(4, 11, "purchase", 6, 25.0),
    ev(4, 12, "view", 7),
]


def test_split_holds_out_exactly_the_last_purchase() -> None:
    split = time_split(EVENTS)
    assert [(c.customer_id, c.product_id, c.at) for c in split.cases] == [
        (1, 12, at(4)),
        (4, 13, at(8)),
    ]
    c1, c4 = split.cases
    assert [(e.product_id, e.kind) for e in c1.history] == [
        (10, "view"),
        (10, "purchase"),
        (11, "view"),
    ]
    assert [(e.product_id, e.kind) for e in c4.history] == [
        (10, "purchase"),
        (11, "purchase"),
        (12, "view"),
    ]
    assert split.cuts == {1: at(4), 2: at(1), 4: at(8)}


def test_training_never_holds_events_at_or_after_a_cut() -> None:
    split = time_split(EVENTS)
    for e in split.training:
        cut = split.cuts.get(e.customer_id)
        assert cut is None or e.at < cut
    for case in split.cases:
        assert all(e.at < case.at for e in case.history)
        own = [e for e in split.training if e.customer_id == case.customer_id]
        assert own == list(case.history)
    # every customer's last purchase is out of training, evaluated or not
    assert not [e for e in split.training if e.kind == "purchase" and e.customer_id == 2]
    # browsing-only customers keep everything
    assert [e.product_id for e in split.training if e.customer_id == 3] == [10, 13]
    assert time_split(EVENTS, min_purchases=1).cases[1].customer_id == 2
    with pytest.raises(ValueError, match="min_purchases"):
        time_split(EVENTS, min_purchases=0)


def test_equal_times_keep_input_order_and_are_excluded_from_training() -> None:
    events = [ev(5, 1, "purchase", 1), ev(5, 2, "purchase", 1)]
    split = time_split(events)
    assert split.cases[0].product_id == 2  # the later one in input order
    assert split.cases[0].history == ()  # the tie is not strictly before


def test_recent_views_ablation_drops_only_recent_views() -> None:
    from tailor.recommend.evaluation import _history

    products: dict[int, Any] = {
        i: FakeProduct(i, f"P{i}", "Home > Lamps", "Acme", 10.0) for i in range(10, 14)
    }
    case = time_split(EVENTS).cases[1]  # customer 4: purchases at days 3 and 6, a view at 7
    assert [h.kind for h in _history(case, products)] == ["purchase", "purchase", "view"]
    kept = _history(case, products, views_before=at(6.5))
    assert [(h.product_id, h.kind) for h in kept] == [(10, "purchase"), (11, "purchase")]


# ------------------------------------------------------------------------------ fakes
@dataclass
class FakeProduct:
    id: int
    title: str
    category: str
    brand: str | None
    price: float
    colour: str | None = None
    rating: float | None = 4.0
    review_count: int = 5
    tags: list[str] = field(default_factory=list)


def test_training_segments_use_the_training_view_only() -> None:
    products: dict[int, Any] = {
        i: FakeProduct(i, f"P{i}", "Outdoors > Tents", "Acme", 10.0 * i, tags=["hiking"])
        for i in range(10, 14)
    }
    customers = {
        1: EvalCustomer(1, "Canada", "Ontario", "25-34", "cold"),
        2: EvalCustomer(2, None, None, None, None),
        3: EvalCustomer(3, "Australia", "Queensland", "65+", "hot"),
        4: EvalCustomer(4),
    }
    split = time_split(EVENTS)
    segs = training_segments(split.training, customers, products)
    assert segs[1]["demographic"] == "young professionals"
    assert segs[1]["geographic"] == "cold climate · North America"
    assert segs[2]["demographic"] == "age not given"
    # customer 3 browsed two "hiking" products: two signals for "active & outdoor"
    assert segs[3]["psychographic"] == "active & outdoor"
    # too few buyers for k-means: nobody gets an RFM segment
    assert {s["rfm"] for s in segs.values()} == {NO_PURCHASES}


class FakeSearch:
    """Seeded random unit vectors; the query is the mean vector of its leaf plus noise."""

    def __init__(self, products: dict[int, Any], seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.products = products
        self.vectors = {
            pid: (v / np.linalg.norm(v)).astype(np.float32)
            for pid, v in ((pid, rng.normal(size=8)) for pid in sorted(products))
        }
        self.queries: list[tuple[str, Filter | None]] = []

    def search(self, query: Any, k: int = 10, flt: Filter | None = None) -> list[Any]:
        self.queries.append((query, flt))
        q = np.ones(8, dtype=np.float32) * (len(str(query)) % 3 - 1)
        scored = sorted(
            (
                (float(self.vectors[pid] @ q), pid)
                for pid, p in self.products.items()
                if flt is None or flt.matches(_Stocked(p))
            ),
            reverse=True,
        )[:k]
        return [_Hit(pid, s) for s, pid in scored]

    def vector(self, product_id: int) -> np.ndarray:
        return self.vectors[product_id]


@dataclass
class _Hit:
    product_id: int
    score: float


class _Stocked:
    def __init__(self, p: Any) -> None:
        self.id, self.category, self.brand, self.price = p.id, p.category, p.brand, p.price
        self.colour = self.material = None
        self.sizes: list[str] = []
        self.stock = 0  # out of stock: the evaluation must not filter on stock


def synthetic_data(n_customers: int = 40, seed: int = 3) -> EvalData:
    """Customers who each stick to one leaf and one brand (a planted, learnable taste)."""
    rng = np.random.default_rng(seed)
    leaves = ["Shoes > Boots", "Bags > Backpacks", "Home > Lamps"]
    brands = ["Acme", "Bolt", "Crest", "Dune"]
    products: dict[int, Any] = {}
    pid = 1
    for leaf in leaves:
        for brand in brands:
            for j in range(6):
                products[pid] = FakeProduct(pid, f"{brand} {leaf} {j}", leaf, brand, 10.0 + 7 * j)
                pid += 1
    customers = {
        c: EvalCustomer(c, "United Kingdom", "Wales", "35-44", "rainy") for c in range(1, 41)
    }
    events: list[EvalEvent] = []
    for c in range(1, n_customers + 1):
        leaf, brand = leaves[c % 3], brands[c % 4]
        mine = [p for p in products.values() if p.category == leaf and p.brand == brand]
        for n in range(int(rng.integers(2, 6))):
            p = mine[int(rng.integers(0, len(mine)))]
            day = float(c + 10 * n)
            events.append(EvalEvent(c, p.id, "view", at(day - 0.5)))
            events.append(EvalEvent(c, p.id, "purchase", at(day), p.price))
    return EvalData(products=products, customers=customers, events=events)


def test_pipeline_on_a_fake_search_is_deterministic_and_complete() -> None:
    data = synthetic_data(n_customers=24)
    prep = prepare(data, seed=5, min_rfm_customers=10**6)  # no k-means: keep this test fast
    search = FakeSearch(data.products)
    report = evaluate(prep, search, filtered=True, k=10, n_candidates=50, n_boot=200, seed=5)
    assert set(report.results) == set(METHODS) | set(ABLATIONS)
    n = len(prep.split.cases)
    assert n > 0
    for result in report.results.values():
        assert result.n == n
        assert 0.0 <= result.hit <= 1.0 and 0.0 <= result.ndcg <= result.hit
        assert all(math.isfinite(x) for x in (*result.hit_ci, *result.ndcg_ci))
    # every request is the leaf name, filtered to the leaf, stock ignored
    for query, flt in search.queries:
        assert flt is not None and not flt.in_stock and len(flt.categories) == 1
        assert query == leaf_query(flt.categories[0])
    assert report.candidate_recall == 1.0  # leaves of 24 products, top 50
    # a planted brand taste is learnable: full personalisation beats popularity and cosine
    assert report.results["full"].ndcg > report.results["cosine"].ndcg
    again = evaluate(prep, FakeSearch(data.products), k=10, n_candidates=50, n_boot=200, seed=5)
    assert again.ranks == report.ranks and again.results == report.results
    text = render_markdown(report)
    assert "(d) full personalisation" in text and f"| {n} |" in text
    unfiltered = evaluate(prep, search, filtered=False, ablations=False, n_boot=100)
    assert set(unfiltered.results) == set(METHODS)
    assert search.queries[-1][1] is None


def test_evaluate_without_cases_says_why() -> None:
    data = synthetic_data()
    data.events = [e for e in data.events if e.customer_id == 1][:2]  # one purchase
    with pytest.raises(ValueError, match="at least two purchases"):
        evaluate(prepare(data, min_rfm_customers=10**6), FakeSearch(data.products))


# ------------------------------------------------------------------------------ slow
@pytest.mark.slow
def test_end_to_end_on_a_tiny_demo(tmp_path: Path, embedder: Any) -> None:
    from tailor.demo import load_demo
    from tailor.recommend.evaluation import load_eval_data
    from tailor.retrieval import ProductSearch
    from tailor.store import make_session_factory

    factory = make_session_factory(f"sqlite:///{tmp_path / 'tailor.db'}")
    load_demo(factory, 600, 60, seed=7, progress=False)
    search = ProductSearch.open(tmp_path / "index", factory, embedder, backend="flat")
    data = load_eval_data(factory)
    assert len(data.products) == 600 and len(data.customers) == 60
    prep = prepare(data, seed=7)
    assert prep.split.cases
    assert {s["rfm"] for s in prep.segments.values()} - {NO_PURCHASES}  # k-means ran
    for filtered in (True, False):
        report = evaluate(prep, search, filtered=filtered, ablations=False, n_boot=200)
        assert set(report.results) == set(METHODS)
        for r in report.results.values():
            assert r.n == len(prep.split.cases)
            assert all(math.isfinite(x) for x in (r.hit, r.ndcg, *r.hit_ci, *r.ndcg_ci))
            assert 0.0 <= r.ndcg <= r.hit <= 1.0
