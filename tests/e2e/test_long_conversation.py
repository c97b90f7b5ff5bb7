"""Long conversations stay short for Rasa: the compacting tracker store starts a new session
(slots carried over) past ``tracker_max_session_events`` events, on the real Rasa server.

The store's decision logic runs in Rasa's own venv (it imports Rasa); the conversation runs
through the REST channel with the real action server.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import textwrap
import uuid
from pathlib import Path

import pytest

from tailor.runtime.rasa import RASA_PLUGINS, rasa_env
from tailor.store import make_session_factory
from tailor.store.catalog import get_products

from .conftest import Deployment
from .test_conversations import cards

pytestmark = [pytest.mark.e2e, pytest.mark.rasa, pytest.mark.slow]


def session_starts(db: Path, sender: str) -> int:
    with sqlite3.connect(db) as conn:
        (n,) = conn.execute(
            "select count(*) from events where sender_id = ? and type_name = 'session_started'",
            (sender,),
        ).fetchone()
    return int(n)


def test_long_conversation_keeps_criteria_across_new_sessions(deployment: Deployment) -> None:
    dep = deployment
    bound = dep.settings.tracker_max_session_events
    assert bound > 0
    sender = f"long-{uuid.uuid4().hex[:8]}"
    said = ["I need running shoes under $80"]
    first = cards(dep.say(sender, said[0]))
    assert first, "no suggestions for running shoes"
    db = Path(dep.settings.home) / "rasa_tracker.db"
    starts = session_starts(db, sender)
    turns = 0
    # browse without changing the criteria until the store has started a new session twice
    while session_starts(db, sender) < starts + 2:
        text = ("show me more", "tell me more about the first one")[turns % 2]
        dep.say(sender, text)
        said.append(text)
        turns += 1
        assert turns < 40, f"no new session after {turns} turns (bound {bound} events)"
    # the criteria survived the new sessions: cheaper running shoes, still under $80
    reply = dep.say(sender, "show me cheaper ones")
    said.append("show me cheaper ones")
    shown = cards(reply)
    assert shown, f"nothing after the new session: {reply}"
    factory = make_session_factory(dep.settings.database_url)
    with factory() as session:
        products = get_products(session, [int(c["id"]) for c in shown])
        for p in products:
            assert p.category.endswith("Running Shoes"), p.category
            assert p.price <= 80, p.price
    # nothing is lost: the full history still holds every message, in order
    texts = [e.get("text") for e in dep.tracker(sender)["events"] if e.get("event") == "user"]
    assert texts == said
    # and what Rasa loads per message is bounded: the latest session only
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "select type_name from events where sender_id = ? order by id", (sender,)
        ).fetchall()
    types = [r[0] for r in rows]
    last_start = len(types) - 1 - types[::-1].index("session_started")
    assert len(types) - last_start <= bound + 40


CHECK = textwrap.dedent(
    """
    import json, sys
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import (
        ActionExecuted, BotUttered, ConversationPaused, SessionStarted, SlotSet, UserUttered,
    )
    from rasa.shared.core.trackers import DialogueStateTracker
    from tailor_tracker_store import session_restart_events, should_compact

    domain = Domain.load(sys.argv[1])
    def tracker(turns, paused=False, end_listen=True):
        t = DialogueStateTracker.from_events("s", [], domain.slots)
        t.update(ActionExecuted("action_session_start"))
        t.update(SessionStarted())
        t.update(ActionExecuted("action_listen"))
        for i in range(turns):
            t.update(UserUttered(f"m{i}", {"name": "refine"}))
            t.update(ActionExecuted("action_recommend"))
            t.update(SlotSet("product_type", "Running Shoes"))
            t.update(SlotSet("price_max", 80.0))
            t.update(BotUttered("here"))
            t.update(ActionExecuted("action_listen"))
        if paused:
            t.update(ConversationPaused())
            t.update(ActionExecuted("action_listen"))
        if not end_listen:
            t.update(UserUttered("more", {"name": "affirm"}))
        return t

    out = {
        "short": should_compact(tracker(2), 60),
        "long": should_compact(tracker(20), 60),
        "off": should_compact(tracker(20), 0),
        "paused": should_compact(tracker(20, paused=True), 60),
        "mid_turn": should_compact(tracker(20, end_listen=False), 60),
    }
    t = tracker(20)
    for e in session_restart_events(t):
        t.update(e)
    out["slots_kept"] = [t.get_slot("product_type"), t.get_slot("price_max")]
    out["after"] = should_compact(t, 60)
    events = session_restart_events(tracker(1))
    out["types"] = [e.type_name for e in events]
    start = next(e.timestamp for e in events if e.type_name == "session_started")
    out["stamped_after_start"] = all(e.timestamp >= start for e in events[2:])
    print(json.dumps(out))
    """
)


def test_compaction_rules_in_rasa(deployment: Deployment, tmp_path: Path) -> None:
    script = tmp_path / "check.py"
    script.write_text(CHECK, encoding="utf-8")
    python = Path(str(dep_rasa_python(deployment)))
    env = rasa_env({"PYTHONPATH": str(RASA_PLUGINS)})
    out = subprocess.run(
        [str(python), str(script), str(Path(deployment.settings.bot_dir) / "domain.yml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["short"] is False and got["long"] is True and got["off"] is False
    assert got["paused"] is False, "a conversation handed to a human must not be cut"
    assert got["mid_turn"] is False
    assert got["slots_kept"] == ["Running Shoes", 80.0]
    assert got["after"] is False
    assert got["types"][:2] == ["action", "session_started"] and got["types"][-1] == "action"
    assert got["stamped_after_start"], "Rasa would not load slots stamped before the start"


def dep_rasa_python(dep: Deployment) -> Path:
    """The Rasa venv's interpreter."""
    return Path(dep.settings.rasa_venv) / "bin" / "python"
