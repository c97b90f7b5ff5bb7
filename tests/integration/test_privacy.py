"""Export, forget, retention and consent on real databases.

A real demo store in SQLite (customers, purchase history, fitted segments), messages stored
through the real observer, agent actions and analytics copies through their real writers, and
Rasa's tracker store written by Rasa itself (its ``SQLTrackerStore``, in the Rasa venv). After
"forget me", every table of both databases is searched for the shopper's ids, conversation
ids, e-mail and name.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from tailor.analytics.events import create_tables, parse_event, store_events
from tailor.config import PROJECT_ROOT, Settings
from tailor.privacy import (
    ConversationOwned,
    Subject,
    TrackerStore,
    apply_consent,
    apply_retention,
    deidentify_opted_out,
    export_data,
    forget,
    summary_text,
)
from tailor.profiles.identity import sign_customer_token
from tailor.profiles.observer import Observer
from tailor.profiles.segments import (
    assign_psychographic_segments,
    assign_rule_segments,
    fit_behavioural,
)
from tailor.store import make_session_factory
from tailor.store.agents import record_action
from tailor.store.events import record_events
from tailor.store.models import Customer, CustomerSegment, Event, Profile, utcnow
from tailor.store.profiles import link_channel_user, profile_for
from tailor.store.scores import scores_of, set_scores
from tailor.store.segments import purchase_stats

pytestmark = [pytest.mark.rasa]

SECRET = "privacy-test-customer-token-secret-0123456789"
RASA_PYTHON = PROJECT_ROOT / ".venv-rasa" / "bin" / "python"
NAME = "Zelda Quintrell"
EMAIL = "zelda.quintrell@example.org"
SENDER = "web-zelda-0001"
SECOND = "web-zelda-0002"
TELEGRAM = "774411223"
VISITOR = "web-visitor-0001"
OTHER = "web-other-0001"

#: Writes conversations with Rasa's own SQLTrackerStore: {"db": path, "conversations":
#: {sender: [[user text, bot text, unix time], ...]}}.
_RASA_WRITER = """
import asyncio, json, sys
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
spec = json.load(sys.stdin)
store = SQLTrackerStore(domain=Domain.empty(), dialect="sqlite", db=spec["db"])
for sender, turns in spec["conversations"].items():
    t0 = turns[0][2]
    events = [ActionExecuted("action_session_start", timestamp=t0), SessionStarted(timestamp=t0),
              ActionExecuted("action_listen", timestamp=t0)]
    for user, bot, ts in turns:
        events += [
            UserUttered(user, intent={"name": "greet", "confidence": 1.0}, timestamp=ts),
            BotUttered(bot, timestamp=ts + 1),
            ActionExecuted("action_listen", timestamp=ts + 2),
        ]
    asyncio.run(store.save(DialogueStateTracker.from_events(sender, events)))
"""


def write_conversations(db: Path, conversations: dict[str, list[list[Any]]]) -> None:
    """Store conversations in a tracker store DB through Rasa itself."""
    if not RASA_PYTHON.exists():
        pytest.fail(f"the Rasa venv is missing ({RASA_PYTHON}); run `tailor install`")
    subprocess.run(
        [str(RASA_PYTHON), "-c", _RASA_WRITER],
        input=json.dumps({"db": str(db), "conversations": conversations}),
        text=True,
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo store with segments fitted, and one customer renamed to a unique name."""
    from tailor.demo import load_demo

    home = tmp_path_factory.mktemp("privacy-template")
    factory = make_session_factory(f"sqlite:///{home / 'tailor.db'}")
    load_demo(factory, 120, 30, seed=11)
    fit_behavioural(factory)
    assign_rule_segments(factory)
    assign_psychographic_segments(factory)
    with factory.begin() as s:
        cid = s.scalar(
            select(Event.customer_id)
            .where(Event.kind == "purchase")
            .group_by(Event.customer_id)
            .order_by(func.count().desc())
            .limit(1)
        )
        s.execute(update(Customer).where(Customer.id == cid).values(name=NAME, email=EMAIL))
        # predictions are personal data too: Zelda and the others get a churn score
        everyone = s.scalars(select(Customer.id)).all()
        set_scores(s, "churn", 1, {c: (0.4, {"band": "medium"}) for c in everyone})
    factory.kw["bind"].dispose()
    now = utcnow().timestamp()
    old = (utcnow() - timedelta(days=800)).timestamp()
    write_conversations(
        home / "rasa_tracker.db",
        {
            SENDER: [["hi, I'm Zelda", "Welcome back, Zelda!", now - 60]],
            SECOND: [["any jackets?", "Here are a few.", now - 30]],
            TELEGRAM: [["hello from telegram", "Hi!", now - 20]],
            VISITOR: [["just browsing", "Sure.", old], ["lamps?", "Here are lamps.", now - 10]],
            OTHER: [["hi", "Welcome back!", now - 5]],
        },
    )
    return home


