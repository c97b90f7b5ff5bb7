"""A behavioural trigger through the whole stack: a customer who put a product in the cart
and left says hello to the real Rasa server; the action server's greeting brings the item
back with look-alikes ranked for them (the committed triggers.toml), logs the firing, and the
shopper can ask about the item by number."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tailor.profiles.identity import sign_customer_token
from tailor.store import make_session_factory
from tailor.store.events import record_events
from tailor.store.models import Customer, Event, Product

from .conftest import E2E_TOKEN_SECRET, Deployment
from .test_conversations import cards, text

pytestmark = [pytest.mark.e2e, pytest.mark.rasa, pytest.mark.slow]


def test_abandoned_cart_is_offered_back_on_hello(deployment: Deployment) -> None:
    factory = make_session_factory(deployment.settings.database_url)
    earlier = datetime.now(UTC) - timedelta(hours=3)
    with factory.begin() as session:
        # the customer least likely to be used by other tests: the newest one
        customer = session.get(Customer, session.scalar(select(func.max(Customer.id))))
        assert customer is not None
        product = session.scalars(
            select(Product).where(Product.stock > 0).order_by(Product.id.desc())
        ).first()
        assert product is not None
        old = f"e2e-shop-{uuid.uuid4().hex[:8]}"
        for kind, minutes in (("view", -3), ("cart", 0)):
            (e,) = record_events(session, kind, old, [product.id], {}, customer.id)
            e.created_at = earlier + timedelta(minutes=minutes)
        external, first, title, pid = (
            customer.external_id,
            customer.name.split()[0],
            product.title,
            product.id,
        )
        cid = customer.id
    token = {"customer_token": sign_customer_token(external, E2E_TOKEN_SECRET, 600)}
    sender = f"e2e-trigger-{uuid.uuid4().hex[:10]}"

    reply = deployment.say(sender, "hello", token)
    said = text(reply)
    assert said.startswith(f"Welcome back, {first}!")
    assert f"You left the {title} in your cart" in said
    shown = cards(reply)
    assert shown[0]["id"] == pid and shown[0]["reason"] == "still in your cart"
    assert len(shown) >= 2 and all(c["id"] != pid for c in shown[1:])
    with factory() as session:
        fired = session.scalars(
            select(Event).where(Event.kind == "trigger", Event.customer_id == cid)
        ).all()
    assert [(e.sender_id, e.payload["rule"], e.payload["channel"]) for e in fired] == [
        (sender, "abandoned-cart", "chat")
    ]
    assert fired[0].payload["products"] == [c["id"] for c in shown]

    # the offered cards are the conversation's list: "the first one" is the cart item
    details = text(deployment.say(sender, "tell me more about the first one", token))
    assert title in details

    # a second hello does not remind again
    again = text(deployment.say(f"e2e-trigger-{uuid.uuid4().hex[:10]}", "hi", token))
    assert "in your cart" not in again


def test_panel_shows_the_context_and_the_rules_that_apply(deployment: Deployment) -> None:
    """The assist panel's conversation JSON carries the shopper's context (from the page's
    metadata of their latest message) and the context rules of context.toml that apply."""
    import os
    import time

    from fastapi.testclient import TestClient

    from tailor.store.agents import create_agent
    from tailor.web.app import create_app
    from tailor.web.security import CSRF_HEADER

    factory = make_session_factory(deployment.settings.database_url)
    with factory.begin() as session:
        create_agent(session, "ctx-agent", "correct horse battery")
        customer = session.scalars(select(Customer).order_by(Customer.id)).first()
        assert customer is not None
        external = customer.external_id
    sender = f"e2e-context-{uuid.uuid4().hex[:8]}"
    meta = {
        "customer_token": sign_customer_token(external, E2E_TOKEN_SECRET, 600),
        "device": "mobile",
        "local_hour": 7,
        "tz": "Europe/Berlin",
    }
    deployment.say(sender, "show me headphones", meta)
    previous = os.environ.get("TAILOR_RASA_TOKEN")
    os.environ["TAILOR_RASA_TOKEN"] = deployment.rasa_token
    try:
        with TestClient(create_app(deployment.settings)) as client:
            r = client.post(
                "/api/agent/login",
                json={"username": "ctx-agent", "password": "correct horse battery"},
            )
            assert r.status_code == 200, r.text
            client.headers[CSRF_HEADER] = r.json()["csrf_token"]
            d: dict[str, object] = {}
            for _ in range(120):  # the recommender loads in a background thread
                d = client.get(f"/api/agent/conversations/{sender}").json()
                if d["suggestions"]["status"] != "loading":  # type: ignore[index]
                    break
                time.sleep(0.5)
    finally:
        if previous is None:
            os.environ.pop("TAILOR_RASA_TOKEN", None)
        else:
            os.environ["TAILOR_RASA_TOKEN"] = previous
    sug = d["suggestions"]
    assert isinstance(sug, dict) and sug["status"] == "ok"
    ctx = sug["context"]
    assert ctx["device"] == "mobile" and ctx["local_hour"] == 7 and ctx["weekday"]
    applied = {rule["name"] for rule in ctx["rules"]}
    assert {"breakfast", "mobile-on-the-go"} <= applied
    assert "evening-unwind" not in applied
    boosted = [p for p in sug["products"] if "context:mobile-on-the-go" in p["signals"]]
    assert all(p["signals"]["context:mobile-on-the-go"] == 0.02 for p in boosted)
