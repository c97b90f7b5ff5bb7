"""Actions take over the work the Rasa server's hints started, only when it is for their
message and their inputs: the real recommender on a real demo catalog, Tracker.from_dict and
CollectingDispatcher (only Rasa is absent; tests/e2e run the real pair)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import actions.actions as A
from actions.base import AHEAD
from tailor.nlu.vocab import Vocabulary
from tailor.recommend.service import Recommender, set_default_recommender
from tailor.retrieval import ProductSearch
from tailor.runtime import hints
from tailor.runtime.after_reply import AFTER_REPLY
from tailor.store import make_session_factory
from tests.trackers import sdk_tracker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recommender(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Recommender]:
    from tailor.demo import load_demo

    home: Path = tmp_path_factory.mktemp("hints")
    factory = make_session_factory(f"sqlite:///{home / 'tailor.db'}")
    load_demo(factory, 800, 10, 42, progress=False)
    search = ProductSearch.open(home / "index", factory, embedder, backend="flat")
    with factory() as session:
        vocab = Vocabulary.from_session(session)
    rec = Recommender(search, factory, vocab, k=4)
    set_default_recommender(rec)  # hints are handled by the process's default service
    A._observer = None
    yield rec
    set_default_recommender(None)
    A._observer = None


def tracker(
    text: str,
    intent: str,
    slots: dict[str, Any] | None = None,
    sender: str = "hinted",
    message_id: str = "m1",
) -> Tracker:
    """A tracker as the Rasa server sends it after one user message."""
    return sdk_tracker(text, intent, sender, slots=slots, message_id=message_id)


def hint_pair(t: Tracker, slots: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The two hints the Rasa launcher sends for ``t``'s message (``slots`` as Rasa saw
    them; the tracker's by default)."""
    msg = t.latest_message
    key = {"sender_id": t.sender_id, "message_id": msg["message_id"]}
    return [
        {
            "hint": "message",
            **key,
            "text": msg["text"],
            "input_channel": "rest",
            "metadata": msg["metadata"],
        },
        {
            "hint": "parsed",
            **key,
            "intent": msg["intent"]["name"],
            "entities": msg["entities"],
            "slots": t.current_slot_values() if slots is None else slots,
        },
    ]


async def _finish_ahead(key: tuple[str, str]) -> None:
    """Wait until every task the hints started for ``key`` is done (tasks may start more)."""
    while (ahead := AHEAD.get(key)) is not None:
        details = ahead.details[1] if ahead.details is not None else None
        tasks = [ahead.understood, ahead.shopper, ahead.scope, ahead.reaction, ahead.answer]
        tasks.append(details)
        pending = [t for t in tasks if t is not None and not t.done()]
        if not pending:
            return
        await asyncio.wait(pending)


def run(
    action: Any, t: Tracker, sent: Sequence[dict[str, Any]] = (), finish: bool = False
) -> tuple[list[Any], list[Any]]:
    """Dispatch ``sent`` hints, let them start (with ``finish``, let them finish: Rasa took
    long enough), run ``action`` on ``t``: messages, events."""

    async def main() -> tuple[list[Any], list[Any]]:
        for h in sent:
            hints.dispatch(h)
        await asyncio.sleep(0)  # the started work runs while "Rasa" works on
        if finish:
            await _finish_ahead((t.sender_id, t.latest_message["message_id"]))
        dispatcher = CollectingDispatcher()
        events = await action.run(dispatcher, t, {})
        await AFTER_REPLY.drain()
        return dispatcher.messages, events

    return asyncio.run(main())


def card_ids(messages: list[dict[str, Any]]) -> list[int]:
    return [p["id"] for m in messages for p in ((m.get("custom") or {}).get("products") or [])]


def test_a_hinted_recommendation_is_the_one_the_action_would_make(
    recommender: Recommender,
) -> None:
    text = "running shoes under $80"
    plain_t = tracker(text, "ask_recommendation", sender=f"plain-{uuid.uuid4().hex}")
    plain, plain_events = run(A.ActionRecommend(), plain_t)
    before = dict(hints.STATS)
    hinted_t = tracker(text, "ask_recommendation", sender=f"hinted-{uuid.uuid4().hex}")
    # (finished: Rasa's NLU and policies gave the hinted work time to plan and search; a
    # full-suite run once saw the action come before the plan, which only costs time)
    hinted, hinted_events = run(A.ActionRecommend(), hinted_t, hint_pair(hinted_t), True)
    counted = {k: v - before.get(k, 0) for k, v in hints.STATS.items() if v != before.get(k, 0)}
    assert counted == {"answered ahead": 1}, counted
    assert card_ids(hinted) and card_ids(hinted) == card_ids(plain)
    assert [m.get("text") for m in hinted] == [m.get("text") for m in plain]
    assert hinted_events == plain_events
    assert len(AHEAD) == 0


