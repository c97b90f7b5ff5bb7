"""Catalog data functions: upsert by sku, ordered reads, fingerprints, distinct values."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tailor.store import (
    Event,
    Product,
    ProductRecord,
    Review,
    ReviewRecord,
    catalog_fingerprint,
    count_products,
    delete_products,
    distinct_values,
    get_product,
    get_products,
    make_session_factory,
    product_hashes,
    session_scope,
    upsert_products,
)


def record(sku: str, **changes: object) -> ProductRecord:
    values: dict = {
        "title": f"Product {sku}",
        "category": "Shoes > Running Shoes",
        "price": 50.0,
        "brand": "Nike",
        "colour": "blue",
        "material": "mesh",
        "stock": 5,
        "reviews": [ReviewRecord(5, "Great fit", "Ann", datetime(2026, 1, 2, tzinfo=UTC))],
    }
    values.update(changes)
    return ProductRecord(sku=sku, **values)


@pytest.fixture
def factory(tmp_path: Path) -> sessionmaker[Session]:
    return make_session_factory(f"sqlite:///{tmp_path / 'catalog.db'}")


def seed(factory: sessionmaker[Session]) -> dict[str, int]:
    with session_scope(factory) as s:
        counts = upsert_products(
            s,
            [
                record("a"),
                record("b", brand="Adidas", colour="red", price=70),
                record("c", brand=None, colour=None, material="knit", currency="EUR"),
            ],
        )
    assert (counts.inserted, counts.updated, counts.unchanged, counts.reviews) == (3, 0, 0, 3)
    return counts.ids


def test_upsert_inserts_updates_and_keeps_unchanged(factory: sessionmaker[Session]) -> None:
    ids = seed(factory)
    with session_scope(factory) as s:
        counts = upsert_products(s, [record("a"), record("b", brand="Adidas", colour="red")])
    # "b" lost its price change back to 50 → updated; "a" is identical → unchanged.
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 1, 1)
    assert counts.ids == {"a": ids["a"], "b": ids["b"]}
    with factory() as s:
        assert count_products(s) == 3
        b = get_product(s, ids["b"])
        assert b is not None and b.price == 50.0 and b.content_hash == b.compute_hash()


def test_upsert_replaces_reviews_only_when_asked(factory: sessionmaker[Session]) -> None:
    ids = seed(factory)
    new_reviews = [ReviewRecord(2, "Too narrow", "Bo"), ReviewRecord(4, "Comfy", "Cy")]
    with session_scope(factory) as s:
        counts = upsert_products(s, [record("a", reviews=new_reviews)])
    assert (counts.updated, counts.reviews) == (1, 2)
    with session_scope(factory) as s:
        counts = upsert_products(s, [record("a", reviews=[])], replace_reviews=False)
    assert (counts.unchanged, counts.reviews) == (1, 0)
    with factory() as s:
        a = get_product(s, ids["a"])
        assert a is not None and [r.text for r in a.reviews] == ["Too narrow", "Comfy"]
        assert s.scalar(select(func.count()).select_from(Review)) == 4


def test_upsert_accepts_mappings_and_rejects_unknown_fields(
    factory: sessionmaker[Session],
) -> None:
    with session_scope(factory) as s:
        counts = upsert_products(
            s, [{"sku": "m", "title": "Mug", "category": "Kitchen > Mugs", "price": 8}]
        )
        assert counts.inserted == 1
        with pytest.raises(ValueError, match="valid fields are"):
            upsert_products(
                s, [{"sku": "x", "title": "X", "category": "A > B", "price": 1, "hue": 1}]
            )


def test_get_products_keeps_order_and_skips_missing(factory: sessionmaker[Session]) -> None:
    ids = seed(factory)
    order = [ids["c"], 999_999, ids["a"], ids["b"]]
    with factory() as s:
        products = get_products(s, order)
        assert [p.sku for p in products] == ["c", "a", "b"]
        assert get_products(s, []) == []
        assert get_product(s, 999_999) is None


def test_fingerprint_changes_on_update_only(factory: sessionmaker[Session]) -> None:
    with factory() as s:
        empty = catalog_fingerprint(s)
    assert empty == hashlib.sha1(b"").hexdigest()
    ids = seed(factory)
    with factory() as s:
        before = catalog_fingerprint(s)
        hashes = product_hashes(s)
    assert before != empty and set(hashes) == set(ids.values())

    with session_scope(factory) as s:  # identical data: nothing changes
        upsert_products(s, [record("a")])
    with session_scope(factory) as s:  # reviews and image are not content fields
        upsert_products(s, [record("a", reviews=[], image_url="http://x/img.png")])
    with factory() as s:
        assert catalog_fingerprint(s) == before

    with session_scope(factory) as s:
        upsert_products(s, [record("a", price=45.0)])
    with factory() as s:
        after = catalog_fingerprint(s)
        assert after != before
        assert product_hashes(s)[ids["a"]] != hashes[ids["a"]]
        assert product_hashes(s)[ids["b"]] == hashes[ids["b"]]


def test_distinct_values(factory: sessionmaker[Session]) -> None:
    seed(factory)
    with factory() as s:
        assert distinct_values(s, "brand") == ["Adidas", "Nike"]
        assert distinct_values(s, "colour") == ["blue", "red"]
        assert distinct_values(s, "material") == ["knit", "mesh"]
        assert distinct_values(s, "category") == ["Shoes > Running Shoes"]
        assert distinct_values(s, "currency") == ["EUR", "USD"]
        with pytest.raises(ValueError, match="valid columns are brand, category, colour"):
            distinct_values(s, "price")
        with pytest.raises(ValueError, match="'title'"):
            distinct_values(s, "title")


def test_delete_products_removes_reviews_and_detaches_events(
    factory: sessionmaker[Session],
) -> None:
    ids = seed(factory)
    with session_scope(factory) as s:
        s.add(Event(kind="view", sender_id="u1", product_id=ids["a"]))
    with session_scope(factory) as s:
        assert delete_products(s, [ids["a"], 424242]) == 1
    with factory() as s:
        assert count_products(s) == 2
        assert s.scalar(select(func.count()).select_from(Review)) == 2
        event = s.scalars(select(Event)).one()
        assert event.product_id is None
        assert s.get(Product, ids["a"]) is None
