"""Whose data a privacy request is about, and every place that data lives.

A *subject* is either a verified customer (a valid signed token, or a messaging account the
store linked) or an anonymous visitor, known only by their conversation id (``sender_id``).
A customer's data is everything stored against their customer id plus every conversation
linked to them: the conversations their events were recorded in, their linked messaging
accounts (a platform user id is that platform's conversation id) and the conversation the
request comes from. A visitor's data is what is kept under their conversation id and not
linked to any customer.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import inspect, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from tailor.analytics.events import ConversationEvent
from tailor.store.agents import AgentAction
from tailor.store.models import ChannelLink, Event, Profile


@dataclass(frozen=True)
class Subject:
    """The shopper a request is about: ``customer_id`` only from a verified identity;
    ``sender_id`` is the conversation the request comes from (None for an operator's
    request about a customer)."""

    sender_id: str | None
    customer_id: int | None = None

    def __post_init__(self) -> None:
        if self.sender_id is None and self.customer_id is None:
            raise ValueError("a subject needs a conversation id, a customer id or both")

    @property
    def identified(self) -> bool:
        """True for a verified customer."""
        return self.customer_id is not None


class ConversationOwned(PermissionError):
    """An anonymous request for a conversation that a signed-in customer also used."""


def senders_of(session: Session, subject: Subject) -> list[str]:
    """Every conversation id the subject's data lives under, sorted."""
    senders = {subject.sender_id} if subject.sender_id else set()
    if subject.customer_id is not None:
        cid = subject.customer_id
        senders.update(
            s
            for s in session.scalars(
                select(Event.sender_id).where(Event.customer_id == cid).distinct()
            )
            if s
        )
        senders.update(
            session.scalars(select(ChannelLink.user_id).where(ChannelLink.customer_id == cid))
        )
    return sorted(senders)


def check_access(session: Session, subject: Subject) -> None:
    """Refuse a request for a conversation holding another shopper's data.

    Holding a conversation id is not proof of being the customer who signed in there (an
    anonymous request must not reach a customer's data), and a customer may not reach into
    another customer's conversation. Raises :class:`ConversationOwned`.
    """
    if subject.sender_id is None:
        return
    others = select(Event.id).where(
        Event.sender_id == subject.sender_id, Event.customer_id.is_not(None)
    )
    if subject.customer_id is not None:
        others = others.where(Event.customer_id != subject.customer_id)
    if session.scalar(others.limit(1)) is not None:
        raise ConversationOwned(
            "This conversation holds a signed-in customer's data: only that customer, signed "
            "in, may see or delete it."
        )


def events_filter(subject: Subject, senders: list[str]) -> ColumnElement[bool]:
    """The subject's rows of Tailor's event log."""
    if subject.customer_id is not None:
        # another customer's events in a shared conversation stay theirs
        return or_(
            Event.customer_id == subject.customer_id,
            Event.sender_id.in_(senders) & Event.customer_id.is_(None),
        )
    return (Event.sender_id == subject.sender_id) & Event.customer_id.is_(None)


def profiles_filter(subject: Subject, senders: list[str]) -> ColumnElement[bool]:
    """The subject's profiles (a customer's, and anonymous ones of their conversations)."""
    anonymous = Profile.sender_id.in_(senders) & Profile.customer_id.is_(None)
    if subject.customer_id is not None:
        return or_(Profile.customer_id == subject.customer_id, anonymous)
    return anonymous


def agent_actions_filter(senders: list[str]) -> ColumnElement[bool]:
    """What support agents did in the subject's conversations."""
    return AgentAction.sender_id.in_(senders)


def has_analytics_table(session: Session) -> bool:
    """Whether this database holds the analytics consumer's ``conversation_events``."""
    return inspect(session.get_bind()).has_table(ConversationEvent.__tablename__)
