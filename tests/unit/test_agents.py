"""Support agents: password hashing, login, expiring sessions, and the panel's pure helpers.

Real SQLite databases. The panel's API runs against the real Rasa server in
tests/e2e/test_agent_api.py, and in a real browser in tests/e2e/test_agent_panel.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tailor.config import Settings
from tailor.store import make_session_factory
from tailor.store.agents import (
    AgentSession,
    agent_for_token,
    create_agent,
    create_session,
    end_session,
    hash_password,
    verify_login,
    verify_password,
)
from tailor.store.models import utcnow
from tailor.web.agent import (
    AGENT_META,
    agent_messages,
    criteria_view,
    session_minutes,
    transcript_from_tracker,
)

SENDER = "web-agent-unit-01"
PASSWORD = "correct horse battery"


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    f = make_session_factory(f"sqlite:///{tmp_path / 'tailor.db'}")
    yield f
    f.kw["bind"].dispose()


# -- passwords and sessions ---------------------------------------------------------------


def test_password_hash_is_salted_and_verifies() -> None:
    a, b = hash_password(PASSWORD), hash_password(PASSWORD)
    assert a != b and a.startswith("scrypt$") and PASSWORD not in a
    assert verify_password(PASSWORD, a) and verify_password(PASSWORD, b)
    assert not verify_password(PASSWORD + "!", a)
    assert not verify_password(PASSWORD, "scrypt$garbage")
    assert not verify_password(PASSWORD, "md5$1$2$3$4$5")


def test_login_checks_password_and_username(factory: sessionmaker[Session]) -> None:
    with factory.begin() as s:
        create_agent(s, "alice", PASSWORD)
    with factory.begin() as s:
        agent = verify_login(s, "alice", PASSWORD)
        assert agent is not None and agent.username == "alice"
        assert agent.password_hash != PASSWORD
        assert verify_login(s, "alice", "wrong password!") is None
        assert verify_login(s, "mallory", PASSWORD) is None


def test_create_agent_rejects_duplicates_short_passwords_and_bad_names(
    factory: sessionmaker[Session],
) -> None:
    with factory.begin() as s:
        create_agent(s, "alice", PASSWORD)
    with factory.begin() as s:
        with pytest.raises(ValueError, match="already exists"):
            create_agent(s, "alice", PASSWORD)
        with pytest.raises(ValueError, match="characters long"):
            create_agent(s, "bob", "short")
        with pytest.raises(ValueError, match="username must be"):
            create_agent(s, "bad name!", PASSWORD)


def test_sessions_expire_and_end(factory: sessionmaker[Session]) -> None:
    with factory.begin() as s:
        agent = create_agent(s, "alice", PASSWORD)
        token, expires = create_session(s, agent, minutes=30)
    with factory.begin() as s:
        assert s.scalar(select(AgentSession.token_hash)) != token  # only the hash is kept
        found = agent_for_token(s, token)
        assert found is not None and found.username == "alice"
        assert agent_for_token(s, token, now=expires - timedelta(seconds=1)) is not None
        assert agent_for_token(s, token, now=expires) is None
        assert agent_for_token(s, token + "x") is None
        assert agent_for_token(s, None) is None
        end_session(s, token)
    with factory.begin() as s:
        assert agent_for_token(s, token) is None


def test_expired_sessions_are_purged_on_the_next_login(factory: sessionmaker[Session]) -> None:
    with factory.begin() as s:
        agent = create_agent(s, "alice", PASSWORD)
        create_session(s, agent, minutes=1, now=utcnow() - timedelta(minutes=5))
        create_session(s, agent, minutes=5)
        assert len(s.scalars(select(AgentSession)).all()) == 1


def test_session_minutes_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Works whether or not Settings has an ``agent_session_minutes`` field yet.
    monkeypatch.delenv("TAILOR_AGENT_SESSION_MINUTES", raising=False)
    assert session_minutes(Settings.load(env={})) == 480
    for raw, minutes in (("15", 15), ("0", None)):
        monkeypatch.setenv("TAILOR_AGENT_SESSION_MINUTES", raw)
        settings = Settings.load(env={"TAILOR_AGENT_SESSION_MINUTES": raw})
        if minutes is None:
            with pytest.raises(ValueError, match="at least 1"):
                session_minutes(settings)
        else:
            assert session_minutes(settings) == minutes


# -- pure helpers ---------------------------------------------------------------------------

TRACKER: dict[str, Any] = {
    "events": [
        {"event": "session_started", "timestamp": 1.0},
        {
            "event": "user",
            "text": "can I talk to a person?",
            "timestamp": 2.0,
            "parse_data": {"intent": {"name": "human_handoff"}},
        },
        {"event": "bot", "text": "Here are 1 picks:", "timestamp": 2.5, "data": {}},
        {
            "event": "bot",
            "timestamp": 2.6,
            "data": {"custom": {"type": "product_cards", "products": [{"id": 3, "title": "Sock"}]}},
        },
        {"event": "bot", "text": "Passing you on.", "timestamp": 3.0, "data": {}},
        {"event": "pause", "timestamp": 4.0},
        {"event": "bot", "text": "Hi, Alice here.", "metadata": {AGENT_META: "alice"}},
        {
            "event": "bot",
            "text": "alice sent you a product:",
            "metadata": {AGENT_META: "alice"},
            "data": {"custom": {"type": "product_cards", "products": [{"id": 7, "title": "Boot"}]}},
        },
        {"event": "resume", "timestamp": 6.0},
    ]
}


def test_transcript_marks_agent_lines_and_takeover() -> None:
    lines = transcript_from_tracker(TRACKER)
    assert [m["from"] for m in lines] == [
        "user",
        "bot",
        "bot",
        "system",
        "agent",
        "agent",
        "system",
    ]
    assert lines[0]["intent"] == "human_handoff"
    assert lines[1]["text"] == "Here are 1 picks:" and lines[1]["products"][0]["id"] == 3
    assert "products" not in lines[2]
    assert lines[4]["agent"] == "alice"
    assert lines[5]["products"] == [{"id": 7, "title": "Boot", "price_text": None}]


def test_agent_messages_after_a_cursor() -> None:
    events = TRACKER["events"]
    assert [m["text"] for m in agent_messages(events, 0)] == [
        "Hi, Alice here.",
        "alice sent you a product:",
    ]
    assert agent_messages(events, 7)[0]["custom"]["products"][0]["id"] == 7
    assert agent_messages(events, len(events)) == []


def test_criteria_view_from_slots() -> None:
    crit, view = criteria_view({"product_type": "running shoes", "price_max": 80, "colour": None})
    assert crit.price_max == 80.0
    assert view["fields"] == {"product_type": "running shoes", "price_max": 80.0}
    assert "running shoes" in view["describe"]
    assert criteria_view({})[1] == {"describe": "", "fields": {}}
