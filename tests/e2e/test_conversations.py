"""Whole conversations through Rasa's REST channel, with the real action server behind it.

Each suggested product is checked against the database for every constraint said so far.
That these turns work at all proves rasa-sdk (3.21 on Python 3.11) speaks Rasa 3.6's
action protocol.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tailor.store import Product, make_session_factory
from tailor.store.catalog import get_products

from .conftest import Deployment

pytestmark = [pytest.mark.e2e, pytest.mark.rasa, pytest.mark.slow]


def cards(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Product cards of a reply (empty when the bot suggested nothing)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        custom = m.get("custom") or {}
        if custom.get("type") == "product_cards":
            out.extend(custom["products"])
    return out


def text(messages: list[dict[str, Any]]) -> str:
    """All text of a reply."""
    return "\n".join(m.get("text") or "" for m in messages)


def products_of(dep: Deployment, shown: list[dict[str, Any]]) -> list[Product]:
    """The suggested products as stored, in order."""
    factory = make_session_factory(dep.settings.database_url)
    with factory() as session:
        found = get_products(session, [int(c["id"]) for c in shown])
        for p in found:
            session.expunge(p)
    assert [p.id for p in found] == [int(c["id"]) for c in shown], "a card names an unknown product"
    return found


Check = Callable[[Product], bool]


def assert_all(products: list[Product], checks: dict[str, Check]) -> None:
    """Every product passes every accumulated constraint."""
    for p in products:
        failed = [name for name, ok in checks.items() if not ok(p)]
        assert not failed, (
            f"{p.title} ({p.category}, {p.brand}, {p.colour}, ${p.price}) violates {failed}"
        )


def test_refinement_chain_respects_everything_said(deployment: Deployment) -> None:
    """The issue's scripted chat: every answer respects everything said so far."""
    sender = f"e2e-{uuid.uuid4().hex[:10]}"
    say = lambda t: deployment.say(sender, t)  # noqa: E731

    first = say("I need running shoes under $80")
    shown = cards(first)
    assert 3 <= len(shown) <= 5, text(first)
    checks: dict[str, Check] = {
        "running shoes": lambda p: p.category == "Shoes > Running Shoes",
        "under $80": lambda p: p.price <= 80,
        "in stock": lambda p: p.stock > 0,
    }
    products = products_of(deployment, shown)
    assert_all(products, checks)
    assert all(c["reason"] for c in shown)

    reply = say("show me cheaper ones")
    cheapest_before = min(p.price for p in products)
    shown = cards(reply)
    assert shown, text(reply)
    products = products_of(deployment, shown)
    checks["cheaper than all shown before"] = lambda p, cap=cheapest_before: p.price < cap
    assert_all(products, checks)

    reply = say("any in blue?")
    shown = cards(reply)
    assert shown, text(reply)
    checks["blue"] = lambda p: (p.colour or "").lower() == "blue"
    products = products_of(deployment, shown)
    assert_all(products, checks)

    reply = say("tell me more about the second one")
    if len(products) >= 2:
        assert products[1].title in text(reply)
        assert not cards(reply)

    reply = say("compare the first two")
    if len(products) >= 2:
        body = text(reply)
        assert products[0].title in body and products[1].title in body

    reply = say("I don't like Nike")
    shown = cards(reply)
    checks["not Nike"] = lambda p: (p.brand or "").lower() != "nike"
    if shown:
        assert_all(products_of(deployment, shown), checks)
    else:  # nothing left: the bot must say so rather than break a constraint
        assert "couldn't find" in text(reply).lower()

    reply = say("start over")
    assert not cards(reply)
    reply = say("show me headphones")
    shown = cards(reply)
    assert shown, text(reply)
    products = products_of(deployment, shown)
    assert all("Headphones" in p.category for p in products), [p.category for p in products]
    assert any(p.price > 80 or (p.colour or "") != "blue" for p in products), (
        "criteria from before 'start over' leaked into the new search"
    )


@pytest.mark.parametrize(
    "message",
    [
        "what's the weather like in Paris tomorrow?",
        "tell me a joke",
        "who won the football game last night",
        "how do I reset my bank password",
        "what is the capital of Australia",
    ],
)
def test_out_of_scope_gets_no_products(deployment: Deployment, message: str) -> None:
    sender = f"e2e-oos-{uuid.uuid4().hex[:8]}"
    reply = deployment.say(sender, message)
    assert reply, "the bot must answer"
    assert not cards(reply), f"{message!r} got product suggestions: {text(reply)}"


def test_show_more_never_repeats_and_greets(deployment: Deployment) -> None:
    sender = f"e2e-more-{uuid.uuid4().hex[:8]}"
    hello = deployment.say(sender, "hi there")
    assert text(hello) and not cards(hello)
    seen: set[int] = set()
    first = cards(deployment.say(sender, "I'm looking for a backpack"))
    assert first
    seen |= {int(c["id"]) for c in first}
    for _ in range(2):
        more = cards(deployment.say(sender, "show me more"))
        ids = {int(c["id"]) for c in more}
        assert ids, "show more returned nothing"
        assert not ids & seen, "show more repeated a product"
        seen |= ids
    products = products_of(deployment, [{"id": i} for i in sorted(seen)])
    assert all(p.category.startswith("Bags") for p in products), {p.category for p in products}
    bye = deployment.say(sender, "thanks, bye")
    assert not cards(bye)


def test_details_and_compare_need_products_on_screen(deployment: Deployment) -> None:
    sender = f"e2e-edge-{uuid.uuid4().hex[:8]}"
    reply = deployment.say(sender, "tell me more about the second one")
    assert not cards(reply)
    assert "haven't shown" in text(reply).lower() or "looking for" in text(reply).lower()
    first = cards(deployment.say(sender, "show me wireless headphones"))
    assert len(first) >= 2
    reply = deployment.say(sender, "compare the 7th and 9th")
    assert f"only showed {len(first)}" in text(reply)