@dataclass
class World:
    """A private copy of the template with Zelda's and others' data spread over every table."""

    home: Path
    settings: Settings
    factory: sessionmaker[Session]
    tracker: TrackerStore
    zelda: int
    external_id: str
    other: int
    other_external_id: str

    def token(self, external_id: str | None = None) -> str:
        return sign_customer_token(external_id or self.external_id, SECRET, 600)


@pytest.fixture
def world(template: Path, tmp_path: Path) -> World:
    home = tmp_path / "home"
    shutil.copytree(template, home)
    settings = Settings.load(
        home=home, database_url=f"sqlite:///{home / 'tailor.db'}", customer_token_secret=SECRET
    )
    factory = make_session_factory(settings.database_url)
    with factory.begin() as s:
        zelda = s.scalar(select(Customer).where(Customer.name == NAME))
        other = s.scalar(
            select(Customer)
            .join(Event, Event.customer_id == Customer.id)
            .where(Customer.id != (zelda.id if zelda else None), Event.kind == "purchase")
            .limit(1)
        )
        assert zelda is not None and other is not None
        ids = (zelda.id, zelda.external_id, other.id, other.external_id)
        link_channel_user(s, "telegram", TELEGRAM, zelda.id)
    observer = Observer(factory, SECRET)
    zelda_meta = {"customer_token": sign_customer_token(ids[1], SECRET, 600)}
    for sender, text, meta in [
        (SENDER, f"I care about sustainability, write to me at {EMAIL}", zelda_meta),
        (SECOND, "do you have jackets? card 4111 1111 1111 1111", zelda_meta),
        (VISITOR, "I prefer organic cotton, call +44 20 7946 0958", None),
        (
            OTHER,
            "I care about quality",
            {"customer_token": sign_customer_token(ids[3], SECRET, 600)},
        ),
    ]:
        admitted = observer.admit(sender, text, "rest", meta)
        observer.record_message(admitted, text, "greet", "rest", meta, None)
    with factory.begin() as s:
        product = s.scalar(select(Event.product_id).where(Event.product_id.is_not(None)).limit(1))
        record_events(s, "click", SENDER, [product], {"source": "web"}, customer_id=ids[0])
        record_events(s, "view", VISITOR, [product], {"source": "web"})
        record_action(s, None, SENDER, "message", {"text": f"Hello {NAME}, how can I help?"})
        record_action(s, None, OTHER, "message", {"text": "Hello there"})
    engine = factory.kw["bind"]
    create_tables(engine)
    store_events(
        engine,
        [
            parse_event(
                json.dumps(
                    {"sender_id": sender, "event": "user", "timestamp": 1.0 + i, "text": text}
                )
            )
            for i, (sender, text) in enumerate(
                [(SENDER, "hi, I'm Zelda"), (VISITOR, "just browsing"), (OTHER, "hi")]
            )
        ],
    )
    return World(
        home,
        settings,
        factory,
        TrackerStore.from_settings(settings),
        ids[0],
        ids[1],
        ids[2],
        ids[3],
    )


