"""Personal ranking: where relevance, the shopper's history, their segments, what they just
did in this conversation and their context meet — in one scoring function, with reasons.

Everything here is pure (no database, no model): :mod:`tailor.recommend.signals` builds a
:class:`ShopperContext` from storage, and the recommender hands candidates with their
vectors to :func:`personal_rank`. Final score of a candidate::

    relevance + w_quality·quality + w_affinity·affinity + w_segment·segment
              + w_session·session + w_context·context − penalties

then a greedy MMR selection trades that score against similarity to what is already chosen.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np

from tailor.experiments.assignment import Assignment
from tailor.recommend.context import ContextRule, matching_rules


class Rankable(Protocol):
    """What ranking reads from a product (a stored :class:`~tailor.store.Product` fits)."""

    id: int
    title: str
    category: str
    brand: str | None
    colour: str | None
    price: float
    rating: float | None
    review_count: int
    tags: list[str]


@dataclass(frozen=True)
class RankingWeights:
    """How much each signal counts; loaded from settings (``TAILOR_RANK_*``)."""

    quality: float = 0.08
    review_sentiment: float = 0.04
    affinity: float = 0.22
    segment: float = 0.06
    session: float = 0.25
    context: float = 0.03
    negative: float = 0.30
    same_brand: float = 0.03
    #: Pushes down what the shopper already bought (they rarely want the same item again).
    owned: float = 0.15
    #: MMR trade-off: 1.0 ignores diversity, lower values push near-duplicates down.
    mmr_lambda: float = 0.8
    #: Configured context rules (time of day, weekday, device, season, climate → a boost;
    #: :mod:`tailor.recommend.context`), each with its own weight.
    context_rules: tuple[ContextRule, ...] = ()


#: Bayesian prior for ratings: a product with few reviews is pulled towards this mean.
PRIOR_MEAN, PRIOR_COUNT = 4.0, 10


def quality(rating: float | None, count: int) -> float:
    """Bayesian-average rating mapped to [-1, 1] (3/5 → -0.5, 5/5 → 0.5 around the prior)."""
    r = PRIOR_MEAN if rating is None else float(rating)
    n = max(0, int(count or 0))
    avg = (r * n + PRIOR_MEAN * PRIOR_COUNT) / (n + PRIOR_COUNT)
    return max(-1.0, min(1.0, (avg - 4.0) / 1.0))


def _leaf(category: str) -> str:
    return category.split(" > ")[-1]


def _top(category: str) -> str:
    return category.split(" > ")[0]


@dataclass(frozen=True)
class PastPurchase:
    """A purchase the shopper made, for reasons ("you bought the Aero Jacket in March")."""

    product_id: int
    title: str
    category: str
    brand: str | None
    at: datetime


@dataclass
class Affinity:
    """The shopper's tastes from their history: categories, brands, price position.

    Shares are decayed by age and normalised to sum to 1; ``price_position`` is the mean and
    spread of where their purchases sat in their category's price distribution (0 cheapest,
    1 dearest).
    """

    categories: dict[str, float] = field(default_factory=dict)
    tops: dict[str, float] = field(default_factory=dict)
    brands: dict[str, float] = field(default_factory=dict)
    price_position: tuple[float, float] | None = None
    purchases: list[PastPurchase] = field(default_factory=list)

    def is_empty(self) -> bool:
        """True when there is no history to learn from."""
        return not self.categories and not self.brands

    def category_score(self, category: str) -> float:
        """How much of the shopper's history is in this leaf (1.0) or its department (0.4)."""
        if not self.categories:
            return 0.0
        leaf = self.categories.get(category, 0.0)
        top = self.tops.get(_top(category), 0.0)
        peak = max(self.categories.values())
        return min(1.0, (leaf + 0.4 * top) / max(peak, 1e-9))

    def brand_score(self, brand: str | None) -> float:
        """How much of the history is this brand, relative to their favourite."""
        if not brand or not self.brands:
            return 0.0
        return self.brands.get(brand.lower(), 0.0) / max(self.brands.values())

    def price_score(self, position: float | None) -> float:
        """1 at the shopper's usual price position, falling off with distance (Gaussian)."""
        if self.price_position is None or position is None:
            return 0.0
        mean, spread = self.price_position
        sigma = max(0.15, spread)
        return math.exp(-((position - mean) ** 2) / (2 * sigma * sigma))


