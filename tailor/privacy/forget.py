"""Forget a shopper: delete everything Tailor and Rasa keep about them.

For a verified customer: the customer record, their profile and the anonymous profiles of
their conversations, every event recorded against them or in their conversations, their
segment assignments, linked messaging accounts, what agents did in their conversations, the
analytics copies of their conversations, and the conversations themselves in Rasa's tracker
store. For an anonymous visitor: the same for their one conversation (refused when that
conversation also holds a signed-in customer's data).

``tests/integration/test_privacy.py`` checks the result by searching every table of both
databases for the shopper's ids, conversation ids, e-mail and name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import delete
from sqlalchemy.orm import Session

from tailor.analytics.events import (
    AnalyticsBase,
    ConversationEvent,
    ForgottenSender,
    sender_hash,
)
from tailor.privacy.subject import (
    Subject,
    agent_actions_filter,
    check_access,
    events_filter,
    has_analytics_table,
    profiles_filter,
    senders_of,
)
from tailor.privacy.tracker import TrackerStore
from tailor.store.agents import AgentAction
from tailor.store.models import (
    ChannelLink,
    Customer,
    CustomerScore,
    CustomerSegment,
    Event,
    Profile,
)


@dataclass
class ForgetReport:
    """What was deleted, per table, and from which conversations."""

    conversations: list[str]
    deleted: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Rows deleted in all."""
        return sum(self.deleted.values())

    def render(self) -> str:
        """One line per table with something deleted."""
        rows = [f"  {table:20} {n:6d}" for table, n in self.deleted.items() if n]
        head = f"Forgot {len(self.conversations)} conversation(s): {', '.join(self.conversations)}"
        return "\n".join([head, *rows]) if rows else head + "\n  nothing was stored"


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def forget(session: Session, subject: Subject, tracker: TrackerStore) -> ForgetReport:
    """Delete the subject's data in the caller's session, then their conversations in the
    tracker store. Commit the session right after (the caller owns it).

    Raises :class:`~tailor.privacy.subject.ConversationOwned` for a request on a
    conversation that holds another shopper's data.
    """
    check_access(session, subject)
    senders = senders_of(session, subject)
    report = ForgetReport(conversations=senders)
    d = report.deleted
    opts = {"synchronize_session": False}
    d["events"] = _count(
        session.execute(
            delete(Event).where(events_filter(subject, senders)).execution_options(**opts)
        )
    )
    d["profiles"] = _count(
        session.execute(
            delete(Profile).where(profiles_filter(subject, senders)).execution_options(**opts)
        )
    )
    d["agent_actions"] = _count(
        session.execute(
            delete(AgentAction).where(agent_actions_filter(senders)).execution_options(**opts)
        )
    )
    if has_analytics_table(session):
        d["conversation_events"] = _count(
            session.execute(
                delete(ConversationEvent)
                .where(ConversationEvent.sender_id.in_(senders))
                .execution_options(**opts)
            )
        )
        # The turn running "forget me" reaches the analytics consumer after this: the
        # tombstones keep it (and redeliveries) out until the shopper writes again.
        AnalyticsBase.metadata.tables[ForgottenSender.__tablename__].create(
            session.connection(), checkfirst=True
        )
        stamp = time.time()
        hashes = sorted({sender_hash(s) for s in senders})
        session.execute(
            delete(ForgottenSender)
            .where(ForgottenSender.sender_hash.in_(hashes))
            .execution_options(**opts)
        )
        session.add_all(ForgottenSender(sender_hash=h, forgotten_at=stamp) for h in hashes)
    if subject.customer_id is not None:
        cid = subject.customer_id
        d["customer_segments"] = _count(
            session.execute(
                delete(CustomerSegment)
                .where(CustomerSegment.customer_id == cid)
                .execution_options(**opts)
            )
        )
        d["customer_scores"] = _count(
            session.execute(
                delete(CustomerScore)
                .where(CustomerScore.customer_id == cid)
                .execution_options(**opts)
            )
        )
        d["channel_links"] = _count(
            session.execute(
                delete(ChannelLink).where(ChannelLink.customer_id == cid).execution_options(**opts)
            )
        )
        d["customers"] = _count(
            session.execute(delete(Customer).where(Customer.id == cid).execution_options(**opts))
        )
    session.flush()
    d["rasa tracker events"] = tracker.delete(senders)
    return report