def every_row(url: str) -> list[tuple[str, dict[str, Any]]]:
    """Every row of every table that exists in the database, as (table, {column: value})."""
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    out: list[tuple[str, dict[str, Any]]] = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            out += [(table.name, dict(row._mapping)) for row in conn.execute(sa.select(table))]
    engine.dispose()
    return out


def traces(w: World, needles: list[str], customer_id: int) -> list[str]:
    """Where any needle (case-insensitive) or the customer id still appears, in both DBs."""
    found = []
    tracker_url = f"sqlite:///{w.home / 'rasa_tracker.db'}"
    for url in (w.settings.database_url, tracker_url):
        for table, row in every_row(url):
            for column, value in row.items():
                if column == "customer_id" and value == customer_id:
                    found.append(f"{table}.{column}={value}")
                text = json.dumps(value, default=str).lower()
                found += [f"{table}.{column}: {n}" for n in needles if n.lower() in text]
    return found


def test_forgetting_a_customer_leaves_no_trace_in_any_table(world: World) -> None:
    needles = [NAME, EMAIL, world.external_id, SENDER, SECOND, TELEGRAM]
    assert len(traces(world, needles, world.zelda)) > 10  # the search finds them before
    assert world.tracker.count([SENDER, SECOND, TELEGRAM]) == 3 * 6
    with world.factory.begin() as s:
        report = forget(s, Subject(sender_id=SENDER, customer_id=world.zelda), world.tracker)
    # also the conversations the store's history was recorded in (the demo's "demo:<id>")
    assert {SENDER, SECOND, TELEGRAM} < set(report.conversations)
    needles += report.conversations
    assert report.deleted["customers"] == 1 and report.deleted["rasa tracker events"] == 18
    assert report.deleted["customer_scores"] == 1
    assert traces(world, needles, world.zelda) == []
    # everyone else's data is untouched
    assert world.tracker.count([VISITOR]) == 9 and world.tracker.count([OTHER]) == 6
    with world.factory() as s:
        assert s.get(Customer, world.other) is not None
        assert (s.scalar(select(func.count()).where(Event.customer_id == world.other)) or 0) > 1
        assert s.scalar(select(func.count()).where(Event.sender_id == VISITOR)) == 2
        assert (
            s.scalar(
                select(func.count())
                .select_from(CustomerSegment)
                .where(CustomerSegment.customer_id == world.other)
            )
            or 0
        ) >= 3


def test_forgetting_a_visitor_deletes_only_their_conversation(world: World) -> None:
    with world.factory.begin() as s:
        report = forget(s, Subject(sender_id=VISITOR), world.tracker)
    assert report.conversations == [VISITOR]
    assert report.deleted["profiles"] == 1 and report.deleted["events"] == 2
    assert traces(world, [VISITOR, "[phone]", "just browsing"], -1) == []
    assert world.tracker.count([SENDER]) == 6
    with world.factory() as s:
        assert s.scalar(select(Customer).where(Customer.name == NAME)) is not None


def test_the_forget_turn_arriving_late_is_not_stored_again(world: World) -> None:
    """Rasa publishes the turn that ran "forget me" after it: the analytics consumer must
    not store it (nor a redelivery of older events) until the visitor writes again."""
    with world.factory.begin() as s:
        forget(s, Subject(sender_id=VISITOR), world.tracker)
    engine = world.factory.kw["bind"]

    def ev(kind: str, at: float, text: str | None = None) -> Any:
        body = {"sender_id": VISITOR, "event": kind, "timestamp": at}
        return parse_event(json.dumps({**body, **({"text": text} if text else {})}))

    now = time.time()
    late = [ev("user", now - 1, "yes"), ev("bot", now + 1, "Done, deleted"), ev("user", 1.0)]
    other = parse_event(json.dumps({"sender_id": OTHER, "event": "user", "timestamp": now}))
    done = store_events(engine, [*late, other])
    assert (done.inserted, done.forgotten) == (1, 3)  # only the other shopper's event
    assert traces(world, [VISITOR, "Done, deleted"], -1) == []  # the tombstone is a hash
    # writing again starts a new session: from its session_started on, events are kept
    again = [ev("action", now + 5), ev("session_started", now + 6), ev("user", now + 7, "hi")]
    done = store_events(engine, again)
    assert (done.inserted, done.forgotten) == (2, 1)
    assert store_events(engine, [ev("user", now + 8, "more")]).inserted == 1


