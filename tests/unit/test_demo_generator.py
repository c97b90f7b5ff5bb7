"""The demo generator is deterministic, realistic enough, and loads idempotently."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tailor.demo import (
    CATEGORIES,
    COLOURS,
    MATERIALS,
    REFERENCE_DATE,
    SIZE_SYSTEMS,
    generate_customers,
    generate_events,
    generate_products,
    load_demo,
)
from tailor.demo.taxonomy import leaf_brands, leaf_by_path, leaves
from tailor.store import Customer, Event, Product, Review, make_session_factory
from tailor.store.catalog import catalog_fingerprint, count_products


@pytest.fixture(scope="module")
def ten_thousand() -> list:
    return list(generate_products(10_000, seed=42))


def test_same_seed_same_records_and_prefix_stable() -> None:
    a = list(generate_products(300, seed=7))
    b = list(generate_products(300, seed=7))
    assert a == b
    assert list(generate_products(50, seed=7)) == a[:50]


def test_different_seed_different_records() -> None:
    a = [p.title for p in generate_products(100, seed=1)]
    b = [p.title for p in generate_products(100, seed=2)]
    assert a != b
    assert sum(x != y for x, y in zip(a, b, strict=True)) > 50


def test_taxonomy_shape() -> None:
    assert len(CATEGORIES) >= 22
    for top in CATEGORIES:
        assert 2 <= len(top.leaves) <= 6, top.name
    paths = [leaf.path for leaf in leaves()]
    assert len(paths) == len(set(paths))
    assert "Shoes > Running Shoes" in paths
    running = leaf_by_path("Shoes > Running Shoes")
    assert {"Nike", "Adidas"} <= set(leaf_brands(running))
    colour_word = re.compile(r"\b(" + "|".join(COLOURS) + r")\b", re.IGNORECASE)
    for leaf in leaves():
        # Brand names never contain a colour word, so "black" in a query is not a brand.
        assert not [b for b in leaf_brands(leaf) if colour_word.search(b)], leaf.path
        assert set(leaf.colours) <= set(COLOURS), leaf.path
        assert set(leaf.materials) <= set(MATERIALS), leaf.path
        assert leaf.sizes in SIZE_SYSTEMS
        assert leaf.price[0] < leaf.price[1]


def test_ten_thousand_products_are_sane(ten_thousand: list) -> None:
    products = ten_thousand
    assert len(products) == 10_000
    assert len({p.sku for p in products}) == 10_000
    assert products[0].sku == "demo-000001" and products[-1].sku == "demo-010000"
    tops = {p.category.split(" > ")[0] for p in products}
    assert len(tops) >= 20
    assert {leaf.path for leaf in leaves()} == {p.category for p in products}
    for p in products:
        leaf = leaf_by_path(p.category)
        assert re.fullmatch(r"[^>]+ > [^>]+", p.category)
        assert leaf.price[0] <= p.price <= leaf.price[1], (p.sku, p.price, leaf.price)
        assert round(p.price, 2) == p.price
        assert p.colour is None or p.colour in COLOURS
        assert p.material is None or p.material in MATERIALS
        assert (p.colour is None) == (not leaf.colours)
        assert p.brand and p.brand in p.title
        assert p.brand in leaf_brands(leaf)
        assert p.rating is not None and 1.0 <= p.rating <= 5.0 and round(p.rating, 1) == p.rating
        assert p.stock >= 0 and p.review_count >= len(p.reviews)
        assert 0 <= len(p.reviews) <= 5
        assert set(p.sizes) <= set(SIZE_SYSTEMS[leaf.sizes])
        assert p.image_url is None and p.currency == "USD" and p.source == "demo"
        assert p.tags and all(t == t.lower() for t in p.tags)
        sentences = p.description.replace(p.brand, "Brand").count(". ") + 1
        assert 2 <= sentences <= 4, p.description
        if p.colour:
            assert p.colour in p.description
        if p.material:
            assert p.material in p.description


def test_distributions_look_like_a_shop(ten_thousand: list) -> None:
    products = ten_thousand
    out_of_stock = sum(p.stock == 0 for p in products) / len(products)
    assert 0.05 < out_of_stock < 0.11
    ratings = [p.rating for p in products]
    assert 0.6 < sum(3.5 <= r <= 4.8 for r in ratings) / len(ratings) < 0.95
    running = [p for p in products if p.category == "Shoes > Running Shoes"]
    brands = Counter(p.brand for p in running)
    assert brands["Nike"] > 10 and brands["Adidas"] > 10
    cheap_blue = [p for p in running if p.price <= 80 and p.colour == "blue" and p.stock > 0]
    assert len(cheap_blue) >= 5


def test_the_first_800_support_the_scripted_chat() -> None:
    """The integration tests load 800 products and ask for running shoes under $80."""
    first = list(generate_products(800, seed=42))
    assert {leaf.path for leaf in leaves()} <= {p.category for p in first}
    running = [
        p for p in first if p.category == "Shoes > Running Shoes" and p.price <= 80 and p.stock
    ]
    assert len(running) >= 6
    assert sum(p.category == "Bags > Backpacks" for p in first) >= 8


def test_reviews_are_coherent(ten_thousand: list) -> None:
    reviews = [(p, r) for p in ten_thousand[:2000] for r in p.reviews]
    assert reviews
    for p, r in reviews:
        assert 1 <= r.rating <= 5
        assert r.text and r.author
        assert r.created_at is not None and r.created_at < REFERENCE_DATE
        leaf = leaf_by_path(p.category)
        assert any(a in r.text.lower() for a in leaf.aspects), (p.category, r.text)
    low = [r for _, r in reviews if r.rating <= 2]
    high = [r for _, r in reviews if r.rating == 5]
    praise = ("love", "great", "best", "fantastic", "really happy", "five stars", "exactly")
    assert all(not r.text.lower().startswith(praise) for r in low)
    assert all(r.text.lower().startswith(praise) for r in high)
    # Review stars follow the product rating.
    good = [r.rating for p, r in reviews if p.rating >= 4.5]
    poor = [r.rating for p, r in reviews if p.rating <= 3.0]
    assert sum(good) / len(good) > sum(poor) / len(poor) + 1


def test_customers_and_events() -> None:
    customers = generate_customers(120, seed=3)
    assert customers == generate_customers(120, seed=3)
    assert customers[0].external_id == "cust-0001"
    assert len({c.email for c in customers}) == 120
    assert all(c.email.endswith("@example.com") for c in customers)
    assert {c.age_band for c in customers} <= {"18-24", "25-34", "35-44", "45-54", "55-64", "65+"}
    assert any(c.gender is None for c in customers)
    assert len({c.country for c in customers}) >= 8
    assert all(c.region and {"climate", "style"} <= set(c.attributes) for c in customers)

    products = list(generate_products(1500, seed=3))
    events = generate_events(customers, products, seed=3)
    assert events == generate_events(customers, products, seed=3)
    by_sku = {p.sku: p for p in products}
    kinds = Counter(e.kind for e in events)
    assert set(kinds) == {"purchase", "view"} and kinds["view"] > kinds["purchase"]
    oldest = REFERENCE_DATE.replace(year=REFERENCE_DATE.year - 2)
    for e in events:
        assert oldest <= e.created_at < REFERENCE_DATE
        if e.kind == "purchase":
            assert e.value == by_sku[e.product_sku].price
    # Frequency varies a lot between customers (meaningful for RFM) ...
    per_customer = Counter(e.customer_external_id for e in events if e.kind == "purchase")
    assert max(per_customer.values()) >= 10 and min(per_customer.values()) <= 2
    # ... and purchases follow each customer's favourite categories.
    hits = total = 0
    for c in customers:
        favourites = set(c.preferences["favourite_categories"])
        for e in events:
            if e.customer_external_id == c.external_id and e.kind == "purchase":
                total += 1
                hits += by_sku[e.product_sku].category in favourites
    assert hits / total > 0.6


def test_load_demo_is_idempotent(tmp_path: Path) -> None:
    factory = make_session_factory(f"sqlite:///{tmp_path / 'demo.db'}")
    first = load_demo(factory, 300, 25, 11, progress=False)
    assert first.products_inserted == 300 and first.customers_inserted == 25
    assert first.events > 0

    def snapshot() -> tuple:
        with factory() as s:
            return (
                count_products(s),
                s.scalar(select(func.count()).select_from(Review)),
                s.scalar(select(func.count()).select_from(Customer)),
                s.scalar(select(func.count()).select_from(Event)),
                catalog_fingerprint(s),
            )

    before = snapshot()
    assert before[0] == 300 and before[2] == 25 and before[3] == first.events
    second = load_demo(factory, 300, 25, 11, progress=False)
    assert second.products_inserted == 0 and second.products_updated == 0
    assert second.products_unchanged == 300 and second.customers_inserted == 0
    assert snapshot() == before
    with factory() as s:
        stored = s.scalars(select(Product).where(Product.sku == "demo-000001")).one()
        assert stored.content_hash == stored.compute_hash()
        purchase = s.scalars(select(Event).where(Event.kind == "purchase").limit(1)).one()
        assert purchase.customer_id is not None and purchase.product_id is not None
        assert purchase.sender_id and purchase.sender_id.startswith("demo:cust-")
