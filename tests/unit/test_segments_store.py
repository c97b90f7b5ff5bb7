"""Fitting, storing and refreshing behavioural segments over a real SQLite database."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from tailor.demo import load_demo
from tailor.profiles.rfm import NO_PURCHASES
from tailor.profiles.segments import fit_behavioural, refresh_customer
from tailor.store import Customer, Event, make_session_factory
from tailor.store.segments import segments_of


def test_fit_assigns_everyone_versions_and_refreshes(tmp_path: Path) -> None:
    factory = make_session_factory(f"sqlite:///{tmp_path / 't.db'}")
    load_demo(factory, 600, 200, 42)
    first = fit_behavioural(factory)
    with factory() as session:
        n_customers = len(session.scalars(select(Customer.id)).all())
    assert sum(first.sizes.values()) == n_customers
    assert first.model.k in first.model.silhouettes
    assert first.model.silhouettes[first.model.k] == max(first.model.silhouettes.values())
    assert "segment" in first.render() and "k=" in first.render()
    assert fit_behavioural(factory).version == first.version + 1

    # A lapsed one-off buyer who suddenly buys a lot, recently, moves segment.
    with factory.begin() as session:
        stats = {
            cid: seg
            for cid in session.scalars(select(Customer.id))
            for seg in [segments_of(session, cid).get("rfm")]
        }
        lapsed = next(cid for cid, seg in stats.items() if seg == "hibernating")
        for i in range(25):
            session.add(
                Event(
                    kind="purchase",
                    customer_id=lapsed,
                    value=180.0,
                    created_at=first.reference - timedelta(days=i % 5),
                )
            )
        session.flush()
        new_segment = refresh_customer(session, lapsed, reference=first.reference)
    assert new_segment == "champions"
    with factory() as session:
        assert segments_of(session, lapsed)["rfm"] == "champions"

    with factory.begin() as session:
        session.add(Customer(external_id="cust-new", name="New Person"))
        session.flush()
        newcomer = session.scalar(select(Customer.id).where(Customer.external_id == "cust-new"))
        assert newcomer is not None
        assert refresh_customer(session, newcomer) == NO_PURCHASES