def test_hints_that_disagree_with_the_action_call_change_nothing(
    recommender: Recommender,
) -> None:
    # the hint saw other slots (a price cap): the action searches for its own
    text, slots = "cheaper", {"product_type": "running shoes", "query": "running shoes"}
    plain_t = tracker(text, "refine", slots, sender=f"plain-{uuid.uuid4().hex}")
    plain, _ = run(A.ActionRecommend(), plain_t)
    before = hints.STATS["answered otherwise"]
    t = tracker(text, "refine", slots, sender=f"other-{uuid.uuid4().hex}")
    wrong = {**slots, "price_max": 20.0}
    hinted, _ = run(A.ActionRecommend(), t, hint_pair(t, wrong))
    assert hints.STATS["answered otherwise"] == before + 1
    assert card_ids(hinted) == card_ids(plain)

    # a hint for another text under this message's id is not taken at all
    t2 = tracker("a yoga mat", "ask_recommendation", sender=f"forged-{uuid.uuid4().hex}")
    forged = hint_pair(t2)
    for h in forged:
        h["text"] = "I hate everything"
    before_other = hints.STATS["hinted otherwise"]
    run(A.ActionRecommend(), t2, forged)
    assert hints.STATS["hinted otherwise"] == before_other + 1
    assert len(AHEAD) == 0


def test_work_no_action_takes_is_dropped_after_the_turn(recommender: Recommender) -> None:
    from actions.privacy import ActionMyData

    t = tracker("what do you know about me?", "ask_my_data", sender=f"p-{uuid.uuid4().hex}")
    messages, _ = run(ActionMyData(), t, hint_pair(t))
    assert messages  # the privacy answer, as without hints
    assert len(AHEAD) == 0


def _feedback(recommender: Recommender, sender: str) -> list[tuple[int | None, Any]]:
    """The feedback events stored for ``sender``: (product, aspect value)."""
    from tailor.store.models import Event

    with recommender.session_factory() as session:
        rows = session.query(Event).filter_by(sender_id=sender, kind="feedback").all()
        return sorted((r.product_id, (r.payload or {}).get("value")) for r in rows)


@pytest.mark.parametrize("finish", [False, True], ids=["racing", "stored ahead"])
def test_a_hinted_negative_reaction_demotes_as_an_unhinted_one(
    recommender: Recommender, finish: bool
) -> None:
    def conversation(hinted: bool) -> tuple[list[int], list[tuple[int | None, Any]]]:
        sender = f"{'h' if hinted else 'p'}-{uuid.uuid4().hex}"
        first = tracker("running shoes", "ask_recommendation", sender=sender, message_id="m1")
        _, events = run(A.ActionRecommend(), first, hint_pair(first) if hinted else [])
        slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
        second = tracker("I hate the colour of these", "react_negative", slots, sender, "m2")
        sent = hint_pair(second) if hinted else []
        messages, _ = run(A.ActionRecommend(), second, sent, finish)
        return card_ids(messages), _feedback(recommender, sender)

    plain, plain_stored = conversation(False)
    assert plain and len(plain_stored) == 1  # the colour most of the products shown have
    before = dict(hints.STATS)
    hinted, stored = conversation(True)
    counted = {k: v - before.get(k, 0) for k, v in hints.STATS.items() if v != before.get(k, 0)}
    assert hinted == plain
    assert [value for _, value in stored] == [value for _, value in plain_stored]  # once
    # the hints stored the reaction and searched after it; the action took both
    assert counted["reaction ahead"] == 1, counted
    if finish:
        assert counted.get("answered ahead") == 2, counted  # (the first turn's, this one's)
    assert len(AHEAD) == 0


def test_a_negative_reaction_hinted_but_never_acted_on_is_stored_once(
    recommender: Recommender,
) -> None:
    """Rasa parsed the reaction, then failed before calling the action: the shopper said it,
    so it is stored, once, in the conversation's order."""
    sender = f"lost-{uuid.uuid4().hex}"
    first = tracker("running shoes", "ask_recommendation", sender=sender, message_id="m1")
    _, events = run(A.ActionRecommend(), first)
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    second = tracker("I hate the colour of these", "react_negative", slots, sender, "m2")

    async def main() -> None:
        for h in hint_pair(second):
            hints.dispatch(h)
        await asyncio.sleep(0)
        await _finish_ahead((sender, "m2"))
        AHEAD.discard((sender, "m2"))  # no action came for it
        await AFTER_REPLY.drain()

    asyncio.run(main())
    assert len(_feedback(recommender, sender)) == 1
    assert len(AHEAD) == 0


