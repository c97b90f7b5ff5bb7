"""Query understanding and scope decisions inside the real actions, on a real demo catalog
with the real embedder, FAISS and a persisted BM25 index (hybrid search, as deployed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.actions import ActionOutOfScope, ActionRecommend, ActionReset
from tailor.nlu.vocab import Vocabulary
from tailor.recommend.service import Recommender
from tailor.retrieval import ProductSearch
from tailor.retrieval.lexical import open_lexical
from tailor.retrieval.text import product_text
from tailor.runtime.after_reply import AFTER_REPLY
from tailor.store import make_session_factory
from tailor.store.catalog import get_products
from tailor.store.models import Product

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recommender(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Recommender:
    from tailor.demo import load_demo

    home: Path = tmp_path_factory.mktemp("understanding")
    factory = make_session_factory(f"sqlite:///{home / 'tailor.db'}")
    load_demo(factory, 1500, 10, 7, progress=False)
    search = ProductSearch.open(home / "index", factory, embedder, backend="flat")
    with factory() as session:
        vocab = Vocabulary.from_session(session)

    def texts() -> list[tuple[int, str]]:
        with factory() as session:
            return [(p.id, product_text(p)) for p in session.query(Product).order_by(Product.id)]

    lexical = open_lexical(home / "index", search.fingerprint, texts)
    return Recommender(search, factory, vocab, k=4, lexical=lexical, search_mode="hybrid")


def tracker(text: str, intent: str, slots: dict[str, Any] | None = None) -> Tracker:
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": []}
    return Tracker.from_dict(
        {
            "sender_id": f"u-{abs(hash(text)) % 10**8}",
            "slots": slots or {},
            "latest_message": latest,
            "events": [
                {"event": "user", "text": text, "parse_data": latest, "input_channel": "rest"}
            ],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        }
    )


async def run(action: Any, t: Tracker) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, t, {})
    await AFTER_REPLY.drain()  # the turn's log, written after its reply
    slots = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    cards = [
        p for m in dispatcher.messages for p in ((m.get("custom") or {}).get("products") or [])
    ]
    return cards, {"slots": slots, "messages": dispatcher.messages}


def products(rec: Recommender, cards: list[dict[str, Any]]) -> list[Product]:
    with rec.session_factory() as session:
        return get_products(session, [int(c["id"]) for c in cards])


async def test_typos_and_constraints_without_any_rasa_entity(recommender: Recommender) -> None:
    # the NLU model found nothing (typos); query understanding reads the constraints
    text = "runing shoes in blak under 150, not nike"
    cards, out = await run(ActionRecommend(recommender), tracker(text, "ask_recommendation"))
    assert cards, out["messages"]
    slots = out["slots"]
    assert slots["category"] == "Shoes > Running Shoes"
    assert slots["colour"] == "black" and slots["price_max"] == 150
    assert slots["exclude_brands"] == ["Nike"]
    assert slots["query"] == "running shoes in black"  # constraints cut out, typos fixed
    for p in products(recommender, cards):
        assert p.category == "Shoes > Running Shoes" and p.colour == "black"
        assert p.price <= 150 and p.brand != "Nike"


async def test_bare_product_phrase_read_as_out_of_scope_still_gets_products(
    recommender: Recommender,
) -> None:
    cards, _ = await run(ActionOutOfScope(recommender), tracker("yoga mat thick", "out_of_scope"))
    assert cards
    assert {p.category for p in products(recommender, cards)} == {"Sports > Yoga Mats"}


async def test_bare_phrase_read_as_a_reset_is_a_request(recommender: Recommender) -> None:
    cards, _ = await run(ActionReset(recommender), tracker("hiking boots waterproof", "reset"))
    assert cards and all(p.category == "Shoes > Hiking Boots" for p in products(recommender, cards))
    # with a search going, a reset is a reset
    cards, out = await run(
        ActionReset(recommender),
        tracker("start over", "reset", {"category": "Shoes > Hiking Boots"}),
    )
    assert not cards and out["slots"]["category"] is None


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("what's the weather like tomorrow in Paris", "out_of_scope"),
        ("how do I reset my online banking password", "nlu_fallback"),
        ("can you recommend a good restaurant nearby", "ask_recommendation"),
        ("suggest a movie to watch tonight", "ask_recommendation"),
    ],
)
async def test_non_shopping_messages_get_no_products(
    recommender: Recommender, text: str, intent: str
) -> None:
    action = ActionOutOfScope(recommender) if intent != "ask_recommendation" else None
    cards, out = await run(action or ActionRecommend(recommender), tracker(text, intent))
    assert not cards, (text, out["messages"])
    assert out["messages"], "the bot must answer"


async def test_hybrid_search_is_what_the_bot_uses(recommender: Recommender) -> None:
    assert recommender.search_mode == "hybrid" and recommender.hybrid is not None
    with recommender.session_factory() as session:
        target = session.query(Product).order_by(Product.id).offset(123).first()
        assert target is not None
        title = target.title
    # the exact title ranks its product first in hybrid mode
    hits = recommender._candidates(None, title, 10, None)  # type: ignore[arg-type]
    assert hits[0].product_id == target.id
    # similarity to the catalog: high for products, low for other things
    assert recommender.catalog_similarity(title) > 0.6
    assert recommender.catalog_similarity("what's my credit card balance") < 0.35
