"""Scenarios of personal suggestions on the real service.

Real demo catalog and customers in SQLite, real MiniLM + FAISS, real segments (k-means RFM,
rules, psychographics), the real sentiment model, and the real custom actions fed trackers
shaped like Rasa's (the Rasa round trip itself is covered in tests/e2e).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import func, select

from actions.actions import ActionFeedback, ActionGreet, ActionObserve, ActionRecommend
from tailor.nlu.vocab import Vocabulary
from tailor.profiles.identity import sign_customer_token
from tailor.profiles.observer import Observer
from tailor.profiles.psychographics import psychographic_segment
from tailor.profiles.segments import (
    assign_psychographic_segments,
    assign_rule_segments,
    fit_behavioural,
)
from tailor.recommend.criteria import Criteria
from tailor.recommend.personal import ShopperContext
from tailor.recommend.service import Recommender
from tailor.retrieval import ProductSearch
from tailor.runtime.after_reply import AFTER_REPLY
from tailor.store import make_session_factory
from tailor.store.catalog import get_products
from tailor.store.events import record_events
from tailor.store.models import Customer, CustomerSegment, Event, Product
from tailor.store.profiles import link_channel_user, profile_for, set_personalisation
from tests.trackers import sdk_tracker

pytestmark = pytest.mark.slow

SECRET = "test-secret-0123456789abcdef"
_counter = iter(range(10_000))


def fresh_sender(prefix: str = "s") -> str:
    """A conversation id no other test used."""
    return f"{prefix}-{next(_counter)}-{time.monotonic_ns()}"


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Recommender:
    from tailor.demo import load_demo

    home: Path = tmp_path_factory.mktemp("personal")
    factory = make_session_factory(f"sqlite:///{home / 'tailor.db'}")
    load_demo(factory, 1500, 150, 42, progress=False)
    fit_behavioural(factory)
    assign_rule_segments(factory)
    assign_psychographic_segments(factory)
    search = ProductSearch.open(home / "index", factory, embedder, backend="flat")
    with factory() as session:
        vocab = Vocabulary.from_session(session)
    return Recommender(search, factory, vocab, k=5)


@pytest.fixture(scope="module")
def observer(rec: Recommender) -> Observer:
    return Observer(rec.session_factory, SECRET)


#: A tracker after one user message (the positional order the tests here use).
tracker = sdk_tracker


def span(text: str, entity: str, part: str) -> dict[str, Any]:
    start = text.index(part)
    return {"entity": entity, "value": part, "start": start, "end": start + len(part)}


async def run(action: Any, t: Tracker) -> tuple[CollectingDispatcher, dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, t, {})
    await AFTER_REPLY.drain()  # the turn's log, written after its reply
    return dispatcher, {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def cards(dispatcher: CollectingDispatcher) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in dispatcher.messages:
        custom = m.get("custom") or {}
        if custom.get("type") == "product_cards":
            out.extend(custom["products"])
    return out


def token_for(rec: Recommender, customer_id: int) -> str:
    with rec.session_factory() as s:
        customer = s.get(Customer, customer_id)
        assert customer is not None
        return sign_customer_token(customer.external_id, SECRET, ttl_seconds=600)


def jacket_request() -> tuple[str, list[dict[str, Any]]]:
    text = "I need a jacket"
    return text, [span(text, "product_type", "jacket")]


def customers_in_different_segments(rec: Recommender) -> tuple[int, int]:
    """The two customers with the most purchases whose behavioural segments differ."""
    with rec.session_factory() as s:
        counts = dict(
            s.execute(
                select(Event.customer_id, func.count())
                .where(Event.kind == "purchase")
                .group_by(Event.customer_id)
            ).all()
        )
        segs = {
            row.customer_id: row.segment
            for row in s.scalars(select(CustomerSegment).where(CustomerSegment.kind == "rfm"))
        }
    ranked = sorted(counts, key=lambda c: -counts[c])
    first = ranked[0]
    second = next(c for c in ranked[1:] if segs.get(c) != segs.get(first))
    return int(first), int(second)


async def test_two_customers_in_different_segments_get_different_explained_lists(
    rec: Recommender,
) -> None:
    a, b = customers_in_different_segments(rec)
    text, entities = jacket_request()
    lists = {}
    for cid in (a, b):
        meta = {"customer_token": token_for(rec, cid)}
        d, _ = await run(
            ActionRecommend(rec, Observer(rec.session_factory, SECRET)),
            tracker(text, "ask_recommendation", fresh_sender(), entities, metadata=meta),
        )
        shown = cards(d)
        assert len(shown) == 5 and all(c["category"] == "Clothing > Jackets" for c in shown)
        assert all(c["reason"] for c in shown)
        personal = [c for c in shown if {"affinity", "segment", "session"} & set(c["signals"])]
        assert personal, "a known customer's list carries personal signals"
        lists[cid] = [c["id"] for c in shown]
    assert lists[a] != lists[b]
    # And both differ from what an anonymous visitor sees.
    d, _ = await run(
        ActionRecommend(rec, Observer(rec.session_factory, SECRET)),
        tracker(text, "ask_recommendation", fresh_sender(), entities),
    )
    anonymous = [c["id"] for c in cards(d)]
    assert anonymous not in (lists[a], lists[b])
    assert all(set(c["signals"]) <= {"relevance", "quality", "reviews"} for c in cards(d))


async def test_negative_colour_reaction_demotes_that_colour(rec: Recommender) -> None:
    obs = Observer(rec.session_factory, SECRET)
    text, entities = jacket_request()
    sender = fresh_sender("neg")
    d, slots = await run(
        ActionRecommend(rec, obs), tracker(text, "ask_recommendation", sender, entities)
    )
    first = cards(d)
    target_colour = first[0]["colour"]
    reaction = "I hate the colour of the first one"
    ents = [span(reaction, "ordinal", "first")]
    d2, _ = await run(
        ActionRecommend(rec, obs), tracker(reaction, "react_negative", sender, ents, slots)
    )
    after = cards(d2)
    assert after and not {c["id"] for c in after} & {c["id"] for c in first}
    # Control: the same criteria, the same products excluded, but no reaction; compared on
    # a deeper list so the colour is there to be demoted whatever the catalog holds.
    crit = Criteria.from_slots(slots)
    first_ids = [c["id"] for c in first]
    reacted = rec.shopper(sender)
    deep_after = rec.recommend(crit, 15, exclude=first_ids, shopper=reacted).suggestions
    control = rec.recommend(crit, 15, exclude=first_ids).suggestions
    # where the disliked colour sits: later (or gone) after the reaction
    at_after = [i for i, s in enumerate(deep_after) if s.colour == target_colour]
    at_control = [i for i, s in enumerate(control) if s.colour == target_colour]
    assert at_control, "the control list must contain the colour to show a change"
    mean_control = sum(at_control) / len(at_control)
    assert not at_after or sum(at_after) / len(at_after) > mean_control
    with rec.session_factory() as s:
        fb = s.scalars(
            select(Event).where(Event.sender_id == sender, Event.kind == "feedback")
        ).all()
        msgs = s.scalars(select(Event).where(Event.sender_id == sender, Event.kind == "message"))
        labels = [m.payload.get("sentiment") for m in msgs]
    assert [(e.payload["aspect"], e.payload["value"]) for e in fb] == [("colour", target_colour)]
    assert labels[-1] == "negative" and len(labels) == 2  # every message scored and stored


async def test_a_reaction_to_everything_shown_is_stored_for_each_product_at_once(
    rec: Recommender,
) -> None:
    """ "I hate these": one feedback event per product shown (rank 0 each, the message's
    negative score as value), written in one transaction before the new picks are ranked."""
    from sqlalchemy import event

    obs = Observer(rec.session_factory, SECRET)
    text, entities = jacket_request()
    sender = fresh_sender("all")
    d, slots = await run(
        ActionRecommend(rec, obs), tracker(text, "ask_recommendation", sender, entities)
    )
    first = [c["id"] for c in cards(d)]
    assert len(first) >= 2
    bind = rec.session_factory.kw["bind"]
    commits: list[int] = []

    def count_feedback_commit(conn: Any) -> None:
        commits.append(1)

    d2 = CollectingDispatcher()
    reaction = "I hate these, awful"
    event.listen(bind, "commit", count_feedback_commit)
    try:
        await ActionRecommend(rec, obs).run(
            d2, tracker(reaction, "react_negative", sender, slots=slots), {}
        )
    finally:
        event.remove(bind, "commit", count_feedback_commit)
    assert cards(d2)
    with rec.session_factory() as s:
        fb = s.scalars(
            select(Event)
            .where(Event.sender_id == sender, Event.kind == "feedback")
            .order_by(Event.id)
        ).all()
    assert [e.product_id for e in fb] == first
    assert all(e.payload["rank"] == 0 and e.payload["polarity"] == "negative" for e in fb)
    assert len({e.value for e in fb}) == 1 and fb[0].value is not None and fb[0].value < 0
    # the feedback rows and the admission of the message; the rest waits for the reply
    assert len(commits) <= 2
    await AFTER_REPLY.drain()


async def test_positive_reaction_promotes_look_alikes(rec: Recommender) -> None:
    obs = Observer(rec.session_factory, SECRET)
    text, entities = jacket_request()
    sender = fresh_sender("pos")
    d, slots = await run(
        ActionRecommend(rec, obs), tracker(text, "ask_recommendation", sender, entities)
    )
    second = cards(d)[1]["id"]
    love = "love the second one"
    ents = [span(love, "ordinal", "second")]
    await run(ActionFeedback(rec, obs), tracker(love, "react_positive", sender, ents, slots))
    more, _ = await run(
        ActionRecommend(rec, obs), tracker("show me more", "affirm", sender, [], slots)
    )
    liked = rec.search.vector(second)
    after = [float(rec.search.vector(c["id"]) @ liked) for c in cards(more)]
    crit = Criteria.from_slots(slots)
    seen = [int(x) for x in slots["seen"]]
    control = rec.recommend(crit, 5, exclude=seen).suggestions
    before = [float(rec.search.vector(s.product_id) @ liked) for s in control]
    # Look-alikes of the liked product move up: rank-weighted similarity to it grows.
    discount = [1 / np.log2(i + 2) for i in range(5)]
    assert len(after) == len(before) == 5
    assert np.dot(after, discount) > np.dot(before, discount)
    liked_title = cards(d)[1]["title"]
    assert any(
        f"because you liked the {liked_title}".lower() in c["reason"].lower() for c in cards(more)
    )


async def test_session_follows_the_latest_interest(rec: Recommender) -> None:
    with rec.session_factory() as s:
        coat = s.scalars(select(Product.id).where(Product.category == "Clothing > Jackets")).first()
        sandal = s.scalars(select(Product.id).where(Product.category == "Shoes > Sandals")).first()
    assert coat and sandal
    for order, expected in (
        ((coat, sandal), "Shoes > Sandals"),
        ((sandal, coat), "Clothing > Jackets"),
    ):
        sender = fresh_sender("sess")
        with rec.session_factory.begin() as s:
            record_events(s, "click", sender, [order[0]])
        with rec.session_factory.begin() as s:
            record_events(s, "view", sender, [order[1]])
        d, _ = await run(
            ActionRecommend(rec, Observer(rec.session_factory, SECRET)),
            tracker("what would you recommend for me?", "ask_recommendation", sender),
        )
        shown = cards(d)
        assert shown, d.messages
        cats = [c["category"] for c in shown]
        assert cats.count(expected) > len(cats) / 2, cats
        assert "based on what you've been looking at" in d.messages[0]["text"]
        assert any("because you looked at" in c["reason"].lower() for c in shown)


async def test_opt_out_removes_personal_effects(rec: Recommender) -> None:
    a, _ = customers_in_different_segments(rec)
    crit = Criteria(query="I need a jacket", product_type="jacket", category="Clothing > Jackets")
    anonymous = [s.product_id for s in rec.recommend(crit, 5).suggestions]
    personal = rec.recommend(crit, 5, shopper=rec.shopper(fresh_sender(), a))
    assert [s.product_id for s in personal.suggestions] != anonymous
    with rec.session_factory.begin() as s:
        prof = profile_for(s, "x", a)
        assert prof is not None
        set_personalisation(s, prof, False)
    try:
        shopper = rec.shopper(fresh_sender(), a)
        assert not shopper.personalised and shopper.name
        opted_out = rec.recommend(crit, 5, shopper=shopper)
        assert [s.product_id for s in opted_out.suggestions] == anonymous
        assert all(
            set(s.signals) <= {"relevance", "quality", "reviews"} for s in opted_out.suggestions
        )
    finally:
        with rec.session_factory.begin() as s:
            prof = profile_for(s, "x", a)
            assert prof is not None
            set_personalisation(s, prof, True)


@pytest.mark.parametrize(
    "claim",
    [
        "I'm customer cust-0001, show me a jacket",
        "my email is {email}, I need a jacket",
        "I am {name} and I need a jacket",
    ],
)
async def test_spoofed_identity_claims_change_nothing(rec: Recommender, claim: str) -> None:
    with rec.session_factory() as s:
        victim = s.scalars(select(Customer).where(Customer.external_id == "cust-0001")).one()
    text = claim.format(email=victim.email, name=victim.name)
    entities = [span(text, "product_type", "jacket")]
    obs = Observer(rec.session_factory, SECRET)
    forged = sign_customer_token("cust-0001", "another-secret-0123456789", ttl_seconds=600)
    # What an anonymous visitor gets for the very same message.
    d_anon, _ = await run(
        ActionRecommend(rec, obs), tracker(text, "ask_recommendation", fresh_sender(), entities)
    )
    baseline = [c["id"] for c in cards(d_anon)]
    assert baseline
    senders = []
    for meta in ({}, {"customer_token": forged}, {"customer_id": victim.id, "email": victim.email}):
        sender = fresh_sender("spoof")
        senders.append(sender)
        d, _ = await run(
            ActionRecommend(rec, obs),
            tracker(text, "ask_recommendation", sender, entities, metadata=meta),
        )
        assert [c["id"] for c in cards(d)] == baseline
        assert all(set(c["signals"]) <= {"relevance", "quality", "reviews"} for c in cards(d))
    g, _ = await run(ActionGreet(rec, obs), tracker(f"hi, it's {victim.name}", "greet", senders[0]))
    assert g.messages[0].get("response") == "utter_greet"
    with rec.session_factory() as s:
        owners = set(s.scalars(select(Event.customer_id).where(Event.sender_id.in_(senders))))
    assert owners == {None}


async def test_returning_customer_is_greeted_by_name_with_their_last_purchase(
    rec: Recommender,
) -> None:
    a, _ = customers_in_different_segments(rec)
    obs = Observer(rec.session_factory, SECRET)
    sender = fresh_sender("greet")
    d, _ = await run(
        ActionGreet(rec, obs),
        tracker("hello", "greet", sender, metadata={"customer_token": token_for(rec, a)}),
    )
    text = d.messages[0]["text"]
    with rec.session_factory() as s:
        customer = s.get(Customer, a)
        assert customer is not None
        last = s.scalars(
            select(Event)
            .where(Event.customer_id == a, Event.kind == "purchase")
            .order_by(Event.created_at.desc())
        ).first()
        assert last is not None and last.product_id is not None
        title = get_products(s, [last.product_id])[0].title
    assert text.startswith(f"Welcome back, {customer.name.split()[0]}!")
    assert title in text
    # Picks for a known customer without any criteria: from their history.
    d2, _ = await run(
        ActionRecommend(rec, obs),
        tracker(
            "what would you recommend for me?",
            "ask_recommendation",
            sender,
            metadata={"customer_token": token_for(rec, a)},
        ),
    )
    assert cards(d2) and "based on your past orders" in d2.messages[0]["text"]


async def test_visitor_history_is_adopted_on_identification_and_platform_links(
    rec: Recommender,
) -> None:
    obs = Observer(rec.session_factory, SECRET)
    sender = fresh_sender("adopt")
    await run(ActionObserve(rec, obs), tracker("I care about sustainability", "thank", sender))
    with rec.session_factory() as s:
        assert s.scalars(select(Event.customer_id).where(Event.sender_id == sender)).all() == [None]
    a, _ = customers_in_different_segments(rec)
    await run(
        ActionObserve(rec, obs),
        tracker("thanks", "thank", sender, metadata={"customer_token": token_for(rec, a)}),
    )
    with rec.session_factory() as s:
        assert set(s.scalars(select(Event.customer_id).where(Event.sender_id == sender))) == {a}
        prof = profile_for(s, sender, a, create=False)
        assert prof is not None and any(p["value"] == "sustainability" for p in prof.preferences)
        seg = s.scalars(
            select(CustomerSegment.segment).where(
                CustomerSegment.customer_id == a, CustomerSegment.kind == "psychographic"
            )
        ).one()
        tags = [
            t
            for row in s.execute(
                select(Product.tags)
                .join(Event, Event.product_id == Product.id)
                .where(
                    Event.customer_id == a,
                    Event.kind.in_(("view", "click", "cart", "purchase", "details")),
                )
            )
            for t in row[0] or []
        ]
    # The stated value joined the browsing tags in the customer's psychographic segment.
    assert seg == psychographic_segment(["sustainability"], tags, min_signal=2)
    # A messaging platform's user id linked by the store identifies; an unlinked one does not.
    with rec.session_factory.begin() as s:
        link_channel_user(s, "telegram", "tg-42", a)
    linked = obs.observe("tg-42", "hi", "greet", "telegram", {})
    assert linked.customer_id == a
    assert obs.observe("tg-43", "hi", "greet", "telegram", {}).customer_id is None
    # The same id on the web channel is just a sender id: no identity.
    assert obs.observe("tg-42", "hi", "greet", "rest", {}).customer_id is None


def test_anonymous_context_is_neutral(rec: Recommender) -> None:
    ctx = rec.shopper(fresh_sender(), None)
    assert ctx.personalised and ctx.affinity.is_empty() and ctx.prior.is_empty()
    assert ShopperContext.anonymous().personalised is False


async def test_opt_out_made_before_signing_in_holds_on_the_sign_in_turn(rec: Recommender) -> None:
    """The message that signs a visitor in is ranked after their anonymous profile (with its
    opt-out) has been adopted: the ranking waits for identity, not for the sentiment."""
    a, _ = customers_in_different_segments(rec)
    sender = fresh_sender("optout")
    with rec.session_factory.begin() as s:
        anon = profile_for(s, sender, None)
        assert anon is not None
        set_personalisation(s, anon, False)
    text, entities = jacket_request()
    meta = {"customer_token": token_for(rec, a)}
    try:
        d, _ = await run(
            ActionRecommend(rec, Observer(rec.session_factory, SECRET)),
            tracker(text, "ask_recommendation", sender, entities, metadata=meta),
        )
        shown = cards(d)
        assert shown
        assert all(set(c["signals"]) <= {"relevance", "quality", "reviews"} for c in shown)
    finally:
        with rec.session_factory.begin() as s:
            prof = profile_for(s, "x", a)
            assert prof is not None
            set_personalisation(s, prof, True)


async def test_every_message_is_stored_with_its_sentiment_even_on_an_early_answer(
    rec: Recommender,
) -> None:
    sender = fresh_sender("early")
    d, _ = await run(
        ActionRecommend(rec, Observer(rec.session_factory, SECRET)),
        tracker("can you recommend something please", "ask_recommendation", sender),
    )
    assert [m.get("response") for m in d.messages] == ["utter_ask_what"]
    with rec.session_factory() as s:
        msgs = s.scalars(
            select(Event).where(Event.sender_id == sender, Event.kind == "message")
        ).all()
    assert len(msgs) == 1 and msgs[0].payload["text"] == "can you recommend something please"
    assert msgs[0].payload.get("sentiment") and msgs[0].value is not None


async def test_the_sentiment_model_runs_after_the_reply_unless_the_turn_needs_it(
    rec: Recommender,
) -> None:
    """A request's sentiment is scored after its reply (the turn's own work has both cores);
    it is still stored with the message. A negative reaction is scored within its turn."""
    model = Observer(rec.session_factory, SECRET).sentiment_model
    calls: list[str] = []

    def spy(texts: Any) -> Any:
        calls.extend([texts] if isinstance(texts, str) else texts)
        return model(texts)

    action = ActionRecommend(rec, Observer(rec.session_factory, SECRET, sentiment_model=spy))
    sender = fresh_sender("later")
    text, entities = jacket_request()
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker(text, "ask_recommendation", sender, entities), {})
    assert cards(dispatcher) and calls == []  # answered, nothing scored yet
    await AFTER_REPLY.drain()
    assert calls == [text]
    with rec.session_factory() as s:
        (msg,) = s.scalars(
            select(Event).where(Event.sender_id == sender, Event.kind == "message")
        ).all()
    assert msg.payload.get("sentiment") and msg.value is not None

    slots = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    dispatcher = CollectingDispatcher()
    await action.run(
        dispatcher, tracker("I hate these, awful", "react_negative", sender, slots=slots), {}
    )
    assert calls == [text, "I hate these, awful"]  # scored within the turn, once
    await AFTER_REPLY.drain()
    assert calls == [text, "I hate these, awful"]


def test_more_like_a_product_names_it_in_every_reason_and_never_shows_it(
    rec: Recommender,
) -> None:
    """A "more like" request reads the reference product with its candidates (one cache
    lookup): its title reaches the result and each reason, and it is never suggested."""
    ref = rec.recommend(Criteria(product_type="jacket"), 1).suggestions[0]
    result = rec.recommend(Criteria(similar_to=ref.product_id), 4)
    assert result.suggestions and ref.product_id not in {s.product_id for s in result.suggestions}
    with rec.session_factory() as s:
        (product,) = get_products(s, [ref.product_id])
    assert result.similar_title == product.title
    # the reason's first letter is capitalised, or lowered after a personal reason
    wanted = f"similar to {product.title}".lower()
    assert all(wanted in s.reason.lower() for s in result.suggestions)


def test_warm_up_fills_the_product_cache_so_a_new_search_reads_no_product(
    rec: Recommender,
) -> None:
    """The action server's warm-up reads the catalog into memory when it fits: a shopper's
    first search for something new then reads no product row, and ranks the same."""
    query = Criteria(query="a sturdy bamboo cutting board for the kitchen")
    rec.products.clear()
    before = rec.products.misses
    cold = rec.recommend(query)
    assert rec.products.misses > before  # (the candidates were read from the database)
    rec.products.clear()
    assert rec.warm_up() == 1500
    misses = rec.products.misses
    warm = rec.recommend(query)
    assert rec.products.misses == misses
    assert [s.product_id for s in warm.suggestions] == [s.product_id for s in cold.suggestions]
