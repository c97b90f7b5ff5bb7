"""Marketing consent and trigger logs: who agreed to outbound messages on which channel, and
the ``trigger`` events behind frequency caps. Callers own the session."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tailor.store.events import record_events
from tailor.store.models import ChannelLink, Event, Profile, as_utc, utcnow

__all__ = [
    "allows_personalisation",
    "last_rule_firing",
    "marketing_channels",
    "opted_in_customers",
    "record_trigger",
    "sender_filter",
    "set_marketing_opt_in",
    "trigger_events",
]


def set_marketing_opt_in(
    session: Session, customer_id: int, channel: str, allowed: bool, at: datetime | None = None
) -> ChannelLink:
    """Record the customer's explicit yes (or no) to marketing messages on ``channel``.

    The customer must have a linked account there (``tailor profile link``): the opt-in
    belongs to that account. Raises ``LookupError`` naming the linked channels otherwise.
    """
    links = list(session.scalars(select(ChannelLink).where(ChannelLink.customer_id == customer_id)))
    mine = [link for link in links if link.channel == channel]
    if not mine:
        have = sorted({link.channel for link in links})
        raise LookupError(
            f"customer {customer_id} has no linked {channel} account "
            f"(linked: {', '.join(have) or 'none'}); link it first with `tailor profile link`"
        )
    for link in mine:
        link.marketing_opt_in_at = (at or utcnow()) if allowed else None
    return mine[0]


def marketing_channels(session: Session, customer_id: int) -> dict[str, str]:
    """``{channel: platform user id}`` where the customer opted in to marketing messages."""
    rows = session.scalars(
        select(ChannelLink)
        .where(
            ChannelLink.customer_id == customer_id,
            ChannelLink.marketing_opt_in_at.is_not(None),
        )
        .order_by(ChannelLink.id)
    )
    return {link.channel: link.user_id for link in rows}


def opted_in_customers(session: Session, channels: Sequence[str]) -> list[int]:
    """Customers with a marketing opt-in on any of ``channels``, by id."""
    if not channels:
        return []
    rows = session.scalars(
        select(ChannelLink.customer_id)
        .where(
            ChannelLink.channel.in_(list(channels)), ChannelLink.marketing_opt_in_at.is_not(None)
        )
        .distinct()
        .order_by(ChannelLink.customer_id)
    )
    return list(rows)


def allows_personalisation(
    session: Session, customer_id: int | None, sender_id: str | None
) -> bool:
    """The shopper's personalisation consent (a customer's profile, else the visitor's);
    nobody said no means yes, as for suggestions."""
    if customer_id is not None:
        prof = session.scalar(select(Profile).where(Profile.customer_id == customer_id))
    elif sender_id:
        prof = session.scalar(
            select(Profile).where(Profile.sender_id == sender_id, Profile.customer_id.is_(None))
        )
    else:
        return False
    return True if prof is None else bool(prof.personalisation)


def trigger_events(
    session: Session,
    customer_id: int | None,
    sender_id: str | None,
    since: datetime,
    rule: str | None = None,
) -> list[Event]:
    """``trigger`` events of one recipient (the customer's, or an anonymous conversation's)
    since ``since``, oldest first, optionally of one rule; ``rule=None`` gives every rule's
    (for the cross-rule cap)."""
    stmt = select(Event).where(
        Event.kind == "trigger", sender_filter(customer_id, sender_id), Event.created_at >= since
    )
    events = list(session.scalars(stmt.order_by(Event.created_at, Event.id)))
    if rule is not None:
        events = [e for e in events if (e.payload or {}).get("rule") == rule]
    return events


def last_rule_firing(session: Session, rule: str, since: datetime) -> datetime | None:
    """When ``rule`` last fired for anyone since ``since`` (the rule-wide cooldown)."""
    rows = session.scalars(
        select(Event)
        .where(Event.kind == "trigger", Event.created_at >= since)
        .order_by(Event.created_at.desc(), Event.id.desc())
    )
    for ev in rows:
        if (ev.payload or {}).get("rule") == rule:
            return as_utc(ev.created_at)
    return None


def record_trigger(
    session: Session,
    rule: str,
    channel: str,
    sender_id: str | None,
    customer_id: int | None,
    product_ids: Sequence[int],
    extra: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Log a firing (one ``trigger`` event: ``{"rule", "channel", "products", ...extra}``)
    and the products it showed (``shown`` events with ``{"trigger": rule}``), so clicks, carts
    and purchases after it count for the rule like any suggestion's."""
    payload = {**(extra or {}), "rule": rule, "channel": channel, "products": list(product_ids)}
    fired = record_events(session, "trigger", sender_id, [], payload, customer_id)
    shown = (
        record_events(
            session,
            "shown",
            sender_id,
            list(product_ids),
            {"trigger": rule, "channel": channel},
            customer_id,
        )
        if product_ids
        else []
    )
    if at is not None:
        for ev in [*fired, *shown]:
            ev.created_at = at


def sender_filter(customer_id: int | None, sender_id: str | None) -> Any:
    """The SQL condition selecting one recipient's events."""
    if customer_id is not None:
        return Event.customer_id == customer_id
    return (Event.sender_id == sender_id) & Event.customer_id.is_(None)
