"""The store on PostgreSQL: the demo catalog built by the same code as on SQLite reads back
the same, and analytics writes are idempotent there too. Needs the real PostgreSQL."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tailor.analytics.events import create_tables, parse_event, store_events
from tailor.demo import load_demo
from tailor.nlu.lookups import write_lookups
from tailor.nlu.vocab import Vocabulary
from tailor.runtime.production import drop_database, ensure_database
from tailor.store import make_session_factory
from tailor.store.catalog import count_products, get_products
from tailor.store.db import make_engine

pytestmark = [pytest.mark.production]

PRODUCTS, CUSTOMERS, SEED = 200, 20, 7


@pytest.fixture(scope="module")
def pg_url(backing_services: dict[str, str]) -> Iterator[str]:
    """A fresh PostgreSQL database for this module, dropped afterwards."""
    url = make_url(backing_services["postgres_url"]).set(
        database=f"tailor_test_store_{secrets.token_hex(4)}"
    )
    rendered = url.render_as_string(hide_password=False)
    assert ensure_database(rendered) is True
    assert ensure_database(rendered) is False  # idempotent
    try:
        yield rendered
    finally:
        drop_database(rendered)


def test_demo_catalog_reads_back_the_same_as_on_sqlite(pg_url: str, tmp_path: Path) -> None:
    pg = make_session_factory(pg_url)
    lite = make_session_factory(f"sqlite:///{tmp_path / 'tailor.db'}")
    for factory in (pg, lite):
        load_demo(factory, PRODUCTS, CUSTOMERS, SEED, progress=False)
    with pg() as a, lite() as b:
        assert count_products(a) == count_products(b) == PRODUCTS
        ids = list(range(1, PRODUCTS + 1, 17))

        def facts(session: object) -> list[tuple[object, ...]]:
            return [
                (p.id, p.title, p.brand, p.category, p.colour, float(p.price), p.stock)
                for p in get_products(session, ids)  # type: ignore[arg-type]
            ]

        assert facts(a) == facts(b)
        # The same NLU lookup tables, hence the same Rasa model (cached by fingerprint).
        write_lookups(Vocabulary.from_session(a), tmp_path / "pg.yml")
        write_lookups(Vocabulary.from_session(b), tmp_path / "sqlite.yml")
        assert (tmp_path / "pg.yml").read_bytes() == (tmp_path / "sqlite.yml").read_bytes()


def test_analytics_writes_are_idempotent_on_postgres(pg_url: str) -> None:
    engine = make_engine(pg_url)
    create_tables(engine)
    create_tables(engine)  # idempotent
    sender = f"pg-{secrets.token_hex(4)}"
    events = [
        parse_event(json.dumps({"sender_id": sender, "event": "user", "timestamp": 1.0 + i}))
        for i in range(5)
    ]
    assert store_events(engine, events).inserted == 5
    again = store_events(engine, events[2:] + events[:1])
    assert (again.inserted, again.duplicates) == (0, 4)
    engine.dispose()


def test_product_cache_follows_every_catalog_write_on_postgres(pg_url: str) -> None:
    """The catalog-version hooks and the cache (see tests/unit/test_product_cache.py) on
    PostgreSQL, with the writer and the reader on separate engines."""
    from tests.unit.test_product_cache import check_product_cache

    check_product_cache(make_session_factory(pg_url), make_session_factory(pg_url), seed=5)


@pytest.mark.rasa
def test_tracker_store_writes_and_reads_what_rasas_store_does(
    backing_services: dict[str, str],
) -> None:
    """Tailor's tracker store (plain SQL for Rasa's session query, one multi-row insert per
    save) against Rasa's own ``SQLTrackerStore``, on PostgreSQL: the same rows, the same
    trackers, with cut sessions."""
    from tests.unit.test_tracker_store_sqlite import check_same_as_rasa

    base = make_url(backing_services["postgres_url"])
    configs, urls = [], []
    for side in ("ours", "theirs"):
        url = base.set(database=f"tailor_test_tracker_{side}_{secrets.token_hex(4)}")
        urls.append(url.render_as_string(hide_password=False))
        config = {
            "dialect": "postgresql",
            "url": url.host or "127.0.0.1",
            "port": url.port or 5432,
            "db": url.database,
        }
        if url.username:
            config["username"] = url.username
        if url.password:
            config["password"] = url.password
        configs.append(config)
    try:
        for url in urls:
            ensure_database(url)
        check_same_as_rasa(configs[0], configs[1])
    finally:
        for url in urls:
            drop_database(url)
