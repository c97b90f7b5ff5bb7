"""EventWriter: rows written on one thread, batched, in order, a bad submission isolated."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tailor.store import ProductRecord, make_session_factory, session_scope, upsert_products
from tailor.store.events import EventWriter, event_rows, events_for
from tailor.store.models import Event


@pytest.fixture
def factory(tmp_path: Path) -> sessionmaker[Session]:
    return make_session_factory(f"sqlite:///{tmp_path / 'events.db'}")


def test_rows_match_record_events_and_keep_order(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as s:
        counts = upsert_products(
            s, [ProductRecord(sku=f"e{i}", title="T", category="C", price=1.0) for i in range(2)]
        )
    a, b = counts.ids["e0"], counts.ids["e1"]
    writer = EventWriter(factory)
    futures = []
    for turn in range(40):  # submitted faster than written: they batch
        rows = event_rows("message", "w-1", [], {"text": f"m{turn}"}, None, 0.5)
        rows += event_rows("shown", "w-1", [a, b] if turn % 2 else [b, a], {"q": turn}, None)
        futures.append(writer.submit(rows))
    for f in futures:
        f.result(timeout=10)
    with factory() as s:
        got = events_for(s, "w-1")
    assert [(e.kind, e.product_id) for e in got] == [
        pair
        for t in range(40)
        for pair in (("message", None), *(("shown", p) for p in ([a, b] if t % 2 else [b, a])))
    ]
    assert [e.id for e in got] == sorted(e.id for e in got)
    assert [e.payload for e in got[:3]] == [
        {"text": "m0"},
        {"q": 0, "rank": 0},
        {"q": 0, "rank": 1},
    ]
    assert got[0].value == 0.5 and got[0].created_at is not None
    assert got[1].value is None and got[1].customer_id is None
    assert 1 <= writer.transactions < 40  # batched


def test_a_bad_submission_fails_alone(factory: sessionmaker[Session]) -> None:
    writer = EventWriter(factory)
    writer.submit(event_rows("message", "w-2", [], {"n": 0})).result(timeout=10)
    good1 = event_rows("message", "w-2", [], {"n": 1})
    bad = event_rows("message", "w-2", [], {"n": object()})  # not JSON
    good2 = event_rows("message", "w-2", [], {"n": 3})
    futures = [writer.submit(r) for r in (good1, bad, good2)]  # likely one batch
    assert futures[0].result(timeout=10) is None
    with pytest.raises(Exception, match="JSON serializable"):
        futures[1].result(timeout=10)
    assert futures[2].result(timeout=10) is None
    with factory() as s:
        stored = [e.payload["n"] for e in s.scalars(select(Event).where(Event.sender_id == "w-2"))]
    assert sorted(stored) == [0, 1, 3]


def test_nothing_to_write_is_done_at_once(factory: sessionmaker[Session]) -> None:
    writer = EventWriter(factory)
    assert writer.submit([]).result(timeout=1) is None
    assert writer.transactions == 0
    with pytest.raises(ValueError, match="max_rows"):
        EventWriter(factory, max_rows=0)
    with pytest.raises(ValueError, match="Unknown event kind"):
        event_rows("shwon", "x", [])


def test_a_cancelled_waiter_does_not_stop_the_writer(factory: sessionmaker[Session]) -> None:
    """An event loop that closes cancels the futures it awaited; the rows are still written
    and the writer thread goes on with the next submissions."""
    import threading

    writer = EventWriter(factory)
    gate = threading.Event()
    writer.submit(event_rows("message", "c-0", [], {"text": "hold"}, None)).add_done_callback(
        lambda _f: gate.wait(5)
    )  # keeps the writer busy until the next submission is cancelled
    given_up = writer.submit(event_rows("message", "c-1", [], {"text": "cancelled"}, None))
    assert given_up.cancel()
    gate.set()
    writer.submit(event_rows("message", "c-2", [], {"text": "after"}, None)).result(timeout=10)
    with factory() as s:
        texts = [e.payload["text"] for e in s.scalars(select(Event).order_by(Event.id))]
    assert texts == ["hold", "cancelled", "after"]
    assert writer._thread is not None and writer._thread.is_alive()
