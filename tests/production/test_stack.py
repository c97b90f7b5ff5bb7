"""The production profile's guarantees, on the real services (nothing mocked).

The tests run in this order (one module, one stack): shared state across replicas, the lock
store serialising one conversation, a replica and an action server killed mid-run, then the
analytics table compared with the tracker store.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tailor.analytics.events import event_key
from tests.e2e.test_conversations import cards

from .conftest import Stack

pytestmark = [pytest.mark.production, pytest.mark.e2e, pytest.mark.rasa, pytest.mark.slow]

#: Conversations of the kill tests, checked again by the analytics tests.
KILLED_RUN_SENDERS: list[str] = []
#: When a Rasa server was killed (Unix time), for attributing events the broker lost.
RASA_KILLED_AT: list[float] = []

SCRIPT = [
    "I need running shoes under $80",
    "any in blue?",
    "show me cheaper ones",
    "tell me more about the second one",
]


def delivered(bot_event: dict[str, Any]) -> int:
    """How many messages Rasa's output channels deliver for one bot event
    (``OutputChannel.send_response``): its text (with buttons or quick replies), then its
    custom payload, image, attachment and elements, each as a message of its own."""
    data = bot_event.get("data") or {}
    n = 1 if bot_event.get("text") or data.get("buttons") or data.get("quick_replies") else 0
    return n + sum(1 for key in ("custom", "image", "attachment", "elements") if data.get(key))


def user_and_bot(events: list[dict[str, Any]]) -> list[str]:
    """The conversation as a list of 'user:<text>' markers and one 'bot' marker per message
    the user received (a reply's text and its cards are one event, two messages)."""
    out = []
    for e in events:
        if e.get("event") == "user":
            out.append(f"user:{e.get('text')}")
        elif e.get("event") == "bot":
            out.extend(["bot"] * delivered(e))
    return out


def test_turns_alternating_between_replicas_keep_state(stack: Stack) -> None:
    """Turn 1 on replica A, turn 2 on replica B, turn 3 on A: each sees what was said before."""
    sender = f"alt-{uuid.uuid4().hex[:10]}"
    a, b = stack.running.replica_url(0), stack.running.replica_url(1)

    first = stack.say(sender, "I need running shoes under $80", url=a)
    assert cards(first), first
    slots_on_b = stack.tracker(sender, url=b)["slots"]
    assert slots_on_b.get("product_type") or slots_on_b.get("category"), slots_on_b

    second = stack.say(sender, "any in blue?", url=b)
    shown = cards(second)
    assert shown, second
    from tailor.store import make_session_factory
    from tailor.store.catalog import get_products

    factory = make_session_factory(stack.settings.database_url, create=False)
    with factory() as session:
        products = get_products(session, [int(c["id"]) for c in shown])
        facts = [(p.category, float(p.price), (p.colour or "").lower()) for p in products]
    assert len(facts) == len(shown), (shown, facts)
    for category, price, colour in facts:
        assert category == "Shoes > Running Shoes", facts  # said on replica A
        assert price <= 80, facts  # said on replica A
        assert "blue" in colour, facts  # said on replica B

    third = stack.say(sender, "show me cheaper ones", url=a)
    assert cards(third), third
    events = stack.tracker(sender, url=b)["events"]
    turns = user_and_bot(events)
    assert [t for t in turns if t.startswith("user:")] == [
        "user:I need running shoes under $80",
        "user:any in blue?",
        "user:show me cheaper ones",
    ]


def test_concurrent_messages_of_one_conversation_are_serialised(stack: Stack) -> None:
    """Six messages sent at once (through the balancer, so both replicas take some): the
    tracker holds each user message followed by its own bot turn, none lost, none interleaved."""
    sender = f"lock-{uuid.uuid4().hex[:10]}"
    stack.say(sender, "hello")
    messages = [f"show me {word} shoes" for word in ("red", "blue", "black", "white", "green")]
    messages.append("I need a jacket")
    barrier = threading.Barrier(len(messages))

    def send(text: str) -> list[dict[str, Any]]:
        barrier.wait()
        return stack.say(sender, text)

    with ThreadPoolExecutor(len(messages)) as pool:
        replies = list(pool.map(send, messages))
    assert all(replies), replies

    events = stack.tracker(sender)["events"]
    turns = user_and_bot(events)
    users = [t for t in turns if t.startswith("user:")]
    assert sorted(users) == sorted(["user:hello", *(f"user:{m}" for m in messages)]), users
    # Serialised: after each user message comes at least one bot message before the next one.
    for i, t in enumerate(turns):
        if t.startswith("user:"):
            nxt = turns[i + 1] if i + 1 < len(turns) else None
            assert nxt == "bot", f"turn {i} ({t}) is not answered before the next: {turns}"
    # And each user message got the bot turns its own reply carried, no more, no less.
    bots_per_user: list[int] = []
    for t in turns:
        if t.startswith("user:"):
            bots_per_user.append(0)
        else:
            bots_per_user[-1] += 1
    received = [len(r) for r in replies]
    assert sum(bots_per_user[1:]) == sum(received), (bots_per_user, received)
    # Both replicas served part of it (round robin), so this really crossed processes.
    log = (stack.settings.home / "logs" / "nginx-access.log").read_text()
    used = {
        line.split("upstream=")[1].split()[0]
        for line in log.splitlines()
        if "webhooks/rest" in line and "upstream=" in line
    }
    assert len(used) >= 2, used


def _converse(stack: Stack, sender: str, sent: list[str], received: list[int]) -> None:
    """The scripted conversation through the balancer; a 502 or a dropped connection is
    retried, but only after checking the tracker: a message the dead replica already stored
    is not sent again (the client's idempotent retry)."""
    for text in SCRIPT:
        for attempt in range(8):
            try:
                reply = stack.say(sender, text, timeout=90)
                sent.append(text)
                received.append(len(reply))
                break
            except (httpx.HTTPStatusError, httpx.TransportError) as exc:
                status = getattr(getattr(exc, "response", None), "status_code", None)
                assert status in (None, 502, 503, 504), exc
                time.sleep(0.5 * (attempt + 1))
                events = stack.tracker(sender)["events"]
                users = [e.get("text") for e in events if e.get("event") == "user"]
                if users.count(text) > sent.count(text):
                    # Stored before the replica died: count what the tracker says was answered.
                    sent.append(text)
                    tail = events[
                        max(i for i, e in enumerate(events) if e.get("event") == "user") :
                    ]
                    received.append(sum(delivered(e) for e in tail if e.get("event") == "bot"))
                    break
        else:
            raise AssertionError(f"{sender}: {text!r} failed 8 times")


def _run_with_kill(stack: Stack, victim_kind: str, conversations: int = 6) -> None:
    senders = [f"kill-{victim_kind}-{i}-{uuid.uuid4().hex[:6]}" for i in range(conversations)]
    KILLED_RUN_SENDERS.extend(senders)
    sent: dict[str, list[str]] = {s: [] for s in senders}
    received: dict[str, list[int]] = {s: [] for s in senders}
    victim = stack.running.rasa[0] if victim_kind == "rasa" else stack.running.actions[0]

    def killer() -> None:
        # Mid-run: once a few turns have gone through.
        deadline = time.monotonic() + 60
        while sum(len(v) for v in sent.values()) < conversations and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(victim.proc.pid, signal.SIGKILL)
        if victim_kind == "rasa":
            RASA_KILLED_AT.append(time.time())

    kill = threading.Thread(target=killer)
    kill.start()
    with ThreadPoolExecutor(conversations) as pool:
        futures = [pool.submit(_converse, stack, s, sent[s], received[s]) for s in senders]
        for f in futures:
            f.result()
    kill.join()
    assert not victim.alive(), "the victim was not killed mid-run"

    stored = stack.stored_events(senders)
    for s in senders:
        assert sent[s] == SCRIPT, (s, sent[s])
        users = [json.loads(d)["text"] for sid, kind, d in stored if sid == s and kind == "user"]
        bots = [json.loads(d) for sid, kind, d in stored if sid == s and kind == "bot"]
        assert users == SCRIPT, (s, users)  # nothing lost, nothing twice
        # every message the shopper received, stored once (a reply's text and cards are one
        # bot event)
        assert sum(map(delivered, bots)) == sum(received[s]), (s, len(bots), received[s])

    # Bring the victim back for the tests that follow.
    victim.stop()
    victim.start()
    victim.wait_ready(600)


def test_killing_a_rasa_replica_mid_run_loses_nothing(stack: Stack) -> None:
    """SIGKILL one Rasa server while six conversations run through nginx."""
    _run_with_kill(stack, "rasa")


def test_killing_an_action_server_mid_run_loses_nothing(stack: Stack) -> None:
    """SIGKILL one action server while six conversations run through nginx."""
    _run_with_kill(stack, "actions")


def _tracker_keys(stack: Stack, senders: list[str]) -> list[str]:
    return [
        event_key({"sender_id": sid, **json.loads(data)})
        for sid, _kind, data in stack.stored_events(senders)
    ]


def _drained(stack: Stack, senders: list[str], settle: float = 3.0, timeout: float = 60) -> int:
    """Wait until the events queue is empty and the analytics count of ``senders`` has not
    changed for ``settle`` seconds; that count."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(stack.settings.rabbitmq_url))
    try:
        ch = conn.channel()
        deadline = time.monotonic() + timeout
        count, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            queued = ch.queue_declare(
                queue=stack.settings.events_queue, durable=True, passive=True
            ).method.message_count
            now = len(stack.analytics_events(senders))
            if now != count or queued:
                count, since = now, time.monotonic()
            elif time.monotonic() - since >= settle:
                return count
            time.sleep(0.25)
        return count
    finally:
        conn.close()


def test_analytics_holds_exactly_the_tracker_events(stack: Stack) -> None:
    """Every event the broker carried for the killed runs' conversations is stored once; the
    only ones it may lack are of turns the killed Rasa server committed just before dying
    (Rasa publishes after the commit, in the background), and the backfill from the tracker
    store then makes the table equal to the tracker's events."""
    from tailor.analytics.backfill import backfill_from_tracker
    from tailor.runtime.production import tracker_database_url
    from tailor.store.db import make_engine

    senders = list(KILLED_RUN_SENDERS)
    assert senders, "run the kill tests first (same module)"
    expected = _tracker_keys(stack, senders)
    assert len(set(expected)) == len(expected)
    _drained(stack, senders)
    rows = stack.analytics_events(senders)
    stored = [key for _sid, _kind, key in rows]
    assert len(set(stored)) == len(stored), "an event was stored twice"
    assert set(stored) <= set(expected), "an event the tracker store does not have"
    missing = set(expected) - set(stored)
    # Lost events are the dying server's last moments: stamped shortly before it was killed.
    lost_at = [
        float(json.loads(data)["timestamp"])
        for sid, _kind, data in stack.stored_events(senders)
        if event_key({"sender_id": sid, **json.loads(data)}) in missing
    ]
    assert RASA_KILLED_AT
    for stamp in lost_at:
        assert any(killed - 15 <= stamp <= killed + 0.5 for killed in RASA_KILLED_AT), (
            stamp,
            RASA_KILLED_AT,
        )
    print(
        f"broker carried {len(stored)} of {len(expected)} events; "
        f"{len(missing)} lost with the killed replica"
    )

    engine = make_engine(stack.settings.database_url)
    try:
        done = backfill_from_tracker(engine, tracker_database_url(stack.settings), senders)
    finally:
        engine.dispose()
    assert done.inserted == len(missing)
    after = [key for _sid, _kind, key in stack.analytics_events(senders)]
    assert len(after) == len(expected) and set(after) == set(expected)


def test_redelivered_and_malformed_messages_add_nothing(stack: Stack) -> None:
    """Publishing every event of a conversation again adds no row; a malformed message goes
    to the dead-letter queue and the consumer keeps consuming."""
    import pika

    from tailor.analytics.consumer import dead_letter_queue

    senders = KILLED_RUN_SENDERS[:2]
    before = len(stack.analytics_events(senders))
    stored = stack.stored_events(senders)
    conn = pika.BlockingConnection(pika.URLParameters(stack.settings.rabbitmq_url))
    try:
        ch = conn.channel()
        queue = stack.settings.events_queue
        ch.basic_publish("", queue, b"{not json")
        ch.basic_publish("", queue, json.dumps({"event": "user"}).encode())
        for sid, _kind, data in stored:
            body = json.dumps({"sender_id": sid, **json.loads(data)})
            ch.basic_publish("", queue, body.encode())
        # A new, valid event after the bad ones proves the consumer is still alive.
        probe = f"probe-{uuid.uuid4().hex[:8]}"
        ch.basic_publish(
            "",
            queue,
            json.dumps({"sender_id": probe, "event": "user", "timestamp": time.time()}).encode(),
        )
        assert stack.wait_for_analytics([probe], 1) == 1
        time.sleep(1.0)  # the duplicates were queued before the probe, so are handled
        assert len(stack.analytics_events(senders)) == before
        dead = ch.queue_declare(queue=dead_letter_queue(queue), durable=True, passive=True)
        assert dead.method.message_count == 2
    finally:
        conn.close()
    assert stack.running.analytics.alive()


def test_backfill_restores_events_the_broker_never_carried(stack: Stack) -> None:
    """Rows missing from the analytics table (as when a replica dies between committing a
    turn and publishing it) come back from the tracker store, each once."""
    from sqlalchemy import bindparam, text

    from tailor.analytics.backfill import backfill_from_tracker
    from tailor.runtime.production import tracker_database_url
    from tailor.store.db import make_engine

    senders = KILLED_RUN_SENDERS[:3]
    expected = set(_tracker_keys(stack, senders))
    engine = make_engine(stack.settings.database_url)
    try:
        with engine.begin() as conn:
            gone = conn.execute(
                text(
                    "DELETE FROM conversation_events WHERE id IN (SELECT id FROM "
                    "conversation_events WHERE sender_id IN :s ORDER BY id DESC LIMIT 7)"
                ).bindparams(bindparam("s", expanding=True)),
                {"s": senders},
            ).rowcount
        assert gone == 7
        tracker = tracker_database_url(stack.settings)
        done = backfill_from_tracker(engine, tracker, senders)
        assert done.inserted == 7 and done.duplicates == len(expected) - 7
        assert {key for _s, _k, key in stack.analytics_events(senders)} == expected
        assert backfill_from_tracker(engine, tracker, senders).inserted == 0
    finally:
        engine.dispose()
