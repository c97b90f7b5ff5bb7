"""The ``conversation_events`` table and idempotent writes into it (no broker here).

Every event Rasa publishes is a JSON object: ``{"sender_id": …, "event": "user", "timestamp":
…, …}``. Its key is a SHA-256 over the sender id, the timestamp, the type and a hash of the
whole body in canonical JSON, so the same event delivered twice (a redelivery after a
consumer crash, a duplicate publish) has the same key, and ``INSERT … ON CONFLICT DO
NOTHING`` stores it once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, Float, Integer, String, Text, delete, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class AnalyticsBase(DeclarativeBase):
    """Declarative base of the analytics tables (kept apart from the store's schema)."""


class ConversationEvent(AnalyticsBase):
    """One Rasa event of one conversation, stored once."""

    __tablename__ = "conversation_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: :func:`event_key` of the body: unique, so redeliveries add nothing.
    event_key: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    sender_id: Mapped[str] = mapped_column(String(255), index=True, nullable=False)
    event_type: Mapped[str] = mapped_column(String(64), index=True, nullable=False)
    #: Rasa's event timestamp (Unix seconds).
    timestamp: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: The user's text or the bot's text, when the event has one.
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: The event as received (JSON).
    body: Mapped[str] = mapped_column(Text, nullable=False)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=lambda: datetime.now(UTC), nullable=False
    )