@dataclass
class SegmentPrior:
    """What customers in the shopper's segments buy, as lifts over all customers.

    ``lifts`` maps ``(kind, segment name)`` to ``(category lifts, brand lifts)``, each
    log(share among that segment's customers / share among everyone) for a leaf path or a
    lower-case brand (smoothed, so small segments do not shout).
    """

    lifts: dict[tuple[str, str], tuple[dict[str, float], dict[str, float]]] = field(
        default_factory=dict
    )

    def is_empty(self) -> bool:
        """True when the shopper is in no segment with purchase data."""
        return not self.lifts

    def score(self, category: str, brand: str | None) -> tuple[float, str | None]:
        """Mean squashed lift over the segments in [-1, 1], and the segment that likes the
        product most (for the reason), if any does."""
        if not self.lifts:
            return 0.0, None
        values: list[tuple[float, str]] = []
        for (_kind, name), (cats, brands) in self.lifts.items():
            lift = cats.get(category, 0.0) + 0.5 * brands.get((brand or "").lower(), 0.0)
            values.append((math.tanh(lift), name))
        mean = sum(v for v, _ in values) / len(values)
        best_value, best_name = max(values)
        return mean, best_name if best_value > 0.2 else None


@dataclass
class SessionSignals:
    """What the shopper did in this conversation, most recent weighing most.

    ``positive``: (product id, weight) of clicks, views, details and liked products;
    ``negative``: (product id, weight) of products they reacted badly to; colours, brands and
    a price ceiling they reacted against (soft: demoted, not filtered out).
    """

    positive: list[tuple[int, float]] = field(default_factory=list)
    negative: list[tuple[int, float]] = field(default_factory=list)
    negative_colours: dict[str, float] = field(default_factory=dict)
    negative_brands: dict[str, float] = field(default_factory=dict)
    price_ceiling: float | None = None
    titles: dict[int, str] = field(default_factory=dict)
    #: Products the shopper said they liked (the rest of ``positive`` they looked at).
    liked: set[int] = field(default_factory=set)

    def is_empty(self) -> bool:
        """True when nothing in the session says anything about taste."""
        return not (
            self.positive
            or self.negative
            or self.negative_colours
            or self.negative_brands
            or self.price_ceiling is not None
        )


#: Season / climate → product tags that suit it.
SEASON_TAGS: dict[str, frozenset[str]] = {
    "winter": frozenset({"winter", "warm", "insulated", "cosy", "windproof", "outerwear"}),
    "autumn": frozenset({"warm", "cosy", "rain", "waterproof", "knitwear", "outerwear"}),
    "spring": frozenset({"lightweight", "rain", "water resistant", "breathable"}),
    "summer": frozenset({"summer", "beach", "lightweight", "breathable", "open-toe", "slide"}),
}
CLIMATE_TAGS: dict[str, frozenset[str]] = {
    "rainy": frozenset({"waterproof", "rain", "water resistant", "quick dry"}),
    "cold": frozenset({"warm", "insulated", "winter", "windproof"}),
    "hot": frozenset({"summer", "breathable", "lightweight", "beach"}),
}


@dataclass(frozen=True)
class Context:
    """Where and when the shopper is: season from their location and the date, climate,
    device, local hour and weekday (Monday 0) — what the context rules read."""

    season: str | None = None
    climate: str | None = None
    region: str | None = None
    device: str | None = None
    local_hour: int | None = None
    weekday: int | None = None

    def applied(self, rules: Sequence[ContextRule]) -> list[ContextRule]:
        """The configured rules whose conditions hold here."""
        return matching_rules(rules, self)

    def tags(self) -> frozenset[str]:
        """Product tags that fit this context (a hot climate has no cold season)."""
        out: set[str] = set()
        if self.season and not (self.climate == "hot" and self.season in ("winter", "autumn")):
            out |= SEASON_TAGS.get(self.season, frozenset())
        if self.climate:
            out |= CLIMATE_TAGS.get(self.climate, frozenset())
        return frozenset(out)


