"""The SQLite tracker store keeps its connections open between messages and stores what Rasa's
own ``SQLTrackerStore`` would: checked in the Rasa venv against a plain store reading the
same file."""

from __future__ import annotations

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
