"""The shopper's own data through the whole stack: "what do you know about me?" and "forget me"
on the real Rasa server and action server, with the conversation deleted from Rasa's tracker
store too (after Rasa saved the very turn that forgot it).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from tailor.privacy import TrackerStore
from tailor.profiles.identity import sign_customer_token
from tailor.store import make_session_factory
from tailor.store.models import Customer, Event, Profile, Review
from tailor.web.demo import pick_demo_customers

from .conftest import E2E_TOKEN_SECRET, Deployment
from .test_conversations import text

pytestmark = [pytest.mark.e2e, pytest.mark.rasa, pytest.mark.slow]


def sender() -> str:
    return f"e2e-privacy-{uuid.uuid4().hex[:10]}"


def buttons(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [b for m in messages for b in m.get("buttons") or []]


def wait_until_gone(dep: Deployment, senders: list[str], timeout: float = 30.0) -> int:
    """Rows left in the tracker store for ``senders`` once they are gone or time is up."""
    store = TrackerStore.from_settings(dep.settings)
    deadline = time.monotonic() + timeout
    left = store.count(senders)
    while left and time.monotonic() < deadline:
        time.sleep(0.3)
        left = store.count(senders)
    return left


def every_value(url: str) -> list[tuple[str, str, Any]]:
    """(table, column, value) of every cell of every table in the database."""
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    out = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(sa.select(table)):
                out += [(table.name, col, val) for col, val in row._mapping.items()]
    engine.dispose()
    return out


def test_visitor_asks_what_is_kept_then_forgets_after_confirming(deployment: Deployment) -> None:
    s_id = sender()
    deployment.say(s_id, "I need a warm jacket, call me on +44 20 7946 0958")
    about = text(deployment.say(s_id, "what do you know about me?"))
    assert "not signed in" in about and "1 message" in about
    assert "/api/privacy/export" in about and "forget me" in about and "{" not in about

    factory = make_session_factory(deployment.settings.database_url)
    with factory() as s:
        stored = [
            e.payload.get("text")
            for e in s.scalars(
                select(Event).where(Event.sender_id == s_id, Event.kind == "message")
            )
        ]
    assert stored == ["I need a warm jacket, call me on [phone]"]

    ask = deployment.say(s_id, "forget me")
    assert "Shall I forget it?" in text(ask)
    assert [b["payload"] for b in buttons(ask)] == ["/affirm", "/deny"]
    assert "haven't deleted anything" in text(deployment.say(s_id, "no"))
    store = TrackerStore.from_settings(deployment.settings)
    assert store.count([s_id]) > 10
    with factory() as s:
        assert (s.scalar(select(func.count()).where(Event.sender_id == s_id)) or 0) >= 2

    assert "Shall I forget it?" in text(deployment.say(s_id, "please delete my data"))
    done = text(deployment.say(s_id, "yes"))
    assert "deleted everything I kept about this conversation" in done
    assert wait_until_gone(deployment, [s_id]) == 0
    with factory() as s:
        assert s.scalar(select(func.count()).where(Event.sender_id == s_id)) == 0
        assert s.scalar(select(func.count()).where(Profile.sender_id == s_id)) == 0
    # the next message starts a new conversation
    again = text(deployment.say(s_id, "what do you know about me?"))
    assert "no activity" in again
    # asking for suggestions "for me" is not a question about one's data
    for ask in ("what would you recommend for me?", "what do you suggest for me?"):
        assert "/api/privacy/export" not in text(deployment.say(sender(), ask))


def forgettable_customer(dep: Deployment) -> Customer:
    """A customer with a little history whose name no other row holds, and whom the other
    e2e tests do not use (they take the customers with most purchases and the page's "Shop
    as" list)."""
    factory = make_session_factory(dep.settings.database_url)
    with factory() as s:
        buys = {
            int(cid): int(n)
            for cid, n in s.execute(
                select(Event.customer_id, func.count())
                .where(Event.kind == "purchase", Event.customer_id.is_not(None))
                .group_by(Event.customer_id)
            )
            if cid is not None
        }
        names = dict(s.execute(select(Customer.name, func.count()).group_by(Customer.name)).all())
        authors = set(s.scalars(select(Review.author).where(Review.author.is_not(None))))
        in_use = {c.id for c in pick_demo_customers(s)}
        in_use.update(sorted(buys, key=lambda c: -buys[c])[:10])
        for cid in sorted(set(buys) - in_use, key=lambda c: (buys[c], -c)):
            c = s.get(Customer, cid)
            if c is not None and names[c.name] == 1 and c.name not in authors and c.email:
                s.expunge(c)
                return c
    pytest.fail("no customer with a unique name")


def test_signed_in_customer_is_forgotten_everywhere(deployment: Deployment) -> None:
    customer = forgettable_customer(deployment)
    meta = {"customer_token": sign_customer_token(customer.external_id, E2E_TOKEN_SECRET, 600)}
    first, second = sender(), sender()
    assert customer.name.split()[0] in text(deployment.say(first, "hello", meta))
    deployment.say(first, "I need a jacket, I care about sustainability", meta)
    deployment.say(second, "hi", meta)

    about = text(deployment.say(second, "what do you know about me?", meta))
    assert f"signed in as {customer.name}" in about and "purchase" in about
    assert "sustainability" in about

    ask = text(deployment.say(second, "I want to be forgotten", meta))
    assert "Shall I forget you?" in ask and customer.name.split()[0] in ask
    assert "deleted everything I kept about you" in text(deployment.say(second, "yes", meta))
    assert wait_until_gone(deployment, [first, second]) == 0

    needles = [customer.name, customer.email or "", customer.external_id, first, second]
    tracker_url = TrackerStore.from_settings(deployment.settings).url
    left = [
        f"{table}.{column}"
        for url in (deployment.settings.database_url, tracker_url)
        for table, column, value in every_value(url)
        if (column == "customer_id" and value == customer.id)
        or any(n.lower() in json.dumps(value, default=str).lower() for n in needles)
    ]
    assert left == []
    # signed out now as far as Tailor knows: the same token greets generically
    assert "Welcome back" not in text(deployment.say(sender(), "hello", meta))
