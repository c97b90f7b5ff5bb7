"""The recommendation service: candidates from the index, ranked, with a reason each.

This is where signals meet. In v0 they are relevance, review quality and brand diversity;
personal and segment signals join here later.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tailor.config import Settings
from tailor.nlu.vocab import Vocabulary
from tailor.recommend.criteria import Criteria
from tailor.recommend.reasons import money, reason_for
from tailor.retrieval import Embedder, Hit, ProductSearch
from tailor.store import Product, make_session_factory
from tailor.store.catalog import get_products
from tailor.store.events import record_events

log = logging.getLogger(__name__)

#: Weights of the ranking signals (relevance is cosine similarity in [-1, 1]).
QUALITY_WEIGHT = 0.08
SAME_BRAND_PENALTY = 0.03
#: Bayesian prior for ratings: a product with few reviews is pulled towards this mean.
PRIOR_MEAN, PRIOR_COUNT = 4.0, 10


@dataclass(frozen=True)
class Suggestion:
    """A product chosen for the shopper, with the reason shown on its card."""

    product_id: int
    sku: str
    title: str
    brand: str | None
    category: str
    price: float
    currency: str
    rating: float | None
    review_count: int
    colour: str | None
    material: str | None
    image_url: str | None
    in_stock: bool
    reason: str
    score: float

    def to_card(self) -> dict[str, Any]:
        """The JSON card the widget renders."""
        card = asdict(self)
        card["id"] = card.pop("product_id")
        card["price_text"] = money(self.price, self.currency)
        card["score"] = round(self.score, 4)
        return card


@dataclass(frozen=True)
class Relaxation:
    """A way to loosen the criteria that would find products, e.g. dropping the colour."""

    label: str
    criteria: Criteria
    matches: int


@dataclass(frozen=True)
class Recommendation:
    """The answer to one request."""

    suggestions: list[Suggestion]
    criteria: Criteria
    total_matches: int
    relaxations: list[Relaxation] = field(default_factory=list)
    similar_title: str | None = None


@dataclass(frozen=True)
class ProductDetails:
    """Everything the bot says about one product."""

    product_id: int
    title: str
    brand: str | None
    category: str
    price: float
    currency: str
    rating: float | None
    review_count: int
    colour: str | None
    material: str | None
    sizes: list[str]
    stock: int
    description: str
    tags: list[str]
    image_url: str | None
    reviews: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict for payloads."""
        data = asdict(self)
        data["id"] = data.pop("product_id")
        data["price_text"] = money(self.price, self.currency)
        return data


def quality(rating: float | None, count: int) -> float:
    """Bayesian-average rating mapped to [-1, 1] (3/5 → -0.5, 5/5 → 0.5 around the prior)."""
    r = PRIOR_MEAN if rating is None else float(rating)
    n = max(0, int(count or 0))
    avg = (r * n + PRIOR_MEAN * PRIOR_COUNT) / (n + PRIOR_COUNT)
    return max(-1.0, min(1.0, (avg - 4.0) / 1.0))


def rank(
    hits: Sequence[Hit],
    products: dict[int, Product],
    k: int,
) -> list[tuple[Product, float]]:
    """Greedy re-rank: relevance + review quality, with a penalty for repeating a brand."""
    base: list[tuple[Product, float]] = []
    for hit in hits:
        p = products.get(hit.product_id)
        if p is None:
            continue
        base.append((p, hit.score + QUALITY_WEIGHT * quality(p.rating, p.review_count)))
    chosen: list[tuple[Product, float]] = []
    brand_counts: dict[str, int] = {}
    pool = list(base)
    while pool and len(chosen) < k:
        best_i, best_score = 0, -math.inf
        for i, (p, s) in enumerate(pool):
            adjusted = s - SAME_BRAND_PENALTY * brand_counts.get((p.brand or "").lower(), 0)
            if adjusted > best_score:
                best_i, best_score = i, adjusted
        p, _ = pool.pop(best_i)
        brand_counts[(p.brand or "").lower()] = brand_counts.get((p.brand or "").lower(), 0) + 1
        chosen.append((p, best_score))
    return chosen


