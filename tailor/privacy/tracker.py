"""Rasa's tracker store, read and pruned directly: Rasa 3.6 has no API to delete a conversation.

Rasa's ``SQLTrackerStore`` (which Tailor's ``CompactingSQLTrackerStore`` extends) keeps every
event of every conversation as one row of a table ``events``: ``id``, ``sender_id``,
``type_name``, ``timestamp`` (Unix seconds), ``intent_name``, ``action_name``, ``data`` (the
event as JSON, with the shopper's text). The embedded profile keeps it in the SQLite file
``<home>/rasa_tracker.db``; the production profile in the PostgreSQL database
``<name>_tracker`` (:func:`tracker_store_url`).

A conversation forgotten *during* one of its own turns (the chat's "forget me") comes back
when Rasa saves that turn: ``SQLTrackerStore.save`` writes every event of the loaded session
that it does not find in the table. :meth:`TrackerStore.delete_after_save` waits for that save
(Rasa holds the conversation's lock until then, so nothing else writes it) and deletes again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from tailor.config import Settings

_METADATA = sa.MetaData()
#: The columns of Rasa's ``SQLTrackerStore.SQLEvent`` (rasa/core/tracker_store.py).
EVENTS = sa.Table(
    "events",
    _METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("type_name", sa.String(255), nullable=False),
    sa.Column("timestamp", sa.Float),
    sa.Column("intent_name", sa.String(255)),
    sa.Column("action_name", sa.String(255)),
    sa.Column("data", sa.Text),
)


def tracker_store_url(settings: Settings) -> str:
    """The SQLAlchemy URL of the tracker store Rasa runs with under these settings."""
    if settings.profile == "production":
        from tailor.runtime.production import tracker_database_url

        return tracker_database_url(settings)
    return f"sqlite:///{Path(settings.home) / 'rasa_tracker.db'}"


class TrackerStore:
    """Rows of Rasa's tracker store, by conversation (``sender_id``).

    A SQLite file that does not exist yet reads as empty and is never created here.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TrackerStore:
        """The tracker store of the deployment these settings describe."""
        return cls(tracker_store_url(settings))

    def _ready(self) -> Engine | None:
        if self._engine is None:
            parsed = make_url(self.url)
            if parsed.get_backend_name() == "sqlite":
                database = parsed.database
                if not database or database == ":memory:" or not Path(database).exists():
                    return None
                self._engine = sa.create_engine(
                    self.url, connect_args={"check_same_thread": False, "timeout": 30}
                )
            else:
                self._engine = sa.create_engine(self.url, pool_pre_ping=True)
        if not sa.inspect(self._engine).has_table(EVENTS.name):
            return None
        return self._engine

    def dispose(self) -> None:
        """Close pooled connections."""
        if self._engine is not None:
            self._engine.dispose()

    def count(self, senders: Collection[str]) -> int:
        """How many rows these conversations hold."""
        engine = self._ready()
        if engine is None or not senders:
            return 0
        with engine.connect() as conn:
            stmt = sa.select(sa.func.count()).where(EVENTS.c.sender_id.in_(list(senders)))
            return int(conn.execute(stmt).scalar_one())

    def delete(self, senders: Collection[str]) -> int:
        """Delete every row of these conversations; how many were deleted."""
        engine = self._ready()
        if engine is None or not senders:
            return 0
        with engine.begin() as conn:
            result = conn.execute(sa.delete(EVENTS).where(EVENTS.c.sender_id.in_(list(senders))))
            return int(result.rowcount or 0)

    def delete_after_save(self, sender: str, timeout: float = 60.0, poll: float = 0.2) -> int:
        """Wait until the running turn of ``sender`` is saved, then delete its rows again.

        Call it after deleting the conversation from inside one of its own turns. Returns
        the rows deleted (0 if the turn was not saved within ``timeout`` seconds).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count([sender]):
                # Rasa saves a turn in one transaction: once a row is there, all are.
                return self.delete([sender])
            time.sleep(poll)
        return 0

    def transcript(self, sender: str) -> list[dict[str, Any]]:
        """What the shopper and the bot said in a conversation, oldest first."""
        engine = self._ready()
        if engine is None:
            return []
        stmt = (
            sa.select(EVENTS.c.type_name, EVENTS.c.timestamp, EVENTS.c.data)
            .where(EVENTS.c.sender_id == sender, EVENTS.c.type_name.in_(("user", "bot")))
            .order_by(EVENTS.c.id)
        )
        out: list[dict[str, Any]] = []
        with engine.connect() as conn:
            for kind, ts, data in conn.execute(stmt):
                try:
                    body = json.loads(data or "{}")
                except ValueError:
                    body = {}
                text = body.get("text") if isinstance(body, dict) else None
                if not text:
                    continue
                out.append({"from": kind, "text": text, "timestamp": ts})
        return out

    def count_before(self, cutoff: float) -> int:
        """Rows with a timestamp before ``cutoff`` (Unix seconds)."""
        engine = self._ready()
        if engine is None:
            return 0
        with engine.connect() as conn:
            stmt = sa.select(sa.func.count()).where(EVENTS.c.timestamp < cutoff)
            return int(conn.execute(stmt).scalar_one())

    def delete_before(self, cutoff: float) -> int:
        """Delete rows with a timestamp before ``cutoff``; how many were deleted."""
        engine = self._ready()
        if engine is None:
            return 0
        with engine.begin() as conn:
            result = conn.execute(sa.delete(EVENTS).where(EVENTS.c.timestamp < cutoff))
            return int(result.rowcount or 0)
