"""Sentiment of product reviews, scored once at import and averaged per product.

:func:`score_reviews` gives every review that has no ``sentiment_label`` yet a label and a
signed score (``p(positive) - p(negative)``, in [-1, 1]), then stores on each product whose
reviews changed the mean signed score of its scored reviews (``Product.review_sentiment``)
and how many there are (``Product.review_sentiment_count``): a quality signal next to the
star rating.

* Identical texts (after collapsing whitespace) are scored once per run: template-made
  catalogs such as the demo repeat the same sentences across thousands of reviews.
* A review with no text gets the label :data:`NO_TEXT_LABEL` and no score: it is never
  rescanned and never counts in a product's aggregate.
* Work is committed every :data:`CHUNK_REVIEWS` reviews (labels and the touched products'
  aggregates in one transaction, none held while the model runs), so a crash loses at
  most one chunk and leaves every stored aggregate consistent with the stored labels.
* Reviews that :func:`tailor.store.upsert_products` rewrote come back unlabelled, so they
  are picked up by the next run; a run with nothing to score does not load the model.

Importing this module does not import torch; the model is read on the first text to score.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, select, true, update
from sqlalchemy.orm import Session, sessionmaker

from tailor.store.models import Product, Review

if TYPE_CHECKING:
    from tailor.sentiment.model import SentimentModel

__all__ = [
    "CHUNK_REVIEWS",
    "NO_TEXT_LABEL",
    "ReviewScoreReport",
    "group_texts",
    "normalize_text",
    "recompute_product_sentiment",
    "review_sentiment_table",
    "score_reviews",
]

#: ``Review.sentiment_label`` of a review without text: looked at, not scored, not counted.
NO_TEXT_LABEL = "none"
#: Reviews read, scored and committed per transaction.
CHUNK_REVIEWS = 1000
#: Rows per ``IN (...)`` clause; well under every backend's bound-parameter limit.
_IN_CHUNK = 500
#: Distinct texts remembered between chunks of one run (the memo is cleared beyond this).
_MEMO_LIMIT = 200_000


@dataclass
class ReviewScoreReport:
    """What :func:`score_reviews` did.

    ``reviews`` counts reviews given a label by the model, ``texts`` the distinct texts the
    model actually scored (the rest were repeats), ``empty`` the reviews without text marked
    :data:`NO_TEXT_LABEL`, ``products`` the products whose aggregate was recomputed.
    """

    reviews: int = 0
    texts: int = 0
    empty: int = 0
    products: int = 0
    seconds: float = 0.0

    def render(self) -> str:
        """A one-line summary, e.g. ``Review sentiment: 25630 reviews scored (12389 unique
        texts); 8819 products updated in 36.3 s.``"""
        if not (self.reviews or self.empty or self.products):
            return f"Review sentiment: nothing to score ({self.seconds:.1f} s)."
        parts = [f"{_count(self.reviews, 'review')} scored ({_count(self.texts, 'unique text')})"]
        if self.empty:
            parts.append(f"{self.empty} without text skipped")
        done = ", ".join(parts) if self.reviews or self.empty else "no new reviews"
        return (
            f"Review sentiment: {done}; {_count(self.products, 'product')} updated "
            f"in {self.seconds:.1f} s."
        )

    def __str__(self) -> str:
        return self.render()


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def normalize_text(text: str | None) -> str:
    """``text`` with runs of whitespace collapsed to one space and the ends stripped: the
    key under which identical reviews share one score ("" for a review without text)."""
    return " ".join((text or "").split())


def group_texts(rows: Iterable[tuple[int, str | None]]) -> tuple[dict[str, list[int]], list[int]]:
    """Group ``(review id, text)`` rows by :func:`normalize_text`.

    Returns ``({text: [review ids]}, [ids of reviews without text])``; texts keep the order
    of their first appearance.
    """
    groups: dict[str, list[int]] = {}
    empty: list[int] = []
    for review_id, text in rows:
        key = normalize_text(text)
        if key:
            groups.setdefault(key, []).append(int(review_id))
        else:
            empty.append(int(review_id))
    return groups, empty


def _scored_reviews(product_id: Any) -> Any:
    return (Review.product_id == product_id) & Review.sentiment_score.is_not(None)


def recompute_product_sentiment(session: Session, product_ids: Iterable[int]) -> int:
    """Set ``review_sentiment`` (mean signed score, ``None`` without any) and
    ``review_sentiment_count`` (0 without any) of these products from their scored reviews,
    in SQL; returns how many ids were given."""
    ids = sorted({int(i) for i in product_ids})
    mean = select(func.avg(Review.sentiment_score)).where(_scored_reviews(Product.id))
    count = select(func.count(Review.id)).where(_scored_reviews(Product.id))
    for start in range(0, len(ids), _IN_CHUNK):
        session.execute(
            update(Product)
            .where(Product.id.in_(ids[start : start + _IN_CHUNK]))
            .values(
                review_sentiment=mean.scalar_subquery(),
                review_sentiment_count=count.scalar_subquery(),
            ),
            execution_options={"synchronize_session": False},
        )
    return len(ids)


def _stale_products(session: Session) -> list[int]:
    """Products whose stored count differs from their number of scored reviews, e.g. a
    product whose reviews were all removed (nothing is left to rescore for it)."""
    scored = (
        select(Review.product_id, func.count(Review.id).label("n"))
        .where(Review.sentiment_score.is_not(None))
        .group_by(Review.product_id)
        .subquery()
    )
    stmt = (
        select(Product.id)
        .outerjoin(scored, scored.c.product_id == Product.id)
        .where(func.coalesce(Product.review_sentiment_count, 0) != func.coalesce(scored.c.n, 0))
    )
    return [int(pid) for pid in session.scalars(stmt)]


def review_sentiment_table(
    session: Session, product_ids: Sequence[int]
) -> dict[int, tuple[float, int]]:
    """``{product id: (review_sentiment, review_sentiment_count)}`` as stored, for the given
    products that have at least one scored review."""
    wanted = sorted({int(i) for i in product_ids})
    out: dict[int, tuple[float, int]] = {}
    for start in range(0, len(wanted), _IN_CHUNK):
        stmt = select(Product.id, Product.review_sentiment, Product.review_sentiment_count).where(
            Product.id.in_(wanted[start : start + _IN_CHUNK]),
            Product.review_sentiment.is_not(None),
        )
        for pid, mean, n in session.execute(stmt):
            if mean is not None:
                out[int(pid)] = (float(mean), int(n or 0))
    return out


@contextmanager
def _bar(total: int, enabled: bool) -> Iterator[Any]:
    from tqdm import tqdm

    bar = tqdm(
        total=total, desc="Review sentiment", unit="text", file=sys.stderr, disable=not enabled
    )
    try:
        yield bar
    finally:
        bar.close()


def score_reviews(
    session_factory: sessionmaker[Session],
    model: SentimentModel | None = None,
    *,
    rescore: bool = False,
    batch_size: int = 64,
    progress: bool = False,
    chunk_size: int = CHUNK_REVIEWS,
) -> ReviewScoreReport:
    """Score the reviews that have no sentiment yet (every review with ``rescore``) and
    recompute the aggregate of the products they belong to.

    ``model`` defaults to :meth:`SentimentModel.load` (the configured model), loaded only if
    there is a text to score. Texts are scored ``batch_size`` at a time; each chunk of
    ``chunk_size`` reviews is committed in its own transaction. ``progress`` shows a
    tqdm bar of distinct texts on stderr. Products whose stored count no longer matches
    their scored reviews (their reviews were removed) are recomputed as well.
    """
    if batch_size < 1 or chunk_size < 1:
        raise ValueError(
            f"batch_size and chunk_size must be at least 1, got {batch_size} and {chunk_size}"
        )
    t0 = time.perf_counter()
    report = ReviewScoreReport()
    pending = true() if rescore else Review.sentiment_label.is_(None)
    table = Review.metadata.tables[Review.__tablename__]

    with session_factory() as session:
        distinct = session.scalar(
            select(func.count(func.distinct(Review.text))).where(pending, Review.text != "")
        )
    memo: dict[str, tuple[str, float]] = {}
    touched: set[int] = set()
    last_id = 0
    with _bar(int(distinct or 0), progress and bool(distinct)) as bar:
        while True:
            with session_factory() as session:  # read, then score outside any transaction
                rows = session.execute(
                    select(Review.id, Review.product_id, Review.text)
                    .where(pending, Review.id > last_id)
                    .order_by(Review.id)
                    .limit(chunk_size)
                ).all()
            if not rows:
                break
            last_id = int(rows[-1][0])
            groups, empty = group_texts((rid, text) for rid, _, text in rows)
            new = sorted((t for t in groups if t not in memo), key=len)
            if new:
                if model is None:
                    from tailor.sentiment.model import SentimentModel

                    model = SentimentModel.load()
                for start in range(0, len(new), batch_size):
                    texts = new[start : start + batch_size]
                    for text, result in zip(texts, model(texts), strict=True):
                        memo[text] = (result.label, result.score)
                    bar.update(len(texts))
            updates = [
                {"rid": rid, "label": memo[text][0], "score": memo[text][1]}
                for text, ids in groups.items()
                for rid in ids
            ]
            updates += [{"rid": rid, "label": NO_TEXT_LABEL, "score": None} for rid in empty]
            chunk_products = {int(pid) for _, pid, _ in rows}
            with session_factory.begin() as session:  # labels + aggregates, one transaction
                session.execute(
                    update(table)
                    .where(table.c.id == bindparam("rid"))
                    .values(sentiment_label=bindparam("label"), sentiment_score=bindparam("score")),
                    updates,
                )
                recompute_product_sentiment(session, chunk_products)
            touched |= chunk_products
            report.reviews += len(updates) - len(empty)
            report.texts += len(new)
            report.empty += len(empty)
            if len(memo) > _MEMO_LIMIT:
                memo.clear()
        bar.total = bar.n
        bar.refresh()

    with session_factory.begin() as session:
        stale = set(_stale_products(session)) - touched
        recompute_product_sentiment(session, stale)
    report.products = len(touched | stale)
    report.seconds = time.perf_counter() - t0
    return report