class Recommender:
    """Finds, ranks and explains products; records what was shown."""

    def __init__(
        self,
        search: ProductSearch,
        session_factory: sessionmaker[Session],
        vocab: Vocabulary,
        k: int = 4,
    ) -> None:
        self.search = search
        self.session_factory = session_factory
        self.vocab = vocab
        self.k = k

    @classmethod
    def from_settings(cls, settings: Settings, progress: bool = False) -> Recommender:
        """Open the catalog database and the (fresh or synced) index named by the settings."""
        factory = make_session_factory(settings.database_url)
        embedder = Embedder(settings.embedding_model, batch_size=settings.embedding_batch_size)
        search = ProductSearch.open(
            Path(str(settings.index_dir)),
            factory,
            embedder,
            backend=settings.index_backend,
            progress=progress,
        )
        with factory() as session:
            vocab = Vocabulary.from_session(session)
        return cls(search, factory, vocab, k=settings.suggestions)

    # -- recommendations -------------------------------------------------------------
    def recommend(
        self,
        criteria: Criteria,
        k: int | None = None,
        exclude: Sequence[int] = (),
        avoid: Sequence[int] = (),
    ) -> Recommendation:
        """Up to ``k`` products satisfying ``criteria``; never one of ``exclude``.

        Products in ``avoid`` (already seen) are used only when too few others match.
        """
        k = k or self.k
        flt = criteria.to_filter(exclude_ids=tuple(exclude) + tuple(avoid))
        want = max(k * 5, 20)
        similar_title: str | None = None
        if criteria.similar_to is not None:
            flt = replace(flt, exclude_ids=(*flt.exclude_ids, criteria.similar_to))
            hits = self.search.similar(criteria.similar_to, want, flt)
            with self.session_factory() as session:
                ref = get_products(session, [criteria.similar_to])
                similar_title = ref[0].title if ref else None
        else:
            hits = self.search.search(self._query(criteria), want, flt)
        if len(hits) < k and avoid:
            relaxed = criteria.to_filter(exclude_ids=tuple(exclude))
            if criteria.similar_to is not None:
                relaxed = replace(relaxed, exclude_ids=(*relaxed.exclude_ids, criteria.similar_to))
                extra = self.search.similar(criteria.similar_to, want, relaxed)
            else:
                extra = self.search.search(self._query(criteria), want, relaxed)
            have = {h.product_id for h in hits}
            hits = list(hits) + [h for h in extra if h.product_id not in have]
        total = self.search.count(criteria.to_filter(exclude_ids=tuple(exclude)))
        with self.session_factory() as session:
            products = {p.id: p for p in get_products(session, [h.product_id for h in hits])}
            ranked = rank(hits, products, k)
            suggestions = [self._suggestion(p, s, criteria, similar_title) for p, s in ranked]
        relaxations = self.relaxations(criteria) if not suggestions else []
        return Recommendation(
            suggestions=suggestions,
            criteria=criteria,
            total_matches=total,
            relaxations=relaxations,
            similar_title=similar_title,
        )

    def _query(self, criteria: Criteria) -> str:
        return criteria.query_text() or "popular products"

    def _suggestion(
        self, p: Product, score: float, criteria: Criteria, similar_title: str | None
    ) -> Suggestion:
        return Suggestion(
            product_id=p.id,
            sku=p.sku,
            title=p.title,
            brand=p.brand,
            category=p.category,
            price=float(p.price),
            currency=p.currency,
            rating=p.rating,
            review_count=p.review_count or 0,
            colour=p.colour,
            material=p.material,
            image_url=p.image_url,
            in_stock=p.in_stock,
            reason=reason_for(p, criteria, similar_title),
            score=score,
        )

    def relaxations(self, criteria: Criteria, limit: int = 3) -> list[Relaxation]:
        """Ways to loosen criteria that match nothing, each with how many products it finds."""
        options: list[tuple[str, Criteria]] = []
        if criteria.colour:
            options.append(
                (f"any colour, not just {criteria.colour}", replace(criteria, colour=None))
            )
        if criteria.brands:
            options.append(
                (f"any brand, not just {', '.join(criteria.brands)}", replace(criteria, brands=()))
            )
        if criteria.price_max is not None:
            options.append(("a higher budget", replace(criteria, price_max=None)))
        if criteria.price_min is not None:
            options.append(("a lower minimum price", replace(criteria, price_min=None)))
        if criteria.material:
            options.append(
                (f"any material, not just {criteria.material}", replace(criteria, material=None))
            )
        if criteria.size:
            options.append((f"any size, not just {criteria.size}", replace(criteria, size=None)))
        if criteria.exclude_brands or criteria.exclude_colours:
            options.append(
                (
                    "the brands and colours you ruled out",
                    replace(criteria, exclude_brands=(), exclude_colours=()),
                )
            )
        found = [
            Relaxation(label, relaxed, self.search.count(relaxed.to_filter()))
            for label, relaxed in options
        ]
        found = [r for r in found if r.matches > 0]
        found.sort(key=lambda r: -r.matches)
        return found[:limit]

    # -- details, comparison, logging ----------------------------------------------
    def details(self, product_ids: Sequence[int], reviews: int = 2) -> list[ProductDetails]:
        """Full details of products, in the order given, with their most helpful reviews."""
        with self.session_factory() as session:
            out = []
            for p in get_products(session, list(product_ids)):
                revs = sorted(p.reviews, key=lambda r: (-len(r.text or ""), r.id))[:reviews]
                out.append(
                    ProductDetails(
                        product_id=p.id,
                        title=p.title,
                        brand=p.brand,
                        category=p.category,
                        price=float(p.price),
                        currency=p.currency,
                        rating=p.rating,
                        review_count=p.review_count or 0,
                        colour=p.colour,
                        material=p.material,
                        sizes=list(p.sizes or []),
                        stock=p.stock or 0,
                        description=p.description or "",
                        tags=list(p.tags or []),
                        image_url=p.image_url,
                        reviews=[
                            {"rating": r.rating, "text": r.text, "author": r.author} for r in revs
                        ],
                    )
                )
            return out

    def record(
        self,
        kind: str,
        sender_id: str | None,
        product_ids: Sequence[int],
        payload: dict[str, Any] | None = None,
    ) -> None:
        """Log an event (shown, details, compare, feedback); failures are logged, not raised."""
        try:
            with self.session_factory.begin() as session:
                record_events(session, kind, sender_id, list(product_ids), payload)
        except SQLAlchemyError:  # the reply matters more than the log line
            log.exception("could not record %s event for %s", kind, sender_id)


_default: Recommender | None = None
_default_lock = threading.Lock()


def get_default_recommender(settings: Settings | None = None) -> Recommender:
    """The process-wide recommender, built on first use (not at import)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Recommender.from_settings(settings or Settings.load())
        return _default


def set_default_recommender(recommender: Recommender | None) -> None:
    """Install (or clear) the process-wide recommender, e.g. in tests."""
    global _default
    with _default_lock:
        _default = recommender
