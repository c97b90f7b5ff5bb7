"""Custom actions with ``Tracker.from_dict`` + ``CollectingDispatcher`` on the real service.

The catalog is a real (small) demo catalog in SQLite, embedded with the real MiniLM and
indexed with FAISS; only Rasa itself is absent here (see tests/e2e for that).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.actions import (
    ActionCompare,
    ActionProductDetails,
    ActionRecommend,
    ActionReset,
    ActionShowMore,
)
from tailor.nlu.vocab import Vocabulary
from tailor.recommend.criteria import CRITERIA_SLOTS
from tailor.recommend.service import Recommender
from tailor.retrieval import ProductSearch
from tailor.runtime.after_reply import AFTER_REPLY
from tailor.store import Product, make_session_factory
from tailor.store.catalog import get_products
from tailor.store.events import events_for

pytestmark = pytest.mark.slow

SLOTS = (*CRITERIA_SLOTS, "shown", "seen")


@pytest.fixture(scope="module")
def recommender(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Recommender:
    from tailor.demo import load_demo

    home: Path = tmp_path_factory.mktemp("actions")
    factory = make_session_factory(f"sqlite:///{home / 'tailor.db'}")
    load_demo(factory, 800, 10, 42, progress=False)
    search = ProductSearch.open(home / "index", factory, embedder, backend="flat")
    with factory() as session:
        vocab = Vocabulary.from_session(session)
    return Recommender(search, factory, vocab, k=4)


def tracker(
    text: str,
    intent: str,
    entities: list[dict[str, Any]] | None = None,
    slots: dict[str, Any] | None = None,
    channel: str = "rest",
    sender: str = "test-user",
) -> Tracker:
    """A tracker as the Rasa server would send it, after one user message."""
    values = {name: None for name in SLOTS}
    values.update(slots or {})
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.99},
        "entities": entities or [],
    }
    return Tracker.from_dict(
        {
            "sender_id": sender,
            "slots": values,
            "latest_message": latest,
            "events": [
                {"event": "user", "text": text, "parse_data": latest, "input_channel": channel},
            ],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        }
    )


def span(text: str, entity: str, part: str, value: str | None = None) -> dict[str, Any]:
    start = text.index(part)
    return {"entity": entity, "value": value or part, "start": start, "end": start + len(part)}


async def run(action: Any, t: Tracker) -> tuple[CollectingDispatcher, dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, t, {})
    await AFTER_REPLY.drain()  # the turn's log, written after its reply
    # the slot values after the turn (actions only send the slots they change)
    slots = {**t.current_slot_values()}
    slots.update({e["name"]: e["value"] for e in events if e.get("event") == "slot"})
    return dispatcher, slots


def cards(dispatcher: CollectingDispatcher) -> list[dict[str, Any]]:
    out = []
    for m in dispatcher.messages:
        custom = m.get("custom") or {}
        if custom.get("type") == "product_cards":
            out.extend(custom["products"])
    return out


def stored(rec: Recommender, ids: list[int]) -> list[Product]:
    with rec.session_factory() as session:
        return get_products(session, ids)


async def test_a_reply_is_one_bot_message_with_its_text_buttons_and_cards(
    recommender: Recommender,
) -> None:
    """Text, quick replies and cards travel as one bot event (Rasa's output channels still
    deliver the cards after the text): one event less to store and resend every turn."""
    text = "I need running shoes"
    t = tracker(text, "ask_recommendation", [span(text, "product_type", "running shoes")])
    d, _ = await run(ActionRecommend(recommender), t)
    (message,) = d.messages
    assert message["text"].startswith("Here are")
    assert any(b["title"] == "Cheaper" for b in message["buttons"])
    assert message["custom"]["type"] == "product_cards"
    assert len(message["custom"]["products"]) >= 3


async def test_recommend_then_refine_then_details_compare_reset(recommender: Recommender) -> None:
    text = "I need running shoes under $80"
    t = tracker(
        text,
        "ask_recommendation",
        [span(text, "product_type", "running shoes"), span(text, "price", "under $80")],
    )
    d, slots = await run(ActionRecommend(recommender), t)
    shown = cards(d)
    assert 3 <= len(shown) <= 5
    products = stored(recommender, [c["id"] for c in shown])
    assert all(
        p.category == "Shoes > Running Shoes" and p.price <= 80 and p.stock > 0 for p in products
    )
    assert slots["category"] == "Shoes > Running Shoes" and slots["price_max"] == 80
    assert [s["id"] for s in slots["shown"]] == [c["id"] for c in shown]
    assert all(c["reason"] for c in shown)
    assert any(m.get("buttons") for m in d.messages)

    d2, slots2 = await run(
        ActionRecommend(recommender),
        tracker("cheaper please", "refine", [{"entity": "refinement", "value": "cheaper"}], slots),
    )
    cheaper = stored(recommender, [c["id"] for c in cards(d2)])
    assert cheaper and max(p.price for p in cheaper) < min(p.price for p in products)

    d3, _ = await run(
        ActionProductDetails(recommender),
        tracker("tell me more about the second one", "ask_product_details", [], slots2),
    )
    body = "\n".join(m.get("text") or "" for m in d3.messages)
    assert cheaper[1].title in body

    d4, _ = await run(
        ActionCompare(recommender), tracker("compare the first two", "compare", [], slots2)
    )
    body = "\n".join(m.get("text") or "" for m in d4.messages)
    assert cheaper[0].title in body and cheaper[1].title in body and "cheapest" in body

    _, reset = await run(ActionReset(recommender), tracker("start over", "reset", [], slots2))
    assert all(v is None for v in reset.values()) and set(reset) == set(SLOTS)


async def test_show_more_has_no_repeats(recommender: Recommender) -> None:
    text = "show me backpacks"
    d, slots = await run(
        ActionRecommend(recommender),
        tracker(text, "ask_recommendation", [span(text, "product_type", "backpacks")]),
    )
    seen = {c["id"] for c in cards(d)}
    assert seen
    for _ in range(3):
        d, new = await run(ActionShowMore(recommender), tracker("yes", "affirm", [], slots))
        ids = {c["id"] for c in cards(d)}
        assert ids and not ids & seen
        seen |= ids
        slots = {**slots, **new}


async def test_text_only_channel_gets_readable_list(recommender: Recommender) -> None:
    text = "I need running shoes under $80"
    t = tracker(
        text,
        "ask_recommendation",
        [span(text, "product_type", "running shoes")],
        channel="cmdline",
    )
    d, _ = await run(ActionRecommend(recommender), t)
    assert not cards(d)
    body = d.messages[0]["text"]
    assert "1. " in body and "2. " in body and "$" in body


async def test_impossible_request_says_so_and_offers_relaxations(recommender: Recommender) -> None:
    text = "running shoes under $1"
    t = tracker(
        text,
        "ask_recommendation",
        [span(text, "product_type", "running shoes"), span(text, "price", "under $1")],
        sender="miss-user",
    )
    d, slots = await run(ActionRecommend(recommender), t)
    assert not cards(d)
    body = d.messages[0]["text"]
    assert "couldn't find" in body and "higher budget" in body
    assert slots.get("shown") is None
    # the miss is logged for the dashboard's "queries with no good results"
    with recommender.session_factory() as session:
        misses = events_for(session, "miss-user", "no_results")
    assert [m.payload["query"] for m in misses] == ["running shoes"]
    assert misses[0].payload["total_matches"] == 0


async def test_shown_event_records_query_and_relevance(recommender: Recommender) -> None:
    text = "running shoes"
    t = tracker(text, "ask_recommendation", [span(text, "product_type", text)], sender="shown-1")
    d, _ = await run(ActionRecommend(recommender), t)
    with recommender.session_factory() as session:
        shown = events_for(session, "shown-1", "shown")
    assert [e.product_id for e in shown] == [c["id"] for c in cards(d)]
    assert {e.payload["query"] for e in shown} == {"running shoes"}
    top = max(c["signals"]["relevance"] for c in cards(d))
    assert shown[0].payload["top_relevance"] == pytest.approx(top, abs=1e-4)


async def test_generic_request_asks_what_to_find(recommender: Recommender) -> None:
    d, slots = await run(
        ActionRecommend(recommender),
        tracker("can you recommend something?", "ask_recommendation", sender="new-visitor"),
    )
    # A new visitor with no history or session: nothing to go on, so ask.
    assert d.messages[0].get("response") == "utter_ask_what"
    assert not any(slots.values())


async def test_details_out_of_range(recommender: Recommender) -> None:
    shown = [{"id": 1, "price": 10.0}, {"id": 2, "price": 12.0}]
    d, _ = await run(
        ActionProductDetails(recommender),
        tracker("the 5th one", "ask_product_details", [], {"shown": shown}),
    )
    assert "only showed 2" in d.messages[0]["text"]


async def test_a_brand_and_a_generic_word_find_the_brands_kind_of_product(
    recommender: Recommender,
) -> None:
    """ "nespresso machine", "otterbox case": the last word alone names no category, but the
    brand makes one kind of product ending so; the shopper gets that kind, from that brand."""
    from tailor.nlu.vocab import GENERIC_HEADS, singular

    vocab = recommender.vocab
    for brand, path in vocab.brand_categories:
        head = singular(path.rsplit(" ", 1)[-1].lower())
        if head in GENERIC_HEADS and vocab.brand_category(brand, head) == path:
            break
    else:
        pytest.fail("the demo catalog has no brand making one kind of product named by a head")
    text = f"show me a {brand.lower()} {head}"
    # Rasa's model saw the brand only; the product type comes from the brand
    t = tracker(text, "ask_recommendation", [span(text, "brand", brand.lower(), brand)])
    d, slots = await run(ActionRecommend(recommender), t)
    shown = cards(d)
    assert shown, d.messages
    assert slots["category"] == path
    assert {(c["brand"], c["category"]) for c in shown} == {(brand, path)}