@dataclass
class ShopperContext:
    """Everything known about who is asking, as ranking inputs.

    ``personalised`` is False for opted-out shoppers: then only relevance, quality and
    diversity count (and the explicit criteria of the conversation, applied before ranking).
    """

    customer_id: int | None = None
    #: The store's id of the customer (what experiments randomise on), None if anonymous.
    external_id: str | None = None
    name: str | None = None
    personalised: bool = False
    affinity: Affinity = field(default_factory=Affinity)
    segments: dict[str, str] = field(default_factory=dict)
    prior: SegmentPrior = field(default_factory=SegmentPrior)
    session: SessionSignals = field(default_factory=SessionSignals)
    context: Context = field(default_factory=Context)
    #: The shopper's arm in a running A/B experiment (:mod:`tailor.experiments`), if any;
    #: its ranking-weight overrides apply to their suggestions.
    experiment: Assignment | None = None

    @classmethod
    def anonymous(cls) -> ShopperContext:
        """Nobody known, nothing personal."""
        return cls()


class PricePositions:
    """Where a price sits within its category (0 cheapest … 1 dearest), from sorted prices."""

    def __init__(self, prices_by_category: Mapping[str, Sequence[float]]) -> None:
        self._sorted = {c: sorted(float(p) for p in ps) for c, ps in prices_by_category.items()}

    def position(self, category: str, price: float) -> float | None:
        """Mid-rank percentile of ``price`` among the category's prices (None if unknown)."""
        prices = self._sorted.get(category)
        if not prices:
            return None
        if len(prices) == 1:
            return 0.5
        lo = bisect.bisect_left(prices, float(price))
        hi = bisect.bisect_right(prices, float(price))
        return ((lo + hi) / 2) / len(prices)


@dataclass(frozen=True)
class Contribution:
    """One signal's share of a candidate's score, and the reason it would give."""

    signal: str
    value: float
    reason: str | None = None


@dataclass(frozen=True)
class Scored:
    """A candidate with its total score and the contributions that make it up."""

    product: Rankable
    score: float
    contributions: tuple[Contribution, ...]

    def personal_reason(self, threshold: float = 0.02) -> str | None:
        """The reason of the largest personal contribution, if it matters enough."""
        personal = [
            c
            for c in self.contributions
            if c.signal in ("affinity", "segment", "session") and c.reason and c.value >= threshold
        ]
        if personal:
            return max(personal, key=lambda c: c.value).reason
        context = [
            c
            for c in self.contributions
            if (c.signal == "context" or c.signal.startswith("context:"))
            and c.reason
            and c.value > 0
        ]
        return max(context, key=lambda c: c.value).reason if context else None


def _month(at: datetime, now: datetime | None) -> str:
    if now is not None and at.year != now.year:
        return f"{at:%B %Y}"
    return f"{at:%B}"


def _cos_to(vec: np.ndarray, centroid: np.ndarray | None) -> float:
    if centroid is None:
        return 0.0
    denom = float(np.linalg.norm(vec) * np.linalg.norm(centroid))
    return float(vec @ centroid) / denom if denom > 0 else 0.0


def weighted_centroid(
    items: Sequence[tuple[int, float]], vectors: Mapping[int, np.ndarray]
) -> np.ndarray | None:
    """Weighted mean of the vectors of ``items`` (those that have one), or None."""
    acc: np.ndarray | None = None
    total = 0.0
    for pid, w in items:
        vec = vectors.get(pid)
        if vec is None or w <= 0:
            continue
        acc = vec * w if acc is None else acc + vec * w
        total += w
    return None if acc is None or total <= 0 else acc / total


