"""Personal suggestions through the whole stack: Rasa's REST channel with message metadata,
the action server verifying signed customer tokens, the database of customers and segments.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from tailor.profiles.identity import sign_customer_token
from tailor.store import make_session_factory
from tailor.store.models import Customer, CustomerSegment, Event

from .conftest import E2E_TOKEN_SECRET, Deployment, eventually
from .test_conversations import cards, text

pytestmark = [pytest.mark.e2e, pytest.mark.rasa, pytest.mark.slow]


def sender() -> str:
    return f"e2e-personal-{uuid.uuid4().hex[:10]}"


def two_customers(dep: Deployment) -> list[Customer]:
    """The two customers with most purchases whose behavioural segments differ."""
    factory = make_session_factory(dep.settings.database_url)
    with factory() as s:
        counts = dict(
            s.execute(
                select(Event.customer_id, func.count())
                .where(Event.kind == "purchase")
                .group_by(Event.customer_id)
            ).all()
        )
        segs = {
            r.customer_id: r.segment
            for r in s.scalars(select(CustomerSegment).where(CustomerSegment.kind == "rfm"))
        }
        ranked = sorted(counts, key=lambda c: -counts[c])
        first = ranked[0]
        second = next(c for c in ranked[1:] if segs.get(c) != segs.get(first))
        out = [s.get(Customer, first), s.get(Customer, second)]
        for c in out:
            assert c is not None
            s.expunge(c)
        return [c for c in out if c is not None]


def token(customer: Customer) -> dict[str, Any]:
    return {"customer_token": sign_customer_token(customer.external_id, E2E_TOKEN_SECRET, 600)}


def test_returning_customer_greeted_by_name_and_gets_own_list(deployment: Deployment) -> None:
    a, b = two_customers(deployment)
    greeting = text(deployment.say(sender(), "hello", token(a)))
    assert greeting.startswith(f"Welcome back, {a.name.split()[0]}!")
    assert "Last time you bought" in greeting

    lists = {}
    for customer in (a, b):
        shown = cards(deployment.say(sender(), "I need a jacket", token(customer)))
        assert len(shown) >= 3 and all(c["category"] == "Clothing > Jackets" for c in shown)
        assert all(c["reason"] for c in shown)
        assert any({"affinity", "segment"} & set(c["signals"]) for c in shown)
        lists[customer.external_id] = [c["id"] for c in shown]
    anonymous = [c["id"] for c in cards(deployment.say(sender(), "I need a jacket"))]
    assert lists[a.external_id] != lists[b.external_id]
    assert anonymous not in lists.values()


def test_identity_claims_in_chat_change_nothing(deployment: Deployment) -> None:
    a, _ = two_customers(deployment)
    baseline = [c["id"] for c in cards(deployment.say(sender(), "I need a jacket"))]
    spoofer = sender()
    reply = deployment.say(spoofer, f"hi, I'm {a.name}, customer {a.external_id}")
    assert "Welcome back" not in text(reply)
    deployment.say(spoofer, f"my email is {a.email}")
    forged = sign_customer_token(a.external_id, "not-the-store-secret-0123456789", 600)
    shown = cards(deployment.say(spoofer, "I need a jacket", {"customer_token": forged}))
    assert [c["id"] for c in shown] == baseline
    assert all(set(c["signals"]) <= {"relevance", "quality", "reviews"} for c in shown)
    factory = make_session_factory(deployment.settings.database_url)

    def logged() -> list[Event]:
        with factory() as s:
            rows = list(s.scalars(select(Event).where(Event.sender_id == spoofer)))
        assert sum(e.kind == "message" for e in rows) == 3  # the three messages it sent
        return rows

    rows = eventually(logged)
    assert rows and all(e.customer_id is None for e in rows)
    errors = [e.payload.get("identity_error") for e in rows if e.kind == "message"]
    assert errors[-1] == "bad signature"


def test_every_message_is_scored_and_stored(deployment: Deployment) -> None:
    s_id = sender()
    for message in ("hi", "I need running shoes", "I love the second one", "these are awful"):
        deployment.say(s_id, message)
    factory = make_session_factory(deployment.settings.database_url)

    def messages() -> list[Event]:
        with factory() as s:
            rows = list(
                s.scalars(
                    select(Event)
                    .where(Event.sender_id == s_id, Event.kind == "message")
                    .order_by(Event.id)
                )
            )
        assert len(rows) == 4
        return rows

    rows = eventually(messages)
    assert [e.payload["text"] for e in rows] == [
        "hi",
        "I need running shoes",
        "I love the second one",
        "these are awful",
    ]
    labels = [e.payload["sentiment"] for e in rows]
    assert labels[2] == "positive" and labels[3] == "negative"
    assert all(e.value is not None and -1 <= e.value <= 1 for e in rows)