def test_hints_that_come_after_their_action_start_nothing(recommender: Recommender) -> None:
    t = tracker("a yoga mat", "ask_recommendation", sender=f"late-{uuid.uuid4().hex}")
    run(A.ActionRecommend(), t)  # the action call overtook its hints
    received = dict(hints.STATS)
    run(A.ActionRecommend(), t, hint_pair(t))  # Rasa retried the call; the hints arrive
    assert len(AHEAD) == 0
    assert hints.STATS["answered ahead"] == received.get("answered ahead", 0)


def _shown_after(query: str, sender: str) -> dict[str, Any]:
    """The slots after a recommendation for ``query`` (no hints)."""
    first = tracker(query, "ask_recommendation", sender=sender, message_id="m0")
    _, events = run(A.ActionRecommend(), first)
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


@pytest.mark.parametrize(
    ("action", "text", "intent"),
    [
        (A.ActionProductDetails, "tell me more about the second one", "ask_product_details"),
        (A.ActionCompare, "compare the first and the third", "compare"),
        (A.ActionCompare, "compare them", "compare"),
    ],
)
def test_hinted_details_are_the_ones_the_action_would_show(
    recommender: Recommender, action: Any, text: str, intent: str
) -> None:
    shown = {"shown": _shown_after("running shoes", f"shown-{uuid.uuid4().hex}")["shown"]}
    assert len(shown["shown"]) >= 3
    plain, _ = run(action(), tracker(text, intent, shown, sender=f"plain-{uuid.uuid4().hex}"))
    before = dict(hints.STATS)
    t = tracker(text, intent, shown, sender=f"hinted-{uuid.uuid4().hex}")
    hinted, events = run(action(), t, hint_pair(t), finish=True)
    assert hints.STATS["details ahead"] == before.get("details ahead", 0) + 1
    assert hinted == plain and plain[0].get("custom")
    assert events == []
    assert len(AHEAD) == 0


def test_details_hinted_for_other_products_are_not_shown(recommender: Recommender) -> None:
    shown = _shown_after("running shoes", f"shown-{uuid.uuid4().hex}")["shown"]
    text, intent = "tell me more about the first one", "ask_product_details"
    plain, _ = run(
        A.ActionProductDetails(),
        tracker(text, intent, {"shown": shown}, sender=f"plain-{uuid.uuid4().hex}"),
    )
    before = hints.STATS["details otherwise"]
    t = tracker(text, intent, {"shown": shown}, sender=f"other-{uuid.uuid4().hex}")
    # the hint saw the products in another order: it read the details of another product
    hinted, _ = run(A.ActionProductDetails(), t, hint_pair(t, {"shown": shown[::-1]}), True)
    assert hints.STATS["details otherwise"] == before + 1
    assert hinted == plain


@pytest.mark.parametrize(
    ("text", "intent", "is_request"),
    [
        ("yoga mat", "nlu_fallback", True),  # a bare product phrase
        ("I need some good running shoes for a marathon", "out_of_scope", True),
        ("what's the weather like?", "out_of_scope", False),
    ],
)
def test_a_hinted_out_of_scope_message_is_answered_as_without_hints(
    recommender: Recommender, text: str, intent: str, is_request: bool
) -> None:
    plain, plain_events = run(
        A.ActionOutOfScope(), tracker(text, intent, sender=f"plain-{uuid.uuid4().hex}")
    )
    assert bool(card_ids(plain)) == is_request
    before = dict(hints.STATS)
    t = tracker(text, intent, sender=f"hinted-{uuid.uuid4().hex}")
    hinted, events = run(A.ActionOutOfScope(), t, hint_pair(t), finish=True)
    assert hinted == plain
    assert events == plain_events
    answered = hints.STATS["answered ahead"] - before.get("answered ahead", 0)
    assert answered == (1 if is_request else 0)
    scoped = hints.STATS["scope ahead"] - before.get("scope ahead", 0)
    assert scoped == (0 if text == "yoga mat" else 1)  # a bare phrase needs no closeness
    assert len(AHEAD) == 0