def test_a_customers_conversation_is_not_open_to_others(world: World) -> None:
    for subject in (Subject(sender_id=SENDER), Subject(sender_id=SENDER, customer_id=world.other)):
        with world.factory.begin() as s, pytest.raises(ConversationOwned, match="signed-in"):
            forget(s, subject, world.tracker)
        with world.factory() as s, pytest.raises(ConversationOwned):
            export_data(s, subject, world.tracker)
    assert world.tracker.count([SENDER]) == 6
    with world.factory() as s:
        assert s.scalar(select(func.count()).where(Event.sender_id == SENDER)) == 2


def test_export_holds_everything_kept_and_the_summary_reads_well(world: World) -> None:
    with world.factory() as s:
        data = export_data(s, Subject(sender_id=SENDER, customer_id=world.zelda), world.tracker)
        n_events = s.scalar(select(func.count()).where(Event.customer_id == world.zelda))
    assert data["identity"] == "customer" and data["customer"] is not None
    assert data["customer"]["email"] == EMAIL and data["customer"]["name"] == NAME
    assert len(data["events"]) == n_events
    assert {e["kind"] for e in data["events"]} >= {"purchase", "message", "click"}
    assert set(data["segments"]) >= {"rfm", "demographic", "geographic", "psychographic"}
    assert [(sc["kind"], sc["value"], sc["details"]) for sc in data["scores"]] == [
        ("churn", 0.4, {"band": "medium"})
    ]
    assert data["channel_links"][0] == {**data["channel_links"][0], "channel": "telegram"}
    assert set(data["transcripts"]) == {SENDER, SECOND, TELEGRAM}
    assert {SENDER, SECOND, TELEGRAM} < set(data["conversations"])
    assert data["transcripts"][SENDER][0] == {**data["transcripts"][SENDER][0], "from": "user"}
    assert data["consent"]["personalisation"] is True
    assert any(
        p["value"] == "sustainability" for prof in data["profiles"] for p in prof["preferences"]
    )
    assert [a["kind"] for a in data["agent_actions"]] == ["message"]
    assert [a["conversation"] for a in data["analytics_events"]] == [SENDER]
    json.dumps(data)  # JSON-safe
    text = summary_text(data)
    assert NAME in text and EMAIL in text and "purchase" in text and "sustainability" in text
    assert "/api/privacy/export" in text and "forget me" in text
    assert "{" not in text and "[" not in text

    with world.factory() as s:
        anon = export_data(s, Subject(sender_id=VISITOR), world.tracker)
    assert (
        anon["customer"] is None and anon["segments"] == {} and anon["conversations"] == [VISITOR]
    )
    assert anon["scores"] == []
    assert {e["kind"] for e in anon["events"]} == {"message", "view"}
    assert "not signed in" in summary_text(anon)


def test_stored_message_text_is_redacted(world: World) -> None:
    with world.factory() as s:
        texts = [
            e.payload.get("text", "")
            for e in s.scalars(select(Event).where(Event.kind == "message"))
        ]
        evidence = [
            p.get("evidence", "") for prof in s.scalars(select(Profile)) for p in prof.preferences
        ]
    stored = " ".join(texts + evidence)
    assert "[email]" in stored and "[card]" in stored and "[phone]" in stored
    assert EMAIL not in stored and "4111 1111" not in stored and "7946" not in stored


