"""Fill ``conversation_events`` from Rasa's tracker store, for events the broker never carried.

Rasa's pika broker publishes a turn's events in the background after the tracker is
committed, so a Rasa server killed in that moment leaves events in the tracker store that
never reach the queue. Each stored event here is keyed by its body
(:func:`~tailor.analytics.events.event_key`), and the tracker store keeps the same body, so
copying the tracker's events again inserts only the missing ones: safe to run any time,
while the consumer runs too.
"""

from __future__ import annotations

import json

from sqlalchemy import Engine, bindparam, create_engine, text

from tailor.analytics.events import (
    EventBatch,
    InvalidEvent,
    create_tables,
    parse_event,
    store_events,
)

#: Tracker rows read and stored per transaction.
CHUNK = 1000


def backfill_from_tracker(
    engine: Engine, tracker_url: str, senders: list[str] | None = None
) -> EventBatch:
    """Store every event of Rasa's SQL tracker store at ``tracker_url`` (only ``senders``'
    conversations when given) that ``conversation_events`` lacks; returns what was done."""
    create_tables(engine)
    tracker = create_engine(tracker_url)
    total = EventBatch()
    last_id = 0
    where = "id > :last"
    params: dict[str, object] = {}
    if senders is not None:
        if not senders:
            return total
        where += " AND sender_id IN :senders"
        params["senders"] = list(senders)
    query = text(f"SELECT id, sender_id, data FROM events WHERE {where} ORDER BY id LIMIT {CHUNK}")
    if senders is not None:
        query = query.bindparams(bindparam("senders", expanding=True))
    try:
        while True:
            with tracker.connect() as conn:
                rows = conn.execute(query, {**params, "last": last_id}).all()
            if not rows:
                return total
            last_id = rows[-1][0]
            parsed = []
            for _id, sender, data in rows:
                try:
                    body = {"sender_id": sender, **json.loads(data)}
                    parsed.append(parse_event(json.dumps(body)))
                except (InvalidEvent, ValueError, TypeError):
                    continue  # not an event we can key; the consumer would reject it too
            done = store_events(engine, parsed)
            total.inserted += done.inserted
            total.duplicates += done.duplicates
            total.forgotten += done.forgotten
    finally:
        tracker.dispose()
