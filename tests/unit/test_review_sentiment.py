"""Review sentiment without the model: text grouping, the report, SQL aggregates."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from tailor.sentiment import SentimentModel
from tailor.sentiment.reviews import (
    ReviewScoreReport,
    group_texts,
    normalize_text,
    recompute_product_sentiment,
    review_sentiment_table,
    score_reviews,
)
from tailor.store import (
    Product,
    ProductRecord,
    Review,
    ReviewRecord,
    make_session_factory,
    session_scope,
    upsert_products,
)


def test_normalize_text_collapses_whitespace() -> None:
    assert normalize_text("  Great\tfit,\n\nlove  it ") == "Great fit, love it"
    assert normalize_text("Great fit") != normalize_text("great fit")  # case is kept
    assert normalize_text("") == normalize_text("  \n") == normalize_text(None) == ""


def test_group_texts_dedupes_and_separates_empty_reviews() -> None:
    groups, empty = group_texts(
        [(1, "Love it"), (2, ""), (3, " Love  it"), (4, "Too small"), (5, "  "), (6, None)]
    )
    assert groups == {"Love it": [1, 3], "Too small": [4]}
    assert list(groups) == ["Love it", "Too small"]  # first-appearance order
    assert empty == [2, 5, 6]


def test_report_render() -> None:
    assert ReviewScoreReport(seconds=0.01).render() == "Review sentiment: nothing to score (0.0 s)."
    assert ReviewScoreReport(25630, 12389, 0, 8819, 36.3).render() == (
        "Review sentiment: 25630 reviews scored (12389 unique texts); "
        "8819 products updated in 36.3 s."
    )
    assert ReviewScoreReport(1, 1, 2, 1, 0.2).render() == (
        "Review sentiment: 1 review scored (1 unique text), 2 without text skipped; "
        "1 product updated in 0.2 s."
    )
    assert "no new reviews; 3 products updated" in str(ReviewScoreReport(products=3))


@pytest.fixture
def factory(tmp_path: Path) -> sessionmaker[Session]:
    return make_session_factory(f"sqlite:///{tmp_path / 'reviews.db'}")


def test_bad_sizes_are_rejected(factory: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="batch_size and chunk_size must be at least 1"):
        score_reviews(factory, batch_size=0)
    with pytest.raises(ValueError, match="got 64 and 0"):
        score_reviews(factory, chunk_size=0)


def test_recompute_matches_a_brute_force_mean(factory: sessionmaker[Session]) -> None:
    rng = random.Random(7)
    when = datetime(2026, 1, 2, tzinfo=UTC)
    records = [
        ProductRecord(
            sku=f"p{i}",
            title=f"Product {i}",
            category="Shoes",
            price=10.0,
            reviews=[ReviewRecord(3, f"review {i}-{j}", None, when) for j in range(i % 5)],
        )
        for i in range(40)
    ]
    with session_scope(factory) as s:
        upsert_products(s, records)
        ids = list(s.scalars(select(Review.id)))
        scores = {rid: rng.choice([None, rng.uniform(-1, 1)]) for rid in ids}
        s.execute(
            update(Review),
            [
                {"id": rid, "sentiment_label": "x", "sentiment_score": v}
                for rid, v in scores.items()
            ],
        )
        product_ids = list(s.scalars(select(Product.id)))
        assert recompute_product_sentiment(s, product_ids) == len(product_ids)

    with factory() as s:
        expected: dict[int, list[float]] = {}
        for pid, score in s.execute(select(Review.product_id, Review.sentiment_score)):
            if score is not None:
                expected.setdefault(pid, []).append(score)
        table = review_sentiment_table(s, product_ids)
        counts = {
            pid: n for pid, n in s.execute(select(Product.id, Product.review_sentiment_count))
        }
    assert set(table) == set(expected)
    for pid, values in expected.items():
        mean, n = table[pid]
        assert mean == pytest.approx(sum(values) / len(values), abs=1e-12)
        assert n == len(values)
    assert all(counts[pid] == 0 for pid in set(product_ids) - set(expected))


def test_nothing_to_score_never_loads_the_model(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as s:
        upsert_products(s, [ProductRecord(sku="a", title="A", category="Shoes", price=1.0)])
    # the path does not exist: the first call would fail
    report = score_reviews(factory, SentimentModel("/nonexistent/sentiment-model"))
    assert report.render().startswith("Review sentiment: nothing to score")
    assert not report.products
