"""A SQL tracker store that keeps the conversation Rasa works on short.

Rasa 3.6 loads a conversation's events since its last ``session_started`` on every message,
replays them, and sends them all to the action server on every custom action call. A long
conversation therefore gets slower turn by turn (measured: 3.6× over 100 turns). Rasa's own
remedy, session expiry, only starts a new session after the shopper was away for an hour.

This store starts a new session *in place* when the current one holds more than
``max_session_events`` events, at the end of a complete turn (the bot is listening). It appends
what Rasa's ``action_session_start`` appends when a session expires with
``carry_over_slots_to_new_session``: ``action_session_start``, ``session_started``, one
``slot`` event per slot that is not at its initial value, and ``action_listen``. So:

* the next message is handled exactly as the first message of a new session with the same
  slots: our rules depend only on the intent, and our actions read slots, never old events;
* nothing is deleted: the full history (``/conversations/<id>/tracker``, which the web page
  and the assist panel read) still has every message, and the event broker streams the
  appended events like any others;
* a conversation handed to a human (paused), inside a form, or with a follow-up action
  pending is never cut.

Loaded by Rasa from ``endpoints.yml`` (``tracker_store: type:
tailor_tracker_store.CompactingSQLTrackerStore``); runs on Rasa's Python 3.10 and imports only
Rasa.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.events import ActionExecuted, Event, SessionStarted, SlotSet
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

#: Default bound: about four turns of this bot (a turn writes 10-15 events).
DEFAULT_MAX_SESSION_EVENTS = 60


def events_since_session_start(tracker: DialogueStateTracker) -> int:
    """How many of the tracker's events follow its last ``session_started``."""
    count = 0
    for event in reversed(tracker.events):
        if isinstance(event, SessionStarted):
            break
        count += 1
    return count


def should_compact(tracker: DialogueStateTracker, max_session_events: int) -> bool:
    """Whether to start a new session now: the session is over the bound, the turn is
    complete (last event ``action_listen``), and nothing is in flight (pause, form,
    follow-up action)."""
    if max_session_events <= 0 or not tracker.events:
        return False
    last = tracker.events[-1]
    if not (isinstance(last, ActionExecuted) and last.action_name == ACTION_LISTEN_NAME):
        return False
    if tracker.is_paused() or tracker.active_loop_name:
        return False
    if tracker.followup_action not in (None, ACTION_LISTEN_NAME):
        return False
    return events_since_session_start(tracker) > max_session_events


def session_restart_events(tracker: DialogueStateTracker) -> list[Event]:
    """The events of a session start carrying every slot over (as Rasa's
    ``action_session_start`` writes them).

    Made in order, so their timestamps are too: Rasa loads a session as the events stamped
    at or after its ``session_started``, so the slots must not be stamped before it.
    """
    values = [
        (name, slot.value)
        for name, slot in tracker.slots.items()
        if slot.value != slot.initial_value
    ]
    events: list[Event] = [ActionExecuted(ACTION_SESSION_START_NAME)]
    started = SessionStarted()
    events.append(started)
    for name, value in values:
        events.append(SlotSet(name, value, timestamp=max(time.time(), started.timestamp)))
    events.append(ActionExecuted(ACTION_LISTEN_NAME))
    return events


def event_row(sender_id: str, event: Event) -> dict[str, Any]:
    """The ``events`` row of one event, as ``SQLTrackerStore.save`` writes it."""
    data = event.as_dict()
    return {
        "sender_id": sender_id,
        "type_name": event.type_name,
        "timestamp": data.get("timestamp"),
        "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
        "action_name": data.get("name"),
        "data": json.dumps(data),
    }


def session_sql(table: str, select: str, all_sessions: bool) -> str:
    """``SELECT select`` over one sender's events (``:sender_id``) in ``table``, of the latest
    session (after the last ``:session_started``) or of all sessions, ordered by id unless
    counting: the SQL of ``SQLTrackerStore._event_query``. Rasa builds that query with the ORM
    on every load and save, and SQLAlchemy then derives its cache key and hydrates an ORM
    object per row; the store runs it as text written once."""
    if all_sessions:
        sql = f"SELECT {select} FROM {table} AS e WHERE e.sender_id = :sender_id"
    else:
        sql = (
            f"SELECT {select} FROM {table} AS e, "
            f"(SELECT max(s.timestamp) AS session_start FROM {table} AS s "
            f"WHERE s.sender_id = :sender_id AND s.type_name = :session_started) AS latest "
            "WHERE e.sender_id = :sender_id AND "
            "(e.timestamp >= latest.session_start OR latest.session_start IS NULL)"
        )
    return sql if select == "count(*)" else sql + " ORDER BY e.id"