def test_retention_dry_run_counts_what_the_run_deletes(world: World) -> None:
    with world.factory() as s:
        n_old = s.scalar(
            select(func.count()).where(Event.created_at < utcnow() - timedelta(days=30))
        )
    assert n_old and n_old > 0  # the demo history spans two years
    with world.factory.begin() as s:
        dry = apply_retention(s, world.tracker, 30, dry_run=True)
    assert sum(dry.events_by_kind.values()) == n_old
    # the visitor's session start and first turn, 800 days old
    assert dry.deleted["rasa tracker events"] == 6
    with world.factory() as s:
        assert s.scalar(select(func.count()).where(Event.created_at < dry.cutoff)) == n_old
    with world.factory.begin() as s:
        done = apply_retention(s, world.tracker, 30)
    assert done.events_by_kind == dry.events_by_kind
    assert done.deleted == dry.deleted
    assert "would delete" in dry.render() and "deleted" in done.render()
    with world.factory() as s:
        assert s.scalar(select(func.count()).where(Event.created_at < dry.cutoff)) == 0
        assert s.scalar(select(func.count()).where(Event.sender_id == SENDER)) == 2
    assert world.tracker.count([VISITOR]) == 3
    with pytest.raises(ValueError, match="at least 1 day"), world.factory.begin() as s:
        apply_retention(s, world.tracker, 0)


def test_withdrawing_consent_stops_analytics_at_once(world: World) -> None:
    with world.factory.begin() as s:
        assert purchase_stats(s, world.zelda)
        profile = profile_for(s, SENDER, world.zelda, create=False)
        assert profile is not None
        change = apply_consent(s, profile, False)
    assert change.events_deidentified > 3 and change.segments_deleted >= 3
    with world.factory() as s:
        assert purchase_stats(s, world.zelda) == []  # nothing left for RFM, history, affinity
        assert s.scalar(select(func.count()).where(Event.customer_id == world.zelda)) == 0
        assert s.scalar(select(func.count()).where(Event.sender_id.in_([SENDER, SECOND]))) == 0
        segs = s.scalar(
            select(func.count())
            .select_from(CustomerSegment)
            .where(CustomerSegment.customer_id == world.zelda)
        )
        assert segs == 0
        assert scores_of(s, world.zelda) == {}  # no profiling without consent
        assert scores_of(s, world.other)  # only hers
        # the product counts survive, without the person or their words
        kept = s.scalars(select(Event).where(Event.kind == "message", Event.sender_id.is_(None)))
        assert all("text" not in e.payload for e in kept)
    # events recorded after the opt-out are de-identified by the sweep
    with world.factory.begin() as s:
        record_events(s, "click", SENDER, [None], {"source": "web"}, customer_id=world.zelda)
    with world.factory.begin() as s:
        assert deidentify_opted_out(s, dry_run=True) == 1
        assert deidentify_opted_out(s) == 1
    with world.factory() as s:
        assert s.scalar(select(func.count()).where(Event.customer_id == world.zelda)) == 0


def test_web_export_and_forget_need_proof_of_identity(world: World) -> None:
    from tailor.web.app import create_app

    client = TestClient(create_app(world.settings))
    url = "/api/privacy/export"
    anon = client.get(url, params={"sender": VISITOR})
    assert anon.status_code == 200 and anon.json()["identity"] == "anonymous"
    assert "attachment" in anon.headers["content-disposition"]
    assert client.get(url, params={"sender": SENDER}).status_code == 403  # no token
    forged = client.get(
        url, params={"sender": SENDER}, headers={"X-Customer-Token": world.token() + "x"}
    )
    assert forged.status_code == 403
    other = client.get(
        url,
        params={"sender": SENDER},
        headers={"X-Customer-Token": world.token(world.other_external_id)},
    )
    assert other.status_code == 403
    mine = client.get(url, params={"sender": SENDER}, headers={"X-Customer-Token": world.token()})
    assert mine.status_code == 200 and mine.json()["customer"]["email"] == EMAIL

    forget_url = "/api/privacy/forget"
    assert client.post(forget_url, json={"sender": SENDER}).status_code == 422  # no confirm
    assert client.post(forget_url, json={"sender": SENDER, "confirm": True}).status_code == 403
    done = client.post(
        forget_url, json={"sender": SENDER, "confirm": True, "customer_token": world.token()}
    )
    assert done.status_code == 200 and done.json()["identity"] == "customer"
    conversations = done.json()["conversations"]
    assert {SENDER, SECOND, TELEGRAM} < set(conversations)
    assert traces(world, [NAME, EMAIL, world.external_id, *conversations], world.zelda) == []
    again = client.get(url, params={"sender": SENDER}, headers={"X-Customer-Token": world.token()})
    assert again.status_code == 404


