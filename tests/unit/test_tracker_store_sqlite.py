"""The SQLite tracker store keeps its connections open between messages and stores what Rasa's
own ``SQLTrackerStore`` would: checked in the Rasa venv against a plain store reading the
same file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.rasa_venv import run_in_rasa_venv

#: Run in the Rasa venv: 30 turns of 5 conversations (one saved from another thread), each
#: turn loaded back and compared with the events saved; then a plain Rasa store on the
#: same file reads every conversation.
_CHECK = r"""
import asyncio, json, sys, tempfile, threading
from pathlib import Path
import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from tailor_tracker_store import CompactingSQLTrackerStore

domain = Domain.load(sys.argv[1])
path = Path(tempfile.mkdtemp()) / "tracker.db"
store = CompactingSQLTrackerStore(domain=domain, dialect="sqlite", db=str(path),
                                  max_session_events=0)
connects = []
sa.event.listen(store.engine, "connect", lambda *_: connects.append(1))

def turn(i):
    return [
        UserUttered(f"message {i}", {"name": "ask_recommendation", "confidence": 1.0}),
        ActionExecuted("action_recommend"),
        BotUttered(f"answer {i}", {"custom": {"type": "product_cards", "products": [{"id": i}]}}),
        SlotSet("price_max", float(i)),
        ActionExecuted("action_listen"),
    ]

async def converse(sender, turns, out):
    for i in range(turns):
        tracker = await store.retrieve(sender) or DialogueStateTracker(sender, domain.slots)
        for event in turn(i):
            tracker.update(event)
        await store.save(tracker)
        again = await store.retrieve(sender)
        out.append(again.current_state()["events"] == tracker.current_state()["events"])

async def main():
    same = []
    for n in range(4):
        await converse(f"c{n}", 30, same)
    other = []
    thread = threading.Thread(target=lambda: asyncio.run(converse("t", 30, other)))
    thread.start(); thread.join()
    plain = SQLTrackerStore(domain=domain, dialect="sqlite", db=str(path))
    counts = {}
    for sender in ["c0", "c1", "c2", "c3", "t"]:
        full = await plain.retrieve_full_tracker(sender)
        counts[sender] = [len(full.events), full.get_slot("price_max")]
    mode = store.engine.connect().exec_driver_sql("PRAGMA journal_mode").scalar()
    print(json.dumps({"same": all(same) and len(same) == 120, "thread_same": all(other),
                      "counts": counts, "connects": len(connects), "mode": mode,
                      "pool": type(store.engine.pool).__name__}))

asyncio.run(main())
"""


@pytest.mark.rasa
def test_sqlite_store_reuses_connections_and_stores_what_rasa_reads() -> None:
    from tailor.config import PROJECT_ROOT

    got = run_in_rasa_venv(_CHECK, str(PROJECT_ROOT / "bot" / "domain.yml"))
    assert got["same"] and got["thread_same"]
    # 30 turns of 5 events each, every one read back by Rasa's own store
    assert got["counts"] == {s: [150, 29.0] for s in ("c0", "c1", "c2", "c3", "t")}
    assert got["pool"] == "QueuePool" and got["mode"] == "wal"
    # 300 loads and saves from two threads: a connection per thread, not one per session
    assert got["connects"] <= 2


#: Run in the Rasa venv with a store configuration (JSON, as in endpoints.yml) for two
#: databases: conversations with cut sessions go through Tailor's store on the first and, the
#: same trackers, through Rasa's own ``SQLTrackerStore`` on the second. Prints the rows of both
#: (without ids) and, for each sender, both stores' trackers read from the first database.
SAME_AS_RASA = r"""
import asyncio, json, sys
import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from tailor_tracker_store import CompactingSQLTrackerStore

domain = Domain.load(sys.argv[1])
ours_cfg, theirs_cfg = json.loads(sys.argv[2]), json.loads(sys.argv[3])
ours = CompactingSQLTrackerStore(domain=domain, max_session_events=12, **ours_cfg)
theirs = SQLTrackerStore(domain=domain, **theirs_cfg)
on_ours = SQLTrackerStore(domain=domain, **ours_cfg)  # Rasa's reader of our database

def turn(sender, i):
    events = [
        UserUttered(f"{sender} message {i}",
                    {"name": "ask_recommendation", "confidence": 0.9},
                    [{"entity": "colour", "value": "red", "start": 0, "end": 3}]),
        ActionExecuted("action_recommend"),
        BotUttered(f"answer {i}", {"buttons": [{"title": "a", "payload": "b"}]}),
        BotUttered(None, {"custom": {"type": "product_cards", "products": [{"id": i}]}}),
    ]
    if i % 3 == 0:
        events.append(SlotSet("price_max", float(i)))
    if i % 2 == 0:
        events.append(SlotSet("shown", [{"id": i, "price": 9.5}]))
    return events + [ActionExecuted("action_listen")]

async def converse(sender, turns):
    for i in range(turns):
        tracker = await ours.retrieve(sender) or DialogueStateTracker(sender, domain.slots)
        for event in turn(sender, i):
            tracker.update(event)
        await ours.save(tracker)     # may append a new session's events first
        await theirs.save(tracker)   # the same tracker, stored by Rasa's own code

def rows(store):
    with store.engine.connect() as c:
        return [list(r) for r in c.execute(sa.text(
            "SELECT sender_id, type_name, timestamp, intent_name, action_name, data "
            "FROM events ORDER BY id"))]

async def main():
    senders = ["a", "b", "c"]
    for n, sender in enumerate(senders):
        await converse(sender, 4 + 4 * n)
    trackers = {}
    for sender in senders + ["nobody"]:
        got = []
        for store in (ours, on_ours):
            latest = await store.retrieve(sender)
            full = await store.retrieve_full_tracker(sender)
            got.append([t.current_state(EventVerbosity.ALL) if t else None for t in (latest, full)])
        trackers[sender] = got
    print(json.dumps({"ours": rows(ours), "theirs": rows(theirs), "trackers": trackers},
                     default=str))

asyncio.run(main())
"""


def check_same_as_rasa(ours: dict[str, object], theirs: dict[str, object]) -> None:
    """Run :data:`SAME_AS_RASA` and check that Tailor's store wrote and reads what Rasa's
    own store writes and reads."""
    import json

    from tailor.config import PROJECT_ROOT

    got = run_in_rasa_venv(
        SAME_AS_RASA, str(PROJECT_ROOT / "bot" / "domain.yml"), json.dumps(ours), json.dumps(theirs)
    )
    assert got["ours"] == got["theirs"]
    assert len(got["ours"]) > 150
    # sessions were cut (several session starts per sender), so "latest" != "full"
    starts = [r for r in got["ours"] if r[1] == "session_started" and r[0] == "c"]
    assert len(starts) >= 3
    for sender, (mine, rasas) in got["trackers"].items():
        assert mine == rasas, sender
    latest, full = got["trackers"]["c"][0]
    assert 0 < len(latest["events"]) < len(full["events"])
    assert got["trackers"]["nobody"] == [[None, None], [None, None]]


@pytest.mark.rasa
def test_sqlite_store_writes_and_reads_what_rasas_store_does(tmp_path: Path) -> None:
    check_same_as_rasa(
        {"dialect": "sqlite", "db": str(tmp_path / "ours.db")},
        {"dialect": "sqlite", "db": str(tmp_path / "theirs.db")},
    )