class ForgottenSender(AnalyticsBase):
    """A conversation whose shopper asked to be forgotten (a tombstone).

    Forgetting deletes the conversation's rows, but Rasa publishes the events of the turn
    that ran "forget me" after that turn (the confirmation, the bot's answer), and a broker
    may redeliver older ones: without the tombstone the consumer would store them again.
    Events of the sender are dropped until a ``session_started`` newer than
    ``forgotten_at`` - the shopper writing again, in a new conversation - lifts it.
    """

    __tablename__ = "forgotten_senders"

    #: :func:`sender_hash` of the conversation id: the tombstone names no one in clear.
    sender_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: When it was forgotten (Unix seconds, like Rasa's event timestamps).
    forgotten_at: Mapped[float] = mapped_column(Float, nullable=False)


class InvalidEvent(ValueError):
    """A message that is not a Rasa event (not JSON, not an object, no sender or type)."""


@dataclass(frozen=True)
class ParsedEvent:
    """A valid event ready to store."""

    key: str
    sender_id: str
    event_type: str
    timestamp: float | None
    text: str | None
    body: str


@dataclass
class EventBatch:
    """What one :func:`store_events` call did."""

    inserted: int = 0
    duplicates: int = 0
    #: Events of forgotten conversations, dropped (see :class:`ForgottenSender`).
    forgotten: int = 0


def exchange_name(queue: str) -> str:
    """The fanout exchange Rasa publishes a deployment's events to (one per queue, so two
    deployments on one broker never see each other's events)."""
    return f"{queue}.exchange"


def canonical_json(body: dict[str, Any]) -> str:
    """The body as JSON with sorted keys and no spaces (the same event, the same text)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_key(body: dict[str, Any]) -> str:
    """The idempotency key of an event body: SHA-256 over sender id, timestamp, type and the
    SHA-256 of the canonical body."""
    digest = hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()
    parts = (str(body.get("sender_id")), repr(body.get("timestamp")), str(body.get("event")))
    return hashlib.sha256("\x1f".join((*parts, digest)).encode("utf-8")).hexdigest()


def parse_event(raw: bytes | str) -> ParsedEvent:
    """Validate one broker message; :class:`InvalidEvent` says what is wrong with it."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEvent(f"not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidEvent(f"not a JSON object but {type(body).__name__}")
    sender, kind = body.get("sender_id"), body.get("event")
    if not isinstance(sender, str) or not sender or len(sender) > 255:
        raise InvalidEvent("no sender_id (a string of 1 to 255 characters)")
    if not isinstance(kind, str) or not kind or len(kind) > 64:
        raise InvalidEvent("no event type (a string of 1 to 64 characters)")
    stamp = body.get("timestamp")
    if stamp is not None and (isinstance(stamp, bool) or not isinstance(stamp, int | float)):
        raise InvalidEvent(f"timestamp is not a number: {stamp!r}")
    text = body.get("text")
    return ParsedEvent(
        key=event_key(body),
        sender_id=sender,
        event_type=kind,
        timestamp=float(stamp) if stamp is not None else None,
        text=text if isinstance(text, str) else None,
        body=json.dumps(body, ensure_ascii=False),
    )


def create_tables(engine: Engine) -> None:
    """Create ``conversation_events`` and ``forgotten_senders`` if they do not exist."""
    AnalyticsBase.metadata.create_all(engine)


def sender_hash(sender_id: str) -> str:
    """SHA-256 of a conversation id, as kept in :class:`ForgottenSender`."""
    return hashlib.sha256(sender_id.encode("utf-8")).hexdigest()


def drop_forgotten(
    events: list[ParsedEvent], tombstones: dict[str, float]
) -> tuple[list[ParsedEvent], set[str]]:
    """``events`` without those of forgotten conversations (``tombstones``: sender id →
    forgotten at), in order; and the senders whose tombstone a new session lifted.

    A sender's events are dropped until its first ``session_started`` stamped after it was
    forgotten; that event and the sender's later ones are kept.
    """
    if not tombstones:
        return events, set()
    kept: list[ParsedEvent] = []
    lifted: set[str] = set()
    for e in events:
        at = tombstones.get(e.sender_id)
        if at is not None and e.sender_id not in lifted:
            new_session = e.event_type == "session_started" and (e.timestamp or 0.0) > at
            if not new_session:
                continue
            lifted.add(e.sender_id)
        kept.append(e)
    return kept, lifted


def store_events(engine: Engine, events: list[ParsedEvent]) -> EventBatch:
    """Insert ``events`` in one transaction, skipping keys already stored (PostgreSQL and
    SQLite: ``ON CONFLICT (event_key) DO NOTHING``) and events of forgotten conversations
    (:class:`ForgottenSender`). Returns how many were new, duplicate and dropped."""
    if not events:
        return EventBatch()
    dialect = engine.dialect.name
    if dialect not in {"postgresql", "sqlite"}:  # pragma: no cover - the two supported
        raise ValueError(f"analytics needs PostgreSQL or SQLite, not {dialect}")
    now = datetime.now(UTC)
    stones = AnalyticsBase.metadata.tables[ForgottenSender.__tablename__]
    with engine.begin() as conn:
        hashes = {sender_hash(s): s for s in {e.sender_id for e in events}}
        tombstones = {
            hashes[h]: float(at)
            for h, at in conn.execute(
                select(stones.c.sender_hash, stones.c.forgotten_at).where(
                    stones.c.sender_hash.in_(sorted(hashes))
                )
            )
        }
        wanted, lifted = drop_forgotten(events, tombstones)
        if lifted:
            gone = sorted(sender_hash(s) for s in lifted)
            conn.execute(delete(stones).where(stones.c.sender_hash.in_(gone)))
        forgotten = len(events) - len(wanted)
        if not wanted:
            return EventBatch(forgotten=forgotten)
        inserted = _insert(conn, dialect, wanted, now)
    return EventBatch(inserted=inserted, duplicates=len(wanted) - inserted, forgotten=forgotten)


def _insert(conn: Any, dialect: str, events: list[ParsedEvent], now: datetime) -> int:
    """Insert ``events`` on ``conn``, skipping stored keys; how many were new."""
    unique = {e.key: e for e in events}  # duplicates inside one batch count once
    rows = [
        {
            "event_key": e.key,
            "sender_id": e.sender_id,
            "event_type": e.event_type,
            "timestamp": e.timestamp,
            "text": e.text,
            "body": e.body,
            "received_at": now,
        }
        for e in unique.values()
    ]
    stmt = _insert_ignoring_duplicates(dialect)
    return len(conn.execute(stmt, rows).all())


def _insert_ignoring_duplicates(dialect: str) -> Any:
    """``INSERT … ON CONFLICT (event_key) DO NOTHING RETURNING event_key`` for ``dialect``."""
    from sqlalchemy.dialects import postgresql, sqlite

    table = AnalyticsBase.metadata.tables[ConversationEvent.__tablename__]
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(table).on_conflict_do_nothing(index_elements=["event_key"])
    return stmt.returning(table.c.event_key)
