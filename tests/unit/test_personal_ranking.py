"""Personal ranking: each signal checked on its own, and against brute-force references."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tailor.recommend.personal import (
    Affinity,
    Context,
    PastPurchase,
    PricePositions,
    RankingWeights,
    Scored,
    SegmentPrior,
    SessionSignals,
    ShopperContext,
    mmr_select,
    personal_rank,
    quality,
    score_candidate,
    weighted_centroid,
)
from tailor.recommend.signals import (
    HistoryItem,
    SessionEvent,
    affinity_from_history,
    segment_tables,
    session_from_events,
)

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
JACKETS = "Clothing > Jackets"
SHOES = "Shoes > Running Shoes"


@dataclass
class P:
    """A product as ranking sees it."""

    id: int
    title: str = "Item"
    category: str = JACKETS
    brand: str | None = "Acme"
    colour: str | None = "black"
    price: float = 100.0
    rating: float | None = 4.0
    review_count: int = 10
    tags: list[str] = field(default_factory=list)


W = RankingWeights()


def test_price_positions_match_brute_force_mid_rank() -> None:
    rng = random.Random(3)
    prices = [round(rng.uniform(5, 300), 0) for _ in range(200)]
    pp = PricePositions({JACKETS: prices})
    for probe in [*prices[:30], 4.0, 301.0, 150.0]:
        below = sum(1 for p in prices if p < probe)
        equal = sum(1 for p in prices if p == probe)
        assert pp.position(JACKETS, probe) == pytest.approx((below + equal / 2) / len(prices))
    assert pp.position("Unknown > Leaf", 10.0) is None


def test_affinity_shares_decay_and_price_position() -> None:
    pp = PricePositions({JACKETS: [10, 20, 30, 40, 50, 60, 70, 80, 90, 100], SHOES: [50, 150]})
    history = [
        HistoryItem(1, "purchase", NOW - timedelta(days=10), "Old Jacket", JACKETS, "Acme", 20.0),
        HistoryItem(2, "purchase", NOW - timedelta(days=190), "Shoe", SHOES, "Zoom", 50.0),
        HistoryItem(3, "view", NOW - timedelta(days=1), "Other", JACKETS, "Bolt", 90.0),
        HistoryItem(4, "shown", NOW, "Ignored", SHOES, "Zoom", 1.0),  # not a taste signal
    ]
    aff = affinity_from_history(history, pp, NOW, half_life_days=180)
    w1 = 3.0 * 0.5 ** (10 / 180)
    w2 = 3.0 * 0.5 ** (190 / 180)
    w3 = 0.5 * 0.5 ** (1 / 180)
    total = w1 + w2 + w3
    assert aff.categories[JACKETS] == pytest.approx((w1 + w3) / total)
    assert aff.categories[SHOES] == pytest.approx(w2 / total)
    assert sum(aff.brands.values()) == pytest.approx(1.0)
    assert aff.brands["acme"] == pytest.approx(w1 / total)
    # Purchases only: jacket at position 0.15, shoe at 0.25 (mid-rank of 2 prices).
    mean = (0.15 * w1 + 0.25 * w2) / (w1 + w2)
    assert aff.price_position is not None
    assert aff.price_position[0] == pytest.approx(mean)
    assert [p.product_id for p in aff.purchases] == [1, 2]


def test_affinity_scores() -> None:
    aff = Affinity(
        categories={JACKETS: 0.6, SHOES: 0.4},
        tops={"Clothing": 0.6, "Shoes": 0.4},
        brands={"acme": 0.75, "zoom": 0.25},
        price_position=(0.2, 0.05),
    )
    assert aff.category_score(JACKETS) == 1.0
    assert aff.category_score("Clothing > Hoodies") == pytest.approx(0.4 * 0.6 / 0.6)
    assert aff.category_score("Garden > Hoses") == 0.0
    assert aff.brand_score("ACME") == 1.0 and aff.brand_score("Zoom") == pytest.approx(1 / 3)
    assert aff.price_score(0.2) == 1.0
    assert aff.price_score(0.8) < aff.price_score(0.35) < 1.0


def test_segment_tables_lift_matches_direct_computation() -> None:
    purchases = [(1, JACKETS, "Acme")] * 30 + [(2, SHOES, "Zoom")] * 20 + [(3, JACKETS, "Zoom")] * 2
    segments = {1: {"rfm": "champions"}, 2: {"rfm": "loyal"}, 3: {"rfm": "champions"}}
    tables = segment_tables(purchases, segments)
    prior = tables.prior({"rfm": "champions"})
    cats, brands = prior.lifts[("rfm", "champions")]
    overall_j = 32 / 52
    share_j = (32 + 20 * overall_j) / (32 + 20)
    assert cats[JACKETS] == pytest.approx(math.log(share_j / overall_j))
    overall_s = 20 / 52
    share_s = (0 + 20 * overall_s) / (32 + 20)
    assert cats[SHOES] == pytest.approx(math.log(share_s / overall_s))
    assert brands["acme"] > 0 > cats[SHOES]
    # Unknown or empty segments give no prior.
    assert tables.prior({"rfm": "no purchases yet"}).is_empty()
    assert tables.prior({"rfm": "nobody"}).is_empty()
    value, name = prior.score(JACKETS, "Acme")
    assert value > 0 and name == "champions"


def test_session_signals_recency_and_aspects() -> None:
    events = [
        SessionEvent("click", 1, {}, "Winter Coat", 200.0),
        SessionEvent("view", 2, {}, "Beach Shorts", 30.0),
        SessionEvent("feedback", 3, {"polarity": "negative", "aspect": "colour", "value": "Red"}),
        SessionEvent("feedback", 4, {"polarity": "negative", "aspect": "price"}, "X", 80.0),
        SessionEvent("feedback", 5, {"polarity": "negative", "aspect": "product"}),
        SessionEvent("feedback", 6, {"polarity": "positive"}),
    ]
    sig = session_from_events(events)
    weights = dict(sig.positive)
    assert weights[2] > weights[1]  # the later interest weighs more
    assert weights[6] > weights[2]  # a liked product weighs most (and is the latest)
    assert sig.negative_colours == {"red": pytest.approx(max(0.3, 0.4**3))}
    assert sig.price_ceiling == pytest.approx(72.0)
    assert [pid for pid, _ in sig.negative] == [5]
    assert sig.titles[1] == "Winter Coat"
    # Liked then disliked: disliked wins.
    sig2 = session_from_events(
        [
            SessionEvent("click", 9, {}),
            SessionEvent("feedback", 9, {"polarity": "negative"}),
        ]
    )
    assert sig2.positive == [] and [p for p, _ in sig2.negative] == [9]


def _unit(v: list[float]) -> np.ndarray:
    a = np.array(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def test_anonymous_scores_only_relevance_and_quality() -> None:
    p = P(1, rating=5.0, review_count=90)
    s = score_candidate(p, 0.5, ShopperContext.anonymous(), W)
    assert {c.signal for c in s.contributions} == {"relevance", "quality"}
    assert s.score == pytest.approx(0.5 + W.quality * quality(5.0, 90))
    assert s.personal_reason() is None


def test_opted_out_shopper_gets_no_personal_effects() -> None:
    rich = ShopperContext(
        customer_id=1,
        personalised=False,
        affinity=Affinity(categories={JACKETS: 1.0}, tops={"Clothing": 1.0}, brands={"acme": 1}),
        prior=SegmentPrior(lifts={("rfm", "champions"): ({JACKETS: 1.0}, {})}),
        session=SessionSignals(negative_colours={"black": 1.0}),
        context=Context(season="winter"),
    )
    p = P(1, tags=["winter"])
    assert score_candidate(p, 0.5, rich, W).score == pytest.approx(
        score_candidate(p, 0.5, ShopperContext.anonymous(), W).score
    )


def test_affinity_reason_names_the_purchase() -> None:
    bought = PastPurchase(7, "Acme Storm Jacket", JACKETS, "Acme", datetime(2026, 3, 4, tzinfo=UTC))
    shopper = ShopperContext(
        customer_id=1,
        personalised=True,
        affinity=Affinity(
            categories={JACKETS: 1.0},
            tops={"Clothing": 1.0},
            brands={"acme": 1.0},
            purchases=[bought],
        ),
    )
    s = score_candidate(P(2, brand="Acme"), 0.5, shopper, W, now=NOW)
    assert s.personal_reason() == "you bought Acme Storm Jacket in March"
    owned = score_candidate(P(7, brand="Acme"), 0.5, shopper, W, now=NOW)
    assert owned.score == pytest.approx(s.score - W.owned)


def test_negative_reactions_demote_colour_brand_price_and_product() -> None:
    shopper = ShopperContext(
        personalised=True,
        session=SessionSignals(
            negative_colours={"red": 1.0},
            negative_brands={"zoom": 1.0},
            price_ceiling=50.0,
            negative=[(9, 1.0)],
        ),
    )
    base = score_candidate(P(1, colour="blue", brand="Acme", price=40), 0.5, shopper, W).score
    for p in (
        P(2, colour="Red", brand="Acme", price=40),
        P(3, colour="blue", brand="Zoom", price=40),
        P(4, colour="blue", brand="Acme", price=90),
        P(9, colour="blue", brand="Acme", price=40),
    ):
        assert score_candidate(p, 0.5, shopper, W).score < base - 0.1


def test_session_centroid_pulls_towards_what_was_looked_at() -> None:
    coat, beach = _unit([1, 0, 0]), _unit([0, 1, 0])
    vectors = {100: coat, 200: beach, 1: _unit([0.9, 0.1, 0.1]), 2: _unit([0.1, 0.9, 0.1])}
    session = session_from_events(
        [SessionEvent("click", 100, {}, "Coat"), SessionEvent("view", 200, {}, "Shorts")]
    )
    shopper = ShopperContext(personalised=True, session=session)
    ranked = personal_rank([(P(1), 0.5), (P(2), 0.5)], shopper, W, 2, vectors)
    assert [s.product.id for s in ranked] == [2, 1]
    assert ranked[0].personal_reason() == "because you looked at the Shorts"
    centroid = weighted_centroid(session.positive, vectors)
    assert centroid is not None and float(centroid @ beach) > float(centroid @ coat)


def _brute_mmr(scored: list[Scored], vectors: dict[int, np.ndarray], k: int) -> list[int]:
    chosen: list[Scored] = []
    pool = list(scored)
    while pool and len(chosen) < k:

        def value(c: Scored) -> float:
            sims = [float(vectors[c.product.id] @ vectors[o.product.id]) for o in chosen] or [0.0]
            same = sum(
                1
                for o in chosen
                if (o.product.brand or "").lower() == (c.product.brand or "").lower()
            )
            return (
                W.mmr_lambda * c.score
                - (1 - W.mmr_lambda) * max(0.0, max(sims))
                - (W.same_brand * same)
            )

        best = max(pool, key=value)
        pool.remove(best)
        chosen.append(best)
    return [c.product.id for c in chosen]


def test_mmr_matches_brute_force_greedy() -> None:
    rng = np.random.default_rng(7)
    for trial in range(20):
        n = 12
        vectors = {i: v / np.linalg.norm(v) for i, v in enumerate(rng.normal(size=(n, 8)))}
        scored = [Scored(P(i, brand=f"b{i % 3}"), float(rng.uniform(0, 1)), ()) for i in range(n)]
        got = [s.product.id for s in mmr_select(scored, vectors, 5, W)]
        assert got == _brute_mmr(scored, vectors, 5), trial


def test_mmr_lambda_one_is_score_order_without_brand_repeats() -> None:
    vectors = {i: _unit([1, 0.01 * i, 0]) for i in range(5)}
    scored = [Scored(P(i, brand=f"b{i}"), 1.0 - 0.1 * i, ()) for i in range(5)]
    got = mmr_select(scored, vectors, 5, RankingWeights(mmr_lambda=1.0))
    assert [s.product.id for s in got] == [0, 1, 2, 3, 4]
    # With diversity, a near-duplicate of the first pick drops behind a distinct item.
    vectors[1] = vectors[0]
    vectors[2] = _unit([0, 1, 0])
    scored = [Scored(P(i, brand=f"b{i}"), s, ()) for i, s in enumerate([1.0, 0.98, 0.9, 0.5, 0.4])]
    got = mmr_select(scored, vectors, 2, RankingWeights(mmr_lambda=0.8))
    assert [s.product.id for s in got] == [0, 2]


def test_context_tags_follow_season_and_climate() -> None:
    assert "winter" in Context(season="winter").tags()
    assert "winter" not in Context(season="winter", climate="hot").tags()
    assert "waterproof" in Context(climate="rainy").tags()
    shopper = ShopperContext(personalised=True, context=Context(season="winter", region="Oslo"))
    s = score_candidate(P(1, tags=["winter", "warm"]), 0.5, shopper, W)
    assert s.personal_reason() == "good for winter in Oslo"
    assert s.score == pytest.approx(score_candidate(P(1), 0.5, shopper, W).score + W.context)
