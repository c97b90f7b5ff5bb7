"""Behavioural triggers and context rules on the real service: a demo catalog in SQLite, real
MiniLM + FAISS, real events, the real greeting action, and outbound messages to a local
stand-in for the Telegram Bot API (a real HTTP server that records the calls)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions.actions import ActionGreet
from tailor.marketing.outbound import TelegramSender
from tailor.marketing.rules import parse_trigger_config
from tailor.marketing.triggers import TriggerEngine, trigger_performance
from tailor.nlu.vocab import Vocabulary
from tailor.profiles.identity import sign_customer_token
from tailor.profiles.observer import Observer
from tailor.recommend.context import parse_context_rules
from tailor.recommend.criteria import Criteria
from tailor.recommend.personal import Context, ShopperContext
from tailor.recommend.service import Recommender
from tailor.retrieval import ProductSearch
from tailor.store import make_session_factory
from tailor.store.events import record_events
from tailor.store.marketing import set_marketing_opt_in
from tailor.store.models import Customer, Event, Product
from tailor.store.profiles import link_channel_user, profile_for, set_personalisation

pytestmark = pytest.mark.slow

SECRET = "test-secret-0123456789abcdef"
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # 15:00 UTC: outside the quiet hours
CONFIG = parse_trigger_config(
    {
        "settings": {"timezone": "UTC", "max_per_customer": {"firings": 5, "hours": 168}},
        "trigger": [
            {
                "name": "abandoned-cart",
                "type": "abandoned_cart",
                "channels": ["chat", "telegram"],
                "message": "You left the {title} in your cart",
                "suggestions": 2,
                "cap": {"firings": 2, "hours": 168},
                "cooldown_hours": 24,
                "quiet_hours": "21-9",
                "wait_hours": 1,
                "idle_minutes": 30,
            }
        ],
    }
)


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Recommender:
    from tailor.demo import load_demo

    home: Path = tmp_path_factory.mktemp("triggers")
    factory = make_session_factory(f"sqlite:///{home / 'tailor.db'}")
    load_demo(factory, 800, 20, 42, progress=False)
    search = ProductSearch.open(home / "index", factory, embedder, backend="flat")
    with factory() as session:
        vocab = Vocabulary.from_session(session)
    return Recommender(search, factory, vocab, k=4)


_customers = iter(range(1, 21))


@pytest.fixture
def customer(rec: Recommender) -> Customer:
    """A demo customer no other test of this module used."""
    with rec.session_factory() as session:
        c = session.get(Customer, next(_customers))
        assert c is not None
        return c


def cart(rec: Recommender, customer_id: int, sender: str, at: datetime) -> Product:
    """The customer views and carts an in-stock jacket at ``at`` (real events)."""
    with rec.session_factory.begin() as session:
        product = session.scalars(
            select(Product).where(Product.stock > 0, Product.category.like("%Jackets%"))
        ).first()
        assert product is not None
        for kind, dt in (("view", -2), ("cart", 0)):
            (e,) = record_events(session, kind, sender, [product.id], {}, customer_id)
            e.created_at = at + timedelta(minutes=dt)
        session.expunge(product)
        return product


def events(rec: Recommender, customer_id: int, kind: str) -> list[Event]:
    with rec.session_factory() as session:
        return list(
            session.scalars(
                select(Event)
                .where(Event.customer_id == customer_id, Event.kind == kind)
                .order_by(Event.id)
            )
        )


def test_abandoned_cart_fires_once_within_the_cap_and_is_logged(
    rec: Recommender, customer: Customer
) -> None:
    engine = TriggerEngine(CONFIG, rec)
    product = cart(rec, customer.id, "web-1", NOW - timedelta(hours=3))
    offer = engine.conversation_offer("web-2", customer.id, "rest", {}, now=NOW)
    assert offer is not None and offer.rule == "abandoned-cart"
    assert offer.text == f"You left the {product.title} in your cart"
    assert offer.cards[0]["id"] == product.id and offer.cards[0]["reason"] == "still in your cart"
    assert len(offer.cards) == 3 and product.id not in offer.product_ids[1:]
    # the suggestions are look-alikes from the recommender: same department as the cart item
    top = product.category.split(" > ")[0]
    assert all(c["category"].startswith(top) for c in offer.cards[1:])
    (fired,) = events(rec, customer.id, "trigger")
    assert fired.payload["rule"] == "abandoned-cart" and fired.payload["channel"] == "chat"
    assert fired.payload["products"] == offer.product_ids
    shown = events(rec, customer.id, "shown")
    assert [e.product_id for e in shown] == offer.product_ids
    assert all(e.payload["trigger"] == "abandoned-cart" for e in shown)
    # the next greeting, an hour later: already reminded of this cart
    assert (
        engine.conversation_offer("web-3", customer.id, "rest", {}, NOW + timedelta(hours=1))
        is None
    )
    # a new abandoned cart the next hour: the 24-hour cooldown holds it back …
    cart(rec, customer.id, "web-3", NOW + timedelta(hours=1))
    assert (
        engine.conversation_offer("web-4", customer.id, "rest", {}, NOW + timedelta(hours=5))
        is None
    )
    # … until the day is over; then it fires (the second firing the weekly cap allows)
    later = NOW + timedelta(hours=26)
    assert engine.conversation_offer("web-5", customer.id, "rest", {}, later) is not None
    cart(rec, customer.id, "web-5", later + timedelta(minutes=5))
    third = later + timedelta(hours=30)
    assert engine.conversation_offer("web-6", customer.id, "rest", {}, third) is None  # cap: 2/week
    assert len(events(rec, customer.id, "trigger")) == 2


def test_no_trigger_for_opted_out_or_anonymous_strangers(
    rec: Recommender, customer: Customer
) -> None:
    engine = TriggerEngine(CONFIG, rec)
    cart(rec, customer.id, "web-a", NOW - timedelta(hours=3))
    with rec.session_factory.begin() as session:
        prof = profile_for(session, "web-a", customer.id)
        assert prof is not None
        set_personalisation(session, prof, False)
    assert engine.conversation_offer("web-b", customer.id, "rest", {}, now=NOW) is None
    assert events(rec, customer.id, "trigger") == []
    # an anonymous visitor's cart comes back in the same conversation only
    with rec.session_factory.begin() as session:
        pid = session.scalars(select(Product.id).where(Product.stock > 0)).first()
        (e,) = record_events(session, "cart", "anon-1", [pid], {}, None)
        e.created_at = NOW - timedelta(hours=2)
    assert engine.conversation_offer("anon-2", None, "rest", {}, now=NOW) is None
    offer = engine.conversation_offer("anon-1", None, "rest", {}, now=NOW)
    assert offer is not None and offer.subject_id == pid


def test_performance_counts_what_followed(rec: Recommender, customer: Customer) -> None:
    engine = TriggerEngine(CONFIG, rec)
    cart(rec, customer.id, "web-p", NOW - timedelta(hours=3))
    with rec.session_factory() as session:
        before = {r.rule: r for r in trigger_performance(session, NOW - timedelta(hours=1))}
    offer = engine.conversation_offer("web-q", customer.id, "rest", {}, now=NOW)
    assert offer is not None
    with rec.session_factory.begin() as session:
        for kind, pid, minutes in [
            ("click", offer.product_ids[1], 2),
            ("click", offer.product_ids[1], 3),  # twice: one clicked item
            ("cart", offer.product_ids[0], 4),
            ("purchase", offer.product_ids[0], 9),
            ("purchase", offer.product_ids[2], 60 * 24 * 9),  # outside the 7-day window
        ]:
            (e,) = record_events(session, kind, "web-q", [pid], {}, customer.id)
            e.created_at = NOW + timedelta(minutes=minutes)
    with rec.session_factory() as session:
        rows = {r.rule: r for r in trigger_performance(session, NOW - timedelta(hours=1), 7.0)}
    row, old = rows["abandoned-cart"], before["abandoned-cart"]
    assert row.fired - old.fired == 1 and row.shown - old.shown == 3
    assert (row.clicked - old.clicked, row.carted - old.carted) == (1, 1)
    assert row.purchased - old.purchased == 1
    assert row.by_channel["chat"] >= 1


class _PlatformStandIn(BaseHTTPRequestHandler):
    calls: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.calls.append((self.path, json.loads(body or b"{}")))
        out = json.dumps({"ok": True, "result": {"message_id": len(self.calls)}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def telegram_api() -> Iterator[str]:
    _PlatformStandIn.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PlatformStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_outbound_only_with_opt_in_outside_quiet_hours(
    rec: Recommender, customer: Customer, telegram_api: str
) -> None:
    engine = TriggerEngine(CONFIG, rec, {"telegram": TelegramSender("42:abc", telegram_api)})
    product = cart(rec, customer.id, "web-o", NOW - timedelta(hours=3))
    with rec.session_factory.begin() as session:
        link_channel_user(session, "telegram", "tg-777", customer.id)
    mine = lambda fs: [f for f in fs if f.customer_id == customer.id]  # noqa: E731
    # linked but no opt-in: it waits for the next conversation, nothing is sent
    assert [f.status for f in mine(engine.run(NOW))] == ["pending chat"]
    assert _PlatformStandIn.calls == []
    with rec.session_factory.begin() as session:
        set_marketing_opt_in(session, customer.id, "telegram", True)
    night = NOW.replace(hour=23)
    assert [f.status for f in mine(engine.run(night))] == ["skipped: quiet"]
    assert [f.status for f in mine(engine.run(NOW, dry_run=True))] == ["would send"]
    assert _PlatformStandIn.calls == [] and events(rec, customer.id, "trigger") == []
    (sent,) = mine(engine.run(NOW))
    assert sent.status == "sent" and sent.channel == "telegram" and sent.products[0] == product.id
    paths = [p for p, _ in _PlatformStandIn.calls]
    assert paths == ["/bot42:abc/sendMessage"] * 2  # the text, then the cards with buttons
    assert _PlatformStandIn.calls[0][1] == {
        "chat_id": "tg-777",
        "text": f"You left the {product.title} in your cart",
    }
    assert "inline_keyboard" in _PlatformStandIn.calls[1][1]["reply_markup"]
    (fired,) = events(rec, customer.id, "trigger")
    assert fired.payload["channel"] == "telegram" and fired.sender_id == "tg-777"
    assert mine(engine.run(NOW + timedelta(minutes=5))) == []  # reminded: nothing more


async def test_greeting_brings_the_cart_back(rec: Recommender, customer: Customer) -> None:
    engine = TriggerEngine(CONFIG, rec)
    product = cart(rec, customer.id, "web-g", datetime.now(UTC) - timedelta(hours=3))
    token = sign_customer_token(customer.external_id, SECRET, ttl_seconds=600)
    meta = {"customer_token": token, "device": "desktop", "local_hour": 16}
    latest = {"text": "hello", "intent": {"name": "greet", "confidence": 1.0}, "entities": []}
    tracker = Tracker.from_dict(
        {
            "sender_id": "web-greet-1",
            "slots": {"shown": None},
            "latest_message": {**latest, "metadata": meta},
            "events": [
                {
                    "event": "user",
                    "text": "hello",
                    "parse_data": latest,
                    "input_channel": "rest",
                    "metadata": meta,
                }
            ],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        }
    )
    action = ActionGreet(rec, Observer(rec.session_factory, SECRET), engine)
    dispatcher = CollectingDispatcher()
    out = await action.run(dispatcher, tracker, {})
    texts = [m.get("text") for m in dispatcher.messages if m.get("text")]
    assert texts[0].startswith(f"Welcome back, {customer.name.split()[0]}!")
    assert f"You left the {product.title} in your cart" in texts
    (cards,) = [m["custom"] for m in dispatcher.messages if m.get("custom")]
    assert cards["type"] == "product_cards" and cards["products"][0]["id"] == product.id
    (slot,) = [e for e in out if e.get("event") == "slot"]
    assert slot["name"] == "shown" and slot["value"][0]["id"] == product.id


def test_context_rule_moves_matching_products_up(rec: Recommender) -> None:
    rules = parse_context_rules(
        {
            "context": [
                {
                    "name": "breakfast",
                    "when": {"hour": "6-10"},
                    "boost": {"categories": ["Kitchen > Coffee Machines"]},
                    "weight": 0.2,
                    "reason": "a morning pick",
                }
            ]
        }
    )
    boosted = Recommender(
        rec.search,
        rec.session_factory,
        rec.vocab,
        k=8,
        weights=replace(rec.weights, context_rules=rules),
    )
    crit = Criteria(category="Kitchen")

    def coffee_share(hour: int) -> tuple[int, list[str]]:
        shopper = ShopperContext(personalised=True, context=Context(local_hour=hour))
        result = boosted.recommend(crit, shopper=shopper, now=NOW)
        cats = [s.category for s in result.suggestions]
        return sum(c == "Kitchen > Coffee Machines" for c in cats), [
            s.reason for s in result.suggestions if "context:breakfast" in s.signals
        ]

    at_noon, noon_reasons = coffee_share(12)
    at_seven, reasons = coffee_share(7)
    assert at_seven > at_noon and noon_reasons == []
    assert reasons and all(r.startswith("A morning pick") for r in reasons)


def test_an_anonymous_greeting_only_queries_for_rules_it_can_meet(
    rec: Recommender, customer: Customer
) -> None:
    from sqlalchemy import event

    from tailor.config import PROJECT_ROOT
    from tailor.marketing.rules import load_trigger_config

    every = load_trigger_config(PROJECT_ROOT / "triggers.toml")
    assert {r.type for r in every.rules} >= {"abandoned_cart", "restock_due", "retention"}
    carts = replace(every, rules=[r for r in every.rules if r.type == "abandoned_cart"])
    bind = rec.session_factory.kw["bind"]

    def statements(config: Any, customer_id: int | None) -> int:
        seen: list[str] = []

        def count(*args: Any) -> None:
            seen.append(args[2])

        event.listen(bind, "before_cursor_execute", count)
        try:
            offer = TriggerEngine(config, rec).conversation_offer(
                "anon-greeted", customer_id, "rest", {}, now=NOW
            )
        finally:
            event.remove(bind, "before_cursor_execute", count)
        assert offer is None
        return len(seen)

    # a stranger can only have left a cart: the restock and win-back rules cost no query
    assert statements(every, None) == statements(carts, None) > 0
    # a known customer is checked against every rule
    assert statements(every, customer.id) > statements(carts, customer.id)


def test_warm_up_checks_every_chat_rule_and_writes_nothing(
    rec: Recommender, customer: Customer, caplog: pytest.LogCaptureFixture
) -> None:
    """The action server's warm-up runs a greeting's checks for a shopper who cannot exist:
    every rule of the committed file is checked, no error, no row written, and a real
    shopper's offer afterwards is unchanged."""
    from sqlalchemy import event, func

    from tailor.config import PROJECT_ROOT
    from tailor.marketing.rules import load_trigger_config

    every = load_trigger_config(PROJECT_ROOT / "triggers.toml")
    chat = [r for r in every.rules if r.enabled and "chat" in r.channels]
    bind = rec.session_factory.kw["bind"]
    writes: list[str] = []

    def count(*args: Any) -> None:
        if not args[2].lstrip().upper().startswith("SELECT"):
            writes.append(args[2])

    with rec.session_factory() as s:
        rows = s.scalar(select(func.count()).select_from(Event))
    event.listen(bind, "before_cursor_execute", count)
    try:
        with caplog.at_level("ERROR"):
            assert TriggerEngine(every, rec).warm_up(now=NOW) == len(chat) > 0
    finally:
        event.remove(bind, "before_cursor_execute", count)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    assert not [w for w in writes if "INSERT" in w.upper() or "UPDATE" in w.upper()]
    with rec.session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == rows
    engine = TriggerEngine(CONFIG, rec)
    engine.warm_up(now=NOW)
    cart(rec, customer.id, "web-warm", NOW - timedelta(hours=3))
    offer = engine.conversation_offer("web-warm-2", customer.id, "rest", {}, now=NOW)
    assert offer is not None and offer.rule == "abandoned-cart"