def score_candidate(
    product: Rankable,
    relevance: float,
    shopper: ShopperContext,
    weights: RankingWeights,
    vector: np.ndarray | None = None,
    positive_centroid: np.ndarray | None = None,
    negative_centroid: np.ndarray | None = None,
    price_position: float | None = None,
    review_sentiment: float | None = None,
    now: datetime | None = None,
) -> Scored:
    """The score of one candidate and its contributions (see the module docstring)."""
    parts: list[Contribution] = [
        Contribution("relevance", relevance),
        Contribution("quality", weights.quality * quality(product.rating, product.review_count)),
    ]
    if review_sentiment is not None:
        parts.append(Contribution("reviews", weights.review_sentiment * review_sentiment))
    if shopper.personalised:
        aff = shopper.affinity
        if not aff.is_empty():
            cat = aff.category_score(product.category)
            brand = aff.brand_score(product.brand)
            price = aff.price_score(price_position)
            value = weights.affinity * (0.45 * cat + 0.35 * brand + 0.20 * price)
            reason: str | None = None
            same_leaf = [p for p in aff.purchases if p.category == product.category]
            same_brand = [
                p
                for p in aff.purchases
                if product.brand and (p.brand or "").lower() == product.brand.lower()
            ]
            if brand >= 0.5 and same_brand:
                last = max(same_brand, key=lambda p: p.at)
                reason = f"you bought {last.title} in {_month(last.at, now)}"
            elif same_leaf and cat >= 0.5:
                last = max(same_leaf, key=lambda p: p.at)
                reason = f"you bought {last.title} in {_month(last.at, now)}"
            elif price >= 0.8 and aff.price_position is not None:
                reason = "in your usual price range"
            elif brand > 0 and product.brand:
                reason = f"you like {product.brand}"
            parts.append(Contribution("affinity", value, reason))
            if any(p.product_id == product.id for p in aff.purchases):
                parts.append(Contribution("owned", -weights.owned))
        if not shopper.prior.is_empty():
            seg, name = shopper.prior.score(product.category, product.brand)
            parts.append(
                Contribution(
                    "segment",
                    weights.segment * seg,
                    f"popular with customers like you ({name})" if name else None,
                )
            )
        sess = shopper.session
        if vector is not None and (positive_centroid is not None or negative_centroid is not None):
            pos = _cos_to(vector, positive_centroid)
            neg = _cos_to(vector, negative_centroid)
            # Only similarity above a typical same-category level counts as "like that one".
            value = weights.session * (max(0.0, pos - 0.3) * 1.5 - max(0.0, neg - 0.5) * 1.5)
            reason = None
            if value > 0 and sess.positive:
                anchor = sess.positive[-1][0]
                title = sess.titles.get(anchor)
                verb = "liked" if anchor in sess.liked else "looked at"
                reason = f"because you {verb} the {title}" if title else None
            parts.append(Contribution("session", value, reason))
        penalty = 0.0
        if product.colour and sess.negative_colours:
            penalty += sess.negative_colours.get(product.colour.lower(), 0.0)
        if product.brand and sess.negative_brands:
            penalty += sess.negative_brands.get(product.brand.lower(), 0.0)
        if sess.price_ceiling is not None and float(product.price) > sess.price_ceiling:
            over = (float(product.price) - sess.price_ceiling) / max(sess.price_ceiling, 1.0)
            penalty += min(1.0, 0.5 + over)
        if any(pid == product.id for pid, _ in sess.negative):
            penalty += 1.0
        if penalty:
            parts.append(Contribution("negative", -weights.negative * penalty))
        parts.extend(context_contributions(product, shopper.context, weights))
    total = sum(c.value for c in parts)
    return Scored(product=product, score=total, contributions=tuple(parts))


def context_contributions(
    product: Rankable, ctx: Context, weights: RankingWeights
) -> list[Contribution]:
    """The context's share of a candidate's score: the built-in season / climate tags
    (signal ``context``) and each configured rule that holds and boosts this product (signal
    ``context:<rule name>``, so the suggestion's signals say which rules applied)."""
    out: list[Contribution] = []
    tags = ctx.tags()
    if tags and product.tags:
        hits = tags & {t.lower() for t in product.tags}
        if hits:
            where = ctx.region
            what = f"for {ctx.season}" if ctx.season else "for your weather"
            reason = f"good {what} in {where}" if where else f"good {what}"
            out.append(Contribution("context", weights.context * min(1.0, len(hits)), reason))
    for rule in ctx.applied(weights.context_rules):
        if rule.boosts(product):
            out.append(Contribution(f"context:{rule.name}", rule.weight, rule.reason))
    return out


