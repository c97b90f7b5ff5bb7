"""The bounded retry of event writes, against a real SQLite database that is really locked."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from tailor.store import make_session_factory
from tailor.store.db import make_engine
from tailor.store.events import record_events
from tailor.store.models import Event
from tailor.store.retry import is_transient, with_retry


def test_gives_up_after_the_bound_and_does_not_retry_what_would_fail_again() -> None:
    calls: list[int] = []
    slept: list[float] = []

    def locked() -> None:
        calls.append(1)
        raise OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))

    with pytest.raises(OperationalError):
        with_retry(locked, "a write", attempts=3, base_delay=0.01, sleep=slept.append)
    assert len(calls) == 3 and slept == [0.01, 0.02]

    def duplicate() -> None:
        calls.append(1)
        raise IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))

    calls.clear()
    with pytest.raises(IntegrityError):
        with_retry(duplicate, "a write", sleep=slept.append)
    assert len(calls) == 1
    assert not is_transient(IntegrityError("x", {}, Exception()))
    with pytest.raises(ValueError, match="attempts"):
        with_retry(lambda: None, "a write", attempts=0)


def test_a_write_blocked_by_another_writer_lands_once_the_lock_is_released(
    tmp_path: Path,
) -> None:
    db = tmp_path / "t.db"
    engine = make_engine(
        f"sqlite:///{db}", connect_args={"check_same_thread": False, "timeout": 0.05}
    )
    factory = make_session_factory(engine)
    with factory() as s:
        s.execute(select(Event)).all()  # tables exist
    blocker = sqlite3.connect(db, timeout=0, check_same_thread=False)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
    threading.Timer(0.12, blocker.rollback).start()

    def write() -> None:
        with factory.begin() as session:
            record_events(session, "message", "sender-retry", [], {"text": "hi"})

    with_retry(write, "storing a message", attempts=6, base_delay=0.05)
    blocker.close()
    with factory() as s:
        assert [e.sender_id for e in s.scalars(select(Event))] == ["sender-retry"]
