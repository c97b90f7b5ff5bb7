"""Consent: personalisation and analytics happen only while the shopper allows them.

One switch (a profile's ``personalisation`` flag: the page's checkbox, ``POST
/api/profile/consent``) covers both, and this is what it means for what Tailor stores:

* **Allowed** (the default): behavioural events (what was shown, clicked, viewed, bought,
  said) are kept against the shopper and feed their ranking, history and segments.
* **Withdrawn** (:func:`apply_consent` with ``allowed=False``), effective at once:
  the ranking stops using profile, segments, history and session (``tailor.recommend``);
  the events already kept are **de-identified** (customer and conversation ids removed, free
  text dropped; what remains counts towards product popularity but no longer describes a
  person, so no segmentation, history or affinity can use it); their segment assignments are
  deleted. Events recorded afterwards (the conversation still needs them in the moment) are
  de-identified by the next ``tailor privacy retention`` run (:func:`deidentify_opted_out`).
* Allowing again starts afresh: nothing de-identified comes back.

Stated preferences stay on the profile (the shopper's own words, shown in their export and
deleted by "forget me"); they are not used while personalisation is off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from tailor.store.models import CustomerScore, CustomerSegment, Event, Profile
from tailor.store.profiles import set_personalisation

#: Payload keys that hold the shopper's own words or device context; dropped on
#: de-identification.
PERSONAL_PAYLOAD_KEYS = frozenset(
    {"text", "evidence", "identity_error", "device", "local_hour", "tz", "sentiment_scores"}
)


@dataclass(frozen=True)
class ConsentChange:
    """What :func:`apply_consent` did."""

    personalisation: bool
    events_deidentified: int = 0
    segments_deleted: int = 0


def scrub_payload(payload: Mapping[str, Any] | None) -> dict[str, Any]:
    """An event payload without the shopper's words and device context."""
    return {k: v for k, v in (payload or {}).items() if k not in PERSONAL_PAYLOAD_KEYS}


def _profile_events(profile: Profile) -> ColumnElement[bool]:
    if profile.customer_id is not None:
        return Event.customer_id == profile.customer_id
    return (Event.sender_id == profile.sender_id) & Event.customer_id.is_(None)


def deidentify_events(session: Session, where: ColumnElement[bool]) -> int:
    """Remove customer and conversation ids and free text from the events matching
    ``where``; how many were changed."""
    rows = list(session.execute(select(Event.id, Event.payload).where(where)))
    for event_id, payload in rows:
        session.execute(
            update(Event)
            .where(Event.id == event_id)
            .values(sender_id=None, customer_id=None, payload=scrub_payload(payload))
            .execution_options(synchronize_session=False)
        )
    return len(rows)


def apply_consent(session: Session, profile: Profile, allowed: bool) -> ConsentChange:
    """Record the shopper's choice; withdrawing it de-identifies their events and deletes
    their segment assignments and predictive scores in the same transaction (see the module
    docstring)."""
    set_personalisation(session, profile, allowed)
    if allowed:
        return ConsentChange(personalisation=True)
    events = deidentify_events(session, _profile_events(profile))
    segments = 0
    if profile.customer_id is not None:
        result = session.execute(
            delete(CustomerSegment)
            .where(CustomerSegment.customer_id == profile.customer_id)
            .execution_options(synchronize_session=False)
        )
        segments = int(getattr(result, "rowcount", 0) or 0)
        # predictions (churn risk, restocks due) are profiling too: none without consent
        session.execute(
            delete(CustomerScore)
            .where(CustomerScore.customer_id == profile.customer_id)
            .execution_options(synchronize_session=False)
        )
    return ConsentChange(False, events, segments)


def opted_out_filter(session: Session) -> ColumnElement[bool] | None:
    """Events of shoppers who withdrew consent (None when nobody did)."""
    customers: list[int] = []
    senders: list[str] = []
    for cid, sender in session.execute(
        select(Profile.customer_id, Profile.sender_id).where(Profile.personalisation.is_(False))
    ):
        if cid is not None:
            customers.append(int(cid))
        elif sender:
            senders.append(sender)
    clauses: list[ColumnElement[bool]] = []
    if customers:
        clauses.append(Event.customer_id.in_(customers))
    if senders:
        clauses.append(Event.sender_id.in_(senders) & Event.customer_id.is_(None))
    return or_(*clauses) if clauses else None


def opted_out_customer_ids(session: Session) -> set[int]:
    """Customers who withdrew consent: segmentations must leave them out."""
    return {
        int(cid)
        for cid in session.scalars(
            select(Profile.customer_id).where(
                Profile.personalisation.is_(False), Profile.customer_id.is_not(None)
            )
        )
        if cid is not None
    }


def deidentify_opted_out(session: Session, dry_run: bool = False) -> int:
    """De-identify the events still kept against shoppers who withdrew consent, and delete
    their segment assignments; how many events (to) change."""
    where = opted_out_filter(session)
    if where is None:
        return 0
    if dry_run:
        return len(list(session.scalars(select(Event.id).where(where))))
    changed = deidentify_events(session, where)
    opted_out = opted_out_customer_ids(session)
    if opted_out:
        session.execute(
            delete(CustomerSegment)
            .where(CustomerSegment.customer_id.in_(opted_out))
            .execution_options(synchronize_session=False)
        )
        session.execute(
            delete(CustomerScore)
            .where(CustomerScore.customer_id.in_(opted_out))
            .execution_options(synchronize_session=False)
        )
    return changed
