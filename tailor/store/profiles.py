"""Profiles: anonymous visitors, customers, consent, stated preferences, channel links.

Callers own the session. Identity is decided elsewhere (``tailor.profiles.identity``); these
functions only store what a verified identity is allowed to change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tailor.store.models import ChannelLink, Customer, Event, Profile, utcnow

#: At most this many stated preferences are kept per profile (oldest dropped first).
MAX_PREFERENCES = 50


def customer_by_external_id(session: Session, external_id: str) -> Customer | None:
    """The customer the store knows as ``external_id``."""
    return session.scalar(select(Customer).where(Customer.external_id == external_id))


def profile_for(
    session: Session, sender_id: str, customer_id: int | None, create: bool = True
) -> Profile | None:
    """The profile that speaks for this message: the customer's, else the visitor's.

    A customer's profile is created on first use; an anonymous visitor's only when
    ``create`` (e.g. when there is something to remember).
    """
    if customer_id is not None:
        prof = session.scalar(select(Profile).where(Profile.customer_id == customer_id))
    else:
        prof = session.scalar(
            select(Profile).where(Profile.sender_id == sender_id, Profile.customer_id.is_(None))
        )
    if prof is None and create:
        prof = Profile(
            customer_id=customer_id,
            sender_id=None if customer_id is not None else sender_id,
            personalisation=True,
            preferences=[],
        )
        session.add(prof)
        session.flush()
    return prof


def link_sender(session: Session, sender_id: str, customer_id: int) -> bool:
    """A verified customer now speaks in conversation ``sender_id``: adopt what it gathered.

    The visitor's anonymous profile (preferences; an opt-out wins) is merged into the
    customer's and deleted, and the conversation's events without a customer get this one.
    Returns whether anything was adopted. Never call it on the strength of chat text.
    """
    anon = session.scalar(
        select(Profile).where(Profile.sender_id == sender_id, Profile.customer_id.is_(None))
    )
    result = session.execute(
        update(Event)
        .where(Event.sender_id == sender_id, Event.customer_id.is_(None))
        .values(customer_id=customer_id)
        .execution_options(synchronize_session=False)
    )
    moved = int(getattr(result, "rowcount", 0) or 0)
    if anon is None:
        return moved > 0
    own = profile_for(session, sender_id, customer_id)
    assert own is not None
    own.preferences = merge_preferences(own.preferences or [], anon.preferences or [])
    own.personalisation = bool(own.personalisation and anon.personalisation)
    own.updated_at = utcnow()
    session.delete(anon)
    return True


def merge_preferences(
    current: Iterable[Mapping[str, Any]], new: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Preferences with ``new`` applied: a later statement of the same (kind, value) wins."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for pref in [*current, *new]:
        key = (str(pref.get("kind")), str(pref.get("value")))
        merged.pop(key, None)
        merged[key] = dict(pref)
    return list(merged.values())[-MAX_PREFERENCES:]


def add_preferences(session: Session, profile: Profile, prefs: Iterable[Mapping[str, Any]]) -> None:
    """Store newly stated preferences on a profile."""
    new = [dict(p) for p in prefs]
    if not new:
        return
    profile.preferences = merge_preferences(profile.preferences or [], new)
    profile.updated_at = utcnow()


def set_personalisation(session: Session, profile: Profile, allowed: bool) -> None:
    """Record the shopper's choice to allow or refuse personalised suggestions."""
    profile.personalisation = bool(allowed)
    profile.updated_at = utcnow()


def link_channel_user(session: Session, channel: str, user_id: str, customer_id: int) -> None:
    """Link a messaging platform's user id to a customer (the store verified the account)."""
    row = session.scalar(
        select(ChannelLink).where(ChannelLink.channel == channel, ChannelLink.user_id == user_id)
    )
    if row is None:
        session.add(ChannelLink(channel=channel, user_id=user_id, customer_id=customer_id))
    else:
        row.customer_id = customer_id


def customer_for_channel_user(session: Session, channel: str, user_id: str) -> Customer | None:
    """The customer a platform user id is linked to, if any."""
    return session.scalar(
        select(Customer)
        .join(ChannelLink, ChannelLink.customer_id == Customer.id)
        .where(ChannelLink.channel == channel, ChannelLink.user_id == user_id)
    )
