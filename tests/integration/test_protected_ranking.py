"""A customer's gender or age band does not change their ranking unless configured to.

A real SQLite shop from the demo generator, with a panel of young women who buy from one
department only, so the gender and life-stage segment priors are strongly skewed. One
customer's gender and age band are then flipped into the panel's: with the default policy
every score stays exactly the same; with protected attributes configured for ranking, the
panel's department rises.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tailor.profiles.segments import assign_rule_segments
from tailor.recommend.personal import RankingWeights, personal_rank
from tailor.recommend.signals import ProtectedPolicy, SignalBuilder
from tailor.store import make_session_factory
from tailor.store.models import Customer, Event, Product

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
PANEL_GENDER, PANEL_AGE = "female", "18-24"
WEIGHTS = RankingWeights(segment=1.0)


def skewed_panel(factory: sessionmaker[Session], department: str, n: int = 40) -> None:
    """``n`` young women who each bought six products of ``department`` (and nothing else)."""
    with factory.begin() as s:
        products = list(
            s.scalars(
                select(Product.id).where(Product.category.like(f"{department} > %")).limit(60)
            )
        )
        assert products, department
        for i in range(n):
            c = Customer(
                external_id=f"panel-{i}",
                name=f"Panel {i}",
                gender=PANEL_GENDER,
                age_band=PANEL_AGE,
                country="Spain",
                region="Madrid",
            )
            s.add(c)
            s.flush()
            for j in range(6):
                s.add(
                    Event(
                        kind="purchase",
                        customer_id=c.id,
                        product_id=products[(i * 6 + j) % len(products)],
                        value=10.0,
                        created_at=NOW - timedelta(days=30 + j),
                    )
                )


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[sessionmaker[Session], str]:
    from tailor.demo import load_demo

    home: Path = tmp_path_factory.mktemp("protected")
    factory = make_session_factory(f"sqlite:///{home / 'tailor.db'}")
    load_demo(factory, 600, 80, 42, progress=False)
    with factory() as s:
        departments = sorted({c.split(" > ")[0] for c in s.scalars(select(Product.category))})
    department = departments[0]
    skewed_panel(factory, department)
    assign_rule_segments(factory)
    return factory, department


@pytest.fixture()
def subject(shop: tuple[sessionmaker[Session], str]) -> Iterator[int]:
    """A demo customer with purchases who is neither a young adult nor a woman (restored
    after the test)."""
    factory, _ = shop
    with factory() as s:
        cid = s.scalar(
            select(Customer.id)
            .join(Event, Event.customer_id == Customer.id)
            .where(
                Event.kind == "purchase",
                Customer.gender == "male",
                Customer.age_band != PANEL_AGE,
                Customer.external_id.like("cust-%"),
            )
            .order_by(Customer.id)
            .limit(1)
        )
        assert cid is not None
        before = s.get(Customer, cid)
        assert before is not None
        saved = (before.gender, before.age_band)
    yield int(cid)
    set_demographics(factory, int(cid), *saved)


def set_demographics(
    factory: sessionmaker[Session], cid: int, gender: str | None, age: str | None
) -> None:
    with factory.begin() as s:
        c = s.get(Customer, cid)
        assert c is not None
        c.gender, c.age_band = gender, age
    assign_rule_segments(factory)  # the stored life-stage segment follows the age band


def ranking(
    factory: sessionmaker[Session], cid: int, policy: ProtectedPolicy | None
) -> dict[int, float]:
    """Scores of a fixed candidate set (every department, equal relevance) for ``cid``."""
    shopper = SignalBuilder(factory, protected=policy).build(None, cid, now=NOW)
    with factory() as s:
        products = list(s.scalars(select(Product).order_by(Product.id).limit(300)))
        s.expunge_all()
    rng = np.random.default_rng(0)
    vectors = {p.id: rng.normal(size=16).astype(np.float32) for p in products}
    ranked = personal_rank(
        [(p, 0.5) for p in products], shopper, WEIGHTS, len(products), vectors, now=NOW
    )
    return {s.product.id: s.score for s in ranked}


def department_mean(scores: dict[int, float], factory: sessionmaker[Session], dept: str) -> float:
    with factory() as s:
        ids = set(s.scalars(select(Product.id).where(Product.category.like(f"{dept} > %"))))
    values = [v for pid, v in scores.items() if pid in ids]
    assert values
    return sum(values) / len(values)


def test_default_ranking_ignores_gender_and_age_band(
    shop: tuple[sessionmaker[Session], str], subject: int
) -> None:
    factory, _ = shop
    before = ranking(factory, subject, None)
    set_demographics(factory, subject, PANEL_GENDER, PANEL_AGE)
    after = ranking(factory, subject, None)
    assert list(after) == list(before)  # same order
    assert after == before  # and exactly the same scores
    shopper = SignalBuilder(factory).build(None, subject, now=NOW)
    assert shopper.segments["demographic"] == "students & young adults"  # still shown
    assert "gender" not in shopper.segments
    assert not any(kind in ("demographic", "gender") for kind, _ in shopper.prior.lifts)


def test_configured_ranking_follows_gender_and_age_band(
    shop: tuple[sessionmaker[Session], str], subject: int
) -> None:
    factory, department = shop
    policy = ProtectedPolicy(use_in_ranking=True)
    before = ranking(factory, subject, policy)
    set_demographics(factory, subject, PANEL_GENDER, PANEL_AGE)
    after = ranking(factory, subject, policy)
    assert list(after)[:20] != list(before)[:20]
    assert department_mean(after, factory, department) > department_mean(
        before, factory, department
    )
    shopper = SignalBuilder(factory, protected=policy).build(None, subject, now=NOW)
    assert ("gender", PANEL_GENDER) in shopper.prior.lifts
    assert ("demographic", "students & young adults") in shopper.prior.lifts


def test_only_gender_configured_leaves_age_band_out(
    shop: tuple[sessionmaker[Session], str], subject: int
) -> None:
    factory, _ = shop
    age_only_protected = ProtectedPolicy(frozenset({"age_band"}))
    before = ranking(factory, subject, age_only_protected)
    set_demographics(factory, subject, None, PANEL_AGE)  # age changes, gender now unknown
    assert ranking(factory, subject, age_only_protected) != before  # gender left the prior
    set_demographics(factory, subject, "male", "65+")
    again = ranking(factory, subject, age_only_protected)
    assert again == before  # the age band alone never mattered
