"""Event log: what was shown to whom, clicks, feedback. Callers own the session."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tailor.store.models import Event

#: Event kinds the system writes; anything else is rejected so typos do not pass silently.
EVENT_KINDS: frozenset[str] = frozenset(
    {
        "shown",
        "click",
        "view",
        "details",
        "compare",
        "feedback",
        "cart",
        "purchase",
        "handoff",
        "message",
        "no_results",
        "trigger",
    }
)


def record_events(
    session: Session,
    kind: str,
    sender_id: str | None,
    product_ids: Sequence[int | None],
    payload: dict[str, Any] | None = None,
    customer_id: int | None = None,
    value: float | None = None,
) -> list[Event]:
    """Add one event per product (or one with no product when ``product_ids`` is empty)."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"Unknown event kind {kind!r}; valid kinds are {sorted(EVENT_KINDS)}")
    ids: Sequence[int | None] = product_ids or [None]
    events = [
        Event(
            kind=kind,
            sender_id=sender_id,
            customer_id=customer_id,
            product_id=pid,
            value=value,
            payload=dict(payload or {}, rank=rank) if pid is not None else dict(payload or {}),
        )
        for rank, pid in enumerate(ids)
    ]
    session.add_all(events)
    return events


def events_for(session: Session, sender_id: str, kind: str | None = None) -> list[Event]:
    """A conversation's events, oldest first (optionally of one kind)."""
    stmt = select(Event).where(Event.sender_id == sender_id)
    if kind is not None:
        stmt = stmt.where(Event.kind == kind)
    return list(session.scalars(stmt.order_by(Event.created_at, Event.id)))


def delete_conversation_events(session: Session, sender_prefix: str) -> int:
    """Delete the events of every conversation whose id starts with ``sender_prefix`` (e.g. a
    simulation replacing its own earlier run); the number deleted."""
    if not sender_prefix:
        raise ValueError("sender_prefix must not be empty (it would delete every event)")
    result = session.execute(
        delete(Event)
        .where(Event.sender_id.startswith(sender_prefix, autoescape=True))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