def mmr_select(
    scored: Sequence[Scored],
    vectors: Mapping[int, np.ndarray],
    k: int,
    weights: RankingWeights,
) -> list[Scored]:
    """Greedy maximal-marginal-relevance selection with a same-brand penalty.

    Each step picks the candidate maximising ``λ·score − (1−λ)·max cos(candidate, chosen)
    − same_brand·(products of its brand already chosen)`` (ties: input order). The running
    maximum similarity is kept as an array, so a step costs one matrix-vector product.
    Returned items keep their own (unadjusted) scores.
    """
    lam = weights.mmr_lambda
    n = len(scored)
    if n == 0 or k <= 0:
        return []
    dim = next((len(v) for v in vectors.values()), 0)
    units = np.zeros((n, max(dim, 1)), dtype=np.float32)
    for i, s in enumerate(scored):
        vec = vectors.get(s.product.id)
        if vec is not None:
            norm = float(np.linalg.norm(vec))
            units[i] = vec / norm if norm > 0 else vec
    base = lam * np.array([s.score for s in scored], dtype=np.float64)
    brands = [(s.product.brand or "").lower() for s in scored]
    max_sim = np.zeros(n, dtype=np.float64)  # running max similarity to the chosen ones
    penalty = np.zeros(n, dtype=np.float64)  # same-brand penalty so far
    free = np.ones(n, dtype=bool)
    chosen: list[Scored] = []
    while free.any() and len(chosen) < k:
        value = base - (1 - lam) * max_sim - penalty
        value[~free] = -np.inf
        pick = int(np.argmax(value))  # first maximum: ties keep the input order
        free[pick] = False
        chosen.append(scored[pick])
        max_sim = np.maximum(max_sim, units @ units[pick])
        same = np.array([b == brands[pick] for b in brands])
        penalty[same] += weights.same_brand
    return chosen


def personal_rank(
    candidates: Sequence[tuple[Rankable, float]],
    shopper: ShopperContext,
    weights: RankingWeights,
    k: int,
    vectors: Mapping[int, np.ndarray],
    prices: PricePositions | None = None,
    review_sentiment: Mapping[int, float] | None = None,
    now: datetime | None = None,
) -> list[Scored]:
    """Score ``(product, relevance)`` candidates for this shopper and pick ``k`` with MMR."""
    sess = shopper.session
    pos_c = weighted_centroid(sess.positive, vectors) if shopper.personalised else None
    neg_c = weighted_centroid(sess.negative, vectors) if shopper.personalised else None
    scored = [
        score_candidate(
            p,
            rel,
            shopper,
            weights,
            vector=vectors.get(p.id),
            positive_centroid=pos_c,
            negative_centroid=neg_c,
            price_position=prices.position(p.category, float(p.price)) if prices else None,
            review_sentiment=(review_sentiment or {}).get(p.id),
            now=now,
        )
        for p, rel in candidates
    ]
    return mmr_select(scored, vectors, k, weights)


def describe_price_band(position: tuple[float, float] | None) -> str | None:
    """Words for a price position: "budget", "mid-range" or "premium"."""
    if position is None:
        return None
    mean = position[0]
    return "budget" if mean < 0.35 else "premium" if mean > 0.65 else "mid-range"


__all__ = [
    "Affinity",
    "Context",
    "Contribution",
    "PastPurchase",
    "PricePositions",
    "RankingWeights",
    "Scored",
    "SegmentPrior",
    "SessionSignals",
    "ShopperContext",
    "context_contributions",
    "describe_price_band",
    "mmr_select",
    "personal_rank",
    "quality",
    "score_candidate",
    "weighted_centroid",
]