class CompactingSQLTrackerStore(SQLTrackerStore):
    """``SQLTrackerStore`` that starts a new session past ``max_session_events`` events
    (see the module docstring). ``max_session_events: 0`` turns that off."""

    engine: Any  # SQLAlchemy's Engine (set by SQLTrackerStore, replaced for SQLite files)

    def __init__(
        self,
        domain: Any = None,
        max_session_events: int = DEFAULT_MAX_SESSION_EVENTS,
        sqlite_wal: bool = True,
        **kwargs: Any,
    ) -> None:
        """Built by Rasa from ``endpoints.yml``; other keys go to ``SQLTrackerStore``.

        With a SQLite file, connections stay open between messages (see
        :meth:`_keep_sqlite_connections`), and ``sqlite_wal`` switches the file to write-ahead
        logging with ``synchronous=NORMAL``: a commit no longer waits for the disk twice (a
        crash of the process loses nothing; a power cut may lose the last turns).
        """
        super().__init__(domain=domain, **kwargs)
        self.max_session_events = int(max_session_events)
        import sqlalchemy as sa

        table = self.engine.dialect.identifier_preparer.format_table(self.SQLEvent.__table__)
        self._count_sql = sa.text(session_sql(table, "count(*)", all_sessions=False))
        self._events_sql = {
            every: sa.text(session_sql(table, "e.data", all_sessions=every))
            for every in (False, True)
        }
        if self.engine.dialect.name == "sqlite" and self.engine.url.database not in (
            None,
            "",
            ":memory:",
        ):
            self._keep_sqlite_connections(wal=sqlite_wal)

    def _keep_sqlite_connections(self, wal: bool) -> None:
        """Serve a SQLite file from a pool of open connections.

        SQLAlchemy 1.4 (Rasa's) opens and closes a SQLite file connection for every session,
        and Rasa opens two sessions per message: each message paid for a new connection
        and, in WAL mode, for the checkpoint SQLite runs when a file's last connection
        closes. Each connection serves one session at a time (the pool checks it out), so
        it may move between threads.
        """
        import sqlalchemy as sa
        from sqlalchemy.orm import sessionmaker
        from sqlalchemy.pool import QueuePool

        url = self.engine.url
        self.engine.dispose()
        self.engine = sa.create_engine(
            url,
            poolclass=QueuePool,
            pool_size=4,
            max_overflow=8,
            connect_args={"check_same_thread": False},
        )
        if wal:

            def _pragmas(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()

            sa.event.listen(self.engine, "connect", _pragmas)
        self.sessionmaker = sessionmaker(bind=self.engine)

    def _additional_events(self, session: Any, tracker: DialogueStateTracker) -> Any:
        """The tracker's events after those stored for its latest session (Rasa's rule)."""
        stored = session.execute(
            self._count_sql,
            {"sender_id": tracker.sender_id, "session_started": SessionStarted.type_name},
        ).scalar()
        return itertools.islice(tracker.events, int(stored or 0), len(tracker.events))

    async def _retrieve(
        self, sender_id: str, fetch_events_from_all_sessions: bool
    ) -> DialogueStateTracker | None:
        """The tracker of ``sender_id``'s latest session (or all sessions), as Rasa's."""
        with self.session_scope() as session:
            rows = session.execute(
                self._events_sql[fetch_events_from_all_sessions],
                {"sender_id": sender_id, "session_started": SessionStarted.type_name},
            )
            events = [json.loads(data) for (data,) in rows]
        if self.domain and events:
            return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        return None

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Save the turn; first append a session start if the session grew too long.

        The rows are those of ``SQLTrackerStore.save`` (same columns, same values, same
        order), written with one multi-row insert: Rasa adds one ORM object per event, and
        SQLAlchemy 1.4 then runs one ``INSERT`` per row to fetch each id (measured: about
        0.2 ms per event, and a turn of this bot writes 5 to 15 events).
        """
        if should_compact(tracker, self.max_session_events):
            for event in session_restart_events(tracker):
                tracker.update(event)
        await self.stream_events(tracker)
        with self.session_scope() as session:
            rows = [
                event_row(tracker.sender_id, event)
                for event in self._additional_events(session, tracker)
            ]
            if rows:
                session.execute(self.SQLEvent.__table__.insert(), rows)
            session.commit()
