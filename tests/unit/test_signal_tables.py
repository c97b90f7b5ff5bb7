"""The shared price and segment tables: built in the caller the first time and after an
invalidation; when they merely expire, the old ones serve while a thread rebuilds them."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from tailor.recommend.personal import PricePositions
from tailor.recommend.signals import SignalBuilder
from tailor.store import make_session_factory, session_scope
from tests.unit.test_retrieval_engine import product


class GatedBuilder(SignalBuilder):
    """Our builder, with each rebuild held until the test opens the gate."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.gate = threading.Event()
        self.gate.set()
        self.builds = 0

    def _compute(self) -> tuple[PricePositions, object]:  # type: ignore[override]
        self.gate.wait(10)
        self.builds += 1
        return super()._compute()


def shop(tmp_path: Path) -> sessionmaker[Session]:
    """A SQLite catalog of eight products in four categories."""
    factory = make_session_factory(f"sqlite:///{tmp_path / 'shop.db'}")
    with session_scope(factory) as s:
        s.add_all([product(n) for n in range(1, 9)])
    return factory


def eventually(check: object, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def test_expired_tables_serve_while_a_thread_rebuilds_them(tmp_path: Path) -> None:
    factory = shop(tmp_path)
    sb = GatedBuilder(factory, refresh_seconds=0.05)
    first = sb.prices
    assert first.position("Shoes > Running", 14.0) is not None
    assert first.position("Garden > Tools", 5.0) is None and sb.builds == 1

    with session_scope(factory) as s:  # the catalog changes; the tables have not seen it
        s.add(product(100, sku="G1", category="Garden > Tools", price=5.0))
    time.sleep(0.06)  # expired
    sb.gate.clear()  # the rebuild will wait
    t0 = time.monotonic()
    assert sb.prices is first  # the caller does not wait for the rebuild
    assert time.monotonic() - t0 < 1.0
    assert sb.prices is first and sb.builds == 1  # one rebuild at a time
    sb.gate.set()
    assert eventually(lambda: sb.prices is not first)
    assert sb.prices.position("Garden > Tools", 5.0) == 0.5
    assert sb.builds == 2


def test_an_invalidation_is_rebuilt_by_the_next_caller(tmp_path: Path) -> None:
    factory = shop(tmp_path)
    sb = GatedBuilder(factory, refresh_seconds=3600)
    first = sb.prices
    with session_scope(factory) as s:
        s.add(product(100, sku="G1", category="Garden > Tools", price=5.0))
    assert sb.prices is first  # not expired: not rebuilt
    sb.invalidate()
    assert sb.prices.position("Garden > Tools", 5.0) == 0.5  # rebuilt in this call
    assert sb.builds == 2


def test_a_failed_background_rebuild_keeps_the_old_tables(tmp_path: Path) -> None:
    factory = shop(tmp_path)
    sb = SignalBuilder(factory, refresh_seconds=0.05)
    first = sb.prices
    factory.kw["bind"].dispose()
    (tmp_path / "shop.db").unlink()  # the database is gone: the rebuild fails
    (tmp_path / "shop.db").mkdir()
    time.sleep(0.06)
    assert sb.prices is first
    assert eventually(lambda: not sb._refreshing)
    assert sb.prices is first  # still serving, retried only after refresh_seconds
