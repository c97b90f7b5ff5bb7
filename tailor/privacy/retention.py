"""Retention: nothing about a shopper's behaviour is kept longer than the configured age.

``tailor privacy retention`` (``--dry-run`` to only count) deletes what is older than
``event_retention_days`` (``TAILOR_EVENT_RETENTION_DAYS``, 730 by default) from Tailor's event
log, the agents' audit log and the analytics copies of conversations, and the conversations'
events in Rasa's tracker store; it also de-identifies the events still kept against shoppers
who withdrew consent (:mod:`tailor.privacy.consent`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tailor.analytics.events import ConversationEvent
from tailor.privacy.consent import deidentify_opted_out
from tailor.privacy.subject import has_analytics_table
from tailor.privacy.tracker import TrackerStore
from tailor.store.agents import AgentAction
from tailor.store.models import Event, utcnow


@dataclass
class RetentionReport:
    """What a retention run deleted (or, dry, would delete)."""

    cutoff: datetime
    dry_run: bool
    events_by_kind: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    deidentified: int = 0

    def render(self) -> str:
        """A small table of counts."""
        verb = "would delete" if self.dry_run else "deleted"
        lines = [f"Retention: {verb} what is older than {self.cutoff:%Y-%m-%d %H:%M} UTC"]
        for kind, n in sorted(self.events_by_kind.items()):
            lines.append(f"  events ({kind:9}) {n:8d}")
        for table, n in self.deleted.items():
            lines.append(f"  {table:20} {n:8d}")
        what = "to de-identify" if self.dry_run else "de-identified"
        lines.append(f"  opted-out shoppers' events {what}: {self.deidentified}")
        return "\n".join(lines)


def apply_retention(
    session: Session,
    tracker: TrackerStore,
    days: int,
    dry_run: bool = False,
    now: datetime | None = None,
) -> RetentionReport:
    """Delete everything older than ``days`` days (count only when ``dry_run``) in the
    caller's session and in the tracker store; the caller commits."""
    if days < 1:
        raise ValueError(f"the retention period must be at least 1 day, got {days}")
    cutoff = (now or utcnow()) - timedelta(days=days)
    report = RetentionReport(cutoff=cutoff, dry_run=dry_run)
    report.events_by_kind = {
        kind: int(n)
        for kind, n in session.execute(
            select(Event.kind, func.count()).where(Event.created_at < cutoff).group_by(Event.kind)
        )
    }
    old_actions = AgentAction.created_at < cutoff
    report.deleted["agent_actions"] = int(
        session.scalar(select(func.count()).select_from(AgentAction).where(old_actions)) or 0
    )
    analytics = has_analytics_table(session)
    old_copies = ConversationEvent.received_at < cutoff
    if analytics:
        report.deleted["conversation_events"] = int(
            session.scalar(select(func.count()).select_from(ConversationEvent).where(old_copies))
            or 0
        )
    stamp = cutoff.timestamp()
    report.deleted["rasa tracker events"] = tracker.count_before(stamp)
    if dry_run:
        report.deidentified = deidentify_opted_out(session, dry_run=True)
        return report
    opts = {"synchronize_session": False}
    session.execute(delete(Event).where(Event.created_at < cutoff).execution_options(**opts))
    session.execute(delete(AgentAction).where(old_actions).execution_options(**opts))
    if analytics:
        session.execute(delete(ConversationEvent).where(old_copies).execution_options(**opts))
    report.deidentified = deidentify_opted_out(session)
    session.flush()
    report.deleted["rasa tracker events"] = tracker.delete_before(stamp)
    return report
