"""Review sentiment scored into a real SQLite catalog with the shipped model (slow)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tailor.sentiment import SentimentModel, default_model_path
from tailor.sentiment.reviews import NO_TEXT_LABEL, review_sentiment_table, score_reviews
from tailor.store import (
    Product,
    ProductRecord,
    Review,
    ReviewRecord,
    make_session_factory,
    session_scope,
    upsert_products,
)

pytestmark = pytest.mark.slow

WRITTEN = datetime(2026, 1, 2, tzinfo=UTC)
POSITIVE = (
    "Love it, excellent quality, would buy again.",
    "Absolutely fantastic, the best jacket I have owned.",
    "Really happy with it, fits perfectly and looks great.",
)
NEGATIVE = (
    "Terrible quality, it broke after two days. Waste of money.",
    "Awful. Very disappointed, I am returning it.",
    "Cheap material and poor stitching, would not recommend.",
)


def product(sku: str, *texts: str) -> ProductRecord:
    return ProductRecord(
        sku=sku,
        title=f"Jacket {sku}",
        category="Clothing > Jackets",
        price=80.0,
        reviews=[ReviewRecord(3, t, f"A{i}", WRITTEN) for i, t in enumerate(texts)],
    )


CATALOG = [
    product("good", *POSITIVE),
    product("bad", *NEGATIVE),
    # the same texts again (deduplicated), one with different spacing, and two without text
    product("mixed", POSITIVE[0], "  Awful.  Very disappointed, I am returning it. ", "", "  "),
    product("blank", ""),
    product("none"),
]


@pytest.fixture(scope="module")
def model() -> SentimentModel:
    m = SentimentModel.load(default_model_path())
    m("warm up")
    return m


@pytest.fixture
def factory(tmp_path: Path) -> sessionmaker[Session]:
    factory = make_session_factory(f"sqlite:///{tmp_path / 'reviews.db'}")
    with session_scope(factory) as s:
        upsert_products(s, CATALOG)
    return factory


def reviews_by_sku(factory: sessionmaker[Session]) -> dict[str, list[Review]]:
    with factory() as s:
        rows = s.execute(select(Product.sku, Review).join(Review.product).order_by(Review.id))
        out: dict[str, list[Review]] = {}
        for sku, review in rows:
            out.setdefault(sku, []).append(review)
    return out


def products_by_sku(factory: sessionmaker[Session]) -> dict[str, Product]:
    with factory() as s:
        return {p.sku: p for p in s.scalars(select(Product))}


def assert_aggregates_match_brute_force(factory: sessionmaker[Session]) -> None:
    reviews = reviews_by_sku(factory)
    for sku, p in products_by_sku(factory).items():
        scores = [r.sentiment_score for r in reviews.get(sku, []) if r.sentiment_score is not None]
        if scores:
            assert p.review_sentiment == pytest.approx(sum(scores) / len(scores), abs=1e-9), sku
            assert p.review_sentiment_count == len(scores), sku
        else:
            assert p.review_sentiment is None, sku
            assert p.review_sentiment_count in (0, None), sku


def test_labels_and_product_aggregates(
    factory: sessionmaker[Session], model: SentimentModel
) -> None:
    report = score_reviews(factory, model)

    reviews = reviews_by_sku(factory)
    assert [r.sentiment_label for r in reviews["good"]] == ["positive"] * 3
    assert [r.sentiment_label for r in reviews["bad"]] == ["negative"] * 3
    assert all(r.sentiment_score is not None and r.sentiment_score > 0.5 for r in reviews["good"])
    assert all(r.sentiment_score is not None and r.sentiment_score < -0.5 for r in reviews["bad"])
    mixed = reviews["mixed"]
    assert [r.sentiment_label for r in mixed] == ["positive", "negative", *[NO_TEXT_LABEL] * 2]
    assert mixed[0].sentiment_score == reviews["good"][0].sentiment_score
    assert mixed[1].sentiment_score == reviews["bad"][1].sentiment_score  # same text, spaced
    assert [r.sentiment_score for r in mixed[2:]] == [None, None]

    # 8 reviews with text, 6 distinct texts; 3 without text; 4 products have reviews
    assert (report.reviews, report.texts, report.empty, report.products) == (8, 6, 3, 4)
    assert "8 reviews scored (6 unique texts)" in report.render()
    assert_aggregates_match_brute_force(factory)

    products = products_by_sku(factory)
    assert (products["good"].review_sentiment or 0.0) > 0.5
    assert (products["bad"].review_sentiment or 0.0) < -0.5
    assert products["mixed"].review_sentiment_count == 2  # the empty reviews do not count
    assert (products["blank"].review_sentiment, products["blank"].review_sentiment_count) == (
        None,
        0,
    )
    assert (products["none"].review_sentiment, products["none"].review_sentiment_count) == (
        None,
        None,
    )
    with factory() as s:
        table = review_sentiment_table(s, [p.id for p in products.values()])
    assert table == {
        p.id: (p.review_sentiment, p.review_sentiment_count)
        for p in products.values()
        if p.review_sentiment is not None
    }
    assert set(table) == {products[sku].id for sku in ("good", "bad", "mixed")}


def test_second_run_scores_nothing(factory: sessionmaker[Session], model: SentimentModel) -> None:
    score_reviews(factory, model)
    before = {
        sku: (p.review_sentiment, p.updated_at) for sku, p in products_by_sku(factory).items()
    }

    # a model that cannot load: the second run must not need it
    again = score_reviews(factory, SentimentModel("/nonexistent/sentiment-model"))

    assert (again.reviews, again.texts, again.empty, again.products) == (0, 0, 0, 0)
    assert again.render().startswith("Review sentiment: nothing to score")
    after = {sku: (p.review_sentiment, p.updated_at) for sku, p in products_by_sku(factory).items()}
    assert after == before


def test_changed_reviews_are_rescored_for_that_product_only(
    factory: sessionmaker[Session], model: SentimentModel
) -> None:
    score_reviews(factory, model)
    before = reviews_by_sku(factory)

    changed = product("bad", *POSITIVE[:2])  # the bad jacket's reviews turn positive
    with session_scope(factory) as s:
        counts = upsert_products(s, [*CATALOG[:1], changed, *CATALOG[2:]])
    assert counts.updated == 1
    pending = [
        r for rows in reviews_by_sku(factory).values() for r in rows if not r.sentiment_label
    ]
    assert len(pending) == 2

    report = score_reviews(factory, model)

    assert (report.reviews, report.texts, report.empty, report.products) == (2, 2, 0, 1)
    after = reviews_by_sku(factory)
    for sku in ("good", "mixed", "blank"):  # untouched rows: same ids, same scores
        assert [(r.id, r.sentiment_label, r.sentiment_score) for r in after[sku]] == [
            (r.id, r.sentiment_label, r.sentiment_score) for r in before[sku]
        ]
    assert [r.sentiment_label for r in after["bad"]] == ["positive", "positive"]
    assert (products_by_sku(factory)["bad"].review_sentiment or 0.0) > 0.5
    assert_aggregates_match_brute_force(factory)


def test_removed_reviews_clear_the_aggregate(
    factory: sessionmaker[Session], model: SentimentModel
) -> None:
    score_reviews(factory, model)
    with session_scope(factory) as s:
        upsert_products(s, [product("good")])

    report = score_reviews(factory, model)

    assert (report.reviews, report.products) == (0, 1)
    good = products_by_sku(factory)["good"]
    assert (good.review_sentiment, good.review_sentiment_count) == (None, 0)
    assert_aggregates_match_brute_force(factory)


def test_small_chunks_and_batches_give_the_same_result(
    factory: sessionmaker[Session], tmp_path: Path, model: SentimentModel
) -> None:
    score_reviews(factory, model)
    other = make_session_factory(f"sqlite:///{tmp_path / 'chunked.db'}")
    with session_scope(other) as s:
        upsert_products(s, CATALOG)

    report = score_reviews(other, model, batch_size=1, chunk_size=2)

    # texts are remembered across chunks: still 6 scored for 8 reviews
    assert (report.reviews, report.texts, report.empty, report.products) == (8, 6, 3, 4)
    expected = {
        sku: [(r.sentiment_label, r.sentiment_score) for r in rows]
        for sku, rows in reviews_by_sku(factory).items()
    }
    got = {
        sku: [(r.sentiment_label, r.sentiment_score) for r in rows]
        for sku, rows in reviews_by_sku(other).items()
    }
    assert got.keys() == expected.keys()
    for sku in expected:
        for (label, score), (want_label, want_score) in zip(got[sku], expected[sku], strict=True):
            assert label == want_label
            assert (score is None) == (want_score is None)
            if score is not None:
                assert score == pytest.approx(want_score, abs=1e-4)  # padding differs
    assert_aggregates_match_brute_force(other)


def test_rescore_scores_everything_again(
    factory: sessionmaker[Session], model: SentimentModel
) -> None:
    score_reviews(factory, model)
    before = {sku: p.review_sentiment for sku, p in products_by_sku(factory).items()}

    report = score_reviews(factory, model, rescore=True)

    assert (report.reviews, report.texts, report.empty, report.products) == (8, 6, 3, 4)
    after = {sku: p.review_sentiment for sku, p in products_by_sku(factory).items()}
    assert after.keys() == before.keys()
    for sku, value in before.items():
        assert after[sku] == pytest.approx(value, abs=1e-6)