def chat_tracker(sender: str, text: str, intent: str, metadata: dict[str, Any] | None) -> Any:
    from rasa_sdk import Tracker

    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.99},
        "entities": [],
        "metadata": metadata or {},
    }
    return Tracker.from_dict(
        {
            "sender_id": sender,
            "slots": {},
            "latest_message": latest,
            "events": [
                {
                    "event": "user",
                    "text": text,
                    "parse_data": latest,
                    "input_channel": "rest",
                    "metadata": metadata or {},
                }
            ],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        }
    )


async def test_chat_actions_summarise_ask_and_forget(world: World) -> None:
    from rasa_sdk.executor import CollectingDispatcher

    from actions.privacy import _PENDING, ActionAskForget, ActionForgetMe, ActionMyData

    deps = (world.factory, world.tracker, SECRET)
    meta = {"customer_token": world.token()}

    said = CollectingDispatcher()
    await ActionMyData(*deps).run(
        said, chat_tracker(SENDER, "what do you know?", "ask_my_data", meta), {}
    )
    assert f"signed in as {NAME}" in said.messages[0]["text"]
    said = CollectingDispatcher()
    await ActionMyData(*deps).run(
        said, chat_tracker(SENDER, "what do you know?", "ask_my_data", None), {}
    )
    assert "signed in as them" in said.messages[0]["text"]  # the id alone is not enough

    said = CollectingDispatcher()
    await ActionAskForget(*deps).run(said, chat_tracker(SENDER, "forget me", "forget_me", meta), {})
    assert "Zelda" in said.messages[0]["text"]
    assert [b["payload"] for b in said.messages[0]["buttons"]] == ["/affirm", "/deny"]
    assert world.tracker.count([SENDER]) == 6  # asking deletes nothing

    said = CollectingDispatcher()
    events = await ActionForgetMe(*deps).run(said, chat_tracker(SENDER, "yes", "affirm", meta), {})
    assert events == [{"event": "reset_slots", "timestamp": None}]
    assert "deleted everything I kept about you" in said.messages[0]["text"]
    assert world.tracker.count([SENDER, SECOND, TELEGRAM]) == 0
    # Rasa then saves the turn, writing the loaded conversation back: it is deleted again
    write_conversations(
        world.home / "rasa_tracker.db", {SENDER: [["yes", "Done", utcnow().timestamp()]]}
    )
    (task,) = list(_PENDING)
    assert await task == 6
    assert world.tracker.count([SENDER]) == 0


def test_privacy_command(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    from tailor.cli import main

    base = ["--home", str(world.home), "--database-url", world.settings.database_url, "privacy"]
    assert main([*base, "retention", "--dry-run", "--days", "30"]) == 0
    dry = capsys.readouterr().out
    assert "would delete" in dry and "events (purchase" in dry
    with world.factory() as s:
        before = s.scalar(select(func.count()).select_from(Event))
    assert main([*base, "export", "--customer", world.external_id]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["customer"]["email"] == EMAIL and SENDER in exported["conversations"]
    assert main([*base, "export", "--sender", SENDER]) == 2  # a customer's conversation
    assert "signed-in customer" in capsys.readouterr().err
    assert main([*base, "forget", "--customer", world.external_id]) == 0
    assert "customers" in capsys.readouterr().out
    with world.factory() as s:
        assert (s.scalar(select(func.count()).select_from(Event)) or 0) < (before or 0)
        assert s.scalar(select(Customer).where(Customer.name == NAME)) is None
    assert world.tracker.count([SENDER, SECOND, TELEGRAM]) == 0
