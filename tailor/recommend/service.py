"""The recommendation service: candidates from the index, ranked, with a reason each.

This is where signals meet: relevance from the index, review quality and sentiment, the
shopper's affinity, segment prior, in-session signals and context, and MMR diversity — all
scored by :mod:`tailor.recommend.personal`, from inputs :mod:`tailor.recommend.signals` reads.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tailor.config import Settings
from tailor.experiments import Experiment, assign, load_experiments, unit_key
from tailor.nlu.understand import QueryUnderstanding, known_words_from_model
from tailor.nlu.vocab import Vocabulary
from tailor.recommend.context import load_context_rules
from tailor.recommend.criteria import Criteria
from tailor.recommend.personal import (
    RankingWeights,
    Scored,
    ShopperContext,
    personal_rank,
    quality,
    weighted_centroid,
)
from tailor.recommend.reasons import money, reason_for
from tailor.recommend.signals import ProtectedPolicy, SignalBuilder
from tailor.retrieval import Hit, ProductSearch
from tailor.retrieval.hybrid import MODES, HybridSearch, Mode
from tailor.retrieval.lexical import LexicalIndex, open_lexical
from tailor.retrieval.text import product_text
from tailor.store import make_session_factory
from tailor.store.catalog import ProductCache, get_products
from tailor.store.events import EventWriter, insert_event_rows, record_events
from tailor.store.models import Product
from tailor.store.retry import with_retry

log = logging.getLogger(__name__)

__all__ = [
    "ProductDetails",
    "Recommendation",
    "Recommender",
    "Relaxation",
    "Suggestion",
    "get_default_recommender",
    "quality",
    "set_default_recommender",
]


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
    #: The signals behind the score (``{"relevance": 0.61, "affinity": 0.08, ...}``).
    signals: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        product: Any,
        reason: str,
        score: float = 0.0,
        signals: dict[str, float] | None = None,
    ) -> Suggestion:
        """The suggestion of a catalog ``product`` (a :class:`Product` row) with its reason."""
        return cls(
            product_id=product.id,
            sku=product.sku,
            title=product.title,
            brand=product.brand,
            category=product.category,
            price=float(product.price),
            currency=product.currency,
            rating=product.rating,
            review_count=product.review_count or 0,
            colour=product.colour,
            material=product.material,
            image_url=product.image_url,
            in_stock=product.in_stock,
            reason=reason,
            score=score,
            signals=dict(signals or {}),
        )

    def to_card(self) -> dict[str, Any]:
        """The JSON card the widget renders."""
        # a flat copy of the fields (``asdict`` deep-copies each value: 0.15 ms per card)
        card = {name: getattr(self, name) for name in self.__dataclass_fields__}
        card["id"] = card.pop("product_id")
        card["price_text"] = money(self.price, self.currency)
        card["score"] = round(self.score, 4)
        card["signals"] = {k: round(v, 4) for k, v in self.signals.items()}
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
    #: "for you" when the shopper asked for nothing specific and their profile or session
    #: chose the products.
    basis: str | None = None


@dataclass(frozen=True)
class Retrieved:
    """Candidates found for a request before ranking: products with their search scores,
    their vectors, and how many products match in all."""

    candidates: list[tuple[Any, float]]
    vectors: dict[int, np.ndarray]
    total: int
    similar_title: str | None = None
    basis: str | None = None


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


class Recommender:
    """Finds, ranks and explains products for a shopper; records what was shown."""

    def __init__(
        self,
        search: ProductSearch,
        session_factory: sessionmaker[Session],
        vocab: Vocabulary,
        k: int = 4,
        weights: RankingWeights | None = None,
        signals: SignalBuilder | None = None,
        lexical: LexicalIndex | None = None,
        search_mode: str = "hybrid",
        lexical_weight: float = 1.0,
        understanding: QueryUnderstanding | None = None,
        experiments: Sequence[Experiment] = (),
    ) -> None:
        if search_mode not in MODES:
            raise ValueError(f"Unknown search mode {search_mode!r}; valid modes are {list(MODES)}")
        self.search = search
        self.session_factory = session_factory
        #: Candidate products between turns, checked against the catalog's version.
        self.products = ProductCache(session_factory)
        #: The log a turn writes after its reply, batched (see :meth:`log_later`).
        self.events = EventWriter(session_factory)
        self.vocab = vocab
        self.k = k
        self.weights = weights or RankingWeights()
        self.signals = signals or SignalBuilder(session_factory)
        self.search_mode: Mode = search_mode if lexical is not None else "dense"
        self.hybrid = (
            HybridSearch(search, lexical, weights=(1.0, lexical_weight), dense_scale=True)
            if lexical is not None
            else None
        )
        self._understanding = understanding
        #: A/B experiments shoppers are assigned to (``experiments.toml``).
        self.experiments = tuple(experiments)

    @property
    def understanding(self) -> QueryUnderstanding:
        """Spelling, constraints and semantic remainder of messages, read against this
        catalog (built on first use from the database and the embedding model's words)."""
        if self._understanding is None:
            with self.session_factory() as session:
                self._understanding = QueryUnderstanding.from_session(
                    session, self.vocab, known_words_from_model(self.search.embedder.model_path)
                )
        return self._understanding

    @classmethod
    def from_settings(cls, settings: Settings, progress: bool = False) -> Recommender:
        """Open the catalog database and the (fresh or synced) index named by the settings."""
        factory = make_session_factory(settings.database_url)
        search = ProductSearch.open_configured(settings, factory, progress=progress)
        with factory() as session:
            vocab = Vocabulary.from_session(session)
        lexical = None
        if settings.search_mode != "dense":

            def texts() -> list[tuple[int, str]]:
                with factory() as session:
                    rows = session.scalars(select(Product).order_by(Product.id))
                    return [(p.id, product_text(p)) for p in rows]

            lexical = open_lexical(Path(str(settings.index_dir)), search.fingerprint, texts)
        return cls(
            search,
            factory,
            vocab,
            k=settings.suggestions,
            weights=weights_from_settings(settings),
            signals=SignalBuilder(
                factory,
                session_minutes=settings.session_expiration_minutes,
                protected=ProtectedPolicy.from_settings(settings),
            ),
            lexical=lexical,
            search_mode=settings.search_mode,
            lexical_weight=settings.search_lexical_weight,
            experiments=load_experiments(settings.experiments_file),
        )

    def shopper(
        self,
        sender_id: str | None,
        customer_id: int | None = None,
        metadata: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> ShopperContext:
        """The ranking inputs for this shopper (``customer_id`` only from a verified identity),
        with their arm of a running experiment (none for opted-out shoppers: experiments
        vary the personal ranking they turned off)."""
        now = now or datetime.now(UTC)
        ctx = self.signals.build(sender_id, customer_id, metadata, now)
        if self.experiments and ctx.personalised:
            key = unit_key(ctx.external_id, sender_id)
            ctx.experiment = assign(self.experiments, key, ctx.segments, now)
        return ctx

    def weights_for(self, shopper: ShopperContext) -> RankingWeights:
        """The ranking weights for ``shopper``: the configured ones, with their experiment
        arm's overrides applied."""
        if shopper.experiment is None or not shopper.experiment.weights:
            return self.weights
        known = {f.name for f in fields(RankingWeights)}
        unknown = sorted(set(shopper.experiment.weights) - known)
        if unknown:
            raise ValueError(
                f"experiment {shopper.experiment.experiment!r} overrides unknown ranking "
                f"weight(s) {unknown}; valid weights are {sorted(known)}"
            )
        overrides: dict[str, Any] = dict(shopper.experiment.weights)
        return replace(self.weights, **overrides)

    def catalog_similarity(self, text: str) -> float:
        """Cosine similarity between ``text`` and the closest product (0 for no text): how
        much a message is about this catalog at all."""
        if not text.strip():
            return 0.0
        hits = self.search.search(text, 1)
        return float(hits[0].score) if hits else 0.0

    # -- recommendations -------------------------------------------------------------
    def _retrieve(
        self,
        criteria: Criteria,
        query: str | np.ndarray,
        k: int,
        exclude: Sequence[int],
        avoid: Sequence[int],
    ) -> Retrieved:
        want = max(k * 10, 40)
        exclude, avoid = tuple(exclude), tuple(avoid)
        flt = criteria.to_filter(exclude_ids=exclude + avoid)
        if criteria.similar_to is not None:
            flt = replace(flt, exclude_ids=(*flt.exclude_ids, criteria.similar_to))
        hits = self._candidates(criteria, query, want, flt)
        if len(hits) < k and avoid:
            relaxed = criteria.to_filter(exclude_ids=exclude)
            if criteria.similar_to is not None:
                relaxed = replace(relaxed, exclude_ids=(*relaxed.exclude_ids, criteria.similar_to))
            extra = self._candidates(criteria, query, want, relaxed)
            have = {h.product_id for h in hits}
            hits = list(hits) + [h for h in extra if h.product_id not in have]
        total = self.search.count(criteria.to_filter(exclude_ids=exclude))
        # the "more like" product is read with the candidates: one cache lookup per turn
        wanted = [h.product_id for h in hits]
        if criteria.similar_to is not None:
            wanted.append(criteria.similar_to)
        products = {p.id: p for p in self.products.get(wanted)}
        ref = products.get(criteria.similar_to) if criteria.similar_to is not None else None
        similar_title = ref.title if ref is not None else None
        candidates = [(products[h.product_id], h.score) for h in hits if h.product_id in products]
        return Retrieved(
            candidates=candidates,
            vectors=self._vectors([p.id for p, _ in candidates]),
            total=total,
            similar_title=similar_title,
            basis="for you" if isinstance(query, np.ndarray) and criteria.is_empty() else None,
        )

    def recommend(
        self,
        criteria: Criteria,
        k: int | None = None,
        exclude: Sequence[int] = (),
        avoid: Sequence[int] = (),
        shopper: ShopperContext | None = None,
        now: datetime | None = None,
    ) -> Recommendation:
        """Up to ``k`` products satisfying ``criteria``, ranked for ``shopper``; never one of
        ``exclude``. Products in ``avoid`` (already seen) are used only when too few others
        match. Without criteria, a known or active shopper gets products "for you".
        """
        k = k or self.k
        shopper = shopper or ShopperContext.anonymous()
        query = self._query_for(criteria, shopper)
        if query is None:
            return Recommendation([], criteria, 0)
        retrieved = self._retrieve(criteria, query, k, exclude, avoid)
        candidates = retrieved.candidates
        vectors = dict(retrieved.vectors)
        own = [pid for pid, _ in (*shopper.session.positive, *shopper.session.negative)]
        vectors.update(self._vectors([pid for pid in own if pid not in vectors]))
        review_sentiment = {
            p.id: p.review_sentiment for p, _ in candidates if p.review_sentiment is not None
        }
        ranked = personal_rank(
            candidates,
            shopper,
            self.weights_for(shopper),
            k,
            vectors,
            prices=self.signals.prices,
            review_sentiment=review_sentiment,
            now=now or datetime.now(UTC),
        )
        suggestions = [self._suggestion(s, criteria, retrieved.similar_title) for s in ranked]
        relaxations = self.relaxations(criteria) if not suggestions else []
        return Recommendation(
            suggestions=suggestions,
            criteria=criteria,
            total_matches=retrieved.total,
            relaxations=relaxations,
            similar_title=retrieved.similar_title,
            basis=retrieved.basis,
        )

    def warm_up(self) -> int:
        """Load what the first turns would otherwise load: the query model (one search), the
        shared price tables, and the catalog's products when they fit in the product cache.
        Returns how many products were read into it."""
        self.search.search("warm up", 1, None)
        _ = self.signals.prices
        return self.products.fill()

    def embed_ahead(self, criteria: Criteria) -> None:
        """Start embedding the text :meth:`recommend` will search for ``criteria``, so that
        work overlaps with loading the shopper's context (see ``ProductSearch.embed_ahead``).
        Nothing to do for a "more like" request, a request without text or lexical search."""
        if criteria.similar_to is not None or self.search_mode == "lexical":
            return
        text = criteria.query_text()
        if text:
            self.search.embed_ahead(text)

    def _query_for(self, criteria: Criteria, shopper: ShopperContext) -> str | np.ndarray | None:
        """Text of the criteria; without any, the shopper's session or history as a vector."""
        if criteria.similar_to is not None:
            return self.search.vector(criteria.similar_to)
        text = criteria.query_text()
        if text:
            return text
        if shopper.personalised:
            centroid = weighted_centroid(
                shopper.session.positive, self._vectors([p for p, _ in shopper.session.positive])
            )
            if centroid is not None:
                return np.asarray(centroid, dtype=np.float32)
            if shopper.affinity.purchases:
                recent = sorted(shopper.affinity.purchases, key=lambda p: p.at)[-5:]
                weighted = [(p.product_id, 1.0 + i) for i, p in enumerate(recent)]
                centroid = weighted_centroid(
                    weighted, self._vectors([p.product_id for p in recent])
                )
                if centroid is not None:
                    return np.asarray(centroid, dtype=np.float32)
        return "popular products" if not criteria.is_empty() else None

    def _candidates(
        self, criteria: Criteria, query: str | np.ndarray, want: int, flt: Any
    ) -> list[Hit]:
        """Text goes through the configured search mode; a vector (similar-to, for-you)
        can only be searched densely."""
        if isinstance(query, str) and self.hybrid is not None and self.search_mode != "dense":
            return self.hybrid.search(query, want, flt, mode=self.search_mode)
        return self.search.search(query, want, flt)

    def _vectors(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        return self.search.vectors(ids)

    def _suggestion(
        self, scored: Scored, criteria: Criteria, similar_title: str | None
    ) -> Suggestion:
        p: Any = scored.product
        factual = reason_for(p, criteria, similar_title)
        personal = scored.personal_reason()
        if personal:
            reason = personal[0].upper() + personal[1:] + "; " + factual[0].lower() + factual[1:]
        else:
            reason = factual
        return Suggestion.of(
            p, reason, scored.score, {c.signal: c.value for c in scored.contributions}
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
        customer_id: int | None = None,
        value: float | None = None,
    ) -> None:
        """Log an event (shown, details, compare, feedback, message); failures are logged,
        not raised. ``customer_id`` only from a verified identity."""

        def write() -> None:
            with self.session_factory.begin() as session:
                record_events(
                    session, kind, sender_id, list(product_ids), payload, customer_id, value
                )

        try:
            with_retry(write, f"recording a {kind} event")
        except SQLAlchemyError:  # the reply matters more than the log line
            log.exception("could not record %s event for %s", kind, sender_id)

    def record_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Store event rows (:func:`~tailor.store.events.event_rows`) now, in one
        transaction, for what this turn's ranking must already read (a negative reaction);
        failures are logged, not raised."""

        def write() -> None:
            with self.session_factory.begin() as session:
                insert_event_rows(session, rows)

        try:
            with_retry(write, f"recording {len(rows)} event rows")
        except SQLAlchemyError:  # the reply matters more than the log line
            log.exception("could not record %d event rows", len(rows))

    async def log_later(self, rows: Sequence[dict[str, Any]]) -> None:
        """Write event rows (:func:`~tailor.store.events.event_rows`) through the batching
        writer; returns once they are committed. For work after a turn's reply: its message
        and what it showed go in one insert, shared with other conversations' turns."""
        await asyncio.wrap_future(self.events.submit(rows))


def weights_from_settings(settings: Settings) -> RankingWeights:
    """The ranking weights configured in ``settings`` (``TAILOR_RANK_*``)."""
    return RankingWeights(
        quality=settings.rank_quality,
        review_sentiment=settings.rank_review_sentiment,
        affinity=settings.rank_affinity,
        segment=settings.rank_segment,
        session=settings.rank_session,
        context=settings.rank_context,
        negative=settings.rank_negative,
        same_brand=settings.rank_same_brand,
        owned=settings.rank_owned,
        mmr_lambda=settings.rank_mmr_lambda,
        context_rules=load_context_rules(settings.context_rules_file),
    )


_default: Recommender | None = None
_default_lock = threading.Lock()


def get_default_recommender(settings: Settings | None = None) -> Recommender:
    """The process-wide recommender, built on first use (not at import)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Recommender.from_settings(settings or Settings.load())
        return _default


def loaded_recommender() -> Recommender | None:
    """The process-wide recommender if it is built already (never builds it)."""
    return _default


def set_default_recommender(recommender: Recommender | None) -> None:
    """Install (or clear) the process-wide recommender, e.g. in tests."""
    global _default
    with _default_lock:
        _default = recommender
