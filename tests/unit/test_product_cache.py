"""ProductCache: products kept between turns, dropped whenever the catalog changes.

The check is shared with the PostgreSQL tests (``tests/production``): every way the store
writes products - an import, a bulk update, a deletion, a plain ORM change - must show in
the next read of a cache living in another "process" (another engine on the same database),
and the cache's answers must always equal a fresh read.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from tailor.store import Product, ProductRecord, make_session_factory, session_scope
from tailor.store.catalog import (
    ProductCache,
    catalog_version,
    delete_products,
    get_products,
    upsert_products,
)

COLUMNS = ("id", "sku", "title", "brand", "price", "stock", "colour", "rating", "review_count")


def _facts(products: list[Product]) -> list[tuple[object, ...]]:
    return [(*(getattr(p, c) for c in COLUMNS), p.review_sentiment) for p in products]


def check_product_cache(
    writer: sessionmaker[Session], reader: Callable[[], Session], seed: int = 3
) -> None:
    """``reader`` serves the cache, ``writer`` (another engine) changes the catalog."""
    rng = random.Random(seed)
    with session_scope(writer) as s:
        upsert_products(
            s,
            [
                ProductRecord(
                    sku=f"pc-{i}",
                    title=f"Product {i}",
                    category="Home > Lamps",
                    price=10.0 + i,
                    brand=rng.choice(["Acme", "Lumo", None]),
                    stock=5,
                )
                for i in range(60)
            ],
        )
    cache = ProductCache(reader, max_items=40)

    def check(ids: list[int]) -> list[Product]:
        got = cache.get(ids)
        with reader() as s:
            assert _facts(got) == _facts(get_products(s, ids))  # the reference: a fresh read
        return got

    with reader() as s:  # in sku order: pc-0, pc-1, ... (the database may hold others)
        rows = s.execute(select(Product.id, Product.sku).where(Product.sku.like("pc-%"))).all()
        all_ids = [pid for pid, _ in sorted(rows, key=lambda r: int(r[1].split("-")[1]))]
    ids = rng.sample(all_ids, 30)
    check([*ids, 10**9])  # an unknown id is skipped
    misses = cache.misses
    check(ids[:10] + ids[:3])  # repeated ids, in the order given
    assert cache.misses == misses and cache.hits == 10  # served from memory (distinct ids)

    # An import changing prices and stock, read by the other engine's cache next time.
    with session_scope(writer) as s:
        upsert_products(
            s,
            [
                ProductRecord(
                    sku=f"pc-{i}", title=f"Product {i}", category="Home > Lamps", price=99, stock=0
                )
                for i in range(0, 60, 3)
            ],
        )
    assert {float(p.price) for p in check(all_ids[0:60:3])} == {99.0}
    # A bulk statement (as review sentiment does), a plain ORM change, a deletion.
    with session_scope(writer) as s:
        s.execute(
            update(Product).where(Product.id.in_(ids[:5])).values(review_sentiment=0.5),
            execution_options={"synchronize_session": False},
        )
    assert [p.review_sentiment for p in check(ids[:5])] == [0.5] * 5
    with session_scope(writer) as s:
        product = s.get(Product, ids[5])
        assert product is not None
        product.title = "Renamed lamp"
    assert check([ids[5]])[0].title == "Renamed lamp"
    with session_scope(writer) as s:
        assert delete_products(s, ids[6:8]) == 2
    assert [p.id for p in check(ids[5:9])] == [ids[5], ids[8]]
    # A change rolled back leaves the version (and the cache) alone.
    with writer() as s:
        before = catalog_version(s)
    with writer() as s:
        product = s.get(Product, ids[8])
        assert product is not None
        product.stock = 123
        s.flush()
        s.rollback()
    with writer() as s:
        assert catalog_version(s) == before
    misses = cache.misses
    assert check([ids[8]])[0].stock != 123 and cache.misses == misses
    # The bound holds; random reads still agree with fresh ones.
    live = [i for i in all_ids if i not in ids[6:8]]
    for _ in range(20):
        check(rng.sample(live, rng.randint(1, 25)))
    assert len(cache._items) <= 40


def test_product_cache_follows_every_catalog_write_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    check_product_cache(make_session_factory(url), make_session_factory(url))


def test_catalog_version_counts_committed_product_writes_only(tmp_path: Path) -> None:
    factory = make_session_factory(f"sqlite:///{tmp_path / 'catalog.db'}")
    with factory() as s:
        assert catalog_version(s) == 0  # seeded by init_db
    with session_scope(factory) as s:
        upsert_products(s, [ProductRecord(sku="v1", title="A", category="X", price=1.0)])
    with factory() as s:
        first = catalog_version(s)
    assert first > 0
    with session_scope(factory) as s:  # writing events, customers...: not the catalog
        s.execute(update(Product).where(Product.id == -1).values(stock=1))
    with factory() as s:
        assert catalog_version(s) == first + 1  # a product statement, even matching no row
    with session_scope(factory) as s:
        s.get(Product, 1)  # read only
    with factory() as s:
        assert catalog_version(s) == first + 1


def test_fill_reads_a_catalog_that_fits_and_then_follows_writes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    writer, reader = make_session_factory(url), make_session_factory(url)
    with session_scope(writer) as s:
        upsert_products(
            s,
            [
                ProductRecord(sku=f"f-{i}", title=f"Lamp {i}", category="Home > Lamps", price=i)
                for i in range(1, 31)
            ],
        )
    with reader() as s:
        ids = list(s.scalars(select(Product.id).order_by(Product.id)))
    assert ProductCache(reader, max_items=29).fill() == 0  # too large: filled turn by turn
    cache = ProductCache(reader, max_items=30)
    assert cache.fill() == 30
    got = cache.get(ids[::-1])
    assert cache.misses == 0 and cache.hits == 30  # no turn reads the database
    with reader() as s:
        assert _facts(got) == _facts(get_products(s, ids[::-1]))
    # a write after the fill shows in the next read, as for a cache filled turn by turn
    with session_scope(writer) as s:
        upsert_products(
            s, [ProductRecord(sku="f-3", title="Lamp 3", category="Home > Lamps", price=77)]
        )
    got = cache.get(ids)
    with reader() as s:
        assert _facts(got) == _facts(get_products(s, ids))
    assert 77.0 in {float(p.price) for p in got} and cache.misses == 30
    # filling again reads the new version; what a turn cached meanwhile is kept
    assert cache.fill() == 30 and len(cache._items) == 30
